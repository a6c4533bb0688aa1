"""Top-1 accuracy of trained checkpoints on clean and corrupted test videos.

Two sources of corrupted video, one pipeline:

* on the fly (``corrupted=None``): the clean test dataset with a
  :class:`~vidsparse.corruptions.Corruption` attached gives each test clip as it is in the
  whole video corrupted with a seed derived from (seed, corruption, severity, ``Class/file``)
  exactly as ``corrupt_dataset`` derives it, decoding only the frames that takes (see
  :class:`~vidsparse.data.video_dataset.VideoClipDataset`), then the eval transform;
* on disk (``corrupted=DIR``): the copies ``corrupt_dataset`` wrote, one complete root in
  the source's layout per ``DIR/<corruption>/<severity>/``, read by the same dataset class
  that reads the clean root — whole corrupted videos, test clip, transform.

Clips cut from the whole corrupted video, with the same per-video seed, are what makes the
two agree (bit for bit when corrupt_dataset.py wrote its default lossless FFV1), and it is
the order in which temporal corruptions mean what they say.

On the fly, a frame-local corruption (most spatial ones) may run after the loader instead
of in it (``corrupt_on``): the loader workers decode the clean frames, and the main process
corrupts each batch where the models run (the GPU), then applies the eval transform there.

Every checkpoint sees the same clips: each batch is decoded (and corrupted) once and fed to
all the models.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from vidsparse.checkpoint import load_final
from vidsparse.corruptions import CORRUPTIONS, SEVERITIES, Corruption, list_corruptions
from vidsparse.corruptions.generate import resolve_corruptions
from vidsparse.data.datasets import build_dataset
from vidsparse.data.index import write_atomic
from vidsparse.data.transforms import build_transform
from vidsparse.data.video_dataset import collate_pending
# clip_scores lives with the models; re-exported here because callers import it from this module
from vidsparse.models.scoring import clip_scores
from vidsparse.robustness import metrics
from vidsparse.robustness.schema import Spectral, Stability

# One or two corruptions per family, so that a default run covers noise, blur, weather,
# digital, temporal and codec damage at five severities (9 x 5 = 45 passes over the test
# split) instead of every registered corruption. Names missing from the registry are
# skipped with a warning.
DEFAULT_CORRUPTIONS = (
    "gaussian_noise", "impulse_noise",    # noise (ImageNet-C)
    "defocus_blur", "motion_blur",        # blur (ImageNet-C)
    "fog", "contrast",                    # weather, digital (ImageNet-C)
    "frame_drop", "freeze",               # temporal (Schiappa et al. 2023)
    "h264_crf",                           # codec (Yi et al. 2021)
)
DEFAULT_SEVERITIES = tuple(SEVERITIES)

# Where on-the-fly corruption runs (evaluate's corrupt_on): in the loader workers, after the
# loader on the evaluation's device, or on the device when it is a GPU.
CORRUPT_ON = ("loader", "device", "auto")

# Keys of ``config["data"]`` that decide which pixels a model sees at test time; two
# checkpoints can only share clips when these agree.
EVAL_DATA_KEYS = ("layout", "fold", "frames_per_clip", "sampling_rate", "crop_size", "resize",
                  "mean", "std")


class Condition(NamedTuple):
    """One pass over the test split: a corruption at a severity, or ``CLEAN``."""

    corruption: str
    severity: int

    @property
    def is_clean(self) -> bool:
        return self == CLEAN


CLEAN = Condition("clean", 0)


@dataclass
class Checkpoint:
    """A model to evaluate and the config it was trained with (see ``checkpoint.load_final``)."""

    path: str
    model: torch.nn.Module
    config: dict[str, Any]
    masks: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.config["model"]["num_classes"])


@dataclass
class Evaluation:
    """Predictions of every checkpoint on every condition, in the order of ``videos``.

    ``predictions[i][condition]`` is an int array aligned with ``videos`` and ``labels``.
    Everything a report needs is here: the optional ``spectral`` curves
    (:func:`~vidsparse.robustness.spectral.spectral_curves` output) and ``stability`` (flip
    rates, :class:`~vidsparse.robustness.schema.Stability`) are measured on the same
    checkpoints by separate passes and attached with ``dataclasses.replace``; the report
    includes them when they are set.
    """

    checkpoints: list[str]
    configs: list[dict[str, Any]]
    data_root: str
    corrupted: str | None          # None: corrupted on the fly
    seed: int | None               # corruption seed (on disk: from the manifest, if it says)
    videos: list[str]              # paths relative to data_root
    labels: np.ndarray
    conditions: list[Condition]
    predictions: list[dict[Condition, np.ndarray]]
    spectral: Spectral | dict[str, Any] | None = None    # radius-accuracy curves
    stability: Stability | dict[str, Any] | None = None  # flip rates
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # on the fly, per corruption

    def accuracies(self) -> list[dict[str, Any]]:
        """One accuracy table per checkpoint, in the form ``metrics`` reads."""
        return [accuracy_table(preds, self.labels) for preds in self.predictions]


def evaluate(
    checkpoints: Sequence[str | os.PathLike | Checkpoint],
    data_root: str | os.PathLike,
    corrupted: str | os.PathLike | None = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    seed: int = 0,
    limit: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    accelerator: Any = None,
    cache_dir: str | os.PathLike | None = None,
    preset: str | None = None,
    options: dict[str, Any] | None = None,
    corrupt_on: str = "auto",
) -> Evaluation:
    """Evaluate checkpoints on the clean test split and on each (corruption, severity).

    Args:
        checkpoints: run output directories (or their ``final/``), or ready ``Checkpoint``s.
        data_root: the clean dataset root; the data config (clip length, crop, fold) comes
            from the first checkpoint, and all must agree on it.
        corrupted: ``corrupt_dataset.py``'s output directory; ``None`` corrupts on the fly.
        corruptions, severities: what to run; default ``DEFAULT_CORRUPTIONS`` x 1..5 on the
            fly, or everything found on disk.
        seed: the seed of on-the-fly corruption (each video gets its own, see ``video_seed``);
            on disk the copies already hold theirs.
        limit: evaluate at most this many test videos, spread evenly over the split.
        accelerator: an ``accelerate.Accelerator``: each process evaluates a share of every
            condition's videos and the predictions are gathered (every process gets all of
            them); ``device`` is then the accelerator's.
        cache_dir: predictions are stored there per (checkpoint, condition), keyed on the
            checkpoint's weights, the videos, the data config and the corruption source and
            seed; a later call with the same inputs reads them instead of running the model,
            so an interrupted evaluation continues where it stopped.
        preset: on the fly, a benchmark preset (``"imagenet_c"``, ``"mini_kinetics_c"``,
            ``"ucf101_p"``): its corruptions (the default for ``corruptions``, which may only
            name corruptions of it) with the options that give the published constants. On
            disk, the copies hold their options: the preset only picks the corruptions.
        options: on the fly, corruption options given to every corruption that accepts one
            (e.g. ``{"temporal": "iid"}``), on top of the preset's.
        corrupt_on: where on-the-fly corruption runs. ``"loader"``: in the loader (its
            workers), on the CPU. ``"device"``: a frame-local corruption (most spatial ones)
            runs after the loader, on ``device``, one pass per batch (one per video when the
            videos' frame sizes differ), followed there by the eval transform; the loader
            workers only decode. ``"auto"`` (default): ``"device"`` on a CUDA device, else
            ``"loader"``. Corruptions that are not frame-local (fog, temporal and codec ones)
            and those computed on the host anyway (``jpeg_compression``) always run in the
            loader (:func:`corrupts_on_device`). The predictions do not depend on it: the
            same on the CPU, and within the corruptions' documented device tolerance
            (``DEVICE_TOLERANCE_LEVELS``) and the transform's float rounding on a GPU; the
            prediction cache is shared.

    Example:
        >>> ev = evaluate(["runs/dense", "runs/rigl"], "data/ucf101",
        ...               corruptions=["fog"], severities=[1, 3], limit=50)
        >>> [metrics.summarize(acc)["mPC"] for acc in ev.accuracies()]
        [0.41, 0.46]
    """
    if corrupt_on not in CORRUPT_ON:
        raise ValueError(f"evaluate: corrupt_on must be one of {', '.join(CORRUPT_ON)}; got {corrupt_on!r}")
    if corrupted is not None and corrupt_on == "device":
        raise ValueError("evaluate: corrupt_on='device' is for corruption on the fly; the copies "
                         f"under {corrupted} are already corrupted")
    if accelerator is not None:
        device = accelerator.device
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    loaded = [c if isinstance(c, Checkpoint) else load_checkpoint(c, device) for c in checkpoints]
    if not loaded:
        raise ValueError("evaluate: no checkpoints given")
    data_cfg = shared_data_config(loaded, data_root)
    per_corruption: dict[str, dict[str, Any]] = {}
    if preset is not None or options:
        if corrupted is not None and options:
            raise ValueError("evaluate: options apply to on-the-fly corruption; the copies under "
                             f"{corrupted} were written with theirs (see its manifest.json)")
        names, per_corruption = resolve_corruptions(corruptions, options, preset)
        corruptions = names
        per_corruption = {n: o for n, o in per_corruption.items() if o}
    if corrupted is None:
        conditions = on_the_fly_conditions(corruptions, severities)
    else:
        conditions = on_disk_conditions(corrupted, corruptions, severities)
        seed = read_manifest(corrupted).get("settings", {}).get("seed")
        per_corruption = {}

    # The first process on each machine indexes the videos and writes the cache the others read.
    with accelerator.local_main_process_first() if accelerator is not None else contextlib.nullcontext():
        clean = build_test_split(loaded, data_root, data_cfg)
    transform = build_transform(data_cfg, train=False)  # the same again, for the on-disk copies
    videos = [relative_path(path, data_root) for path, _ in clean.samples]
    keep = subset_indices(len(videos), limit)
    videos = [videos[i] for i in keep]
    labels = np.array([int(clean.samples[i][1]) for i in keep])

    def dataset_for(condition: Condition) -> tuple[Dataset, Callable | None]:
        """The condition's test items, and for a corruption deferred to the device the
        function that finishes a batch of them there (else None)."""
        if condition.is_clean:
            return Subset(clean, keep), None
        if corrupted is None:
            corruption = Corruption(*condition, seed=seed,
                                    options=per_corruption.get(condition.corruption, {}))
            on_device = corrupts_on_device(corruption, device, corrupt_on)
            dataset = clean.with_corruption(corruption, deferred=on_device)
            return Subset(dataset, keep), dataset.finish if on_device else None
        return on_disk_subset(corrupted, condition, data_cfg, transform, videos), None

    models = [c.model.to(device).eval() for c in loaded]
    # Not keyed on corrupt_on: both places give the same clips (up to a device's rounding).
    cache = PredictionCache(cache_dir, {
        "videos": videos, "data": {k: data_cfg.get(k) for k in EVAL_DATA_KEYS},
        "corrupted": None if corrupted is None else str(Path(corrupted).resolve()),
        "manifest": read_manifest(corrupted).get("settings") if corrupted is not None else None,
        "seed": seed, **({"options": per_corruption} if per_corruption else {})},
        [weights_fingerprint(c.model) for c in loaded],
        write=accelerator is None or accelerator.is_main_process)
    predictions = predict_conditions(models, conditions, dataset_for, labels, batch_size,
                                     num_workers, device, progress, accelerator, cache)
    return Evaluation(
        checkpoints=[str(c.path) for c in loaded], configs=[c.config for c in loaded],
        data_root=str(data_root), corrupted=None if corrupted is None else str(corrupted),
        seed=seed, videos=videos, labels=labels, conditions=conditions, predictions=predictions,
        options=per_corruption,
    )


# --- checkpoints -----------------------------------------------------------------------

def load_checkpoint(directory: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """``load_final`` plus the masks re-applied, with errors that name the directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    model, config, masks = load_final(directory, device=device)
    apply_masks_(model, masks, directory)
    return Checkpoint(str(directory), model, config, masks)


@torch.no_grad()
def apply_masks_(model: torch.nn.Module, masks: dict[str, torch.Tensor], where: Any = "") -> None:
    """Zero the pruned weights. ``save_final`` already stores them as zeros; doing it again
    costs nothing and guards against a checkpoint edited by hand."""
    params = dict(model.named_parameters())
    unknown = sorted(set(masks) - set(params))
    if unknown:
        raise ValueError(f"{where}: masks name parameters the model does not have: {unknown[:5]}")
    for name, mask in masks.items():
        params[name].mul_(mask.to(params[name].device, params[name].dtype))


def shared_data_config(checkpoints: Sequence[Checkpoint], data_root: str | os.PathLike) -> dict:
    """The first checkpoint's data config with ``root`` replaced; raise if another checkpoint
    would see different test clips (clip length, sampling rate, crop, ...)."""
    first = checkpoints[0]
    base = dict(first.config.get("data", {}))
    for other in checkpoints[1:]:
        theirs = other.config.get("data", {})
        for key in EVAL_DATA_KEYS:
            if base.get(key) != theirs.get(key):
                raise ValueError(
                    f"checkpoints {first.path} and {other.path} differ in data.{key} "
                    f"({base.get(key)!r} vs {theirs.get(key)!r}); they cannot be evaluated on "
                    "the same clips — evaluate them in separate runs")
    base["root"] = str(data_root)
    return base


def build_test_split(checkpoints: Sequence[Checkpoint], data_root: str | os.PathLike,
                     data_cfg: dict | None = None) -> Any:
    """The clean test split every checkpoint is evaluated on: the split named by
    ``data.test_split`` (default ``test``) of :func:`shared_data_config`, with the evaluation
    transform; raises if a checkpoint predicts another number of classes than it holds.

    Example:
        >>> ckpts = [load_checkpoint("runs/dense"), load_checkpoint("runs/rigl")]
        >>> test = build_test_split(ckpts, "data/ucf101")   # what evaluate() and flip_rate() read
    """
    data_cfg = shared_data_config(checkpoints, data_root) if data_cfg is None else data_cfg
    dataset = build_dataset(data_cfg, data_cfg.get("test_split", "test"),
                            build_transform(data_cfg, train=False))
    check_num_classes(checkpoints, dataset, data_root)
    return dataset


def check_num_classes(checkpoints: Sequence[Checkpoint], dataset: Any, data_root: Any) -> None:
    n = dataset_num_classes(dataset)
    for c in checkpoints:
        if c.num_classes != n:
            raise ValueError(f"checkpoint {c.path} predicts {c.num_classes} classes but the "
                             f"dataset at {data_root} has {n}")


def dataset_num_classes(dataset: Any) -> int:
    if hasattr(dataset, "classes"):
        return len(dataset.classes)
    if hasattr(dataset, "num_classes"):
        return int(dataset.num_classes)
    return 1 + max(int(label) for _, label in dataset.samples)


# --- which conditions ------------------------------------------------------------------

def on_the_fly_conditions(corruptions: Sequence[str] | None,
                          severities: Sequence[int] | None) -> list[Condition]:
    """Clean first, then each (corruption, severity); unknown names raise listing the known."""
    known = list_corruptions()
    if corruptions is None:
        corruptions = [c for c in DEFAULT_CORRUPTIONS if c in known]
        missing = [c for c in DEFAULT_CORRUPTIONS if c not in known]
        if missing:
            warnings.warn(f"default corruptions not registered, skipped: {', '.join(missing)}")
        if not corruptions:
            raise ValueError(f"none of the default corruptions is registered; known: "
                             f"{', '.join(sorted(known)) or '(none)'}")
    unknown = [c for c in corruptions if c not in known]
    if unknown:
        raise ValueError(f"unknown corruption(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known)) or '(none)'}")
    severities = DEFAULT_SEVERITIES if severities is None else tuple(severities)
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f"severities must be among {tuple(SEVERITIES)}, got {bad}")
    return _with_clean(corruptions, {c: severities for c in corruptions})


def on_disk_conditions(corrupted: str | os.PathLike, corruptions: Sequence[str] | None,
                       severities: Sequence[int] | None) -> list[Condition]:
    """The (corruption, severity) pairs found under ``corrupted``, filtered by the request;
    asking for one that was not written raises, listing what was."""
    found = discover_corrupted(corrupted)
    if not found:
        raise FileNotFoundError(f"{corrupted} holds no corrupted dataset "
                                "(expected <corruption>/<severity>/ folders or manifest.json)")
    names = list(found) if corruptions is None else list(corruptions)
    available = "; ".join(f"{c}: {','.join(map(str, s))}" for c, s in found.items())
    unknown = [c for c in names if c not in found]
    if unknown:
        raise ValueError(f"corruption(s) {', '.join(unknown)} not found under {corrupted}; "
                         f"available: {available}")
    chosen = {}
    for name in names:
        wanted = found[name] if severities is None else list(severities)
        missing = [s for s in wanted if s not in found[name]]
        if missing:
            raise ValueError(f"{name} severity {missing} not found under {corrupted}; "
                             f"available: {available}")
        chosen[name] = wanted
    return _with_clean(names, chosen)


def _with_clean(names: Iterable[str], severities: dict[str, Sequence[int]]) -> list[Condition]:
    return [CLEAN] + [Condition(n, int(s)) for n in names for s in severities[n]]


