"""Video classification datasets, read from their published on-disk formats.

The synthetic dataset (:mod:`vidsparse.data.synthetic`) is written in these same formats, so
one code path serves it and the real datasets.
"""

from __future__ import annotations

import copy
import csv
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vidsparse.data.clips import clip_span, multi_view_clip_indices, test_clip_indices, train_clip_indices
from vidsparse.data.decode import BACKENDS, read_frames, read_video
from vidsparse.data.transforms import stack_views
from vidsparse.data.index import cache_paths, index_videos, write_atomic
from vidsparse.registry import Registry

SPLITS = ("train", "test")
UCF101_VIDEOS = "UCF-101"
UCF101_LISTS = "ucfTrainTestlist"


class DatasetFormatError(ValueError):
    """An annotation file is malformed; the message names the file and line."""


def ucf101_classes(root: str | os.PathLike) -> list[str]:
    """Class names in ``classInd.txt`` order: index ``i`` is label ``i`` (0-based).

    Example:
        >>> ucf101_classes("data/synthetic")[:2]
        ['MoveDown', 'MoveLeft']
    """
    path = _ucf101_root(root) / UCF101_LISTS / "classInd.txt"
    if not path.is_file():
        raise FileNotFoundError(f"UCF101 class index {path} not found")
    classes: list[str] = []
    for lineno, line in _read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetFormatError(f"{path}:{lineno}: expected '<number> <ClassName>', "
                                     f"got {line!r}")
        if int(parts[0]) != len(classes) + 1:
            raise DatasetFormatError(f"{path}:{lineno}: class numbers must count up from 1; "
                                     f"expected {len(classes) + 1}, got {parts[0]}")
        classes.append(parts[1])
    if not classes:
        raise DatasetFormatError(f"{path}: no classes listed")
    return classes


