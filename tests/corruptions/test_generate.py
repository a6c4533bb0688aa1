"""vidsparse.corruptions.corrupt_dataset on every layout, its options, failures, and the
datasets' on-the-fly corruption mode that must reproduce its files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vidsparse.corruptions import Corruption, corrupt, corrupt_dataset, dataset_source, \
    source_name, verify_dataset, video_seed
from vidsparse.data.datasets import Kinetics, UCF101, VideoFolder, kinetics_classes
from vidsparse.data.decode import read_video, write_video


def _manifest(dst: Path) -> dict:
    return json.loads((dst / "manifest.json").read_text())


def _relative(dataset, root: Path) -> list[tuple[str, int]]:
    return [(p.relative_to(root).as_posix(), label) for p, label in dataset.samples]


def _clip(seed: int, frames: int = 6, size: tuple[int, int] = (32, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, *size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def kinetics_c(synthetic_kinetics, tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("kinetics-c")
    summary = corrupt_dataset(synthetic_kinetics, dst, ["gaussian_noise", "frame_drop"], [2],
                              progress=False)
    assert summary.written == {"gaussian_noise": 3, "frame_drop": 3} and not summary.failed
    return dst


def test_kinetics_copy_is_read_by_the_kinetics_loader_like_its_source(synthetic_kinetics, kinetics_c):
    source = Kinetics(synthetic_kinetics, split="validate")
    for name in ("gaussian_noise", "frame_drop"):
        root = kinetics_c / name / "2"
        copy = Kinetics(root, split="validate")
        assert copy.classes == source.classes == kinetics_classes(synthetic_kinetics)
        assert _relative(copy, root) == _relative(source, synthetic_kinetics)
        assert not copy.skipped
        for (clean_path, _), (path, _) in zip(source.samples, copy.samples):
            clean, _ = read_video(clean_path)
            seed = video_seed(0, name, 2, source_name(clean_path))
            np.testing.assert_array_equal(read_video(path)[0], corrupt(clean, name, 2, seed=seed))
    settings = _manifest(kinetics_c)["settings"]
    assert settings["layout"] == "kinetics" and settings["split"] == "validate"


def test_split_option_writes_the_train_split(synthetic_kinetics, tmp_path):
    corrupt_dataset(synthetic_kinetics, tmp_path, ["brightness"], [1], split="train", progress=False)
    copy = Kinetics(tmp_path / "brightness" / "1", split="train")
    assert len(copy) == 9 == len(Kinetics(synthetic_kinetics, split="train"))
    assert not (tmp_path / "brightness" / "1" / "validate").exists()


def test_on_the_fly_dataset_gives_the_clips_of_the_lossless_copy(synthetic_kinetics, kinetics_c):
    # frame_drop changes which frames a clip holds, per video seed: the clips agree only if the
    # dataset corrupts the whole video with the file's seed and then picks the clip.
    for name in ("gaussian_noise", "frame_drop"):
        fly = Kinetics(synthetic_kinetics, split="validate", frames_per_clip=4, sampling_rate=2,
                       corruption=Corruption(name, severity=2))
        disk = Kinetics(kinetics_c / name / "2", split="validate", frames_per_clip=4, sampling_rate=2)
        clean = Kinetics(synthetic_kinetics, split="validate", frames_per_clip=4, sampling_rate=2)
        assert len(fly) == len(disk) == 3
        for i in range(len(fly)):
            (a, la), (b, lb), (c, _) = fly[i], disk[i], clean[i]
            assert la == lb and torch.equal(a, b)
            assert not torch.equal(a, c)
    # with_corruption(None) is the clean dataset again, without re-indexing
    assert torch.equal(fly.with_corruption(None)[0][0], clean[0][0])


def test_on_the_fly_train_clips_are_deterministic_and_follow_the_epoch(synthetic_ucf101):
    ds = UCF101(synthetic_ucf101, split="train", frames_per_clip=4, sampling_rate=1,
                corruption=Corruption("gaussian_noise", 3, seed=5))
    first = ds[2][0]
    assert torch.equal(first, ds[2][0])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[2][0])  # another random clip (and its own noise is fixed)


def test_corruption_checks_its_arguments():
    with pytest.raises(ValueError, match="severity must be one of"):
        Corruption("fog", severity=0)
    with pytest.raises(TypeError, match="unknown option.*temporall"):
        Corruption("fog", options={"temporall": "iid"})
    with pytest.raises(KeyError, match="nope"):
        Corruption("nope")


def _folder_dataset(root: Path) -> Path:
    """train/{cat,dog,eel}/ and test/{cat,dog}/: the test split lacks a class."""
    for split, classes in (("train", ("cat", "dog", "eel")), ("test", ("cat", "dog"))):
        for i, name in enumerate(classes):
            write_video(root / split / name / f"{name}{i}.mp4", _clip(len(split) + i), 25.0)
    return root


def test_folder_copy_keeps_every_class_so_labels_match(tmp_path):
    src = _folder_dataset(tmp_path / "src")
    dst = tmp_path / "dst"
    corrupt_dataset(src, dst, ["contrast"], [5], progress=False)
    source = VideoFolder(src, split="test")
    copy = VideoFolder(dst / "contrast" / "5", split="test")
    assert copy.classes == source.classes == ["cat", "dog", "eel"]
    assert _relative(copy, dst / "contrast" / "5") == _relative(source, src)


def test_a_container_that_cannot_hold_ffv1_is_written_as_matroska(tmp_path):
    src = tmp_path / "src"
    write_video(src / "test" / "cat" / "a.webm", _clip(0, size=(16, 16)), 25.0, codec="libvpx-vp9")
    write_video(src / "test" / "dog" / "b.mp4", _clip(1, size=(16, 16)), 25.0)
    corrupt_dataset(src, tmp_path / "dst", ["brightness"], [1], progress=False)
    copy = tmp_path / "dst" / "brightness" / "1" / "test"
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*.*")) == ["cat/a.mkv", "dog/b.mp4"]
    clean, _ = read_video(src / "test" / "cat" / "a.webm")
    expected = corrupt(clean, "brightness", 1, seed=video_seed(0, "brightness", 1, "cat/a.webm"))
    np.testing.assert_array_equal(read_video(copy / "cat" / "a.mkv")[0], expected)


def test_options_reach_the_corruptions_that_take_them_and_are_recorded(synthetic_ucf101, tmp_path):
    summary = corrupt_dataset(synthetic_ucf101, tmp_path, ["gaussian_noise", "frame_drop"], [3],
                              options={"temporal": "iid"}, progress=False)
    assert sum(summary.written.values()) == 12
    manifest = _manifest(tmp_path)
    params = manifest["settings"]["parameters"]
    assert params["gaussian_noise"]["options"]["temporal"] == "iid"
    assert params["gaussian_noise"]["kind"] == "spatial" and params["frame_drop"]["kind"] == "temporal"
    for entry in manifest["files"]:
        assert entry["options"] == ({"temporal": "iid"} if entry["corruption"] == "gaussian_noise" else {})
        if entry["corruption"] == "gaussian_noise":
            clean, _ = read_video(synthetic_ucf101 / entry["source"])
            expected = corrupt(clean, "gaussian_noise", 3, seed=entry["seed"], temporal="iid")
            np.testing.assert_array_equal(read_video(tmp_path / entry["path"])[0], expected)
    # Another option value is another output: a rerun redoes those files, keeps the rest.
    again = corrupt_dataset(synthetic_ucf101, tmp_path, ["gaussian_noise", "frame_drop"], [3],
                            options={"temporal": "smooth"}, progress=False)
    assert again.written == {"gaussian_noise": 6} and again.skipped == 6


def test_bad_requests_raise_before_anything_is_written(synthetic_ucf101, tmp_path):
    dst = tmp_path / "never"
    cases = [
        (dict(corruptions=["frame_drop"], options={"temporal": "iid"}), "taken by none of frame_drop"),
        (dict(corruptions=["fog"], storage="png"), "storage must be one of"),
        (dict(corruptions=["fog"], storage="h264", crf=70), "crf must be an int in 0..51"),
        (dict(corruptions=["fog"], workers=0), "workers must be a positive int"),
        (dict(corruptions=["fog"], split="validate"), "split must be one of"),
        (dict(corruptions=["fog"], layout="nope"), "layout must be one of"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            corrupt_dataset(synthetic_ucf101, dst, severities=[1], progress=False, **kwargs)
    assert not dst.exists()


def test_an_undecodable_source_is_reported_and_the_rest_written(tmp_path):
    src = _folder_dataset(tmp_path / "src")
    (src / "test" / "dog" / "dog1.mp4").write_bytes(b"\0" * 100)  # not a video any more
    summary = corrupt_dataset(src, tmp_path / "dst", ["brightness"], [2], progress=False)
    assert summary.written == {"brightness": 1}
    assert [s for s, _ in summary.failed] == ["test/dog/dog1.mp4"]
    assert "FAILED test/dog/dog1.mp4" in str(summary)
    failed = _manifest(tmp_path / "dst")["failed"]
    assert failed[0]["source"] == "test/dog/dog1.mp4" and failed[0]["reason"]
    assert verify_dataset(tmp_path / "dst") == (1, [])


def test_dataset_source_defaults_to_the_evaluation_split(synthetic_ucf101, synthetic_kinetics, tmp_path):
    assert dataset_source(synthetic_ucf101).split == "test"
    assert len(dataset_source(synthetic_ucf101).samples) == 6
    assert dataset_source(synthetic_kinetics).split == "validate"
    copy = tmp_path / "kin"
    shutil.copytree(synthetic_kinetics, copy)
    assert dataset_source(copy, split="train").annotations == ["annotations/train.csv"]


def test_evaluation_reads_kinetics_copies_and_agrees_with_on_the_fly(synthetic_kinetics, kinetics_c):
    import vidsparse
    from vidsparse.robustness.evaluate import Checkpoint, evaluate

    torch.manual_seed(0)
    data = {"layout": "kinetics", "test_split": "validate", "frames_per_clip": 4,
            "sampling_rate": 2, "resize": 48, "crop_size": 32}
    model = vidsparse.create_model("r3d_tiny", num_classes=3).eval()
    ckpt = Checkpoint("tiny", model, {"model": {"name": "r3d_tiny", "num_classes": 3}, "data": data})
    disk = evaluate([ckpt], synthetic_kinetics, corrupted=kinetics_c, batch_size=3, progress=False)
    fly = evaluate([ckpt], synthetic_kinetics, corruptions=["gaussian_noise", "frame_drop"],
                   severities=[2], batch_size=3, progress=False)
    assert sorted(disk.conditions) == sorted(fly.conditions) and len(disk.conditions) == 3
    for condition in disk.conditions:
        np.testing.assert_array_equal(disk.predictions[0][condition], fly.predictions[0][condition])
