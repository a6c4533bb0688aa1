"""Robustness metrics against numbers worked out by hand."""

import math

import numpy as np
import pytest

from vidsparse.corruptions import list_corruptions
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


# --- corruption error (Hendrycks & Dietterich 2019) ------------------------------------
# Errors E = 1 - A. Clean error 0.20 for both.
#   fog:    RigL 0.25 + 0.40 + 0.55 = 1.20, Dense 0.30 + 0.50 + 0.70 = 1.50 -> CE 0.8
#   freeze: RigL 0.40 + 0.70 = 1.10,        Dense 0.40 + 0.60 = 1.00        -> CE 1.1
# relative: fog (0.05 + 0.20 + 0.35) / (0.10 + 0.30 + 0.50) = 0.60 / 0.90 = 2/3
#           freeze (0.20 + 0.50) / (0.20 + 0.40) = 0.70 / 0.60 = 7/6


def test_corruption_errors_normalise_by_the_baseline():
    assert metrics.corruption_errors(RIGL, DENSE) == pytest.approx({"fog": 0.8, "freeze": 1.1})
    assert metrics.mce(RIGL, DENSE) == pytest.approx(0.95)


def test_relative_corruption_errors_subtract_clean_error():
    assert metrics.relative_corruption_errors(RIGL, DENSE) == pytest.approx({"fog": 2 / 3, "freeze": 7 / 6})
    assert metrics.relative_mce(RIGL, DENSE) == pytest.approx(11 / 12)


def test_baseline_against_itself_is_one():
    assert metrics.mce(DENSE, DENSE) == pytest.approx(1.0)
    assert metrics.relative_mce(DENSE, DENSE) == pytest.approx(1.0)


def test_fewer_errors_can_still_mean_a_larger_relative_error():
    # More accurate everywhere (CE < 1) but loses more of it under fog (relative CE > 1).
    better = {"clean": 0.95, "corrupted": {"fog": {1: 0.80, 2: 0.60, 3: 0.40}}}
    with pytest.warns(metrics.CellsLeftOutWarning, match=r"freeze \(sev 1, 2\) not in the model"):
        assert metrics.corruption_errors(better, DENSE)["fog"] == pytest.approx(1.20 / 1.50)
        assert metrics.relative_corruption_errors(better, DENSE)["fog"] == pytest.approx(1.05 / 0.90)


def test_corruption_errors_use_shared_severities_only():
    base = {"clean": 0.9, "corrupted": {"fog": {1: 0.5, 2: 0.5}}}  # no severity 3
    # RigL fog errors at 1, 2: 0.25 + 0.40; base 0.5 + 0.5
    left_out = r"fog \(sev 3\), freeze \(sev 1, 2\) not in the baseline"
    with pytest.warns(metrics.CellsLeftOutWarning, match=left_out):
        assert metrics.corruption_errors(RIGL, base) == pytest.approx({"fog": 0.65})
    # relative: (0.05 + 0.20) / (0.4 + 0.4)
    with pytest.warns(metrics.CellsLeftOutWarning, match=left_out):
        assert metrics.relative_corruption_errors(RIGL, base) == pytest.approx({"fog": 0.25 / 0.8})


def test_corruption_error_over_an_errorless_baseline_is_nan():
    perfect = {"clean": 1.0, "corrupted": {"fog": {1: 1.0}}}
    with pytest.warns(metrics.CellsLeftOutWarning):  # RigL has more cells than `perfect`
        assert math.isnan(metrics.corruption_errors(RIGL, perfect)["fog"])
        assert math.isnan(metrics.relative_mce(RIGL, perfect))


def test_corruption_errors_need_a_shared_cell():
    with pytest.raises(ValueError, match="share no"):
        metrics.mce(RIGL, {"clean": 0.5, "corrupted": {"snow": {1: 0.1}}})


# --- robustness scores (Schiappa et al. 2023) ------------------------------------------

