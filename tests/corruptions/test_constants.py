"""Severity order and the constants option of the spatial corruptions.

With the default ``constants="vidsparse"`` the mean absolute pixel error grows with severity for
every spatial corruption, on a textured clip and on a natural-image-like one, for two seeds;
``constants="imagenet_c"`` gives ImageNet-C's published tables, some of which do not.
"""

import numpy as np
import pytest
from PIL import Image

from vidsparse.corruptions import _ops, blur, corrupt, list_corruptions, spatial, weather
from conftest import moving_square_clip

SPATIAL = sorted(list_corruptions("spatial"))
# The corruptions whose default table differs from the published one (see each module).
ADJUSTED = {"elastic_transform", "fog", "frost", "glass_blur", "snow", "spatter", "zoom_blur"}


def textured_clip():
    """2 frames of 64 x 96: the moving-square gradient plus fixed pixel noise of +-25 levels."""
    clip = moving_square_clip(2, 64, 96).astype(np.int16)
    texture = np.random.default_rng(0).integers(-25, 26, clip.shape[1:])
    return np.clip(clip + texture, 0, 255).astype(np.uint8)


def natural_clip(frames=3, side=112):
    """A panning 1/f-noise clip: natural images have an amplitude spectrum falling as 1/f
    (Field 1987, "Relations between the statistics of natural images and the response
    properties of cortical cells"). A shared luminance field plus weaker per-channel fields
    give mild colour; mean 0.45, contrast 0.2. The view moves 2 px down and 3 px right a frame.
    """
    rng = np.random.default_rng(0)
    size = side + 4 * frames
    f = np.fft.fftfreq(size)
    amplitude = 1 / np.maximum(np.hypot(*np.meshgrid(f, f, indexing="ij")), 1 / size)

    def field():
        x = np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((size, size)))).real
        return (x - x.mean()) / x.std()

    luminance = field()
    image = np.clip(0.45 + 0.2 * np.stack([luminance + 0.25 * field() for _ in range(3)], -1), 0, 1)
    clip = np.stack([image[2 * t:2 * t + side, 3 * t:3 * t + side] for t in range(frames)])
    return (clip * 255).round().astype(np.uint8)


CLIPS = {"textured_64x96": textured_clip(), "natural_112": natural_clip()}


def severity_errors(clip, name, seed, **options):
    return [np.abs(corrupt(clip, name, s, seed=seed, **options).astype(float) - clip).mean()
            for s in range(1, 6)]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("clip_name", sorted(CLIPS))
@pytest.mark.parametrize("name", SPATIAL)
def test_error_grows_with_severity(name, clip_name, seed):
    errors = severity_errors(CLIPS[clip_name], name, seed)
    assert all(a < b for a, b in zip(errors, errors[1:])), errors


@pytest.mark.parametrize("name,clip_name,seed,lower,higher", [
    ("glass_blur", "natural_112", 0, 2, 1),  # iterations (2, 1, 3, 2, 2)
    ("elastic_transform", "natural_112", 0, 3, 2),  # 1-2 are the larger, smoother warp
    ("spatter", "natural_112", 0, 4, 3),  # water (3) does more damage than mud (4)
    ("frost", "textured_64x96", 0, 4, 3),  # 3 -> 4 only lowers the frame weight
    ("zoom_blur", "textured_64x96", 0, 3, 2),  # 16 zooms at 2, 11 at 3
    ("fog", "textured_64x96", 1, 4, 3),  # same weight, a new fractal decay
    ("snow", "textured_64x96", 16, 3, 2),  # same whitening, flakes of about equal damage
])
def test_published_tables_are_not_monotone_where_we_say(name, clip_name, seed, lower, higher):
    errors = severity_errors(CLIPS[clip_name], name, seed, constants="imagenet_c")
    assert errors[lower - 1] < errors[higher - 1], errors


def test_imagenet_c_tables_are_the_published_ones():
    # hendrycks/robustness, ImageNet-C/imagenet_c/imagenet_c/corruptions.py
    assert blur.GLASS_BLUR == ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
    assert blur.ZOOM_BLUR_RANGES == ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))
    assert np.allclose(blur.ELASTIC, np.array([(2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02),
                                               (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)]) * 244)
    assert spatial.FOG_STRENGTH_DECAY == ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4))
    assert weather.FROST == ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
    assert weather.SPATTER == ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
                               (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
                               (0.67, 0.4, 1, 0.65, 1.5, 1))
    assert weather.SNOW == ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
                            (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
                            (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))


def test_adjusted_tables_keep_severity_5_except_fog_and_frost():
    # Severity 5 is the published one except fog (decay 1.7, not 1.4) and frost (weight 0.8).
    assert blur.GLASS_BLUR_MONOTONE[4] == blur.GLASS_BLUR[4]
    assert blur.ZOOM_BLUR_RANGES_MONOTONE[4] == blur.ZOOM_BLUR_RANGES[4]
    assert blur.ELASTIC_MONOTONE[4] == blur.ELASTIC[4]
    assert weather.SPATTER_MONOTONE[4] == weather.SPATTER[4]
    assert weather.SNOW_MONOTONE[4] == weather.SNOW[4]
    assert spatial.FOG_STRENGTH_DECAY_MONOTONE[4][0] == spatial.FOG_STRENGTH_DECAY[4][0]


