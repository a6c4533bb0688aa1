"""Uncertainty of a comparison between models evaluated on the same test videos.

Pure functions on arrays: no models, files or report layout. The report uses them to say
whether a sparse method is more robust than dense training, and how sure that is
(:func:`vidsparse.robustness.results.comparison_statistics`); the procedure in words is in
the report's "What the numbers mean".

* :func:`paired_bootstrap`: replicates of a statistic of every group of runs (the training
  seeds of one method), each replicate from **one** resample of the test videos shared by
  every run, condition and group, so that differences between groups are paired by video.
  With ``resample_seeds`` each group's runs are resampled too (hierarchically: seeds, then
  videos). Seeds and videos are drawn from two independent streams of the one ``seed``, so
  groups of a single run give exactly the videos-only bootstrap.
* :func:`percentile_interval`: the percentile interval of replicates (Efron & Tibshirani
  1993, *An Introduction to the Bootstrap*, ch. 13).
* :func:`sign_flip_test`: the paired permutation test of a mean difference: under the null
  hypothesis that the two models are exchangeable on every video, each per-video difference
  is as likely to have the other sign (Fisher 1935, *The Design of Experiments*, §21; Good
  2005, *Permutation, Parametric and Bootstrap Tests of Hypotheses*, §3.1). Exact by
  enumeration when few videos differ, else Monte Carlo.
* :func:`holm`: Holm's step-down adjustment of p-values for several comparisons (Holm 1979,
  "A simple sequentially rejective multiple test procedure", *Scand. J. Statist.* 6:65-70).
* :func:`verdict`: the one-line answer, resolved only when both the adjusted p-value and
  the interval agree.

Every random draw comes from ``numpy.random.default_rng`` keyed on the ``seed`` argument:
the same inputs and seed give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

# A sign-flip test over at most this many non-zero differences enumerates all 2**k sign
# patterns (65,536 at most); above it, it draws ``n_permutations`` random patterns.
EXACT_UP_TO = 16

# Rows of random draws per block: bounds the memory of a block (rows x videos) whatever the
# number of replicates. A constant, so that results never depend on the machine.
_BLOCK_CELLS = 1 << 22


@dataclass(frozen=True)
class StatsConfig:
    """How the report's comparisons are resampled and tested.

    Attributes:
        seed: keys every bootstrap and permutation draw: the same predictions and seed give
            the same intervals and p-values.
        n_bootstrap: bootstrap replicates (10,000 keeps the Monte Carlo error of a 95%
            percentile endpoint small next to the interval's width).
        n_permutations: random sign patterns of a sign-flip test that is not exact.
        confidence: of the intervals; the tests are at level ``1 - confidence``.
        resample_seeds: with several training seeds, resample them too (seeds, then
            videos); False treats the trained models as fixed.

    Example:
        >>> StatsConfig(seed=3).alpha
        0.05
    """

    seed: int = 0
    n_bootstrap: int = 10_000
    n_permutations: int = 10_000
    confidence: float = 0.95
    resample_seeds: bool = True

    def __post_init__(self) -> None:
        _check_seed(self.seed)
        for name in ("n_bootstrap", "n_permutations"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"StatsConfig.{name} must be a positive integer, got {value!r}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"StatsConfig.confidence must be in (0, 1), got {self.confidence!r}")

    @property
    def alpha(self) -> float:
        return round(1 - self.confidence, 12)


def paired_bootstrap(
    per_video: np.ndarray,
    groups: Sequence[Sequence[int]],
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    n_boot: int = 10_000,
    seed: int = 0,
    resample_seeds: bool = True,
) -> np.ndarray:
    """Bootstrap replicates of a statistic of each group of runs, paired over test videos.

    Args:
        per_video: ``runs x quantities x videos`` floats: what each run (a trained model)
            scored on each test video, e.g. quantity 0 its clean correctness (0 or 1) and
            quantity 1 its mean correctness over the corrupted conditions.
        groups: the runs of each group (indices into ``per_video``), e.g. the training
            seeds of one method; a run may belong to several groups.
        statistic: maps the video means, ``... x runs x quantities``, to one or more
            statistics per run, ``... x runs x stats``; default the means themselves.
        n_boot: replicates.
        seed: keys every draw.
        resample_seeds: draw each group's runs with replacement in every replicate (the
            group's statistic is then the mean over the drawn runs); without it every
            replicate averages all of a group's runs.

    Returns:
        ``n_boot x groups x stats``: in replicate ``b`` the test videos are drawn with
        replacement once, the same draw for every run and group; a group's value is the
        mean over its (drawn) runs of the per-run statistic.

    Example:
        >>> correct = np.array([[[1, 0, 1, 1]], [[1, 1, 1, 1]]], float)  # 2 runs, 4 videos
        >>> reps = paired_bootstrap(correct, [[0], [1]], n_boot=1000, seed=0)
        >>> reps.shape, bool((reps[:, 1] >= reps[:, 0]).all())  # paired: never worse
        ((1000, 2, 1), True)
    """
    per_video = np.asarray(per_video, dtype=np.float64)
    if per_video.ndim != 3 or per_video.shape[2] < 1 or per_video.shape[0] < 1:
        raise ValueError(f"paired_bootstrap: per_video must be runs x quantities x videos with at "
                         f"least one run and one video, got shape {per_video.shape}")
    runs, quantities, videos = per_video.shape
    groups = [np.asarray(g, dtype=np.int64) for g in groups]
    for i, g in enumerate(groups):
        if g.ndim != 1 or g.size == 0 or g.min() < 0 or g.max() >= runs:
            raise ValueError(f"paired_bootstrap: group {i} must list run indices in 0..{runs - 1}, "
                             f"got {g.tolist()}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"paired_bootstrap: n_boot must be a positive integer, got {n_boot!r}")
    statistic = statistic or (lambda means: means)
    video_rng, seed_rng = _streams(seed, 2)
    flat = per_video.reshape(runs * quantities, videos).T  # videos x (runs * quantities)
    block = max(1, _BLOCK_CELLS // videos)
    out = []
    for start in range(0, int(n_boot), block):
        rows = min(block, int(n_boot) - start)
        drawn = video_rng.integers(0, videos, size=(rows, videos))
        counts = np.bincount((drawn + videos * np.arange(rows)[:, None]).ravel(),
                             minlength=rows * videos).reshape(rows, videos)
        means = (counts @ flat / videos).reshape(rows, runs, quantities)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_run = np.asarray(statistic(means), dtype=np.float64)
        if per_run.ndim == 2:
            per_run = per_run[..., None]
        values = []
        for g in groups:
            if resample_seeds:
                picked = g[seed_rng.integers(0, g.size, size=(rows, g.size))]   # rows x size
                values.append(np.take_along_axis(per_run, picked[..., None], axis=1).mean(axis=1))
            else:
                values.append(per_run[:, g].mean(axis=1))
        out.append(np.stack(values, axis=1))
    return np.concatenate(out, axis=0)


def group_statistic(per_video: np.ndarray, groups: Sequence[Sequence[int]],
                    statistic: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """The statistic on the full sample, ``groups x stats``: what :func:`paired_bootstrap`
    replicates (each group's value is the mean of its runs' statistic over all videos)."""
    per_video = np.asarray(per_video, dtype=np.float64)
    statistic = statistic or (lambda means: means)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_run = np.asarray(statistic(per_video.mean(axis=2)), dtype=np.float64)
    if per_run.ndim == 1:
        per_run = per_run[:, None]
    return np.stack([per_run[np.asarray(g, dtype=np.int64)].mean(axis=0) for g in groups])


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The ``confidence`` percentile interval of bootstrap replicates (1-D): the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles. ``(nan, nan)`` when a
    replicate is undefined (``nan``: e.g. a ratio over a resample with a zero denominator).

    Example:
        >>> percentile_interval(np.arange(101.0), 0.5)   # the quartiles
        (25.0, 75.0)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    replicates = np.asarray(replicates, dtype=np.float64)
    if replicates.ndim != 1 or replicates.size == 0:
        raise ValueError(f"percentile_interval: expected a non-empty 1-D array, got shape "
                         f"{replicates.shape}")
    if not np.isfinite(replicates).all():
        return math.nan, math.nan
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def sign_flip_test(differences: np.ndarray, n_permutations: int = 10_000, seed: int = 0,
                   exact_up_to: int = EXACT_UP_TO) -> float:
    """Two-sided p-value of a paired sign-flip permutation test of ``mean(differences) = 0``.

    ``differences`` holds one value per test video (model minus baseline). Under the null
    hypothesis that the two models are exchangeable on each video, each difference keeps or
    flips its sign with probability 1/2; the p-value is the share of sign patterns whose
    ``|sum|`` is at least the observed one. Zero differences flip to themselves and are set
    aside. With at most ``exact_up_to`` non-zero differences every pattern is enumerated
    (the exact p-value, the observed pattern among them); otherwise ``n_permutations``
    random patterns give ``(1 + hits) / (1 + n_permutations)``, a valid p-value that never
    reaches 0. No difference at all gives 1.

    Example:
        >>> sign_flip_test([1, 1, 1, -1])   # 10 of the 16 patterns have |sum| >= 2
        0.625
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1:
        raise ValueError(f"sign_flip_test: expected one difference per video (1-D), got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("sign_flip_test: the differences must be finite numbers")
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    # Sums of the same numbers in another order may differ in the last bits: a pattern as
    # extreme as the observed one must not be missed for that.
    threshold = observed - 1e-9 * max(1.0, float(np.abs(d).sum()))
    if d.size <= exact_up_to:
        patterns = (np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1   # all 2^k
        sums = (1 - 2 * patterns) @ d
        return float(np.count_nonzero(np.abs(sums) >= threshold) / sums.size)
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise ValueError(f"sign_flip_test: n_permutations must be a positive integer, got "
                         f"{n_permutations!r}")
    rng = np.random.default_rng(_check_seed(seed))
    block = max(1, _BLOCK_CELLS // d.size)
    hits = 0
    for start in range(0, int(n_permutations), block):
        rows = min(block, int(n_permutations) - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(rows, d.size))
        hits += int(np.count_nonzero(np.abs(signs @ d) >= threshold))
    return (1 + hits) / (1 + int(n_permutations))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: sorted ascending, the
    ``i``-th smallest (from 0) becomes ``max over j <= i of min(1, (m - j) p_(j))`` for ``m``
    p-values. Rejecting where the adjusted value is below ``alpha`` keeps the chance of any
    false rejection among the ``m`` at most ``alpha``.

    Example:
        >>> holm([0.01, 0.04, 0.03, 0.20])
        [0.04, 0.09, 0.09, 0.2]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"holm: expected a list of p-values, got shape {p.shape}")
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError(f"holm: p-values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return [float(x) for x in out]


def verdict(low: float, high: float, p_adjusted: float, alpha: float = 0.05,
            reference: str = "dense") -> str:
    """``"more robust than <reference>"`` when the interval ``[low, high]`` of the
    difference lies above 0 and the adjusted p-value is below ``alpha``; ``"less robust
    than <reference>"`` when it lies below 0 and the p-value agrees; otherwise
    ``"not resolved at 95%"`` (for ``alpha = 0.05``). Requiring both keeps the verdict from
    contradicting the interval printed next to it.

    Example:
        >>> verdict(0.01, 0.05, 0.003), verdict(-0.02, 0.04, 0.4)
        ('more robust than dense', 'not resolved at 95%')
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    significant = p_adjusted is not None and p_adjusted < alpha
    if significant and low > 0:
        return f"more robust than {reference}"
    if significant and high < 0:
        return f"less robust than {reference}"
    return f"not resolved at {100 * (1 - alpha):g}%"


def _streams(seed: int, n: int) -> list[np.random.Generator]:
    """``n`` independent generators from one seed (``SeedSequence.spawn``)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(_check_seed(seed)).spawn(n)]


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)
