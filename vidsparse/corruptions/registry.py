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

# How far a spatial corruption computed on another device may be from the CPU's, which is the
# reference: every value within DEVICE_TOLERANCE_LEVELS uint8 levels, except at most
# DEVICE_TOLERANCE_FRACTION of the values, where a rounding difference in float32 flips a
# threshold (a drop, flake or streak appears or not) or a quantisation step. The patterns are
# drawn on the host with numpy, so they are the same everywhere; only the float arithmetic on
# the device differs. Checked on the CPU with float64 arithmetic as a stand-in (at most 5e-5
# of the values move by more than a level) and measured on a GPU by benchmarks/bench_gpu.py.
DEVICE_TOLERANCE_LEVELS = 1
DEVICE_TOLERANCE_FRACTION = 1e-3


def register_corruption(name: str, kind: str,
                        frame_local: bool | tuple[str, ...] | Callable[[dict], bool] = False, *,
                        batched: bool = False, cpu_only: bool = False) -> Callable:
    """Register ``fn(video, severity, rng, **options) -> video``.

    ``frame_local``: True when every output frame depends only on its own input frame and its
    own random pattern (drawn with ``_ops.pattern_plans``), so :func:`corrupt` can take the
    frames of a clip alone (``frames=``); a tuple of ``temporal`` modes when that holds in those
    modes only (a statistic of the whole clip's patterns is frame-local only when there is one
    pattern); a function of the options (a dict of the ones given) when it depends on another
    option; False (the default) when the corruption needs the whole video.

    ``video`` is a uint8 ``T x H x W x C`` torch tensor; ``rng`` is a ``numpy.random.Generator``
    seeded from the caller's seed. The function returns a uint8 ``T' x H x W x C`` tensor
    (``T' == T`` unless the corruption is temporal) on the device of ``video``. Options are
    keyword-only arguments with defaults; :func:`corrupt` rejects any other name, listing the
    accepted ones.

    ``batched``: the function takes a batch of clips, a uint8 ``B x T x H x W x C`` tensor, and
    a list of ``B`` generators (one per clip, the ``rng`` each would get alone), and returns
    the ``B`` corrupted clips, each exactly as it would be alone: :func:`corrupt` then gives it
    a whole batch at once instead of one clip at a time. Only spatial corruptions are batched.
    ``cpu_only``: the pixels are computed on the CPU (a CPU-only library, such as a JPEG
    encoder); a clip on another device is copied to the CPU and back.
    """
    if kind not in KINDS:
        raise ValueError(f"corruption kind must be one of {KINDS}, got {kind!r}")
    if frame_local and kind != "spatial":
        raise ValueError(f"corruption {name!r}: only spatial corruptions can be frame-local")
    if batched and kind != "spatial":
        raise ValueError(f"corruption {name!r}: only spatial corruptions can be batched")
    return CORRUPTIONS.register(name, kind=kind, frame_local=frame_local, batched=batched, cpu_only=cpu_only)


