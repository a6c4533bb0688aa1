"""Two gloo ranks, different data per rank, sync="none": every sparse method's masks agree.

One ``accelerate launch`` of ``dist_worker.py`` runs all methods; the tests read its output.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vidsparse.sparse import UPDATERS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("dist_worker.py")
ACCELERATE = Path(sys.executable).with_name("accelerate")
SPARSE_METHODS = [m for m in UPDATERS.names() if UPDATERS.get(m).sparse]


def free_port() -> int:
    # Not accelerate's default 29500: another launch on this machine may hold it.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
           str(WORKER), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"worker failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    files = [out / f"rank{r}.json" for r in range(2)]
    assert all(f.exists() for f in files), f"missing rank files; stderr tail:\n{proc.stderr[-4000:]}"
    return [json.loads(f.read_text()) for f in files]


def test_two_ranks_really_ran_every_sparse_method(ranks):
    for r, info in enumerate(ranks):
        assert info["rank"] == r
        assert info["world_size"] == 2 and info["num_processes"] == 2, info["distributed_type"]
        assert sorted(info["methods"]) == SPARSE_METHODS


@pytest.mark.parametrize("method", SPARSE_METHODS)
def test_masks_agree_by_construction(ranks, method):
    rank0, rank1 = (info["methods"][method] for info in ranks)
    assert rank0["step_count"] == rank1["step_count"] == 10
    assert rank0["initial"] == rank1["initial"], "initial masks differ between ranks"
    steps0 = [u["step"] for u in rank0["updates"]]
    assert steps0 == [u["step"] for u in rank1["updates"]]
    if UPDATERS.get(method).dynamic:
        assert steps0, f"{method} never updated its masks in 10 steps with update_interval=2"
    else:
        assert steps0 == []
    for u0, u1 in zip(rank0["updates"], rank1["updates"]):
        assert u0["digest"] == u1["digest"], f"{method}: ranks hold different masks after step {u0['step']}"


def test_local_gradient_control_differs_between_ranks(ranks):
    # Without the all-reduce, RigL's masks would differ: the ranks really saw different data.
    rank0, rank1 = (info["local_gradient_control"] for info in ranks)
    assert rank0["initial"] == rank1["initial"]
    assert [u["step"] for u in rank0["updates"]] == [2, 4, 6, 8]
    assert all(u0["digest"] != u1["digest"] for u0, u1 in zip(rank0["updates"], rank1["updates"]))


def test_channel_mode_removes_the_same_channels_on_every_rank(ranks):
    rank0, rank1 = (info["channels"] for info in ranks)
    assert rank0["alive"] == rank1["alive"]
    # 50% of 8 in both convs' groups (the second reaches the classifier through pooling and
    # flattening)
    assert [sum(not a for a in alive) for alive in rank0["alive"].values()] == [4, 4]
    assert [u["digest"] for u in rank0["updates"]] == [u["digest"] for u in rank1["updates"]]