def test_absolute_robustness_per_corruption_and_overall():
    g = metrics.absolute_robustness(RIGL)
    # fog mean 0.60: 1 - (0.80 - 0.60); freeze mean 0.45: 1 - (0.80 - 0.45)
    assert g["per_corruption"] == pytest.approx({"fog": 0.80, "freeze": 0.65})
    assert g["overall"] == pytest.approx(0.725)
    assert g["overall"] == pytest.approx(1 - (RIGL["clean"] - metrics.mpc(RIGL)))


def test_relative_robustness_per_corruption_and_overall_is_rpc():
    g = metrics.relative_robustness(RIGL)
    # 1 - 0.20 / 0.80 and 1 - 0.35 / 0.80
    assert g["per_corruption"] == pytest.approx({"fog": 0.75, "freeze": 0.5625})
    assert g["overall"] == pytest.approx(0.65625) == metrics.rpc(RIGL)


def test_robustness_scores_equal_the_mean_over_severities_of_per_cell_scores():
    # gamma per (corruption, severity) then averaged: the same number, the score being linear
    fog = RIGL["corrupted"]["fog"].values()
    assert metrics.absolute_robustness(RIGL)["per_corruption"]["fog"] == pytest.approx(
        np.mean([1 - (0.80 - a) for a in fog]))
    assert metrics.relative_robustness(RIGL)["per_corruption"]["fog"] == pytest.approx(
        np.mean([1 - (0.80 - a) / 0.80 for a in fog]))


def test_relative_robustness_of_zero_clean_accuracy_is_nan():
    g = metrics.relative_robustness({"clean": 0.0, "corrupted": {"fog": {1: 0.0}}})
    assert math.isnan(g["overall"]) and math.isnan(g["per_corruption"]["fog"])


def test_summarize_with_a_baseline_adds_corruption_errors():
    s = metrics.summarize(RIGL, DENSE)
    assert (s["mCE"], s["relative_mCE"]) == pytest.approx((0.95, 11 / 12))
    assert s["CE"] == pytest.approx({"fog": 0.8, "freeze": 1.1})
    assert (s["gamma_a"], s["gamma_r"]) == pytest.approx((0.725, 0.65625))
    assert metrics.summarize(RIGL)["mCE"] is None


# --- comparison with dense (Wu et al. 2025) --------------------------------------------

def test_win_loss_counts_scenarios():
    wl = metrics.win_loss(RIGL, DENSE)
    # fog 1, 2, 3: 0.75 > 0.70, 0.60 > 0.50, 0.45 > 0.30; freeze 1: 0.60 = 0.60; freeze 2: 0.30 < 0.40
    assert (wl["win"], wl["loss"], wl["tie"]) == (3, 1, 1)
    outcome = {(s["corruption"], s["severity"]): s["outcome"] for s in wl["scenarios"]}
    assert outcome == {("fog", 1): "win", ("fog", 2): "win", ("fog", 3): "win",
                       ("freeze", 1): "tie", ("freeze", 2): "loss"}
    assert wl["scenarios"][0]["difference"] == pytest.approx(0.05)


def test_compare_collects_relative_improvement_difference_and_win_loss():
    c = metrics.compare(RIGL, DENSE)
    assert c["mPC"] == pytest.approx(0.05) and c["mPC_difference"] == pytest.approx(0.025)
    assert c["per_corruption"] == pytest.approx({"fog": 0.20, "freeze": -0.10})
    assert c["win_loss"]["win"] == 3


# --- several seeds ---------------------------------------------------------------------

A = {"clean": 0.8, "corrupted": {"fog": {1: 0.6}}}
B = {"clean": 0.6, "corrupted": {"fog": {1: 0.7, 2: 0.5}}}


