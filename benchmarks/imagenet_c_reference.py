"""A per-frame numpy reference of the 19 ImageNet-C corruptions, for speed comparison only.

Hendrycks & Dietterich 2019, "Benchmarking neural network robustness to common corruptions and
perturbations": reference code ``hendrycks/robustness`` ``ImageNet-C/imagenet_c/imagenet_c/
corruptions.py`` and its size-generic port, the ``imagecorruptions`` 1.1.2 package (broken on
numpy 2, so not used here). The code is ours; the algorithm of each corruption is theirs, one
``H x W x 3`` uint8 frame at a time, with the libraries they call (numpy, scipy, scikit-image,
OpenCV, Pillow), including the Python double loop of glass blur.

Differences that change no cost: random numbers come from a ``numpy.random.Generator`` (they
use the global ``np.random``); motion blur uses ``imagecorruptions``' numpy port of the
ImageMagick kernel (ImageNet-C calls ImageMagick through Wand, not available here), built
into one sparse 2D kernel for ``cv2.filter2D``; frost blends a procedural texture cached per
frame size instead of reading one of six photographs from disk on every call (so this
reference's frost is, if anything, faster than theirs). Pixel-sized constants (blur sigmas
and radii, glass-blur displacement, elastic and spatter sizes) are defined at 224 x 224 and
scaled by ``min(H, W) / 224`` exactly as ``vidsparse.corruptions`` scales them, so both sides
do the same work; at 224 x 224 they are ImageNet-C's. (Glass blur's displacement is then
fractional at other sizes, and read bilinearly, as vidsparse reads it.)

    from benchmarks.imagenet_c_reference import REFERENCE
    out = REFERENCE["glass_blur"](frame, severity=3, rng=np.random.default_rng(0))
"""

from __future__ import annotations

import functools
import io
import math

import cv2
import numpy as np
import skimage as sk
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scipy_zoom
from skimage.filters import gaussian

REFERENCE_SIDE = 224  # ImageNet-C's crop: its pixel constants are defined at this size
REFERENCE = {}


def register(fn):
    REFERENCE[fn.__name__] = fn
    return fn


def _px(frame: np.ndarray) -> float:
    return min(frame.shape[:2]) / REFERENCE_SIDE


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """ImageNet-C returns float images in [0, 255]; the saved files are uint8."""
    return np.uint8(np.clip(x, 0, 255).round())


# ---- noise -------------------------------------------------------------------------------

@register
def gaussian_noise(frame, severity, rng):
    std = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1]
    x = frame / 255.0
    return _to_uint8(np.clip(x + rng.normal(size=x.shape, scale=std), 0, 1) * 255)


@register
def shot_noise(frame, severity, rng):
    photons = (60, 25, 12, 5, 3)[severity - 1]
    x = frame / 255.0
    return _to_uint8(np.clip(rng.poisson(x * photons) / photons, 0, 1) * 255)


@register
def impulse_noise(frame, severity, rng):
    amount = (0.03, 0.06, 0.09, 0.17, 0.27)[severity - 1]
    x = sk.util.random_noise(frame / 255.0, mode="s&p", amount=amount, rng=rng)
    return _to_uint8(np.clip(x, 0, 1) * 255)


@register
def speckle_noise(frame, severity, rng):
    std = (0.15, 0.2, 0.35, 0.45, 0.6)[severity - 1]
    x = frame / 255.0
    return _to_uint8(np.clip(x + x * rng.normal(size=x.shape, scale=std), 0, 1) * 255)


# ---- blur --------------------------------------------------------------------------------

