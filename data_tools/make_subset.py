"""Make a class/video subset of a UCF101- or Kinetics-layout dataset that the same loader reads.

    python data_tools/make_subset.py --src data/UCF101 --dst data/ucf10 --classes 10
    python data_tools/make_subset.py --src data/UCF101 --dst data/ucf5x20 --classes 5 \\
        --videos-per-class 20 --seed 1
    python data_tools/make_subset.py --src data/UCF101 --dst data/mine --class-list classes.txt
    python data_tools/make_subset.py --src data/kinetics400 --dst data/mini_kinetics \\
        --class-list data_tools/class_lists/mini_kinetics_200.txt --videos-per-class 100

The subset keeps the source's layout, with the chosen videos as symlinks to the source videos
at the same relative paths (copies with ``--copy``), and ``DST/subset_manifest.json`` records
the source root, the layout, the seed, the classes (with their source labels) and the per-split
video counts.

UCF101 (``UCF-101/`` + ``ucfTrainTestlist/``): ``DST/ucfTrainTestlist/`` holds a new
``classInd.txt`` (the chosen classes in their source order, numbered from 1) and every
``trainlist0N.txt``/``testlist0N.txt`` of the source filtered to the chosen videos, with train
labels renumbered to match.

Kinetics (``train.csv``/``validate.csv``/``val.csv``/``test.csv``, at the root or in
``annotations/``, and ``<split>/[<label>/]<video>``): ``DST/annotations/<split>.csv`` holds the
source CSV's rows of the chosen videos, with the source's header and columns, for train,
validate (or val) and test where the source has them with labels (a test CSV without labels is
left out). Classes are the sorted labels of the train CSV, as the loader numbers them. Rows
whose video is not on disk are left out and counted under ``missing`` in the manifest.

Choice is deterministic: classes and videos are sorted before a seeded draw. ``--classes N``
draws N classes; ``--class-list FILE`` names them (one per line, any case; spaces, underscores and
punctuation are ignored, as the loaders ignore them in label folders, so
``data_tools/class_lists/mini_kinetics_200.txt``, Yi et al.'s Mini-Kinetics-200 list with
underscores, selects Kinetics-400's spaced labels). UCF101:
``--videos-per-class N`` draws N videos of each class, split between fold 1's train and test
lists in the source's proportion (at least one test video where the class has any), so fold 1
stays usable; the other folds' lists keep the chosen videos they list. Kinetics:
``--videos-per-class N`` draws up to N train videos of each class, and of validate (and test)
the source's proportion of that (at least one where the class has any). The subset is built in
a temporary folder beside ``DST`` and renamed into place, so ``DST`` is either complete or
absent.

Bad videos: every chosen video is opened and its last frame decoded, as the loaders check
them (the answers are cached in the source's ``.vidsparse_index.json``, which the loaders
reuse); ``--no-check`` only leaves out missing and empty files. An unusable video is left out
of the subset, replaced where ``--videos-per-class`` drew it by another of the same class and
split, and listed under ``skipped`` in the manifest with its reason (also printed, and counted
in the summary). A class left with no usable video, or a subset with none at all, is an error
naming the source.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from vidsparse.data.datasets import (UCF101_LISTS, UCF101_VIDEOS, DatasetFormatError, VideoFinder,
                                     kinetics_classes, kinetics_csv, kinetics_rows,
                                     kinetics_video_dir, ucf101_classes, ucf101_index)
from vidsparse.data.datasets import detect_layout as _detect_layout
from vidsparse.data.finders import folder_key
from vidsparse.data.index import index_videos
from vidsparse.files import make_temp_dir

MANIFEST = "subset_manifest.json"
LIST_NAME = re.compile(r"^(train|test)list(\d+)\.txt$")
KINETICS_SUBSET_SPLITS = ("train", "validate", "test")  # "validate" also finds val.csv


class SubsetError(ValueError):
    """The subset asked for can not be made from this source; the message says why."""


class Plan(NamedTuple):
    """What a layout's planner decided; :func:`make_subset` writes it."""
    chosen: list[str]  # the chosen classes, in source order
    source_labels: dict[str, int]  # chosen class -> its label in the source
    files: dict[str, str]  # relative path in DST -> text
    videos: dict[str, Path]  # relative path in DST -> source video
    counts: dict[str, int]  # per split file: videos kept
    extra: dict  # more manifest entries


