"""Temporal corruptions keep T and only ever show earlier (held) frames."""

import numpy as np
import pytest

from vidsparse.corruptions import corrupt, list_corruptions


def _source_index(clip, out):
    """Which source frame each output frame is (the test clip's frames are all distinct)."""
    frames = {frame.tobytes(): t for t, frame in enumerate(clip)}
    return np.array([frames[frame.tobytes()] for frame in out])


# frame_rate shortens the clip and temporal_motion_blur averages frames: test_temporal_suite.py.
@pytest.mark.parametrize("name", sorted(set(list_corruptions("temporal")) - {"frame_rate", "temporal_motion_blur"}))
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_length_is_kept_and_frames_are_copies(clip, name, severity):
    out = corrupt(clip, name, severity, seed=2)
    assert out.shape == clip.shape
    _source_index(clip, out)  # raises KeyError if a frame is not an exact source frame


@pytest.mark.parametrize("pattern", ["random", "uniform"])
@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_frame_drop_holds_the_previous_kept_frame(clip, pattern, severity):
    index = _source_index(clip, corrupt(clip, "frame_drop", severity, seed=5, pattern=pattern))
    assert index[0] == 0
    kept = np.flatnonzero(index == np.arange(len(index)))
    # Every frame shows the latest kept frame at or before it.
    for t, source in enumerate(index):
        assert source == kept[kept <= t].max()


def test_frame_drop_uniform_keeps_yi_et_al_frame_rates():
    # 30 frames at nominal 30 fps re-timed to 20, 16, 12, 9, 6 fps keep that many frames.
    clip = np.arange(30, dtype=np.uint8).reshape(30, 1, 1, 1).repeat(3, axis=-1)
    for severity, fps in zip(range(1, 6), (20, 16, 12, 9, 6)):
        out = corrupt(clip, "frame_drop", severity, pattern="uniform")
        assert len(np.unique(out[:, 0, 0, 0])) == fps


def test_frame_drop_random_rate_follows_severity():
    clip = np.arange(250, dtype=np.uint8).reshape(250, 1, 1, 1).repeat(3, axis=-1)
    kept = [len(np.unique(corrupt(clip, "frame_drop", s, seed=0))) / 250 for s in range(1, 6)]
    for got, fps in zip(kept, (20, 16, 12, 9, 6)):
        assert abs(got - fps / 30) < 0.08
    assert kept == sorted(kept, reverse=True)


@pytest.mark.parametrize("severity,shown", [(1, 5), (2, 2), (3, 1), (4, 1), (5, 1)])
def test_freeze_shows_the_schiappa_fraction_of_frames(clip, severity, shown):
    # T = 12: round(0.4 * 12) = 5, round(0.2 * 12) = 2, then 1 frame.
    index = _source_index(clip, corrupt(clip, "freeze", severity, seed=1))
    assert len(np.unique(index)) == shown
    # Frozen segments are contiguous runs; after the lead-in the shown frame never goes back.
    first = index[0]
    assert (np.diff(index) >= 0).all() and (index[index != first] > first).all()


def test_freeze_severity_5_is_one_still_frame(clip):
    out = corrupt(clip, "freeze", 5, seed=3)
    assert (out == out[:1]).all()


# --- The options that reproduce the published code (see corruptions/presets.py) ---------------

def counter(frames: int) -> np.ndarray:
    """Frame k holds the value k everywhere, so an output frame's value names its source."""
    return np.broadcast_to(np.arange(frames, dtype=np.uint8)[:, None, None, None], (frames, 2, 3, 3)).copy()


def values(out: np.ndarray) -> list[int]:
    assert (out == out[:, :1, :1, :1]).all()
    return out[:, 0, 0, 0].tolist()


