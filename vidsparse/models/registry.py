"""The model registry: ``create_model(name, num_classes=...)`` and ``list_models()``."""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from vidsparse.registry import Registry

MODELS = Registry("model")


def register_model(name: str | None = None, **meta: Any) -> Callable:
    """Register a builder ``fn(num_classes=..., **kwargs) -> nn.Module`` under ``name``."""
    return MODELS.register(name, **meta)


def create_model(name: str, num_classes: int = 400, **kwargs: Any) -> nn.Module:
    """Build a registered video model.

    Example:
        >>> model = vidsparse.create_model("r3d_18", num_classes=101)
        >>> model(torch.randn(2, 3, 16, 112, 112)).shape
        torch.Size([2, 101])

    Models take clips shaped ``B x C x T x H x W``.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"create_model({name!r}): num_classes must be a positive int, "
                         f"got {num_classes!r}")
    return MODELS.get(name)(num_classes=num_classes, **kwargs)


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return MODELS.names()
