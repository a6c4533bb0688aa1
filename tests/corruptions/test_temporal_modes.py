"""Temporal modes of patterned spatial corruptions (static / iid / smooth).

Severity order and the ``constants`` option are tested in test_constants.py.
"""

import inspect

import numpy as np
import pytest

from vidsparse.corruptions import CORRUPTIONS, corrupt, list_corruptions

SPATIAL = sorted(list_corruptions("spatial"))
PATTERNED = [n for n in SPATIAL if "temporal" in inspect.signature(CORRUPTIONS.get(n)).parameters]


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
