"""The corruption registry and the one public verb, :func:`corrupt`."""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from vidsparse.corruptions import _ops
from vidsparse.registry import Registry

KINDS = ("spatial", "temporal", "codec")
SEVERITIES = (1, 2, 3, 4, 5)

CORRUPTIONS = Registry("corruption")

# The version of the corruption generators, recorded in corrupt_dataset's manifest: it changes
# whenever the same (video, name, severity, seed, options) may give different frames. 2: random
# patterns are drawn per frame / keyframe from generators keyed on the frame's index, so a
# clip's frames can be corrupted without the rest of the video.
CORRUPTION_VERSION = 2


def register_corruption(name: str, kind: str, frame_local: bool | tuple[str, ...] = False) -> Callable:
    """Register ``fn(video, severity, rng, **options) -> video``.

    ``frame_local``: True when every output frame depends only on its own input frame and its
    own random pattern (drawn with ``_ops.temporal_patterns``), so :func:`corrupt` can take the
    frames of a clip alone (``frames=``); a tuple of ``temporal`` modes when that holds in those
    modes only (a statistic of the whole clip's patterns is frame-local only when there is one
    pattern); False (the default) when the corruption needs the whole video.

    ``video`` is a uint8 ``T x H x W x C`` torch tensor; ``rng`` is a ``numpy.random.Generator``
    seeded from the caller's seed. The function returns a uint8 ``T' x H x W x C`` tensor
    (``T' == T`` unless the corruption is temporal). Options are keyword-only arguments with
    defaults; :func:`corrupt` rejects any other name, listing the accepted ones.
    """
    if kind not in KINDS:
        raise ValueError(f"corruption kind must be one of {KINDS}, got {kind!r}")
    if frame_local and kind != "spatial":
        raise ValueError(f"corruption {name!r}: only spatial corruptions can be frame-local")
    return CORRUPTIONS.register(name, kind=kind, frame_local=frame_local)


def is_frame_local(name: str, options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``corrupt(..., frames=...)`` can corrupt a clip of ``name`` (with ``options``) alone.

    Temporal and codec corruptions, and the spatial ones that use a statistic of the whole
    video (fog's and spatter's maximum, frost's spread of its iid / smooth fields), are not.
    """
    local = CORRUPTIONS.meta(name).get("frame_local", False)
    if isinstance(local, tuple):
        return dict(options or {}).get("temporal", "static") in local
    return bool(local)


def list_corruptions(kind: str | None = None) -> dict[str, str]:
    """``{name: kind}`` for every registered corruption (``kind`` filters)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out = {n: CORRUPTIONS.meta(n)["kind"] for n in CORRUPTIONS.names()}
    return {n: k for n, k in out.items() if kind is None or k == kind}


def corrupt(video: Any, name: str, severity: int = 3, seed: int = 0, *,
            frames: Sequence[int] | None = None, **options: Any):
    """Corrupt a uint8 video clip (``T x H x W x C``) or a batch of clips (``B x T x H x W x C``).

    Returns the same type (numpy array or torch tensor) and dtype; spatial and codec
    corruptions keep the shape, temporal ones may change ``T``. The same (video, name,
    severity, seed) gives the same output. ``options`` are per corruption, e.g.
    ``temporal="iid"`` for a new noise pattern on every frame (default ``"static"``); an
    unknown option raises a ``TypeError`` that lists the accepted ones.

    ``frames``: for a frame-local corruption (:func:`is_frame_local`), ``video`` holds only
    these frames (their indices in the whole video, one per frame of ``video``) and the result
    is exactly those rows of the whole video's result, at the cost of these frames alone.

    Example:
        >>> clip = np.zeros((8, 64, 64, 3), np.uint8)
        >>> vidsparse.corrupt(clip, "fog", severity=3, seed=0).shape
        (8, 64, 64, 3)
    """
    fn = CORRUPTIONS.get(name)
    if severity not in SEVERITIES:
        raise ValueError(f"corrupt({name!r}): severity must be one of {SEVERITIES}, got {severity!r}")
    _check_options(name, fn, options)
    is_numpy = isinstance(video, np.ndarray)
    tensor = torch.from_numpy(np.ascontiguousarray(video)) if is_numpy else video
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"corrupt({name!r}): expected a numpy array or torch tensor, got {type(video)}")
    if tensor.dtype != torch.uint8 or tensor.ndim not in (4, 5) or tensor.shape[-1] not in (1, 3):
        raise ValueError(f"corrupt({name!r}): expected uint8 T x H x W x C (C = 1 or 3) or a batch "
                         f"of them, got {tensor.dtype} {tuple(tensor.shape)}")
    keeps_length = CORRUPTIONS.meta(name)["kind"] != "temporal"
    if frames is not None:
        frames = _check_frames(name, frames, tensor, options)
    if tensor.ndim == 5:
        # Each clip of a batch gets its own stream, derived from (seed, index).
        outs = [_one(fn, clip, severity, [seed, i], options, keeps_length)
                for i, clip in enumerate(tensor)]
        out = torch.stack(outs)
    else:
        token = _ops.CLIP_FRAMES.set(frames)
        try:
            out = _one(fn, tensor, severity, seed, options, keeps_length)
        finally:
            _ops.CLIP_FRAMES.reset(token)
    return out.numpy() if is_numpy else out


def _check_frames(name: str, frames: Sequence[int], tensor: torch.Tensor, options: Mapping[str, Any]) -> np.ndarray:
    """``frames`` as an int64 array, or a ValueError saying why it cannot be used."""
    if not is_frame_local(name, options):
        raise ValueError(f"corrupt({name!r}, frames=...): {name} with options {dict(options)} is not "
                         "frame-local (see is_frame_local); corrupt the whole video instead")
    if tensor.ndim != 4:
        raise ValueError(f"corrupt({name!r}, frames=...): expected one T x H x W x C clip, "
                         f"got a batch {tuple(tensor.shape)}")
    array = np.asarray(frames)
    if array.ndim != 1 or len(array) != tensor.shape[0] or (len(array) and (
            not np.issubdtype(array.dtype, np.integer) or array.min() < 0)):
        raise ValueError(f"corrupt({name!r}, frames=...): expected {tensor.shape[0]} non-negative "
                         f"integer frame indices (one per frame of the clip), got {frames!r}")
    return array.astype(np.int64)


def video_seed(seed: int, corruption: str, severity: int, source: str) -> int:
    """The seed one video of a dataset is corrupted with; ``source`` names it (``"Class/file"``).

    A 64-bit value that depends only on its arguments (``hash()`` is salted per process), so a
    tool that writes corrupted copies and an evaluation that corrupts on the fly, in any
    worker, on any machine, produce the same clip.

    Example:
        >>> video_seed(0, "fog", 3, "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi")
        10838482858409462411
    """
    # surrogateescape: a file name that is not UTF-8 (Python holds its bytes as surrogates)
    # gets a seed too; every UTF-8 name keeps the seed plain .encode() gave it.
    key = f"{seed}\0{corruption}\0{severity}\0{source}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")


