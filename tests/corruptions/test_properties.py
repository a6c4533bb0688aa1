"""Property-based tests over every registered corruption: any clip shape (1x1 frames, odd
sizes, one frame, gray or RGB), any severity and seed gives a uint8 clip of the promised
shape, leaves its input alone, and the same seed gives the same output.

Hypothesis runs derandomized (the same examples on every run, so CI is deterministic) with a
small budget per corruption; the codec corruptions, which encode and decode, get the least.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidsparse.corruptions import corrupt
from vidsparse.corruptions.registry import SEVERITIES, list_corruptions

KINDS = list_corruptions()
# Examples per corruption: what keeps the whole file to a few seconds on one core.
EXAMPLES = {"spatial": 6, "temporal": 8, "codec": 3}


def _settings(kind: str):
    return settings(max_examples=EXAMPLES[kind], deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def clips(draw) -> np.ndarray:
    """A uint8 ``T x H x W x C`` clip: T 1-6, H and W 1-40, C 1 or 3; noise, flat or extreme."""
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 40)), draw(st.integers(1, 40)),
             draw(st.sampled_from([1, 3])))
    fill = draw(st.sampled_from(["noise", "black", "white", "grey"]))
    if fill == "noise":
        return np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 256, shape, np.uint8)
    return np.full(shape, {"black": 0, "white": 255, "grey": 128}[fill], np.uint8)


severities = st.sampled_from(SEVERITIES)
seeds = st.integers(0, 2**63 - 1)


def check(name: str, clip: np.ndarray, severity: int, seed: int) -> None:
    before = clip.copy()
    out = corrupt(clip, name, severity, seed=seed)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    if KINDS[name] == "temporal":
        assert out.shape[1:] == clip.shape[1:] and out.shape[0] >= 1, (out.shape, clip.shape)
    else:
        assert out.shape == clip.shape
    np.testing.assert_array_equal(clip, before)  # the input is not written to
    np.testing.assert_array_equal(corrupt(clip, name, severity, seed=seed), out)


def _property(kind: str):
    """A test of :func:`check` over every corruption of ``kind`` and hypothesis' inputs."""
    @pytest.mark.parametrize("name", sorted(n for n, k in KINDS.items() if k == kind))
    @_settings(kind)
    @given(clip=clips(), severity=severities, seed=seeds)
    def test(name, clip, severity, seed):
        check(name, clip, severity, seed)

    return test


test_spatial = _property("spatial")
test_temporal = _property("temporal")
test_codec = _property("codec")


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 1, 1, 3), (2, 1, 7, 3), (3, 5, 1, 1)])
def test_degenerate_shapes(name, shape):
    """The smallest clips, every corruption, the extreme severities: always tried, whatever
    examples hypothesis picks."""
    clip = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
    for severity in (SEVERITIES[0], SEVERITIES[-1]):
        check(name, clip, severity, seed=1)


def test_fog_on_a_very_thin_frame_tiles_a_capped_map():
    # 16 x 4000 at the 224 reference is 224 x 56000: an uncapped map would be 65536 px a side.
    from vidsparse.corruptions.spatial import FOG_MAX_MAP

    clip = np.full((1, 16, 4000, 3), 100, np.uint8)
    out = corrupt(clip, "fog", 3, seed=0)
    assert out.shape == clip.shape and out.dtype == np.uint8 and (out != clip).any()
    assert FOG_MAX_MAP == 1024


def test_frost_on_one_pixel_is_not_black():
    out = corrupt(np.full((2, 1, 1, 3), 128, np.uint8), "frost", 1, seed=0)
    assert out.min() > 0
