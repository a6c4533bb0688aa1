"""Evaluation: models whose predictions the test controls, on videos the test writes.

The "ramp" dataset below has uniform grey frames whose level rises by RAMP_STEP per frame,
so dropping or freezing frames visibly changes a clip; class 0 videos are dark and class 1
videos bright, so a model that thresholds brightness is always right.
"""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.checkpoint import save_final
from vidsparse.corruptions import Corruption
from vidsparse.data.decode import write_video
from vidsparse.data.datasets import build_dataset
from vidsparse.robustness import metrics
from vidsparse.robustness.evaluate import (
    CLEAN,
    DEFAULT_CORRUPTIONS,
    Checkpoint,
    Condition,
    build_test_split,
    clip_scores,
    discover_corrupted,
    evaluate,
    load_checkpoint,
    on_disk_conditions,
    on_disk_subset,
    on_the_fly_conditions,
    predict,
    relative_path,
    shared_data_config,
    subset_indices,
)

CORRUPT_TOOL = Path(__file__).resolve().parents[2] / "data_tools" / "corrupt_dataset.py"
SEED = 11
CLASSES = ("Dark", "Bright")
BASE_LEVEL = {"Dark": 20, "Bright": 150}
RAMP_STEP, FRAMES = 4, 24
DATA_CFG = {"layout": "ucf101", "fold": 1, "frames_per_clip": 4, "sampling_rate": 3,
            "resize": 64, "crop_size": 56}


def ramp_video(level: int) -> np.ndarray:
    frames = level + RAMP_STEP * np.arange(FRAMES)
    return np.broadcast_to(frames[:, None, None, None], (FRAMES, 64, 80, 3)).astype(np.uint8)


def write_root(root, video_for):
    """A UCF101-layout root holding two test videos per class; ``video_for(label)`` makes each."""
    lines = []
    for label, name in enumerate(CLASSES):
        for group in (1, 2):
            rel = f"{name}/v_{name}_g{group:02d}_c01.avi"
            write_video(root / "UCF-101" / rel, video_for(label), fps=25,
                        options={"qmin": "2", "qmax": "2"})
            lines.append(rel)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    (lists / "testlist01.txt").write_text("\n".join(lines) + "\n")
    (lists / "trainlist01.txt").write_text("\n".join(f"{x} {1 + CLASSES.index(x.split('/')[0])}"
                                                     for x in lines) + "\n")
    return root


@pytest.fixture(scope="module")
def ramp_root(tmp_path_factory):
    return write_root(tmp_path_factory.mktemp("ramp"),
                      lambda label: ramp_video(BASE_LEVEL[CLASSES[label]]))


class FixedClass(nn.Module):
    def __init__(self, cls, num_classes=2):
        super().__init__()
        self.cls, self.num_classes = cls, num_classes

    def forward(self, x):
        return nn.functional.one_hot(torch.full((x.shape[0],), self.cls), self.num_classes).float()


class Brightness(nn.Module):
    """Class 1 when the normalised clip is brighter than the dataset mean, else class 0."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([-m, m], dim=1)


def checkpoint(model, path="fake", num_classes=2, **sparsity):
    config = {"model": {"name": "fake", "num_classes": num_classes}, "data": dict(DATA_CFG),
              "sparsity": sparsity or {"method": "dense", "density": 1.0}}
    return Checkpoint(path, model, config)


# --- predict ---------------------------------------------------------------------------

def test_predict_gives_each_model_the_same_batches():
    clips = torch.zeros(5, 3, 2, 4, 4)
    clips[[1, 3], 0, 0, 0, 0] = 1.0  # the "pixel" a reader model looks at
    labels = torch.tensor([0, 1, 2, 1, 1])
    reader = nn.Module()
    reader.forward = lambda x: nn.functional.one_hot(x[:, 0, 0, 0, 0].long(), 3).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(clips, labels), batch_size=2)
    (fixed, read), seen = predict([FixedClass(1, 3), reader], loader)
    assert seen.tolist() == [0, 1, 2, 1, 1]
    assert fixed.tolist() == [1] * 5 and metrics.accuracy(fixed, seen) == pytest.approx(3 / 5)
    assert read.tolist() == [0, 1, 0, 1, 0] and metrics.accuracy(read, seen) == pytest.approx(3 / 5)


# --- end to end on written videos ------------------------------------------------------

def test_evaluate_accuracy_of_controlled_models(ramp_root):
    models = [checkpoint(FixedClass(0)), checkpoint(FixedClass(1)), checkpoint(Brightness())]
    result = evaluate(models, ramp_root, corruptions=["frame_drop", "gaussian_noise"],
                         severities=[1, 4], batch_size=3, progress=False)
    assert result.videos[0] == "UCF-101/Dark/v_Dark_g01_c01.avi"
    assert result.labels.tolist() == [0, 0, 1, 1]
    assert result.conditions == [CLEAN] + [Condition(c, s) for c in ("frame_drop", "gaussian_noise")
                                              for s in (1, 4)]
    fixed0, fixed1, bright = result.accuracies()
    half = {"clean": 0.5, "corrupted": {c: {1: 0.5, 4: 0.5} for c in ("frame_drop", "gaussian_noise")}}
    assert fixed0 == half and fixed1 == half
    assert bright["clean"] == 1.0
    assert bright["corrupted"]["frame_drop"] == {1: 1.0, 4: 1.0}  # dropping frames keeps the level


def test_limit_spreads_over_classes(ramp_root):
    result = evaluate([checkpoint(Brightness())], ramp_root, corruptions=["frame_drop"],
                         severities=[2], limit=2, progress=False)
    assert result.videos == ["UCF-101/Dark/v_Dark_g01_c01.avi", "UCF-101/Bright/v_Bright_g02_c01.avi"]
    assert result.accuracies()[0]["clean"] == 1.0


@pytest.fixture(scope="module")
def ramp_corrupted(ramp_root, tmp_path_factory):
    """corrupt_dataset.py's copies of the ramp dataset (lossless FFV1, its default codec)."""
    dst = tmp_path_factory.mktemp("ramp-c")
    tool = runpy.run_path(str(CORRUPT_TOOL), run_name="corrupt_dataset")
    args = ["--src", ramp_root, "--dst", dst, "--corruptions", "frame_drop,gaussian_noise",
            "--severities", "5", "--seed", SEED]
    assert tool["main"]([str(a) for a in args]) == 0
    return dst


