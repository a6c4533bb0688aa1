"""Files written through a temporary name end with the modes a plain ``open()`` would give.

``tempfile.mkstemp`` makes a private (0600) file and ``mkdtemp`` a private (0700) folder; a
writer that renames one into place must not leave it private: a corrupted dataset, a
checkpoint or a report is meant for the other people of the group. Each writer runs under
several umasks and its output must be exactly ``0o666 & ~umask`` (files) and
``0o777 & ~umask`` (folders).
"""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
UMASKS = [0o022, 0o002, 0o077]


def _load_script(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=UMASKS, ids=[f"umask{m:03o}" for m in UMASKS])
def umask(request):
    """Run the test under ``request.param`` as the process umask, restored afterwards."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def file_mode(mask: int) -> int:
    return 0o666 & ~mask


def dir_mode(mask: int) -> int:
    return 0o777 & ~mask


def _clip(frames: int = 4, size: tuple[int, int] = (16, 16)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (frames, *size, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- the helpers

def test_atomic_write_gives_a_new_file_the_umask_mode(tmp_path, umask):
    from vidsparse.files import atomic_write

    with atomic_write(tmp_path / "a.bin") as handle:
        handle.write(b"data")
    with atomic_write(tmp_path / "b.txt", "w", encoding="utf-8", fsync=True) as handle:
        handle.write("text")
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "text"
    assert mode(tmp_path / "a.bin") == mode(tmp_path / "b.txt") == file_mode(umask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt"]


@pytest.mark.parametrize("old_mode", [0o600, 0o644, 0o664])
def test_a_replaced_file_gets_the_umask_mode_like_a_fresh_open(tmp_path, umask, old_mode):
    from vidsparse.files import atomic_write

    path = tmp_path / "manifest.json"
    path.write_text("old")
    path.chmod(old_mode)
    with atomic_write(path, "w") as handle:
        handle.write("new")
    assert path.read_text() == "new" and mode(path) == file_mode(umask)


def test_an_error_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, umask):
    from vidsparse.files import atomic_path, atomic_write

    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(path, "w") as handle:
            handle.write("half of the new")
            raise RuntimeError("disk full")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_atomic_path_names_the_temporary_beside_the_target(tmp_path, umask):
    from vidsparse.corruptions.generate import TEMPORARY
    from vidsparse.files import atomic_path

    path = tmp_path / "clip.mp4"
    with atomic_path(path, prefix=".clip.", suffix=".mp4") as tmp:
        # Beside the target (a rename, not a copy), hidden, and with the extension that
        # writers choosing a format by name (PyAV, matplotlib) need.
        assert tmp.parent == tmp_path and tmp.name.startswith(".clip.") and tmp.suffix == ".mp4"
        assert tmp.exists() and mode(tmp) == file_mode(umask)
        # The shape corrupt_dataset recognises (and deletes) as a killed run's leftover.
        assert TEMPORARY.fullmatch(tmp.name)
        tmp.write_bytes(b"x")
    assert path.read_bytes() == b"x" and not tmp.exists()


def test_atomic_write_rejects_a_mode_that_does_not_write_a_new_file(tmp_path):
    from vidsparse.files import atomic_write

    with pytest.raises(ValueError, match=r"atomic_write.*'a'.*'w', 'wb'"):
        with atomic_write(tmp_path / "log.txt", "a"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_make_temp_dir_gets_the_umask_mode_and_a_fresh_name(tmp_path, umask):
    from vidsparse.files import make_temp_dir

    first = make_temp_dir(tmp_path, ".final.")
    second = make_temp_dir(tmp_path, ".final.")
    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith(".final.") and first.is_dir()
    assert mode(first) == mode(second) == dir_mode(umask)


def test_umask_reads_the_umask_and_leaves_it_set(umask):
    from vidsparse.files import umask as read_umask

    assert read_umask() == umask
    assert read_umask() == umask  # still set: not left at 0 by the first call


def test_reset_mode_gives_a_private_file_and_folder_the_umask_mode(tmp_path, umask):
    from vidsparse.files import reset_mode

    private_file, private_dir = tmp_path / "model.safetensors", tmp_path / "step_1"
    private_file.write_bytes(b"x")
    private_dir.mkdir()
    private_file.chmod(0o600)
    private_dir.chmod(0o700)
    reset_mode(private_file)
    reset_mode(private_dir)
    assert mode(private_file) == file_mode(umask) and mode(private_dir) == dir_mode(umask)


# --------------------------------------------------------------------------- the writers

def test_save_final_directory_and_files(tmp_path, umask):
    from vidsparse.checkpoint import save_final

    model = torch.nn.Linear(3, 2)
    final = save_final(tmp_path / "run" / "final", model, {"model": {"name": "x"}},
                       masks={"weight": torch.ones(2, 3, dtype=torch.bool)}, stats={"density": 1})
    assert mode(final) == dir_mode(umask)
    names = sorted(p.name for p in final.iterdir())
    assert names == ["config.yaml", "masks.safetensors", "model.safetensors", "sparsity.json"]
    for name in names:
        assert mode(final / name) == file_mode(umask), name
    assert sorted(p.name for p in final.parent.iterdir()) == ["final"]
    # Saved again over the first: the new directory replaces it with the same modes.
    save_final(final, model, {"model": {"name": "x"}})
    assert mode(final) == dir_mode(umask) and mode(final / "model.safetensors") == file_mode(umask)


def test_report_files(tmp_path, umask):
    from vidsparse.robustness import CLEAN, Condition, Evaluation, report

    fog = Condition("fog", 1)
    configs = [{"model": {"name": "r3d_tiny", "num_classes": 2}, "seed": 0,
                "sparsity": {"method": method, "density": density}}
               for method, density in (("dense", 1.0), ("rigl", 0.5))]
    ev = Evaluation(checkpoints=["runs/0", "runs/1"], configs=configs, data_root="data",
                    corrupted=None, seed=0, videos=["A/a.avi", "B/b.avi"],
                    labels=np.array([0, 1]), conditions=[CLEAN, fog],
                    predictions=[{CLEAN: np.array([0, 1]), fog: np.array([0, 0])}] * 2)
    paths = report.write_report(ev, tmp_path / "report")
    assert {"results", "csv", "plot", "family_plot", "report"} <= set(paths)
    for path in paths.values():
        assert mode(path) == file_mode(umask), path.name
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(
        p.name for p in paths.values())


def test_dataset_index_file(tmp_path, umask):
    from vidsparse.data.index import write_atomic

    path = tmp_path / "root" / ".vidsparse_index.json"
    write_atomic(path, "{}")
    assert path.read_text() == "{}" and mode(path) == file_mode(umask)


def test_write_video(tmp_path, umask):
    from vidsparse.data.decode import read_video, write_video

    path = write_video(tmp_path / "v" / "clip.mp4", _clip())
    assert read_video(path)[0].shape == (4, 16, 16, 3)
    assert mode(path) == file_mode(umask)
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]


def test_corrupted_dataset_videos_and_manifest(tmp_path, umask):
    from vidsparse.corruptions import corrupt_dataset
    from vidsparse.data.decode import write_video

    src = tmp_path / "src"
    old = os.umask(0o022)  # the source as anyone's; only the copy's modes are under test
    try:
        write_video(src / "test" / "cat" / "a.mp4", _clip(), 25.0)
        write_video(src / "test" / "dog" / "b.mp4", _clip(), 25.0)
    finally:
        os.umask(old)
    dst = tmp_path / "dst"
    summary = corrupt_dataset(src, dst, ["brightness"], [1], progress=False)
    assert not summary.failed
    videos = sorted((dst / "brightness" / "1").rglob("*.mp4"))
    assert [p.name for p in videos] == ["a.mp4", "b.mp4"]
    for path in [*videos, dst / "manifest.json"]:
        assert mode(path) == file_mode(umask), path
    for folder in [dst, *(p for p in dst.rglob("*") if p.is_dir())]:
        assert mode(folder) == dir_mode(umask), folder
    assert not [p for p in dst.rglob(".*")], "a temporary was left behind"


@pytest.mark.parametrize("umask", [0o002, 0o077], indirect=True, ids=["umask002", "umask077"])
def test_make_subset_folder_and_files(synthetic_ucf101, tmp_path, umask):
    tool = _load_script("make_subset", REPO / "data_tools" / "make_subset.py")
    dst = tmp_path / "sub"
    tool.main(["--src", str(synthetic_ucf101), "--dst", str(dst), "--classes", "2",
               "--videos-per-class", "2"])
    assert mode(dst) == dir_mode(umask)
    for path in dst.rglob("*"):
        if path.is_symlink():
            continue  # a link's own mode means nothing; its target is the source's file
        assert mode(path) == (dir_mode(umask) if path.is_dir() else file_mode(umask)), path
    assert (dst / "subset_manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_benchmark_results_file(tmp_path, umask):
    run_all = _load_script("run_all", REPO / "benchmarks" / "run_all.py")
    path = tmp_path / "results.md"
    run_all.write_atomic(path, "# results\n")
    assert path.read_text() == "# results\n" and mode(path) == file_mode(umask)
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]


@pytest.mark.slow
def test_training_checkpoints_final_and_metrics(synthetic_ucf101, tmp_path):
    """recipes/train.py under a group umask: its checkpoints (accelerate writes the model with
    safetensors, which makes files 0600), ``final/`` and ``metrics.csv`` are group-readable."""
    import subprocess

    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_rigl.yaml",
         "max_steps=2", "batch_size=4", "checkpoint_every=1", "eval_at_end=false",
         f"data.root={synthetic_ucf101}", f"output_dir={out}"],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, umask=0o002,
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    step = out / "checkpoints" / "step_1"
    checked = [step / "model.safetensors", out / "final" / "model.safetensors",
               out / "final" / "masks.safetensors", out / "metrics.csv"]
    for path in [*step.iterdir(), *checked]:
        assert mode(path) == file_mode(0o002), path
    for folder in (step, out / "final"):
        assert mode(folder) == dir_mode(0o002), folder
    assert sorted(p.name for p in step.parent.iterdir()) == ["step_1"]
