"""The results format: what ``results.json`` holds, typed, versioned, read and written.

A report's numbers live in one :class:`Results`; ``results.json`` is its :meth:`Results.to_dict`
(JSON types only: severities are string keys, an undefined number such as the rPC of a model
with zero clean accuracy is ``null``), and ``results.csv`` is the flat view :func:`csv_rows`
gives. The markdown and the plots are drawn from that same dictionary, so a saved
``results.json`` redraws its report (``write_report_files(read_results(dir), dir)``).

Layout (format ``"vidsparse-robustness/3"``, :data:`RESULTS_FORMAT`)::

    format               "vidsparse-robustness/3"
    dataset              DatasetInfo: root, split, layout, fold, num_videos, source
                         ("on-the-fly" | "on-disk"), corrupted (DIR | null), videos
    seed                 the corruption seed (null when an on-disk copy does not say)
    corruptions          {name: CorruptionInfo(kind, severities)}
    families             {name: "noise" | "blur" | ... }      (metrics.corruption_family)
    frequency_order      [names, high- to low-frequency damage]
    frequency_bands      {name: band | null}                  (metrics.frequency_band)
    baseline             label of the baseline checkpoint (null: none)
    baseline_checkpoint  its path
    methods              [MethodResult] one per checkpoint, in the order evaluated
    groups               [GroupResult] one per (model, method, sparsity): its seeds
    statistics           Statistics: each group against its reference with bootstrap
                         intervals, permutation p-values and the verdict (null: no
                         dense group to compare with)
    spectral             Spectral (only when measured)
    stability            Stability (only when measured)

Beside it, ``per_video.csv.gz`` (:data:`PER_VIDEO_NAME`, gzip-compressed CSV, columns
:data:`PER_VIDEO_COLUMNS`) holds every prediction the accuracies count: one row per
(checkpoint, condition, test video) with ``label`` (the checkpoint's label, as in
``methods``), ``checkpoint``, ``model``, ``method``, ``sparsity``, ``seed`` (training seed),
``corruption`` and ``severity`` (``clean`` and 0 for the clean pass), ``video`` (path
relative to the dataset root, as in ``dataset.videos``), ``target`` (true class index),
``prediction`` (predicted class index) and ``correct`` (1 or 0). Every accuracy in
``results.json`` is the mean of ``correct`` over the rows of its (label, corruption,
severity). In memory it is :class:`PerVideo`, ``Results.per_video``, never part of the JSON.

Version 2 files (``"vidsparse-robustness/2"``) lack ``statistics``; version 1 files
(``"vidsparse-robustness/1"``) also lack CE, gamma, ``families``, ``frequency_order``,
``frequency_bands`` and ``groups``. What they hold reads the same, so :func:`read_results`
accepts them and the missing fields are ``None``. A change that makes an old reader misread
(or refuse) a file bumps the version.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

import numpy as np

RESULTS_FORMAT = "vidsparse-robustness/3"
READABLE_FORMATS = ("vidsparse-robustness/1", "vidsparse-robustness/2", RESULTS_FORMAT)
CSV_NAME = "results.csv"
CSV_COLUMNS = ("label", "checkpoint", "model", "method", "sparsity", "seed", "corruption",
               "severity", "accuracy")
PER_VIDEO_NAME = "per_video.csv.gz"
NOT_RUN = -1  # PerVideo's prediction for a condition a checkpoint was not run under
PER_VIDEO_COLUMNS = ("label", "checkpoint", "model", "method", "sparsity", "seed", "corruption",
                     "severity", "video", "target", "prediction", "correct")

# {corruption: {"severity": accuracy}}: JSON object keys are strings
SeverityTable = dict[str, dict[str, Union[float, None]]]


@dataclass(kw_only=True)
class DatasetInfo:
    """The test videos the checkpoints were evaluated on."""

    root: str
    split: str = "test"
    layout: str | None = None
    fold: int | None = None
    num_videos: int
    source: str                     # "on-the-fly" or "on-disk"
    corrupted: str | None = None    # the corrupt_dataset.py output read, if on disk
    videos: list[str]               # paths relative to root, in evaluation order


@dataclass(kw_only=True)
class CorruptionInfo:
    """One corruption of the evaluation: its registry kind, the severities run and the options
    it was corrupted with on the fly (a preset's, or the user's; empty: the defaults, or the
    copies on disk, whose manifest records theirs)."""

    kind: str | None                # "spatial", "temporal", "codec"; None if unregistered
    severities: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class MethodResult:
    """The numbers of one checkpoint (fractions in [0, 1]; None where undefined).

    ``mCE``, ``relative_mCE``, ``CE`` and ``relative_CE`` need a baseline (None without one);
    ``vs_baseline`` is :func:`~vidsparse.robustness.metrics.compare` against it (None for the
    baseline itself), its ``win_loss`` cut to the three counts.
    """

    label: str
    checkpoint: str
    run_name: str | None = None
    model: str | None = None
    method: str
    density: float
    sparsity: float                 # 1 - density, rounded to 6 digits
    train_seed: int | None = None
    clean: float | None
    mPC: float | None
    rPC: float | None
    mCE: float | None = None
    relative_mCE: float | None = None
    gamma_a: float | None = None
    gamma_r: float | None = None
    per_corruption: dict[str, float | None]          # mean over severities
    CE: dict[str, float | None] | None = None
    relative_CE: dict[str, float | None] | None = None
    gamma_a_per_corruption: dict[str, float | None] | None = None
    gamma_r_per_corruption: dict[str, float | None] | None = None
    accuracy: SeverityTable
    vs_baseline: dict[str, Any] | None = None


@dataclass(kw_only=True)
class GroupResult:
    """The runs of one (model, method, sparsity) that differ only in their training seed.

    ``mean``/``std`` are :func:`~vidsparse.robustness.metrics.summarize_seeds`'s (std None for
    a single run); ``vs_reference`` is :func:`~vidsparse.robustness.metrics.compare` of the
    group's mean table against the ``reference`` (dense) group's, None for that group itself
    or when there is none.
    """

    label: str
    model: str | None = None
    method: str | None
    density: float
    sparsity: float
    members: list[str]              # MethodResult labels
    seeds: list[Any]
    n: int
    mean: dict[str, float | None]
    std: dict[str, float | None] | None = None
    accuracy_mean: SeverityTable
    accuracy_std: SeverityTable | None = None
    per_corruption_mean: dict[str, float | None]
    reference: str | None = None
    vs_reference: dict[str, Any] | None = None


@dataclass(kw_only=True)
class Spectral:
    """Radius-accuracy curves (:func:`~vidsparse.robustness.spectral.spectral_curves`):
    ``curves[label]["low" | "high"]`` holds one accuracy per radius."""

    radii: list[float]
    curves: dict[str, dict[str, list[float | None]]]
    description: str | None = None  # replaces the report's paragraph when set

    def __post_init__(self) -> None:
        for label, curve in self.curves.items():
            for band in ("low", "high"):
                if band in curve and len(curve[band]) != len(self.radii):
                    raise ValueError(f'spectral curve {label!r} {band}: {len(curve[band])} '
                                     f'values for {len(self.radii)} radii')


@dataclass(kw_only=True)
class Stability:
    """Flip rates (:func:`~vidsparse.robustness.stability.flip_rate`):
    ``flip_rate[label][condition]``, conditions such as ``"clean"`` and ``"fog s3"``."""

    clips_per_video: int
    stride: int
    flip_rate: dict[str, dict[str, float | None]]


@dataclass(kw_only=True)
class Estimate:
    """A difference (method - reference; fractions, not percent) with its bootstrap
    interval, and for a statistic with a per-video share its permutation p-value, raw and
    Holm-adjusted over the comparisons (None for rPC, a ratio with no per-video share)."""

    difference: float | None
    low: float | None
    high: float | None
    p: float | None = None
    p_holm: float | None = None


@dataclass(kw_only=True)
class Comparison:
    """One group (a method at a sparsity, over its seeds) against its reference (dense)
    group: clean accuracy, mPC and rPC differences and the verdict on mPC."""

    label: str                      # GroupResult label
    reference: str                  # the reference GroupResult's label
    model: str | None = None
    method: str | None
    sparsity: float
    n_videos: int
    seeds: list[Any]
    reference_seeds: list[Any]
    resampling: str                 # "videos" or "seeds, then videos"
    clean: Estimate
    mPC: Estimate
    rPC: Estimate
    verdict: str                    # "more robust than ...", "less robust than ...", "not resolved at 95%"


@dataclass(kw_only=True)
class Statistics:
    """How sure each comparison with dense is (:mod:`~vidsparse.robustness.stats`):
    paired bootstrap intervals over test videos (and seeds), sign-flip permutation
    p-values, Holm-adjusted over ``comparisons``; drawn from ``seed``."""

    confidence: float
    n_bootstrap: int
    n_permutations: int
    exact_up_to: int                # sign-flip tests over this many differing videos or fewer are exact
    seed: int
    resample_seeds: bool
    comparisons: list[Comparison]


@dataclass(kw_only=True, eq=False)
class PerVideo:
    """Every prediction behind the accuracies (the content of ``per_video.csv.gz``).

    ``predictions[label]`` is a ``conditions x videos`` int array: row ``i`` the predicted
    class of each of ``videos`` under ``conditions[i]`` (``("clean", 0)`` or
    ``(corruption, severity)``); ``targets`` the true classes. A checkpoint that was not
    run under a condition has :data:`NOT_RUN` (-1) across that row, and no rows in the file.
    """

    videos: list[str]
    targets: np.ndarray
    conditions: list[tuple[str, int]]
    predictions: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int64)
        self.conditions = [(str(c), int(s)) for c, s in self.conditions]
        shape = (len(self.conditions), len(self.videos))
        if self.targets.shape != (len(self.videos),):
            raise ValueError(f"per-video results: {self.targets.shape[0]} targets for "
                             f"{len(self.videos)} videos")
        self.predictions = {label: np.asarray(preds, dtype=np.int64)
                            for label, preds in self.predictions.items()}
        for label, preds in self.predictions.items():
            if preds.shape != shape:
                raise ValueError(f"per-video results: predictions of {label!r} are "
                                 f"{preds.shape}, expected conditions x videos {shape}")
            partly = [self.conditions[i] for i, row in enumerate(preds == NOT_RUN)
                      if row.any() and not row.all()]
            if partly:
                raise ValueError(f"per-video results: {label!r} lacks the predictions of some "
                                 f"videos under {partly[0]}")

    def correct(self, label: str) -> np.ndarray:
        """``conditions x videos`` bool: whether ``label`` got each video right."""
        return self.predictions[label] == self.targets[None, :]

    def ran(self, label: str) -> list[bool]:
        """Per condition, whether ``label`` was run under it."""
        return [bool(row[0] != NOT_RUN) if row.size else True for row in self.predictions[label]]


@dataclass(kw_only=True)
class Results:
    """Everything ``results.json`` holds; see the module docstring for the layout.

    Example:
        >>> results = Results.read("reports/ucf101")          # or results_from_evaluation(ev)
        >>> [(m.label, m.mPC) for m in results.methods]
        [('Dense', 0.8), ('RigL sparsity 0.5', 0.773)]
        >>> results.to_dict()["methods"][0]["mPC"]            # the JSON form
        0.8
    """

    format: str = RESULTS_FORMAT
    dataset: DatasetInfo
    seed: int | None = None
    corruptions: dict[str, CorruptionInfo]
    families: dict[str, str] | None = None
    frequency_order: list[str] | None = None
    frequency_bands: dict[str, str | None] | None = None
    baseline: str | None = None
    baseline_checkpoint: str | None = None
    methods: list[MethodResult]
    groups: list[GroupResult] | None = None
    statistics: Statistics | None = None
    spectral: Spectral | None = None
    stability: Stability | None = None
    # Not part of results.json: written beside it as per_video.csv.gz.
    per_video: PerVideo | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: plain types, string keys, NaN as None; ``spectral``, ``stability``
        and a spectral ``description`` only when set; never ``per_video``."""
        out = dataclasses.asdict(dataclasses.replace(self, per_video=None))
        del out["per_video"]
        for key in ("spectral", "stability"):
            if out[key] is None:
                del out[key]
        if "spectral" in out and out["spectral"]["description"] is None:
            del out["spectral"]["description"]
        return json_safe(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "results") -> "Results":
        """Check and type a results dictionary (``to_dict`` or ``results.json`` content).

        Raises:
            ValueError: naming ``where`` and the field when the format is not readable, a
                required field is missing or a field is unknown.
        """
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") not in READABLE_FORMATS:
            raise ValueError(f"{where}: not a vidsparse robustness results file "
                             f"(format {data.get('format')!r}, expected {RESULTS_FORMAT!r})")
        fields = _fields(cls, data, where, exclude=("per_video",))
        fields["dataset"] = _typed(DatasetInfo, data["dataset"], f"{where}.dataset")
        fields["corruptions"] = {name: _typed(CorruptionInfo, info, f"{where}.corruptions.{name}")
                                 for name, info in _mapping(data, "corruptions", where).items()}
        fields["methods"] = [_typed(MethodResult, m, f"{where}.methods[{i}]")
                             for i, m in enumerate(_sequence(data, "methods", where))]
        if data.get("groups") is not None:
            fields["groups"] = [_typed(GroupResult, g, f"{where}.groups[{i}]")
                                for i, g in enumerate(_sequence(data, "groups", where))]
        if data.get("statistics") is not None:
            fields["statistics"] = as_statistics(data["statistics"], f"{where}.statistics")
        if data.get("spectral") is not None:
            fields["spectral"] = as_spectral(data["spectral"], f"{where}.spectral")
        if data.get("stability") is not None:
            fields["stability"] = as_stability(data["stability"], f"{where}.stability")
        return cls(**fields)

    @classmethod
    def read(cls, path: str | os.PathLike, per_video: bool = False) -> "Results":
        """Load ``results.json`` (a file or the report directory); older versions load too.
        ``per_video=True`` also reads ``per_video.csv.gz`` beside it (an error if it is not
        there) into ``Results.per_video``.

        Example:
            >>> Results.read("reports/ucf101", per_video=True).per_video.correct("Dense").mean()
            0.61
        """
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
        results = cls.from_dict(data, where=str(path))
        if per_video:
            results.per_video = read_per_video(path.parent / PER_VIDEO_NAME)
            check_per_video(results, results.per_video, str(path.parent / PER_VIDEO_NAME))
        return results

    def write(self, path: str | os.PathLike) -> None:
        """Write the JSON form to ``path`` (strict JSON: no NaN tokens)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")


def as_results(results: Results | dict[str, Any]) -> Results:
    """``results`` typed: a :class:`Results` as is, a dictionary checked by ``from_dict``."""
    return results if isinstance(results, Results) else Results.from_dict(results)


def results_dict(results: Results | dict[str, Any]) -> dict[str, Any]:
    """The JSON form of ``results`` (a :class:`Results` or a dictionary), checked against the
    schema: what the renderers read."""
    return as_results(results).to_dict()


def as_spectral(spectral: Spectral | dict[str, Any], where: str = "spectral") -> Spectral:
    """Radius-accuracy curves typed and checked (one value per radius in every curve)."""
    if isinstance(spectral, Spectral):
        return spectral
    if not isinstance(spectral, dict) or "radii" not in spectral or "curves" not in spectral:
        raise ValueError(f'{where} must be {{"radii": [...], "curves": '
                         '{label: {"low": [...], "high": [...]}}}')
    return _typed(Spectral, spectral, where)


def as_stability(stability: Stability | dict[str, Any], where: str = "stability") -> Stability:
    """Flip rates typed and checked (``clips_per_video``, ``stride``, ``flip_rate``)."""
    return stability if isinstance(stability, Stability) else _typed(Stability, stability, where)


def as_statistics(statistics: Statistics | dict[str, Any], where: str = "statistics") -> Statistics:
    """The comparisons' statistics typed and checked, down to each :class:`Estimate`."""
    if isinstance(statistics, Statistics):
        return statistics
    fields = _fields(Statistics, _object(statistics, where), where)
    comparisons = []
    for i, c in enumerate(_sequence(fields, "comparisons", where)):
        at = f"{where}.comparisons[{i}]"
        typed = _fields(Comparison, _object(c, at), at)
        for key in ("clean", "mPC", "rPC"):
            typed[key] = _typed(Estimate, typed[key], f"{at}.{key}")
        comparisons.append(Comparison(**typed))
    fields["comparisons"] = comparisons
    return Statistics(**fields)


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """``results.json`` (a file or the report directory) as its dictionary, checked against
    the schema; version 1 files load too, the fields they lack as ``None``.

    Example:
        >>> read_results("reports/ucf101")["methods"][0]["label"]
        'Dense'
    """
    return Results.read(path).to_dict()