def is_frame_local(name: str, options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``corrupt(..., frames=...)`` can corrupt a clip of ``name`` (with ``options``) alone.

    Temporal and codec corruptions, and the spatial ones that use a statistic of the whole
    video (fog's maximum unless ``peak="frame"``, spatter's maximum, frost's spread of its iid /
    smooth fields), are not.
    """
    local = CORRUPTIONS.meta(name).get("frame_local", False)
    if callable(local):
        return bool(local(dict(options or {})))
    if isinstance(local, tuple):
        return dict(options or {}).get("temporal", "static") in local
    return bool(local)


def list_corruptions(kind: str | None = None) -> dict[str, str]:
    """``{name: kind}`` for every registered corruption (``kind`` filters)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out = {n: CORRUPTIONS.meta(n)["kind"] for n in CORRUPTIONS.names()}
    return {n: k for n, k in out.items() if kind is None or k == kind}


def corrupt(video: Any, name: str, severity: int = 3, seed: int | Sequence[int] = 0, *,
            frames: Sequence[int] | Sequence[Sequence[int]] | None = None, preset: str | None = None,
            **options: Any):
    """Corrupt a uint8 video clip (``T x H x W x C``) or a batch of clips (``B x T x H x W x C``).

    Returns the same type (numpy array or torch tensor), dtype and device; spatial and codec
    corruptions keep the shape, temporal ones may change ``T``. The same (video, name,
    severity, seed) gives the same output. ``options`` are per corruption, e.g.
    ``temporal="iid"`` for a new noise pattern on every frame (default ``"static"``); an
    unknown option raises a ``TypeError`` that lists the accepted ones.

    A tensor is corrupted where it is: spatial corruptions run on its device (random patterns
    are drawn on the host with numpy and copied once per call), so a batch on a GPU is
    corrupted on the GPU, in one pass for the whole batch. The CPU result is the reference;
    another device gives the same bytes up to the float rounding of its kernels (see the
    README's corruption section for the tolerance).

    In a batch, clip ``i`` gets its own random stream, derived from ``(seed, i)``; or ``seed``
    is one seed per clip (a sequence of ``B`` ints) and clip ``i`` is corrupted exactly as
    ``corrupt(video[i], name, severity, seed=seed[i])`` (several views of one video share its
    seed: :meth:`Corruption.batch`).

    ``frames``: for a frame-local corruption (:func:`is_frame_local`), ``video`` holds only
    these frames (their indices in the whole video, one per frame of ``video``; for a batch a
    ``B x T`` array, one row per clip) and the result is exactly those rows of the whole
    video's result, at the cost of these frames alone.

    ``preset``: a benchmark preset (``"imagenet_c"``, ``"mini_kinetics_c"``, ``"ucf101_p"``; see
    :mod:`vidsparse.corruptions.presets`) whose options for ``name`` (the published constants
    and behaviour) are used, with ``options`` on top; a corruption the preset lacks is an error.

    Example:
        >>> clip = np.zeros((8, 64, 64, 3), np.uint8)
        >>> vidsparse.corrupt(clip, "fog", severity=3, seed=0).shape
        (8, 64, 64, 3)
    """
    fn = CORRUPTIONS.get(name)
    if severity not in SEVERITIES:
        raise ValueError(f"corrupt({name!r}): severity must be one of {SEVERITIES}, got {severity!r}")
    if preset is not None:
        options = {**preset_options(preset, name), **options}
    _check_options(name, fn, options)
    is_numpy = isinstance(video, np.ndarray)
    tensor = torch.from_numpy(np.ascontiguousarray(video)) if is_numpy else video
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"corrupt({name!r}): expected a numpy array or torch tensor, got {type(video)}")
    if tensor.dtype != torch.uint8 or tensor.ndim not in (4, 5) or tensor.shape[-1] not in (1, 3):
        raise ValueError(f"corrupt({name!r}): expected uint8 T x H x W x C (C = 1 or 3) or a batch "
                         f"of them, got {tensor.dtype} {tuple(tensor.shape)}")
    keeps_length = CORRUPTIONS.meta(name)["kind"] != "temporal"
    seeds = _clip_seeds(name, seed, tensor)
    if frames is not None:
        frames = _check_frames(name, frames, tensor, options)
    if CORRUPTIONS.meta(name).get("batched", False):
        batch = tensor if tensor.ndim == 5 else tensor[None]
        out = _corrupt_batch(fn, batch, severity, seeds, frames, options)
        out = out if tensor.ndim == 5 else out[0]
    elif tensor.ndim == 5:
        out = torch.stack([_one(fn, clip, severity, clip_seed, options, keeps_length,
                                None if frames is None else frames[i: i + 1])
                           for i, (clip, clip_seed) in enumerate(zip(tensor, seeds))])
    else:
        out = _one(fn, tensor, severity, seed, options, keeps_length, frames)
    return out.numpy() if is_numpy else out


# The most values (B T H W C) one call of a batched corruption takes: a larger batch is split
# into groups of clips (a clip larger than this goes alone). On a GPU, the more at once the
# fewer launches: 2^25 takes 16 I3D clips of 8 x 240 x 320 x 3 (29.5 M values) in one call.
# On the CPU, a group whose float copies stay near the caches: a whole batch of four such
# clips at once took contrast 1.7 times as long as clip by clip (one thread), so 2^21 (8 MB of
# float32) keeps one such clip per call, and takes many small ones together. The heaviest
# corruptions (glass blur, elastic transform) add about 18 bytes per value at their peak.
BATCH_ELEMENTS = 1 << 25
CPU_BATCH_ELEMENTS = 1 << 21


