import numpy as np
import pytest
import torch

from vidsparse.data.transforms import (
    VideoTransform,
    build_transform,
    center_crop,
    horizontal_flip,
    normalize,
    random_crop,
    short_side_resize,
)


def _constant_clip(value=128, t=8, h=48, w=64):
    return torch.full((t, h, w, 3), value, dtype=torch.uint8)


def test_constant_clip_is_normalised_with_kinetics_statistics():
    out = VideoTransform(crop_size=56, resize=64)(_constant_clip(128))
    assert out.shape == (3, 8, 56, 56) and out.dtype == torch.float32
    # (128 / 255 - mean) / std with torchvision's Kinetics-400 mean and std, by hand:
    expected = [(128 / 255 - 0.43216) / 0.22803,   # 0.30610
                (128 / 255 - 0.394666) / 0.22145,  # 0.48453
                (128 / 255 - 0.37645) / 0.216989]  # 0.57845
    for channel, value in enumerate(expected):
        torch.testing.assert_close(out[channel], torch.full_like(out[channel], value),
                                   atol=1e-5, rtol=0)
    assert abs(expected[0] - 0.30610) < 1e-4


def test_short_side_resize_then_centre_crop_picks_the_middle_columns():
    # Pixel value = column index, so the crop position can be read back from the values.
    columns = torch.arange(64, dtype=torch.uint8).view(1, 1, 64, 1).expand(2, 60, 64, 3)
    identity = VideoTransform(crop_size=56, resize=None, mean=(0, 0, 0), std=(1, 1, 1))
    out = identity(columns.contiguous())
    assert out.shape == (3, 2, 56, 56)
    # left = (64 - 56) // 2 = 4: columns 4..59
    torch.testing.assert_close(out[0, 0, 0] * 255, torch.arange(4, 60, dtype=torch.float32))


def test_resize_sets_the_short_side():
    t = VideoTransform(crop_size=32, resize=40, mean=(0, 0, 0), std=(1, 1, 1))
    resized = short_side_resize(torch.zeros(3, 2, 48, 64), 40)
    assert resized.shape == (3, 2, 40, 53)  # 64 * 40 / 48 = 53.3
    assert t(_constant_clip()).shape == (3, 8, 32, 32)


def test_random_crop_is_seeded_and_varies():
    clip = torch.randint(0, 256, (2, 48, 64, 3), dtype=torch.uint8)
    t = VideoTransform(crop_size=32, resize=None, train=True)

    def crop(seed):
        return t(clip, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(crop(1), crop(1))
    assert any(not torch.equal(crop(0), crop(s)) for s in range(1, 5))


def test_hflip_is_off_by_default_and_flips_when_asked():
    clip = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    full = dict(crop_size=32, resize=None)
    reference = VideoTransform(**full)(clip)
    no_flip = VideoTransform(train=True, **full)
    assert all(torch.equal(no_flip(clip, torch.Generator().manual_seed(s)), reference)
               for s in range(8))
    flip = VideoTransform(train=True, hflip=True, **full)
    outs = [flip(clip, torch.Generator().manual_seed(s)) for s in range(8)]
    assert any(torch.equal(o, reference.flip(-1)) for o in outs)
    assert any(torch.equal(o, reference) for o in outs)


def test_numpy_input_is_accepted():
    out = VideoTransform()(np.full((4, 64, 80, 3), 7, dtype=np.uint8))
    assert out.shape == (3, 4, 56, 56)


def test_crop_larger_than_resized_frame_is_an_error():
    with pytest.raises(ValueError, match="crop_size 56 is larger than the resized short side 48"):
        VideoTransform(crop_size=56, resize=48)
    with pytest.raises(ValueError, match="larger than the resized frame 48x64"):
        VideoTransform(crop_size=56, resize=None)(_constant_clip(h=48, w=64))


def test_non_uint8_input_is_an_error():
    with pytest.raises(ValueError, match="uint8"):
        VideoTransform()(torch.zeros(8, 64, 64, 3))


def test_build_transform_reads_keys_and_defaults():
    t = build_transform({"root": "x", "crop_size": 32, "resize": 40, "hflip": True,
                         "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}, train=True)
    assert (t.crop_size, t.resize, t.train, t.hflip) == (32, 40, True, True)
    torch.testing.assert_close(t.mean.flatten(), torch.full((3,), 0.5))
    d = build_transform({}, train=False)
    assert (d.crop_size, d.resize, d.train, d.hflip) == (56, 64, False, False)


def test_functional_transforms_on_float_cthw():
    x = torch.arange(2 * 4 * 6, dtype=torch.float32).view(1, 2, 4, 6).repeat(3, 1, 1, 1)  # C T H W
    assert torch.equal(center_crop(x, 2), x[..., 1:3, 2:4])
    assert torch.equal(horizontal_flip(x)[..., 0], x[..., 5])
    cropped = random_crop(x, 3, torch.Generator().manual_seed(0))
    assert cropped.shape == (3, 2, 3, 3) and torch.equal(cropped[:, 0], cropped[:, 1] - 24)
    out = normalize(torch.ones(3, 1, 1, 1), mean=(0.5, 0.0, 1.0), std=(0.5, 2.0, 1.0))
    assert out.flatten().tolist() == [1.0, 0.5, 0.0]
    constant = torch.full((3, 2, 48, 64), 0.25)
    assert torch.allclose(short_side_resize(constant, 24), torch.full((3, 2, 24, 32), 0.25))
