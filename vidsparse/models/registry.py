"""The model registry: ``create_model(name, num_classes=...)`` and ``list_models()``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from vidsparse.registry import Registry

MODELS = Registry("model")

# Keys under which training frameworks nest a state dict (pytorchvideo/SlowFast use
# "model_state"; many scripts save {"state_dict": ...} or {"model": ...}).
_NESTED_KEYS = ("model_state", "state_dict", "model")


def register_model(name: str | None = None, **meta: Any) -> Callable:
    """Register a builder ``fn(num_classes=..., **kwargs) -> nn.Module`` under ``name``.

    Meta every builder gives: ``family`` (3d-cnn | transformer), ``input_size`` (the
    published T, H, W), ``head`` (parameter-name prefixes of the classifier, replaced when a
    checkpoint has another class count), ``test_input`` and ``test_kwargs`` (a small clip
    size and the builder arguments that make the model fast enough for CPU tests).
    """
    return MODELS.register(name, **meta)


def create_model(
    name: str, num_classes: int = 400, checkpoint: str | os.PathLike | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered video model; optionally load weights from a local file.

    Models take clips shaped ``B x C x T x H x W``. ``checkpoint`` is a state dict saved by
    torchvision, pytorchvideo or vidsparse (safetensors, or a ``torch.save`` file read with
    ``weights_only=True``, so nothing in it is executed). If its class count differs from
    ``num_classes``, the classifier head is left freshly initialised; every other weight
    must match.

    Example:
        >>> model = vidsparse.create_model("r3d_18", num_classes=101)
        >>> model(torch.randn(2, 3, 16, 112, 112)).shape
        torch.Size([2, 101])
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"create_model({name!r}): num_classes must be a positive int, "
                         f"got {num_classes!r}")
    model = MODELS.get(name)(num_classes=num_classes, **kwargs)
    if checkpoint is not None:
        load_weights_(model, checkpoint, head=MODELS.meta(name).get("head", []))
    return model


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return MODELS.names()


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a safetensors or ``torch.save`` file, without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle.UnpicklingError and friends: refuse, do not execute
            raise ValueError(f"checkpoint {path} is not a plain tensor state dict "
                             f"(weights_only load failed: {exc})") from exc
    for key in _NESTED_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"checkpoint {path} does not hold a state dict of tensors")
    # Weights saved from a DDP- or DataParallel-wrapped model carry a "module." prefix.
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights_(model: nn.Module, path: str | os.PathLike, head: list[str]) -> list[str]:
    """Load ``path`` into ``model``; return the head keys left at their fresh values."""
    state = read_state_dict(path)
    own = model.state_dict()
    in_head = [k for k in own if any(k == p or k.startswith(p + ".") for p in head)]
    replaced = [k for k in in_head if k in state and state[k].shape != own[k].shape]
    for key in replaced:
        del state[key]
    missing = [k for k in own if k not in state and k not in replaced and not k.endswith("_mask")]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise ValueError(f"checkpoint {path} does not fit {type(model).__name__}: "
                         f"missing {missing[:3]}, unexpected {unexpected[:3]}, "
                         f"other shapes outside the head {mismatched[:3]}")
    model.load_state_dict(state, strict=False)
    return replaced
