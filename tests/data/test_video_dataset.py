"""The one clip dataset with an injected sampler: decode -> (corrupt) -> sample -> transform."""

import pytest
import torch

from vidsparse.data.clips import CentredClip, ClipSampler, MultiViewClips, RandomClip
from vidsparse.data.decode import read_frames, read_video
from vidsparse.data.transforms import VideoTransform
from vidsparse.data.ucf101 import ucf101_videos
from vidsparse.data.video_dataset import VideoClipDataset


class Fixed(ClipSampler):
    """Always the given clips; records the video lengths it was asked about."""

    def __init__(self, clips, stacks_views=False):
        super().__init__(len(clips[0]), 1)
        self.fixed = clips
        self.num_clips = len(clips)
        self.stacks_views = stacks_views
        self.lengths = []

    def clips(self, num_frames, rng):
        self.lengths.append(num_frames)
        return self.fixed


def channels_first(clip):
    return clip.permute(3, 0, 1, 2).float()


def test_the_injected_sampler_chooses_the_frames(synthetic_ucf101):
    sampler = Fixed([[3, 0, 7, 1]])
    ds = VideoClipDataset(ucf101_videos(synthetic_ucf101, "test"), sampler)
    clip, label = ds[2]
    path, expected_label = ds.samples[2]
    assert label == expected_label and sampler.lengths == [16]  # the indexed frame count
    assert torch.equal(clip, torch.from_numpy(read_frames(path, [3, 0, 7, 1])))
    assert (ds.frames_per_clip, ds.sampling_rate, ds.num_clips) == (4, 1, 1)


def test_the_corruption_runs_on_the_whole_video_before_sampling(synthetic_ucf101):
    sampler = Fixed([[0, 9]])
    clean = VideoClipDataset(ucf101_videos(synthetic_ucf101, "test"), sampler)
    # Reversed and cut to 10 frames: frame j of the result is frame 15 - j of the video.
    ds = clean.with_corruption(lambda video, path: video.flip(0)[:10])
    clip, _ = ds[2]
    assert sampler.lengths == [10]  # the sampler saw the corrupted length
    full = torch.from_numpy(read_video(ds.samples[2][0])[0])
    assert torch.equal(clip, full[[15, 6]])
    assert clean.corruption is None  # with_corruption copies


def test_stacked_views_are_each_transformed(synthetic_ucf101):
    sampler = Fixed([[0, 1], [4, 5], [8, 9]], stacks_views=True)
    ds = VideoClipDataset(ucf101_videos(synthetic_ucf101, "test"), sampler,
                          transform=channels_first)
    views, _ = ds[0]
    assert views.shape == (3, 3, 2, 48, 64)
    frames = torch.from_numpy(read_frames(ds.samples[0][0], [0, 1, 4, 5, 8, 9]))
    for k in range(3):
        assert torch.equal(views[k], channels_first(frames[2 * k:2 * k + 2]))


@pytest.mark.parametrize("sampler, transform", [
    (RandomClip(4, 3), VideoTransform(crop_size=32, resize=40, train=True)),
    (CentredClip(4, 3), None),
    (MultiViewClips(4, 3, num_clips=3), VideoTransform(crop_size=32, resize=40, num_crops=3)),
])
def test_an_identity_corruption_gives_the_clean_items(synthetic_ucf101, sampler, transform):
    # Clean and corrupted items share one path: same RNG draws, same clips, same crops.
    clean = VideoClipDataset(ucf101_videos(synthetic_ucf101, "train"), sampler,
                             transform=transform, seed=3)
    clean.set_epoch(1)
    corrupted = clean.with_corruption(lambda video, path: video)
    for i in (0, 5, 11):
        assert torch.equal(clean[i][0], corrupted[i][0])


def test_unknown_backend_is_refused_before_indexing(synthetic_ucf101):
    with pytest.raises(ValueError, match="unknown video backend 'opencv'; known: pyav"):
        VideoClipDataset(ucf101_videos(synthetic_ucf101, "test"), CentredClip(4, 1),
                         backend="opencv")
