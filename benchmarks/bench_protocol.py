"""What the paper's corruption protocol costs per video at UCF101 size, and for whole datasets.

    python benchmarks/bench_protocol.py [--videos 1] [--rounds 1] [--severity 3]
                                        [--bytes gaussian_noise,fog,...] [--full]

On synthetic UCF101-sized videos (``make_synthetic``: 175 frames of 320x240 at 25 fps,
MPEG-4 Part 2 in AVI, UCF101's median length and its size), with torch on one thread,
measures per video:

- **decode**: the whole video (``read_video``) and the frames of one I3D clip (the centred
  clip of 8 frames every 8, ``read_frames``);
- per corruption (all 34 at ``--severity``, each video with the seed ``corrupt_dataset``
  gives it): the **whole-video** corruption (``corrupt`` on the decoded video) and the
  **needed-frames** one, what an evaluation that corrupts on the fly does for the clip:
  a frame-local corruption corrupts the clip's 8 frames (``corrupt(..., frames=)``), a
  temporal one maps the clip back to its source frames and makes the clip from those
  (``temporal.source_map``), and the others (codec corruptions, which re-encode the stream;
  fog, scaled by the video's brightest value) corrupt the whole video. Both paths give the
  same clip (checked on every run);
- the **clip cost**: a clean clip costs its decode; a corrupted one the decode of the frames
  it needs plus the needed-frames corruption. The ratio corrupted / clean is the overhead of
  evaluating under that corruption;
- **bytes** per corrupted copy as ``corrupt_dataset`` stores it, lossless (FFV1) and H.264
  (CRF 18), with the encode time, for the ``--bytes`` corruptions.

Timings are the fastest of ``--rounds`` rounds per video (cheap ones: of at least 3), then
the median over videos. The summary gives geometric means: whole / needed corruption time
over the paper's 15 corruptions (``recipes/sweeps/ucf101_paper.yaml``; issue goal >= 3) and
corrupted / clean clip cost over the 8 corruptions the issue tracks. Then it scales the
per-video figures to the paper sweep (15 corruptions x 5 severities) and to all 34 x 5 on
UCF101 split 1 test and Kinetics-400 validation (:data:`DATASETS` states the sizes
assumed): core-hours on the fly, whole-video against needed-frames, and disk for lossless
and H.264 copies. Whole-video work and bytes scale with pixels x frames, needed-frames work
with pixels per frame (a clip reads a fixed number of frames); every severity is assumed to
cost what ``--severity`` costs. A disk figure needs the bytes of every corruption of its
sweep (``--full`` measures all 34).

The default run (1 video, bytes of 4 corruptions) takes under 2 minutes on one core; ``--full``
(3 videos, bytes of all 34) about 5. Prints markdown (``benchmarks/run_all.py`` collects it).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_info import cpu_model  # noqa: E402  (a module beside this script)
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # vidsparse need not be installed
from vidsparse.corruptions import corrupt, list_corruptions, source_name, video_seed  # noqa: E402
from vidsparse.corruptions.generate import storage_codec, write_encoded  # noqa: E402
from vidsparse.corruptions.registry import is_frame_local  # noqa: E402
from vidsparse.corruptions.temporal import source_map  # noqa: E402
from vidsparse.data import make_synthetic  # noqa: E402
from vidsparse.data.clips import test_clip_indices  # noqa: E402
from vidsparse.data.decode import read_frames, read_video  # noqa: E402

FRAMES, WIDTH, HEIGHT, FPS = 175, 320, 240, 25  # UCF101's median length, its frame size and rate
CLIP = (8, 8)  # I3D: 8 frames, one every 8
# The paper's 15 corruptions (Wu et al., ICLR 2025; recipes/sweeps/ucf101_paper.yaml).
PAPER = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
         "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
         "jpeg_compression")
# The corruptions whose corrupted / clean clip cost issue 17 tracks.
TRACKED = ("gaussian_noise", "fog", "motion_blur", "zoom_blur", "contrast", "defocus_blur", "h264_crf",
           "frame_drop")
DEFAULT_BYTES = ("gaussian_noise", "fog", "h264_crf", "frame_drop")
SEVERITIES = 5
CRF = 18  # corrupt_dataset's default for H.264 copies


@dataclass(frozen=True)
class Dataset:
    """A dataset to scale the per-video figures to: ``videos`` of ``frames`` at ``width x height``."""

    name: str
    videos: int
    frames: int
    width: int
    height: int


MEASURED = Dataset("measured", 1, FRAMES, WIDTH, HEIGHT)
DATASETS = (
    # UCF101 split 1 test list (testlist01.txt): 3,783 videos; 320x240, median ~7 s at 25 fps.
    Dataset("UCF101 split 1 test", 3783, FRAMES, WIDTH, HEIGHT),
    # Kinetics-400 validation: 20,000 clips of 10 s listed (Kay et al. 2017, "The Kinetics Human
    # Action Video Dataset": 50 per class), of which about 19,900 can still be had. Taken as 300
    # frames (30 fps, the common rate; 25 fps clips have 250) of 340x256 (short side 256, the
    # usual resized copy; original downloads are often larger and cost more).
    Dataset("Kinetics-400 validation", 19900, 300, 340, 256),
)


def scale(dataset: Dataset, frames_too: bool, measured: Dataset = MEASURED) -> float:
    """How much more one video of ``dataset`` costs than a measured one: by pixels per frame,
    and by frame count too when ``frames_too`` (whole-video work, bytes)."""
    factor = dataset.width * dataset.height / (measured.width * measured.height)
    return factor * dataset.frames / measured.frames if frames_too else factor


def core_hours(per_video: Sequence[tuple[float, float]], dataset: Dataset, severities: int = SEVERITIES,
               measured: Dataset = MEASURED) -> float:
    """Core-hours for every video of ``dataset`` under each condition of a sweep.

    ``per_video``: one ``(whole-video seconds, fixed-frames seconds)`` pair per corruption,
    measured on one ``measured`` video at one severity; the first part scales with pixels x
    frames, the second with pixels per frame. Each corruption runs at ``severities`` severities.
    """
    seconds = sum(whole * scale(dataset, True, measured) + fixed * scale(dataset, False, measured)
                  for whole, fixed in per_video)
    return seconds * dataset.videos * severities / 3600


def disk_bytes(per_video: Sequence[float], dataset: Dataset, severities: int = SEVERITIES,
               measured: Dataset = MEASURED) -> float:
    """Bytes of the copies of every video of ``dataset``: ``per_video`` holds one measured
    video's bytes per corruption (scaled by pixels x frames), ``severities`` copies each."""
    return sum(per_video) * scale(dataset, True, measured) * dataset.videos * severities


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def best_time(fn: Callable[[], object], rounds: int) -> tuple[float, object]:
    """The fastest of ``rounds`` calls, and the last result."""
    best, out = math.inf, None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


