"""Flip rate between consecutive overlapping clips, on videos whose frames say their own index.

The "counter" videos below are flat grey frames of level STEP * t at frame t, written
losslessly, so a model can read the index of a clip's first frame and the test knows every
prediction in advance.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.corruptions import Corruption
from vidsparse.data.clips import test_clip_indices
from vidsparse.data.datasets import UCF101, VideoFolder
from vidsparse.data.decode import write_video
from vidsparse.data.transforms import VideoTransform
from vidsparse.robustness.stability import ClipSequences, flip_rate, sequence_clip_indices

STEP = 8
LENGTHS = {"long": 24, "short": 5}  # the short video is looped: a clip spans 7 frames
FRAMES_PER_CLIP, SAMPLING_RATE = 4, 2


def counter_video(length: int) -> np.ndarray:
    levels = STEP * np.arange(length)
    return np.broadcast_to(levels[:, None, None, None], (length, 16, 16, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def counters(tmp_path_factory):
    """Two classes, one counter video each; clips come out as pixels in [0, 1]."""
    root = tmp_path_factory.mktemp("counters")
    for name, length in LENGTHS.items():
        write_video(root / "test" / name / f"{name}.mkv", counter_video(length), codec="ffv1")
    (root / "train").mkdir()
    return VideoFolder(root, split="test", frames_per_clip=FRAMES_PER_CLIP,
                       sampling_rate=SAMPLING_RATE,
                       transform=VideoTransform(crop_size=16, resize=None, mean=(0, 0, 0),
                                                std=(1, 1, 1)))


class FirstFrame(nn.Module):
    """Predicts ``rule(t)`` for the index t of the clip's first frame (read from its level)."""

    def __init__(self, rule, num_classes=2):
        super().__init__()
        self.rule, self.num_classes = rule, num_classes

    def forward(self, x):
        t = (x[:, :, 0].mean(dim=(1, 2, 3)) * 255 / STEP).round().long()
        classes = torch.tensor([self.rule(int(i)) for i in t])
        return nn.functional.one_hot(classes, self.num_classes).float()


def rate(dataset, rule, **kwargs):
    kwargs = {"clips_per_video": 6, "stride": 1, "device": "cpu", "progress": False, **kwargs}
    return flip_rate([FirstFrame(rule)], dataset, **kwargs)


def test_sequence_clip_indices():
    # 24 frames, span 7, six clips one frame apart cover 12 frames: first start (24 - 12) // 2.
    clips = sequence_clip_indices(24, FRAMES_PER_CLIP, SAMPLING_RATE, 6, 1)
    assert [c[0] for c in clips] == [6, 7, 8, 9, 10, 11]
    assert clips[0] == [6, 8, 10, 12]
    # 5 frames loop: first start (5 - 12) // 2 = -4, i.e. frame 1.
    assert [c[0] for c in sequence_clip_indices(5, 4, 2, 6, 1)] == [1, 2, 3, 4, 0, 1]
    assert sequence_clip_indices(5, 4, 2, 6, 1)[3] == [4, 1, 3, 0]
    # An odd number of clips with an even (K - 1) * stride centres on the dataset's test clip.
    for n in (5, 16, 24, 31):
        assert sequence_clip_indices(n, 4, 2, 5, 2)[2] == test_clip_indices(n, 4, 2)


def test_hand_computed_flip_rates(counters):
    assert counters.classes == ["long", "short"]
    # First frames 6..11 alternate in parity with stride 1 and keep it (3, 5, ..., 13) with
    # stride 2; the looped short video starts at 1, 2, 3, 4, 0, 1 (4 flips of 5) and at
    # 4, 1, 3, 0, 2, 4 (2 of 5).
    assert rate(counters, lambda t: t % 2)["per_video"] == [[1.0, 0.8]]
    assert rate(counters, lambda t: t % 2, stride=2)["per_video"] == [[0.0, 0.4]]
    assert rate(counters, lambda t: t % 2, limit=1)["flip_rate"] == [1.0]
    constant = rate(counters, lambda t: 0)
    assert constant["flip_rate"] == [0.0] and constant["accuracy"] == [0.5]
    # t % 3 == 0 over 6..11 is 1,0,0,1,0,0 (3 flips of 5); over 1,2,3,4,0,1 it is
    # 0,0,1,0,1,0 (4 of 5).
    out = rate(counters, lambda t: int(t % 3 == 0))
    assert out["predictions"] == [[[1, 0, 0, 1, 0, 0], [0, 0, 1, 0, 1, 0]]]
    assert out["per_video"] == [[0.6, 0.8]]
    assert out["flip_rate"] == [pytest.approx(0.7)]
    assert out["accuracy"] == [0.5]  # label 0, four 0s; label 1, two 1s: 6 of 12
    assert out["labels"] == [0, 1]
    assert out["videos"] == ["test/long/long.mkv", "test/short/short.mkv"]
    assert (out["clips_per_video"], out["stride"]) == (6, 1)


