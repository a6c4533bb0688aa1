"""Per-layer densities against hand-computed values."""

import pytest

from vidsparse.sparse import layer_densities


def test_erk_hand_computed():
    # raw scores: a = 20/100 = 0.2, b = 200/10000 = 0.02; kept = 0.1 * 10100 = 1010
    # eps = 1010 / (0.2 * 100 + 0.02 * 10000) = 1010 / 220
    d = layer_densities("erk", {"a": (10, 10), "b": (100, 100)}, 0.1)
    assert d["a"] == pytest.approx(0.2 * 1010 / 220)
    assert d["b"] == pytest.approx(0.02 * 1010 / 220)
    assert d["a"] * 100 + d["b"] * 10000 == pytest.approx(1010)


def test_erk_makes_a_layer_dense_when_it_would_exceed_one():
    # At density 0.5 layer a would get 0.2 * 5050 / 220 > 1: it becomes dense and b takes
    # the rest: (5050 - 100) / 10000.
    d = layer_densities("erk", {"a": (10, 10), "b": (100, 100)}, 0.5)
    assert d == {"a": 1.0, "b": pytest.approx(0.495)}


def test_erk_uses_all_five_dimensions_of_a_conv3d_kernel():
    shapes = {"conv": (8, 4, 3, 3, 3), "fc": (10, 8)}
    d = layer_densities("erk", shapes, 0.1)  # low enough that no layer turns dense
    ratio = d["conv"] / d["fc"]
    assert ratio == pytest.approx((8 + 4 + 3 + 3 + 3) / 864 / ((10 + 8) / 80))


def test_uniform_with_dense_layers():
    d = layer_densities("uniform", {"a": (4, 4), "b": (4, 4)}, 0.3, dense={"b"})
    assert d == {"a": 0.3, "b": 1.0}


def test_unknown_distribution_lists_known():
    with pytest.raises(KeyError, match="known: er, erk, uniform"):
        layer_densities("erl", {"a": (2, 2)}, 0.5)
