"""Hostile inputs: no shell, no eval, no unpickling; paths from lists and manifests stay inside
their root."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from vidsparse.corruptions import verify_dataset
from vidsparse.corruptions.generate import inside, load_manifest
from vidsparse.data.datasets import DatasetFormatError, ucf101_index
from vidsparse.robustness.evaluate import discover_corrupted

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("vidsparse", "recipes", "data_tools", "benchmarks")
                 for p in (ROOT / d).rglob("*.py"))


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):  # a bare call: eval(...)
                yield node, "", func.id
            elif isinstance(func, ast.Attribute):  # module.fn(...) or obj.method(...)
                owner = func.value.id if isinstance(func.value, ast.Name) else "<expr>"
                yield node, owner, func.attr


def test_the_sources_are_found():
    assert len(SOURCES) > 40 and ROOT / "recipes" / "train.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shell_eval_exec_unsafe_yaml_or_unpickling(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node, owner, name in _calls(tree):
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        keywords = {k.arg: k.value for k in node.keywords}
        shell = keywords.get("shell")
        assert not (isinstance(shell, ast.Constant) and shell.value), f"{where}: shell=True"
        assert not (owner == "" and name in ("eval", "exec", "compile", "__import__")), \
            f"{where}: {name}()"
        assert not (owner in ("os",) and name in ("system", "popen")), f"{where}: os.{name}"
        assert not (owner == "yaml" and name in ("load", "unsafe_load", "full_load", "load_all")), \
            f"{where}: yaml.{name} (use yaml.safe_load)"
        assert not (owner in ("pickle", "dill", "marshal") and name in ("load", "loads")), \
            f"{where}: {owner}.{name}"
        if owner == "torch" and name == "load":
            flag = keywords.get("weights_only")
            assert isinstance(flag, ast.Constant) and flag.value is True, \
                f"{where}: torch.load without weights_only=True"


@pytest.mark.parametrize("line", ["../outside/v_x_g01_c01.avi", "/etc/passwd",
                                  "MoveDown/../../../v.avi", "C:/x/v.avi"])
def test_a_split_list_cannot_name_a_file_outside_the_dataset(synthetic_ucf101, tmp_path, line):
    root = tmp_path / "ucf"
    shutil.copytree(synthetic_ucf101, root)
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text(f"{line}\n")
    with pytest.raises(DatasetFormatError, match="leaves the dataset root"):
        ucf101_index(root, "test")


@pytest.mark.parametrize("bad", ["../x.avi", "/abs/x.avi", "fog/1/../../../x.avi", "C:/x.avi", ""])
def test_a_manifest_cannot_point_outside_its_folder(tmp_path, bad):
    assert not inside(bad)
    (tmp_path / "manifest.json").write_text(json.dumps({"files": [{"path": bad, "sha256": "0"}]}))
    with pytest.raises(ValueError):
        load_manifest(tmp_path)
    with pytest.raises(ValueError):
        verify_dataset(tmp_path)
    assert inside("fog/1/UCF-101/A/v.avi")


def test_a_manifest_corruption_name_cannot_be_a_path(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"files": [{"path": "x", "corruption": "../..", "severity": 1}]}))
    with pytest.raises(ValueError, match="not a plain folder name"):
        discover_corrupted(tmp_path)