def has_comparison(results: Results | dict[str, Any]) -> bool:
    """Whether some (method, sparsity) has a dense model to be compared with."""
    if isinstance(results, Results):
        return any(g.vs_reference for g in results.groups or [])
    return any(g.get("vs_reference") for g in results.get("groups") or [])


def accuracy_tables(results: Results | dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{label: accuracy table}`` from results, severities back to ints, in the form
    ``metrics`` reads (so numbers can be recomputed from a saved report)."""
    if isinstance(results, Results):
        results = results.to_dict()
    return {m["label"]: {"clean": m["clean"],
                         "corrupted": {name: {int(s): acc for s, acc in by_sev.items()}
                                       for name, by_sev in m["accuracy"].items()}}
            for m in results["methods"]}


def csv_rows(results: Results | dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``results.csv`` (keys :data:`CSV_COLUMNS`): per checkpoint, the clean
    accuracy (corruption "clean", severity 0) then each corruption (high- to low-frequency)
    and severity."""
    if isinstance(results, Results):
        results = results.to_dict()
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


# --- per-video predictions -------------------------------------------------------------

def per_video_rows(results: Results | dict[str, Any], per_video: PerVideo) -> list[dict[str, Any]]:
    """The rows of ``per_video.csv.gz`` (keys :data:`PER_VIDEO_COLUMNS`), in the file's
    order: per checkpoint (as ``results.methods``), per condition (clean first), per video.
    For tests and small evaluations; :func:`write_per_video` streams the same rows."""
    text = io.StringIO()
    write_per_video(text, results, per_video)
    text.seek(0)
    return list(csv.DictReader(text))


def write_per_video(out: str | os.PathLike | IO[str], results: Results | dict[str, Any],
                    per_video: PerVideo) -> None:
    """Write ``per_video.csv.gz`` to a path (gzip-compressed, no timestamp inside, so the
    same predictions give the same bytes) or plain CSV to an open text file.

    Raises:
        ValueError: a checkpoint of ``results`` with no predictions in ``per_video``.
    """
    if isinstance(results, Results):
        results = results.to_dict()
    if not isinstance(out, (str, os.PathLike)):
        _write_per_video_rows(out, results, per_video)
        return
    # Level 6 (zlib's default) packs as tightly as 9 here, in a third of the time.
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="",
                                               compresslevel=6) as packed, \
            io.TextIOWrapper(packed, encoding="utf-8", newline="") as text:
        _write_per_video_rows(text, results, per_video)


