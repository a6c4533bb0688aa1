"""Temporal corruptions keep T and only ever show earlier (held) frames."""

import numpy as np
import pytest

from vidsparse.corruptions import corrupt, list_corruptions


def _source_index(clip, out):
    """Which source frame each output frame is (the test clip's frames are all distinct)."""
    frames = {frame.tobytes(): t for t, frame in enumerate(clip)}
    return np.array([frames[frame.tobytes()] for frame in out])


# frame_rate shortens the clip and temporal_motion_blur averages frames: test_temporal_suite.py.
@pytest.mark.parametrize("name", sorted(set(list_corruptions("temporal")) - {"frame_rate", "temporal_motion_blur"}))
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_length_is_kept_and_frames_are_copies(clip, name, severity):
    out = corrupt(clip, name, severity, seed=2)
    assert out.shape == clip.shape
    _source_index(clip, out)  # raises KeyError if a frame is not an exact source frame


@pytest.mark.parametrize("pattern", ["random", "uniform"])
@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_frame_drop_holds_the_previous_kept_frame(clip, pattern, severity):
    index = _source_index(clip, corrupt(clip, "frame_drop", severity, seed=5, pattern=pattern))
    assert index[0] == 0
    kept = np.flatnonzero(index == np.arange(len(index)))
    # Every frame shows the latest kept frame at or before it.
    for t, source in enumerate(index):
        assert source == kept[kept <= t].max()


def test_frame_drop_uniform_keeps_yi_et_al_frame_rates():
    # 30 frames at nominal 30 fps re-timed to 20, 16, 12, 9, 6 fps keep that many frames.
    clip = np.arange(30, dtype=np.uint8).reshape(30, 1, 1, 1).repeat(3, axis=-1)
    for severity, fps in zip(range(1, 6), (20, 16, 12, 9, 6)):
        out = corrupt(clip, "frame_drop", severity, pattern="uniform")
        assert len(np.unique(out[:, 0, 0, 0])) == fps


def test_frame_drop_random_rate_follows_severity():
    clip = np.arange(250, dtype=np.uint8).reshape(250, 1, 1, 1).repeat(3, axis=-1)
    kept = [len(np.unique(corrupt(clip, "frame_drop", s, seed=0))) / 250 for s in range(1, 6)]
    for got, fps in zip(kept, (20, 16, 12, 9, 6)):
        assert abs(got - fps / 30) < 0.08
    assert kept == sorted(kept, reverse=True)


@pytest.mark.parametrize("severity,shown", [(1, 5), (2, 2), (3, 1), (4, 1), (5, 1)])
def test_freeze_shows_the_schiappa_fraction_of_frames(clip, severity, shown):
    # T = 12: round(0.4 * 12) = 5, round(0.2 * 12) = 2, then 1 frame.
    index = _source_index(clip, corrupt(clip, "freeze", severity, seed=1))
    assert len(np.unique(index)) == shown
    # Frozen segments are contiguous runs; after the lead-in the shown frame never goes back.
    first = index[0]
    assert (np.diff(index) >= 0).all() and (index[index != first] > first).all()


def test_freeze_severity_5_is_one_still_frame(clip):
    out = corrupt(clip, "freeze", 5, seed=3)
    assert (out == out[:1]).all()
