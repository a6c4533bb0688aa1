"""Speed of 2:4 semi-structured Linear layers against dense ones, measured in one run.

    python benchmarks/bench_nm.py [--tokens 12552] [--dtype float16] [--model timesformer]

Needs a CUDA GPU of compute capability >= 8.0 (Ampere or newer); elsewhere it says so and
exits 0. Prints, for the Linear shapes of TimeSformer-Base (ViT-B: 768 -> 3072 -> 768, and the
768 x 768 temporal projection), the forward time of a dense ``nn.Linear`` and of the same layer
with a 2:4 weight from ``torch.sparse.to_sparse_semi_structured``, and their ratio; then the
same for a whole model trained with ``SparsityConfig(nm=[2, 4])`` and exported with
``export_semi_structured``, with the largest output difference, as a markdown table. Ratios
matter, not seconds: both sides run here, interleaved. The default 12552 tokens = 8 clips x
(1 + 8 frames x 196).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
import torch.nn as nn

from vidsparse import DynamicSparsity, SparsityConfig, create_model
from vidsparse.sparse.export import export_semi_structured, semi_structured_available

SHAPES = [(768, 3072), (3072, 768), (768, 768)]  # (in_features, out_features)

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--tokens", type=int, default=12552, help="rows of the Linear input")
parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
parser.add_argument("--model", default="timesformer", help="model for the end-to-end row ('' to skip)")
parser.add_argument("--batch", type=int, default=4, help="clips per forward in the model row")
parser.add_argument("--repeats", type=int, default=20, help="timed forwards per configuration")
args = parser.parse_args()

if not semi_structured_available():
    found = (f"{torch.cuda.get_device_name()} (compute capability "
             f"{'.'.join(map(str, torch.cuda.get_device_capability()))})"
             if torch.cuda.is_available() else "no CUDA GPU")
    print(f"bench_nm needs a CUDA GPU of compute capability >= 8.0 for 2:4 kernels; found {found}. "
          "Nothing measured.")
    sys.exit(0)

dtype = getattr(torch, args.dtype)
device = torch.device("cuda")


@torch.no_grad()
def time_ms(fn, x) -> float:
    """Median milliseconds of ``fn(x)`` over ``args.repeats`` runs, after warm-up."""
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(args.repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(x)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def two_four(weight: torch.Tensor) -> torch.Tensor:
    """Keep the 2 largest of every 4 consecutive weights along the input dimension."""
    groups = weight.reshape(-1, 4)
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, groups.abs().topk(2, dim=1).indices, True)
    return (groups * mask).view_as(weight)


print(f"{torch.cuda.get_device_name()}, {args.dtype}, backend "
      f"{'CUTLASS' if torch.sparse.SparseSemiStructuredTensor._FORCE_CUTLASS else 'cuSPARSELt'}")
print("\n| layer | dense ms | 2:4 ms | 2:4/dense | max abs diff |\n|---|---:|---:|---:|---:|")
for in_features, out_features in SHAPES:
    torch.manual_seed(0)
    dense = nn.Linear(in_features, out_features).to(device, dtype)
    with torch.no_grad():
        dense.weight.copy_(two_four(dense.weight))
    sparse = nn.Linear(in_features, out_features).to(device, dtype)
    sparse.load_state_dict(dense.state_dict())
    sparse.weight = nn.Parameter(torch.sparse.to_sparse_semi_structured(sparse.weight.detach()),
                                 requires_grad=False)
    x = torch.randn(args.tokens, in_features, device=device, dtype=dtype)
    t_dense, t_sparse = time_ms(dense, x), time_ms(sparse, x)
    with torch.no_grad():
        diff = (dense(x) - sparse(x)).abs().max().item()
    print(f"| Linear({in_features}, {out_features}) | {t_dense:.3f} | {t_sparse:.3f} "
          f"| {t_sparse / t_dense:.3f} | {diff:.3g} |")

if args.model:
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=400)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    DynamicSparsity(model, optimizer, SparsityConfig(method="static", nm=[2, 4]), total_steps=1)
    model = model.to(device, dtype).eval()
    fast, converted = export_semi_structured(model)
    frames, size = 8, 224
    x = torch.randn(args.batch, 3, frames, size, size, device=device, dtype=dtype)
    t_dense, t_sparse = time_ms(model, x), time_ms(fast, x)
    with torch.no_grad():
        diff = (model(x) - fast(x)).abs().max().item()
    print(f"| {args.model} ({len(converted)} Linear 2:4, {args.batch}×3×{frames}×{size}×{size}) "
          f"| {t_dense:.3f} | {t_sparse:.3f} | {t_sparse / t_dense:.3f} | {diff:.3g} |")
