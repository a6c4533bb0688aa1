"""The GPU measurements of issues 9 and 17 in one run: DST cost, memory, 2:4 speed, corruptions.

    python benchmarks/bench_gpu.py [--out FILE] [--device cuda] [--quick]
    benchmarks/gpu_check.sh          # the same, with PYTHONPATH and the output file set

On one CUDA GPU, for r3d_18 trained with SGD (momentum) under bf16 autocast:

1. step time of RigL training (density 0.5, ERK; masks re-applied every step) / dense
   training, both timed with CUDA events in the same run, interleaved;
2. the cost of one full prune-and-regrow update (RigL, all layers) relative to one dense
   step, and amortised over ΔT = 100 steps;
3. peak memory of RigL training / dense training (``torch.cuda.max_memory_allocated``,
   ``bench_memory.measure``), with mask updates inside the measured window;
4. ``bench_nm.py``: dense vs 2:4 semi-structured Linear layers of TimeSformer-Base and the
   whole exported model (needs compute capability >= 8.0);
5. the spatial corruptions of issue 17 on the device: clips/s for a batch of I3D clips
   (``--clips``, default 16 clips of 8 x 240 x 320: UCF101 frames) corrupted on the GPU
   against the same batch on 1 CPU thread, per corruption and for all of them in a row
   (goal: >= 20x), with the largest difference between the GPU's bytes and the CPU's (the
   reference) against the README's tolerance, and whether clip i of the GPU batch equals
   clip i corrupted alone on the GPU.

``--sections`` runs some of them (``step,memory,corruptions,nm``). Writes a markdown file
(``--out``; default ``$OUT/gpu_results.md`` when ``$OUT`` is set, else
``benchmarks/results_gpu.md``) after every section, so a run cut short keeps what it
measured; a section that fails is reported in the file and the others still run. Needs only
torch (with torchvision, which vidsparse's video ResNets come from) and einops: no PyAV,
decord or pytorchvideo (Pillow for jpeg_compression only). ``--device cpu --quick`` runs the
same code on a tiny model and tiny clips in seconds, to check the script where there is no GPU.
The whole run is kept under ``--budget`` seconds (``gpu_check.sh``'s 5 minutes): the N:M
subprocess, last, gets what is left.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_memory import measure, measure_in_subprocess, table  # noqa: E402  (a script beside this one)

from vidsparse import DynamicSparsity, SparsityConfig, create_model  # noqa: E402
from vidsparse.files import atomic_write  # noqa: E402


def default_out() -> Path:
    out = os.environ.get("OUT")
    return Path(out) / "gpu_results.md" if out else HERE / "results_gpu.md"


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", type=Path, default=None, help="markdown file to write (see above)")
parser.add_argument("--device", default="cuda")
parser.add_argument("--model", default="r3d_18")
parser.add_argument("--input", default="16,16,112,112", help="batch,T,H,W of the training clips")
parser.add_argument("--steps", type=int, default=30, help="timed steps per configuration")
parser.add_argument("--clips", default="16,8,240,320",
                    help="batch,T,H,W of the clips the corruption section corrupts (uint8, 3 channels)")
parser.add_argument("--cpu-clips", type=int, default=None,
                    help="clips of the batch the 1-thread CPU baseline corrupts (default: all)")
parser.add_argument("--sections", default="step,memory,corruptions,nm", help="which sections to run, in order")
parser.add_argument("--budget", type=float, default=280.0, help="seconds the whole run may take (see above)")
parser.add_argument("--quick", action="store_true",
                    help="smoke run: r3d_tiny on 2x4x32x32 clips, 3 steps, N:M on 256 tokens, "
                         "corruptions on 2 clips of 4x32x48")
args = parser.parse_args()
STARTED = time.perf_counter()
if args.quick:
    args.model, args.input, args.steps, args.clips = "r3d_tiny", "2,4,32,32", 3, "2,4,32,48"
elif args.model != "r3d_tiny" and importlib.util.find_spec("torchvision") is None:
    # r3d_18 is torchvision's; vidsparse's own r3d_tiny needs nothing beyond torch.
    print(f"bench_gpu: torchvision is missing, so {args.model} cannot be built; measuring r3d_tiny")
    args.model = "r3d_tiny"
out_path = args.out or default_out()
device = torch.device(args.device)
if device.type == "cuda":
    if not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device visible to torch (use --device cpu --quick to check the script)")
    torch.backends.cudnn.benchmark = True
B, T, H, W = (int(v) for v in args.input.split(","))
bf16 = device.type == "cuda"  # bf16 autocast on the GPU; float32 on the CPU check
autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else nullcontext


def synchronize() -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn) -> float:
    """Milliseconds of one call of ``fn``: CUDA events on the GPU, perf_counter elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end)
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def make(method: str):
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    sparsity = None
    if method != "dense":
        # No update inside the timed steps: those are timed on their own below.
        cfg = SparsityConfig(method=method, density=0.5, distribution="erk", update_interval=10**9)
        sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=10**10)
    return model, optimizer, sparsity


