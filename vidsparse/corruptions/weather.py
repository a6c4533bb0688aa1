"""Weather corruptions: spatter, snow and frost (ImageNet-C) and rain (video benchmarks).

Spatter, snow and frost constants are ImageNet-C's (Hendrycks & Dietterich 2019, reference
code ``hendrycks/robustness`` ``imagenet_c/corruptions.py``); pixel sizes are defined at
224 x 224 and scaled by ``min(H, W) / 224``. Every random pattern is drawn once per clip
(``temporal="static"``), per frame (``"iid"``) or at keyframes and blended (``"smooth"``), see
``_ops.temporal_patterns``. Whole-clip float32 torch code.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vidsparse.corruptions import _ops
from vidsparse.corruptions.registry import register_corruption
from vidsparse.corruptions.spatial import _streak

# (loc, scale, blur sigma px, threshold, intensity or mud sigma px, mud?)
SPATTER = ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
           (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1))
WATER_RGB = (175 / 255, 238 / 255, 238 / 255)  # pale turquoise
MUD_RGB = (63 / 255, 42 / 255, 20 / 255)
# (loc, scale, zoom (flake size px), threshold, streak radius px, streak sigma px, frame weight)
SNOW = ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))
SNOW_ANGLE = (-135.0, -45.0)  # degrees, uniform
FROST = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))  # (frame weight, frost weight)
# Rain: our own constants (Yi et al. 2021 list rain among their video corruptions but we found no
# published per-severity parameters): (fraction of pixels that start a streak, streak half
# length px at 224, streak brightness, grey haze weight).
RAIN = ((0.002, 8, 0.45, 0.02), (0.004, 10, 0.5, 0.04), (0.007, 12, 0.55, 0.06),
        (0.011, 14, 0.6, 0.08), (0.016, 16, 0.65, 0.1))
RAIN_ANGLE = (70.0, 110.0)  # degrees from the horizontal, uniform: near vertical, with wind


def _fields(video, rng, temporal, channels=1):
    """Standard normal fields ``N x H x W x channels`` for the temporal mode."""
    t, h, w, _ = video.shape
    return _ops.from_numpy(_ops.normal_patterns(rng, temporal, (t, h, w, channels)), video)


def _streaks(layer, angles, radius, sigma):
    """Motion-blur each pattern of ``layer`` (N x H x W x 1) along its angle (ImageNet-C's kernel)."""
    angles = np.broadcast_to(angles, (len(layer),))
    return torch.cat([_streak(layer[i:i + 1], radius, sigma, float(a)) for i, a in enumerate(angles)])


@register_corruption("spatter", kind="spatial")
def spatter(video, severity, rng, *, temporal="static"):
    """Liquid drops on the lens: blurred thresholded noise, water (1-3) or mud (4-5) (ImageNet-C).

    Water adds ``intensity * layer / max(layer)`` of pale turquoise. ImageNet-C shades the water
    with a relief map (Canny edges, distance transform, histogram equalisation, emboss); we omit
    that relief, so our drops are flat, slightly brighter tinted blobs. Mud replaces the pixels
    where the blurred drop mask exceeds 0.8 by brown, as ImageNet-C. The maximum is taken over
    the clip so that the drops do not pulse.
    """
    loc, scale, sigma, threshold, strength, mud = SPATTER[severity - 1]
    px = _ops.reference_scale(*video.shape[1:3])
    layer = _ops.gaussian_blur(loc + scale * _fields(video, rng, temporal), sigma * px)
    layer = torch.where(layer < threshold, 0.0, layer)
    x = _ops.to_float(video)
    if not mud:
        colour = torch.tensor(WATER_RGB[:x.shape[-1]], device=x.device)
        m = layer / layer.max().clamp(min=1e-12) * strength
        return _ops.to_uint8((x + m * colour).clamp_(0, 1))
    m = _ops.gaussian_blur((layer > threshold).to(torch.float32), strength * px)
    m = torch.where(m < 0.8, 0.0, m)
    colour = torch.tensor(MUD_RGB[:x.shape[-1]], device=x.device)
    return _ops.to_uint8((x * (1 - m) + colour * m).clamp_(0, 1))


@register_corruption("snow", kind="spatial")
def snow(video, severity, rng, *, temporal="static"):
    """Zoomed thresholded noise streaked by a motion blur, over a whitened frame (ImageNet-C).

    ImageNet-C draws the noise at the image size and zooms it ``zoom`` times; we draw it at
    ``1 / (zoom * px)`` of the frame and upsample bilinearly, which makes flakes of the same size
    relative to the frame. The flakes are added twice, the second copy rotated by 180 degrees.
    ``"smooth"`` blends the noise (variance kept) and turns the fall angle slowly.
    """
    t, h, w, c = video.shape
    loc, scale, zoom, threshold, radius, sigma, weight = SNOW[severity - 1]
    px = _ops.reference_scale(h, w)
    small = (max(1, math.ceil(h / (zoom * px))), max(1, math.ceil(w / (zoom * px))))
    noise = _ops.from_numpy(_ops.normal_patterns(rng, temporal, (t,) + small), video)
    layer = _ops.resize_maps(loc + scale * noise, h, w)
    layer = torch.where(layer < threshold, 0.0, layer).clamp(0, 1)[..., None]
    angles = _ops.temporal_patterns(rng, temporal, t, lambda r, n: r.uniform(*SNOW_ANGLE, size=n),
                                    blend="linear")
    layer = _streaks(layer, angles, radius * px, sigma * px)
    x = _ops.to_float(video)
    grey = x if c == 1 else (x * torch.tensor([0.299, 0.587, 0.114], device=x.device)).sum(-1, keepdim=True)
    x = weight * x + (1 - weight) * torch.maximum(x, grey * 1.5 + 0.5)
    return _ops.to_uint8((x + layer + layer.flip(1, 2)).clamp_(0, 1))


@register_corruption("frost", kind="spatial")
def frost(video, severity, rng, *, temporal="static"):
    """``a * frame + b * frost`` (ImageNet-C's weights) with a procedural frost texture.

    ImageNet-C crops one of six photographs of frost on glass (bundled with its code). We ship
    no photos and download nothing: the texture is generated from two Gaussian fields: a
    blurred one gives a cloudy bluish-white film (sigma 6 px at 224), the top 4 % of the other
    seed ice needles, streaked along three random directions (radius 6 px at 224, drawn once per
    clip) and lightly blurred. Unlike the photos it has no large dendrites, vignetting or
    camera grain, and its mean (about 0.5) and contrast are set to be near those of the photo
    crops, not measured from them. The fields follow the temporal mode (frost that slowly
    re-forms in ``"smooth"``).
    """
    a, b = FROST[severity - 1]
    px = _ops.reference_scale(*video.shape[1:3])
    fields = _fields(video, rng, temporal, channels=2)
    film = _ops.gaussian_blur(fields[..., :1], 6 * px)
    film = film / film.std().clamp(min=1e-6)
    seeds = (fields[..., 1:] > 1.75).to(torch.float32)  # P(N > 1.75) = 4 %
    taps = 2 * round(6 * px) + 1
    needles = torch.stack([_streaks(seeds, angle, 6 * px, 6 * px) for angle in rng.uniform(0, 180, 3)])
    needles = _ops.gaussian_blur((needles.amax(0) * taps).clamp(0, 1), 0.5 * max(px, 1))
    texture = (0.42 + 0.1 * film + 0.5 * needles).clamp(0, 1)
    tint = torch.tensor((0.9, 0.95, 1.0)[:video.shape[-1]] if video.shape[-1] == 3 else (0.95,), device=video.device)
    return _ops.to_uint8((a * _ops.to_float(video) + b * texture * tint).clamp_(0, 1))


@register_corruption("rain", kind="spatial")
def rain(video, severity, rng, *, temporal="static"):
    """Bright near-vertical streaks over a slightly hazy frame (our constants, see ``RAIN``).

    Yi et al. 2021 ("Benchmarking the robustness of spatial-temporal models against
    corruptions") include rain among their video corruptions; we could not find their
    parameters, so severity raises the streak density (0.2 % to 1.6 % of pixels start one),
    length (half length 8 to 16 px at 224), brightness (0.45 to 0.65) and a grey haze (2 % to
    10 %). The angle is 70-110 degrees (wind), drawn once per clip. Streaks are ImageNet-C's
    motion-blur kernel applied to the seeds, with a flat profile. The default static pattern
    is rain on the lens rather than falling rain; ``"smooth"`` lets streaks fade in and out.
    """
    t, h, w, _ = video.shape
    density, length, brightness, haze = RAIN[severity - 1]
    px = _ops.reference_scale(h, w)
    u = _ops.from_numpy(_ops.uniform_patterns(rng, temporal, (t, h, w, 1)), video)
    angles = _ops.temporal_patterns(rng, temporal, t, lambda r, n: r.uniform(*RAIN_ANGLE, size=n), blend="linear")
    radius = length * px
    streaks = _streaks((u < density).to(torch.float32), angles, radius, 10 * radius)
    streaks = (streaks * (2 * round(radius) + 1)).clamp(0, 1)
    x = _ops.to_float(video)
    return _ops.to_uint8((x * (1 - haze) + 0.8 * haze + brightness * streaks).clamp_(0, 1))
