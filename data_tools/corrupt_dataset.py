"""Write corrupted copies of the test split of a UCF101-layout dataset.

    python data_tools/corrupt_dataset.py --src data/synthetic --dst data/synthetic-c \\
        --corruptions fog,h264_crf --severities 1,3,5 --workers 2

Every (corruption, severity) becomes its own UCF101 root, readable by the same loader:
``DST/<corruption>/<severity>/UCF-101/<Class>/<file>`` plus ``ucfTrainTestlist/`` holding
``classInd.txt`` and the fold's ``testlist0N.txt``. ``DST/manifest.json`` lists every file
written (corruption, severity, seed, frames, sha256) and the settings. Each video's seed is
derived from (--seed, corruption, severity, Class/file), so any subset of the work gives the
same files. Rerunning over an existing DST skips files the manifest lists with a matching hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidsparse import __version__
from vidsparse.corruptions import SEVERITIES, corrupt, list_corruptions, source_name, video_seed
from vidsparse.data.datasets import UCF101_LISTS, UCF101_VIDEOS, ucf101_index
from vidsparse.data.decode import read_video, write_video

MANIFEST = "manifest.json"
# FFV1 is lossless only in an RGB pixel format (its 4:2:0 mode would subsample chroma again);
# bgr0 is the RGB layout FFV1 accepts in AVI. Every other codec gets the usual yuv420p.
PIX_FMTS = {"ffv1": "bgr0"}
DEFAULT_PIX_FMT = "yuv420p"
STORAGE = {"lossless": "ffv1", "h264": "libx264"}


def encoding(spec: str) -> tuple[str, dict[str, str]]:
    """``"libx264:crf=18"`` -> ``("libx264", {"crf": "18"})``: the codec and its options.

    The spec string is what the manifest records, so a rerun with another CRF redoes files.
    """
    codec, _, opts = spec.partition(":")
    return codec, dict(o.split("=", 1) for o in opts.split(",") if o)


def write_encoded(path: Path, frames, fps: float, spec: str) -> Path:
    codec, options = encoding(spec)
    return write_video(path, frames, fps, codec=codec, options=options or None,
                       pix_fmt=PIX_FMTS.get(codec, DEFAULT_PIX_FMT))


@dataclass(frozen=True)
class Job:
    """One output file: a source video under one corruption and severity."""

    source: str  # Class/file.avi, relative to the source UCF-101 folder
    label: int
    corruption: str
    severity: int
    seed: int

    @property
    def path(self) -> str:
        return f"{self.corruption}/{self.severity}/{UCF101_VIDEOS}/{self.source}"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path,
                        help="UCF101-layout root (UCF-101/ and ucfTrainTestlist/)")
    parser.add_argument("--dst", required=True, type=Path, help="output root (created if missing)")
    parser.add_argument("--verify", action="store_true",
                        help="write nothing: re-check every file DST's manifest lists against its "
                             "sha256 and exit 1 if any is missing or differs")
    parser.add_argument("--corruptions",
                        help=f"comma-separated names, or 'all' ({', '.join(list_corruptions())})")
    parser.add_argument("--severities", default="1,2,3,4,5", help="comma-separated, 1-5 (default: all)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--fold", type=int, default=1, help="which testlist0N.txt (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--storage", choices=sorted(STORAGE), default="lossless",
                        help="how the corrupted videos are stored: lossless (FFV1 in RGB: the "
                             "stored frames are exactly the corrupted ones; the default) or h264 "
                             "(libx264 at --crf: much smaller, but it adds its own compression on "
                             "top of the corruption)")
    parser.add_argument("--crf", type=int, default=18, help="x264 CRF for --storage h264 (default 18)")
    parser.add_argument("--codec", default=None,
                        help="advanced: any FFmpeg encoder for the .avi files, overriding --storage")
    return parser, parser.parse_args(argv)


def parse_corruptions(text: str) -> list[str]:
    known = list_corruptions()
    names = list(known) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"unknown corruption(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(known)} (or 'all')")
    return list(dict.fromkeys(names))


def parse_severities(text: str) -> list[int]:
    try:
        severities = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        severities = []
    if not severities or any(s not in SEVERITIES for s in severities):
        raise ValueError(f"severities must be a comma-separated subset of {SEVERITIES}, got {text!r}")
    return sorted(set(severities))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_codec(codec: str) -> None:
    """Write one tiny frame with ``codec`` outside DST, so a bad codec fails before any work."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            write_encoded(Path(tmp) / "probe.avi", np.zeros((1, 16, 16, 3), np.uint8), 25.0, codec)
        except Exception as exc:  # PyAV raises several error types for an unusable codec
            raise ValueError(f"cannot write .avi with codec {codec!r}: {exc}") from exc


def plan_jobs(index: list[tuple[Path, int]], corruptions: list[str], severities: list[int],
              seed: int) -> list[Job]:
    jobs = []
    for path, label in index:
        source = source_name(path)
        for corruption in corruptions:
            for severity in severities:
                jobs.append(Job(source, label, corruption, severity,
                                video_seed(seed, corruption, severity, source)))
    return jobs


def plan_tasks(index: list[tuple[Path, int]], jobs: list[Job], entries: dict[str, dict],
               dst: Path, codec: str) -> tuple[list[tuple], int]:
    """One task per source video with the jobs it still needs, and how many jobs were done."""
    videos = {source_name(path): path for path, _ in index}
    source_sha = {source: sha256_file(path) for source, path in videos.items()}
    todo: dict[str, list[Job]] = {}
    for job in jobs:
        if not is_done(job, entries.get(job.path), dst, codec, source_sha[job.source]):
            todo.setdefault(job.source, []).append(job)
    tasks = [(str(videos[source]), source_sha[source], batch, str(dst), codec)
             for source, batch in todo.items()]
    return tasks, len(jobs) - sum(len(batch) for batch in todo.values())


