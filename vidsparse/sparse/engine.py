"""DynamicSparsity: ties a model, its optimizer and a DST method together.

The engine does the bookkeeping once: which weights are masked and at what count, when an
update runs, removing and regrowing weights (the method scores them, the layer's structure
says where they may grow), optimizer state, ranks, checkpoints and the checks that catch a
wrong call. Methods live in ``updaters.py``, structures in ``structure.py``, mask mechanics
in ``masks.py`` (docs/ARCHITECTURE.md, "Layers" and "The training step").
"""

from __future__ import annotations

import fnmatch
import numbers
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from vidsparse.sparse.channels import ChannelGroup, shrink
from vidsparse.sparse.config import SparsityConfig
from vidsparse.sparse.distributions import layer_densities, spread_over_room
from vidsparse.sparse.guards import LoopGuard, check_optimizer_holds, check_patterns
from vidsparse.sparse.layers import FilterFn, PrunableTarget, find_prunable, set_mask_
from vidsparse.sparse.masks import (count_bits, generator, mask_digest, nm_pattern_holds,
                                    nm_random_mask, pack_bits, select, unpack_bits)
from vidsparse.sparse.schedules import UpdateSchedule
from vidsparse.sparse.structure import NM, ChannelStructure, Unstructured
from vidsparse.sparse.updaters import UPDATERS

# mask_digest and the N:M helpers were defined here first; they live in masks.py now.
__all__ = ["DynamicSparsity", "SparsityConfig", "mask_digest", "nm_pattern_holds", "nm_random_mask"]

_PURPOSE_INIT, _PURPOSE_GROW = 0, 1


def _unwrap_optimizer(optimizer):
    # accelerate's AcceleratedOptimizer (and similar wrappers) keep the real one in .optimizer;
    # the wrapper itself subclasses Optimizer without initialising it, so test the inner one.
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    return optimizer


def _unwrap_model(model: nn.Module) -> nn.Module:
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


@dataclass
class LayerUpdate:
    """One layer's part of a mask update: remove ``remove`` active weights (lowest removal
    score), then grow ``grow`` inactive ones (highest growth score, where ``allowed``)."""

    target: PrunableTarget
    remove: int
    grow: int
    generator: torch.Generator | None = None
    allowed: torch.Tensor | None = None
    record: bool = True  # counts as the layer's last update in stats()["changed"]


