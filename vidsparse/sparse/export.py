"""Turn a masked model into a plain one: zeros baked into the weights, nothing left behind."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from vidsparse.sparse.layers import MASK_SUFFIX, SparseConv3d, SparseLinear

# Drop-in sparse layer -> the plain layer it extends.
_PLAIN = {SparseConv3d: nn.Conv3d, SparseLinear: nn.Linear}


@torch.no_grad()
def export(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every mask applied and removed.

    Mask buffers are multiplied into their weights and deleted, drop-in sparse layers become
    their plain ``nn`` class, and the DDP ignore list the engine added is dropped, so the
    result loads and runs without vidsparse. Its outputs equal the sparse model's.

    Example:
        >>> plain = vidsparse.sparse.export(model)   # or sparsity.export()
        >>> torch.save(plain.state_dict(), "model.pt")
    """
    plain = copy.deepcopy(model)
    for module in plain.modules():
        for name in [n for n in module._buffers if n.endswith(MASK_SUFFIX)]:
            param = getattr(module, name[: -len(MASK_SUFFIX)], None)
            mask = module._buffers.pop(name)
            if isinstance(param, torch.Tensor):
                param.mul_(mask.to(param.dtype))
        if type(module) in _PLAIN:
            module.__class__ = _PLAIN[type(module)]
            module.__dict__.pop("density", None)
    plain.__dict__.pop("_ddp_params_and_buffers_to_ignore", None)
    return plain
