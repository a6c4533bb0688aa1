"""Dense vs DST as Wu et al. (2025) compare them: runs grouped by (method, sparsity), mean ±
std over their training seeds, relative improvement and win/loss of the seed means."""

import csv

import pytest

from vidsparse.robustness import report

from test_robustness_report import DENSE_PREDS, RIGL_PREDS, config, make_evaluation

# Conditions: clean, fog 1, fog 2, freeze 1; labels [0, 1, 0, 1].
# Dense seed 0: clean 1.00, fog 0.75 0.50, freeze 0.50  (mPC 0.5625)
# Dense seed 1: clean 0.75, fog 0.50 0.50, freeze 0.25  (mPC 0.375)
# RigL  seed 0: clean 0.75, fog 0.75 0.75, freeze 0.50  (mPC 0.625)
# RigL  seed 1: clean 1.00, fog 0.75 0.75, freeze 0.75  (mPC 0.75)
DENSE_SEED1 = [[0, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0]]
RIGL_SEED1 = [[0, 1, 0, 1], [0, 1, 1, 1], [0, 1, 0, 0], [0, 1, 0, 0]]
# Seed means: Dense clean 0.875, fog 0.625 0.5 (mean 0.5625), freeze 0.375 -> mPC 0.46875
#             RigL  clean 0.875, fog 0.75 0.75 (mean 0.75),   freeze 0.625 -> mPC 0.6875


def seeded(method, density, seed):
    return {**config(method, density, name=f"{method}_s{seed}"), "seed": seed}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    ev = make_evaluation([DENSE_PREDS, RIGL_PREDS, DENSE_SEED1, RIGL_SEED1],
                         [seeded("dense", 1.0, 0), seeded("rigl", 0.5, 0),
                          seeded("dense", 1.0, 1), seeded("rigl", 0.5, 1)])
    out = tmp_path_factory.mktemp("seeds")
    return ev, out, report.write_report(ev, out)


def test_group_runs_by_model_method_and_sparsity():
    configs = [seeded("dense", 1.0, 0), seeded("rigl", 0.5, 0), seeded("rigl", 0.5, 1),
               seeded("rigl", 0.8, 0), {**seeded("rigl", 0.5, 2), "model": {"name": "i3d"}}]
    assert report.group_runs(configs) == [[0], [1, 2], [3], [4]]


def test_groups_hold_seed_means_and_stds(written):
    results = report.read_results(written[1])
    dense, rigl = results["groups"]
    assert (dense["label"], dense["members"], dense["seeds"], dense["n"]) == (
        "Dense", ["Dense (dense_s0)", "Dense (dense_s1)"], [0, 1], 2)
    assert rigl["members"] == ["RigL sparsity 0.5 (rigl_s0)", "RigL sparsity 0.5 (rigl_s1)"]
    # sample std of two runs x, y: |x - y| / sqrt(2)
    assert (rigl["mean"]["clean"], rigl["std"]["clean"]) == pytest.approx((0.875, 0.25 / 2 ** 0.5))
    assert (rigl["mean"]["mPC"], rigl["std"]["mPC"]) == pytest.approx((0.6875, 0.125 / 2 ** 0.5))
    assert (dense["mean"]["mPC"], dense["std"]["mPC"]) == pytest.approx((0.46875, 0.1875 / 2 ** 0.5))
    assert rigl["accuracy_mean"] == {"fog": {"1": 0.75, "2": 0.75}, "freeze": {"1": 0.625}}
    assert dense["accuracy_std"]["fog"]["1"] == pytest.approx(0.25 / 2 ** 0.5)
    # mCE is per run against the baseline checkpoint (the first dense run), then averaged:
    # Dense seed 1 against seed 0: fog (0.5 + 0.5) / (0.25 + 0.5), freeze 0.75 / 0.5
    assert dense["mean"]["mCE"] == pytest.approx((1.0 + (4 / 3 + 1.5) / 2) / 2)


def test_dst_is_compared_with_dense_on_seed_means(written):
    dense, rigl = report.read_results(written[1])["groups"]
    assert dense["vs_reference"] is None and rigl["reference"] == "Dense"
    vs = rigl["vs_reference"]
    assert vs["mPC_difference"] == pytest.approx(0.6875 - 0.46875)
    assert vs["mPC"] == pytest.approx(0.6875 / 0.46875 - 1)
    assert vs["clean"] == pytest.approx(0.0)
    assert vs["per_corruption"] == pytest.approx({"fog": 0.75 / 0.5625 - 1, "freeze": 0.625 / 0.375 - 1})
    # fog 1: 0.75 > 0.625, fog 2: 0.75 > 0.5, freeze 1: 0.625 > 0.375
    assert {k: vs["win_loss"][k] for k in ("win", "loss", "tie")} == {"win": 3, "loss": 0, "tie": 0}
    assert [(s["corruption"], s["severity"], s["outcome"]) for s in vs["win_loss"]["scenarios"]] == [
        ("fog", 1, "win"), ("fog", 2, "win"), ("freeze", 1, "win")]


def test_report_shows_mean_and_std_over_seeds(written):
    text = (written[1] / "report.md").read_text()
    assert "## Mean ± std over training seeds" in text
    # Method | Runs | Seeds | Clean | mPC | ...
    assert "| RigL sparsity 0.5 | 2 | 0, 1 | 87.5 ± 17.7 | 68.8 ± 8.8 |" in text
    assert "| Dense | 2 | 0, 1 | 87.5 ± 17.7 | 46.9 ± 13.3 |" in text
    # Dense vs DST: Sparsity | Runs | Clean | mPC | mPC − Dense | mPC vs Dense | Clean vs Dense | W | L | T
    assert "| RigL sparsity 0.5 | 0.5 | 2 | 87.5 ± 17.7 | 68.8 ± 8.8 | +21.9 | +46.7% | +0.0% | 3 | 0 | 0 |" in text
    assert "| fog | low-frequency | +33.3% |" in text and "| freeze | temporal | +66.7% |" in text
    assert "3 wins, 0 losses, 0 ties" in text
    # per-corruption table: the mean ± std of each run's mean over severities
    assert "| freeze | temporal | temporal | 37.5 ± 17.7 | 62.5 ± 17.7 |" in text


def test_csv_keeps_each_seed(written):
    with open(written[1] / "results.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["corruption"] == "freeze"]
    assert [(r["method"], r["seed"], float(r["accuracy"])) for r in rows] == [
        ("dense", "0", 0.5), ("rigl", "0", 0.5), ("dense", "1", 0.25), ("rigl", "1", 0.75)]
