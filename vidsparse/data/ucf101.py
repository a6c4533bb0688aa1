"""The UCF101 layout: ``UCF-101/<Class>/<video>`` read through one fold's list files.

``root`` holds ``UCF-101/`` and ``ucfTrainTestlist/`` (``classInd.txt``,
``trainlist0N.txt``, ``testlist0N.txt``). The lists have ``\\r\\n`` line ends, and UCF101 itself
has the folder ``HandstandPushups`` holding ``v_HandStandPushups_*.avi``, so names are matched
without case (:class:`~vidsparse.data.finders.CaseInsensitiveFinder`).
"""

from __future__ import annotations

import os
from pathlib import Path

from vidsparse.data.finders import CaseInsensitiveFinder, existing_root
from vidsparse.data.video_dataset import DatasetFormatError, LabeledVideos, LayoutDataset

SPLITS = ("train", "test")
UCF101_VIDEOS = "UCF-101"
UCF101_LISTS = "ucfTrainTestlist"


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


def ucf101_list(root: str | os.PathLike, split: str, fold: int) -> Path:
    """The list file of ``split`` and ``fold``: ``ucfTrainTestlist/{split}list0{fold}.txt``."""
    return Path(root) / UCF101_LISTS / f"{split}list{int(fold):02d}.txt"


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
    list_path = ucf101_list(root, split, fold)
    if not list_path.is_file():
        raise FileNotFoundError(f"UCF101 {split} list {list_path} not found (fold={fold})")
    finder = CaseInsensitiveFinder(root / UCF101_VIDEOS)
    samples = []
    for lineno, line in _read_lines(list_path):
        where = f"{list_path}:{lineno}"
        parts = line.split()
        relative = parts[0].replace("\\", "/")
        folder = relative.split("/")[0]
        if len(parts) > 2 or "/" not in relative:
            raise DatasetFormatError(f"{where}: expected '<Class>/<video> [label]', got {line!r}")
        if relative.startswith("/") or ".." in relative.split("/") or ":" in folder:
            raise DatasetFormatError(f"{where}: {relative!r} leaves the dataset root; a list names "
                                     f"videos as <Class>/<video> inside {UCF101_VIDEOS}/")
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


def ucf101_videos(root: str | os.PathLike, split: str = "train", fold: int = 1) -> LabeledVideos:
    """The labelled videos of one split and fold. A video a list names but the disk lacks is
    an error (UCF101 is complete), so nothing is ever reported missing.

    Example:
        >>> videos = ucf101_videos("data/synthetic", "test")
        >>> len(videos.samples), videos.classes[0]
        (6, 'MoveDown')
    """
    samples = ucf101_index(root, split, fold)
    return LabeledVideos(Path(root), split, samples, ucf101_classes(root), [],
                         str(ucf101_list(root, split, fold)))


class UCF101(LayoutDataset):
    """UCF101 (or the synthetic dataset in its layout), read through one fold's lists.

    ``root`` holds ``UCF-101/`` and ``ucfTrainTestlist/``; ``split`` is ``"train"`` or
    ``"test"``; ``fold`` 1, 2 or 3. Other arguments: see
    :class:`~vidsparse.data.video_dataset.LayoutDataset`. An undecodable video is skipped
    (see :class:`~vidsparse.data.video_dataset.VideoClipDataset`).

    Example:
        >>> ds = UCF101("data/synthetic", split="train", transform=VideoTransform(train=True))
        >>> clip, label = ds[0]
        >>> clip.shape, ds.classes[label]
        (torch.Size([3, 8, 56, 56]), 'MoveDown')
    """

    def read_videos(self, root, split, fold):  # noqa: D102 (see LayoutDataset.read_videos)
        return ucf101_videos(root, split, fold)


def _ucf101_root(root: str | os.PathLike) -> Path:
    root = existing_root(root)
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
