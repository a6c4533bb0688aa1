"""A temporal corruption's frame map gives exactly the whole-video result from the needed frames."""

import numpy as np
import pytest
import torch

from vidsparse.corruptions import Corruption, corrupt, list_corruptions
from vidsparse.corruptions.presets import PRESETS, expand_preset
from vidsparse.corruptions.temporal import INDEX_FUNCTIONS, has_source_map, source_map
from vidsparse.data import video_dataset
from vidsparse.data.clips import CentredClip
from vidsparse.data.ucf101 import ucf101_videos
from vidsparse.data.video_dataset import VideoClipDataset

TEMPORAL = sorted(list_corruptions("temporal"))
# Every option value of the temporal corruptions, alone and as the presets combine them.
OPTIONS = {
    "frame_drop": [{"pattern": "random"}, {"pattern": "uniform"}],
    "freeze": [{"constants": "ucf101_p"}, {"length": "shorten"}],
    "sampling": [{"length": "shorten"}],
    "reverse_sampling": [{"length": "shorten"}],
    "box_jumble": [{"cap": False}],
    "temporal_motion_blur": [{"length": "shorten"}, {"rounding": "truncate"}],
}
PRESET_OPTIONS = [(name, options) for preset in PRESETS.names() for name, options in expand_preset(preset)
                  if name in TEMPORAL]
CASES = [(name, {}) for name in TEMPORAL] + [(n, o) for n, opts in OPTIONS.items() for o in opts]
CASES += [case for case in PRESET_OPTIONS if case not in CASES]
MAPPED = [(name, options) for name, options in CASES if has_source_map(name, options)]
IDS = [name + "".join(f"-{k}={v}" for k, v in options.items()) for name, options in MAPPED]


def test_every_temporal_corruption_has_an_index_function():
    assert INDEX_FUNCTIONS.names() == TEMPORAL


def test_the_cases_cover_every_preset_option_and_the_one_unmapped_option():
    assert all(case in CASES for case in PRESET_OPTIONS)
    assert [case for case in CASES if case not in MAPPED] == [("frame_rate", {"codec": "h265"})]


def random_video(frames: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(frames).integers(0, 256, (frames, 3, 5, 3), dtype=np.uint8))


def clips_of(num_frames: int) -> list[list[int]]:
    """Output frames to ask for: all of them backwards, one in the middle twice, I3D-like steps."""
    return [list(range(num_frames))[::-1], [num_frames // 2] * 2, list(range(0, num_frames, 8))]


@pytest.mark.parametrize("name,options", MAPPED, ids=IDS)
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


@pytest.mark.parametrize("name,options", [c for c in MAPPED if c[0] != "temporal_motion_blur"],
                         ids=[i for i in IDS if not i.startswith("temporal_motion_blur")])
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_needed_is_exactly_the_source_frames_shown(name, options, severity):
    # Frame k of the counter video holds the value k, so the whole result names its sources.
    counter = torch.arange(40, dtype=torch.uint8)[:, None, None, None].expand(40, 2, 2, 3).contiguous()
    whole = corrupt(counter, name, severity, seed=3, **options)
    plan = source_map(name, 40, severity, seed=3, **options)
    n = len(whole)
    indices = [min(i, n - 1) for i in (0, n // 4, n // 2, n // 2 + 1, n - 1)]  # n may be 2
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


@pytest.mark.parametrize("name,severity,options,indices,needed,num_frames", [
    ("sampling", 2, {"length": "shorten"}, [1, 43], [4, 172], 44),            # j -> 4j; ceil(175 / 4)
    ("reverse_sampling", 2, {"length": "shorten"}, [0, 43], [0, 172], 44),    # j -> 4 (43 - j)
    ("temporal_motion_blur", 1, {"length": "shorten"}, [0], list(range(6)), 169),  # row c = 3: 0 .. 5
    ("temporal_motion_blur", 3, {"length": "shorten"}, [160], list(range(160, 174)), 161),  # t = 167
    ("temporal_motion_blur", 5, {"length": "shorten", "rounding": "truncate"}, [0], list(range(22)), 153),
])
def test_hand_computed_maps_of_the_published_options(name, severity, options, indices, needed, num_frames):
    plan = source_map(name, 175, severity, seed=0, **options)
    assert plan.num_frames == num_frames
    assert plan.needed(indices).tolist() == needed
    assert plan.rounding == options.get("rounding", "half_up")


def test_a_blur_shorter_than_its_window_is_one_frame_of_the_whole_clip():
    # c = 7 at severity 3: a 14-frame clip has no window inside it in Yi et al.'s range(c, T - c);
    # ours gives one frame reading all 14 frames (and all 5 of a 5-frame clip).
    for num_frames in (14, 5, 1):
        plan = source_map("temporal_motion_blur", num_frames, 3, length="shorten")
        assert plan.num_frames == 1 and plan.needed([0]).tolist() == list(range(num_frames))
    assert source_map("temporal_motion_blur", 15, 3, length="shorten").needed([0]).tolist() == list(range(14))


def test_frame_rate_through_a_codec_has_no_frame_map():
    assert has_source_map("frame_rate") and has_source_map("freeze", {"length": "shorten"})
    assert not has_source_map("frame_rate", {"codec": "h265"})
    assert not has_source_map("fog") and not has_source_map("h264_crf")
    with pytest.raises(ValueError, match="codec='h265'.*no frame map.*whole video"):
        source_map("frame_rate", 20, codec="h265")
    with pytest.raises(ValueError, match=r"codec must be one of \(None, 'h265'\), got 'h264'"):
        source_map("frame_rate", 20, codec="h264")


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
    with pytest.raises(ValueError, match=r"length must be one of \('keep', 'shorten'\), got 'short'"):
        source_map("sampling", 20, length="short")
    with pytest.raises(ValueError, match=r"rounding must be one of \('half_up', 'truncate'\)"):
        source_map("temporal_motion_blur", 20, rounding="floor")


# --- Through a dataset ------------------------------------------------------------------------

class WholeVideo:
    """The same corruption through the whole-video path: a plain callable has no frame map."""

    def __init__(self, corruption):
        self.corruption = corruption

    def __call__(self, video, path):
        return self.corruption(video, path)


@pytest.mark.parametrize("name,options", [case for case in CASES if case[1]],
                         ids=[name + "".join(f"-{k}={v}" for k, v in options.items())
                              for name, options in CASES if options])
def test_a_dataset_item_with_the_options_equals_the_whole_video_item(synthetic_ucf101, monkeypatch,
                                                                     name, options):
    # 16-frame videos, CentredClip(4, 2): the corrupted video's centre frames.
    whole_decodes = []
    read_video = video_dataset.read_video
    monkeypatch.setattr(video_dataset, "read_video",
                        lambda *args, **kwargs: whole_decodes.append(1) or read_video(*args, **kwargs))
    corruption = Corruption(name, 4, seed=4, options=options)
    fast = VideoClipDataset(ucf101_videos(synthetic_ucf101, "test"), CentredClip(4, 2), corruption=corruption)
    slow = fast.with_corruption(WholeVideo(corruption))
    for index in (0, 3):
        expected, expected_label = slow[index]
        whole_decodes.clear()
        clip, label = fast[index]
        assert torch.equal(clip, expected) and label == expected_label
        # Only frame_rate through the codec needs the whole video.
        assert len(whole_decodes) == (0 if has_source_map(name, options) else 1)
