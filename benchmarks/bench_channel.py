"""Inference speed of channel-sparse models after export, against the dense model, in one run.

    python benchmarks/bench_channel.py [--models r3d_18,x3d_s] [--sparsities 0.3,0.5,0.7]

For each model, channel sparsity s and grouping (the inner channels of blocks only, as
``SparsityConfig.channel_residual=False`` by default, and with the residual streams), every
channel group (see vidsparse.sparse.channels) loses the share s of its channels with the
lowest mean weight magnitude (keeping a multiple of 8, as channel-mode training does by
default), and :func:`vidsparse.sparse.shrink` builds the narrower dense model. Speed depends
on the shapes only, so no training is needed here. Prints a markdown table: clips per second
of each exported model over the dense one (median of interleaved forward passes, batch of one
clip at the model's input size, torch.no_grad, eval mode).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vidsparse import create_model
from vidsparse.models.registry import MODELS
from vidsparse.sparse.channels import channel_scores, channels_to_remove, find_channel_groups, shrink

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--models", default="r3d_18,x3d_s")
parser.add_argument("--sparsities", default="0.3,0.5,0.7")
parser.add_argument("--repeats", type=int, default=10, help="timed forward passes per model")
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--multiple", type=int, default=8, help="SparsityConfig.channel_multiple")
parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)


def narrowed(model, share: float, residual: bool):
    groups = find_channel_groups(model, residual=residual)
    alive = {}
    for group in groups:
        scores = channel_scores(model, group)
        alive[group.producer] = torch.ones(group.channels, dtype=torch.bool)
        n = channels_to_remove(group.channels, share, args.multiple)
        alive[group.producer][torch.sort(scores, stable=True).indices[:n]] = False
    return shrink(model, groups, alive).eval(), groups


print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
print("| model | input (T×H×W) | residual streams | channel groups | channel sparsity | parameters "
      "| speedup (clips/s over dense) |")
print("|---|---|---|---|---|---|---|")
for name in args.models.split(","):
    torch.manual_seed(0)
    dense = create_model(name, num_classes=400).eval()
    t, h, w = MODELS.meta(name)["input_size"]
    clip = torch.randn(args.batch, 3, t, h, w)
    variants = {("dense", 0.0): (dense, [])}
    for residual in (False, True):
        for share in (float(s) for s in args.sparsities.split(",")):
            variants[("kept" if not residual else "narrowed", share)] = narrowed(dense, share, residual)
    times = {key: [] for key in variants}
    with torch.no_grad():
        for model, _ in variants.values():  # warm up
            model(clip)
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits all alike
            for key, (model, _) in variants.items():
                start = time.perf_counter()
                model(clip)
                times[key].append(time.perf_counter() - start)
    base = statistics.median(times[("dense", 0.0)])
    for (streams, share), (model, groups) in variants.items():
        params = sum(p.numel() for p in model.parameters())
        print(f"| {name} | {t}×{h}×{w} | {streams} | {len(groups)} | {share:.0%} | {params / 1e6:.2f} M | "
              f"{base / statistics.median(times[(streams, share)]):.2f}× |")