def train_step(model, optimizer, sparsity, batch) -> None:
    clips, labels = batch
    with autocast():
        loss = F.cross_entropy(model(clips), labels)
    loss.backward()
    optimizer.step()
    if sparsity is not None:
        sparsity.step()
    optimizer.zero_grad(set_to_none=True)


def section_step_time() -> str:
    batch = (torch.randn(B, 3, T, H, W, device=device), torch.randint(0, 10, (B,), device=device))
    runs = {m: make(m) for m in ("dense", "rigl")}
    for parts in runs.values():  # warm-up: cuDNN autotuning, allocator, momentum buffers
        for _ in range(3):
            train_step(*parts, batch)
    synchronize()
    times = {m: [] for m in runs}
    for _ in range(args.steps):  # interleaved, so that clock and load drift hit both alike
        for m, parts in runs.items():
            times[m].append(time_ms(lambda: train_step(*parts, batch)))
    dense, dst = statistics.median(times["dense"]), statistics.median(times["rigl"])
    model, optimizer, sparsity = runs["rigl"]
    with autocast():
        loss = F.cross_entropy(model(batch[0]), batch[1])
    loss.backward()  # RigL regrows by the dense gradient: give it one
    sparsity.update_masks_(step=1)  # warm-up
    update = statistics.median(time_ms(lambda: sparsity.update_masks_(step=1)) for _ in range(5))
    del runs, model, optimizer, sparsity
    return (f"{args.model}, clips {B}×3×{T}×{H}×{W}, SGD momentum, "
            f"{'bf16 autocast' if bf16 else 'float32'}; RigL density 0.5 (ERK); median of "
            f"{args.steps} interleaved steps; update = one full prune-and-regrow over all layers.\n\n"
            "| model | dense step ms | DST step ms | DST/dense step | update ms | update/step "
            "| update amortised at ΔT=100 |\n|---|---:|---:|---:|---:|---:|---:|\n"
            f"| {args.model} | {dense:.2f} | {dst:.2f} | {dst / dense:.3f} | {update:.2f} "
            f"| {update / dense:.3f} | {update / dense / 100:.2%} |")


def section_memory() -> str:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    results = []
    for method in ("dense", "rigl"):
        if device.type == "cuda":
            results.append(measure(args.model, method, args.device, steps=6, interval=2,
                                   inputs=(B, T, H, W), bf16=bf16))
            gc.collect()
            torch.cuda.empty_cache()
        else:
            results.append(measure_in_subprocess(args.model, method, steps=6, interval=2,
                                                 inputs=(B, T, H, W)))
    where = ("torch.cuda.max_memory_allocated (tensors), cuDNN algorithms already chosen by the "
             "step-time section" if device.type == "cuda"
             else "peak RSS of a fresh process per configuration")
    whole = "allocated" if device.type == "cuda" else "process"
    return (f"{where}; 6 SGD steps, RigL density 0.5 (ERK) updating every 2 steps. {whole} = whole "
            "peak; training = peak minus the memory in use after building model, optimizer and batch "
            "(before the DST engine and the first step); engine = memory added by building the DST "
            "engine (masks, per-layer ever-active masks, leftovers).\n\n" + table(results, whole))


def section_nm() -> str:
    cmd = [sys.executable, str(HERE / "bench_nm.py")]
    if args.quick:
        cmd += ["--tokens", "256", "--model", "timesformer_tiny", "--batch", "1", "--repeats", "3"]
    left = args.budget - (time.perf_counter() - STARTED)
    if left < 20:
        raise RuntimeError(f"only {left:.0f} s of the {args.budget:.0f} s budget left: not started")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=min(240.0, left - 10), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return f"Command: `{shlex.join(['python', 'benchmarks/bench_nm.py', *cmd[2:]])}`\n\n{done.stdout.strip()}"


