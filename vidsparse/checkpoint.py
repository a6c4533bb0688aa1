"""Checkpoints on disk: the final weights of a run, and the training checkpoints it resumes from.

Final checkpoint, ``<output_dir>/final/`` (:func:`save_final`, :func:`load_final`)::

    model.safetensors   the model's state dict (pruned weights are stored as zeros;
                        mask buffers are not in it, so it loads into a plain dense model)
    masks.safetensors   {parameter name: bool mask}; empty for a dense run
    config.yaml         the resolved training config (model name, classes, data, sparsity)
    sparsity.json       per-layer statistics at the end of training

Nothing here unpickles: safetensors and ``yaml.safe_load`` only.

Training checkpoints, ``<output_dir>/checkpoints/step_N/``: Accelerate's ``save_state``
written into ``.tmp_step_N`` by the recipe, then :func:`commit_step_checkpoint` adds
``vidsparse_step.json`` (the step, the recipe's extra fields and every file with its size)
and renames it to ``step_N``. A ``step_N`` without that file, or whose files differ from its
list, is not a checkpoint. :func:`resume_source` implements ``resume=auto|none|DIR`` and
:func:`recover_interrupted_writes` cleans up after a kill in the middle of a write::

    tmp = temp_step_dir(root, step)
    accelerator.save_state(str(tmp))                      # every rank
    commit_step_checkpoint(root, step, mask_update_steps=[3, 6])  # main process
    ...
    recover_interrupted_writes(root)                      # main process, before resuming
    source = resume_source("auto", root)                  # every rank: step_N or None
    accelerator.load_state(str(source)); position = read_step_file(source)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

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


# --------------------------------------------------------------------- training checkpoints
STEP_FILE = "vidsparse_step.json"  # written last: a step_N without it is not a checkpoint
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(ValueError):
    """A training checkpoint cannot be used (or would be overwritten); the message says why."""


def step_dir(root: str | os.PathLike, step: int) -> Path:
    """Where the checkpoint of optimizer step ``step`` lives under ``root``."""
    return Path(root) / f"step_{step}"


def temp_step_dir(root: str | os.PathLike, step: int) -> Path:
    """The temporary name ``step``'s checkpoint is written under before the rename."""
    return Path(root) / f".tmp_step_{step}"