def discover_corrupted(corrupted: str | os.PathLike) -> dict[str, list[int]]:
    """``{corruption: [severities]}`` written under ``corrupted``.

    Read from ``manifest.json`` when it exists (each entry names a corruption and a
    severity), else from the ``<corruption>/<severity>/`` directory names. Either way a
    pair counts only if its directory exists.
    """
    root = Path(corrupted)
    pairs = {(str(e["corruption"]), int(e["severity"]))
             for e in read_manifest(root).get("files", [])} or {
        (d.parent.name, int(d.name)) for d in root.glob("*/*")
        if d.is_dir() and re.fullmatch(r"\d+", d.name)}
    for name, _ in pairs:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in (".", ".."):
            raise ValueError(f"{root}: corruption name {name!r} is not a plain folder name "
                             "(from its manifest.json); refusing a path outside the folder")
    pairs = {(c, s) for c, s in pairs if (root / c / str(s)).is_dir()}
    found: dict[str, list[int]] = {}
    for name, severity in sorted(pairs):
        found.setdefault(name, []).append(severity)
    return found


def read_manifest(corrupted: str | os.PathLike) -> dict[str, Any]:
    """corrupt_dataset.py's ``manifest.json`` (``{"settings": ..., "files": [...]}``), or
    ``{}`` when there is none (copies made by other means)."""
    path = Path(corrupted) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


