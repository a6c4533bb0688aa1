"""Robustness metrics against numbers worked out by hand."""

import math

import numpy as np
import pytest

from vidsparse.robustness import metrics

# Two corruptions, fog at three severities and freeze at two, so that the mean of means
# (mPC) differs from the mean of all five cells.
DENSE = {"clean": 0.80, "corrupted": {"fog": {1: 0.70, 2: 0.50, 3: 0.30}, "freeze": {1: 0.60, 2: 0.40}}}
RIGL = {"clean": 0.80, "corrupted": {"fog": {1: 0.75, 2: 0.60, 3: 0.45}, "freeze": {1: 0.60, 2: 0.30}}}


def test_accuracy_counts_matches():
    assert metrics.accuracy([0, 1, 2, 2, 0], [0, 1, 1, 2, 1]) == pytest.approx(3 / 5)
    assert metrics.accuracy(np.array([3]), np.array([3])) == 1.0


@pytest.mark.parametrize("preds, labels", [([], []), ([0, 1], [0]), ([[0]], [[0]])])
def test_accuracy_rejects_empty_or_misaligned(preds, labels):
    with pytest.raises(ValueError):
        metrics.accuracy(preds, labels)


def test_corruption_means_average_over_severities():
    assert metrics.corruption_means(DENSE) == pytest.approx({"fog": 0.50, "freeze": 0.50})
    assert metrics.corruption_means(RIGL) == pytest.approx({"fog": 0.60, "freeze": 0.45})


def test_mpc_is_mean_of_per_corruption_means():
    # (0.60 + 0.45) / 2, not the five-cell mean (0.75+0.60+0.45+0.60+0.30)/5 = 0.54
    assert metrics.mpc(RIGL) == pytest.approx(0.525)
    assert metrics.mpc(DENSE) == pytest.approx(0.50)


def test_rpc_is_mpc_over_clean():
    assert metrics.rpc(DENSE) == pytest.approx(0.50 / 0.80)
    assert metrics.rpc(RIGL) == pytest.approx(0.525 / 0.80)


def test_rpc_of_zero_clean_accuracy_is_nan():
    assert math.isnan(metrics.rpc({"clean": 0.0, "corrupted": {"fog": {1: 0.1}}}))


def test_summarize_collects_headline_numbers():
    s = metrics.summarize(RIGL)
    assert s["clean"] == pytest.approx(0.80)
    assert s["mPC"] == pytest.approx(0.525)
    assert s["rPC"] == pytest.approx(0.65625)
    assert s["per_corruption"] == pytest.approx({"fog": 0.60, "freeze": 0.45})


def test_relative_improvement_against_dense():
    gain = metrics.relative_improvement(RIGL, DENSE)
    assert gain["clean"] == pytest.approx(0.0)
    assert gain["mPC"] == pytest.approx((0.525 - 0.50) / 0.50)
    assert gain["per_corruption"] == pytest.approx({"fog": 0.20, "freeze": -0.10})


def test_relative_improvement_compares_shared_corruptions_only():
    partial = {"clean": 0.40, "corrupted": {"fog": {1: 0.35, 2: 0.25, 3: 0.15}}}
    gain = metrics.relative_improvement(partial, DENSE)
    assert set(gain["per_corruption"]) == {"fog"}
    # dense fog mean 0.50, partial fog mean 0.25: mPC is over fog alone
    assert gain["mPC"] == pytest.approx(-0.5)
    assert gain["clean"] == pytest.approx(-0.5)


def test_relative_improvement_over_zero_baseline_is_nan():
    zero = {"clean": 0.0, "corrupted": {"fog": {1: 0.0}}}
    gain = metrics.relative_improvement({"clean": 0.5, "corrupted": {"fog": {1: 0.5}}}, zero)
    assert math.isnan(gain["clean"]) and math.isnan(gain["per_corruption"]["fog"])


def test_metrics_refuse_empty_tables():
    with pytest.raises(ValueError):
        metrics.mpc({"clean": 0.5, "corrupted": {}})
    with pytest.raises(ValueError):
        metrics.corruption_means({"clean": 0.5, "corrupted": {"fog": {}}})
    with pytest.raises(ValueError):
        metrics.relative_improvement(RIGL, {"clean": 0.5, "corrupted": {"snow": {1: 0.1}}})
