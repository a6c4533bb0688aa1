"""Which frames of a video make a clip.

A clip is ``frames_per_clip`` frames taken every ``sampling_rate`` frames, so it spans
``(frames_per_clip - 1) * sampling_rate + 1`` frames of the video. Training takes a clip at a
random start; evaluation takes the centred clip, so it is the same on every run. A video
shorter than the span is looped: indices wrap around to its start.

The functions compute indices; the :class:`ClipSampler` classes wrap them as the one choice a
dataset makes per split (:func:`clip_sampler`): :class:`RandomClip` (train),
:class:`CentredClip` (test) and :class:`MultiViewClips` (test, clips x crops).
"""

from __future__ import annotations

import numpy as np


def clip_span(frames_per_clip: int, sampling_rate: int) -> int:
    """Number of video frames a clip covers, first to last (checks both arguments)."""
    _check_positive(frames_per_clip=frames_per_clip, sampling_rate=sampling_rate)
    return (frames_per_clip - 1) * sampling_rate + 1


def train_clip_indices(
    num_frames: int, frames_per_clip: int, sampling_rate: int, rng: np.random.Generator
) -> list[int]:
    """Frame indices of a clip at a random start (uniform over the starts that fit).

    Example:
        >>> train_clip_indices(32, 8, 2, np.random.default_rng(0))  # start drawn in 0..17
        [15, 17, 19, 21, 23, 25, 27, 29]
    """
    _check_positive(num_frames=num_frames)
    span = clip_span(frames_per_clip, sampling_rate)
    # A looped video has no preferred start, so any of its frames may begin the clip.
    last_start = num_frames - span if num_frames >= span else num_frames - 1
    start = int(rng.integers(0, last_start + 1))
    return _indices(start, num_frames, frames_per_clip, sampling_rate)


