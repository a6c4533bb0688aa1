"""The clip samplers a dataset chooses once per split, checked against hand-computed indices."""

import numpy as np
import pytest

from vidsparse.data.clips import CentredClip, MultiViewClips, RandomClip, clip_sampler


class FixedDraw:
    """An RNG stand-in whose ``integers`` returns ``value`` and records the bounds asked for."""

    def __init__(self, value: int):
        self.value = value
        self.bounds: list[tuple[int, int]] = []

    def integers(self, low: int, high: int) -> int:
        self.bounds.append((low, high))
        return self.value


class NoDraw:
    """An RNG stand-in that fails the test if a deterministic sampler draws from it."""

    def integers(self, *args):
        raise AssertionError("a deterministic sampler drew from the item's RNG")


def test_random_clip_draws_its_start_from_the_starts_that_fit():
    # 20 frames, 4 frames every 3rd: span (4 - 1) * 3 + 1 = 10, so starts 0..10.
    rng = FixedDraw(7)
    assert RandomClip(4, 3).clips(20, rng) == [[7, 10, 13, 16]]
    assert rng.bounds == [(0, 11)]


def test_random_clip_loops_a_short_video():
    # 6 frames < span 10: any frame may start the clip (0..5); start 5 -> 5, 8, 11, 14 mod 6.
    rng = FixedDraw(5)
    assert RandomClip(4, 3).clips(6, rng) == [[5, 2, 5, 2]]
    assert rng.bounds == [(0, 6)]


def test_random_clip_with_a_real_generator_stays_in_range():
    starts = {RandomClip(4, 3).clips(20, np.random.default_rng(s))[0][0] for s in range(200)}
    assert starts == set(range(11))


@pytest.mark.parametrize("num_frames, expected", [
    (20, [5, 8, 11, 14]),  # start (20 - 10) // 2 = 5
    (10, [0, 3, 6, 9]),    # exactly one clip fits
    (7, [5, 1, 4, 0]),     # start (7 - 10) // 2 = -2 -> 5, then 8, 11, 14 mod 7
])
def test_centred_clip(num_frames, expected):
    assert CentredClip(4, 3).clips(num_frames, NoDraw()) == [expected]


def test_multi_view_clips_are_evenly_spaced_and_draw_nothing():
    # 20 frames, span 10, last start 10: starts 0, 10 * 1 // 2 = 5, 10.
    sampler = MultiViewClips(4, 3, num_clips=3)
    assert sampler.clips(20, NoDraw()) == [[0, 3, 6, 9], [5, 8, 11, 14], [10, 13, 16, 19]]
    assert sampler.stacks_views and sampler.num_clips == 3


@pytest.mark.parametrize("split, num_clips, kind, clips", [
    ("train", 1, RandomClip, 1),
    ("train", 5, RandomClip, 1),  # training takes one clip per video whatever num_clips says
    ("test", 1, CentredClip, 1),
    ("validate", 1, CentredClip, 1),
    ("test", 4, MultiViewClips, 4),
])
def test_clip_sampler_is_chosen_from_the_split(split, num_clips, kind, clips):
    sampler = clip_sampler(split, 8, 2, num_clips)
    assert type(sampler) is kind and sampler.num_clips == clips
    assert (sampler.frames_per_clip, sampler.sampling_rate) == (8, 2)
    assert sampler.stacks_views == (kind is MultiViewClips)


@pytest.mark.parametrize("args, match", [
    (("test", 0, 2, 1), "frames_per_clip"),
    (("test", 8, 0, 1), "sampling_rate"),
    (("test", 8, 2, 0), "num_clips must be a positive int, got 0"),
    (("train", 8, 2, 1.5), "num_clips must be a positive int"),
])
def test_clip_sampler_rejects_bad_settings(args, match):
    with pytest.raises(ValueError, match=match):
        clip_sampler(*args)


def test_multi_view_clips_need_two_clips():
    with pytest.raises(ValueError, match="num_clips must be an int >= 2"):
        MultiViewClips(8, 2, num_clips=1)
