"""Radius-accuracy curves: how much a model relies on low and on high spatial frequencies.

The spectral explanation of Wu et al. (ICLR 2025, "Dynamic Sparse Training versus Dense
Training: The Unexpected Winner in Image Corruption Robustness", Section 5.2), which follows
Wang et al. (CVPR 2020, "High-frequency component helps explain the generalization of
convolutional neural networks") and Yin et al. (NeurIPS 2019, "A Fourier perspective on
model robustness in computer vision"): filter every test input with a low-pass or a
high-pass filter of radius ``r`` in the 2-D Fourier domain of each frame and measure
accuracy as ``r`` grows. A model that keeps its accuracy on low-passed inputs and loses it
on high-passed ones relies on low-frequency content, which most corruptions (noise, blur,
pixelation, compression) damage least.

Definitions (what the tests check by hand):

* The spectrum of a ``H x W`` frame is its 2-D DFT, centred (``fftshift``) so that the zero
  frequency sits at index ``(H // 2, W // 2)``. A coefficient's *radius* is its Euclidean
  distance from that centre in index units: coefficient ``(ky, kx)`` — ``ky`` cycles per frame
  height, ``kx`` cycles per frame width — lies at ``sqrt(ky**2 + kx**2)``. The largest radius
  is ``max_radius(H, W) = sqrt((H // 2)**2 + (W // 2)**2)``.
* ``low`` keeps the coefficients at radius ``<= r`` and zeroes the rest; ``high`` keeps those
  at radius ``> r``. So ``low + high`` is the identity for every ``r``; ``low`` at
  ``r >= max_radius`` is the identity and ``high`` there is all zeros; ``low`` at ``r = 0``
  keeps only each frame's mean (per channel) and ``high`` at ``r = 0`` removes only it.
  Wang et al.'s reference code keeps ``< r`` in the low band; the two differ only at
  coefficients lying exactly on the circle.
* Filtering happens in the pixel domain, on values in [0, 1] *before* normalisation, as the
  papers filter images: :func:`radius_accuracy` takes the normalised clips its dataset
  returns, undoes the normalisation (``x * std + mean``), filters, and normalises again.
  Filtered pixels are not clipped to [0, 1] (a high-passed frame has zero mean). Because
  the filter is linear and always keeps (low) or always drops (high) the zero frequency,
  this differs from filtering the normalised tensor only for ``high``, by the constant
  ``-mean / std`` per channel; pass ``mean=0, std=1`` to filter the normalised tensor
  instead.

The filter acts on the frame the model sees (after resizing and cropping), so radii are in
units of that frame: ``0 ... max_radius(crop, crop)``, about 39.6 for a 56-pixel crop.
"""

from __future__ import annotations

import math
import os
from contextlib import nullcontext
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from vidsparse.models.scoring import clip_scores
from vidsparse.robustness import metrics
from vidsparse.robustness.evaluate import (
    Checkpoint,
    Indexed,
    build_test_split,
    dataset_order,
    gather_batch,
    load_checkpoint,
    subset_indices,
)
from vidsparse.robustness.labels import unique_labels

KINDS = ("low", "high")


# --- the filter ------------------------------------------------------------------------

