"""DST methods. Each is a small class: how it scores weights for removal and for regrowth,
how its density moves over training, and the options and extra state it owns. The engine
does the bookkeeping once (docs/ARCHITECTURE.md, "Layers"; after jaxpruner's ``RigL(SET)``).

| method | removal | regrowth | density | options | paper |
|---|---|---|---|---|---|
| dense | - | - | 1 | - | - |
| static | - | - | fixed random mask | - | (Mocanu et al. 2018 / Evci et al. 2020 baseline) |
| set | magnitude | random | constant | - | Mocanu et al. 2018 |
| rigl | magnitude | gradient | constant | - | Evci et al. 2020 |
| mest_r / mest_g | \\|w\\| + λ\\|g\\| | random / gradient | constant, soft bound | mest_lambda, mest_overshoot | Yuan et al. 2021 |
| granet_r / granet_g | magnitude | random / gradient | cubic from init_density | init_density | Liu et al. 2021 |
| gmp | magnitude | none | cubic from 1.0 | init_density | Zhu & Gupta 2017 |

A new method is one class and one registration::

    @UPDATERS.register("my_method")
    class MyMethod(SET):
        @dataclass(frozen=True)
        class Options:
            temperature: float = 1.0

        def growth_score(self, weight, grad, generator):
            return (grad.abs() / self.options.temperature).exp()

and is configured by ``SparsityConfig(method="my_method", method_options={"temperature": 2})``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from vidsparse.registry import Registry

UPDATERS = Registry("sparsity method")


@dataclass(frozen=True)
class NoOptions:
    """A method without options of its own."""


class Updater:
    """Base class: magnitude removal, no growth rule, constant density.

    Class attributes the engine reads:
        dynamic: masks change during training.
        sparse: the method masks anything at all.
        regrows: updates swap weights (remove and regrow the same count).
        gradual: density follows a schedule (:meth:`density_at`) from :meth:`initial_density`.
        removal_needs_grad / growth_needs_grad: the score reads the dense gradient.
        Options: a frozen dataclass of the method's options; ``SparsityConfig.method_options``
            sets them (and, for the methods that had them first, the SparsityConfig fields
            named in ``config_fields``).

    Args:
        config: the :class:`~vidsparse.sparse.SparsityConfig` (None: default options).
    """

    dynamic = True
    sparse = True
    regrows = True
    gradual = False
    removal_needs_grad = False
    growth_needs_grad = False
    Options: ClassVar[type] = NoOptions
    # SparsityConfig fields that are options of this method (kept as fields for the methods
    # that had them before method_options existed; a new method needs none).
    config_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config=None):
        self.config = config
        self.options = self.options_from(config)

    # ------------------------------------------------------------------ options
    @classmethod
    def options_from(cls, config) -> Any:
        """The method's options from ``config``: its ``config_fields`` then ``method_options``.

        Raises ``ValueError`` naming an option the method does not have, and whatever the
        options' own checks raise.
        """
        if config is None:
            return cls.Options()
        known = {f.name for f in fields(cls.Options)}
        given = dict(getattr(config, "method_options", None) or {})
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"SparsityConfig.method_options: {config.method!r} has no option(s) "
                             f"{unknown}; its options: {sorted(known) or 'none'}")
        values = {name: getattr(config, name) for name in cls.config_fields
                  if getattr(config, name, None) is not None}
        values.update(given)
        options = cls.Options(**values)
        check = getattr(options, "check", None)
        if check is not None:
            check(config)
        return options

    # ------------------------------------------------------------------ density over training
    def initial_density(self, target: float) -> float:
        """The density masks start at."""
        return target

    def density_at(self, step: int, schedule, target: float) -> float:
        """The density the masks hold after an update at ``step``."""
        return target

    # ------------------------------------------------------------------ scores
    @property
    def needs_grad(self) -> bool:
        return self.removal_needs_grad or self.growth_needs_grad

    def removal_score(self, weight: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
        """Higher means keep. Every method in the DST-robustness paper removes by magnitude."""
        return weight.abs()

    def growth_score(
        self, weight: torch.Tensor, grad: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Higher means regrow."""
        raise NotImplementedError(f"{type(self).__name__} does not regrow")

    # ------------------------------------------------------------------ extra growth (MEST)
    def extra_growth(self, step: int, goals: dict[str, int], rooms: dict[str, int],
                     total_steps: int) -> dict[str, int]:
        """Weights to grow above each layer's goal at the update at ``step`` (most methods:
        none). The method owns them: :meth:`take_back` says when they go."""
        return {}

    def take_back(self, step: int) -> dict[str, int]:
        """Per layer, weights to remove at ``step`` outside the update schedule (most
        methods: none)."""
        return {}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The method's own state, saved inside ``DynamicSparsity.state_dict()``."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (from the engine's whole state dict)."""


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


@dataclass(frozen=True)
class MESTOptions:
    """MEST's options.

    Attributes:
        mest_lambda: λ in the removal score ``|w| + λ|g|``. 1.0 is our default, not a figure
            from the MEST paper; set it from your protocol.
        mest_overshoot: the soft memory bound, as a fraction of each layer's target count
            grown above it at an update and pruned back half an interval later (Yuan et al.
            2021 used 10%).
    """

    mest_lambda: float = 1.0
    mest_overshoot: float = 0.1

    def check(self, config) -> None:
        if not self.mest_lambda >= 0:
            raise ValueError(f"SparsityConfig.mest_lambda must be >= 0, got {self.mest_lambda}")
        if not 0.0 <= self.mest_overshoot <= 1.0:
            raise ValueError(f"SparsityConfig.mest_overshoot must be in [0, 1], got {self.mest_overshoot}")


@UPDATERS.register("mest_r")
class MEST(SET):
    """MEST (Yuan et al. 2021) with random regrowth.

    Removal scores ``|w| + λ|g|``, so a small weight that is still moving is kept. Soft
    memory bound: an update grows ``mest_overshoot`` of each layer's target count beyond the
    target, and half an update interval later those are pruned back by the same removal
    score. The grown-above counts and the prune-back step are this method's state.
    """

    removal_needs_grad = True
    Options = MESTOptions
    config_fields = ("mest_lambda", "mest_overshoot")

    def __init__(self, config=None):
        super().__init__(config)
        self.overshoot: dict[str, int] = {}  # per layer, weights grown above the goal
        self.prune_back_step: int | None = None

    def removal_score(self, weight, grad):
        return weight.abs() + self.options.mest_lambda * grad.abs()

    def extra_growth(self, step, goals, rooms, total_steps):
        interval = self.config.update_interval if self.config is not None else 1
        prune_back = step + max(1, interval // 2)
        share = self.options.mest_overshoot
        # The soft bound needs room to prune back before training ends.
        if not share or prune_back > total_steps:
            self.overshoot, self.prune_back_step = {}, None
            return {}
        self.overshoot = {name: min(int(share * goal), rooms[name] - goal) for name, goal in goals.items()}
        self.prune_back_step = prune_back
        return dict(self.overshoot)

    def take_back(self, step):
        if self.prune_back_step is None or step < self.prune_back_step:
            return {}
        due = {name: n for name, n in self.overshoot.items() if n}
        self.overshoot, self.prune_back_step = {}, None
        return due

    def state_dict(self):
        return {"overshoot": dict(self.overshoot), "prune_back_step": self.prune_back_step}

    def load_state_dict(self, state):
        self.overshoot = {k: int(v) for k, v in (state.get("overshoot") or {}).items()}
        self.prune_back_step = state.get("prune_back_step")


@UPDATERS.register("mest_g")
class MESTGradient(GradientGrowth, MEST):
    """MEST with regrowth by dense gradient magnitude."""


@dataclass(frozen=True)
class GradualOptions:
    """Options of a method that prunes gradually.

    Attributes:
        init_density: the density masks start at; None is the method's default (GMP 1.0,
            GraNet 0.8). It must be at least the target: gradual methods only prune.
    """

    init_density: float | None = None

    def check(self, config) -> None:
        if self.init_density is None:
            return
        if not 0.0 < self.init_density <= 1.0:
            raise ValueError(f"SparsityConfig.init_density must be in (0, 1], got {self.init_density}")
        if config.density is not None and self.init_density < config.density:
            raise ValueError(f"SparsityConfig.init_density ({self.init_density}) must be >= the "
                             f"target density ({config.density}): gradual methods only prune")


class Gradual(Updater):
    """Base of the methods whose density falls on the cubic schedule of gradual pruning
    (Zhu & Gupta 2017) from :attr:`default_init_density` (or the ``init_density`` option)
    to the target at the last update step."""

    gradual = True
    Options = GradualOptions
    config_fields = ("init_density",)
    default_init_density = 1.0

    def initial_density(self, target):
        return self.options.init_density or self.default_init_density

    def density_at(self, step, schedule, target):
        return schedule.density_at(step, self.initial_density(target), target)


@UPDATERS.register("granet_r")
class GraNet(Gradual, SET):
    """GraNet (Liu et al. 2021) with random regrowth: gradual magnitude pruning from
    ``init_density`` (default 0.8) to the target on the cubic schedule, with
    prune-and-regrow at every update in between (neuroregeneration)."""

    default_init_density = 0.8


@UPDATERS.register("granet_g")
class GraNetGradient(GradientGrowth, GraNet):
    """GraNet with regrowth by dense gradient magnitude (the paper's own variant)."""


@UPDATERS.register("gmp")
class GMP(Gradual):
    """Gradual magnitude pruning (Zhu & Gupta 2017): dense to the target density on the
    cubic schedule, removal by magnitude, no regrowth."""

    regrows = False
    default_init_density = 1.0
