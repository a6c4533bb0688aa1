"""Spatial corruptions: temporal consistency, severity order, and hand-computed values."""

import inspect

import numpy as np
import pytest

from vidsparse.corruptions import CORRUPTIONS, corrupt, list_corruptions
from vidsparse.corruptions import _ops

# Every corruption that draws a random pattern offers the temporal="static" | "iid" choice.
PATTERNED = sorted(n for n in list_corruptions("spatial")
                   if "temporal" in inspect.signature(CORRUPTIONS.get(n)).parameters)


def test_patterned_corruptions_include_noise_fog_and_motion_blur():
    assert {"gaussian_noise", "shot_noise", "impulse_noise", "fog", "motion_blur"} <= set(PATTERNED)


def _residuals(static_clip, name, temporal):
    out = corrupt(static_clip, name, severity=4, seed=0, temporal=temporal)
    return out.astype(np.int16) - static_clip


@pytest.mark.parametrize("name", PATTERNED)
def test_static_pattern_is_the_same_on_every_frame(static_clip, name):
    residual = _residuals(static_clip, name, "static")
    assert residual.any()
    for frame in residual[1:]:
        np.testing.assert_array_equal(frame, residual[0])


@pytest.mark.parametrize("name", PATTERNED)
def test_iid_pattern_changes_from_frame_to_frame(static_clip, name):
    residual = _residuals(static_clip, name, "iid")
    assert len({frame.tobytes() for frame in residual}) > 1


def test_static_is_the_default(clip):
    np.testing.assert_array_equal(corrupt(clip, "fog", 2, seed=4),
                                  corrupt(clip, "fog", 2, seed=4, temporal="static"))


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "contrast",
                                  "brightness", "fog"])
def test_error_grows_with_severity(clip, name):
    errors = [np.abs(corrupt(clip, name, s, seed=0).astype(float) - clip).mean() for s in range(1, 6)]
    assert all(a < b for a, b in zip(errors, errors[1:])), errors


def test_contrast_by_hand():
    # One frame, one channel: half the pixels 0, half 200 -> mean 100; severity 1 keeps 0.4 of
    # the deviation: 100 -/+ 40.
    frame = np.zeros((1, 2, 2, 1), np.uint8)
    frame[0, 0] = 200
    out = corrupt(frame, "contrast", severity=1)
    np.testing.assert_array_equal(out[0, :, :, 0], [[140, 140], [60, 60]])


def test_brightness_by_hand():
    # HSV value + 0.1 (severity 1) with hue and saturation kept: black becomes grey 0.1,
    # (102, 51, 0) -> V 0.4 -> 0.5 scales by 1.25, pure red stays (V is already 1).
    pixels = np.array([[[[0, 0, 0], [102, 51, 0], [255, 0, 0]]]], np.uint8)
    out = corrupt(pixels, "brightness", severity=1)
    expected = [[25.5, 25.5, 25.5], [127.5, 63.75, 0], [255, 0, 0]]
    np.testing.assert_allclose(out[0, 0], expected, atol=0.5)


def test_gaussian_noise_has_the_published_std():
    grey = np.full((2, 64, 64, 3), 128, np.uint8)
    noise = (corrupt(grey, "gaussian_noise", severity=1, seed=0).astype(float) - 128) / 255
    assert abs(noise.std() - 0.08) < 0.004  # ImageNet-C severity 1
    np.testing.assert_array_equal(noise[0], noise[1])  # static pattern


def test_shot_noise_is_poisson():
    level = np.full((1, 128, 128, 3), 51, np.uint8)  # intensity 0.2, severity 5: 3 photons
    counts = corrupt(level, "shot_noise", severity=5, seed=0).astype(float) / 255 * 3
    assert np.allclose(counts, np.round(counts), atol=0.01)  # whole photon counts
    assert abs(counts.mean() - 0.6) < 0.03 and abs(counts.var() - 0.6) < 0.04
    assert abs((counts < 0.5).mean() - np.exp(-0.6)) < 0.02  # P(0 photons)


def test_impulse_noise_sets_the_published_fraction_to_black_or_white():
    grey = np.full((1, 128, 128, 3), 128, np.uint8)
    out = corrupt(grey, "impulse_noise", severity=5, seed=0)
    assert set(np.unique(out)) == {0, 128, 255}
    assert abs((out != 128).mean() - 0.27) < 0.01 and abs((out == 0).mean() - 0.135) < 0.01


def test_motion_blur_keeps_a_flat_frame_flat_and_blurs_an_edge():
    flat = np.full((1, 40, 40, 3), 90, np.uint8)
    np.testing.assert_array_equal(corrupt(flat, "motion_blur", 5), flat)
    edge = np.zeros((1, 224, 224, 3), np.uint8)
    edge[:, :, 112:] = 255
    out = corrupt(edge, "motion_blur", severity=3, seed=0)
    # Within [-45, 45] degrees each pixel averages pixels to its right, so the bright half
    # smears into the dark half: a monotone ramp of intermediate values left of the edge.
    row = out[0, 112, :, 0].astype(int)
    assert ((row > 10) & (row < 245)).sum() >= 5 and (np.diff(row) >= -1).all()


