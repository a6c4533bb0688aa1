"""A cache of per-video facts (frame count, fps, size), built once per dataset root.

Datasets need every video's frame count to place clips, and must find undecodable files
before training starts, not in a loader worker mid-epoch. Opening 300k Kinetics headers takes
a while, so the answers are kept in ``<root>/.vidsparse_index.json`` (written atomically),
keyed by the path relative to the root and checked against the file's size and
modification time: a file that changed is read again. Files that could not be read are
cached too, with the reason. Where the root is not writable (a read-only mount), the cache
goes to ``$XDG_CACHE_HOME/vidsparse/`` (``~/.cache/vidsparse/``), named after the absolute
root.

Example:
    >>> infos, errors = index_videos("data/k400", paths)
    >>> infos[paths[0]].num_frames
    300
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm

from vidsparse.data.decode import VideoInfo, read_frames, video_info
from vidsparse.files import atomic_write

INDEX_FILE = ".vidsparse_index.json"
INDEX_VERSION = 2  # 2: a video counts as usable only if its last frame decodes


def user_cache_dir() -> Path:
    """Where caches go when a dataset root is not writable."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidsparse"


def cache_paths(root: str | os.PathLike) -> list[Path]:
    """Candidate index files of ``root``, preferred first: next to the data, then per user."""
    root = Path(root).resolve()
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:16]
    return [root / INDEX_FILE, user_cache_dir() / f"index-{root.name}-{digest}.json"]


def index_videos(
    root: str | os.PathLike, paths: Iterable[str | os.PathLike], progress: bool = True
) -> tuple[dict[Path, VideoInfo], dict[Path, str]]:
    """Facts about each of ``paths`` (files under ``root``), from the cache where still valid.

    Returns ``(infos, errors)``: every path lands in exactly one; ``errors`` maps a missing,
    empty or undecodable file (no video stream, no frames, unreadable container) to the
    reason. Only new or changed files are opened; the cache is rewritten only if something
    was read.
    """
    root = Path(root)
    entries = _load(root)
    resolved_root = root.resolve()
    infos: dict[Path, VideoInfo] = {}
    errors: dict[Path, str] = {}
    todo: list[tuple[Path, str, os.stat_result]] = []
    for path in map(Path, paths):
        try:
            stat = path.stat()
        except OSError:
            errors[path] = "missing: file not found"
            continue
        key = _key(path, resolved_root)
        entry = entries.get(key)
        if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            _sort(path, entry, infos, errors)
        else:
            todo.append((path, key, stat))
    probed: dict[str, dict] = {}
    for path, key, stat in tqdm(todo, desc=f"indexing videos in {root}", unit="video",
                                disable=not progress or not todo, leave=False):
        entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **_probe(path, stat)}
        probed[key] = entry
        _sort(path, entry, infos, errors)
    if probed:
        # Another process (a second rank, a second dataset split) may have saved entries
        # since we loaded: start from the file as it is now, not as it was.
        _save(root, {**entries, **_load(root), **probed})
    return infos, errors


def _probe(path: Path, stat: os.stat_result) -> dict:
    """Open ``path``, read its header and decode its last frame: the check that it decodes."""
    if stat.st_size == 0:
        return {"error": "empty file (0 bytes)"}
    try:
        info = video_info(path)
        if info.num_frames <= 0:
            return {"error": "undecodable: no frames"}
        # A file cut short can keep a header that counts every frame (an MP4 with its index
        # in front): decoding the last frame finds it now, not in a loader worker mid-epoch.
        read_frames(path, [info.num_frames - 1])
    except Exception as exc:  # VideoDecodeError, or an FFmpeg error while counting frames
        return {"error": f"undecodable: {exc}"}
    return {"num_frames": info.num_frames, "fps": info.fps, "height": info.height,
            "width": info.width}


def _sort(path: Path, entry: dict, infos: dict, errors: dict) -> None:
    if "error" in entry:
        errors[path] = entry["error"]
    else:
        infos[path] = VideoInfo(int(entry["num_frames"]), float(entry["fps"]),
                                int(entry["height"]), int(entry["width"]))


def _key(path: Path, resolved_root: Path) -> str:
    try:
        return path.resolve().relative_to(resolved_root).as_posix()
    except ValueError:  # outside the root: an absolute key still identifies it
        return str(path.resolve())


def _load(root: Path) -> dict[str, dict]:
    """Entries of the first readable index file of ``root`` (none: empty)."""
    for path in cache_paths(root):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # absent or damaged: rebuilt from the videos
        if isinstance(data, dict) and data.get("version") == INDEX_VERSION:
            return dict(data.get("videos", {}))
    return {}


def _save(root: Path, entries: dict[str, dict]) -> Path | None:
    """Write the index next to the data, else in the user cache; None if neither works."""
    text = json.dumps({"version": INDEX_VERSION, "root": str(root.resolve()), "videos": entries},
                      sort_keys=True, separators=(",", ":"))
    for path in cache_paths(root):
        try:
            write_atomic(path, text)
            return path
        except OSError:
            continue
    return None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The mode a plain open() gives: a dataset's index is shared by the group.
    with atomic_write(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
