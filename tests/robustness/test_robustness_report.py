"""Report files from an Evaluation whose predictions the test chooses."""

import csv
import json

import numpy as np
import pytest

from vidsparse.robustness import CLEAN, Condition, Evaluation, metrics, report

LABELS = np.array([0, 1, 0, 1])
FOG1, FOG2, FREEZE1 = Condition("fog", 1), Condition("fog", 2), Condition("freeze", 1)


def config(method, density, name=None):
    cfg = {"model": {"name": "r3d_tiny", "num_classes": 2}, "seed": 3,
           "data": {"layout": "ucf101", "fold": 1}, "sparsity": {"method": method, "density": density}}
    if name:
        cfg["name"] = name
    return cfg


def make_evaluation(predictions, configs):
    return Evaluation(
        checkpoints=[f"runs/{i}" for i in range(len(configs))], configs=configs,
        data_root="data/synthetic", corrupted=None, seed=7,
        videos=["UCF-101/A/a.avi", "UCF-101/B/b.avi", "UCF-101/A/c.avi", "UCF-101/B/d.avi"],
        labels=LABELS, conditions=[CLEAN, FOG1, FOG2, FREEZE1],
        predictions=[{c: np.array(p) for c, p in zip([CLEAN, FOG1, FOG2, FREEZE1], preds)}
                     for preds in predictions])


