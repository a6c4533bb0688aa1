"""Temporal corruptions: which source frame(s) each output frame shows.

Every corruption here is a map from output frames to source frames, computed by an *index
function* ``sources(num_frames, severity, rng, **options)`` from the frame count alone: for
each output frame, the source frame it shows (a held, repeated or reordered frame), or for
``temporal_motion_blur`` the window of source frames it averages. Pixels are never otherwise
modified. All but ``frame_rate`` keep the length ``T``: a frame that is lost or frozen is
replaced by a held copy of another, as a player does when a stream stalls, so a model's clip
sampler and the dataset's frame counts stay valid. ``frame_rate`` shortens the video to ``T'``.

Because the map needs only the frame count, a clip of the corrupted video can be made from the
source frames it reads alone: :func:`source_map` returns the map of one video as a
:class:`SourceMap`, whose :meth:`~SourceMap.needed` names the source frames that output frames
``indices`` read and whose :meth:`~SourceMap.take` makes those output frames from just those
decoded frames, exactly as the whole-video corruption does (same seed, same draws). The
datasets use it to corrupt on the fly without decoding the whole video. Codec corruptions have
no such map: they re-encode the whole stream (:mod:`.codec`).

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
from typing import Any, Callable, Sequence

import numpy as np
import torch

from vidsparse.corruptions import _ops
from vidsparse.corruptions.registry import SEVERITIES, _check_options, register_corruption
from vidsparse.registry import Registry

# name -> index function ``sources(num_frames, severity, rng, **options) -> int64 array``: one
# source frame per output frame (1-D), or one row of source frames to average (2-D).
INDEX_FUNCTIONS = Registry("temporal corruption")


def index_function(name: str) -> Callable:
    """Register the index function of the temporal corruption ``name`` (see the module doc)."""
    return INDEX_FUNCTIONS.register(name)


@dataclass(frozen=True, eq=False)
class SourceMap:
    """Which source frames make each output frame of one temporal corruption of one video.

    Attributes:
        sources: int64, one entry per output frame: the source frame it shows (1-D), or a row
            of source frames whose mean, rounded half up, it is (2-D: ``temporal_motion_blur``).
    """

    sources: np.ndarray

    @property
    def num_frames(self) -> int:
        """The corrupted video's frame count ``T'`` (``frame_rate`` makes it smaller than ``T``)."""
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
        out = show(torch.from_numpy(frames) if is_numpy else frames, local)
        return out.numpy() if is_numpy else out

    def _check(self, indices: Sequence[int]) -> np.ndarray:
        array = np.asarray(indices)
        if array.ndim != 1 or not len(array) or not np.issubdtype(array.dtype, np.integer) or (
                array.min() < 0 or array.max() >= self.num_frames):
            raise ValueError(f"expected output frame indices in 0..{self.num_frames - 1} (the "
                             f"corrupted video has {self.num_frames} frames), got {indices!r}")
        return array.astype(np.int64)


def source_map(name: str, num_frames: int, severity: int = 3, seed: Any = 0, **options: Any) -> SourceMap:
    """The frame map of temporal corruption ``name`` for a video of ``num_frames`` source frames.

    Draws exactly what ``corrupt(video, name, severity, seed, **options)`` draws, so
    :meth:`SourceMap.take` gives the rows of its result; ``seed`` is that seed (a dataset video's
    is :func:`~vidsparse.corruptions.video_seed`). An unknown name raises a ``KeyError`` listing
    the temporal corruptions.

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
    return SourceMap(np.ascontiguousarray(sources, dtype=np.int64))


