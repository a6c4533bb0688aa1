"""The Kinetics layout: CSV annotations plus a ``<split>/`` folder of videos.

``root`` holds ``train.csv``/``validate.csv``/``test.csv`` (or ``annotations/`` with them;
columns ``label,youtube_id,time_start,time_end,split[,is_cc]``) and a ``<split>/`` folder of
videos named ``<youtube_id>_<start:06d>_<end:06d>.mp4``, nested by label or flat. YouTube
videos disappear, so a video the CSV names but the disk lacks is reported missing, not an
error.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple

from vidsparse.data.finders import VideoFinder, existing_root
from vidsparse.data.video_dataset import DatasetFormatError, LabeledVideos, LayoutDataset

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


class KineticsRow(NamedTuple):
    """One annotation row; :attr:`filename` is the video it names."""

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
    root = existing_root(root)
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


def kinetics_videos(root: str | os.PathLike, split: str = "train", fold: int = 1) -> LabeledVideos:
    """The labelled videos of ``split`` (:func:`kinetics_index`), with the rows whose video
    is not on disk as ``missing``. ``fold`` exists for a common signature with UCF101 and
    must be 1.

    Example:
        >>> videos = kinetics_videos("data/synthetic_kinetics", "validate")
        >>> videos.classes[:2], videos.missing
        (['move down', 'move left'], [])
    """
    _kinetics_names(split)
    if fold != 1:
        raise ValueError(f"Kinetics has one official split; fold must be 1, got {fold}")
    samples, missing = kinetics_index(root, split)
    return LabeledVideos(Path(root), split, samples, kinetics_classes(root), missing,
                         str(kinetics_csv(root, split)))


class Kinetics(LayoutDataset):
    """Kinetics-400/600/700 (or the synthetic dataset in its layout) from CSV annotations.

    ``root`` holds ``train.csv``/``validate.csv``/``test.csv`` (or ``annotations/`` with
    them) and a ``<split>/`` folder of videos, nested by label or flat (see
    :func:`kinetics_index`). ``split`` is ``"train"``, ``"validate"`` (or ``"val"``) or
    ``"test"``; a test CSV without labels is refused (labels are needed to evaluate). The
    class list is the sorted labels of the train CSV (:func:`kinetics_classes`). ``fold`` is
    accepted for a common signature with :class:`UCF101` and must be 1.

    YouTube videos disappear, so missing and undecodable videos are skipped and listed in
    :attr:`skipped` (see :class:`~vidsparse.data.video_dataset.VideoClipDataset`).

    Example:
        >>> ds = Kinetics("data/synthetic_kinetics", split="validate")
        >>> ds.classes[:2], len(ds.skipped)
        (['move down', 'move left'], 0)
    """

    def read_videos(self, root, split, fold):  # noqa: D102 (see LayoutDataset.read_videos)
        return kinetics_videos(root, split, fold)


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
