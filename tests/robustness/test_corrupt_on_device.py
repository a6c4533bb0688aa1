"""Frame-local corruptions applied after the loader, on the evaluation's device (corrupt_on).

The videos are test_robustness_evaluate's ramps (the mean level rises by RAMP_STEP per frame
from BASE_LEVEL, so a frame's mean says which frame it is) with a fixed zero-mean texture
added, so that blurs and contrast change them too. They have 24 frames, so with 4-frame clips
every 3rd frame (a span of 10) the centred clip is frames 7, 10, 13, 16 and four evenly spaced
clips start at k * (24 - 10) // 3 = 0, 4, 9, 14 (the first and third share frame 9).

There is no GPU in CI: the device path runs on the CPU, where it must give exactly the loader
path's clips, and on the emulated device of tests/corruptions/test_device.py, where nothing
but the predictions may come back.
"""

import importlib
import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from test_robustness_evaluate import (
    BASE_LEVEL,
    CLASSES,
    DATA_CFG,
    FRAMES,
    RAMP_STEP,
    Brightness,
    checkpoint,
    write_root,
)
from vidsparse.corruptions import Corruption, _ops, registry
from vidsparse.data import video_dataset
from vidsparse.data.datasets import build_dataset
from vidsparse.data.transforms import build_transform
from vidsparse.data.video_dataset import PendingBatch, collate_pending
from vidsparse.robustness.evaluate import CLEAN, Condition, corrupts_on_device, evaluate, predict

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "eval_robustness.py"
CENTRE = [7, 10, 13, 16]
VIEWS = [[0, 3, 6, 9], [4, 7, 10, 13], [9, 12, 15, 18], [14, 17, 20, 23]]
MULTI_VIEW = {"num_clips": 4, "num_crops": 3}
# The module (the package's `evaluate` attribute is the function).
evaluate_module = importlib.import_module("vidsparse.robustness.evaluate")


