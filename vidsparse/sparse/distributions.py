"""Per-layer densities: (named weight shapes, global density) -> {name: density}.

Every distribution has the signature
``fn(shapes: dict[str, tuple[int, ...]], density: float, dense: set[str], **options)``;
layers named in ``dense`` get density 1.
"""

from __future__ import annotations

import math

from vidsparse.registry import Registry

DISTRIBUTIONS = Registry("distribution")


def layer_densities(
    name: str, shapes: dict[str, tuple[int, ...]], density: float, dense: set[str] = frozenset(), **options
) -> dict[str, float]:
    """Look up distribution ``name`` and apply it."""
    return DISTRIBUTIONS.get(name)(shapes, density, set(dense), **options)


@DISTRIBUTIONS.register("uniform")
def uniform(shapes, density, dense, **_):
    """The same density in every layer."""
    return {n: 1.0 if n in dense else density for n in shapes}


@DISTRIBUTIONS.register("er")
def er(shapes, density, dense, power_scale: float = 1.0, **_):
    """Erdős–Rényi (Mocanu et al. 2018, SET): like ERK, but a layer's raw score is
    ``(n_out + n_in) / (n_out * n_in)`` from the first two dimensions only (the fan-out and
    fan-in of a PyTorch weight), ignoring the kernel's extent."""
    return _scaled(shapes, density, dense, power_scale, lambda s: (s[0] + s[1]) / (s[0] * s[1]))


@DISTRIBUTIONS.register("erk")
def erk(shapes, density, dense, power_scale: float = 1.0, **_):
    """Erdős–Rényi-Kernel (Evci et al. 2020, RigL, Appendix; Mocanu et al. 2018 for ER).

    A layer's density is proportional to ``sum(shape) / prod(shape)`` (every dimension,
    so a Conv3d kernel counts its temporal extent) raised to ``power_scale``, scaled so that
    the total number of kept weights equals ``density`` times the total. A layer whose
    scaled density would exceed 1 is made dense and the rest is solved again — RigL's
    ``get_sparsities`` procedure.
    """
    return _scaled(shapes, density, dense, power_scale, lambda s: sum(s) / math.prod(s))


def _scaled(shapes, density, dense, power_scale, raw_score):
    """Densities proportional to ``raw_score(shape) ** power_scale``, capped at 1, keeping
    the total number of kept weights at ``density`` times the total (RigL's procedure)."""
    dense = set(dense)
    numel = {n: math.prod(s) for n, s in shapes.items()}
    while True:
        budget = sum(numel.values()) * density - sum(numel[n] for n in dense)
        raw = {n: raw_score(s) ** power_scale for n, s in shapes.items() if n not in dense}
        if not raw:
            break
        divisor = sum(raw[n] * numel[n] for n in raw)
        eps = budget / divisor
        too_dense = [n for n, p in raw.items() if p * eps > 1.0]
        if not too_dense:
            break
        dense.update(too_dense)
    if budget < 0:
        raise ValueError(f"density {density} is below what the layers kept dense already hold")
    return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}


def spread_over_room(counts: dict[str, int], rooms: dict[str, int], free: list[str]) -> dict[str, int]:
    """Per-layer counts that keep ``sum(counts)`` when some layers have less ``room``.

    A layer keeps ``min(count, room)``; what the capped layers cannot hold goes to the
    ``free`` layers (those the distribution governs) in proportion to their counts, none
    above its room, which is what ERK itself does when it caps a layer (RigL makes such a
    layer dense and solves again for the rest). Whole weights: the remainder goes to the
    largest fractional parts, then to the earlier layer. Only if every free layer is full
    does the total fall short.

    Example:
        >>> spread_over_room({"a": 10, "b": 10}, {"a": 4, "b": 100}, free=["a", "b"])
        {'a': 4, 'b': 16}
    """
    if all(counts[n] <= rooms[n] for n in counts):
        return dict(counts)
    out = {n: min(c, rooms[n]) for n, c in counts.items()}
    budget = sum(counts.values()) - sum(out[n] for n in counts if n not in free)
    open_ = list(free)  # layers that can still take more
    scale = 0.0
    while open_:
        scale = budget / sum(counts[n] for n in open_)
        full = [n for n in open_ if scale * counts[n] >= rooms[n]]
        if not full:
            break
        for n in full:
            out[n] = rooms[n]
            budget -= rooms[n]
            open_.remove(n)
    if not open_:
        return out
    shares = {n: scale * counts[n] for n in open_}
    for n in open_:
        out[n] = int(shares[n])
    left = budget - sum(out[n] for n in open_)
    order = sorted(open_, key=lambda n: (-(shares[n] - out[n]), open_.index(n)))
    for n in order[:max(0, left)]:
        out[n] += 1
    return out
