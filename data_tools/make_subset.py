"""Make a class/video subset of a UCF101-layout dataset that the same loader reads.

    python data_tools/make_subset.py --src data/UCF101 --dst data/ucf10 --classes 10
    python data_tools/make_subset.py --src data/UCF101 --dst data/ucf5x20 --classes 5 \\
        --videos-per-class 20 --seed 1
    python data_tools/make_subset.py --src data/UCF101 --dst data/mine --class-list classes.txt

The subset keeps the UCF101 layout: ``DST/UCF-101/<Class>/<video>`` are symlinks to the
source videos (copies with ``--copy``), ``DST/ucfTrainTestlist/`` holds a new
``classInd.txt`` (the chosen classes in their source order, numbered from 1) and every
``trainlist0N.txt``/``testlist0N.txt`` of the source filtered to the chosen videos, with train
labels renumbered to match. ``DST/subset_manifest.json`` records the source root, the seed,
the classes (with their source labels) and the per-split video counts.

Choice is deterministic: classes and videos are sorted before a seeded draw. ``--classes N``
draws N classes; ``--class-list FILE`` names them (one per line). ``--videos-per-class N``
draws N videos of each class, split between fold 1's train and test lists in the source's
proportion (at least one test video where the class has any), so fold 1 stays usable; the
other folds' lists keep the chosen videos they list. The subset is built in a temporary
folder beside ``DST`` and renamed into place, so ``DST`` is either complete or absent.
Kinetics-layout sources are not supported yet (see ``--layout``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from vidsparse.data.datasets import UCF101_LISTS, UCF101_VIDEOS, ucf101_classes, ucf101_index

MANIFEST = "subset_manifest.json"
LIST_NAME = re.compile(r"^(train|test)list(\d+)\.txt$")


class SubsetError(ValueError):
    """The subset asked for can not be made from this source; the message says why."""


def detect_layout(src: Path) -> str:
    if (src / UCF101_VIDEOS).is_dir() and (src / UCF101_LISTS).is_dir():
        return "ucf101"
    if (src / "annotations").is_dir() or any(src.glob("*.csv")):
        return "kinetics"
    raise SubsetError(f"{src}: no {UCF101_VIDEOS}/ and {UCF101_LISTS}/ (UCF101 layout) and "
                      f"no annotation CSVs (Kinetics layout)")


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
                   rng: np.random.Generator) -> list[str]:
    """The chosen classes, in source (classInd) order."""
    if class_list is not None:
        lines = class_list.read_text(encoding="utf-8-sig").splitlines()
        names = [line.strip() for line in lines if line.strip()]
        by_lower = {c.lower(): c for c in classes}
        unknown = [n for n in names if n.lower() not in by_lower]
        if unknown:
            raise SubsetError(f"{class_list}: class {unknown[0]!r} is not in the source's "
                              f"classInd.txt ({len(classes)} classes, e.g. {classes[0]!r})")
        if not names:
            raise SubsetError(f"{class_list} names no classes")
        wanted = {by_lower[n.lower()] for n in names}
    else:
        if not 1 <= num_classes <= len(classes):
            raise SubsetError(f"--classes {num_classes}: the source has {len(classes)} "
                              f"classes; ask for 1..{len(classes)}")
        wanted = set(rng.choice(sorted(classes), size=num_classes, replace=False).tolist())
    return [c for c in classes if c in wanted]


def choose_videos(per_class: dict[str, dict[str, list[str]]], videos_per_class: int | None,
                  rng: np.random.Generator) -> set[str] | None:
    """Relative video paths kept (None: all), drawn per class from fold 1's train/test."""
    if videos_per_class is None:
        return None
    if videos_per_class < 1:
        raise SubsetError(f"--videos-per-class must be positive, got {videos_per_class}")
    keep: set[str] = set()
    for name, splits in per_class.items():
        train, test = sorted(splits["train"]), sorted(splits["test"])
        total = len(train) + len(test)
        if videos_per_class > total:
            raise SubsetError(f"--videos-per-class {videos_per_class}: class {name!r} has "
                              f"only {total} videos in fold 1")
        n_test = round(videos_per_class * len(test) / total)
        if test and n_test == 0:
            n_test = 1
        n_test = min(n_test, len(test), videos_per_class)
        n_train = videos_per_class - n_test
        for pool, n in ((train, n_train), (test, n_test)):
            keep.update(rng.choice(pool, size=n, replace=False).tolist() if n else [])
    return keep


def make_subset(src: str | os.PathLike, dst: str | os.PathLike, num_classes: int | None = None,
                videos_per_class: int | None = None, class_list: str | os.PathLike | None = None,
                layout: str = "auto", seed: int = 0, copy: bool = False) -> dict:
    """Write the subset (see the module docstring); returns the manifest."""
    src, dst = Path(src).resolve(), Path(dst).absolute()
    if (num_classes is None) == (class_list is None):
        raise SubsetError("give exactly one of --classes and --class-list")
    if not src.is_dir():
        raise SubsetError(f"--src {src} is not a directory")
    if layout == "auto":
        layout = detect_layout(src)
    if layout == "kinetics":
        raise SubsetError(
            "kinetics subsets need a writer for the Kinetics layout (filtered "
            "annotations/<split>.csv plus the video folders of "
            "vidsparse.data.datasets.Kinetics), which make_subset.py does not have yet; "
            "only UCF101-layout sources are supported")
    if layout != "ucf101":
        raise SubsetError(f"unknown --layout {layout!r}; use ucf101, kinetics or auto")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise SubsetError(f"--dst {dst} exists and is not empty; pick a new folder")

    rng = np.random.default_rng(seed)
    classes = ucf101_classes(src)
    chosen = choose_classes(classes, num_classes, None if class_list is None
                            else Path(class_list), rng)
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
    keep = choose_videos(fold1, videos_per_class, rng)

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        (tmp / UCF101_LISTS).mkdir()
        (tmp / UCF101_LISTS / "classInd.txt").write_text(
            "".join(f"{i + 1} {c}\n" for i, c in enumerate(chosen)), encoding="utf-8")
        counts, videos = {}, set()
        for name, (split, entries) in lists.items():
            kept = [(r, lab) for r, lab in entries if keep is None or r in keep]
            lines = [f"{r} {new_label[lab] + 1}" if split == "train" else r for r, lab in kept]
            (tmp / UCF101_LISTS / name).write_text("".join(f"{x}\n" for x in lines),
                                                   encoding="utf-8")
            counts[name] = len(kept)
            videos.update(r for r, _ in kept)
        for relative in sorted(videos):
            target, link = videos_root / relative, tmp / UCF101_VIDEOS / relative
            link.parent.mkdir(parents=True, exist_ok=True)
            if copy:
                shutil.copy2(target.resolve(), link)
            else:
                link.symlink_to(target.resolve())
        manifest = {
            "source": str(src), "layout": layout, "seed": seed, "copy": copy,
            "classes": chosen, "source_labels": {c: classes.index(c) for c in chosen},
            "videos_per_class": videos_per_class, "videos": len(videos),
            "split_counts": counts,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private
        if dst.exists():
            dst.rmdir()  # empty, checked above
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="source dataset root")
    parser.add_argument("--dst", required=True, help="subset root to create (new or empty)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--classes", type=int, help="number of classes to draw")
    which.add_argument("--class-list", help="file naming the classes, one per line")
    parser.add_argument("--videos-per-class", type=int, help="videos drawn per class "
                        "(default: all)")
    parser.add_argument("--layout", default="auto", choices=("ucf101", "kinetics", "auto"),
                        help="source layout (default auto; kinetics is not supported yet)")
    parser.add_argument("--seed", type=int, default=0, help="draw seed (default 0)")
    parser.add_argument("--copy", action="store_true", help="copy videos instead of symlinking")
    args = parser.parse_args(argv)
    try:
        manifest = make_subset(args.src, args.dst, args.classes, args.videos_per_class,
                               args.class_list, args.layout, args.seed, args.copy)
    except SubsetError as err:
        parser.error(str(err))
    print(f"wrote {args.dst}: {len(manifest['classes'])} classes, {manifest['videos']} videos "
          f"({', '.join(f'{k} {v}' for k, v in manifest['split_counts'].items())})",
          file=sys.stderr)
    return manifest


if __name__ == "__main__":
    main()
