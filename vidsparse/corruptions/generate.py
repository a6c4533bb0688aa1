"""Corrupted copies of a video dataset: one per (corruption, severity), in the source's layout.

``corrupt_dataset(src, dst, ["fog", "h264_crf"], [1, 3, 5])`` writes
``dst/<corruption>/<severity>/`` as a root of the same layout as ``src`` (UCF101, Kinetics
or class folders), holding the chosen split's videos, corrupted, under the same relative
paths, and the annotation files that split needs, so the dataset classes read each copy as
they read the source. ``dst/manifest.json`` records the tool version, the settings, each
corruption's parameters and, per output file, its source, seed and sha256.

Every video's seed is :func:`~vidsparse.corruptions.video_seed` of (seed, corruption,
severity, ``Class/file``), so any subset of the work, any number of workers and the
on-the-fly evaluation give the same frames. Outputs are written to a temporary name and
renamed; a second run skips files whose manifest entry (seed, options, encoding, source
hash, output hash) still matches and redoes the rest.

Before writing, :func:`estimate_job` corrupts a few source videos into a temporary folder
and scales their bytes and seconds to the job by pixel-frames (frame count x height x width,
from the dataset index); the run refuses to start when the destination's free space is
smaller (``check_space=False`` overrides).

Under ``accelerate launch`` (``WORLD_SIZE`` > 1) every process of every machine takes a
contiguous share of the sorted job list; the destination must be one folder that all
machines see (a shared filesystem). Each process records what it wrote in
``dst/.manifest.part<rank>.json``; after a barrier the main process merges those records
into ``manifest.json`` and deletes them, so the files and the manifest are the bytes a
one-process run writes, and an interrupted run (any number of processes) resumes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import multiprocessing
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from vidsparse.corruptions.registry import CORRUPTION_VERSION, CORRUPTIONS, SEVERITIES, corrupt, list_corruptions, \
    source_name, video_seed
from vidsparse.files import atomic_write

MANIFEST = "manifest.json"
# How the corrupted frames are stored: FFV1 is lossless (the stored frames are exactly the
# corrupted ones); libx264 at a CRF is much smaller but adds its own compression.
STORAGE = {"lossless": "ffv1", "h264": "libx264"}
# FFV1 is lossless only in an RGB pixel format (its 4:2:0 mode would subsample chroma again);
# bgr0 is the RGB layout FFV1 accepts. Every other codec gets the usual yuv420p.
PIX_FMTS = {"ffv1": "bgr0"}
DEFAULT_PIX_FMT = "yuv420p"
# The split a robustness evaluation reads when none is chosen.
EVALUATION_SPLITS = {"ucf101": "test", "kinetics": "validate", "folder": "test"}
# Where a source container cannot hold the storage codec (WebM takes only VP8/VP9/AV1), the
# copy is written as Matroska, which holds any codec; the Kinetics and folder loaders find
# videos by name whatever their extension.
FALLBACK_SUFFIX = ".mkv"
# The names write_video and write_atomic give files being written (vidsparse.files: 8
# characters of [a-z0-9_], as tempfile's).
TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?")
MANIFEST_EVERY_S = 5.0  # an interrupted run loses at most this much of its bookkeeping
# What each process of a multi-process run records before the main one merges it; the name
# is not TEMPORARY's shape, so a restarted run merges a killed run's parts instead of
# deleting them.
PART = re.compile(r"\.manifest\.part(\d+)\.json")
# The sample behind the size and time estimate: this many source videos (evenly spaced over
# the sorted ones still to do), each cut to this many frames, under every corruption at the
# lowest and the highest requested severity. Small, so a run on a real dataset starts within
# a minute or two, and the estimate stays within a factor of about 2 of the job.
ESTIMATE_VIDEOS = 2
ESTIMATE_FRAMES = 32
# Processes of a multi-process run wait at barriers for the slowest one (the main process
# hashing a resumed run's outputs, the last share finishing): far beyond torch's 30 minutes.
BARRIER_TIMEOUT_S = 7 * 24 * 3600


# --------------------------------------------------------------------------- the source

@dataclass(frozen=True)
class Source:
    """One split of a dataset: its videos and what a copy needs to be read like it."""

    root: Path
    layout: str
    split: str
    fold: int
    samples: list[tuple[Path, int]]   # (video, label) the annotations list and the disk has
    missing: list[tuple[Path, str]]   # listed but absent (Kinetics), with the reason
    annotations: list[str]            # files copied into every copy, relative to root
    class_dirs: list[str]             # folders created in every copy, relative to root

    def relative(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()


def dataset_source(root: str | os.PathLike, layout: str = "auto", split: str | None = None,
                   fold: int = 1) -> Source:
    """Find the videos of ``split`` (default: the evaluation split) of the dataset at ``root``.

    Example:
        >>> src = dataset_source("data/ucf101")          # UCF101, testlist01
        >>> src.layout, src.split, len(src.samples)
        ('ucf101', 'test', 3783)
    """
    from vidsparse.data import datasets as ds

    root = Path(root)
    layout = ds.detect_layout(root) if layout == "auto" else layout
    if layout not in EVALUATION_SPLITS:
        raise ValueError(f"layout must be one of auto, {', '.join(EVALUATION_SPLITS)}, got {layout!r}")
    split = split or EVALUATION_SPLITS[layout]
    missing: list[tuple[Path, str]] = []
    if layout == "ucf101":
        samples = ds.ucf101_index(root, split, fold)
        lists = Path(ds.UCF101_LISTS)
        annotations = [(lists / "classInd.txt").as_posix(),
                       (lists / f"{split}list{int(fold):02d}.txt").as_posix()]
        class_dirs: list[str] = []
    elif layout == "kinetics":
        if fold != 1:
            raise ValueError(f"Kinetics has one official split; fold must be 1, got {fold}")
        samples, missing = ds.kinetics_index(root, split)
        # The train CSV comes too: it defines the class list of every split.
        annotations = sorted({Path(os.path.relpath(ds.kinetics_csv(root, s), root)).as_posix()
                              for s in (split, "train")})
        class_dirs = []
    else:
        if fold != 1:
            raise ValueError(f"a video folder has no folds; fold must be 1, got {fold}")
        samples, classes, base = ds.folder_index(root, split)
        annotations = []
        # Every class folder, even one without videos in this split, keeps labels numbered alike.
        prefix = Path(os.path.relpath(base, root))
        class_dirs = [(prefix / name).as_posix() for name in classes]
    return Source(root, layout, split, fold, list(samples), missing, annotations, class_dirs)


# --------------------------------------------------------------------------- the work

@dataclass(frozen=True)
class Job:
    """One output file: a source video under one corruption and severity."""

    source: str        # relative to the source root
    label: int
    corruption: str
    severity: int
    seed: int
    output: str        # relative to the copy's root (the source path, or its .mkv twin)

    @property
    def path(self) -> str:
        return f"{self.corruption}/{self.severity}/{self.output}"


@dataclass
class Summary:
    """What a :func:`corrupt_dataset` run did."""

    dst: Path
    written: Counter = field(default_factory=Counter)      # files per corruption
    skipped: int = 0                                       # already done by an earlier run
    failed: list[tuple[str, str]] = field(default_factory=list)   # (source video, reason)
    missing: list[tuple[str, str]] = field(default_factory=list)  # listed but not on disk
    seconds: float = 0.0
    estimate: "Estimate | None" = None                     # the main process's, before writing

    def __str__(self) -> str:
        lines = [f"wrote {sum(self.written.values())} files, skipped {self.skipped} already done, "
                 f"{len(self.failed)} source video(s) failed, in {self.seconds:.1f}s -> {self.dst}"]
        lines += [f"  {name:20s} {count:6d} written" for name, count in sorted(self.written.items())]
        if self.missing:
            lines.append(f"  {len(self.missing)} listed video(s) missing from the source, e.g. "
                         f"{self.missing[0][0]}")
        for source, reason in self.failed:
            lines.append(f"  FAILED {source}: {reason}")
        return "\n".join(lines)


def corrupt_dataset(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    corruptions: Sequence[str] | str | None = None,
    severities: Sequence[int] = SEVERITIES,
    *,
    preset: str | None = None,
    layout: str = "auto",
    split: str | None = None,
    fold: int = 1,
    seed: int = 0,
    storage: str = "lossless",
    crf: int = 18,
    codec: str | None = None,
    options: Mapping[str, Any] | None = None,
    workers: int = 1,
    progress: bool = True,
    check_space: bool = True,
    on_estimate: Callable[["Estimate"], None] | None = None,
) -> Summary:
    """Write ``dst/<corruption>/<severity>/``: ``split`` of ``src`` corrupted, in its layout.

    Args:
        src: a dataset root (UCF101, Kinetics or class folders; ``layout="auto"`` detects it).
        dst: the output root; created if missing, resumed if an earlier run wrote there.
        corruptions, severities: what to write (names from ``list_corruptions()``; 1-5).
            With a ``preset``, default its whole corruption set; names outside it are an error.
        preset: a benchmark preset (``"imagenet_c"``, ``"mini_kinetics_c"``, ``"ucf101_p"``;
            see :mod:`vidsparse.corruptions.presets`): the published corruption set, each with
            the options that reproduce the published constants. ``options`` still apply on top.
        split: default the evaluation split: UCF101's ``test`` list of ``fold``, Kinetics'
            ``validate``, a folder's ``test/`` (or every video when it has no split folders).
        seed: base seed; each video's own is derived from it (see :func:`video_seed`).
        storage: ``"lossless"`` (FFV1 in RGB: stored frames are exactly the corrupted ones)
            or ``"h264"`` (libx264 at ``crf``: smaller, adds its own compression).
        codec: advanced: an FFmpeg encoder spec ``"name[:opt=value,...]"`` overriding storage.
        options: corruption options (e.g. ``{"temporal": "iid"}``), each given to every chosen
            corruption that accepts it; one that none accepts is an error.
        workers: processes (per ``accelerate launch`` process); each decodes a source video
            once and writes all its copies.
        check_space: refuse (:class:`NotEnoughSpaceError`) when the estimated bytes of the
            files still to write exceed the destination's free space.
        on_estimate: called with the :class:`Estimate` before writing (by the main process);
            default: printed when ``progress``.

    Under ``accelerate launch`` every process calls this with the same arguments; each writes
    its share of the jobs and the main process writes the manifest (see the module's notes).

    Everything that can be wrong with the request raises ``ValueError`` (or
    ``FileNotFoundError``) before ``dst`` is touched. A video that fails to decode or
    corrupt is reported in :attr:`Summary.failed` and the manifest, and the rest go on.

    Example:
        >>> summary = corrupt_dataset("data/ucf101", "data/ucf101-c", ["fog", "h264_crf"],
        ...                           [1, 3, 5], workers=8)
        >>> UCF101("data/ucf101-c/fog/3", split="test")   # read like the source
    """
    corruptions, per_corruption = resolve_corruptions(corruptions, options, preset)
    severities = check_severities(severities)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    codec = codec or storage_codec(storage, crf)
    source = dataset_source(src, layout, split, fold)
    suffixes = output_suffixes(source, codec)
    dst = Path(dst)
    group = ProcessGroup.current()

    started = time.time()
    summary = Summary(dst, missing=[(str(p), why) for p, why in source.missing])
    jobs = plan_jobs(source, corruptions, severities, seed, suffixes)
    settings = {"src": str(source.root.resolve()), "layout": source.layout, "split": source.split,
                "fold": source.fold, "seed": seed, "codec": codec,
                "pix_fmt": PIX_FMTS.get(encoding(codec)[0], DEFAULT_PIX_FMT),
                "corruptions": corruptions, "severities": severities, "preset": preset,
                "parameters": {name: parameters(name, severities, per_corruption[name])
                               for name in corruptions}}
    # The main process plans, estimates and prepares dst; the others wait for its verdict, so
    # a refused job leaves dst untouched on every machine.
    verdict: dict[str, Any] = {}
    if group.is_main:
        try:
            entries = load_manifest(dst)
            if merge_parts(dst, entries):  # a killed multi-process run's records
                write_manifest(dst, entries, settings, {})
                delete_parts(dst)
            tasks, skipped = plan_tasks(source, jobs, entries, dst, codec, per_corruption)
            estimate = estimate_job(source, tasks, dst, codec, per_corruption,
                                    workers * group.world)
            if on_estimate is not None:
                on_estimate(estimate)
            elif progress:
                print(estimate, flush=True)
            if check_space and estimate.free is not None and estimate.bytes > estimate.free:
                raise NotEnoughSpaceError(
                    f"not enough free space at {estimate.where}: the job needs an estimated "
                    f"{_gb(estimate.bytes)} for {estimate.files} files, {_gb(estimate.free)} "
                    f"are free; free some space, choose another destination, store the copies "
                    f"smaller (storage h264), or override the check (--ignore-free-space, "
                    f"check_space=False)")
            write_annotations(source, dst, corruptions, severities)
            remove_stale_temporaries(dst, corruptions, severities)
            pending = {job.path for task in tasks for job in task[2]}
            verdict = {"pending": pending, "skipped": skipped}
            summary.estimate = estimate
        except Exception as exc:  # every process raises it, not only the main one
            verdict = {"error": exc}
    verdict = group.broadcast(verdict)
    if "error" in verdict:
        raise verdict["error"]
    summary.skipped = verdict["skipped"]
    mine = group.share([job for job in jobs if job.path in verdict["pending"]])
    tasks = group_tasks(source, mine, str(dst), codec, per_corruption)

    entries = load_manifest(dst) if group.world == 1 else {}
    failed: dict[str, str] = {}
    record = (lambda: write_manifest(dst, entries, settings, failed)) if group.world == 1 else \
        (lambda: write_part(dst, group.rank, entries, failed))
    last_save = time.time()
    try:
        for done in run_tasks(tasks, workers, sum(len(t[2]) for t in tasks), progress):
            for entry in done:
                if "error" in entry:
                    failed[entry["source"]] = entry["error"]
                else:
                    entries[entry["path"]] = entry
                    summary.written[entry["corruption"]] += 1
            if time.time() - last_save > MANIFEST_EVERY_S:
                record()
                last_save = time.time()
    finally:  # an interrupted run still records what it finished, for the next run to skip
        record()
    if group.world > 1:
        group.barrier()  # every share written and recorded
        if group.is_main:
            entries = load_manifest(dst)
            written = merge_parts(dst, entries, failed)
            summary.written = Counter(entry["corruption"] for entry in written)
            write_manifest(dst, entries, settings, failed)
            delete_parts(dst)
        group.barrier()  # the manifest is complete before any process returns
    summary.failed = sorted(failed.items())
    summary.seconds = time.time() - started
    return summary


def verify_dataset(dst: str | os.PathLike) -> tuple[int, list[str]]:
    """``(files checked, problems)``: re-hash every file ``dst/manifest.json`` lists.

    A problem reads ``"missing  <path>"`` or ``"changed  <path>"``.
    """
    dst = Path(dst)
    if not (dst / MANIFEST).is_file():
        raise FileNotFoundError(f"{dst / MANIFEST} not found: nothing to verify")
    entries = load_manifest(dst)
    problems = []
    for path, entry in sorted(entries.items()):
        if not (dst / path).is_file():
            problems.append(f"missing  {path}")
        elif sha256_file(dst / path) != entry["sha256"]:
            problems.append(f"changed  {path}")
    return len(entries), problems


# --------------------------------------------------------------------------- checks

def check_corruptions(names: Sequence[str] | str) -> list[str]:
    """Known names, in order, without repeats; ``"all"`` is every registered corruption."""
    known = list_corruptions()
    if isinstance(names, str):
        names = list(known) if names.strip() == "all" else [n.strip() for n in names.split(",")]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"unknown corruption(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(known)} (or 'all')")
    return list(dict.fromkeys(names))


def resolve_corruptions(corruptions: Sequence[str] | str | None, options: Mapping[str, Any] | None,
                        preset: str | None = None) -> tuple[list[str], dict[str, dict]]:
    """The corruption names asked for and each one's options: ``preset``'s (if any), then
    ``options`` (each given to every chosen corruption that accepts it) on top.

    Without a preset, ``corruptions`` is required; with one, it defaults to the preset's set
    and may only name corruptions of that set (an error lists them).
    """
    preset_options: dict[str, dict] = {}
    if preset is not None:
        from vidsparse.corruptions.presets import expand_preset

        try:
            preset_options = {name: dict(opts) for name, opts in expand_preset(preset)}
        except KeyError as err:  # the registry's message lists the known presets
            raise ValueError(f"preset: {err.args[0]}") from None
        if corruptions is None or (isinstance(corruptions, str) and corruptions.strip() == "all"):
            corruptions = list(preset_options)
    elif corruptions is None:
        raise ValueError("no corruptions given: name them (or 'all'), or choose a preset")
    names = check_corruptions(corruptions)
    if preset is not None:
        outside = [n for n in names if n not in preset_options]
        if outside:
            raise ValueError(f"corruption(s) {', '.join(outside)} are not in preset {preset!r}; "
                             f"it has: {', '.join(preset_options)}")
    given = split_options(names, options or {})
    return names, {n: {**preset_options.get(n, {}), **given[n]} for n in names}


def check_severities(severities: Iterable[int]) -> list[int]:
    severities = list(severities)
    if not severities or any(s not in SEVERITIES for s in severities):
        raise ValueError(f"severities must be a non-empty subset of {SEVERITIES}, got {severities}")
    return sorted(set(severities))


def accepted_options(name: str) -> dict[str, Any]:
    """``{option: default}``: the keyword options corruption ``name`` takes."""
    return {p.name: p.default for p in inspect.signature(CORRUPTIONS.get(name)).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def split_options(corruptions: Sequence[str], options: Mapping[str, Any]) -> dict[str, dict]:
    """Each corruption's options: the given ones it accepts."""
    per = {name: {k: v for k, v in options.items() if k in accepted_options(name)}
           for name in corruptions}
    unused = sorted(set(options) - {k for opts in per.values() for k in opts})
    if unused:
        raise ValueError(f"option(s) {', '.join(unused)} taken by none of "
                         f"{', '.join(corruptions)}; they accept: "
                         + "; ".join(f"{n}: {', '.join(accepted_options(n)) or '-'}"
                                     for n in corruptions))
    return per


def parameters(name: str, severities: Sequence[int], options: Mapping[str, Any]) -> dict:
    """What the manifest records of a corruption: kind, options in force (defaults filled in)
    and, for codecs, the encoder settings of each severity."""
    out: dict[str, Any] = {"kind": list_corruptions()[name],
                           "options": {**accepted_options(name), **options}}
    if out["kind"] == "codec":
        from vidsparse.corruptions.codec import encoder_settings

        out["encoder"] = {str(s): encoder_settings(name, s, **options) for s in severities}
    elif name == "frame_rate" and options.get("codec") == "h265":  # Yi's re-encode after re-timing
        from vidsparse.corruptions.codec import H265
        from vidsparse.corruptions.temporal import FRAME_RATE_H265_CRF

        out["encoder"] = {**H265.settings(), "rate_control": "crf", "crf": FRAME_RATE_H265_CRF}
    return out


def storage_codec(storage: str, crf: int) -> str:
    if storage not in STORAGE:
        raise ValueError(f"storage must be one of {', '.join(STORAGE)}, got {storage!r}")
    if storage == "h264":
        if not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be an int in 0..51 (x264's range), got {crf!r}")
        return f"{STORAGE[storage]}:crf={crf}"
    return STORAGE[storage]


def encoding(spec: str) -> tuple[str, dict[str, str]]:
    """``"libx264:crf=18"`` -> ``("libx264", {"crf": "18"})``: the codec and its options.

    The spec string is what the manifest records, so a rerun with another CRF redoes files.
    """
    codec, _, opts = spec.partition(":")
    pairs = [o.split("=", 1) for o in opts.split(",") if o]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"codec spec {spec!r}: options must read name:key=value,key=value")
    return codec, dict(pairs)


def write_encoded(path: Path, frames, fps: float, spec: str) -> Path:
    from vidsparse.data.decode import write_video

    codec, options = encoding(spec)
    return write_video(path, frames, fps, codec=codec, options=options or None,
                       pix_fmt=PIX_FMTS.get(codec, DEFAULT_PIX_FMT))


def output_suffixes(source: Source, codec: str) -> dict[str, str]:
    """``{source suffix: output suffix}``, probing each container with ``codec`` once.

    A container that cannot hold the codec maps to ``.mkv`` where the layout finds videos
    by name (Kinetics, folders); UCF101's lists name ``.avi`` files, so there it is an error.
    """
    suffixes = {}
    for suffix in sorted({p.suffix.lower() for p, _ in source.samples}):
        if _can_write(suffix, codec):
            suffixes[suffix] = suffix
        elif source.layout != "ucf101" and _can_write(FALLBACK_SUFFIX, codec):
            suffixes[suffix] = FALLBACK_SUFFIX
        else:
            raise ValueError(f"cannot write {suffix} files with codec {codec!r}: "
                             f"{_can_write(suffix, codec, explain=True)}")
    return suffixes


def _can_write(suffix: str, codec: str, explain: bool = False):
    """Write one tiny frame to a temporary ``suffix`` file outside ``dst``."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            write_encoded(Path(tmp) / f"probe{suffix}", np.zeros((1, 16, 16, 3), np.uint8), 25.0, codec)
        except Exception as exc:  # PyAV raises several error types for an unusable codec
            return f"{type(exc).__name__}: {exc}" if explain else False
    return True


# --------------------------------------------------------------------------- planning

def plan_jobs(source: Source, corruptions: Sequence[str], severities: Sequence[int], seed: int,
              suffixes: Mapping[str, str]) -> list[Job]:
    jobs = []
    for path, label in source.samples:
        relative = source.relative(path)
        output = Path(relative).with_suffix(suffixes[path.suffix.lower()]).as_posix()
        for corruption in corruptions:
            for severity in severities:
                jobs.append(Job(relative, label, corruption, severity,
                                video_seed(seed, corruption, severity, source_name(path)), output))
    return jobs


def plan_tasks(source: Source, jobs: list[Job], entries: dict[str, dict], dst: Path, codec: str,
               options: Mapping[str, dict]) -> tuple[list[tuple], int]:
    """One task per source video with the jobs it still needs, and how many jobs were done."""
    source_sha = {source.relative(path): sha256_file(path) for path, _ in source.samples}
    todo = []
    for job in jobs:
        wanted = {"seed": job.seed, "codec": codec, "options": options[job.corruption],
                  "source_sha256": source_sha[job.source]}
        if not is_done(entries.get(job.path), wanted, dst / job.path):
            todo.append(job)
    return group_tasks(source, todo, str(dst), codec, options, source_sha), len(jobs) - len(todo)


def group_tasks(source: Source, jobs: list[Job], dst: str, codec: str, options: Mapping[str, dict],
                source_sha: Mapping[str, str] | None = None) -> list[tuple]:
    """``jobs`` as tasks: one per source video (decoded once), in the jobs' order."""
    batches: dict[str, list[Job]] = {}
    for job in jobs:
        batches.setdefault(job.source, []).append(job)
    sha = source_sha or {relative: sha256_file(source.root / relative) for relative in batches}
    return [(str(source.root / relative), sha[relative], batch, dst, codec,
             {job.corruption: options[job.corruption] for job in batch})
            for relative, batch in batches.items()]


def is_done(entry: dict | None, wanted: Mapping[str, Any], path: Path) -> bool:
    """Written by an earlier run with the same seed, options, codec and source, and intact."""
    entry = entry or {}
    return (all(entry.get(k, {} if k == "options" else None) == v for k, v in wanted.items())
            and path.is_file() and sha256_file(path) == entry.get("sha256"))


def write_annotations(source: Source, dst: Path, corruptions: Sequence[str],
                      severities: Sequence[int]) -> None:
    """Give each copy the annotation files and class folders of the source's split."""
    for corruption in corruptions:
        for severity in severities:
            root = dst / corruption / str(severity)
            for relative in source.annotations:
                write_atomic(root / relative, (source.root / relative).read_bytes())
            for relative in source.class_dirs:
                (root / relative).mkdir(parents=True, exist_ok=True)


def remove_stale_temporaries(dst: Path, corruptions: Sequence[str], severities: Sequence[int]) -> None:
    """Delete the ``.name.XXXX.ext`` files an interrupted run was writing when it was killed."""
    for tmp in dst.glob(f".{MANIFEST}.*"):
        tmp.unlink()
    for corruption in corruptions:
        for severity in severities:
            for tmp in (dst / corruption / str(severity)).rglob(".*"):
                if tmp.is_file() and TEMPORARY.fullmatch(tmp.name):
                    tmp.unlink()


# --------------------------------------------------------------------------- running

def corrupt_video(task: tuple) -> list[dict]:
    """Decode one source video once and write every job for it. Runs in a worker process.

    A failure (undecodable source, a corruption raising) returns one ``{"error": ...}`` entry
    for the video instead of stopping the whole run.
    """
    from vidsparse.data.decode import read_video

    src_file, src_sha, jobs, dst, codec, options = task
    try:
        frames, fps = read_video(src_file)
        entries = []
        for job in jobs:
            opts = options[job.corruption]
            out = corrupt(frames, job.corruption, job.severity, seed=job.seed, **opts)
            path = write_encoded(Path(dst) / job.path, out, fps, codec)
            entries.append({"path": job.path, "source": job.source, "source_sha256": src_sha,
                            "label": job.label, "corruption": job.corruption,
                            "severity": job.severity, "seed": job.seed, "options": opts,
                            "codec": codec, "frames": int(out.shape[0]),
                            "sha256": sha256_file(path)})
        return entries
    except Exception as exc:  # reported per video; the run goes on with the others
        return [{"source": jobs[0].source, "error": f"{type(exc).__name__}: {exc}"}]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # N workers on N cores, not N x N threads


def run_tasks(tasks: list, workers: int, total: int, progress: bool = True):
    """Yield each task's entries as it finishes, with a progress bar over output files."""
    from tqdm import tqdm

    with tqdm(total=total, unit="file", desc="corrupt", dynamic_ncols=True,
              disable=not progress) as bar:
        if workers <= 1:
            results = map(corrupt_video, tasks)
            pool = None
        else:
            # spawn: a fresh interpreter per worker, safe whatever threads torch has started.
            pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker)
            results = pool.imap_unordered(corrupt_video, tasks)
        try:
            for entries, task in _with_sizes(results, tasks, pool is None):
                bar.update(len(task[2]))
                yield entries
        finally:
            if pool is not None:
                pool.terminate()