def max_radius(height: int, width: int) -> float:
    """Distance from the centre of a ``height x width`` centred spectrum to its farthest
    coefficient: a low-pass filter of this radius (or more) keeps everything.

    Example:
        >>> max_radius(56, 56)  # sqrt(28**2 + 28**2)
        39.59797974644666
    """
    return math.hypot(height // 2, width // 2)


def squared_frequency_radius(height: int, width: int,
                             device: torch.device | str | None = None) -> torch.Tensor:
    """``height x (width // 2 + 1)`` int64 squared radius ``ky**2 + kx**2`` of each coefficient
    of ``torch.fft.rfft2``.

    Row ``i`` holds ``ky = fftfreq(height)[i] * height`` (``0, 1, ..., -1``), column ``j`` holds
    ``kx = j``; the distance from the zero frequency equals the distance from
    ``(H // 2, W // 2)`` in the ``fftshift``-ed full spectrum, so no shift is needed. Integers,
    so that a coefficient exactly on the circle is kept on every device and dtype.
    """
    ky = (torch.arange(height, device=device) + height // 2) % height - height // 2
    kx = torch.arange(width // 2 + 1, device=device)
    return ky[:, None] ** 2 + kx[None, :] ** 2


def fourier_mask(height: int, width: int, radius: float, kind: str,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Bool mask over ``rfft2`` coefficients: radius ``<= r`` for ``low``, ``> r`` for ``high``."""
    _check_kind(kind)
    if not radius >= 0:
        raise ValueError(f"radius must be >= 0, got {radius!r}")
    # Squared radii are integers: compare with floor(r^2), allowing for r = hypot(a, b)
    # rounding to just below the root of an integer (max_radius itself, for one).
    radius = min(float(radius), float(height + width))  # beyond every coefficient; no overflow
    limit = math.floor(radius * radius * (1 + 1e-12) + 1e-12)
    inside = squared_frequency_radius(height, width, device) <= limit
    return inside if kind == "low" else ~inside


def fourier_filter(clips: torch.Tensor, radius: float, kind: str) -> torch.Tensor:
    """Low- or high-pass filter every frame of ``clips`` (float ``... x H x W``) in the 2-D
    spatial Fourier domain with a circular mask of ``radius`` (frequency-index units; see the
    module docstring for the exact definition).

    Works on any device and batch shape (``C x T x H x W``, ``B x C x T x H x W``,
    ``B x V x C x T x H x W``); the result has the input's shape, dtype and device. Half
    precision inputs are filtered in float32. An all-pass mask returns an unchanged copy
    and an all-stop mask returns zeros, without a transform.

    Example:
        >>> x = torch.rand(2, 3, 8, 56, 56)
        >>> low, high = fourier_filter(x, 8, "low"), fourier_filter(x, 8, "high")
        >>> torch.allclose(low + high, x, atol=1e-5)
        True
    """
    if not torch.is_floating_point(clips) or clips.ndim < 2:
        raise ValueError(f"fourier_filter expects a float tensor '... x H x W', got "
                         f"{clips.dtype} {tuple(clips.shape)}")
    height, width = clips.shape[-2:]
    mask = fourier_mask(height, width, radius, kind, clips.device)
    if bool(mask.all()):
        return clips.clone()
    if not bool(mask.any()):
        return torch.zeros_like(clips)
    x = clips if clips.dtype in (torch.float32, torch.float64) else clips.float()
    # rfft2 halves the work; the mask depends on ky only through ky**2, so it is
    # Hermitian-symmetric and the inverse is the real image that filtering the full
    # spectrum would give.
    spectrum = torch.fft.rfft2(x, dim=(-2, -1)) * mask
    return torch.fft.irfft2(spectrum, s=(height, width), dim=(-2, -1)).to(clips.dtype)


def filter_pixels(clips: torch.Tensor, radius: float, kind: str,
                  mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Filter normalised clips (channels at dim -4: ``... x C x T x H x W``) in the pixel
    domain: ``normalise(fourier_filter(clips * std + mean))``. ``mean`` and ``std`` hold one
    value per channel."""
    mean = torch.as_tensor(mean, dtype=clips.dtype, device=clips.device).reshape(-1, 1, 1, 1)
    std = torch.as_tensor(std, dtype=clips.dtype, device=clips.device).reshape(-1, 1, 1, 1)
    mask = fourier_mask(*clips.shape[-2:], radius, kind, clips.device)
    if bool(mask.all()):  # bit-exact, so the identity radius gives the clean accuracy
        return clips.clone()
    return (fourier_filter(clips * std + mean, radius, kind) - mean) / std


def default_radii(height: int, width: int, num: int = 9) -> list[int]:
    """``num`` evenly spaced integer radii from 0 to ``ceil(max_radius)``: the curves then end
    at the clean input (low) and at an all-zero input (high).

    Example:
        >>> default_radii(56, 56)
        [0, 5, 10, 15, 20, 25, 30, 35, 40]
    """
    top = math.ceil(max_radius(height, width))
    return sorted({int(round(r)) for r in np.linspace(0, top, num)})


# --- accuracy as the radius grows ------------------------------------------------------

@torch.no_grad()
def radius_accuracy(
    models: Sequence[torch.nn.Module],
    dataset: Dataset,
    radii: Sequence[float] | None = None,
    kind: str | Sequence[str] = KINDS,
    batch_size: int = 8,
    num_workers: int = 0,
    limit: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    clean: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    accelerator: Any = None,
) -> dict[str, Any]:
    """Top-1 accuracy of each model on low- and/or high-pass filtered test clips, per radius.

    Each batch is decoded once; every (kind, radius) filter is applied to it on ``device``
    and fed to all the models. With an ``accelerator`` each process takes a share of the
    clips and the predictions are gathered, as :func:`~vidsparse.robustness.evaluate.evaluate`
    does: every process returns the numbers of one process over all the clips.

    Args:
        models: classifiers of ``B x C x T x H x W`` clips (multi-view ``B x V x ...`` batches
            are scored as :func:`~vidsparse.models.scoring.clip_scores` does).
        dataset: yields ``(normalised float clip, label)``, e.g. a test split built with
            ``build_transform(data_cfg, train=False)`` (it may corrupt on the fly).
        radii: filter radii in frequency-index units of the model's input frame; default
            :func:`default_radii` of the first batch's frame size.
        kind: ``"low"``, ``"high"`` or both.
        limit: at most this many test items, spread evenly over the dataset.
        mean, std: the normalisation the dataset's transform applied (filtering happens on
            pixels before it); default: read from the transform (``VideoTransform.mean/std``).
        clean: also report the unfiltered accuracy.
        accelerator: an ``accelerate.Accelerator`` (``device`` is then its device).

    Returns:
        ``{"radii": [r, ...], "low": [[acc per radius] per model], "high": [...],
        "clean": [acc per model]}`` (only the kinds asked for; ``clean`` if asked).

    Example:
        >>> test = build_dataset(cfg, "test", build_transform(cfg, train=False))
        >>> out = radius_accuracy([dense, rigl], test, radii=[4, 8, 16, 40])
        >>> out["low"][1]  # RigL's accuracy on low-passed clips, one value per radius
        [0.21, 0.38, 0.61, 0.74]
    """
    kinds = [kind] if isinstance(kind, str) else list(kind)
    for k in kinds:
        _check_kind(k)
    if not models:
        raise ValueError("radius_accuracy: no models given")
    if radii is not None:
        radii = [float(r) for r in radii]
        if any(r < 0 for r in radii):
            raise ValueError(f"radii must be >= 0, got {radii}")
    if accelerator is not None:
        device = accelerator.device
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if mean is None or std is None:
        mean, std = _normalisation(dataset, mean, std)
    mean = torch.as_tensor(mean, dtype=torch.float32, device=device).flatten()
    std = torch.as_tensor(std, dtype=torch.float32, device=device).flatten()
    if limit is not None:
        dataset = Subset(dataset, subset_indices(len(dataset), limit))
    models = [m.to(device).eval() for m in models]
    loader = DataLoader(Indexed(dataset), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    if accelerator is not None:
        loader = accelerator.prepare(loader)
    main = accelerator is None or accelerator.is_main_process

    batches: list[np.ndarray] = []   # per batch: videos x passes x models
    labels: list[np.ndarray] = []
    indices: list[np.ndarray] = []
    passes: list[tuple[str, float]] = []
    for clips, batch_labels, index in tqdm(loader, disable=not (progress and main), unit="batch",
                                           desc="spectral"):
        clips = clips.to(device, non_blocking=True)
        if radii is None:  # every process sees clips of the same size: the same radii
            radii = [float(r) for r in default_radii(*clips.shape[-2:])]
        passes = [(k, r) for k in kinds for r in radii] + ([("clean", 0.0)] if clean else [])
        outs = []
        for band, radius in passes:
            x = clips if band == "clean" else filter_pixels(clips, radius, band, mean, std)
            outs.append(torch.stack([clip_scores(model, x).argmax(dim=1) for model in models], dim=1))
        outs = torch.stack(outs, dim=1)
        if accelerator is not None:
            outs, batch_labels, index = gather_batch(accelerator, outs, batch_labels, index)
        batches.append(np.asarray(outs.cpu() if isinstance(outs, torch.Tensor) else outs))
        labels.append(np.asarray(batch_labels))
        indices.append(np.asarray(index))
    if not labels:
        raise ValueError("radius_accuracy: the dataset is empty")
    order = dataset_order(indices)
    y = np.concatenate(labels)[order]
    predictions = np.concatenate(batches)[order]   # videos x passes x models

    def acc(key: tuple[str, float]) -> list[float]:
        column = predictions[:, passes.index(key)]
        return [metrics.accuracy(column[:, i], y) for i in range(len(models))]

    result: dict[str, Any] = {"radii": [_plain(r) for r in radii]}
    for k in kinds:
        per_radius = [acc((k, r)) for r in radii]  # radius x model
        result[k] = [list(col) for col in zip(*per_radius)]  # model x radius
    if clean:
        result["clean"] = acc(("clean", 0.0))
    return result


def spectral_curves(
    checkpoints: Sequence[str | os.PathLike | Checkpoint | torch.nn.Module],
    data: str | os.PathLike | Dataset,
    radii: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    limit: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    accelerator: Any = None,
) -> dict[str, Any]:
    """Low- and high-pass radius-accuracy curves of several models, in the form
    ``results["spectral"]`` of a robustness report holds.

    Args:
        checkpoints: run directories, :class:`Checkpoint` s, or bare models (then ``data``
            must be a dataset and ``labels`` should name them).
        data: a clean dataset root (the test split is built from the checkpoints' shared data
            config, as :func:`~vidsparse.robustness.evaluate.evaluate` does) or a ready dataset
            of normalised clips.
        radii: default :func:`default_radii` of the model's input frame.
        labels: one per model; default the method labels of the report ("Dense",
            "RigL sparsity 0.5", ...) or ``"model 0"``, ``"model 1"``, ... for bare models.
        accelerator: shard the clips over its processes (see :func:`radius_accuracy`).

    Returns:
        ``{"radii": [r, ...], "curves": {label: {"low": [acc per radius],
        "high": [acc per radius]}}}``.

    Example:
        >>> spec = spectral_curves(["runs/dense", "runs/rigl"], "data/ucf101", limit=50)
        >>> spec["curves"]["RigL sparsity 0.5"]["low"]
        [0.33, 0.41, 0.58, ...]
    """
    if accelerator is not None:
        device = accelerator.device
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    loaded = [c if isinstance(c, (Checkpoint, torch.nn.Module)) else load_checkpoint(c, device)
              for c in checkpoints]
    if not loaded:
        raise ValueError("spectral_curves: no checkpoints given")
    ckpts = [c for c in loaded if isinstance(c, Checkpoint)]
    if isinstance(data, Dataset):
        dataset = data
    else:
        if len(ckpts) != len(loaded):
            raise ValueError("spectral_curves: bare models carry no data config; pass a "
                             "dataset instead of a data root")
        # The first process on each machine indexes the videos; the others read its cache.
        with accelerator.local_main_process_first() if accelerator is not None else nullcontext():
            dataset = build_test_split(ckpts, data)
    if labels is None:
        labels = (unique_labels([c.config for c in ckpts], [c.path for c in ckpts])
                  if len(ckpts) == len(loaded) else [f"model {i}" for i in range(len(loaded))])
    labels = list(labels)
    if len(labels) != len(loaded) or len(set(labels)) != len(labels):
        raise ValueError(f"spectral_curves: need one distinct label per model, got {labels}")
    models = [c.model if isinstance(c, Checkpoint) else c for c in loaded]
    out = radius_accuracy(models, dataset, radii, KINDS, batch_size=batch_size,
                          num_workers=num_workers, limit=limit, clean=False, device=device,
                          progress=progress, accelerator=accelerator)
    return {"radii": out["radii"],
            "curves": {label: {"low": out["low"][i], "high": out["high"][i]}
                       for i, label in enumerate(labels)}}


# --- helpers ---------------------------------------------------------------------------

def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _normalisation(dataset: Any, mean: Any, std: Any) -> tuple[Any, Any]:
    """The transform's per-channel mean and std, looking through ``Subset`` wrappers."""
    inner = dataset
    while isinstance(inner, Subset):
        inner = inner.dataset
    transform = getattr(inner, "transform", None)
    found_mean, found_std = getattr(transform, "mean", None), getattr(transform, "std", None)
    if (mean is None and found_mean is None) or (std is None and found_std is None):
        raise ValueError("radius_accuracy: cannot tell how the dataset's clips were normalised "
                         "(its transform has no mean/std); pass mean= and std= (mean=0, std=1 "
                         "if the clips are not normalised)")
    return (found_mean if mean is None else mean), (found_std if std is None else std)


def _plain(r: float) -> float | int:
    """A radius as JSON shows it best: ``8`` rather than ``8.0``."""
    return int(r) if float(r).is_integer() else float(r)
