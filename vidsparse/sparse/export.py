"""Turn a masked model into a plain one: zeros baked into the weights, nothing left behind;
or, for 2:4 masks on an Ampere-or-newer GPU, into one whose Linear layers run the 2:4
semi-structured sparse kernels."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from vidsparse.sparse.layers import MASK_SUFFIX, SparseConv3d, SparseLinear, drop_stale_mask_keys

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
            module._non_persistent_buffers_set.discard(name)
            if isinstance(param, torch.Tensor):
                param.mul_(mask.to(param.dtype))
        for key, hook in list(module._load_state_dict_pre_hooks.items()):
            if hook is drop_stale_mask_keys:
                del module._load_state_dict_pre_hooks[key]
        if type(module) in _PLAIN:
            module.__class__ = _PLAIN[type(module)]
            module.__dict__.pop("density", None)
    plain.__dict__.pop("_ddp_params_and_buffers_to_ignore", None)
    return plain


# PyTorch's 2:4 kernels (cuSPARSELt / CUTLASS) take these dtypes with a 2:4 pattern; float32
# goes through TF32 kernels that need 1:2, which a 2:4 mask does not give.
_SEMI_STRUCTURED_DTYPES = (torch.float16, torch.bfloat16)
_SEMI_STRUCTURED_MIN_CAPABILITY = (8, 0)  # sparse tensor cores arrived with Ampere


def semi_structured_available(device: torch.device | str = "cuda") -> bool:
    """True if ``device`` is a CUDA GPU of compute capability >= 8.0 (2:4 sparse kernels)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability(device) >= _SEMI_STRUCTURED_MIN_CAPABILITY


@torch.no_grad()
def export_semi_structured(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """Like :func:`export`, and every ``nn.Linear`` whose mask keeps at most 2 of every 4
    consecutive weights along the input dimension (2:4, as ``nm=[2, 4]`` trains) gets its weight stored
    as ``torch.sparse.to_sparse_semi_structured`` (inference only: no gradient).

    Train with ``SparsityConfig(nm=[2, 4])``, then move the model to a GPU of compute
    capability >= 8.0 and cast it to float16 or bfloat16. Only plain ``nn.Linear`` modules are
    converted (nn.MultiheadAttention calls its out_proj weight itself, so that one stays a
    dense tensor with zeros), and only where the weight's shape meets the kernel's minimum
    (rows and columns multiples of 16 for cuSPARSELt float16, of 32 and 64 for CUTLASS);
    the rest stay dense
    with their zeros, so the outputs equal :func:`export`'s up to the kernels' rounding.

    Returns:
        ``(model, converted)``: the exported copy and the names of the converted Linear modules.

    Raises:
        RuntimeError: no GPU of capability >= 8.0, a 2:4 layer not on one, or not in
            float16/bfloat16. Use :func:`export` for a plain model anywhere.
        ValueError: no Linear layer holds a 2:4 mask.

    Example:
        >>> model = model.cuda().half()
        >>> fast, converted = vidsparse.sparse.export_semi_structured(model.eval())
    """
    linears = [name for name, module in model.named_modules()
               if type(module) is nn.Linear and _holds_2_4(getattr(module, "weight_mask", None))]
    if not linears:
        raise ValueError("no nn.Linear layer holds a 2:4 mask: train with "
                         "SparsityConfig(nm=[2, 4]) first")
    plain = export(model)
    converted = []
    for name in linears:
        module = plain.get_submodule(name)
        weight = module.weight
        if not semi_structured_available(weight.device):
            raise RuntimeError(f"2:4 semi-structured export needs a CUDA GPU of compute capability "
                               f">= 8.0 holding the model; {name}.weight is on {weight.device} "
                               f"(use vidsparse.sparse.export for a plain model)")
        if weight.dtype not in _SEMI_STRUCTURED_DTYPES:
            raise RuntimeError(f"2:4 semi-structured export needs float16 or bfloat16 weights; "
                               f"{name}.weight is {weight.dtype}: call model.half() first")
        if not _shape_supported(weight):
            continue
        sparse = torch.sparse.to_sparse_semi_structured(weight.detach().contiguous())
        module.weight = nn.Parameter(sparse, requires_grad=False)
        converted.append(name)
    return plain, converted


def _holds_2_4(mask: torch.Tensor | None) -> bool:
    if mask is None or mask.dim() != 2 or mask.shape[-1] % 4:
        return False
    return bool((mask.reshape(-1, 4).sum(1) <= 2).all())  # 2:4, or sparser (1:4)


def _shape_supported(weight: torch.Tensor) -> bool:
    """Whether the 2:4 backend torch picks accepts this weight's shape (it raises otherwise)."""
    # The same choice to_sparse_semi_structured makes.
    backend = (torch.sparse.SparseSemiStructuredTensorCUTLASS
               if torch.sparse.SparseSemiStructuredTensor._FORCE_CUTLASS
               else torch.sparse.SparseSemiStructuredTensorCUSPARSELT)
    limits = backend._DTYPE_SHAPE_CONSTRAINTS[weight.dtype]
    rows, cols = weight.shape
    return rows % limits.sparse_min_rows == 0 and cols % limits.sparse_min_cols == 0 \
        and rows >= limits.sparse_min_rows and cols >= limits.sparse_min_cols