# --- datasets --------------------------------------------------------------------------

def on_disk_subset(corrupted: str | os.PathLike, condition: Condition, data_cfg: dict,
                   transform: Callable | None, videos: Sequence[str]) -> Dataset:
    """The corrupted root of ``condition``, restricted to and ordered like ``videos``.

    Videos are matched by path without the extension: ``corrupt_dataset`` stores a copy as
    ``.mkv`` when the source's container cannot hold its codec (WebM)."""
    root = Path(corrupted) / condition.corruption / str(condition.severity)
    dataset = build_dataset({**data_cfg, "root": str(root)}, data_cfg.get("test_split", "test"), transform)
    index = {_stem(relative_path(p, root)): i for i, (p, _) in enumerate(dataset.samples)}
    missing = [v for v in videos if _stem(v) not in index]
    if missing:
        raise FileNotFoundError(f"{root} lacks {len(missing)} test video(s) of the clean split, "
                                f"e.g. {missing[0]}")
    return Subset(dataset, [index[_stem(v)] for v in videos])


def _stem(relative: str) -> str:
    return relative.rsplit(".", 1)[0] if "." in relative.rsplit("/", 1)[-1] else relative


def relative_path(path: str | os.PathLike, root: str | os.PathLike) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def corrupts_on_device(corruption: Corruption, device: torch.device, corrupt_on: str) -> bool:
    """Whether :func:`evaluate` corrupts this condition after the loader, on ``device``.

    Only a frame-local corruption can: its batch holds the clips' frames alone. Not one whose
    pixels are computed on the host (``jpeg_compression``): on a GPU it would be copied back
    and forth, so it stays in the loader workers. ``"auto"`` chooses the device on CUDA.

    Example:
        >>> corrupts_on_device(Corruption("gaussian_noise"), torch.device("cuda"), "auto")
        True
        >>> corrupts_on_device(Corruption("fog"), torch.device("cuda"), "device")
        False
    """
    if corrupt_on == "loader" or not corruption.frame_local:
        return False
    if CORRUPTIONS.meta(corruption.name).get("cpu_only", False):
        return False
    return corrupt_on == "device" or torch.device(device).type == "cuda"


