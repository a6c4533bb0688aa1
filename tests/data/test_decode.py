"""Frame-accurate seeking in read_frames: it must return exactly what a full decode returns."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from vidsparse.data import decode
from vidsparse.data.decode import VideoDecodeError, read_frames, read_video, write_video

NUM_FRAMES = 200

# (file name, encoder options): MPEG-4 Part 2 in AVI as the synthetic dataset writes it;
# H.264 with B-frames and a 12-frame GOP; H.264 with a keyframe every other frame.
FILES = {
    "mpeg4.avi": {"qmin": "3", "qmax": "3"},
    "h264_gop12.mp4": {"g": "12"},
    "h264_gop2.mp4": {"g": "2"},
}

INDEX_SETS = [
    [0, 1, 2, 3],                      # start
    [96, 98, 100, 102, 104],           # middle
    [196, 197, 198, 199],              # end
    [150, 3, 77, 12, 199, 0],          # unsorted, far apart (several seeks)
    [40, 40, 41, 40, 13, 13],          # repeated
    [11, 12, 13, 23, 24, 25],          # across GOP-12 keyframes
]


def moving_ramp(num_frames: int = NUM_FRAMES, height: int = 48, width: int = 64) -> np.ndarray:
    """Smooth drifting colour ramps: motion x264 predicts well, so it uses B-frames."""
    y, x = np.mgrid[0:height, 0:width]
    t = np.arange(num_frames)[:, None, None]
    return np.stack([(x * 4 + t * 3) % 256, (y * 5 + t * 2) % 256, ((x + y) * 2 + t) % 256],
                    axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("decode")
    frames = moving_ramp()
    out = {}
    for name, options in FILES.items():
        path = write_video(root / name, frames, options=options)
        out[name] = (path, read_video(path)[0])
    return out


def count_decoded(monkeypatch) -> list[int]:
    counter = [0]
    original = decode._decode

    def counting(container, stream):
        for frame in original(container, stream):
            counter[0] += 1
            yield frame

    monkeypatch.setattr(decode, "_decode", counting)
    return counter


def test_h264_file_really_has_b_frames(videos):
    with av.open(str(videos["h264_gop12.mp4"][0])) as container:
        pts = [p.pts for p in container.demux(container.streams.video[0]) if p.pts is not None]
    assert pts != sorted(pts), "no reordered frames: the B-frame case is not exercised"


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("indices", INDEX_SETS, ids=lambda i: ",".join(map(str, i)))
def test_read_frames_equals_full_decode(videos, name, indices):
    path, full = videos[name]
    assert full.shape == (NUM_FRAMES, 48, 64, 3)
    np.testing.assert_array_equal(read_frames(path, indices), full[indices])


@pytest.mark.parametrize("name", FILES)
def test_decord_returns_the_same_frames_as_pyav(videos, name):
    # Both link FFmpeg's swscale with the same default YUV->RGB conversion: measured exact.
    pytest.importorskip("decord")
    path, full = videos[name]
    indices = [0, 5, 11, 12, 100, 150, 3, 199]
    np.testing.assert_array_equal(read_frames(path, indices, backend="decord"), full[indices])


@pytest.mark.parametrize("name", FILES)
def test_reading_the_end_decodes_only_the_last_gop(videos, name, monkeypatch):
    counter = count_decoded(monkeypatch)
    read_frames(videos[name][0], [196, 197, 198, 199])
    # At most a GOP (12) before frame 196 plus the 4 wanted, against 200 without seeking.
    assert 4 <= counter[0] <= 16 + 4


def test_far_apart_frames_are_reached_by_separate_seeks(videos, monkeypatch):
    counter = count_decoded(monkeypatch)
    read_frames(videos["h264_gop12.mp4"][0], [2, 199])
    assert counter[0] <= 3 + 16


@pytest.mark.parametrize("name", FILES)
def test_untrusted_timestamps_fall_back_to_a_full_decode(videos, name, monkeypatch):
    # A pts -> index map that is off by a factor of two: the frames do not step by one
    # index, so read_frames must notice and decode from the start instead.
    monkeypatch.setattr(decode, "_frame_timing", lambda stream: (0, Fraction(
        1, 2) / (Fraction(stream.average_rate) * Fraction(stream.time_base))))
    counter = count_decoded(monkeypatch)
    path, full = videos[name]
    np.testing.assert_array_equal(read_frames(path, [150, 151, 40]), full[[150, 151, 40]])
    assert counter[0] > 150


def test_no_timing_decodes_sequentially(videos, monkeypatch):
    monkeypatch.setattr(decode, "_frame_timing", lambda stream: None)
    counter = count_decoded(monkeypatch)
    path, full = videos["h264_gop12.mp4"]
    np.testing.assert_array_equal(read_frames(path, [120, 7]), full[[120, 7]])
    assert counter[0] == 121


@pytest.mark.parametrize("name", FILES)
def test_index_past_the_end_is_an_error(videos, name):
    with pytest.raises(VideoDecodeError, match="no frame 200"):
        read_frames(videos[name][0], [198, 200])


def test_bad_indices_are_rejected(videos):
    path = videos["mpeg4.avi"][0]
    with pytest.raises(ValueError, match="negative"):
        read_frames(path, [3, -1])
    with pytest.raises(ValueError, match="at least one"):
        read_frames(path, [])
