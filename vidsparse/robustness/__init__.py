"""Robustness evaluation: accuracy of checkpoints under corruption, metrics, reports.

Example:
    >>> from vidsparse import robustness
    >>> ev = robustness.evaluate(["runs/dense", "runs/rigl"], "data/ucf101", limit=50)
    >>> robustness.write_report(ev, "reports/ucf101")   # report.md, results.json, a PNG
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
from vidsparse.robustness.metrics import accuracy, mpc, relative_improvement, rpc, summarize
from vidsparse.robustness.report import method_label, read_results, summary_table, write_report

__all__ = [
    "CLEAN",
    "DEFAULT_CORRUPTIONS",
    "DEFAULT_SEVERITIES",
    "Checkpoint",
    "Condition",
    "Evaluation",
    "accuracy",
    "evaluate",
    "load_checkpoint",
    "method_label",
    "mpc",
    "read_results",
    "relative_improvement",
    "rpc",
    "summarize",
    "summary_table",
    "write_report",
]
