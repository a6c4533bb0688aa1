from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidsparse.data.datasets import (
    UCF101,
    DatasetFormatError,
    build_dataset,
    ucf101_classes,
    ucf101_index,
)
from vidsparse.data.decode import read_frames
from vidsparse.data.transforms import VideoTransform

CLASSES = ["MoveDown", "MoveLeft", "MoveRight"]


def _position(dataset, relative):
    paths = [p.relative_to(dataset.root / "UCF-101").as_posix() for p, _ in dataset.samples]
    return paths.index(relative)


def test_classes_follow_classind(synthetic_ucf101):
    assert ucf101_classes(synthetic_ucf101) == CLASSES


def test_index_labels_known_files(synthetic_ucf101):
    videos = synthetic_ucf101 / "UCF-101"
    train = ucf101_index(synthetic_ucf101, "train")
    test = ucf101_index(synthetic_ucf101, "test")
    assert len(train) == 12 and len(test) == 6
    # "MoveLeft/v_MoveLeft_g03_c01.avi 2" in trainlist01.txt: 1-based 2 -> label 1.
    assert (videos / "MoveLeft" / "v_MoveLeft_g03_c01.avi", 1) in train
    # "MoveRight/v_MoveRight_g01_c01.avi" in testlist01.txt: MoveRight is class 3 -> label 2.
    assert (videos / "MoveRight" / "v_MoveRight_g01_c01.avi", 2) in test
    assert not {p for p, _ in train} & {p for p, _ in test}
    assert sorted(label for _, label in test) == [0, 0, 1, 1, 2, 2]


def test_test_clip_without_transform_is_the_centred_uint8_clip(synthetic_ucf101):
    ds = UCF101(synthetic_ucf101, split="test")
    assert (ds.num_classes, ds.classes, len(ds)) == (3, CLASSES, 6)
    i = _position(ds, "MoveLeft/v_MoveLeft_g02_c01.avi")
    clip, label = ds[i]
    assert label == 1
    assert clip.dtype == torch.uint8 and clip.shape == (8, 48, 64, 3)
    # 16 frames, 8 x every 2nd spans 15: the centred clip starts at (16 - 15) // 2 = 0.
    expected = read_frames(ds.samples[i][0], [0, 2, 4, 6, 8, 10, 12, 14])
    assert np.array_equal(clip.numpy(), expected)
    assert ds.num_frames(i) == 16


def test_transform_gives_float_channels_first(synthetic_ucf101):
    ds = UCF101(synthetic_ucf101, split="train", transform=VideoTransform(train=True))
    clip, label = ds[_position(ds, "MoveRight/v_MoveRight_g05_c01.avi")]
    assert clip.dtype == torch.float32 and clip.shape == (3, 8, 56, 56)
    assert label == 2


def test_decord_backend_reads_the_same_clip(synthetic_ucf101):
    pytest.importorskip("decord")
    pyav = UCF101(synthetic_ucf101, split="test")[0][0]
    decord = UCF101(synthetic_ucf101, split="test", backend="decord")[0][0]
    assert decord.shape == pyav.shape
    assert (decord.float() - pyav.float()).abs().mean() < 2


def test_train_clips_are_keyed_on_seed_epoch_and_index(synthetic_ucf101):
    def clips(seed=0, epoch=0, **kw):
        ds = UCF101(synthetic_ucf101, split="train", sampling_rate=1, seed=seed, **kw)
        ds.set_epoch(epoch)
        return [ds[i][0] for i in range(len(ds))]

    a = clips()
    assert all(torch.equal(x, y) for x, y in zip(a, clips()))
    assert not all(torch.equal(x, y) for x, y in zip(a, clips(epoch=1)))
    assert not all(torch.equal(x, y) for x, y in zip(a, clips(seed=1)))


def test_random_transform_is_reproducible_and_leaves_global_rng_alone(synthetic_ucf101):
    ds = UCF101(synthetic_ucf101, split="train",
                transform=VideoTransform(crop_size=32, resize=48, train=True, hflip=True))
    state = torch.get_rng_state()
    first = ds[3][0]
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(123)  # a different global state does not change the sample
    assert torch.equal(ds[3][0], first)


def test_loader_workers_give_the_same_batches(synthetic_ucf101):
    ds = UCF101(synthetic_ucf101, split="train",
                transform=VideoTransform(crop_size=32, resize=48, train=True))
    ds.set_epoch(2)
    single = next(iter(DataLoader(ds, batch_size=12)))
    multi = next(iter(DataLoader(ds, batch_size=12, num_workers=2)))
    assert torch.equal(single[0], multi[0]) and torch.equal(single[1], multi[1])


def test_build_dataset_reads_the_config(synthetic_ucf101):
    ds = build_dataset({"root": str(synthetic_ucf101), "layout": "ucf101", "fold": 1,
                        "frames_per_clip": 4, "sampling_rate": 3, "backend": "pyav"}, "test", None)
    assert isinstance(ds, UCF101) and len(ds) == 6
    assert ds[0][0].shape == (4, 48, 64, 3)
    with pytest.raises(KeyError, match="known: auto, folder, kinetics, ucf101"):
        build_dataset({"root": str(synthetic_ucf101), "layout": "nope"}, "train", None)
    with pytest.raises(ValueError, match="'root'"):
        build_dataset({"layout": "ucf101"}, "train", None)


# ---------------------------------------------------------------- malformed datasets

