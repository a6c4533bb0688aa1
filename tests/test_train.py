"""recipes/train.py end to end: two gloo ranks on CPU agree on every mask."""

from __future__ import annotations

import json
import shutil
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import vidsparse
from vidsparse.checkpoint import load_final
from vidsparse.sparse.masks import mask_digest

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = Path(sys.executable).with_name("accelerate")


def run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_two_process_rigl_run_has_world_size_two_and_identical_masks(synthetic_ucf101, tmp_path):
    out = tmp_path / "rigl"
    proc = run([str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no",
                "recipes/train.py", "--config", "recipes/configs/r3d_tiny_rigl.yaml",
                f"output_dir={out}", f"data.root={synthetic_ucf101}", "max_steps=6", "batch_size=2",
                "sparsity.update_interval=2", "sparsity.end_fraction=1.0", "sparsity.drop_fraction=0.5",
                "sparsity.sync=verify",  # ranks are checked, not overwritten, at every update
                "seed=3", "log_every=2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((out / "final" / "run.json").read_text())
    assert info["world_size"] == 2 and info["steps"] == 6
    rank0, rank1 = info["mask_digests"]
    assert rank0 == rank1
    masks = load_file(str(out / "final" / "masks.safetensors"))
    model, cfg, loaded_masks = load_final(out)
    names = [n for n, _ in model.named_parameters() if n in masks]
    assert mask_digest(masks[n] for n in names).tolist() == rank0
    # Exact density per layer, pruned weights zero in the saved weights.
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert int(mask.sum()) == round(0.5 * mask.numel()), name
        assert (params[name].detach()[~mask] == 0).all(), name
    # Updates really happened: the final masks are not the initial ones for this seed.
    fresh = vidsparse.create_model("r3d_tiny", num_classes=3)
    engine = vidsparse.DynamicSparsity(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1),
                                       vidsparse.SparsityConfig(method="rigl", density=0.5,
                                                                distribution="uniform", seed=3),
                                       total_steps=6)
    assert any(not torch.equal(engine.masks[n], masks[n]) for n in masks)
    assert cfg["model"]["num_classes"] == 3 and cfg["sparsity"]["method"] == "rigl"
    saved_cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert saved_cfg["max_steps"] == 6 and saved_cfg["data"]["root"] == str(synthetic_ucf101)
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("step,loss,accuracy") and len(lines) == 1 + 3


@pytest.mark.parametrize("override, message", [
    ("max_step=3", "unknown key 'max_step'"),
    ("sparsity.density=1.5", "density must be in"),
    ("sparsity.method=rigl2", "unknown sparsity method 'rigl2'"),
    ("optim.lr=fast", "'optim.lr' must be float"),
])
def test_bad_overrides_fail_before_training(override, message, tmp_path):
    proc = run([sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_set.yaml",
                f"output_dir={tmp_path / 'x'}", override], timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (tmp_path / "x").exists()


def test_a_fresh_run_refuses_an_output_dir_with_an_earlier_runs_checkpoints(tmp_path):
    checkpoints = tmp_path / "x" / "checkpoints"
    for step in (10, 2):
        (checkpoints / f"step_{step}").mkdir(parents=True)
    proc = run([sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_set.yaml",
                f"output_dir={tmp_path / 'x'}"], timeout=120)
    assert proc.returncode != 0
    assert (f"resume=none but {checkpoints} already holds checkpoints of an earlier run "
            "(step_2, step_10); continue that run with resume=auto") in proc.stderr, proc.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["checkpoints"]  # nothing written


def test_resume_auto_from_a_checkpoint_matches_the_uninterrupted_run(synthetic_ucf101, tmp_path):
    args = ["recipes/train.py", "--config", "recipes/configs/r3d_tiny_rigl.yaml",
            f"data.root={synthetic_ucf101}", "max_steps=6", "batch_size=4", "checkpoint_every=2",
            "sparsity.update_interval=2", "sparsity.end_fraction=1.0", "eval_at_end=false",
            "log_every=1"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    proc = run([sys.executable, *args, f"output_dir={full}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (full / "checkpoints").iterdir()) == ["step_2", "step_4"]
    # A run that died after its step-4 checkpoint: only that checkpoint is on disk.
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(full / "checkpoints" / "step_4", resumed / "checkpoints" / "step_4")
    # Its log went on to step 6 (a run killed after logging, before checkpointing).
    shutil.copy(full / "metrics.csv", resumed / "metrics.csv")
    proc = run([sys.executable, *args, f"output_dir={resumed}", "resume=auto"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "at step 4" in proc.stdout + proc.stderr
    logs = [(out / "metrics.csv").read_text().splitlines() for out in (full, resumed)]
    assert [line.split(",")[0] for line in logs[1]] == ["step", "1", "2", "3", "4", "5", "6"]
    assert logs[1][:5] == logs[0][:5]  # the rows up to the checkpoint are the stopped run's
    for name in ("model.safetensors", "masks.safetensors"):
        a, b = load_file(str(full / "final" / name)), load_file(str(resumed / "final" / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)


def test_training_on_a_kinetics_layout_detected_automatically(synthetic_kinetics, tmp_path):
    out = tmp_path / "kinetics"
    proc = run([sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_set.yaml",
                f"output_dir={out}", f"data.root={synthetic_kinetics}", "data.layout=auto",
                "data.test_split=validate", "max_steps=2", "batch_size=2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "final" / "run.json").read_text())
    assert "test_accuracy" in result and "on 3 videos" in proc.stdout + proc.stderr
    _, cfg, _ = load_final(out)
    assert cfg["model"]["num_classes"] == 3 and cfg["data"]["layout"] == "auto"


def test_the_tracker_is_a_config_key(synthetic_ucf101, tmp_path):
    # TensorBoard by default (its event file under logs/train/); none: metrics.csv alone.
    common = [sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_dense.yaml",
              f"data.root={synthetic_ucf101}", "max_steps=1", "batch_size=2", "eval_at_end=false"]
    default, none = tmp_path / "default", tmp_path / "none"
    for out, extra in ((default, []), (none, ["log_with=none"])):
        proc = run([*common, f"output_dir={out}", *extra])
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len((out / "metrics.csv").read_text().splitlines()) == 2  # header and step 1
    assert list((default / "logs" / "train").glob("events.out.tfevents.*"))
    assert not (none / "logs").exists()
    assert yaml.safe_load((none / "config.yaml").read_text())["log_with"] == "none"