def _write_per_video_rows(text: IO[str], results: dict[str, Any], per_video: PerVideo) -> None:
    missing = [m["label"] for m in results["methods"] if m["label"] not in per_video.predictions]
    if missing:
        raise ValueError(f"per-video results lack the predictions of {', '.join(missing)}")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(PER_VIDEO_COLUMNS)
    # Each row is a fixed prefix (checkpoint, condition) and a fixed video part with the
    # prediction between: quoted once, joined per row, so a large evaluation (millions of
    # rows) writes in seconds.
    videos = [_csv_line([v, int(t)]) for v, t in zip(per_video.videos, per_video.targets)]
    for m in results["methods"]:
        predictions = per_video.predictions[m["label"]]
        correct = per_video.correct(m["label"])
        common = [m["label"], m["checkpoint"], _blank(m["model"]), _blank(m["method"]),
                  m["sparsity"], _blank(m["train_seed"])]
        ran = per_video.ran(m["label"])
        for row, (corruption, severity) in enumerate(per_video.conditions):
            if not ran[row]:
                continue
            prefix = _csv_line([*common, corruption, severity])
            text.write("".join(f"{prefix},{video},{p},{int(c)}\n" for video, p, c in
                               zip(videos, predictions[row].tolist(), correct[row].tolist())))