def keep_even_frames(video, path):
    return video[::2]


def test_the_whole_video_is_corrupted_before_the_clips_are_cut(counters):
    # 12 kept frames of the long video (0, 2, ..., 22): clips start at kept frames 0..5,
    # i.e. frames 0, 2, ..., 10. The short video keeps 0, 2, 4; looped, its clips start at
    # kept 1, 2, 0, 1, 2, 0, i.e. frames 2, 4, 0, 2, 4, 0. All even: parity never flips.
    out = rate(counters, lambda t: t % 2, corruption=keep_even_frames)
    assert out["predictions"] == [[[0] * 6, [0] * 6]]
    # t // 2 % 2 then gives 0,1,0,1,0,1 (5 flips of 5) and 1,0,0,1,0,0 (3 of 5); the
    # dataset's own corruption is the default. Clean: 1,1,0,0,1,1 and 0,1,1,0,0,0 (2 of 5).
    corrupted = counters.with_corruption(keep_even_frames)
    assert rate(corrupted, lambda t: t // 2 % 2)["per_video"] == [[1.0, 0.6]]
    assert rate(counters, lambda t: t // 2 % 2)["per_video"] == [[0.4, 0.4]]


def test_bad_arguments(counters):
    with pytest.raises(ValueError, match="overlapping"):
        rate(counters, lambda t: 0, stride=7)  # the clip span
    with pytest.raises(ValueError, match=">= 2"):
        rate(counters, lambda t: 0, clips_per_video=1)
    with pytest.raises(ValueError, match="train=False"):
        ClipSequences(VideoFolder(counters.root, split="test", frames_per_clip=4,
                                  transform=VideoTransform(crop_size=16, resize=None, train=True)),
                      3, 1)


def test_clips_are_the_datasets_clips(synthetic_ucf101):
    """The middle of 3 clips 2 frames apart is the dataset's centred test clip, clean and
    under a real corruption (the same per-video seed)."""
    transform = VideoTransform(crop_size=32, resize=32)
    test = UCF101(synthetic_ucf101, split="test", frames_per_clip=4, sampling_rate=2,
                  transform=transform)
    for dataset in (test, test.with_corruption(Corruption("gaussian_noise", severity=2, seed=3))):
        sequences = ClipSequences(dataset, clips_per_video=3, stride=2, indices=[0, 4])
        for item, index in enumerate([0, 4]):
            clips, label = sequences[item]
            clip, expected_label = dataset[index]
            assert clips.shape == (3, *clip.shape) and label == expected_label
            assert torch.equal(clips[1], clip)


def test_flip_rate_of_a_tiny_model(synthetic_ucf101):
    torch.manual_seed(0)
    test = UCF101(synthetic_ucf101, split="test", frames_per_clip=4, sampling_rate=2,
                  transform=VideoTransform(crop_size=32, resize=32))
    models = [vidsparse.create_model("r3d_tiny", num_classes=3) for _ in range(2)]
    out = flip_rate(models, test, clips_per_video=3, stride=2, limit=3, device="cpu",
                    progress=False)
    assert len(out["flip_rate"]) == len(out["accuracy"]) == 2
    assert len(out["videos"]) == len(out["labels"]) == 3
    for fr, per_video, preds in zip(out["flip_rate"], out["per_video"], out["predictions"]):
        assert 0.0 <= fr <= 1.0 and len(per_video) == 3
        assert fr == pytest.approx(np.mean(per_video))
        assert np.asarray(preds).shape == (3, 3)