def test_mean_and_std_tables_are_cellwise_over_shared_cells():
    mean = metrics.mean_table([A, B])
    assert mean["clean"] == pytest.approx(0.7)
    assert mean["corrupted"] == {"fog": {1: pytest.approx(0.65)}}  # fog 2 is in B only
    std = metrics.std_table([A, B])
    # sample std of two values x, y is |x - y| / sqrt(2)
    assert std["clean"] == pytest.approx(0.2 / math.sqrt(2))
    assert std["corrupted"]["fog"][1] == pytest.approx(0.1 / math.sqrt(2))


def test_mean_std():
    assert metrics.mean_std([0.5, 0.7, 0.9]) == pytest.approx((0.7, 0.2))
    mean, std = metrics.mean_std([0.4])
    assert mean == 0.4 and math.isnan(std)
    assert all(math.isnan(v) for v in metrics.mean_std([0.4, None]))


def test_summarize_seeds_averages_per_run_numbers():
    s = metrics.summarize_seeds([A, B], baseline=A)
    assert s["n"] == 2
    # mPC per run: 0.6 and 0.6; rPC: 0.75 and 1.0
    assert (s["mean"]["mPC"], s["std"]["mPC"]) == pytest.approx((0.6, 0.0))
    assert (s["mean"]["rPC"], s["std"]["rPC"]) == pytest.approx((0.875, 0.25 / math.sqrt(2)))
    # CE of B against A at the shared severity: 0.3 / 0.4; A against itself: 1
    assert s["mean"]["mCE"] == pytest.approx((1.0 + 0.75) / 2)
    assert metrics.summarize_seeds([A])["mean"]["mCE"] is None


# --- corruption taxonomy ---------------------------------------------------------------

def test_frequency_order_runs_from_noise_to_low_frequency_then_temporal():
    names = ["frame_drop", "fog", "contrast", "motion_blur", "jpeg_compression", "gaussian_noise"]
    order = metrics.frequency_order(names)
    assert order == ["gaussian_noise", "jpeg_compression", "motion_blur", "fog", "contrast", "frame_drop"]
    assert metrics.frequency_order(["zzz_new", "fog", "aaa_new"]) == ["fog", "aaa_new", "zzz_new"]
    assert metrics.frequency_band("fog") == "low-frequency" and metrics.frequency_band("zzz") is None


def test_frequency_bands_name_each_corruption_once():
    assert len(metrics.FREQUENCY_ORDER) == len(set(metrics.FREQUENCY_ORDER))


@pytest.mark.parametrize("name, kind", sorted(list_corruptions().items()))
def test_every_registered_corruption_is_ranked_and_has_a_family(name, kind):
    assert name in metrics.FREQUENCY_ORDER
    family = metrics.corruption_family(name, kind)
    assert family in metrics.FAMILIES and family != "spatial (other)"
    assert (family == kind) if kind != "spatial" else family in metrics.SPATIAL_FAMILIES
    assert (metrics.frequency_band(name) == "temporal") == (kind == "temporal")


def test_mce_leaves_out_corruptions_the_baseline_never_got_wrong():
    from vidsparse.robustness.metrics import mce, relative_mce

    dense = {"clean": 1.0, "corrupted": {"fog": {1: 0.8, 2: 0.6}, "blur": {1: 1.0, 2: 1.0}}}
    rigl = {"clean": 1.0, "corrupted": {"fog": {1: 0.9, 2: 0.7}, "blur": {1: 0.9, 2: 1.0}}}
    # fog: (0.1 + 0.3) / (0.2 + 0.4) = 2/3; blur has no baseline error, so no CE.
    assert mce(rigl, dense) == pytest.approx(2 / 3)
    assert relative_mce(rigl, dense) == pytest.approx(2 / 3)
    assert mce(dense, dense) == pytest.approx(1.0)
    only_blur = {"clean": 1.0, "corrupted": {"blur": {1: 1.0}}}
    with pytest.warns(metrics.CellsLeftOutWarning, match="fog"):
        assert math.isnan(mce(rigl, only_blur))


