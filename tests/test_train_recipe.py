"""recipes/train.py behaves the same on 1 process, 2 processes and with gradient accumulation,
resumes exactly after SIGKILL, and refuses what it does not support."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = Path(sys.executable).with_name("accelerate")
LAUNCH_2 = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
# A transformer: LayerNorm normalises each sample alone, so 2 ranks x 2 clips compute what
# 1 rank x 4 clips does (BatchNorm would see different batches, on CPU without SyncBatchNorm).
TRANSFORMER = ["recipes/train.py", "--config", "recipes/configs/timesformer_tiny_rigl.yaml",
               "max_steps=3", "sparsity.update_interval=1", "sparsity.end_fraction=1.0",
               "sparsity.drop_fraction=0.2", "eval_at_end=false", "log_every=1", "seed=1",
               "data.resize=36", "data.crop_size=32", "model.kwargs.size=32"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def final(out: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(out / "final" / f"{name}.safetensors"))


def run_info(out: Path) -> dict:
    return json.loads((out / "final" / "run.json").read_text())


@pytest.mark.slow
def test_one_process_two_processes_two_machines_and_accumulation_reach_the_same_model(synthetic_ucf101, tmp_path):
    data = f"data.root={synthetic_ucf101}"
    one, two, accum = tmp_path / "one", tmp_path / "two", tmp_path / "accum"
    run([sys.executable, *TRANSFORMER, data, "batch_size=4", f"output_dir={one}"])
    run([*LAUNCH_2, *TRANSFORMER, data, "batch_size=2", f"output_dir={two}"])
    run([sys.executable, *TRANSFORMER, data, "batch_size=2", "grad_accum_steps=2", f"output_dir={accum}"])
    # Two "machines" of one process each, on this host: Accelerate's multi-node launch.
    nodes = tmp_path / "nodes"
    port = free_port()
    launch = [str(ACCELERATE), "launch", "--multi_gpu", "--num_machines", "2", "--num_processes", "2",
              "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
              "--mixed_precision", "no", "--dynamo_backend", "no"]
    job = [*TRANSFORMER, data, "batch_size=2", f"output_dir={nodes}"]
    second = subprocess.Popen([*launch, "--machine_rank", "1", *job], cwd=ROOT, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run([*launch, "--machine_rank", "0", *job])
        assert second.wait(timeout=120) == 0
    finally:
        second.kill()
    assert [run_info(o)["world_size"] for o in (one, two, accum, nodes)] == [1, 2, 1, 2]
    reference_weights, reference_masks = final(one, "model"), final(one, "masks")
    for other in (two, accum, nodes):
        weights, masks = final(other, "model"), final(other, "masks")
        for key, value in reference_weights.items():
            torch.testing.assert_close(weights[key], value, rtol=1e-5, atol=1e-6, msg=f"{other.name} {key}")
        for key, mask in reference_masks.items():
            assert torch.equal(masks[key], mask), f"{other.name} {key}"
        # Mask updates land on the same optimizer steps (accumulation micro-batches are not steps).
        assert run_info(other)["mask_update_steps"] == run_info(one)["mask_update_steps"] == [1, 2]
        assert run_info(other)["engine_steps"] == 3
    # The masks did move: the update with drop_fraction 0.2 regrew some weights.
    rows = (one / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    first = dict(zip(header, rows[1].split(",")))
    assert float(first["mask_changed"]) > 0 and 0.5 < float(first["itop"]) < 1


@pytest.mark.slow
def test_gradient_accumulation_updates_masks_on_the_expected_optimizer_steps(synthetic_ucf101, tmp_path):
    out = tmp_path / "accum"
    run([sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_set.yaml",
         f"data.root={synthetic_ucf101}", f"output_dir={out}", "max_steps=5", "batch_size=2",
         "grad_accum_steps=3", "sparsity.update_interval=2", "sparsity.end_fraction=1.0",
         "eval_at_end=false", "log_every=1"])
    info = run_info(out)
    # 5 optimizer steps of 3 micro-batches; updates every 2 steps before the end: 2 and 4.
    assert info["engine_steps"] == 5 and info["mask_update_steps"] == [2, 4]
    counts = [int(line.split(",")[5]) for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert counts == [0, 1, 1, 2, 2]


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(synthetic_ucf101, tmp_path):
    args = ["recipes/train.py", "--config", "recipes/configs/r3d_tiny_rigl.yaml",
            f"data.root={synthetic_ucf101}", "max_steps=16", "batch_size=4", "checkpoint_every=2",
            "sparsity.update_interval=3", "sparsity.end_fraction=1.0", "eval_at_end=false"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    run([sys.executable, *args, f"output_dir={full}"])

    proc = subprocess.Popen([sys.executable, *args, f"output_dir={killed}"], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (killed / "checkpoints" / "step_4" / "vidsparse_step.json").exists():
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "final").exists()
    # Whatever the kill interrupted, every step_N directory is a complete checkpoint.
    for directory in (killed / "checkpoints").glob("step_*"):
        assert (directory / "vidsparse_step.json").exists(), directory

    resumed = run([sys.executable, *args, f"output_dir={killed}", "resume=auto"])
    assert "resumed from" in resumed.stdout + resumed.stderr
    for name in ("model", "masks"):
        a, b = final(full, name), final(killed, name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert run_info(killed)["mask_update_steps"] == run_info(full)["mask_update_steps"] == [3, 6, 9, 12, 15]


@pytest.mark.parametrize("variable", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_sharded_training_is_refused_with_a_clear_message(variable, tmp_path):
    proc = subprocess.run([sys.executable, "recipes/train.py", "--config",
                           "recipes/configs/r3d_tiny_set.yaml", f"output_dir={tmp_path / 'x'}"],
                          cwd=ROOT, env={**ENV, variable: "true"}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert "supports DDP" in proc.stderr and "not sharded training" in proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_bf16_mixed_precision_trains_with_exact_masks(synthetic_ucf101, tmp_path):
    out = tmp_path / "bf16"
    run([sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_rigl.yaml",
         f"data.root={synthetic_ucf101}", f"output_dir={out}", "max_steps=3", "batch_size=2",
         "mixed_precision=bf16", "sparsity.update_interval=2", "sparsity.end_fraction=1.0",
         "eval_at_end=false", "log_every=1"])
    info = run_info(out)
    assert info["mixed_precision"] == "bf16" and info["mask_update_steps"] == [2]
    weights = final(out, "model")
    for name, mask in final(out, "masks").items():
        assert int(mask.sum()) == round(0.5 * mask.numel()), name
        assert weights[name].dtype == torch.float32  # bf16 is for compute; weights stay fp32
        assert (weights[name][~mask] == 0).all(), name
    losses = [float(line.split(",")[1]) for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert len(losses) == 3 and all(0 < x < 10 for x in losses)


@pytest.mark.parametrize("mode, message", [
    ("stop", "the loss is nan at optimizer step 1"),
    ("skip", "batches in a row had a non-finite loss"),
])
def test_a_non_finite_loss_stops_with_a_message_naming_the_step(synthetic_ucf101, tmp_path, mode, message):
    # An infinite normalisation mean makes every input, hence every loss, NaN.
    out = tmp_path / mode
    proc = subprocess.run([sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_set.yaml",
                           f"data.root={synthetic_ucf101}", f"output_dir={out}", "max_steps=3",
                           "batch_size=4", "data.mean=[.inf,.inf,.inf]", f"nonfinite_loss={mode}",
                           "eval_at_end=false"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert message in proc.stderr
    if mode == "stop":
        assert "Last good checkpoint: none" in proc.stderr
    assert not (out / "final").exists()


def test_a_layer_left_all_zero_by_an_update_is_reported(synthetic_ucf101, tmp_path):
    # drop_fraction 1: SET removes every active weight and regrows as many at zero.
    out = tmp_path / "zero"
    proc = run([sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_set.yaml",
                f"data.root={synthetic_ucf101}", f"output_dir={out}", "max_steps=2", "batch_size=4",
                "sparsity.drop_fraction=1.0", "sparsity.decay=constant", "sparsity.update_interval=1",
                "sparsity.end_fraction=1.0", "log_every=1", "eval_at_end=false"])
    layers = run_info(out)["all_zero_layers"]
    assert "stem.0.weight" in layers and "fc.weight" in layers
    assert "warning: step 1: every weight of stem.0.weight is zero" in proc.stdout + proc.stderr
