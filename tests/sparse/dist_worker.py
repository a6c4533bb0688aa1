"""Two gloo ranks train every sparse method on different data; each rank writes what it saw.

Launched by ``tests/sparse/test_distributed.py`` (one launch for all methods)::

    accelerate launch --multi_gpu --num_processes 2 tests/sparse/dist_worker.py OUT

and writes ``OUT/rank{r}.json``. ``sync="none"``: the masks must agree by construction
(keyed RNG, all-reduced gradients), not because rank 0 broadcasts them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from accelerate import Accelerator

from vidsparse.sparse import UPDATERS, DynamicSparsity, SparsityConfig

STEPS = 10


def tiny_model() -> nn.Module:
    torch.manual_seed(0)  # identical initial weights on both ranks
    return nn.Sequential(
        nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(),
        nn.Conv3d(8, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 5),
    )


def local_batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Each rank draws its own batch: local gradients differ, only the all-reduced one is common.
    generator = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(4, 3, 4, 6, 6, generator=generator), torch.randint(0, 5, (4,), generator=generator)


def train(method: str, rank: int, accelerator: Accelerator | None, **options) -> dict:
    """STEPS steps of ``method``; under DDP when ``accelerator`` is given, else on the local batch only."""
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    cfg = SparsityConfig(method=method, density=0.5, distribution="uniform", update_interval=2,
                         drop_fraction=0.5, end_fraction=1.0, sync="none", **options)
    sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=STEPS)  # before prepare
    backward = lambda loss: loss.backward()  # noqa: E731
    if accelerator is not None:
        model, optimizer = accelerator.prepare(model, optimizer)
        backward = accelerator.backward
    record = {"initial": sparsity.mask_digest().tolist(), "updates": []}
    for step in range(STEPS):
        x, y = local_batch(rank, step)
        backward(F.cross_entropy(model(x), y))
        optimizer.step()
        if sparsity.step():
            record["updates"].append({"step": sparsity.step_count, "digest": sparsity.mask_digest().tolist()})
        optimizer.zero_grad()
    record["step_count"] = sparsity.step_count
    record["alive"] = {name: alive.tolist() for name, alive in sparsity.alive.items()}
    return record


def main(out: Path) -> None:
    accelerator = Accelerator(cpu=True)  # without cpu=True each process would train alone
    rank = accelerator.process_index
    methods = [m for m in UPDATERS.names() if UPDATERS.get(m).sparse]
    result = {
        "rank": rank,
        "world_size": dist.get_world_size() if dist.is_initialized() else 1,
        "num_processes": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type),
        "methods": {m: train(m, rank, accelerator) for m in methods},
        # Channel mode: channels chosen from the all-reduced weights, the same on every rank.
        "channels": train("rigl", rank, accelerator, channel_sparsity=0.5, channel_multiple=1),
        # Negative control: RigL scored from this rank's own gradient (no DDP) must differ
        # between ranks, or the data was not really different per rank.
        "local_gradient_control": train("rigl", rank, None),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    accelerator.wait_for_everyone()
    accelerator.end_training()  # free the gloo group now, not at interpreter exit (pytorch#190489)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
