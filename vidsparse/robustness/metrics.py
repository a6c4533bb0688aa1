"""Robustness metrics: pure functions over accuracies, no models or files.

Every function here takes an *accuracy table* for one model::

    {"clean": 0.80,                                   # top-1 on the clean test split
     "corrupted": {"fog": {1: 0.75, 2: 0.70, ...},     # top-1 per corruption and severity
                   "frame_drop": {1: 0.78, ...}}}

Accuracies are fractions in [0, 1]. A quantity that divides by zero (rPC of a model with
zero clean accuracy, an improvement over a baseline at zero) is ``nan``, never an error, so
that one broken checkpoint does not hide the rest of a report.

Every table a public function is given is checked first: ``clean`` and every cell must be a
real number in [0, 1] (a value above 1 is refused with a hint to divide percentages by
100), severities positive ints, and the error names the cell (``corrupted['fog'][3] =
87.5``). ``nan`` is not an accuracy and is refused too: a cell that was not measured is left
out of the table, never filled in.

Functions that compare a model with a baseline (CE, mCE, the comparison with dense) use the
(corruption, severity) cells both tables hold. Cells only one table holds are never dropped
silently: a function that returns a dict names them under ``"left_out"``
(``{"missing_in_baseline": {name: [severities]}, "missing_in_model": {...}}``, see
:func:`describe_left_out`); one that returns a number or a ``{corruption: number}`` map
(:func:`mce`, :func:`corruption_errors`, ...) emits a :class:`CellsLeftOutWarning` naming
them.

What is here, each with its paper (``E = 1 - accuracy`` is the top-1 error; ``f`` the model,
``base`` the baseline model, ``c`` a corruption, ``s`` a severity):

* clean accuracy, the accuracy per corruption and severity, and per corruption
  (``corruption_means``: the mean over severities);
* mPC = mean_c mean_s A_{s,c} and rPC = mPC / A_clean (Michaelis et al. 2019);
* CE_c = sum_s E^f_{s,c} / sum_s E^base_{s,c}; mCE = mean_c CE_c; relative
  CE_c = sum_s (E^f_{s,c} - E^f_clean) / sum_s (E^base_{s,c} - E^base_clean); relative
  mCE = mean_c relative CE_c (Hendrycks & Dietterich 2019). 1.0 is "as robust as the
  baseline", lower is better;
* absolute robustness gamma^a = 1 - (A_clean - A_corrupt) and relative robustness
  gamma^r = 1 - (A_clean - A_corrupt) / A_clean (Schiappa et al. 2023), per corruption
  (A_corrupt the mean over severities) and overall (the mean over corruptions). 1.0 is
  "no accuracy lost", higher is better; overall gamma^r equals rPC;
* the comparison of Wu et al. 2025 against the dense model: relative improvement,
  win/loss over (corruption, severity) scenarios, corruptions ordered from high- to
  low-frequency (``FREQUENCY_BANDS``), mean and std over training seeds.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

Accuracies = Mapping[str, Any]
LeftOut = dict[str, dict[str, list[int]]]


class CellsLeftOutWarning(UserWarning):
    """A model was compared with a baseline over fewer (corruption, severity) cells than the
    two tables hold: the cells only one of them has were left out of the number."""


def _check_table(acc: Any, role: str = "accuracy table") -> None:
    """Raise ``ValueError`` unless ``acc`` is an accuracy table: ``clean`` and every cell a
    measured accuracy (a real number in [0, 1], not ``nan``), every corruption named by a
    non-empty string with at least one severity, every severity a positive int. ``role``
    names the table in the message (``"baseline table"``)."""
    if not isinstance(acc, Mapping) or "clean" not in acc or "corrupted" not in acc:
        shown = repr(acc)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValueError(f"{role} must be a mapping with keys 'clean' and 'corrupted', e.g. "
                         f"{{'clean': 0.8, 'corrupted': {{'fog': {{1: 0.7}}}}}}; got {shown}")
    corrupted = acc["corrupted"]
    if not isinstance(corrupted, Mapping):
        raise ValueError(f"{role}: corrupted must map corruption names to {{severity: accuracy}}, "
                         f"got {type(corrupted).__name__}")
    values = [(f"{role}: clean", acc["clean"])]
    for name, by_severity in corrupted.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{role}: corrupted key {name!r} is not a corruption name")
        where = f"{role}: corrupted[{name!r}]"
        if not isinstance(by_severity, Mapping):
            raise ValueError(f"{where} must map severities to accuracies, got "
                             f"{type(by_severity).__name__}")
        if not by_severity:
            raise ValueError(f"{where}: corruption {name!r} has no severities")
        for severity, value in by_severity.items():
            # A string severity ("3", as results.json stores them) would never match the
            # other table's int 3, and the cell would fall out of every comparison.
            if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or severity < 1:
                raise ValueError(f"{where}: severity {severity!r} is not a positive int "
                                 "(severities are 1, 2, ...; convert ones read from JSON with int())")
            values.append((f"{where}[{int(severity)}]", value))
    numeric = [v for _, v in values if _is_number(v)]
    # A whole table in percent (clean 80.0, cells up to 100) gets a hint about the table;
    # a lone value above 1 among fractions may be a slip of any kind.
    percent = (_is_number(acc["clean"]) and 1.0 < acc["clean"] <= 100.0
               and all(0.0 <= v <= 100.0 for v in numeric))
    for path, value in values:
        _check_accuracy(value, path, percent)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_accuracy(value: Any, path: str, percent_table: bool) -> None:
    if not _is_number(value):
        raise ValueError(f"{path} = {value!r} is not a number (accuracies are fractions in [0, 1])")
    if math.isnan(value):
        raise ValueError(f"{path} is nan: a table holds measured accuracies only; leave a cell "
                         "that was not measured out of the table")
    if not 0.0 <= value <= 1.0:
        shown = value if type(value) in (int, float) else float(value)  # not np.float64(...)
        if percent_table:
            hint = (f"; this table looks like percentages: divide every value by 100 "
                    f"({float(value) / 100:g} here)")
        elif 1.0 < value <= 100.0:
            hint = f"; if it is a percentage, divide it by 100 ({float(value) / 100:g})"
        else:
            hint = ""
        raise ValueError(f"{path} = {shown!r} is outside [0, 1]: accuracies are fractions{hint}")


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
    _check_table(acc)
    return _corruption_means(acc["corrupted"])


def _corruption_means(corrupted: Mapping[str, Mapping[int, float]]) -> dict[str, float]:
    return {name: float(np.mean([float(by_severity[s]) for s in sorted(by_severity)]))
            for name, by_severity in corrupted.items()}


def mpc(acc: Accuracies) -> float:
    """Mean performance under corruption (Michaelis et al. 2019, "Benchmarking Robustness
    in Object Detection", eq. 1): the mean over corruptions of the mean over severities.

    Averaging per corruption first keeps each corruption's weight equal even when one was
    run at fewer severities; with the same severities for all it is the plain mean.

    Example:
        >>> mpc({"clean": 0.9, "corrupted": {"fog": {1: 0.8, 2: 0.6}, "freeze": {1: 0.5}}})
        0.6
    """
    _check_table(acc)
    return _mpc(acc["corrupted"])


def _mpc(corrupted: Mapping[str, Mapping[int, float]]) -> float:
    means = _corruption_means(corrupted)
    if not means:
        raise ValueError("mPC needs at least one corruption")
    return float(np.mean(list(means.values())))


def rpc(acc: Accuracies) -> float:
    """Relative performance under corruption (Michaelis et al. 2019): mPC / clean accuracy."""
    _check_table(acc)
    return _ratio(_mpc(acc["corrupted"]), acc["clean"])


def mpc_weights(cells: Iterable[tuple[str, int]]) -> dict[tuple[str, int], float]:
    """The weight of each (corruption, severity) cell in :func:`mpc`: ``1 / (corruptions x
    severities of its corruption)``, so that mPC is ``sum(weight * accuracy)`` over the
    cells. Because an accuracy is a mean over videos, mPC is then the mean over videos of
    each video's weighted correctness: the per-video share the statistics resample.

    Example:
        >>> mpc_weights([("fog", 1), ("fog", 2), ("freeze", 1)])
        {('fog', 1): 0.25, ('fog', 2): 0.25, ('freeze', 1): 0.5}
    """
    cells = list(dict.fromkeys((str(c), int(s)) for c, s in cells))
    if not cells:
        raise ValueError("mPC needs at least one corruption")
    per_corruption: dict[str, int] = {}
    for name, _ in cells:
        per_corruption[name] = per_corruption.get(name, 0) + 1
    return {(name, s): 1.0 / (len(per_corruption) * per_corruption[name]) for name, s in cells}


def summarize(acc: Accuracies, baseline: Accuracies | None = None) -> dict[str, Any]:
    """The headline numbers of one model: clean, mPC, rPC, gamma^a, gamma^r and the
    per-corruption means; given a ``baseline`` table also mCE, relative mCE, the
    per-corruption CE and relative CE, and ``left_out``: the cells only one of the two tables
    holds, which CE leaves out (see :func:`describe_left_out`). All four and ``left_out``
    are ``None`` without a baseline.

    Example:
        >>> summarize({"clean": 0.5, "corrupted": {"fog": {1: 0.5, 2: 0.25}}})["rPC"]
        0.75
    """
    _check_table(acc, "accuracy table" if baseline is None else "model table")
    if baseline is not None:
        _check_table(baseline, "baseline table")
    return _summarize(acc, baseline)


def _summarize(acc: Accuracies, baseline: Accuracies | None) -> dict[str, Any]:
    absolute, relative = _absolute(acc), _relative(acc)
    out = {"clean": float(acc["clean"]), "mPC": _mpc(acc["corrupted"]),
           "rPC": _ratio(_mpc(acc["corrupted"]), acc["clean"]),
           "gamma_a": absolute["overall"], "gamma_r": relative["overall"],
           "per_corruption": _corruption_means(acc["corrupted"]),
           "gamma_a_per_corruption": absolute["per_corruption"],
           "gamma_r_per_corruption": relative["per_corruption"],
           "mCE": None, "relative_mCE": None, "CE": None, "relative_CE": None, "left_out": None}
    if baseline is not None:
        cells, left_out = _shared(acc, baseline)
        ce = _corruption_errors(acc, baseline, cells, relative=False)
        rce = _corruption_errors(acc, baseline, cells, relative=True)
        out.update(mCE=_mean_defined(ce.values()), relative_mCE=_mean_defined(rce.values()),
                   CE=ce, relative_CE=rce, left_out=left_out)
    return out


# --- cells a model and its baseline share ----------------------------------------------

def describe_left_out(left_out: Mapping[str, Mapping[str, Sequence[int]]] | None,
                      model: str = "the model", baseline: str = "the baseline") -> str:
    """The cells of a ``left_out`` dict in words, ``""`` when there are none.

    Example:
        >>> describe_left_out({"missing_in_baseline": {"snow": [1, 2]}, "missing_in_model": {"fog": [3]}})
        'snow (sev 1, 2) not in the baseline; fog (sev 3) not in the model'
    """
    parts = []
    for key, where in (("missing_in_baseline", baseline), ("missing_in_model", model)):
        cells = (left_out or {}).get(key) or {}
        if cells:
            parts.append(f"{_cells_text(cells)} not in {where}")
    return "; ".join(parts)


def _cells_text(cells: Mapping[str, Iterable[int]]) -> str:
    return ", ".join(f"{name} (sev {', '.join(str(s) for s in sorted(sevs))})"
                     for name, sevs in cells.items())


def _shared(acc: Accuracies, baseline: Accuracies) -> tuple[list[tuple[str, list[int]]], LeftOut]:
    """``[(corruption, shared severities)]`` for each corruption both (checked) tables ran
    at one severity or more, and the ``left_out`` dict of the cells only one of them holds;
    raise if they share no cell."""
    mine, theirs = acc["corrupted"], baseline["corrupted"]
    cells = []
    left_out: LeftOut = {"missing_in_baseline": {}, "missing_in_model": {}}
    for name, by_severity in mine.items():
        other = theirs.get(name, {})
        shared = sorted(s for s in by_severity if s in other)
        if shared:
            cells.append((name, shared))
        only = sorted(int(s) for s in by_severity if s not in other)
        if only:
            left_out["missing_in_baseline"][name] = only
    for name, by_severity in theirs.items():
        only = sorted(int(s) for s in by_severity if s not in mine.get(name, {}))
        if only:
            left_out["missing_in_model"][name] = only
    if not cells:
        raise ValueError(f"the model and the baseline share no (corruption, severity): the model "
                         f"has {_cells_text(mine) or 'none'}; the baseline has "
                         f"{_cells_text(theirs) or 'none'}")
    return cells, left_out


def _checked_pair(acc: Accuracies, baseline: Accuracies,
                  warn_as: str | None = None) -> tuple[list[tuple[str, list[int]]], LeftOut]:
    """Check both tables, then :func:`_shared`; with ``warn_as`` (the public function's
    name) warn about left-out cells, for functions whose result has no room to name them."""
    _check_table(acc, "model table")
    _check_table(baseline, "baseline table")
    cells, left_out = _shared(acc, baseline)
    text = describe_left_out(left_out)
    if warn_as and text:
        warnings.warn(f"{warn_as}: computed over the cells both tables hold; left out: {text}",
                      CellsLeftOutWarning, stacklevel=3)
    return cells, left_out


def _restrict(acc: Accuracies, cells: list[tuple[str, list[int]]]) -> dict[str, dict[int, float]]:
    return {name: {s: acc["corrupted"][name][s] for s in severities} for name, severities in cells}


# --- corruption error (Hendrycks & Dietterich 2019) ------------------------------------

def corruption_errors(acc: Accuracies, baseline: Accuracies) -> dict[str, float]:
    """Corruption error per corruption, normalised by a baseline model (Hendrycks &
    Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions and
    Perturbations", ICLR)::

        CE_c = sum_s E^f_{s,c} / sum_s E^base_{s,c},    E = 1 - accuracy

    over the corruptions and severities both tables hold; a cell only one of them holds is
    left out with a :class:`CellsLeftOutWarning` naming it. 1.0: as many errors as the
    baseline; below 1: fewer. Normalising per corruption keeps a corruption that is hard for
    every model from dominating the mean (:func:`mce`). ``nan`` where the baseline makes no
    error at all.

    Example:
        >>> dense = {"clean": 0.9, "corrupted": {"fog": {1: 0.8, 2: 0.6}}}   # E: 0.2 + 0.4
        >>> rigl = {"clean": 0.9, "corrupted": {"fog": {1: 0.9, 2: 0.7}}}    # E: 0.1 + 0.3
        >>> round(corruption_errors(rigl, dense)["fog"], 6)
        0.666667
    """
    cells, _ = _checked_pair(acc, baseline, "corruption_errors")
    return _corruption_errors(acc, baseline, cells, relative=False)


def mce(acc: Accuracies, baseline: Accuracies) -> float:
    """Mean corruption error: the mean over corruptions of :func:`corruption_errors`.

    A corruption on which the baseline made no error has no CE (``nan``) and is left out
    of the mean; ``nan`` only when no corruption has one. A (corruption, severity) only one
    of the two tables holds is left out too, and a :class:`CellsLeftOutWarning` names it
    (:func:`summarize` returns the same number with the left-out cells in its result)."""
    cells, _ = _checked_pair(acc, baseline, "mce")
    return _mean_defined(_corruption_errors(acc, baseline, cells, relative=False).values())


def relative_corruption_errors(acc: Accuracies, baseline: Accuracies) -> dict[str, float]:
    """Relative corruption error per corruption (Hendrycks & Dietterich 2019)::

        relative CE_c = sum_s (E^f_{s,c} - E^f_clean) / sum_s (E^base_{s,c} - E^base_clean)

    How much *more* error the corruption causes than the clean data does, against the
    baseline's increase: a model can have a low CE only because it is more accurate
    everywhere; a low relative CE means it also degrades less. ``nan`` where the baseline
    loses nothing under the corruption. Left-out cells warn as in :func:`corruption_errors`.

    Example:
        >>> dense = {"clean": 0.9, "corrupted": {"fog": {1: 0.8, 2: 0.6}}}   # +0.1, +0.3
        >>> rigl = {"clean": 0.9, "corrupted": {"fog": {1: 0.9, 2: 0.7}}}    # +0.0, +0.2
        >>> round(relative_corruption_errors(rigl, dense)["fog"], 6)
        0.5
    """
    cells, _ = _checked_pair(acc, baseline, "relative_corruption_errors")
    return _corruption_errors(acc, baseline, cells, relative=True)


def relative_mce(acc: Accuracies, baseline: Accuracies) -> float:
    """Relative mCE: the mean over corruptions of :func:`relative_corruption_errors`, leaving
    out those where the baseline loses nothing (their relative CE is ``nan``). Left-out
    cells warn as in :func:`mce`."""
    cells, _ = _checked_pair(acc, baseline, "relative_mce")
    return _mean_defined(_corruption_errors(acc, baseline, cells, relative=True).values())


def _corruption_errors(acc: Accuracies, baseline: Accuracies, cells: list[tuple[str, list[int]]],
                       relative: bool) -> dict[str, float]:
    """CE (or relative CE) per corruption over ``cells`` (from :func:`_shared`)."""
    mine, theirs = acc["corrupted"], baseline["corrupted"]
    # relative CE counts only the error a corruption adds to the clean error
    shift = 1.0 - float(acc["clean"]) if relative else 0.0
    base_shift = 1.0 - float(baseline["clean"]) if relative else 0.0
    return {name: _ratio(sum((1.0 - mine[name][s]) - shift for s in severities),
                         sum((1.0 - theirs[name][s]) - base_shift for s in severities))
            for name, severities in cells}


def _mean_defined(values) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return _mean(defined) if defined else math.nan


# --- robustness scores (Schiappa et al. 2023) ------------------------------------------

def absolute_robustness(acc: Accuracies) -> dict[str, Any]:
    """Absolute robustness (Schiappa et al. 2023, "A Large-scale Robustness Analysis of
    Video Action Recognition Models", CVPR; their accuracies are in %, hence their
    ``/ 100``)::

        gamma^a_c = 1 - (A_clean - A_c),    A_c the mean accuracy over c's severities

    ``{"per_corruption": {c: gamma^a_c}, "overall": mean_c gamma^a_c}``. 1.0: the corruption
    costs nothing; higher is better. Because it is linear in A_c, averaging over severities
    first or last gives the same number, and ``overall = 1 - (A_clean - mPC)``.

    Example:
        >>> round(absolute_robustness({"clean": 0.8, "corrupted": {"fog": {1: 0.7, 2: 0.5}}})["overall"], 6)
        0.8
    """
    _check_table(acc)
    return _absolute(acc)


def _absolute(acc: Accuracies) -> dict[str, Any]:
    clean = float(acc["clean"])
    per = {name: 1.0 - (clean - mean) for name, mean in _corruption_means(acc["corrupted"]).items()}
    return {"per_corruption": per, "overall": _mean(per.values())}


def relative_robustness(acc: Accuracies) -> dict[str, Any]:
    """Relative robustness (Schiappa et al. 2023)::

        gamma^r_c = 1 - (A_clean - A_c) / A_clean

    the drop as a share of the clean accuracy, so that a model is not rewarded for having
    little accuracy to lose. Same shape as :func:`absolute_robustness`; ``overall`` equals
    rPC. ``nan`` for a model with zero clean accuracy.

    Example:
        >>> relative_robustness({"clean": 0.8, "corrupted": {"fog": {1: 0.7, 2: 0.5}}})["overall"]
        0.75
    """
    _check_table(acc)
    return _relative(acc)


def _relative(acc: Accuracies) -> dict[str, Any]:
    clean = float(acc["clean"])
    per = {name: 1.0 - _ratio(clean - mean, clean)
           for name, mean in _corruption_means(acc["corrupted"]).items()}
    return {"per_corruption": per, "overall": _mean(per.values())}


def relative_improvement(acc: Accuracies, baseline: Accuracies) -> dict[str, Any]:
    """How much better ``acc`` is than ``baseline`` (usually the dense model), as a fraction
    of the baseline: ``(model - baseline) / baseline``, for clean accuracy, mPC and each
    corruption's mean accuracy (the form of Wu et al. 2025, Table 1's relative gains).

    Both tables are compared over the (corruption, severity) cells they share, so that a
    corruption's means are over the same severities; ``"left_out"`` names the cells only
    one of them holds (``{"missing_in_baseline": {name: [severities]},
    "missing_in_model": {...}}``, empty when they match).

    Example:
        >>> dense = {"clean": 0.5, "corrupted": {"fog": {1: 0.5}}}
        >>> rigl = {"clean": 0.5, "corrupted": {"fog": {1: 0.625}}}
        >>> relative_improvement(rigl, dense)["per_corruption"]
        {'fog': 0.25}
    """
    cells, left_out = _checked_pair(acc, baseline)
    return _improvement(acc, baseline, cells, left_out)


def _improvement(acc: Accuracies, baseline: Accuracies, cells: list[tuple[str, list[int]]],
                 left_out: LeftOut) -> dict[str, Any]:
    mine, theirs = _restrict(acc, cells), _restrict(baseline, cells)
    mine_means, their_means = _corruption_means(mine), _corruption_means(theirs)
    return {
        "clean": _gain(acc["clean"], baseline["clean"]),
        "mPC": _gain(_mpc(mine), _mpc(theirs)),
        "per_corruption": {name: _gain(mine_means[name], their_means[name]) for name in mine},
        "left_out": left_out,
    }


def win_loss(acc: Accuracies, baseline: Accuracies, tol: float = 1e-9) -> dict[str, Any]:
    """Count the scenarios, (corruption, severity) pairs both tables hold, where ``acc`` is
    more accurate than ``baseline`` (win), less (loss) or within ``tol`` (tie), the tally
    Wu et al. 2025 ("Dynamic Sparse Training versus Dense Training: The Unexpected Winner in
    Image Corruption Robustness", ICLR) draw for DST against dense training.

    Returns ``{"win": n, "loss": n, "tie": n, "scenarios": [{"corruption", "severity",
    "accuracy", "baseline", "difference", "outcome"}, ...], "left_out": cells}``, with
    ``left_out`` the cells only one table holds (see :func:`relative_improvement`).

    Example:
        >>> dense = {"clean": 0.5, "corrupted": {"fog": {1: 0.5, 2: 0.4}, "freeze": {1: 0.3}}}
        >>> rigl = {"clean": 0.5, "corrupted": {"fog": {1: 0.6, 2: 0.4}, "freeze": {1: 0.2}}}
        >>> {k: v for k, v in win_loss(rigl, dense).items() if k not in ("scenarios", "left_out")}
        {'win': 1, 'loss': 1, 'tie': 1}
    """
    cells, left_out = _checked_pair(acc, baseline)
    return _win_loss(acc, baseline, cells, left_out, tol)


def _win_loss(acc: Accuracies, baseline: Accuracies, cells: list[tuple[str, list[int]]],
              left_out: LeftOut, tol: float) -> dict[str, Any]:
    counts = {"win": 0, "loss": 0, "tie": 0}
    scenarios = []
    for name, severities in cells:
        mine, theirs = acc["corrupted"][name], baseline["corrupted"][name]
        for s in severities:
            diff = float(mine[s]) - float(theirs[s])
            outcome = "tie" if abs(diff) <= tol else ("win" if diff > 0 else "loss")
            counts[outcome] += 1
            scenarios.append({"corruption": name, "severity": s, "accuracy": float(mine[s]),
                              "baseline": float(theirs[s]), "difference": diff, "outcome": outcome})
    return {**counts, "scenarios": scenarios, "left_out": left_out}


def compare(acc: Accuracies, baseline: Accuracies, tol: float = 1e-9) -> dict[str, Any]:
    """The comparison of one model (or a seed mean, :func:`mean_table`) against the dense
    model, as Wu et al. 2025 draw it: :func:`relative_improvement` (clean, mPC, each
    corruption), the mPC difference in accuracy (``mPC_difference``, model - baseline) and
    :func:`win_loss`, all over the cells both tables hold; ``left_out`` names the others.

    Example:
        >>> dense = {"clean": 0.5, "corrupted": {"fog": {1: 0.5}}}
        >>> rigl = {"clean": 0.5, "corrupted": {"fog": {1: 0.625}}}
        >>> c = compare(rigl, dense); (c["mPC"], c["mPC_difference"], c["win_loss"]["win"])
        (0.25, 0.125, 1)
    """
    cells, left_out = _checked_pair(acc, baseline)
    gain = _improvement(acc, baseline, cells, left_out)
    difference = _mpc(_restrict(acc, cells)) - _mpc(_restrict(baseline, cells))
    return {**gain, "mPC_difference": difference,
            "win_loss": _win_loss(acc, baseline, cells, left_out, tol)}


# --- several training seeds ------------------------------------------------------------

HEADLINE = ("clean", "mPC", "rPC", "mCE", "relative_mCE", "gamma_a", "gamma_r")


def mean_std(values: Iterable[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``, the spread of a seed's result about
    the mean); the std is ``nan`` for a single value, and a ``None`` or ``nan`` among the
    values makes both ``nan``.

    Example:
        >>> [round(x, 4) for x in mean_std([0.5, 0.7])]
        [0.6, 0.1414]
    """
    arr = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
    if arr.size == 0:
        raise ValueError("mean_std: no values")
    std = float(np.std(arr, ddof=1)) if arr.size > 1 else math.nan
    return float(np.mean(arr)), std


def mean_table(tables: Sequence[Accuracies]) -> dict[str, Any]:
    """The cell-by-cell mean of several accuracy tables (e.g. the seeds of one method), over
    the (corruption, severity) cells that every table holds."""
    return _cellwise(tables, lambda vals: mean_std(vals)[0])


def std_table(tables: Sequence[Accuracies]) -> dict[str, Any]:
    """The cell-by-cell sample standard deviation (see :func:`mean_std`) of several tables."""
    return _cellwise(tables, lambda vals: mean_std(vals)[1])


def summarize_seeds(tables: Sequence[Accuracies], baseline: Accuracies | None = None) -> dict[str, Any]:
    """Mean and std over runs (seeds) of each ``HEADLINE`` number of :func:`summarize`:
    ``{"n": runs, "mean": {name: value}, "std": {name: value}, "left_out": cells}``. The
    numbers are computed per run, then averaged (not computed from the mean table); mCE
    needs a ``baseline``. ``left_out`` is the union over runs of :func:`summarize`'s (the
    cells CE left out), ``None`` without a baseline.

    Example:
        >>> runs = [{"clean": 0.8, "corrupted": {"fog": {1: 0.6}}},
        ...         {"clean": 0.6, "corrupted": {"fog": {1: 0.6}}}]
        >>> s = summarize_seeds(runs); (s["n"], s["mean"]["clean"], s["mean"]["mPC"])
        (2, 0.7, 0.6)
    """
    if not tables:
        raise ValueError("summarize_seeds: no tables")
    for i, table in enumerate(tables):
        _check_table(table, f"tables[{i}]")
    if baseline is not None:
        _check_table(baseline, "baseline table")
    per_run = [_summarize(t, baseline) for t in tables]
    out: dict[str, Any] = {"n": len(tables), "mean": {}, "std": {}, "left_out": None}
    for key in HEADLINE:
        values = [run[key] for run in per_run]
        if all(v is None for v in values):
            out["mean"][key] = out["std"][key] = None
        else:
            out["mean"][key], out["std"][key] = mean_std(values)
    if baseline is not None:
        union: dict[str, dict[str, set[int]]] = {"missing_in_baseline": {}, "missing_in_model": {}}
        for run in per_run:
            for side, cells in run["left_out"].items():
                for name, severities in cells.items():
                    union[side].setdefault(name, set()).update(severities)
        out["left_out"] = {side: {name: sorted(sev) for name, sev in cells.items()}
                           for side, cells in union.items()}
    return out


def _cellwise(tables: Sequence[Accuracies], reduce) -> dict[str, Any]:
    if not tables:
        raise ValueError("no tables to combine")
    for i, table in enumerate(tables):
        _check_table(table, f"tables[{i}]")
    names = [n for n in tables[0]["corrupted"] if all(n in t["corrupted"] for t in tables[1:])]
    corrupted = {}
    for name in names:
        severities = [s for s in tables[0]["corrupted"][name]
                      if all(s in t["corrupted"][name] for t in tables[1:])]
        if severities:
            corrupted[name] = {s: reduce([t["corrupted"][name][s] for t in tables]) for s in severities}
    return {"clean": reduce([t["clean"] for t in tables]), "corrupted": corrupted}


# --- corruption taxonomy ---------------------------------------------------------------

# Corruptions from the most to the least high-frequency, to order the DST-vs-dense
# comparison. Wu et al. 2025 find DST biases a network toward low-frequency features, so its
# gain over dense training should shrink from the top of this list to the bottom.
#
# The rank is where a corruption's perturbation (corrupted - clean frame) puts its energy
# in the 2-D Fourier spectrum, the measure of Yin et al. 2019 ("A Fourier Perspective on
# Model Robustness in Computer Vision", NeurIPS). They find noise and blur concentrated at
# high frequencies and fog and contrast at low ones (Gaussian augmentation and adversarial
# training help on the first and hurt on the second). From there:
# - noise is white (equal energy at every frequency) while a natural image's spectrum falls
#   as 1/f, so against the image it is almost all high-frequency damage: first;
# - pixel-scale artefacts next: glass blur's local pixel shuffle, pixelate's and JPEG's
#   block edges and quantised high DCT coefficients, spatter's small drops, elastic
#   warping of fine detail;
# - lossy video codecs quantise the high transform coefficients as JPEG does, but over
#   larger blocks and behind a deblocking filter; bit errors and packet loss smear whole
#   macroblocks (mid frequencies);
# - blur removes high frequencies: its perturbation is the lost detail, high-frequency but
#   bounded by the image's own (small) high-frequency energy, hence below added noise;
# - weather overlays mix fine structure (flakes, streaks, ice texture) with broad brightening;
# - fog, contrast, brightness and saturation change large areas at once: energy near DC;
# - temporal corruptions drop, repeat, reorder or mix whole frames and leave each frame's
#   spatial spectrum as it was: outside the ranking, last.
# Within a band the order carries no meaning. A corruption not listed sorts after all of
# these (``frequency_order``); tests check that every registered corruption is listed.
FREQUENCY_BANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("noise", ("impulse_noise", "shot_noise", "gaussian_noise", "speckle_noise")),
    ("pixel-scale digital", ("glass_blur", "pixelate", "jpeg_compression", "spatter",
                             "elastic_transform")),
    ("codec", ("h264_crf", "h264_abr", "h265_crf", "h265_abr", "bit_error", "packet_loss")),
    ("blur", ("defocus_blur", "gaussian_blur", "motion_blur", "zoom_blur")),
    ("weather", ("snow", "rain", "frost")),
    ("low-frequency", ("fog", "contrast", "brightness", "saturate")),
    ("temporal", ("temporal_motion_blur", "box_jumble", "jumble", "frame_drop", "freeze",
                  "frame_rate", "sampling", "reverse_sampling")),
)
FREQUENCY_ORDER: tuple[str, ...] = tuple(n for _, names in FREQUENCY_BANDS for n in names)
_BAND = {n: band for band, names in FREQUENCY_BANDS for n in names}


def frequency_order(names: Iterable[str]) -> list[str]:
    """``names`` sorted from the most to the least high-frequency corruption
    (``FREQUENCY_BANDS``); names not listed there follow, alphabetically.

    Example:
        >>> frequency_order(["fog", "frame_drop", "gaussian_noise", "motion_blur"])
        ['gaussian_noise', 'motion_blur', 'fog', 'frame_drop']
    """
    rank = {n: i for i, n in enumerate(FREQUENCY_ORDER)}
    return sorted(dict.fromkeys(names), key=lambda n: (rank.get(n, len(rank)), n))


def frequency_band(name: str) -> str | None:
    """The ``FREQUENCY_BANDS`` band of a corruption, ``None`` if it is not ranked."""
    return _BAND.get(name)


# The families of the accuracy-against-severity plot. Spatial corruptions follow ImageNet-C's
# four groups (Hendrycks & Dietterich 2019, Fig. 1), its four extra corruptions (speckle
# noise, Gaussian blur, spatter, saturate) and rain put with their kin; temporal and codec
# corruptions are a family each (their registry kind).
SPATIAL_FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "weather": ("snow", "frost", "fog", "brightness", "spatter", "rain"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"),
}
FAMILIES = ("noise", "blur", "weather", "digital", "spatial (other)", "temporal", "codec")
_FAMILY = {n: family for family, names in SPATIAL_FAMILIES.items() for n in names}


def corruption_family(name: str, kind: str | None) -> str:
    """One of ``FAMILIES``: the ImageNet-C group of a spatial corruption, else its kind.

    Example:
        >>> corruption_family("fog", "spatial"), corruption_family("freeze", "temporal")
        ('weather', 'temporal')
    """
    if kind in ("temporal", "codec"):
        return kind
    return _FAMILY.get(name, "spatial (other)")


def _mean(values: Iterable[float]) -> float:
    values = [float(v) for v in values]
    return float(np.mean(values)) if values else math.nan


def _gain(value: float, base: float) -> float:
    return _ratio(value - base, base)


# Accuracies are counts over at most millions of videos: a sum of their differences below this
# is zero that float rounding left behind (1 - a - (1 - c) for a == c is not always exactly 0).
ZERO_SUM = 1e-9


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if abs(den) > ZERO_SUM else math.nan