def _with_sizes(results, tasks, ordered: bool):
    """Pair each result with its task's job count (imap_unordered loses the order)."""
    if ordered:
        yield from zip(results, tasks)
        return
    by_source = {task[2][0].source: task for task in tasks}
    for entries in results:
        yield entries, by_source[entries[0]["source"]]


# --------------------------------------------------------------------------- estimate

class NotEnoughSpaceError(ValueError):
    """The destination has less free space than the job's estimated size."""


@dataclass(frozen=True)
class Estimate:
    """What the files still to write should take: bytes, wall seconds and their count."""

    bytes: int
    seconds: float
    files: int
    processes: int         # worker processes of all machines, that the seconds assume
    where: Path            # dst, or its nearest existing parent, whose free space was read
    free: int | None       # None where the filesystem does not tell

    def __str__(self) -> str:
        free = "unknown" if self.free is None else _gb(self.free)
        return (f"estimated {_gb(self.bytes)} and ~{_duration(self.seconds)} (at {self.processes} "
                f"workers) for {self.files} files; free space at {self.where}: {free}")


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def free_space(path: Path) -> tuple[Path, int | None]:
    """``(folder, free bytes)`` of ``path`` or, before it exists, its nearest existing parent."""
    where = Path(os.path.abspath(path))
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        return where, shutil.disk_usage(where).free
    except OSError:
        return where, None


