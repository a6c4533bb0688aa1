"""Temporal modes of patterned spatial corruptions (static / iid / smooth) and severity order."""

import inspect

import numpy as np
import pytest

from vidsparse.corruptions import CORRUPTIONS, corrupt, list_corruptions
from conftest import moving_square_clip

SPATIAL = sorted(list_corruptions("spatial"))
PATTERNED = [n for n in SPATIAL if "temporal" in inspect.signature(CORRUPTIONS.get(n)).parameters]
# ImageNet-C's published constants are not monotone in mean pixel error for these (measured on
# the textured clip below, also at 112 x 112): elastic severities 1-2 use a large smooth warp,
# 3-5 a small local one; glass blur's iteration counts go (2, 1, 3, 2, 2); frost 3 -> 4 only
# lowers the frame weight; spatter switches from water to mud at 4; pixelate and zoom blur
# errors saturate on fine texture. We keep the published constants.
NOT_MONOTONE = {"elastic_transform", "frost", "glass_blur", "pixelate", "spatter", "zoom_blur"}


def _textured_clip():
    clip = moving_square_clip(2, 64, 96).astype(np.int16)
    texture = np.random.default_rng(0).integers(-25, 26, clip.shape[1:])
    return np.clip(clip + texture, 0, 255).astype(np.uint8)


def _residuals(static_clip, name, temporal):
    return corrupt(static_clip, name, severity=4, seed=0, temporal=temporal).astype(np.int16) - static_clip


def test_smooth_mode_covers_noise_fog_and_motion_blur():
    assert {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "fog", "motion_blur"} <= set(PATTERNED)


@pytest.mark.parametrize("name", PATTERNED)
def test_static_residual_is_identical_on_every_frame(static_clip, name):
    residual = _residuals(static_clip, name, "static")
    assert residual.any()
    assert (residual == residual[:1]).all()


@pytest.mark.parametrize("name", PATTERNED)
def test_smooth_changes_less_from_frame_to_frame_than_iid(static_clip, name):
    def step(temporal):
        return np.abs(np.diff(_residuals(static_clip, name, temporal), axis=0)).mean()
    smooth, iid = step("smooth"), step("iid")
    assert 0 < smooth < iid, (smooth, iid)


def _severity_errors(name):
    clip = _textured_clip()
    return [np.abs(corrupt(clip, name, s, seed=0).astype(float) - clip).mean() for s in range(1, 6)]


@pytest.mark.parametrize("name", [n for n in SPATIAL if n not in NOT_MONOTONE])
def test_error_grows_with_severity(name):
    errors = _severity_errors(name)
    assert all(a < b for a, b in zip(errors, errors[1:])), errors


@pytest.mark.parametrize("name", sorted(NOT_MONOTONE))
def test_known_non_monotone_corruptions_are_listed_truthfully(name):
    # ImageNet-C's published constants for these do not grow in pixel error with severity
    # (e.g. glass blur's iterations 2, 1, 3, 2, 2; spatter turns from water to mud at 4).
    # An open item of the corruption-suite issue: when one becomes monotone, this fails and
    # the name must leave NOT_MONOTONE so the test above covers it.
    errors = _severity_errors(name)
    assert min(errors) > 0
    assert not all(a < b for a, b in zip(errors, errors[1:])), errors
