"""recipes/train.py killed with SIGKILL at random moments (seeded) resumes with ``resume=auto`` to
the uninterrupted result, and never leaves a checkpoint that resume would take but could not use.

The kill moments are drawn from ``random.Random(SEED)`` inside phases measured on the
uninterrupted run (start-up before the first checkpoint, then training), plus one kill the
moment a checkpoint's temporary folder appears, so that a write is cut whatever the speed of
the machine.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
SEED = 0
MAX_STEPS = 8
ARGS = ["recipes/train.py", "--config", "recipes/configs/r3d_tiny_rigl.yaml", f"max_steps={MAX_STEPS}",
        "batch_size=4", "checkpoint_every=1", "sparsity.update_interval=3",
        "sparsity.end_fraction=1.0", "eval_at_end=false", "log_every=1"]
STEP_DIR = re.compile(r"^step_(\d+)$")
TEMPORARY = re.compile(r"^\.(tmp|old)_step_\d+$")  # save_checkpoint's names before the rename
POLL = 0.005  # seconds


class Reference:
    """The uninterrupted run and its timeline."""

    def __init__(self, out: Path, first_checkpoint: float, total: float):
        self.out, self.first_checkpoint, self.total = out, first_checkpoint, total


def start(data: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *ARGS, f"data.root={data}", f"output_dir={out}", *extra],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]
    return output


def tree(directory: Path) -> dict[str, Path]:
    return {p.relative_to(directory).as_posix(): p for p in sorted(directory.rglob("*")) if p.is_file()}


def same(a, b) -> bool:
    """Deep equality of loaded checkpoint contents: tensors and arrays exactly, dtype included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def same_file(a: Path, b: Path) -> bool:
    """Equal bytes; or, for Accelerate's pickles (a resumed run pickles equal state with other
    memo references, so other bytes), equal contents."""
    if a.read_bytes() == b.read_bytes():
        return True
    if a.name == "vidsparse_step.json":  # the same step and files; sizes follow the pickles
        a, b = (json.loads(x.read_text()) for x in (a, b))
        return same({**a, "files": sorted(a["files"])}, {**b, "files": sorted(b["files"])})
    if a.suffix not in (".pkl", ".bin"):
        return False
    try:  # tensors, numbers and strings only: the RNG states (numpy) must match byte for byte
        return same(torch.load(a, weights_only=True), torch.load(b, weights_only=True))
    except pickle.UnpicklingError:
        return False


@pytest.fixture(scope="module")
def reference(synthetic_ucf101, tmp_path_factory) -> Reference:
    out = tmp_path_factory.mktemp("interrupts") / "reference"
    began = time.monotonic()
    proc = start(synthetic_ucf101, out)
    first = None
    while proc.poll() is None:
        if first is None and (out / "checkpoints" / "step_1").is_dir():
            first = time.monotonic() - began
        time.sleep(POLL)
    total = time.monotonic() - began
    finish(proc)
    assert first is not None, "no checkpoint was seen while the reference run ran"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == \
        [f"step_{n}" for n in range(1, MAX_STEPS)]
    return Reference(out, first, total)


def assert_weights_equal(out: Path, reference: Path) -> None:
    for name in ("model", "masks"):
        got = load_file(str(out / "final" / f"{name}.safetensors"))
        want = load_file(str(reference / "final" / f"{name}.safetensors"))
        assert got.keys() == want.keys(), name
        for key in want:
            assert torch.equal(got[key], want[key]), (name, key)


def assert_only_complete_checkpoints(out: Path, reference: Path, when: str) -> None:
    """Every ``step_N`` holds, byte for byte, what the uninterrupted run wrote there (training is
    deterministic); anything else is a temporary name that resume never takes."""
    root = out / "checkpoints"
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        if TEMPORARY.match(entry.name):
            continue
        assert STEP_DIR.match(entry.name), f"{when}: unexpected {entry} among the checkpoints"
        got, want = tree(entry), tree(reference / "checkpoints" / entry.name)
        assert got.keys() == want.keys(), f"{when}: {entry} holds {sorted(got)}, not {sorted(want)}"
        for name in want:
            assert same_file(got[name], want[name]), f"{when}: {got[name]} differs from the reference"


def phase(out: Path) -> str:
    """What the kill interrupted, from what it left on disk."""
    root = out / "checkpoints"
    if any(TEMPORARY.match(p.name) for p in root.glob(".*")):
        return "checkpoint write"
    return "training" if any(root.glob("step_*")) else "start-up"


def kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL ``proc`` after ``seconds``; False if it finished first."""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        return True


def kill_while_writing(proc: subprocess.Popen, out: Path, step: int) -> int | None:
    """SIGKILL ``proc`` in the middle of writing a checkpoint: ``step``'s, or the next one's if
    that write is over before the process is stopped (a write takes some 10 ms). Returns the
    step whose write was cut (None: the run ended first)."""
    checkpoints = out / "checkpoints"
    while proc.poll() is None:
        if (checkpoints / f".tmp_step_{step}").exists():
            proc.send_signal(signal.SIGSTOP)  # frozen wherever it is, then looked at
            if (checkpoints / f".tmp_step_{step}").exists():
                proc.kill()
                proc.communicate()
                return step
            proc.send_signal(signal.SIGCONT)
            step += 1
        time.sleep(POLL / 5)
    return None


def logged_steps(out: Path) -> list[int]:
    with open(out / "metrics.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_runs_killed_at_random_moments_resume_to_the_uninterrupted_result(synthetic_ucf101, reference,
                                                                           tmp_path):
    rng = random.Random(SEED)
    startup = (0.0, 0.9 * reference.first_checkpoint)
    training = (reference.first_checkpoint, reference.total)
    # Each trial: how its successive launches are killed; one more launch then finishes.
    trials = {
        "start-up, then training": [("after", rng.uniform(*startup)),
                                    ("after", rng.uniform(*training))],
        "training": [("after", rng.uniform(*training))],
        "checkpoint write": [("writing", rng.randint(2, MAX_STEPS - 2))],
    }
    phases = []
    for trial, kills in trials.items():
        out = tmp_path / re.sub(r"\W+", "_", trial)
        resumed_at = []
        for number, kill in enumerate([*kills, None]):
            when = f"trial {trial!r}, launch {number + 1} ({kill})"
            proc = start(synthetic_ucf101, out, "resume=auto")
            if kill is None:
                killed = False
            elif kill[0] == "after":
                killed = kill_after(proc, kill[1])
            else:
                cut = kill_while_writing(proc, out, kill[1])
                killed = cut is not None
            if not killed:  # the last launch, or a kill that came after the end
                resumed_at += re.findall(r"resumed from \S+ at step (\d+)", finish(proc))
                break
            phases.append(phase(out))
            assert_only_complete_checkpoints(out, reference.out, when)
            if (out / "final").exists():  # killed after save_final's rename: it is whole
                assert_weights_equal(out, reference.out)
        assert_weights_equal(out, reference.out)
        runs = [json.loads((o / "final" / "run.json").read_text()) for o in (out, reference.out)]
        assert runs[0]["mask_update_steps"] == runs[1]["mask_update_steps"] == [3, 6], trial
        assert runs[0]["steps"] == MAX_STEPS
        # Steps replayed after a resume are logged once: the log is the uninterrupted run's.
        assert logged_steps(out) == logged_steps(reference.out), trial
        assert_only_complete_checkpoints(out, reference.out, f"trial {trial!r}, finished")
        assert not [p for p in (out / "checkpoints").iterdir() if TEMPORARY.match(p.name)], trial
        if trial == "checkpoint write":  # step_cut was half written, step_cut-1 complete
            assert resumed_at == [str(cut - 1)], (cut, resumed_at)
    assert "checkpoint write" in phases, phases


@pytest.mark.slow
def test_an_incomplete_checkpoint_is_skipped_on_resume_with_a_message(synthetic_ucf101, reference,
                                                                      tmp_path):
    out = tmp_path / "damaged"
    checkpoints = out / "checkpoints"
    checkpoints.mkdir(parents=True)
    for n in range(1, 6):
        shutil.copytree(reference.out / "checkpoints" / f"step_{n}", checkpoints / f"step_{n}")
    written = (checkpoints / "step_5" / "model.safetensors").stat().st_size
    with open(checkpoints / "step_5" / "model.safetensors", "r+b") as handle:
        handle.truncate(100)  # cut short after the rename (a full disk, a partial copy)
    (checkpoints / "step_4" / "optimizer.bin").unlink()
    (checkpoints / ".tmp_step_6").mkdir()  # what a kill mid-write leaves
    # A kill between replace_dir's two renames (rewriting step_3): only the old copy is left.
    os.replace(checkpoints / "step_3", checkpoints / ".old_step_3")
    (checkpoints / ".tmp_step_6" / "model.safetensors").write_bytes(b"half")

    # Named explicitly, a damaged checkpoint is an error that says what is wrong with it.
    named = subprocess.run([sys.executable, *ARGS, f"data.root={synthetic_ucf101}",
                            f"output_dir={out}", f"resume={checkpoints / 'step_5'}"],
                           cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert named.returncode != 0
    assert (f"{checkpoints / 'step_5'} is not a complete checkpoint (model.safetensors has 100 "
            f"bytes, {written} were written)") in named.stderr, named.stderr[-2000:]

    output = finish(start(synthetic_ucf101, out, "resume=auto"))
    assert (f"removing {checkpoints / '.tmp_step_6'} (left by an interrupted checkpoint write)"
            in output), output[-3000:]
    assert (f"restoring {checkpoints / 'step_3'} from {checkpoints / '.old_step_3'} (left by an "
            "interrupted checkpoint write)") in output, output[-3000:]
    assert (f"skipping {checkpoints / 'step_5'}: incomplete checkpoint (model.safetensors has "
            f"100 bytes, {written} were written)") in output
    assert f"skipping {checkpoints / 'step_4'}: incomplete checkpoint (optimizer.bin is missing)" \
        in output
    assert f"resumed from {checkpoints / 'step_3'} at step 3" in output
    assert_weights_equal(out, reference.out)
    # The damaged step_4 and step_5 were rewritten whole, and nothing temporary is left.
    assert_only_complete_checkpoints(out, reference.out, "after the resume")
    assert sorted(p.name for p in checkpoints.iterdir()) == [f"step_{n}" for n in range(1, MAX_STEPS)]