def test_clip_indices(num_frames: int, frames_per_clip: int, sampling_rate: int) -> list[int]:
    """Frame indices of the clip centred in the video (deterministic).

    Example:
        >>> test_clip_indices(32, 8, 2)  # span 15, start (32 - 15) // 2 = 8
        [8, 10, 12, 14, 16, 18, 20, 22]
    """
    _check_positive(num_frames=num_frames)
    span = clip_span(frames_per_clip, sampling_rate)
    # Negative for a short video: the clip starts before frame 0, i.e. wraps from the end,
    # so its middle still lands in the middle of the video.
    return _indices((num_frames - span) // 2, num_frames, frames_per_clip, sampling_rate)


# Not a test, despite the name: keeps pytest from collecting it where a test module imports it.
test_clip_indices.__test__ = False


def multi_view_clip_indices(
    num_frames: int, frames_per_clip: int, sampling_rate: int, num_clips: int
) -> list[list[int]]:
    """Frame indices of ``num_clips`` clips evenly spaced in time: multi-view testing.

    The SlowFast / pytorchvideo protocol (e.g. 10 clips per Kinetics video, each scored and
    the scores averaged): clip ``k`` starts at ``k * (num_frames - span) // (num_clips - 1)``,
    so the first clip starts at frame 0 and the last ends at the last frame. One clip is the
    centred clip, exactly :func:`test_clip_indices`.

    A video shorter than a clip's span is looped (indices wrap, as in
    :func:`test_clip_indices`); every start is then equally valid, so the starts are spread
    evenly over one loop, ``num_frames // num_clips`` apart on average, beginning at the
    centred clip's start.

    Example:
        >>> multi_view_clip_indices(32, 4, 2, 3)  # span 7: starts 0, 12, 25
        [[0, 2, 4, 6], [12, 14, 16, 18], [25, 27, 29, 31]]
    """
    _check_positive(num_frames=num_frames, num_clips=num_clips)
    span = clip_span(frames_per_clip, sampling_rate)
    if num_clips == 1:
        return [test_clip_indices(num_frames, frames_per_clip, sampling_rate)]
    if num_frames >= span:
        starts = [k * (num_frames - span) // (num_clips - 1) for k in range(num_clips)]
    else:
        centred = (num_frames - span) // 2
        starts = [centred + k * num_frames // num_clips for k in range(num_clips)]
    return [_indices(start, num_frames, frames_per_clip, sampling_rate) for start in starts]


def _indices(start: int, num_frames: int, frames_per_clip: int, sampling_rate: int) -> list[int]:
    return [(start + k * sampling_rate) % num_frames for k in range(frames_per_clip)]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------- clip samplers

class ClipSampler:
    """Chooses the clips an item is made of: one hook, :meth:`clips`.

    A dataset holds one sampler, chosen once from its split (:func:`clip_sampler`), so every
    item, clean or corrupted on the fly, goes through the same decode -> (corrupt) -> sample
    -> transform path.

    Attributes:
        frames_per_clip: frames in each clip.
        sampling_rate: take every ``sampling_rate``-th frame.
        num_clips: clips per item.
        stacks_views: the item is the clips' views stacked (``V x ...``) rather than one clip.
    """

    num_clips = 1
    stacks_views = False

    def __init__(self, frames_per_clip: int, sampling_rate: int):
        clip_span(frames_per_clip, sampling_rate)  # fail when the dataset is built, not in a worker
        self.frames_per_clip = frames_per_clip
        self.sampling_rate = sampling_rate

    def clips(self, num_frames: int, rng: np.random.Generator) -> list[list[int]]:
        """Frame indices of each clip of a ``num_frames``-frame video; ``rng`` is the item's."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(frames_per_clip={self.frames_per_clip}, "
                f"sampling_rate={self.sampling_rate}, num_clips={self.num_clips})")


class RandomClip(ClipSampler):
    """Training: one clip at a random start (:func:`train_clip_indices`; one draw from ``rng``).

    Example:
        >>> RandomClip(8, 2).clips(32, np.random.default_rng(0))
        [[15, 17, 19, 21, 23, 25, 27, 29]]
    """

    def clips(self, num_frames: int, rng: np.random.Generator) -> list[list[int]]:
        return [train_clip_indices(num_frames, self.frames_per_clip, self.sampling_rate, rng)]


class CentredClip(ClipSampler):
    """Testing: the centred clip (:func:`test_clip_indices`); draws nothing from ``rng``.

    Example:
        >>> CentredClip(8, 2).clips(32, np.random.default_rng(0))
        [[8, 10, 12, 14, 16, 18, 20, 22]]
    """

    def clips(self, num_frames: int, rng: np.random.Generator) -> list[list[int]]:
        return [test_clip_indices(num_frames, self.frames_per_clip, self.sampling_rate)]


class MultiViewClips(ClipSampler):
    """Multi-view testing: ``num_clips`` evenly spaced clips (:func:`multi_view_clip_indices`),
    each later cut into the transform's crops, so an item is ``clips x crops`` views.

    Example:
        >>> MultiViewClips(4, 2, num_clips=3).clips(32, np.random.default_rng(0))
        [[0, 2, 4, 6], [12, 14, 16, 18], [25, 27, 29, 31]]
    """

    stacks_views = True

    def __init__(self, frames_per_clip: int, sampling_rate: int, num_clips: int):
        super().__init__(frames_per_clip, sampling_rate)
        if not isinstance(num_clips, int) or num_clips < 2:
            raise ValueError(f"num_clips must be an int >= 2 for multi-view clips, got "
                             f"{num_clips!r}")
        self.num_clips = num_clips

    def clips(self, num_frames: int, rng: np.random.Generator) -> list[list[int]]:
        return multi_view_clip_indices(num_frames, self.frames_per_clip, self.sampling_rate,
                                       self.num_clips)


def clip_sampler(split: str, frames_per_clip: int, sampling_rate: int,
                 num_clips: int = 1) -> ClipSampler:
    """The sampler of a split: ``"train"`` a random clip (``num_clips`` is ignored: training
    takes one clip per video), any other split the centred clip, or ``num_clips`` > 1
    evenly spaced ones.

    Example:
        >>> clip_sampler("test", 8, 2, num_clips=10)
        MultiViewClips(frames_per_clip=8, sampling_rate=2, num_clips=10)
    """
    clip_span(frames_per_clip, sampling_rate)  # these errors first, as the datasets always did
    if not isinstance(num_clips, int) or num_clips < 1:
        raise ValueError(f"num_clips must be a positive int, got {num_clips!r}")
    if split == "train":
        return RandomClip(frames_per_clip, sampling_rate)
    if num_clips > 1:
        return MultiViewClips(frames_per_clip, sampling_rate, num_clips)
    return CentredClip(frames_per_clip, sampling_rate)
