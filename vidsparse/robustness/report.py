"""Turn an :class:`~vidsparse.robustness.evaluate.Evaluation` into files a person reads.

``write_report(evaluation, out_dir)`` writes, each atomically (temporary file, then rename):

* ``results.json``: every number (accuracy per method, corruption and severity; clean, mPC,
  rPC; gains over the dense baseline) and what produced it (checkpoint directories, dataset
  root and videos, corruptions, seeds). ``read_results`` loads it back.
* ``report.md``: a summary table (clean accuracy, mPC, rPC per method) and one table per
  method (accuracy per corruption and severity, and against the dense model).
* ``accuracy_vs_severity.png``: one panel per corruption, one line per method, severity 0
  being the clean accuracy.

Everything but the writers is a pure function of the results dictionary.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from vidsparse.corruptions import list_corruptions
from vidsparse.robustness import metrics

RESULTS_FORMAT = "vidsparse-robustness/1"
PLOT_NAME = "accuracy_vs_severity.png"

# How sparsity.method is spelled in a report; an unknown method is shown as written.
METHOD_NAMES = {"dense": "Dense", "static": "Static", "set": "SET", "rigl": "RigL",
                "mest_r": "MEST-R", "mest_g": "MEST-G", "granet_r": "GraNet-R",
                "granet_g": "GraNet-G", "gmp": "GMP"}


# --- labels ----------------------------------------------------------------------------

def method_label(config: dict[str, Any]) -> str:
    """"Dense", or the method and its sparsity (1 - density), e.g. "RigL sparsity 0.9".

    Example:
        >>> method_label({"sparsity": {"method": "rigl", "density": 0.1}})
        'RigL sparsity 0.9'
    """
    sparsity = config.get("sparsity") or {}
    method = str(sparsity.get("method", "dense")).lower()
    density = float(sparsity.get("density", 1.0))
    if method == "dense" or density >= 1.0:
        return "Dense"
    # round() first: 1 - 0.1 is 0.9000000000000000222
    return f"{METHOD_NAMES.get(method, method)} sparsity {round(1.0 - density, 6):g}"


def unique_labels(configs: Sequence[dict[str, Any]], paths: Sequence[str]) -> list[str]:
    """``method_label`` of each config; labels that collide (two seeds of RigL sparsity 0.5) get
    the run name, or the checkpoint directory's name, appended."""
    labels = [method_label(c) for c in configs]
    out = []
    for label, config, path in zip(labels, configs, paths):
        if labels.count(label) > 1:
            label = f"{label} ({config.get('name') or _run_dir_name(path)})"
        out.append(label)
    if len(set(out)) < len(out):  # still equal (same run name twice): number them
        out = [f"{label} #{i + 1}" for i, label in enumerate(out)]
    return out


def _run_dir_name(path: str) -> str:
    p = Path(path)
    return p.parent.name if p.name == "final" else p.name


def baseline_index(configs: Sequence[dict[str, Any]]) -> int | None:
    """The first dense checkpoint, against which the others are compared (None if none)."""
    return next((i for i, c in enumerate(configs) if method_label(c) == "Dense"), None)


# --- results.json ----------------------------------------------------------------------

