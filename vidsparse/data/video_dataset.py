"""The one clip dataset: labelled video paths plus a clip sampler make a ``Dataset``.

A layout (:mod:`.ucf101`, :mod:`.kinetics`, :mod:`.folder`) turns a root and split into
:class:`LabeledVideos`; :func:`~vidsparse.data.clips.clip_sampler` picks the clips of the split
once; :class:`VideoClipDataset` indexes the videos (skipping unusable ones) and makes every
item the same way: decode -> (corrupt) -> sample -> transform.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from vidsparse.data.clips import ClipSampler, clip_sampler
from vidsparse.data.decode import BACKENDS, read_frames, read_video
from vidsparse.data.index import cache_paths, index_videos, write_atomic
from vidsparse.data.transforms import stack_views


class DatasetFormatError(ValueError):
    """An annotation file is malformed; the message names the file and line."""


class LabeledVideos(NamedTuple):
    """What a layout reads from a dataset root for one split.

    Attributes:
        root: the dataset root (the video index and the skip report are kept beside it).
        split: the split read.
        samples: ``(video path, 0-based label)`` per video the annotations name and the disk has.
        classes: class names; label ``i`` is ``classes[i]``.
        missing: ``(expected path, reason)`` per named video the disk lacks (reported as skipped).
        source: what was read (a list file, a CSV, a folder), named in warnings and errors.
    """

    root: Path
    split: str
    samples: list[tuple[Path, int]]
    classes: list[str]
    missing: list[tuple[Path, str]]
    source: str


class PendingFrames(NamedTuple):
    """A deferred item's clean frames, to be corrupted after the loader (see
    :meth:`VideoClipDataset.with_corruption`).

    Attributes:
        frames: uint8 ``N x H x W x C``, the item's clips back to back (``N = num_clips x
            frames_per_clip``; a frame two views share is decoded once and appears in both).
        indices: int64 ``N``, each frame's index in the video (the ``frames=`` of a
            frame-local corruption).
        source: the video's path (its corruption seed is keyed on it).
    """

    frames: torch.Tensor
    indices: np.ndarray
    source: str


class PendingBatch(NamedTuple):
    """Deferred items collated (:func:`collate_pending`): ``frames`` is a ``B x N x H x W x C``
    tensor, or a list of ``B`` tensors when the videos' frame sizes differ; ``indices`` is a
    ``B x N`` int64 array; ``sources`` the ``B`` paths."""

    frames: torch.Tensor | list[torch.Tensor]
    indices: np.ndarray
    sources: list[str]


def collate_pending(items: Sequence[tuple]) -> tuple:
    """The ``collate_fn`` of a loader over deferred items ``(PendingFrames, label, ...)``: the
    pending frames become one :class:`PendingBatch`, the other fields collate as usual.

    The frames stack when every video has the same frame size; otherwise they stay a list,
    for :meth:`VideoClipDataset.finish` to corrupt one item at a time.
    """
    pending, *rest = zip(*items)
    frames = [p.frames for p in pending]
    same_size = all(f.shape == frames[0].shape for f in frames)
    batch = PendingBatch(torch.stack(frames) if same_size else frames,
                         np.stack([p.indices for p in pending]), [p.source for p in pending])
    return (batch, *(default_collate(list(field)) for field in rest))


def check_backend(backend: str) -> None:
    """ValueError naming the known decoders unless ``backend`` is one of them."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; known: {', '.join(BACKENDS)}")


