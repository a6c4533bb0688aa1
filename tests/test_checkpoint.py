"""vidsparse.checkpoint: replace_dir swaps a directory in whole (the old one kept until then);
training checkpoints are found, checked, recovered after a kill and committed, on tiny fake
checkpoint folders (no launched script)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from vidsparse import checkpoint
from vidsparse.checkpoint import (STEP_FILE, CheckpointError, checkpoint_problem, commit_step_checkpoint,
                                  fsync_tree, newest_checkpoint, read_step_file, recover_interrupted_writes,
                                  replace_dir, resume_source, step_dirs, temp_step_dir)


def make(path: Path, **files: str) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def contents(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


def test_replace_dir_swaps_in_the_new_directory_and_leaves_nothing_else(tmp_path):
    make(tmp_path / "final", a="old", b="old")
    make(tmp_path / ".tmp", a="new", c="new")
    replace_dir(tmp_path / ".tmp", tmp_path / "final")
    assert contents(tmp_path / "final") == {"a": "new", "c": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    make(tmp_path / ".tmp2", d="first")  # no directory there yet: a plain rename
    replace_dir(tmp_path / ".tmp2", tmp_path / "fresh")
    assert contents(tmp_path / "fresh") == {"d": "first"}


def test_a_failure_between_the_renames_keeps_the_old_directory_whole(tmp_path, monkeypatch):
    make(tmp_path / "final", a="old", b="old")
    make(tmp_path / ".tmp", a="new")
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # the new one's rename: as if the process died here
            raise OSError("killed")
        real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(OSError, match="killed"):
        replace_dir(tmp_path / ".tmp", tmp_path / "final")
    assert calls == [("final", ".old_final"), (".tmp", "final")]
    assert contents(tmp_path / ".old_final") == {"a": "old", "b": "old"}
    assert contents(tmp_path / ".tmp") == {"a": "new"}


def test_fsync_tree_flushes_every_file_and_folder(tmp_path, monkeypatch):
    make(tmp_path / "run" / "sub", x="1")
    (tmp_path / "run" / "y").write_text("2")
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))  # the path behind fd (Linux)
        real(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    fsync_tree(tmp_path / "run")
    run = (tmp_path / "run").resolve()
    assert set(synced) == {run, run / "sub", run / "sub" / "x", run / "y"}


# ------------------------------------------------------------------ training checkpoints
# Tiny fake checkpoints: a few files and the step file that lists them, as
# commit_step_checkpoint writes it (no model, no Accelerate).


def fake_checkpoint(root: Path, step: int, files: dict[str, bytes] | None = None,
                    listed: bool = True) -> Path:
    """``root/step_<step>`` holding ``files`` and a step file (listing them if ``listed``)."""
    files = {"model.safetensors": b"weights", "optimizer.bin": b"moments!"} if files is None else files
    directory = root / f"step_{step}"
    directory.mkdir(parents=True)
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    position = {"step": step, "mask_update_steps": []}
    if listed:
        position["files"] = {name: len(data) for name, data in files.items()}
    (directory / STEP_FILE).write_text(json.dumps(position))
    return directory


def test_step_dirs_lists_step_folders_newest_first_by_number(tmp_path):
    for step in (9, 10, 2):
        fake_checkpoint(tmp_path, step)
    (tmp_path / "step_x").mkdir()  # not a step number
    (tmp_path / "step_5").write_text("a file, not a folder")
    (tmp_path / ".tmp_step_11").mkdir()
    assert [(n, p.name) for n, p in step_dirs(tmp_path)] == [(10, "step_10"), (9, "step_9"), (2, "step_2")]
    assert step_dirs(tmp_path / "missing") == []


def test_checkpoint_problem_names_what_is_wrong(tmp_path):
    good = fake_checkpoint(tmp_path, 1, {"model.safetensors": b"12345", "sub/rng.pkl": b"ab"})
    assert checkpoint_problem(good) is None
    old_style = fake_checkpoint(tmp_path, 2, listed=False)  # no file list: taken as it is
    assert checkpoint_problem(old_style) is None

    short = fake_checkpoint(tmp_path, 3, {"model.safetensors": b"12345"})
    (short / "model.safetensors").write_bytes(b"123")
    assert checkpoint_problem(short) == "model.safetensors has 3 bytes, 5 were written"
    missing = fake_checkpoint(tmp_path, 4, {"model.safetensors": b"1", "sub/rng.pkl": b"2"})
    (missing / "sub" / "rng.pkl").unlink()
    assert checkpoint_problem(missing) == "sub/rng.pkl is missing"
    unfinished = fake_checkpoint(tmp_path, 5)
    (unfinished / STEP_FILE).unlink()
    assert checkpoint_problem(unfinished) == f"no {STEP_FILE}"
    for text in ("{not json", '{"files": {}}', '{"step": "five"}', '{"step": 6, "files": [1]}'):
        broken = tmp_path / "broken"
        shutil.rmtree(broken, ignore_errors=True)
        broken.mkdir()
        (broken / STEP_FILE).write_text(text)
        assert checkpoint_problem(broken).startswith(f"unreadable {STEP_FILE} ("), text


def test_newest_checkpoint_takes_the_highest_complete_step_and_reports_the_skipped(tmp_path):
    fake_checkpoint(tmp_path, 9)
    fake_checkpoint(tmp_path, 10)  # 10 > 9 by number, though "step_10" < "step_9" as text
    assert newest_checkpoint(tmp_path) == tmp_path / "step_10"
    cut = fake_checkpoint(tmp_path, 12, {"model.safetensors": b"12345"})
    (cut / "model.safetensors").write_bytes(b"1")
    (fake_checkpoint(tmp_path, 11) / STEP_FILE).unlink()
    skipped = []
    assert newest_checkpoint(tmp_path, lambda path, problem: skipped.append((path.name, problem))) \
        == tmp_path / "step_10"
    assert skipped == [("step_12", "model.safetensors has 1 bytes, 5 were written"),
                       ("step_11", f"no {STEP_FILE}")]
    assert newest_checkpoint(tmp_path / "missing") is None


def test_recover_interrupted_writes_removes_temporaries_and_restores_a_lone_old_copy(tmp_path):
    fake_checkpoint(tmp_path, 2)
    lone = fake_checkpoint(tmp_path, 3, {"model.safetensors": b"old three"})
    os.replace(lone, tmp_path / ".old_step_3")  # killed between replace_dir's two renames
    fake_checkpoint(tmp_path, 4)
    (tmp_path / ".old_step_4").mkdir()  # the new step_4 is in place: the old copy is spare
    (tmp_path / ".tmp_step_5").mkdir()  # a write cut short
    (tmp_path / ".tmp_step_5" / "model.safetensors").write_bytes(b"half")
    lines = recover_interrupted_writes(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_2", "step_3", "step_4"]
    assert (tmp_path / "step_3" / "model.safetensors").read_bytes() == b"old three"
    assert checkpoint_problem(tmp_path / "step_3") is None
    note = "(left by an interrupted checkpoint write)"
    assert lines == [f"restoring {tmp_path / 'step_3'} from {tmp_path / '.old_step_3'} {note}",
                     f"removing {tmp_path / '.old_step_4'} {note}",
                     f"removing {tmp_path / '.tmp_step_5'} {note}"]
    assert recover_interrupted_writes(tmp_path) == []  # nothing left to do


def test_resume_none_refuses_an_earlier_runs_checkpoints_naming_them_in_step_order(tmp_path):
    assert resume_source("none", tmp_path / "checkpoints") is None  # no folder yet
    (tmp_path / ".tmp_step_1").mkdir()  # a temporary is no checkpoint of an earlier run
    assert resume_source("none", tmp_path) is None
    fake_checkpoint(tmp_path, 10)
    (tmp_path / "step_2").mkdir()  # incomplete ones count: they are that run's too
    with pytest.raises(CheckpointError) as error:
        resume_source("none", tmp_path)
    assert str(error.value) == (
        f"resume=none but {tmp_path} already holds checkpoints of an earlier run (step_2, step_10); "
        "continue that run with resume=auto, or start over in another output_dir (or after "
        "deleting them)")


def test_resume_auto_and_a_named_folder(tmp_path):
    assert resume_source("auto", tmp_path / "none_yet") is None
    fake_checkpoint(tmp_path, 3)
    (fake_checkpoint(tmp_path, 4) / "optimizer.bin").unlink()
    skipped = []
    assert resume_source("auto", tmp_path, lambda p, why: skipped.append(p.name)) == tmp_path / "step_3"
    assert skipped == ["step_4"]
    assert resume_source(str(tmp_path / "step_3"), tmp_path) == tmp_path / "step_3"
    with pytest.raises(CheckpointError, match=r"resume=.*step_4: .*step_4 is not a complete "
                                              r"checkpoint \(optimizer.bin is missing\)"):
        resume_source(str(tmp_path / "step_4"), tmp_path)
    with pytest.raises(CheckpointError, match=rf"no {STEP_FILE}"):
        resume_source(str(tmp_path / "elsewhere"), tmp_path)


def test_commit_step_checkpoint_lists_the_files_and_swaps_the_folder_in_whole(tmp_path):
    fake_checkpoint(tmp_path, 6, {"stale.bin": b"from an older run"})
    tmp = temp_step_dir(tmp_path, 6)
    (tmp / "sub").mkdir(parents=True)
    (tmp / "model.safetensors").write_bytes(b"1234567")
    (tmp / "sub" / "rng.pkl").write_bytes(b"ab")
    final = commit_step_checkpoint(tmp_path, 6, mask_update_steps=[3, 6])
    assert final == tmp_path / "step_6" and not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_6"]  # no .old_ left either
    assert read_step_file(final) == {"step": 6, "mask_update_steps": [3, 6],
                                     "files": {"model.safetensors": 7, "sub/rng.pkl": 2}}
    assert not (final / "stale.bin").exists()
    assert checkpoint_problem(final) is None and newest_checkpoint(tmp_path) == final
    with pytest.raises(ValueError, match="'step' and 'files'"):
        commit_step_checkpoint(tmp_path, 7, files={})
