"""Turn an :class:`~vidsparse.robustness.evaluate.Evaluation` into files a person reads.

``write_report(evaluation, out_dir)`` writes, each atomically (temporary file, then rename):

* ``results.json``: every number and what produced it (checkpoint directories, dataset root
  and videos, corruptions, seeds): per checkpoint the accuracy per corruption and
  severity, clean, mPC, rPC, CE/mCE and relative mCE against the baseline checkpoint,
  gamma^a and gamma^r, the comparison with the baseline; per (method, sparsity) the mean
  and std over training seeds and the comparison with dense training (relative improvement
  per corruption, win/loss per scenario). ``read_results`` loads it back.
* ``results.csv``: one row per checkpoint and condition (clean, or a corruption at a
  severity) with its accuracy, for spreadsheets and pandas.
* ``report.md``: what was measured and how each number is defined, then tables: a summary
  per checkpoint, mean ± std over seeds, dense vs DST (relative improvement per corruption
  from high- to low-frequency, win/loss), accuracy per corruption, one section per
  checkpoint.
* ``accuracy_vs_severity.png`` (one panel per corruption), ``accuracy_by_family.png`` (one
  panel per family: noise, blur, weather, digital, temporal, codec), and where there is a
  dense model to compare with ``improvement_over_dense.png`` (corruption x method heatmap);
  ``spectral_radius_accuracy.png`` when the results hold a ``"spectral"`` entry.

``write_report_files(results, out_dir)`` writes the same from a results dictionary (e.g.
``read_results`` output with a ``"spectral"`` entry added). Everything but the writers is a
pure function of the results dictionary.
"""

from __future__ import annotations

import csv
import json
import math
import os
import textwrap
from pathlib import Path
from typing import Any, Callable, Sequence

from vidsparse.corruptions import list_corruptions
from vidsparse.files import atomic_path
from vidsparse.robustness import metrics

RESULTS_FORMAT = "vidsparse-robustness/2"
# Version 1 files lack CE, gamma, groups and the corruption taxonomy; what they hold reads
# the same, so read_results accepts them.
READABLE_FORMATS = ("vidsparse-robustness/1", RESULTS_FORMAT)
PLOT_NAME = "accuracy_vs_severity.png"
FAMILY_PLOT_NAME = "accuracy_by_family.png"
HEATMAP_NAME = "improvement_over_dense.png"
SPECTRAL_PLOT_NAME = "spectral_radius_accuracy.png"
CSV_NAME = "results.csv"
CSV_COLUMNS = ("label", "checkpoint", "model", "method", "sparsity", "seed", "corruption",
               "severity", "accuracy")

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


def resolve_baseline(configs: Sequence[dict[str, Any]], paths: Sequence[str],
                     baseline: str | int | None = None) -> int | None:
    """Index of the baseline checkpoint: ``None`` picks the first dense one (``None`` if
    there is none); an int is an index; a string is a report label ("Dense", "RigL sparsity
    0.5 (seed1)"), a run name or a checkpoint path. An unknown name raises, listing the
    labels."""
    if baseline is None:
        return baseline_index(configs)
    if isinstance(baseline, int) and not isinstance(baseline, bool):
        if not 0 <= baseline < len(configs):
            raise ValueError(f"baseline index {baseline} out of range (0..{len(configs) - 1})")
        return baseline
    labels = unique_labels(configs, paths)
    wanted = str(baseline)
    for i, (label, config, path) in enumerate(zip(labels, configs, paths)):
        if wanted in (label, config.get("name"), str(path), _run_dir_name(str(path))) or \
                Path(wanted) == Path(path):
            return i
    raise ValueError(f"baseline {baseline!r} is none of the checkpoints; give a label "
                     f"({', '.join(labels)}), a run name or a checkpoint path")


def _group_key(config: dict[str, Any]) -> tuple[str, str]:
    return (str((config.get("model") or {}).get("name")), method_label(config))


