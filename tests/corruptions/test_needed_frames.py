"""Corrupting only the frames a clip needs gives exactly those frames of the whole-video result."""

import inspect

import numpy as np
import pytest
import torch

from vidsparse.corruptions import CORRUPTIONS, Corruption, corrupt, list_corruptions
from vidsparse.corruptions.registry import is_frame_local
from vidsparse.data.clips import CentredClip, MultiViewClips
from vidsparse.data.ucf101 import ucf101_videos
from vidsparse.data.video_dataset import VideoClipDataset

FRAME_LOCAL = sorted(n for n in list_corruptions("spatial") if CORRUPTIONS.meta(n)["frame_local"])
# Frames out of order, with a gap, across several smooth keyframe periods (8 frames each).
SUBSET = [0, 3, 7, 8, 9, 17, 19]


def takes_temporal(name):
    return "temporal" in inspect.signature(CORRUPTIONS.get(name)).parameters


CASES = [(name, mode) for name in FRAME_LOCAL
         for mode in (("static", "smooth", "iid") if takes_temporal(name) else (None,))
         if is_frame_local(name, {} if mode is None else {"temporal": mode})]


@pytest.fixture(scope="module")
def video():
    return torch.from_numpy(np.random.default_rng(5).integers(0, 256, (20, 32, 40, 3), dtype=np.uint8))


@pytest.mark.parametrize("name,mode", CASES)
def test_the_frames_path_gives_rows_of_the_whole_video_result(video, name, mode):
    options = {} if mode is None else {"temporal": mode}
    whole = corrupt(video, name, 3, seed=11, **options)
    part = corrupt(video[SUBSET], name, 3, seed=11, frames=SUBSET, **options)
    assert torch.equal(part, whole[SUBSET])
    if mode != "static" and mode is not None:  # patterns really differ by frame, not one reused
        assert not torch.equal(whole[0], whole[9]) or name in ("contrast", "brightness")


def test_every_mode_of_the_paper_corruptions_is_covered():
    # The paper's spatial corruptions that draw patterns take all three modes here, except the
    # ones whose whole-clip statistic keeps them whole-video.
    covered = {(n, m) for n, m in CASES}
    for name in ("gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "snow",
                 "elastic_transform"):
        assert {(name, m) for m in ("static", "smooth", "iid")} <= covered
    assert ("frost", "static") in covered and ("frost", "iid") not in covered


def test_a_frame_keeps_its_pattern_whatever_else_is_corrupted(video):
    # iid: frame 9's pattern does not depend on which other frames are in the clip.
    alone = corrupt(video[[9]], "gaussian_noise", 3, seed=2, frames=[9], temporal="iid")
    with_others = corrupt(video[[1, 9]], "gaussian_noise", 3, seed=2, frames=[1, 9], temporal="iid")
    assert torch.equal(alone[0], with_others[1])


@pytest.mark.parametrize("name,options", [("fog", {}), ("frost", {"temporal": "iid"}),
                                          ("spatter", {"temporal": "smooth"}), ("reverse_sampling", {}),
                                          ("jpeg_compression", {"constants": "imagenet_c"})])
def test_only_frame_local_corruptions_accept_frames(video, name, options):
    local = is_frame_local(name, options)
    assert local == (name == "jpeg_compression")
    if local:
        corrupt(video[:2], name, 2, frames=[4, 5], **options)
    else:
        with pytest.raises(ValueError, match="not frame-local"):
            corrupt(video[:2], name, 2, frames=[4, 5], **options)


def test_bad_frame_indices_are_rejected_with_a_clear_error(video):
    with pytest.raises(ValueError, match="expected 2 non-negative integer frame indices"):
        corrupt(video[:2], "gaussian_noise", 2, frames=[4])
    with pytest.raises(ValueError, match="non-negative"):
        corrupt(video[:2], "gaussian_noise", 2, frames=[-1, 3])


class WholeVideo:
    """The same corruption, through the old path: a plain callable is never frame-local."""

    def __init__(self, corruption):
        self.corruption = corruption
        self.calls = 0

    def __call__(self, video, path):
        self.calls += 1
        return self.corruption(video, path)


class Recording(Corruption):
    """A Corruption that records how many frames each call corrupted."""

    def __call__(self, video, source, frames=None):
        object.__getattribute__(self, "sizes").append(len(video))
        return super().__call__(video, source, frames=frames)


@pytest.mark.parametrize("sampler", [CentredClip(4, 2), MultiViewClips(4, 3, num_clips=3)], ids=["centre", "multiview"])
@pytest.mark.parametrize("name,options", [("gaussian_noise", {"temporal": "smooth"}), ("motion_blur", {"temporal": "iid"}),
                                          ("elastic_transform", {}), ("jpeg_compression", {})])
def test_the_dataset_gives_the_whole_video_clips_from_the_needed_frames(synthetic_ucf101, sampler, name, options):
    fast = Recording(name, 3, seed=1, options=options)
    object.__setattr__(fast, "sizes", [])
    ds = VideoClipDataset(ucf101_videos(synthetic_ucf101, "test"), sampler, corruption=fast)
    slow = ds.with_corruption(WholeVideo(Corruption(name, 3, seed=1, options=options)))
    for index in (0, 4):
        clip, label = ds[index]
        expected, expected_label = slow[index]
        assert torch.equal(clip, expected) and label == expected_label
    assert slow.corruption.calls == 2
    needed = {len(set(i for clip in sampler.clips(16, None) for i in clip))}
    assert set(fast.sizes) == needed and max(needed) < 16  # never the whole 16-frame video


def test_a_corruption_that_is_not_frame_local_still_corrupts_the_whole_video(synthetic_ucf101):
    fog = Recording("fog", 3)
    object.__setattr__(fog, "sizes", [])
    ds = VideoClipDataset(ucf101_videos(synthetic_ucf101, "test"), CentredClip(4, 2), corruption=fog)
    ds[0]
    assert fog.sizes == [16]


def test_the_manifest_records_the_generator_version(synthetic_kinetics, tmp_path):
    import json

    from vidsparse.corruptions import corrupt_dataset
    from vidsparse.corruptions.registry import CORRUPTION_VERSION

    corrupt_dataset(synthetic_kinetics, tmp_path, ["brightness"], [1], split="train", progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["corruption_version"] == CORRUPTION_VERSION == 2


@pytest.mark.parametrize("temporal", ["static", "iid", "smooth"])
def test_fog_with_each_frames_own_peak_is_frame_local(temporal):
    from vidsparse.corruptions.registry import is_frame_local

    assert not is_frame_local("fog", {"temporal": temporal})  # the clip's peak needs every frame
    assert is_frame_local("fog", {"temporal": temporal, "peak": "frame"})
    video = np.random.default_rng(5).integers(0, 256, (20, 24, 32, 3), dtype=np.uint8)
    whole = corrupt(video, "fog", 3, seed=9, temporal=temporal, peak="frame")
    frames = np.array([2, 3, 11, 17])
    np.testing.assert_array_equal(
        corrupt(video[frames], "fog", 3, seed=9, frames=frames, temporal=temporal, peak="frame"),
        whole[frames])