def step_dirs(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """Every ``step_N`` folder under ``root`` (complete or not) as ``(N, path)``, newest first."""
    root = Path(root)
    found = [(int(m.group(1)), p) for p in root.glob("step_*") if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return sorted(found, reverse=True)


def checkpoint_problem(directory: str | os.PathLike) -> str | None:
    """Why ``directory`` is not a complete training checkpoint (None: it is).

    Checkpoints list every file with its size, so a file cut short or removed after the
    rename (a full disk, a partial copy, a manual clean-up) is caught here instead of as a
    traceback inside ``load_state``. A step file without a list (older checkpoints) is taken
    as it is.
    """
    directory = Path(directory)
    try:
        position = json.loads((directory / STEP_FILE).read_text())
        int(position["step"])
        files = position.get("files", {})
        items = list(files.items())
    except FileNotFoundError:
        return f"no {STEP_FILE}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"unreadable {STEP_FILE} ({exc})"
    for name, size in items:
        try:
            found = (directory / name).stat().st_size
        except OSError:
            return f"{name} is missing"
        if found != size:
            return f"{name} has {found} bytes, {size} were written"
    return None


def newest_checkpoint(root: str | os.PathLike,
                      on_skip: Callable[[Path, str], None] | None = None) -> Path | None:
    """The newest complete ``step_N`` under ``root``, or None.

    ``on_skip(path, problem)`` is called for each newer ``step_N`` passed over as incomplete.
    """
    for _, path in step_dirs(root):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        if on_skip is not None:
            on_skip(path, problem)
    return None


def recover_interrupted_writes(root: str | os.PathLike) -> list[str]:
    """Clean up what a kill in the middle of a checkpoint write left under ``root``.

    A ``.tmp_step_N`` (a write not finished) is removed. A ``.old_step_N`` (the copy
    :func:`replace_dir` moves aside before the rename) is moved back to ``step_N`` when the
    kill came between the two renames and it is the only copy, and removed otherwise.
    Run it on one process (the main one) while the others wait. Returns one line per action.
    """
    root = Path(root)
    done = []
    for leftover in sorted([*root.glob(".tmp_step_*"), *root.glob(".old_step_*")]):
        kept = root / leftover.name[len(".old_"):]  # ".tmp_" has the same length
        if leftover.name.startswith(".old_") and not kept.exists():
            os.replace(leftover, kept)
            done.append(f"restoring {kept} from {leftover} (left by an interrupted checkpoint write)")
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        done.append(f"removing {leftover} (left by an interrupted checkpoint write)")
    return done


def resume_source(resume: str | os.PathLike, root: str | os.PathLike,
                  on_skip: Callable[[Path, str], None] | None = None) -> Path | None:
    """The checkpoint a run with ``resume=<resume>`` starts from, its checkpoints being in ``root``.

    Args:
        resume: ``"none"`` (start from scratch: refused when ``root`` already holds
            ``step_*`` folders, which an earlier run left and a later ``resume=auto`` would
            mix with this run's), ``"auto"`` (the newest complete checkpoint, None if there is
            none; call :func:`recover_interrupted_writes` first) or a checkpoint folder.
        root: the run's ``checkpoints`` folder.
        on_skip: for ``"auto"``, called as ``on_skip(path, problem)`` for each incomplete
            checkpoint passed over.

    Raises:
        CheckpointError: for ``"none"`` with earlier checkpoints, or a named folder that is
            not a complete checkpoint.

    Example:
        >>> resume_source("auto", "runs/rigl/checkpoints")
        PosixPath('runs/rigl/checkpoints/step_400')
    """
    root = Path(root)
    if str(resume) == "none":
        # Every step_* folder counts here, complete or not, and names are sorted by step.
        earlier = sorted((p.name for p in root.glob("step_*") if p.is_dir()),
                         key=lambda name: int(name[5:]) if name[5:].isdigit() else -1)
        if earlier:
            raise CheckpointError(
                f"resume=none but {root} already holds checkpoints of an earlier run "
                f"({', '.join(earlier)}); continue that run with resume=auto, or start over in "
                "another output_dir (or after deleting them)")
        return None
    if str(resume) == "auto":
        return newest_checkpoint(root, on_skip)
    source = Path(resume)
    problem = checkpoint_problem(source)
    if problem:
        raise CheckpointError(f"resume={resume}: {source} is not a complete checkpoint ({problem})")
    return source


def read_step_file(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``vidsparse_step.json`` of a complete checkpoint: ``step``, ``files`` and the extras."""
    return json.loads((Path(directory) / STEP_FILE).read_text())


def commit_step_checkpoint(root: str | os.PathLike, step: int, **extra: Any) -> Path:
    """Seal ``temp_step_dir(root, step)`` as the checkpoint ``step_dir(root, step)``.

    Records the step, ``extra`` (JSON values) and every file with its size in
    ``vidsparse_step.json``, flushes the folder to disk and renames it into place. A
    ``step_N`` already there (a resume from an older checkpoint) is swapped out whole by
    :func:`replace_dir`, never deleted in place: a kill mid-delete would leave a ``step_N``
    with its step file and without some of its files. Call it on the main process only.
    """
    if {"step", "files"} & extra.keys():
        raise ValueError("commit_step_checkpoint: 'step' and 'files' are written by the function itself")
    tmp, final = temp_step_dir(root, step), step_dir(root, step)
    for path in tmp.rglob("*.safetensors"):
        reset_mode(path)  # safetensors >= 0.8 writes 0600; the rest follows the umask
    files = {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / STEP_FILE).write_text(json.dumps({"step": step, **extra, "files": files}))
    replace_dir(tmp, final)
    return final
