"""Which frames of a video make a clip.

A clip is ``frames_per_clip`` frames taken every ``sampling_rate`` frames, so it spans
``(frames_per_clip - 1) * sampling_rate + 1`` frames of the video. Training takes a clip at a
random start; evaluation takes the centred clip, so it is the same on every run. A video
shorter than the span is looped: indices wrap around to its start.
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
