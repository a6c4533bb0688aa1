"""Properties every registered corruption must have; a new corruption is tested by registering it."""

import inspect

import numpy as np
import pytest
import torch

from vidsparse.corruptions import CORRUPTIONS, corrupt, list_corruptions

ALL = sorted(list_corruptions())
# Corruptions with no random draw: the seed must not matter. Every other one must depend on it.
DETERMINISTIC = {"brightness", "contrast", "defocus_blur", "frame_rate", "gaussian_blur", "h264_abr", "h264_crf", "h265_abr", "h265_crf", "jpeg_compression", "pixelate", "reverse_sampling", "sampling", "saturate", "temporal_motion_blur", "zoom_blur"}


def test_the_issue_2_corruptions_are_registered():
    kinds = list_corruptions()
    for name in ("gaussian_noise", "motion_blur", "fog", "contrast"):
        assert kinds[name] == "spatial"
    assert kinds["frame_drop"] == kinds["freeze"] == "temporal"
    assert kinds["h264_crf"] == "codec"
    assert DETERMINISTIC <= set(kinds)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_output_and_type(clip, name):
    a = corrupt(clip, name, severity=3, seed=7)
    b = corrupt(clip.copy(), name, severity=3, seed=7)
    assert isinstance(a, np.ndarray) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    # Only a temporal corruption may change T (frame_rate does: see test_temporal_suite.py).
    same = slice(None) if list_corruptions()[name] != "temporal" else slice(1, None)
    assert a.shape[same] == clip.shape[same]


@pytest.mark.parametrize("name", ALL)
def test_changes_the_clip(clip, name):
    assert not np.array_equal(corrupt(clip, name, severity=3, seed=0), clip)


@pytest.mark.parametrize("name", sorted(set(ALL) - DETERMINISTIC))
def test_random_corruptions_depend_on_seed(clip, name):
    assert not np.array_equal(corrupt(clip, name, 3, seed=0), corrupt(clip, name, 3, seed=1))


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_deterministic_corruptions_ignore_seed(clip, name):
    np.testing.assert_array_equal(corrupt(clip, name, 3, seed=0), corrupt(clip, name, 3, seed=1))


@pytest.mark.parametrize("name", ALL)
def test_torch_in_torch_out_matches_numpy(clip, name):
    out = corrupt(torch.from_numpy(clip), name, severity=2, seed=3)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8
    np.testing.assert_array_equal(out.numpy(), corrupt(clip, name, severity=2, seed=3))


@pytest.mark.parametrize("name", ALL)
def test_batch_of_clips(clip, name):
    batch = np.stack([clip, clip[:, ::-1]])
    out = corrupt(batch, name, severity=2, seed=0)
    keeps_t = list_corruptions()[name] != "temporal"
    assert out.dtype == np.uint8 and out.shape[:1] + out.shape[2:] == batch.shape[:1] + batch.shape[2:]
    assert not keeps_t or out.shape == batch.shape
    if name in DETERMINISTIC:  # clip i of a batch is corrupted exactly as it would be alone
        np.testing.assert_array_equal(out[1], corrupt(batch[1], name, severity=2))


@pytest.mark.parametrize("name", ["gaussian_noise", "contrast", "fog", "h264_crf"])
def test_grey_clips_keep_one_channel(clip, name):
    grey = clip[..., :1]
    out = corrupt(grey, name, severity=3, seed=0)
    assert out.shape == grey.shape and not np.array_equal(out, grey)


def test_every_option_has_a_default():
    # corrupt(video, name) must work with no options for every registered corruption.
    for name in ALL:
        params = list(inspect.signature(CORRUPTIONS.get(name)).parameters.values())[3:]
        assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in params), name
