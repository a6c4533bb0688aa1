"""DST algorithms as scores. The engine removes the lowest removal scores among active
weights and regrows the highest growth scores among inactive ones; an algorithm only says
how to score (STYLE.md rule 1, after jaxpruner's ``RigL(SET)``).
"""

from __future__ import annotations

import torch

from vidsparse.registry import Registry

UPDATERS = Registry("sparsity method")


class Updater:
    """Base class: magnitude removal, no growth rule.

    ``dynamic`` says whether masks change during training; ``sparse`` whether the method
    masks anything at all; ``needs_grad`` whether ``growth_score`` reads the dense gradient.
    """

    dynamic = True
    sparse = True
    needs_grad = False

    def removal_score(self, weight: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
        """Higher means keep. Every method in the DST-robustness paper removes by magnitude."""
        return weight.abs()

    def growth_score(
        self, weight: torch.Tensor, grad: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Higher means regrow."""
        raise NotImplementedError


@UPDATERS.register("dense")
class Dense(Updater):
    """No masks at all; lets recipes treat dense training as one more method."""

    dynamic = False
    sparse = False


@UPDATERS.register("static")
class Static(Updater):
    """A random sparse mask drawn at initialisation and never changed."""

    dynamic = False


@UPDATERS.register("set")
class SET(Updater):
    """Sparse Evolutionary Training (Mocanu et al. 2018): regrow at random."""

    def growth_score(self, weight, grad, generator):
        # Drawn on the CPU from the engine's (seed, step, layer) generator so every rank
        # and every device type draws the same numbers.
        return torch.rand(weight.shape, generator=generator).to(weight.device)


@UPDATERS.register("rigl")
class RigL(SET):
    """RigL (Evci et al. 2020): regrow where the dense gradient magnitude is largest."""

    needs_grad = True

    def growth_score(self, weight, grad, generator):
        return grad.abs()