# Dense: clean 4/4; fog 3/4, 2/4 (mean 0.625); freeze 2/4   -> mPC 0.5625, rPC 0.5625
# RigL:  clean 3/4; fog 3/4, 3/4 (mean 0.75);  freeze 2/4   -> mPC 0.625,  rPC 0.8333
DENSE_PREDS = [[0, 1, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]
RIGL_PREDS = [[0, 1, 0, 0], [0, 1, 0, 0], [1, 1, 0, 1], [0, 0, 0, 0]]


@pytest.fixture
def evaluation():
    return make_evaluation([DENSE_PREDS, RIGL_PREDS], [config("dense", 1.0), config("rigl", 0.5)])


@pytest.mark.parametrize("method, density, label", [
    ("dense", 1.0, "Dense"), ("rigl", 1.0, "Dense"), ("set", 0.5, "SET sparsity 0.5"),
    ("rigl", 0.1, "RigL sparsity 0.9"), ("static", 0.2, "Static sparsity 0.8"), ("mest", 0.05, "mest sparsity 0.95"),
])
def test_method_label(method, density, label):
    assert report.method_label(config(method, density)) == label


def test_colliding_labels_get_run_names():
    configs = [config("rigl", 0.5, "seed0"), config("rigl", 0.5), config("dense", 1.0)]
    labels = report.unique_labels(configs, ["runs/a/final", "runs/b", "runs/c"])
    assert labels == ["RigL sparsity 0.5 (seed0)", "RigL sparsity 0.5 (b)", "Dense"]


def test_accuracy_table_from_predictions(evaluation):
    dense, rigl = evaluation.accuracies()
    assert dense == {"clean": 1.0, "corrupted": {"fog": {1: 0.75, 2: 0.5}, "freeze": {1: 0.5}}}
    assert metrics.mpc(dense) == pytest.approx(0.5625)
    assert metrics.mpc(rigl) == pytest.approx(0.625)


# The same by hand, against Dense (E = 1 - A; RigL clean error 0.25, Dense 0):
#   CE  fog (0.25 + 0.25) / (0.25 + 0.5) = 2/3, freeze 0.5 / 0.5 = 1       -> mCE 5/6
#   rel fog (0 + 0) / (0.25 + 0.5) = 0, freeze (0.5 - 0.25) / (0.5 - 0) = 0.5 -> rel. mCE 0.25
#   gamma^a fog 1 - (0.75 - 0.75) = 1, freeze 1 - (0.75 - 0.5) = 0.75     -> 0.875
#   gamma^r fog 1, freeze 1 - 0.25 / 0.75 = 2/3                            -> 5/6
#   scenarios fog 1 tie (0.75 = 0.75), fog 2 win (0.75 > 0.5), freeze 1 tie (0.5 = 0.5)
REPORT_FILES = {"results.json", "results.csv", report.PER_VIDEO_NAME, "report.md", report.PLOT_NAME,
                report.FAMILY_PLOT_NAME, report.HEATMAP_NAME}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One report of the Dense/RigL evaluation, shared by the tests that only read it."""
    ev = make_evaluation([DENSE_PREDS, RIGL_PREDS], [config("dense", 1.0), config("rigl", 0.5)])
    out = tmp_path_factory.mktemp("report")
    return ev, out, report.write_report(ev, out)


def test_write_report_files_and_roundtrip(written):
    evaluation, out, paths = written
    assert {p.name for p in out.iterdir()} == REPORT_FILES  # no temporary files left behind
    assert {p.name for p in paths.values()} == REPORT_FILES
    for key in ("plot", "family_plot", "heatmap"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    results = report.read_results(out)
    assert results["format"] == report.RESULTS_FORMAT
    assert report.accuracy_tables(results) == dict(zip(["Dense", "RigL sparsity 0.5"], evaluation.accuracies()))
    dense, rigl = results["methods"]
    assert (dense["clean"], dense["mPC"], dense["rPC"]) == pytest.approx((1.0, 0.5625, 0.5625))
    assert (rigl["clean"], rigl["mPC"], rigl["rPC"]) == pytest.approx((0.75, 0.625, 0.625 / 0.75))
    assert rigl["per_corruption"] == pytest.approx({"fog": 0.75, "freeze": 0.5})
    assert dense["vs_baseline"] is None
    assert rigl["vs_baseline"]["mPC"] == pytest.approx((0.625 - 0.5625) / 0.5625)
    assert rigl["vs_baseline"]["per_corruption"] == pytest.approx({"fog": 0.2, "freeze": 0.0})
    assert rigl["vs_baseline"]["win_loss"] == {"win": 1, "loss": 0, "tie": 2}
    assert (rigl["checkpoint"], rigl["method"], rigl["density"], rigl["sparsity"]) == (
        "runs/1", "rigl", 0.5, 0.5)
    assert results["baseline"] == "Dense" and results["baseline_checkpoint"] == "runs/0"
    assert results["seed"] == 7
    assert results["corruptions"] == {"fog": {"kind": "spatial", "severities": [1, 2], "options": {}},
                                      "freeze": {"kind": "temporal", "severities": [1], "options": {}}}
    assert results["families"] == {"fog": "weather", "freeze": "temporal"}
    assert results["frequency_order"] == ["fog", "freeze"]
    assert results["dataset"]["videos"] == evaluation.videos
    assert results["dataset"]["source"] == "on-the-fly"


def test_results_hold_corruption_errors_and_robustness(written):
    dense, rigl = report.read_results(written[1])["methods"]
    assert (dense["mCE"], dense["relative_mCE"]) == pytest.approx((1.0, 1.0))
    assert rigl["CE"] == pytest.approx({"fog": 2 / 3, "freeze": 1.0})
    assert rigl["relative_CE"] == pytest.approx({"fog": 0.0, "freeze": 0.5})
    assert (rigl["mCE"], rigl["relative_mCE"]) == pytest.approx((5 / 6, 0.25))
    assert rigl["gamma_a_per_corruption"] == pytest.approx({"fog": 1.0, "freeze": 0.75})
    assert (rigl["gamma_a"], rigl["gamma_r"]) == pytest.approx((0.875, 5 / 6))
    assert (dense["gamma_a"], dense["gamma_r"]) == pytest.approx((0.5625, 0.5625))


def test_results_csv_has_one_row_per_checkpoint_and_condition(written):
    evaluation, out, _ = written
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == report.CSV_COLUMNS
    assert len(rows) == 2 * len(evaluation.conditions)
    got = {(r["label"], r["corruption"], int(r["severity"])): float(r["accuracy"]) for r in rows}
    assert got == {("Dense", "clean", 0): 1.0, ("Dense", "fog", 1): 0.75, ("Dense", "fog", 2): 0.5,
                   ("Dense", "freeze", 1): 0.5, ("RigL sparsity 0.5", "clean", 0): 0.75,
                   ("RigL sparsity 0.5", "fog", 1): 0.75, ("RigL sparsity 0.5", "fog", 2): 0.75,
                   ("RigL sparsity 0.5", "freeze", 1): 0.5}
    rigl = next(r for r in rows if r["label"] == "RigL sparsity 0.5")
    assert (rigl["method"], rigl["sparsity"], rigl["seed"], rigl["checkpoint"]) == ("rigl", "0.5", "3", "runs/1")


def test_report_markdown_is_readable(written):
    text = (written[1] / "report.md").read_text()
    # Method | Seed | Clean | mPC | rPC | mCE | Rel. mCE | γa | γr | mPC vs Dense | Wins | Losses | Ties
    assert "| Dense | 3 | 100.0 | 56.2 | 56.2 | 100.0 | 100.0 | 56.2 | 56.2 | — | — | — | — |" in text
    assert "| RigL sparsity 0.5 | 3 | 75.0 | 62.5 | 83.3 | 83.3 | 25.0 | 87.5 | 83.3 | +11.1% | 1 | 0 | 2 |" in text
    # RigL's section: sev 1, sev 2, Mean, Mean vs Dense, CE, Rel. CE, γa, γr
    assert "| fog | spatial | 75.0 | 75.0 | 75.0 | +20.0% | 66.7 | 0.0 | 100.0 | 100.0 |" in text
    assert "| freeze | temporal | 50.0 | — | 50.0 |" in text            # no severity 2 run
    # Dense vs DST: mPC − Dense 6.25 points, +11.1%, clean -25%, 1 win, 0 losses, 2 ties
    assert "| RigL sparsity 0.5 | 0.5 | 1 | 75.0 | 62.5 | +6.2 | +11.1% | -25.0% | 1 | 0 | 2 |" in text
    assert "| fog | low-frequency | +20.0% |" in text
    for cited in ("Michaelis", "Hendrycks & Dietterich", "Schiappa", "Wu et al."):
        assert cited in text
    for image in (report.PLOT_NAME, report.FAMILY_PLOT_NAME, report.HEATMAP_NAME):
        assert f"({image})" in text
    assert "Mean ± std over training seeds" not in text  # one run per method


def test_named_baseline_normalises_mce(tmp_path):
    ev = make_evaluation([DENSE_PREDS, RIGL_PREDS], [config("dense", 1.0), config("rigl", 0.5)])
    results = report.build_results(ev, baseline="RigL sparsity 0.5")
    dense, rigl = results["methods"]
    assert results["baseline"] == "RigL sparsity 0.5" and rigl["mCE"] == pytest.approx(1.0)
    # Dense against RigL: fog (0.25 + 0.5) / (0.25 + 0.25), freeze 0.5 / 0.5
    assert dense["CE"] == pytest.approx({"fog": 1.5, "freeze": 1.0})
    assert dense["vs_baseline"]["win_loss"] == {"win": 0, "loss": 1, "tie": 2}
    assert report.build_results(ev, baseline="runs/1")["baseline"] == "RigL sparsity 0.5"
    assert report.build_results(ev, baseline=1)["baseline"] == "RigL sparsity 0.5"
    with pytest.raises(ValueError, match="Dense, RigL sparsity 0.5"):
        report.build_results(ev, baseline="GraNet")


def test_zero_clean_accuracy_writes_null_not_nan(tmp_path):
    always_wrong = [[1, 0, 1, 0]] * 4
    ev = make_evaluation([always_wrong, RIGL_PREDS], [config("dense", 1.0), config("set", 0.5)])
    paths = report.write_report(ev, tmp_path)
    results = json.loads(paths["results"].read_text())  # strict JSON: NaN would be a bare token
    assert results["methods"][0]["rPC"] is None
    assert results["methods"][1]["vs_baseline"]["clean"] is None
    assert "| Dense | 3 | 0.0 | 0.0 | — |" in paths["report"].read_text()


def test_no_dense_checkpoint_means_no_comparison(tmp_path):
    ev = make_evaluation([RIGL_PREDS], [config("rigl", 0.5)])
    paths = report.write_report(ev, tmp_path)
    results = report.read_results(paths["results"])
    assert results["baseline"] is None and results["methods"][0]["vs_baseline"] is None
    assert results["methods"][0]["mCE"] is None and "heatmap" not in paths
    text = (tmp_path / "report.md").read_text()
    assert "vs Dense" not in text and "mCE" not in text and report.HEATMAP_NAME not in text


def test_read_results_rejects_other_json(tmp_path):
    (tmp_path / "results.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a vidsparse robustness results file"):
        report.read_results(tmp_path)


# What a version-1 results.json held: these top-level keys and, per method, these fields.
V1_KEYS = ("dataset", "seed", "corruptions", "baseline")
V1_METHOD_KEYS = ("label", "checkpoint", "run_name", "model", "method", "density", "sparsity",
                  "train_seed", "clean", "mPC", "rPC", "per_corruption", "accuracy", "vs_baseline")


def as_version_1(results: dict) -> dict:
    """``results`` (a current results dict) cut down to what version 1 of the format wrote."""
    old = {k: results[k] for k in V1_KEYS}
    old["format"] = "vidsparse-robustness/1"
    old["methods"] = [{k: m[k] for k in V1_METHOD_KEYS} for m in results["methods"]]
    return old


def test_read_results_accepts_version_1(written):
    results = report.read_results(written[1])
    (written[1] / "v1.json").write_text(json.dumps(as_version_1(results)))
    try:
        loaded = report.read_results(written[1] / "v1.json")
    finally:
        (written[1] / "v1.json").unlink()
    assert report.accuracy_tables(loaded) == report.accuracy_tables(results)
    assert "RigL sparsity 0.5" in report.summary_table(loaded)
    assert "| fog | spatial | 75.0 | 75.0 | 75.0 | +20.0% |" in report.render_markdown(loaded, plot_name=None)


def test_spectral_results_add_a_plot_and_a_table(tmp_path):
    ev = make_evaluation([DENSE_PREDS], [config("dense", 1.0)])
    spectral = {"radii": [2, 8], "curves": {"Dense": {"low": [0.25, 0.75], "high": [0.5, 0.125]}}}
    paths = report.write_report(ev, tmp_path, spectral=spectral)
    assert paths["spectral_plot"].name == report.SPECTRAL_PLOT_NAME
    assert paths["spectral_plot"].read_bytes()[:4] == b"\x89PNG"
    assert report.read_results(tmp_path)["spectral"] == spectral
    text = paths["report"].read_text()
    assert "| 2 | 25.0 | 50.0 |" in text and "| 8 | 75.0 | 12.5 |" in text
    assert f"({report.SPECTRAL_PLOT_NAME})" in text
    with pytest.raises(ValueError, match="3 values for 2 radii"):
        report.write_report(ev, tmp_path / "bad", spectral={"radii": [2, 8], "curves": {
            "Dense": {"low": [0.1, 0.2, 0.3]}}})
    assert not (tmp_path / "bad").exists()  # refused before writing anything


def test_summary_table_for_a_terminal(written):
    text = report.summary_table(report.read_results(written[1]))
    assert text.splitlines()[0].split() == ["Method", "Clean", "mPC", "rPC", "mCE"]
    assert text.splitlines()[2].split() == ["RigL", "sparsity", "0.5", "75.0", "62.5", "83.3", "83.3"]


def evaluation_without_freeze_for_rigl() -> Evaluation:
    """Dense under clean, fog and freeze; RigL (sparsity 0.5) under clean and fog only. Four
    videos: Dense gets 1 fog video wrong and every freeze one with label 1, RigL 2 fog videos."""
    fog, freeze = Condition("fog", 1), Condition("freeze", 1)
    labels = np.array([0, 1, 0, 1])

    def cfg(method, density):
        return {"model": {"name": "r3d_tiny"}, "seed": 0, "data": {"fold": 1},
                "sparsity": {"method": method, "density": density}}

    return Evaluation(checkpoints=["runs/d", "runs/r"], configs=[cfg("dense", 1.0), cfg("rigl", 0.5)],
                      data_root="data", corrupted=None, seed=0, videos=["a", "b", "c", "d"],
                      labels=labels, conditions=[CLEAN, fog, freeze],
                      predictions=[{CLEAN: labels, fog: np.array([0, 1, 0, 0]), freeze: np.zeros(4, int)},
                                   {CLEAN: labels, fog: np.array([0, 1, 1, 0])}])
