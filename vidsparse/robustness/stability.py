"""Prediction stability in time: how often a model changes its mind between overlapping clips.

ImageNet-P's flip probability (Hendrycks & Dietterich, ICLR 2019, "Benchmarking neural
network robustness to common corruptions and perturbations", Section 3) applied to the time
axis of a video. ImageNet-P shows a classifier sequences of slightly perturbed frames
``x_1 ... x_n`` and, for temporally related sequences, counts how often the top-1
prediction differs between consecutive frames:

    FP = 1 / (m (n - 1)) * sum_i sum_{j=2..n} 1[f(x_j^(i)) != f(x_{j-1}^(i))]

over ``m`` sequences. Here sequence ``i`` is ``K`` (``clips_per_video``) consecutive clips
of test video ``i`` whose starts lie ``stride`` frames apart; with ``stride`` smaller than the
clip span consecutive clips share most of their frames, so a stable model should rarely flip.
Every video contributes ``K - 1`` pairs, so the mean of the per-video flip fractions equals
the pooled fraction above. (ImageNet-P also normalises FP by AlexNet's to get a "flip
rate"; we report the unnormalised probability, which the Dense-vs-DST comparison needs.)

Which clips: clip ``k`` (``0 <= k < K``) starts at ``s + k * stride`` and takes
``frames_per_clip`` frames every ``sampling_rate`` frames, as the dataset's clips do, with
``s`` chosen to centre the ``K`` clips in the video — so for odd ``K`` with an even
``(K - 1) * stride`` the middle clip is exactly the dataset's centred test clip. A video
shorter than the clips need is looped (indices wrap around), as the dataset loops it.

Under a corruption, the whole video is decoded, corrupted with its own per-video seed
(``corruption(video, path)``, as the datasets and ``corrupt_dataset`` do) and the clips are
taken from the result, so temporally coherent corruption patterns stay coherent across
the clips, and a temporal corruption that changes the length is sliced after it did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from vidsparse.data.clips import clip_span
from vidsparse.data.decode import read_frames, read_video
from vidsparse.models.scoring import clip_scores
from vidsparse.robustness.evaluate import Indexed, dataset_order, gather_batch, relative_path, subset_indices


def sequence_clip_indices(num_frames: int, frames_per_clip: int, sampling_rate: int,
                          clips_per_video: int, stride: int) -> list[list[int]]:
    """Frame indices of ``clips_per_video`` clips whose starts are ``stride`` frames apart,
    centred in the video; indices wrap around in a video too short for them.

    Example:
        >>> sequence_clip_indices(16, 4, 2, 3, 1)  # span 7, 3 clips cover 9: start (16-9)//2
        [[3, 5, 7, 9], [4, 6, 8, 10], [5, 7, 9, 11]]
    """
    for name, value in (("num_frames", num_frames), ("clips_per_video", clips_per_video),
                        ("stride", stride)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    span = clip_span(frames_per_clip, sampling_rate)
    first = (num_frames - span - (clips_per_video - 1) * stride) // 2  # < 0: wraps, centred
    return [[(first + k * stride + j * sampling_rate) % num_frames for j in range(frames_per_clip)]
            for k in range(clips_per_video)]


class ClipSequences(Dataset):
    """``(K x clip, label)`` per video of a :class:`~vidsparse.data.datasets.VideoClipDataset`:
    the ``K`` overlapping clips :func:`sequence_clip_indices` names, each through the
    dataset's transform, stacked. ``corruption`` (default: the dataset's own) is applied to
    the whole decoded video before the clips are cut."""

    def __init__(self, dataset: Any, clips_per_video: int, stride: int,
                 corruption: Callable[[torch.Tensor, Path], torch.Tensor] | None = None,
                 indices: Sequence[int] | None = None):
        if int(clips_per_video) != clips_per_video or clips_per_video < 2:
            raise ValueError(f"clips_per_video must be an integer >= 2 (a flip needs a pair), "
                             f"got {clips_per_video!r}")
        if int(stride) != stride or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        span = clip_span(dataset.frames_per_clip, dataset.sampling_rate)
        if stride >= span:
            raise ValueError(f"stride {stride} does not make overlapping clips: a clip spans "
                             f"{span} frames ({dataset.frames_per_clip} frames every "
                             f"{dataset.sampling_rate}); use a stride below {span}")
        if getattr(dataset.transform, "train", False):
            raise ValueError("the dataset's transform is a training transform (random crops "
                             "would flip predictions by themselves); build it with train=False")
        self.dataset = dataset
        self.clips_per_video = int(clips_per_video)
        self.stride = int(stride)
        if corruption is None:
            corruption = getattr(dataset, "corruption", None)
        self.corruption = corruption
        self.indices = list(range(len(dataset))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def clip_indices(self, num_frames: int) -> list[list[int]]:
        d = self.dataset
        return sequence_clip_indices(num_frames, d.frames_per_clip, d.sampling_rate,
                                     self.clips_per_video, self.stride)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        d = self.dataset
        index = self.indices[item]
        path, label = d.samples[index]
        if self.corruption is None:
            clips = self.clip_indices(d.num_frames(index))
            wanted = sorted({i for c in clips for i in c})
            frames = torch.from_numpy(read_frames(path, wanted, d.backend))
            where = {frame: row for row, frame in enumerate(wanted)}
            clips = [[where[i] for i in c] for c in clips]
        else:
            frames = self.corruption(torch.from_numpy(read_video(path, d.backend)[0]), path)
            clips = self.clip_indices(frames.shape[0])
        views = [frames[c] for c in clips]
        if d.transform is not None:
            views = [d.transform(v) for v in views]
        return torch.stack(views), label


@torch.no_grad()
def flip_rate(
    models: Sequence[torch.nn.Module],
    dataset: Any,
    clips_per_video: int = 8,
    stride: int = 1,
    corruption: Callable[[torch.Tensor, Path], torch.Tensor] | None = None,
    batch_size: int = 2,
    num_workers: int = 0,
    limit: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    accelerator: Any = None,
) -> dict[str, Any]:
    """How often each model's top-1 prediction changes between consecutive overlapping clips.

    Args:
        models: classifiers of ``B x C x T x H x W`` clips (a multi-crop transform's
            ``V x C x T x H x W`` views are averaged as ``clip_scores`` does).
        dataset: a test :class:`~vidsparse.data.datasets.VideoClipDataset` with an evaluation
            transform; its clip length, sampling rate, backend and transform are used.
        clips_per_video: ``K >= 2`` clips per video, ``K - 1`` consecutive pairs.
        stride: frames between consecutive clip starts, below the clip span so clips overlap
            (1: every possible start, ImageNet-P's "one frame later").
        corruption: a :class:`~vidsparse.corruptions.Corruption` (or any
            ``(video, path) -> video``) applied to each whole video before the clips are
            cut; default the dataset's own ``corruption`` (to force clean clips pass
            ``dataset.with_corruption(None)``).
        batch_size: videos per batch (each brings ``K`` clips).
        limit: at most this many videos, spread evenly over the dataset.
        accelerator: an ``accelerate.Accelerator``: each process takes a share of the videos
            and the predictions are gathered, as
            :func:`~vidsparse.robustness.evaluate.evaluate` does; every process returns the
            whole result (``device`` is then the accelerator's).

    Returns:
        ``{"flip_rate": [per model], "accuracy": [per model, over all clips],
        "per_video": [[flip fraction per video] per model], "predictions":
        [[[class per clip] per video] per model], "labels": [per video], "videos": [paths
        relative to the dataset root], "clips_per_video": K, "stride": stride}``.

    Example:
        >>> test = build_dataset(cfg, "test", build_transform(cfg, train=False))
        >>> out = flip_rate([dense, rigl], test, clips_per_video=8, stride=2,
        ...                 corruption=Corruption("gaussian_noise", severity=3))
        >>> out["flip_rate"]
        [0.12, 0.07]
    """
    if not models:
        raise ValueError("flip_rate: no models given")
    if accelerator is not None:
        device = accelerator.device
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    keep = subset_indices(len(dataset), limit)
    sequences = ClipSequences(dataset, clips_per_video, stride, corruption, keep)
    loader = DataLoader(Indexed(sequences), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    if accelerator is not None:
        loader = accelerator.prepare(loader)
    main = accelerator is None or accelerator.is_main_process
    models = [m.to(device).eval() for m in models]
    batches: list[np.ndarray] = []   # per batch: videos x models x K
    labels: list[np.ndarray] = []
    indices: list[np.ndarray] = []
    for clips, batch_labels, index in tqdm(loader, disable=not (progress and main), unit="batch",
                                           desc="flip rate"):
        clips = clips.to(device, non_blocking=True)
        videos, k = clips.shape[:2]
        outs = torch.stack([clip_scores(model, clips.flatten(0, 1)).argmax(dim=1).view(videos, k)
                            for model in models], dim=1)
        if accelerator is not None:
            outs, batch_labels, index = gather_batch(accelerator, outs, batch_labels, index)
        batches.append(np.asarray(outs.cpu() if isinstance(outs, torch.Tensor) else outs))
        labels.append(np.asarray(batch_labels))
        indices.append(np.asarray(index))
    order = dataset_order(indices)
    y = np.concatenate(labels)[order]
    stacked = np.concatenate(batches)[order]
    predictions = [stacked[:, i] for i in range(len(models))]  # per model: videos x K
    per_video = [(p[:, 1:] != p[:, :-1]).mean(axis=1) for p in predictions]
    return {
        "flip_rate": [float(v.mean()) for v in per_video],
        "accuracy": [float((p == y[:, None]).mean()) for p in predictions],
        "per_video": [v.tolist() for v in per_video],
        "predictions": [p.tolist() for p in predictions],
        "labels": y.tolist(),
        "videos": [relative_path(dataset.samples[i][0], dataset.root) for i in keep],
        "clips_per_video": sequences.clips_per_video,
        "stride": sequences.stride,
    }
