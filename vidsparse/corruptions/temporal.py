"""Temporal corruptions: which source frame(s) each output frame shows.

Every corruption here is a map from output frames to source frames, computed by an *index
function* ``sources(num_frames, severity, rng, **options)`` from the frame count alone: for
each output frame, the source frame it shows (a held, repeated or reordered frame), or for
``temporal_motion_blur`` the window of source frames it averages. Pixels are never otherwise
modified. With the default options all but ``frame_rate`` keep the length ``T``: a frame that
is lost or frozen is replaced by a held copy of another, as a player does when a stream
stalls, so a model's clip sampler and the dataset's frame counts stay valid. ``frame_rate``
shortens the video to ``T'``, and so does ``length="shorten"`` (sampling, reverse_sampling,
freeze, temporal_motion_blur), the published benchmarks' behaviour (see :mod:`.presets`).

Because the map needs only the frame count, a clip of the corrupted video can be made from the
source frames it reads alone: :func:`source_map` returns the map of one video as a
:class:`SourceMap`, whose :meth:`~SourceMap.needed` names the source frames that output frames
``indices`` read and whose :meth:`~SourceMap.take` makes those output frames from just those
decoded frames, exactly as the whole-video corruption does (same seed, same draws). The
datasets use it to corrupt on the fly without decoding the whole video. Codec corruptions have
no such map: they re-encode the whole stream (:mod:`.codec`); nor has ``frame_rate`` with
``codec="h265"``, which re-encodes the re-timed video as Yi et al. do (:func:`has_source_map`).

Example:
    >>> plan = source_map("frame_rate", num_frames=175, severity=3, seed=0)
    >>> plan.num_frames                     # 12 of 30 fps: ceil(175 * 12 / 30)
    70
    >>> needed = plan.needed([0, 8, 16])    # output frame j is source frame floor(j * 30 / 12)
    >>> needed.tolist()
    [0, 20, 40]
    >>> clip = plan.take(read_frames(path, needed), needed, [0, 8, 16])  # corrupt(video, ...)[[0, 8, 16]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from vidsparse.corruptions import _ops
from vidsparse.corruptions.codec import H265, _roundtrip
from vidsparse.corruptions.registry import SEVERITIES, _check_options, register_corruption
from vidsparse.registry import Registry

# name -> index function ``sources(num_frames, severity, rng, **options) -> int64 array``: one
# source frame per output frame (1-D), or one row of source frames to average (2-D). It takes
# every option of its corruption and checks their values. Two options are not about the map:
# ``rounding`` (how a row's mean is rounded, carried by the SourceMap) and ``codec`` (a codec
# round trip after the map, which then is no frame map: see has_source_map).
INDEX_FUNCTIONS = Registry("temporal corruption")


def index_function(name: str) -> Callable:
    """Register the index function of the temporal corruption ``name`` (see the module doc)."""
    return INDEX_FUNCTIONS.register(name)


# How the mean of a ``temporal_motion_blur`` window becomes a uint8 level (its ``rounding``
# option): "half_up" (ours, exact), or "truncate", the floor that Yi et al.'s
# np.array(mean, dtype=np.uint8) gives (create_mini_kinetics_c.py motion_blur).
ROUNDINGS = ("half_up", "truncate")


@dataclass(frozen=True, eq=False)
class SourceMap:
    """Which source frames make each output frame of one temporal corruption of one video.

    Attributes:
        sources: int64, one entry per output frame: the source frame it shows (1-D), or a row
            of source frames whose mean it is (2-D: ``temporal_motion_blur``).
        rounding: how a row's mean is rounded to a uint8 level, one of :data:`ROUNDINGS`.
    """

    sources: np.ndarray
    rounding: str = "half_up"

    @property
    def num_frames(self) -> int:
        """The corrupted video's frame count ``T'`` (``frame_rate`` and ``length="shorten"``
        make it smaller than ``T``)."""
        return len(self.sources)

    def needed(self, indices: Sequence[int]) -> np.ndarray:
        """The distinct source frames that output frames ``indices`` read, ascending."""
        return np.unique(self.sources[self._check(indices)])

    def take(self, frames: Any, needed: Sequence[int], indices: Sequence[int]) -> Any:
        """Output frames ``indices`` (repeats allowed) made from ``frames``, the decoded source
        frames ``needed`` (ascending, one per frame, as :meth:`needed` gives them; a numpy array
        or torch tensor ``N x H x W x C``, returned as the same type). Equals
        ``corrupt(video, ...)[indices]`` with the same name, severity, seed and options.
        """
        indices = self._check(indices)
        needed = np.asarray(needed, dtype=np.int64)
        wanted = self.sources[indices]
        local = np.searchsorted(needed, wanted)
        if len(frames) != len(needed) or not len(needed) or not np.array_equal(
                needed[np.minimum(local, len(needed) - 1)], wanted):
            raise ValueError(f"SourceMap.take: expected the decoded frames of source frames "
                             f"{self.needed(indices).tolist()} (one each), got {len(frames)} "
                             f"frames for source frames {needed.tolist()}")
        is_numpy = isinstance(frames, np.ndarray)
        out = show(torch.from_numpy(frames) if is_numpy else frames, local, self.rounding)
        return out.numpy() if is_numpy else out

    def _check(self, indices: Sequence[int]) -> np.ndarray:
        array = np.asarray(indices)
        if array.ndim != 1 or not len(array) or not np.issubdtype(array.dtype, np.integer) or (
                array.min() < 0 or array.max() >= self.num_frames):
            raise ValueError(f"expected output frame indices in 0..{self.num_frames - 1} (the "
                             f"corrupted video has {self.num_frames} frames), got {indices!r}")
        return array.astype(np.int64)


def has_source_map(name: str, options: Mapping[str, Any] | None = None) -> bool:
    """Whether corruption ``name`` with ``options`` is a frame map (:func:`source_map` gives it).

    True for every temporal corruption except ``frame_rate`` with a ``codec``: that re-encodes
    the re-timed video, so its frames are no longer copies of source frames and only the
    whole-video corruption gives them. False for spatial and codec corruptions.

    Example:
        >>> has_source_map("frame_rate"), has_source_map("frame_rate", {"codec": "h265"})
        (True, False)
    """
    return name in INDEX_FUNCTIONS and dict(options or {}).get("codec") is None


def source_map(name: str, num_frames: int, severity: int = 3, seed: Any = 0, **options: Any) -> SourceMap:
    """The frame map of temporal corruption ``name`` for a video of ``num_frames`` source frames.

    Draws exactly what ``corrupt(video, name, severity, seed, **options)`` draws, so
    :meth:`SourceMap.take` gives the rows of its result; ``seed`` is that seed (a dataset video's
    is :func:`~vidsparse.corruptions.video_seed`). An unknown name raises a ``KeyError`` listing
    the temporal corruptions; options that make it no frame map (:func:`has_source_map`:
    ``frame_rate`` with a ``codec``) raise a ``ValueError``.

    Example:
        >>> plan = source_map("temporal_motion_blur", 175, severity=3)
        >>> plan.needed([100]).tolist() == list(range(93, 107))   # frames t-7 .. t+6
        True
    """
    fn = INDEX_FUNCTIONS.get(name)
    if severity not in SEVERITIES:
        raise ValueError(f"source_map({name!r}): severity must be one of {SEVERITIES}, got {severity!r}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ValueError(f"source_map({name!r}): num_frames must be a positive int, got {num_frames!r}")
    _check_options(name, fn, options)
    sources = fn(int(num_frames), severity, np.random.default_rng(seed), **options)
    if not has_source_map(name, options):
        raise ValueError(f"source_map({name!r}): with codec={options['codec']!r} the re-timed video "
                         "is re-encoded, so its frames are not source frames and it has no frame "
                         "map; corrupt the whole video instead")
    return SourceMap(np.ascontiguousarray(sources, dtype=np.int64),
                     rounding=options.get("rounding", "half_up"))


def show(frames: torch.Tensor, sources: np.ndarray, rounding: str = "half_up") -> torch.Tensor:
    """Output frame ``j`` is ``frames[sources[j]]``; for a 2-D ``sources``, the mean of the
    frames in row ``j`` in exact integer arithmetic, rounded half up or truncated
    (``rounding``, one of :data:`ROUNDINGS`)."""
    _ops.check_choice("rounding", rounding, ROUNDINGS)
    index = torch.from_numpy(np.ascontiguousarray(sources, dtype=np.int64)).to(frames.device)
    if index.ndim == 1:
        return frames.index_select(0, index)
    width = index.shape[1]
    # Summed column by column into one output-sized buffer (never a copy per window slot), of
    # int16 while a row's sum (at most 255 per frame) fits: half the memory traffic of int32.
    dtype = torch.int16 if 256 * width < 2**15 else torch.int32
    total = frames.index_select(0, index[:, 0]).to(dtype)
    for column in index[:, 1:].T:
        total += frames.index_select(0, column)
    # Integer floor division of the sum equals the floor of Yi et al.'s float64 mean: the sum
    # is exact in float64 and a non-integer mean is at least 1 / width above its floor.
    offset = width // 2 if rounding == "half_up" else 0
    return ((total + offset) // width).to(torch.uint8)


# How long the output is, for the corruptions with a ``length`` option: "keep" (ours: T frames,
# so clip samplers and frame counts stay valid) or "shorten" (the published code's length).
LENGTHS = ("keep", "shorten")

# Yi et al. 2021 ("Benchmarking the robustness of spatial-temporal models against
# corruptions", Mini Kinetics-C "frame_rate"): the video is re-timed to 20, 16, 12, 9 and 6
# fps from Kinetics' nominal 30 fps. We keep the same fraction of frames.
FRAME_RATE_FPS = (20, 16, 12, 9, 6)
FRAME_RATE_SOURCE_FPS = 30
FRAME_DROP_RATE = tuple(1 - fps / FRAME_RATE_SOURCE_FPS for fps in FRAME_RATE_FPS)
DROP_PATTERNS = ("random", "uniform")
# frame_rate's ``codec`` option: None (ours: frames kept, nothing re-encoded) or "h265". Yi et
# al.'s frame_rate writes the re-timed video with FFmpeg's libx265 and no rate option
# (github.com/Newbeeyoung/Video-Corruption-Robustness, create_mini_kinetics_c.py and
# create_mini_ssv2_c.py frame_rate: ``ffmpeg -i src -vcodec libx265 -fps <fps> dst``), so at
# x265's default constant rate factor, 28. codec="h265" re-encodes the re-timed frames at that
# CRF with codec.py's deterministic H.265 settings (preset, GOP, single thread, padding, and
# its fixed encode rate of codec.ENCODE_FPS, not the re-timed rate).
FRAME_RATE_CODECS = (None, "h265")
FRAME_RATE_H265_CRF = 28

# Schiappa et al. 2023 ("Large-scale robustness analysis of video action recognition
# models", "freeze"): the clip shows only k randomly chosen frames, each held until the next,
# with k = 40%, 20%, 10%, 5% of T and a single frame at severity 5. Their code also floors
# severity 4 at 2 frames; we drop that floor so k never grows with severity on short clips.
FREEZE_SHOWN_FRACTION = (0.4, 0.2, 0.1, 0.05, 0.0)
# freeze's ``constants`` option: "vidsparse" (k = max(1, round(f T)) with the fractions above)
# or "ucf101_p", Schiappa et al.'s own count (see freeze_shown).
FREEZE_CONSTANTS = ("vidsparse", "ucf101_p")

# Schiappa et al. 2023, "sampling" / "reverse_sampling": keep every r-th frame, r = 2, 4, 8,
# 16, 32 (reversed for reverse_sampling). Their CVPR code keeps x[:, ::r], ceil(T / r) frames
# (github.com/Maddy12/ActionRecognitionRobustnessEval, core/video_perturb.py sampling and
# reverse_sampling: the repeat_interleave that showed each r times is commented out); that is
# length="shorten". Our default shows each kept frame r times and cuts to T.
SAMPLING_RATE = (2, 4, 8, 16, 32)
# Schiappa et al. 2023, "jumble": frames are shuffled within consecutive segments of
# 64 // 2**s = 32, 16, 8, 4, 2 frames. "box_jumble": the clip is cut into segments of
# (s + 1)**2 = 4, 9, 16, 25, 36 frames whose order is shuffled. Both are frame counts (their
# clips were 4 x 32 = 128 frames).
JUMBLE_SEGMENT = (32, 16, 8, 4, 2)
BOX_JUMBLE_SEGMENT = (4, 9, 16, 25, 36)
# Yi et al. 2021, Mini Kinetics-C "motion_blur" (a temporal blur): frame t is the mean of the
# 2c frames t-c .. t+c-1 with c = 3, 5, 7, 9, 11 (Mini SSv2-C uses 1, 2, 3, 4, 6).
TEMPORAL_BLUR_HALF_WINDOW = (3, 5, 7, 9, 11)


# --------------------------------------------------------------------------- index functions

@index_function("frame_drop")
def frame_drop_sources(num_frames: int, severity: int, rng: np.random.Generator, *,
                       pattern: str = "random") -> np.ndarray:
    """Each frame shows the latest kept frame at or before it (see :func:`frame_drop`)."""
    _ops.check_choice("pattern", pattern, DROP_PATTERNS)
    if pattern == "random":
        keep = rng.random(num_frames) >= FRAME_DROP_RATE[severity - 1]
    else:  # output frame j of the slower video is source frame floor(j * 30 / fps)
        keep = np.zeros(num_frames, dtype=bool)
        kept = np.arange(num_frames) * FRAME_RATE_SOURCE_FPS // FRAME_RATE_FPS[severity - 1]
        keep[kept[kept < num_frames]] = True
    keep[0] = True
    return _hold_last(keep)


def freeze_shown(num_frames: int, severity: int, constants: str = "vidsparse") -> int:
    """How many frames ``freeze`` shows of a ``num_frames``-frame clip (between 1 and T).

    ``constants="ucf101_p"``: Schiappa et al.'s k = int([.4T, .2T, .1T, max(.05T, 2), 1][s-1])
    (github.com/Maddy12/ActionRecognitionRobustnessEval, core/video_perturb.py freeze; int()
    truncates), clamped to [1, T]: their code fails on the 0 frames of a clip under 3 frames
    and on 2 frames of a 1-frame clip.

    Example:
        >>> freeze_shown(12, 2), freeze_shown(12, 2, "ucf101_p")   # round / int of 2.4
        (2, 2)
        >>> freeze_shown(37, 1), freeze_shown(37, 1, "ucf101_p")   # round / int of 14.8
        (15, 14)
    """
    _ops.check_choice("constants", constants, FREEZE_CONSTANTS)
    if constants == "ucf101_p":
        t = num_frames  # the same float products as theirs, so the same truncation
        return min(max(int([.4 * t, .2 * t, .1 * t, max(.05 * t, 2), 1][severity - 1]), 1), t)
    return max(1, round(FREEZE_SHOWN_FRACTION[severity - 1] * num_frames))


@index_function("freeze")
def freeze_sources(num_frames: int, severity: int, rng: np.random.Generator, *,
                   constants: str = "vidsparse", length: str = "keep") -> np.ndarray:
    """Each frame shows the latest of k random anchor frames (see :func:`freeze`)."""
    _ops.check_choice("length", length, LENGTHS)
    shown = freeze_shown(num_frames, severity, constants)
    anchors = np.zeros(num_frames, dtype=bool)
    anchors[rng.choice(num_frames, size=shown, replace=False)] = True
    first = int(np.argmax(anchors))
    anchors[0] = True  # so every frame has an earlier anchor; then point the lead-in at `first`
    index = _hold_last(anchors)
    if length == "shorten":  # Schiappa et al.'s clip starts at the first chosen frame
        return index[first:]
    index[:first] = first
    return index


@index_function("frame_rate")
def frame_rate_sources(num_frames: int, severity: int, rng: np.random.Generator, *,
                       codec: str | None = None) -> np.ndarray:
    """Output frame j is source frame floor(j * 30 / fps), ``ceil(T * fps / 30)`` of them
    (before the ``codec`` round trip, if any: see :func:`has_source_map`)."""
    _ops.check_choice("codec", codec, FRAME_RATE_CODECS)
    fps = FRAME_RATE_FPS[severity - 1]
    kept = -(-num_frames * fps // FRAME_RATE_SOURCE_FPS)
    return np.arange(kept) * FRAME_RATE_SOURCE_FPS // fps


@index_function("sampling")
def sampling_sources(num_frames: int, severity: int, rng: np.random.Generator, *,
                     length: str = "keep") -> np.ndarray:
    """Frame t shows frame t - t mod r; with ``length="shorten"`` frames 0, r, 2r, ... once each."""
    _ops.check_choice("length", length, LENGTHS)
    rate = SAMPLING_RATE[severity - 1]
    if length == "shorten":
        return np.arange(0, num_frames, rate)
    return np.arange(num_frames) // rate * rate


@index_function("reverse_sampling")
def reverse_sampling_sources(num_frames: int, severity: int, rng: np.random.Generator, *,
                             length: str = "keep") -> np.ndarray:
    """:func:`sampling_sources` backwards."""
    return sampling_sources(num_frames, severity, rng, length=length)[::-1].copy()


@index_function("jumble")
def jumble_sources(num_frames: int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation within each segment (redrawn while it is the identity)."""
    seg = min(JUMBLE_SEGMENT[severity - 1], num_frames)
    return _not_identity(lambda: np.concatenate([start + rng.permutation(min(seg, num_frames - start))
                                                 for start in range(0, num_frames, seg)]), num_frames)


