"""Benchmark presets: each published corruption set, with the options that reproduce it.

The published sets below are written out by hand from the benchmarks' code (cited), so a
preset that drops or renames a corruption fails here.
"""

import inspect

import numpy as np
import pytest
import torch
from conftest import moving_square_clip

from vidsparse.corruptions import CORRUPTIONS, _ops, codec, corrupt, list_corruptions, registry, weather
from vidsparse.corruptions.presets import (PRESETS, Difference, differences_markdown,
                                           expand_preset, get_preset)

# hendrycks/robustness ImageNet-C/imagenet_c/imagenet_c/__init__.py, corruption_tuple[:15]
IMAGENET_C = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
              "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
              "elastic_transform", "pixelate", "jpeg_compression"]
# Newbeeyoung/Video-Corruption-Robustness create_mini_kinetics_c.py (SingleImageCorruption,
# ClipCorruption, FfmpegCorruption) and its packet-loss-simulation submodule.
MINI_KINETICS_C = ["shot_noise", "rain", "contrast", "brightness", "saturate", "motion_blur",
                   "fog", "bit_error", "h265_crf", "h265_abr", "h264_crf", "h264_abr",
                   "frame_rate", "packet_loss"]
# Maddy12/ActionRecognitionRobustnessEval core/video_perturb.py, VideoPerturbation.mapping
# without the training mixes (temporal, spatial, mixed, pixmix).
UCF101_P = ["motion_blur", "compression", "defocus_blur", "gaussian_noise", "shot_noise",
            "impulse_noise", "zoom_blur", "rotate", "static_rotate", "speckle_noise", "sampling",
            "reverse_sampling", "jumble", "box_jumble", "freeze", "translate"]
PUBLISHED = {"imagenet_c": IMAGENET_C, "mini_kinetics_c": MINI_KINETICS_C, "ucf101_p": UCF101_P}

def numbered(frames: int) -> np.ndarray:
    """A clip whose frame t is filled with 3t: every frame tells which source frame it is."""
    return np.repeat(3 * np.arange(frames, dtype=np.uint8), 2 * 2 * 3).reshape(frames, 2, 2, 3)


CONDITIONS = [(preset, name, options) for preset in PRESETS.names()
              for name, options in expand_preset(preset)]
IDS = [f"{preset}-{name}" for preset, name, _ in CONDITIONS]


def test_the_three_benchmarks_have_presets():
    assert PRESETS.names() == sorted(PUBLISHED)


def test_expansion_gives_the_conditions_in_the_benchmark_order():
    conditions = expand_preset("mini_kinetics_c")
    assert all(isinstance(name, str) and isinstance(options, dict) for name, options in conditions)
    names = [get_preset("mini_kinetics_c").published_names.get(n, n) for n, _ in conditions]
    assert names == MINI_KINETICS_C
    assert dict(conditions)["packet_loss"] == {"model": "udp"}
    # The options are copies: changing them does not change the preset.
    conditions[0][1]["temporal"] = "smooth"
    assert expand_preset("mini_kinetics_c")[0][1]["temporal"] == "iid"


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown corruption preset 'kinetics_c'; known: "
                                       "imagenet_c, mini_kinetics_c, ucf101_p"):
        expand_preset("kinetics_c")


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_every_published_corruption_is_in_the_preset_or_listed_missing(preset):
    spec = get_preset(preset)
    covered = [spec.published_names.get(name, name) for name in spec.corruptions]
    assert sorted(covered + list(spec.missing)) == sorted(PUBLISHED[preset])
    assert len(set(covered)) == len(covered)
    # Each missing one says why.
    assert all(len(why) > 20 for why in spec.missing.values())


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_preset_corruptions_are_registered_and_missing_ones_are_not(preset):
    spec = get_preset(preset)
    registered = list_corruptions()
    assert [name for name in spec.corruptions if name not in registered] == []
    # A corruption added to vidsparse must move from ``missing`` into the preset.
    assert [name for name in spec.missing if name in registered] == []


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_differences_and_renames_concern_the_preset_corruptions(preset):
    spec = get_preset(preset)
    assert set(spec.differences) <= set(spec.corruptions)
    assert set(spec.published_names) <= set(spec.corruptions)
    assert all(isinstance(d, Difference) and (d.default or d.remaining)
               for d in spec.differences.values())
    table = differences_markdown(preset)
    for name in spec.corruptions:
        assert f"\n| {name}" in table
    for name in spec.missing:
        assert f"\n| {name} | missing |" in table


