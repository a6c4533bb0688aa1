"""The GPU measurements of issue 9 in one run: DST cost, update cost, peak memory, 2:4 speed.

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
   whole exported model (needs compute capability >= 8.0).

Writes a markdown file (``--out``; default ``$OUT/gpu_results.md`` when ``$OUT`` is set, else
``benchmarks/results_gpu.md``) after every section, so a run cut short keeps what it
measured; a section that fails is reported in the file and the others still run. Needs only
torch (with torchvision, which vidsparse's video ResNets come from) and einops: no PyAV,
decord or pytorchvideo. ``--device cpu --quick`` runs the same code on a tiny model in
seconds, to check the script where there is no GPU.
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
parser.add_argument("--quick", action="store_true",
                    help="smoke run: r3d_tiny on 2x4x32x32 clips, 3 steps, N:M on 256 tokens")
args = parser.parse_args()
if args.quick:
    args.model, args.input, args.steps = "r3d_tiny", "2,4,32,32", 3
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
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return f"Command: `{shlex.join(['python', 'benchmarks/bench_nm.py', *cmd[2:]])}`\n\n{done.stdout.strip()}"


SECTIONS = [("Step time: DST / dense, and the cost of a mask update", section_step_time),
            ("Peak memory: DST / dense", section_memory),
            ("N:M 2:4 semi-structured sparsity (bench_nm.py)", section_nm)]


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
for title, fn in SECTIONS:
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
print(f"wrote {out_path}")
sys.exit(1 if failed else 0)
