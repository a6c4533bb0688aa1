"""frame_rate, sampling, reverse_sampling, jumble, box_jumble, temporal_motion_blur.

The clip's frame k is filled with the value k, so each output frame's value says which source
frame (or which mean of frames) it shows.
"""

import numpy as np
import pytest

from vidsparse.corruptions import corrupt, list_corruptions, temporal

T = 12


def shown(out: np.ndarray) -> list[int]:
    """The value of each output frame (each frame must be flat)."""
    assert (out == out[:, :1, :1, :1]).all()
    return out[:, 0, 0, 0].tolist()


@pytest.fixture
def counter() -> np.ndarray:
    return np.broadcast_to(np.arange(T, dtype=np.uint8)[:, None, None, None], (T, 4, 6, 3)).copy()


NEW = ("frame_rate", "sampling", "reverse_sampling", "jumble", "box_jumble", "temporal_motion_blur")


def test_registered_as_temporal():
    kinds = list_corruptions()
    assert all(kinds[name] == "temporal" for name in NEW)


@pytest.mark.parametrize("severity, frames", [
    (1, [0, 1, 3, 4, 6, 7, 9, 10]),  # 20 fps: floor(j * 30 / 20)
    (2, [0, 1, 3, 5, 7, 9, 11]),     # 16 fps
    (3, [0, 2, 5, 7, 10]),           # 12 fps
    (4, [0, 3, 6, 10]),              # 9 fps
    (5, [0, 5, 10]),                 # 6 fps
])
def test_frame_rate_keeps_yi_et_al_frames_and_shortens_the_clip(counter, severity, frames):
    assert temporal.FRAME_RATE_FPS == (20, 16, 12, 9, 6)
    out = corrupt(counter, "frame_rate", severity)
    assert out.shape == (len(frames), *counter.shape[1:])
    assert shown(out) == frames


@pytest.mark.parametrize("severity, frames", [
    (1, [0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10]),
    (2, [0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8]),
    (3, [0] * 8 + [8] * 4),
    (4, [0] * 12),  # r = 16 > T: one frame
    (5, [0] * 12),
])
def test_sampling_and_reverse_sampling(counter, severity, frames):
    assert temporal.SAMPLING_RATE == (2, 4, 8, 16, 32)
    assert shown(corrupt(counter, "sampling", severity)) == frames
    assert shown(corrupt(counter, "reverse_sampling", severity)) == frames[::-1]


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_jumble_shuffles_only_within_segments(counter, severity, seed):
    out = shown(corrupt(counter, "jumble", severity, seed=seed))
    seg = min((32, 16, 8, 4, 2)[severity - 1], T)
    assert out != list(range(T))
    for start in range(0, T, seg):  # each segment holds exactly its own frames
        assert sorted(out[start:start + seg]) == list(range(start, min(start + seg, T)))


@pytest.mark.parametrize("severity, seg", [(1, 3), (2, 3), (3, 3), (4, 3), (5, 3)])  # min((s+1)^2, ceil(T/4))
@pytest.mark.parametrize("seed", [0, 1])
def test_box_jumble_moves_whole_segments(counter, severity, seg, seed):
    out = shown(corrupt(counter, "box_jumble", severity, seed=seed))
    assert out != list(range(T)) and sorted(out) == list(range(T))
    boxes = [out[i:i + seg] for i in range(0, T, seg)]
    for box in boxes:  # each box is an intact run of consecutive frames from a multiple of seg
        assert box[0] % seg == 0 and box == list(range(box[0], box[0] + seg))


def test_temporal_motion_blur_averages_yi_et_al_windows(counter):
    assert temporal.TEMPORAL_BLUR_HALF_WINDOW == (3, 5, 7, 9, 11)
    # c = 3: frame t = mean of frames t-3 .. t+2 (ends repeated), rounded half up.
    # t = 0: (0+0+0+0+1+2)/6 = 0.5 -> 1; t = 10: (7+8+9+10+11+11)/6 = 9.33 -> 9.
    assert shown(corrupt(counter, "temporal_motion_blur", 1)) == [1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10]
    # c = 11: a 22-frame window covers the whole clip; t = 0 sees 11 x frame 0, frames 0..10.
    assert shown(corrupt(counter, "temporal_motion_blur", 5))[0] == round(sum(range(11)) / 22 + 1e-9)


def test_temporal_motion_blur_keeps_still_clips_and_length(counter):
    still = np.full_like(counter, 200)
    np.testing.assert_array_equal(corrupt(still, "temporal_motion_blur", 5), still)
    assert corrupt(counter, "temporal_motion_blur", 3).shape == counter.shape
