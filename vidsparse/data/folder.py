"""The folder layout: videos sorted into one folder per class, optionally under split folders.

``root/<class>/*.{mp4,avi,webm,mkv}``, or ``root/<split>/<class>/...`` where split folders
(``train/``, ``val/`` or ``validate/``, ``test/``) exist. Classes are numbered from the sorted
class folder names of every split, so all splits agree.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from vidsparse.data.finders import VIDEO_EXTENSIONS, existing_root, subdirs, video_files
from vidsparse.data.video_dataset import LabeledVideos, LayoutDataset

FOLDER_SPLITS = {"train": ("train",), "validate": ("validate", "val"),
                 "val": ("val", "validate"), "test": ("test",)}


def split_dirs(root: Path) -> list[Path]:
    """The sub-folders of ``root`` named like a split (:data:`FOLDER_SPLITS`)."""
    names = {n for names in FOLDER_SPLITS.values() for n in names}
    return [p for p in subdirs(root) if p.name in names]


def folder_index(
    root: str | os.PathLike, split: str = "train"
) -> tuple[list[tuple[Path, int]], list[str], Path]:
    """``(samples, classes, videos folder)`` of a ``<class>/<video>`` tree.

    Where ``root`` has split folders (``train/``, ``val/``/``validate/``, ``test/``), videos
    are read from ``root/<split>/<class>/``; otherwise from ``root/<class>/`` for every
    split. Classes are the sorted class folder names (across all split folders, so every
    split numbers them alike); videos are files ending .mp4/.avi/.webm/.mkv, in sorted order.

    Example:
        >>> samples, classes, base = folder_index("my_videos", "test")
        >>> classes, samples[0]
        (['cat', 'dog'], (PosixPath('my_videos/test/cat/a.mp4'), 0))
    """
    root = existing_root(root)
    splits = split_dirs(root)
    if splits:
        names = FOLDER_SPLITS.get(split, (split,))
        base = next((root / n for n in names if (root / n).is_dir()), None)
        if base is None:
            raise FileNotFoundError(f"split folder {' or '.join(str(root / n) for n in names)} "
                                    f"not found (split folders present: "
                                    f"{', '.join(sorted(p.name for p in splits))})")
        class_dirs = [c for d in splits for c in subdirs(d)]
    else:
        base = root
        class_dirs = subdirs(root)
    classes = sorted({c.name for c in class_dirs})
    if not classes:
        raise FileNotFoundError(f"{root}: no class folders (expected <class>/<video> with "
                                f"videos ending {'/'.join(VIDEO_EXTENSIONS)})")
    label_of = {name: i for i, name in enumerate(classes)}
    samples = [(video, label_of[folder.name]) for folder in subdirs(base)
               for video in video_files(folder)]
    if not samples:
        raise FileNotFoundError(f"{base}: no videos ({', '.join(VIDEO_EXTENSIONS)}) in its "
                                f"class folders")
    return samples, classes, base


def folder_videos(root: str | os.PathLike, split: str = "train", fold: int = 1) -> LabeledVideos:
    """The labelled videos of ``split`` (:func:`folder_index`). A root without split folders
    serves every split the same videos, with a warning saying so. ``fold`` must be 1."""
    if fold != 1:
        raise ValueError(f"a video folder has no folds; fold must be 1, got {fold}")
    samples, classes, base = folder_index(root, split)
    if base == Path(root):
        warnings.warn(f"{root} has no split folders (train/, val/, test/): the {split} "
                      f"split reads every video", stacklevel=3)
    return LabeledVideos(Path(root), split, samples, classes, [], str(base))


class VideoFolder(LayoutDataset):
    """Videos sorted into one folder per class: ``root/<class>/*.mp4`` (also .avi, .webm,
    .mkv), or ``root/<split>/<class>/...`` where split folders exist (see
    :func:`folder_index`). A root without split folders serves every split the same videos
    (a warning says so). ``fold`` must be 1.

    Example:
        >>> ds = VideoFolder("my_videos", split="test")
        >>> ds.classes
        ['cat', 'dog']
    """

    def read_videos(self, root, split, fold):  # noqa: D102 (see LayoutDataset.read_videos)
        return folder_videos(root, split, fold)
