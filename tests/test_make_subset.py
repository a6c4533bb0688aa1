"""data_tools/make_subset.py end to end on the tiny synthetic UCF101 and Kinetics fixtures."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from vidsparse.data import UCF101, Kinetics
from vidsparse.data.datasets import kinetics_classes, ucf101_classes

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
    (["--classes", 2, "--layout", "kinetics"], "Kinetics train annotations not found"),
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


# --------------------------------------------------------------------------- Kinetics


def _csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _csvs(dst: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((dst / "annotations").iterdir())}


def test_kinetics_subset_loads(synthetic_kinetics, tmp_path):
    # The fixture: "move down", "move left", "move right" x 4 videos, 3 train + 1 validate.
    dst = tmp_path / "sub"
    manifest = _subset(synthetic_kinetics, dst, "--classes", 2, "--videos-per-class", 2,
                       "--layout", "kinetics")
    source_classes = kinetics_classes(synthetic_kinetics)
    assert manifest["layout"] == "kinetics" and len(manifest["classes"]) == 2
    assert manifest["classes"] == [c for c in source_classes if c in manifest["classes"]]
    assert manifest["source_labels"] == {c: source_classes.index(c) for c in manifest["classes"]}
    # 2 train per class; validate keeps the source's 1:3 share, at least one: 1 per class.
    assert manifest["split_counts"] == {"train.csv": 4, "validate.csv": 2}
    assert manifest["missing"] == {"train.csv": 0, "validate.csv": 0} and manifest["videos"] == 6
    assert json.loads((dst / "subset_manifest.json").read_text()) == manifest
    for split, per_class in (("train", 2), ("validate", 1)):
        ds = Kinetics(dst, split=split)
        assert ds.classes == manifest["classes"] and not ds.skipped
        assert sorted(label for _, label in ds.samples) == sorted([0, 1] * per_class)
        source = _csv(synthetic_kinetics / "annotations" / f"{split}.csv")
        rows = _csv(dst / "annotations" / f"{split}.csv")
        assert rows[0] == source[0] and len(rows) == 2 * per_class + 1
        assert all(row in source[1:] for row in rows[1:])
        for path, label in ds.samples:
            relative = path.relative_to(dst)
            # Nested, as in the source.
            assert relative.parts[:2] == (split, manifest["classes"][label])
            assert path.is_symlink() and path.resolve() == synthetic_kinetics / relative
        clip, label = ds[0]
        assert clip.shape == (8, 48, 64, 3) and 0 <= label < 2


def test_kinetics_same_seed_same_csvs(synthetic_kinetics, tmp_path):
    args = ("--classes", 2, "--videos-per-class", 2)
    first = _subset(synthetic_kinetics, tmp_path / "a", *args)
    assert first == _subset(synthetic_kinetics, tmp_path / "b", *args)
    assert _csvs(tmp_path / "a") == _csvs(tmp_path / "b")
    others = {json.dumps(_csvs(tmp_path / f"s{seed}")) for seed in range(1, 6)
              if _subset(synthetic_kinetics, tmp_path / f"s{seed}", *args, "--seed", seed)}
    assert len(others | {json.dumps(_csvs(tmp_path / "a"))}) > 1


def test_kinetics_class_list_auto_layout_and_copy(synthetic_kinetics, tmp_path):
    names = tmp_path / "mini_kinetics.txt"
    names.write_text("move right\nMove Down\n\n")
    manifest = _subset(synthetic_kinetics, tmp_path / "sub", "--class-list", names, "--copy")
    assert manifest["layout"] == "kinetics" and manifest["classes"] == ["move down", "move right"]
    assert manifest["split_counts"] == {"train.csv": 6, "validate.csv": 2}
    train = Kinetics(tmp_path / "sub", split="train")
    assert train.classes == ["move down", "move right"] and len(train) == 6
    for path, _ in train.samples:
        assert path.is_file() and not path.is_symlink()
        assert path.read_bytes() == (synthetic_kinetics / path.relative_to(tmp_path / "sub")
                                     ).read_bytes()


def test_kinetics_class_list_with_underscores(synthetic_kinetics, tmp_path):
    # Class lists such as Yi et al.'s Mini-Kinetics-200 spell Kinetics' labels with underscores.
    names = tmp_path / "classes.txt"
    names.write_text("move_right\nMove_Down\n")
    manifest = _subset(synthetic_kinetics, tmp_path / "sub", "--class-list", names)
    assert manifest["classes"] == ["move down", "move right"]
    assert Kinetics(tmp_path / "sub", split="train").classes == ["move down", "move right"]


SHIPPED = SCRIPT.parent / "class_lists" / "mini_kinetics_200.txt"


def test_the_shipped_mini_kinetics_list_selects_kinetics_spaced_labels(tmp_path):
    # Kinetics-400's annotation CSVs spell labels with spaces ("passing American football (not
    # in game)"); the shipped list (Yi et al.'s data/mini-kinetics-200-classes.txt) uses "_".
    listed = SHIPPED.read_text(encoding="utf-8").splitlines()
    assert len(listed) == 200 == len(set(listed))
    spaced = [name.replace("_", " ") for name in listed]
    assert "passing American football (not in game)" in spaced
    source = sorted(spaced + ["passing American football (in game)", "zumba dancing"])
    chosen = tool.choose_classes(source, None, SHIPPED, None, "train CSV labels")
    assert chosen == sorted(spaced)


def test_a_class_list_name_matching_two_labels_is_an_error(tmp_path):
    names = _names(tmp_path, "move-left")
    with pytest.raises(tool.SubsetError, match="'move-left' matches several of the source's "
                                               "train CSV labels: 'move left', 'move_left'"):
        tool.choose_classes(["move left", "move_left", "move right"], None, names, None,
                            "train CSV labels")
    # An exact or case-only match is never ambiguous.
    assert tool.choose_classes(["move left", "move_left"], None, _names(tmp_path, "Move_Left"),
                               None, "train CSV labels") == ["move_left"]


def test_kinetics_unknown_label_is_named(synthetic_kinetics, tmp_path, capsys):
    names = tmp_path / "classes.txt"
    names.write_text("move down\nmove up\n")
    with pytest.raises(SystemExit):
        _subset(synthetic_kinetics, tmp_path / "sub", "--class-list", names)
    assert "class 'move up' is not in the source's train CSV labels" in capsys.readouterr().err
    assert not (tmp_path / "sub").exists() and not list(tmp_path.glob(".sub.partial-*"))


def test_kinetics_flat_odd_labels_and_missing_videos(synthetic_kinetics, tmp_path):
    # A flat source (<split>/<video>, as cvdfoundation's archives unpack) with "val" names, a
    # label with spaces, quotes and parentheses, and one train video gone.
    src = tmp_path / "src"
    odd = 'passing "American" football (in game), down'
    for split, name in (("train", "train"), ("validate", "val")):
        (src / name).mkdir(parents=True)
        for video in sorted((synthetic_kinetics / split).glob("*/*.mp4")):
            shutil.copy(video, src / name / video.name)
        rows = _csv(synthetic_kinetics / "annotations" / f"{split}.csv")
        rows = [rows[0]] + [[odd if r[0] == "move down" else r[0], *r[1:]] for r in rows[1:]]
        with open(src / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    gone = next(r for r in _csv(src / "train.csv")[1:] if r[0] == odd)
    (src / "train" / f"{gone[1]}_{int(gone[2]):06d}_{int(gone[3]):06d}.mp4").unlink()
    (tmp_path / "list.txt").write_text(f"{odd}\nmove left\n")

    dst = tmp_path / "sub"
    manifest = _subset(src, dst, "--class-list", tmp_path / "list.txt")
    assert manifest["classes"] == ["move left", odd]
    assert manifest["missing"] == {"train.csv": 1, "val.csv": 0}
    assert manifest["split_counts"] == {"train.csv": 5, "val.csv": 2}
    assert sorted(p.name for p in (dst / "annotations").iterdir()) == ["train.csv", "val.csv"]
    assert gone not in _csv(dst / "annotations" / "train.csv")
    for split, count in (("train", 5), ("val", 2)):
        ds = Kinetics(dst, split=split)
        assert ds.classes == ["move left", odd] and len(ds) == count and not ds.skipped
        rows = _csv(dst / "annotations" / f"{split}.csv")
        assert all(row in _csv(src / f"{split}.csv") for row in rows)
        for path, _ in ds.samples:
            assert path.parent == dst / split and path.resolve() == src / split / path.name


# --------------------------------------------------------------------------- bad videos


def _damaged_ucf101(src: Path, dst: Path) -> dict[str, str]:
    """A copy of ``src`` with three of MoveDown's four train videos broken; returns each broken
    one's path in the subset with the start of the reason it is skipped for."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".vidsparse_index*"))
    videos = dst / "UCF-101" / "MoveDown"
    (videos / "v_MoveDown_g03_c01.avi").write_bytes(b"")
    with open(videos / "v_MoveDown_g04_c01.avi", "r+b") as handle:
        handle.truncate(200)
    (videos / "v_MoveDown_g05_c01.avi").write_bytes(bytes(range(256)) * 20)
    return {"UCF-101/MoveDown/v_MoveDown_g03_c01.avi": "empty file (0 bytes)",
            "UCF-101/MoveDown/v_MoveDown_g04_c01.avi": "undecodable: ",
            "UCF-101/MoveDown/v_MoveDown_g05_c01.avi": "undecodable: "}


