"""Video classification datasets, read from their published on-disk formats.

The synthetic dataset (:mod:`vidsparse.data.synthetic`) is written in these same formats, so
one code path serves it and the real datasets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

from vidsparse.data.clips import clip_span, test_clip_indices, train_clip_indices
from vidsparse.data.decode import BACKENDS, read_frames, video_info
from vidsparse.registry import Registry

SPLITS = ("train", "test")
UCF101_VIDEOS = "UCF-101"
UCF101_LISTS = "ucfTrainTestlist"


class DatasetFormatError(ValueError):
    """An annotation file is malformed; the message names the file and line."""


def ucf101_classes(root: str | os.PathLike) -> list[str]:
    """Class names in ``classInd.txt`` order: index ``i`` is label ``i`` (0-based).

    Example:
        >>> ucf101_classes("data/synthetic")[:2]
        ['MoveDown', 'MoveLeft']
    """
    path = _ucf101_root(root) / UCF101_LISTS / "classInd.txt"
    if not path.is_file():
        raise FileNotFoundError(f"UCF101 class index {path} not found")
    classes: list[str] = []
    for lineno, line in _read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetFormatError(f"{path}:{lineno}: expected '<number> <ClassName>', "
                                     f"got {line!r}")
        if int(parts[0]) != len(classes) + 1:
            raise DatasetFormatError(f"{path}:{lineno}: class numbers must count up from 1; "
                                     f"expected {len(classes) + 1}, got {parts[0]}")
        classes.append(parts[1])
    if not classes:
        raise DatasetFormatError(f"{path}: no classes listed")
    return classes


def ucf101_index(
    root: str | os.PathLike, split: str = "train", fold: int = 1
) -> list[tuple[Path, int]]:
    """``(video path, 0-based label)`` for every line of ``{split}list0{fold}.txt``.

    Train lines carry a 1-based label (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``);
    test lines carry none, so the label comes from the class folder through ``classInd.txt``.
    Both must agree where both are present.

    Example:
        >>> path, label = ucf101_index("data/synthetic", "test")[0]
        >>> path.name, label
        ('v_MoveDown_g01_c01.avi', 0)
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = _ucf101_root(root)
    classes = ucf101_classes(root)
    # Folder names are matched without case: UCF101 itself has the folder HandstandPushups
    # holding v_HandStandPushups_*.avi, and re-extracted copies differ in case.
    label_of_folder = {name.lower(): label for label, name in enumerate(classes)}
    list_path = root / UCF101_LISTS / f"{split}list{int(fold):02d}.txt"
    if not list_path.is_file():
        raise FileNotFoundError(f"UCF101 {split} list {list_path} not found (fold={fold})")
    finder = _CaseInsensitiveFinder(root / UCF101_VIDEOS)
    samples = []
    for lineno, line in _read_lines(list_path):
        where = f"{list_path}:{lineno}"
        parts = line.split()
        relative = parts[0].replace("\\", "/")
        folder = relative.split("/")[0]
        if len(parts) > 2 or "/" not in relative:
            raise DatasetFormatError(f"{where}: expected '<Class>/<video> [label]', got {line!r}")
        if folder.lower() not in label_of_folder:
            raise DatasetFormatError(f"{where}: class folder {folder!r} is not in classInd.txt")
        label = label_of_folder[folder.lower()]
        if len(parts) == 2:
            label = _list_label(parts[1], label, len(classes), where)
        path = finder.find(relative)
        if path is None:
            raise FileNotFoundError(f"{where}: video {root / UCF101_VIDEOS / relative} not found")
        samples.append((path, label))
    if not samples:
        raise DatasetFormatError(f"{list_path}: no videos listed")
    return samples


