"""DynamicSparsity: ties a model, its optimizer and a DST algorithm together."""

from __future__ import annotations

import difflib
import fnmatch
import math
import numbers
import weakref
import warnings
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from vidsparse.sparse.channels import (ChannelGroup, channel_scores, channels_to_remove,
                                       find_channel_groups, shrink)
from vidsparse.sparse.config import SparsityConfig
from vidsparse.sparse.distributions import layer_densities
from vidsparse.sparse.layers import FilterFn, PrunableTarget, find_prunable, random_mask, set_mask_
from vidsparse.sparse.schedules import UpdateSchedule
from vidsparse.sparse.updaters import UPDATERS

__all__ = ["DynamicSparsity", "SparsityConfig", "mask_digest", "nm_pattern_holds", "nm_random_mask"]

_PURPOSE_INIT, _PURPOSE_GROW = 0, 1


def _generator(*key: int) -> torch.Generator:
    """A CPU generator keyed on integers, independent of the global RNG and of the rank."""
    seed = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed % 2**63)


def nm_random_mask(shape: torch.Size, n: int, m: int, generator: torch.Generator) -> torch.Tensor:
    """A bool mask of ``shape`` keeping N uniformly random weights of every M consecutive ones
    along the last dimension (which M divides)."""
    groups = torch.rand(math.prod(shape) // m, m, generator=generator)
    mask = torch.zeros(groups.shape, dtype=torch.bool)
    mask.scatter_(1, groups.topk(n, dim=1).indices, True)
    return mask.view(shape)


def nm_pattern_holds(mask: torch.Tensor, n: int, m: int) -> bool:
    """True if every M consecutive entries along the last dimension hold exactly N ones."""
    return mask.shape[-1] % m == 0 and bool((mask.reshape(-1, m).sum(1) == n).all())


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


def select(scores: torch.Tensor, candidates: torch.Tensor, k: int, largest: bool) -> torch.Tensor:
    """Flat indices of the ``k`` lowest (or, with ``largest``, highest) ``scores`` among the
    ``candidates`` (a flat bool tensor); ties at the boundary go to the lower index, and a
    NaN score counts as -inf (a NaN weight is removed first, a NaN gradient grows last).

    The same rule on every device. One ``kthvalue`` over the candidates finds the boundary
    score; on the CPU that is about twice as fast as ``torch.topk`` over the layer and holds
    well under half its memory (topk held 135 MB for r3d_18's largest layer). numpy's
    partition, in place, was slower still on gradients with many exact zeros (dead units).
    """
    scores = scores.detach()
    values = scores[candidates]  # a copy, of the candidates only
    if k >= values.numel():
        return candidates.nonzero().flatten()
    if torch.isnan(values).any():
        scores = scores.nan_to_num(nan=-math.inf, posinf=math.inf, neginf=-math.inf)
        values = scores[candidates]
    position = values.numel() - k if largest else k - 1  # in ascending order
    bound = torch.kthvalue(values, position + 1).values
    del values
    chosen = (((scores > bound) if largest else (scores < bound)) & candidates).nonzero().flatten()
    if chosen.numel() < k:
        ties = ((scores == bound) & candidates).nonzero().flatten()[: k - chosen.numel()]
        chosen = torch.cat([chosen, ties])
    return chosen


_BITS = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """A bool tensor as uint8 bits, 8 per byte (flattened, zero-padded)."""
    flat = mask.reshape(-1)
    flat = torch.cat([flat, flat.new_zeros(-flat.numel() % 8)]).view(-1, 8)
    return (flat.to(torch.uint8) * _BITS.to(flat.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The bool tensor of ``shape`` that :func:`pack_bits` packed."""
    bits = (packed.unsqueeze(1) & _BITS.to(packed.device)) != 0
    return bits.reshape(-1)[: math.prod(shape)].view(shape)


def count_bits(packed: torch.Tensor) -> int:
    return int(((packed.unsqueeze(1) & _BITS.to(packed.device)) != 0).count_nonzero())


class DynamicSparsity:
    """Keeps a model sparse during training and updates its masks by a DST algorithm.

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
        self.initial_density = config.density
        if self.updater.gradual:
            self.initial_density = config.init_density or self.updater.initial_density
            if self.schedule.last_update_step is None:
                raise ValueError(f"{config.method} prunes gradually but no update step falls in "
                                 f"({self.schedule.start_step}, {self.schedule.end_step}) with "
                                 f"update_interval={config.update_interval}")
        self.step_count = 0  # optimizer steps seen by step()
        self._optimizer_steps = 0  # optimizer steps that really ran (hook)
        self._seen_optimizer_steps = 0
        self._hook = None
        self.targets: list[PrunableTarget] = []
        self.target_counts: dict[str, int] = {}  # per layer, the final target
        self._ever_active: dict[str, torch.Tensor] = {}
        self._last_changed: dict[str, float] = {}
        self._overshoot: dict[str, int] = {}  # MEST: weights grown above target, to prune back
        self._prune_back_step: int | None = None
        self.nm_layers: set[str] = set()  # names of the weights held to the N:M pattern
        self.channel_groups: list[ChannelGroup] = []  # channel mode: what can leave whole
        self.alive: dict[str, torch.Tensor] = {}  # producer name -> bool per channel, kept
        self._channel_dims: dict[str, list[tuple[ChannelGroup, int]]] = {}
        self._unmasked_producers: dict[str, tuple[str, ...]] = {}  # group -> producers without a mask
        # Weights the initial mask zeroed in layers that already looked sparse (loaded from a
        # DST checkpoint): put back if sparsity.load_state_dict follows before any step.
        self._stash: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._grad_at_step = None  # (target index, weakref to its .grad, its version) at the last step
        self._weight_versions: list[int] = []
        self._warned_order = False
        if self.updater.sparse:
            self.targets = find_prunable(self.model, filter_fn)
            if not self.targets:
                raise ValueError("DynamicSparsity found no prunable layer (Conv/Linear/attention) "
                                 "in the model" + (" that filter_fn accepts" if filter_fn else ""))
            self._check_patterns(filter_fn is not None)
            self._check_optimizer_holds_targets(self.optimizer)
            self.nm_layers = self._find_nm_layers()
            self._init_channel_groups()
            self.target_counts = self._counts(config.density)
            self._init_masks(self._counts(self.initial_density))
            # DDP would otherwise broadcast every buffer on every forward (DESIGN.md: masks
            # are synchronised only at update steps).
            ignore = set(getattr(self.model, "_ddp_params_and_buffers_to_ignore", []))
            ignore.update(t.mask_full_name for t in self.targets)
            self.model._ddp_params_and_buffers_to_ignore = sorted(ignore)
            self._record_weight_versions()
        self._hook = self.optimizer.register_step_post_hook(self._on_optimizer_step)

    # ------------------------------------------------------------------ setup
    def _check_patterns(self, filtered: bool) -> None:
        """A ``dense_layers`` or ``layer_density`` pattern that matches no prunable layer is
        almost always a typo; without this check the run would silently train those layers
        at the distribution's density."""
        names = [t.name for t in self.targets]
        for option, patterns in (("dense_layers", self.config.dense_layers),
                                 ("layer_density", list(self.config.layer_density))):
            for pattern in patterns:
                if any(fnmatch.fnmatchcase(n, pattern) for n in names):
                    continue
                near = difflib.get_close_matches(pattern, names, n=5, cutoff=0.4)
                module_names = {n.rsplit(".", 1)[0] for n in names}
                hint = ""
                if pattern in module_names or any(fnmatch.fnmatchcase(m, pattern) for m in module_names):
                    hint = f"; patterns match parameter names: try {pattern + '.*'!r}"
                raise ValueError(
                    f"SparsityConfig.{option} pattern {pattern!r} matches no prunable layer"
                    + (" that filter_fn accepts" if filtered else "") + hint
                    + f"; nearest names: {near or names[:5]} ({len(names)} prunable weights, "
                    "names as in model.named_parameters())")

    def _check_optimizer_holds_targets(self, optimizer: torch.optim.Optimizer) -> None:
        """Every masked weight must be one the optimizer steps: the step hook is how the
        engine counts steps, and a weight no optimizer moves cannot be regrown usefully."""
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        outside = [t.name for t in self.targets if id(t.param) not in held]
        if outside:
            raise ValueError(f"DynamicSparsity: {len(outside)} prunable weight(s) are not in the "
                             f"optimizer's param groups (first: {outside[:3]}); build the optimizer "
                             "over model.parameters() before DynamicSparsity, or leave those "
                             "layers out with filter_fn")

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
        self._check_optimizer_holds_targets(inner)
        if self._hook is not None:
            self._hook.remove()
        self.optimizer = inner
        self._optimizer_steps = self._seen_optimizer_steps = 0
        self._hook = self.optimizer.register_step_post_hook(self._on_optimizer_step)
        self._record_weight_versions()

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
        for name in self.nm_layers:
            fixed[name] = cfg.nm[0] / cfg.nm[1]
        return fixed

    def _find_nm_layers(self) -> set[str]:
        """nn.Linear weights that ``config.nm`` applies to: all but those kept dense."""
        if not self.config.nm:
            return set()
        n, m = self.config.nm
        dense = {name for name, density in self._fixed_densities().items() if density >= 1.0}
        layers = set()
        for t in self.targets:
            if t.name in dense or t.param_name != "weight" or not isinstance(t.module, nn.Linear):
                continue
            if t.param.shape[-1] % m:
                raise ValueError(f"SparsityConfig.nm={[n, m]}: layer {t.name} has in_features "
                                 f"{t.param.shape[-1]}, not divisible by M={m}; keep it dense "
                                 f"with dense_layers=[{t.name!r}] or leave it out with filter_fn")
            layers.add(t.name)
        return layers

    def _init_channel_groups(self) -> None:
        """Channel mode: the groups whose producer the engine masks, all channels alive."""
        if not self.config.channel_sparsity:
            return
        names = {t.name for t in self.targets}
        fixed = self._fixed_densities()
        # A group needs one sparse producer; producers outside the targets (a layer left out
        # by filter_fn) have their rows of removed channels held at zero directly.
        self.channel_groups = [g for g in find_channel_groups(self.model, self.config.channel_residual)
                               if any(f"{p}.weight" in names and fixed.get(f"{p}.weight", 0.0) < 1.0
                                      for p in g.producers)]
        self._unmasked_producers = {g.producer: tuple(p for p in g.producers if f"{p}.weight" not in names)
                                    for g in self.channel_groups}
        if not self.channel_groups:
            raise ValueError(f"SparsityConfig.channel_sparsity={self.config.channel_sparsity}: "
                             f"{type(self.model).__name__} has no channel group (a sparse Conv/"
                             "Linear whose output reaches only channel-wise layers and other "
                             "Conv/Linear inputs); see vidsparse.sparse.channels")
        for group in self.channel_groups:
            self.alive[group.producer] = torch.ones(group.channels, dtype=torch.bool)
            for weight, dim in group.weights.items():
                self._channel_dims.setdefault(weight, []).append((group, dim))

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
            generator = _generator(self.config.seed, index, 0, _PURPOSE_INIT)
            if target.name in self.nm_layers:
                mask = nm_random_mask(target.param.shape, *self.config.nm, generator)
            else:
                mask = random_mask(target.param.shape, counts[target.name], generator)
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

    def _record_weight_versions(self) -> None:
        # In-place changes bump a tensor's version counter: how step() tells that something
        # other than the hooked optimizer moved the weights.
        self._weight_versions = [t.param._version for t in self.targets]

    def _on_optimizer_step(self, optimizer, args, kwargs) -> None:
        self._optimizer_steps += 1
        self._stash = {}  # the weights moved on: nothing left to put back
        # Remember one gradient as the optimizer left it; step() checks that it is still the
        # same tensor, unchanged, i.e. that no zero_grad or backward ran in between.
        self._grad_at_step = None
        for index, target in enumerate(self.targets):
            grad = target.param.grad
            if grad is not None:
                self._grad_at_step = (index, weakref.ref(grad), grad._version)
                break

    # ------------------------------------------------------------------ public
    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """``{parameter name: bool mask}`` (the live buffers)."""
        return {t.name: t.mask for t in self.targets}

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
        self._zero_removed_channels_()

    @torch.no_grad()
    def _zero_removed_channels_(self) -> None:
        """Hold the norm scale and shift and the biases of removed channels at zero: the
        channel then carries exact zeros, as the narrower exported model assumes."""
        for group in self.channel_groups:
            alive = self.alive[group.producer]
            if bool(alive.all()):
                continue
            names = [*group.producers, *group.depthwise]
            params = [self.model.get_submodule(n).bias for n in names]
            params += [self.model.get_submodule(n).weight for n in self._unmasked_producers[group.producer]]
            for name in group.norms:
                norm = self.model.get_submodule(name)
                params += [norm.weight, norm.bias]
            for param in params:
                if param is None:
                    continue
                keep = alive.to(param.device).view(-1, *[1] * (param.dim() - 1))
                param.mul_(keep)
                for value in self.optimizer.state.get(param, {}).values():
                    if torch.is_tensor(value) and value.shape == param.shape:
                        value.mul_(keep)

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
            self._check_weights_unmoved()
            return False
        self.step_count += self._optimizer_steps - self._seen_optimizer_steps
        self._seen_optimizer_steps = self._optimizer_steps
        if not self.targets:
            return False
        self._check_order()
        self.apply_masks_(state=False)
        changed = False
        if self._prune_back_step is not None and self.step_count >= self._prune_back_step:
            self.prune_back_()
            changed = True
        if self.updater.dynamic and self.schedule.is_update_step(self.step_count):
            self.update_masks_(self.step_count)
            changed = True
        if changed:
            self._synchronise()
        self._record_weight_versions()
        return changed

    @torch.no_grad()
    def _check_weights_unmoved(self) -> None:
        if [t.param._version for t in self.targets] == self._weight_versions:
            return
        # Changed in place: by an optimizer the hook does not see, or by a load of weights
        # that respect the masks (then nothing is wrong). A pruned weight that is no longer
        # zero tells the two apart.
        for t in self.targets:
            if bool(t.param.detach().masked_select(~t.mask).any()):
                raise RuntimeError(
                    f"DynamicSparsity: pruned weights of {t.name} are no longer zero, but the "
                    "optimizer the engine follows has not stepped since the last "
                    "sparsity.step(): another optimizer is updating the model (rebuilt after "
                    "DynamicSparsity was built?). Call sparsity.attach_optimizer(new_optimizer) "
                    "after rebuilding it; without that, DST stops and pruned weights grow back")
        self._record_weight_versions()

    def _check_order(self) -> None:
        if self._grad_at_step is None or self._warned_order:
            return
        index, ref, version = self._grad_at_step
        grad = self.targets[index].param.grad
        if grad is not None and grad is ref() and grad._version == version:
            return
        self._warned_order = True
        warnings.warn(
            "DynamicSparsity.step() ran after the gradients changed since the last "
            "optimizer.step() (a zero_grad() or a new backward in between). The loop order is "
            "loss.backward(); optimizer.step(); sparsity.step(); optimizer.zero_grad(). "
            "Otherwise pruned weights take an optimizer step before they are zeroed again, so "
            "the forward pass sees them (close to dense training), and RigL-type updates score "
            "regrowth by the wrong gradient. Warned once.", RuntimeWarning, stacklevel=3)

    @torch.no_grad()
    def update_masks_(self, step: int) -> None:
        """One prune-and-regrow round at ``step`` over every layer."""
        if self.updater.needs_grad and all(t.param.grad is None for t in self.targets):
            raise RuntimeError(f"{self.config.method} scores by gradient but no prunable weight has "
                               "a .grad: call sparsity.step() after optimizer.step() and before "
                               "optimizer.zero_grad()")
        if self.updater.needs_grad and not any(bool(t.param.grad.any()) for t in self.targets
                                               if t.param.grad is not None):
            raise RuntimeError(f"{self.config.method} scores by gradient but every gradient of the "
                               f"prunable weights is zero at update step {step} (zero_grad("
                               "set_to_none=False) before sparsity.step()?); the masks were not "
                               "changed. Call sparsity.step() after optimizer.step() and before "
                               "optimizer.zero_grad()")
        fraction = self.schedule.drop_fraction_at(step) if self.updater.regrows else 0.0
        counts = self.target_counts
        if self.updater.gradual:
            counts = self._counts(self.schedule.density_at(step, self.initial_density, self.config.density))
        if self.channel_groups:
            self._remove_channels_(step)
            budget = sum(counts.values())
            counts = self._spread_over_room(counts)
            self._warn_short(budget, sum(counts.values()))
        overshoot = self.updater.overshoot()
        # The soft bound needs room to prune back before training ends.
        prune_back = step + max(1, self.config.update_interval // 2)
        if overshoot and prune_back > self.total_steps:
            overshoot = 0.0
        self._prune_back_step = prune_back if overshoot else None
        jobs = []
        for index, target in enumerate(self.targets):
            active = int(target.mask.count_nonzero())
            allowed = self._allowed(target)
            room = target.param.numel() if allowed is None else int(allowed.count_nonzero())
            goal = min(counts[target.name], room)  # full when removed channels leave less room
            swap = int(fraction * goal)
            extra = min(int(overshoot * goal), room - goal)
            if target.name in self.nm_layers:
                extra = 0  # no room above N per group: MEST's soft bound does not apply
            self._overshoot[target.name] = extra
            # Usually active == goal (swap out, swap in) or active > goal (gradual pruning);
            # a layer that just lost channels has active < goal and grows back to it.
            n_remove = max(active - goal + swap, min(swap, active))
            n_grow = goal - active + n_remove + extra if self.updater.regrows else 0
            generator = _generator(self.config.seed, index, step, _PURPOSE_GROW)
            jobs.append((target, n_remove, n_grow, generator, True, allowed))
        self._run_layers(jobs)

    def _run_layers(self, jobs: list) -> None:
        """``_update_layer`` over ``(target, n_remove, n_grow, generator, ...)`` jobs, one layer
        at a time. A thread pool over layers cut an update of r3d_18 on 2 CPU cores by a
        quarter, but every thread's temporaries added to the peak (by 150 MB), and memory
        is the tighter budget (benchmarks/bench_memory.py)."""
        for job in jobs:
            self._update_layer(*job)

    def _room(self, target: PrunableTarget) -> int:
        """How many weights ``target`` may hold: all but the rows and columns of removed
        channels (the count of :meth:`_allowed`, without building the mask)."""
        per_dim: dict[int, torch.Tensor] = {}
        for group, dim in self._channel_dims.get(target.name, ()):
            alive = self.alive[group.producer]
            per_dim[dim] = alive if dim not in per_dim else per_dim[dim] & alive
        room = target.param.numel()
        for dim, alive in per_dim.items():
            room = room // target.param.shape[dim] * int(alive.count_nonzero())
        return room

    def _spread_over_room(self, counts: dict[str, int]) -> dict[str, int]:
        """Counts that keep the total budget when removed channels leave layers too little
        room: what those layers cannot hold goes to the layers the distribution governs,
        in proportion to their counts (what the distribution itself gives when it caps a
        layer: RigL's ERK makes such layers dense and solves again for the rest), none
        above its room. Only if every such layer is full does the total fall short."""
        rooms = {t.name: self._room(t) for t in self.targets}
        if all(counts[n] <= rooms[n] for n in counts):
            return counts
        fixed = self._fixed_densities()
        free = [t.name for t in self.targets if t.name not in fixed]
        out = {n: min(c, rooms[n]) for n, c in counts.items()}
        budget = sum(counts.values()) - sum(out[n] for n in counts if n not in free)
        open_ = list(free)  # layers that can still take more
        while open_:
            scale = budget / sum(counts[n] for n in open_)
            full = [n for n in open_ if scale * counts[n] >= rooms[n]]
            if not full:
                break
            for n in full:
                out[n] = rooms[n]
                budget -= rooms[n]
                open_.remove(n)
        if not open_:
            return out
        shares = {n: scale * counts[n] for n in open_}
        for n in open_:
            out[n] = int(shares[n])
        # Whole weights: the remainder goes to the largest fractional parts (then module order).
        left = budget - sum(out[n] for n in open_)
        order = sorted(open_, key=lambda n: (-(shares[n] - out[n]), open_.index(n)))
        for n in order[:max(0, left)]:
            out[n] += 1
        return out

    def _warn_short(self, budget: int, held: int) -> None:
        if held >= budget or getattr(self, "_warned_short", False):
            return
        self._warned_short = True
        total = sum(t.param.numel() for t in self.targets)
        warnings.warn(
            f"channel_sparsity={self.config.channel_sparsity}: the channels removed so far leave "
            f"room for {held} of the {budget} weights the density asks for, so the density is "
            f"{held / total:.4f} instead of {budget / total:.4f} at step {self.step_count} (every "
            "layer that could take more is full; lower still if later updates remove more "
            "channels). Lower channel_sparsity (or set channel_residual=false) to keep the "
            "density. Warned once.", RuntimeWarning, stacklevel=4)

    def _allowed(self, target: PrunableTarget) -> torch.Tensor | None:
        """Where ``target`` may hold weights: everywhere (None) but the rows or columns of
        removed channels."""
        allowed = None
        for group, dim in self._channel_dims.get(target.name, ()):
            alive = self.alive[group.producer]
            if bool(alive.all()):
                continue
            shape = [1] * target.param.dim()
            shape[dim] = -1
            keep = alive.to(target.param.device).view(shape).expand(target.param.shape)
            allowed = keep.clone() if allowed is None else allowed & keep
        return allowed

    @torch.no_grad()
    def _remove_channels_(self, step: int) -> None:
        """Channel mode: bring every group to the removed share the cubic schedule sets for
        ``step``, taking out its alive channels of lowest score first."""
        share = 1.0 - self.schedule.density_at(step, 1.0, 1.0 - self.config.channel_sparsity)
        removed_any = False
        for group in self.channel_groups:
            alive = self.alive[group.producer]
            goal = channels_to_remove(group.channels, share, self.config.channel_multiple)
            n = goal - (group.channels - int(alive.count_nonzero()))
            if n <= 0:
                continue
            scores = channel_scores(self.model, group).cpu().masked_fill(~alive, math.inf)
            # A stable sort: ties go to the lower channel index on every rank.
            alive[torch.sort(scores, stable=True).indices[:n]] = False
            removed_any = True
        if not removed_any:
            return
        for target in self.targets:
            allowed = self._allowed(target)
            if allowed is not None:
                target.mask.logical_and_(allowed)
                target.param.mul_(target.mask)
        self._zero_removed_channels_()

    @torch.no_grad()
    def prune_back_(self) -> None:
        """MEST's soft memory bound: remove the weights grown above the target count."""
        self._run_layers([(target, self._overshoot[target.name], 0, None, False)
                          for target in self.targets if self._overshoot.get(target.name, 0)])
        self._overshoot = {}
        self._prune_back_step = None

    def _update_layer(self, target: PrunableTarget, n_remove: int, n_grow: int, generator,
                      record: bool = True, allowed: torch.Tensor | None = None) -> None:
        weight, mask = target.param, target.mask
        numel = weight.numel()
        flat_mask = mask.view(-1)
        before = flat_mask.clone()
        grad = weight.grad
        if grad is None and self.updater.needs_grad:
            grad = torch.zeros_like(weight)  # a layer unused in this step: nothing to prefer
        if n_remove > 0:
            # Remove the n_remove lowest-scoring active weights.
            removal = self.updater.removal_score(weight, grad).reshape(-1).float()
            flat_mask[select(removal, flat_mask, n_remove, largest=False)] = False
            del removal
        grown = None
        room = numel if allowed is None else int(allowed.count_nonzero())
        n_grow = min(n_grow, room - int(flat_mask.count_nonzero()))
        if n_grow > 0:
            # Regrow the n_grow highest-scoring inactive weights (just-dropped ones included).
            growth = self.updater.growth_score(weight, grad, generator).reshape(-1).float()
            if target.name in self.nm_layers:
                grown = self._nm_grow_indices(growth.masked_fill(flat_mask, -math.inf), flat_mask)
            else:
                candidates = ~flat_mask if allowed is None else allowed.reshape(-1) & ~flat_mask
                grown = select(growth, candidates, n_grow, largest=True)
            flat_mask[grown] = True
        flat_weight = weight.data.view(-1)
        if grown is not None:
            flat_weight[grown] = 0.0  # regrown connections start from zero (RigL)
        flat_weight.mul_(flat_mask)
        self._zero_optimizer_state(weight, flat_mask, grown)
        self._ever_active[target.name] |= pack_bits(mask)
        if record:
            new = int((flat_mask & ~before).count_nonzero())
            self._last_changed[target.name] = new / max(int(flat_mask.count_nonzero()), 1)

    def _nm_grow_indices(self, growth: torch.Tensor, flat_mask: torch.Tensor) -> torch.Tensor:
        """Flat indices that refill every group of M to exactly N active weights.

        Removal ran over the whole layer as usual; a group now regrows as many weights as it
        lost, its highest growth scores first (SRigL's constant fan-in rule, Lasby et al. 2023,
        with the group of M in place of the neuron). Active weights score -inf, so they are
        never picked.
        """
        n, m = self.config.nm
        deficit = n - flat_mask.view(-1, m).sum(1)
        # A stable sort keeps ties (equal gradients, zero gradients) in index order on every rank.
        order = torch.sort(growth.view(-1, m), dim=1, descending=True, stable=True).indices
        pick = torch.arange(m, device=growth.device) < deficit[:, None]
        rows = pick.nonzero()[:, 0]
        return rows * m + order[pick]

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
        """See :func:`mask_digest`; one row per prunable layer, in module order."""
        return mask_digest(t.mask for t in self.targets)

    # ------------------------------------------------------------------ reporting, checkpoints
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
        return {g.producer: {"channels": g.channels, "alive": int(self.alive[g.producer].count_nonzero())}
                for g in self.channel_groups}

    def export(self) -> nn.Module:
        """A plain copy of the model with the zeros baked in; see :func:`vidsparse.sparse.export`.

        In channel mode the removed channels are also cut out (:func:`vidsparse.sparse.channels.
        shrink`): the copy is physically narrower and gives the same outputs.
        """
        from vidsparse.sparse.export import export

        plain = export(self.model)
        if self.channel_groups:
            plain = shrink(plain, self.channel_groups, self.alive)
        return plain

    def state_dict(self) -> dict[str, Any]:
        """Masks, step counter and update bookkeeping.

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
            "overshoot": dict(self._overshoot),
            "prune_back_step": self._prune_back_step,
            "alive": {n: a.clone() for n, a in self.alive.items()},
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
            if t.name in self.nm_layers and not nm_pattern_holds(masks[t.name], *self.config.nm):
                raise ValueError(f"mask for {t.name} breaks the {self.config.nm[0]}:"
                                 f"{self.config.nm[1]} pattern that SparsityConfig.nm asks for")
        alive = state.get("alive", {})
        if set(alive) - set(self.alive):
            raise ValueError(f"sparsity state has removed channels for {sorted(set(alive) - set(self.alive))}, "
                             "which this engine does not treat as channel groups (is "
                             "channel_sparsity set as in the run that saved it?)")
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
        self._overshoot = {k: int(v) for k, v in state.get("overshoot", {}).items()}
        self._prune_back_step = state.get("prune_back_step")
        for name, vector in alive.items():
            self.alive[name] = vector.to(torch.bool).cpu().clone()
        self._zero_removed_channels_()
        self.step_count = int(state["step_count"])
        # Continue counting from here: the optimizer's own hook count restarts at zero.
        self._seen_optimizer_steps = self._optimizer_steps
        self._grad_at_step = None
        self._record_weight_versions()
        if state.get("config", {}).get("method", self.config.method) != self.config.method:
            warnings.warn(f"loading sparsity state of method {state['config']['method']!r} into "
                          f"an engine running {self.config.method!r}")

    def remove(self) -> None:
        """Detach from the optimizer (the masks stay on the model)."""
        self._hook.remove()
