"""DST algorithms as scores. The engine removes the lowest removal scores among active
weights and regrows the highest growth scores among inactive ones, and does all the
bookkeeping once; an algorithm only says how to score and which schedule it follows
(STYLE.md rule 1, after jaxpruner's ``RigL(SET)``).

| method | removal | regrowth | density | paper |
|---|---|---|---|---|
| dense | - | - | 1 | - |
| static | - | - | fixed random mask | (Mocanu et al. 2018 / Evci et al. 2020 baseline) |
| set | magnitude | random | constant | Mocanu et al. 2018 |
| rigl | magnitude | gradient | constant | Evci et al. 2020 |
| mest_r / mest_g | \\|w\\| + λ\\|g\\| | random / gradient | constant, soft bound | Yuan et al. 2021 |
| granet_r / granet_g | magnitude | random / gradient | cubic from init_density | Liu et al. 2021 |
| gmp | magnitude | none | cubic from 1.0 | Zhu & Gupta 2017 |
"""

from __future__ import annotations

import torch

from vidsparse.registry import Registry

UPDATERS = Registry("sparsity method")


class Updater:
    """Base class: magnitude removal, no growth rule.

    Class attributes the engine reads:
        dynamic: masks change during training.
        sparse: the method masks anything at all.
        regrows: updates swap weights (remove and regrow the same count).
        gradual: density follows the cubic schedule from ``initial_density``.
        removal_needs_grad / growth_needs_grad: the score reads the dense gradient.
    """

    dynamic = True
    sparse = True
    regrows = True
    gradual = False
    removal_needs_grad = False
    growth_needs_grad = False
    initial_density: float | None = None  # default start density of a gradual method

    def __init__(self, config=None):
        self.config = config

    @property
    def needs_grad(self) -> bool:
        return self.removal_needs_grad or self.growth_needs_grad

    def overshoot(self) -> float:
        """Fraction of a layer's target count grown above the target at an update and pruned
        back half an interval later (MEST's soft memory bound); 0 for most methods."""
        return 0.0

    def removal_score(self, weight: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
        """Higher means keep. Every method in the DST-robustness paper removes by magnitude."""
        return weight.abs()

    def growth_score(
        self, weight: torch.Tensor, grad: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Higher means regrow."""
        raise NotImplementedError(f"{type(self).__name__} does not regrow")


def random_score(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Drawn on the CPU from the engine's (seed, step, layer) generator, so every rank and
    # every device type draws the same numbers.
    return torch.rand(weight.shape, generator=generator).to(weight.device)


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
        return random_score(weight, generator)


class GradientGrowth:
    """Mixin: regrow where the dense gradient magnitude is largest (RigL's criterion).

    The ``_g`` variants of MEST and GraNet are their random-regrowth class with this mixin
    in front, so the rule is written once.
    """

    growth_needs_grad = True

    def growth_score(self, weight, grad, generator):
        return grad.abs()


@UPDATERS.register("rigl")
class RigL(GradientGrowth, SET):
    """RigL (Evci et al. 2020): SET's magnitude removal, regrowth by dense gradient."""


@UPDATERS.register("mest_r")
class MEST(SET):
    """MEST (Yuan et al. 2021) with random regrowth.

    Removal scores ``|w| + λ|g|`` (``mest_lambda``), so a small weight that is still moving
    is kept. Soft memory bound: an update grows ``mest_overshoot`` (paper: 10%) of the
    target count beyond the target, and half an update interval later the engine prunes
    back to the target by the same removal score.
    """

    removal_needs_grad = True

    def overshoot(self) -> float:
        return self.config.mest_overshoot

    def removal_score(self, weight, grad):
        return weight.abs() + self.config.mest_lambda * grad.abs()


@UPDATERS.register("mest_g")
class MESTGradient(GradientGrowth, MEST):
    """MEST with regrowth by dense gradient magnitude."""


@UPDATERS.register("granet_r")
class GraNet(SET):
    """GraNet (Liu et al. 2021) with random regrowth: gradual magnitude pruning from
    ``init_density`` (default 0.8) to the target on the cubic schedule, with
    prune-and-regrow at every update in between (neuroregeneration)."""

    gradual = True
    initial_density = 0.8


@UPDATERS.register("granet_g")
class GraNetGradient(GradientGrowth, GraNet):
    """GraNet with regrowth by dense gradient magnitude (the paper's own variant)."""


@UPDATERS.register("gmp")
class GMP(Updater):
    """Gradual magnitude pruning (Zhu & Gupta 2017): dense to the target density on the
    cubic schedule, removal by magnitude, no regrowth."""

    gradual = True
    regrows = False
    initial_density = 1.0