def _csv_line(values: list[Any]) -> str:
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(values)
    return line.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value


def read_per_video(path: str | os.PathLike) -> PerVideo:
    """Read ``per_video.csv.gz`` (or a plain ``.csv``) back into a :class:`PerVideo`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file (and line) when the columns are not
            :data:`PER_VIDEO_COLUMNS`, a value is not an integer, ``correct`` disagrees with
            ``prediction == target``, a video has two targets, or a checkpoint lacks a
            (condition, video) another has.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (per-video predictions are written "
                                "beside results.json by write_report)")
    opener = gzip.open if path.suffix == ".gz" else open
    videos: dict[str, int] = {}
    targets: dict[str, int] = {}
    conditions: dict[tuple[str, int], int] = {}
    cells: dict[str, dict[tuple[int, int], int]] = {}
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(header) != PER_VIDEO_COLUMNS:
                raise ValueError(f"{path}: expected the columns {', '.join(PER_VIDEO_COLUMNS)}, "
                                 f"got {header}")
            for line, row in enumerate(reader, start=2):
                if len(row) != len(PER_VIDEO_COLUMNS):
                    raise ValueError(f"{path}, line {line}: {len(row)} values, expected "
                                     f"{len(PER_VIDEO_COLUMNS)}")
                label, corruption, video = row[0], row[6], row[8]
                try:
                    severity, target, prediction, correct = (int(x) for x in (row[7], *row[9:]))
                except ValueError:
                    raise ValueError(f"{path}, line {line}: severity, target, prediction and "
                                     f"correct must be integers, got {row[7]}, {', '.join(row[9:])}") from None
                if correct != int(prediction == target):
                    raise ValueError(f"{path}, line {line}: correct is {correct} but prediction "
                                     f"{prediction} vs target {target}")
                if targets.setdefault(video, target) != target:
                    raise ValueError(f"{path}, line {line}: video {video} has target {target} "
                                     f"here and {targets[video]} on an earlier line")
                key = (conditions.setdefault((corruption, severity), len(conditions)),
                       videos.setdefault(video, len(videos)))
                if key in cells.setdefault(label, {}):
                    raise ValueError(f"{path}, line {line}: {label} on {video} "
                                     f"({corruption} {severity}) appears twice")
                cells[label][key] = prediction
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable per-video file ({exc})") from None
    predictions = {}
    for label, by_cell in cells.items():
        table = np.full((len(conditions), len(videos)), NOT_RUN, dtype=np.int64)
        for (c, v), p in by_cell.items():
            table[c, v] = p
        counts = (table != NOT_RUN).sum(axis=1)
        short = [c for c, n in zip(conditions, counts) if 0 < n < len(videos)]
        if short:
            raise ValueError(f"{path}: {label} has predictions of {counts[conditions[short[0]]]} "
                             f"of the {len(videos)} videos under {short[0][0]} {short[0][1]}")
        predictions[label] = table
    return PerVideo(videos=list(videos), targets=np.array([targets[v] for v in videos]),
                    conditions=list(conditions), predictions=predictions)


def check_per_video(results: Results | dict[str, Any], per_video: PerVideo,
                    where: str = "per-video results") -> None:
    """Raise unless ``per_video`` belongs to ``results``: the same videos in the same
    order, a row of predictions per checkpoint and condition, and every accuracy of
    ``results`` equal to its share of correct predictions."""
    results = results if isinstance(results, dict) else results.to_dict()
    if per_video.videos != results["dataset"]["videos"]:
        raise ValueError(f"{where}: the videos differ from results.json's dataset.videos")
    conditions = {c: i for i, c in enumerate(per_video.conditions)}
    for m in results["methods"]:
        if m["label"] not in per_video.predictions:
            raise ValueError(f"{where}: no predictions of {m['label']!r}")
        correct, ran = per_video.correct(m["label"]), per_video.ran(m["label"])
        cells = [("clean", 0, m["clean"])] + [(name, int(s), acc) for name, by_sev in
                                              m["accuracy"].items() for s, acc in by_sev.items()]
        for name, severity, accuracy in cells:
            if (name, severity) not in conditions or not ran[conditions[name, severity]]:
                raise ValueError(f"{where}: no predictions of {m['label']!r} under {name} {severity}")
            if accuracy is None or float(np.mean(correct[conditions[name, severity]])) != accuracy:
                raise ValueError(f"{where}: the predictions of {m['label']!r} under {name} "
                                 f"{severity} do not give results.json's accuracy {accuracy}")


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as None and every mapping key a string (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# --- checking a dictionary against a dataclass -----------------------------------------

def _fields(cls: type, data: dict[str, Any], where: str,
            exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The entries of ``data`` that are fields of ``cls`` (less ``exclude``, fields that
    never come from JSON); raise on a missing required field or an unknown key (a typo or
    another tool's file would otherwise be read silently)."""
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
                         f"{cls.__name__} has {', '.join(known)}")
    missing = [name for name, f in known.items() if name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
    return {k: v for k, v in data.items() if k in known}


def _typed(cls: type, data: Any, where: str) -> Any:
    return cls(**_fields(cls, _object(data, where), where))


def _object(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    return data


def _mapping(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{where}.{key}: expected an object, got {type(value).__name__}")
    return value


def _sequence(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key}: expected a list, got {type(value).__name__}")
    return value
