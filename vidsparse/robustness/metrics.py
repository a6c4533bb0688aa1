"""Robustness metrics: pure functions over accuracies, no models or files.

Every function here takes an *accuracy table* for one model::

    {"clean": 0.80,                                   # top-1 on the clean test split
     "corrupted": {"fog": {1: 0.75, 2: 0.70, ...},     # top-1 per corruption and severity
                   "frame_drop": {1: 0.78, ...}}}

Accuracies are fractions in [0, 1]. A quantity that divides by zero (rPC of a model with
zero clean accuracy, an improvement over a baseline at zero) is ``nan``, never an error, so
that one broken checkpoint does not hide the rest of a report.

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
from typing import Any, Iterable, Mapping, Sequence

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


def summarize(acc: Accuracies, baseline: Accuracies | None = None) -> dict[str, Any]:
    """The headline numbers of one model: clean, mPC, rPC, gamma^a, gamma^r and the
    per-corruption means; given a ``baseline`` table also mCE, relative mCE and the
    per-corruption CE and relative CE (``None`` without one).

    Example:
        >>> summarize({"clean": 0.5, "corrupted": {"fog": {1: 0.5, 2: 0.25}}})["rPC"]
        0.75
    """
    absolute, relative = absolute_robustness(acc), relative_robustness(acc)
    out = {"clean": float(acc["clean"]), "mPC": mpc(acc), "rPC": rpc(acc),
           "gamma_a": absolute["overall"], "gamma_r": relative["overall"],
           "per_corruption": corruption_means(acc),
           "gamma_a_per_corruption": absolute["per_corruption"],
           "gamma_r_per_corruption": relative["per_corruption"],
           "mCE": None, "relative_mCE": None, "CE": None, "relative_CE": None}
    if baseline is not None:
        ce, rce = corruption_errors(acc, baseline), relative_corruption_errors(acc, baseline)
        out.update(mCE=_mean_defined(ce.values()), relative_mCE=_mean_defined(rce.values()), CE=ce, relative_CE=rce)
    return out


# --- corruption error (Hendrycks & Dietterich 2019) ------------------------------------

def corruption_errors(acc: Accuracies, baseline: Accuracies) -> dict[str, float]:
    """Corruption error per corruption, normalised by a baseline model (Hendrycks &
    Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions and
    Perturbations", ICLR)::

        CE_c = sum_s E^f_{s,c} / sum_s E^base_{s,c},    E = 1 - accuracy

    over the corruptions and severities both tables hold. 1.0: as many errors as the
    baseline; below 1: fewer. Normalising per corruption keeps a corruption that is hard for
    every model from dominating the mean (:func:`mce`). ``nan`` where the baseline makes no
    error at all.

    Example:
        >>> dense = {"clean": 0.9, "corrupted": {"fog": {1: 0.8, 2: 0.6}}}   # E: 0.2 + 0.4
        >>> rigl = {"clean": 0.9, "corrupted": {"fog": {1: 0.9, 2: 0.7}}}    # E: 0.1 + 0.3
        >>> round(corruption_errors(rigl, dense)["fog"], 6)
        0.666667
    """
    return {name: _ratio(sum(1.0 - mine[s] for s in sev), sum(1.0 - theirs[s] for s in sev))
            for name, mine, theirs, sev in _shared_cells(acc, baseline)}


def mce(acc: Accuracies, baseline: Accuracies) -> float:
    """Mean corruption error: the mean over corruptions of :func:`corruption_errors`.

    A corruption on which the baseline made no error has no CE (``nan``) and is left out
    of the mean; ``nan`` only when no corruption has one."""
    return _mean_defined(corruption_errors(acc, baseline).values())


def relative_corruption_errors(acc: Accuracies, baseline: Accuracies) -> dict[str, float]:
    """Relative corruption error per corruption (Hendrycks & Dietterich 2019)::

        relative CE_c = sum_s (E^f_{s,c} - E^f_clean) / sum_s (E^base_{s,c} - E^base_clean)

    How much *more* error the corruption causes than the clean data does, against the
    baseline's increase: a model can have a low CE only because it is more accurate
    everywhere; a low relative CE means it also degrades less. ``nan`` where the baseline
    loses nothing under the corruption.

    Example:
        >>> dense = {"clean": 0.9, "corrupted": {"fog": {1: 0.8, 2: 0.6}}}   # +0.1, +0.3
        >>> rigl = {"clean": 0.9, "corrupted": {"fog": {1: 0.9, 2: 0.7}}}    # +0.0, +0.2
        >>> round(relative_corruption_errors(rigl, dense)["fog"], 6)
        0.5
    """
    clean, base_clean = 1.0 - float(acc["clean"]), 1.0 - float(baseline["clean"])
    return {name: _ratio(sum((1.0 - mine[s]) - clean for s in sev),
                         sum((1.0 - theirs[s]) - base_clean for s in sev))
            for name, mine, theirs, sev in _shared_cells(acc, baseline)}


def relative_mce(acc: Accuracies, baseline: Accuracies) -> float:
    """Relative mCE: the mean over corruptions of :func:`relative_corruption_errors`, leaving
    out those where the baseline loses nothing (their relative CE is ``nan``)."""
    return _mean_defined(relative_corruption_errors(acc, baseline).values())


def _mean_defined(values) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return _mean(defined) if defined else math.nan


def _shared_cells(acc: Accuracies, baseline: Accuracies) -> list[tuple[str, Mapping, Mapping, list]]:
    """``(name, acc's severities, baseline's severities, shared severities)`` per corruption
    both tables ran at one severity or more; raise if there is none."""
    cells = []
    for name, mine in acc["corrupted"].items():
        theirs = baseline["corrupted"].get(name, {})
        shared = sorted(s for s in mine if s in theirs)
        if shared:
            cells.append((name, mine, theirs, shared))
    if not cells:
        raise ValueError("the model and the baseline share no (corruption, severity)")
    return cells


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
    clean = float(acc["clean"])
    per = {name: 1.0 - (clean - mean) for name, mean in corruption_means(acc).items()}
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
    clean = float(acc["clean"])
    per = {name: 1.0 - _ratio(clean - mean, clean) for name, mean in corruption_means(acc).items()}
    return {"per_corruption": per, "overall": _mean(per.values())}


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


def win_loss(acc: Accuracies, baseline: Accuracies, tol: float = 1e-9) -> dict[str, Any]:
    """Count the scenarios, (corruption, severity) pairs both tables hold, where ``acc`` is
    more accurate than ``baseline`` (win), less (loss) or within ``tol`` (tie), the tally
    Wu et al. 2025 ("Dynamic Sparse Training versus Dense Training: The Unexpected Winner in
    Image Corruption Robustness", ICLR) draw for DST against dense training.

    Returns ``{"win": n, "loss": n, "tie": n, "scenarios": [{"corruption", "severity",
    "accuracy", "baseline", "difference", "outcome"}, ...]}``.

    Example:
        >>> dense = {"clean": 0.5, "corrupted": {"fog": {1: 0.5, 2: 0.4}, "freeze": {1: 0.3}}}
        >>> rigl = {"clean": 0.5, "corrupted": {"fog": {1: 0.6, 2: 0.4}, "freeze": {1: 0.2}}}
        >>> {k: v for k, v in win_loss(rigl, dense).items() if k != "scenarios"}
        {'win': 1, 'loss': 1, 'tie': 1}
    """
    counts = {"win": 0, "loss": 0, "tie": 0}
    scenarios = []
    for name, mine, theirs, severities in _shared_cells(acc, baseline):
        for s in severities:
            diff = float(mine[s]) - float(theirs[s])
            outcome = "tie" if abs(diff) <= tol else ("win" if diff > 0 else "loss")
            counts[outcome] += 1
            scenarios.append({"corruption": name, "severity": s, "accuracy": float(mine[s]),
                              "baseline": float(theirs[s]), "difference": diff, "outcome": outcome})
    return {**counts, "scenarios": scenarios}


def compare(acc: Accuracies, baseline: Accuracies, tol: float = 1e-9) -> dict[str, Any]:
    """The comparison of one model (or a seed mean, :func:`mean_table`) against the dense
    model, as Wu et al. 2025 draw it: :func:`relative_improvement` (clean, mPC, each
    corruption), the mPC difference in accuracy (``mPC_difference``, model - baseline) and
    :func:`win_loss`.

    Example:
        >>> dense = {"clean": 0.5, "corrupted": {"fog": {1: 0.5}}}
        >>> rigl = {"clean": 0.5, "corrupted": {"fog": {1: 0.625}}}
        >>> c = compare(rigl, dense); (c["mPC"], c["mPC_difference"], c["win_loss"]["win"])
        (0.25, 0.125, 1)
    """
    gain = relative_improvement(acc, baseline)
    shared = {name: acc["corrupted"][name] for name in gain["per_corruption"]}
    shared_base = {name: baseline["corrupted"][name] for name in gain["per_corruption"]}
    return {**gain, "mPC_difference": mpc({"corrupted": shared}) - mpc({"corrupted": shared_base}),
            "win_loss": win_loss(acc, baseline, tol)}


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
    ``{"n": runs, "mean": {name: value}, "std": {name: value}}``. The numbers are computed
    per run, then averaged (not computed from the mean table); mCE needs a ``baseline``.

    Example:
        >>> runs = [{"clean": 0.8, "corrupted": {"fog": {1: 0.6}}},
        ...         {"clean": 0.6, "corrupted": {"fog": {1: 0.6}}}]
        >>> s = summarize_seeds(runs); (s["n"], s["mean"]["clean"], s["mean"]["mPC"])
        (2, 0.7, 0.6)
    """
    if not tables:
        raise ValueError("summarize_seeds: no tables")
    per_run = [summarize(t, baseline) for t in tables]
    out: dict[str, Any] = {"n": len(tables), "mean": {}, "std": {}}
    for key in HEADLINE:
        values = [run[key] for run in per_run]
        if all(v is None for v in values):
            out["mean"][key] = out["std"][key] = None
        else:
            out["mean"][key], out["std"][key] = mean_std(values)
    return out


def _cellwise(tables: Sequence[Accuracies], reduce) -> dict[str, Any]:
    if not tables:
        raise ValueError("no tables to combine")
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


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan
