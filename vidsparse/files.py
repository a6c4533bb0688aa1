"""Writing files and folders through a temporary name, with the modes ``open()`` would give.

A writer that renames a finished temporary into place never leaves half a file under the
final name. ``tempfile.mkstemp`` and ``mkdtemp`` are the usual way to get such a name, but
they create the file 0600 and the folder 0700, and the rename keeps that: a dataset, a
checkpoint or a report written for a group would end readable by its owner only. The
helpers here create the temporary with ``os.open(..., 0o666)`` / ``os.mkdir(..., 0o777)``
instead, so the kernel applies the process umask (and any default ACL of the folder) exactly
as it does for an ordinary ``open(path, "w")``.

Some libraries write through a private temporary themselves (``safetensors.torch.save_file``
since safetensors 0.8); :func:`reset_mode` gives such a file the mode ``open()`` would have.
Only the standard library is used.

Example:
    >>> with atomic_write("out/manifest.json", "w", encoding="utf-8") as f:
    ...     f.write(text)
    >>> with atomic_path("out/clip.mp4", suffix=".mp4") as tmp:
    ...     encode(tmp)  # anything that writes to a path
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_path", "atomic_write", "fsync_dir", "make_temp_dir", "reset_mode", "umask"]

# The characters and length of tempfile's names: tools that clean up after a killed run
# (corruptions.generate.TEMPORARY) recognise temporaries by this shape.
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_NAME_LENGTH = 8
_ATTEMPTS = 1000
_WRITE_MODES = ("w", "wt", "wb")


def umask() -> int:
    """The process umask, read without changing it where the system allows.

    Linux (4.7 and later) reports it in ``/proc/self/status``. Elsewhere it is set to 0 and
    back at once; a file another thread creates in between gets a permissive mode, so there
    call it from one thread, or not while other threads create files.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def reset_mode(path: str | os.PathLike) -> None:
    """Give ``path`` the permission bits a file (folder) created now would get from ``open()``
    (``mkdir``): ``0o666`` (``0o777``) less the umask.

    For files that a library wrote private through its own temporary (``safetensors`` since
    0.8 makes every file 0600), so that a checkpoint shared with a group can be read by it.
    """
    full = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, full & ~umask())


def _candidate(parent: Path, prefix: str, suffix: str) -> Path:
    tag = "".join(secrets.choice(_NAME_CHARS) for _ in range(_NAME_LENGTH))
    return parent / f"{prefix}{tag}{suffix}"


def _create_file(parent: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new empty file in ``parent`` (umask mode); its open descriptor and path."""
    flags = (os.O_RDWR | os.O_CREAT | os.O_EXCL
             | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    for _ in range(_ATTEMPTS):
        path = _candidate(parent, prefix, suffix)
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name {prefix}XXXXXXXX{suffix} in {parent}")


def make_temp_dir(parent: str | os.PathLike, prefix: str, suffix: str = "") -> Path:
    """Create a new, empty folder ``<parent>/<prefix>XXXXXXXX<suffix>`` and return its path.

    Unlike ``tempfile.mkdtemp`` the folder gets ``0o777 & ~umask``, as ``os.mkdir`` gives, so
    it can be renamed into place as the finished result. The caller removes it on failure.

    Args:
        parent: an existing folder (the one the result will be renamed into, so that the
            rename stays on one filesystem).
        prefix: the start of the name, e.g. ``".final."`` (a leading dot hides it).
        suffix: the end of the name.
    """
    parent = Path(parent)
    for _ in range(_ATTEMPTS):
        path = _candidate(parent, prefix, suffix)
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name {prefix}XXXXXXXX{suffix} in {parent}")


@contextmanager
def atomic_path(path: str | os.PathLike, *, prefix: str | None = None, suffix: str = "",
                fsync: bool = False) -> Iterator[Path]:
    """Yield the path of a new empty file beside ``path``; rename it to ``path`` on success.

    For writers that take a file name rather than a file object (an encoder, ``savefig``).
    The temporary has the mode a fresh ``open()`` would give (``0o666 & ~umask``), and so has
    ``path`` afterwards, whatever mode a file it replaces had. If the block raises, the
    temporary is removed and an existing ``path`` is left as it was.

    Args:
        path: the file to write; its folder must exist.
        prefix: the temporary's name starts with this; default ``".<name>."``.
        suffix: the temporary's name ends with this (e.g. ``".mp4"`` for a writer that picks
            the format from the extension).
        fsync: flush the file, and the folder after the rename, to disk.
    """
    path = Path(path)
    fd, tmp = _create_file(path.parent, f".{path.name}." if prefix is None else prefix, suffix)
    os.close(fd)
    try:
        yield tmp
        _finish(tmp, path, fsync)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                 newline: str | None = None, fsync: bool = False, prefix: str | None = None,
                 suffix: str = "") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it to ``path`` on success.

    Readers see the old file or the complete new one, never part of it. The result has the
    mode a fresh ``open(path, mode)`` would give; if the block raises, the temporary is removed
    and an existing ``path`` is left untouched.

    Args:
        path: the file to write; its folder must exist.
        mode: ``"wb"`` (default), ``"w"`` or ``"wt"``.
        encoding, newline: as for ``open()`` in text mode.
        fsync: flush the file, and the folder after the rename, to disk.
        prefix, suffix: the temporary's name, as for :func:`atomic_path`.

    Raises:
        ValueError: for a mode other than those above (appending or reading makes no sense
            for a file that replaces ``path`` whole).
    """
    if mode not in _WRITE_MODES:
        raise ValueError(f"atomic_write({path}): mode {mode!r} is not one of 'w', 'wb', 'wt'")
    path = Path(path)
    fd, tmp = _create_file(path.parent, f".{path.name}." if prefix is None else prefix, suffix)
    try:
        try:
            handle = os.fdopen(fd, mode, encoding=encoding, newline=newline)
        except BaseException:
            os.close(fd)  # an unknown encoding, say: nothing owns the descriptor yet
            raise
        with handle:
            yield handle
        _finish(tmp, path, fsync)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _finish(tmp: Path, path: Path, fsync: bool) -> None:
    """Rename the written ``tmp`` to ``path``; with ``fsync``, on disk before and after."""
    if fsync:
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush the listing of ``folder`` to disk, where the filesystem can (a rename inside it
    is then durable)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems (and Windows) cannot flush a folder
        pass
    finally:
        os.close(fd)
