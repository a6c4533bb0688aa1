"""Torch/numpy primitives shared by the corruptions: float conversion, patterns, filters, fractals.

Everything works on a whole clip at once, as a float32 ``T x H x W x C`` tensor in [0, 1]
(the value range ImageNet-C computes in). Random numbers always come from the caller's
``numpy.random.Generator`` so that a seed gives the same clip on any machine.
"""

from __future__ import annotations

import contextvars
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# How a random pattern relates to the frames of a clip: drawn once and reused for every frame
# (temporally consistent, the default), redrawn for every frame (the per-frame i.i.d.
# behaviour of the image benchmarks applied frame by frame, kept for comparison), or drifting
# smoothly: keyframe patterns every SMOOTH_PERIOD frames, blended in between (the slowly
# changing perturbation sequences of ImageNet-P, Hendrycks & Dietterich 2019).
TEMPORAL_MODES = ("static", "iid", "smooth")
SMOOTH_PERIOD = 8  # frames between two keyframe patterns in "smooth" mode

# ImageNet-C's pixel-sized constants (blur radii, fog map size) are defined for 224 x 224
# crops (Hendrycks & Dietterich 2019), and Yi et al. 2021 apply them to 224 x 224 video crops.
# We scale them by min(H, W) / 224 so a corruption covers the same fraction of the frame at
# any resolution, and equals the published one at 224.
REFERENCE_SIDE = 224

# Which severity constants a spatial corruption uses (its ``constants`` option): "imagenet_c",
# exactly the published tables of Hendrycks & Dietterich 2019 (reference code
# hendrycks/robustness, imagenet_c/corruptions.py), for comparison with per-frame published
# results; or "vidsparse" (the default), the same tables except for the few corruptions whose
# published severities do not grow in pixel error, which get a minimally adjusted table (each
# sits next to the published one, saying what changed and why).
CONSTANTS = ("vidsparse", "imagenet_c")


def check_choice(option: str, value, choices: Sequence) -> None:
    """Raise a ValueError naming the option and its allowed values."""
    if value not in choices:
        raise ValueError(f"{option} must be one of {tuple(choices)}, got {value!r}")


def severity_table(constants: str, imagenet_c: Sequence, vidsparse: Sequence | None = None) -> Sequence:
    """The per-severity table for the ``constants`` option (see :data:`CONSTANTS`).

    ``vidsparse`` is our adjusted table, or None where we use the published one as is.
    """
    check_choice("constants", constants, CONSTANTS)
    if constants == "imagenet_c" or vidsparse is None:
        return imagenet_c
    return vidsparse


# The source frames the clip being corrupted holds (their indices in the whole video), or None
# for a whole video. Set by ``registry.corrupt(..., frames=...)`` for the duration of one call,
# so that the corruption functions keep their ``(video, severity, rng, **options)`` signature
# and their options stay the user's.
CLIP_FRAMES: contextvars.ContextVar[np.ndarray | None] = contextvars.ContextVar("clip_frames", default=None)


def clip_frames(num_frames: int) -> np.ndarray:
    """The source index of each of the ``num_frames`` frames being corrupted (see :data:`CLIP_FRAMES`)."""
    frames = CLIP_FRAMES.get()
    if frames is None:
        return np.arange(num_frames)
    if len(frames) != num_frames:
        raise ValueError(f"frames= names {len(frames)} source frames but the clip has {num_frames}")
    return frames


def keyed_rng(key: int, *index: int) -> np.random.Generator:
    """The generator of pattern ``index`` (a frame or keyframe) of the pattern family ``key``."""
    return np.random.default_rng(np.random.SeedSequence(key, spawn_key=tuple(int(i) for i in index)))


