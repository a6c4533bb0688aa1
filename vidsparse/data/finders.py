"""Finding video files on disk: the one place that lists folders and matches names loosely.

Real copies of the datasets differ from their annotations in case (UCF101's own
``HandstandPushups/v_HandStandPushups_*``) and in how label folders spell spaces and
punctuation (Kinetics downloaders), so the layouts look videos up through these finders
rather than by joining paths.
"""

from __future__ import annotations

import os
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv")


def existing_root(root: str | os.PathLike) -> Path:
    """``root`` as a Path; FileNotFoundError naming it when it is not a directory."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist")
    return root


def subdirs(folder: Path) -> list[Path]:
    """Sorted visible sub-folders of ``folder``."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def video_files(folder: Path) -> list[Path]:
    """Sorted visible files of ``folder`` ending in one of :data:`VIDEO_EXTENSIONS` (any case)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS
                  and not p.name.startswith(".") and p.is_file())


def folder_key(name: str) -> str:
    """Label folder names compared without case, spaces/underscores, quotes, parentheses."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


class VideoFinder:
    """Finds ``<stem>.<video ext>`` in ``root/<label>/`` (the label folder matched without
    case, spaces, underscores, quotes or parentheses) or directly in ``root/``; each folder
    is listed once. ``find(label, stem)`` returns the path or None.

    Example:
        >>> finder = VideoFinder(Path("k400/train"))
        >>> finder.find("passing American football (in game)", "abc_000010_000020")
        PosixPath('k400/train/passing_american_football_in_game/abc_000010_000020.mp4')
    """

    def __init__(self, root: Path):
        self.root = root
        self._folders: dict[str, Path] | None = None
        self._files: dict[Path, dict[str, Path]] = {}

    def _listing(self, folder: Path) -> dict[str, Path]:
        if folder not in self._files:
            found: dict[str, Path] = {}
            for entry in sorted(folder.iterdir()) if folder.is_dir() else ():
                if entry.suffix.lower() in VIDEO_EXTENSIONS and entry.is_file():
                    # .mp4 first: the name the annotations imply wins over other containers
                    if entry.stem not in found or entry.suffix.lower() == ".mp4":
                        found[entry.stem] = entry
            self._files[folder] = found
        return self._files[folder]

    def find(self, label: str, stem: str) -> Path | None:
        """The video named ``stem`` under ``label``'s folder, else directly under the root."""
        if self._folders is None:
            self._folders = {folder_key(p.name): p for p in sorted(self.root.iterdir())
                             if p.is_dir()}
        folder = self._folders.get(folder_key(label))
        if folder is not None and stem in self._listing(folder):
            return self._listing(folder)[stem]
        return self._listing(self.root).get(stem)


class CaseInsensitiveFinder:
    """Resolves a relative ``Class/file`` path under a root, falling back to a
    case-insensitive match of each part; ``find(relative)`` returns the path or None.

    Example:
        >>> finder = CaseInsensitiveFinder(Path("ucf101/UCF-101"))
        >>> finder.find("HandStandPushups/v_HandStandPushups_g01_c01.avi")
        PosixPath('ucf101/UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi')
    """

    def __init__(self, root: Path):
        self.root = root
        self._listings: dict[Path, dict[str, Path]] = {}

    def find(self, relative: str) -> Path | None:
        """The file at ``root/relative``, its parts matched without case if not exact."""
        path = self.root / relative
        if path.is_file():  # the common case costs one stat
            return path
        current = self.root
        for part in relative.split("/"):
            if current not in self._listings:
                entries = current.iterdir() if current.is_dir() else ()
                self._listings[current] = {p.name.lower(): p for p in entries}
            current = self._listings[current].get(part.lower())
            if current is None:
                return None
        return current if current.is_file() else None