class Checker:
    """Which videos are unusable, and why, each file looked at once.

    Missing and empty files are always found (a ``stat``). With ``decode`` the rest are
    probed as the loaders probe them (:func:`vidsparse.data.index.index_videos`: the header
    and the last frame, cached in the source's index), so the subset holds no video the
    loader would skip.
    """

    def __init__(self, src: Path, base: Path, decode: bool = True):
        self.src, self.base, self.decode = src, base, decode
        self.reasons: dict[str, str] = {}  # path relative to ``base`` -> why it is unusable
        self._seen: set[str] = set()

    def bad(self, relatives) -> set[str]:
        """The unusable ones of ``relatives`` (paths relative to ``base``)."""
        relatives = set(relatives)
        todo = sorted(relatives - self._seen)
        self._seen.update(todo)
        if self.decode and todo:
            _, errors = index_videos(self.src, [self.base / r for r in todo])
            self.reasons.update((r, errors[self.base / r]) for r in todo if self.base / r in errors)
        elif todo:  # the same reasons as the index gives, for what a stat can tell
            for relative in todo:
                try:
                    size = (self.base / relative).stat().st_size
                except OSError:
                    self.reasons[relative] = "missing: file not found"
                    continue
                if size == 0:
                    self.reasons[relative] = "empty file (0 bytes)"
        return {r for r in relatives if r in self.reasons}

    def examples(self, relatives, most: int = 3) -> str:
        """``path: reason`` of the first few unusable ones of ``relatives``, for a message."""
        bad = sorted(r for r in relatives if r in self.reasons)
        more = f" (and {len(bad) - most} more)" if len(bad) > most else ""
        return "; ".join(f"{r}: {self.reasons[r]}" for r in bad[:most]) + more


def detect_layout(src: Path) -> str:
    try:
        layout = _detect_layout(src)
    except (DatasetFormatError, FileNotFoundError) as err:
        raise SubsetError(str(err)) from None
    if layout not in PLANNERS:
        raise SubsetError(f"{src}: {layout} layout; subsets are made of "
                          f"{' and '.join(PLANNERS)} layouts only")
    return layout


def split_lists(src: Path) -> list[tuple[str, str, int]]:
    """``(file name, split, fold)`` of every train/test list of a UCF101 root, sorted."""
    found = []
    for path in sorted((src / UCF101_LISTS).iterdir()):
        match = LIST_NAME.match(path.name)
        if match:
            found.append((path.name, match.group(1), int(match.group(2))))
    if not found:
        raise SubsetError(f"{src / UCF101_LISTS} has no trainlist0N.txt/testlist0N.txt")
    return found


def choose_classes(classes: list[str], num_classes: int | None, class_list: Path | None,
                   rng: np.random.Generator, where: str = "classInd.txt") -> list[str]:
    """The chosen classes, in source order; ``where`` names the source's class list.

    A listed name matches a source class exactly, else without case, else as the loaders
    match label folders (:func:`~vidsparse.data.finders.folder_key`: letters and digits only),
    so Yi et al.'s ``passing_American_football_(not_in_game)`` finds Kinetics' ``passing
    American football (not in game)``.
    """
    if class_list is not None:
        lines = class_list.read_text(encoding="utf-8-sig").splitlines()
        names = [line.strip() for line in lines if line.strip()]
        if not names:
            raise SubsetError(f"{class_list} names no classes")
        wanted = {_match_class(name, classes, class_list, where) for name in names}
    else:
        if not 1 <= num_classes <= len(classes):
            raise SubsetError(f"--classes {num_classes}: the source has {len(classes)} "
                              f"classes; ask for 1..{len(classes)}")
        wanted = set(rng.choice(sorted(classes), size=num_classes, replace=False).tolist())
    return [c for c in classes if c in wanted]


def _match_class(name: str, classes: list[str], class_list: Path, where: str) -> str:
    """The source class ``name`` (a line of ``class_list``) stands for; see choose_classes."""
    if name in classes:
        return name
    for same in (lambda c: c.lower() == name.lower(), lambda c: folder_key(c) == folder_key(name)):
        found = [c for c in classes if same(c)]
        if len(found) > 1:
            raise SubsetError(f"{class_list}: class {name!r} matches several of the source's "
                              f"{where}: {', '.join(map(repr, found))}; spell it as the source "
                              f"does")
        if found:
            return found[0]
    raise SubsetError(f"{class_list}: class {name!r} is not in the source's {where} "
                      f"({len(classes)} classes, e.g. {classes[0]!r})")


