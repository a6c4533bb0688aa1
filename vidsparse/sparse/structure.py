"""Sparsity structures: the shapes a mask may take (after jaxpruner's sparsity types).

A layer's structure answers, for the engine:

* ``initial_mask`` - the mask a layer starts from, at a given count;
* ``grow`` - which inactive weights regrow, given growth scores ("where may weights grow");
* ``check`` - whether a mask (from a checkpoint) has the structure;
* ``density`` - a density the structure fixes (N:M: N/M), or None.

:class:`Unstructured` is the default; :class:`NM` keeps N of every M consecutive weights.
:class:`ChannelStructure` spans layers: whole output channels leave the model, so it answers
for every layer where weights may live (``allowed``, ``room``) and holds what the removed
channels leave (norm scale and shift, biases) at zero (``hold_zero_``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from vidsparse.sparse.channels import ChannelGroup, channel_scores, channels_to_remove, find_channel_groups
from vidsparse.sparse.masks import nm_pattern_holds, nm_random_mask, random_mask, select

__all__ = ["ChannelStructure", "NM", "Unstructured"]


class Unstructured:
    """Any weight of the layer may be active."""

    density: float | None = None
    overshoot = True  # room above the count for MEST's soft bound

    def initial_mask(self, shape: torch.Size, count: int, generator: torch.Generator) -> torch.Tensor:
        return random_mask(shape, count, generator)

    def grow(self, growth: torch.Tensor, flat_mask: torch.Tensor, n: int,
             allowed: torch.Tensor | None) -> torch.Tensor:
        """Flat indices of the ``n`` inactive (and allowed) weights of highest growth score."""
        candidates = ~flat_mask if allowed is None else allowed.reshape(-1) & ~flat_mask
        return select(growth, candidates, n, largest=True)

    def check(self, mask: torch.Tensor, name: str) -> None:
        """Every mask is unstructured."""


@dataclass(frozen=True)
class NM:
    """Exactly N of every M consecutive weights along the input (last) dimension."""

    n: int
    m: int
    overshoot = False  # no room above N per group: MEST's soft bound does not apply

    @property
    def density(self) -> float:
        return self.n / self.m

    def initial_mask(self, shape, count, generator):
        return nm_random_mask(shape, self.n, self.m, generator)

    def grow(self, growth, flat_mask, n, allowed):
        """Flat indices that refill every group of M to exactly N active weights.

        Removal ran over the whole layer as usual; a group now regrows as many weights as it
        lost, its highest growth scores first (SRigL's constant fan-in rule, Lasby et al.
        2023, with the group of M in place of the neuron).
        """
        growth = growth.masked_fill(flat_mask, -math.inf)  # active weights are never picked
        deficit = self.n - flat_mask.view(-1, self.m).sum(1)
        # A stable sort keeps ties (equal gradients, zero gradients) in index order on every rank.
        order = torch.sort(growth.view(-1, self.m), dim=1, descending=True, stable=True).indices
        pick = torch.arange(self.m, device=growth.device) < deficit[:, None]
        rows = pick.nonzero()[:, 0]
        return rows * self.m + order[pick]

    def check(self, mask, name):
        if not nm_pattern_holds(mask, self.n, self.m):
            raise ValueError(f"mask for {name} breaks the {self.n}:{self.m} pattern that "
                             "SparsityConfig.nm asks for")


class ChannelStructure:
    """Channel mode: channel groups whose channels leave whole during training.

    ``alive`` holds, per group (named by its producer), a bool per channel. A removed
    channel's producer rows and consumer columns may hold no weight (:meth:`allowed`), and
    its norm scale and shift, biases, and the rows of producers the engine does not mask are
    held at zero (:meth:`hold_zero_`), so it carries exact zeros and
    :func:`vidsparse.sparse.shrink` can cut it out.

    Args:
        model: the model (unwrapped).
        groups: the channel groups to drive (each with a masked producer).
        masked: names of the weights the engine masks.
        sparsity: share of each group's channels removed by the end of training.
        multiple: each group keeps a multiple of this many channels.
    """

    def __init__(self, model: nn.Module, groups: list[ChannelGroup], masked: set[str],
                 sparsity: float, multiple: int):
        self.model, self.groups = model, groups
        self.sparsity, self.multiple = sparsity, multiple
        self.alive = {g.producer: torch.ones(g.channels, dtype=torch.bool) for g in groups}
        self._unmasked = {g.producer: tuple(p for p in g.producers if f"{p}.weight" not in masked)
                          for g in groups}
        self._dims: dict[str, list[tuple[ChannelGroup, int]]] = {}
        for group in groups:
            for weight, dim in group.weights.items():
                self._dims.setdefault(weight, []).append((group, dim))

    @classmethod
    def build(cls, model: nn.Module, sparse: set[str], masked: set[str], config) -> "ChannelStructure":
        """The structure for ``config.channel_sparsity`` over the groups with a producer in
        ``sparse`` (masked and not kept dense); an error if the model has none."""
        groups = [g for g in find_channel_groups(model, config.channel_residual)
                  if any(f"{p}.weight" in sparse for p in g.producers)]
        if not groups:
            raise ValueError(f"SparsityConfig.channel_sparsity={config.channel_sparsity}: "
                             f"{type(model).__name__} has no channel group (a sparse Conv/"
                             "Linear whose output reaches only channel-wise layers and other "
                             "Conv/Linear inputs); see vidsparse.sparse.channels")
        return cls(model, groups, masked, config.channel_sparsity, config.channel_multiple)

    # ------------------------------------------------------------------ where weights may live
    def allowed(self, name: str, shape: torch.Size, device: torch.device) -> torch.Tensor | None:
        """Where weight ``name`` may hold weights: everywhere (None) but the rows or columns
        of removed channels."""
        allowed = None
        for group, dim in self._dims.get(name, ()):
            alive = self.alive[group.producer]
            if bool(alive.all()):
                continue
            view = [1] * len(shape)
            view[dim] = -1
            keep = alive.to(device).view(view).expand(shape)
            allowed = keep.clone() if allowed is None else allowed & keep
        return allowed

    def room(self, name: str, shape: torch.Size) -> int:
        """How many weights ``name`` may hold (the count of :meth:`allowed`, without building
        the mask)."""
        per_dim: dict[int, torch.Tensor] = {}
        for group, dim in self._dims.get(name, ()):
            alive = self.alive[group.producer]
            per_dim[dim] = alive if dim not in per_dim else per_dim[dim] & alive
        room = math.prod(shape)
        for dim, alive in per_dim.items():
            room = room // shape[dim] * int(alive.count_nonzero())
        return room

    # ------------------------------------------------------------------ removal
    @torch.no_grad()
    def remove_(self, share: float) -> bool:
        """Bring every group to the removed ``share`` of its channels, alive channels of
        lowest score first; True if any channel went."""
        removed = False
        for group in self.groups:
            alive = self.alive[group.producer]
            goal = channels_to_remove(group.channels, share, self.multiple)
            n = goal - (group.channels - int(alive.count_nonzero()))
            if n <= 0:
                continue
            scores = channel_scores(self.model, group).cpu().masked_fill(~alive, math.inf)
            # A stable sort: ties go to the lower channel index on every rank.
            alive[torch.sort(scores, stable=True).indices[:n]] = False
            removed = True
        return removed

    @torch.no_grad()
    def hold_zero_(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero what removed channels leave outside the masks: norm scale and shift, biases,
        the rows of producers without a mask, and their optimizer state."""
        for group in self.groups:
            alive = self.alive[group.producer]
            if bool(alive.all()):
                continue
            names = [*group.producers, *group.depthwise]
            params = [self.model.get_submodule(n).bias for n in names]
            params += [self.model.get_submodule(n).weight for n in self._unmasked[group.producer]]
            for name in group.norms:
                norm = self.model.get_submodule(name)
                params += [norm.weight, norm.bias]
            for param in params:
                if param is None:
                    continue
                keep = alive.to(param.device).view(-1, *[1] * (param.dim() - 1))
                param.mul_(keep)
                for value in optimizer.state.get(param, {}).values():
                    if torch.is_tensor(value) and value.shape == param.shape:
                        value.mul_(keep)

    # ------------------------------------------------------------------ reporting, state
    def stats(self) -> dict[str, dict[str, int]]:
        """Per group (named by its producer): ``channels`` and ``alive``."""
        return {g.producer: {"channels": g.channels, "alive": int(self.alive[g.producer].count_nonzero())}
                for g in self.groups}

    def check_state(self, alive: dict[str, torch.Tensor]) -> None:
        """Raise if a saved ``alive`` names groups this structure does not drive."""
        extra = sorted(set(alive) - set(self.alive))
        if extra:
            raise ValueError(f"sparsity state has removed channels for {extra}, which this engine "
                             "does not treat as channel groups (is channel_sparsity set as in the "
                             "run that saved it?)")

    def load_alive(self, alive: dict[str, torch.Tensor]) -> None:
        for name, vector in alive.items():
            self.alive[name] = vector.to(torch.bool).cpu().clone()
