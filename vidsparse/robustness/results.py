"""From an :class:`~vidsparse.robustness.evaluate.Evaluation` to its :class:`~.schema.Results`.

Per checkpoint: the accuracy table and its ``metrics.summarize`` against the baseline
checkpoint, and ``metrics.compare`` with it. Per group of seeds (``labels.group_runs``): the
mean and std over the runs and the comparison of the group's mean table with the dense
group of the same model. From the per-video predictions: how sure each comparison is
(:func:`comparison_statistics`). Nothing here draws or writes; ``report.write_report`` does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vidsparse.corruptions import list_corruptions
from vidsparse.robustness import metrics, stats
from vidsparse.robustness.labels import group_key, group_runs, method_label, resolve_baseline, unique_labels
from vidsparse.robustness.schema import (
    Comparison,
    CorruptionInfo,
    DatasetInfo,
    Estimate,
    GroupResult,
    MethodResult,
    NOT_RUN,
    PerVideo,
    Results,
    Spectral,
    Statistics,
    as_spectral,
    as_stability,
)
from vidsparse.robustness.stats import StatsConfig

# The statistics of a comparison, in the order ``_per_run`` computes them per run.
STATISTICS = ("clean", "mPC", "rPC")


def results_from_evaluation(evaluation: Any, baseline: str | int | None = None,
                            spectral: Spectral | dict[str, Any] | None = None,
                            stats_config: StatsConfig | None = None) -> Results:
    """The typed results of an ``Evaluation``, with its per-video predictions
    (``Results.per_video``) and, where there is a dense group, the statistics of each
    comparison with it (``Results.statistics``).

    Args:
        evaluation: :func:`~vidsparse.robustness.evaluate.evaluate` output; its ``spectral``
            and ``stability``, when set, are carried into the results.
        baseline: the checkpoint that normalises CE/mCE and that the others are compared
            with (see :func:`~vidsparse.robustness.labels.resolve_baseline`); default the
            first dense checkpoint.
        spectral: radius-accuracy curves, ``{"radii": [...], "curves": {label: {"low":
            [...], "high": [...]}}}``; default ``evaluation.spectral``.
        stats_config: the bootstrap and test settings, its ``seed`` among them; default
            ``StatsConfig()`` (seed 0).

    Raises:
        ValueError: a ``baseline`` that names no checkpoint, or spectral curves whose
            length is not the number of radii.

    Example:
        >>> results = results_from_evaluation(evaluate(["runs/dense", "runs/rigl"], "data/ucf101"))
        >>> results.baseline, results.methods[1].vs_baseline["win_loss"]
        ('Dense', {'win': 4, 'loss': 15, 'tie': 11})
    """
    spectral = evaluation.spectral if spectral is None else spectral
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
    names = list(severities)
    first_data = configs[0].get("data", {})
    groups = _groups(tables, configs, labels, base, base_table)
    unmeasured = np.full(len(evaluation.videos), NOT_RUN)
    per_video = PerVideo(videos=list(evaluation.videos), targets=evaluation.labels,
                         conditions=list(evaluation.conditions),
                         predictions={label: np.stack([p.get(c, unmeasured) for c in evaluation.conditions])
                                      for label, p in zip(labels, evaluation.predictions)})
    return Results(
        dataset=DatasetInfo(
            root=evaluation.data_root,
            split="test",
            layout=first_data.get("layout"),
            fold=first_data.get("fold"),
            num_videos=len(evaluation.videos),
            source="on-the-fly" if evaluation.corrupted is None else "on-disk",
            corrupted=evaluation.corrupted,
            videos=list(evaluation.videos),
        ),
        seed=evaluation.seed,
        corruptions={name: CorruptionInfo(kind=kinds.get(name), severities=sev,
                                          options=dict(evaluation.options.get(name, {})))
                     for name, sev in severities.items()},
        families={n: metrics.corruption_family(n, kinds.get(n)) for n in names},
        frequency_order=metrics.frequency_order(names),
        frequency_bands={n: metrics.frequency_band(n) for n in names},
        baseline=None if base is None else labels[base],
        baseline_checkpoint=None if base is None else paths[base],
        methods=[_method(i, label, table, config, path, base, base_table)
                 for i, (label, table, config, path) in enumerate(zip(labels, tables, configs, paths))],
        groups=groups,
        statistics=comparison_statistics(per_video, groups, stats_config),
        spectral=None if spectral is None else as_spectral(spectral),
        stability=None if evaluation.stability is None else as_stability(evaluation.stability),
        per_video=per_video,
    )


def build_results(evaluation: Any, baseline: str | int | None = None,
                  spectral: Spectral | dict[str, Any] | None = None,
                  stats_config: StatsConfig | None = None) -> dict[str, Any]:
    """The ``results.json`` dictionary of an ``Evaluation``: :func:`results_from_evaluation`
    in its JSON form (JSON types only, NaN as None).

    Example:
        >>> build_results(evaluate(["runs/dense", "runs/rigl"], "data/ucf101"))["baseline"]
        'Dense'
    """
    return results_from_evaluation(evaluation, baseline, spectral, stats_config).to_dict()


def with_statistics(results: Results, stats_config: StatsConfig | None = None) -> Results:
    """``results`` with its statistics computed again from ``results.per_video`` (e.g. with
    another seed, or for a file written before the statistics existed).

    Example:
        >>> again = with_statistics(Results.read("reports/ucf101", per_video=True), StatsConfig(seed=1))
    """
    if results.per_video is None:
        raise ValueError("the statistics need the per-video predictions: read the results with "
                         "Results.read(path, per_video=True)")
    return dataclasses.replace(
        results, statistics=comparison_statistics(results.per_video, results.groups or [], stats_config))


def comparison_statistics(per_video: PerVideo, groups: list[GroupResult],
                          config: StatsConfig | None = None) -> Statistics | None:
    """Each group that has a reference (dense) group, against it: the differences in clean
    accuracy, mPC and rPC with paired bootstrap intervals (:func:`stats.paired_bootstrap`,
    one resample of the videos per replicate shared by every run and condition; the seeds
    of a group resampled too when ``config.resample_seeds``), sign-flip p-values of the
    clean and mPC differences (per-video shares, seed means), Holm-adjusted over the
    comparisons, and the verdict on mPC. ``None`` when no group has a reference.

    A group's statistic is the mean over its runs of each run's statistic, as
    ``GroupResult.mean`` is; mPC's per-video share is the video's correctness weighted by
    :func:`metrics.mpc_weights`, so its mean over videos is mPC.
    """
    config = config or StatsConfig()
    index = {g.label: i for i, g in enumerate(groups)}
    compared = [(index[g.label], index[g.reference]) for g in groups if g.reference is not None]
    if not compared:
        return None
    labels = list(per_video.predictions)
    members = [[labels.index(m) for m in g.members] for g in groups]
    # A group and its reference are compared over the conditions all their runs were run
    # under (what metrics.compare does with their tables); usually that is every condition
    # for every comparison, and one bootstrap pass serves them all. Each pass draws the
    # same videos: the draws depend only on the seed and the number of videos.
    by_conditions: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    for i, r in compared:
        ran = np.all([per_video.ran(labels[k]) for k in members[i] + members[r]], axis=0)
        by_conditions.setdefault(tuple(np.flatnonzero(ran)), []).append((i, r))
    estimates: dict[tuple[int, int], dict[str, Estimate]] = {}
    for conditions, pairs in by_conditions.items():
        involved = sorted({g for pair in pairs for g in pair})
        runs = sorted({k for g in involved for k in members[g]})
        row = {k: j for j, k in enumerate(runs)}
        per_run = np.stack([_per_run(per_video, labels[k], conditions) for k in runs])  # runs x 2 x videos
        local = [[row[k] for k in members[g]] for g in involved]
        replicates = stats.paired_bootstrap(per_run, local, _statistics, n_boot=config.n_bootstrap,
                                            seed=config.seed, resample_seeds=config.resample_seeds)
        point = stats.group_statistic(per_run, local, _statistics)                      # groups x 3
        at = {g: j for j, g in enumerate(involved)}
        for i, r in pairs:
            out = {}
            for k, name in enumerate(STATISTICS):
                low, high = stats.percentile_interval(
                    replicates[:, at[i], k] - replicates[:, at[r], k], config.confidence)
                p = None
                if name != "rPC":  # a ratio of means has no per-video share to flip
                    d = per_run[local[at[i]], k].mean(axis=0) - per_run[local[at[r]], k].mean(axis=0)
                    p = stats.sign_flip_test(d, config.n_permutations, config.seed)
                out[name] = Estimate(difference=float(point[at[i], k] - point[at[r], k]),
                                     low=low, high=high, p=p)
            estimates[i, r] = out
    rows = []
    for i, r in compared:
        g = groups[i]
        several = len(members[i]) > 1 or len(members[r]) > 1
        rows.append(Comparison(
            label=g.label, reference=g.reference, model=g.model, method=g.method,
            sparsity=g.sparsity, n_videos=len(per_video.videos), seeds=list(g.seeds),
            reference_seeds=list(groups[r].seeds),
            resampling="seeds, then videos" if several and config.resample_seeds else "videos",
            verdict="", **estimates[i, r]))
    for name in ("clean", "mPC"):
        for row, adjusted in zip(rows, stats.holm([getattr(row, name).p for row in rows])):
            getattr(row, name).p_holm = adjusted
    for row in rows:
        row.verdict = stats.verdict(row.mPC.low, row.mPC.high, row.mPC.p_holm,
                                    config.alpha, reference=row.reference)
    return Statistics(confidence=config.confidence, n_bootstrap=config.n_bootstrap,
                      n_permutations=config.n_permutations, exact_up_to=stats.EXACT_UP_TO,
                      seed=config.seed, resample_seeds=config.resample_seeds, comparisons=rows)


def _per_run(per_video: PerVideo, label: str, conditions: tuple[int, ...]) -> np.ndarray:
    """``2 x videos``: clean correctness, and mPC's per-video share over ``conditions``
    (indices into ``per_video.conditions``): correctness under each corrupted one weighted
    by ``metrics.mpc_weights``."""
    correct = per_video.correct(label).astype(np.float64)
    try:
        clean = per_video.conditions.index(("clean", 0))
    except ValueError:
        raise ValueError("per-video results: no clean predictions to compare") from None
    corrupted = [(i, per_video.conditions[i]) for i in conditions if i != clean]
    weights = metrics.mpc_weights(c for _, c in corrupted)
    share = sum(weights[c] * correct[i] for i, c in corrupted)
    return np.stack([correct[clean], share])


def _statistics(means: np.ndarray) -> np.ndarray:
    """Per run, from its means over the (resampled) videos: clean, mPC and rPC = mPC / clean."""
    clean, mpc = means[..., 0], means[..., 1]
    return np.stack([clean, mpc, mpc / clean], axis=-1)


def _method(i: int, label: str, table: dict[str, Any], config: dict[str, Any], path: str,
            base: int | None, base_table: dict[str, Any] | None) -> MethodResult:
    sparsity = config.get("sparsity") or {}
    density = float(sparsity.get("density", 1.0))
    summary = metrics.summarize(table, base_table)
    vs = None
    if base_table is not None and i != base:
        vs = metrics.compare(table, base_table)
        vs["win_loss"] = {k: vs["win_loss"][k] for k in ("win", "loss", "tie")}
    return MethodResult(
        label=label,
        checkpoint=path,
        run_name=config.get("name"),
        model=(config.get("model") or {}).get("name"),
        method=sparsity.get("method", "dense"),
        density=density,
        sparsity=round(1.0 - density, 6),
        train_seed=config.get("seed"),
        **{k: summary[k] for k in metrics.HEADLINE},
        per_corruption=summary["per_corruption"],
        CE=summary["CE"],
        relative_CE=summary["relative_CE"],
        gamma_a_per_corruption=summary["gamma_a_per_corruption"],
        gamma_r_per_corruption=summary["gamma_r_per_corruption"],
        accuracy=_str_severities(table["corrupted"]),
        vs_baseline=vs,
    )


def _groups(tables, configs, labels, base, base_table) -> list[GroupResult]:
    """Per (model, method, sparsity): the runs, mean/std over them, and the comparison of
    the mean table with the reference (dense) group's mean table."""
    members = group_runs(configs)
    several_models = len({group_key(c)[0] for c in configs}) > 1
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
        groups.append(GroupResult(
            label=f"{model}: {label}" if several_models else label,
            model=model,
            method="dense" if label == "Dense" else sparsity.get("method"),
            density=density,
            sparsity=round(1.0 - density, 6),
            members=[labels[i] for i in idx],
            seeds=[configs[i].get("seed") for i in idx],
            n=len(idx),
            mean=stats["mean"],
            std=stats["std"] if len(idx) > 1 else None,
            accuracy_mean=_str_severities(mean["corrupted"]),
            accuracy_std=None if std is None else _str_severities(std["corrupted"]),
            per_corruption_mean=metrics.corruption_means(mean),
        ))
    for g, mean in zip(groups, means):
        ref = _reference_group(g, members, groups, base)
        if ref is not None and groups[ref] is not g:
            g.reference = groups[ref].label
            g.vs_reference = metrics.compare(mean, means[ref])
    return groups


def _reference_group(group: GroupResult, members: list[list[int]], groups: list[GroupResult],
                     base: int | None) -> int | None:
    """The group the baseline checkpoint belongs to, if it is of the same model; else the
    first dense group of the same model; else none."""
    if base is not None:
        j = next(k for k, idx in enumerate(members) if base in idx)
        if groups[j].model == group.model:
            return j
    return next((k for k, g in enumerate(groups)
                 if g.method == "dense" and g.model == group.model), None)


def _str_severities(corrupted: dict[str, dict[int, float]]) -> dict[str, dict[str, float]]:
    return {name: {str(s): v for s, v in sorted(by_sev.items())} for name, by_sev in corrupted.items()}
