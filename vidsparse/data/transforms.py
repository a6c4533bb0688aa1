"""Clip transforms: uint8 ``T x H x W x C`` in, normalised float32 ``C x T x H x W`` out.

Kept here rather than taken from a library: torchvision >= 0.28 no longer handles video and
``pytorchvideo.transforms`` does not import with current torchvision.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# The Kinetics-400 statistics torchvision's video models are trained with
# (torchvision/transforms/_presets.py, VideoClassification: R3D-18, MC3, R(2+1)D weights).
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


class VideoTransform:
    """Resize the short side, crop, normalise; channels first.

    Args:
        crop_size: side of the square crop (a model's native input, e.g. 56 for r3d_tiny).
        resize: short side after resizing (bilinear, antialiased); ``None`` keeps the size.
        train: random crop (and random flip if ``hflip``); otherwise the centre crop.
        mean, std: per-channel normalisation of values in [0, 1].
        hflip: random horizontal flips when training. Off by default: a flip turns a
            left-moving clip into a right-moving one, which swaps classes such as the
            synthetic dataset's ``MoveLeft``/``MoveRight`` (or Kinetics' "swiping left").
        num_crops: evaluation crops per clip. 1 (default): the centre crop, output
            ``C x T x H x W``. 3: SlowFast's 3-crop testing, squares of ``crop_size`` at the
            start, centre and end of the long side (left/centre/right for a landscape frame,
            top/centre/bottom for a portrait one), centred on the short side; output
            ``3 x C x T x H x W`` in that order. Only for ``train=False``.

    The random crop and flip draw from torch's global RNG (or ``generator``); the
    datasets fork and seed that RNG per sample, so training stays reproducible. Every step
    is a torch operation on the clip's device: an evaluation transform runs on the GPU for
    clips already there (random crops draw their offsets on the host).

    Example:
        >>> t = VideoTransform(crop_size=56, resize=64, train=False)
        >>> t(torch.zeros(8, 64, 80, 3, dtype=torch.uint8)).shape
        torch.Size([3, 8, 56, 56])
        >>> VideoTransform(56, 64, num_crops=3)(torch.zeros(8, 64, 80, 3, dtype=torch.uint8)).shape
        torch.Size([3, 3, 8, 56, 56])
    """

    def __init__(
        self,
        crop_size: int = 56,
        resize: int | None = 64,
        train: bool = False,
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
        hflip: bool = False,
        num_crops: int = 1,
    ):
        if int(crop_size) != crop_size or crop_size < 1:
            raise ValueError(f"crop_size must be a positive integer, got {crop_size!r}")
        if resize is not None and (int(resize) != resize or resize < 1):
            raise ValueError(f"resize must be a positive integer or None, got {resize!r}")
        if resize is not None and crop_size > resize:
            raise ValueError(f"crop_size {crop_size} is larger than the resized short side "
                             f"{resize}; lower crop_size or raise resize")
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean and std need one value per channel and std > 0, "
                             f"got mean={mean!r} std={std!r}")
        if num_crops not in NUM_CROPS:
            raise ValueError(f"num_crops must be one of {NUM_CROPS}, got {num_crops!r}")
        if num_crops > 1 and train:
            raise ValueError(f"num_crops={num_crops} is for evaluation; a training "
                             f"transform takes one random crop (pass train=False)")
        self.crop_size = int(crop_size)
        self.num_crops = int(num_crops)
        self.resize = None if resize is None else int(resize)
        self.train = bool(train)
        self.hflip = bool(hflip)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, clip: torch.Tensor | np.ndarray,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        clip = torch.as_tensor(clip)
        if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[-1] != len(self.mean):
            raise ValueError(f"VideoTransform expects uint8 T x H x W x {len(self.mean)}, got "
                             f"{clip.dtype} {tuple(clip.shape)}")
        x = to_float_cthw(clip)
        if self.resize is not None:
            x = short_side_resize(x, self.resize)
        if self.num_crops > 1:
            crops = [crop(x, top, left, self.crop_size) for top, left in self.crop_offsets(*x.shape[-2:])]
            return torch.stack([normalize(c, self.mean, self.std) for c in crops])
        [(top, left)] = self.crop_offsets(*x.shape[-2:])  # the centre; checks the crop fits
        x = random_crop(x, self.crop_size, generator) if self.train else crop(x, top, left, self.crop_size)
        if self.train and self.hflip and torch.rand((), generator=generator) < 0.5:
            x = horizontal_flip(x)
        return normalize(x, self.mean, self.std)

    def crop_offsets(self, height: int, width: int) -> list[tuple[int, int]]:
        """``(top, left)`` of each evaluation crop of a resized ``height x width`` frame.

        Example:
            >>> VideoTransform(56, 64, num_crops=3).crop_offsets(64, 80)
            [(4, 0), (4, 12), (4, 24)]
        """
        side = self.crop_size
        if side > height or side > width:
            raise ValueError(f"crop_size {side} is larger than the resized frame "
                             f"{height}x{width} (resize={self.resize})")
        top, left = (height - side) // 2, (width - side) // 2
        if self.num_crops == 1:
            return [(top, left)]
        if height > width:  # portrait: top, centre, bottom
            return [(0, left), (top, left), (height - side, left)]
        return [(top, 0), (top, left), (top, width - side)]

    def __repr__(self) -> str:
        return (f"VideoTransform(crop_size={self.crop_size}, resize={self.resize}, "
                f"train={self.train}, hflip={self.hflip}"
                + (f", num_crops={self.num_crops})" if self.num_crops > 1 else ")"))


# Evaluation crops per clip VideoTransform supports: the centre crop, or SlowFast's 3-crop.
NUM_CROPS = (1, 3)

# Keys of a data config that build_transform reads; the rest of the config is for others.
TRANSFORM_KEYS = ("crop_size", "resize", "mean", "std", "hflip")


def build_transform(data_cfg: Mapping[str, Any], train: bool) -> VideoTransform:
    """A :class:`VideoTransform` from a config's ``data`` section (missing keys take defaults).

    Example:
        >>> build_transform({"root": "data/synthetic", "crop_size": 56}, train=True)
        VideoTransform(crop_size=56, resize=64, train=True, hflip=False)
    """
    kwargs = {k: data_cfg[k] for k in TRANSFORM_KEYS if k in data_cfg}
    if not train and "num_crops" in data_cfg:  # spatial views are for evaluation only
        kwargs["num_crops"] = data_cfg["num_crops"]
    return VideoTransform(train=train, **kwargs)


def stack_views(clips: Sequence[torch.Tensor], transform: Callable | None) -> torch.Tensor:
    """Multi-view testing: transform each temporal clip and stack all views as ``V x ...``.

    A multi-crop transform returns ``crops x C x T x H x W`` per clip; those crops become
    views too, so ``V = clips x crops``.
    """
    if transform is None:
        return torch.stack(list(clips))
    out = [transform(clip) for clip in clips]
    return torch.cat([o if o.ndim == 5 else o.unsqueeze(0) for o in out])


# Functional transforms on float ``C x T x H x W`` clips (the layout models take).

def to_float_cthw(clip: torch.Tensor) -> torch.Tensor:
    """uint8 ``T x H x W x C`` -> float32 ``C x T x H x W`` in [0, 1].

    The result is a view of frame-major (``T x C x H x W``) memory: that is the batch of
    images :func:`short_side_resize` hands to ``interpolate``, whose antialiased kernel runs
    about twice as fast on contiguous planes as on the decoder's interleaved pixels.
    """
    frames = clip.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
    return frames.div_(255.0).transpose(0, 1)


def short_side_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``C x T x H x W`` so its shorter side is ``size`` (bilinear, antialiased)."""
    height, width = x.shape[-2:]
    short = min(height, width)
    new = (round(height * size / short), round(width * size / short))
    if new == (height, width):
        return x
    # interpolate treats dim 0 as the batch: resize the frames (T) as a batch of C-channel images.
    # Contiguous frames first (a no-op after to_float_cthw): the antialiased kernel is slow on
    # strided input, and the copy costs far less than it saves; the values are the same.
    frames = F.interpolate(x.transpose(0, 1).contiguous(), size=new, mode="bilinear",
                           align_corners=False, antialias=True)
    return frames.transpose(0, 1)


def crop(x: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """The ``size x size`` square at (top, left) of every frame."""
    return x[..., top:top + size, left:left + size]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    height, width = x.shape[-2:]
    if size > height or size > width:
        raise ValueError(f"crop {size} is larger than the frame {height}x{width}")
    return crop(x, (height - size) // 2, (width - size) // 2, size)


def random_crop(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random ``size x size`` square, the same on every frame (no jitter in time)."""
    height, width = x.shape[-2:]
    if size > height or size > width:
        raise ValueError(f"crop {size} is larger than the frame {height}x{width}")
    top = int(torch.randint(0, height - size + 1, (), generator=generator))
    left = int(torch.randint(0, width - size + 1, (), generator=generator))
    return crop(x, top, left, size)


def horizontal_flip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def normalize(x: torch.Tensor, mean: Sequence[float] | torch.Tensor,
              std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a ``C x T x H x W`` clip, on the clip's device."""
    # The statistics go to the clip's device (C values): a host tensor cannot be mixed with a
    # GPU one, and the evaluation transforms clips on the GPU when it corrupts there.
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
    return (x - mean) / std
