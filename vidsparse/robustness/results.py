"""From an :class:`~vidsparse.robustness.evaluate.Evaluation` to its :class:`~.schema.Results`.

Per checkpoint: the accuracy table and its ``metrics.summarize`` against the baseline
checkpoint, and ``metrics.compare`` with it. Per group of seeds (``labels.group_runs``): the
mean and std over the runs and the comparison of the group's mean table with the dense
group of the same model. Nothing here draws or writes; ``report.write_report`` does.
"""

from __future__ import annotations

from typing import Any

from vidsparse.corruptions import list_corruptions
from vidsparse.robustness import metrics
from vidsparse.robustness.labels import group_key, group_runs, method_label, resolve_baseline, unique_labels
from vidsparse.robustness.schema import (
    CorruptionInfo,
    DatasetInfo,
    GroupResult,
    MethodResult,
    Results,
    Spectral,
    as_spectral,
    as_stability,
)


def results_from_evaluation(evaluation: Any, baseline: str | int | None = None,
                            spectral: Spectral | dict[str, Any] | None = None) -> Results:
    """The typed results of an ``Evaluation``.

    Args:
        evaluation: :func:`~vidsparse.robustness.evaluate.evaluate` output; its ``spectral``
            and ``stability``, when set, are carried into the results.
        baseline: the checkpoint that normalises CE/mCE and that the others are compared
            with (see :func:`~vidsparse.robustness.labels.resolve_baseline`); default the
            first dense checkpoint.
        spectral: radius-accuracy curves, ``{"radii": [...], "curves": {label: {"low":
            [...], "high": [...]}}}``; default ``evaluation.spectral``.

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
        corruptions={name: CorruptionInfo(kind=kinds.get(name), severities=sev)
                     for name, sev in severities.items()},
        families={n: metrics.corruption_family(n, kinds.get(n)) for n in names},
        frequency_order=metrics.frequency_order(names),
        frequency_bands={n: metrics.frequency_band(n) for n in names},
        baseline=None if base is None else labels[base],
        baseline_checkpoint=None if base is None else paths[base],
        methods=[_method(i, label, table, config, path, base, base_table)
                 for i, (label, table, config, path) in enumerate(zip(labels, tables, configs, paths))],
        groups=_groups(tables, configs, labels, base, base_table),
        spectral=None if spectral is None else as_spectral(spectral),
        stability=None if evaluation.stability is None else as_stability(evaluation.stability),
    )


def build_results(evaluation: Any, baseline: str | int | None = None,
                  spectral: Spectral | dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``results.json`` dictionary of an ``Evaluation``: :func:`results_from_evaluation`
    in its JSON form (JSON types only, NaN as None).

    Example:
        >>> build_results(evaluate(["runs/dense", "runs/rigl"], "data/ucf101"))["baseline"]
        'Dense'
    """
    return results_from_evaluation(evaluation, baseline, spectral).to_dict()


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
