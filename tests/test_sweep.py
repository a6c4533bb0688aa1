"""recipes/sweep.py: the whole protocol from one file, and a second run that skips it all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def sweep(*overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "recipes/sweep.py", "--config", "recipes/sweeps/demo.yaml",
                           *overrides], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_sweep_trains_corrupts_evaluates_and_a_rerun_skips_everything(synthetic_ucf101, tmp_path):
    args = [f"output_dir={tmp_path}", f"data.root={synthetic_ucf101}", "launch=[]",
            "train.methods=[dense,set]", "train.sparsities=[0.3,0.5]", "train.seeds=[0]",
            "corrupt.on_disk=true",
            "train.overrides=[max_steps=2,batch_size=2,eval_at_end=false]",
            "corrupt.corruptions=[fog]", "corrupt.severities=[2]", "corrupt.workers=1"]
    first = sweep(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["dense_seed0", "set_sparsity0.3_seed0", "set_sparsity0.5_seed0"]
    for run in runs:
        config = json.loads((tmp_path / "runs" / run / "final" / "run.json").read_text())
        assert config["steps"] == 2
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert [m["label"] for m in results["methods"]] == ["Dense", "SET sparsity 0.3", "SET sparsity 0.5"]
    assert list(results["corruptions"]) == ["fog"]

    second = sweep(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("trained already, skipped") == 3
    assert "wrote 0 files, skipped 6 already done" in second.stdout
    assert json.loads((tmp_path / "report" / "results.json").read_text())["methods"] == results["methods"]


def test_a_bad_run_config_fails_before_anything_runs(tmp_path):
    proc = sweep(f"output_dir={tmp_path}", "train.overrides=[optim.lr=fast]")
    assert proc.returncode != 0
    assert "run dense_seed0" in proc.stderr and "'optim.lr' must be float" in proc.stderr
    assert not tmp_path.joinpath("runs").exists() and not tmp_path.joinpath("data").exists()
    proc = sweep(f"output_dir={tmp_path}", "train.methods=[dense,rigl2]")
    assert proc.returncode != 0 and "unknown method 'rigl2'" in proc.stderr


def test_the_sweep_file_and_overrides_are_type_checked_like_a_training_config(tmp_path):
    # Wrong types fail with the key named, before any run, dataset or folder.
    for override, message in [("train.seeds=3", "command line: 'train.seeds' must be list, got 3"),
                              ("corrupt.on_disk=maybe", "'corrupt.on_disk' must be bool, got 'maybe'"),
                              ("evaluate.batch_size=big", "'evaluate.batch_size' must be int, got 'big'"),
                              ("data.generate=5", "'data.generate' must be dict, got 5")]:
        proc = sweep(f"output_dir={tmp_path}", override)
        assert proc.returncode != 0 and message in proc.stderr, (override, proc.stderr[-2000:])
    assert not tmp_path.joinpath("runs").exists() and not tmp_path.joinpath("data").exists()
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- dense\n- rigl\n")
    proc = subprocess.run([sys.executable, "recipes/sweep.py", "--config", str(not_a_mapping)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and f"error: {not_a_mapping} must hold a mapping at the top level" in proc.stderr


def _merged(config: str, *overrides: str) -> dict:
    import yaml

    proc = subprocess.run([sys.executable, "recipes/sweep.py", "--config", config, "--print-config",
                           *overrides], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return yaml.safe_load(proc.stdout)


def test_sweeps_corrupt_on_the_fly_unless_the_file_asks_for_copies(tmp_path):
    # A sweep file that says nothing about it evaluates on the fly: no copies on disk.
    minimal = tmp_path / "minimal.yaml"
    minimal.write_text("train: {methods: [dense]}\n")
    assert _merged(str(minimal))["corrupt"]["on_disk"] is False
    # The paper sweeps and `make demo` run on the fly.
    ucf = _merged("recipes/sweeps/ucf101_paper.yaml")
    kinetics = _merged("recipes/sweeps/kinetics_subset_paper.yaml")
    assert ucf["corrupt"]["on_disk"] is False and kinetics["corrupt"]["on_disk"] is False
    assert _merged("recipes/sweeps/demo.yaml")["corrupt"]["on_disk"] is False
    # The Kinetics subset sweep trains the Kinetics-subset config on the same protocol.
    assert kinetics["train"]["config"] == "recipes/configs/kinetics_subset_i3d_r50.yaml"
    assert kinetics["data"]["root"] == "data/mini_kinetics"
    assert kinetics["corrupt"]["corruptions"] == ucf["corrupt"]["corruptions"]
    assert kinetics["train"]["methods"] == ucf["train"]["methods"]
    assert _merged(str(minimal), "corrupt.on_disk=true")["corrupt"]["on_disk"] is True
