"""The loaders, corrupt_dataset and make_subset on a fuzz corpus (tests/fuzz.py): no crash, every bad file
skipped with its reason and counted, every odd-but-valid file read with the right shape."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import fuzz
from vidsparse.corruptions import Corruption
from vidsparse.corruptions.generate import corrupt_dataset
from vidsparse.data.clips import test_clip_indices
from vidsparse.data.datasets import UCF101, DatasetFormatError, VideoFolder
from vidsparse.data.decode import read_video
from vidsparse.data.transforms import VideoTransform

ROOT = Path(__file__).resolve().parents[1]
FRAMES_PER_CLIP, SAMPLING_RATE = 4, 2
H, W = fuzz.SIZE

# (height, width) each readable file decodes to; clips are always FRAMES_PER_CLIP long (a
# video shorter than a clip repeats frames). Gray and 16-bit sources come out as 8-bit RGB.
READABLE = {
    "good_mp4": (H, W), "good_avi": (H, W), "mp4_named_avi": (H, W), "spaces": (H, W),
    "non_utf8": (H, W),
    "one_frame": (H, W), "two_frames": (H, W), "three_frames": (H, W), "size_1x1": (1, 1),
    "size_4000x16": (16, 4000), "odd_33x17_rgb": (17, 33), "odd_33x17_yuv420": (17, 33),
    "gray": (H, W), "gray16": (H, W), "rgb48": (H, W), "vfr": (H, W),
    # Cut 40 bytes before the end: only trailing metadata is lost, every frame is there.
    "truncated_mp4_end": (H, W),
    # Matroska cut at 2/3: no frame count in its header, so the index counts the frames
    # that are there and the video is just shorter.
    "truncated_mkv": (H, W),
}
# The reason each unusable file is skipped with (a substring of it).
UNUSABLE = {
    "empty": "empty file (0 bytes)",
    "truncated_mp4_16": "Invalid data found",
    "truncated_mp4_200": "Invalid data found",
    "truncated_mp4_half": "Invalid data found",
    "truncated_avi_half": "Invalid data found",
    # The header (in front) still counts 16 frames; decoding the last one fails.
    "truncated_faststart_mp4": "Invalid data found",
    "random_mp4": "Invalid data found",
    "random_avi": "Invalid data found",
    "random_webm": "Invalid data found",
    "text_mp4": "Invalid data found",
    "audio_only_mp4": "has no video stream",
    "audio_only_mkv": "has no video stream",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[fuzz.FuzzFile]]:
    """The corpus in both a test and a train split (read-only: copy it to alter it)."""
    root = tmp_path_factory.mktemp("fuzz")
    files = fuzz.build_corpus(root, "test")
    assert fuzz.build_corpus(root, "train") == files
    return root, files


def test_corpus_covers_every_case(corpus):
    _, files = corpus
    keys = [f.key for f in files]
    assert len(keys) == len(set(keys))
    expected = set(READABLE) | set(UNUSABLE)
    if not fuzz.non_utf8_names_supported():  # NTFS, APFS: the name cannot be made
        expected.discard("non_utf8")
    assert set(keys) == expected
    assert fuzz.non_utf8_names_supported() == ("non_utf8" in keys)


@pytest.mark.parametrize("split", ["test", "train"])
def test_video_folder_skips_bad_files_and_reads_the_rest(corpus, split):
    root, files = corpus
    by_path = {fuzz.path_of(root, split, f): f.key for f in files}
    with pytest.warns(UserWarning, match=rf"skipped {len(UNUSABLE)} of {len(files)} videos"):
        raw = VideoFolder(root, split=split, frames_per_clip=FRAMES_PER_CLIP,
                          sampling_rate=SAMPLING_RATE)
    skipped = {by_path[p]: why for p, why in raw.skipped}
    assert set(skipped) == set(UNUSABLE)
    for key, reason in skipped.items():
        assert UNUSABLE[key] in reason, (key, reason)
    assert all(str(fuzz.path_of(root, split, f)) in why or f.key == "empty"
               for f in files for p, why in raw.skipped if by_path[p] == f.key)
    report = root / f".vidsparse_index.skipped-{split}.tsv"
    assert len(report.read_text(encoding="utf-8", errors="surrogateescape").splitlines()) \
        == len(UNUSABLE)

    loaded = {by_path[p] for p, _ in raw.samples}
    assert loaded == set(READABLE) & set(by_path.values())
    for index, (path, label) in enumerate(raw.samples):
        clip, got_label = raw[index]
        h, w = READABLE[by_path[path]]
        assert clip.dtype == torch.uint8 and clip.shape == (FRAMES_PER_CLIP, h, w, 3), path
        assert got_label == label == raw.classes.index(path.parent.name)
        if split == "test":  # the frames of a full decode (seeking is exact, VFR included)
            video, _ = read_video(path)
            assert raw.num_frames(index) == len(video), path
            wanted = test_clip_indices(len(video), FRAMES_PER_CLIP, SAMPLING_RATE)
            assert torch.equal(clip, torch.from_numpy(video[wanted])), path

    transform = VideoTransform(crop_size=8, resize=16, train=split == "train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the skip warning, checked above
        ds = VideoFolder(root, split=split, frames_per_clip=FRAMES_PER_CLIP,
                         sampling_rate=SAMPLING_RATE, transform=transform)
    assert ds.samples == raw.samples and ds.skipped == raw.skipped
    for clip, _ in ds:
        assert clip.dtype == torch.float32 and clip.shape == (3, FRAMES_PER_CLIP, 8, 8)
        assert torch.isfinite(clip).all()


def test_a_folder_of_only_bad_files_is_a_clear_error(corpus, tmp_path):
    root, files = corpus
    bad = tmp_path / "bad_only"
    for f in files:
        if f.key in UNUSABLE:
            target = fuzz.path_of(bad, "test", f)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fuzz.path_of(root, "test", f), target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DatasetFormatError, match=rf"{bad / 'test'}: none of its "
                                                     rf"{len(UNUSABLE)} videos is usable"):
            VideoFolder(bad, split="test")


def _without_non_utf8(corpus, tmp_path) -> Path:
    root, files = corpus
    copy = tmp_path / "corpus"
    shutil.copytree(root / "test", copy / "test")
    for f in files:
        if f.key == "non_utf8":
            os.remove(fuzz.path_of(copy, "test", f))
    return copy


def test_corrupt_dataset_reports_bad_files_and_writes_the_rest(corpus, tmp_path):
    root, files = corpus
    src = _without_non_utf8(corpus, tmp_path)
    summary = corrupt_dataset(src, tmp_path / "out", ["brightness"], [1], progress=False)
    failed = {Path(source).name: reason for source, reason in summary.failed}
    name_of = {f.key: f.name for f in files}
    assert set(failed) == {name_of[k] for k in UNUSABLE}
    for key, reason in UNUSABLE.items():
        if key != "empty":
            assert reason in failed[name_of[key]], key
    readable = {k for k in READABLE if k != "non_utf8"}
    assert summary.written == {"brightness": len(readable)}
    assert str(summary).count("FAILED") == len(UNUSABLE)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["failed"]) == len(UNUSABLE) and len(manifest["files"]) == len(readable)
    # The copy reads like the source: every written video, nothing skipped.
    copy = VideoFolder(tmp_path / "out" / "brightness" / "1", split="test",
                       frames_per_clip=FRAMES_PER_CLIP, sampling_rate=SAMPLING_RATE)
    assert len(copy) == len(readable) and copy.skipped == []
    # On the fly (what eval_robustness does without --corrupted) gives the copy's clips.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the skip warning
        source = VideoFolder(src, split="test", frames_per_clip=FRAMES_PER_CLIP,
                             sampling_rate=SAMPLING_RATE)
    live = source.with_corruption(Corruption("brightness", 1))
    assert len(live) == len(copy)
    for (clip, label), (stored, stored_label) in zip(live, copy):
        assert clip.dtype == torch.uint8 and clip.shape[0] == FRAMES_PER_CLIP
        assert torch.equal(clip, stored) and label == stored_label


@pytest.mark.slow
def test_training_and_evaluation_recipes_skip_bad_files(corpus, tmp_path):
    """recipes/train.py (2 steps, then its test evaluation) and recipes/eval_robustness.py
    (one on-the-fly corruption) run to the end on the corpus, reporting what they skipped."""
    _, files = corpus
    src = _without_non_utf8(corpus, tmp_path)
    shutil.copytree(src / "test", src / "train")
    total = len([f for f in files if f.key != "non_utf8"])
    usable = total - len(UNUSABLE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = subprocess.run(
        [sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_dense.yaml",
         f"output_dir={tmp_path / 'run'}", "max_steps=2", "batch_size=4", f"data.root={src}",
         "data.layout=folder", "data.resize=16", "data.crop_size=8", "data.frames_per_clip=4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr[-3000:]
    for split in ("train", "test"):
        assert f"{src / split}: skipped {len(UNUSABLE)} of {total} videos" in train.stderr
    assert "clean test accuracy" in train.stdout + train.stderr
    run = json.loads((tmp_path / "run" / "final" / "run.json").read_text())
    assert run["steps"] == 2
    evaluate = subprocess.run(
        [sys.executable, "recipes/eval_robustness.py", "--checkpoint", str(tmp_path / "run"),
         "--data", str(src), "--out", str(tmp_path / "report"), "--corruptions", "brightness",
         "--severities", "1", "--cpu", "--no-cache"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert f"skipped {len(UNUSABLE)} of {total} videos" in evaluate.stderr
    assert (tmp_path / "report" / "results.json").is_file()
    assert usable > 0


def _non_utf8_source(corpus, tmp_path) -> Path:
    assert fuzz.non_utf8_names_supported(), f"{sys.platform} file names must be valid Unicode"
    root, files = corpus
    src = tmp_path / "src"
    [f] = [f for f in files if f.key == "non_utf8"]
    target = fuzz.path_of(src, "test", f)
    target.parent.mkdir(parents=True)
    shutil.copyfile(fuzz.path_of(root, "test", f), target)
    return src


def test_corrupt_dataset_takes_a_non_utf8_name(corpus, tmp_path):
    summary = corrupt_dataset(_non_utf8_source(corpus, tmp_path), tmp_path / "out",
                              ["brightness"], [1], progress=False)
    assert summary.written == {"brightness": 1} and summary.failed == []


def test_on_the_fly_corruption_takes_a_non_utf8_name(corpus, tmp_path):
    ds = VideoFolder(_non_utf8_source(corpus, tmp_path), split="test", frames_per_clip=2)
    clip, _ = ds.with_corruption(Corruption("brightness", 1))[0]
    assert clip.shape == (2, H, W, 3)


def _make_subset_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_subset", ROOT / "data_tools" / "make_subset.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_make_subset_skips_every_unusable_file_with_its_reason(corpus, tmp_path):
    root, files = corpus
    tool = _make_subset_tool()
    listable = [f for f in files if f.key not in ("spaces", "non_utf8")]
    placed = fuzz.as_ucf101(root, "test", listable, tmp_path / "src")
    manifest = tool.make_subset(tmp_path / "src", tmp_path / "sub", num_classes=3)
    key_of = {relative: f.key for relative, f in placed.items()}
    assert {key_of[r] for r in manifest["skipped"]} == set(UNUSABLE)
    for relative, reason in manifest["skipped"].items():
        assert UNUSABLE[key_of[relative]] in reason, (relative, reason)
    usable = {f.key for f in listable} - set(UNUSABLE)
    assert manifest["videos"] == len(usable) == len(listable) - len(UNUSABLE)
    # The subset loads with nothing left to skip, every usable file in it.
    loaded = set()
    for split in ("train", "test"):
        ds = UCF101(tmp_path / "sub", split=split, frames_per_clip=FRAMES_PER_CLIP,
                    sampling_rate=SAMPLING_RATE)
        assert ds.skipped == []
        loaded |= {key_of[p.relative_to(tmp_path / "sub").as_posix()] for p, _ in ds.samples}
    assert loaded == usable


def test_make_subset_of_only_unusable_files_is_a_clear_error(corpus, tmp_path):
    root, files = corpus
    tool = _make_subset_tool()
    fuzz.as_ucf101(root, "test", [f for f in files if f.key in UNUSABLE], tmp_path / "src")
    with pytest.raises(tool.SubsetError, match=re.escape(
            f"none of the {len(UNUSABLE)} chosen videos under {tmp_path / 'src'} is usable")):
        tool.make_subset(tmp_path / "src", tmp_path / "sub", num_classes=1)
    assert not (tmp_path / "sub").exists()
