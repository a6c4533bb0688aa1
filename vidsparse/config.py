"""Training configs: YAML files plus ``key=value`` overrides, checked before anything runs.

The defaults below are the schema: a key that is not here is a typo and an error, and a
value whose type differs from a non-null default is an error that names the key.

The helpers that read a layer and merge it over a schema (:func:`read_yaml_mapping`,
:func:`parse_overrides`, :func:`override_layers`, :func:`merge_config`) are shared with the
other configs of the project (``recipes/sweep.py``), so every config file and every
``key=value`` on a command line is read and checked the same way.

Example:
    >>> cfg = load_config("recipes/configs/r3d_tiny_rigl.yaml", ["max_steps=20", "log_with=none"])
    >>> cfg["max_steps"], trackers(cfg)
    (20, [])
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
    # Experiment tracker(s), through Accelerate's own: tensorboard (logs in output_dir/logs),
    # wandb, mlflow, aim, comet_ml, clearml, dvclive, swanlab, trackio, "all" (every one
    # installed), a list of them, or "none". metrics.csv is written in every case.
    "log_with": "tensorboard",
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


# Keys that take one string or a list of strings (the type check allows both).
ONE_OR_MORE = {"log_with"}


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key."""


def parse_overrides(items: list[str], what: str = "override") -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``; values are read as YAML.

    Args:
        items: ``key=value`` strings, as typed on a command line.
        what: how the error message calls one item (e.g. ``"--option"``).

    Raises:
        ConfigError: an item without ``=``, or without a key.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} {item!r} is not of the form key=value")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{what} {item!r}: the value is not valid YAML ({exc})") from exc
    return out


def override_layers(overrides: list[str] | dict[str, Any], source: str = "command line") -> list[tuple[dict, str]]:
    """``key=value`` overrides as layers for :func:`merge_config`, one per key, in order.

    ``["optim.lr=0.1"]`` (or ``{"optim.lr": 0.1}``) -> ``[({"optim": {"lr": 0.1}}, source)]``.
    One layer per key, so that ``model.kwargs={} model.kwargs.size=32`` applies both in turn.
    """
    if not isinstance(overrides, dict):
        overrides = parse_overrides(list(overrides))
    layers = []
    for dotted, value in overrides.items():
        nested: dict[str, Any] = {}
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        layers.append((nested, source))
    return layers


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping a YAML config file holds (empty file: ``{}``), or a ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return loaded


def load_config(path: str | os.PathLike | None, overrides: list[str] | dict[str, Any] = ()) -> dict[str, Any]:
    """Defaults <- YAML file <- overrides, validated. Returns a plain nested dict."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        for source, loaded in _read_chain(path):
            _merge_layer(cfg, loaded, str(source))
        if cfg["name"] is None:
            cfg["name"] = path.stem
    for layer, source in override_layers(overrides):
        _merge_layer(cfg, layer, source)
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
    merge_config(cfg, layer, DEFAULTS, source)


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
    loaded = read_yaml_mapping(path)
    base = loaded.pop("base", None)
    if base is None:
        return [(path, loaded)]
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be a file name, got {base!r}")
    return _read_chain(path.parent / base, (*seen, path.resolve())) + [(path, loaded)]


def merge_config(cfg: dict, layer: dict, schema: dict, source: str,
                 leaves: frozenset[str] | set[str] = frozenset(), prefix: str = "") -> None:
    """Merge one layer (a file's mapping, or an override) over ``cfg`` in place.

    ``schema`` holds the defaults: a key not in it is an error, a non-empty mapping in it is
    a section merged key by key, and any other value fixes the type a non-null value must
    have (an int is accepted for a float, ``1e-4`` written without a dot too).

    Args:
        cfg: the config merged so far (a deep copy of ``schema`` to start with).
        layer: the nested mapping to merge over it.
        schema: the defaults, as above.
        source: the file name or "command line", for the error messages.
        leaves: dotted keys whose defaults are mappings that a layer replaces whole
            instead of key by key (free-form arguments, like an empty-dict default).
        prefix: the dotted path of ``cfg`` inside the whole config (for recursion).

    Raises:
        ConfigError: an unknown key, a section given something that is not a mapping, or a
            value of the wrong type; the message names the source and the dotted key.
    """
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"{source}: unknown key {dotted!r}; known here: {sorted(schema)}")
        default = schema[key]
        # A section; an empty dict (or a key in leaves) is a leaf mapping.
        if isinstance(default, dict) and default and dotted not in leaves:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {dotted!r} must be a mapping, got {value!r}")
            merge_config(cfg[key], value, default, source, leaves, prefix=f"{dotted}.")
            continue
        cfg[key] = _check_type(dotted, value, default, source)


def _check_type(dotted: str, value: Any, default: Any, source: str) -> Any:
    if default is None or value is None:
        return value
    if dotted in ONE_OR_MORE:
        names = value if isinstance(value, (list, tuple)) else [value]
        if not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{source}: {dotted!r} must be a name or a list of names, got {value!r}")
        return list(value) if isinstance(value, (list, tuple)) else value
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
    trackers(cfg)  # a tracker whose package is missing fails now, not after the model is built
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


# pip names that differ from the tracker's name
_TRACKER_PACKAGES = {"comet_ml": "comet-ml", "tensorboard": "tensorboard (or tensorboardX)"}


def trackers(cfg: dict) -> list[str]:
    """The experiment trackers ``cfg["log_with"]`` names, checked, for ``Accelerator(log_with=...)``.

    ``"none"`` gives ``[]`` (pass ``None`` to the Accelerator then). Every name must be one
    of Accelerate's trackers and its package installed: Accelerate itself would drop a
    missing one with nothing but a debug message.

    Raises:
        ConfigError: an unknown tracker, or one whose package is not installed (the message
            names the package to install).
    """
    import accelerate.utils
    from accelerate.utils import LoggerType

    value = cfg["log_with"]
    names = list(value) if isinstance(value, (list, tuple)) else [value]
    known = [t.value for t in LoggerType]
    if names == ["none"]:
        return []
    for name in names:
        if name == "none":
            raise ConfigError(f"'log_with': 'none' cannot be combined with other trackers, got {value!r}")
        if name not in known:
            raise ConfigError(f"'log_with': unknown tracker {name!r}; Accelerate's trackers are "
                              f"{', '.join(known)} (or none)")
        if name == "all":
            continue
        if not getattr(accelerate.utils, f"is_{name}_available")():
            installed = [t for t in known if t != "all" and getattr(accelerate.utils, f"is_{t}_available")()]
            raise ConfigError(
                f"'log_with': the {name} tracker needs the {_TRACKER_PACKAGES.get(name, name)} "
                f"package, which is not installed (pip install {name.replace('_', '-')}); "
                f"installed trackers: {', '.join(installed) or 'none'}; or set log_with=none")
    return list(dict.fromkeys(names))
