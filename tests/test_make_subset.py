"""data_tools/make_subset.py end to end on the tiny synthetic UCF101 fixture."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from vidsparse.data import UCF101
from vidsparse.data.datasets import ucf101_classes

SCRIPT = Path(__file__).resolve().parents[1] / "data_tools" / "make_subset.py"
spec = importlib.util.spec_from_file_location("make_subset", SCRIPT)
tool = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = tool
spec.loader.exec_module(tool)


def _subset(src, dst, *args):
    return tool.main(["--src", str(src), "--dst", str(dst), *map(str, args)])


def _listing(dst: Path) -> dict[str, str]:
    lists = dst / "ucfTrainTestlist"
    return {p.name: p.read_text() for p in sorted(lists.iterdir())}


def test_subset_loads_with_remapped_labels(synthetic_ucf101, tmp_path):
    # The fixture: MoveDown, MoveLeft, MoveRight x 6 videos, 4 train + 2 test per class.
    dst = tmp_path / "sub"
    manifest = _subset(synthetic_ucf101, dst, "--classes", 2, "--videos-per-class", 3)
    source_classes = ucf101_classes(synthetic_ucf101)
    assert len(manifest["classes"]) == 2 and set(manifest["classes"]) <= set(source_classes)
    # classInd keeps the source order; labels are 0..1 in that order.
    assert manifest["classes"] == [c for c in source_classes if c in manifest["classes"]]
    assert ucf101_classes(dst) == manifest["classes"]
    # 3 per class: round(3 * 2 / 6) = 1 test and 2 train videos per class.
    assert manifest["split_counts"] == {"testlist01.txt": 2, "trainlist01.txt": 4}
    assert manifest["source"] == str(synthetic_ucf101.resolve()) and manifest["seed"] == 0
    assert json.loads((dst / "subset_manifest.json").read_text()) == manifest
    for split, per_class in (("train", 2), ("test", 1)):
        ds = UCF101(dst, split=split)
        labels = [label for _, label in ds.samples]
        assert sorted(labels) == sorted([0, 1] * per_class)
        for path, label in ds.samples:
            # Label i <-> the i-th chosen class <-> the class folder and the file name.
            assert path.parent.name == manifest["classes"][label]
            assert path.is_symlink()
            target = path.resolve()
            assert target == (synthetic_ucf101 / "UCF-101" / path.parent.name / path.name)
            assert target.is_file()
        clip, label = ds[0]
        assert clip.shape == (8, 48, 64, 3) and 0 <= label < 2
    # Train lines carry the new 1-based label.
    for line in (dst / "ucfTrainTestlist" / "trainlist01.txt").read_text().split("\n")[:-1]:
        relative, number = line.split()
        assert manifest["classes"][int(number) - 1] == relative.split("/")[0]


def test_same_seed_same_subset_and_seeds_differ(synthetic_ucf101, tmp_path):
    first = _subset(synthetic_ucf101, tmp_path / "a", "--classes", 2, "--videos-per-class", 3)
    again = _subset(synthetic_ucf101, tmp_path / "b", "--classes", 2, "--videos-per-class", 3)
    assert _listing(tmp_path / "a") == _listing(tmp_path / "b")
    assert first == again
    others = {json.dumps(_listing(tmp_path / f"s{seed}")) for seed in range(1, 6)
              if _subset(synthetic_ucf101, tmp_path / f"s{seed}", "--classes", 2,
                         "--videos-per-class", 3, "--seed", seed)}
    assert len(others | {json.dumps(_listing(tmp_path / "a"))}) > 1


def test_class_list_and_copy(synthetic_ucf101, tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("moveright\nMoveDown\n")  # any order and case; classInd order wins
    dst = tmp_path / "sub"
    manifest = _subset(synthetic_ucf101, dst, "--class-list", names, "--copy")
    assert manifest["classes"] == ["MoveDown", "MoveRight"]
    assert manifest["source_labels"] == {"MoveDown": 0, "MoveRight": 2}
    assert manifest["split_counts"] == {"testlist01.txt": 4, "trainlist01.txt": 8}
    train = UCF101(dst, split="train")
    assert [train.classes[label] for _, label in train.samples].count("MoveRight") == 4
    for path, _ in train.samples:
        assert path.is_file() and not path.is_symlink()
        assert path.read_bytes() == (synthetic_ucf101 / "UCF-101" / path.parent.name
                                     / path.name).read_bytes()


@pytest.mark.parametrize("args, message", [
    (["--classes", 4], "source has 3 classes"),
    (["--classes", 2, "--videos-per-class", 7], "has only 6 videos"),
    (["--class-list", "LIST"], "class 'MoveUp' is not in"),
    (["--classes", 2, "--layout", "kinetics"], "kinetics subsets need"),
])
def test_clear_errors(synthetic_ucf101, tmp_path, capsys, args, message):
    (tmp_path / "LIST").write_text("MoveDown\nMoveUp\n")
    args = [str(tmp_path / "LIST") if a == "LIST" else a for a in args]
    with pytest.raises(SystemExit):
        _subset(synthetic_ucf101, tmp_path / "sub", *args)
    assert message in capsys.readouterr().err
    assert not (tmp_path / "sub").exists()
    assert not list(tmp_path.glob(".sub.partial-*"))


def test_refuses_a_non_empty_destination(synthetic_ucf101, tmp_path, capsys):
    dst = tmp_path / "sub"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit):
        _subset(synthetic_ucf101, dst, "--classes", 1)
    assert "not empty" in capsys.readouterr().err and (dst / "keep.txt").exists()