def test_on_the_fly_reproduces_corrupt_dataset_copies(ramp_root, ramp_corrupted):
    # frame_drop changes which frames a clip holds, differently for each video's seed: the
    # clips are equal only if both paths corrupt whole videos with the same seeds, then
    # take the same centred clip.
    data_cfg = {**DATA_CFG, "root": str(ramp_root)}
    clean = build_dataset(data_cfg, "test", None)
    videos = [relative_path(p, ramp_root) for p, _ in clean.samples]
    for condition in (Condition("frame_drop", 5), Condition("gaussian_noise", 5)):
        fly = clean.with_corruption(Corruption(*condition, seed=SEED))
        disk = on_disk_subset(ramp_corrupted, condition, data_cfg, None, videos)
        changed = False
        for i in range(len(videos)):
            (a, la), (b, lb), (c, _) = fly[i], disk[i], clean[i]
            assert la == lb and a.shape == (4, 64, 80, 3)
            assert torch.equal(a, b), f"{condition} {videos[i]}"
            changed |= not torch.equal(a, c)
        assert changed  # the corruption did change the clips


def test_on_the_fly_and_on_disk_evaluations_agree(ramp_root, ramp_corrupted):
    torch.manual_seed(0)
    model = checkpoint(vidsparse.create_model("r3d_tiny", num_classes=2).eval())
    fly = evaluate([model], ramp_root, corruptions=["frame_drop", "gaussian_noise"],
                   severities=[5], seed=SEED, batch_size=4, progress=False)
    disk = evaluate([model], ramp_root, corrupted=ramp_corrupted, batch_size=4, progress=False)
    assert fly.conditions == disk.conditions and fly.videos == disk.videos
    for condition in fly.conditions:
        np.testing.assert_array_equal(fly.predictions[0][condition], disk.predictions[0][condition])
    assert disk.seed == SEED and disk.corrupted == str(ramp_corrupted)


def test_on_disk_evaluation_reads_the_copies(ramp_root, tmp_path):
    # An on-disk "corruption" that turns every dark video bright: the brightness model is
    # then right on exactly the bright half.
    write_root(tmp_path / "invert" / "2", lambda label: ramp_video(BASE_LEVEL["Bright"]))
    result = evaluate([checkpoint(Brightness())], ramp_root, corrupted=tmp_path, progress=False)
    assert result.conditions == [CLEAN, Condition("invert", 2)]
    assert result.accuracies()[0] == {"clean": 1.0, "corrupted": {"invert": {2: 0.5}}}


# --- checkpoints -----------------------------------------------------------------------

def test_load_checkpoint_reapplies_masks(tmp_path):
    model = vidsparse.create_model("r3d_tiny", num_classes=2)
    name = "stages.0.conv1.weight"
    mask = torch.rand_like(dict(model.named_parameters())[name]) < 0.5
    config = {"model": {"name": "r3d_tiny", "num_classes": 2}, "data": dict(DATA_CFG),
              "sparsity": {"method": "set", "density": 0.5}}
    save_final(tmp_path / "run" / "final", model, config, masks={name: mask})  # weights not zeroed
    loaded = load_checkpoint(tmp_path / "run")
    weight = dict(loaded.model.named_parameters())[name]
    assert (weight[~mask] == 0).all() and (weight[mask] != 0).all()
    assert not loaded.model.training and loaded.num_classes == 2