def _share(n: int, pool: int, base: int) -> int:
    """A held-out pool's part of ``n`` videos: its proportion ``pool / base``, at least one
    where the pool has any, at most the pool."""
    share = round(n * pool / base) if base else pool
    return min(max(share, 1) if pool else 0, pool)


def choose_videos(per_class: dict[str, dict[str, list[str]]], videos_per_class: int | None,
                  rng: np.random.Generator, checker: Checker, train_count: bool = False) -> set[str]:
    """Relative video paths kept, drawn per class from its ``"train"`` pool and its held-out
    pools (the other keys); every one usable according to ``checker``.

    ``videos_per_class`` None keeps every usable video. ``train_count`` False (UCF101):
    ``videos_per_class`` counts all of a class's videos, the held-out pools taking their
    proportion of it. True (Kinetics): it counts train videos (up to: fewer where the class
    has fewer) and each held-out pool adds its proportion of those. A drawn video that is
    unusable is replaced by another of its pool, drawn the same way, while the pool lasts.
    """
    if videos_per_class is None:
        everything = {v for pools in per_class.values() for pool in pools.values() for v in pool}
        return everything - checker.bad(everything)
    if videos_per_class < 1:
        raise SubsetError(f"--videos-per-class must be positive, got {videos_per_class}")
    draws: list[tuple[list[str], int]] = []  # (pool, videos wanted from it)
    for name, splits in per_class.items():
        pools = {split: sorted(set(videos)) for split, videos in splits.items()}
        train = pools.pop("train")
        if train_count:
            n_train = min(videos_per_class, len(train))
            held = {split: _share(n_train, len(pool), len(train)) for split, pool in pools.items()}
        else:
            total = len(train) + sum(map(len, pools.values()))
            if videos_per_class > total:
                raise SubsetError(f"--videos-per-class {videos_per_class}: class {name!r} has "
                                  f"only {total} videos in fold 1")
            held = {split: _share(videos_per_class, len(pool), total)
                    for split, pool in pools.items()}
            n_train = videos_per_class - sum(held.values())
        draws += [(train, n_train), *((pools[s], n) for s, n in held.items())]
    # All pools are drawn before any file is opened (one probe of the lot, and a source with
    # no bad file gives the draw it gave before checks existed); then each pool's unusable
    # draws are replaced, round by round.
    taken = [rng.choice(pool, size=n, replace=False).tolist() if n else [] for pool, n in draws]
    while True:
        bad = checker.bad(v for videos in taken for v in videos)
        more = False
        for (pool, n), videos in zip(draws, taken):
            short = n - sum(v not in bad for v in videos)
            rest = sorted(set(pool) - set(videos))
            if short and rest:
                videos += rng.choice(rest, size=min(short, len(rest)), replace=False).tolist()
                more = True
        if not more:
            return {v for videos in taken for v in videos} - bad


def unusable(checker: Checker, keep: set[str], src: Path, prefix: str = "") -> dict[str, str]:
    """The manifest's ``skipped`` (path in the subset -> reason); raises if nothing is usable."""
    skipped = {f"{prefix}{r}": why for r, why in sorted(checker.reasons.items())}
    if skipped and not keep:
        first = "; ".join(f"{r}: {why}" for r, why in list(skipped.items())[:3])
        raise SubsetError(f"none of the {len(skipped)} chosen videos under {src} is usable "
                          f"(missing, empty or undecodable), e.g. {first}")
    return skipped


