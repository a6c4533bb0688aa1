"""Every shipped config loads, names a registered model at its native clip size, and the
CPU-sized ones train."""

from __future__ import annotations

import json
import os
import re
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


PAPER = sorted((ROOT / "recipes" / "configs" / "paper").glob("*.yaml"))
PAPER_METHODS = ("dense", "set", "rigl", "mest_r", "mest_g", "granet_r", "granet_g")


def test_paper_protocol_has_every_method_for_both_models():
    found = {(load_config(p)["model"]["name"], load_config(p)["sparsity"]["method"]) for p in PAPER}
    assert found == {(m, k) for m in ("i3d_r50", "slow_r50") for k in PAPER_METHODS}


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
@pytest.mark.parametrize("sparsity", [0.1, 0.3, 0.5])
def test_paper_configs_take_the_papers_sparsity_range(path, sparsity):
    cfg = load_config(path, [f"sparsity.sparsity={sparsity}"])
    base = load_config(path.parent.parent / f"ucf101_{cfg['model']['name']}.yaml")
    assert cfg["data"] == base["data"] and cfg["optim"] == base["optim"]  # only the method differs
    assert cfg["sparsity"]["sparsity"] == sparsity and cfg["sparsity"]["density"] == 1 - sparsity
    assert cfg["name"] == path.stem and cfg["output_dir"].endswith(path.stem)