@register
def gaussian_blur(frame, severity, rng):
    sigma = (1, 2, 3, 4, 6)[severity - 1] * _px(frame)
    return _to_uint8(np.clip(gaussian(frame / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255)


@register
def glass_blur(frame, severity, rng):
    """Blur, then a Python loop over pixels, each taking a random neighbour's value, then blur.

    ``x[a], x[b] = x[b], x[a]`` on numpy rows assigns views: the pixel at ``a`` takes the
    neighbour's value and the neighbour keeps it (a copy, not a swap), as in ImageNet-C. The
    neighbour is up to ``max_delta`` 224-reference pixels away, scaled by ``min(H, W) / 224``
    as vidsparse scales it: at 224 x 224 the offsets are whole (ImageNet-C's copy), at other
    sizes they are fractional and the neighbour's value is read bilinearly and rounded.
    """
    sigma, delta, iterations = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[severity - 1]
    px = _px(frame)
    sigma, reach = sigma * px, math.ceil(delta * px)  # reach: the most pixels an offset spans
    h, w = frame.shape[:2]
    x = np.uint8(gaussian(frame / 255.0, sigma=sigma, channel_axis=-1) * 255)
    for _ in range(iterations):
        for row in range(h - reach, reach, -1):
            for col in range(w - reach, reach, -1):
                dx, dy = rng.integers(-delta, delta, size=2)
                if px == 1:
                    row2, col2 = row + dy, col + dx
                    x[row, col], x[row2, col2] = x[row2, col2], x[row, col]
                else:
                    x[row, col] = _bilinear(x, row + dy * px, col + dx * px)
    return _to_uint8(np.clip(gaussian(x / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255)


def _bilinear(x: np.ndarray, row: float, col: float) -> np.ndarray:
    """The pixel of uint8 ``x`` at a fractional position, interpolated and rounded."""
    r0, c0 = int(row), int(col)  # positions are positive: int() floors
    r1, c1 = min(r0 + 1, x.shape[0] - 1), min(c0 + 1, x.shape[1] - 1)
    fr, fc = row - r0, col - c0
    top = (1 - fc) * x[r0, c0] + fc * x[r0, c1]
    bottom = (1 - fc) * x[r1, c0] + fc * x[r1, c1]
    return np.uint8((1 - fr) * top + fr * bottom + 0.5)


def _disk(radius: float, alias_sigma: float) -> np.ndarray:
    # ImageNet-C: a 17 x 17 grid up to radius 8, then 2r + 1; softened by a 3 x 3 (5 x 5) Gaussian.
    grid = np.arange(-8, 9) if radius <= 8 else np.arange(-radius, radius + 1)
    xs, ys = np.meshgrid(grid, grid)
    disk = ((xs**2 + ys**2) <= radius**2).astype(np.float32)
    disk /= disk.sum()
    size = (3, 3) if radius <= 8 else (5, 5)
    return cv2.GaussianBlur(disk, ksize=size, sigmaX=alias_sigma)


@register
def defocus_blur(frame, severity, rng):
    radius, alias_sigma = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[severity - 1]
    kernel = _disk(radius * _px(frame), alias_sigma)
    x = frame / 255.0
    channels = np.stack([cv2.filter2D(x[..., c], -1, kernel) for c in range(x.shape[-1])], axis=-1)
    return _to_uint8(np.clip(channels, 0, 1) * 255)


def _motion_kernel(radius: float, sigma: float, angle: float, shape) -> np.ndarray:
    """ImageMagick's motion blur as ``imagecorruptions`` ports it, as one 2D correlation kernel.

    ``2r + 1`` taps at integer steps along ``angle``, each offset rounded to a pixel, with
    weights ``exp(-i^2 / 2 sigma^2)`` normalised over all taps; the walk stops at the first tap
    that leaves the image. ``out(p) = sum_i w_i x(p - d_i)`` with replicated edges.
    """
    width = 2 * round(radius) + 1
    steps = np.arange(width)
    weights = np.exp(-steps**2 / (2 * sigma**2))
    weights /= weights.sum()
    taps = []
    for i in steps:
        dy = -math.ceil(i * math.sin(math.radians(angle)) - 0.5)
        dx = -math.ceil(i * math.cos(math.radians(angle)) - 0.5)
        if abs(dy) >= shape[0] or abs(dx) >= shape[1]:
            break
        taps.append((dy, dx, weights[i]))
    reach = max(max(abs(dy), abs(dx)) for dy, dx, _ in taps)
    kernel = np.zeros((2 * reach + 1, 2 * reach + 1), np.float32)
    for dy, dx, weight in taps:
        kernel[reach - dy, reach - dx] += weight
    return kernel


def _motion_blur(x: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    kernel = _motion_kernel(radius, sigma, angle, x.shape)
    return cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REPLICATE)


@register
def motion_blur(frame, severity, rng):
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[severity - 1]
    px = _px(frame)
    x = _motion_blur(frame.astype(np.float32), radius * px, sigma * px, rng.uniform(-45, 45))
    return _to_uint8(x)


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Crop the centre ``1 / factor`` of the frame and zoom it back up (bilinear, scipy)."""
    h, w = x.shape[:2]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    zoomed = scipy_zoom(x[top:top + ch, left:left + cw], (factor, factor, 1), order=1)
    trim_top, trim_left = (zoomed.shape[0] - h) // 2, (zoomed.shape[1] - w) // 2
    return zoomed[trim_top:trim_top + h, trim_left:trim_left + w]


@register
def zoom_blur(frame, severity, rng):
    stop, step = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))[severity - 1]
    factors = np.arange(1, stop, step)
    x = (frame / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for factor in factors:
        out += _clipped_zoom(x, factor)
    return _to_uint8(np.clip((x + out) / (len(factors) + 1), 0, 1) * 255)


# ---- weather -----------------------------------------------------------------------------

@register
def snow(frame, severity, rng):
    loc, scale, zoom, threshold, radius, sigma, weight = (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))[severity - 1]
    px = _px(frame)
    x = frame.astype(np.float32) / 255.0
    layer = rng.normal(size=x.shape[:2], loc=loc, scale=scale)
    layer = _clipped_zoom(layer[..., None], max(1.0, zoom * px))
    layer[layer < threshold] = 0
    # ImageNet-C blurs an 8-bit PNG of the layer with ImageMagick and reads it back.
    layer = np.uint8(np.clip(layer[..., 0], 0, 1) * 255).astype(np.float32)
    layer = _motion_blur(layer, radius * px, sigma * px, rng.uniform(-135, -45))
    layer = (np.round(layer) / 255.0)[..., None]
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    x = weight * x + (1 - weight) * np.maximum(x, grey * 1.5 + 0.5)
    return _to_uint8(np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255)


@functools.lru_cache(maxsize=4)
def _frost_texture(h: int, w: int) -> np.ndarray:
    """A bluish-white frost-like texture, 1.5x the frame, standing in for ImageNet-C's photos."""
    rng = np.random.default_rng(0)
    th, tw = int(1.5 * h) + 1, int(1.5 * w) + 1
    film = gaussian(rng.normal(size=(th, tw)), sigma=6)
    film = (film - film.mean()) / max(film.std(), 1e-6)
    needles = gaussian((rng.normal(size=(th, tw)) > 1.75).astype(np.float32), sigma=1.5) * 4
    texture = np.clip(0.42 + 0.1 * film + 0.5 * needles, 0, 1)[..., None] * np.array([0.9, 0.95, 1.0])
    return np.uint8(texture * 255)


@register
def frost(frame, severity, rng):
    a, b = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[severity - 1]
    h, w = frame.shape[:2]
    texture = _frost_texture(h, w)
    top, left = rng.integers(0, texture.shape[0] - h), rng.integers(0, texture.shape[1] - w)
    crop = texture[top:top + h, left:left + w]
    return _to_uint8(np.clip(a * frame + b * crop, 0, 255))


def _plasma_fractal(rng: np.random.Generator, size: int, decay: float) -> np.ndarray:
    """Diamond-square height map on a ``size x size`` torus, in [0, 1] (ImageNet-C's fog)."""
    height = np.zeros((size, size))
    step, amplitude = size, 100.0
    while step >= 2:
        half = step // 2

        def jittered(total):
            return total / 4 + amplitude * rng.uniform(-amplitude, amplitude, total.shape)

        corners = height[::step, ::step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        height[half::step, half::step] = jittered(square)
        centres = height[half::step, half::step]
        height[::step, half::step] = jittered(centres + np.roll(centres, 1, axis=0)
                                              + corners + np.roll(corners, -1, axis=1))
        height[half::step, ::step] = jittered(centres + np.roll(centres, 1, axis=1)
                                              + corners + np.roll(corners, -1, axis=0))
        step, amplitude = half, amplitude / decay
    height -= height.min()
    return height / height.max()


@register
def fog(frame, severity, rng):
    strength, decay = ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4))[severity - 1]
    h, w = frame.shape[:2]
    x = frame / 255.0
    peak = x.max()
    size = 1 << (max(h, w) - 1).bit_length()  # imagecorruptions: next power of two of the long side
    x = x + strength * _plasma_fractal(rng, size, decay)[:h, :w, None]
    return _to_uint8(np.clip(x * peak / (peak + strength), 0, 1) * 255)


@register
def spatter(frame, severity, rng):
    loc, scale, sigma, threshold, strength, mud = (
        (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1))[severity - 1]
    px = _px(frame)
    x = frame.astype(np.float32) / 255.0
    layer = gaussian(rng.normal(size=x.shape[:2], loc=loc, scale=scale), sigma=sigma * px)
    layer[layer < threshold] = 0
    if not mud:
        # Water: a relief from the drops' edges (Canny, distance, equalised, embossed) shades them.
        layer8 = (layer * 255).astype(np.uint8)
        dist = cv2.distanceTransform(255 - cv2.Canny(layer8, 50, 150), cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, emboss), (3, 3)).astype(np.float32)
        m = layer8 * dist
        m = m / max(m.max(), 1e-12) * strength
        colour = np.array([175, 238, 238], np.float32) / 255.0
        return _to_uint8(np.clip(x + m[..., None] * colour, 0, 1) * 255)
    m = gaussian((layer > threshold).astype(np.float32), sigma=strength * px)
    m[m < 0.8] = 0
    colour = np.array([63, 42, 20], np.float32) / 255.0
    return _to_uint8(np.clip(x * (1 - m[..., None]) + colour * m[..., None], 0, 1) * 255)


# ---- digital -----------------------------------------------------------------------------

@register
def contrast(frame, severity, rng):
    factor = (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1]
    x = frame / 255.0
    means = x.mean(axis=(0, 1), keepdims=True)
    return _to_uint8(np.clip((x - means) * factor + means, 0, 1) * 255)


@register
def brightness(frame, severity, rng):
    shift = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
    hsv = sk.color.rgb2hsv(frame / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0, 1)
    return _to_uint8(np.clip(sk.color.hsv2rgb(hsv), 0, 1) * 255)


@register
def saturate(frame, severity, rng):
    a, b = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))[severity - 1]
    hsv = sk.color.rgb2hsv(frame / 255.0)
    hsv[..., 1] = np.clip(hsv[..., 1] * a + b, 0, 1)
    return _to_uint8(np.clip(sk.color.hsv2rgb(hsv), 0, 1) * 255)