@pytest.mark.parametrize("name", SPATIAL)
def test_imagenet_c_differs_from_the_default_only_where_a_table_was_adjusted(clip, name):
    clip = clip[:2]
    differs = [not np.array_equal(corrupt(clip, name, s, seed=0), corrupt(clip, name, s, seed=0, constants="imagenet_c"))
               for s in range(1, 6)]
    assert any(differs) == (name in ADJUSTED), differs


@pytest.mark.parametrize("name", SPATIAL)
def test_bad_constants_value_names_the_option_and_choices(clip, name):
    with pytest.raises(ValueError, match=r"constants must be one of \('vidsparse', 'imagenet_c', 'mini_kinetics_c', 'ucf101_p'\), got 'imagenet'"):
        corrupt(clip, name, 3, constants="imagenet")


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_pixelate_is_pil_box_down_and_up(severity):
    # ImageNet-C: x.resize((int(224 c), int(224 c)), BOX).resize((224, 224), BOX), on any size.
    clip = natural_clip(frames=1, side=100)[:, :, :90]
    factor = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    frame = Image.fromarray(clip[0])
    expected = frame.resize((int(90 * factor), int(100 * factor)), Image.BOX).resize((90, 100), Image.BOX)
    np.testing.assert_array_equal(corrupt(clip, "pixelate", severity)[0], np.asarray(expected))


@pytest.mark.parametrize("name", ["spatter", "snow"])
def test_drops_and_flakes_cover_the_same_fraction_of_a_small_or_large_frame(name):
    # Their maps are built at 224-reference resolution or finer, so the damage to a flat frame
    # hardly depends on its size (before, mud covered half of a 64 x 96 frame).
    def damage(h, w):
        grey = np.full((1, h, w, 3), 100, np.uint8)
        return np.mean([np.abs(corrupt(grey, name, 5, seed=s).astype(float) - 100).mean() for s in range(2)])
    small, reference = damage(64, 64), damage(224, 224)
    assert abs(small - reference) < 0.05 * reference, (small, reference)


# --- The video benchmarks' constants ("mini_kinetics_c", "ucf101_p") ---------------------------

# The corruptions for which a video benchmark publishes a table of its own (each cited where it
# is defined); every other spatial corruption takes ImageNet-C's under its constants.
OWN_TABLES = {("contrast", "mini_kinetics_c"), ("rain", "mini_kinetics_c"), ("shot_noise", "ucf101_p"),
              ("speckle_noise", "ucf101_p")}


@pytest.mark.parametrize("constants", ["mini_kinetics_c", "ucf101_p"])
@pytest.mark.parametrize("name", SPATIAL)
def test_video_benchmark_constants_are_imagenet_c_except_their_own_tables(clip, name, constants):
    clip = clip[:2]
    differs = [not np.array_equal(corrupt(clip, name, s, seed=0, constants=constants),
                                  corrupt(clip, name, s, seed=0, constants="imagenet_c")) for s in (1, 3, 5)]
    assert any(differs) == ((name, constants) in OWN_TABLES), differs


def test_video_benchmark_tables_are_the_published_ones():
    # Newbeeyoung/Video-Corruption-Robustness create_mini_ssv2_c.py contrast and rain;
    # Maddy12/ActionRecognitionRobustnessEval core/video_perturb.py shot_noise, speckle_noise.
    assert spatial.CONTRAST_FACTOR_MINI_KINETICS_C == (0.5, 0.4, 0.3, 0.2, 0.1)
    assert weather.RAIN_MINI_KINETICS_C == ((770, 10, 0.8), (770, 30, 0.8), (770, 60, 0.7), (500, 60, 0.6),
                                            (400, 80, 0.5))
    assert spatial.SHOT_NOISE_PHOTONS_UCF101_P == (250, 100, 50, 30, 15)
    assert spatial.SPECKLE_NOISE_STD_UCF101_P == (0.15, 0.2, 0.25, 0.3, 0.35)


def test_severity_table_takes_a_table_per_benchmark_and_falls_back_to_imagenet_c():
    published, ours, yi = (1, 2), (3, 4), (5, 6)
    assert _ops.severity_table("vidsparse", published, ours, mini_kinetics_c=yi) == ours
    assert _ops.severity_table("vidsparse", published, mini_kinetics_c=yi) == published
    assert _ops.severity_table("imagenet_c", published, ours, mini_kinetics_c=yi) == published
    assert _ops.severity_table("mini_kinetics_c", published, ours, mini_kinetics_c=yi) == yi
    assert _ops.severity_table("ucf101_p", published, ours, mini_kinetics_c=yi) == published
    with pytest.raises(TypeError, match=r"unknown benchmark table\(s\) \['mini_kinetic_c'\]"):
        _ops.severity_table("ucf101_p", published, mini_kinetic_c=yi)