def ucf101_index(
    root: str | os.PathLike, split: str = "train", fold: int = 1
) -> list[tuple[Path, int]]:
    """``(video path, 0-based label)`` for every line of ``{split}list0{fold}.txt``.

    Train lines carry a 1-based label (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``);
    test lines carry none, so the label comes from the class folder through ``classInd.txt``.
    Both must agree where both are present.

    Example:
        >>> path, label = ucf101_index("data/synthetic", "test")[0]
        >>> path.name, label
        ('v_MoveDown_g01_c01.avi', 0)
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = _ucf101_root(root)
    classes = ucf101_classes(root)
    # Folder names are matched without case: UCF101 itself has the folder HandstandPushups
    # holding v_HandStandPushups_*.avi, and re-extracted copies differ in case.
    label_of_folder = {name.lower(): label for label, name in enumerate(classes)}
    list_path = root / UCF101_LISTS / f"{split}list{int(fold):02d}.txt"
    if not list_path.is_file():
        raise FileNotFoundError(f"UCF101 {split} list {list_path} not found (fold={fold})")
    finder = _CaseInsensitiveFinder(root / UCF101_VIDEOS)
    samples = []
    for lineno, line in _read_lines(list_path):
        where = f"{list_path}:{lineno}"
        parts = line.split()
        relative = parts[0].replace("\\", "/")
        folder = relative.split("/")[0]
        if len(parts) > 2 or "/" not in relative:
            raise DatasetFormatError(f"{where}: expected '<Class>/<video> [label]', got {line!r}")
        if relative.startswith("/") or ".." in relative.split("/") or ":" in folder:
            raise DatasetFormatError(f"{where}: {relative!r} leaves the dataset root; a list names "
                                     f"videos as <Class>/<video> inside {UCF101_VIDEOS}/")
        if folder.lower() not in label_of_folder:
            raise DatasetFormatError(f"{where}: class folder {folder!r} is not in classInd.txt")
        label = label_of_folder[folder.lower()]
        if len(parts) == 2:
            label = _list_label(parts[1], label, len(classes), where)
        path = finder.find(relative)
        if path is None:
            raise FileNotFoundError(f"{where}: video {root / UCF101_VIDEOS / relative} not found")
        samples.append((path, label))
    if not samples:
        raise DatasetFormatError(f"{list_path}: no videos listed")
    return samples


class VideoClipDataset(Dataset):
    """Clips of labelled videos: one clip per video per epoch (the base of every layout).

    The train split takes a random clip drawn from an RNG keyed on ``(seed, epoch, index)``
    and runs ``transform`` under torch's RNG seeded from the same key, so a sample is the
    same whatever the number of loader workers. Other splits take the centred clip. Only the
    clip's frames are decoded.

    At construction every video's header is read once (then cached: :mod:`.index`).
    Missing and undecodable videos are left out of :attr:`samples` and listed with the
    reason in :attr:`skipped` and in a report file next to the index; their count is
    reported once as a warning. A dataset with no usable video raises.

    Returns ``(clip, label)``: a uint8 ``T x H x W x C`` tensor when ``transform`` is None,
    else ``transform(clip)``.

    Call :meth:`set_epoch` before building each epoch's ``DataLoader`` iterator; workers
    copy the dataset when the iterator starts (so ``persistent_workers=True`` would keep
    the first epoch's clips).

    ``corruption`` (a :class:`vidsparse.corruptions.Corruption`, or any callable
    ``(video, path) -> video``) corrupts on the fly: the whole video is decoded, corrupted
    and the clip is taken from the result, so a temporal corruption that changes the length
    and a codec corruption see the video as ``corrupt_dataset`` does, and the clip equals the
    one read from its lossless corrupted copy. It costs a full decode per item.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        fold: int = 1,
        frames_per_clip: int = 8,
        sampling_rate: int = 2,
        transform: Callable[[torch.Tensor], Any] | None = None,
        backend: str = "pyav",
        seed: int = 0,
        num_clips: int = 1,
        corruption: Callable[[torch.Tensor, Path], torch.Tensor] | None = None,
    ):
        clip_span(frames_per_clip, sampling_rate)  # fail here, not in a worker
        if not isinstance(num_clips, int) or num_clips < 1:
            raise ValueError(f"num_clips must be a positive int, got {num_clips!r}")
        if backend not in BACKENDS:
            raise ValueError(f"unknown video backend {backend!r}; known: {', '.join(BACKENDS)}")
        self.root = Path(root)
        self.split = split
        self.frames_per_clip = frames_per_clip
        self.sampling_rate = sampling_rate
        self.transform = transform
        self.backend = backend
        self.seed = seed
        self.num_clips = num_clips if split != "train" else 1
        self.corruption = corruption
        self.epoch = 0
        samples, classes, skipped, source = self._find(root, split, fold)
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self._keep_usable(samples, skipped, source)

    def _find(self, root: str | os.PathLike, split: str, fold: int) -> tuple[
            Sequence[tuple[Path, int]], Sequence[str], Sequence[tuple[Path, str]], str]:
        """``(samples, classes, videos known missing with reasons, source name)`` of a layout."""
        raise NotImplementedError

    def _keep_usable(self, samples: Sequence[tuple[Path, int]],
                     skipped: Sequence[tuple[Path, str]], source: str) -> None:
        """Index the videos; keep the usable ones in ``samples``, the rest in ``skipped``."""
        infos, errors = index_videos(self.root, [p for p, _ in samples])
        self.samples = [(p, label) for p, label in samples if p in infos]
        self.skipped = list(skipped) + [(p, errors[p]) for p, _ in samples if p in errors]
        self._num_frames = [infos[p].num_frames for p, _ in self.samples]
        if self.skipped:
            report = write_skip_report(self.root, self.split, self.skipped)
            where = f"; list with reasons in {report}" if report else ""
            warnings.warn(f"{source}: skipped {len(self.skipped)} of "
                          f"{len(self.skipped) + len(self.samples)} videos (missing or "
                          f"undecodable){where}", stacklevel=3)
        if not self.samples:
            first = "; ".join(f"{p}: {why}" for p, why in self.skipped[:3])
            raise DatasetFormatError(f"{source}: none of its {len(self.skipped)} videos is "
                                     f"usable (missing or undecodable), e.g. {first}")

    def with_corruption(self, corruption: Callable[[torch.Tensor, Path], torch.Tensor] | None
                        ) -> "VideoClipDataset":
        """A copy of this dataset (same videos, same clips, no re-indexing) that corrupts its
        videos on the fly with ``corruption`` (``None``: clean again)."""
        other = copy.copy(self)
        other.corruption = corruption
        return other

    def set_epoch(self, epoch: int) -> None:
        """Draw different training clips for each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def num_frames(self, index: int) -> int:
        """Frame count of video ``index`` (from the index built at construction)."""
        return self._num_frames[index]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        index = range(len(self))[index]  # negative indices and range checks, like a list
        path, label = self.samples[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.corruption is not None:
            return self._corrupted(path, label, rng)
        if self.split == "train":
            indices = train_clip_indices(self.num_frames(index), self.frames_per_clip,
                                         self.sampling_rate, rng)
        elif self.num_clips > 1:
            return self._views(path, index, label, rng)
        else:
            indices = test_clip_indices(self.num_frames(index), self.frames_per_clip,
                                        self.sampling_rate)
        clip = torch.from_numpy(read_frames(path, indices, self.backend))
        if self.transform is None:
            return clip, label
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            return self.transform(clip), label

    def _corrupted(self, path: Path, label: int, rng) -> tuple[Any, int]:
        """The item of a corrupted video: decode all of it, corrupt, then pick the clip(s)."""
        video = self.corruption(torch.from_numpy(read_video(path, self.backend)[0]), path)
        length = video.shape[0]
        with torch.random.fork_rng(devices=[]):
            if self.split == "train":
                clip = video[train_clip_indices(length, self.frames_per_clip, self.sampling_rate, rng)]
            elif self.num_clips > 1:
                clips = multi_view_clip_indices(length, self.frames_per_clip, self.sampling_rate,
                                                self.num_clips)
                torch.manual_seed(int(rng.integers(2**62)))
                return stack_views([video[c] for c in clips], self.transform), label
            else:
                clip = video[test_clip_indices(length, self.frames_per_clip, self.sampling_rate)]
            if self.transform is None:
                return clip, label
            torch.manual_seed(int(rng.integers(2**62)))
            return self.transform(clip), label

    def _views(self, path: Path, index: int, label: int, rng) -> tuple[torch.Tensor, int]:
        """Multi-view testing: ``num_clips`` evenly spaced clips (times the transform's crops),
        stacked as ``V x ...``; one decode serves all clips."""
        clips = multi_view_clip_indices(self.num_frames(index), self.frames_per_clip,
                                        self.sampling_rate, self.num_clips)
        frames = torch.from_numpy(read_frames(path, [i for c in clips for i in c], self.backend))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            return stack_views(frames.split(self.frames_per_clip), self.transform), label


class UCF101(VideoClipDataset):
    """UCF101 (or the synthetic dataset in its layout), read through one fold's lists.

    ``root`` holds ``UCF-101/`` and ``ucfTrainTestlist/``; ``split`` is ``"train"`` or
    ``"test"``. A video a list names but the disk lacks is an error (UCF101 is complete);
    an undecodable one is skipped (see :class:`VideoClipDataset`).

    Example:
        >>> ds = UCF101("data/synthetic", split="train", transform=VideoTransform(train=True))
        >>> clip, label = ds[0]
        >>> clip.shape, ds.classes[label]
        (torch.Size([3, 8, 56, 56]), 'MoveDown')
    """

    def _find(self, root, split, fold):  # noqa: D102 (see VideoClipDataset._find)
        return (ucf101_index(root, split, fold), ucf101_classes(root), [],
                f"{Path(root) / UCF101_LISTS / f'{split}list{int(fold):02d}.txt'}")


# --------------------------------------------------------------------------- Kinetics

# Split names a caller may use -> the file and folder names they may have on disk. The
# official annotation files are train/validate/test.csv; re-hosted copies (cvdfoundation's
# kinetics-dataset) name the validation set "val".
KINETICS_SPLITS = {
    "train": ("train",),
    "validate": ("validate", "val"),
    "val": ("validate", "val"),
    "test": ("test",),
}
KINETICS_COLUMNS = ("youtube_id", "time_start", "time_end")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv")


class KineticsRow(NamedTuple):
    label: str | None  # None where the CSV has no label column (old test annotations)
    youtube_id: str
    time_start: int
    time_end: int
    where: str  # "file:line", for error messages

    @property
    def filename(self) -> str:
        """``<youtube_id>_<start:06d>_<end:06d>.mp4``, how the downloaders name the clip."""
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}.mp4"


def kinetics_csv(root: str | os.PathLike, split: str) -> Path:
    """The annotation file of ``split``: ``root/<split>.csv`` or ``root/annotations/<split>.csv``."""
    root = _existing_root(root)
    candidates = [folder / f"{name}.csv" for folder in (root, root / "annotations")
                  for name in _kinetics_names(split)]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"Kinetics {split} annotations not found; looked for "
                            f"{', '.join(str(p) for p in candidates)}")


def kinetics_rows(root: str | os.PathLike, split: str) -> list[KineticsRow]:
    """The rows of ``split``'s CSV (``label,youtube_id,time_start,time_end,split[,is_cc]``).

    Read with the csv module: labels such as ``"passing American football (in game)"`` are
    quoted. A CSV without a ``label`` column (Kinetics' original test annotations) gives
    ``label=None`` rows.
    """
    path = kinetics_csv(root, split)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or ()]
        missing = [c for c in KINETICS_COLUMNS if c not in header]
        if missing:
            raise DatasetFormatError(f"{path}:1: header {header} lacks column(s) "
                                     f"{', '.join(missing)}; expected label,youtube_id,"
                                     f"time_start,time_end,split")
        reader.fieldnames = header
        has_label = "label" in header
        rows = []
        for record in reader:
            where = f"{path}:{reader.line_num}"
            if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
                continue  # blank line
            if None in record:
                raise DatasetFormatError(f"{where}: more fields than the header's {len(header)}")
            label = (record.get("label") or "").strip() if has_label else None
            if has_label and not label:
                raise DatasetFormatError(f"{where}: empty label")
            youtube_id = (record["youtube_id"] or "").strip()
            if not youtube_id:
                raise DatasetFormatError(f"{where}: empty youtube_id")
            rows.append(KineticsRow(label, youtube_id, _seconds(record["time_start"], where),
                                    _seconds(record["time_end"], where), where))
    if not rows:
        raise DatasetFormatError(f"{path}: no videos listed")
    return rows


def kinetics_classes(root: str | os.PathLike) -> list[str]:
    """Sorted unique labels of the train CSV: label ``i`` is ``classes[i]``.

    This is the Kinetics convention (the official label maps, e.g. ``kinetics_400_labels``,
    are the alphabetical class list), so labels agree with models trained elsewhere. Every
    split takes its class list from the train CSV, so they agree with each other too.
    """
    rows = kinetics_rows(root, "train")
    if rows[0].label is None:
        raise DatasetFormatError(f"{rows[0].where.rsplit(':', 1)[0]}: the train CSV needs a "
                                 f"label column")
    return sorted({row.label for row in rows})


def kinetics_index(
    root: str | os.PathLike, split: str = "train"
) -> tuple[list[tuple[Path, int]], list[tuple[Path, str]]]:
    """``(samples, missing)``: ``(video path, label)`` for each CSV row found on disk, and
    ``(expected path, reason)`` for each row whose video is not there.

    Videos are looked for under ``root/<split>/<label>/`` (nested, as the ActivityNet
    downloader writes them; the label folder may spell spaces as ``_`` and drop quotes and
    parentheses) or ``root/<split>/`` (flat, as cvdfoundation's archives unpack), named
    ``<youtube_id>_<start:06d>_<end:06d>`` with any of .mp4/.avi/.webm/.mkv.
    """
    rows = kinetics_rows(root, split)
    csv_path = rows[0].where.rsplit(":", 1)[0]
    if rows[0].label is None:
        raise DatasetFormatError(
            f"{csv_path} has no label column: the labels of this Kinetics {split} split are "
            f"unknown (the original test annotations withheld them), and evaluation needs "
            f"them. Use split='validate', or annotations that carry labels.")
    classes = kinetics_classes(root)
    label_of = {name: i for i, name in enumerate(classes)}
    videos = kinetics_video_dir(Path(root), split)
    finder = VideoFinder(videos)
    samples, missing = [], []
    for row in rows:
        if row.label not in label_of:
            raise DatasetFormatError(f"{row.where}: label {row.label!r} is not a class of the "
                                     f"train CSV")
        stem = row.filename[:-len(".mp4")]
        path = finder.find(row.label, stem)
        if path is None:
            missing.append((videos / row.label / row.filename,
                            f"missing: not found as {split}/{row.label}/{row.filename} or "
                            f"{split}/{row.filename}"))
        else:
            samples.append((path, label_of[row.label]))
    return samples, missing


class Kinetics(VideoClipDataset):
    """Kinetics-400/600/700 (or the synthetic dataset in its layout) from CSV annotations.

    ``root`` holds ``train.csv``/``validate.csv``/``test.csv`` (or ``annotations/`` with
    them) and a ``<split>/`` folder of videos, nested by label or flat (see
    :func:`kinetics_index`). ``split`` is ``"train"``, ``"validate"`` (or ``"val"``) or
    ``"test"``; a test CSV without labels is refused (labels are needed to evaluate). The
    class list is the sorted labels of the train CSV (:func:`kinetics_classes`). ``fold`` is
    accepted for a common signature with :class:`UCF101` and must be 1.

    YouTube videos disappear, so missing and undecodable videos are skipped and listed in
    :attr:`skipped` (see :class:`VideoClipDataset`).

    Example:
        >>> ds = Kinetics("data/synthetic_kinetics", split="validate")
        >>> ds.classes[:2], len(ds.skipped)
        (['move down', 'move left'], 0)
    """

    def _find(self, root, split, fold):  # noqa: D102 (see VideoClipDataset._find)
        _kinetics_names(split)
        if fold != 1:
            raise ValueError(f"Kinetics has one official split; fold must be 1, got {fold}")
        samples, missing = kinetics_index(root, split)
        return samples, kinetics_classes(root), missing, str(kinetics_csv(root, split))


def _kinetics_names(split: str) -> tuple[str, ...]:
    if split not in KINETICS_SPLITS:
        raise ValueError(f"Kinetics split must be one of {', '.join(KINETICS_SPLITS)}, "
                         f"got {split!r}")
    return KINETICS_SPLITS[split]


def kinetics_video_dir(root: Path, split: str) -> Path:
    """The folder of ``split``'s videos under a Kinetics ``root`` (``val`` or ``validate``
    for the validation split); FileNotFoundError naming what was looked for."""
    names = _kinetics_names(split)
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"Kinetics {split} videos not found: no folder "
                            f"{' or '.join(str(root / n) for n in names)}")


def _seconds(text: str | None, where: str) -> int:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise DatasetFormatError(f"{where}: time {text!r} is not a number of seconds") from None
    if value < 0 or value != int(value):
        raise DatasetFormatError(f"{where}: time {text!r} is not a whole number of seconds >= 0")
    return int(value)


def _folder_key(name: str) -> str:
    """Label folder names compared without case, spaces/underscores, quotes, parentheses."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


class VideoFinder:
    """Finds ``<stem>.<video ext>`` in ``root/<label>/`` (the label folder matched without
    case, spaces, underscores, quotes or parentheses) or directly in ``root/``; each folder
    is listed once. ``find(label, stem)`` returns the path or None."""

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
        if self._folders is None:
            self._folders = {_folder_key(p.name): p for p in sorted(self.root.iterdir())
                             if p.is_dir()}
        folder = self._folders.get(_folder_key(label))
        if folder is not None and stem in self._listing(folder):
            return self._listing(folder)[stem]
        return self._listing(self.root).get(stem)


# --------------------------------------------------------------------------- plain folders

FOLDER_SPLITS = {"train": ("train",), "validate": ("validate", "val"),
                 "val": ("val", "validate"), "test": ("test",)}


def folder_index(
    root: str | os.PathLike, split: str = "train"
) -> tuple[list[tuple[Path, int]], list[str], Path]:
    """``(samples, classes, videos folder)`` of a ``<class>/<video>`` tree.

    Where ``root`` has split folders (``train/``, ``val/``/``validate/``, ``test/``), videos
    are read from ``root/<split>/<class>/``; otherwise from ``root/<class>/`` for every
    split. Classes are the sorted class folder names (across all split folders, so every
    split numbers them alike); videos are files ending .mp4/.avi/.webm/.mkv, in sorted order.
    """
    root = _existing_root(root)
    split_dirs = _split_dirs(root)
    if split_dirs:
        names = FOLDER_SPLITS.get(split, (split,))
        base = next((root / n for n in names if (root / n).is_dir()), None)
        if base is None:
            raise FileNotFoundError(f"split folder {' or '.join(str(root / n) for n in names)} "
                                    f"not found (split folders present: "
                                    f"{', '.join(sorted(p.name for p in split_dirs))})")
        class_dirs = [c for d in split_dirs for c in _subdirs(d)]
    else:
        base = root
        class_dirs = _subdirs(root)
    classes = sorted({c.name for c in class_dirs})
    if not classes:
        raise FileNotFoundError(f"{root}: no class folders (expected <class>/<video> with "
                                f"videos ending {'/'.join(VIDEO_EXTENSIONS)})")
    label_of = {name: i for i, name in enumerate(classes)}
    samples = [(video, label_of[folder.name]) for folder in _subdirs(base)
               for video in _videos(folder)]
    if not samples:
        raise FileNotFoundError(f"{base}: no videos ({', '.join(VIDEO_EXTENSIONS)}) in its "
                                f"class folders")
    return samples, classes, base


class VideoFolder(VideoClipDataset):
    """Videos sorted into one folder per class: ``root/<class>/*.mp4`` (also .avi, .webm,
    .mkv), or ``root/<split>/<class>/...`` where split folders exist (see
    :func:`folder_index`). A root without split folders serves every split the same videos
    (a warning says so). ``fold`` must be 1.

    Example:
        >>> ds = VideoFolder("my_videos", split="test")
        >>> ds.classes
        ['cat', 'dog']
    """

    def _find(self, root, split, fold):  # noqa: D102 (see VideoClipDataset._find)
        if fold != 1:
            raise ValueError(f"a video folder has no folds; fold must be 1, got {fold}")
        samples, classes, base = folder_index(root, split)
        if base == Path(root):
            warnings.warn(f"{root} has no split folders (train/, val/, test/): the {split} "
                          f"split reads every video", stacklevel=3)
        return samples, classes, [], str(base)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS
                  and not p.name.startswith(".") and p.is_file())


def _split_dirs(root: Path) -> list[Path]:
    names = {n for names in FOLDER_SPLITS.values() for n in names}
    return [p for p in _subdirs(root) if p.name in names]


# --------------------------------------------------------------------------- layouts

def detect_layout(root: str | os.PathLike) -> str:
    """``"ucf101"``, ``"kinetics"`` or ``"folder"``: which loader reads ``root``.

    UCF101: ``ucfTrainTestlist/`` and ``UCF-101/``. Kinetics: a ``train.csv``,
    ``validate.csv``, ``val.csv`` or ``test.csv``, or an ``annotations/`` folder. Folder:
    class folders holding videos, directly or under split folders.

    Example:
        >>> detect_layout("data/synthetic")
        'ucf101'
    """
    root = _existing_root(root)
    if (root / UCF101_LISTS).is_dir() and (root / UCF101_VIDEOS).is_dir():
        return "ucf101"
    csv_names = sorted({f"{n}.csv" for names in KINETICS_SPLITS.values() for n in names})
    if (root / "annotations").is_dir() or any((root / n).is_file() for n in csv_names):
        return "kinetics"
    for base in _split_dirs(root) or [root]:
        if any(_videos(folder) for folder in _subdirs(base)):
            return "folder"
    raise DatasetFormatError(
        f"cannot tell the layout of {root}: looked for {UCF101_LISTS}/ + {UCF101_VIDEOS}/ "
        f"(ucf101), {' or '.join(csv_names)} or annotations/ (kinetics), and <class>/<video> "
        f"or <split>/<class>/<video> folders with {'/'.join(VIDEO_EXTENSIONS)} files "
        f"(folder); set data.layout to one of ucf101, kinetics, folder")


def write_skip_report(root: Path, split: str, skipped: Sequence[tuple[Path, str]]) -> Path | None:
    """``path<TAB>reason`` per skipped video, beside the video index (see :mod:`.index`)."""
    text = "".join(f"{path}\t{reason}\n" for path, reason in skipped)
    for index_path in cache_paths(root):
        report = index_path.with_name(f"{index_path.stem}.skipped-{split}.tsv")
        try:
            write_atomic(report, text)
            return report
        except OSError:
            continue
    return None


def _existing_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist")
    return root


# A dataset builder: (data config, split, transform) -> Dataset.
DATASETS = Registry("dataset layout")
DATASET_KEYS = ("fold", "frames_per_clip", "sampling_rate", "backend", "seed", "num_clips")
UCF101_KEYS = DATASET_KEYS  # the name recipes knew first
LAYOUT_CLASSES = {"ucf101": UCF101, "kinetics": Kinetics, "folder": VideoFolder}


def _register(layout: str, cls: type) -> None:
    @DATASETS.register(layout)
    def build(data_cfg: Mapping[str, Any], split: str, transform, corruption=None) -> VideoClipDataset:
        return cls(data_cfg["root"], split=split, transform=transform, corruption=corruption,
                   **{k: data_cfg[k] for k in DATASET_KEYS if k in data_cfg})


for _layout, _cls in LAYOUT_CLASSES.items():
    _register(_layout, _cls)


@DATASETS.register("auto")
def _build_auto(data_cfg: Mapping[str, Any], split: str, transform, corruption=None) -> VideoClipDataset:
    return DATASETS.get(detect_layout(data_cfg["root"]))(data_cfg, split, transform, corruption)


def build_dataset(data_cfg: Mapping[str, Any], split: str, transform=None, corruption=None) -> Dataset:
    """The dataset a config's ``data`` section describes.

    Reads ``root`` (required), ``layout`` (default ``"ucf101"``; ``"auto"`` detects it with
    :func:`detect_layout`; ``"kinetics"``, ``"folder"``), ``fold``, ``frames_per_clip``,
    ``sampling_rate``, ``backend`` and ``seed``; missing keys take the dataset's defaults.
    ``corruption`` corrupts every video on the fly (see :class:`VideoClipDataset`).

    Example:
        >>> cfg = {"root": "data/synthetic", "layout": "auto", "frames_per_clip": 8}
        >>> train = build_dataset(cfg, "train", build_transform(cfg, train=True))
    """
    if "root" not in data_cfg:
        raise ValueError("data config needs 'root': the dataset directory")
    return DATASETS.get(data_cfg.get("layout", "ucf101"))(data_cfg, split, transform, corruption)


def _ucf101_root(root: str | os.PathLike) -> Path:
    root = _existing_root(root)
    if not (root / UCF101_VIDEOS).is_dir():
        raise FileNotFoundError(f"{root / UCF101_VIDEOS} not found: the UCF101 root is the "
                                f"directory holding {UCF101_VIDEOS}/ and {UCF101_LISTS}/")
    return root


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank stripped lines with 1-based numbers; takes ``\\r\\n`` (UCF101's) or ``\\n``."""
    text = path.read_text(encoding="utf-8-sig")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _list_label(text: str, folder_label: int, num_classes: int, where: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= num_classes:
        raise DatasetFormatError(f"{where}: label {text!r} is not a class number "
                                 f"1..{num_classes} of classInd.txt")
    if int(text) - 1 != folder_label:
        raise DatasetFormatError(f"{where}: label {text} disagrees with the class folder "
                                 f"(classInd.txt gives {folder_label + 1})")
    return int(text) - 1


class _CaseInsensitiveFinder:
    """Resolves ``Class/file`` under a root, falling back to a case-insensitive match."""

    def __init__(self, root: Path):
        self.root = root
        self._listings: dict[Path, dict[str, Path]] = {}

    def find(self, relative: str) -> Path | None:
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