def group_runs(configs: Sequence[dict[str, Any]]) -> list[list[int]]:
    """Indices of the checkpoints that share model, method and sparsity (the runs of one
    method that differ only in seed), in order of first appearance.

    Example:
        >>> cfg = lambda m, d, seed: {"seed": seed, "sparsity": {"method": m, "density": d}}
        >>> group_runs([cfg("dense", 1, 0), cfg("rigl", .5, 0), cfg("rigl", .5, 1)])
        [[0], [1, 2]]
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for i, config in enumerate(configs):
        groups.setdefault(_group_key(config), []).append(i)
    return list(groups.values())


# --- results.json ----------------------------------------------------------------------

def build_results(evaluation: Any, baseline: str | int | None = None,
                  spectral: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``results.json`` dictionary of an ``Evaluation`` (JSON types only, NaN as None).

    Args:
        baseline: the checkpoint that normalises CE/mCE and that the others are compared
            with (see :func:`resolve_baseline`); default the first dense checkpoint.
        spectral: ``{"radii": [...], "curves": {label: {"low": [...], "high": [...]}}}``
            (``vidsparse.robustness.spectral``), stored as ``results["spectral"]``.
    """
    tables = evaluation.accuracies()
    configs, paths = evaluation.configs, [str(p) for p in evaluation.checkpoints]
    labels = unique_labels(configs, paths)
    base = resolve_baseline(configs, paths, baseline)
    base_table = None if base is None else tables[base]
    kinds = list_corruptions()
    severities: dict[str, list[int]] = {}
    for c in evaluation.conditions:
        if not c.is_clean:
            severities.setdefault(c.corruption, []).append(c.severity)
    first_data = configs[0].get("data", {})
    methods = []
    for i, (label, table, config, path) in enumerate(zip(labels, tables, configs, paths)):
        sparsity = config.get("sparsity") or {}
        density = float(sparsity.get("density", 1.0))
        summary = metrics.summarize(table, base_table)
        vs = None
        if base_table is not None and i != base:
            vs = metrics.compare(table, base_table)
            vs["win_loss"] = {k: vs["win_loss"][k] for k in ("win", "loss", "tie")}
        methods.append({
            "label": label,
            "checkpoint": path,
            "run_name": config.get("name"),
            "model": (config.get("model") or {}).get("name"),
            "method": sparsity.get("method", "dense"),
            "density": density,
            "sparsity": round(1.0 - density, 6),
            "train_seed": config.get("seed"),
            **{k: summary[k] for k in metrics.HEADLINE},
            "per_corruption": summary["per_corruption"],
            "CE": summary["CE"],
            "relative_CE": summary["relative_CE"],
            "gamma_a_per_corruption": summary["gamma_a_per_corruption"],
            "gamma_r_per_corruption": summary["gamma_r_per_corruption"],
            "accuracy": {name: {str(s): acc for s, acc in sorted(by_sev.items())}
                         for name, by_sev in table["corrupted"].items()},
            "vs_baseline": vs,
        })
    names = list(severities)
    results = {
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
        "families": {n: metrics.corruption_family(n, kinds.get(n)) for n in names},
        "frequency_order": metrics.frequency_order(names),
        "frequency_bands": {n: metrics.frequency_band(n) for n in names},
        "baseline": None if base is None else labels[base],
        "baseline_checkpoint": None if base is None else paths[base],
        "methods": methods,
        "groups": _groups(tables, configs, labels, base, base_table),
    }
    if spectral is not None:
        _check_spectral(spectral)
        results["spectral"] = spectral
    return _json_safe(results)


def _groups(tables, configs, labels, base, base_table) -> list[dict[str, Any]]:
    """Per (model, method, sparsity): the runs, mean/std over them, and the comparison of
    the mean table with the reference (dense) group's mean table."""
    members = group_runs(configs)
    several_models = len({_group_key(c)[0] for c in configs}) > 1
    groups, means = [], []
    for idx in members:
        config = configs[idx[0]]
        sparsity = config.get("sparsity") or {}
        density = 1.0 if method_label(config) == "Dense" else float(sparsity.get("density", 1.0))
        model = (config.get("model") or {}).get("name")
        runs = [tables[i] for i in idx]
        stats = metrics.summarize_seeds(runs, base_table)
        mean = metrics.mean_table(runs)
        std = metrics.std_table(runs) if len(runs) > 1 else None
        means.append(mean)
        label = method_label(config)
        groups.append({
            "label": f"{model}: {label}" if several_models else label,
            "model": model,
            "method": "dense" if label == "Dense" else sparsity.get("method"),
            "density": density,
            "sparsity": round(1.0 - density, 6),
            "members": [labels[i] for i in idx],
            "seeds": [configs[i].get("seed") for i in idx],
            "n": len(idx),
            "mean": stats["mean"],
            "std": stats["std"] if len(idx) > 1 else None,
            "accuracy_mean": _str_severities(mean["corrupted"]),
            "accuracy_std": None if std is None else _str_severities(std["corrupted"]),
            "per_corruption_mean": metrics.corruption_means(mean),
            "reference": None,
            "vs_reference": None,
        })
    for g, idx, mean in zip(groups, members, means):
        ref = _reference_group(g, members, groups, base)
        if ref is not None and groups[ref] is not g:
            g["reference"] = groups[ref]["label"]
            g["vs_reference"] = metrics.compare(mean, means[ref])
    return groups


def _reference_group(group, members, groups, base) -> int | None:
    """The group the baseline checkpoint belongs to, if it is of the same model; else the
    first dense group of the same model; else none."""
    if base is not None:
        j = next(k for k, idx in enumerate(members) if base in idx)
        if groups[j]["model"] == group["model"]:
            return j
    return next((k for k, g in enumerate(groups)
                 if g["method"] == "dense" and g["model"] == group["model"]), None)


def _str_severities(corrupted: dict[str, dict[int, float]]) -> dict[str, dict[str, float]]:
    return {name: {str(s): v for s, v in sorted(by_sev.items())} for name, by_sev in corrupted.items()}


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Load ``results.json`` (a file or the report directory); version 1 files load too."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    results = json.loads(path.read_text())
    if results.get("format") not in READABLE_FORMATS:
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