@index_function("box_jumble")
def box_jumble_sources(num_frames: int, severity: int, rng: np.random.Generator, *,
                       cap: bool = True) -> np.ndarray:
    """Whole segments in a random order; with ``cap`` segments of at most ceil(T / 4) frames and
    the order redrawn while it is unchanged, without it one shuffle of (s + 1)^2-frame segments."""
    if not isinstance(cap, (bool, np.bool_)):
        raise ValueError(f"cap must be True or False, got {cap!r}")
    seg = BOX_JUMBLE_SEGMENT[severity - 1]
    if cap:
        seg = max(1, min(seg, -(-num_frames // 4)))
    boxes = [np.arange(start, min(start + seg, num_frames)) for start in range(0, num_frames, seg)]

    def draw() -> np.ndarray:
        return np.concatenate([boxes[i] for i in rng.permutation(len(boxes))])

    # Uncapped, Schiappa et al. shuffle once (random.shuffle of the segments, core/video_perturb.py
    # box_jumble): the order may come out unchanged, and a clip of one segment always does.
    return _not_identity(draw, num_frames) if cap else draw()


@index_function("temporal_motion_blur")
def temporal_motion_blur_sources(num_frames: int, severity: int, rng: np.random.Generator, *,
                                 length: str = "keep", rounding: str = "half_up") -> np.ndarray:
    """Row t: source frames t-c .. t+c-1. ``length="keep"``: rows for every t, frames beyond the
    ends clamped to the first / last; ``"shorten"``: rows t = c .. T-c-1 only, or one row of
    all T frames when T <= 2c. ``rounding`` is checked here and applied by :func:`show`."""
    _ops.check_choice("length", length, LENGTHS)
    _ops.check_choice("rounding", rounding, ROUNDINGS)
    c = TEMPORAL_BLUR_HALF_WINDOW[severity - 1]
    if length == "shorten":
        if num_frames <= 2 * c:
            return np.arange(num_frames)[None, :]
        return np.arange(c, num_frames - c)[:, None] + np.arange(-c, c)[None, :]
    window = np.arange(num_frames)[:, None] + np.arange(-c, c)[None, :]
    return window.clip(0, num_frames - 1)


def _hold_last(keep: np.ndarray) -> np.ndarray:
    """For each frame, the index of the most recent kept frame at or before it (keep[0] is True)."""
    return np.maximum.accumulate(np.where(keep, np.arange(len(keep)), 0))


def _not_identity(draw: Callable[[], np.ndarray], t: int) -> np.ndarray:
    """``draw()`` (a permutation of range(t) that is not always the identity) redrawn while it
    is the identity (if t > 1)."""
    order = draw()
    while t > 1 and np.array_equal(order, np.arange(t)):
        order = draw()
    return np.asarray(order, dtype=np.int64)


# --------------------------------------------------------------------------- corruptions
# Each applies its index function to the whole video; the docstrings say what a user sees.

@register_corruption("frame_drop", kind="temporal")
def frame_drop(video, severity, rng, *, pattern="random"):
    """Drops frames and holds the previous one in their place; ``T`` is unchanged.

    ``pattern="random"`` (ours): each frame after the first is lost independently with
    probability 1/3, 7/15, 0.6, 0.7, 0.8 (severities 1-5: the share of frames Yi et al.'s
    frame-rate reduction drops), like frames lost in transmission.
    ``pattern="uniform"``: the kept frames are evenly spaced at the same rate, i.e. Yi et al.'s
    frame-rate reduction to 20/16/12/9/6 of 30 fps, shown at the original frame rate.
    The first frame is always kept: there is nothing earlier to hold.
    """
    return show(video, frame_drop_sources(video.shape[0], severity, rng, pattern=pattern))


@register_corruption("freeze", kind="temporal")
def freeze(video, severity, rng, *, constants="vidsparse", length="keep"):
    """Shows only k random frames of the clip, each frozen until the next (Schiappa et al.).

    ``constants="vidsparse"`` (default): k = max(1, round(f * T)) with f = 0.4, 0.2, 0.1, 0.05
    and k = 1 at severity 5 (the whole clip is one frame). ``constants="ucf101_p"``: Schiappa
    et al.'s k = int(f * T), truncated, at least 2 frames at severity 4, clamped to [1, T].
    ``length="keep"`` (default): frames before the first chosen one show it, so ``T`` is kept.
    ``length="shorten"``: the clip starts at the first chosen frame, as in Schiappa et al.'s
    code (``T' = T - first``).
    """
    return show(video, freeze_sources(video.shape[0], severity, rng, constants=constants, length=length))


@register_corruption("frame_rate", kind="temporal")
def frame_rate(video, severity, rng, *, codec=None):
    """Re-times the clip from 30 fps to 20, 16, 12, 9, 6 fps (Yi et al.): ``T`` SHRINKS.

    Output frame j is source frame floor(j * 30 / fps), for every j that falls inside the
    clip: ``T' = ceil(T * fps / 30)`` frames. ``frame_drop(pattern="uniform")`` keeps ``T``
    by holding frames instead. ``codec="h265"``: the re-timed clip then goes through an H.265
    round trip at CRF 28 (libx265's default), as Yi et al. write it; ``codec=None`` (default)
    keeps the frames exact.
    """
    out = show(video, frame_rate_sources(video.shape[0], severity, rng, codec=codec))
    if codec == "h265":
        out = _roundtrip(out, H265, {"crf": str(FRAME_RATE_H265_CRF)})
    return out


@register_corruption("sampling", kind="temporal")
def sampling(video, severity, rng, *, length="keep"):
    """Every r-th frame, r = 2, 4, 8, 16, 32 (Schiappa et al.).

    ``length="keep"`` (default): each kept frame is held r times, cut to ``T``.
    ``length="shorten"``: each once, ``ceil(T / r)`` frames, as in Schiappa et al.'s code.
    """
    return show(video, sampling_sources(video.shape[0], severity, rng, length=length))


@register_corruption("reverse_sampling", kind="temporal")
def reverse_sampling(video, severity, rng, *, length="keep"):
    """``sampling`` played backwards (Schiappa et al.), with the same ``length`` option."""
    return show(video, reverse_sampling_sources(video.shape[0], severity, rng, length=length))


@register_corruption("jumble", kind="temporal")
def jumble(video, severity, rng):
    """Frames shuffled within segments of 32, 16, 8, 4, 2 frames (Schiappa et al.); ``T`` kept.

    A segment is at most the clip. The shuffle is redrawn if it would leave every frame in place.
    """
    return show(video, jumble_sources(video.shape[0], severity, rng))


@register_corruption("box_jumble", kind="temporal")
def box_jumble(video, severity, rng, *, cap=True):
    """Segments of 4, 9, 16, 25, 36 frames in shuffled order (Schiappa et al.); ``T`` kept.

    ``cap=True`` (default): a segment is at most ceil(T / 4) frames, so even a short clip has
    four segments to reorder, and the order is redrawn if it would be unchanged.
    ``cap=False``: segments of exactly (s + 1)^2 frames, shuffled once, as in Schiappa et al.'s
    code, so a clip of one segment (or an unlucky shuffle) is left as it is.
    """
    return show(video, box_jumble_sources(video.shape[0], severity, rng, cap=cap))


@register_corruption("temporal_motion_blur", kind="temporal")
def temporal_motion_blur(video, severity, rng, *, length="keep", rounding="half_up"):
    """Each frame is the mean of the 2c frames t-c .. t+c-1, c = 3, 5, 7, 9, 11 (Yi et al.).

    ``length="keep"`` (default): frames beyond the clip's ends repeat the first / last frame,
    so ``T`` is kept. ``length="shorten"``: only the frames whose window lies inside the clip,
    t = c .. T-c-1, as in Yi et al.'s code (``T' = T - 2c``); a clip of ``T <= 2c`` frames,
    for which their code returns no frame, gives one frame, the mean of all ``T``.
    ``rounding="half_up"`` (default) rounds the exact mean; ``"truncate"`` floors it, as Yi et
    al.'s uint8 cast does. Distinct from the spatial ``motion_blur`` (a streak within each frame).
    """
    sources = temporal_motion_blur_sources(video.shape[0], severity, rng, length=length, rounding=rounding)
    return show(video, sources, rounding)
