"""Torch/numpy primitives shared by the corruptions: float conversion, patterns, filters, fractals.

Everything works on a batch of clips at once, as a float ``B x T x H x W x C`` tensor in
[0, 1] (the value range ImageNet-C computes in), on the device the clips are on. Random
numbers always come from the callers' ``numpy.random.Generator`` objects (one per clip), so
that a seed gives the same clip on any machine and any device: patterns are drawn on the
host, copied to the device once per call and used there.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

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

# Which severity constants a spatial corruption uses (its ``constants`` option):
# * "vidsparse" (the default): ImageNet-C's tables, except for the few corruptions whose
#   published severities do not grow in pixel error, which get a minimally adjusted table (each
#   sits next to the published one, saying what changed and why);
# * "imagenet_c": exactly the published tables of Hendrycks & Dietterich 2019 (reference code
#   hendrycks/robustness, imagenet_c/corruptions.py), for comparison with per-frame results;
# * "mini_kinetics_c" and "ucf101_p": the tables of the video benchmarks of Yi et al. 2021 and
#   Schiappa et al. 2023, which reuse ImageNet-C's except for a few corruptions (each defined
#   next to ImageNet-C's table, with its source); ImageNet-C's elsewhere.
VIDEO_BENCHMARKS = ("mini_kinetics_c", "ucf101_p")
CONSTANTS = ("vidsparse", "imagenet_c") + VIDEO_BENCHMARKS


def check_choice(option: str, value, choices: Sequence) -> None:
    """Raise a ValueError naming the option and its allowed values."""
    if value not in choices:
        raise ValueError(f"{option} must be one of {tuple(choices)}, got {value!r}")


def severity_table(constants: str, imagenet_c: Sequence, vidsparse: Sequence | None = None,
                   **benchmarks: Sequence) -> Sequence:
    """The per-severity table for the ``constants`` option (see :data:`CONSTANTS`).

    ``vidsparse`` is our adjusted table, or None where we use ImageNet-C's as is. A video
    benchmark that publishes its own table for the corruption passes it by name; the others
    reuse ImageNet-C's, as the benchmarks' code does.

    Example:
        >>> severity_table("mini_kinetics_c", (0.4, 0.3, 0.2, 0.1, 0.05), mini_kinetics_c=(0.5, 0.4, 0.3, 0.2, 0.1))
        (0.5, 0.4, 0.3, 0.2, 0.1)
    """
    check_choice("constants", constants, CONSTANTS)
    unknown = sorted(set(benchmarks) - set(VIDEO_BENCHMARKS))
    if unknown:  # a misspelt benchmark would silently fall back to ImageNet-C's table
        raise TypeError(f"severity_table: unknown benchmark table(s) {unknown}; known: {VIDEO_BENCHMARKS}")
    if constants == "vidsparse":
        return imagenet_c if vidsparse is None else vidsparse
    return benchmarks.get(constants, imagenet_c)


# The source frames of the clips being corrupted (their indices in the whole videos): a
# ``B x T`` integer array for the ``B`` clips of one call, or None for whole videos. Set by
# ``registry.corrupt(..., frames=...)`` for the duration of one call, so that the corruption
# functions keep their ``(video, severity, rngs, **options)`` signature and their options stay
# the user's.
CLIP_FRAMES: contextvars.ContextVar[np.ndarray | None] = contextvars.ContextVar("clip_frames", default=None)

# The float type the corruptions compute in: float32, the reference. The tests compute in
# float64 as well (``computing_in``) to bound how far another float32 implementation of the
# same operations (a GPU's kernels) can move the output bytes.
COMPUTE_DTYPE: contextvars.ContextVar[torch.dtype] = contextvars.ContextVar("compute_dtype", default=torch.float32)


def float_dtype() -> torch.dtype:
    """The float type corruptions compute in (see :data:`COMPUTE_DTYPE`)."""
    return COMPUTE_DTYPE.get()


@contextlib.contextmanager
def computing_in(dtype: torch.dtype) -> Iterator[None]:
    """Compute the corruptions called inside the block in ``dtype`` (float32 or float64)."""
    token = COMPUTE_DTYPE.set(dtype)
    try:
        yield
    finally:
        COMPUTE_DTYPE.reset(token)


def clip_frames(clip: int, num_frames: int) -> np.ndarray:
    """The source index of each of the ``num_frames`` frames of clip ``clip`` (see :data:`CLIP_FRAMES`)."""
    frames = CLIP_FRAMES.get()
    if frames is None:
        return np.arange(num_frames)
    if frames.shape[-1] != num_frames:
        raise ValueError(f"frames= names {frames.shape[-1]} source frames but the clip has {num_frames}")
    return frames[clip]


def keyed_rng(key: int, *index: int) -> np.random.Generator:
    """The generator of pattern ``index`` (a frame or keyframe) of the pattern family ``key``."""
    return np.random.default_rng(np.random.SeedSequence(key, spawn_key=tuple(int(i) for i in index)))


@dataclass(frozen=True)
class PatternPlan:
    """The patterns one clip draws, and in ``"smooth"`` mode how its frames blend them.

    ``keys`` holds the index of each pattern in the family: ``()`` for the static pattern,
    ``(t,)`` for frame ``t`` (iid) or keyframe ``t`` (smooth). ``smooth`` is None or, per frame,
    the positions in ``keys`` of the keyframes before and after it and where it lies between
    them (``s`` in [0, 1)).
    """

    family: int
    keys: tuple[tuple[int, ...], ...]
    smooth: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def pattern_plans(rngs: Sequence[np.random.Generator], temporal: str, num_frames: int) -> list[PatternPlan]:
    """Which patterns each clip draws in mode ``temporal``: 1 (static), ``T`` (iid) or keyframes (smooth).

    In ``"smooth"`` mode keyframes are drawn every :data:`SMOOTH_PERIOD` frames and frame ``t``
    blends the two around it, at ``s = t / period - k`` (see :func:`blend_weights`).

    Patterns are addressable by frame: the call takes one number from each clip's generator
    (the family's key), and the pattern of source frame ``t`` (iid) or keyframe ``k`` (smooth)
    is drawn from its own generator keyed on (family, ``t`` or ``k``), the static one from
    (family). So the frames of a clip (:data:`CLIP_FRAMES`) get exactly the patterns they get
    in the whole video, without drawing the others.
    """
    check_choice("temporal", temporal, TEMPORAL_MODES)
    plans = []
    for clip, rng in enumerate(rngs):
        family = int(rng.integers(2**63))  # one draw whatever the frames: later draws stay aligned
        if temporal == "static":
            plans.append(PatternPlan(family, ((),)))
            continue
        frames = clip_frames(clip, num_frames)
        if temporal == "iid":
            plans.append(PatternPlan(family, tuple((int(t),) for t in frames)))
            continue
        position = frames / SMOOTH_PERIOD
        key = np.floor(position).astype(int)
        needed = np.unique(np.concatenate([key, key + 1]))
        smooth = (np.searchsorted(needed, key), np.searchsorted(needed, key + 1), position - key)
        plans.append(PatternPlan(family, tuple((int(k),) for k in needed), smooth))
    return plans


def blend_weights(s: np.ndarray, blend: str) -> tuple[np.ndarray, np.ndarray]:
    """The weights of the keyframes before and after a frame at ``s`` between them.

    ``"variance"``: ``cos(pi s / 2)`` and ``sin(pi s / 2)``, which keeps the variance of
    zero-mean noise (a linear blend would halve it between keyframes, so noise would pulse);
    ``"linear"``: ``1 - s`` and ``s`` (for maps and angles, which must stay in range).
    """
    check_choice("blend", blend, ("variance", "linear"))
    return (np.cos(np.pi * s / 2), np.sin(np.pi * s / 2)) if blend == "variance" else (1 - s, s)


def _draw(plan: PatternPlan, draw: Callable) -> np.ndarray:
    return np.concatenate([draw(keyed_rng(plan.family, *key), 1) for key in plan.keys])


def host_patterns(plans: Sequence[PatternPlan], draw: Callable, blend: str = "variance") -> np.ndarray:
    """``B x N x ...`` numpy patterns, ``draw(rng, 1)`` each, blended on the host.

    For small patterns the host needs (angles, affine points): field-sized ones go through
    :func:`device_patterns`. In smooth mode a frame's pattern is the float64 blend of its
    keyframes, cast back to their dtype.
    """
    out = []
    for plan in plans:
        keys = _draw(plan, draw)
        if plan.smooth is not None:
            first, second, s = plan.smooth
            a, b = blend_weights(s, blend)
            shape = (len(first),) + (1,) * (keys.ndim - 1)
            keys = (a.reshape(shape) * keys[first] + b.reshape(shape) * keys[second]).astype(keys.dtype)
        out.append(keys)
    return np.stack(out)


def temporal_patterns(rngs: Sequence[np.random.Generator], temporal: str, num_frames: int, draw: Callable,
                      blend: str = "variance") -> np.ndarray:
    """``B x N x ...`` host patterns (:func:`host_patterns`) for mode ``temporal``."""
    return host_patterns(pattern_plans(rngs, temporal, num_frames), draw, blend)


def device_patterns(plans: Sequence[PatternPlan], draw: Callable, like: torch.Tensor, blend: str = "variance",
                    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """``B x N x ...`` patterns on ``like``'s device: drawn on the host, copied once, blended there.

    Every distinct pattern of the clips (``draw(rng, 1)`` each, keyed as in
    :func:`pattern_plans`) is drawn once — views of one video share its seed, so its
    patterns — on several host threads for a device (:func:`draw_all`), and all go to the
    device in one copy; ``prepare`` (e.g. a blur) then runs on them at once, and in smooth
    mode each frame blends its two keyframes there. The blend is the float64 one of
    :func:`host_patterns`, so the float32 result is the same bytes on every device.
    """
    slots: dict[tuple[int, tuple[int, ...]], int] = {}
    positions = [np.array([slots.setdefault((plan.family, key), len(slots)) for key in plan.keys]) for plan in plans]
    drawn = np.concatenate(draw_all([lambda f=family, k=key: draw(keyed_rng(f, *k), 1) for family, key in slots],
                                    like))
    smooth = plans[0].smooth is not None  # every clip of a call has the same mode
    dtype = float_dtype()
    # Float32 unless the values must stay exact: smooth keyframes (the blend rounds once, at the
    # end) and float64 computation.
    exact = smooth or dtype == torch.float64
    keys = to_device(drawn.astype(np.promote_types(drawn.dtype, np.float32) if exact else np.float32, copy=False),
                     like)
    if prepare is not None:
        keys = prepare(keys.to(dtype))
    if not smooth:
        keys = keys.to(dtype)
        if len(slots) == sum(len(p) for p in positions):  # no pattern shared: already in order
            return keys.unflatten(0, (len(plans), -1))
        return keys[to_device(np.stack(positions), like)]
    index = to_device(np.stack([[clip[plan.smooth[j]] for plan, clip in zip(plans, positions)] for j in (0, 1)]), like)
    a, b = blend_weights(np.stack([plan.smooth[2] for plan in plans]), blend)
    weights = to_device(np.stack([a, b]).reshape(2, *a.shape, *[1] * (keys.dim() - 1)), like)
    keys = keys.to(torch.float64)
    return (weights[0] * keys[index[0]] + weights[1] * keys[index[1]]).to(dtype)


# Host threads that draw the patterns of a batch on a device at once: numpy fills an array
# without holding the GIL, and on a GPU these draws are what bounds the noise corruptions. On
# the CPU the patterns are drawn one after the other, as in a data loader worker (one thread).
DRAW_THREADS = 8
_draw_pool: tuple[int, ThreadPoolExecutor] | None = None  # (the process that made it, the pool)


def draw_all(jobs: Sequence[Callable[[], np.ndarray]], like: torch.Tensor) -> list[np.ndarray]:
    """Every job's array, in order: on up to :data:`DRAW_THREADS` threads for a batch on a device."""
    global _draw_pool
    threads = 1 if like.device.type == "cpu" else min(len(jobs), DRAW_THREADS, torch.get_num_threads())
    if threads <= 1:
        return [job() for job in jobs]
    if _draw_pool is None or _draw_pool[0] != os.getpid():  # a forked child has the pool but not its threads
        _draw_pool = (os.getpid(), ThreadPoolExecutor(DRAW_THREADS, thread_name_prefix="vidsparse-draw"))
    shares = _draw_pool[1].map(lambda first: [job() for job in jobs[first::threads]], range(threads))
    out: list[np.ndarray] = [None] * len(jobs)
    for first, arrays in enumerate(shares):  # share i holds jobs i, i + threads, ...
        out[first::threads] = arrays
    return out


def normal_fields(rngs: Sequence[np.random.Generator], temporal: str, shape: tuple[int, ...],
                  like: torch.Tensor) -> torch.Tensor:
    """Standard normal fields ``B x N x shape[1:]`` on ``like``'s device (``shape[0]`` is ``T``)."""
    return device_patterns(pattern_plans(rngs, temporal, shape[0]),
                           lambda r, n: r.standard_normal((n,) + tuple(shape[1:]), dtype=np.float32), like)


def uniform_fields(rngs: Sequence[np.random.Generator], temporal: str, shape: tuple[int, ...],
                   like: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) fields ``B x N x shape[1:]`` on ``like``'s device (``shape[0]`` is ``T``).

    Smooth uniforms are smoothly blended Gaussians pushed through the normal CDF.
    """
    plans = pattern_plans(rngs, temporal, shape[0])
    if temporal != "smooth":
        return device_patterns(plans, lambda r, n: r.random((n,) + tuple(shape[1:]), dtype=np.float32), like)
    normal = device_patterns(plans, lambda r, n: r.standard_normal((n,) + tuple(shape[1:]), dtype=np.float32), like)
    below_one = 1.0 - torch.finfo(normal.dtype).eps / 2  # the largest float below 1
    return torch.special.ndtr(normal).clamp_(0, below_one)


# Device types whose copies from the host go through pinned memory, so that they need not wait
# for the device (a copy from pageable memory makes the host wait on CUDA).
PINNED_COPIES = ("cuda",)


def to_device(array: np.ndarray | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``array`` (numpy, or a tensor) on ``like``'s device, without waiting for the device.

    On a CUDA device the copy goes through pinned memory (``non_blocking``), so the host can
    draw the next patterns while the device works: no per-call synchronisation. On the CPU
    the result may share ``array``'s memory.
    """
    tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
    if tensor.device == like.device:
        return tensor
    if like.device.type in PINNED_COPIES and tensor.device.type == "cpu":
        tensor = tensor.pin_memory()
    return tensor.to(like.device, non_blocking=True)


def constant(values, like: torch.Tensor) -> torch.Tensor:
    """Small constants (a colour, weights) as a :func:`float_dtype` tensor on ``like``'s device."""
    return to_device(np.asarray(values, dtype=np.float64 if float_dtype() == torch.float64 else np.float32), like)


def to_float(video: torch.Tensor) -> torch.Tensor:
    return video.to(float_dtype()).div_(255.0)


def to_uint8_(x: torch.Tensor) -> torch.Tensor:
    """Scale ``x`` (float, in [0, 1] or beyond) to uint8 in place, rounding and saturating.

    No need to clamp ``x`` to [0, 1] first: scaling and rounding are monotone, so clamping
    after them gives the same bytes. Skipping that pass and working in place took 2.0 ms
    instead of 3.7 ms on 16 x 224 x 224 x 3 (one thread); the whole numbers go to bytes
    through int16, twice as fast again as float32 to uint8 directly.
    """
    return x.mul_(255.0).round_().clamp_(0, 255).to(torch.int16).to(torch.uint8)


def from_numpy(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A float tensor (:func:`float_dtype`) on ``like``'s device (see :func:`to_device`)."""
    return to_device(np.asarray(array, dtype=np.float32), like).to(float_dtype())


def frames_of(x: torch.Tensor) -> torch.Tensor:
    """``B x T x ...`` as ``(B T) x ...``: the frames of every clip, for per-frame work."""
    return x.flatten(0, 1)


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
    """``x`` (T x ...) split into chunks of frames of about :data:`CHUNK_ELEMENTS` values.

    On the CPU only: the chunks are for its caches, and a GPU is faster with every frame in
    one launch. The filters work frame by frame, so chunks do not change a value.
    """
    if x.device.type != "cpu":
        return (x,)
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
    kernel = np.zeros(size, dtype=np.float32 if x.dtype == torch.float32 else np.float64)
    kernel[:len(taps)] = taps[::-1]
    spectrum = torch.fft.rfft(to_device(np.roll(kernel, -radius), x)).view(-1, *[1] * (x.dim() - 1 - dim))
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
    in a ``(2r + 1)^2`` box). A boolean ``x`` (a 0/1 layer) gives float sums, one pass per
    tap: each product is 0 or exactly ``w_i``, so adding ``w_i`` where ``x`` is set gives the
    same sums as multiplying first.
    """
    t, h, w, c = x.shape
    binary = x.dtype == torch.bool
    x = x.to(float_dtype()) if binary else x  # (adding a bool tensor takes a slow casting path)
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
    theta = constant([[1 / factor, 0, 0], [0, 1 / factor, 0]], x)
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
