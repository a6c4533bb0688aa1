"""Robustness evaluation: accuracy of checkpoints under corruption, metrics, reports.

Example:
    >>> from vidsparse import robustness
    >>> ev = robustness.evaluate(["runs/dense", "runs/rigl"], "data/ucf101", limit=50)
    >>> robustness.write_report(ev, "reports/ucf101")   # report.md, results.json/.csv,
    ...                                                   # per_video.csv.gz, PNGs
"""

from vidsparse.robustness.evaluate import (
    CLEAN,
    DEFAULT_CORRUPTIONS,
    DEFAULT_SEVERITIES,
    Checkpoint,
    Condition,
    Evaluation,
    evaluate,
    load_checkpoint,
)
from vidsparse.robustness.metrics import (
    FREQUENCY_BANDS,
    absolute_robustness,
    accuracy,
    compare,
    corruption_errors,
    frequency_order,
    mce,
    mpc,
    relative_corruption_errors,
    relative_improvement,
    relative_mce,
    relative_robustness,
    rpc,
    summarize,
    summarize_seeds,
    win_loss,
)
from vidsparse.robustness.spectral import default_radii, fourier_filter, radius_accuracy, spectral_curves
from vidsparse.robustness.stability import flip_rate, sequence_clip_indices
from vidsparse.robustness.report import (
    build_results,
    method_label,
    read_results,
    results_from_evaluation,
    summary_table,
    verdict_lines,
    with_statistics,
    write_report,
    write_report_files,
)
from vidsparse.robustness.schema import PER_VIDEO_NAME, RESULTS_FORMAT, PerVideo, Results, read_per_video
from vidsparse.robustness.stats import StatsConfig

__all__ = [
    "CLEAN",
    "DEFAULT_CORRUPTIONS",
    "DEFAULT_SEVERITIES",
    "FREQUENCY_BANDS",
    "PER_VIDEO_NAME",
    "RESULTS_FORMAT",
    "PerVideo",
    "Results",
    "StatsConfig",
    "Checkpoint",
    "Condition",
    "Evaluation",
    "absolute_robustness",
    "accuracy",
    "build_results",
    "compare",
    "corruption_errors",
    "default_radii",
    "evaluate",
    "flip_rate",
    "fourier_filter",
    "frequency_order",
    "load_checkpoint",
    "mce",
    "method_label",
    "radius_accuracy",
    "sequence_clip_indices",
    "spectral_curves",
    "mpc",
    "read_per_video",
    "read_results",
    "relative_corruption_errors",
    "relative_improvement",
    "relative_mce",
    "relative_robustness",
    "results_from_evaluation",
    "rpc",
    "summarize",
    "summarize_seeds",
    "summary_table",
    "verdict_lines",
    "win_loss",
    "with_statistics",
    "write_report",
    "write_report_files",
]
