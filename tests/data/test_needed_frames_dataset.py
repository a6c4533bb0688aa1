"""A temporal-corrupted dataset item decodes only the source frames its clips need.

The synthetic videos have 16 frames, so the clips below are hand-computed: ``CentredClip(4, 2)``
spans 7 frames from (16 - 7) // 2 = 4, i.e. frames 4, 6, 8, 10; ``MultiViewClips(4, 3, 3)`` spans
10 frames at starts k * (16 - 10) // 2 = 0, 3, 6.
"""

import pytest
import torch

from vidsparse.corruptions import Corruption, list_corruptions
from vidsparse.data import video_dataset
from vidsparse.data.clips import CentredClip, MultiViewClips
from vidsparse.data.kinetics import kinetics_videos
from vidsparse.data.ucf101 import ucf101_videos
from vidsparse.data.video_dataset import VideoClipDataset

TEMPORAL = sorted(list_corruptions("temporal"))
CENTRE = CentredClip(4, 2)
MULTI = MultiViewClips(4, 3, num_clips=3)


class WholeVideo:
    """The same corruption through the whole-video path: a plain callable has no frame map."""

    def __init__(self, corruption):
        self.corruption = corruption

    def __call__(self, video, path):
        return self.corruption(video, path)


@pytest.fixture
def decoded(monkeypatch):
    """Records the frame count of every read_frames call and counts whole-video decodes."""
    calls = {"frames": [], "videos": 0}
    read_frames, read_video = video_dataset.read_frames, video_dataset.read_video

    def spy_frames(path, indices, backend="pyav"):
        calls["frames"].append(len(indices))
        return read_frames(path, indices, backend)

    def spy_video(path, backend="pyav"):
        calls["videos"] += 1
        return read_video(path, backend)

    monkeypatch.setattr(video_dataset, "read_frames", spy_frames)
    monkeypatch.setattr(video_dataset, "read_video", spy_video)
    return calls


def datasets(root, layout, sampler, corruption):
    videos = (ucf101_videos(root, "test") if layout == "ucf101" else kinetics_videos(root, "validate"))
    fast = VideoClipDataset(videos, sampler, corruption=corruption)
    return fast, fast.with_corruption(WholeVideo(corruption))


@pytest.mark.parametrize("sampler", [CENTRE, MULTI], ids=["centre", "multiview"])
@pytest.mark.parametrize("name,options", [(n, {}) for n in TEMPORAL] + [("frame_drop", {"pattern": "uniform"})],
                         ids=TEMPORAL + ["frame_drop-uniform"])
def test_the_item_equals_the_whole_video_item(synthetic_ucf101, decoded, sampler, name, options):
    fast, slow = datasets(synthetic_ucf101, "ucf101", sampler, Corruption(name, 3, seed=4, options=options))
    for index in (0, 3):
        expected, expected_label = slow[index]
        assert decoded["videos"] == 1 and decoded["frames"] == []
        decoded["videos"] = 0
        clip, label = fast[index]
        assert torch.equal(clip, expected) and label == expected_label
        assert decoded["videos"] == 0 and len(decoded["frames"]) == 1  # one read of the needed frames
        # Severity 3's 14-frame blur windows around these clips cover the whole 16-frame video.
        assert decoded["frames"].pop() < 16 or name == "temporal_motion_blur"


@pytest.mark.parametrize("sampler,name,severity,frames", [
    ("centre", "sampling", 1, 4),                # r = 2: 4, 6, 8, 10 show themselves
    ("centre", "sampling", 2, 2),                # r = 4: 4, 4, 8, 8
    ("centre", "reverse_sampling", 2, 2),        # t shows (15 - t) - (15 - t) mod 4: 8, 8, 4, 4
    ("centre", "frame_rate", 3, 4),              # 7 frames at 12 fps, clip 0, 2, 4, 6 -> 0, 5, 10, 15
    ("centre", "temporal_motion_blur", 1, 12),   # windows t-3 .. t+2: frames 1 .. 12
    ("multiview", "sampling", 1, 6),             # clips 0,3,6,9 / 3,6,9,12 / 6,9,12,15 -> 0,2,6,8,12,14
    ("multiview", "frame_rate", 5, 4),           # 4 frames at 6 fps: every clip wraps over 0, 5, 10, 15
])
def test_the_number_of_decoded_frames(synthetic_ucf101, decoded, sampler, name, severity, frames):
    sampler = {"centre": CENTRE, "multiview": MULTI}[sampler]
    fast, slow = datasets(synthetic_ucf101, "ucf101", sampler, Corruption(name, severity))
    assert torch.equal(fast[1][0], slow[1][0])
    assert decoded["frames"] == [frames]


def test_h264_mp4_videos_give_the_same_items(synthetic_kinetics, decoded):
    for name in ("frame_rate", "jumble"):
        fast, slow = datasets(synthetic_kinetics, "kinetics", CENTRE, Corruption(name, 2, seed=9))
        for index in range(len(fast)):
            assert torch.equal(fast[index][0], slow[index][0])


@pytest.mark.parametrize("name", ["h264_crf", "fog"])
def test_codec_and_whole_clip_spatial_corruptions_still_decode_the_whole_video(synthetic_ucf101, decoded,
                                                                               name):
    fast, _ = datasets(synthetic_ucf101, "ucf101", CENTRE, Corruption(name, 2))
    fast[0]
    assert decoded == {"frames": [], "videos": 1}
