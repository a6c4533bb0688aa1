"""The corruption registry and the one public verb, :func:`corrupt`."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from vidsparse.registry import Registry

KINDS = ("spatial", "temporal", "codec")
SEVERITIES = (1, 2, 3, 4, 5)

CORRUPTIONS = Registry("corruption")


def register_corruption(name: str, kind: str) -> Callable:
    """Register ``fn(video, severity, rng, **options) -> video``.

    ``video`` is a uint8 ``T x H x W x C`` torch tensor; ``rng`` is a ``numpy.random.Generator``
    seeded from the caller's seed. The function returns a uint8 ``T' x H x W x C`` tensor
    (``T' == T`` unless the corruption is temporal).
    """
    if kind not in KINDS:
        raise ValueError(f"corruption kind must be one of {KINDS}, got {kind!r}")
    return CORRUPTIONS.register(name, kind=kind)


def list_corruptions(kind: str | None = None) -> dict[str, str]:
    """``{name: kind}`` for every registered corruption (``kind`` filters)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out = {n: CORRUPTIONS.meta(n)["kind"] for n in CORRUPTIONS.names()}
    return {n: k for n, k in out.items() if kind is None or k == kind}


def corrupt(video: Any, name: str, severity: int = 3, seed: int = 0, **options: Any):
    """Corrupt a uint8 video clip (``T x H x W x C``) or a batch of clips (``B x T x H x W x C``).

    Returns the same type (numpy array or torch tensor) and dtype; spatial and codec
    corruptions keep the shape, temporal ones may change ``T``. The same (video, name,
    severity, seed) gives the same output.

    Example:
        >>> clip = np.zeros((8, 64, 64, 3), np.uint8)
        >>> vidsparse.corrupt(clip, "fog", severity=3, seed=0).shape
        (8, 64, 64, 3)
    """
    fn = CORRUPTIONS.get(name)
    if severity not in SEVERITIES:
        raise ValueError(f"corrupt({name!r}): severity must be one of {SEVERITIES}, got {severity!r}")
    is_numpy = isinstance(video, np.ndarray)
    tensor = torch.from_numpy(video) if is_numpy else video
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"corrupt({name!r}): expected a numpy array or torch tensor, got {type(video)}")
    if tensor.dtype != torch.uint8 or tensor.ndim not in (4, 5) or tensor.shape[-1] not in (1, 3):
        raise ValueError(f"corrupt({name!r}): expected uint8 T x H x W x C (C = 1 or 3) or a batch "
                         f"of them, got {tensor.dtype} {tuple(tensor.shape)}")
    if tensor.ndim == 5:
        # Each clip of a batch gets its own stream, derived from (seed, index).
        outs = [_one(fn, clip, severity, [seed, i], options) for i, clip in enumerate(tensor)]
        out = torch.stack(outs)
    else:
        out = _one(fn, tensor, severity, seed, options)
    return out.numpy() if is_numpy else out


def _one(fn, clip: torch.Tensor, severity: int, seed, options) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    out = fn(clip, severity, rng, **options)
    assert out.dtype == torch.uint8, f"{fn.__name__} returned {out.dtype}"
    return out