@register
def jpeg_compression(frame, severity, rng):
    quality = (25, 18, 15, 10, 7)[severity - 1]
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


@register
def pixelate(frame, severity, rng):
    factor = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    h, w = frame.shape[:2]
    image = Image.fromarray(frame).resize((int(w * factor), int(h * factor)), Image.BOX)
    return np.asarray(image.resize((w, h), Image.BOX))


@register
def elastic_transform(frame, severity, rng):
    """A random affine warp (OpenCV), then a smooth random displacement (scipy map_coordinates)."""
    alpha, sigma, jitter = ((244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
                            (244 * 0.05, 244 * 0.01, 244 * 0.02), (244 * 0.07, 244 * 0.01, 244 * 0.02),
                            (244 * 0.12, 244 * 0.01, 244 * 0.02))[severity - 1]
    px = _px(frame)
    alpha, sigma, jitter = alpha * px, sigma * px, jitter * px
    image = frame.astype(np.float32) / 255.0
    h, w, c = image.shape
    centre, side = np.float32([h, w]) // 2, min(h, w) // 3
    src = np.float32([centre + side, [centre[0] + side, centre[1] - side], centre - side])
    dst = src + rng.uniform(-jitter, jitter, size=src.shape).astype(np.float32)
    image = cv2.warpAffine(image, cv2.getAffineTransform(src, dst), (w, h), borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dy = (gaussian(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    rows, cols, chans = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    coords = np.stack([rows + dy[..., None], cols + dx[..., None], chans]).reshape(3, -1)
    out = map_coordinates(image, coords, order=1, mode="reflect").reshape(h, w, c)
    return _to_uint8(np.clip(out, 0, 1) * 255)


IMAGENET_C = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "gaussian_blur", "glass_blur",
              "defocus_blur", "motion_blur", "zoom_blur", "snow", "frost", "fog", "spatter", "contrast",
              "brightness", "saturate", "jpeg_compression", "pixelate", "elastic_transform")
assert set(REFERENCE) == set(IMAGENET_C), sorted(set(REFERENCE) ^ set(IMAGENET_C))