def show(frames: torch.Tensor, sources: np.ndarray) -> torch.Tensor:
    """Output frame ``j`` is ``frames[sources[j]]``; for a 2-D ``sources``, the mean of the
    frames in row ``j``, rounded half up, in exact integer arithmetic."""
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
    return ((total + width // 2) // width).to(torch.uint8)


# Yi et al. 2021 ("Benchmarking the robustness of spatial-temporal models against
# corruptions", Mini Kinetics-C "frame_rate"): the video is re-timed to 20, 16, 12, 9 and 6
# fps from Kinetics' nominal 30 fps. We keep the same fraction of frames.
FRAME_RATE_FPS = (20, 16, 12, 9, 6)
FRAME_RATE_SOURCE_FPS = 30
FRAME_DROP_RATE = tuple(1 - fps / FRAME_RATE_SOURCE_FPS for fps in FRAME_RATE_FPS)
DROP_PATTERNS = ("random", "uniform")

# Schiappa et al. 2023 ("Large-scale robustness analysis of video action recognition
# models", "freeze"): the clip shows only k randomly chosen frames, each held until the next,
# with k = 40%, 20%, 10%, 5% of T and a single frame at severity 5. Their code also floors
# severity 4 at 2 frames; we drop that floor so k never grows with severity on short clips.
FREEZE_SHOWN_FRACTION = (0.4, 0.2, 0.1, 0.05, 0.0)

# Schiappa et al. 2023, "sampling" / "reverse_sampling": keep every r-th frame and show each r
# times (reversed for reverse_sampling), r = 2, 4, 8, 16, 32. Their output is ceil(T/r) * r
# frames long; we cut it to T.
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


@index_function("freeze")
def freeze_sources(num_frames: int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Each frame shows the latest of k random anchor frames (see :func:`freeze`)."""
    shown = max(1, round(FREEZE_SHOWN_FRACTION[severity - 1] * num_frames))
    anchors = np.zeros(num_frames, dtype=bool)
    anchors[rng.choice(num_frames, size=shown, replace=False)] = True
    first = int(np.argmax(anchors))
    anchors[0] = True  # so every frame has an earlier anchor; then point the lead-in at `first`
    index = _hold_last(anchors)
    index[:first] = first
    return index


@index_function("frame_rate")
def frame_rate_sources(num_frames: int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Output frame j is source frame floor(j * 30 / fps), ``ceil(T * fps / 30)`` of them."""
    fps = FRAME_RATE_FPS[severity - 1]
    kept = -(-num_frames * fps // FRAME_RATE_SOURCE_FPS)
    return np.arange(kept) * FRAME_RATE_SOURCE_FPS // fps


@index_function("sampling")
def sampling_sources(num_frames: int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Frame t shows frame t - t mod r."""
    rate = SAMPLING_RATE[severity - 1]
    return np.arange(num_frames) // rate * rate


@index_function("reverse_sampling")
def reverse_sampling_sources(num_frames: int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`sampling_sources` backwards."""
    return sampling_sources(num_frames, severity, rng)[::-1].copy()


@index_function("jumble")
def jumble_sources(num_frames: int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation within each segment (redrawn while it is the identity)."""
    seg = min(JUMBLE_SEGMENT[severity - 1], num_frames)
    return _not_identity(lambda: np.concatenate([start + rng.permutation(min(seg, num_frames - start))
                                                 for start in range(0, num_frames, seg)]), num_frames)


@index_function("box_jumble")
def box_jumble_sources(num_frames: int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Whole segments in a random order (redrawn while it is unchanged)."""
    seg = max(1, min(BOX_JUMBLE_SEGMENT[severity - 1], -(-num_frames // 4)))
    boxes = [np.arange(start, min(start + seg, num_frames)) for start in range(0, num_frames, seg)]
    return _not_identity(lambda: np.concatenate([boxes[i] for i in rng.permutation(len(boxes))]),
                         num_frames)


@index_function("temporal_motion_blur")
def temporal_motion_blur_sources(num_frames: int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Row t: source frames t-c .. t+c-1, those beyond the ends clamped to the first / last."""
    c = TEMPORAL_BLUR_HALF_WINDOW[severity - 1]
    window = np.arange(num_frames)[:, None] + np.arange(-c, c)[None, :]
    return window.clip(0, num_frames - 1)


def _hold_last(keep: np.ndarray) -> np.ndarray:
    """For each frame, the index of the most recent kept frame at or before it (keep[0] is True)."""
    return np.maximum.accumulate(np.where(keep, np.arange(len(keep)), 0))


def _not_identity(draw: Callable[[], np.ndarray], t: int) -> np.ndarray:
    """``draw()`` (a permutation of range(t)) redrawn while it is the identity (if t > 1)."""
    order = draw()
    while t > 1 and np.array_equal(order, np.arange(t)):
        order = draw()
    return np.asarray(order, dtype=np.int64)


# --------------------------------------------------------------------------- corruptions
# Each applies its index function to the whole video; the docstrings say what a user sees.

@register_corruption("frame_drop", kind="temporal")
def frame_drop(video, severity, rng, *, pattern="random"):
    """Drops frames and holds the previous one in their place; ``T`` is unchanged.

    ``pattern="random"``: each frame after the first is lost independently with probability
    1/3, 7/15, 0.6, 0.7, 0.8 (severities 1-5), like frames lost in transmission.
    ``pattern="uniform"``: the kept frames are evenly spaced at the same rate, i.e. Yi et al.'s
    frame-rate reduction to 20/16/12/9/6 of 30 fps, shown at the original frame rate.
    The first frame is always kept: there is nothing earlier to hold.
    """
    return show(video, frame_drop_sources(video.shape[0], severity, rng, pattern=pattern))


@register_corruption("freeze", kind="temporal")
def freeze(video, severity, rng):
    """Shows only k random frames of the clip, each frozen until the next; ``T`` is unchanged.

    k = max(1, round(f * T)) with f = 0.4, 0.2, 0.1, 0.05 and k = 1 at severity 5 (the whole
    clip is one frame). Frames before the first chosen one show it, so the length is kept
    (Schiappa et al.'s code shortens the clip instead).
    """
    return show(video, freeze_sources(video.shape[0], severity, rng))


@register_corruption("frame_rate", kind="temporal")
def frame_rate(video, severity, rng):
    """Re-times the clip from 30 fps to 20, 16, 12, 9, 6 fps (Yi et al.): ``T`` SHRINKS.

    Output frame j is source frame floor(j * 30 / fps), for every j that falls inside the
    clip: ``T' = ceil(T * fps / 30)`` frames. ``frame_drop(pattern="uniform")`` keeps ``T``
    by holding frames instead.
    """
    return show(video, frame_rate_sources(video.shape[0], severity, rng))


@register_corruption("sampling", kind="temporal")
def sampling(video, severity, rng):
    """Every r-th frame held r times, r = 2, 4, 8, 16, 32 (Schiappa et al.); ``T`` is kept."""
    return show(video, sampling_sources(video.shape[0], severity, rng))


@register_corruption("reverse_sampling", kind="temporal")
def reverse_sampling(video, severity, rng):
    """``sampling`` played backwards (Schiappa et al.); ``T`` is kept."""
    return show(video, reverse_sampling_sources(video.shape[0], severity, rng))


@register_corruption("jumble", kind="temporal")
def jumble(video, severity, rng):
    """Frames shuffled within segments of 32, 16, 8, 4, 2 frames (Schiappa et al.); ``T`` kept.

    A segment is at most the clip. The shuffle is redrawn if it would leave every frame in place.
    """
    return show(video, jumble_sources(video.shape[0], severity, rng))


@register_corruption("box_jumble", kind="temporal")
def box_jumble(video, severity, rng):
    """Segments of 4, 9, 16, 25, 36 frames in shuffled order (Schiappa et al.); ``T`` kept.

    A segment is at most ceil(T / 4) frames, so even a short clip has four segments to
    reorder; the order is redrawn if it would be unchanged.
    """
    return show(video, box_jumble_sources(video.shape[0], severity, rng))


@register_corruption("temporal_motion_blur", kind="temporal")
def temporal_motion_blur(video, severity, rng):
    """Each frame is the mean of the 2c frames t-c .. t+c-1, c = 3, 5, 7, 9, 11 (Yi et al.).

    Frames beyond the clip's ends repeat the first / last frame, so ``T`` is kept (Yi et al.
    drop the first and last c frames instead). Exact integer mean, rounded half up. Distinct
    from the spatial ``motion_blur`` (a streak within each frame).
    """
    return show(video, temporal_motion_blur_sources(video.shape[0], severity, rng))