def test_checkpoint_errors_name_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing-run"):
        load_checkpoint(tmp_path / "missing-run")
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(FileNotFoundError, match="not-a-run.*not a vidsparse checkpoint"):
        load_checkpoint(tmp_path / "not-a-run")


def test_class_count_mismatch_is_refused(ramp_root):
    with pytest.raises(ValueError, match="predicts 5 classes but the dataset .* has 2"):
        evaluate([checkpoint(FixedClass(0, 5), "runs/five", num_classes=5)], ramp_root,
                    corruptions=["frame_drop"], severities=[1], progress=False)


def test_build_test_split_is_the_clean_split_every_checkpoint_sees(ramp_root):
    test = build_test_split([checkpoint(FixedClass(0), "runs/a"), checkpoint(FixedClass(1), "runs/b")],
                            ramp_root)
    assert len(test) == 2 * len(CLASSES)  # two test videos per class
    clip, label = test[0]
    # DATA_CFG: 4 frames, 56-pixel centre crop, the evaluation transform
    assert tuple(clip.shape) == (3, 4, 56, 56) and label == 0
    with pytest.raises(ValueError, match="runs/five predicts 5 classes but the dataset .* has 2"):
        build_test_split([checkpoint(FixedClass(0, 5), "runs/five", num_classes=5)], ramp_root)


def test_clip_scores_lives_with_the_models_and_keeps_its_old_name():
    from vidsparse.models import clip_scores as from_models
    from vidsparse.models.scoring import clip_scores as from_scoring

    assert clip_scores is from_models is from_scoring


def test_checkpoints_with_other_clips_are_refused():
    a, b = checkpoint(FixedClass(0), "runs/a"), checkpoint(FixedClass(0), "runs/b")
    b.config["data"]["frames_per_clip"] = 16
    with pytest.raises(ValueError, match="runs/a and runs/b differ in data.frames_per_clip"):
        shared_data_config([a, b], "data")
    assert shared_data_config([a], "data/x")["root"] == "data/x"


# --- conditions ------------------------------------------------------------------------

def test_default_corruptions_are_registered_and_span_kinds():
    known = vidsparse.list_corruptions()
    assert set(DEFAULT_CORRUPTIONS) <= set(known)
    assert {known[c] for c in DEFAULT_CORRUPTIONS} == {"spatial", "temporal", "codec"}
    conditions = on_the_fly_conditions(None, None)
    assert conditions[0] == CLEAN and len(conditions) == 1 + 5 * len(DEFAULT_CORRUPTIONS)


def test_unknown_corruption_lists_known_ones():
    with pytest.raises(ValueError, match="unknown corruption.*snowfall; known: .*fog"):
        on_the_fly_conditions(["fog", "snowfall"], [1])
    with pytest.raises(ValueError, match="severities"):
        on_the_fly_conditions(["fog"], [0, 6])


def test_discover_corrupted_from_manifest_or_folders(tmp_path):
    for name, sev in [("fog", 1), ("fog", 3), ("freeze", 2)]:
        (tmp_path / name / str(sev)).mkdir(parents=True)
    (tmp_path / "fog" / "notes").mkdir()  # not a severity
    assert discover_corrupted(tmp_path) == {"fog": [1, 3], "freeze": [2]}
    # corrupt_dataset.py's manifest decides, but only for folders that exist.
    entries = [{"corruption": "fog", "severity": 3, "path": "fog/3/UCF-101/A/a.avi", "seed": 1},
               {"corruption": "contrast", "severity": 1, "path": "contrast/1/UCF-101/A/a.avi"}]
    (tmp_path / "manifest.json").write_text(json.dumps({"settings": {"seed": 0}, "files": entries}))
    assert discover_corrupted(tmp_path) == {"fog": [3]}


def test_on_disk_conditions_filter_and_refuse_missing(tmp_path):
    for name, sev in [("fog", 1), ("fog", 3), ("freeze", 2)]:
        (tmp_path / name / str(sev)).mkdir(parents=True)
    assert on_disk_conditions(tmp_path, ["fog"], [3]) == [CLEAN, Condition("fog", 3)]
    assert len(on_disk_conditions(tmp_path, None, None)) == 4
    with pytest.raises(ValueError, match="contrast not found .*available: fog: 1,3; freeze: 2"):
        on_disk_conditions(tmp_path, ["contrast"], None)
    with pytest.raises(ValueError, match=r"fog severity \[2\] not found"):
        on_disk_conditions(tmp_path, ["fog"], [2])
    with pytest.raises(FileNotFoundError, match="holds no corrupted dataset"):
        on_disk_conditions(tmp_path / "fog" / "1", None, None)


# --- small helpers ---------------------------------------------------------------------

def test_subset_indices():
    assert subset_indices(5, None) == [0, 1, 2, 3, 4]
    assert subset_indices(5, 9) == [0, 1, 2, 3, 4]
    assert subset_indices(10, 3) == [0, 4, 9]
    assert subset_indices(10, 1) == [0]
    with pytest.raises(ValueError):
        subset_indices(10, 0)