def subset_indices(n: int, limit: int | None) -> list[int]:
    """All of ``range(n)``, or ``limit`` indices spread evenly over it: test lists are sorted
    by class, so the first ``limit`` videos would all be one class."""
    if limit is None or limit >= n:
        return list(range(n))
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return sorted({int(i) for i in np.linspace(0, n - 1, limit).round()})


# --- inference -------------------------------------------------------------------------

def predict(models: Sequence[torch.nn.Module], loader: Iterable, device: torch.device | str = "cpu",
            on_batch: Callable[[], None] | None = None,
            accelerator: Any = None,
            finish: Callable[[Any, torch.device], torch.Tensor] | None = None,
            ) -> tuple[list[np.ndarray], np.ndarray]:
    """Top-1 predictions of each model on every batch of ``loader`` (``(clips, labels)``, or
    ``(clips, labels, indices)`` from an :class:`Indexed` dataset).

    Returns ``([predictions per model], labels)``; each batch is moved to ``device`` once
    and shared by all the models. With an ``accelerator`` (and a loader it prepared, so each
    process holds a share) the batches of all processes are gathered and put back in
    dataset order by their indices; every process returns the whole arrays.

    ``finish(batch, device)`` makes the clips from a batch's first field instead, on
    ``device``: :meth:`VideoClipDataset.finish` for a corruption deferred to the device.
    """
    preds: list[list[np.ndarray]] = [[] for _ in models]
    labels: list[np.ndarray] = []
    indices: list[np.ndarray] = []
    device = torch.device(device)
    for batch in loader:
        clips = batch[0].to(device, non_blocking=True) if finish is None else finish(batch[0], device)
        batch_labels = batch[1]
        index = batch[2] if len(batch) > 2 else None
        outs = [clip_scores(model, clips).argmax(dim=1) for model in models]
        if accelerator is not None:
            stacked, batch_labels, index = gather_batch(accelerator, torch.stack(outs, dim=1),
                                                        batch_labels, index)
            outs = list(stacked.T)
        for out, p in zip(preds, outs):
            out.append(np.asarray(p.cpu()) if isinstance(p, torch.Tensor) else p)
        labels.append(np.asarray(batch_labels))
        if index is not None:
            indices.append(np.asarray(index))
        if on_batch is not None:
            on_batch()
    order = dataset_order(indices)
    return [np.concatenate(p)[order] for p in preds], np.concatenate(labels)[order]


