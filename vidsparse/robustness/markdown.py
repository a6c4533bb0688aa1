"""``report.md`` and the terminal summary, rendered from a results dictionary.

The verdict first (one line per method against dense, when there is a dense model), then
what was measured and how each number is defined, then tables: a summary per checkpoint,
mean ± std over seeds, dense vs DST (relative improvement per corruption from high- to
low-frequency, win/loss) with its intervals and p-values, accuracy per corruption,
spectral curves and flip rates when measured, one section per checkpoint. Pure functions of
the results: nothing is written here.
"""

from __future__ import annotations

import math
from typing import Any

from vidsparse.robustness import metrics
from vidsparse.robustness.plots import FAMILY_PLOT_NAME, HEATMAP_NAME, PLOT_NAME, SPECTRAL_PLOT_NAME
from vidsparse.robustness.schema import Results, as_spectral, has_comparison, results_dict


def render_markdown(results: Results | dict[str, Any], plot_name: str | None = PLOT_NAME) -> str:
    """The text of ``report.md``. ``plot_name=None`` leaves out every image.

    Example:
        >>> text = render_markdown(read_results("reports/ucf101"), plot_name=None)
    """
    results = results_dict(results)
    data, methods, base = results["dataset"], results["methods"], results["baseline"]
    groups = results.get("groups") or []
    n_sev = sorted({s for c in results["corruptions"].values() for s in c["severities"]})
    source = (f"corrupted on the fly (seed {results['seed']})" if data["corrupted"] is None
              else f"corrupted copies read from `{data['corrupted']}`"
              + ("" if results["seed"] is None else f" (written with seed {results['seed']})"))
    statistics = results.get("statistics")
    lines = ["# Robustness report", ""]
    if statistics:
        lines += [f"Verdict on mPC against dense ({_percent(statistics['confidence'])} paired "
                  "bootstrap interval and Holm-adjusted sign-flip test; see *How sure*):", "",
                  *(f"- {line}" for line in verdict_lines(results, markdown=True)), ""]
    lines += [
        f"Top-1 accuracy (%) of {len(methods)} checkpoint(s) on {data['num_videos']} test "
        f"videos of `{data['root']}` (fold {data['fold']}), clean and under "
        f"{len(results['corruptions'])} corruption(s) at severities "
        f"{', '.join(map(str, n_sev))}, {source}. Each video is scored on its centred clip.",
        "",
        *_definitions(base, statistics),
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
    if statistics:
        lines += ["", *_statistics_section(statistics)]
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


def verdict_lines(results: Results | dict[str, Any], markdown: bool = False) -> list[str]:
    """One line per method (and sparsity) compared with dense: the verdict on mPC, the
    difference in points with its interval, the Holm-adjusted p-value and n; no lines when
    the results hold no statistics (no dense model, or a file older than them).

    Example:
        >>> print("\n".join(verdict_lines(read_results("reports/ucf101"))))
        RigL sparsity 0.5: not resolved at 95% (mPC +1.2 points vs Dense, 95% CI -0.8 to +3.1; Holm-adjusted p = 0.240; 160 videos, 2 seeds each)
    """
    statistics = results_dict(results).get("statistics")
    if not statistics:
        return []
    lines = []
    level = _percent(statistics["confidence"])
    for c in statistics["comparisons"]:
        mpc = c["mPC"]
        head = f"{c['label']}: {c['verdict']}"
        detail = (f"mPC {_signed_points(mpc['difference'])} points vs {c['reference']}, {level} CI "
                  f"{_interval(mpc['low'], mpc['high'], ' to ')}; Holm-adjusted {_p_clause(mpc['p_holm'])}; "
                  f"{_n_text(c)}")
        lines.append(f"**{head}** ({detail})" if markdown else f"{head} ({detail})")
    return lines


def _statistics_section(statistics: dict[str, Any]) -> list[str]:
    level = _percent(statistics["confidence"])
    comparisons = statistics["comparisons"]
    refs = sorted({c["reference"] for c in comparisons})
    ref = refs[0] if len(refs) == 1 else "dense"
    lines = ["## How sure: differences with dense", "",
             f"Method − {ref} in accuracy points, [{level} interval], from a paired bootstrap "
             f"over test videos ({statistics['n_bootstrap']} replicates); *p*: sign-flip "
             f"permutation test, Holm-adjusted over the {len(comparisons)} comparison(s); "
             f"draws keyed on seed {statistics['seed']}. The procedure is under *What the "
             "numbers mean*.", ""]
    header = ["Method", "Sparsity", "Videos", f"Clean − {ref}", "p (clean)", f"mPC − {ref}",
              "p (mPC)", f"rPC − {ref}", f"Seeds (vs {ref})", "Resampled", "Verdict"]
    rows = []
    for c in comparisons:
        seeds = (", ".join(_seed(s) for s in c["seeds"]) + " vs "
                 + ", ".join(_seed(s) for s in c["reference_seeds"]))
        rows.append([c["label"], f"{c['sparsity']:g}", str(c["n_videos"]), _estimate(c["clean"]),
                     _p(c["clean"]["p_holm"]), _estimate(c["mPC"]), _p(c["mPC"]["p_holm"]),
                     _estimate(c["rPC"]), seeds, c["resampling"], c["verdict"]])
    return lines + _table(header, rows, numeric_from=1, numeric_to=8)


def _statistics_definition(statistics: dict[str, Any]) -> list[str]:
    level = _percent(statistics["confidence"])
    refs = sorted({c["reference"] for c in statistics["comparisons"]})
    ref = refs[0] if len(refs) == 1 else "dense"
    tail = 100 * (1 - statistics["confidence"]) / 2
    n = len(statistics["comparisons"])
    return [
        f"- **Verdict, intervals, p** (the opening lines and *How sure*): for each method and "
        f"sparsity against {ref}, the difference (method − {ref}, in accuracy points) in "
        f"clean accuracy, mPC and rPC. A method's number is the mean over its training seeds "
        f"of each seed's number. The **{level} interval** comes from a paired bootstrap over "
        f"test videos: {statistics['n_bootstrap']} times the test videos are drawn with "
        f"replacement, one draw shared by every model and condition (so models are compared "
        f"video by video), and the difference is computed again; the interval runs from the "
        f"{tail:g}th to the {100 - tail:g}th percentile of those differences. With several "
        f"seeds per method each replicate first draws each method's seeds with replacement, "
        f"then the videos (*seeds, then videos*), so the interval also covers the spread "
        f"between seeds; with one seed only the videos are drawn (*videos*). "
        f"**p** is a paired sign-flip permutation test on the per-video differences (a "
        f"video's share of clean accuracy, or of mPC: its correctness averaged over the "
        f"corrupted conditions with mPC's weights, then over seeds): if the two were "
        f"interchangeable on every video, each difference would be as likely to have either "
        f"sign. It is exact (every sign pattern) when at most {statistics['exact_up_to']} "
        f"videos differ, else from {statistics['n_permutations']} random patterns; rPC, a "
        f"ratio, has an interval but no test. p-values are Holm-adjusted over the {n} "
        f"method(s) compared. **More robust than {ref}**: the mPC interval lies above 0 and "
        f"the adjusted p is below {_alpha(statistics)}; **less robust**: it lies below 0 and p "
        f"is below {_alpha(statistics)}; otherwise **not resolved at {level}**. The test takes "
        f"the trained models as given; the spread between seeds enters through the interval "
        f"only, and with two or three seeds that part is itself rough. Every draw is keyed "
        f"on seed {statistics['seed']}: the same predictions and seed give the same numbers.",
    ]


def _definitions(base: str | None, statistics: dict[str, Any] | None = None) -> list[str]:
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
    if statistics:
        lines += _statistics_definition(statistics)
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
    checked = as_spectral(spectral)
    radii, curves = [float(r) for r in checked.radii], checked.curves
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


def _estimate(estimate: dict[str, Any]) -> str:
    return (f"{_signed_points(estimate['difference'])} "
            f"[{_interval(estimate['low'], estimate['high'], ', ')}]")


def _interval(low: float | None, high: float | None, sep: str) -> str:
    return f"{_signed_points(low)}{sep}{_signed_points(high)}"


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _p_clause(value: float | None) -> str:
    text = _p(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def _alpha(statistics: dict[str, Any]) -> str:
    return f"{round(1 - statistics['confidence'], 12):g}"


def _n_text(comparison: dict[str, Any]) -> str:
    k, k_ref = len(comparison["seeds"]), len(comparison["reference_seeds"])
    seeds = (f"{k} seed{'s' if k > 1 else ''} each" if k == k_ref
             else f"{k} vs {k_ref} seeds")
    return f"{comparison['n_videos']} videos, {seeds}"


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _seed(value: Any) -> str:
    return "—" if value is None else str(value)


def summary_table(results: Results | dict[str, Any]) -> str:
    """A plain-text table of clean accuracy, mPC, rPC (and mCE when there is a baseline)
    per method, for a terminal.

    Example:
        >>> print(summary_table(read_results("reports/ucf101")))
    """
    results = results_dict(results)
    width = max(len("Method"), *(len(m["label"]) for m in results["methods"]))
    with_mce = any(m.get("mCE") is not None for m in results["methods"])
    extra = f"  {'mCE':>6}" if with_mce else ""
    lines = [f"{'Method':<{width}}  {'Clean':>6}  {'mPC':>6}  {'rPC':>6}{extra}"]
    for m in results["methods"]:
        extra = f"  {_pct(m.get('mCE')):>6}" if with_mce else ""
        lines.append(f"{m['label']:<{width}}  {_pct(m['clean']):>6}  {_pct(m['mPC']):>6}  "
                     f"{_pct(m['rPC']):>6}{extra}")
    return "\n".join(lines)
