"""recipes/eval_robustness.py end to end: two saved checkpoints, the synthetic dataset."""

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vidsparse
from vidsparse.checkpoint import save_final
from vidsparse.data.datasets import ucf101_classes
from vidsparse.robustness import metrics
from vidsparse.robustness.report import accuracy_tables

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "eval_robustness.py"
COUNT_CLIPS = Path(__file__).with_name("count_clips.py")

pytestmark = pytest.mark.slow


def run_recipe(*args):
    return subprocess.run([sys.executable, str(RECIPE), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def checkpoints(synthetic_ucf101, tmp_path_factory):
    """A dense and a RigL (half the conv weights masked) r3d_tiny with random weights."""
    out = tmp_path_factory.mktemp("runs")
    num_classes = len(ucf101_classes(synthetic_ucf101))
    data = {"root": "elsewhere/when/trained", "layout": "ucf101", "fold": 1,
            "frames_per_clip": 8, "sampling_rate": 2, "resize": 64, "crop_size": 56}
    torch.manual_seed(0)
    dirs = []
    for name, sparsity in [("dense", {"method": "dense", "density": 1.0}),
                           ("rigl", {"method": "rigl", "density": 0.5, "distribution": "uniform"})]:
        model = vidsparse.create_model("r3d_tiny", num_classes=num_classes)
        masks = {}
        if name == "rigl":
            masks = {n: torch.rand_like(p) < 0.5 for n, p in model.named_parameters() if p.ndim == 5}
            with torch.no_grad():
                for n, p in model.named_parameters():
                    p.mul_(masks.get(n, 1))
        config = {"name": name, "seed": 0, "output_dir": str(out / name),
                  "model": {"name": "r3d_tiny", "num_classes": num_classes},
                  "data": data, "sparsity": sparsity}
        save_final(out / name / "final", model, config, masks=masks)
        dirs.append(out / name)
    return dirs


def test_recipe_writes_report(synthetic_ucf101, checkpoints, tmp_path):
    dense, rigl = checkpoints
    report_dir = tmp_path / "report"
    proc = run_recipe("--checkpoint", dense, "--checkpoint", rigl / "final",
                      "--data", synthetic_ucf101, "--out", report_dir,
                      "--corruptions", "fog,frame_drop", "--severities", "1,3",
                      "--limit", 3, "--batch-size", 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Dense" in proc.stdout and "RigL sparsity 0.5" in proc.stdout
    assert str(report_dir / "report.md") in proc.stdout
    assert {"report.md", "results.json", "accuracy_vs_severity.png", "cache"} <= {
        p.name for p in report_dir.iterdir()}
    # 2 checkpoints x (clean + 2 corruptions x 2 severities) predictions cached
    assert len(list((report_dir / "cache").glob("*.json"))) == 2 * 5

    results = json.loads((report_dir / "results.json").read_text())
    assert [m["label"] for m in results["methods"]] == ["Dense", "RigL sparsity 0.5"]
    assert [m["checkpoint"] for m in results["methods"]] == [str(dense), str(rigl / "final")]
    assert results["dataset"]["num_videos"] == 3 and len(results["dataset"]["videos"]) == 3
    assert results["dataset"]["root"] == str(synthetic_ucf101)
    assert results["corruptions"] == {  # no preset or option: the defaults, recorded as {}
        "fog": {"kind": "spatial", "severities": [1, 3], "options": {}},
        "frame_drop": {"kind": "temporal", "severities": [1, 3], "options": {}}}
    for method, table in zip(results["methods"], accuracy_tables(results).values()):
        # every accuracy is a count out of 3 videos, and the headline numbers follow from them
        cells = [table["clean"]] + [a for s in table["corrupted"].values() for a in s.values()]
        assert all(round(3 * a) == pytest.approx(3 * a) for a in cells)
        assert method["mPC"] == pytest.approx(metrics.mpc(table))
        if table["clean"]:
            assert method["rPC"] == pytest.approx(metrics.mpc(table) / table["clean"])
    report = (report_dir / "report.md").read_text()
    assert "## Dense" in report and "## RigL sparsity 0.5" in report and "| frame_drop | temporal |" in report

    # per_video.csv.gz: one row per checkpoint, condition and video, whose shares of correct
    # predictions are results.json's accuracies exactly
    with gzip.open(report_dir / "per_video.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 5 * 3
    correct = {}
    for r in rows:
        correct.setdefault(r["label"], {}).setdefault((r["corruption"], int(r["severity"])), []).append(
            int(r["correct"]))
    for label, table in accuracy_tables(results).items():
        cells = {("clean", 0): table["clean"]} | {(name, s): a for name, by_sev in table["corrupted"].items()
                                                  for s, a in by_sev.items()}
        assert {cell: float(np.mean(v)) for cell, v in correct[label].items()} == cells
    # the verdict: printed, and the report's opening lines
    (comparison,) = results["statistics"]["comparisons"]
    assert f"RigL sparsity 0.5: {comparison['verdict']} (mPC" in proc.stdout
    assert results["statistics"]["seed"] == 0  # --stats-seed defaults to --seed
    assert report.splitlines()[4].startswith(f"- **RigL sparsity 0.5: {comparison['verdict']}**")


def test_recipe_unknown_corruption_is_a_clear_error(synthetic_ucf101, checkpoints, tmp_path):
    proc = run_recipe("--checkpoint", checkpoints[0], "--data", synthetic_ucf101,
                      "--out", tmp_path, "--corruptions", "fog,snowstorm")
    assert proc.returncode != 0
    assert "unknown corruption(s) snowstorm; known:" in proc.stderr and "fog" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_two_processes_give_the_one_process_results(synthetic_ucf101, checkpoints, tmp_path):
    """Evaluation, spectral curves and flip rates each split their clips between 2 gloo ranks
    and give the 1-process numbers; count_clips.py counts the clips each process scored."""
    dense, rigl = checkpoints
    common = ["--checkpoint", dense, "--checkpoint", rigl, "--data", synthetic_ucf101,
              "--corruptions", "gaussian_noise,frame_drop", "--severities", "2",
              "--batch-size", 2, "--no-cache", "--spectral", "--flip-rate", 2, "--bootstrap", 500]
    env = {**os.environ, "COUNT_DIR": str(tmp_path / "one_counts")}
    one = subprocess.run([sys.executable, str(COUNT_CLIPS), str(RECIPE), *map(str, common),
                          "--out", str(tmp_path / "one")], cwd=REPO, capture_output=True,
                         text=True, timeout=300, env=env)
    assert one.returncode == 0, one.stderr[-2000:]
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "COUNT_DIR": str(tmp_path / "two_counts")}
    two = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          str(COUNT_CLIPS), str(RECIPE), *map(str, common), "--out", str(tmp_path / "two")],
                         cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stderr[-2000:]
    # 6 test videos over 2 ranks x batch 2: the last step pads, gather_for_metrics drops it.
    a = json.loads((tmp_path / "one" / "results.json").read_text())
    b = json.loads((tmp_path / "two" / "results.json").read_text())
    assert a["dataset"]["num_videos"] == b["dataset"]["num_videos"] == 6
    assert accuracy_tables(a) == accuracy_tables(b)
    assert a["spectral"] == b["spectral"] and a["stability"] == b["stability"]
    assert a["statistics"] == b["statistics"]
    assert (tmp_path / "one" / "per_video.csv.gz").read_bytes() == \
        (tmp_path / "two" / "per_video.csv.gz").read_bytes()
    assert not (tmp_path / "one" / "cache").exists()
    # Clips scored, by hand, for 2 models. One process: evaluation 6 videos x 3 conditions,
    # spectral 6 videos x 9 radii x 2 bands, flip rate 6 videos x 2 clips x 3 conditions
    # (clean, 2 corruptions at severity 3): 2 x (18 + 108 + 36) = 324. Two ranks: batches
    # [0, 1], [4, 5] and [2, 3], [padding]: 4 videos each, 2 x (12 + 72 + 24) = 216 each.
    read = lambda path: json.loads(path.read_text())  # noqa: E731
    assert read(tmp_path / "one_counts" / "rank0.json") == 324
    assert [read(tmp_path / "two_counts" / f"rank{r}.json") for r in (0, 1)] == [216, 216]


def test_an_interrupted_evaluation_continues_from_its_cache(synthetic_ucf101, checkpoints, tmp_path):
    from vidsparse.robustness import evaluate
    from vidsparse.robustness.evaluate import load_checkpoint

    dense, _ = checkpoints
    calls = []

    def counted():
        ckpt = load_checkpoint(dense)
        ckpt.model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
        return ckpt

    kwargs = dict(severities=[1], batch_size=3, cache_dir=tmp_path / "cache", progress=False)
    # "Interrupted" after clean and fog: those predictions are in the cache.
    first = evaluate([counted()], synthetic_ucf101, corruptions=["fog"], **kwargs)
    assert sum(calls) == 12  # 6 videos x (clean, fog)
    calls.clear()
    second = evaluate([counted()], synthetic_ucf101, corruptions=["fog", "frame_drop"], **kwargs)
    assert sum(calls) == 6  # only frame_drop ran
    for condition in first.conditions:
        np.testing.assert_array_equal(second.predictions[0][condition], first.predictions[0][condition])
    # Other weights are another model: nothing is reused.
    calls.clear()
    other = counted()
    with torch.no_grad():
        next(other.model.parameters()).add_(1.0)
    evaluate([other], synthetic_ucf101, corruptions=["fog"], **kwargs)
    assert sum(calls) == 12


def test_spectral_and_flip_rate_reuse_the_loaded_checkpoints(synthetic_ucf101, checkpoints, tmp_path,
                                                             monkeypatch, capsys):
    """--spectral and --flip-rate run on the models the evaluation loaded: each checkpoint is
    read from disk once, and both extras reach results.json and report.md."""
    import importlib
    import runpy

    from accelerate.state import AcceleratorState, GradientState

    # The package's `evaluate` attribute is the function; the modules are what is patched.
    evaluate_module = importlib.import_module("vidsparse.robustness.evaluate")
    spectral_module = importlib.import_module("vidsparse.robustness.spectral")

    loads = []
    real = evaluate_module.load_checkpoint

    def counted(directory, *args, **kwargs):
        loads.append(Path(directory).name)
        return real(directory, *args, **kwargs)

    # Every module that could load a checkpoint by name; the recipe imports it at run time.
    monkeypatch.setattr(evaluate_module, "load_checkpoint", counted)
    monkeypatch.setattr(spectral_module, "load_checkpoint", counted)
    dense, rigl = checkpoints
    out = tmp_path / "report"
    monkeypatch.setattr(sys, "argv", [str(RECIPE), "--checkpoint", str(dense), "--checkpoint", str(rigl),
                                      "--data", str(synthetic_ucf101), "--out", str(out),
                                      "--corruptions", "fog", "--severities", "1", "--limit", "2",
                                      "--batch-size", "2", "--no-cache", "--cpu", "--spectral",
                                      "--flip-rate", "2"])
    try:
        runpy.run_path(str(RECIPE), run_name="__main__")
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    assert sorted(loads) == ["dense", "rigl"]  # once each, not once per analysis

    results = json.loads((out / "results.json").read_text())
    labels = ["Dense", "RigL sparsity 0.5"]
    assert list(results["spectral"]["curves"]) == labels
    radii = results["spectral"]["radii"]
    assert all(len(results["spectral"]["curves"][label][band]) == len(radii)
               for label in labels for band in ("low", "high"))
    stability = results["stability"]
    assert (stability["clips_per_video"], stability["stride"]) == (2, 1)
    assert list(stability["flip_rate"]) == labels
    for rates in stability["flip_rate"].values():
        assert list(rates) == ["clean", "fog s3"]
        # 2 videos, one pair of clips each: the rate is 0, 1/2 or 1
        assert all(rate in (0.0, 0.5, 1.0) for rate in rates.values())
    text = (out / "report.md").read_text()
    assert "## Accuracy against frequency radius" in text and "## Prediction stability" in text
    # What the recipe printed is the report it wrote, not a re-read of it.
    printed = capsys.readouterr().out
    assert "2 test videos, 1 corruption(s) corrupted on the fly (seed 0)" in printed
    assert str(out / "report.md") in printed