def gather_batch(accelerator: Any, outputs: torch.Tensor, labels: Any,
                 index: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch of an :class:`Indexed` dataset from every process: each process's
    ``outputs`` (batch first), ``labels`` and dataset ``index``, concatenated, the padding
    that evens out the last batch dropped (``gather_for_metrics``); numpy arrays, the
    same on every process. :func:`dataset_order` then sorts the batches back."""
    device = outputs.device
    gathered = accelerator.gather_for_metrics(
        (outputs, torch.as_tensor(labels, device=device), torch.as_tensor(index, device=device)),
        use_gather_object=False)
    return tuple(t.cpu().numpy() for t in gathered)


def dataset_order(indices: Sequence[np.ndarray]) -> np.ndarray | slice:
    """The permutation that puts the concatenated batches back in dataset order, given
    each batch's dataset indices (from :class:`Indexed`); all of them when there are none."""
    return np.argsort(np.concatenate(indices), kind="stable") if indices else slice(None)


class Indexed(Dataset):
    """``dataset[i] + (i,)``: the sample's position travels with it through the loader."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return (*self.dataset[index], index)


def predict_conditions(models, conditions, dataset_for, labels, batch_size, num_workers,
                       device, progress, accelerator=None,
                       cache: "PredictionCache | None" = None) -> list[dict[Condition, np.ndarray]]:
    """Run :func:`predict` for each condition (for the models the cache lacks it for);
    check each pass saw the expected labels. ``dataset_for(condition)`` gives the
    condition's dataset and, when its batches are finished on the device, the function
    that does it (else None)."""
    cache = cache or PredictionCache(None, {}, [""] * len(models))
    out: list[dict[Condition, np.ndarray]] = [{} for _ in models]
    todo: dict[Condition, list[int]] = {}
    for condition in conditions:
        for i in range(len(models)):
            cached = cache.get(i, condition)
            if cached is not None and len(cached) == len(labels):
                out[i][condition] = cached
            else:
                todo.setdefault(condition, []).append(i)
    loaders, finishers = {}, {}
    for condition in todo:
        dataset, finishers[condition] = dataset_for(condition)
        loader = DataLoader(Indexed(dataset), batch_size=batch_size, shuffle=False,
                            num_workers=num_workers, pin_memory=device.type == "cuda",
                            collate_fn=None if finishers[condition] is None else collate_pending)
        loaders[condition] = accelerator.prepare(loader) if accelerator is not None else loader
    main = accelerator is None or accelerator.is_main_process
    with tqdm(total=sum(len(loader) for loader in loaders.values()), disable=not (progress and main),
              unit="batch", desc="robustness") as bar:
        for condition, loader in loaders.items():
            bar.set_postfix_str(condition_name(condition))
            chosen = todo[condition]
            preds, seen = predict([models[i] for i in chosen], loader, device,
                                  on_batch=lambda: bar.update(1), accelerator=accelerator,
                                  finish=finishers[condition])
            if not np.array_equal(seen, labels):
                raise RuntimeError(f"{condition_name(condition)}: the test videos came back with "
                                   "other labels than the clean split's; is the corrupted copy "
                                   "of the same dataset and fold?")
            for i, p in zip(chosen, preds):
                out[i][condition] = p
                cache.put(i, condition, p)
    return [{c: table[c] for c in conditions} for table in out]


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of a model's state (names, shapes, dtypes and bytes): the cache's model key."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class PredictionCache:
    """Predictions per (model, condition) under ``directory``, one small JSON file each.

    A file is named by the sha256 of (model weights, the evaluation's inputs, condition), so
    a changed checkpoint, video list, data config or corruption source is simply a miss.
    ``directory=None`` caches nothing.
    """

    def __init__(self, directory: str | os.PathLike | None, inputs: dict[str, Any],
                 models: Sequence[str], write: bool = True):
        self.directory = None if directory is None else Path(directory)
        self.inputs = json.dumps(inputs, sort_keys=True, default=str)
        self.models = list(models)
        self.write = write

    def _path(self, model: int, condition: Condition) -> Path:
        key = hashlib.sha256(f"{self.models[model]}\0{self.inputs}\0{condition}".encode()).hexdigest()
        return self.directory / f"{condition.corruption}-{condition.severity}-{key[:32]}.json"

    def get(self, model: int, condition: Condition) -> np.ndarray | None:
        if self.directory is None:
            return None
        path = self._path(model, condition)
        try:
            return np.asarray(json.loads(path.read_text())["predictions"], dtype=np.int64)
        except (OSError, ValueError, KeyError):
            return None  # missing or unreadable: computed again

    def put(self, model: int, condition: Condition, predictions: np.ndarray) -> None:
        if self.directory is None or not self.write:
            return
        path = self._path(model, condition)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"condition": list(condition),
                                            "predictions": predictions.tolist()}))


def condition_name(condition: Condition) -> str:
    return "clean" if condition.is_clean else f"{condition.corruption} s{condition.severity}"


def accuracy_table(predictions: dict[Condition, np.ndarray], labels: np.ndarray) -> dict[str, Any]:
    """``{"clean": acc, "corrupted": {name: {severity: acc}}}`` from per-condition predictions."""
    table: dict[str, Any] = {"clean": metrics.accuracy(predictions[CLEAN], labels), "corrupted": {}}
    for condition, preds in predictions.items():
        if not condition.is_clean:
            table["corrupted"].setdefault(condition.corruption, {})[condition.severity] = \
                metrics.accuracy(preds, labels)
    return table

