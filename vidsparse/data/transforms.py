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
    datasets fork and seed that RNG per sample, so training stays reproducible.

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
        x = clip.permute(0, 3, 1, 2).float().div_(255.0)  # T x C x H x W: frames as a batch
        x = self._resize(x)
        if self.num_crops > 1:
            x = torch.stack([x[..., top:top + self.crop_size, left:left + self.crop_size]
                             for top, left in self.crop_offsets(*x.shape[-2:])])
            x = (x - self.mean) / self.std
            return x.permute(0, 2, 1, 3, 4).contiguous()  # crops x C x T x H x W
        x = self._crop(x, generator)
        if self.train and self.hflip and torch.rand((), generator=generator) < 0.5:
            x = x.flip(-1)
        x = (x - self.mean) / self.std
        return x.permute(1, 0, 2, 3).contiguous()

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

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize is None:
            return x
        height, width = x.shape[-2:]
        short = min(height, width)
        size = (round(height * self.resize / short), round(width * self.resize / short))
        if size == (height, width):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)

    def _crop(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        height, width = x.shape[-2:]
        side = self.crop_size
        [(top, left)] = self.crop_offsets(height, width)  # the centre; checks the crop fits
        if self.train:
            top = int(torch.randint(0, height - side + 1, (), generator=generator))
            left = int(torch.randint(0, width - side + 1, (), generator=generator))
        return x[..., top:top + side, left:left + side]

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
