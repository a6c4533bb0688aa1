"""Which run is which: a report label per checkpoint, the baseline, the seed groups.

A checkpoint's label comes from its training config (method and sparsity, "RigL sparsity
0.5"), made unique with the run name when two collide; runs that differ only in their
training seed form one group, whose mean and std the report shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

# How sparsity.method is spelled in a report; an unknown method is shown as written.
METHOD_NAMES = {"dense": "Dense", "static": "Static", "set": "SET", "rigl": "RigL",
                "mest_r": "MEST-R", "mest_g": "MEST-G", "granet_r": "GraNet-R",
                "granet_g": "GraNet-G", "gmp": "GMP"}


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


def group_key(config: dict[str, Any]) -> tuple[str, str]:
    """``(model name, method label)``: what the runs of one group share."""
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
        groups.setdefault(group_key(config), []).append(i)
    return list(groups.values())
