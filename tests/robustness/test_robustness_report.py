"""Report files from an Evaluation whose predictions the test chooses."""

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


def test_write_report_files_and_roundtrip(evaluation, tmp_path):
    paths = report.write_report(evaluation, tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "results.json", "report.md", report.PLOT_NAME}  # no temporary files left behind
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    results = report.read_results(tmp_path / "out")
    assert report.accuracy_tables(results) == dict(zip(["Dense", "RigL sparsity 0.5"], evaluation.accuracies()))
    dense, rigl = results["methods"]
    assert (dense["clean"], dense["mPC"], dense["rPC"]) == pytest.approx((1.0, 0.5625, 0.5625))
    assert (rigl["clean"], rigl["mPC"], rigl["rPC"]) == pytest.approx((0.75, 0.625, 0.625 / 0.75))
    assert rigl["per_corruption"] == pytest.approx({"fog": 0.75, "freeze": 0.5})
    assert dense["vs_baseline"] is None
    assert rigl["vs_baseline"]["mPC"] == pytest.approx((0.625 - 0.5625) / 0.5625)
    assert rigl["vs_baseline"]["per_corruption"] == pytest.approx({"fog": 0.2, "freeze": 0.0})
    assert (rigl["checkpoint"], rigl["method"], rigl["density"], rigl["sparsity"]) == (
        "runs/1", "rigl", 0.5, 0.5)
    assert results["baseline"] == "Dense"
    assert results["seed"] == 7
    assert results["corruptions"] == {"fog": {"kind": "spatial", "severities": [1, 2]},
                                      "freeze": {"kind": "temporal", "severities": [1]}}
    assert results["dataset"]["videos"] == evaluation.videos
    assert results["dataset"]["source"] == "on-the-fly"


def test_report_markdown_is_readable(evaluation, tmp_path):
    text = (report.write_report(evaluation, tmp_path)["report"]).read_text()
    assert "| Dense | 100.0 | 56.2 | 56.2 | — |" in text
    assert "| RigL sparsity 0.5 | 75.0 | 62.5 | 83.3 | +11.1% |" in text
    assert "| fog | spatial | 75.0 | 75.0 | 75.0 | +20.0% |" in text   # RigL's fog row
    assert "| freeze | temporal | 50.0 | — | 50.0 |" in text            # no severity 2 run
    assert "mPC" in text and "Michaelis" in text and report.PLOT_NAME in text


def test_zero_clean_accuracy_writes_null_not_nan(tmp_path):
    always_wrong = [[1, 0, 1, 0]] * 4
    ev = make_evaluation([always_wrong, RIGL_PREDS], [config("dense", 1.0), config("set", 0.5)])
    paths = report.write_report(ev, tmp_path)
    results = json.loads(paths["results"].read_text())  # strict JSON: NaN would be a bare token
    assert results["methods"][0]["rPC"] is None
    assert results["methods"][1]["vs_baseline"]["clean"] is None
    assert "| Dense | 0.0 | 0.0 | — |" in paths["report"].read_text()


def test_no_dense_checkpoint_means_no_comparison(tmp_path):
    ev = make_evaluation([RIGL_PREDS], [config("rigl", 0.5)])
    results = report.read_results(report.write_report(ev, tmp_path)["results"])
    assert results["baseline"] is None and results["methods"][0]["vs_baseline"] is None
    assert "vs Dense" not in (tmp_path / "report.md").read_text()


def test_read_results_rejects_other_json(tmp_path):
    (tmp_path / "results.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a vidsparse robustness results file"):
        report.read_results(tmp_path)
