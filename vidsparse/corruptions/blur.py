"""Blur and geometric corruptions of ImageNet-C: Gaussian, zoom and glass blur, elastic transform.

Severity constants are ImageNet-C's (Hendrycks & Dietterich 2019, reference code
``hendrycks/robustness`` ``imagenet_c/corruptions.py``); pixel sizes are defined at 224 x 224
and scaled by ``min(H, W) / 224`` (see ``_ops.REFERENCE_SIDE``). Float32 torch code on a batch
of clips, on their device.
With ``constants="vidsparse"`` (the default) zoom blur, glass blur and elastic transform use the
adjusted tables below, whose pixel error grows with severity; ``"imagenet_c"`` the published ones.
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from vidsparse.corruptions import _ops
from vidsparse.corruptions.registry import register_corruption

GAUSSIAN_BLUR_SIGMA = (1, 2, 3, 4, 6)  # pixels at 224
# Zoom factors averaged with the frame: np.arange(1, stop, step) per severity (12, 16, 11, 13
# and 11 factors).
ZOOM_BLUR_RANGES = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))
# Ours: severities 1, 3 and 5 as published; the steps of 2 and 4 raised to 0.015 and 0.025
# (same largest zoom) so every severity averages 11 zooms (12 at severity 1). With 16 and 13
# zooms, 2 and 4 kept less of the sharp frame than 3 and 5, so on fine texture their error
# was as large as the next severity's (2 above 3 on a textured 64 x 96 clip).
ZOOM_BLUR_RANGES_MONOTONE = ((1.11, 0.01), (1.16, 0.015), (1.21, 0.02), (1.26, 0.025), (1.31, 0.03))
# (sigma, max_delta, iterations): blur, local pixel shuffle within +-max_delta (pixels at 224),
# repeated, blur again.
GLASS_BLUR = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
# Ours: the published sigmas and deltas; iterations (2, 1, 3, 2, 2) made non-decreasing as
# (1, 1, 2, 2, 2), i.e. severity 1 shuffles once and severity 3 twice. The iteration count
# drives the error, so the published order made 2 (one pass) milder than 1 (two) and 4 (two)
# milder than 3 (three), by about 5 % on natural-image-like clips.
GLASS_BLUR_MONOTONE = ((0.7, 1, 1), (0.9, 2, 1), (1, 2, 2), (1.1, 3, 2), (1.5, 4, 2))
# (alpha, sigma, affine jitter) in pixels at 224; ImageNet-C writes them as multiples of 244
# ("should have been 224, but ultimately nothing is incorrect" says its source), kept as is.
ELASTIC = ((244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
           (244 * 0.05, 244 * 0.01, 244 * 0.02), (244 * 0.07, 244 * 0.01, 244 * 0.02),
           (244 * 0.12, 244 * 0.01, 244 * 0.02))
# Ours: one family, ImageNet-C's severity 5 scaled down: alpha and jitter times severity / 5,
# sigma kept. The published severities 1-2 are a different warp (a large smooth field and an
# affine jitter of 24 and 49 px) that moves pixels further than 3-5 do, so their error was
# the largest. Within one family the same seed gives the same warp, scaled: the displacement
# grows with severity at every pixel.
ELASTIC_MONOTONE = ((244 * 0.024, 244 * 0.01, 244 * 0.004), (244 * 0.048, 244 * 0.01, 244 * 0.008),
                    (244 * 0.072, 244 * 0.01, 244 * 0.012), (244 * 0.096, 244 * 0.01, 244 * 0.016),
                    (244 * 0.12, 244 * 0.01, 244 * 0.02))


@register_corruption("gaussian_blur", kind="spatial", frame_local=True, batched=True)
def gaussian_blur(video, severity, rngs, *, constants="vidsparse"):
    """Gaussian blur with sigma ``(1, 2, 3, 4, 6)`` pixels at 224, edges replicated."""
    sigma = _ops.severity_table(constants, GAUSSIAN_BLUR_SIGMA)[severity - 1] * _ops.reference_scale(*video.shape[2:4])
    return _ops.to_uint8_(_ops.gaussian_blur(_ops.frames_of(_ops.to_float(video)), sigma)).view(video.shape)


@register_corruption("zoom_blur", kind="spatial", frame_local=True, batched=True)
def zoom_blur(video, severity, rngs, *, constants="vidsparse"):
    """The mean of the frame and its centre zooms by ImageNet-C's factors (a ratio: not rescaled).

    The factors start at 1, so the frame counts twice, as in ImageNet-C.
    """
    stop, step = _ops.severity_table(constants, ZOOM_BLUR_RANGES, ZOOM_BLUR_RANGES_MONOTONE)[severity - 1]
    factors = np.arange(1, stop, step)
    x = _ops.frames_of(_ops.to_float(video))
    out = x.clone()
    for factor in factors:
        out += _ops.zoom(x, float(factor))
    return _ops.to_uint8_(out / (len(factors) + 1)).view(video.shape)


@register_corruption("glass_blur", kind="spatial", frame_local=True, batched=True)
def glass_blur(video, severity, rngs, *, temporal="static", constants="vidsparse"):
    """Blur, shuffle pixels locally, blur again (ImageNet-C's glass blur), vectorised.

    ImageNet-C walks every pixel in a Python loop and swaps it with a random neighbour up to
    ``max_delta`` away (offsets uniform in ``[-max_delta, max_delta)``), ``iterations`` times:
    about a minute per 224 x 224 frame. Here each iteration draws the whole offset field at once
    and every pixel takes its neighbour's value (a gather, not an exact permutation: a value may
    be copied twice or lost, which the second blur hides); the iterations compose into a single
    map, so the clip is shuffled by one lookup: milliseconds per frame. Offsets are drawn in
    224-reference pixels and scaled by ``min(H, W) / 224``, so a pixel moves the same fraction
    of the frame at any size; a fractional offset is read bilinearly (at 224 x 224 every offset
    is whole and the lookup is an exact gather). Rounding the scaled offsets instead made every
    ``max_delta`` one pixel on small frames. The offset field is drawn once per clip
    (``temporal="static"``) or per frame (``"iid"``); ``"smooth"`` blends keyframe offset fields
    linearly, so pixels drift. As in ImageNet-C the frame is quantised to uint8 after the first
    blur.
    """
    clips, t, h, w, _ = video.shape
    sigma, delta, iterations = _ops.severity_table(constants, GLASS_BLUR, GLASS_BLUR_MONOTONE)[severity - 1]
    scale = _ops.reference_scale(h, w)
    offsets = _ops.device_patterns(
        _ops.pattern_plans(rngs, temporal, t),
        lambda r, n: r.integers(-delta, delta, size=(n, iterations, 2, h, w)).astype(np.float32),
        video, blend="linear") * scale  # B x N x iterations x 2 x H x W
    shape = offsets.shape[:2] + (h, w)
    src_y = torch.arange(h, dtype=offsets.dtype, device=video.device)[:, None].expand(shape)
    src_x = torch.arange(w, dtype=offsets.dtype, device=video.device)[None, :].expand(shape)
    for i in range(iterations):  # compose: the value at p comes from p + d_1 + ... (clamped)
        src_y = (src_y + offsets[:, :, i, 0]).clamp(0, h - 1)
        src_x = (src_x + offsets[:, :, i, 1]).clamp(0, w - 1)
    x = _ops.to_uint8_(_ops.gaussian_blur(_ops.frames_of(_ops.to_float(video)), sigma * scale))
    grid = torch.stack([2 * src_x / max(w - 1, 1) - 1, 2 * src_y / max(h - 1, 1) - 1], dim=-1)
    grid = _ops.frames_of(grid.expand(clips, t, h, w, 2))
    shuffled = F.grid_sample(_ops.to_float(x).permute(0, 3, 1, 2), grid, mode="bilinear",
                             padding_mode="border", align_corners=True).permute(0, 2, 3, 1)
    return _ops.to_uint8_(_ops.gaussian_blur(shuffled, sigma * scale)).view(video.shape)


@register_corruption("elastic_transform", kind="spatial", frame_local=True, batched=True)
def elastic_transform(video, severity, rngs, *, temporal="static", constants="vidsparse"):
    """A random affine warp plus a smooth random displacement field (ImageNet-C), by grid_sample.

    Three points around the centre (a third of the short side away) are jittered by up to the
    affine constant to define the affine map; the displacement is uniform [-1, 1] noise blurred
    with ``sigma`` (3 sigma of taps) times ``alpha``. All three are pixels at 224, scaled by
    ``min(H, W) / 224``, and so is the noise: white noise on a coarser pixel grid blurs to a
    larger amplitude, which would make the displacement the same number of pixels (a larger
    fraction of the frame) on a small frame. Everything is drawn once per clip
    (``"static"``), per frame (``"iid"``) or at keyframes and blended linearly (``"smooth"``:
    the warp wobbles slowly). Borders reflect, as ImageNet-C's. The noise is blurred on the
    clips' device; the three points stay on the host, which solves for the affine maps.
    """
    clips, t, h, w, _ = video.shape
    scale = _ops.reference_scale(h, w)
    alpha, sigma, jitter = (v * scale for v in _ops.severity_table(constants, ELASTIC, ELASTIC_MONOTONE)[severity - 1])
    plans = _ops.pattern_plans(rngs, temporal, t)

    def draw_points(r, n):
        return r.uniform(-jitter, jitter, size=(n, 3, 2))

    def draw_noise(r, n):
        draw_points(r, n)  # each pattern's generator draws its points first (draw_points), then the noise
        return (r.uniform(-1, 1, size=(n, h, w, 2)) * scale).astype(np.float32)  # scaled: see above

    jit = _ops.host_patterns(plans, draw_points, blend="linear")  # B x N x 3 x 2
    field = _ops.device_patterns(plans, draw_noise, video, blend="linear",
                                 prepare=lambda noise: _ops.gaussian_blur(noise, sigma, truncate=3.0) * alpha)
    centre, side = np.array([w // 2, h // 2], float), min(h, w) // 3
    src = np.stack([centre + side, centre + [side, -side], centre - side])  # (x, y) points
    # The affine map sending the jittered points back: out(p) = in(A p + b), 2 x 3 per pattern.
    affine = np.stack([[np.linalg.solve(np.c_[src + j, np.ones(3)], np.c_[src, np.ones(3)])[:, :2].T
                        for j in clip_jit] for clip_jit in jit])
    affine = _ops.from_numpy(affine, video)[..., None, None]  # B x N x 2 x 3 x 1 x 1
    ys, xs = torch.meshgrid(torch.arange(h, dtype=field.dtype, device=video.device),
                            torch.arange(w, dtype=field.dtype, device=video.device), indexing="ij")
    # Displace first (output pixel -> displaced point), then map through the inverse affine.
    px, py = xs + field[..., 0], ys + field[..., 1]
    sx = affine[:, :, 0, 0] * px + affine[:, :, 0, 1] * py + affine[:, :, 0, 2]
    sy = affine[:, :, 1, 0] * px + affine[:, :, 1, 1] * py + affine[:, :, 1, 2]
    grid = torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], dim=-1)
    grid = _ops.frames_of(grid.expand(clips, t, h, w, 2))
    planes = _ops.frames_of(_ops.to_float(video)).permute(0, 3, 1, 2)
    out = F.grid_sample(planes, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return _ops.to_uint8_(out.permute(0, 2, 3, 1)).unflatten(0, (clips, t))