def test_bad_videos_are_skipped_with_their_reason_and_the_rest_loads(synthetic_ucf101, tmp_path):
    src = tmp_path / "src"
    broken = _damaged_ucf101(synthetic_ucf101, src)
    manifest = _subset(src, tmp_path / "all", "--classes", 3)
    assert manifest["skipped"].keys() == broken.keys()
    for relative, reason in broken.items():
        assert manifest["skipped"][relative].startswith(reason), manifest["skipped"][relative]
    # 18 videos, 3 left out, all of them train videos of MoveDown.
    assert manifest["videos"] == 15
    assert manifest["split_counts"] == {"testlist01.txt": 6, "trainlist01.txt": 9}
    train = UCF101(tmp_path / "all", split="train")
    assert not train.skipped and len(train) == 9
    assert [path.name for path, label in train.samples if label == 0] == ["v_MoveDown_g06_c01.avi"]
    assert json.loads((tmp_path / "all" / "subset_manifest.json").read_text()) == manifest


def test_the_summary_counts_and_names_the_skipped_videos(synthetic_ucf101, tmp_path, capsys):
    src = tmp_path / "src"
    broken = _damaged_ucf101(synthetic_ucf101, src)
    _subset(src, tmp_path / "sub", "--class-list", _names(tmp_path, "MoveDown"))
    err = capsys.readouterr().err
    assert "wrote" in err and "3 skipped (missing, empty or undecodable)" in err
    for relative, reason in broken.items():
        assert f"skipped {relative}: {reason}" in err, err