def build_results(evaluation: Any) -> dict[str, Any]:
    """The ``results.json`` dictionary of an ``Evaluation`` (JSON types only, NaN as None)."""
    tables = evaluation.accuracies()
    labels = unique_labels(evaluation.configs, evaluation.checkpoints)
    base = baseline_index(evaluation.configs)
    kinds = list_corruptions()
    severities: dict[str, list[int]] = {}
    for c in evaluation.conditions:
        if not c.is_clean:
            severities.setdefault(c.corruption, []).append(c.severity)
    first_data = evaluation.configs[0].get("data", {})
    methods = []
    for i, (label, table, config, path) in enumerate(
            zip(labels, tables, evaluation.configs, evaluation.checkpoints)):
        sparsity = config.get("sparsity") or {}
        density = float(sparsity.get("density", 1.0))
        summary = metrics.summarize(table)
        methods.append({
            "label": label,
            "checkpoint": str(path),
            "run_name": config.get("name"),
            "model": config.get("model", {}).get("name"),
            "method": sparsity.get("method", "dense"),
            "density": density,
            "sparsity": round(1.0 - density, 6),
            "train_seed": config.get("seed"),
            "clean": summary["clean"],
            "mPC": summary["mPC"],
            "rPC": summary["rPC"],
            "per_corruption": summary["per_corruption"],
            "accuracy": {name: {str(s): acc for s, acc in sorted(by_sev.items())}
                         for name, by_sev in table["corrupted"].items()},
            "vs_baseline": (None if base is None or i == base
                            else metrics.relative_improvement(table, tables[base])),
        })
    return _json_safe({
        "format": RESULTS_FORMAT,
        "dataset": {
            "root": evaluation.data_root,
            "split": "test",
            "layout": first_data.get("layout"),
            "fold": first_data.get("fold"),
            "num_videos": len(evaluation.videos),
            "source": "on-the-fly" if evaluation.corrupted is None else "on-disk",
            "corrupted": evaluation.corrupted,
            "videos": list(evaluation.videos),
        },
        "seed": evaluation.seed,
        "corruptions": {name: {"kind": kinds.get(name), "severities": sev}
                        for name, sev in severities.items()},
        "baseline": None if base is None else labels[base],
        "methods": methods,
    })


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Load ``results.json`` (a file or the report directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    results = json.loads(path.read_text())
    if results.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path}: not a vidsparse robustness results file "
                         f"(format {results.get('format')!r}, expected {RESULTS_FORMAT!r})")
    return results