def _fake_ucf101(root: Path, class_ind: str, lists: dict[str, str], videos=()) -> Path:
    """A UCF101 tree with the given list files and empty video files (indexing never decodes)."""
    (root / "UCF-101").mkdir(parents=True)
    lists_dir = root / "ucfTrainTestlist"
    lists_dir.mkdir()
    (lists_dir / "classInd.txt").write_bytes(class_ind.encode())
    for name, text in lists.items():
        (lists_dir / name).write_bytes(text.encode())
    for relative in videos:
        (root / "UCF-101" / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / "UCF-101" / relative).touch()
    return root


def test_crlf_lists_and_the_handstand_pushups_case_quirk(tmp_path):
    # UCF101's own files: CRLF line ends, folder HandstandPushups, files v_HandStandPushups_*.
    root = _fake_ucf101(
        tmp_path, "1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n",
        {"trainlist01.txt": "HandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\n",
         # a copy whose list spells the folder like the files
         "testlist01.txt": "HandStandPushups/v_HandStandPushups_g01_c01.avi\r\n"
                           "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"},
        ["HandstandPushups/v_HandStandPushups_g08_c01.avi",
         "HandstandPushups/v_HandStandPushups_g01_c01.avi",
         "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"])
    assert ucf101_classes(root) == ["ApplyEyeMakeup", "HandstandPushups"]
    videos = root / "UCF-101"
    assert ucf101_index(root, "train") == [
        (videos / "HandstandPushups" / "v_HandStandPushups_g08_c01.avi", 1)]
    assert ucf101_index(root, "test") == [
        (videos / "HandstandPushups" / "v_HandStandPushups_g01_c01.avi", 1),
        (videos / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi", 0)]


GOOD_CLASSES = "1 A\n2 B\n"
GOOD_VIDEOS = ["A/v_A_g01_c01.avi", "B/v_B_g01_c01.avi"]


@pytest.mark.parametrize("class_ind, train, error, match", [
    ("1 A\n3 B\n", "A/v_A_g01_c01.avi 1\n", DatasetFormatError,
     r"classInd\.txt:2: class numbers must count up from 1; expected 2, got 3"),
    ("A 1\n", "A/v_A_g01_c01.avi 1\n", DatasetFormatError, r"classInd\.txt:1: expected"),
    ("", "A/v_A_g01_c01.avi 1\n", DatasetFormatError, r"classInd\.txt: no classes"),
    (GOOD_CLASSES, "A/v_A_g01_c01.avi 1\nB/v_B_g02_c01.avi 2\n", FileNotFoundError,
     r"trainlist01\.txt:2: video .*v_B_g02_c01\.avi not found"),
    (GOOD_CLASSES, "A/v_A_g01_c01.avi 3\n", DatasetFormatError,
     r"trainlist01\.txt:1: label '3' is not a class number 1\.\.2"),
    (GOOD_CLASSES, "A/v_A_g01_c01.avi 0\n", DatasetFormatError, r"trainlist01\.txt:1: label '0'"),
    (GOOD_CLASSES, "\nA/v_A_g01_c01.avi 2\n", DatasetFormatError,
     r"trainlist01\.txt:2: label 2 disagrees with the class folder"),
    (GOOD_CLASSES, "C/v_C_g01_c01.avi 1\n", DatasetFormatError,
     r"trainlist01\.txt:1: class folder 'C' is not in classInd\.txt"),
    (GOOD_CLASSES, "A/v_A_g01_c01.avi 1 extra\n", DatasetFormatError,
     r"trainlist01\.txt:1: expected"),
    (GOOD_CLASSES, "", DatasetFormatError, r"trainlist01\.txt: no videos"),
])
def test_malformed_lists_name_file_and_line(tmp_path, class_ind, train, error, match):
    root = _fake_ucf101(tmp_path, class_ind, {"trainlist01.txt": train}, GOOD_VIDEOS)
    with pytest.raises(error, match=match):
        ucf101_index(root, "train")


def test_missing_pieces_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset root .*nowhere does not exist"):
        UCF101(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty/UCF-101 not found"):
        ucf101_classes(tmp_path / "empty")
    root = _fake_ucf101(tmp_path / "r", GOOD_CLASSES, {"trainlist01.txt": "A/v_A_g01_c01.avi 1\n"},
                        GOOD_VIDEOS)
    with pytest.raises(FileNotFoundError, match=r"testlist01\.txt not found"):
        ucf101_index(root, "test")
    with pytest.raises(FileNotFoundError, match=r"trainlist02\.txt not found"):
        ucf101_index(root, "train", fold=2)
    (root / "ucfTrainTestlist" / "classInd.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"classInd\.txt not found"):
        ucf101_classes(root)


def test_bad_dataset_arguments(synthetic_ucf101):
    with pytest.raises(ValueError, match="split must be one of"):
        UCF101(synthetic_ucf101, split="val")
    with pytest.raises(ValueError, match="unknown video backend 'opencv'"):
        UCF101(synthetic_ucf101, backend="opencv")
    with pytest.raises(ValueError, match="frames_per_clip"):
        UCF101(synthetic_ucf101, frames_per_clip=0)
    with pytest.raises(IndexError):
        UCF101(synthetic_ucf101, split="test")[6]


def test_undecodable_ucf101_video_is_skipped_not_fatal(tmp_path, synthetic_ucf101):
    import shutil

    root = tmp_path / "u"
    shutil.copytree(synthetic_ucf101, root, ignore=shutil.ignore_patterns(".vidsparse_index*"))
    bad = root / "UCF-101" / "MoveLeft" / "v_MoveLeft_g01_c01.avi"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.warns(UserWarning, match=r"testlist01\.txt: skipped 1 of 6 videos"):
        ds = UCF101(root, split="test")
    assert len(ds) == 5 and [p for p, _ in ds.skipped] == [bad]
    assert ds.skipped[0][1].startswith("undecodable")