@pytest.mark.parametrize("frames,severity,kept", [
    (10, 1, [0, 2, 4, 6, 8]),  # x[::2]: ceil(10 / 2) frames
    (10, 2, [0, 4, 8]),
    (13, 3, [0, 8]),           # ceil(13 / 8) = 2
    (13, 5, [0]),              # r = 32 > T
    (1, 1, [0]),
])
def test_shortened_sampling_keeps_every_rth_frame_once(frames, severity, kept):
    assert values(corrupt(counter(frames), "sampling", severity, length="shorten")) == kept
    assert values(corrupt(counter(frames), "reverse_sampling", severity, length="shorten")) == kept[::-1]


def test_temporal_blur_truncated_and_shortened_by_hand():
    # c = 3: frame t is the mean of frames t-3 .. t+2 of the counter, t - 0.5 inside the clip.
    # Shortened: t = 3 .. 6 only (T - 2c = 4 frames); truncated: t - 1, rounded half up: t.
    assert values(corrupt(counter(10), "temporal_motion_blur", 1, length="shorten",
                          rounding="truncate")) == [2, 3, 4, 5]
    assert values(corrupt(counter(10), "temporal_motion_blur", 1, length="shorten")) == [3, 4, 5, 6]
    # Kept length, truncated: the ends repeat the first / last frame. t = 0: (0+0+0+0+1+2)/6;
    # t = 1: 6/6; t = 2: 10/6; t = 10: 56/6; t = 11: 60/6 (rounded half up: 1, 1, 2, ..., 9, 10).
    assert values(corrupt(counter(12), "temporal_motion_blur", 1, rounding="truncate")) == [
        0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]


@pytest.mark.parametrize("frames,half_up,truncated", [
    (6, 3, 2),  # T = 2c: the one window inside the clip, frames 0 .. 5, mean 2.5
    (7, 3, 2),  # T = 2c + 1: t = 3 only, frames 0 .. 5
    (4, 2, 1),  # T < 2c: the mean of all 4 frames, 1.5
    (1, 0, 0),
])
def test_shortened_blur_of_a_clip_within_one_window_is_one_frame(frames, half_up, truncated):
    # Yi et al.'s range(c, T - c) gives no frame here; we give the mean of the frames there are.
    clip = counter(frames)
    assert values(corrupt(clip, "temporal_motion_blur", 1, length="shorten")) == [half_up]
    truncating = corrupt(clip, "temporal_motion_blur", 1, length="shorten", rounding="truncate")
    assert values(truncating) == [truncated]


@pytest.mark.parametrize("frames,severity,ours,published", [
    (37, 1, 15, 14),  # round / int of 0.4 * 37 = 14.8
    (37, 3, 4, 3),    # 3.7
    (37, 4, 2, 2),    # round(1.85) / max(1.85, 2)
    (60, 4, 3, 3),    # 3.0
    (30, 4, 2, 2),    # round(1.5) = 2 / max(1.5, 2)
    (10, 4, 1, 2),    # round(0.5) = 0 -> 1 / max(0.5, 2): their floor at 2 frames
    (2, 1, 1, 1),     # round / int of 0.8: 1 / 0, clamped to 1
    (1, 4, 1, 1),     # their 2 frames, clamped to the clip's 1
    (37, 5, 1, 1),
])
def test_freeze_counts_of_schiappa_et_al_truncate(frames, severity, ours, published):
    clip = counter(frames)
    assert len(set(values(corrupt(clip, "freeze", severity, seed=0)))) == ours
    assert len(set(values(corrupt(clip, "freeze", severity, seed=0, constants="ucf101_p")))) == published