def csv_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``results.csv``: per checkpoint, the clean accuracy (corruption "clean",
    severity 0) then each corruption (high- to low-frequency) and severity."""
    names = results.get("frequency_order") or list(results["corruptions"])
    rows = []
    for m in results["methods"]:
        common = {"label": m["label"], "checkpoint": m["checkpoint"], "model": m["model"],
                  "method": m["method"], "sparsity": m["sparsity"], "seed": m["train_seed"]}
        rows.append({**common, "corruption": "clean", "severity": 0, "accuracy": m["clean"]})
        for name in names:
            for s, acc in sorted(m["accuracy"].get(name, {}).items(), key=lambda kv: int(kv[0])):
                rows.append({**common, "corruption": name, "severity": int(s), "accuracy": acc})
    return rows


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
    """The text of ``report.md``. ``plot_name=None`` leaves out every image."""
    data, methods, base = results["dataset"], results["methods"], results["baseline"]
    groups = results.get("groups") or []
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
        *_definitions(base),
        "",
        "## Summary",
        "",
        "One row per checkpoint; all numbers in %.",
        "",
    ]
    header = (["Method", "Seed", "Clean", "mPC", "rPC"] + (["mCE", "Rel. mCE"] if base else [])
              + ["γᵃ", "γʳ"] + ([f"mPC vs {base}", "Wins", "Losses", "Ties"] if base else [])
              + ["Checkpoint"])
    rows = []
    for m in methods:
        row = [m["label"], _seed(m.get("train_seed")), _pct(m["clean"]), _pct(m["mPC"]),
               _pct(m["rPC"])]
        if base:
            row += [_pct(m.get("mCE")), _pct(m.get("relative_mCE"))]
        row += [_pct(m.get("gamma_a")), _pct(m.get("gamma_r"))]
        if base:
            vs = m["vs_baseline"]
            wl = (vs or {}).get("win_loss") or {}
            row += [_signed_pct(vs and vs["mPC"]), *(_count(wl.get(k)) for k in ("win", "loss", "tie"))]
        rows.append(row + [f"`{m['checkpoint']}`"])
    lines += _table(header, rows, numeric_from=1, numeric_to=len(header) - 1)
    lines += _left_out_lines([(m["label"], m["vs_baseline"], base) for m in methods])
    if plot_name:
        lines += ["", f"![Mean accuracy against severity, one panel per corruption family]"
                      f"({FAMILY_PLOT_NAME})"]
    if any(g["n"] > 1 for g in groups):
        lines += ["", *_seed_section(groups, base)]
    if has_comparison(results):
        lines += ["", *_comparison_section(results, plot_name is not None)]
    lines += ["", *_per_corruption_section(results)]
    if plot_name:
        lines += ["", "## Accuracy against severity", "",
                  "Severity 0 is the clean accuracy; a band is ± one std over seeds.", "",
                  f"![Accuracy against severity, one panel per corruption]({plot_name})"]
    if results.get("spectral"):
        lines += ["", *_spectral_section(results["spectral"], plot_name is not None)]
    if results.get("stability"):
        lines += ["", *_stability_section(results["stability"])]
    for m in methods:
        lines += ["", *_method_section(m, results, base)]
    return "\n".join(lines) + "\n"


def _definitions(base: str | None) -> list[str]:
    lines = [
        "## What the numbers mean",
        "",
        "A is a top-1 accuracy, E = 1 − A the error; *c* runs over corruptions, *s* over "
        "severities.",
        "",
        "- **Clean**: accuracy on the uncorrupted videos.",
        "- **mPC** = mean over *c* of (mean over *s* of A(*s*, *c*)): mean performance under "
        "corruption (Michaelis et al. 2019, *Benchmarking Robustness in Object Detection*).",
        "- **rPC** = mPC / Clean: the share of clean accuracy kept under corruption.",
    ]
    if base:
        lines += [
            f"- **CE** (corruption error) of corruption *c* = Σₛ E(*s*, *c*) / Σₛ E_{base}(*s*, *c*); "
            f"**mCE** = mean of CE over corruptions (Hendrycks & Dietterich 2019, *Benchmarking "
            f"Neural Network Robustness to Common Corruptions and Perturbations*). The baseline "
            f"is **{base}**: 100 means as many errors as {base}, lower is better; a corruption {base} never gets wrong has no CE and is left out of the mean.",
            f"- **Rel. mCE**: relative CE of *c* = Σₛ (E(*s*, *c*) − E_clean) / "
            f"Σₛ (E_{base}(*s*, *c*) − E_{base},clean), averaged over corruptions: the accuracy "
            f"a corruption costs, against what it costs {base} (lower is better).",
        ]
    lines += [
        "- **γᵃ** (absolute robustness) = 1 − (A_clean − A_c) and **γʳ** (relative "
        "robustness) = 1 − (A_clean − A_c) / A_clean, with A_c the mean accuracy over *c*'s "
        "severities, averaged over corruptions (Schiappa et al. 2023, *A Large-scale "
        "Robustness Analysis of Video Action Recognition Models*). 100 means the corruptions "
        "cost nothing, higher is better; γʳ equals rPC.",
        "- Method labels give the **sparsity**: the fraction of prunable weights removed "
        "(1 − density); *sev N* is the corruption severity.",
    ]
    if base:
        lines += [
            f"- **vs {base}**: relative change against the baseline, (method − {base}) / "
            f"{base}; positive means more accurate. A **scenario** is one (corruption, "
            f"severity); **Wins / Losses / Ties** count the scenarios where the method is more "
            f"/ less / as accurate as {base} (Wu et al. 2025, *Dynamic Sparse Training versus "
            f"Dense Training: The Unexpected Winner in Image Corruption Robustness*).",
        ]
    lines += ["- —: not measured, or undefined (a division by zero)."]
    return lines


def _seed_section(groups: list[dict[str, Any]], base: str | None) -> list[str]:
    keys = ["clean", "mPC", "rPC"] + (["mCE", "relative_mCE"] if base else []) + ["gamma_a", "gamma_r"]
    names = {"clean": "Clean", "relative_mCE": "Rel. mCE", "gamma_a": "γᵃ", "gamma_r": "γʳ"}
    lines = ["## Mean ± std over training seeds", "",
             "Runs of the same model, method and sparsity that differ in their training seed "
             "(the config's `seed`), in %: the mean, ± the sample standard deviation "
             "(n − 1 in the denominator).", ""]
    header = ["Method", "Runs", "Seeds"] + [names.get(k, k) for k in keys]
    rows = [[g["label"], str(g["n"]), ", ".join(_seed(s) for s in g["seeds"])]
            + [_mean_std(g["mean"][k], (g["std"] or {}).get(k)) for k in keys] for g in groups]
    return lines + _table(header, rows, numeric_from=1, numeric_to=len(header))


def has_comparison(results: dict[str, Any]) -> bool:
    """Whether some (method, sparsity) has a dense model to be compared with."""
    return any(g.get("vs_reference") for g in results.get("groups") or [])


def _comparison_section(results: dict[str, Any], with_plot: bool) -> list[str]:
    groups = results["groups"]
    compared = [g for g in groups if g["vs_reference"]]
    refs = sorted({g["reference"] for g in compared})
    ref = refs[0] if len(refs) == 1 else "dense"
    lines = ["## Dynamic sparse vs dense training", "",
             f"As Wu et al. (2025) compare them: each method and sparsity (the mean over its "
             f"runs) against {ref} (the mean over its runs). mPC − {ref} is in accuracy "
             f"points; *vs {ref}* is relative, (method − {ref}) / {ref}.", ""]
    header = ["Method", "Sparsity", "Runs", "Clean", "mPC", f"mPC − {ref}", f"mPC vs {ref}",
              f"Clean vs {ref}", "Wins", "Losses", "Ties"]
    rows = []
    for g in groups:
        vs = g["vs_reference"]
        wl = (vs or {}).get("win_loss") or {}
        rows.append([g["label"], f"{g['sparsity']:g}", str(g["n"]),
                     _mean_std(g["mean"]["clean"], (g["std"] or {}).get("clean")),
                     _mean_std(g["mean"]["mPC"], (g["std"] or {}).get("mPC")),
                     _signed_points(vs and vs["mPC_difference"]), _signed_pct(vs and vs["mPC"]),
                     _signed_pct(vs and vs["clean"]),
                     *(_count(wl.get(k)) for k in ("win", "loss", "tie"))])
    lines += _table(header, rows, numeric_from=1, numeric_to=len(header))
    lines += _left_out_lines([(g["label"], g["vs_reference"], g["reference"]) for g in compared])
    total = [sum(g["vs_reference"]["win_loss"][k] for g in compared) for k in ("win", "loss", "tie")]
    lines += ["", f"Over all methods and scenarios: {total[0]} wins, {total[1]} losses, "
                  f"{total[2]} ties."]
    lines += ["", f"### Relative improvement over {ref} per corruption", "",
              "Mean accuracy over severities, (method − dense) / dense, in %. Corruptions run "
              "from the most high-frequency damage (noise) to the least (fog, contrast), then "
              "temporal ones: Wu et al. explain DST's robustness by a bias toward "
              "low-frequency features, which would show as gains that shrink down the table.", ""]
    bands = results.get("frequency_bands") or {}
    header = ["Corruption", "Band"] + [g["label"] for g in compared]
    rows = [[name, bands.get(name) or "unranked"]
            + [_signed_pct(g["vs_reference"]["per_corruption"].get(name)) for g in compared]
            for name in results.get("frequency_order") or results["corruptions"]]
    lines += _table(header, rows, numeric_from=2, numeric_to=len(header))
    if with_plot:
        lines += ["", f"![Relative improvement over dense, corruption x method]({HEATMAP_NAME})"]
    return lines


def _left_out_lines(compared: list[tuple[str, dict[str, Any] | None, str | None]]) -> list[str]:
    """One line naming the (corruption, severity) cells that only one side of a comparison
    (label, its ``compare`` result, the reference's label) holds, which the numbers leave
    out; nothing when every pair holds the same cells (or the results predate ``left_out``)."""
    parts = [f"{label} vs {ref}: {text}" for label, vs, ref in compared
             if vs and (text := metrics.describe_left_out(vs.get("left_out"), label, ref))]
    if not parts:
        return []
    return ["", "Left out of the comparison (cells only one side holds; the numbers above are "
                "over the cells both hold): " + "; ".join(parts) + "."]


def _per_corruption_section(results: dict[str, Any]) -> list[str]:
    groups = results.get("groups") or [
        {"label": m["label"], "n": 1, "per_corruption_mean": m["per_corruption"],
         "accuracy_std": None, "members": [m["label"]]} for m in results["methods"]]
    by_label = {m["label"]: m for m in results["methods"]}
    families = results.get("families") or {}
    seeds = any(g["n"] > 1 for g in groups)
    lines = ["## Accuracy per corruption", "",
             "Mean accuracy over severities, in %"
             + (" (mean ± std over seeds of each run's mean)" if seeds else "") + ".", ""]
    header = ["Corruption", "Family", "Kind"] + [g["label"] for g in groups]
    rows = []
    for name in results.get("frequency_order") or results["corruptions"]:
        row = [name, families.get(name) or "?", results["corruptions"][name]["kind"] or "?"]
        for g in groups:
            values = [by_label[label]["per_corruption"].get(name) for label in g["members"]]
            if g["n"] > 1 and None not in values:
                row.append(_mean_std(*metrics.mean_std(values)))
            else:
                row.append(_pct(g["per_corruption_mean"].get(name)))
        rows.append(row)
    return lines + _table(header, rows, numeric_from=3, numeric_to=len(header))


def _stability_section(stability: dict[str, Any]) -> list[str]:
    """Flip rates: ``{"clips_per_video", "stride", "flip_rate": {label: {condition: rate}}}``."""
    rates = stability["flip_rate"]
    conditions = list(next(iter(rates.values())))
    lines = ["## Prediction stability", "",
             f"Flip rate (%): how often the top-1 prediction changes between consecutive clips "
             f"of a video that start {stability['stride']} frame(s) apart "
             f"({stability['clips_per_video']} clips per video; ImageNet-P's flip probability, "
             "Hendrycks & Dietterich 2019, applied to time). Lower is steadier. A corrupted "
             "video is corrupted whole before its clips are cut.", ""]
    rows = [[label, *(_pct(rates[label].get(c)) for c in conditions)] for label in rates]
    return lines + _table(["method", *conditions], rows, 1, len(conditions) + 1)


def _spectral_section(spectral: dict[str, Any], with_plot: bool) -> list[str]:
    radii, curves = _check_spectral(spectral)
    lines = ["## Accuracy against frequency radius", "",
             spectral.get("description") or
             "Accuracy (%) on test videos filtered frame by frame in the 2-D Fourier domain: "
             "*low* keeps the frequencies at radius ≤ r, *high* those above r (r in "
             "frequency-index units of the model's input frame; "
             "`vidsparse.robustness.spectral`). A model that keeps its accuracy on low-passed "
             "videos relies on low-frequency content (Wu et al. 2025, after Yin et al. 2019).",
             ""]
    header = ["Radius"] + [f"{label} ({band})" for label in curves for band in ("low", "high")
                           if band in curves[label]]
    rows = [[f"{r:g}"] + [_pct(curves[label][band][i]) for label in curves
                          for band in ("low", "high") if band in curves[label]]
            for i, r in enumerate(radii)]
    lines += _table(header, rows, numeric_from=0, numeric_to=len(header))
    if with_plot:
        lines += ["", f"![Accuracy against frequency radius]({SPECTRAL_PLOT_NAME})"]
    return lines


def _method_section(m: dict[str, Any], results: dict[str, Any], base: str | None) -> list[str]:
    severities = sorted({s for c in results["corruptions"].values() for s in c["severities"]})
    seed = m.get("train_seed")
    lines = [f"## {m['label']}", "",
             f"Checkpoint `{m['checkpoint']}` — model {m['model']}, method {m['method']}, "
             f"density {m['density']:g}" + ("" if seed is None else f", training seed {seed}")
             + f". Clean {_pct(m['clean'])}, mPC {_pct(m['mPC'])}, rPC {_pct(m['rPC'])}"
             + ("" if m.get("mCE") is None else
                f", mCE {_pct(m['mCE'])}, relative mCE {_pct(m['relative_mCE'])}") + ".", ""]
    compare = base is not None and m["vs_baseline"] is not None
    with_ce = base is not None and m.get("CE") is not None
    header = (["Corruption", "Kind"] + [f"sev {s}" for s in severities] + ["Mean"]
              + ([f"Mean vs {base}"] if compare else []) + (["CE", "Rel. CE"] if with_ce else [])
              + ["γᵃ", "γʳ"])
    rows = []
    for name in results.get("frequency_order") or results["corruptions"]:
        info = results["corruptions"][name]
        by_sev = m["accuracy"].get(name, {})
        row = [name, info["kind"] or "?"] + [_pct(by_sev.get(str(s))) for s in severities]
        row.append(_pct(m["per_corruption"].get(name)))
        if compare:
            row.append(_signed_pct(m["vs_baseline"]["per_corruption"].get(name)))
        if with_ce:
            row += [_pct(m["CE"].get(name)), _pct(m["relative_CE"].get(name))]
        row += [_pct((m.get("gamma_a_per_corruption") or {}).get(name)),
                _pct((m.get("gamma_r_per_corruption") or {}).get(name))]
        rows.append(row)
    return lines + _table(header, rows, numeric_from=2, numeric_to=len(header))


def _table(header: list[str], rows: list[list[str]], numeric_from: int, numeric_to: int) -> list[str]:
    align = ["---:" if numeric_from <= i < numeric_to else "---" for i in range(len(header))]
    return ["| " + " | ".join(r) + " |" for r in [header, align, *rows]]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _signed_pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}%"


def _signed_points(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}"


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None or (isinstance(mean, float) and not math.isfinite(mean)):
        return "—"
    if std is None or (isinstance(std, float) and not math.isfinite(std)):
        return _pct(mean)
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _seed(value: Any) -> str:
    return "—" if value is None else str(value)


def summary_table(results: dict[str, Any]) -> str:
    """A plain-text table of clean accuracy, mPC, rPC (and mCE when there is a baseline)
    per method, for a terminal."""
    width = max(len("Method"), *(len(m["label"]) for m in results["methods"]))
    with_mce = any(m.get("mCE") is not None for m in results["methods"])
    extra = f"  {'mCE':>6}" if with_mce else ""
    lines = [f"{'Method':<{width}}  {'Clean':>6}  {'mPC':>6}  {'rPC':>6}{extra}"]
    for m in results["methods"]:
        extra = f"  {_pct(m.get('mCE')):>6}" if with_mce else ""
        lines.append(f"{m['label']:<{width}}  {_pct(m['clean']):>6}  {_pct(m['mPC']):>6}  "
                     f"{_pct(m['rPC']):>6}{extra}")
    return "\n".join(lines)


# --- plots -----------------------------------------------------------------------------

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
    try:
        # bbox "tight": the legend sits outside the axes and long labels must not be cut
        return _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110,
                                                           bbox_inches="tight"))
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


def plot_accuracy_vs_severity(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """One panel per corruption (high- to low-frequency): accuracy (%) against severity, one
    line per method (the mean over its seeds, a band of ± one std), the clean accuracy at
    severity 0 so that each line starts from where the model began."""
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
        ax.set_xticks(range(0, 1 + max(results["corruptions"][name]["severities"])))
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    _finish_grid(fig, axes, len(names), rows)
    return _save(fig, path)


def plot_accuracy_by_family(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """One panel per corruption family (noise, blur, weather, digital, temporal, codec): the
    mean accuracy (%) over the family's corruptions against severity, one line per method
    (mean over seeds, ± one std band); severity 0 is the clean accuracy."""
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
        ax.set_xticks([0] + severities)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    _finish_grid(fig, axes, len(present), rows)
    return _save(fig, path)


def plot_improvement_heatmap(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Corruption (rows, high- to low-frequency) x method (columns): the relative change of
    the mean accuracy over severities against dense training, in %; blue is better than
    dense, red worse. Needs :func:`has_comparison`."""
    import numpy as np

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


def plot_spectral(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """``results["spectral"]``: accuracy (%) against frequency radius, one panel for the
    low-frequency curves and one for the high-frequency ones, one line per label."""
    radii, curves = _check_spectral(results.get("spectral"))
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


def _check_spectral(spectral: Any) -> tuple[list[float], dict[str, dict[str, list]]]:
    if not isinstance(spectral, dict) or "radii" not in spectral or "curves" not in spectral:
        raise ValueError('results["spectral"] must be {"radii": [...], "curves": '
                         '{label: {"low": [...], "high": [...]}}}')
    radii = [float(r) for r in spectral["radii"]]
    curves = spectral["curves"]
    for label, curve in curves.items():
        for band in ("low", "high"):
            if band in curve and len(curve[band]) != len(radii):
                raise ValueError(f'spectral curve {label!r} {band}: {len(curve[band])} values '
                                 f'for {len(radii)} radii')
    return radii, curves


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


# --- writing ---------------------------------------------------------------------------

def write_report(evaluation: Any, out_dir: str | os.PathLike, baseline: str | int | None = None,
                 spectral: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv``, the plots and ``report.md`` to ``out_dir``;
    return their paths (keys ``results``, ``csv``, ``plot``, ``family_plot``, ``report``, and
    ``heatmap`` / ``spectral_plot`` when written).

    Args:
        baseline: the checkpoint CE/mCE are normalised by and the others compared with: a
            label, run name, checkpoint path or index; default the first dense checkpoint.
        spectral: radius-accuracy curves to include; default ``evaluation.spectral`` if the
            evaluation has one.

    Example:
        >>> paths = write_report(evaluate(["runs/dense", "runs/rigl"], "data/ucf101"), "out")
        >>> print(summary_table(read_results(paths["results"])))
    """
    if spectral is None:
        spectral = getattr(evaluation, "spectral", None)
    return write_report_files(build_results(evaluation, baseline, spectral), out_dir)


def write_report_files(results: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write every report file from a results dictionary (``build_results`` or
    ``read_results`` output); see :func:`write_report`."""
    if results.get("spectral"):
        _check_spectral(results["spectral"])  # before any file is written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = _json_safe(results)
    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    paths = {
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
