"""Cost of dynamic sparsity relative to dense training, measured in one run.

    python benchmarks/bench_engine.py [--models r3d_tiny,r3d_18] [--steps 20]

Prints, per model: DST step time / dense step time (masks re-applied every step), and the
cost of one full prune-and-regrow update (RigL, all layers) relative to one training step,
also amortised over ΔT = 100 steps. Ratios, not seconds: both sides run here, interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from vidsparse import DynamicSparsity, SparsityConfig, create_model

INPUTS = {"r3d_tiny": (8, 8, 56, 56), "r3d_18": (2, 8, 112, 112)}  # batch, T, H, W

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--models", default="r3d_tiny,r3d_18")
parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)


def make(name: str, method: str):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    cfg = SparsityConfig(method=method, density=0.5, distribution="erk", update_interval=10**9)
    return model, optimizer, DynamicSparsity(model, optimizer, cfg, total_steps=10**10)


def one_step(model, optimizer, sparsity, batch):
    clips, labels = batch
    loss = F.cross_entropy(model(clips), labels)
    loss.backward()
    optimizer.step()
    sparsity.step()
    optimizer.zero_grad()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


rows = []
for name in args.models.split(","):
    b, t, h, w = INPUTS[name]
    batch = (torch.randn(b, 3, t, h, w), torch.randint(0, 10, (b,)))
    runs = {m: make(name, m) for m in ("dense", "rigl")}
    for m in runs.values():  # warm up
        one_step(*m, batch)
    times = {m: [] for m in runs}
    for _ in range(args.steps):  # interleave so drift in machine load hits both alike
        for m, parts in runs.items():
            times[m].append(timed(lambda: one_step(*parts, batch)))
    dense, dst = statistics.median(times["dense"]), statistics.median(times["rigl"])
    model, optimizer, sparsity = runs["rigl"]
    clips, labels = batch
    F.cross_entropy(model(clips), labels).backward()
    update = statistics.median(timed(lambda: sparsity.update_masks_(step=1)) for _ in range(5))
    rows.append((name, dst / dense, update / dense, update / dense / 100))

print(f"{'model':10s} {'DST/dense step':>15s} {'update/step':>12s} {'update @ΔT=100':>15s}")
for name, ratio, update, amortised in rows:
    print(f"{name:10s} {ratio:15.3f} {update:12.3f} {amortised:14.2%}")