def load_manifest(dst: Path) -> dict[str, dict]:
    """Entries of an earlier run, by output path (empty when there is none)."""
    path = dst / MANIFEST
    if not path.is_file():
        return {}
    return {entry["path"]: entry for entry in json.loads(path.read_text())["files"]}


def is_done(job: Job, entry: dict | None, dst: Path, codec: str, source_sha: str) -> bool:
    """Written by an earlier run with the same seed, codec and source bytes, and intact."""
    entry = entry or {}
    return (entry.get("seed") == job.seed and entry.get("codec") == codec
            and entry.get("source_sha256") == source_sha and (dst / job.path).is_file()
            and sha256_file(dst / job.path) == entry.get("sha256"))


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_split_lists(src: Path, dst: Path, fold: int, corruptions: list[str], severities: list[int]):
    """Give each copy the class index and the fold's test list, so it is a UCF101 root itself."""
    lists = src / UCF101_LISTS
    for corruption in corruptions:
        for severity in severities:
            for name in ("classInd.txt", f"testlist{fold:02d}.txt"):
                write_atomic(dst / corruption / str(severity) / UCF101_LISTS / name,
                             (lists / name).read_bytes())


def corrupt_video(task: tuple[str, str, list[Job], str, str]) -> list[dict]:
    """Decode one source video once and write every job for it. Runs in a worker process."""
    src_file, src_sha, jobs, dst, codec = task
    frames, fps = read_video(src_file)
    entries = []
    for job in jobs:
        out = corrupt(frames, job.corruption, job.severity, seed=job.seed)
        path = write_encoded(Path(dst) / job.path, out, fps, codec)
        entries.append({"path": job.path, "source": job.source, "source_sha256": src_sha,
                        "label": job.label, "corruption": job.corruption,
                        "severity": job.severity, "seed": job.seed, "codec": codec,
                        "frames": int(out.shape[0]), "sha256": sha256_file(path)})
    return entries


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # N workers on N cores, not N x N threads


def run_tasks(tasks: list, workers: int, total: int):
    """Yield each task's entries as it finishes, with a progress bar over output files."""
    from tqdm import tqdm

    with tqdm(total=total, unit="file", desc="corrupt", dynamic_ncols=True) as bar:
        if workers <= 1:
            results = map(corrupt_video, tasks)
            pool = None
        else:
            # spawn: a fresh interpreter per worker, safe whatever threads torch has started.
            pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker)
            results = pool.imap_unordered(corrupt_video, tasks)
        try:
            for entries in results:
                bar.update(len(entries))
                yield entries
        finally:
            if pool is not None:
                pool.terminate()


def write_manifest(dst: Path, entries: dict[str, dict], settings: dict) -> None:
    manifest = {
        "tool": "data_tools/corrupt_dataset.py",
        "vidsparse_version": __version__,
        "settings": settings,
        "corruption_kinds": list_corruptions(),
        "files": [entries[key] for key in sorted(entries)],
    }
    write_atomic(dst / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())


def verify(dst: Path) -> int:
    """Re-hash every file the manifest lists; print what is missing or changed."""
    if not (dst / MANIFEST).is_file():
        print(f"error: {dst / MANIFEST} not found: nothing to verify", file=sys.stderr)
        return 2
    entries = load_manifest(dst)
    bad = []
    for path, entry in sorted(entries.items()):
        if not (dst / path).is_file():
            bad.append(f"missing  {path}")
        elif sha256_file(dst / path) != entry["sha256"]:
            bad.append(f"changed  {path}")
    for line in bad:
        print(line)
    print(f"verified {len(entries) - len(bad)} of {len(entries)} files in {dst}"
          + (f"; {len(bad)} missing or changed" if bad else ": all match the manifest"))
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    if args.verify:
        return verify(args.dst)
    if args.src is None or args.corruptions is None:
        parser.error("--src and --corruptions are required (unless --verify)")
    # Everything that can be wrong with the request is checked before DST is touched.
    try:
        corruptions = parse_corruptions(args.corruptions)
        severities = parse_severities(args.severities)
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        if args.codec is None:
            args.codec = STORAGE[args.storage] + (f":crf={args.crf}" if args.storage == "h264" else "")
        check_codec(args.codec)
        index = ucf101_index(args.src, "test", args.fold)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))

    started = time.time()
    entries = load_manifest(args.dst)
    tasks, skipped = plan_tasks(index, plan_jobs(index, corruptions, severities, args.seed),
                                entries, args.dst, args.codec)
    write_split_lists(args.src, args.dst, args.fold, corruptions, severities)
    settings = {"src": str(args.src.resolve()), "fold": args.fold, "seed": args.seed,
                "codec": args.codec, "pix_fmt": PIX_FMTS.get(encoding(args.codec)[0], DEFAULT_PIX_FMT),
                "corruptions": corruptions, "severities": severities}
    written: Counter[str] = Counter()
    try:
        for done in run_tasks(tasks, args.workers, sum(len(task[2]) for task in tasks)):
            entries.update((entry["path"], entry) for entry in done)
            written.update(entry["corruption"] for entry in done)
    finally:  # an interrupted run still records what it finished, for the next run to skip
        write_manifest(args.dst, entries, settings)
    print(f"wrote {sum(written.values())} files, skipped {skipped} already done, "
          f"in {time.time() - started:.1f}s -> {args.dst}")
    for corruption in corruptions:
        print(f"  {corruption:16s} {written[corruption]:6d} written  "
              f"severities {','.join(map(str, severities))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