# --- what a table may hold -------------------------------------------------------------

def _with_cell(table, name, severity, value):
    """A copy of ``table`` with one cell replaced."""
    out = {"clean": table["clean"], "corrupted": {n: dict(c) for n, c in table["corrupted"].items()}}
    out["corrupted"].setdefault(name, {})[severity] = value
    return out


# every public function that reads a table, with the bad table put in each place it can go
ONE_TABLE = [metrics.corruption_means, metrics.mpc, metrics.rpc, metrics.absolute_robustness,
             metrics.relative_robustness, metrics.summarize,
             lambda t: metrics.mean_table([DENSE, t]), lambda t: metrics.std_table([DENSE, t]),
             lambda t: metrics.summarize_seeds([DENSE, t])]
PAIRS = [metrics.corruption_errors, metrics.mce, metrics.relative_corruption_errors,
         metrics.relative_mce, metrics.relative_improvement, metrics.win_loss, metrics.compare,
         metrics.summarize, lambda a, b: metrics.summarize_seeds([a], b)]


@pytest.mark.parametrize("fn", ONE_TABLE)
def test_a_table_in_percent_is_refused_naming_the_cell(fn):
    percent = _with_cell(DENSE, "fog", 3, 87.5)
    with pytest.raises(ValueError, match=r"corrupted\['fog'\]\[3\] = 87\.5 is outside \[0, 1\].*"
                                         r"if it is a percentage, divide it by 100 \(0\.875\)"):
        fn(percent)


@pytest.mark.parametrize("fn", PAIRS)
def test_a_percent_table_on_either_side_of_a_comparison_is_refused(fn):
    # The case: a dense table in % gave an mCE of about -5,135% without complaint.
    dense_pct = {"clean": 80.0, "corrupted": {n: {s: 100 * a for s, a in c.items()}
                                             for n, c in DENSE["corrupted"].items()}}
    with pytest.raises(ValueError, match=r"baseline table: clean = 80\.0 .*looks like percentages: "
                                         r"divide every value by 100 \(0\.8 here\)"):
        fn(RIGL, dense_pct)
    # summarize_seeds names its tables by position
    with pytest.raises(ValueError, match=r"(model table|tables\[0\]): corrupted\['freeze'\]\[2\] = 30\.0"):
        fn(_with_cell(RIGL, "freeze", 2, 30.0), DENSE)


@pytest.mark.parametrize("value, message", [
    (-0.1, r" = -0\.1 is outside \[0, 1\]: accuracies are fractions$"),
    (1.5, r" = 1\.5 is outside \[0, 1\].*divide .*by 100"),
    (250.0, r" = 250\.0 is outside \[0, 1\]: accuracies are fractions$"),  # not a percentage
    (math.inf, r" = inf is outside"),
    (np.float64(2.0), r" = 2\.0 is outside"),
    (math.nan, r" is nan: .*leave a cell that was not measured out"),
    ("0.7", r" = '0\.7' is not a number"),
    (None, r" = None is not a number"),
    (True, r" = True is not a number"),
])
def test_out_of_range_or_non_numeric_accuracies_are_refused(value, message):
    bad = _with_cell(RIGL, "fog", 2, value)
    with pytest.raises(ValueError, match=r"corrupted\['fog'\]\[2\]" + message):
        metrics.mpc(bad)
    with pytest.raises(ValueError, match=r"baseline table: corrupted\['fog'\]\[2\]" + message):
        metrics.mce(RIGL, bad)
    with pytest.raises(ValueError, match=r"clean" + message):
        metrics.summarize({"clean": value, "corrupted": RIGL["corrupted"]})


def test_the_bounds_themselves_are_accuracies():
    edge = {"clean": 1, "corrupted": {"fog": {1: 0, 2: 1.0}}}  # ints too
    assert metrics.mpc(edge) == 0.5 and metrics.rpc(edge) == 0.5


