"""Digital corruptions of ImageNet-C: saturate, pixelate, JPEG compression.

Constants from ImageNet-C (Hendrycks & Dietterich 2019, ``hendrycks/robustness``
``imagenet_c/corruptions.py``), the same for ``constants="vidsparse"`` and ``"imagenet_c"``:
all three grow in pixel error with severity as published. None draws random numbers.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch

from vidsparse.corruptions import _ops
from vidsparse.corruptions.registry import register_corruption

SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))  # HSV saturation -> s * a + b
PIXELATE_FACTOR = (0.6, 0.5, 0.4, 0.3, 0.25)  # box-downsample to this fraction, box-upsample back
JPEG_QUALITY = (25, 18, 15, 10, 7)  # PIL JPEG quality


@register_corruption("saturate", kind="spatial", frame_local=True, batched=True)
def saturate(video, severity, rngs, *, constants="vidsparse"):
    """Scales and shifts the HSV saturation (ImageNet-C), in closed form.

    With hue and value ``V = max`` fixed, each channel is ``V - (V - x) * S' / S``; a grey pixel
    (``S = 0``) has hue 0 in skimage's HSV, so a shift makes it red: ``(V, V(1 - S'), V(1 - S'))``.
    Grey clips (C = 1) have no saturation and are returned unchanged.
    """
    a, b = _ops.severity_table(constants, SATURATE)[severity - 1]
    x = _ops.to_float(video)
    if x.shape[-1] == 1:
        return video.clone()
    value = x.amax(dim=-1, keepdim=True)
    sat = torch.where(value > 0, (value - x.amin(dim=-1, keepdim=True)) / value.clamp(min=1e-12), 0.0)
    new_sat = (sat * a + b).clamp(0, 1)
    coloured = value - (value - x) * new_sat / sat.clamp(min=1e-12)
    red = _ops.constant([0.0, 1.0, 1.0], x)
    grey = value * (1 - new_sat * red)
    return _ops.to_uint8_(torch.where(sat > 0, coloured, grey))


@register_corruption("pixelate", kind="spatial", frame_local=True, batched=True)
def pixelate(video, severity, rngs, *, constants="vidsparse"):
    """Shrink to ``factor`` of the size and enlarge back, both with PIL's BOX filter (ImageNet-C).

    PIL's own arithmetic, so the result equals PIL's bit for bit: each resize is one pass per
    axis, and an output value is ``(2^21 + K * sum) >> 22`` over its box of ``n`` input values,
    with the 22-bit fixed-point weight ``K = round(2^22 / n)``, rounded to a byte. Shrinking,
    the order of the passes matters: horizontal first, unless the height loses more than twice
    as many pixels as the width (Pillow 13, python-pillow/Pillow#9549; earlier versions always
    went horizontal first, which differs only on frames over twice as tall as wide).
    Enlarging picks one input value per output, so it is a gather of bytes.
    """
    _, _, h, w, _ = video.shape
    factor = _ops.severity_table(constants, PIXELATE_FACTOR)[severity - 1]
    small_h, small_w = max(1, int(h * factor)), max(1, int(w * factor))
    frames = _ops.frames_of(video)
    if h - small_h > 2 * (w - small_w):
        small = _box_shrink(_box_shrink(frames, 1, small_h), 2, small_w)
    else:
        small = _box_shrink(_box_shrink(frames, 2, small_w), 1, small_h)
    starts_w, _ = _box_windows(small_w, w)
    starts_h, _ = _box_windows(small_h, h)
    return _select(_select(small, 2, starts_w), 1, starts_h).view(video.shape)


def _box_shrink(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """One pass of PIL's BOX resize of uint8 ``x`` along ``dim`` to ``size`` (smaller) values."""
    starts, counts = _box_windows(x.shape[dim], size)
    # Window sums from max(counts) gathers of the axis extended by a zero, which short windows
    # read past their end; every gather's indices go to the device in one copy.
    padded = torch.cat([x, torch.zeros_like(x.narrow(dim, 0, 1))], dim)
    indices = _ops.to_device(torch.stack([torch.where(m < counts, starts + m, x.shape[dim])
                                          for m in range(int(counts.max()))]), x)
    gathers = [_select(padded, dim, index) for index in indices]
    total = gathers[0].to(torch.int32)
    for gathered in gathers[1:]:
        total += gathered
    # Pillow, Resample.c (normalize_coeffs_8bpc, clip8): weights 1 / n in 22-bit fixed point,
    # rounded half up. K * sum + 2^21 < 256 * 2^22 < 2^31 (for n below 16448), so the shifted
    # value is a byte as it stands.
    weight = (0.5 + (1.0 / counts.double()) * (1 << 22)).to(torch.int32)
    total *= _ops.to_device(weight, x).view(-1, *[1] * (x.dim() - 1 - dim))
    return total.add_(1 << 21).bitwise_right_shift_(22).to(torch.uint8)


def _select(x: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """``x.index_select(dim, index)`` for a ``T x H x W x C`` clip and ``dim`` 1 or 2.

    Along W as a gather from the flattened rows: 2-3 times faster than ``index_select``,
    which moves one ``C``-byte pixel at a time.
    """
    index = _ops.to_device(index, x)
    if dim == 1:
        return x.index_select(1, index)
    t, h, w, c = x.shape
    flat = (index[:, None] * c + torch.arange(c, device=x.device)).flatten()
    return x.reshape(t * h, w * c).gather(1, flat.expand(t * h, -1)).view(t, h, len(index), c)


def _box_windows(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First input index and count of the input values each output of a BOX resize averages.

    Pillow's ``precompute_coeffs`` (Resample.c), in the same float64 operations: the box of
    width ``max(n_in / n_out, 1)`` input pixels about the output's centre takes the input
    pixels whose centres fall inside (half-open, ``(-1/2, 1/2]`` of its width); enlarging,
    that is one pixel. Area pooling (which counts partly covered pixels whole) and
    floor-aligned nearest upsampling (which shifts blocks) each added error at factors that
    do not divide the size, enough to make factor 0.6 worse than 0.5.
    """
    scale = n_in / n_out
    filter_scale = max(scale, 1.0)
    support = 0.5 * filter_scale
    centre = (np.arange(n_out) + 0.5) * scale
    first = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    last = np.minimum((centre + support + 0.5).astype(np.int64), n_in)
    index = first[:, None] + np.arange(2 * math.ceil(support) + 1)[None, :]
    offset = (index - centre[:, None] + 0.5) * (1.0 / filter_scale)
    inside = (index < last[:, None]) & (offset > -0.5) & (offset <= 0.5)
    return torch.from_numpy(index[np.arange(n_out), inside.argmax(axis=1)]), torch.from_numpy(inside.sum(axis=1))


@register_corruption("jpeg_compression", kind="spatial", frame_local=True, batched=True, cpu_only=True)
def jpeg_compression(video, severity, rngs, *, constants="vidsparse"):
    """Every frame through PIL's JPEG encoder at ImageNet-C's quality (a codec: frame by frame).

    Runs on the CPU: PIL's encoder reads host memory, so a batch on another device is copied
    to the host once, encoded frame by frame and copied back once.
    """
    from PIL import Image  # here: the other corruptions (and a GPU check) run without Pillow

    quality = _ops.severity_table(constants, JPEG_QUALITY)[severity - 1]
    frames = _ops.frames_of(video).cpu().numpy()
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame).save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer))
        out[i] = decoded.reshape(frame.shape)
    return _ops.to_device(out, video).view(video.shape)
