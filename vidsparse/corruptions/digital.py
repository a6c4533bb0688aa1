"""Digital corruptions of ImageNet-C: saturate, pixelate, JPEG compression.

Constants from ImageNet-C (Hendrycks & Dietterich 2019, ``hendrycks/robustness``
``imagenet_c/corruptions.py``). None draws random numbers.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vidsparse.corruptions import _ops
from vidsparse.corruptions.registry import register_corruption

SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))  # HSV saturation -> s * a + b
PIXELATE_FACTOR = (0.6, 0.5, 0.4, 0.3, 0.25)  # box-downsample to this fraction, box-upsample back
JPEG_QUALITY = (25, 18, 15, 10, 7)  # PIL JPEG quality


@register_corruption("saturate", kind="spatial")
def saturate(video, severity, rng):
    """Scales and shifts the HSV saturation (ImageNet-C), in closed form.

    With hue and value ``V = max`` fixed, each channel is ``V - (V - x) * S' / S``; a grey pixel
    (``S = 0``) has hue 0 in skimage's HSV, so a shift makes it red: ``(V, V(1 - S'), V(1 - S'))``.
    Grey clips (C = 1) have no saturation and are returned unchanged.
    """
    a, b = SATURATE[severity - 1]
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
def pixelate(video, severity, rng):
    """Area-downsample to ``factor`` of the size, then nearest (PIL box) upsample back."""
    t, h, w, _ = video.shape
    factor = PIXELATE_FACTOR[severity - 1]
    planes = _ops.to_float(video).permute(0, 3, 1, 2)
    small = F.adaptive_avg_pool2d(planes, (max(1, int(h * factor)), max(1, int(w * factor))))
    return _ops.to_uint8(F.interpolate(small, size=(h, w), mode="nearest").permute(0, 2, 3, 1))


@register_corruption("jpeg_compression", kind="spatial")
def jpeg_compression(video, severity, rng):
    """Every frame through PIL's JPEG encoder at ImageNet-C's quality (a codec: frame by frame)."""
    quality = JPEG_QUALITY[severity - 1]
    frames = video.cpu().numpy()
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame).save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer))
        out[i] = decoded.reshape(frame.shape)
    return torch.from_numpy(out).to(video.device)
