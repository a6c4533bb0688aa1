"""Choosing a dataset by name: layout detection, the :data:`DATASETS` registry and
:func:`build_dataset`, the entry point recipes call with a config's ``data`` section.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from torch.utils.data import Dataset

from vidsparse.data.finders import VIDEO_EXTENSIONS, existing_root, subdirs, video_files
from vidsparse.data.folder import VideoFolder, split_dirs
from vidsparse.data.kinetics import KINETICS_SPLITS, Kinetics
from vidsparse.data.ucf101 import UCF101, UCF101_LISTS, UCF101_VIDEOS
from vidsparse.data.video_dataset import DatasetFormatError, VideoClipDataset
from vidsparse.registry import Registry

# A dataset builder: (data config, split, transform, corruption) -> Dataset.
DATASETS = Registry("dataset layout")
# The data config keys a layout dataset takes as keyword arguments.
DATASET_KEYS = ("fold", "frames_per_clip", "sampling_rate", "backend", "seed", "num_clips")
UCF101_KEYS = DATASET_KEYS  # the name recipes knew first
LAYOUT_CLASSES = {"ucf101": UCF101, "kinetics": Kinetics, "folder": VideoFolder}


def detect_layout(root: str | os.PathLike) -> str:
    """``"ucf101"``, ``"kinetics"`` or ``"folder"``: which loader reads ``root``.

    UCF101: ``ucfTrainTestlist/`` and ``UCF-101/``. Kinetics: a ``train.csv``,
    ``validate.csv``, ``val.csv`` or ``test.csv``, or an ``annotations/`` folder. Folder:
    class folders holding videos, directly or under split folders.

    Example:
        >>> detect_layout("data/synthetic")
        'ucf101'
    """
    root = existing_root(root)
    if (root / UCF101_LISTS).is_dir() and (root / UCF101_VIDEOS).is_dir():
        return "ucf101"
    csv_names = sorted({f"{n}.csv" for names in KINETICS_SPLITS.values() for n in names})
    if (root / "annotations").is_dir() or any((root / n).is_file() for n in csv_names):
        return "kinetics"
    for base in split_dirs(root) or [root]:
        if any(video_files(folder) for folder in subdirs(base)):
            return "folder"
    raise DatasetFormatError(
        f"cannot tell the layout of {root}: looked for {UCF101_LISTS}/ + {UCF101_VIDEOS}/ "
        f"(ucf101), {' or '.join(csv_names)} or annotations/ (kinetics), and <class>/<video> "
        f"or <split>/<class>/<video> folders with {'/'.join(VIDEO_EXTENSIONS)} files "
        f"(folder); set data.layout to one of ucf101, kinetics, folder")


def _register(layout: str, cls: type) -> None:
    @DATASETS.register(layout)
    def build(data_cfg: Mapping[str, Any], split: str, transform, corruption=None) -> VideoClipDataset:
        return cls(data_cfg["root"], split=split, transform=transform, corruption=corruption,
                   **{k: data_cfg[k] for k in DATASET_KEYS if k in data_cfg})


for _layout, _cls in LAYOUT_CLASSES.items():
    _register(_layout, _cls)


@DATASETS.register("auto")
def _build_auto(data_cfg: Mapping[str, Any], split: str, transform, corruption=None) -> VideoClipDataset:
    return DATASETS.get(detect_layout(data_cfg["root"]))(data_cfg, split, transform, corruption)


def build_dataset(data_cfg: Mapping[str, Any], split: str, transform=None, corruption=None) -> Dataset:
    """The dataset a config's ``data`` section describes.

    Reads ``root`` (required), ``layout`` (default ``"ucf101"``; ``"auto"`` detects it with
    :func:`detect_layout`; ``"kinetics"``, ``"folder"``), ``fold``, ``frames_per_clip``,
    ``sampling_rate``, ``backend``, ``seed`` and ``num_clips``; missing keys take the
    dataset's defaults. An unknown layout raises a ``KeyError`` listing the known ones.
    ``corruption`` corrupts every video on the fly (see :class:`VideoClipDataset`).

    Example:
        >>> cfg = {"root": "data/synthetic", "layout": "auto", "frames_per_clip": 8}
        >>> train = build_dataset(cfg, "train", build_transform(cfg, train=True))
    """
    if "root" not in data_cfg:
        raise ValueError("data config needs 'root': the dataset directory")
    return DATASETS.get(data_cfg.get("layout", "ucf101"))(data_cfg, split, transform, corruption)
