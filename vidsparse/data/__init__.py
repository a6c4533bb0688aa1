"""Video data: decoding, clip sampling, transforms, datasets and the embedded synthetic set."""

from vidsparse.data.clips import (
    CentredClip,
    ClipSampler,
    MultiViewClips,
    RandomClip,
    clip_sampler,
    clip_span,
    multi_view_clip_indices,
    test_clip_indices,
    train_clip_indices,
)
from vidsparse.data.decode import VideoDecodeError, read_frames, read_video, video_info, write_video
from vidsparse.data.finders import VideoFinder
from vidsparse.data.folder import VideoFolder, folder_index
from vidsparse.data.index import index_videos
from vidsparse.data.kinetics import Kinetics, kinetics_classes, kinetics_index, kinetics_video_dir
from vidsparse.data.layouts import DATASETS, build_dataset, detect_layout
from vidsparse.data.synthetic import (
    MOTIONS,
    SyntheticConfigError,
    list_motions,
    make_synthetic,
    synthetic_video,
)
from vidsparse.data.transforms import KINETICS_MEAN, KINETICS_STD, VideoTransform, build_transform
from vidsparse.data.ucf101 import UCF101, ucf101_classes, ucf101_index
from vidsparse.data.video_dataset import DatasetFormatError, LabeledVideos, VideoClipDataset

__all__ = [
    "DATASETS",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "MOTIONS",
    "UCF101",
    "CentredClip",
    "ClipSampler",
    "DatasetFormatError",
    "Kinetics",
    "LabeledVideos",
    "MultiViewClips",
    "RandomClip",
    "SyntheticConfigError",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoFinder",
    "VideoFolder",
    "VideoTransform",
    "build_dataset",
    "build_transform",
    "clip_sampler",
    "clip_span",
    "detect_layout",
    "folder_index",
    "index_videos",
    "kinetics_classes",
    "kinetics_index",
    "kinetics_video_dir",
    "list_motions",
    "make_synthetic",
    "multi_view_clip_indices",
    "read_frames",
    "read_video",
    "synthetic_video",
    "test_clip_indices",
    "train_clip_indices",
    "ucf101_classes",
    "ucf101_index",
    "video_info",
    "write_video",
]
