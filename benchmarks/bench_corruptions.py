"""Frames per second of each spatial corruption: vidsparse on whole clips vs per-frame ImageNet-C.

    python benchmarks/bench_corruptions.py [--sizes 112,224] [--frames 16] [--severities 3]
                                           [--device cpu|cuda] [--threads 1] [--rounds 5] [--quick]

For every corruption of ``list_corruptions("spatial")`` and every frame size, times
``vidsparse.corrupt`` on a ``T x H x W x 3`` uint8 clip (a torch tensor on ``--device``) and
a Python loop calling the per-frame numpy reference (``imagenet_c_reference.py``) on the same
frames, on the CPU. Both are timed in the same run, interleaved round by round so that drift
in machine load hits both alike; the fastest round gives frames per second (best of N, as
``timeit``: on a shared machine the slower rounds measure the other jobs), and the ratio is
ours / reference (above 1: we are faster). The load average before and after is recorded.
The reference glass blur walks every pixel in Python (seconds per frame), so it is timed on
``--glass-frames`` frames only. Rain has no ImageNet-C counterpart (n/a). With several
severities, frames per second is the inverse of the mean time per frame over them. On a
shared machine use ``--threads 1``: with more threads each torch op waits for its slowest
thread, so other jobs slow it far more than the single-threaded reference.

Prints a markdown table and writes it to ``--out`` (one section per device and thread count;
the other sections are kept). ``--quick`` is a smoke run (112 x 112, 4 frames, one round) that
writes nothing unless ``--out`` is given. Needs the ``bench`` extra (scipy, scikit-image,
opencv-python-headless).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import re
import shlex
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from vidsparse.corruptions import corrupt, list_corruptions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imagenet_c_reference import REFERENCE  # noqa: E402  (a script beside this one)
from machine_info import cpu_model  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results_corruptions.md"

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--sizes", default="112,224", help="square frame sides, comma-separated")
parser.add_argument("--frames", type=int, default=16, help="frames per clip")
parser.add_argument("--severities", default="3", help="e.g. 1,3,5 (fps averaged over them)")
parser.add_argument("--glass-frames", type=int, default=2, help="frames the reference glass blur is timed on")
parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (fastest taken)")
parser.add_argument("--device", default="cpu", help="where our clips live: cpu or cuda")
parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
parser.add_argument("--corruptions", default="", help="comma-separated subset (default: all spatial)")
parser.add_argument("--quick", action="store_true", help="smoke run: 112 only, 4 frames, 1 round, no file")
parser.add_argument("--out", default=None, help=f"markdown file to write (default {DEFAULT_OUT.name}; '' for none)")
args = parser.parse_args()
if args.quick:
    args.sizes, args.frames, args.rounds, args.glass_frames = "112", 4, 1, 1
# --out "" prints the table and writes no file (benchmarks/run_all.py collects it from stdout).
out_path = Path(args.out) if args.out else (None if args.quick or args.out == "" else DEFAULT_OUT)
if args.threads:
    torch.set_num_threads(args.threads)
device = torch.device(args.device)
if device.type == "cuda" and not torch.cuda.is_available():
    sys.exit("--device cuda: no CUDA device visible to torch")

sizes = [int(s) for s in args.sizes.split(",")]
severities = [int(s) for s in args.severities.split(",")]
names = args.corruptions.split(",") if args.corruptions else sorted(list_corruptions("spatial"))


def make_clip(side: int, frames: int) -> np.ndarray:
    """A smooth colour texture panning 2 px per frame, plus mild noise: natural-ish content."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
    texture = cv2.resize(coarse, (2 * side, 2 * side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    clip = np.stack([texture[2 * t:2 * t + side, t:t + side] for t in range(frames)])
    return np.uint8(np.clip(clip + rng.normal(0, 4, clip.shape), 0, 255))


def synchronize():
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(fn) -> float:
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - start


def ours_fn(video: torch.Tensor, name: str, severity: int):
    return lambda: corrupt(video, name, severity, seed=0)


def reference_fn(frames: np.ndarray, name: str, severity: int):
    fn = REFERENCE[name]
    return lambda: [fn(frame, severity, np.random.default_rng(i)) for i, frame in enumerate(frames)]


def measure(name: str, clip: np.ndarray, video: torch.Tensor) -> tuple[float, float | None]:
    """Seconds per frame, ours and reference (None: no reference), averaged over severities."""
    ours, ref = [], []
    ref_frames = clip[:args.glass_frames] if name == "glass_blur" else clip
    for severity in severities:
        run_ours = ours_fn(video, name, severity)
        run_ref = reference_fn(ref_frames, name, severity) if name in REFERENCE else None
        run_ours()  # warm-up: first calls build kernels, allocate, load CUDA code
        if run_ref and name != "glass_blur":
            reference_fn(clip[:1], name, severity)()
        t_ours, t_ref = [], []
        for _ in range(args.rounds):
            t_ours.append(seconds(run_ours))
            if run_ref:
                t_ref.append(seconds(run_ref))
        ours.append(min(t_ours) / len(clip))
        if run_ref:
            ref.append(min(t_ref) / len(ref_frames))
    return statistics.fmean(ours), statistics.fmean(ref) if ref else None


def fmt(fps: float | None) -> str:
    if fps is None:
        return "n/a"
    return f"{fps:,.0f}" if fps >= 100 else f"{fps:.3g}"


load_before = os.getloadavg()[0]
results = {}  # (name, side) -> (ours s/frame, reference s/frame or None)
jobs = [(side, name) for side in sizes for name in names]
clips = {side: make_clip(side, args.frames) for side in sizes}
videos = {side: torch.from_numpy(clips[side]).to(device) for side in sizes}
for side, name in (bar := tqdm(jobs, desc="corruptions", unit="corruption")):
    bar.set_postfix_str(f"{name} @ {side}")
    results[name, side] = measure(name, clips[side], videos[side])

header = "| corruption | " + " | ".join(f"ours fps {s} | reference fps {s} | ratio {s}" for s in sizes) + " |"
lines = [header, "|---|" + "---:|---:|---:|" * len(sizes)]
for name in names:
    cells = []
    for side in sizes:
        ours, ref = results[name, side]
        cells += [fmt(1 / ours), fmt(None if ref is None else 1 / ref),
                  "n/a" if ref is None else f"{ref / ours:.2f}"]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
# One summary: the geometric mean of the ratios (each corruption counts once, whatever its speed).
summary = []
for side in sizes:
    ratios = [ref / ours for (n, s), (ours, ref) in results.items() if s == side and ref is not None]
    summary += ["", "", f"**{math.exp(statistics.fmean(map(math.log, ratios))):.2f}**" if ratios else "n/a"]
lines.append("| geometric mean of ratios | " + " | ".join(summary) + " |")
table = "\n".join(lines)

where = (torch.cuda.get_device_name(device) if device.type == "cuda"
         else f"{cpu_model()}, torch threads: {torch.get_num_threads()}")
machine = (f"Machine: {where}; reference on CPU ({cpu_model()}, OpenCV {cv2.getNumThreads()} threads); "
           f"torch {torch.__version__}, Python {platform.python_version()}; "
           f"{args.frames} frames per clip, severities {args.severities}, reference glass blur on "
           f"{args.glass_frames} frame(s), best of {args.rounds} interleaved round(s); "
           f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
           f"{datetime.date.today().isoformat()}.")
command = shlex.join(["python", "benchmarks/bench_corruptions.py", *sys.argv[1:]])  # quotes an empty --out
if load_before > 0.5 * (os.cpu_count() or 1) and device.type == "cpu":
    # Each torch op waits for all its threads; a thread descheduled by another job stalls it.
    machine += (f"\n\n**Busy machine**: other jobs kept over half of its {os.cpu_count()} cores busy "
                "before the run; they slow both sides, multi-threaded torch most. Compare with `--threads 1`.")
key = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, torch threads: {torch.get_num_threads()}"
section = f"## {key}\n\n{machine}\n\nCommand: `{command}`\n\n{table}\n"
print()
print(section)

if out_path is not None:
    title = ("# Spatial corruption throughput: vidsparse (whole clip, torch) vs per-frame ImageNet-C\n\n"
             "Written by `benchmarks/bench_corruptions.py` (see its docstring). Frames per second; "
             "ratio = ours / reference, above 1 means vidsparse is faster. The reference is "
             "`benchmarks/imagenet_c_reference.py`, one frame at a time on the CPU.\n")
    old = out_path.read_text() if out_path.exists() else ""
    # Keep the sections of other devices and thread counts: each starts at a "## <key>" line.
    sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", old, flags=re.S | re.M))
    sections[key] = section.split("\n", 1)[1]
    body = "\n".join(f"## {k}\n{text.rstrip()}\n" for k, text in sorted(sections.items()))
    out_path.write_text(f"{title}\n{body}")
    print(f"wrote {out_path}")