def temporal_patterns(rng: np.random.Generator, temporal: str, num_frames: int, draw,
                      blend: str = "variance") -> np.ndarray:
    """``draw(rng, n)`` patterns (an ``n x ...`` array): 1 (static), ``T`` (iid) or ``T`` smooth.

    In ``"smooth"`` mode keyframes are drawn every :data:`SMOOTH_PERIOD` frames and frame ``t``
    blends the two around it, at ``s = t / period - k``: ``blend="variance"`` weighs them
    ``cos(pi s / 2)`` and ``sin(pi s / 2)``, which keeps the variance of zero-mean noise (a linear
    blend would halve it between keyframes, so noise would pulse); ``"linear"`` weighs them
    ``1 - s`` and ``s`` (for maps and angles, which must stay in range).

    Patterns are addressable by frame: the call takes one number from ``rng`` (the family's
    key), and the pattern of source frame ``t`` (iid) or keyframe ``k`` (smooth) is drawn from
    its own generator keyed on (family, ``t`` or ``k``), the static one from (family). So the
    frames of a clip (:data:`CLIP_FRAMES`) get exactly the patterns they get in the whole video,
    without drawing the others.
    """
    check_choice("temporal", temporal, TEMPORAL_MODES)
    family = int(rng.integers(2**63))  # one draw whatever the frames: later draws stay aligned

    def draw_at(indices) -> np.ndarray:
        return np.concatenate([draw(keyed_rng(family, i), 1) for i in indices])

    if temporal == "static":
        return draw(keyed_rng(family), 1)
    frames = clip_frames(num_frames)
    if temporal == "iid":
        return draw_at(frames)
    position = frames / SMOOTH_PERIOD
    key = np.floor(position).astype(int)
    s = position - key
    needed = np.unique(np.concatenate([key, key + 1]))
    keys = draw_at(needed)
    first, second = np.searchsorted(needed, key), np.searchsorted(needed, key + 1)
    a, b = (np.cos(np.pi * s / 2), np.sin(np.pi * s / 2)) if blend == "variance" else (1 - s, s)
    shape = (len(frames),) + (1,) * (keys.ndim - 1)
    return (a.reshape(shape) * keys[first] + b.reshape(shape) * keys[second]).astype(keys.dtype)