PROBLEMS: list[str] = []  # what a section measured that fails its check (the exit status is then 1)


def moving_texture_clips(batch: int, frames: int, height: int, width: int) -> torch.Tensor:
    """uint8 clips of moving texture: smooth gradients, drifting stripes, some grain (no video files)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    out = np.empty((batch, frames, height, width, 3), np.uint8)
    for b in range(batch):
        phase, tilt = rng.uniform(0, 2 * np.pi, 3), rng.uniform(2, 8, 2)
        for t in range(frames):
            drift = 0.3 * t
            frame = np.stack([0.5 + 0.25 * np.sin(2 * np.pi * (tilt[0] * x + tilt[1] * y) + phase[c] + drift)
                              + 0.2 * (x - 0.5) * (c - 1) for c in range(3)], axis=-1)
            frame += rng.normal(0, 0.03, frame.shape)
            out[b, t] = np.clip(frame * 255, 0, 255).round()
    return torch.from_numpy(out)


def timed(fn, on_device: bool) -> tuple[float, object]:
    """Seconds of one call of ``fn`` and its result, waiting for the device at both ends."""
    if on_device:
        synchronize()
    start = time.perf_counter()
    result = fn()
    if on_device:
        synchronize()
    return time.perf_counter() - start, result


def section_corruptions() -> str:
    from vidsparse.corruptions import CORRUPTIONS, _ops, corrupt, list_corruptions
    from vidsparse.corruptions.registry import DEVICE_TOLERANCE_FRACTION, DEVICE_TOLERANCE_LEVELS

    nb, nt, nh, nw = (int(v) for v in args.clips.split(","))
    cpu_clips = moving_texture_clips(nb, nt, nh, nw)
    on_cpu = cpu_clips[:args.cpu_clips or nb]  # the CPU baseline's clips: the batch's first ones
    clips = cpu_clips.to(device)
    severity, seed, repeats = 3, 0, 1 if args.quick else 3
    threads = torch.get_num_threads()
    rows, cpu_total, dev_total, ratios, failures = [], 0.0, 0.0, [], []
    for name in sorted(list_corruptions("spatial")):
        if name == "jpeg_compression" and importlib.util.find_spec("PIL") is None:
            rows.append(f"| {name} | Pillow missing |" + " |" * 8)
            continue
        torch.set_num_threads(1)
        try:
            corrupt(on_cpu[:1, :2], name, severity, seed=seed)  # first-call costs (tables, imports)
            cpu_s, reference = timed(lambda: corrupt(on_cpu, name, severity, seed=seed), False)
        finally:
            torch.set_num_threads(threads)
        corrupt(clips, name, severity, seed=seed)  # warm-up: kernels, FFT plans, pinned memory
        times = []
        for _ in range(repeats):
            seconds, out = timed(lambda: corrupt(clips, name, severity, seed=seed), device.type == "cuda")
            times.append(seconds)
        dev_s = statistics.median(times)
        # The reference's streams are the batch's first clips' ((seed, i) for clip i).
        diff = (out[:len(on_cpu)].cpu().to(torch.int16) - reference.to(torch.int16)).abs()
        beyond = (diff > DEVICE_TOLERANCE_LEVELS).double().mean().item()
        alone = max(int((out[i].to(torch.int16) - corrupt(clips[i], name, severity, seed=[seed, i])).abs().max())
                    for i in (0, nb - 1))  # 0: clip i of the batch is exactly clip i alone
        cpu_rate, dev_rate = len(on_cpu) / cpu_s, nb / dev_s
        cpu_total += cpu_s * nb / len(on_cpu)
        dev_total += dev_s
        ratios.append(dev_rate / cpu_rate)
        ok = beyond <= DEVICE_TOLERANCE_FRACTION
        if not ok or alone:
            failures.append(name)
        where = "CPU (Pillow)" if CORRUPTIONS.meta(name)["cpu_only"] else device.type
        rows.append(f"| {name} | {where} | {cpu_rate:.1f} | {dev_rate:.1f} | {dev_rate / cpu_rate:.1f}× "
                    f"| {(diff > 0).double().mean().item():.1e} | {beyond:.1e} | {int(diff.max())} "
                    f"| {'yes' if ok else '**no**'} | {'yes' if not alone else f'**no** (max diff {alone})'} |")
        print(rows[-1], flush=True)
    mean_ratio = statistics.geometric_mean(ratios) if ratios else float("nan")
    rows.append(f"| **all, one after the other** | | {nb / cpu_total:.2f} | {nb / dev_total:.2f} "
                f"| **{cpu_total / dev_total:.1f}×** | | | | | |")
    text = (f"{nb} clips of {nt}×{nh}×{nw}×3 (uint8, already on the device), severity {severity}, default "
            f"options (static patterns, drawn on the host with numpy and copied once per batch). CPU: the "
            f"same corruption on 1 thread (`torch.set_num_threads(1)`) of {len(on_cpu)} of the clips, the "
            f"reference; device: median of {repeats} calls on the whole batch, host drawing included "
            f"(on up to {min(threads, _ops.DRAW_THREADS)} of the host's {os.cpu_count()} cores). "
            f"Goal: the device ≥ 20× the CPU for the batch. Tolerance (README): values more than "
            f"{DEVICE_TOLERANCE_LEVELS} level from the CPU's ≤ {DEVICE_TOLERANCE_FRACTION:.0e} of the "
            f"values. 'alone': clips 0 and {nb - 1} of the device batch equal each corrupted alone on the "
            f"device.\n\n"
            "| corruption | runs on | CPU 1 thread clips/s | device clips/s | device / CPU | values ≠ CPU "
            f"| values > {DEVICE_TOLERANCE_LEVELS} level off | max diff (levels) | within tolerance | batch = alone |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---|---|\n" + "\n".join(rows) +
            f"\n\nGeometric mean of the per-corruption ratios: {mean_ratio:.1f}×.")
    if failures:  # the table stays whole in the file; the run's exit status says it
        PROBLEMS.append(f"corruptions: {', '.join(failures)}")
        text += f"\n\n**Outside the tolerance or not equal alone: {', '.join(failures)}.**"
    return text


SECTIONS = {"step": ("Step time: DST / dense, and the cost of a mask update", section_step_time),
            "memory": ("Peak memory: DST / dense", section_memory),
            "corruptions": ("Spatial corruptions on the device: clips/s against 1 CPU thread, "
                            "difference from the CPU", section_corruptions),
            "nm": ("N:M 2:4 semi-structured sparsity (bench_nm.py)", section_nm)}
chosen = [part.strip() for part in args.sections.split(",") if part.strip()]
unknown = sorted(set(chosen) - set(SECTIONS))
if unknown:
    sys.exit(f"bench_gpu: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")


def header() -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        where = (f"{torch.cuda.get_device_name(device)} ({props.total_memory / 2**30:.0f} GiB, "
                 f"compute capability {props.major}.{props.minor}), CUDA {torch.version.cuda}")
    else:
        where = (f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores): "
                 "a check of the script, not GPU figures")
    return ("# GPU benchmark results\n\n"
            f"Written by `benchmarks/gpu_check.sh` (`python benchmarks/bench_gpu.py"
            f"{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`) on "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.\n\n"
            f"Device: {where}; torch {torch.__version__}, Python {platform.python_version()}.\n")


def write(parts: list[str]) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_path, "w") as f:  # a kill mid-write leaves the previous results
        f.write("\n".join(parts) + "\n")


parts = [header()]
failed = 0
for title, fn in (SECTIONS[key] for key in chosen):
    print(f"{title} ...", flush=True)
    start = time.perf_counter()
    try:
        body = fn()
    except Exception:  # report it in the file and go on with the other sections
        failed += 1
        body = f"**Failed:**\n\n```\n{traceback.format_exc()[-3000:]}```"
    seconds = time.perf_counter() - start
    parts.append(f"## {title}\n\n{body}\n\n_{seconds:.0f} s._\n")
    print(f"{body}\n({seconds:.0f} s)\n", flush=True)
    write(parts)
print(f"wrote {out_path}" + (f"; checks failed: {'; '.join(PROBLEMS)}" if PROBLEMS else ""))
sys.exit(1 if failed or PROBLEMS else 0)
