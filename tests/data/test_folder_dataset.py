import shutil
from pathlib import Path

import pytest

from vidsparse.data.datasets import (
    UCF101,
    DatasetFormatError,
    Kinetics,
    VideoFolder,
    build_dataset,
    detect_layout,
    folder_index,
)


def _folder_tree(root: Path, video: Path, files: list[str]) -> Path:
    for relative in files:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(video, root / relative)
    return root


@pytest.fixture
def video(synthetic_kinetics) -> Path:
    return sorted(synthetic_kinetics.glob("train/*/*.mp4"))[0]


def test_class_folders_without_splits(tmp_path, video):
    root = _folder_tree(tmp_path / "f", video, [
        "dog/b.mp4", "dog/a.AVI", "cat/x.webm", "cat/y.mkv", "bird/z.mp4"])
    (root / "dog" / "notes.txt").write_text("not a video")
    (root / "dog" / ".hidden.mp4").touch()
    samples, classes, base = folder_index(root, "test")
    assert classes == ["bird", "cat", "dog"] and base == root
    assert samples == [(root / "bird" / "z.mp4", 0), (root / "cat" / "x.webm", 1),
                       (root / "cat" / "y.mkv", 1), (root / "dog" / "a.AVI", 2),
                       (root / "dog" / "b.mp4", 2)]
    with pytest.warns(UserWarning, match="no split folders .* the test split reads every video"):
        ds = VideoFolder(root, split="test", frames_per_clip=2)
    assert len(ds) == 5 and ds.skipped == [] and ds[3][1] == 2
    assert ds[3][0].shape == (2, 48, 64, 3)


def test_split_folders_share_one_class_numbering(tmp_path, video):
    root = _folder_tree(tmp_path / "f", video, [
        "train/cat/1.mp4", "train/dog/2.mp4", "val/dog/3.mp4", "val/emu/4.mp4"])
    ds = VideoFolder(root, split="validate")
    assert ds.classes == ["cat", "dog", "emu"]
    assert ds.samples == [(root / "val" / "dog" / "3.mp4", 1), (root / "val" / "emu" / "4.mp4", 2)]
    assert len(VideoFolder(root, split="train")) == 2
    with pytest.raises(FileNotFoundError, match=r"split folder .*f/test not found \(split "
                                                r"folders present: train, val\)"):
        VideoFolder(root, split="test")


def test_folder_errors_name_the_root(tmp_path, video):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: no class folders"):
        folder_index(tmp_path / "empty")
    (tmp_path / "novideo" / "cat").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"novideo: no videos"):
        folder_index(tmp_path / "novideo")
    root = _folder_tree(tmp_path / "bad", video, [])
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(DatasetFormatError, match=r"none of its 1 videos is usable .*broken\.mp4"):
        with pytest.warns(UserWarning):
            VideoFolder(root, split="train")


def test_detect_layout_on_each_layout(tmp_path, synthetic_ucf101, synthetic_kinetics, video):
    assert detect_layout(synthetic_ucf101) == "ucf101"
    assert detect_layout(synthetic_kinetics) == "kinetics"
    flat = _folder_tree(tmp_path / "flat", video, ["cat/a.mp4"])
    split = _folder_tree(tmp_path / "split", video, ["train/cat/a.mp4", "test/cat/b.mp4"])
    assert detect_layout(flat) == "folder" and detect_layout(split) == "folder"
    csv_root = tmp_path / "csv"
    csv_root.mkdir()
    (csv_root / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\n")
    assert detect_layout(csv_root) == "kinetics"
    # UCF101 needs both of its folders
    half = _folder_tree(tmp_path / "half", video, ["UCF-101/Cls/v.avi"])
    with pytest.raises(DatasetFormatError, match="cannot tell the layout of .*half"):
        detect_layout(half)
    (tmp_path / "nothing" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetFormatError, match=r"cannot tell the layout of .*nothing: looked "
                                                 r"for ucfTrainTestlist/ \+ UCF-101/ .*"
                                                 r"train\.csv.*annotations/"):
        detect_layout(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="dataset root .*missing does not exist"):
        detect_layout(tmp_path / "missing")


def test_build_dataset_auto(tmp_path, synthetic_ucf101, synthetic_kinetics, video):
    def build(root, split, **cfg):
        return build_dataset({"root": str(root), "layout": "auto", **cfg}, split)

    assert isinstance(build(synthetic_ucf101, "test", fold=1), UCF101)
    kinetics = build(synthetic_kinetics, "validate", frames_per_clip=4)
    assert isinstance(kinetics, Kinetics) and kinetics.frames_per_clip == 4
    split = _folder_tree(tmp_path / "split", video, ["train/cat/a.mp4", "test/dog/b.mp4"])
    folder = build(split, "test")
    assert isinstance(folder, VideoFolder) and folder.samples == [(split / "test/dog/b.mp4", 1)]
    # an explicit layout overrides detection
    with pytest.raises(FileNotFoundError, match="UCF-101 not found"):
        build_dataset({"root": str(split), "layout": "ucf101"}, "test")
    with pytest.raises(DatasetFormatError, match="cannot tell the layout"):
        build(tmp_path, "test")  # only folders of folders