def uniform_patterns(rng: np.random.Generator, temporal: str, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform [0, 1) fields, ``N x shape[1:]`` (``shape[0]`` is ``T``), for the temporal mode.

    Smooth uniforms are smoothly blended Gaussians pushed through the normal CDF.
    """
    if temporal != "smooth":
        return temporal_patterns(rng, temporal, shape[0],
                                 lambda r, n: r.random((n,) + shape[1:], dtype=np.float32))
    normal = temporal_patterns(rng, temporal, shape[0],
                               lambda r, n: r.standard_normal((n,) + shape[1:], dtype=np.float32))
    return torch.special.ndtr(torch.from_numpy(normal)).numpy().clip(0, np.nextafter(1, 0, dtype=np.float32))


def normal_patterns(rng: np.random.Generator, temporal: str, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 fields ``N x shape[1:]`` (``shape[0]`` is ``T``)."""
    return temporal_patterns(rng, temporal, shape[0],
                             lambda r, n: r.standard_normal((n,) + shape[1:], dtype=np.float32))


def to_float(video: torch.Tensor) -> torch.Tensor:
    return video.to(torch.float32).div_(255.0)


def to_uint8_(x: torch.Tensor) -> torch.Tensor:
    """Scale ``x`` (float, in [0, 1] or beyond) to uint8 in place, rounding and saturating.

    No need to clamp ``x`` to [0, 1] first: scaling and rounding are monotone, so clamping
    after them gives the same bytes. Skipping that pass and working in place took 2.0 ms
    instead of 3.7 ms on 16 x 224 x 224 x 3 (one thread); the whole numbers go to bytes
    through int16, twice as fast again as float32 to uint8 directly.
    """
    return x.mul_(255.0).round_().clamp_(0, 255).to(torch.int16).to(torch.uint8)


def from_numpy(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A float32 tensor on ``like``'s device (patterns are drawn with numpy for reproducibility)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(like.device)


def reference_scale(height: int, width: int) -> float:
    return min(height, width) / REFERENCE_SIDE


def reference_size(height: int, width: int) -> tuple[int, int]:
    """The frame's size in 224-reference pixels, but never smaller than the frame.

    Random maps with pixel-sized structure (drops, flakes) are built at this size and then
    shrunk to the frame, so a small frame sees them as a downscaled 224 x 224 frame would.
    """
    scale = min(1.0, reference_scale(height, width))
    return round(height / scale), round(width / scale)


# Values in one chunk of frames for the filters below (2 MB of float32): a chunk stays in
# cache across the passes of a filter. Motion blur on 16 x 224 x 224 x 3, one thread: 28 ms
# by chunks of 3 frames, 33 ms frame by frame, 68 ms for the whole clip at once.
CHUNK_ELEMENTS = 1 << 19
# Largest radius filtered directly along an axis (2 multiply-adds per tap pair and value);
# beyond it a Fourier transform along the axis is cheaper. Measured on 16 x 224 x 224 x 3
# (one thread): sigma 3 (radius 12) 21 ms direct, 35-47 ms by FFT; sigma 6 (radius 24) 37 ms
# direct, 30-33 ms by FFT.
DIRECT_MAX_RADIUS = 16


def frame_chunks(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``x`` (T x ...) split into chunks of frames of about :data:`CHUNK_ELEMENTS` values."""
    return x.split(max(1, CHUNK_ELEMENTS // max(1, x[0].numel())))


def replicate_pad(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """``x`` extended along ``dim`` by copies of its first and last slice (any width)."""
    n = x.shape[dim]
    parts = [x.narrow(dim, 0, 1).expand(*x.shape[:dim], before, *x.shape[dim + 1:])] if before else []
    parts.append(x)
    if after:
        parts.append(x.narrow(dim, n - 1, 1).expand(*x.shape[:dim], after, *x.shape[dim + 1:]))
    return torch.cat(parts, dim) if len(parts) > 1 else x


def filter_valid(x: torch.Tensor, taps: Sequence[float], dim: int) -> torch.Tensor:
    """Correlate ``x`` along ``dim`` with odd-length symmetric ``taps``; ``len(taps) - 1`` shorter.

    Only the "valid" outputs (the taps inside ``x``): pad ``x`` first for a same-size result.
    In float32; against the float64 product of spectra this replaced, values moved by less
    than 1e-6 (one uint8 step is 4e-3).
    """
    radius = len(taps) // 2
    n = x.shape[dim] - 2 * radius
    if radius <= DIRECT_MAX_RADIUS:
        out = x.narrow(dim, radius, n) * taps[radius]
        for i in range(radius):  # symmetric: one weight for the pair of taps radius - i away
            out.add_(x.narrow(dim, i, n), alpha=taps[i]).add_(x.narrow(dim, 2 * radius - i, n), alpha=taps[i])
        return out
    # Circular convolution with the flipped taps, their centre at index 0: output i + radius
    # reads x[i:i + len(taps)], so the valid part never wraps and the transform's zero padding
    # (to a length with small prime factors, fast for the FFT) is never read.
    size = fft_size(x.shape[dim])
    kernel = torch.zeros(size, dtype=x.dtype, device=x.device)
    kernel[:len(taps)] = torch.tensor(taps[::-1], dtype=x.dtype)
    spectrum = torch.fft.rfft(kernel.roll(-radius)).view(-1, *[1] * (x.dim() - 1 - dim))
    filtered = torch.fft.irfft(torch.fft.rfft(x, n=size, dim=dim) * spectrum, n=size, dim=dim)
    return filtered.narrow(dim, radius, n)


def fft_size(n: int) -> int:
    """The smallest ``m >= n`` with no prime factor above 5."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def convolve_frames(x: torch.Tensor, kernel: torch.Tensor, frames_per_chunk: int = 16) -> torch.Tensor:
    """Correlate every frame and channel of ``x`` (T x H x W x C) with one odd-sized 2D kernel.

    Same result as ``cv2.filter2D`` / ``F.conv2d``, except that borders replicate the edge
    pixel: unlike reflection that works for kernels larger than the frame, which small clips
    meet at high severity. The product is taken in the Fourier domain, in float64 so that
    round-off stays far below one uint8 step. No corruption calls it now: Gaussian and defocus
    blur are cheaper as separable and row-run sums in float32 (:func:`gaussian_blur`,
    ``spatial.defocus_blur``), and equal this up to float32 rounding.
    """
    t, h, w, c = x.shape
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    size = (h + 2 * ph, w + 2 * pw)
    # Flipped (a product of spectra convolves; filters correlate) and its centre moved to index
    # (0, 0): the circular product then equals the linear one on the crop
    # [ph:ph + h, pw:pw + w] of the padded frame, with no wrap-around.
    centred = torch.zeros(size, dtype=torch.float64, device=x.device)
    centred[:kernel.shape[0], :kernel.shape[1]] = kernel.flip(0, 1).to(centred)
    spectrum = torch.fft.rfft2(torch.roll(centred, (-ph, -pw), dims=(0, 1)))
    chunks = []
    for chunk in x.split(frames_per_chunk):
        planes = F.pad(chunk.permute(0, 3, 1, 2), (pw, pw, ph, ph), mode="replicate").to(torch.float64)
        filtered = torch.fft.irfft2(torch.fft.rfft2(planes) * spectrum, s=size)
        chunks.append(filtered[..., ph:ph + h, pw:pw + w].to(x.dtype).permute(0, 2, 3, 1))
    return torch.cat(chunks)


def shift_and_add(x: torch.Tensor, offsets: Sequence[tuple[int, int]], weights: Sequence[float]):
    """``sum_i w_i * x[y - dy_i, x - dx_i]`` with edge replication: a sparse 2D filter.

    Cheaper than a dense 2D filter for a line kernel (a motion-blur streak has ``2r + 1`` taps
    in a ``(2r + 1)^2`` box). A boolean ``x`` (a 0/1 layer) gives float32 sums, one pass per
    tap: each product is 0 or exactly ``w_i``, so adding ``w_i`` where ``x`` is set gives the
    same sums as multiplying first.
    """
    t, h, w, c = x.shape
    binary = x.dtype == torch.bool
    x = x.to(torch.float32) if binary else x  # (adding a bool tensor takes a slow casting path)
    pad = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    padded = replicate_pad(replicate_pad(x, 1, pad, pad), 2, pad, pad)
    out = term = None
    for (dy, dx), weight in zip(offsets, weights):
        shifted = padded[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w]
        if out is None:  # the first term as it stands (0 + term is term)
            out = shifted * weight
        elif binary:
            out.add_(shifted, alpha=weight)
        else:
            term = torch.empty_like(out) if term is None else term  # reused: fresh ones cost more
            out += torch.mul(shifted, weight, out=term)
    return out


def gaussian_1d(sigma: float, radius: int) -> np.ndarray:
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2.0 * sigma**2))
    return taps / taps.sum()


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur of every frame/channel of ``x`` (T x H x W x C), edges replicated.

    ``truncate`` standard deviations of taps, as ``skimage.filters.gaussian`` (ImageNet-C's).
    One axis at a time (see :func:`filter_valid`), a chunk of frames at a time.
    """
    radius = max(1, math.ceil(truncate * sigma))
    taps = gaussian_1d(sigma, radius).tolist()
    chunks = []
    for chunk in frame_chunks(x):
        rows = filter_valid(replicate_pad(chunk, 1, radius, radius), taps, 1)
        chunks.append(filter_valid(replicate_pad(rows, 2, radius, radius), taps, 2))
    return torch.cat(chunks) if len(chunks) > 1 else chunks[0]


def zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom every frame about its centre by ``factor`` (> 1 enlarges), keeping the size.

    ImageNet-C's ``clipped_zoom`` (crop the central ``1 / factor``, resize it back), done as one
    bilinear ``grid_sample`` over the clip.
    """
    planes = x.permute(0, 3, 1, 2)
    theta = torch.tensor([[1 / factor, 0, 0], [0, 1 / factor, 0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(len(planes), 2, 3), list(planes.shape), align_corners=False)
    return F.grid_sample(planes, grid, mode="bilinear", padding_mode="border",
                         align_corners=False).permute(0, 2, 3, 1)


def resize_maps(maps: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinearly resize ``N x h x w`` maps (antialiased when shrinking)."""
    if maps.shape[-2:] == (height, width):
        return maps
    shrinking = maps.shape[-2] > height or maps.shape[-1] > width
    return F.interpolate(maps[:, None], size=(height, width), mode="bilinear",
                         align_corners=False, antialias=shrinking)[:, 0]


def next_power_of_two(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(n)))


def plasma_fractal(rng: np.random.Generator, size: int, decay: float) -> np.ndarray:
    """A ``size x size`` diamond-square height map in [0, 1] (``size`` a power of two).

    The algorithm ImageNet-C's fog uses: the map wraps around (a torus); each halving of the
    step adds uniform jitter whose amplitude falls by ``decay``, so a smaller decay keeps more
    fine detail. Initial amplitude 100 (its square scales the first jitter) as in ImageNet-C.
    """
    height = np.zeros((size, size), dtype=np.float64)
    step, amplitude = size, 100.0
    while step >= 2:
        half = step // 2

        def jitter(neighbour_sum):
            return neighbour_sum / 4 + amplitude * rng.uniform(-amplitude, amplitude, neighbour_sum.shape)

        corners = height[::step, ::step]
        box = corners + np.roll(corners, -1, axis=0)
        box = box + np.roll(box, -1, axis=1)
        height[half::step, half::step] = jitter(box)
        centres = height[half::step, half::step]
        # Diamond points between two corners on a row, and between two centres above/below.
        on_rows = corners + np.roll(corners, -1, axis=1) + centres + np.roll(centres, 1, axis=0)
        height[::step, half::step] = jitter(on_rows)
        on_cols = corners + np.roll(corners, -1, axis=0) + centres + np.roll(centres, 1, axis=1)
        height[half::step, ::step] = jitter(on_cols)
        step, amplitude = half, amplitude / decay
    height -= height.min()
    return height / height.max()