class Recording(Brightness):
    """Brightness, keeping a copy of every batch it scores."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return super().forward(x)


def split_of(root, corruption=None, deferred=False, transform=True, **data):
    cfg = {**DATA_CFG, **data, "root": str(root)}
    dataset = build_dataset(cfg, "test", build_transform(cfg, train=False) if transform else None)
    return dataset if corruption is None else dataset.with_corruption(corruption, deferred=deferred)


def textured_ramp(level, height=64, width=80):
    """A ramp plus a fixed texture of mean zero (whole periods of 16 pixels), within 0..255."""
    y, x = np.mgrid[:height, :width]
    texture = np.round(10 * np.sin(2 * np.pi * x / 16) * np.cos(2 * np.pi * y / 16))
    frames = level + RAMP_STEP * np.arange(FRAMES)[:, None, None] + texture
    return np.repeat(frames[..., None], 3, axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def ramp_root(tmp_path_factory):
    return write_root(tmp_path_factory.mktemp("textured"),
                      lambda label: textured_ramp(BASE_LEVEL[CLASSES[label]]))


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory):
    """Dark videos of 64 x 80 and bright ones of 48 x 64 (frame sizes differ, as in Kinetics)."""
    sizes = {"Dark": (64, 80), "Bright": (48, 64)}
    return write_root(tmp_path_factory.mktemp("mixed"),
                      lambda label: textured_ramp(BASE_LEVEL[CLASSES[label]], *sizes[CLASSES[label]]))


# --- the deferred dataset --------------------------------------------------------------

@pytest.mark.parametrize("data,wanted", [({}, CENTRE), ({"num_clips": 4}, sum(VIEWS, []))],
                         ids=["centre", "views"])
def test_deferred_items_are_the_clean_needed_frames_each_decoded_once(ramp_root, monkeypatch, data, wanted):
    reads = []
    read_frames = video_dataset.read_frames

    def reading(path, indices, backend):
        reads.append(list(indices))
        return read_frames(path, indices, backend)

    monkeypatch.setattr(video_dataset, "read_frames", reading)
    dataset = split_of(ramp_root, Corruption("gaussian_noise", 5), deferred=True, **data)
    for index, name in enumerate(["Dark", "Dark", "Bright", "Bright"]):
        reads.clear()
        pending, label = dataset[index]
        assert label == CLASSES.index(name) and pending.source == str(dataset.samples[index][0])
        assert pending.indices.dtype == np.int64 and pending.indices.tolist() == wanted
        assert pending.frames.dtype == torch.uint8 and tuple(pending.frames.shape) == (len(wanted), 64, 80, 3)
        # Clean: each frame has its ramp's mean level (the codec moves it by at most a level or so).
        levels = pending.frames.float().mean(dim=(1, 2, 3))
        ramp = BASE_LEVEL[name] + RAMP_STEP * torch.tensor(wanted, dtype=torch.float32)
        assert torch.allclose(levels, ramp, atol=1.5), levels
        assert reads == [sorted(set(wanted))]  # the shared frame 9 of the views is read once


def test_deferring_needs_a_frame_local_corruption_and_a_transform_that_draws_nothing(ramp_root):
    clean = split_of(ramp_root)
    with pytest.raises(ValueError, match="deferred=True.*frame-local.*fog"):
        clean.with_corruption(Corruption("fog"), deferred=True)
    with pytest.raises(ValueError, match="deferred=True.*frame-local"):
        clean.with_corruption(Corruption("frame_drop"), deferred=True)
    train = build_dataset({**DATA_CFG, "root": str(ramp_root)}, "train",
                          build_transform(DATA_CFG, train=True))
    with pytest.raises(ValueError, match="draws nothing"):
        train.with_corruption(Corruption("gaussian_noise"), deferred=True)
    with pytest.raises(ValueError, match="finish.*deferred=True"):
        clean.finish(PendingBatch(torch.zeros(1, 4, 64, 80, 3, dtype=torch.uint8),
                                  np.zeros((1, 4), np.int64), ["a/b.avi"]), "cpu")


CORRUPTIONS = [Corruption("gaussian_noise", 4, seed=3), Corruption("motion_blur", 2, seed=3),
               Corruption("contrast", 5, seed=3), Corruption("spatter", 3, seed=3),
               Corruption("impulse_noise", 3, seed=3, options={"temporal": "iid"})]


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=[c.name for c in CORRUPTIONS])
@pytest.mark.parametrize("data", [{}, MULTI_VIEW], ids=["centre", "views-x-crops"])
def test_finish_gives_the_batch_the_loader_items_stack_to(ramp_root, corruption, data):
    in_loader = split_of(ramp_root, corruption, **data)
    deferred = split_of(ramp_root, corruption, deferred=True, **data)
    pending, labels = next(iter(DataLoader(deferred, batch_size=3, collate_fn=collate_pending)))
    assert isinstance(pending.frames, torch.Tensor) and pending.indices.shape == (3, deferred.num_clips * 4)
    out = deferred.finish(pending, "cpu")
    expected = torch.stack([in_loader[i][0] for i in range(3)])
    assert out.shape == expected.shape == ((3, 3, 4, 56, 56) if not data else (3, 12, 3, 4, 56, 56))
    assert torch.equal(out, expected)
    assert not torch.equal(out, torch.stack([split_of(ramp_root, **data)[i][0] for i in range(3)]))
    assert labels.tolist() == [in_loader[i][1] for i in range(3)]


def test_frames_of_different_sizes_are_corrupted_one_item_at_a_time(mixed_root, monkeypatch):
    corruption = Corruption("gaussian_noise", 4, seed=3)
    calls = []
    real = registry.corrupt

    def counted(video, *args, **kwargs):
        calls.append(tuple(video.shape))
        return real(video, *args, **kwargs)

    monkeypatch.setattr(registry, "corrupt", counted)
    deferred = split_of(mixed_root, corruption, deferred=True)
    pending, _ = collate_pending([deferred[1], deferred[2]])  # a dark and a bright video
    assert [tuple(f.shape) for f in pending.frames] == [(4, 64, 80, 3), (4, 48, 64, 3)]
    out = deferred.finish(pending, "cpu")
    assert calls == [(4, 64, 80, 3), (4, 48, 64, 3)]
    in_loader = split_of(mixed_root, corruption)
    assert torch.equal(out, torch.stack([in_loader[1][0], in_loader[2][0]]))


def test_on_the_emulated_device_only_the_predictions_come_back(ramp_root, monkeypatch):
    # The batch goes to the device once; corruption, transform (resize, 3 crops, normalise)
    # and model run there; the host reads nothing back but the predictions.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "corruptions"))
    from test_device import DEVICE, EmulatedDevice, OnDevice, traffic

    monkeypatch.setattr(_ops, "PINNED_COPIES", (DEVICE.type,))
    corruption = Corruption("gaussian_noise", 4, seed=3)
    deferred = split_of(ramp_root, corruption, deferred=True, **MULTI_VIEW)
    batches = list(DataLoader(deferred, batch_size=3, collate_fn=collate_pending))
    model = Recording()
    with EmulatedDevice() as log:
        (predictions,), labels = predict([model], batches, DEVICE, finish=deferred.finish)
    from_device, _, _, reads = traffic(log)
    assert from_device == len(deferred) == 4 and not reads, (from_device, reads)
    for pending, _ in batches:  # each batch's clean frames went over once, asked not to wait
        copies = [entry for entry in log if entry[0] == "to_device" and entry[1] == pending.frames.numel()]
        assert len(copies) == 1 and copies[0][2], copies
    in_loader = split_of(ramp_root, corruption, **MULTI_VIEW)
    assert all(isinstance(x, OnDevice) for x in model.seen)
    seen = torch.cat([x.data_ for x in model.seen])
    assert torch.equal(seen, torch.stack([in_loader[i][0] for i in range(4)]).flatten(0, 1))
    assert predictions.tolist() == labels.tolist() == [0, 0, 1, 1]


# --- evaluate(corrupt_on=...) ----------------------------------------------------------

FRAME_LOCAL = ["gaussian_noise", "contrast"]


def run_pair(root, data, corruptions=FRAME_LOCAL, **kwargs):
    runs = {}
    for corrupt_on in ("loader", "device"):
        model = Recording()
        ckpt = checkpoint(model)
        ckpt.config["data"].update(data)
        runs[corrupt_on] = evaluate([ckpt], root, corruptions=corruptions, severities=[2, 5], seed=7,
                                    batch_size=3, progress=False, corrupt_on=corrupt_on, **kwargs), model.seen
    return runs


@pytest.mark.parametrize("data", [{}, MULTI_VIEW], ids=["centre", "views-x-crops"])
def test_device_and_loader_give_the_same_clips_and_predictions(ramp_root, data):
    runs = run_pair(ramp_root, data)
    (loader, seen_loader), (device, seen_device) = runs["loader"], runs["device"]
    assert loader.conditions == device.conditions and len(loader.conditions) == 5
    for condition in loader.conditions:
        np.testing.assert_array_equal(loader.predictions[0][condition], device.predictions[0][condition])
    assert len(seen_loader) == len(seen_device) == 2 * len(loader.conditions)  # batches of 3 and 1
    for a, b in zip(seen_loader, seen_device):
        assert torch.equal(a, b)
    assert not torch.equal(seen_device[0], seen_device[2])  # the clean clips differ from the corrupted


def test_device_and_loader_agree_when_frame_sizes_differ(mixed_root):
    runs = run_pair(mixed_root, {}, corruptions=["gaussian_noise"])
    (loader, seen_loader), (device, seen_device) = runs["loader"], runs["device"]
    for condition in loader.conditions:
        np.testing.assert_array_equal(loader.predictions[0][condition], device.predictions[0][condition])
    assert all(torch.equal(a, b) for a, b in zip(seen_loader, seen_device))


@pytest.fixture
def corruption_calls(monkeypatch, tmp_path):
    """Every use of a Corruption as (process id, method, clip dimensions, clips or frames; 0 for
    a frame map), from any process: loader workers are forked with the patch and append to the
    same file."""
    log = tmp_path / "corruption_calls.txt"

    def logging(method):
        real = getattr(Corruption, method)

        def logged(self, video, *args, **kwargs):
            shape = (video.ndim, video.shape[0]) if isinstance(video, torch.Tensor) else (0, 0)
            with open(log, "a") as f:
                f.write(f"{os.getpid()} {method} {shape[0]} {shape[1]}\n")
            return real(self, video, *args, **kwargs)
        monkeypatch.setattr(Corruption, method, logged)

    for method in ("__call__", "batch", "source_map"):
        logging(method)

    def calls():
        words = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return [(int(words[i]), words[i + 1], int(words[i + 2]), int(words[i + 3]))
                for i in range(0, len(words), 4)]
    return calls


def test_the_device_path_corrupts_whole_batches_in_the_main_process(ramp_root, corruption_calls):
    main = os.getpid()
    for corrupt_on in ("loader", "device"):
        evaluate([checkpoint(Brightness())], ramp_root, corruptions=["gaussian_noise"], severities=[3],
                 batch_size=3, num_workers=1, progress=False, corrupt_on=corrupt_on)
        calls = corruption_calls()
        if corrupt_on == "loader":  # one call per video, each in a loader worker
            assert len(calls) == 4 and all(pid != main and method == "__call__" and ndim == 4
                                           for pid, method, ndim, _ in calls), calls
        else:  # one call per batch (3 videos, then 1), after the loader, in this process
            assert calls == [(main, "batch", 5, 3), (main, "batch", 5, 1)], calls


@pytest.mark.parametrize("name", ["fog", "frame_drop", "jpeg_compression", "h264_crf"])
def test_other_corruptions_stay_in_the_loader_with_corrupt_on_device(ramp_root, corruption_calls, name):
    # fog needs the whole video, frame_drop is temporal (its frame map is drawn in the worker),
    # h264_crf re-encodes the stream, and jpeg_compression is computed on the host anyway: each
    # is applied per video in a worker.
    main = os.getpid()
    evaluate([checkpoint(Brightness())], ramp_root, corruptions=[name], severities=[3], batch_size=3,
             num_workers=1, progress=False, corrupt_on="device")
    calls = corruption_calls()
    assert calls and all(pid != main and used != "batch" for pid, used, _, _ in calls), calls
    method = "source_map" if name == "frame_drop" else "__call__"
    assert sum(used == method for _, used, _, _ in calls) == 4, calls


class Refuses(torch.nn.Module):
    def forward(self, x):
        raise AssertionError("the predictions should have come from the cache")


def test_corrupt_on_is_not_part_of_the_cache_key(ramp_root, tmp_path):
    # Both models have no weights, so the same fingerprint: only corrupt_on differs.
    first = evaluate([checkpoint(Brightness())], ramp_root, corruptions=["gaussian_noise"], severities=[3],
                     batch_size=4, progress=False, corrupt_on="loader", cache_dir=tmp_path)
    again = evaluate([checkpoint(Refuses())], ramp_root, corruptions=["gaussian_noise"], severities=[3],
                     batch_size=4, progress=False, corrupt_on="device", cache_dir=tmp_path)
    for condition in (CLEAN, Condition("gaussian_noise", 3)):
        np.testing.assert_array_equal(first.predictions[0][condition], again.predictions[0][condition])


def test_auto_corrupts_on_the_device_only_on_cuda_and_only_what_can_go_there():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    noise, fog = Corruption("gaussian_noise"), Corruption("fog")
    assert corrupts_on_device(noise, cuda, "auto") and corrupts_on_device(noise, cpu, "device")
    assert not corrupts_on_device(noise, cpu, "auto") and not corrupts_on_device(noise, cuda, "loader")
    for other in (fog, Corruption("frame_drop"), Corruption("h264_crf"), Corruption("jpeg_compression"),
                  Corruption("frost", options={"temporal": "iid"})):  # frost: frame-local only when static
        assert not corrupts_on_device(other, cuda, "auto") and not corrupts_on_device(other, cuda, "device")
    assert corrupts_on_device(Corruption("frost"), cuda, "auto")


def test_bad_corrupt_on_is_refused(ramp_root, tmp_path):
    with pytest.raises(ValueError, match="corrupt_on must be one of loader, device, auto; got 'gpu'"):
        evaluate([checkpoint(Brightness())], ramp_root, corruptions=["fog"], severities=[1],
                 progress=False, corrupt_on="gpu")
    (tmp_path / "fog" / "1").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"corrupt_on='device'.*on the fly.*already corrupted"):
        evaluate([checkpoint(Brightness())], ramp_root, corrupted=tmp_path, progress=False,
                 corrupt_on="device")


def test_the_recipe_passes_corrupt_on(monkeypatch, tmp_path):
    from accelerate.state import AcceleratorState, GradientState

    import vidsparse.robustness as robustness

    got = {}

    def stop(*args, **kwargs):
        got.update(kwargs)
        raise ValueError("stopped here")

    monkeypatch.setattr(robustness, "evaluate", stop)
    monkeypatch.setattr(evaluate_module, "load_checkpoint", lambda *a, **k: None)
    base = [str(RECIPE), "--checkpoint", "runs/x", "--data", "data", "--out", str(tmp_path), "--cpu"]
    try:
        for extra, expected in (([], "auto"), (["--corrupt-on", "device"], "device")):
            monkeypatch.setattr(sys, "argv", base + extra)
            with pytest.raises(SystemExit, match="stopped here"):
                runpy.run_path(str(RECIPE), run_name="__main__")
            assert got["corrupt_on"] == expected
        monkeypatch.setattr(sys, "argv", base + ["--corrupt-on", "gpu"])
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(RECIPE), run_name="__main__")
        assert exit_.value.code == 2  # argparse: invalid choice
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