@pytest.mark.parametrize("constants", ["vidsparse", "ucf101_p"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shortened_freeze_starts_at_the_first_shown_frame(constants, seed):
    frames = 40
    out = values(corrupt(counter(frames), "freeze", 1, seed=seed, constants=constants, length="shorten"))
    kept = values(corrupt(counter(frames), "freeze", 1, seed=seed, constants=constants))
    shown = sorted(set(out))
    # Schiappa et al.'s loop: each chosen frame repeated until the next one, the last until T.
    expected = [a for a, b in zip(shown, shown[1:] + [frames]) for _ in range(b - a)]
    assert out == expected and len(out) == frames - shown[0]
    # The same draw as length="keep", whose lead-in of shown[0] frames shows the first one.
    assert kept == [shown[0]] * shown[0] + out


def test_uncapped_box_jumble_shuffles_once():
    # Severity 1 on 12 frames: three segments of exactly 4 frames, in the order of one draw
    # of the clip's generator; an unchanged order (1 in 6) is kept, not redrawn.
    boxes = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    unchanged = 0
    for seed in range(30):
        order = np.random.default_rng(seed).permutation(3)
        out = values(corrupt(counter(12), "box_jumble", 1, seed=seed, cap=False))
        assert out == [f for i in order for f in boxes[i]]
        unchanged += out == list(range(12))
        assert values(corrupt(counter(12), "box_jumble", 1, seed=seed)) != list(range(12))  # capped: redrawn
    assert unchanged > 0
    # Severity 2: segments of 9 frames, so 12 frames are 0..8 and 9..11.
    out = values(corrupt(counter(12), "box_jumble", 2, seed=0, cap=False))
    assert out in (list(range(12)), [9, 10, 11] + list(range(9)))
    # Severity 5: one 36-frame segment holds the whole clip, which stays as it is.
    assert values(corrupt(counter(12), "box_jumble", 5, seed=0, cap=False)) == list(range(12))


def test_frame_rate_through_h265_is_the_re_timed_clip_after_an_x265_round_trip(clip):
    import torch

    from vidsparse.corruptions.codec import H265, _roundtrip

    exact = corrupt(clip, "frame_rate", 3)
    coded = corrupt(clip, "frame_rate", 3, seed=0, codec="h265")
    assert coded.shape == exact.shape == (5, *clip.shape[1:])  # ceil(12 * 12 / 30)
    # Yi et al.'s libx265 at its default CRF 28, on the re-timed frames.
    reference = _roundtrip(torch.from_numpy(exact), H265, {"crf": "28"}).numpy()
    np.testing.assert_array_equal(coded, reference)
    error = np.abs(coded.astype(int) - exact).mean()
    assert 0 < error < 8


@pytest.mark.parametrize("name,options,message", [
    ("sampling", {"length": "short"}, r"length must be one of \('keep', 'shorten'\), got 'short'"),
    ("reverse_sampling", {"length": None}, "length must be one of"),
    ("freeze", {"length": "shorter"}, "length must be one of"),
    ("freeze", {"constants": "imagenet_c"}, r"constants must be one of \('vidsparse', 'ucf101_p'\)"),
    ("temporal_motion_blur", {"length": "drop"}, "length must be one of"),
    ("temporal_motion_blur", {"rounding": "floor"}, r"rounding must be one of \('half_up', 'truncate'\)"),
    ("box_jumble", {"cap": "no"}, "cap must be True or False, got 'no'"),
    ("box_jumble", {"cap": 0}, "cap must be True or False, got 0"),
    ("frame_rate", {"codec": "h264"}, r"codec must be one of \(None, 'h265'\), got 'h264'"),
])
def test_bad_option_values_name_the_option_and_the_choices(clip, name, options, message):
    with pytest.raises(ValueError, match=message):
        corrupt(clip, name, 1, **options)


@pytest.mark.parametrize("name,options", [
    ("sampling", {"length": "keep"}), ("reverse_sampling", {"length": "keep"}),
    ("freeze", {"constants": "vidsparse", "length": "keep"}), ("box_jumble", {"cap": True}),
    ("temporal_motion_blur", {"length": "keep", "rounding": "half_up"}), ("frame_rate", {"codec": None}),
])
def test_the_defaults_are_the_explicit_default_options(clip, name, options):
    for severity in (1, 3, 5):
        np.testing.assert_array_equal(corrupt(clip, name, severity, seed=4),
                                      corrupt(clip, name, severity, seed=4, **options))