def test_fog_map_is_scaled_to_the_frame():
    # The fog of a 2x larger frame is the same haze, resized: compare at the small size.
    small = np.full((1, 56, 84, 3), 100, np.uint8)
    big = np.full((1, 112, 168, 3), 100, np.uint8)
    fog_small = corrupt(small, "fog", 3, seed=1).astype(float)
    fog_big = corrupt(big, "fog", 3, seed=1).astype(float)
    shrunk = fog_big[0].reshape(56, 2, 84, 2, 3).mean(axis=(1, 3))
    assert np.corrcoef(shrunk.ravel(), fog_small[0].ravel())[0, 1] > 0.95


def test_plasma_fractal_is_normalised_and_smooth():
    height = _ops.plasma_fractal(np.random.default_rng(0), 256, decay=2.0)
    assert height.shape == (256, 256) and height.min() == 0 and height.max() == 1
    # Neighbouring pixels are far closer than pixels 16 apart: a smooth, large-scale haze.
    assert np.abs(np.diff(height, axis=0)).mean() * 5 < np.abs(np.diff(height[::16], axis=0)).mean()


def test_defocus_kernel_is_a_normalised_disk():
    from vidsparse.corruptions.spatial import _disk_kernel

    kernel = _disk_kernel(10.0, 0.5).numpy()  # severity 5 at 224
    assert abs(kernel.sum() - 1) < 1e-6
    np.testing.assert_allclose(kernel, kernel[::-1], atol=1e-7)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-7)
    assert 290 < (kernel > kernel.max() / 2).sum() < 340  # about pi * 10^2 pixels


def test_defocus_blur_keeps_a_flat_frame_and_softens_edges(clip):
    flat = np.full((1, 40, 40, 3), 90, np.uint8)
    np.testing.assert_array_equal(corrupt(flat, "defocus_blur", 5), flat)
    out = corrupt(clip, "defocus_blur", 5).astype(float)
    assert np.abs(np.diff(out, axis=2)).mean() < np.abs(np.diff(clip.astype(float), axis=2)).mean()


def test_fourier_filter_equals_direct_correlation_with_edge_padding():
    import torch
    import torch.nn.functional as F

    x = torch.rand(3, 20, 27, 2, generator=torch.Generator().manual_seed(0))
    kernel = torch.rand(5, 9, generator=torch.Generator().manual_seed(1))  # asymmetric, wider than tall
    planes = F.pad(x.permute(0, 3, 1, 2).reshape(6, 1, 20, 27), (4, 4, 2, 2), mode="replicate")
    direct = F.conv2d(planes, kernel[None, None]).reshape(3, 2, 20, 27).permute(0, 2, 3, 1)
    torch.testing.assert_close(_ops.convolve_frames(x, kernel, frames_per_chunk=2), direct,
                               rtol=0, atol=1e-5)


# --- fog(peak=): the clip's brightest value (default) or each frame's ---------------------------

def test_fog_peak_frame_scales_each_frame_by_its_own_brightest_value():
    # (x + w haze) * p / (p + w): a black frame stays black when p is its own maximum (0), and
    # not when p is the clip's (another frame's 200).
    clip = np.zeros((2, 32, 48, 3), np.uint8)
    clip[1] = 200
    assert not corrupt(clip, "fog", 3, seed=0, peak="frame")[0].any()
    assert corrupt(clip, "fog", 3, seed=0)[0].any()


def test_fog_peaks_agree_when_every_frame_holds_the_clips_maximum(clip):
    # The moving square (210) is the brightest value of every frame.
    np.testing.assert_array_equal(corrupt(clip, "fog", 4, seed=1, peak="frame"), corrupt(clip, "fog", 4, seed=1))


def test_static_fog_with_peak_frame_is_frame_local():
    # One haze map for the clip and each frame scaled by its own maximum: frames 3-5 corrupted
    # alone are those rows of the whole clip's result (not so with the clip's maximum).
    clip = np.random.default_rng(0).integers(0, 200, (8, 24, 32, 3), dtype=np.uint8)
    clip[6] = 255  # the clip's maximum, outside frames 3-5
    whole = corrupt(clip, "fog", 2, seed=3, peak="frame")
    np.testing.assert_array_equal(corrupt(clip[3:6], "fog", 2, seed=3, peak="frame"), whole[3:6])
    assert not np.array_equal(corrupt(clip[3:6], "fog", 2, seed=3), corrupt(clip, "fog", 2, seed=3)[3:6])


def test_bad_fog_peak_names_the_option_and_choices(clip):
    with pytest.raises(ValueError, match=r"peak must be one of \('clip', 'frame'\), got 'image'"):
        corrupt(clip, "fog", 3, peak="image")
