"""Peak memory of dynamic sparse training relative to dense training, measured in one run.

    python benchmarks/bench_memory.py [--models r3d_tiny,r3d_18] [--steps 6] [--interval 2]
                                      [--device cpu|cuda] [--bf16]

For each model, trains the same model on the same batch for ``--steps`` SGD steps (momentum,
weight decay) twice: dense, and RigL at density 0.5 (ERK) with a full prune-and-regrow
update every ``--interval`` steps, so that the measured window holds at least one update
(the script checks that it does). Prints a markdown table with two ratios, DST / dense:

- *process* (CPU) or *allocated* (CUDA): the whole peak, weights and data included;
- *training*: the peak minus the memory in use right after building the model, the
  optimizer and the batch, before the DST engine is built and before the first step. It
  is what training adds (gradients, optimizer state, activations, and for DST the masks,
  the engine's bookkeeping and the temporaries of a mask update), the part that sparsity
  could make larger.

On the CPU each configuration runs in a fresh Python process and its peak is the resident
set size high-water mark (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), so the peaks of
two configurations never mix; "in use" before the first step is the current resident set
size (``VmRSS``). On CUDA (``--device cuda``) the peaks are
``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats`` (tensors
only: not the CUDA context or the caching allocator's reserve), one configuration after
the other in this process. The goal of the issue is a ratio of at most 1.10. The table also
gives the bool masks' size and what building the engine added (masks, its per-layer
ever-active masks, and on the CPU freed memory the allocator kept).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

# batch, T, H, W per device: the CPU sizes are bench_engine.py's.
INPUTS = {"cpu": {"r3d_tiny": (8, 8, 56, 56), "r3d_18": (2, 8, 112, 112)},
          "cuda": {"r3d_tiny": (32, 8, 56, 56), "r3d_18": (16, 16, 112, 112)}}
METHODS = ("dense", "rigl")
MIB = 2**20


def _rss_now() -> int:
    """Current resident set size in bytes (the peak so far where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _rss_peak()


def _rss_peak() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def measure(name: str, method: str, device: str = "cpu", steps: int = 6, interval: int = 2,
            inputs: tuple[int, int, int, int] | None = None, bf16: bool = False) -> dict:
    """Train ``name`` for ``steps`` steps with ``method`` and return its memory figures (bytes).

    On the CPU, call it in a fresh process (``--worker``): the peak is the process's.
    """
    from vidsparse import DynamicSparsity, SparsityConfig, create_model

    dev = torch.device(device)
    b, t, h, w = inputs or INPUTS[dev.type][name]
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).to(dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    clips, labels = torch.randn(b, 3, t, h, w, device=dev), torch.randint(0, 10, (b,), device=dev)
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
    else:
        before = _rss_now()
    sparsity = None
    if method != "dense":
        cfg = SparsityConfig(method=method, density=0.5, distribution="erk", update_interval=interval)
        sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=10**9)
    engine = (torch.cuda.memory_allocated(dev) if dev.type == "cuda" else _rss_now()) - before
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    updates = 0
    for _ in range(steps):
        with autocast:
            loss = F.cross_entropy(model(clips), labels)
        loss.backward()
        optimizer.step()
        if sparsity is not None:
            updates += bool(sparsity.step())
        optimizer.zero_grad()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev)
    else:
        peak = _rss_peak()
    if sparsity is not None and updates == 0:
        raise RuntimeError(f"{name}/{method}: no mask update in {steps} steps (interval {interval})")
    masks = 0 if sparsity is None else sum(m.numel() * m.element_size() for m in sparsity.masks.values())
    return {"model": name, "method": method, "device": device, "input": [b, 3, t, h, w],
            "steps": steps, "updates": updates, "before": before, "peak": peak, "engine": engine,
            "masks": masks, "weights": sum(p.numel() * p.element_size() for p in model.parameters())}


def measure_in_subprocess(name: str, method: str, steps: int, interval: int,
                          inputs: tuple[int, int, int, int] | None = None) -> dict:
    """``measure`` on the CPU in a fresh interpreter, so that peaks of configurations don't mix."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, method,
           "--steps", str(steps), "--interval", str(interval)]
    if inputs:
        cmd += ["--input", ",".join(map(str, inputs))]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name}/{method} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict], whole: str = "process") -> str:
    """Markdown: one row per model, DST / dense for the whole peak and for the training increment.

    ``whole`` names the whole peak's column: the process's on the CPU, allocated tensors on CUDA.
    """
    lines = [f"| model | input (B×C×T×H×W) | dense peak MiB | DST peak MiB | {whole} DST/dense "
             "| dense training MiB | DST training MiB | training DST/dense | masks MiB | engine MiB "
             "| mask updates |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    by_model: dict[str, dict[str, dict]] = {}
    for r in results:
        by_model.setdefault(r["model"], {})[r["method"]] = r
    for name, runs in by_model.items():
        dense, dst = runs["dense"], runs["rigl"]
        inc_dense, inc_dst = dense["peak"] - dense["before"], dst["peak"] - dst["before"]
        lines.append(f"| {name} | {'×'.join(map(str, dense['input']))} | {dense['peak'] / MIB:,.0f} "
                     f"| {dst['peak'] / MIB:,.0f} | {dst['peak'] / dense['peak']:.3f} "
                     f"| {inc_dense / MIB:,.0f} | {inc_dst / MIB:,.0f} | {inc_dst / max(inc_dense, 1):.3f} "
                     f"| {dst['masks'] / MIB:,.1f} | {dst['engine'] / MIB:,.0f} | {dst['updates']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="r3d_tiny,r3d_18")
    parser.add_argument("--steps", type=int, default=6, help="training steps per configuration")
    parser.add_argument("--interval", type=int, default=2, help="steps between mask updates (ΔT)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--input", default="", help="batch,T,H,W of the clips (default: per model)")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    inputs = tuple(int(v) for v in args.input.split(",")) if args.input else None
    if args.worker:
        print(json.dumps(measure(*args.worker, steps=args.steps, interval=args.interval, inputs=inputs)))
        return
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible to torch")
    results = []
    for name in args.models.split(","):
        for method in METHODS:
            if args.device == "cpu":
                results.append(measure_in_subprocess(name, method, args.steps, args.interval, inputs))
            else:
                results.append(measure(name, method, args.device, args.steps, args.interval, inputs,
                                       bf16=args.bf16))
                gc.collect()
                torch.cuda.empty_cache()
    where = (f"CPU, peak RSS of a fresh process per configuration" if args.device == "cpu"
             else f"{torch.cuda.get_device_name(args.device)}, torch.cuda.max_memory_allocated"
                  f"{', bf16 autocast' if args.bf16 else ''}")
    whole = "process" if args.device == "cpu" else "allocated"
    print(f"{where}; {args.steps} SGD steps, RigL density 0.5 (ERK) updating every {args.interval} steps. "
          f"{whole} = whole peak; training = peak minus the memory in use after building model, "
          "optimizer and batch (before the DST engine and the first step); masks = the bool mask "
          "buffers; engine = memory in use after building the DST engine minus before it (masks, "
          "the engine's per-layer ever-active masks, what its construction left allocated).\n")
    print(table(results, whole))


if __name__ == "__main__":
    main()