def accuracy_tables(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{label: accuracy table}`` from a results dictionary, severities back to ints, in the
    form ``metrics`` reads (so numbers can be recomputed from a saved report)."""
    return {m["label"]: {"clean": m["clean"],
                         "corrupted": {name: {int(s): acc for s, acc in by_sev.items()}
                                       for name, by_sev in m["accuracy"].items()}}
            for m in results["methods"]}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# --- report.md -------------------------------------------------------------------------

def render_markdown(results: dict[str, Any], plot_name: str | None = PLOT_NAME) -> str:
    """The text of ``report.md``: what was measured, a summary, one table per method."""
    data, methods, base = results["dataset"], results["methods"], results["baseline"]
    n_sev = sorted({s for c in results["corruptions"].values() for s in c["severities"]})
    source = (f"corrupted on the fly (seed {results['seed']})" if data["corrupted"] is None
              else f"corrupted copies read from `{data['corrupted']}`"
              + ("" if results["seed"] is None else f" (written with seed {results['seed']})"))
    lines = [
        "# Robustness report",
        "",
        f"Top-1 accuracy (%) of {len(methods)} checkpoint(s) on {data['num_videos']} test "
        f"videos of `{data['root']}` (fold {data['fold']}), clean and under "
        f"{len(results['corruptions'])} corruption(s) at severities "
        f"{', '.join(map(str, n_sev))}, {source}. Each video is scored on its centred clip.",
        "",
        "- **Clean**: accuracy on the uncorrupted videos.",
        "- **mPC**: mean accuracy over all corruptions and severities "
        "(Michaelis et al. 2019, *Benchmarking Robustness in Object Detection*).",
        "- **rPC**: mPC / clean, the share of clean accuracy kept under corruption.",
        "- Method labels give the **sparsity**: the fraction of prunable weights removed "
        "(1 − density); *sev N* is the corruption severity.",
    ]
    if base is not None:
        lines.append(f"- **vs {base}**: relative change against the dense model, "
                     f"(method − dense) / dense; positive means more accurate than {base}.")
    lines += ["", "## Summary", ""]
    header = ["Method", "Clean", "mPC", "rPC"] + ([f"mPC vs {base}"] if base else []) + ["Checkpoint"]
    rows = []
    for m in methods:
        gain = [_signed_pct(m["vs_baseline"] and m["vs_baseline"]["mPC"])] if base else []
        rows.append([m["label"], _pct(m["clean"]), _pct(m["mPC"]), _pct(m["rPC"])] + gain
                    + [f"`{m['checkpoint']}`"])
    lines += _table(header, rows, numeric_from=1, numeric_to=len(header) - 1)
    if plot_name:
        lines += ["", f"![Accuracy against severity, one panel per corruption]({plot_name})"]
    for m in methods:
        lines += ["", *_method_section(m, results, base)]
    return "\n".join(lines) + "\n"


def _method_section(m: dict[str, Any], results: dict[str, Any], base: str | None) -> list[str]:
    severities = sorted({s for c in results["corruptions"].values() for s in c["severities"]})
    lines = [f"## {m['label']}", "",
             f"Checkpoint `{m['checkpoint']}` — model {m['model']}, method {m['method']}, "
             f"density {m['density']:g}. Clean {_pct(m['clean'])}, mPC {_pct(m['mPC'])}, "
             f"rPC {_pct(m['rPC'])}.", ""]
    compare = base is not None and m["vs_baseline"] is not None
    header = (["Corruption", "Kind"] + [f"sev {s}" for s in severities] + ["Mean"]
              + ([f"Mean vs {base}"] if compare else []))
    rows = []
    for name, info in results["corruptions"].items():
        by_sev = m["accuracy"].get(name, {})
        row = [name, info["kind"] or "?"] + [_pct(by_sev.get(str(s))) for s in severities]
        row.append(_pct(m["per_corruption"].get(name)))
        if compare:
            row.append(_signed_pct(m["vs_baseline"]["per_corruption"].get(name)))
        rows.append(row)
    return lines + _table(header, rows, numeric_from=2, numeric_to=len(header))


def _table(header: list[str], rows: list[list[str]], numeric_from: int, numeric_to: int) -> list[str]:
    align = ["---:" if numeric_from <= i < numeric_to else "---" for i in range(len(header))]
    return ["| " + " | ".join(r) + " |" for r in [header, align, *rows]]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _signed_pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}%"


def summary_table(results: dict[str, Any]) -> str:
    """A plain-text table of clean accuracy, mPC and rPC per method, for a terminal."""
    width = max(len("Method"), *(len(m["label"]) for m in results["methods"]))
    lines = [f"{'Method':<{width}}  {'Clean':>6}  {'mPC':>6}  {'rPC':>6}"]
    for m in results["methods"]:
        lines.append(f"{m['label']:<{width}}  {_pct(m['clean']):>6}  {_pct(m['mPC']):>6}  "
                     f"{_pct(m['rPC']):>6}")
    return "\n".join(lines)


# --- plot ------------------------------------------------------------------------------

def plot_accuracy_vs_severity(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """One panel per corruption: accuracy (%) against severity, one line per method, the
    clean accuracy at severity 0 so that each line starts from where the model began."""
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    names = list(results["corruptions"])
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False,
                             sharey=True)
    for ax, name in zip(axes.flat, names):
        for m in results["methods"]:
            by_sev = m["accuracy"].get(name, {})
            xs = [0] + sorted(int(s) for s in by_sev)
            ys = [m["clean"]] + [by_sev[str(s)] for s in xs[1:]]
            ax.plot(xs, [100 * (y if y is not None else math.nan) for y in ys],
                    marker="o", label=m["label"])
        ax.set_title(name)
        ax.set_xticks(range(0, 1 + max(int(s) for s in results["corruptions"][name]["severities"])))
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 accuracy (%)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False)
    fig.tight_layout(rect=(0, 0.08 if rows == 1 else 0.04, 1, 1))
    try:
        return _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)


# --- writing ---------------------------------------------------------------------------

def write_report(evaluation: Any, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` and the plot to ``out_dir``; return their paths.

    Example:
        >>> paths = write_report(evaluate(["runs/dense", "runs/rigl"], "data/ucf101"), "out")
        >>> print(summary_table(read_results(paths["results"])))
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = build_results(evaluation)
    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    return {
        "results": _atomic_write(out_dir / "results.json", lambda tmp: tmp.write_text(text)),
        "plot": plot_accuracy_vs_severity(results, out_dir / PLOT_NAME),
        "report": _atomic_write(out_dir / "report.md",
                                lambda tmp: tmp.write_text(render_markdown(results))),
    }


def _atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place,
    so that a reader never sees half a file (or a stale one next to a fresh one)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for others to read
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