def test_base_chain_overrides_section_by_section_and_reports_loops(tmp_path):
    from vidsparse.config import ConfigError

    (tmp_path / "a.yaml").write_text("max_steps: 5\noptim:\n  lr: 0.5\n  momentum: 0.5\nsparsity:\n  sparsity: 0.5\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\noptim:\n  lr: 0.2\nsparsity:\n  density: 0.3\n")
    cfg = load_config(tmp_path / "b.yaml")
    assert (cfg["max_steps"], cfg["optim"]["lr"], cfg["optim"]["momentum"]) == (5, 0.2, 0.5)
    assert (cfg["sparsity"]["density"], cfg["sparsity"]["sparsity"]) == (0.3, 0.7)
    assert cfg["name"] == "b"
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    with pytest.raises(ConfigError, match="'base' chain loops"):
        load_config(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing.yaml does not exist \(the base of"):
        load_config(tmp_path / "c.yaml")


def test_the_channel_mode_config_trains_and_records_removed_channels(synthetic_ucf101, tmp_path):
    out = tmp_path / "x3d_tiny_channel"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "recipes/train.py", "--config", "recipes/configs/x3d_tiny_channel.yaml",
         f"output_dir={out}", f"data.root={synthetic_ucf101}", "max_steps=5", "batch_size=2",
         "sparsity.update_interval=2", "sparsity.end_fraction=1.0", "eval_at_end=false"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    channels = json.loads((out / "final" / "run.json").read_text())["channels"]
    # Updates at steps 2 and 4 of 5: the last one reaches the full 50% (cubic schedule),
    # each group keeping a multiple of 8 channels where it has at least 8.
    assert channels["blocks.0.conv.conv_t"] == {"channels": 16, "alive": 8}
    assert channels["blocks.1.res_blocks.0.branch2.conv_a"] == {"channels": 36, "alive": 24}  # 18 -> 24
    assert channels["blocks.4.res_blocks.0.branch2.conv_a"] == {"channels": 216, "alive": 112}
    assert all(c["alive"] < c["channels"] for c in channels.values())


def test_log_with_names_accelerates_trackers_or_none(monkeypatch):
    import accelerate.utils

    from vidsparse.config import ConfigError, trackers

    assert load_config(None)["log_with"] == "tensorboard" and trackers(load_config(None)) == ["tensorboard"]
    assert trackers(load_config(None, ["log_with=none"])) == []
    assert trackers(load_config(None, ["log_with=[tensorboard,tensorboard]"])) == ["tensorboard"]
    for value, message in [("tensorbord", "unknown tracker 'tensorbord'; Accelerate's trackers are all, "),
                           ("[none,tensorboard]", "'none' cannot be combined"),
                           ("3", "'log_with' must be a name or a list of names, got 3"),
                           ("[]", "'log_with' must be a name or a list of names, got []")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(None, [f"log_with={value}"])
    # Whether W&B is installed here or not, both cases are checked.
    monkeypatch.setattr(accelerate.utils, "is_wandb_available", lambda: False)
    with pytest.raises(ConfigError, match=re.escape("the wandb tracker needs the wandb package, which is "
                                                    "not installed (pip install wandb)")):
        load_config(None, ["log_with=[tensorboard,wandb]"])
    monkeypatch.setattr(accelerate.utils, "is_comet_ml_available", lambda: False)
    with pytest.raises(ConfigError, match=re.escape("(pip install comet-ml)")):
        load_config(None, ["log_with=comet_ml"])
    monkeypatch.setattr(accelerate.utils, "is_wandb_available", lambda: True)
    assert trackers(load_config(None, ["log_with=[tensorboard,wandb]"])) == ["tensorboard", "wandb"]


def test_a_bad_override_is_a_config_error_naming_it():
    from vidsparse.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape("override 'max_steps=[1,': the value is not valid YAML")):
        load_config(None, ["max_steps=[1,"])
    with pytest.raises(ConfigError, match="override '=3' is not of the form key=value"):
        load_config(None, ["=3"])


def test_merge_config_checks_types_merges_sections_and_replaces_leaf_mappings():
    from vidsparse.config import ConfigError, merge_config, override_layers

    schema = {"n": 1, "lr": 0.1, "names": ["a"], "section": {"x": True, "y": "s"},
              "free": {"k": 1, "j": 2}, "anything": None}
    cfg = {"n": 1, "lr": 0.1, "names": ["a"], "section": {"x": True, "y": "s"},
           "free": {"k": 1, "j": 2}, "anything": None}
    merge_config(cfg, {"n": 4, "lr": 2, "section": {"y": "t"}, "free": {"z": 9}, "anything": [1]},
                 schema, "f.yaml", leaves={"free"})
    # The int for a float is converted; the section keeps x; the leaf mapping is replaced whole.
    assert cfg == {"n": 4, "lr": 2.0, "names": ["a"], "section": {"x": True, "y": "t"},
                   "free": {"z": 9}, "anything": [1]}
    assert isinstance(cfg["lr"], float)
    for layer, message in [({"n": "4"}, "f.yaml: 'n' must be int, got '4'"),
                           ({"section": {"x": "yes"}}, "f.yaml: 'section.x' must be bool, got 'yes'"),
                           ({"section": 3}, "f.yaml: 'section' must be a mapping, got 3"),
                           ({"section": {"q": 1}}, "f.yaml: unknown key 'section.q'; known here: ['x', 'y']"),
                           ({"free": [1]}, "f.yaml: 'free' must be dict, got [1]"),
                           ({"names": "a"}, "f.yaml: 'names' must be list, got 'a'")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            merge_config(dict(cfg), layer, schema, "f.yaml", leaves={"free"})
    # Without the leaf, "free" is a section checked key by key.
    with pytest.raises(ConfigError, match=re.escape("unknown key 'free.z'")):
        merge_config(dict(cfg), {"free": {"z": 1}}, schema, "f.yaml")
    # Overrides apply one key at a time, in order, as nested layers.
    assert override_layers(["section.y=u", "n=5", "section={x: false}"]) == [
        ({"section": {"y": "u"}}, "command line"), ({"n": 5}, "command line"),
        ({"section": {"x": False}}, "command line")]


def test_read_yaml_mapping_names_the_file_and_what_is_wrong(tmp_path):
    from vidsparse.config import ConfigError, read_yaml_mapping

    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml_mapping(tmp_path / "empty.yaml") == {}
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'list.yaml'} must hold a mapping")):
        read_yaml_mapping(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'bad.yaml'} is not valid YAML")):
        read_yaml_mapping(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match=re.escape(f"config file {tmp_path / 'no.yaml'} does not exist")):
        read_yaml_mapping(tmp_path / "no.yaml")