class VideoClipDataset(Dataset):
    """Clips of labelled videos: one item per video per epoch.

    Args:
        videos: the labelled paths a layout read (:class:`LabeledVideos`).
        clip_sampler: which clips make an item (:func:`~vidsparse.data.clips.clip_sampler`):
            a random clip (train), the centred clip, or ``num_clips`` evenly spaced clips
            whose views are stacked (multi-view testing, ``clips x crops`` with a 3-crop
            transform).
        transform: applied to each clip; ``None`` returns uint8 ``T x H x W x C`` clips.
        backend: the decoder (:data:`vidsparse.data.decode.BACKENDS`).
        seed: with the epoch and index, keys every random choice of an item.
        corruption: a :class:`vidsparse.corruptions.Corruption`, or any callable
            ``(video, path) -> video``, applied on the fly (see below).

    Each item draws from an RNG keyed on ``(seed, epoch, index)`` and runs ``transform``
    under torch's RNG seeded from the same key, so a sample is the same whatever the number
    of loader workers. Clean items decode only the clip's frames.

    At construction every video's header is read once (then cached: :mod:`.index`).
    Missing and undecodable videos are left out of :attr:`samples` and listed with the
    reason in :attr:`skipped` and in a report file next to the index; their count is
    reported once as a warning. A dataset with no usable video raises.

    Returns ``(clip, label)``: a uint8 ``T x H x W x C`` tensor when ``transform`` is None,
    else ``transform(clip)``; multi-view samplers give the views stacked as ``V x ...``.

    Call :meth:`set_epoch` before building each epoch's ``DataLoader`` iterator; workers
    copy the dataset when the iterator starts (so ``persistent_workers=True`` would keep
    the first epoch's clips).

    With a ``corruption`` every item's clip equals the one read from ``corrupt_dataset``'s
    lossless corrupted copy, and the item decodes only what that takes:

    - a frame-local :class:`~vidsparse.corruptions.Corruption` (``corruption.frame_local``:
      most spatial ones): the clip's frames, corrupted as the source frames they are
      (``frames=``);
    - a temporal one (``corruption.source_map`` gives a
      :class:`~vidsparse.corruptions.temporal.SourceMap`): the source frames the clip's
      frames of the corrupted video show or average, from which those frames are made; clips
      are sampled from the corrupted video's length (``frame_rate`` shortens it);
    - anything else (codec corruptions, which re-encode the whole stream; fog and the other
      spatial ones that use a statistic of the whole video; a plain callable): the whole video
      is decoded and corrupted, and the clip is taken from the result.

    The first two count frames as the video index does (the container's header); the third
    counts decoded frames. They agree for the constant-rate files the layouts read.

    A frame-local corruption can also be deferred (``with_corruption(c, deferred=True)``):
    items are then the clean frames, neither corrupted nor transformed (:class:`PendingFrames`),
    and :meth:`finish` corrupts and transforms a batch of them wherever it is, e.g. on the GPU
    after the loader has copied it there. ``finish`` of a batch equals the stacked items of
    the same dataset not deferred (bit for bit on the CPU).

    Example:
        >>> videos = ucf101_videos("data/synthetic", "test")
        >>> ds = VideoClipDataset(videos, CentredClip(8, 2))
        >>> ds[0][0].shape
        torch.Size([8, 48, 64, 3])
    """

    def __init__(
        self,
        videos: LabeledVideos,
        clip_sampler: ClipSampler,
        transform: Callable[[torch.Tensor], Any] | None = None,
        backend: str = "pyav",
        seed: int = 0,
        corruption: Callable[[torch.Tensor, Path], torch.Tensor] | None = None,
    ):
        check_backend(backend)
        self.root = Path(videos.root)
        self.split = videos.split
        self.clip_sampler = clip_sampler
        self.transform = transform
        self.backend = backend
        self.seed = seed
        self.corruption = corruption
        self.deferred = False
        self.epoch = 0
        self.classes = list(videos.classes)
        self.num_classes = len(self.classes)
        self._keep_usable(videos.samples, videos.missing, videos.source)

    # The sampler's settings, under the names recipes and robustness code read.
    @property
    def frames_per_clip(self) -> int:
        return self.clip_sampler.frames_per_clip

    @property
    def sampling_rate(self) -> int:
        return self.clip_sampler.sampling_rate

    @property
    def num_clips(self) -> int:
        return self.clip_sampler.num_clips

    def _keep_usable(self, samples: Sequence[tuple[Path, int]],
                     missing: Sequence[tuple[Path, str]], source: str) -> None:
        """Index the videos; keep the usable ones in ``samples``, the rest in ``skipped``."""
        infos, errors = index_videos(self.root, [p for p, _ in samples])
        self.samples = [(p, label) for p, label in samples if p in infos]
        self.skipped = list(missing) + [(p, errors[p]) for p, _ in samples if p in errors]
        self._num_frames = [infos[p].num_frames for p, _ in self.samples]
        if self.skipped:
            report = write_skip_report(self.root, self.split, self.skipped)
            where = f"; list with reasons in {report}" if report else ""
            # stacklevel: _keep_usable <- __init__ <- a layout's __init__ <- the caller
            warnings.warn(f"{source}: skipped {len(self.skipped)} of "
                          f"{len(self.skipped) + len(self.samples)} videos (missing or "
                          f"undecodable){where}", stacklevel=4)
        if not self.samples:
            first = "; ".join(f"{p}: {why}" for p, why in self.skipped[:3])
            raise DatasetFormatError(f"{source}: none of its {len(self.skipped)} videos is "
                                     f"usable (missing or undecodable), e.g. {first}")

    def with_corruption(self, corruption: Callable[[torch.Tensor, Path], torch.Tensor] | None,
                        deferred: bool = False) -> "VideoClipDataset":
        """A copy of this dataset (same videos, same clips, no re-indexing) that corrupts its
        videos on the fly with ``corruption`` (``None``: clean again).

        ``deferred``: leave the corruption and the transform to :meth:`finish`, run on the
        collated batch (:func:`collate_pending`) in the process and on the device that call
        it; items are ``(PendingFrames, label)``. Only for a frame-local corruption (its
        ``frame_local`` is True) and a transform that draws nothing (the evaluation one):
        ``finish`` runs the transform without the item's seed.

        Example:
            >>> test = ds.with_corruption(Corruption("gaussian_noise", 3), deferred=True)
            >>> loader = DataLoader(test, batch_size=8, num_workers=4, collate_fn=collate_pending)
            >>> pending, labels = next(iter(loader))
            >>> clips = test.finish(pending, "cuda")   # corrupted and transformed on the GPU
        """
        if deferred and getattr(corruption, "frame_local", False) is not True:
            raise ValueError(f"with_corruption(deferred=True) needs a frame-local corruption "
                             f"(its frame_local True), got {corruption!r}")
        if deferred and getattr(self.transform, "train", False):
            raise ValueError(f"with_corruption(deferred=True) needs a transform that draws nothing "
                             f"(train=False), got {self.transform!r}")
        other = copy.copy(self)
        other.corruption = corruption
        other.deferred = bool(deferred)
        return other

    def set_epoch(self, epoch: int) -> None:
        """Draw different training clips for each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def num_frames(self, index: int) -> int:
        """Frame count of video ``index`` (from the index built at construction)."""
        return self._num_frames[index]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        index = range(len(self))[index]  # negative indices and range checks, like a list
        path, label = self.samples[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.deferred:
            wanted = [i for clip in self.clip_sampler.clips(self.num_frames(index), rng) for i in clip]
            return PendingFrames(self._read_distinct(path, wanted), np.asarray(wanted, dtype=np.int64),
                                 str(path)), label
        length, take = self._decode(path, index)
        clips = self.clip_sampler.clips(length, rng)
        frames = take([i for clip in clips for i in clip])
        return self._transform(frames, rng), label

    def finish(self, pending: PendingBatch, device: torch.device | str) -> torch.Tensor:
        """Corrupt and transform a batch of deferred items on ``device``: the batch their
        items would have stacked to without deferring (the same on the CPU; on another
        device up to its float rounding, see ``DEVICE_TOLERANCE_LEVELS``).

        The frames are copied to ``device`` once and never come back. Frames of one size are
        corrupted in one pass (:meth:`Corruption.batch`, each video with its own seed and
        frame indices); frames of different sizes (Kinetics) one item at a time, on the
        device too. Then each item's clips are transformed there, views stacked as ``V x ...``.
        """
        if not self.deferred:
            raise ValueError("finish() is for the items of a dataset made with "
                             "with_corruption(..., deferred=True)")
        device = torch.device(device)
        if isinstance(pending.frames, torch.Tensor):
            clips = self.corruption.batch(pending.frames.to(device, non_blocking=True),
                                          pending.sources, frames=pending.indices)
        else:  # one frame size per video: a batch cannot hold them
            clips = [self.corruption(frames.to(device, non_blocking=True), source, frames=indices)
                     for frames, indices, source in zip(*pending)]
        return torch.stack([self._views(clip) for clip in clips])

    def _decode(self, path: Path, index: int) -> tuple[int, Callable[[list[int]], torch.Tensor]]:
        """``(frame count, frames by index)`` of the video to sample from.

        A clean video is read lazily: only the sampled frames are decoded, at the length the
        index recorded. A frame-local corruption decodes each sampled frame once and corrupts
        it as the source frame it is (its index). A temporal one maps the sampled frames of
        the corrupted video (of the map's length) back to source frames and decodes only
        those. Any other corruption decodes and corrupts the whole video first, so the clips
        are cut from the corrupted video. All give the clips of the whole corrupted video.
        """
        if self.corruption is None:
            return self.num_frames(index), lambda wanted: torch.from_numpy(
                read_frames(path, wanted, self.backend))
        if getattr(self.corruption, "frame_local", False) is True:
            return self.num_frames(index), lambda wanted: self._read_distinct(path, wanted, corrupt=True)
        source_map = getattr(self.corruption, "source_map", None)
        plan = source_map(self.num_frames(index), path) if callable(source_map) else None
        if plan is not None:
            def take_mapped(wanted: list[int]) -> torch.Tensor:
                needed = plan.needed(wanted)  # each distinct source frame is decoded once
                frames = torch.from_numpy(read_frames(path, needed.tolist(), self.backend))
                return plan.take(frames, needed, wanted)
            return plan.num_frames, take_mapped
        video = self.corruption(torch.from_numpy(read_video(path, self.backend)[0]), path)
        return video.shape[0], lambda wanted: video[wanted]

    def _read_distinct(self, path: Path, wanted: list[int], corrupt: bool = False) -> torch.Tensor:
        """Frames ``wanted`` of the video (in that order, repeats allowed), each distinct one
        decoded once and, with ``corrupt``, corrupted once as the source frame it is:
        overlapping views share frames."""
        needed, where = np.unique(np.asarray(wanted, dtype=np.int64), return_inverse=True)
        frames = torch.from_numpy(read_frames(path, needed.tolist(), self.backend))
        if corrupt:
            frames = self.corruption(frames, path, frames=needed)
        return frames[torch.from_numpy(where.reshape(-1))]

    def _transform(self, frames: torch.Tensor, rng: np.random.Generator) -> Any:
        """The item from the sampled frames (clips back to back): transformed under a torch
        RNG seeded from the item's ``rng``, so random crops do not depend on the worker."""
        if self.transform is None and not self.clip_sampler.stacks_views:
            return frames
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            return self._views(frames)

    def _views(self, frames: torch.Tensor) -> Any:
        """The transform of the sampled frames: one clip, or each clip's views stacked."""
        if self.clip_sampler.stacks_views:
            return stack_views(frames.split(self.frames_per_clip), self.transform)
        return frames if self.transform is None else self.transform(frames)


class LayoutDataset(VideoClipDataset):
    """A :class:`VideoClipDataset` read from a dataset root: subclasses override one hook,
    :meth:`read_videos`, and share this constructor.

    Args:
        root: the dataset root.
        split: ``"train"`` takes a random clip per item, other splits the centred clip (or
            ``num_clips`` evenly spaced clips).
        fold: the layout's fold (UCF101 has three; the others accept only 1).
        frames_per_clip, sampling_rate: a clip is ``frames_per_clip`` frames, one every
            ``sampling_rate``.
        num_clips: clips per test item (multi-view testing); training always takes one.
        transform, backend, seed, corruption: as for :class:`VideoClipDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        fold: int = 1,
        frames_per_clip: int = 8,
        sampling_rate: int = 2,
        transform: Callable[[torch.Tensor], Any] | None = None,
        backend: str = "pyav",
        seed: int = 0,
        num_clips: int = 1,
        corruption: Callable[[torch.Tensor, Path], torch.Tensor] | None = None,
    ):
        # Arguments are checked before the layout is read: cheap errors first, not in a worker.
        sampler = clip_sampler(split, frames_per_clip, sampling_rate, num_clips)
        check_backend(backend)
        super().__init__(self.read_videos(root, split, fold), sampler, transform=transform,
                         backend=backend, seed=seed, corruption=corruption)

    def read_videos(self, root: str | os.PathLike, split: str, fold: int) -> LabeledVideos:
        """The labelled videos of ``split`` under ``root`` (the layout's one job)."""
        raise NotImplementedError


def write_skip_report(root: Path, split: str, skipped: Sequence[tuple[Path, str]]) -> Path | None:
    """``path<TAB>reason`` per skipped video, beside the video index (see :mod:`.index`)."""
    text = "".join(f"{path}\t{reason}\n" for path, reason in skipped)
    for index_path in cache_paths(root):
        report = index_path.with_name(f"{index_path.stem}.skipped-{split}.tsv")
        try:
            write_atomic(report, text)
            return report
        except OSError:
            continue
    return None
