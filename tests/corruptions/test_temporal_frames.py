"""A temporal corruption's frame map gives exactly the whole-video result from the needed frames."""

import numpy as np
import pytest
import torch

from vidsparse.corruptions import corrupt, list_corruptions
from vidsparse.corruptions.temporal import INDEX_FUNCTIONS, source_map

TEMPORAL = sorted(list_corruptions("temporal"))
CASES = [(name, options) for name in TEMPORAL
         for options in ([{"pattern": "random"}, {"pattern": "uniform"}] if name == "frame_drop" else [{}])]
IDS = [name + "".join(f"-{v}" for v in options.values()) for name, options in CASES]


def test_every_temporal_corruption_has_an_index_function():
    assert INDEX_FUNCTIONS.names() == TEMPORAL


def random_video(frames: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(frames).integers(0, 256, (frames, 3, 5, 3), dtype=np.uint8))


def clips_of(num_frames: int) -> list[list[int]]:
    """Output frames to ask for: all of them backwards, one in the middle twice, I3D-like steps."""
    return [list(range(num_frames))[::-1], [num_frames // 2] * 2, list(range(0, num_frames, 8))]


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("num_frames", [1, 13, 70])
def test_the_needed_frames_give_the_rows_of_the_whole_video_result(name, options, severity, num_frames):
    video = random_video(num_frames)
    whole = corrupt(video, name, severity, seed=7, **options)
    plan = source_map(name, num_frames, severity, seed=7, **options)
    assert plan.num_frames == len(whole)
    for indices in clips_of(plan.num_frames):
        needed = plan.needed(indices)
        assert (np.diff(needed) > 0).all() and needed.min() >= 0 and needed.max() < num_frames
        assert torch.equal(plan.take(video[needed], needed, indices), whole[indices])


@pytest.mark.parametrize("name,options", [c for c in CASES if c[0] != "temporal_motion_blur"],
                         ids=[i for i in IDS if i != "temporal_motion_blur"])
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_needed_is_exactly_the_source_frames_shown(name, options, severity):
    # Frame k of the counter video holds the value k, so the whole result names its sources.
    counter = torch.arange(40, dtype=torch.uint8)[:, None, None, None].expand(40, 2, 2, 3).contiguous()
    whole = corrupt(counter, name, severity, seed=3, **options)
    plan = source_map(name, 40, severity, seed=3, **options)
    n = len(whole)
    indices = [0, n // 4, n // 2, n // 2 + 1, n - 1]
    assert plan.needed(indices).tolist() == sorted(set(whole[indices, 0, 0, 0].tolist()))


@pytest.mark.parametrize("name,severity,indices,needed,num_frames", [
    ("sampling", 2, [5, 6, 13], [4, 12], 175),                # t -> t - t mod 4
    ("reverse_sampling", 2, [0, 5], [168, 172], 175),         # t -> sampling(174 - t): 172, 168
    ("frame_rate", 3, [0, 8, 16], [0, 20, 40], 70),           # j -> floor(j * 30 / 12); ceil(175 * 12 / 30)
    ("frame_rate", 5, [1, 34], [5, 170], 35),                 # 6 fps: ceil(175 / 5) = 35 frames
    ("temporal_motion_blur", 1, [0], [0, 1, 2], 175),         # frames -3 .. 2, clamped to 0
    ("temporal_motion_blur", 3, [100], list(range(93, 107)), 175),  # c = 7: 100-7 .. 100+6
    ("temporal_motion_blur", 3, [0, 8], list(range(0, 15)), 175),   # windows 0..6 and 1..14
])
def test_hand_computed_maps(name, severity, indices, needed, num_frames):
    plan = source_map(name, 175, severity, seed=0)
    assert plan.num_frames == num_frames
    assert plan.needed(indices).tolist() == needed


def test_an_i3d_clip_of_a_ucf101_sized_video_needs_few_frames():
    # The centre clip of I3D (8 frames every 8: a span of 57) of 175 frames starts at
    # (175 - 57) // 2 = 59: frames 59, 67, ..., 115.
    clip = list(range(59, 116, 8))
    assert len(source_map("frame_drop", 175, 3, seed=1).needed(clip)) <= 8
    assert len(source_map("jumble", 175, 3, seed=1).needed(clip)) == 8  # a permutation
    assert len(source_map("temporal_motion_blur", 175, 3).needed(clip)) == 8 * 8 + 6  # 52..121


def test_take_returns_the_type_it_is_given():
    video = random_video(20)
    plan = source_map("jumble", 20, 4, seed=2)
    needed = plan.needed([3, 4])
    out = plan.take(video[needed].numpy(), needed, [3, 4])
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, corrupt(video.numpy(), "jumble", 4, seed=2)[[3, 4]])


def test_bad_calls_say_what_was_expected():
    plan = source_map("sampling", 20, 2)
    with pytest.raises(ValueError, match=r"output frame indices in 0\.\.19"):
        plan.needed([20])
    with pytest.raises(ValueError, match="output frame indices"):
        plan.needed([])
    with pytest.raises(ValueError, match=r"source frames \[4\]"):  # frame 5 shows source frame 4
        plan.take(random_video(20)[[5]], [5], [5])
    with pytest.raises(KeyError, match="unknown temporal corruption 'fog'.*frame_drop"):
        source_map("fog", 20)
    with pytest.raises(TypeError, match="unknown option.*pattern"):
        source_map("sampling", 20, pattern="uniform")
    with pytest.raises(ValueError, match="severity must be one of"):
        source_map("sampling", 20, 6)
    with pytest.raises(ValueError, match="num_frames must be a positive int"):
        source_map("sampling", 0)