@dataclass
class Cost:
    """One corruption on one video, seconds."""

    path: str  # "frame-local", "temporal map" or "whole video": what the needed-frames path does
    frames_decoded: int  # source frames the needed-frames path decodes
    decode_needed: float
    corrupt_whole: float
    corrupt_needed: float

    @property
    def fixed_frames(self) -> bool:
        """Whether the needed-frames path reads a fixed number of frames (not the whole video)."""
        return self.path != "whole video"


def measure_video(path: Path, names: Sequence[str], severity: int, rounds: int) -> tuple[float, float, dict]:
    """(whole decode s, clip decode s, {name: Cost}) for one video; checks the paths agree."""
    cheap = max(3, rounds)
    decode_whole, (frames, _) = best_time(lambda: read_video(path), rounds)
    video = torch.from_numpy(frames)
    clip = test_clip_indices(len(video), *CLIP)
    decode_clip, _ = best_time(lambda: read_frames(path, clip), cheap)
    costs = {}
    for name in names:
        seed = video_seed(0, name, severity, source_name(path))
        corrupt(video[:2], name, severity, seed=seed)  # warm-up: first calls load code, allocate
        corrupt_whole, whole = best_time(lambda: corrupt(video, name, severity, seed=seed), rounds)
        if is_frame_local(name):
            decoded = torch.from_numpy(read_frames(path, clip))
            corrupt_needed, got = best_time(
                lambda: corrupt(decoded, name, severity, seed=seed, frames=clip), cheap)
            cost = Cost("frame-local", len(clip), decode_clip, corrupt_whole, corrupt_needed)
            wanted = clip
        elif list_corruptions()[name] == "temporal":
            plan = source_map(name, len(video), severity, seed)
            wanted = test_clip_indices(plan.num_frames, *CLIP)  # clips come from the corrupted length
            needed = plan.needed(wanted)
            decode_needed, decoded = best_time(lambda: torch.from_numpy(read_frames(path, needed)), cheap)

            def make_clip():  # the map is drawn per item, as the dataset does
                mapped = source_map(name, len(video), severity, seed)
                return mapped.take(decoded, mapped.needed(wanted), wanted)

            corrupt_needed, got = best_time(make_clip, cheap)
            cost = Cost("temporal map", len(needed), decode_needed, corrupt_whole, corrupt_needed)
        else:
            wanted = test_clip_indices(len(whole), *CLIP)
            got = whole[wanted]
            cost = Cost("whole video", len(video), decode_whole, corrupt_whole, corrupt_whole)
        if not torch.equal(got, whole[wanted]):
            raise SystemExit(f"bench_protocol: {name}: the needed-frames clip differs from the "
                             "whole-video one")
        costs[name] = cost
    return decode_whole, decode_clip, costs


