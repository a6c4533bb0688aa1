"""Training configs: YAML files plus ``key=value`` overrides, checked before anything runs.

The defaults below are the schema: a key that is not here is a typo and an error, and a
value whose type differs from a non-null default is an error that names the key.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from vidsparse.sparse import SparsityConfig

DEFAULTS: dict[str, Any] = {
    "name": None,  # run name shown in reports; defaults to the config file's stem
    "output_dir": "runs/default",
    "seed": 0,
    "max_steps": 1000,  # optimizer steps
    "batch_size": 8,  # per process
    "grad_accum_steps": 1,
    "mixed_precision": "no",  # no | fp16 | bf16
    "resume": "none",  # none | auto | DIR
    "log_every": 10,
    # A loss that is NaN or infinite: "stop" the run with a message naming the step and the
    # last good checkpoint, or "skip" the batch (no update) and count it in run.json.
    "nonfinite_loss": "stop",
    "checkpoint_every": 0,  # optimizer steps between checkpoints; 0 = only the final one
    "eval_at_end": True,
    # num_classes None: the dataset's class count. kwargs: builder arguments (frames, size,
    # depth...). checkpoint: a local state dict to start from; its head is replaced when the
    # class count differs (nothing is downloaded).
    "model": {"name": "r3d_tiny", "num_classes": None, "kwargs": {}, "checkpoint": None},
    "data": {
        "root": "data/synthetic",
        "layout": "ucf101",  # ucf101 | kinetics | folder | auto
        "fold": 1,
        "test_split": "test",  # the split evaluated at the end (Kinetics: validate)
        "num_clips": 1,  # evaluation: temporal clips per video (multi-view testing)
        "num_crops": 1,  # evaluation: spatial crops per clip, 1 or 3
        "frames_per_clip": 8,
        "sampling_rate": 2,
        "crop_size": 56,
        "resize": 64,
        "hflip": False,
        # Kinetics-400 statistics, as torchvision's video models use them.
        "mean": [0.43216, 0.394666, 0.37645],
        "std": [0.22803, 0.22145, 0.216989],
        "backend": "pyav",
        "num_workers": 0,
    },
    "optim": {
        "name": "sgd",  # sgd | adamw
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": False,
        "betas": [0.9, 0.999],
        "weight_decay": 5e-4,  # not applied to norms and biases
        "warmup_steps": 0,
        "min_lr_ratio": 0.0,  # cosine decays to lr * min_lr_ratio
        "label_smoothing": 0.0,
        "grad_clip": 0.0,  # 0 = off
    },
    # The sparsity engine's seed is the run's ``seed``; every other SparsityConfig field is
    # here. Give sparsity.density or sparsity.sparsity (not both); the other is filled in.
    "sparsity": {**{k: v for k, v in asdict(SparsityConfig(method="dense")).items() if k != "seed"},
                 "density": None, "sparsity": None},
}

CHOICES = {
    "mixed_precision": ("no", "fp16", "bf16"),
    "optim.name": ("sgd", "adamw"),
    "nonfinite_loss": ("stop", "skip"),
}


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key."""


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``; values are read as YAML scalars."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def load_config(path: str | os.PathLike | None, overrides: list[str] | dict[str, Any] = ()) -> dict[str, Any]:
    """Defaults <- YAML file <- overrides, validated. Returns a plain nested dict."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        for source, loaded in _read_chain(path):
            _merge_layer(cfg, loaded, str(source))
        if cfg["name"] is None:
            cfg["name"] = path.stem
    if not isinstance(overrides, dict):
        overrides = parse_overrides(list(overrides))
    for dotted, value in overrides.items():
        nested: dict[str, Any] = {}
        node = nested
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
        _merge_layer(cfg, nested, "command line")
    _validate(cfg)
    return cfg


def _merge_layer(cfg: dict, layer: dict, source: str) -> None:
    """Merge one file (or the command line) over ``cfg``. ``sparsity.density`` and
    ``sparsity.sparsity`` say the same thing: a layer that sets one replaces the other's
    earlier value, so ``sparsity.density=0.3`` overrides a config's ``sparsity: 0.5``."""
    section = layer.get("sparsity")
    if isinstance(section, dict) and isinstance(cfg.get("sparsity"), dict):
        for key, twin in (("density", "sparsity"), ("sparsity", "density")):
            if key in section and twin not in section:
                cfg["sparsity"][twin] = None
    _merge(cfg, layer, DEFAULTS, prefix="", source=source)


def _read_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict]]:
    """``path`` and the files it builds on, base first.

    A config may start with ``base: other.yaml`` (relative to its own folder): the base is
    read first and this file's keys override it, section by section.
    """
    if not path.is_file():
        where = f" (the base of {seen[-1]})" if seen else ""
        raise ConfigError(f"config file {path} does not exist{where}")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'base' chain loops: {' -> '.join(map(str, (*seen, path)))}")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    base = loaded.pop("base", None)
    if base is None:
        return [(path, loaded)]
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be a file name, got {base!r}")
    return _read_chain(path.parent / base, (*seen, path.resolve())) + [(path, loaded)]


def _merge(cfg: dict, new: dict, schema: dict, prefix: str, source: str) -> None:
    for key, value in new.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"{source}: unknown key {dotted!r}; known here: {sorted(schema)}")
        default = schema[key]
        if isinstance(default, dict) and default:  # a section (an empty dict is a leaf mapping)
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {dotted!r} must be a mapping, got {value!r}")
            _merge(cfg[key], value, default, prefix=f"{dotted}.", source=source)
            continue
        cfg[key] = _check_type(dotted, value, default, source)


def _check_type(dotted: str, value: Any, default: Any, source: str) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
            value = float(value)  # YAML 1.1 reads "1e-4" (no dot) as a string
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, list):
        ok = isinstance(value, (list, tuple))
        value = list(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"{source}: {dotted!r} must be {type(default).__name__}, got {value!r}")
    return value


def _validate(cfg: dict) -> None:
    for dotted, choices in CHOICES.items():
        node = cfg
        for part in dotted.split("."):
            node = node[part]
        if node not in choices:
            raise ConfigError(f"{dotted!r} must be one of {choices}, got {node!r}")
    for key in ("max_steps", "batch_size", "grad_accum_steps", "log_every"):
        if cfg[key] < 1:
            raise ConfigError(f"{key!r} must be >= 1, got {cfg[key]}")
    try:
        resolved = sparsity_config(cfg)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"sparsity: {exc}") from exc
    # Both spellings in the saved config, so reports can print either.
    # Rounded: 1 - 0.8 is 0.19999999999999996 in floating point, and people read these.
    cfg["sparsity"]["density"] = round(resolved.density, 12)
    cfg["sparsity"]["sparsity"] = round(resolved.sparsity, 12)
    if cfg["sparsity"]["method"] != "dense" and not 0.0 < cfg["sparsity"]["density"] < 1.0:
        raise ConfigError(f"'sparsity.density' must be in (0, 1) for a sparse method, "
                          f"got {cfg['sparsity']['density']}")


def sparsity_config(cfg: dict) -> SparsityConfig:
    """The engine's config for a run: the ``sparsity`` section plus the run's seed."""
    return SparsityConfig.from_dict({**cfg["sparsity"], "seed": cfg["seed"]})  # agreeing pair is fine