def test_presets_select_the_published_codec_settings():
    # Yi et al.: packet loss 1, 2, 3, 4, 6 % of UDP datagrams; CRF tables as published.
    options = dict(expand_preset("mini_kinetics_c"))
    assert [codec.encoder_settings("packet_loss", s, **options["packet_loss"])["packet_loss_rate"]
            for s in (1, 2, 3, 4, 5)] == [0.01, 0.02, 0.03, 0.04, 0.06]
    assert [codec.encoder_settings("h264_crf", s, **options["h264_crf"])["crf"]
            for s in (1, 2, 3, 4, 5)] == [23, 30, 37, 44, 51]
    assert [codec.encoder_settings("h265_crf", s, **options["h265_crf"])["crf"]
            for s in (1, 2, 3, 4, 5)] == [27, 33, 39, 45, 51]


# --- Every option a preset names must exist --------------------------------------------------

@pytest.mark.parametrize("preset, name, options", CONDITIONS, ids=IDS)
def test_preset_options_are_accepted_by_the_signatures(preset, name, options):
    accepted = {p.name for p in inspect.signature(CORRUPTIONS.get(name)).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert sorted(set(options) - accepted) == []


@pytest.mark.parametrize("preset, name, options", CONDITIONS, ids=IDS)
def test_every_preset_condition_corrupts_a_clip(preset, name, options):
    clip = moving_square_clip(24, 32, 48)
    for severity in (1, 5):
        out = corrupt(clip, name, severity, seed=severity, **options)
        assert out.dtype == np.uint8 and out.shape[1:] == clip.shape[1:]
        assert 1 <= out.shape[0] <= clip.shape[0]


# --- The published behaviour the preset options select (hand-computed) -----------------------

def test_published_contrast_of_yi_et_al():
    # create_mini_ssv2_c.py contrast: c = 0.5, 0.4, 0.3, 0.2, 0.1; (x - mean) * c + mean.
    frame = np.zeros((1, 2, 2, 3), np.uint8)
    frame[0, 0, :] = 200  # channel means 100
    options = dict(expand_preset("mini_kinetics_c"))["contrast"]
    for severity, c in zip((1, 5), (0.5, 0.1)):
        out = corrupt(frame, "contrast", severity, **options)
        np.testing.assert_array_equal(out[0, 0], np.full((2, 3), round(100 + 100 * c)))
        np.testing.assert_array_equal(out[0, 1], np.full((2, 3), round(100 - 100 * c)))


def test_published_sampling_of_schiappa_et_al_shortens_the_clip():
    clip = numbered(10)
    options = dict(expand_preset("ucf101_p"))
    # video_perturb.py: x[:, ::r] with r = 2, 4, 8, 16, 32; reverse_sampling flips it.
    np.testing.assert_array_equal(corrupt(clip, "sampling", 1, **options["sampling"]), clip[::2])
    np.testing.assert_array_equal(corrupt(clip, "sampling", 2, **options["sampling"]), clip[::4])
    reverse = corrupt(clip, "reverse_sampling", 1, **options["reverse_sampling"])
    np.testing.assert_array_equal(reverse, clip[::2][::-1])


def test_published_temporal_blur_of_yi_et_al_drops_the_ends_and_truncates():
    clip = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    options = dict(expand_preset("mini_kinetics_c"))["temporal_motion_blur"]
    # create_mini_kinetics_c.py motion_blur, c = 3 at severity 1: frame i in range(c, T - c)
    # is np.uint8(sum(clip[i - c:i + c]) / (2c)).
    expected = np.stack([(clip[i - 3:i + 3].astype(np.float64).sum(0) / 6).astype(np.uint8)
                         for i in range(3, 10 - 3)])
    np.testing.assert_array_equal(corrupt(clip, "temporal_motion_blur", 1, **options), expected)


def test_published_freeze_of_schiappa_et_al():
    clip = numbered(40)
    options = dict(expand_preset("ucf101_p"))["freeze"]
    # video_perturb.py freeze: k = int([.4T, .2T, .1T, max(.05T, 2), 1][s - 1]) frames, each
    # held until the next; the clip starts at the first of them.
    for severity, k in zip((1, 2, 3, 4, 5), (16, 8, 4, 2, 1)):
        out = corrupt(clip, "freeze", severity, seed=severity, **options)
        shown = sorted({int(v) // 3 for v in out[:, 0, 0, 0]})  # the source frames it shows
        assert len(shown) == k
        assert np.array_equal(out[0], clip[shown[0]]) and len(out) == len(clip) - shown[0]


def test_published_box_jumble_of_schiappa_et_al_does_not_cap_segments():
    clip = numbered(8)
    options = dict(expand_preset("ucf101_p"))["box_jumble"]
    # (s + 1)^2 = 36 frames at severity 5: the 8-frame clip is one segment, left as it is.
    np.testing.assert_array_equal(corrupt(clip, "box_jumble", 5, seed=0, **options), clip)
    # 4 frames at severity 1: two segments, in either order.
    out = corrupt(clip, "box_jumble", 1, seed=0, **options)
    assert np.array_equal(out, clip) or np.array_equal(out, np.concatenate([clip[4:], clip[:4]]))


def test_published_noise_tables_of_schiappa_et_al_are_milder():
    clip = moving_square_clip()
    options = dict(expand_preset("ucf101_p"))

    def error(name, severity, opts):
        return np.abs(corrupt(clip, name, severity, seed=0, **opts).astype(float) - clip).mean()

    # Shot noise with 250 photons against ImageNet-C's 60; speckle 0.25 against 0.35.
    assert error("shot_noise", 1, options["shot_noise"]) < error(
        "shot_noise", 1, {"temporal": "iid", "constants": "imagenet_c"})
    assert error("speckle_noise", 3, options["speckle_noise"]) < error(
        "speckle_noise", 3, {"temporal": "iid", "constants": "imagenet_c"})


def test_published_noise_tables_of_schiappa_et_al_by_hand():
    # On a flat frame at level 128 (x = 128/255): shot noise at severity 1 is
    # Poisson(250 x) / 250, std sqrt(250 x) / 250 = 11.4 levels; speckle noise at severity 3 is
    # x + x N(0, 0.25), std 0.25 x = 32 levels. 24 x 32 x 48 x 3 values: the sample stds are
    # within 1 % of these.
    flat = np.full((24, 32, 48, 3), 128, np.uint8)
    options = dict(expand_preset("ucf101_p"))
    x = 128 / 255
    shot = corrupt(flat, "shot_noise", 1, seed=0, **options["shot_noise"]).astype(float)
    assert abs(shot.std() - 255 * np.sqrt(250 * x) / 250) < 0.02 * 11.4
    speckle = corrupt(flat, "speckle_noise", 3, seed=0, **options["speckle_noise"]).astype(float)
    assert abs(speckle.std() - 255 * 0.25 * x) < 0.02 * 32


# --- Yi et al.'s rain (rain, constants="mini_kinetics_c") ----------------------------------------
# Newbeeyoung/Video-Corruption-Robustness create_mini_ssv2_c.py: generate_random_lines,
# rain_process and rain.

YI_RAIN = {"constants": "mini_kinetics_c"}


def pixels(rows, cols):
    return sorted(set(zip(rows.tolist(), cols.tolist())))


def test_rain_lines_are_the_pixels_opencv_draws():
    # cv2.line (thickness 1, 8-connected) steps from the line's left end, here its bottom end
    # (x - 1, y + L), one row up a step. Its error term starts at L - 2 and falls by 2 a step;
    # where it is negative the line also moves one column right. L = 10: negative at the 6th
    # pixel, so the lower 6 rows are at x - 1 and the upper 5 at x.
    assert pixels(*weather.line_pixels([5], [2], [4], [12], 20, 12)) == (
        [(y, 5) for y in range(2, 7)] + [(y, 4) for y in range(7, 13)])
    # L = 11: 11 - 2 - 2k < 0 from k = 5: the lower 6 rows at x - 1, the upper 6 at x.
    assert pixels(*weather.line_pixels([5], [2], [4], [13], 20, 12)) == (
        [(y, 5) for y in range(2, 8)] + [(y, 4) for y in range(8, 14)])
    # Cut at the frame's edge as cv2's clipLine cuts it: (0, 2) -> (-1, 12) meets x = 0 at
    # y = 12 + trunc(1 * -10 / 1) = 2, so only (0, 2) is drawn; a line left of the frame draws
    # nothing.
    assert pixels(*weather.line_pixels([0], [2], [-1], [12], 20, 12)) == [(2, 0)]
    assert pixels(*weather.line_pixels([-1], [2], [-2], [12], 20, 12)) == []
    # Many lines at once: the union of each drawn alone (all share one direction, shifted).
    rng = np.random.default_rng(0)
    xs, ys = rng.integers(-3, 12, 40), rng.integers(0, 10, 40)
    alone = set().union(*(pixels(*weather.line_pixels([x], [y], [x - 1], [y + 10], 20, 12)) for x, y in zip(xs, ys)))
    assert pixels(*weather.line_pixels(xs, ys, xs - 1, ys + 10, 20, 12)) == sorted(alone)


@pytest.mark.parametrize("height, width, px", [(224, 224, 1), (448, 448, 2), (112, 112, 1)])
def test_rain_drop_counts_and_lengths_per_severity(height, width, px):
    # A 224 x 224 frame has area // 770 = 65 drops at severities 1-3, area // 500 = 100 at 4 and
    # area // 400 = 125 at 5, of lengths 10, 30, 60, 60, 80 px. A 448-px frame has the same
    # drops twice as long (and a 2-px run); a 112-px frame's mask is drawn at 224 and shrunk.
    for severity, count, length in zip((1, 2, 3, 4, 5), (65, 65, 65, 100, 125), (10, 30, 60, 60, 80)):
        geometry = weather._rain_geometry(height, width, severity)
        assert (geometry.height, geometry.width) == (224 * px, 224 * px)
        assert (geometry.count, geometry.length, geometry.run) == (count, length * px, px)
        xs, ys = weather._rain_drops(np.random.default_rng(severity), geometry)
        assert len(xs) == len(ys) == count
        assert ys.min() >= 0 and ys.max() < 224 * px - length * px
        assert xs.min() >= -10 * px and xs.max() < 224 * px
        mask = weather._rain_drop_mask(np.random.default_rng(severity), geometry)
        assert set(np.unique(mask)) == {0.0, 220.0}
    # A 240 x 320 frame is 224 x 299 reference pixels: 66976 // 770 = 86 drops.
    assert weather._rain_geometry(240, 320, 1).count == 86


def test_rain_streak_on_a_flat_frame_by_hand():
    # One drop, a vertical line over rows 1-5 of column 2, on a 7 x 5 frame at level 25.
    frame = torch.full((1, 1, 7, 5, 3), 25, dtype=torch.uint8)
    mask = torch.zeros(1, 1, 7, 5, 1)
    mask[0, 0, 1:6, 2] = 220
    out = weather._rain_streaks(frame, mask, 0.8)[0, 0].numpy()
    # The line gains uint8(220 (1 - 25/255) (1 - 25/255)) = uint8(178.98) = 178: 203. Its 3 x 3
    # box blur, rounded: inside the line 3 of the 9 pixels are 203, (225 + 3 * 178) / 9 = 84.33
    # -> 84 (without the truncation to uint8, 84.77 -> 85); at its ends 2, (225 + 2 * 178) / 9 =
    # 64.56 -> 65. Only the line takes the blur, 220/255 of it; then every value moves to 0.8 of
    # its distance from the frame's mean.
    inner, end = (84 * 220 + 25 * 35) / 255, (65 * 220 + 25 * 35) / 255
    mean = (3 * inner + 2 * end + 30 * 25) / 35

    def darkened(value):
        return round((value - mean) * 0.8 + mean)

    expected = np.full((7, 5), darkened(25))
    expected[2:5, 2] = darkened(inner)
    expected[[1, 5], 2] = darkened(end)
    assert [darkened(inner), darkened(end), darkened(25)] == [67, 54, 26]
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], expected)


def test_rain_darkening_keeps_a_flat_frame_and_each_channel_mean():
    # Without drops only the darkening acts: (y - mean) * c + mean, the identity on a flat frame;
    # on any frame every value moves to c of its distance from its channel's mean (rounded).
    no_drops = torch.zeros(1, 1, 16, 16, 1)
    flat = torch.full((1, 1, 16, 16, 3), 77, dtype=torch.uint8)
    assert torch.equal(weather._rain_streaks(flat, no_drops, 0.5), flat)
    frame = np.random.default_rng(0).integers(0, 256, (1, 1, 16, 16, 3), dtype=np.uint8)
    out = weather._rain_streaks(torch.from_numpy(frame), no_drops, 0.5).numpy().astype(float)
    mean = frame.mean(axis=(2, 3), keepdims=True)
    assert np.abs(out - ((frame - mean) * 0.5 + mean)).max() <= 0.5
    assert np.abs(out.mean(axis=(2, 3)) - mean[:, :, 0, 0]).max() <= 0.5


def test_rain_of_yi_et_al_leaves_a_white_frame_white():
    # At level 255 a drop adds 220 (1 - 255/255) (...) = 0, the blur and the blend keep 255, and
    # the darkening keeps a flat frame.
    white = np.full((2, 40, 56, 3), 255, np.uint8)
    for severity in (1, 2, 3, 4, 5):
        np.testing.assert_array_equal(corrupt(white, "rain", severity, seed=1, **YI_RAIN), white)


@pytest.mark.parametrize("mode", ["static", "iid", "smooth"])
def test_rain_of_yi_et_al_is_frame_local_and_keyed_by_frame(mode):
    video = np.random.default_rng(2).integers(0, 256, (12, 24, 32, 3), dtype=np.uint8)
    options = {"temporal": mode, **YI_RAIN}
    whole = corrupt(video, "rain", 3, seed=4, **options)
    subset = [0, 5, 9, 10]
    np.testing.assert_array_equal(corrupt(video[subset], "rain", 3, seed=4, frames=subset, **options), whole[subset])
    np.testing.assert_array_equal(corrupt(video, "rain", 3, seed=4, **options), whole)  # deterministic
    static = np.repeat(video[:1], 12, axis=0)
    distinct = len({frame.tobytes() for frame in corrupt(static, "rain", 3, seed=4, **options)})
    assert distinct == 1 if mode == "static" else distinct > 1


def test_rain_of_yi_et_al_clip_i_of_a_batch_is_as_alone():
    batch = np.random.default_rng(3).integers(0, 256, (3, 4, 17, 23, 3), dtype=np.uint8)
    out = corrupt(batch, "rain", 4, seed=7, temporal="iid", **YI_RAIN)
    for i in range(3):
        np.testing.assert_array_equal(out[i], corrupt(batch[i], "rain", 4, seed=[7, i], temporal="iid", **YI_RAIN))


def test_rain_of_yi_et_al_runs_on_the_clips_device(monkeypatch):
    # The emulated device of test_device.py: the clips never come back to the host and the host
    # never waits for the device.
    from test_device import DEVICE, EmulatedDevice, OnDevice, traffic

    monkeypatch.setattr(_ops, "PINNED_COPIES", (DEVICE.type,))
    batch = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 24, 40, 3), dtype=np.uint8))
    for mode in ("static", "iid", "smooth"):
        expected = corrupt(batch, "rain", 4, seed=5, temporal=mode, **YI_RAIN)
        with EmulatedDevice() as log:
            out = corrupt(OnDevice(batch), "rain", 4, seed=5, temporal=mode, **YI_RAIN)
        assert torch.equal(out.data_, expected)
        from_device, _, blocking, reads = traffic(log)
        assert from_device == 0 and not blocking and not reads, (mode, from_device, blocking, reads)


def test_rain_of_yi_et_al_in_float64_stays_within_the_device_tolerance():
    video = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (4, 48, 64, 3), dtype=np.uint8))
    for severity in (1, 5):
        reference = corrupt(video, "rain", severity, seed=9, temporal="iid", **YI_RAIN).numpy()
        with _ops.computing_in(torch.float64):
            other = corrupt(video, "rain", severity, seed=9, temporal="iid", **YI_RAIN).numpy()
        beyond = np.abs(reference.astype(np.int16) - other) > registry.DEVICE_TOLERANCE_LEVELS
        assert beyond.mean() <= registry.DEVICE_TOLERANCE_FRACTION, severity
