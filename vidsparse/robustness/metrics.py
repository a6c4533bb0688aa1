"""Robustness metrics: pure functions over accuracies, no models or files.

Every function here takes an *accuracy table* for one model::

    {"clean": 0.80,                                   # top-1 on the clean test split
     "corrupted": {"fog": {1: 0.75, 2: 0.70, ...},     # top-1 per corruption and severity
                   "frame_drop": {1: 0.78, ...}}}

Accuracies are fractions in [0, 1]. A quantity that divides by zero (rPC of a model with
zero clean accuracy, an improvement over a baseline at zero) is ``nan``, never an error, so
that one broken checkpoint does not hide the rest of a report.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

Accuracies = Mapping[str, Any]


def accuracy(predictions: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Top-1 accuracy: the fraction of ``predictions`` equal to ``labels``.

    Example:
        >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
        0.75
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 1:
        raise ValueError(f"accuracy: predictions {predictions.shape} and labels {labels.shape} "
                         "must be 1-D and the same length")
    if len(labels) == 0:
        raise ValueError("accuracy: no predictions to score")
    return float(np.mean(predictions == labels))


def corruption_means(acc: Accuracies) -> dict[str, float]:
    """Mean accuracy over the severities of each corruption: ``{name: mean}``."""
    means = {}
    for name, by_severity in acc["corrupted"].items():
        if not by_severity:
            raise ValueError(f"corruption {name!r} has no severities")
        means[name] = float(np.mean([by_severity[s] for s in sorted(by_severity)]))
    return means


def mpc(acc: Accuracies) -> float:
    """Mean performance under corruption (Michaelis et al. 2019, "Benchmarking Robustness
    in Object Detection", eq. 1): the mean over corruptions of the mean over severities.

    Averaging per corruption first keeps each corruption's weight equal even when one was
    run at fewer severities; with the same severities for all it is the plain mean.

    Example:
        >>> mpc({"clean": 0.9, "corrupted": {"fog": {1: 0.8, 2: 0.6}, "freeze": {1: 0.5}}})
        0.6
    """
    means = corruption_means(acc)
    if not means:
        raise ValueError("mPC needs at least one corruption")
    return float(np.mean(list(means.values())))


def rpc(acc: Accuracies) -> float:
    """Relative performance under corruption (Michaelis et al. 2019): mPC / clean accuracy."""
    return _ratio(mpc(acc), acc["clean"])


def summarize(acc: Accuracies) -> dict[str, Any]:
    """The headline numbers of one model: clean, mPC, rPC and the per-corruption means.

    Example:
        >>> summarize({"clean": 0.5, "corrupted": {"fog": {1: 0.5, 2: 0.25}}})["rPC"]
        0.75
    """
    return {"clean": float(acc["clean"]), "mPC": mpc(acc), "rPC": rpc(acc),
            "per_corruption": corruption_means(acc)}


def relative_improvement(acc: Accuracies, baseline: Accuracies) -> dict[str, Any]:
    """How much better ``acc`` is than ``baseline`` (usually the dense model), as a fraction
    of the baseline: ``(model - baseline) / baseline``, for clean accuracy, mPC and each
    corruption's mean accuracy (the form of Wu et al. 2025, Table 1's relative gains).

    Only corruptions that both tables hold are compared.

    Example:
        >>> dense = {"clean": 0.5, "corrupted": {"fog": {1: 0.5}}}
        >>> rigl = {"clean": 0.5, "corrupted": {"fog": {1: 0.625}}}
        >>> relative_improvement(rigl, dense)["per_corruption"]
        {'fog': 0.25}
    """
    mine, theirs = corruption_means(acc), corruption_means(baseline)
    shared = [name for name in mine if name in theirs]
    if not shared:
        raise ValueError("relative_improvement: the two tables share no corruption")
    restricted = {name: acc["corrupted"][name] for name in shared}
    restricted_base = {name: baseline["corrupted"][name] for name in shared}
    return {
        "clean": _gain(acc["clean"], baseline["clean"]),
        "mPC": _gain(mpc({"corrupted": restricted}), mpc({"corrupted": restricted_base})),
        "per_corruption": {name: _gain(mine[name], theirs[name]) for name in shared},
    }


def _gain(value: float, base: float) -> float:
    return _ratio(value - base, base)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan
