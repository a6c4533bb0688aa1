"""Radius-accuracy curves: the Fourier filter's defining properties, checked by hand, and the
curves on models whose answer the test knows."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.data.datasets import build_dataset
from vidsparse.data.transforms import build_transform
from vidsparse.robustness.evaluate import Checkpoint
from vidsparse.robustness.spectral import (
    default_radii,
    filter_pixels,
    fourier_filter,
    max_radius,
    radius_accuracy,
    spectral_curves,
)

SHAPES = [(16, 16), (15, 12), (7, 10)]  # even, odd and mixed frame sizes


def reference_filter(frame: np.ndarray, radius: float, kind: str) -> np.ndarray:
    """The definition, written out: centred full spectrum, distance from (H // 2, W // 2)."""
    h, w = frame.shape
    spectrum = np.fft.fftshift(np.fft.fft2(frame))
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    dist = np.sqrt((i - h // 2) ** 2 + (j - w // 2) ** 2)
    keep = dist <= radius if kind == "low" else dist > radius
    out = np.fft.ifft2(np.fft.ifftshift(spectrum * keep))
    assert np.abs(out.imag).max() < 1e-9  # a symmetric mask keeps the image real
    return out.real


def wave(h: int, w: int, ky: int, kx: int) -> torch.Tensor:
    """cos(2 pi (ky y / h + kx x / w)): all its energy sits at radius sqrt(ky^2 + kx^2)."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                          torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.cos(2 * math.pi * (ky * y / h + kx * x / w))


@pytest.mark.parametrize("h,w", SHAPES)
@pytest.mark.parametrize("kind", ["low", "high"])
def test_matches_the_centred_spectrum_definition(h, w, kind):
    frame = np.random.default_rng(0).random((h, w))
    for radius in (0, 1, 2.5, 3, max_radius(h, w) - 0.5):
        got = fourier_filter(torch.from_numpy(frame), radius, kind).numpy()
        np.testing.assert_allclose(got, reference_filter(frame, radius, kind), atol=1e-12)


@pytest.mark.parametrize("h,w", SHAPES)
def test_extreme_radii(h, w):
    x = torch.rand(2, 3, 4, h, w, dtype=torch.float64)
    top = max_radius(h, w)
    assert torch.equal(fourier_filter(x, top, "low"), x)          # everything kept
    assert torch.equal(fourier_filter(x, top, "high"), torch.zeros_like(x))
    frame_mean = x.mean(dim=(-2, -1), keepdim=True)               # the zero frequency alone
    torch.testing.assert_close(fourier_filter(x, 0, "low"), frame_mean.expand_as(x))
    torch.testing.assert_close(fourier_filter(x, 0, "high"), x - frame_mean)
    # Just inside the largest radius the corner coefficient is dropped: not the identity.
    assert not torch.allclose(fourier_filter(x, top - 1e-6, "low"), x)


@pytest.mark.parametrize("h,w", SHAPES)
def test_low_plus_high_is_the_input(h, w):
    x = torch.randn(2, 2, 3, 2, h, w)  # B x V x C x T x H x W: any leading shape
    for radius in (0, 1, 2, 3.3, 5, 100):
        low, high = fourier_filter(x, radius, "low"), fourier_filter(x, radius, "high")
        assert low.shape == high.shape == x.shape and low.dtype == x.dtype
        torch.testing.assert_close(low + high, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("h,w,ky,kx", [(16, 16, 3, 4), (12, 20, 0, 6), (12, 20, 2, 3),
                                       (15, 12, -5, 2)])
def test_a_sinusoid_passes_low_pass_iff_the_radius_reaches_its_frequency(h, w, ky, kx):
    x = wave(h, w, ky, kx)
    freq = math.hypot(ky, kx)
    zeros = torch.zeros_like(x)
    for radius in (freq - 0.01, freq - 1):
        torch.testing.assert_close(fourier_filter(x, radius, "low"), zeros, atol=1e-12, rtol=0)
        torch.testing.assert_close(fourier_filter(x, radius, "high"), x)
    for radius in (freq, freq + 1):
        torch.testing.assert_close(fourier_filter(x, radius, "low"), x)
        torch.testing.assert_close(fourier_filter(x, radius, "high"), zeros, atol=1e-12, rtol=0)


def test_dtypes_and_bad_arguments():
    x = torch.rand(3, 8, 8).half()
    assert fourier_filter(x, 2, "low").dtype == torch.float16
    with pytest.raises(ValueError, match="kind"):
        fourier_filter(x, 2, "band")
    with pytest.raises(ValueError, match="radius"):
        fourier_filter(x, -1, "low")
    with pytest.raises(ValueError, match="float"):
        fourier_filter(torch.zeros(3, 8, 8, dtype=torch.uint8), 2, "low")


def test_filtering_happens_on_pixels_before_normalisation():
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    m, s = mean.view(-1, 1, 1, 1), std.view(-1, 1, 1, 1)  # channels at dim -4
    pixels = torch.rand(2, 3, 4, 8, 8)
    normalised = (pixels - m) / s
    for kind in ("low", "high"):
        expected = (fourier_filter(pixels, 3, kind) - m) / s
        torch.testing.assert_close(filter_pixels(normalised, 3, kind, mean, std), expected)
    # Low-pass keeps the zero frequency, so the domain does not matter for it; a high-passed
    # pixel frame has mean 0, i.e. -mean/std once normalised.
    torch.testing.assert_close(filter_pixels(normalised, 3, "low", mean, std),
                               fourier_filter(normalised, 3, "low"))
    torch.testing.assert_close(filter_pixels(normalised, 3, "high", mean, std),
                               fourier_filter(normalised, 3, "high") - m / s)
    assert torch.equal(filter_pixels(normalised, 100, "low", mean, std), normalised)


def test_default_radii_end_at_the_identity():
    assert default_radii(56, 56) == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    assert default_radii(32, 32)[-1] >= max_radius(32, 32)


# --- curves ----------------------------------------------------------------------------

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class Brightness(nn.Module):
    """Class 1 ("bright") when the clip's mean pixel (before normalisation) exceeds 0.35:
    it reads only the zero frequency."""

    def forward(self, x):
        level = (x * STD[0] + MEAN[0]).mean(dim=(1, 2, 3, 4))
        return torch.stack([0.35 - level, level - 0.35], dim=1)


class Texture(nn.Module):
    """Class 1 when the frames carry detail (spatial variance), class 0 when they are flat."""

    def forward(self, x):
        detail = x.var(dim=(-2, -1)).mean(dim=(1, 2))
        return torch.stack([1e-3 - detail, detail - 1e-3], dim=1)


def brightness_clips():
    """Three dark and one bright textured clip, normalised with MEAN and STD: labels [0,0,0,1]."""
    g = torch.Generator().manual_seed(0)
    levels = [0.1, 0.15, 0.2, 0.7]
    pixels = [level + 0.05 * torch.randn(3, 4, 16, 16, generator=g) for level in levels]
    return [((p - MEAN[0]) / STD[0], int(level > 0.35)) for p, level in zip(pixels, levels)]


def test_curves_of_models_whose_answer_is_known():
    data = brightness_clips()
    out = radius_accuracy([Brightness(), Texture()], data, radii=[0, 4, 12], batch_size=3,
                          mean=MEAN, std=STD, device="cpu", progress=False)
    assert out["radii"] == [0, 4, 12]
    # Brightness is the zero frequency: every low-pass keeps it; every high-pass removes it,
    # leaving mean-0 pixels, "dark", right for 3 of the 4 clips. (Filtering the normalised
    # tensor instead would leave the pixel level at MEAN, "bright": 1 of 4.)
    assert out["low"][0] == [1.0, 1.0, 1.0]
    assert out["high"][0] == [0.75, 0.75, 0.75]
    assert out["clean"] == [1.0, 0.25]
    # Texture sees detail (class 1, right for 1 of 4) except after low-pass at radius 0, which
    # leaves flat frames (class 0, right for 3 of 4); 12 >= max_radius(16, 16): all zeros.
    assert out["low"][1] == [0.75, 0.25, 0.25]
    assert out["high"][1] == [0.25, 0.25, 0.75]


def test_normalisation_is_required_when_the_dataset_does_not_say():
    with pytest.raises(ValueError, match="mean= and std="):
        radius_accuracy([Brightness()], brightness_clips(), radii=[1], progress=False)


class PoolLinear(nn.Module):
    """Mean colour and mean detail (gradient energy) -> 3 classes: cheaper than r3d_tiny."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        detail = x.diff(dim=-1).abs().mean(dim=(2, 3, 4))
        return self.head(torch.cat([x.mean(dim=(2, 3, 4)), detail], dim=1))


DATA_CFG = {"layout": "ucf101", "fold": 1, "frames_per_clip": 4, "sampling_rate": 2,
            "resize": 32, "crop_size": 32}


def synthetic_test_split(root):
    cfg = {**DATA_CFG, "root": str(root)}
    return build_dataset(cfg, "test", build_transform(cfg, train=False))


def test_spectral_curves_shape_and_labels(synthetic_ucf101):
    torch.manual_seed(0)
    checkpoints = [
        Checkpoint(f"runs/{name}", PoolLinear(),
                   {"model": {"num_classes": 3}, "data": DATA_CFG,
                    "sparsity": {"method": method, "density": density}})
        for name, method, density in [("dense", "dense", 1.0), ("rigl", "rigl", 0.5)]]
    spec = spectral_curves(checkpoints, synthetic_ucf101, batch_size=6, device="cpu",
                           progress=False)
    bare = spectral_curves([c.model for c in checkpoints], synthetic_test_split(synthetic_ucf101),
                           batch_size=6, device="cpu", progress=False)
    radii = default_radii(32, 32)
    assert spec["radii"] == radii and radii[-1] >= max_radius(32, 32)
    assert list(spec["curves"]) == ["Dense", "RigL sparsity 0.5"]
    for curve in spec["curves"].values():
        assert set(curve) == {"low", "high"}
        assert len(curve["low"]) == len(curve["high"]) == len(radii)
        assert all(a in {k / 6 for k in range(7)} for a in curve["low"] + curve["high"])

    assert bare == {"radii": radii, "curves": {"model 0": spec["curves"]["Dense"],
                                               "model 1": spec["curves"]["RigL sparsity 0.5"]}}


def test_identity_radius_gives_the_clean_accuracy(synthetic_ucf101):
    torch.manual_seed(0)
    model = vidsparse.create_model("r3d_tiny", num_classes=3)
    top = default_radii(32, 32)[-1]
    out = radius_accuracy([model], synthetic_test_split(synthetic_ucf101), radii=[3, top],
                          kind="low", batch_size=6, device="cpu", progress=False)
    assert set(out) == {"radii", "low", "clean"} and out["radii"] == [3, top]
    # Bit for bit: an all-pass filter runs no transform.
    assert out["low"][0][-1] == out["clean"][0]
