"""Final checkpoints: weights, masks and the resolved config, as plain tensor files.

Layout of ``<output_dir>/final/``::

    model.safetensors   the model's state dict (pruned weights are stored as zeros;
                        mask buffers are not in it, so it loads into a plain dense model)
    masks.safetensors   {parameter name: bool mask}; empty for a dense run
    config.yaml         the resolved training config (model name, classes, data, sparsity)
    sparsity.json       per-layer statistics at the end of training

Nothing here unpickles: safetensors and ``yaml.safe_load`` only.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from vidsparse.files import fsync_dir, make_temp_dir, reset_mode

MASK_SUFFIX = "_mask"


def save_final(
    directory: str | os.PathLike,
    model: torch.nn.Module,
    config: dict[str, Any],
    masks: dict[str, torch.Tensor] | None = None,
    stats: dict[str, Any] | None = None,
) -> Path:
    """Write ``directory`` atomically (a temporary sibling directory, then rename).

    The directory and its files get the modes ``mkdir`` and ``open()`` give (the umask's),
    so that a group-shared output folder stays shared.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(directory.parent, f".{directory.name}.")  # umask mode, unlike mkdtemp
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
                 if not k.endswith(MASK_SUFFIX)}
        save_file(state, str(tmp / "model.safetensors"))
        save_file({k: v.detach().cpu().to(torch.bool).contiguous() for k, v in (masks or {}).items()},
                  str(tmp / "masks.safetensors"))
        for name in ("model.safetensors", "masks.safetensors"):
            reset_mode(tmp / name)  # safetensors >= 0.8 writes 0600; a checkpoint is shared
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (tmp / "sparsity.json").write_text(json.dumps(stats or {}, indent=2))
        replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def replace_dir(tmp: str | os.PathLike, directory: str | os.PathLike) -> None:
    """Put the complete directory ``tmp`` at ``directory``, on disk before it is in place.

    Every file of ``tmp`` is flushed to disk first. An existing ``directory`` is renamed to
    ``.old_<name>`` beside it and deleted only once the new one is in place, so a kill at any
    moment leaves a whole directory, never part of one: the old or the new one under the
    name, or (between the two renames) the old one as ``.old_<name>``.
    """
    tmp, directory = Path(tmp), Path(directory)
    fsync_tree(tmp)
    old = directory.with_name(f".old_{directory.name}")
    if directory.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(directory, old)
    os.replace(tmp, directory)
    fsync_dir(directory.parent)
    if old.exists():
        shutil.rmtree(old)


def fsync_tree(directory: str | os.PathLike) -> None:
    """Flush every file under ``directory``, and the folders that list them, to disk."""
    directory = Path(directory)
    folders = [directory]
    for path in sorted(directory.rglob("*")):
        if path.is_dir():
            folders.append(path)
        elif path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for folder in folders:
        fsync_dir(folder)


def load_final(directory: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the model saved by :func:`save_final`.

    Returns ``(model, config, masks)``; the model is in eval mode on ``device``.
    Accepts the run's output directory as well as its ``final/`` subdirectory.
    """
    from vidsparse.models import create_model

    directory = Path(directory)
    if not (directory / "model.safetensors").exists() and (directory / "final").is_dir():
        directory = directory / "final"
    for name in ("model.safetensors", "config.yaml"):
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory} is not a vidsparse checkpoint: {name} is missing")
    config = yaml.safe_load((directory / "config.yaml").read_text())
    model_cfg = config.get("model", {})
    if "name" not in model_cfg or "num_classes" not in model_cfg:
        raise ValueError(f"{directory / 'config.yaml'}: model.name and model.num_classes are required")
    model = create_model(model_cfg["name"], num_classes=int(model_cfg["num_classes"]),
                         **(model_cfg.get("kwargs") or {}))
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    masks_file = directory / "masks.safetensors"
    masks = load_file(str(masks_file)) if masks_file.exists() else {}
    return model.to(device).eval(), config, masks
