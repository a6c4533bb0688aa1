"""Digital corruptions of ImageNet-C: saturate, pixelate, JPEG compression.

Constants from ImageNet-C (Hendrycks & Dietterich 2019, ``hendrycks/robustness``
``imagenet_c/corruptions.py``), the same for ``constants="vidsparse"`` and ``"imagenet_c"``:
all three grow in pixel error with severity as published. None draws random numbers.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from vidsparse.corruptions import _ops
from vidsparse.corruptions.registry import register_corruption

SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))  # HSV saturation -> s * a + b
PIXELATE_FACTOR = (0.6, 0.5, 0.4, 0.3, 0.25)  # box-downsample to this fraction, box-upsample back
JPEG_QUALITY = (25, 18, 15, 10, 7)  # PIL JPEG quality


@register_corruption("saturate", kind="spatial")
def saturate(video, severity, rng, *, constants="vidsparse"):
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
    red = torch.tensor([0.0, 1.0, 1.0], device=x.device)
    grey = value * (1 - new_sat * red)
    return _ops.to_uint8(torch.where(sat > 0, coloured, grey).clamp_(0, 1))


@register_corruption("pixelate", kind="spatial")
def pixelate(video, severity, rng, *, constants="vidsparse"):
    """Shrink to ``factor`` of the size and enlarge back, both with PIL's BOX filter (ImageNet-C).

    As in PIL, each resize is a horizontal then a vertical pass, each rounded to uint8 (half
    up), so the result equals PIL's, bit for bit on the clips we compared.
    """
    t, h, w, _ = video.shape
    factor = _ops.severity_table(constants, PIXELATE_FACTOR)[severity - 1]
    small_h, small_w = max(1, int(h * factor)), max(1, int(w * factor))
    x = video.to(torch.float32)
    x = torch.floor(torch.einsum("jw,thwc->thjc", _box_weights(w, small_w).to(x), x) + 0.5)
    x = torch.floor(torch.einsum("ih,thjc->tijc", _box_weights(h, small_h).to(x), x) + 0.5)
    x = torch.einsum("wj,tijc->tiwc", _box_weights(small_w, w).to(x), x)  # enlarging picks one pixel
    x = torch.einsum("hi,tiwc->thwc", _box_weights(small_h, h).to(x), x)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _box_weights(n_in: int, n_out: int) -> torch.Tensor:
    """The ``n_out x n_in`` weights of a Pillow BOX resize along one axis.

    Pillow (``Resample.c``) evaluates the box at input pixel centres: an output pixel averages
    the input pixels whose centres fall inside its footprint (shrinking), or takes the one
    nearest its centre (enlarging). Area pooling (which counts partly covered pixels whole)
    and floor-aligned nearest upsampling (which shifts blocks) each added error at factors
    that do not divide the size, enough to make factor 0.6 worse than 0.5.
    """
    scale = n_in / n_out
    half = 0.5 * max(scale, 1.0)
    offset = (np.arange(n_in) + 0.5)[None, :] - (np.arange(n_out) + 0.5)[:, None] * scale
    inside = ((offset > -half) & (offset <= half)).astype(np.float64)
    return torch.from_numpy(inside / inside.sum(axis=1, keepdims=True)).to(torch.float32)


@register_corruption("jpeg_compression", kind="spatial")
def jpeg_compression(video, severity, rng, *, constants="vidsparse"):
    """Every frame through PIL's JPEG encoder at ImageNet-C's quality (a codec: frame by frame)."""
    quality = _ops.severity_table(constants, JPEG_QUALITY)[severity - 1]
    frames = video.cpu().numpy()
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame).save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer))
        out[i] = decoded.reshape(frame.shape)
    return torch.from_numpy(out).to(video.device)