@pytest.mark.parametrize("severity", ["3", 0, -1, 1.0, True])
def test_severities_must_be_positive_ints(severity):
    # "3" is how results.json stores a severity: it would never match the other table's 3
    bad = {"clean": 0.8, "corrupted": {"fog": {severity: 0.5}}}
    with pytest.raises(ValueError, match=r"corrupted\['fog'\]: severity .* is not a positive int"):
        metrics.mpc(bad)


@pytest.mark.parametrize("table, message", [
    ([0.8, {"fog": {1: 0.5}}], "must be a mapping with keys 'clean' and 'corrupted'"),
    ({"clean": 0.8, "corupted": {"fog": {1: 0.5}}}, "must be a mapping with keys 'clean' and 'corrupted'"),
    ({"clean": 0.8, "corrupted": [0.5]}, "corrupted must map corruption names"),
    ({"clean": 0.8, "corrupted": {3: {1: 0.5}}}, "corrupted key 3 is not a corruption name"),
    ({"clean": 0.8, "corrupted": {"fog": 0.5}}, r"corrupted\['fog'\] must map severities"),
])
def test_a_malformed_table_is_refused(table, message):
    with pytest.raises(ValueError, match=message):
        metrics.summarize(table)


# --- cells only one table holds --------------------------------------------------------
# The model ran snow, which the baseline did not; the baseline ran fog at severity 3, which
# the model did not. Shared: fog 1, 2 and freeze 1, 2.
MODEL = {"clean": 0.80, "corrupted": {"fog": {1: 0.75, 2: 0.60},
                                      "freeze": {1: 0.60, 2: 0.30}, "snow": {1: 0.10}}}
LEFT_OUT = {"missing_in_baseline": {"snow": [1]}, "missing_in_model": {"fog": [3]}}
# CE over the shared cells: fog (0.25 + 0.40) / (0.30 + 0.50) = 0.8125, freeze 1.1 (as above)


def test_summarize_and_compare_name_the_cells_left_out():
    s = metrics.summarize(MODEL, DENSE)
    assert s["left_out"] == LEFT_OUT
    assert s["CE"] == pytest.approx({"fog": 0.8125, "freeze": 1.1})
    assert s["mCE"] == pytest.approx((0.8125 + 1.1) / 2)
    assert metrics.compare(MODEL, DENSE)["left_out"] == LEFT_OUT
    assert metrics.relative_improvement(MODEL, DENSE)["left_out"] == LEFT_OUT
    assert metrics.win_loss(MODEL, DENSE)["left_out"] == LEFT_OUT
    assert metrics.summarize_seeds([MODEL, RIGL], DENSE)["left_out"] == {
        "missing_in_baseline": {"snow": [1]}, "missing_in_model": {"fog": [3]}}
    # matching tables: the key is there and empty; no baseline: None
    assert metrics.compare(RIGL, DENSE)["left_out"] == {"missing_in_baseline": {}, "missing_in_model": {}}
    assert metrics.summarize(MODEL)["left_out"] is None
    assert metrics.summarize_seeds([MODEL])["left_out"] is None


def test_summarize_seeds_left_out_is_the_union_over_runs():
    other = _with_cell(RIGL, "rain", 2, 0.5)
    assert metrics.summarize_seeds([MODEL, other], DENSE)["left_out"] == {
        "missing_in_baseline": {"snow": [1], "rain": [2]}, "missing_in_model": {"fog": [3]}}


def test_the_comparison_with_dense_uses_the_same_severities_on_both_sides():
    model = {"clean": 0.5, "corrupted": {"fog": {1: 0.8, 2: 0.6}}}
    dense = {"clean": 0.5, "corrupted": {"fog": {1: 0.4}}}
    c = metrics.compare(model, dense)
    # fog at severity 1 only: (0.8 - 0.4) / 0.4, not the mean over 1 and 2 against 1 alone
    assert c["per_corruption"] == pytest.approx({"fog": 1.0})
    assert c["mPC"] == pytest.approx(1.0) and c["mPC_difference"] == pytest.approx(0.4)
    assert c["left_out"] == {"missing_in_baseline": {"fog": [2]}, "missing_in_model": {}}


