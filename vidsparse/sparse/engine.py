"""DynamicSparsity: ties a model, its optimizer and a DST algorithm together."""

from __future__ import annotations

import fnmatch
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from vidsparse.sparse.distributions import DISTRIBUTIONS, layer_densities
from vidsparse.sparse.layers import FilterFn, PrunableTarget, find_prunable, random_mask, set_mask_
from vidsparse.sparse.schedules import DECAYS, UpdateSchedule
from vidsparse.sparse.updaters import UPDATERS

SYNC_MODES = ("broadcast", "verify", "none")


@dataclass
class SparsityConfig:
    """What to train sparse and how.

    Args:
        method: a name from ``vidsparse.sparse.UPDATERS`` (dense, static, set, rigl).
        density: fraction of prunable weights kept (1 - sparsity), in (0, 1].
        distribution: how density is spread over layers (uniform, erk).
        update_interval: optimizer steps between mask updates (ΔT).
        drop_fraction: fraction of a layer's active weights replaced at the first update.
        end_fraction: updates stop after this fraction of ``total_steps`` (RigL: 0.75).
        decay: how the drop fraction decays to ``end_fraction`` (cosine, constant).
        seed: keys every random draw (initial masks, random regrowth) with the step and layer.
        erk_power_scale: exponent on ERK's raw layer scores (1.0 = ERK).
        dense_layers: glob patterns of parameter names kept dense (density 1).
        sync: at update steps under torch.distributed, ``broadcast`` rank 0's masks,
            ``verify`` that all ranks agree (raise otherwise) or do ``none``.

    Example:
        >>> cfg = vidsparse.SparsityConfig(method="rigl", density=0.5, distribution="erk",
        ...                                update_interval=100, drop_fraction=0.3, seed=0)
    """

    method: str = "rigl"
    density: float = 0.5
    distribution: str = "erk"
    update_interval: int = 100
    drop_fraction: float = 0.3
    end_fraction: float = 0.75
    decay: str = "cosine"
    seed: int = 0
    erk_power_scale: float = 1.0
    dense_layers: list[str] = field(default_factory=list)
    sync: str = "broadcast"

    def __post_init__(self):
        UPDATERS.get(self.method)
        DISTRIBUTIONS.get(self.distribution)
        DECAYS.get(self.decay)
        if not 0.0 < float(self.density) <= 1.0:
            raise ValueError(f"SparsityConfig.density must be in (0, 1], got {self.density}")
        if not 0.0 < float(self.end_fraction) <= 1.0:
            raise ValueError(f"SparsityConfig.end_fraction must be in (0, 1], got {self.end_fraction}")
        if self.sync not in SYNC_MODES:
            raise ValueError(f"SparsityConfig.sync must be one of {SYNC_MODES}, got {self.sync!r}")
        self.dense_layers = list(self.dense_layers)

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SparsityConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown sparsity option(s) {sorted(unknown)}; "
                             f"known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)


def _generator(*key: int) -> torch.Generator:
    """A CPU generator keyed on integers, independent of the global RNG and of rank."""
    seed = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed % 2**63)


def _unwrap_optimizer(optimizer):
    # accelerate's AcceleratedOptimizer (and similar wrappers) keep the real one in .optimizer
    while not isinstance(optimizer, torch.optim.Optimizer) and hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
    return optimizer


def _unwrap_model(model: nn.Module) -> nn.Module:
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


_PURPOSE_INIT, _PURPOSE_GROW = 0, 1


def mask_digest(masks) -> torch.Tensor:
    """Per mask (count of ones, a position-weighted checksum) as int64 ``[len(masks), 2]``.

    Cheap to all-gather: two ranks with equal digests hold equal masks except with
    negligible probability.
    """
    rows = []
    for mask in masks:
        idx = mask.reshape(-1).nonzero().flatten().to(torch.int64)
        rows.append(torch.stack([torch.tensor(idx.numel(), dtype=torch.int64),
                                 (idx * 2654435761 % 2147483647).sum().cpu()]))
    return torch.stack(rows) if rows else torch.zeros(0, 2, dtype=torch.int64)


