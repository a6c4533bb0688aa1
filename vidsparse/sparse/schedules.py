"""When to update the masks, how much to drop, and how density moves for gradual methods.

Every step here is an optimizer step that really ran (see ``DynamicSparsity.step``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidsparse.registry import Registry

DECAYS = Registry("drop-fraction decay")


@DECAYS.register("cosine")
def cosine(fraction: float, progress: float) -> float:
    """RigL's cosine annealing: ``fraction / 2 * (1 + cos(pi * progress))``."""
    return fraction / 2 * (1 + math.cos(math.pi * progress))


@DECAYS.register("linear")
def linear(fraction: float, progress: float) -> float:
    return fraction * (1 - progress)


@DECAYS.register("constant")
def constant(fraction: float, progress: float) -> float:
    return fraction


@dataclass(frozen=True)
class UpdateSchedule:
    """Mask updates every ``interval`` steps after ``start_step`` and before ``end_step``.

    ``drop_fraction_at`` decays the drop fraction over [start_step, end_step];
    ``density_at`` is the cubic schedule of gradual pruning (Zhu & Gupta 2017,
    *To prune, or not to prune*): from ``initial`` at ``start_step`` to ``final`` at the last
    update step, ``final + (initial - final) * (1 - progress) ** 3``.
    """

    interval: int
    drop_fraction: float
    end_step: int
    start_step: int = 0
    decay: str = "cosine"

    def __post_init__(self):
        if self.interval < 1:
            raise ValueError(f"update_interval must be >= 1, got {self.interval}")
        if not 0.0 <= self.drop_fraction <= 1.0:
            raise ValueError(f"drop_fraction must be in [0, 1], got {self.drop_fraction}")
        if self.start_step < 0 or self.end_step <= self.start_step:
            raise ValueError(f"need 0 <= start_step < end_step, got start_step={self.start_step}, "
                             f"end_step={self.end_step}")
        DECAYS.get(self.decay)

    def is_update_step(self, step: int) -> bool:
        since = step - self.start_step
        return since > 0 and since % self.interval == 0 and step < self.end_step

    @property
    def last_update_step(self) -> int | None:
        """The last step at which ``is_update_step`` holds (None if there is none)."""
        last = self.start_step + ((self.end_step - 1 - self.start_step) // self.interval) * self.interval
        return last if last > self.start_step else None

    def _progress(self, step: int, end: int) -> float:
        return min(max((step - self.start_step) / max(end - self.start_step, 1), 0.0), 1.0)

    def drop_fraction_at(self, step: int) -> float:
        return DECAYS.get(self.decay)(self.drop_fraction, self._progress(step, self.end_step))

    def density_at(self, step: int, initial: float, final: float) -> float:
        last = self.last_update_step
        if last is None:
            return final
        return final + (initial - final) * (1 - self._progress(step, last)) ** 3
