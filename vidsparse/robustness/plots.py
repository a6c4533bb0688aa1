"""The report's figures, drawn from a results dictionary with matplotlib (Agg, no display).

* :data:`PLOT_NAME`: accuracy against severity, one panel per corruption;
* :data:`FAMILY_PLOT_NAME`: the same averaged over each corruption family;
* :data:`HEATMAP_NAME`: relative improvement over dense, corruption x method (only where a
  method has a dense model to compare with, ``schema.has_comparison``);
* :data:`SPECTRAL_PLOT_NAME`: radius-accuracy curves (only when ``results["spectral"]``).

Each function writes one PNG atomically (temporary file, then rename) and returns its path.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Any

from vidsparse.files import atomic_path
from vidsparse.robustness import metrics
from vidsparse.robustness.schema import Results, accuracy_tables, as_spectral, has_comparison, results_dict

PLOT_NAME = "accuracy_vs_severity.png"
FAMILY_PLOT_NAME = "accuracy_by_family.png"
HEATMAP_NAME = "improvement_over_dense.png"
SPECTRAL_PLOT_NAME = "spectral_radius_accuracy.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    return plt


def _series(results: dict[str, Any]) -> list[dict[str, Any]]:
    """What the line plots draw: one series per (model, method, sparsity) with its runs'
    accuracy tables (one series per checkpoint for version 1 results)."""
    tables = accuracy_tables(results)
    groups = results.get("groups") or [{"label": m["label"], "members": [m["label"]]}
                                       for m in results["methods"]]
    return [{"label": g["label"], "tables": [tables[label] for label in g["members"]]}
            for g in groups]


def _save(fig, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    path = Path(path)
    try:
        # A reader never sees half a PNG; the file gets the mode open() would give it.
        with atomic_path(path) as tmp:
            # bbox "tight": the legend sits outside the axes and long labels must not be cut
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        return path
    finally:
        plt.close(fig)


def _line(ax, xs: list[int], runs: list[list[float]], label: str) -> None:
    """A line through the mean of ``runs`` (one list of y per run) and a ± std band."""
    import numpy as np

    ys = np.array(runs, dtype=float) * 100
    mean = ys.mean(axis=0)
    (line,) = ax.plot(xs, mean, marker="o", label=label)
    if len(runs) > 1:
        std = ys.std(axis=0, ddof=1)
        ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2)


def _grid(plt, n: int, cols: int = 4, height: float = 2.8):
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, height * rows), squeeze=False,
                             sharey=True)
    return fig, axes, rows


def _finish_grid(fig, axes, n: int, rows: int) -> None:
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 accuracy (%)")
    fig.tight_layout()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=min(4, len(labels)), frameon=False)


def plot_accuracy_vs_severity(results: Results | dict[str, Any], path: str | os.PathLike) -> Path:
    """One panel per corruption (high- to low-frequency): accuracy (%) against severity, one
    line per method (the mean over its seeds, a band of ± one std), the clean accuracy at
    severity 0 so that each line starts from where the model began."""
    results = results_dict(results)
    plt = _pyplot()
    names = results.get("frequency_order") or list(results["corruptions"])
    fig, axes, rows = _grid(plt, len(names))
    for ax, name in zip(axes.flat, names):
        for series in _series(results):
            severities = sorted(set.intersection(*(set(t["corrupted"].get(name, {}))
                                                   for t in series["tables"])))
            runs = [[_nan(t["clean"])] + [_nan(t["corrupted"][name][s]) for s in severities]
                    for t in series["tables"]]
            _line(ax, [0] + severities, runs, series["label"])
        ax.set_title(name)
        _severity_axis(ax, range(0, 1 + max(results["corruptions"][name]["severities"])))
    _finish_grid(fig, axes, len(names), rows)
    return _save(fig, path)


def _severity_axis(ax, ticks) -> None:
    """Severity on x (0 = clean), accuracy in % on y."""
    ax.set_xticks(list(ticks))
    ax.set_xlabel("severity (0 = clean)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)


def plot_accuracy_by_family(results: Results | dict[str, Any], path: str | os.PathLike) -> Path:
    """One panel per corruption family (noise, blur, weather, digital, temporal, codec): the
    mean accuracy (%) over the family's corruptions against severity, one line per method
    (mean over seeds, ± one std band); severity 0 is the clean accuracy."""
    results = results_dict(results)
    plt = _pyplot()
    kinds = {n: c["kind"] for n, c in results["corruptions"].items()}
    families = results.get("families") or {n: metrics.corruption_family(n, k) for n, k in kinds.items()}
    present = [f for f in metrics.FAMILIES if f in families.values()]
    fig, axes, rows = _grid(plt, len(present), cols=3, height=3.3)
    for ax, family in zip(axes.flat, present):
        names = [n for n in results.get("frequency_order") or kinds if families.get(n) == family]
        severities = sorted({s for n in names for s in results["corruptions"][n]["severities"]})
        for series in _series(results):
            runs = []
            for t in series["tables"]:
                ys = [_nan(t["clean"])]
                for s in severities:
                    cells = [t["corrupted"][n][s] for n in names if s in t["corrupted"].get(n, {})]
                    ys.append(sum(map(_nan, cells)) / len(cells) if cells else math.nan)
                runs.append(ys)
            _line(ax, [0] + severities, runs, series["label"])
        ax.set_title(f"{family}: mean of {len(names)}\n" + textwrap.fill(", ".join(names), 48),
                     fontsize=8)
        _severity_axis(ax, [0] + severities)
    _finish_grid(fig, axes, len(present), rows)
    return _save(fig, path)


def plot_improvement_heatmap(results: Results | dict[str, Any], path: str | os.PathLike) -> Path:
    """Corruption (rows, high- to low-frequency) x method (columns): the relative change of
    the mean accuracy over severities against dense training, in %; blue is better than
    dense, red worse. Needs :func:`has_comparison`."""
    import numpy as np

    results = results_dict(results)
    if not has_comparison(results):
        raise ValueError("plot_improvement_heatmap: no method has a dense model to compare with")
    plt = _pyplot()
    compared = [g for g in results["groups"] if g["vs_reference"]]
    names = results.get("frequency_order") or list(results["corruptions"])
    bands = results.get("frequency_bands") or {}
    values = np.array([[_nan(g["vs_reference"]["per_corruption"].get(n)) * 100 for g in compared]
                       for n in names], dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    limit = max(1.0, float(finite.max()) if finite.size else 1.0)
    fig, ax = plt.subplots(figsize=(max(6.0, 3.5 + 1.3 * len(compared)), 2.2 + 0.38 * len(names)))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=-limit, vmax=limit,
                      aspect="auto")
    ax.set_xticks(range(len(compared)))
    ax.set_xticklabels([g["label"] for g in compared], rotation=30, ha="right")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([f"{n} ({bands.get(n) or 'unranked'})" for n in names])
    if values.size <= 600:
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, "—" if not math.isfinite(v) else f"{v:+.1f}", ha="center",
                    va="center", fontsize=7, color="white" if abs(v) > 0.6 * limit else "black")
    refs = sorted({g["reference"] for g in compared})
    ax.set_title(f"Mean accuracy over severities vs {refs[0] if len(refs) == 1 else 'dense'}"
                 "\n(corruptions from high- to low-frequency)", fontsize=10)
    fig.colorbar(image, ax=ax, label="relative change (%)")
    fig.tight_layout()
    return _save(fig, path)


def plot_spectral(results: Results | dict[str, Any], path: str | os.PathLike) -> Path:
    """``results["spectral"]``: accuracy (%) against frequency radius, one panel for the
    low-frequency curves and one for the high-frequency ones, one line per label."""
    results = results_dict(results)
    if not results.get("spectral"):
        raise ValueError("plot_spectral: the results hold no spectral curves")
    checked = as_spectral(results["spectral"])
    radii, curves = [float(r) for r in checked.radii], checked.curves
    plt = _pyplot()
    bands = [b for b in ("low", "high") if any(b in c for c in curves.values())]
    fig, axes = plt.subplots(1, len(bands), figsize=(4.5 * len(bands), 3.6), squeeze=False,
                             sharey=True)
    for ax, band in zip(axes.flat, bands):
        for label, curve in curves.items():
            if band in curve:
                ax.plot(radii, [100 * _nan(v) for v in curve[band]], marker="o", label=label)
        ax.set_title(f"{band}-pass: frequencies {'≤' if band == 'low' else '>'} r kept")
        ax.set_xlabel("radius r (frequency index)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("top-1 accuracy (%)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
