"""Write corrupted copies of a video dataset's evaluation split, one per corruption x severity.

    python data_tools/corrupt_dataset.py --src data/synthetic --dst data/synthetic-c \\
        --corruptions fog,h264_crf --severities 1,3,5 --workers 2

Every (corruption, severity) becomes its own root in the source's layout, readable by the
same loader: ``DST/<corruption>/<severity>/`` holds the split's videos under their source
paths (UCF101: ``UCF-101/<Class>/<file>`` plus ``classInd.txt`` and the fold's list;
Kinetics: ``<split>/<label>/<file>`` plus the split's and the train CSV; folders:
``[<split>/]<class>/<file>``). ``DST/manifest.json`` records the settings, each corruption's
parameters and every file written (source, seed, frames, sha256). Each video's seed is
derived from (--seed, corruption, severity, Class/file), so any subset of the work gives the
same files. Rerunning over an existing DST skips files the manifest lists with a matching
hash and redoes the rest; --verify re-checks every hash. The library function is
vidsparse.corruptions.corrupt_dataset.

Before writing, the tool corrupts a small sample of the source into a temporary folder and
prints its estimate of the job's bytes and time; it refuses to start when DST's free space
is smaller (--ignore-free-space overrides). Lossless copies are large (a UCF101 video of
0.6 MB becomes 8-40 MB per condition): evaluating on the fly needs no copies at all.

Across processes and machines:

    accelerate launch --multi_gpu --num_machines 2 --num_processes 16 ... \
        data_tools/corrupt_dataset.py --src data/ucf101 --dst /shared/ucf101-c --corruptions all

splits the (video, corruption, severity) jobs over every process (each with --workers
worker processes of its own); the files and manifest equal a one-process run's, and an
interrupted run resumes with any number of processes. Every machine must see the same
--src and --dst folders (a shared filesystem).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidsparse.config import parse_overrides
from vidsparse.corruptions import list_corruptions
from vidsparse.corruptions.generate import STORAGE, ProcessGroup, corrupt_dataset, verify_dataset
from vidsparse.data.datasets import DatasetFormatError


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, help="source dataset root (UCF101, Kinetics or class folders)")
    parser.add_argument("--dst", required=True, type=Path, help="output root (created if missing)")
    parser.add_argument("--verify", action="store_true",
                        help="write nothing: re-check every file DST's manifest lists against its "
                             "sha256 and exit 1 if any is missing or differs")
    parser.add_argument("--corruptions",
                        help=f"comma-separated names, or 'all' ({', '.join(list_corruptions())})")
    parser.add_argument("--preset", default=None,
                        help="a benchmark's published corruption set and constants: "
                             "imagenet_c, mini_kinetics_c or ucf101_p (--corruptions then "
                             "defaults to the whole set and may only name corruptions of it)")
    parser.add_argument("--severities", default="1,2,3,4,5", help="comma-separated, 1-5 (default: all)")
    parser.add_argument("--layout", default="auto", choices=["auto", "ucf101", "kinetics", "folder"],
                        help="the source's layout (default: detected)")
    parser.add_argument("--split", default=None,
                        help="which split to corrupt (default: the evaluation split: UCF101 "
                             "test, Kinetics validate, folder test)")
    parser.add_argument("--fold", type=int, default=1, help="UCF101's list, testlist0N.txt (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a corruption option, given to every chosen corruption that takes "
                             "it, e.g. temporal=iid (repeatable)")
    parser.add_argument("--storage", choices=sorted(STORAGE), default="lossless",
                        help="how the corrupted videos are stored: lossless (FFV1 in RGB: the "
                             "stored frames are exactly the corrupted ones; the default) or h264 "
                             "(libx264 at --crf: much smaller, but it adds its own compression on "
                             "top of the corruption)")
    parser.add_argument("--crf", type=int, default=18, help="x264 CRF for --storage h264 (default 18)")
    parser.add_argument("--codec", default=None,
                        help="advanced: an FFmpeg encoder spec NAME[:KEY=VALUE,...] overriding --storage")
    parser.add_argument("--ignore-free-space", action="store_true",
                        help="start even when the estimated size exceeds DST's free space")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser, parser.parse_args(argv)


def verify(dst: Path) -> int:
    try:
        checked, problems = verify_dataset(dst)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    print(f"verified {checked - len(problems)} of {checked} files in {dst}"
          + (f"; {len(problems)} missing or changed" if problems else ": all match the manifest"))
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    if args.verify:
        return verify(args.dst)
    if args.src is None or (args.corruptions is None and args.preset is None):
        parser.error("--src and --corruptions (or --preset) are required (unless --verify)")
    try:
        severities = [int(s) for s in args.severities.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--severities must be comma-separated integers 1-5, got {args.severities!r}")
    try:
        summary = corrupt_dataset(
            args.src, args.dst, args.corruptions, severities, preset=args.preset, layout=args.layout,
            split=args.split, fold=args.fold, seed=args.seed, storage=args.storage, crf=args.crf,
            codec=args.codec, options=parse_overrides(args.option, what="--option"), workers=args.workers,
            progress=not args.quiet, check_space=not args.ignore_free_space,
            on_estimate=lambda estimate: print(estimate, flush=True))
    except (ValueError, FileNotFoundError, DatasetFormatError) as err:
        parser.error(str(err))  # nothing has been written: every check runs first
    if ProcessGroup.current().is_main:  # one summary (the main process's merges all shares)
        print(summary)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
