"""vidsparse.checkpoint.replace_dir: a directory is swapped in whole, the old one kept until then."""

import os
from pathlib import Path

import pytest

from vidsparse import checkpoint
from vidsparse.checkpoint import fsync_tree, replace_dir


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