def estimate_job(source: Source, tasks: list[tuple], dst: Path, codec: str,
                 options: Mapping[str, dict], processes: int = 1) -> Estimate:
    """Corrupt a sample of the pending videos into a temporary folder and scale it to ``tasks``.

    Sizes and times are measured per pixel-frame of the source (frames x height x width: the
    dataset index's facts, cached, so no video is decoded to count) for each corruption, at
    the lowest and the highest of its pending severities (noise grows files with severity,
    blur shrinks them: the larger of the two is kept, the mean time), on
    :data:`ESTIMATE_VIDEOS` videos cut to :data:`ESTIMATE_FRAMES` frames. Only the jobs in
    ``tasks`` count: a resumed run's finished files are not estimated again.
    """
    from vidsparse.data.decode import read_video
    from vidsparse.data.index import index_videos

    jobs = [job for task in tasks for job in task[2]]
    where, free = free_space(dst)
    if not jobs:
        return Estimate(0, 0.0, 0, processes, where, free)
    paths = {job.source: source.root / job.source for job in jobs}
    infos, _ = index_videos(source.root, list(paths.values()), progress=False)
    pixels = {rel: infos[path].num_frames * infos[path].height * infos[path].width
              for rel, path in paths.items() if path in infos}
    severities: dict[str, set[int]] = {}
    for job in jobs:
        severities.setdefault(job.corruption, set()).add(job.severity)
    candidates = sorted(pixels)
    sample = [candidates[i * len(candidates) // min(ESTIMATE_VIDEOS, len(candidates))]
              for i in range(min(ESTIMATE_VIDEOS, len(candidates)))]
    size: dict[str, list[float]] = {name: [] for name in severities}
    cost: dict[str, list[float]] = {name: [] for name in severities}
    with tempfile.TemporaryDirectory() as tmp:
        for relative in sample:
            try:
                frames, fps = read_video(paths[relative])
            except Exception:  # an undecodable video is reported by the run itself
                continue
            frames = frames[:ESTIMATE_FRAMES]
            measured = frames.shape[0] * frames.shape[1] * frames.shape[2]
            for name, chosen in severities.items():
                for severity in sorted({min(chosen), max(chosen)}):
                    start = time.perf_counter()
                    try:
                        out = corrupt(frames, name, severity, seed=0, **options[name])
                        path = write_encoded(Path(tmp) / f"sample{Path(relative).suffix}", out,
                                             fps, codec)
                    except Exception:  # as above: the run reports it
                        continue
                    cost[name].append((time.perf_counter() - start) / measured)
                    size[name].append(path.stat().st_size / measured)
                    path.unlink()
    total_bytes = total_seconds = 0.0
    for job in jobs:
        px = pixels.get(job.source, 0)
        total_bytes += max(size[job.corruption], default=0.0) * px
        total_seconds += float(np.mean(cost[job.corruption])) * px if cost[job.corruption] else 0.0
    return Estimate(int(total_bytes), total_seconds / max(processes, 1), len(jobs), processes,
                    where, free)


# --------------------------------------------------------------------------- processes

class ProcessGroup:
    """The processes sharing one run: this one alone, or all that ``accelerate launch`` started.

    Only a few small messages pass between them (the plan, barriers), over gloo, so CPU-only
    machines work; the videos go through the shared destination folder.
    """

    def __init__(self, rank: int = 0, world: int = 1) -> None:
        self.rank, self.world = rank, world

    @classmethod
    def current(cls) -> "ProcessGroup":
        """From ``WORLD_SIZE``/``RANK`` (set by ``accelerate launch`` and ``torchrun``)."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        from datetime import timedelta

        import torch.distributed as dist
        from accelerate import PartialState

        # cpu=True: gloo ranks whether or not the machines have GPUs (NCCL needs one each).
        PartialState(cpu=True, timeout=timedelta(seconds=BARRIER_TIMEOUT_S))
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, jobs: list[Job]) -> list[Job]:
        """This process's contiguous slice of ``jobs``: every video's jobs stay on one or two
        processes (each decodes it once) and the slices differ by at most one job."""
        return jobs[self.rank * len(jobs) // self.world:(self.rank + 1) * len(jobs) // self.world]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """The main process's ``obj``, on every process."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


# --------------------------------------------------------------------------- files

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:  # the mode open() gives: a corrupted copy is for sharing
        f.write(data)


def load_manifest(dst: Path) -> dict[str, dict]:
    """Entries of an earlier run, by output path (empty when there is none)."""
    path = Path(dst) / MANIFEST
    if not path.is_file():
        return {}
    try:
        entries = {entry["path"]: entry for entry in json.loads(path.read_text())["files"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a corrupt_dataset manifest ({exc}); move it away or "
                         f"choose another destination") from exc
    for relative in entries:
        if not inside(relative):
            raise ValueError(f"{path}: file {relative!r} leaves {dst}; a manifest lists paths "
                             f"relative to its own folder")
    return entries


def inside(relative: str) -> bool:
    """True for a relative path that stays below its root (no absolute path, no ``..``)."""
    parts = relative.replace("\\", "/").split("/")
    return bool(relative) and not relative.startswith(("/", "\\")) and ".." not in parts \
        and ":" not in parts[0]


def write_manifest(dst: Path, entries: dict[str, dict], settings: dict,
                   failed: Mapping[str, str]) -> None:
    from vidsparse import __version__

    manifest = {
        "tool": "vidsparse.corruptions.corrupt_dataset",
        "vidsparse_version": __version__,
        # Copies made by another generator version differ in their random patterns.
        "corruption_version": CORRUPTION_VERSION,
        "settings": settings,
        "failed": [{"source": s, "reason": r} for s, r in sorted(failed.items())],
        "files": [entries[key] for key in sorted(entries)],
    }
    write_atomic(dst / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())


def write_part(dst: Path, rank: int, entries: Mapping[str, dict], failed: Mapping[str, str]) -> None:
    """Record one process's finished files and failures for the main process to merge."""
    part = {"files": [entries[key] for key in sorted(entries)],
            "failed": [{"source": s, "reason": r} for s, r in sorted(failed.items())]}
    write_atomic(dst / f".manifest.part{rank}.json", (json.dumps(part, indent=1) + "\n").encode())


def parts(dst: Path) -> list[Path]:
    return sorted(p for p in Path(dst).glob(".manifest.part*.json") if PART.fullmatch(p.name))


def merge_parts(dst: Path, entries: dict[str, dict], failed: dict[str, str] | None = None) -> list[dict]:
    """Add every process's recorded files to ``entries`` (and failures to ``failed``);
    returns the merged file entries. Parts are written through a temporary name, so a killed
    process leaves a whole one or none; one that does not read as a record is an error."""
    merged = []
    for path in parts(dst):
        try:
            part = json.loads(path.read_text())
            files, failures = part["files"], part["failed"]
            for entry in files:
                if not inside(entry["path"]):
                    raise ValueError(f"file {entry['path']!r} leaves {dst}")
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a corrupt_dataset process record ({exc}); "
                             f"delete it and run again") from exc
        for entry in files:
            entries[entry["path"]] = entry
            merged.append(entry)
        if failed is not None:
            failed.update({f["source"]: f["reason"] for f in failures})
    return merged


def delete_parts(dst: Path) -> None:
    for path in parts(dst):
        path.unlink()