@pytest.mark.parametrize("fn", [metrics.mce, metrics.relative_mce, metrics.corruption_errors,
                                metrics.relative_corruption_errors])
def test_scalar_comparisons_warn_naming_the_cells_left_out(fn):
    with pytest.warns(metrics.CellsLeftOutWarning,
                      match=r"snow \(sev 1\) not in the baseline; fog \(sev 3\) not in the model"):
        value = fn(MODEL, DENSE)
    summary = metrics.summarize(MODEL, DENSE)
    expected = {metrics.mce: summary["mCE"], metrics.relative_mce: summary["relative_mCE"],
                metrics.corruption_errors: summary["CE"],
                metrics.relative_corruption_errors: summary["relative_CE"]}[fn]
    assert value == pytest.approx(expected)


def test_hand_computed_mce_of_matching_tables_without_a_warning():
    dense = {"clean": 0.9, "corrupted": {"fog": {1: 0.8, 2: 0.6}, "snow": {1: 0.5}}}
    rigl = {"clean": 0.9, "corrupted": {"fog": {1: 0.9, 2: 0.7}, "snow": {1: 0.75}}}
    # fog (0.1 + 0.3) / (0.2 + 0.4) = 2/3; snow 0.25 / 0.5 = 1/2
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.mce(rigl, dense) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_sharing_no_cell_says_what_each_table_has():
    with pytest.raises(ValueError, match=r"share no .*the model has fog \(sev 1\); the baseline has snow \(sev 1, 2\)"):
        metrics.compare({"clean": 0.5, "corrupted": {"fog": {1: 0.5}}},
                        {"clean": 0.5, "corrupted": {"snow": {1: 0.1, 2: 0.1}}})


def test_describe_left_out_is_empty_when_nothing_is():
    assert metrics.describe_left_out(None) == ""
    assert metrics.describe_left_out({"missing_in_baseline": {}, "missing_in_model": {}}) == ""
    assert metrics.describe_left_out(LEFT_OUT, "RigL", "Dense") == \
        "snow (sev 1) not in Dense; fog (sev 3) not in RigL"


def test_report_names_a_corruption_one_checkpoint_lacks():
    # A checkpoint evaluated without freeze: its CE, mCE and comparison with Dense leave
    # freeze out, and report.md says so in one line per table.
    from vidsparse.robustness import report
    from test_robustness_report import evaluation_without_freeze_for_rigl

    ev = evaluation_without_freeze_for_rigl()
    results = report.build_results(ev)
    rigl = results["methods"][1]
    assert rigl["vs_baseline"]["left_out"] == {"missing_in_baseline": {}, "missing_in_model": {"freeze": [1]}}
    assert rigl["mCE"] == pytest.approx(0.5 / 0.25)  # fog alone: RigL 2 errors of 4, Dense 1
    lines = [l for l in report.render_markdown(results, plot_name=None).splitlines() if "Left out" in l]
    assert len(lines) == 2  # summary and dense-vs-DST tables
    assert all("RigL sparsity 0.5 vs Dense: freeze (sev 1) not in RigL sparsity 0.5" in l for l in lines)


def test_relative_ce_is_undefined_when_the_baseline_loses_nothing_up_to_rounding():
    # 1 - a - (1 - c) is 2.8e-17, not 0, for these accuracies: a ratio by it would be ~1e16.
    base = {"clean": 0.738095238095238, "corrupted": {"contrast": {1: 0.738095238095238 + 1e-16}}}
    other = {"clean": 0.7, "corrupted": {"contrast": {1: 0.6}}}
    rce = metrics.relative_corruption_errors(other, base)
    assert math.isnan(rce["contrast"])