def measure_bytes(path: Path, names: Sequence[str], severity: int, tmp: Path) -> dict[str, dict[str, float]]:
    """``{name: {"lossless": bytes, "h264": bytes, "lossless_s": s, "h264_s": s}}`` ("source" too)."""
    frames, fps = read_video(path)
    out = {"source": {"lossless": path.stat().st_size}}
    for name in ["clean", *names]:
        seed = video_seed(0, name, severity, source_name(path)) if name != "clean" else 0
        video = frames if name == "clean" else corrupt(frames, name, severity, seed=seed)
        sizes = {}
        for storage in ("lossless", "h264"):
            target = tmp / f"{name}-{storage}.avi"  # UCF101 copies keep .avi, as corrupt_dataset writes them
            start = time.perf_counter()
            write_encoded(target, video, fps, storage_codec(storage, CRF))
            sizes[f"{storage}_s"] = time.perf_counter() - start
            sizes[storage] = target.stat().st_size
            target.unlink()
        out[name] = sizes
    return out


def machine() -> str:
    return (f"{cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"torch {torch.__version__}; {platform.system()} {platform.release()}")


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


def fmt_hours(hours: float) -> str:
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:.3g}"


def report(args, names: Sequence[str], decode_whole: float, decode_clip: float, costs: dict[str, Cost],
           sizes: dict[str, dict[str, float]], seconds: float, load: float) -> str:
    lines = ["### Protocol cost per video at UCF101 size", "",
             f"Data: {args.videos} synthetic UCF101-layout video(s), {FRAMES} frames of {WIDTH}x{HEIGHT} at "
             f"{FPS} fps, MPEG-4 Part 2 AVI; severity {args.severity}; torch on 1 thread; fastest of "
             f"{args.rounds} round(s) (cheap steps: of {max(3, args.rounds)}), median over videos; "
             f"{seconds:.0f} s in all; 1-minute load average {load:.1f} before, "
             f"{os.getloadavg()[0]:.1f} after (other jobs on the machine slow every figure).", "",
             f"Machine: {machine()}.", "",
             "| decode | seconds per video |", "|---|---:|",
             f"| whole video ({FRAMES} frames) | {fmt_s(decode_whole)} |",
             f"| I3D centre clip ({CLIP[0]} frames every {CLIP[1]}) = a clean clip | "
             f"{fmt_s(decode_clip)} |", "",
             "| corruption | kind | needed-frames path | frames decoded | whole-video corruption | "
             "needed-frames corruption | whole / needed | corrupted clip / clean clip |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    kinds = list_corruptions()
    for name in names:
        c = costs[name]
        lines.append(f"| {name} | {kinds[name]} | {c.path} | {c.frames_decoded} | {fmt_s(c.corrupt_whole)} | "
                     f"{fmt_s(c.corrupt_needed)} | {c.corrupt_whole / c.corrupt_needed:.1f} | "
                     f"{(c.decode_needed + c.corrupt_needed) / decode_clip:.1f} |")
    total_whole = sum(costs[n].corrupt_whole for n in names)
    lines += ["", f"Whole-video corruption summed over these {len(names)} corruptions: "
                  f"{total_whole:.1f} s per video."]
    paper = [n for n in PAPER if n in costs]
    tracked = [n for n in TRACKED if n in costs]
    if paper:
        speedup = geometric_mean([costs[n].corrupt_whole / costs[n].corrupt_needed for n in paper])
        lines.append(f"Geometric mean over the paper's {len(paper)} corruptions of whole / needed "
                     f"corruption time: **{speedup:.1f}x** (goal >= 3).")
    if tracked:
        needed = geometric_mean([(costs[n].decode_needed + costs[n].corrupt_needed) / decode_clip
                                 for n in tracked])
        whole = geometric_mean([(decode_whole + costs[n].corrupt_whole) / decode_clip for n in tracked])
        lines.append(f"Geometric mean over {', '.join(tracked)} of corrupted / clean clip cost: "
                     f"**{needed:.1f}x** (whole-video path: {whole:.0f}x).")
    if sizes:
        lines += ["", f"Bytes per video stored as corrupt_dataset writes them (severity {args.severity}; "
                  f"encode time in brackets); the source AVI: {fmt_bytes(sizes['source']['lossless'])}.", "",
                  "| corruption | lossless (FFV1) | H.264 (CRF 18) |", "|---|---:|---:|"]
        for name, s in sizes.items():
            if name != "source":
                lines.append(f"| {name} | {fmt_bytes(s['lossless'])} ({fmt_s(s['lossless_s'])}) | "
                             f"{fmt_bytes(s['h264'])} ({fmt_s(s['h264_s'])}) |")
    lines += ["", *scaled_table(names, decode_whole, costs, sizes)]
    return "\n".join(lines)


def scaled_table(names: Sequence[str], decode_whole: float, costs: dict[str, Cost],
                 sizes: dict[str, dict[str, float]]) -> list[str]:
    """The per-video figures scaled to the sweeps and datasets of :data:`DATASETS`."""
    rows = []
    sweeps = [(f"paper ({len(PAPER)} x {SEVERITIES})", PAPER),
              (f"all {len(list_corruptions())} x {SEVERITIES}", tuple(list_corruptions()))]
    for label, sweep in sweeps:
        if not set(sweep) <= set(costs):
            continue
        whole = [(decode_whole + costs[n].corrupt_whole, 0.0) for n in sweep]
        needed = [((0.0, costs[n].decode_needed + costs[n].corrupt_needed) if costs[n].fixed_frames
                   else (costs[n].decode_needed + costs[n].corrupt_needed, 0.0)) for n in sweep]
        for dataset in DATASETS:
            disk = ["needs --full"] * 2
            if set(sweep) <= set(sizes):
                disk = [fmt_bytes(disk_bytes([sizes[n][storage] for n in sweep], dataset))
                        for storage in ("lossless", "h264")]
            rows.append(f"| {label} | {dataset.name} ({dataset.videos:,} x {dataset.frames} frames "
                         f"{dataset.width}x{dataset.height}) | {fmt_hours(core_hours(whole, dataset))} | "
                         f"{fmt_hours(core_hours(needed, dataset))} | "
                         f"{disk[0]} | {disk[1]} |")
    if not rows:
        return ["Scaling to whole datasets needs every corruption of a sweep (run without --corruptions)."]
    return [f"Scaled to whole datasets ({SEVERITIES} severities per corruption, each costing what the "
            "measured one does; one corruption pass per evaluation; centre clip):", "",
            "| sweep | dataset | core-hours, whole video | core-hours, needed frames | "
            "disk, lossless copies | disk, H.264 copies |", "|---|---|---:|---:|---:|---:|", *rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1, help="videos to measure (default 1)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the whole-video steps (default 1)")
    parser.add_argument("--severity", type=int, default=3, choices=range(1, 6))
    parser.add_argument("--corruptions", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--bytes", default=",".join(DEFAULT_BYTES),
                        help="corruptions whose copies are encoded and measured ('all', or '' for none)")
    parser.add_argument("--full", action="store_true", help="3 videos and the bytes of every corruption")
    args = parser.parse_args(argv)
    if args.full:
        args.videos, args.bytes = max(args.videos, 3), "all"
    known = list_corruptions()
    names = args.corruptions.split(",") if args.corruptions else sorted(known)
    byte_names = sorted(known) if args.bytes == "all" else [n for n in args.bytes.split(",") if n]
    unknown = sorted(set(names + byte_names) - set(known))
    if unknown:
        parser.error(f"unknown corruption(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if args.videos < 1 or args.rounds < 1:
        parser.error("--videos and --rounds must be >= 1")
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # make_synthetic's smallest dataset is 1 class x 2 videos; the videos differ in content.
        make_synthetic(Path(tmp) / "data", classes=1, videos_per_class=max(2, args.videos), frames=FRAMES,
                       size=(WIDTH, HEIGHT), fps=FPS)
        paths = sorted((Path(tmp) / "data").rglob("*.avi"))[:args.videos]
        runs = [measure_video(p, names, args.severity, args.rounds) for p in paths]
        sizes = measure_bytes(paths[0], byte_names, args.severity, Path(tmp)) if byte_names else {}
    decode_whole = statistics.median(r[0] for r in runs)
    decode_clip = statistics.median(r[1] for r in runs)
    costs = {n: Cost(runs[0][2][n].path, runs[0][2][n].frames_decoded,
                     *(statistics.median(getattr(r[2][n], f) for r in runs)
                       for f in ("decode_needed", "corrupt_whole", "corrupt_needed")))
             for n in names}
    print(report(args, names, decode_whole, decode_clip, costs, sizes, time.perf_counter() - start, load))


if __name__ == "__main__":
    main()