def plan_ucf101(src: Path, num_classes: int | None, class_list: Path | None,
                videos_per_class: int | None, rng: np.random.Generator,
                decode: bool = True) -> Plan:
    """``ucfTrainTestlist/`` of the chosen classes and videos, ``UCF-101/`` links."""
    classes = ucf101_classes(src)
    chosen = choose_classes(classes, num_classes, class_list, rng)
    new_label = {classes.index(c): i for i, c in enumerate(chosen)}
    videos_root = src / UCF101_VIDEOS

    # Every list's entries as (path relative to UCF-101/ as on disk, source label).
    lists = {}
    for name, split, fold in split_lists(src):
        lists[name] = (split, [(p.relative_to(videos_root).as_posix(), label)
                               for p, label in ucf101_index(src, split, fold)
                               if label in new_label])
    fold1 = {c: {"train": [], "test": []} for c in chosen}
    for name, (split, entries) in lists.items():
        if LIST_NAME.match(name).group(2).lstrip("0") == "1":
            for relative, label in entries:
                fold1[classes[label]][split].append(relative)
    checker = Checker(src, videos_root, decode)
    if videos_per_class is None:  # every list's videos, those of other folds included
        every = {r for _, entries in lists.values() for r, _ in entries}
        keep = every - checker.bad(every)
    else:
        keep = choose_videos(fold1, videos_per_class, rng, checker)
    skipped = unusable(checker, keep, src, f"{UCF101_VIDEOS}/")
    for name in chosen:
        own = {r for _, entries in lists.values() for r, lab in entries if classes[lab] == name}
        if not own & keep:
            raise SubsetError(f"class {name!r} has no usable video under {videos_root}: "
                              f"{checker.examples(own)}")

    files = {f"{UCF101_LISTS}/classInd.txt": "".join(f"{i + 1} {c}\n"
                                                      for i, c in enumerate(chosen))}
    counts, videos = {}, {}
    for name, (split, entries) in lists.items():
        kept = [(r, lab) for r, lab in entries if r in keep]
        lines = [f"{r} {new_label[lab] + 1}" if split == "train" else r for r, lab in kept]
        files[f"{UCF101_LISTS}/{name}"] = "".join(f"{x}\n" for x in lines)
        counts[name] = len(kept)
        videos.update((f"{UCF101_VIDEOS}/{r}", videos_root / r) for r, _ in kept)
    return Plan(chosen, {c: classes.index(c) for c in chosen}, files, videos, counts,
                {"skipped": skipped})


def plan_kinetics(src: Path, num_classes: int | None, class_list: Path | None,
                  videos_per_class: int | None, rng: np.random.Generator,
                  decode: bool = True) -> Plan:
    """``annotations/<split>.csv`` of the chosen classes and videos, ``<split>/…`` links."""
    classes = kinetics_classes(src)
    chosen = choose_classes(classes, num_classes, class_list, rng, "train CSV labels")
    wanted = set(chosen)

    # Per split CSV: its header and its chosen rows as (raw row, label, video relative to
    # src or None where the video is missing), found as vidsparse.data.Kinetics finds them.
    splits: dict[str, tuple[list[str], list[tuple[list[str], str, str | None]]]] = {}
    unlabeled = []
    for split in KINETICS_SUBSET_SPLITS:
        try:
            path = kinetics_csv(src, split)
        except FileNotFoundError:
            continue
        rows = kinetics_rows(src, split)
        if rows[0].label is None:
            unlabeled.append(path.name)
            continue
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            raw = {reader.line_num: record for record in reader}
        try:
            finder = VideoFinder(kinetics_video_dir(src, split))
        except FileNotFoundError:
            finder = None
        entries = []
        for row in rows:
            if row.label in wanted:
                found = finder and finder.find(row.label, row.filename[:-len(".mp4")])
                entries.append((raw[int(row.where.rsplit(":", 1)[1])], row.label,
                                found and found.relative_to(src).as_posix()))
        splits[path.name] = (raw[1], entries)

    train_name = kinetics_csv(src, "train").name
    pools = {c: {("train" if name == train_name else name): [] for name in splits}
             for c in chosen}
    for name, (_, entries) in splits.items():
        for _, label, relative in entries:
            if relative is not None:
                pools[label]["train" if name == train_name else name].append(relative)
    empty = [c for c in chosen if not pools[c]["train"]]
    if empty:
        raise SubsetError(f"class {empty[0]!r} has no train video on disk under {src}")
    checker = Checker(src, src, decode)
    keep = choose_videos(pools, videos_per_class, rng, checker, train_count=True)
    skipped = unusable(checker, keep, src)
    empty = [c for c in chosen if not set(pools[c]["train"]) & keep]
    if empty:
        raise SubsetError(f"class {empty[0]!r} has no usable train video under {src}: "
                          f"{checker.examples(pools[empty[0]]['train'])}")

    files, counts, missing, videos = {}, {}, {}, {}
    for name, (header, entries) in splits.items():
        missing[name] = sum(relative is None for _, _, relative in entries)
        kept = [(record, relative) for record, _, relative in entries
                if relative is not None and relative in keep]
        counts[name] = len(kept)
        if kept:  # a CSV with no rows would not load
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(
                [header, *(record for record, _ in kept)])
            files[f"annotations/{name}"] = buffer.getvalue()
        videos.update((relative, src / relative) for _, relative in kept)
    extra = {"missing": missing, **({"unlabeled": unlabeled} if unlabeled else {}),
             "skipped": skipped}
    return Plan(chosen, {c: classes.index(c) for c in chosen}, files, videos, counts, extra)


PLANNERS: dict[str, Callable[..., Plan]] = {"ucf101": plan_ucf101, "kinetics": plan_kinetics}


def make_subset(src: str | os.PathLike, dst: str | os.PathLike, num_classes: int | None = None,
                videos_per_class: int | None = None, class_list: str | os.PathLike | None = None,
                layout: str = "auto", seed: int = 0, copy: bool = False,
                check: bool = True) -> dict:
    """Write the subset (see the module docstring); returns the manifest.

    ``check`` False skips only decoding: missing and empty videos are still left out.

    Example:
        >>> manifest = make_subset("data/UCF101", "data/ucf5", num_classes=5)
        >>> manifest["skipped"]  # {path in the subset: why it was left out}
        {}
    """
    src, dst = Path(src).resolve(), Path(dst).absolute()
    if (num_classes is None) == (class_list is None):
        raise SubsetError("give exactly one of --classes and --class-list")
    if not src.is_dir():
        raise SubsetError(f"--src {src} is not a directory")
    if layout == "auto":
        layout = detect_layout(src)
    if layout not in PLANNERS:
        raise SubsetError(f"unknown --layout {layout!r}; use ucf101, kinetics or auto")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise SubsetError(f"--dst {dst} exists and is not empty; pick a new folder")

    try:
        plan = PLANNERS[layout](src, num_classes, None if class_list is None
                                else Path(class_list), videos_per_class,
                                np.random.default_rng(seed), check)
    except (DatasetFormatError, FileNotFoundError) as err:
        raise SubsetError(f"{layout} layout: {err}") from None
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(dst.parent, f".{dst.name}.partial-")  # umask mode, unlike mkdtemp
    try:
        for relative, text in plan.files.items():
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp / relative, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        for relative, target in sorted(plan.videos.items()):
            link = tmp / relative
            link.parent.mkdir(parents=True, exist_ok=True)
            if copy:
                shutil.copy2(target.resolve(), link)
            else:
                link.symlink_to(target.resolve())
        manifest = {
            "source": str(src), "layout": layout, "seed": seed, "copy": copy, "check": check,
            "classes": plan.chosen, "source_labels": plan.source_labels,
            "videos_per_class": videos_per_class, "videos": len(plan.videos),
            "split_counts": plan.counts, **plan.extra,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if dst.exists():
            dst.rmdir()  # empty, checked above
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="source dataset root")
    parser.add_argument("--dst", required=True, help="subset root to create (new or empty)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--classes", type=int, help="number of classes to draw")
    which.add_argument("--class-list", help="file naming the classes, one per line")
    parser.add_argument("--videos-per-class", type=int, help="videos drawn per class "
                        "(UCF101: in all; Kinetics: train, validate in proportion; "
                        "default: all)")
    parser.add_argument("--layout", default="auto", choices=("ucf101", "kinetics", "auto"),
                        help="source layout (default auto)")
    parser.add_argument("--seed", type=int, default=0, help="draw seed (default 0)")
    parser.add_argument("--copy", action="store_true", help="copy videos instead of symlinking")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="do not decode the chosen videos (missing and empty files are "
                        "still left out)")
    args = parser.parse_args(argv)
    try:
        manifest = make_subset(args.src, args.dst, args.classes, args.videos_per_class,
                               args.class_list, args.layout, args.seed, args.copy, args.check)
    except SubsetError as err:
        parser.error(str(err))
    for relative, why in manifest["skipped"].items():
        print(f"skipped {relative}: {why}", file=sys.stderr)
    print(f"wrote {args.dst}: {len(manifest['classes'])} classes, {manifest['videos']} videos "
          f"({', '.join(f'{k} {v}' for k, v in manifest['split_counts'].items())}), "
          f"{len(manifest['skipped'])} skipped (missing, empty or undecodable)",
          file=sys.stderr)
    return manifest


if __name__ == "__main__":
    main()
