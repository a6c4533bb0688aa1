"""h264_crf: a real libx264 round trip, any frame size, same bytes every time."""

import numpy as np
import pytest

from vidsparse.corruptions import codec, corrupt


@pytest.mark.parametrize("size", [(33, 47), (31, 48), (32, 49)])
def test_odd_frame_sizes_round_trip(clip, size):
    h, w = size
    odd = np.ascontiguousarray(np.pad(clip, ((0, 0), (0, 2), (0, 2), (0, 0)), mode="edge")[:, :h, :w])
    out = corrupt(odd, "h264_crf", severity=1)
    assert out.shape == odd.shape
    # CRF 23 on a smooth clip stays close to the source, including the last row and column.
    assert np.abs(out.astype(float) - odd).mean() < 6
    assert np.abs(out[:, -1].astype(float) - odd[:, -1]).mean() < 12
    assert np.abs(out[:, :, -1].astype(float) - odd[:, :, -1]).mean() < 12


def test_repeated_runs_give_identical_frames(clip):
    runs = [corrupt(clip, "h264_crf", severity=4) for _ in range(5)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])


def test_higher_crf_loses_more(clip):
    errors = [np.abs(corrupt(clip, "h264_crf", s).astype(float) - clip).mean() for s in (1, 3, 5)]
    assert errors[0] < errors[1] < errors[2]


def test_encoder_settings_are_pinned():
    assert codec.H264_CRF == (23, 30, 37, 44, 51)  # Yi et al. 2021
    assert (codec.H264_PRESET, codec.H264_GOP, codec.PIX_FMT) == ("medium", 250, "yuv420p")
    assert codec.ENCODER_THREADS == 1
