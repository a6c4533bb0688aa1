"""Mask mechanics shared by the engine and the structures: keyed random draws, random and
N:M masks, picking the k best candidates, the packed ever-active record and the digest that
ranks compare. Pure functions on tensors; nothing here knows about models or optimizers."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch

__all__ = ["count_bits", "generator", "mask_digest", "nm_pattern_holds", "nm_random_mask",
           "pack_bits", "random_mask", "select", "unpack_bits"]


def generator(*key: int) -> torch.Generator:
    """A CPU generator keyed on integers, independent of the global RNG and of the rank.

    The engine keys every draw on (seed, layer index, step, purpose), so a resumed run and
    every rank draw the same numbers without saving any RNG state.
    """
    seed = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed % 2**63)


def random_mask(shape: torch.Size, n_active: int, generator: torch.Generator) -> torch.Tensor:
    """A bool mask of ``shape`` with exactly ``n_active`` ones at uniformly random places."""
    numel = math.prod(shape)
    flat = torch.zeros(numel, dtype=torch.bool)
    flat[torch.randperm(numel, generator=generator)[:n_active]] = True
    return flat.view(shape)


def nm_random_mask(shape: torch.Size, n: int, m: int, generator: torch.Generator) -> torch.Tensor:
    """A bool mask of ``shape`` keeping N uniformly random weights of every M consecutive ones
    along the last dimension (which M divides)."""
    groups = torch.rand(math.prod(shape) // m, m, generator=generator)
    mask = torch.zeros(groups.shape, dtype=torch.bool)
    mask.scatter_(1, groups.topk(n, dim=1).indices, True)
    return mask.view(shape)


def nm_pattern_holds(mask: torch.Tensor, n: int, m: int) -> bool:
    """True if every M consecutive entries along the last dimension hold exactly N ones."""
    return mask.shape[-1] % m == 0 and bool((mask.reshape(-1, m).sum(1) == n).all())


def select(scores: torch.Tensor, candidates: torch.Tensor, k: int, largest: bool) -> torch.Tensor:
    """Flat indices of the ``k`` lowest (or, with ``largest``, highest) ``scores`` among the
    ``candidates`` (a flat bool tensor); ties at the boundary go to the lower index, and a
    NaN score counts as -inf (a NaN weight is removed first, a NaN gradient grows last).

    The same rule on every device. One ``kthvalue`` over the candidates finds the boundary
    score; on the CPU that is about twice as fast as ``torch.topk`` over the layer and holds
    well under half its memory (topk held 135 MB for r3d_18's largest layer). numpy's
    partition, in place, was slower still on gradients with many exact zeros (dead units).
    """
    scores = scores.detach()
    values = scores[candidates]  # a copy, of the candidates only
    if k >= values.numel():
        return candidates.nonzero().flatten()
    if torch.isnan(values).any():
        scores = scores.nan_to_num(nan=-math.inf, posinf=math.inf, neginf=-math.inf)
        values = scores[candidates]
    position = values.numel() - k if largest else k - 1  # in ascending order
    bound = torch.kthvalue(values, position + 1).values
    del values
    chosen = (((scores > bound) if largest else (scores < bound)) & candidates).nonzero().flatten()
    if chosen.numel() < k:
        ties = ((scores == bound) & candidates).nonzero().flatten()[: k - chosen.numel()]
        chosen = torch.cat([chosen, ties])
    return chosen


_BITS = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """A bool tensor as uint8 bits, 8 per byte (flattened, zero-padded)."""
    flat = mask.reshape(-1)
    flat = torch.cat([flat, flat.new_zeros(-flat.numel() % 8)]).view(-1, 8)
    return (flat.to(torch.uint8) * _BITS.to(flat.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The bool tensor of ``shape`` that :func:`pack_bits` packed."""
    bits = (packed.unsqueeze(1) & _BITS.to(packed.device)) != 0
    return bits.reshape(-1)[: math.prod(shape)].view(shape)


def count_bits(packed: torch.Tensor) -> int:
    """The number of ones :func:`pack_bits` packed."""
    return int(((packed.unsqueeze(1) & _BITS.to(packed.device)) != 0).count_nonzero())


def mask_digest(masks: Iterable[torch.Tensor]) -> torch.Tensor:
    """Per mask (count of ones, a position-weighted checksum) as int64 ``[len(masks), 2]``.

    Cheap to all-gather: two ranks with equal digests hold equal masks except with
    negligible probability.
    """
    rows = []
    for mask in masks:
        idx = mask.reshape(-1).nonzero().flatten().to(torch.int64)
        rows.append(torch.stack([torch.tensor(idx.numel(), dtype=torch.int64),
                                 (idx * 2654435761 % 2147483647).sum().cpu()]))
    return torch.stack(rows) if rows else torch.zeros(0, 2, dtype=torch.int64)
