"""Write the report of an :class:`~vidsparse.robustness.evaluate.Evaluation`: the public entry.

``write_report(evaluation, out_dir)`` writes, each atomically (temporary file, then rename):

* ``results.json``: every number and what produced it (:mod:`~vidsparse.robustness.schema`
  documents the layout and its format version); ``read_results`` loads it back;
* ``results.csv``: one row per checkpoint and condition, for spreadsheets and pandas;
* ``per_video.csv.gz``: the prediction behind every accuracy, one row per checkpoint,
  condition and test video (when the results carry them: ``Results.per_video``);
* ``report.md``: definitions and tables (:mod:`~vidsparse.robustness.markdown`);
* the plots (:mod:`~vidsparse.robustness.plots`): accuracy against severity per corruption
  and per family, where there is a dense model the improvement heatmap, and with spectral
  curves the radius-accuracy plot.

``write_report_files(results, out_dir)`` writes the same from results already built (e.g.
``read_results`` output). The pieces live in their own modules, one job each: ``labels``
(names, baseline, seed groups), ``results`` (Evaluation -> Results), ``schema`` (the typed
results, JSON and CSV forms), ``markdown`` and ``plots``; their public names are re-exported
here, where earlier code imported them from.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Callable

from vidsparse.files import atomic_path
from vidsparse.robustness.labels import (  # re-exported: see __all__
    METHOD_NAMES,
    baseline_index,
    group_runs,
    method_label,
    resolve_baseline,
    unique_labels,
)
from vidsparse.robustness.markdown import render_markdown, summary_table, verdict_lines
from vidsparse.robustness.plots import (
    FAMILY_PLOT_NAME,
    HEATMAP_NAME,
    PLOT_NAME,
    SPECTRAL_PLOT_NAME,
    plot_accuracy_by_family,
    plot_accuracy_vs_severity,
    plot_improvement_heatmap,
    plot_spectral,
)
from vidsparse.robustness.results import build_results, results_from_evaluation, with_statistics
from vidsparse.robustness.schema import (
    CSV_COLUMNS,
    CSV_NAME,
    PER_VIDEO_COLUMNS,
    PER_VIDEO_NAME,
    READABLE_FORMATS,
    RESULTS_FORMAT,
    Results,
    Spectral,
    accuracy_tables,
    as_results,
    check_per_video,
    csv_rows,
    has_comparison,
    read_per_video,
    read_results,
    write_per_video,
)
from vidsparse.robustness.stats import StatsConfig

__all__ = [
    "CSV_COLUMNS", "CSV_NAME", "FAMILY_PLOT_NAME", "HEATMAP_NAME", "METHOD_NAMES", "PER_VIDEO_COLUMNS",
    "PER_VIDEO_NAME", "PLOT_NAME", "READABLE_FORMATS", "RESULTS_FORMAT", "SPECTRAL_PLOT_NAME",
    "Results", "Spectral", "StatsConfig", "accuracy_tables", "baseline_index", "build_results",
    "csv_rows", "group_runs", "has_comparison", "method_label", "plot_accuracy_by_family",
    "plot_accuracy_vs_severity", "plot_improvement_heatmap", "plot_spectral", "read_per_video",
    "read_results", "render_markdown", "resolve_baseline", "results_from_evaluation",
    "summary_table", "unique_labels", "verdict_lines", "with_statistics", "write_report",
    "write_report_files",
]


def write_report(evaluation: Any, out_dir: str | os.PathLike, baseline: str | int | None = None,
                 spectral: Spectral | dict[str, Any] | None = None,
                 stats_config: StatsConfig | None = None) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv``, ``per_video.csv.gz``, the plots and
    ``report.md`` to ``out_dir``; return their paths (keys ``results``, ``csv``,
    ``per_video``, ``plot``, ``family_plot``, ``report``, and ``heatmap`` / ``spectral_plot``
    when written).

    Args:
        evaluation: :func:`~vidsparse.robustness.evaluate.evaluate` output; its ``spectral``
            curves and ``stability`` flip rates are included when set.
        baseline: the checkpoint CE/mCE are normalised by and the others compared with: a
            label, run name, checkpoint path or index; default the first dense checkpoint.
        spectral: radius-accuracy curves to include instead of ``evaluation.spectral``.
        stats_config: bootstrap and test settings (its ``seed``); default ``StatsConfig()``.

    Example:
        >>> paths = write_report(evaluate(["runs/dense", "runs/rigl"], "data/ucf101"), "out")
        >>> print(summary_table(read_results(paths["results"])))
    """
    return write_report_files(results_from_evaluation(evaluation, baseline, spectral, stats_config),
                              out_dir)


def write_report_files(results: Results | dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write every report file from results (:func:`results_from_evaluation`,
    :func:`build_results` or :func:`read_results` output); see :func:`write_report`.
    ``per_video.csv.gz`` is written when the results carry per-video predictions
    (``Results.per_video``); otherwise one already in ``out_dir`` is left as it is.

    Raises:
        ValueError: results that do not fit the schema, or per-video predictions that do
            not give their accuracies, before any file is written.
    """
    per_video = results.per_video if isinstance(results, Results) else None
    results = as_results(results).to_dict()  # checked before the directory is made
    if per_video is not None:
        check_per_video(results, per_video)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    paths = {}
    if per_video is not None:  # first: results.json never names predictions not yet on disk
        paths["per_video"] = _atomic_write(out_dir / PER_VIDEO_NAME,
                                           lambda tmp: write_per_video(tmp, results, per_video))
    paths |= {
        "results": _atomic_write(out_dir / "results.json", lambda tmp: tmp.write_text(text)),
        "csv": _atomic_write(out_dir / CSV_NAME, lambda tmp: _write_csv(tmp, csv_rows(results))),
        "plot": plot_accuracy_vs_severity(results, out_dir / PLOT_NAME),
        "family_plot": plot_accuracy_by_family(results, out_dir / FAMILY_PLOT_NAME),
    }
    if has_comparison(results):
        paths["heatmap"] = plot_improvement_heatmap(results, out_dir / HEATMAP_NAME)
    if results.get("spectral"):
        paths["spectral_plot"] = plot_spectral(results, out_dir / SPECTRAL_PLOT_NAME)
    paths["report"] = _atomic_write(out_dir / "report.md",
                                    lambda tmp: tmp.write_text(render_markdown(results)))
    return paths


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS})


def _atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place,
    so that a reader never sees half a file (or a stale one next to a fresh one)."""
    path = Path(path)
    with atomic_path(path) as tmp:  # the mode open() would give, so the group can read it
        write(tmp)
    return path