class UCF101(Dataset):
    """UCF101 (or the synthetic dataset in its layout): one clip per video per epoch.

    ``root`` holds ``UCF-101/`` and ``ucfTrainTestlist/``. The train split takes a random clip
    drawn from an RNG keyed on ``(seed, epoch, index)`` and runs ``transform`` under torch's
    RNG seeded from the same key, so a sample is the same whatever the number of loader
    workers. The test split takes the centred clip. Only the clip's frames are decoded.

    Returns ``(clip, label)``: a uint8 ``T x H x W x C`` tensor when ``transform`` is None,
    else ``transform(clip)``.

    Call :meth:`set_epoch` before building each epoch's ``DataLoader`` iterator; workers
    copy the dataset when the iterator starts (so ``persistent_workers=True`` would keep
    the first epoch's clips).

    Example:
        >>> ds = UCF101("data/synthetic", split="train", transform=VideoTransform(train=True))
        >>> clip, label = ds[0]
        >>> clip.shape, ds.classes[label]
        (torch.Size([3, 8, 56, 56]), 'MoveDown')
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
    ):
        clip_span(frames_per_clip, sampling_rate)  # fail here, not in a worker
        if backend not in BACKENDS:
            raise ValueError(f"unknown video backend {backend!r}; known: {', '.join(BACKENDS)}")
        self.root = Path(root)
        self.split = split
        self.samples = ucf101_index(root, split, fold)
        self.classes = ucf101_classes(root)
        self.num_classes = len(self.classes)
        self.frames_per_clip = frames_per_clip
        self.sampling_rate = sampling_rate
        self.transform = transform
        self.backend = backend
        self.seed = seed
        self.epoch = 0
        self._num_frames: dict[int, int] = {}

    def set_epoch(self, epoch: int) -> None:
        """Draw different training clips for each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def num_frames(self, index: int) -> int:
        """Frame count of video ``index`` (read from its header once, then cached)."""
        if index not in self._num_frames:
            self._num_frames[index] = video_info(self.samples[index][0]).num_frames
        return self._num_frames[index]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        index = range(len(self))[index]  # negative indices and range checks, like a list
        path, label = self.samples[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.split == "train":
            indices = train_clip_indices(self.num_frames(index), self.frames_per_clip,
                                         self.sampling_rate, rng)
        else:
            indices = test_clip_indices(self.num_frames(index), self.frames_per_clip,
                                        self.sampling_rate)
        clip = torch.from_numpy(read_frames(path, indices, self.backend))
        if self.transform is None:
            return clip, label
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            return self.transform(clip), label


# A dataset builder: (data config, split, transform) -> Dataset.
DATASETS = Registry("dataset layout")
UCF101_KEYS = ("fold", "frames_per_clip", "sampling_rate", "backend", "seed")


@DATASETS.register("ucf101")
def _build_ucf101(data_cfg: Mapping[str, Any], split: str, transform) -> UCF101:
    return UCF101(data_cfg["root"], split=split, transform=transform,
                  **{k: data_cfg[k] for k in UCF101_KEYS if k in data_cfg})


def build_dataset(data_cfg: Mapping[str, Any], split: str, transform=None) -> Dataset:
    """The dataset a config's ``data`` section describes.

    Reads ``root`` (required), ``layout`` (default ``"ucf101"``), ``fold``,
    ``frames_per_clip``, ``sampling_rate``, ``backend`` and ``seed``; missing keys take the
    dataset's defaults.

    Example:
        >>> cfg = {"root": "data/synthetic", "layout": "ucf101", "frames_per_clip": 8}
        >>> train = build_dataset(cfg, "train", build_transform(cfg, train=True))
    """
    if "root" not in data_cfg:
        raise ValueError("data config needs 'root': the dataset directory")
    return DATASETS.get(data_cfg.get("layout", "ucf101"))(data_cfg, split, transform)


def _ucf101_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist")
    if not (root / UCF101_VIDEOS).is_dir():
        raise FileNotFoundError(f"{root / UCF101_VIDEOS} not found: the UCF101 root is the "
                                f"directory holding {UCF101_VIDEOS}/ and {UCF101_LISTS}/")
    return root


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank stripped lines with 1-based numbers; takes ``\\r\\n`` (UCF101's) or ``\\n``."""
    text = path.read_text(encoding="utf-8-sig")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _list_label(text: str, folder_label: int, num_classes: int, where: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= num_classes:
        raise DatasetFormatError(f"{where}: label {text!r} is not a class number "
                                 f"1..{num_classes} of classInd.txt")
    if int(text) - 1 != folder_label:
        raise DatasetFormatError(f"{where}: label {text} disagrees with the class folder "
                                 f"(classInd.txt gives {folder_label + 1})")
    return int(text) - 1


class _CaseInsensitiveFinder:
    """Resolves ``Class/file`` under a root, falling back to a case-insensitive match."""

    def __init__(self, root: Path):
        self.root = root
        self._listings: dict[Path, dict[str, Path]] = {}

    def find(self, relative: str) -> Path | None:
        path = self.root / relative
        if path.is_file():  # the common case costs one stat
            return path
        current = self.root
        for part in relative.split("/"):
            if current not in self._listings:
                entries = current.iterdir() if current.is_dir() else ()
                self._listings[current] = {p.name.lower(): p for p in entries}
            current = self._listings[current].get(part.lower())
            if current is None:
                return None
        return current if current.is_file() else None