class DynamicSparsity:
    """Keeps a model sparse during training and updates its masks by a DST algorithm.

    Call it after every optimizer step, before ``zero_grad`` (RigL reads the gradient):

        >>> sparsity = vidsparse.DynamicSparsity(model, optimizer, cfg, total_steps=10_000)
        >>> loss.backward(); optimizer.step(); sparsity.step(); optimizer.zero_grad()

    ``step()`` counts only optimizer steps that really ran (a hook on the optimizer sees
    them), so calling it on every micro-batch under gradient accumulation, or after a step
    the AMP scaler skipped, does not advance the schedule. Build it before
    ``accelerator.prepare``; masks are buffers that DDP is told not to broadcast.

    Args:
        model: the model; its Conv/Linear/attention weights become masked.
        optimizer: its optimizer (an Accelerate wrapper is unwrapped).
        config: a :class:`SparsityConfig`.
        total_steps: planned number of optimizer steps (sets the update end step).
        filter_fn: ``(module, module_name) -> bool`` selecting which modules to sparsify.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer,
        config: SparsityConfig,
        total_steps: int,
        filter_fn: FilterFn | None = None,
    ):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.model = _unwrap_model(model)
        self.optimizer = _unwrap_optimizer(optimizer)
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            raise TypeError(f"DynamicSparsity needs a torch.optim.Optimizer, got {type(optimizer)}")
        self.config = config
        self.total_steps = int(total_steps)
        self.updater = UPDATERS.get(config.method)()
        self.schedule = UpdateSchedule(
            interval=config.update_interval,
            drop_fraction=config.drop_fraction,
            end_step=int(config.end_fraction * total_steps),
            decay=config.decay,
        )
        self.step_count = 0  # optimizer steps seen by step()
        self._optimizer_steps = 0  # optimizer steps that really ran (hook)
        self._seen_optimizer_steps = 0
        self._hook = self.optimizer.register_step_post_hook(self._on_optimizer_step)
        self.targets: list[PrunableTarget] = []
        self.target_counts: dict[str, int] = {}
        if self.updater.sparse:
            self.targets = find_prunable(self.model, filter_fn)
            if not self.targets:
                raise ValueError("DynamicSparsity found no prunable layer (Conv/Linear/attention) "
                                 "in the model" + (" that filter_fn accepts" if filter_fn else ""))
            self._init_masks()
            # DDP would otherwise broadcast every buffer on every forward (DESIGN.md: masks
            # are synchronised only at update steps).
            ignore = set(getattr(self.model, "_ddp_params_and_buffers_to_ignore", []))
            ignore.update(t.mask_full_name for t in self.targets)
            self.model._ddp_params_and_buffers_to_ignore = sorted(ignore)

    # ------------------------------------------------------------------ setup
    def _layer_densities(self) -> dict[str, float]:
        shapes = {t.name: tuple(t.param.shape) for t in self.targets}
        dense = {n for n in shapes if any(fnmatch.fnmatchcase(n, p) for p in self.config.dense_layers)}
        # Drop-in sparse layers (SparseConv3d, SparseLinear) carry their own density.
        fixed = {t.name: t.module.density for t in self.targets
                 if t.param_name == "weight" and hasattr(t.module, "density")}
        free = {n: s for n, s in shapes.items() if n not in fixed}
        densities = dict(fixed)
        if free:
            densities.update(layer_densities(self.config.distribution, free, self.config.density,
                                             dense, power_scale=self.config.erk_power_scale))
        return densities

    def _init_masks(self) -> None:
        densities = self._layer_densities()
        for index, target in enumerate(self.targets):
            numel = target.param.numel()
            count = round(densities[target.name] * numel)
            if count < 1:
                raise ValueError(f"layer {target.name} ({numel} weights) cannot reach density "
                                 f"{densities[target.name]:.3g}: that keeps less than one weight")
            self.target_counts[target.name] = min(count, numel)
            generator = _generator(self.config.seed, index, 0, _PURPOSE_INIT)
            set_mask_(target, random_mask(target.param.shape, self.target_counts[target.name], generator))

    def _on_optimizer_step(self, optimizer, args, kwargs) -> None:
        self._optimizer_steps += 1

    # ------------------------------------------------------------------ public
    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """``{parameter name: bool mask}`` (the live buffers)."""
        return {t.name: t.mask for t in self.targets}

    @torch.no_grad()
    def apply_masks_(self) -> None:
        """Zero every pruned weight in place."""
        for t in self.targets:
            t.param.mul_(t.mask)

    def step(self) -> bool:
        """Re-apply masks and, at update steps, prune and regrow. Returns True if masks changed."""
        if self._optimizer_steps == self._seen_optimizer_steps:
            return False  # no real optimizer step since the last call (accumulation, AMP skip)
        self.step_count += self._optimizer_steps - self._seen_optimizer_steps
        self._seen_optimizer_steps = self._optimizer_steps
        if not self.targets:
            return False
        self.apply_masks_()
        if not (self.updater.dynamic and self.schedule.is_update_step(self.step_count)):
            return False
        self.update_masks_(self.step_count)
        self._synchronise()
        return True

    @torch.no_grad()
    def update_masks_(self, step: int) -> None:
        """One prune-and-regrow round at ``step`` over every layer."""
        fraction = self.schedule.drop_fraction_at(step)
        if self.updater.needs_grad and all(t.param.grad is None for t in self.targets):
            raise RuntimeError(f"{self.config.method} regrows by gradient but no prunable weight has "
                               "a .grad: call sparsity.step() after optimizer.step() and before "
                               "optimizer.zero_grad()")
        for index, target in enumerate(self.targets):
            generator = _generator(self.config.seed, index, step, _PURPOSE_GROW)
            self._update_layer(target, fraction, generator)

    def _update_layer(self, target: PrunableTarget, fraction: float, generator) -> None:
        weight, mask = target.param, target.mask
        active = self.target_counts[target.name]
        n_swap = min(int(fraction * active), weight.numel() - active)
        if n_swap <= 0:
            return
        grad = weight.grad
        if grad is None and self.updater.needs_grad:
            grad = torch.zeros_like(weight)  # a layer unused in this step: nothing to prefer
        flat_mask = mask.view(-1)
        # Remove the n_swap lowest-scoring active weights.
        removal = self.updater.removal_score(weight, grad).reshape(-1).float()
        removal = removal.masked_fill(~flat_mask, math.inf)
        dropped = torch.topk(removal, n_swap, largest=False, sorted=False).indices
        new_mask = flat_mask.clone()
        new_mask[dropped] = False
        # Regrow the n_swap highest-scoring inactive weights (just-dropped ones included).
        growth = self.updater.growth_score(weight, grad, generator).reshape(-1).float()
        growth = growth.masked_fill(new_mask, -math.inf)
        grown = torch.topk(growth, n_swap, largest=True, sorted=False).indices
        new_mask[grown] = True
        flat_mask.copy_(new_mask)
        flat_weight = weight.data.view(-1)
        flat_weight[grown] = 0.0  # regrown connections start from zero (RigL)
        flat_weight.mul_(flat_mask)
        self._zero_optimizer_state(weight, grown)

    def _zero_optimizer_state(self, param: torch.Tensor, index: torch.Tensor) -> None:
        # Momentum / Adam moments of a regrown weight would otherwise revive its old update.
        for value in self.optimizer.state.get(param, {}).values():
            if torch.is_tensor(value) and value.shape == param.shape:
                value.view(-1)[index] = 0

    # ------------------------------------------------------------------ distributed
    def _synchronise(self) -> None:
        if self.config.sync == "none" or not (dist.is_available() and dist.is_initialized()):
            return
        if dist.get_world_size() == 1:
            return
        if self.config.sync == "broadcast":
            for t in self.targets:
                buf = t.mask.to(torch.uint8)  # gloo has no bool collectives
                dist.broadcast(buf, src=0)
                t.mask.copy_(buf.bool())
            self.apply_masks_()
        else:
            self.verify_masks()

    def verify_masks(self) -> None:
        """Raise if any rank's masks differ from the others' (one small all-gather)."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        digest = self.mask_digest().to(self.targets[0].mask.device)
        gathered = [torch.empty_like(digest) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, digest)
        for rank, other in enumerate(gathered):
            differ = (other != digest).any(dim=1).nonzero().flatten()
            if len(differ):
                name = self.targets[int(differ[0])].name
                raise RuntimeError(f"rank {dist.get_rank()} and rank {rank} hold different masks "
                                   f"for {name} at step {self.step_count}")

    def mask_digest(self) -> torch.Tensor:
        """See :func:`mask_digest`; one row per prunable layer, in module order."""
        return mask_digest(t.mask for t in self.targets)

    # ------------------------------------------------------------------ reporting, checkpoints
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per layer: shape, numel, active (ones in the mask), density, nonzero weights."""
        out = {}
        for t in self.targets:
            numel = t.param.numel()
            active = int(t.mask.sum())
            out[t.name] = {"shape": list(t.param.shape), "numel": numel, "active": active,
                           "density": active / numel, "nonzero": int((t.param != 0).sum())}
        return out

    def density(self) -> float:
        """Global density over the prunable weights (1.0 for a dense run)."""
        if not self.targets:
            return 1.0
        return sum(int(t.mask.sum()) for t in self.targets) / sum(t.param.numel() for t in self.targets)

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "config": asdict(self.config),
            "masks": {t.name: t.mask.detach().cpu().clone() for t in self.targets},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        masks = state["masks"]
        names = {t.name for t in self.targets}
        if set(masks) != names:
            missing, extra = sorted(names - set(masks)), sorted(set(masks) - names)
            raise ValueError(f"sparsity state does not match the model: missing {missing}, "
                             f"unexpected {extra}")
        for t in self.targets:
            if tuple(masks[t.name].shape) != tuple(t.param.shape):
                raise ValueError(f"mask for {t.name} has shape {tuple(masks[t.name].shape)}, "
                                 f"the weight has {tuple(t.param.shape)}")
            set_mask_(t, masks[t.name])
            self.target_counts[t.name] = int(masks[t.name].sum())
        self.step_count = int(state["step_count"])
        # Continue counting from here: the optimizer's own hook count restarts at zero.
        self._seen_optimizer_steps = self._optimizer_steps
        if state.get("config", {}).get("method", self.config.method) != self.config.method:
            warnings.warn(f"loading sparsity state of method {state['config']['method']!r} into "
                          f"an engine running {self.config.method!r}")

    def remove(self) -> None:
        """Detach from the optimizer (the masks stay on the model)."""
        self._hook.remove()