def _names(tmp_path: Path, *classes: str) -> Path:
    path = tmp_path / "classes.txt"
    path.write_text("".join(f"{c}\n" for c in classes))
    return path


def test_a_drawn_bad_video_is_replaced_by_a_good_one(synthetic_ucf101, tmp_path):
    src = tmp_path / "src"
    broken = _damaged_ucf101(synthetic_ucf101, src)
    skipped_somewhere = set()
    for seed in range(4):
        # 2 videos: round(2 * 2 / 6) = 1 test and 1 train; the one usable train video is g06.
        manifest = _subset(src, tmp_path / f"s{seed}", "--class-list",
                           _names(tmp_path, "MoveDown"), "--videos-per-class", 2, "--seed", seed)
        assert manifest["split_counts"] == {"testlist01.txt": 1, "trainlist01.txt": 1}
        assert (tmp_path / f"s{seed}" / "ucfTrainTestlist" / "trainlist01.txt").read_text() \
            == "MoveDown/v_MoveDown_g06_c01.avi 1\n"
        # Only the broken videos the draw hit were opened, and each is reported.
        assert manifest["skipped"].keys() <= broken.keys()
        for relative, reason in manifest["skipped"].items():
            assert reason.startswith(broken[relative])
        skipped_somewhere |= manifest["skipped"].keys()
    assert skipped_somewhere, "no seed drew a broken video: the replacement was not exercised"