class DynamicSparsity:
    """Keeps a model sparse during training and updates its masks by a DST method.

    Call it after every optimizer step, before ``zero_grad`` (RigL reads the gradient):

        >>> sparsity = vidsparse.DynamicSparsity(model, optimizer, cfg, total_steps=10_000)
        >>> loss.backward(); optimizer.step(); sparsity.step(); optimizer.zero_grad()

    ``step()`` counts only optimizer steps that really ran (a hook on the optimizer sees
    them), so calling it on every micro-batch under gradient accumulation, or after a step
    the AMP scaler skipped, does not advance the schedule. Build it before
    ``accelerator.prepare``; masks are buffers that DDP is told not to broadcast.

    Misuse is reported, not trained through: a ``dense_layers``/``layer_density`` pattern that
    matches nothing and an optimizer that lacks a masked weight raise here; an optimizer
    rebuilt later raises at the next ``step()`` (see :meth:`attach_optimizer`); the wrong loop
    order warns once. Model weights may be loaded before or after building the engine
    (see :meth:`load_state_dict`).

    Args:
        model: the model; its Conv/Linear/attention weights become masked.
        optimizer: its optimizer (an Accelerate wrapper is unwrapped).
        config: a :class:`SparsityConfig`.
        total_steps: planned number of optimizer steps (sets the default end step).
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
        if not isinstance(config, SparsityConfig):
            hint = (" (build it with SparsityConfig(**options) or SparsityConfig.from_dict(options))"
                    if isinstance(config, dict) else "")
            raise TypeError(f"DynamicSparsity: config must be a SparsityConfig, got "
                            f"{type(config).__name__}{hint}")
        if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) \
                or total_steps < 1:
            raise ValueError(f"DynamicSparsity: total_steps must be the planned number of optimizer "
                             f"steps, an int >= 1; got {total_steps!r}")
        self.model = _unwrap_model(model)
        self.optimizer = _unwrap_optimizer(optimizer)
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            raise TypeError(f"DynamicSparsity needs a torch.optim.Optimizer, got {type(optimizer)}")
        self.config = config
        self.total_steps = int(total_steps)
        self.updater = UPDATERS.get(config.method)(config)
        end_step = config.end_step if config.end_step is not None else int(config.end_fraction * total_steps)
        self.schedule = UpdateSchedule(interval=config.update_interval, drop_fraction=config.drop_fraction,
                                       start_step=config.start_step, end_step=max(end_step, 1),
                                       decay=config.decay)
        self.initial_density = self.updater.initial_density(config.density)
        if self.updater.gradual and self.schedule.last_update_step is None:
            raise ValueError(f"{config.method} prunes gradually but no update step falls in "
                             f"({self.schedule.start_step}, {self.schedule.end_step}) with "
                             f"update_interval={config.update_interval}")
        self.step_count = 0  # optimizer steps seen by step()
        self._optimizer_steps = 0  # optimizer steps that really ran (hook)
        self._seen_optimizer_steps = 0
        self._hook = None
        self.targets: list[PrunableTarget] = []
        self.structures: dict[str, Unstructured | NM] = {}  # per weight name
        self.channels: ChannelStructure | None = None  # channel mode
        self.target_counts: dict[str, int] = {}  # per layer, the final target
        self._ever_active: dict[str, torch.Tensor] = {}
        self._last_changed: dict[str, float] = {}
        # Weights the initial mask zeroed in layers that already looked sparse (loaded from a
        # DST checkpoint): put back if sparsity.load_state_dict follows before any step.
        self._stash: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.guard = LoopGuard([])  # the loop-order and rebuilt-optimizer checks
        self._warned_short = False
        if self.updater.sparse:
            self._setup(filter_fn)
        self._hook = self.optimizer.register_step_post_hook(self._on_optimizer_step)

    # ------------------------------------------------------------------ setup
    def _setup(self, filter_fn: FilterFn | None) -> None:
        """Find the weights, check the options against them, then draw the masks. Nothing
        touches a weight before every check has passed."""
        self.targets = find_prunable(self.model, filter_fn)
        if not self.targets:
            raise ValueError("DynamicSparsity found no prunable layer (Conv/Linear/attention) "
                             "in the model" + (" that filter_fn accepts" if filter_fn else ""))
        names = [t.name for t in self.targets]
        check_patterns("dense_layers", self.config.dense_layers, names, filter_fn is not None)
        check_patterns("layer_density", list(self.config.layer_density), names, filter_fn is not None)
        check_optimizer_holds(self.targets, self.optimizer)
        self.structures = self._structures()
        if self.config.channel_sparsity:
            fixed = self._fixed_densities()
            masked = {t.name for t in self.targets}
            sparse = {n for n in masked if fixed.get(n, 0.0) < 1.0}
            self.channels = ChannelStructure.build(self.model, sparse, masked, self.config)
        self.target_counts = self._counts(self.config.density)
        self._init_masks(self._counts(self.initial_density))
        # DDP would otherwise broadcast every buffer on every forward (docs/ARCHITECTURE.md,
        # "Multi-GPU rules": masks are synchronised only at update steps).
        ignore = set(getattr(self.model, "_ddp_params_and_buffers_to_ignore", []))
        ignore.update(t.mask_full_name for t in self.targets)
        self.model._ddp_params_and_buffers_to_ignore = sorted(ignore)
        self.guard = LoopGuard(self.targets)
        self.guard.settled()

    def _fixed_densities(self) -> dict[str, float]:
        """Layers whose density does not come from the distribution."""
        cfg, fixed = self.config, {}
        names = [t.name for t in self.targets]
        for t in self.targets:
            # Drop-in sparse layers (SparseConv3d, SparseLinear) carry their own density.
            if t.param_name == "weight" and hasattr(t.module, "density"):
                fixed[t.name] = t.module.density
            for pattern, density in cfg.layer_density.items():
                if fnmatch.fnmatchcase(t.name, pattern):
                    fixed[t.name] = density
                    break
            if any(fnmatch.fnmatchcase(t.name, p) for p in cfg.dense_layers):
                fixed[t.name] = 1.0
        if cfg.keep_first_dense:
            fixed[names[0]] = 1.0
        if cfg.keep_last_dense:
            fixed[names[-1]] = 1.0
        for name, structure in self.structures.items():
            if structure.density is not None:
                fixed[name] = structure.density
        return fixed

    def _structures(self) -> dict[str, Unstructured | NM]:
        """Each weight's structure: N:M for the nn.Linear weights ``config.nm`` applies to (all
        but those kept dense), unstructured for the rest."""
        structures = {t.name: Unstructured() for t in self.targets}
        if not self.config.nm:
            return structures
        n, m = self.config.nm
        dense = {name for name, density in self._fixed_densities().items() if density >= 1.0}
        for t in self.targets:
            if t.name in dense or t.param_name != "weight" or not isinstance(t.module, nn.Linear):
                continue
            if t.param.shape[-1] % m:
                raise ValueError(f"SparsityConfig.nm={[n, m]}: layer {t.name} has in_features "
                                 f"{t.param.shape[-1]}, not divisible by M={m}; keep it dense "
                                 f"with dense_layers=[{t.name!r}] or leave it out with filter_fn")
            structures[t.name] = NM(n, m)
        return structures

    def _counts(self, density: float) -> dict[str, int]:
        """Active weights per layer at global ``density``, checked reachable."""
        fixed = self._fixed_densities()
        free = {t.name: tuple(t.param.shape) for t in self.targets if t.name not in fixed}
        densities = dict(fixed)
        if free:
            densities.update(layer_densities(self.config.distribution, free, density, set(),
                                             power_scale=self.config.erk_power_scale))
        counts = {}
        for t in self.targets:
            numel = t.param.numel()
            count = round(densities[t.name] * numel)
            if count < 1:
                raise ValueError(f"layer {t.name} ({numel} weights) cannot reach density "
                                 f"{densities[t.name]:.3g}: that keeps less than one weight")
            counts[t.name] = min(count, numel)
        return counts

    def _init_masks(self, counts: dict[str, int]) -> None:
        for index, target in enumerate(self.targets):
            mask = self.structures[target.name].initial_mask(
                target.param.shape, counts[target.name], generator(self.config.seed, index, 0, _PURPOSE_INIT))
            self._stash_if_loaded(target, mask)
            set_mask_(target, mask)
            self._ever_active[target.name] = pack_bits(target.mask)
            self._last_changed[target.name] = 0.0

    @torch.no_grad()
    def _stash_if_loaded(self, target: PrunableTarget, mask: torch.Tensor) -> None:
        """Keep the weights the initial mask is about to zero, if the layer already holds at
        least as many exact zeros as that mask prunes: the weights were then most likely loaded
        from a sparse run, and ``load_state_dict`` (resuming in the order model weights,
        engine, engine state) puts them back. A freshly initialised layer has no exact
        zeros, so training from scratch keeps nothing."""
        weight = target.param.detach()
        pruned = weight.numel() - int(mask.count_nonzero())
        if pruned == 0 or weight.numel() - int(weight.count_nonzero()) < pruned:
            return
        off = ~mask.to(weight.device)
        self._stash[target.name] = (off.cpu(), weight[off].cpu())

    # ------------------------------------------------------------------ the optimizer
    def attach_optimizer(self, optimizer) -> None:
        """Follow a new optimizer (one rebuilt after the engine, e.g. for a new learning-rate
        phase): the step hook moves to it; the schedule and masks carry on.

        Example:
            >>> optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            >>> sparsity.attach_optimizer(optimizer)
        """
        inner = _unwrap_optimizer(optimizer)
        if not isinstance(inner, torch.optim.Optimizer):
            raise TypeError(f"attach_optimizer needs a torch.optim.Optimizer, got {type(optimizer)}")
        check_optimizer_holds(self.targets, inner)
        if self._hook is not None:
            self._hook.remove()
        self.optimizer = inner
        self._optimizer_steps = self._seen_optimizer_steps = 0
        self._hook = self.optimizer.register_step_post_hook(self._on_optimizer_step)
        self.guard.settled()

    def _on_optimizer_step(self, optimizer, args, kwargs) -> None:
        self._optimizer_steps += 1
        self._stash = {}  # the weights moved on: nothing left to put back
        self.guard.on_optimizer_step()

    # ------------------------------------------------------------------ public
    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """``{parameter name: bool mask}`` (the live buffers)."""
        return {t.name: t.mask for t in self.targets}

    @property
    def nm_layers(self) -> set[str]:
        """Names of the weights held to the N:M pattern."""
        return {name for name, s in self.structures.items() if isinstance(s, NM)}

    @property
    def channel_groups(self) -> list[ChannelGroup]:
        """Channel mode: the groups whose channels can leave whole (empty otherwise)."""
        return self.channels.groups if self.channels else []

    @property
    def alive(self) -> dict[str, torch.Tensor]:
        """Channel mode: producer name -> bool per channel, True where kept."""
        return self.channels.alive if self.channels else {}

    @torch.no_grad()
    def apply_masks_(self, state: bool = True) -> None:
        """Zero every pruned weight in place, and with ``state`` its optimizer state.

        ``step()`` passes ``state=False``: the momentum or Adam moments of a pruned weight
        are never read while it is pruned, and are zeroed when it is regrown, so zeroing
        them every step would only double the memory traffic (3% of an r3d_18 step on CPU).
        """
        for t in self.targets:
            # Through a uint8 view of the bool mask: the same zeros, at half the time of
            # multiplying by the bool tensor itself (torch's bool path converts per element).
            t.param.mul_(t.mask.view(torch.uint8))
            if not state:
                continue
            for value in self.optimizer.state.get(t.param, {}).values():
                if torch.is_tensor(value) and value.shape == t.param.shape:
                    value.mul_(t.mask)
        if self.channels:
            self.channels.hold_zero_(self.optimizer)

    def step(self) -> bool:
        """Re-apply masks and, at update steps, prune and regrow. Returns True if masks changed.

        Raises ``RuntimeError`` if the weights moved although the optimizer the engine follows
        did not step (an optimizer rebuilt after the engine: see :meth:`attach_optimizer`);
        warns once if gradients changed between ``optimizer.step()`` and this call (the loop
        order is wrong).
        """
        if self._optimizer_steps == self._seen_optimizer_steps:
            # No real optimizer step since the last call (accumulation, AMP skip) - unless
            # another optimizer moved the weights behind the hook.
            self.guard.check_unmoved()
            return False
        self.step_count += self._optimizer_steps - self._seen_optimizer_steps
        self._seen_optimizer_steps = self._optimizer_steps
        if not self.targets:
            return False
        self.guard.check_order()
        self.apply_masks_(state=False)
        changed = False
        due = self.updater.take_back(self.step_count)  # MEST: the overshoot, half an interval on
        if due:
            self._run([LayerUpdate(t, due[t.name], 0, record=False)
                       for t in self.targets if due.get(t.name)])
            changed = True
        if self.updater.dynamic and self.schedule.is_update_step(self.step_count):
            self.update_masks_(self.step_count)
            changed = True
        if changed:
            self._synchronise()
        self.guard.settled()
        return changed

    # ------------------------------------------------------------------ mask updates
    @torch.no_grad()
    def update_masks_(self, step: int) -> None:
        """One prune-and-regrow round at ``step`` over every layer."""
        self._check_gradients(step)
        fraction = self.schedule.drop_fraction_at(step) if self.updater.regrows else 0.0
        counts = self.target_counts
        if self.updater.gradual:
            counts = self._counts(self.updater.density_at(step, self.schedule, self.config.density))
        if self.channels:
            counts = self._remove_channels_(step, counts)
        rooms = {t.name: self._room(t) for t in self.targets}
        goals = {name: min(count, rooms[name]) for name, count in counts.items()}  # full when short
        extra = self.updater.extra_growth(
            step, {n: g for n, g in goals.items() if self.structures[n].overshoot}, rooms, self.total_steps)
        jobs = []
        for index, target in enumerate(self.targets):
            active = int(target.mask.count_nonzero())
            goal = goals[target.name]
            swap = int(fraction * goal)
            # Usually active == goal (swap out, swap in) or active > goal (gradual pruning);
            # a layer that just lost channels has active < goal and grows back to it.
            remove = max(active - goal + swap, min(swap, active))
            grow = goal - active + remove + extra.get(target.name, 0) if self.updater.regrows else 0
            jobs.append(LayerUpdate(target, remove, grow, generator(self.config.seed, index, step, _PURPOSE_GROW),
                                    self._allowed(target)))
        self._run(jobs)

    def _check_gradients(self, step: int) -> None:
        if not self.updater.needs_grad:
            return
        grads = [t.param.grad for t in self.targets if t.param.grad is not None]
        if not grads:
            raise RuntimeError(f"{self.config.method} scores by gradient but no prunable weight has "
                               "a .grad: call sparsity.step() after optimizer.step() and before "
                               "optimizer.zero_grad()")
        if not any(bool(g.any()) for g in grads):
            raise RuntimeError(f"{self.config.method} scores by gradient but every gradient of the "
                               f"prunable weights is zero at update step {step} (zero_grad("
                               "set_to_none=False) before sparsity.step()?); the masks were not "
                               "changed. Call sparsity.step() after optimizer.step() and before "
                               "optimizer.zero_grad()")

    def _remove_channels_(self, step: int, counts: dict[str, int]) -> dict[str, int]:
        """Channel mode: bring every group to the removed share the cubic schedule sets for
        ``step``, empty the removed channels, and return ``counts`` spread over the room left
        (warning once if the layers cannot hold them all)."""
        share = 1.0 - self.schedule.density_at(step, 1.0, 1.0 - self.config.channel_sparsity)
        if self.channels.remove_(share):
            for target in self.targets:
                allowed = self._allowed(target)
                if allowed is not None:
                    target.mask.logical_and_(allowed)
                    target.param.mul_(target.mask)
            self.channels.hold_zero_(self.optimizer)
        fixed = self._fixed_densities()
        rooms = {t.name: self._room(t) for t in self.targets}
        spread = spread_over_room(counts, rooms, [t.name for t in self.targets if t.name not in fixed])
        self._warn_short(sum(counts.values()), sum(spread.values()))
        return spread

    def _warn_short(self, budget: int, held: int) -> None:
        if held >= budget or self._warned_short:
            return
        self._warned_short = True
        total = sum(t.param.numel() for t in self.targets)
        warnings.warn(
            f"channel_sparsity={self.config.channel_sparsity}: the channels removed so far leave "
            f"room for {held} of the {budget} weights the density asks for, so the density is "
            f"{held / total:.4f} instead of {budget / total:.4f} at step {self.step_count} (every "
            "layer that could take more is full; lower still if later updates remove more "
            "channels). Lower channel_sparsity (or set channel_residual=false) to keep the "
            "density. Warned once.", RuntimeWarning, stacklevel=5)

    def _allowed(self, target: PrunableTarget) -> torch.Tensor | None:
        if not self.channels:
            return None
        return self.channels.allowed(target.name, target.param.shape, target.param.device)

    def _room(self, target: PrunableTarget) -> int:
        if not self.channels:
            return target.param.numel()
        return self.channels.room(target.name, target.param.shape)

    def _run(self, jobs: list[LayerUpdate]) -> None:
        """The layer updates, one layer at a time. A thread pool over layers cut an update of
        r3d_18 on 2 CPU cores by a quarter, but every thread's temporaries added to the peak
        (by 150 MB), and memory is the tighter budget (benchmarks/bench_memory.py)."""
        for job in jobs:
            self._update_layer(job)

    def _update_layer(self, job: LayerUpdate) -> None:
        target, allowed = job.target, job.allowed
        weight, mask = target.param, target.mask
        flat_mask = mask.view(-1)
        before = flat_mask.clone()
        grad = weight.grad
        if grad is None and self.updater.needs_grad:
            grad = torch.zeros_like(weight)  # a layer unused in this step: nothing to prefer
        if job.remove > 0:
            # Remove the lowest-scoring active weights.
            removal = self.updater.removal_score(weight, grad).reshape(-1).float()
            flat_mask[select(removal, flat_mask, job.remove, largest=False)] = False
            del removal
        grown = None
        room = weight.numel() if allowed is None else int(allowed.count_nonzero())
        n_grow = min(job.grow, room - int(flat_mask.count_nonzero()))
        if n_grow > 0:
            # Regrow the highest-scoring inactive weights (just-dropped ones included).
            growth = self.updater.growth_score(weight, grad, job.generator).reshape(-1).float()
            grown = self.structures[target.name].grow(growth, flat_mask, n_grow, allowed)
            flat_mask[grown] = True
        flat_weight = weight.data.view(-1)
        if grown is not None:
            flat_weight[grown] = 0.0  # regrown connections start from zero (RigL)
        flat_weight.mul_(flat_mask)
        self._zero_optimizer_state(weight, flat_mask, grown)
        self._ever_active[target.name] |= pack_bits(mask)
        if job.record:
            new = int((flat_mask & ~before).count_nonzero())
            self._last_changed[target.name] = new / max(int(flat_mask.count_nonzero()), 1)

    def _zero_optimizer_state(self, param: torch.Tensor, flat_mask: torch.Tensor, grown) -> None:
        # Removed weights lose their state; regrown ones start from zero state, as a new
        # weight would, instead of resuming a stale update direction.
        for value in self.optimizer.state.get(param, {}).values():
            if torch.is_tensor(value) and value.shape == param.shape:
                flat = value.view(-1)
                flat.mul_(flat_mask)
                if grown is not None:
                    flat[grown] = 0

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
        """See :func:`vidsparse.sparse.masks.mask_digest`; one row per prunable layer, in
        module order."""
        return mask_digest(t.mask for t in self.targets)

    # ------------------------------------------------------------------ reporting
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per layer: shape, numel, active (ones in the mask), density, nonzero weights,
        ``changed`` (share of active weights that were regrown at the last update) and
        ``itop`` (in-time over-parameterisation, Liu et al. 2021: share of weights ever active)."""
        out = {}
        for t in self.targets:
            numel = t.param.numel()
            active = int(t.mask.count_nonzero())
            out[t.name] = {"shape": list(t.param.shape), "numel": numel, "active": active,
                           "density": active / numel, "nonzero": int(t.param.count_nonzero()),
                           "changed": self._last_changed[t.name],
                           "itop": count_bits(self._ever_active[t.name]) / numel}
        return out

    def summary(self) -> dict[str, Any]:
        """Whole-model figures, to read a density in context: ``layers`` (prunable weights),
        ``dense_layers`` (how many of them keep every weight: ERK makes many small layers
        dense, e.g. 77 of 117 in x3d_xs at density 0.3), ``sparse_layers``, ``density`` (now,
        over all prunable weights), ``target_density``, ``dense_share`` (share of the kept
        weights that sit in dense layers) and ``method``."""
        dense = [t for t in self.targets if int(t.mask.count_nonzero()) == t.param.numel()]
        kept = sum(int(t.mask.count_nonzero()) for t in self.targets)
        return {"method": self.config.method, "layers": len(self.targets),
                "dense_layers": len(dense), "sparse_layers": len(self.targets) - len(dense),
                "density": self.density(), "target_density": self.config.density if self.targets else 1.0,
                "dense_share": sum(t.param.numel() for t in dense) / kept if kept else 0.0}

    def density(self) -> float:
        """Global density over the prunable weights (1.0 for a dense run)."""
        if not self.targets:
            return 1.0
        return sum(int(t.mask.count_nonzero()) for t in self.targets) / sum(t.param.numel() for t in self.targets)

    def channel_stats(self) -> dict[str, dict[str, int]]:
        """Channel mode: per group (named by its producer), ``channels`` and ``alive``."""
        return self.channels.stats() if self.channels else {}

    def export(self) -> nn.Module:
        """A plain copy of the model with the zeros baked in; see :func:`vidsparse.sparse.export`.

        In channel mode the removed channels are also cut out (:func:`vidsparse.sparse.channels.
        shrink`): the copy is physically narrower and gives the same outputs.
        """
        from vidsparse.sparse.export import export

        plain = export(self.model)
        if self.channels:
            plain = shrink(plain, self.channels.groups, self.channels.alive)
        return plain

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Masks, step counter, update bookkeeping and the method's own state.

        No RNG state is needed: every random draw comes from a generator keyed on
        (seed, step, layer), so a resumed run draws what the uninterrupted one would.
        """
        return {
            "step_count": self.step_count,
            "config": asdict(self.config),
            "masks": {t.name: t.mask.detach().cpu().clone() for t in self.targets},
            "ever_active": {t.name: unpack_bits(self._ever_active[t.name], t.param.shape).cpu()
                            for t in self.targets},
            "last_changed": dict(self._last_changed),
            "alive": {n: a.clone() for n, a in self.alive.items()},
            **self.updater.state_dict(),
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore masks and bookkeeping saved by :meth:`state_dict`; checked whole before
        anything changes.

        Both usual resume orders give the uninterrupted run's weights: model weights loaded
        after the engine was built, or before it (the initial mask then zeroed some of them;
        they are put back here, provided no optimizer step came in between).
        """
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
            self.structures[t.name].check(masks[t.name], t.name)
        alive = state.get("alive", {})
        if alive and not self.channels:
            raise ValueError(f"sparsity state has removed channels for {sorted(alive)}, which this "
                             "engine does not treat as channel groups (is channel_sparsity set as "
                             "in the run that saved it?)")
        if self.channels:
            self.channels.check_state(alive)
        for t in self.targets:
            stash = self._stash.get(t.name)
            if stash is not None:
                off = stash[0].to(t.param.device)
                # Only onto the zeros the initial mask left: weights loaded again since then
                # (or copied in by DDP from rank 0) are not overwritten.
                if not bool(t.param.detach()[off].any()):
                    t.param[off] = stash[1].to(device=t.param.device, dtype=t.param.dtype)
            set_mask_(t, masks[t.name])
            ever = state.get("ever_active", {}).get(t.name)
            ever = t.mask if ever is None else ever.to(device=t.mask.device, dtype=torch.bool) | t.mask
            self._ever_active[t.name] = pack_bits(ever)
            self._last_changed[t.name] = float(state.get("last_changed", {}).get(t.name, 0.0))
        self._stash = {}
        self.updater.load_state_dict(state)
        if self.channels:
            self.channels.load_alive(alive)
            self.channels.hold_zero_(self.optimizer)
        self.step_count = int(state["step_count"])
        # Continue counting from here: the optimizer's own hook count restarts at zero.
        self._seen_optimizer_steps = self._optimizer_steps
        self.guard.forget_step()
        self.guard.settled()
        if state.get("config", {}).get("method", self.config.method) != self.config.method:
            warnings.warn(f"loading sparsity state of method {state['config']['method']!r} into "
                          f"an engine running {self.config.method!r}")

    def remove(self) -> None:
        """Detach from the optimizer (the masks stay on the model)."""
        self._hook.remove()