@dataclass(frozen=True)
class Corruption:
    """One corruption at one severity, with its options and base seed, for a whole dataset.

    Called with a video and its source name, it corrupts the video with that video's own
    seed (:func:`video_seed`), so it gives the frames ``corrupt_dataset`` writes to disk. The
    dataset classes take one as ``corruption=`` to corrupt on the fly instead of reading
    corrupted copies. The name, severity and options are checked when it is made.

    Example:
        >>> fog = Corruption("fog", severity=3)
        >>> test = UCF101("data/ucf101", split="test", corruption=fog, transform=transform)
    """

    name: str
    severity: int = 3
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_options(self.name, CORRUPTIONS.get(self.name), dict(self.options))
        if self.severity not in SEVERITIES:
            raise ValueError(f"Corruption({self.name!r}): severity must be one of {SEVERITIES}, "
                             f"got {self.severity!r}")

    @property
    def frame_local(self) -> bool:
        """Whether a clip's frames can be corrupted alone (``frames=`` of :meth:`__call__`)."""
        return is_frame_local(self.name, self.options)

    def __call__(self, video: Any, source: str | os.PathLike, frames: Sequence[int] | None = None) -> Any:
        """Corrupt ``video`` (``T x H x W x C`` uint8), the dataset video at path ``source``.

        With ``frames`` (when :attr:`frame_local`), ``video`` holds only those frames of the
        source video and the result equals those frames of the whole video's corruption.
        """
        seed = video_seed(self.seed, self.name, self.severity, source_name(source))
        return corrupt(video, self.name, self.severity, seed=seed, frames=frames, **self.options)


def source_name(path: str | os.PathLike) -> str:
    """``Class/file``: the name a dataset video's corruption seed is keyed on."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


def _check_options(name: str, fn: Callable, options: dict[str, Any]) -> None:
    accepted = [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"corrupt({name!r}): unknown option(s) {', '.join(unknown)}; "
                        f"{name} accepts: {', '.join(accepted) or 'no options'}")


def _one(fn, clip: torch.Tensor, severity: int, seed, options, keeps_length: bool) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    out = fn(clip, severity, rng, **options)
    assert out.dtype == torch.uint8, f"{fn.__name__} returned {out.dtype}"
    kept = 0 if keeps_length else 1  # a temporal corruption may change T, nothing else
    assert out.shape[kept:] == clip.shape[kept:], \
        f"{fn.__name__} returned shape {tuple(out.shape)} for {tuple(clip.shape)}"
    return out
