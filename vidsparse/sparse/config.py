"""SparsityConfig: what to train sparse and how."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from vidsparse.sparse.distributions import DISTRIBUTIONS
from vidsparse.sparse.schedules import DECAYS
from vidsparse.sparse.updaters import UPDATERS

SYNC_MODES = ("broadcast", "verify", "none")



class OptionTypeError(TypeError, ValueError):
    """An option of the wrong type. A ValueError too, so code that reports bad option
    values (the recipes' config loader) reports these the same way."""


_NUMBER = (numbers.Real,)
_INT = (numbers.Integral,)
# (field, accepted types, how the error names them); bool is accepted only where listed.
_FIELD_TYPES = [
    ("method", str, "a method name (str)"),
    ("density", _NUMBER, "a number in (0, 1]"),
    ("sparsity", _NUMBER, "a number in [0, 1)"),
    ("distribution", str, "a distribution name (str)"),
    ("update_interval", _INT, "a whole number of optimizer steps (int >= 1)"),
    ("drop_fraction", _NUMBER, "a number in [0, 1]"),
    ("start_step", _INT, "an optimizer step (int >= 0)"),
    ("end_step", _INT, "an optimizer step (int) or None"),
    ("end_fraction", _NUMBER, "a number in (0, 1]"),
    ("decay", str, "a decay name (str)"),
    ("seed", _INT, "an int"),
    ("erk_power_scale", _NUMBER, "a number >= 0"),
    ("keep_first_dense", bool, "true or false"),
    ("keep_last_dense", bool, "true or false"),
    ("dense_layers", (list, tuple), "a list of glob patterns"),
    ("layer_density", dict, "a mapping {glob pattern: density}"),
    ("init_density", _NUMBER, "a number in (0, 1] or None"),
    ("mest_lambda", _NUMBER, "a number >= 0"),
    ("mest_overshoot", _NUMBER, "a number in [0, 1]"),
    ("method_options", dict, "a mapping {option: value} of the method's own options"),
    ("sync", str, f"one of {SYNC_MODES}"),
    ("nm", (list, tuple), "[N, M] or None"),
    ("channel_sparsity", _NUMBER, "a number in [0, 1)"),
    ("channel_multiple", _INT, "an int >= 1"),
    ("channel_residual", bool, "true or false"),
]
_OPTIONAL = {"density", "sparsity", "end_step", "init_density", "nm"}


@dataclass
class SparsityConfig:
    """What to train sparse and how.

    Give either ``density`` (fraction of prunable weights kept) or ``sparsity`` (fraction
    removed, as the DST papers speak), not both; the other is filled in. Default: density 0.5.

    Args:
        method: a name from ``vidsparse.sparse.UPDATERS``: dense, static, set, rigl,
            mest_r, mest_g, granet_r, granet_g, gmp.
        density / sparsity: the target, in (0, 1].
        distribution: how density is spread over layers (uniform, er, erk).
        update_interval: optimizer steps between mask updates (ΔT).
        drop_fraction: fraction of a layer's active weights replaced at the first update.
        start_step: no update before this step (gradual methods start pruning here).
        end_step: no update from this step on; default ``end_fraction * total_steps``.
        end_fraction: see ``end_step`` (RigL: 0.75).
        decay: how the drop fraction decays to ``end_step``: cosine (RigL), linear, constant.
        seed: keys every random draw (initial masks, random regrowth) with the step and layer.
        erk_power_scale: exponent on ER/ERK raw layer scores (1.0 = the published rule).
        keep_first_dense / keep_last_dense: keep the first / last prunable layer dense.
        dense_layers: glob patterns of parameter names kept dense (density 1).
        layer_density: ``{glob pattern: density}`` for layers that get their own density;
            the first matching pattern wins; the rest follow ``distribution``.
        init_density: start density of gradual methods (default: gmp 1.0, granet 0.8).
        mest_lambda: λ in MEST's removal score |w| + λ|g|.
        mest_overshoot: MEST's soft memory bound, as a fraction of the target count
            (Yuan et al. 2021 used 10%).
        method_options: the method's own options, ``{name: value}`` (each method's
            ``Options`` dataclass in ``vidsparse/sparse/updaters.py`` lists them). The three
            fields above are options of their methods, kept as fields because they were
            there first (a method that does not use one ignores it); a value given here too
            wins. A name the method does not have is an error.
        sync: at update steps under torch.distributed, ``broadcast`` rank 0's masks,
            ``verify`` that all ranks agree (raise otherwise) or ``none``.
        nm: ``[N, M]`` (e.g. ``[2, 4]``) for N:M semi-structured masks on ``nn.Linear``
            weights: of every M consecutive weights along the input dimension exactly N are
            kept, at init and after every update, so those layers sit at density N/M whatever
            ``density``, ``distribution``, ``layer_density`` or a SparseLinear's own density
            say. Linear layers kept dense (``dense_layers``, ``keep_first_dense``,
            ``keep_last_dense``, a ``layer_density`` of 1) stay dense; every other layer
            (Conv, the packed q/k/v projection of nn.MultiheadAttention) keeps the
            unstructured pattern at the distribution's density. Needs a constant-density
            method (static, set, rigl, mest_r, mest_g); ``None`` (default) = unstructured.
        channel_sparsity: fraction of the removable output channels (those of a
            :class:`vidsparse.sparse.channels.ChannelGroup`: the inner channels of residual
            blocks, the hidden units of MLPs, with ``channel_residual`` the residual streams)
            taken out whole by the end of training, in the
            spirit of Chase (Yin et al. 2023). At each mask update, on the cubic schedule, every
            group loses its channels of lowest mean weight magnitude (pruned weights counting as
            zero); their weights leave the mask for good and the freed budget regrows in the
            remaining channels. ``DynamicSparsity.export()`` then returns a physically narrower
            model. Needs a method that regrows (set, rigl, mest_r/g, granet_r/g); 0 (default)
            = off.
        channel_multiple: channel mode leaves every group a multiple of this many channels
            (removing fewer where needed; groups narrower than it are exempt), since
            convolution kernels run on blocks of 8 or 16 channels. 1 = exact shares.
        channel_residual: channel mode also removes channels of residual streams (every
            layer writing into a sum drops the same ones, so whole stages narrow: faster,
            but a channel sparsity s then leaves a layer (1 - s)**2 of its weights, below
            ``density`` once that is smaller). False (default) removes only channels that
            meet no addition (the inner channels of blocks, MLP hidden units).

    Example:
        >>> cfg = vidsparse.SparsityConfig(method="rigl", sparsity=0.5, distribution="erk",
        ...                                update_interval=100, drop_fraction=0.3, seed=0)
        >>> cfg.density
        0.5
    """

    method: str = "rigl"
    density: float | None = None
    sparsity: float | None = None
    distribution: str = "erk"
    update_interval: int = 100
    drop_fraction: float = 0.3
    start_step: int = 0
    end_step: int | None = None
    end_fraction: float = 0.75
    decay: str = "cosine"
    seed: int = 0
    erk_power_scale: float = 1.0
    keep_first_dense: bool = False
    keep_last_dense: bool = False
    dense_layers: list[str] = field(default_factory=list)
    layer_density: dict[str, float] = field(default_factory=dict)
    init_density: float | None = None
    mest_lambda: float = 1.0
    mest_overshoot: float = 0.1
    method_options: dict[str, Any] = field(default_factory=dict)
    sync: str = "broadcast"
    nm: list[int] | None = None
    channel_sparsity: float = 0.0
    channel_multiple: int = 8
    channel_residual: bool = False

    def __post_init__(self):
        self._check_types()
        UPDATERS.get(self.method)
        DISTRIBUTIONS.get(self.distribution)
        DECAYS.get(self.decay)
        if self.density is not None and self.sparsity is not None:
            raise ValueError("SparsityConfig takes sparsity= or density=, not both "
                             f"(got sparsity={self.sparsity}, density={self.density})")
        if self.sparsity is not None:
            if not 0.0 <= float(self.sparsity) < 1.0:
                raise ValueError(f"SparsityConfig.sparsity must be in [0, 1), got {self.sparsity}")
            self.density = 1.0 - float(self.sparsity)
        elif self.density is None:
            self.density = 0.5
        if not 0.0 < float(self.density) <= 1.0:
            raise ValueError(f"SparsityConfig.density must be in (0, 1], got {self.density}")
        self.density = float(self.density)
        self.sparsity = 1.0 - self.density
        for pattern, value in dict(self.layer_density).items():
            if not 0.0 < float(value) <= 1.0:
                raise ValueError(f"SparsityConfig.layer_density[{pattern!r}] must be in (0, 1], got {value}")
        self.method_options = dict(self.method_options)
        UPDATERS.get(self.method).options_from(self)  # the method checks its own options
        if self.update_interval < 1:
            raise ValueError(f"SparsityConfig.update_interval must be >= 1 optimizer step, "
                             f"got {self.update_interval}")
        if not 0.0 <= self.drop_fraction <= 1.0:
            raise ValueError(f"SparsityConfig.drop_fraction must be in [0, 1], got {self.drop_fraction}")
        if self.start_step < 0:
            raise ValueError(f"SparsityConfig.start_step must be >= 0, got {self.start_step}")
        if self.end_step is not None and self.end_step <= self.start_step:
            raise ValueError(f"SparsityConfig.end_step ({self.end_step}) must be after start_step "
                             f"({self.start_step})")
        if self.erk_power_scale < 0:
            raise ValueError(f"SparsityConfig.erk_power_scale must be >= 0, got {self.erk_power_scale}")
        if not 0.0 < float(self.end_fraction) <= 1.0:
            raise ValueError(f"SparsityConfig.end_fraction must be in (0, 1], got {self.end_fraction}")
        if self.sync not in SYNC_MODES:
            raise ValueError(f"SparsityConfig.sync must be one of {SYNC_MODES}, got {self.sync!r}")
        if self.nm is not None:
            nm = list(self.nm) if isinstance(self.nm, (list, tuple)) else None
            if nm is None or len(nm) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                     for v in nm) or not 0 < nm[0] < nm[1]:
                raise ValueError("SparsityConfig.nm must be [N, M] with integers 0 < N < M "
                                 f"(e.g. [2, 4]), got {self.nm!r}")
            if UPDATERS.get(self.method).gradual:
                raise ValueError(f"SparsityConfig.nm={nm} needs a constant-density method; "
                                 f"{self.method!r} prunes gradually")
            self.nm = nm
        self.channel_sparsity = float(self.channel_sparsity)
        if not 0.0 <= self.channel_sparsity < 1.0:
            raise ValueError(f"SparsityConfig.channel_sparsity must be in [0, 1), got {self.channel_sparsity}")
        if isinstance(self.channel_multiple, bool) or not isinstance(self.channel_multiple, int) \
                or self.channel_multiple < 1:
            raise ValueError(f"SparsityConfig.channel_multiple must be an int >= 1, got {self.channel_multiple!r}")
        if not isinstance(self.channel_residual, bool):
            raise ValueError(f"SparsityConfig.channel_residual must be true or false, got {self.channel_residual!r}")
        if self.channel_sparsity:
            updater = UPDATERS.get(self.method)
            if not (updater.dynamic and updater.regrows):
                raise ValueError(f"SparsityConfig.channel_sparsity needs a method that updates and "
                                 f"regrows masks (set, rigl, mest_r, mest_g, granet_r, granet_g); "
                                 f"got {self.method!r}")
            if self.nm is not None:
                raise ValueError("SparsityConfig.channel_sparsity and nm cannot be combined yet")
        self.dense_layers = list(self.dense_layers)
        self.layer_density = {str(k): float(v) for k, v in dict(self.layer_density).items()}

    def _check_types(self) -> None:
        """Every field has the type its default has: a YAML typo (``update_interval: '2'``,
        ``dense_layers: fc.*`` without the list) is an error naming the option, not a
        silently different run (a string of patterns would be read letter by letter)."""
        for name, kinds, what in _FIELD_TYPES:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            # bool is an int in Python; a flag where a number belongs is a mistake.
            kinds = kinds if isinstance(kinds, tuple) else (kinds,)
            if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                raise OptionTypeError(f"SparsityConfig.{name} must be {what}, got {value!r} "
                                f"({type(value).__name__})")
            if kinds == _INT:
                setattr(self, name, int(value))  # numpy integers become plain ints
        if not all(isinstance(p, str) for p in self.dense_layers):
            raise OptionTypeError(f"SparsityConfig.dense_layers must be a list of glob patterns (str), "
                            f"got {self.dense_layers!r}")
        for pattern, density in self.layer_density.items():
            if not isinstance(pattern, str) or isinstance(density, bool) \
                    or not isinstance(density, (int, float)):
                raise OptionTypeError("SparsityConfig.layer_density must map glob patterns (str) to "
                                f"densities (float), got {pattern!r}: {density!r}")
        for name in ("density", "sparsity", "drop_fraction", "end_fraction", "erk_power_scale",
                     "mest_lambda", "mest_overshoot", "channel_sparsity", "init_density"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"SparsityConfig.{name} must be a finite number, got {value!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SparsityConfig":
        """Build from a mapping; unknown keys are an error that lists the known ones.

        A mapping written by ``dataclasses.asdict`` holds both ``density`` and ``sparsity``;
        when they agree it is accepted (``sparsity`` is dropped).
        """
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown sparsity option(s) {sorted(unknown)}; "
                             f"known: {sorted(cls.__dataclass_fields__)}")
        d = dict(d)
        if d.get("density") is not None and d.get("sparsity") is not None \
                and abs(d["density"] + d["sparsity"] - 1.0) < 1e-9:
            d.pop("sparsity")
        return cls(**d)
