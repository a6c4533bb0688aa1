"""Which parameters are prunable, where their masks live, and drop-in sparse layers.

A mask is a bool buffer registered on the module that owns the weight, named
``<param>_mask`` (``weight_mask``, ``in_proj_weight_mask``). Being a buffer it follows the
module through ``.to()``; it is not persistent, so the model's ``state_dict()`` is the plain
architecture's (masks are saved by ``DynamicSparsity.state_dict()``). The engine looks a mask
up by name every time instead of keeping a reference, because ``.to(device)`` replaces buffer
tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn as nn

from vidsparse.sparse.masks import random_mask

MASK_SUFFIX = "_mask"

# Modules whose ``weight`` is prunable. nn.MultiheadAttention's out_proj is an nn.Linear
# subclass, so it is covered here; its packed input projection is handled separately.
PRUNABLE_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

FilterFn = Callable[[nn.Module, str], bool]


@dataclass(frozen=True)
class PrunableTarget:
    """One prunable parameter: ``module.<param_name>`` with full name ``name``."""

    name: str
    module: nn.Module
    param_name: str

    @property
    def param(self) -> torch.Tensor:
        return getattr(self.module, self.param_name)

    @property
    def mask_name(self) -> str:
        return self.param_name + MASK_SUFFIX

    @property
    def mask(self) -> torch.Tensor:
        return getattr(self.module, self.mask_name)

    @property
    def mask_full_name(self) -> str:
        prefix = self.name[: -len(self.param_name)]
        return prefix + self.mask_name


def _attention_params(module: nn.MultiheadAttention) -> Iterator[str]:
    if module._qkv_same_embed_dim:
        yield "in_proj_weight"
    else:
        yield from ("q_proj_weight", "k_proj_weight", "v_proj_weight")


def find_prunable(model: nn.Module, filter_fn: FilterFn | None = None) -> list[PrunableTarget]:
    """Prunable weights of ``model`` in module order.

    Conv1d/2d/3d (grouped and depthwise included) and Linear weights, and the input
    projection of nn.MultiheadAttention. Never biases, norms or embeddings. ``filter_fn``
    (module, module name) -> bool narrows the selection.
    """
    targets = []
    for module_name, module in model.named_modules():
        if filter_fn is not None and not filter_fn(module, module_name):
            continue
        prefix = f"{module_name}." if module_name else ""
        if isinstance(module, PRUNABLE_MODULES) and isinstance(module.weight, nn.Parameter):
            targets.append(PrunableTarget(prefix + "weight", module, "weight"))
        elif isinstance(module, nn.MultiheadAttention):
            for pname in _attention_params(module):
                targets.append(PrunableTarget(prefix + pname, module, pname))
    return targets


def set_mask_(target: PrunableTarget, mask: torch.Tensor) -> None:
    """Register or overwrite the mask buffer of ``target`` and zero the pruned weights.

    A new mask buffer is not persistent: ``model.state_dict()`` holds only the weights (pruned
    ones as zeros), so it loads into the plain architecture; the masks are saved by
    ``DynamicSparsity.state_dict()``. A state dict of an earlier version that does carry mask
    keys still loads (they are dropped; see :func:`drop_stale_mask_keys`). The drop-in
    layers' own ``weight_mask`` stays persistent: there it is part of the layer.
    """
    param = target.param
    mask = mask.to(device=param.device, dtype=torch.bool)
    if target.mask_name in target.module._buffers:
        target.mask.copy_(mask)
    else:
        target.module.register_buffer(target.mask_name, mask.clone(), persistent=False)
        hooks = target.module._load_state_dict_pre_hooks
        if drop_stale_mask_keys not in hooks.values():
            target.module._register_load_state_dict_pre_hook(drop_stale_mask_keys)
    with torch.no_grad():
        param.mul_(target.mask)


def drop_stale_mask_keys(state_dict, prefix, local_metadata, strict, missing_keys,
                         unexpected_keys, error_msgs) -> None:
    """Load-state-dict pre-hook of a module holding engine masks: drop ``<prefix><param>_mask``
    keys, which state dicts saved before masks became non-persistent carry (the masks are
    restored by ``DynamicSparsity.load_state_dict``, not by the model's)."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix):]
        if "." not in rest and rest.endswith(MASK_SUFFIX):
            del state_dict[key]


class _SparseMixin:
    """Holds a ``weight_mask`` buffer and a target ``density`` that DynamicSparsity honours."""

    def _init_sparse(self, density: float) -> None:
        if not 0.0 < density <= 1.0:
            raise ValueError(f"{type(self).__name__}: density must be in (0, 1], got {density}")
        self.density = float(density)
        n_active = max(1, round(self.density * self.weight.numel()))
        generator = torch.Generator().manual_seed(torch.initial_seed() % 2**63)
        self.register_buffer("weight_mask", random_mask(self.weight.shape, n_active, generator))
        self.apply_mask_()

    @torch.no_grad()
    def apply_mask_(self) -> None:
        """Zero the pruned weights in place (DynamicSparsity does this after every step)."""
        self.weight.mul_(self.weight_mask)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, density={self.density}"


class SparseConv3d(_SparseMixin, nn.Conv3d):
    """``nn.Conv3d`` with a weight mask at ``density``.

    Pruned weights are zero in the weight tensor itself, so the forward pass is the plain
    convolution. On its own the layer is statically sparse after construction; handed to
    :class:`vidsparse.DynamicSparsity` (which finds it like any Conv3d) its mask is
    re-drawn from the engine's seed, kept at this density and updated during training.

    Example:
        >>> conv = vidsparse.sparse.SparseConv3d(64, 128, kernel_size=3, padding=1, density=0.5)
        >>> int(conv.weight_mask.sum()) == conv.weight.numel() // 2
        True
    """

    def __init__(self, *args, density: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_sparse(density)


class SparseLinear(_SparseMixin, nn.Linear):
    """``nn.Linear`` with a weight mask at ``density``; see :class:`SparseConv3d`."""

    def __init__(self, *args, density: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_sparse(density)
