"""The dataset names callers import from ``vidsparse.data.datasets``, gathered in one place.

Each piece lives in its own module; this one only re-exports them so existing imports keep
working:

- :mod:`.video_dataset`: :class:`VideoClipDataset` (labelled paths + a clip sampler make a
  dataset: decode -> (corrupt) -> sample -> transform) and :class:`DatasetFormatError`;
- :mod:`.clips`: the clip samplers (random, centred, multi-view);
- :mod:`.ucf101`, :mod:`.kinetics`, :mod:`.folder`: one file per on-disk layout, turning a
  root and split into labelled video paths;
- :mod:`.finders`: case-insensitive lookup of video files;
- :mod:`.layouts`: layout detection, the :data:`DATASETS` registry and :func:`build_dataset`.

The synthetic dataset (:mod:`vidsparse.data.synthetic`) is written in these same layouts, so
one code path serves it and the real datasets.
"""

from vidsparse.data.finders import VIDEO_EXTENSIONS, CaseInsensitiveFinder, VideoFinder
from vidsparse.data.folder import FOLDER_SPLITS, VideoFolder, folder_index, folder_videos
from vidsparse.data.kinetics import (
    KINETICS_COLUMNS,
    KINETICS_SPLITS,
    Kinetics,
    KineticsRow,
    kinetics_classes,
    kinetics_csv,
    kinetics_index,
    kinetics_rows,
    kinetics_video_dir,
    kinetics_videos,
)
from vidsparse.data.layouts import (
    DATASET_KEYS,
    DATASETS,
    LAYOUT_CLASSES,
    UCF101_KEYS,
    build_dataset,
    detect_layout,
)
from vidsparse.data.ucf101 import (
    SPLITS,
    UCF101,
    UCF101_LISTS,
    UCF101_VIDEOS,
    ucf101_classes,
    ucf101_index,
    ucf101_videos,
)
from vidsparse.data.video_dataset import (
    DatasetFormatError,
    LabeledVideos,
    LayoutDataset,
    VideoClipDataset,
    write_skip_report,
)

__all__ = [
    "DATASETS",
    "DATASET_KEYS",
    "FOLDER_SPLITS",
    "KINETICS_COLUMNS",
    "KINETICS_SPLITS",
    "LAYOUT_CLASSES",
    "SPLITS",
    "UCF101",
    "UCF101_KEYS",
    "UCF101_LISTS",
    "UCF101_VIDEOS",
    "VIDEO_EXTENSIONS",
    "CaseInsensitiveFinder",
    "DatasetFormatError",
    "Kinetics",
    "KineticsRow",
    "LabeledVideos",
    "LayoutDataset",
    "VideoClipDataset",
    "VideoFinder",
    "VideoFolder",
    "build_dataset",
    "detect_layout",
    "folder_index",
    "folder_videos",
    "kinetics_classes",
    "kinetics_csv",
    "kinetics_index",
    "kinetics_rows",
    "kinetics_video_dir",
    "kinetics_videos",
    "ucf101_classes",
    "ucf101_index",
    "ucf101_videos",
    "write_skip_report",
]
