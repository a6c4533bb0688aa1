import csv
import shutil
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidsparse.data.datasets import (
    DatasetFormatError,
    Kinetics,
    build_dataset,
    kinetics_classes,
    kinetics_index,
)
from vidsparse.data.decode import read_frames, video_info
from vidsparse.data.synthetic import kinetics_label, youtube_id

CLASSES = ["move down", "move left", "move right"]
HEADER = "label,youtube_id,time_start,time_end,split,is_cc\n"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".vidsparse_index*"))
    return dst


def _a_video(root: Path) -> Path:
    return sorted((root / "train").rglob("*.mp4"))[0]


def _write_audio_only(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 16000
        for _ in range(4):
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_synthetic_csvs_and_files(synthetic_kinetics):
    rows = list(csv.reader((synthetic_kinetics / "annotations" / "train.csv").open()))
    assert rows[0] == ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
    assert len(rows) == 10
    # Picked from the file by hand (seed 0): a train row of "move left".
    assert ["move left", "030XVms-mhb", "202", "212", "train", "0"] in rows
    assert (synthetic_kinetics / "train" / "move left" / "030XVms-mhb_000202_000212.mp4").is_file()
    assert all(len(row[1]) == 11 for row in rows[1:])
    info = video_info(synthetic_kinetics / "validate" / "move right" /
                      "VagcBldnmNl_000293_000303.mp4")
    assert (info.num_frames, info.height, info.width) == (16, 48, 64)
    assert kinetics_label("RotateCounterClockwise") == "rotate counter clockwise"
    assert youtube_id(0, 1, 1) == "030XVms-mhb"


def test_index_labels_from_the_sorted_train_labels(synthetic_kinetics):
    assert kinetics_classes(synthetic_kinetics) == CLASSES
    train, missing = kinetics_index(synthetic_kinetics, "train")
    assert missing == [] and len(train) == 9
    assert (synthetic_kinetics / "train" / "move left" / "030XVms-mhb_000202_000212.mp4",
            1) in train
    validate, _ = kinetics_index(synthetic_kinetics, "validate")
    assert (synthetic_kinetics / "validate" / "move right" / "VagcBldnmNl_000293_000303.mp4",
            2) in validate
    assert sorted(label for _, label in validate) == [0, 1, 2]


def test_dataset_reads_centred_clips(synthetic_kinetics):
    ds = Kinetics(synthetic_kinetics, split="val", frames_per_clip=4, sampling_rate=3)
    assert (ds.classes, ds.num_classes, len(ds), ds.skipped) == (CLASSES, 3, 3, [])
    clip, label = ds[2]
    assert label == 2 and clip.dtype == torch.uint8 and clip.shape == (4, 48, 64, 3)
    # 16 frames, 4 x every 3rd spans 10: the centred clip starts at (16 - 10) // 2 = 3.
    assert np.array_equal(clip.numpy(), read_frames(ds.samples[2][0], [3, 6, 9, 12]))
    train = build_dataset({"root": str(synthetic_kinetics), "layout": "kinetics", "seed": 3},
                          "train")
    assert isinstance(train, Kinetics) and len(train) == 9 and train.seed == 3


def _fake_kinetics(root: Path, video: Path, csvs: dict[str, str], files: list[str]) -> Path:
    root.mkdir(parents=True)
    for relative, text in csvs.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    for relative in files:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(video, root / relative)
    return root


def test_quoted_labels_flat_and_underscored_folders_and_val_names(tmp_path, synthetic_kinetics):
    video = _a_video(synthetic_kinetics)
    football = "passing American football (in game)"
    root = _fake_kinetics(tmp_path / "k", video, {
        "train.csv": HEADER + f'"{football}",abcdefghijk,14,24,train,0\n'
                              '"dancing ""the"" twist, fast",-bcdefghijk,0,10,train,1\n'
                              'abseiling,0123456789_,3.0,13,train,0\n',
        "val.csv": "label,youtube_id,time_start,time_end,split\r\n"
                   f'"{football}",zzzzzzzzzzz,1,11,val\r\n',
    }, [
        # the downloaders' folder spelling: spaces to underscores, no parentheses
        "train/passing_American_football_in_game/abcdefghijk_000014_000024.mp4",
        "train/-bcdefghijk_000000_000010.mp4",  # flat
        "train/abseiling/0123456789__000003_000013.mkv",  # another container
        "val/zzzzzzzzzzz_000001_000011.mp4",
    ])
    classes = kinetics_classes(root)
    assert classes == ["abseiling", 'dancing "the" twist, fast', football]
    train, missing = kinetics_index(root, "train")
    assert missing == []
    assert train == [
        (root / "train" / "passing_American_football_in_game" / "abcdefghijk_000014_000024.mp4", 2),
        (root / "train" / "-bcdefghijk_000000_000010.mp4", 1),
        (root / "train" / "abseiling" / "0123456789__000003_000013.mkv", 0),
    ]
    ds = Kinetics(root, split="validate")
    assert ds.samples == [(root / "val" / "zzzzzzzzzzz_000001_000011.mp4", 2)]


def test_test_csv_without_labels_is_refused(tmp_path, synthetic_kinetics):
    root = _copy(synthetic_kinetics, tmp_path / "k")
    (root / "annotations" / "test.csv").write_text(
        "youtube_id,time_start,time_end,split\nabcdefghijk,0,10,test\n")
    (root / "test").mkdir()
    with pytest.raises(DatasetFormatError, match=r"test\.csv has no label column: the labels "
                                                 r"of this Kinetics test split are unknown"):
        Kinetics(root, split="test")


@pytest.mark.parametrize("csv_text, match", [
    ("label,youtube_id,time_start,split\nmove left,abcdefghijk,0,validate\n",
     r"validate\.csv:1: header .* lacks column\(s\) time_end"),
    (HEADER + "move left,abcdefghijk,0,10,validate,0\nskating,bcdefghijkl,0,10,validate,0\n",
     r"validate\.csv:3: label 'skating' is not a class of the train CSV"),
    (HEADER + "move left,abcdefghijk,zero,10,validate,0\n",
     r"validate\.csv:2: time 'zero' is not a number"),
    (HEADER + ",abcdefghijk,0,10,validate,0\n", r"validate\.csv:2: empty label"),
    (HEADER + "move left,abcdefghijk,0,10,validate,0,extra\n",
     r"validate\.csv:2: more fields than the header"),
    (HEADER, r"validate\.csv: no videos listed"),
])
def test_malformed_csv_names_file_and_line(tmp_path, synthetic_kinetics, csv_text, match):
    root = _copy(synthetic_kinetics, tmp_path / "k")
    (root / "annotations" / "validate.csv").write_text(csv_text)
    with pytest.raises(DatasetFormatError, match=match):
        Kinetics(root, split="validate")


def test_missing_pieces_and_bad_arguments(tmp_path, synthetic_kinetics):
    with pytest.raises(FileNotFoundError, match=r"test annotations not found; looked for .*"
                                                r"kinetics0/test\.csv, .*0/annotations/test\.csv"):
        Kinetics(synthetic_kinetics, split="test")
    with pytest.raises(ValueError, match="Kinetics split must be one of train, validate, val, "
                                         "test, got 'dev'"):
        Kinetics(synthetic_kinetics, split="dev")
    with pytest.raises(ValueError, match="fold must be 1"):
        Kinetics(synthetic_kinetics, fold=2)
    root = _copy(synthetic_kinetics, tmp_path / "k")
    shutil.rmtree(root / "validate")
    with pytest.raises(FileNotFoundError, match=r"validate videos not found: no folder "
                                                r".*k/validate or .*k/val"):
        Kinetics(root, split="validate")


def _broken_copy(tmp_path: Path, synthetic_kinetics: Path) -> tuple[Path, dict[str, str]]:
    """A copy whose validate.csv also lists a missing, an empty, a truncated and an
    audio-only video; returns (root, {file name: expected reason prefix})."""
    root = _copy(synthetic_kinetics, tmp_path / "k")
    folder = root / "validate" / "move left"
    good = _a_video(root).read_bytes()
    (folder / "emptyemptyy_000000_000010.mp4").touch()
    (folder / "truncatedvv_000000_000010.mp4").write_bytes(good[: len(good) // 3])
    _write_audio_only(folder / "audioonlyvv_000000_000010.mp4")
    with (root / "annotations" / "validate.csv").open("a") as handle:
        for video_id in ("goneeeeeeee", "emptyemptyy", "truncatedvv", "audioonlyvv"):
            handle.write(f"move left,{video_id},0,10,validate,0\n")
    return root, {
        "goneeeeeeee_000000_000010.mp4": "missing: not found as validate/move left/",
        "emptyemptyy_000000_000010.mp4": "empty file (0 bytes)",
        "truncatedvv_000000_000010.mp4": "undecodable: cannot open video",
        "audioonlyvv_000000_000010.mp4": "undecodable: ",
    }


def test_bad_videos_are_skipped_listed_and_reported(tmp_path, synthetic_kinetics):
    root, expected = _broken_copy(tmp_path, synthetic_kinetics)
    with pytest.warns(UserWarning, match=r"validate\.csv: skipped 4 of 7 videos") as record:
        ds = Kinetics(root, split="validate")
    assert len(record) == 1
    assert len(ds) == 3 and sorted(label for _, label in ds.samples) == [0, 1, 2]
    reasons = {path.name: reason for path, reason in ds.skipped}
    assert reasons.keys() == expected.keys()
    for name, prefix in expected.items():
        assert reasons[name].startswith(prefix), (name, reasons[name])
    assert "has no video stream" in reasons["audioonlyvv_000000_000010.mp4"]
    for path, _ in ds.skipped:
        assert path.parent == root / "validate" / "move left"
    report = root / ".vidsparse_index.skipped-validate.tsv"
    assert str(report) in str(record[0].message)
    lines = report.read_text().splitlines()
    assert len(lines) == 4
    assert f"{root / 'validate' / 'move left' / 'emptyemptyy_000000_000010.mp4'}\tempty file" \
        in "\n".join(lines)
    # The items that remain decode.
    assert ds[0][0].shape == (8, 48, 64, 3)


def test_a_dataset_of_only_bad_videos_is_an_error(tmp_path, synthetic_kinetics):
    root, _ = _broken_copy(tmp_path, synthetic_kinetics)
    lines = (root / "annotations" / "validate.csv").read_text().splitlines()
    (root / "annotations" / "validate.csv").write_text("\n".join([lines[0], *lines[-4:]]) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DatasetFormatError, match=r"validate\.csv: none of its 4 videos is "
                                                     r"usable .*goneeeeeeee"):
            Kinetics(root, split="validate")


def test_make_synthetic_cli_kinetics_layout(tmp_path, monkeypatch, capsys):
    import runpy
    import sys

    script = Path(__file__).resolve().parents[2] / "data_tools" / "make_synthetic.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--out", str(tmp_path), "--layout", "kinetics",
                                      "--classes", "2", "--videos-per-class", "2", "--frames", "3",
                                      "--width", "32", "--height", "32"])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "wrote 4 videos (2 train, 2 validate) in the kinetics layout" in out
    assert "classes (2): move down, move left" in out
    assert sorted(p.relative_to(tmp_path).parts[:2] for p in tmp_path.rglob("*.mp4")) == [
        ("train", "move down"), ("train", "move left"),
        ("validate", "move down"), ("validate", "move left")]
    assert Kinetics(tmp_path, split="train").samples[1][1] == 1