def _corrupt_batch(fn, batch: torch.Tensor, severity: int, seeds: list, frames: np.ndarray | None,
                   options) -> torch.Tensor:
    """The clips of ``batch`` corrupted by a batched ``fn``, in groups of at most :data:`BATCH_ELEMENTS` values."""
    if len(batch) == 0:
        return batch.clone()
    budget = CPU_BATCH_ELEMENTS if batch.device.type == "cpu" else BATCH_ELEMENTS
    size = max(1, budget // max(1, batch[0].numel()))
    if len(batch) <= size:
        return _call_batched(fn, batch, severity, seeds, frames, options)
    out = torch.empty_like(batch)
    for start in range(0, len(batch), size):
        group = slice(start, start + size)
        out[group] = _call_batched(fn, batch[group], severity, seeds[group],
                                   None if frames is None else frames[group], options)
    return out


def _call(fn, video: torch.Tensor, severity: int, rng, frames: np.ndarray | None, options) -> torch.Tensor:
    """``fn(video, severity, rng, **options)`` with :data:`_ops.CLIP_FRAMES` set to ``frames``
    (the source indices of the frames ``video`` holds; None: the whole video) for the call."""
    token = _ops.CLIP_FRAMES.set(frames)
    try:
        return fn(video, severity, rng, **options)
    finally:
        _ops.CLIP_FRAMES.reset(token)


def _call_batched(fn, batch: torch.Tensor, severity: int, seeds: list, frames: np.ndarray | None,
                  options) -> torch.Tensor:
    out = _call(fn, batch, severity, [np.random.default_rng(clip_seed) for clip_seed in seeds],
                frames, options)
    assert out.dtype == torch.uint8, f"{fn.__name__} returned {out.dtype}"
    assert out.shape == batch.shape, f"{fn.__name__} returned shape {tuple(out.shape)} for {tuple(batch.shape)}"
    assert out.device == batch.device, f"{fn.__name__} returned a tensor on {out.device} for one on {batch.device}"
    return out


def _clip_seeds(name: str, seed: Any, tensor: torch.Tensor) -> list:
    """The seed of each clip: ``seed`` for one clip; ``[seed, i]`` or ``seed[i]`` in a batch."""
    if tensor.ndim == 4:
        return [seed]
    if isinstance(seed, (int, np.integer)):
        return [[int(seed), i] for i in range(len(tensor))]
    seeds = list(seed) if isinstance(seed, (Sequence, np.ndarray)) else None
    if seeds is None or len(seeds) != len(tensor) or not all(isinstance(s, (int, np.integer)) for s in seeds):
        raise ValueError(f"corrupt({name!r}): seed must be an int or one int per clip of the batch "
                         f"({len(tensor)} clips), got {seed!r}")
    return [int(s) for s in seeds]


def preset_options(preset: str, name: str) -> dict[str, Any]:
    """The options benchmark ``preset`` gives corruption ``name``; a ValueError names the
    preset's corruptions when it lacks ``name`` (or lists the presets when ``preset`` is unknown)."""
    from vidsparse.corruptions.presets import expand_preset  # presets.py is data; no cycle

    try:
        conditions = dict(expand_preset(preset))
    except KeyError as err:  # the registry's message lists the known presets
        raise ValueError(f"preset: {err.args[0]}") from None
    if name not in conditions:
        raise ValueError(f"corrupt({name!r}, preset={preset!r}): {name} is not in the preset; "
                         f"it has: {', '.join(conditions)}")
    return dict(conditions[name])


def _check_frames(name: str, frames: Any, tensor: torch.Tensor, options: Mapping[str, Any]) -> np.ndarray:
    """``frames`` as a ``B x T`` int64 array (``1 x T`` for one clip), or a ValueError saying why not."""
    if not is_frame_local(name, options):
        raise ValueError(f"corrupt({name!r}, frames=...): {name} with options {dict(options)} is not "
                         "frame-local (see is_frame_local); corrupt the whole video instead")
    array = np.asarray(frames)
    if tensor.ndim == 5:
        shape, what = tuple(tensor.shape[:2]), (f"a {tensor.shape[0]} x {tensor.shape[1]} array of non-negative "
                                                "integer frame indices (one row per clip of the batch)")
    else:
        shape, what = (tensor.shape[0],), (f"{tensor.shape[0]} non-negative integer frame indices (one per "
                                           "frame of the clip)")
    if array.shape != shape or (array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0)):
        raise ValueError(f"corrupt({name!r}, frames=...): expected {what}, got {frames!r}")
    return array.astype(np.int64).reshape(-1, tensor.shape[-4])


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

    def source_map(self, num_frames: int, source: str | os.PathLike):
        """For a temporal corruption, which source frames make each frame of the corrupted
        ``num_frames``-frame video at ``source`` (a
        :class:`~vidsparse.corruptions.temporal.SourceMap` drawn with this video's seed), so a
        clip of it can be made from the source frames it reads alone. None for the other
        kinds: spatial ones are corrupted per frame (:attr:`frame_local`) or whole, and codec
        ones re-encode the whole stream, so their clips come from the whole corrupted video;
        None too for temporal options that re-encode (``frame_rate`` with a ``codec``).
        """
        # temporal.py imports this module, so it is imported here
        from vidsparse.corruptions.temporal import has_source_map, source_map

        if not has_source_map(self.name, self.options):
            return None

        seed = video_seed(self.seed, self.name, self.severity, source_name(source))
        return source_map(self.name, num_frames, self.severity, seed, **self.options)

    def __call__(self, video: Any, source: str | os.PathLike, frames: Sequence[int] | None = None) -> Any:
        """Corrupt ``video`` (``T x H x W x C`` uint8), the dataset video at path ``source``.

        With ``frames`` (when :attr:`frame_local`), ``video`` holds only those frames of the
        source video and the result equals those frames of the whole video's corruption.
        """
        seed = video_seed(self.seed, self.name, self.severity, source_name(source))
        return corrupt(video, self.name, self.severity, seed=seed, frames=frames, **self.options)

    def batch(self, clips: Any, sources: Sequence[str | os.PathLike],
              frames: Sequence[Sequence[int]] | None = None) -> Any:
        """Corrupt a batch of clips (``B x T x H x W x C`` uint8), clip ``i`` from the video at ``sources[i]``.

        Clip ``i`` is exactly ``self(clips[i], sources[i], frames[i])``, but the batch is
        corrupted in one pass on its device: on a GPU, an evaluation corrupts its batch there.
        Several clips may come from one video (its views): with ``frames`` (a ``B x T`` array
        of source frame indices, when :attr:`frame_local`) each is those frames of the whole
        video's corruption.

        Example:
            >>> noise = Corruption("gaussian_noise", severity=3)
            >>> out = noise.batch(clips.cuda(), ["a/v1.avi", "a/v1.avi"], frames=[[0, 8], [16, 24]])
        """
        if getattr(clips, "ndim", None) != 5 or len(sources) != len(clips):
            raise ValueError(f"Corruption({self.name!r}).batch: expected B x T x H x W x C clips and B sources, "
                             f"got clips of shape {tuple(getattr(clips, 'shape', ()))} and {len(sources)} sources")
        seeds = [video_seed(self.seed, self.name, self.severity, source_name(s)) for s in sources]
        return corrupt(clips, self.name, self.severity, seed=seeds, frames=frames, **self.options)


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


def _one(fn, clip: torch.Tensor, severity: int, seed, options, keeps_length: bool,
         frames: np.ndarray | None = None) -> torch.Tensor:
    out = _call(fn, clip, severity, np.random.default_rng(seed), frames, options)
    assert out.dtype == torch.uint8, f"{fn.__name__} returned {out.dtype}"
    kept = 0 if keeps_length else 1  # a temporal corruption may change T, nothing else
    assert out.shape[kept:] == clip.shape[kept:], \
        f"{fn.__name__} returned shape {tuple(out.shape)} for {tuple(clip.shape)}"
    return out
