"""The corruption registry fails loudly and helpfully."""

import numpy as np
import pytest

from vidsparse.corruptions import KINDS, corrupt, list_corruptions, register_corruption


def test_unknown_name_lists_known_names(clip):
    with pytest.raises(KeyError) as err:
        corrupt(clip, "fgo")
    assert "fgo" in str(err.value) and "fog" in str(err.value) and "h264_crf" in str(err.value)


@pytest.mark.parametrize("severity", [0, 6, 2.5, "3"])
def test_bad_severity(clip, severity):
    with pytest.raises(ValueError, match="severity must be one of"):
        corrupt(clip, "fog", severity=severity)


def test_unknown_option_lists_accepted_ones(clip):
    with pytest.raises(TypeError, match="temporl.*accepts: temporal, constants"):
        corrupt(clip, "gaussian_noise", temporl="iid")
    with pytest.raises(TypeError, match="accepts: no options"):
        corrupt(clip, "jumble", temporal="iid")


@pytest.mark.parametrize("name,option", [("fog", "temporal"), ("motion_blur", "temporal"),
                                         ("frame_drop", "pattern")])
def test_unknown_option_value(clip, name, option):
    with pytest.raises(ValueError, match=f"{option} must be one of"):
        corrupt(clip, name, **{option: "sometimes"})


@pytest.mark.parametrize("bad", [np.zeros((4, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8),
                                 np.zeros((4, 8, 8, 4), np.uint8)])
def test_rejects_non_video_input(bad):
    with pytest.raises(ValueError, match="expected uint8"):
        corrupt(bad, "contrast")


def test_kinds_and_filter():
    every = list_corruptions()
    assert set(every.values()) <= set(KINDS)
    assert list_corruptions("codec") == {n: k for n, k in every.items() if k == "codec"}
    with pytest.raises(ValueError, match="kind must be one of"):
        list_corruptions("weather")


def test_duplicate_and_bad_kind_registration_raise():
    with pytest.raises(ValueError, match="already registered"):
        register_corruption("fog", kind="spatial")(lambda video, severity, rng: video)
    with pytest.raises(ValueError, match="kind must be one of"):
        register_corruption("rain", kind="weather")


def test_non_contiguous_numpy_input(clip):
    flipped = clip[:, :, ::-1]
    np.testing.assert_array_equal(corrupt(flipped, "contrast"), corrupt(flipped.copy(), "contrast"))