def test_no_check_leaves_out_only_missing_and_empty_videos(synthetic_ucf101, tmp_path):
    src = tmp_path / "src"
    _damaged_ucf101(synthetic_ucf101, src)
    manifest = _subset(src, tmp_path / "sub", "--class-list", _names(tmp_path, "MoveDown"),
                       "--no-check")
    assert manifest["check"] is False
    assert manifest["skipped"] == {"UCF-101/MoveDown/v_MoveDown_g03_c01.avi": "empty file (0 bytes)"}
    assert manifest["videos"] == 5
    assert not (src / ".vidsparse_index.json").exists()  # nothing was decoded


@pytest.mark.parametrize("which, message", [
    ("all", "none of the 18 chosen videos under SRC is usable (missing, empty or undecodable), "
            "e.g. UCF-101/MoveDown/v_MoveDown_g01_c01.avi: empty file (0 bytes)"),
    ("MoveLeft", "class 'MoveLeft' has no usable video under SRC/UCF-101: "
                 "MoveLeft/v_MoveLeft_g01_c01.avi: empty file (0 bytes)"),
])
def test_a_source_or_class_with_no_usable_video_is_a_clear_error(synthetic_ucf101, tmp_path, capsys,
                                                                  which, message):
    src = tmp_path / "src"
    shutil.copytree(synthetic_ucf101, src, ignore=shutil.ignore_patterns(".vidsparse_index*"))
    for video in (src / "UCF-101").glob("*/*.avi"):
        if which in ("all", video.parent.name):
            video.write_bytes(b"")
    with pytest.raises(SystemExit):
        _subset(src, tmp_path / "sub", "--classes", 3)
    assert message.replace("SRC", str(src.resolve())) in capsys.readouterr().err
    assert not (tmp_path / "sub").exists() and not list(tmp_path.glob(".sub.partial-*"))


def test_a_video_a_ucf101_list_names_but_the_disk_lacks_is_an_error(synthetic_ucf101, tmp_path,
                                                                     capsys):
    # As for the UCF101 loader: the lists are the dataset, and UCF101 ships complete.
    src = tmp_path / "src"
    shutil.copytree(synthetic_ucf101, src, ignore=shutil.ignore_patterns(".vidsparse_index*"))
    (src / "UCF-101" / "MoveLeft" / "v_MoveLeft_g04_c01.avi").unlink()
    with pytest.raises(SystemExit):
        _subset(src, tmp_path / "sub", "--classes", 3)
    err = capsys.readouterr().err
    assert "trainlist01.txt:" in err and "MoveLeft/v_MoveLeft_g04_c01.avi not found" in err
    assert not (tmp_path / "sub").exists()


def test_kinetics_bad_videos_are_skipped_and_missing_ones_counted(synthetic_kinetics, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(synthetic_kinetics, src, ignore=shutil.ignore_patterns(".vidsparse_index*"))
    down = sorted((src / "train" / "move down").glob("*.mp4"))
    assert len(down) == 3
    down[0].write_bytes(b"")
    down[1].write_bytes(b"This is a text file, not a video.\n" * 20)
    down[2].unlink()
    left = sorted((src / "train" / "move left").glob("*.mp4"))
    with open(left[0], "r+b") as handle:
        handle.truncate(100)
    # "move down" has no usable train video left: a clear error naming each reason.
    with pytest.raises(tool.SubsetError, match=r"class 'move down' has no usable train video") \
            as error:
        tool.make_subset(src, tmp_path / "none", num_classes=3)
    assert f"{down[0].relative_to(src).as_posix()}: empty file (0 bytes)" in str(error.value)
    assert f"{down[1].relative_to(src).as_posix()}: undecodable: " in str(error.value)
    assert not (tmp_path / "none").exists()
    manifest = tool.make_subset(src, tmp_path / "sub",
                                class_list=_names(tmp_path, "move left", "move right"))
    relative = left[0].relative_to(src).as_posix()
    assert list(manifest["skipped"]) == [relative]
    assert manifest["skipped"][relative].startswith("undecodable: ")
    assert manifest["missing"] == {"train.csv": 0, "validate.csv": 0}
    assert manifest["split_counts"] == {"train.csv": 5, "validate.csv": 2}
    train = Kinetics(tmp_path / "sub", split="train")
    assert len(train) == 5 and not train.skipped
