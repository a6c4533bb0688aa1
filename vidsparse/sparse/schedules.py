"""When to update the masks and how much to drop, counted in real optimizer steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidsparse.registry import Registry

DECAYS = Registry("drop-fraction decay")


@DECAYS.register("cosine")
def cosine(fraction: float, step: int, end_step: int) -> float:
    """RigL's cosine annealing: ``fraction / 2 * (1 + cos(pi * step / end_step))``."""
    return fraction / 2 * (1 + math.cos(math.pi * min(step, end_step) / end_step))


@DECAYS.register("constant")
def constant(fraction: float, step: int, end_step: int) -> float:
    return fraction


@dataclass(frozen=True)
class UpdateSchedule:
    """Update every ``interval`` steps, from ``interval`` until before ``end_step``."""

    interval: int
    drop_fraction: float
    end_step: int
    decay: str = "cosine"

    def __post_init__(self):
        if self.interval < 1:
            raise ValueError(f"update_interval must be >= 1, got {self.interval}")
        if not 0.0 <= self.drop_fraction <= 1.0:
            raise ValueError(f"drop_fraction must be in [0, 1], got {self.drop_fraction}")
        DECAYS.get(self.decay)

    def is_update_step(self, step: int) -> bool:
        return step > 0 and step % self.interval == 0 and step < self.end_step

    def drop_fraction_at(self, step: int) -> float:
        return DECAYS.get(self.decay)(self.drop_fraction, step, max(self.end_step, 1))
