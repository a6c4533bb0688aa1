"""Multi-view testing: evenly spaced temporal clips and SlowFast's 3-crop, plus train flips."""

from __future__ import annotations

import pytest
import torch

from vidsparse.data.clips import multi_view_clip_indices, test_clip_indices
from vidsparse.data.transforms import VideoTransform

IDENTITY = {"mean": (0, 0, 0), "std": (1, 1, 1)}


@pytest.mark.parametrize("num_frames, fpc, rate, clips, expected", [
    # span 7, last start 25: starts 0, 25 * 1 // 2 = 12, 25
    (32, 4, 2, 3, [[0, 2, 4, 6], [12, 14, 16, 18], [25, 27, 29, 31]]),
    # span 15, last start 85: starts 0, 28, 56, 85
    (100, 8, 2, 4, [list(range(s, s + 15, 2)) for s in (0, 28, 56, 85)]),
    # exactly one clip fits: every view is the same clip
    (8, 8, 1, 3, [list(range(8))] * 3),
    # short video (10 < span 15), looped: centred start -3 -> 7, then -3 + 10 // 2 = 2
    (10, 8, 2, 2, [[7, 9, 1, 3, 5, 7, 9, 1], [2, 4, 6, 8, 0, 2, 4, 6]]),
    # short video, 3 views over one 6-frame loop: starts -1, 1, 3 (centred -1 -> 5)
    (6, 4, 2, 3, [[5, 1, 3, 5], [1, 3, 5, 1], [3, 5, 1, 3]]),
])
def test_multi_view_clips_are_evenly_spaced(num_frames, fpc, rate, clips, expected):
    assert multi_view_clip_indices(num_frames, fpc, rate, clips) == expected


@pytest.mark.parametrize("num_frames", [1, 5, 10, 15, 32, 301])
def test_one_view_is_the_test_clip(num_frames):
    assert multi_view_clip_indices(num_frames, 8, 2, 1) == [test_clip_indices(num_frames, 8, 2)]


def test_ten_views_span_the_whole_video():
    views = multi_view_clip_indices(250, 16, 4, 10)  # span 61, last start 189
    assert [v[0] for v in views] == [k * 189 // 9 for k in range(10)]
    assert views[0][0] == 0 and views[-1][-1] == 249


@pytest.mark.parametrize("bad", [{"num_clips": 0}, {"num_frames": 0}, {"sampling_rate": 0}])
def test_multi_view_rejects_non_positive_arguments(bad):
    args = {"num_frames": 32, "frames_per_clip": 8, "sampling_rate": 2, "num_clips": 3} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        multi_view_clip_indices(**args)


def ramp_clip(height: int, width: int, frames: int = 2) -> torch.Tensor:
    """Channel 0 = column, channel 1 = row, channel 2 = frame: positions readable from values."""
    rows = torch.arange(height).view(1, height, 1).expand(frames, height, width)
    cols = torch.arange(width).view(1, 1, width).expand(frames, height, width)
    times = torch.arange(frames).view(frames, 1, 1).expand(frames, height, width)
    return torch.stack([cols, rows, times], dim=-1).to(torch.uint8).contiguous()


def crop_origin(crop: torch.Tensor) -> tuple[int, int]:
    """(top, left) of a C x T x H x W crop of a ramp clip, read from its first pixel."""
    pixel = (crop[:, 0, 0, 0] * 255).round().int()
    return int(pixel[1]), int(pixel[0])


def test_three_crops_of_a_landscape_frame_are_left_centre_right():
    t = VideoTransform(crop_size=40, resize=None, num_crops=3, **IDENTITY)
    out = t(ramp_clip(48, 100, frames=3))
    assert out.shape == (3, 3, 3, 40, 40)
    # top (48 - 40) // 2 = 4; left 0, (100 - 40) // 2 = 30, 100 - 40 = 60
    assert [crop_origin(c) for c in out] == [(4, 0), (4, 30), (4, 60)]
    torch.testing.assert_close(out[2, 0, 1, 0] * 255, torch.arange(60, 100).float())
    torch.testing.assert_close(out[1, 2, :, 0, 0] * 255, torch.tensor([0.0, 1.0, 2.0]))


def test_three_crops_of_a_portrait_frame_are_top_centre_bottom():
    t = VideoTransform(crop_size=30, resize=None, num_crops=3, **IDENTITY)
    out = t(ramp_clip(90, 36))
    # left (36 - 30) // 2 = 3; top 0, (90 - 30) // 2 = 30, 90 - 30 = 60
    assert [crop_origin(c) for c in out] == [(0, 3), (30, 3), (60, 3)]


def test_three_crops_after_short_side_resize_cover_the_short_side():
    # 48 x 64 -> short side 32 -> 32 x 43 (64 * 32 / 48 = 42.7); crops of 32: left 0, 5, 11
    t = VideoTransform(crop_size=32, resize=32, num_crops=3, **IDENTITY)
    assert t.crop_offsets(32, 43) == [(0, 0), (0, 5), (0, 11)]
    out = t(ramp_clip(48, 64))
    assert out.shape == (3, 3, 2, 32, 32)
    # The right crop ends at the frame's right edge: the resized last column is near 63.
    assert float(out[2, 0, 0, 0, -1]) * 255 > 61 and float(out[0, 0, 0, 0, 0]) * 255 < 2


def test_centre_view_of_three_crops_equals_the_single_crop():
    clip = ramp_clip(48, 64, frames=4)
    one = VideoTransform(crop_size=40, resize=44)(clip)
    three = VideoTransform(crop_size=40, resize=44, num_crops=3)(clip)
    assert one.shape == (3, 4, 40, 40)
    torch.testing.assert_close(three[1], one, rtol=0, atol=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_crops": 2}, "num_crops must be one of"),
    ({"num_crops": 3, "train": True}, "for evaluation"),
])
def test_bad_num_crops_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VideoTransform(crop_size=32, resize=32, **kwargs)


def test_train_hflip_mirrors_the_same_random_crop():
    clip = ramp_clip(48, 64)
    flipped_seen = plain_seen = 0
    for seed in range(16):
        kwargs = dict(crop_size=32, resize=None, train=True, **IDENTITY)
        plain = VideoTransform(**kwargs)(clip, torch.Generator().manual_seed(seed))
        maybe = VideoTransform(hflip=True, **kwargs)(clip, torch.Generator().manual_seed(seed))
        assert maybe.shape == plain.shape == (3, 2, 32, 32)
        if torch.equal(maybe, plain):
            plain_seen += 1
        else:
            torch.testing.assert_close(maybe, plain.flip(-1), rtol=0, atol=0)
            # Column values run right to left in a flipped crop.
            assert maybe[0, 0, 0, 0] > maybe[0, 0, 0, -1]
            flipped_seen += 1
    assert flipped_seen >= 3 and plain_seen >= 3
