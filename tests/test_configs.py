"""Every shipped config loads, names a registered model at its native clip size, and the
CPU-sized ones train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vidsparse
from vidsparse.config import load_config
from vidsparse.models import MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "recipes" / "configs").glob("*.yaml"))


def test_every_model_family_has_a_ucf101_config():
    named = {load_config(p)["model"]["name"] for p in CONFIGS if p.name.startswith("ucf101_")}
    families = {"i3d_r50", "slow_r50", "r3d_18", "x3d_m", "s3d", "swin3d_t", "mvit_v2_s",
                "timesformer", "vivit"}
    assert families <= named


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_is_valid_and_matches_the_model_input(path):
    cfg = load_config(path)
    name = cfg["model"]["name"]
    assert name in vidsparse.list_models()
    frames, height, width = MODELS.meta(name)["input_size"]
    kwargs = cfg["model"]["kwargs"]
    assert cfg["data"]["frames_per_clip"] == kwargs.get("frames", frames)
    assert cfg["data"]["crop_size"] == kwargs.get("size", height) == kwargs.get("size", width)
    assert cfg["data"]["resize"] >= cfg["data"]["crop_size"]
    assert 0 < cfg["sparsity"]["density"] <= 1 and cfg["name"] == path.stem


@pytest.mark.parametrize("config", ["timesformer_tiny_rigl", "x3d_tiny_rigl"])
def test_tiny_configs_train(config, synthetic_ucf101, tmp_path):
    out = tmp_path / config
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "recipes/train.py", "--config", f"recipes/configs/{config}.yaml",
         f"output_dir={out}", f"data.root={synthetic_ucf101}", "max_steps=3", "batch_size=2",
         "sparsity.update_interval=2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((out / "final" / "sparsity.json").read_text())
    assert stats and all(s["active"] == round(0.5 * s["numel"]) for s in stats.values())
    assert json.loads((out / "final" / "run.json").read_text())["steps"] == 3
