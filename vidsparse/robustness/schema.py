"""The results format: what ``results.json`` holds, typed, versioned, read and written.

A report's numbers live in one :class:`Results`; ``results.json`` is its :meth:`Results.to_dict`
(JSON types only: severities are string keys, an undefined number such as the rPC of a model
with zero clean accuracy is ``null``), and ``results.csv`` is the flat view :func:`csv_rows`
gives. The markdown and the plots are drawn from that same dictionary, so a saved
``results.json`` redraws its report (``write_report_files(read_results(dir), dir)``).

Layout (format ``"vidsparse-robustness/2"``, :data:`RESULTS_FORMAT`)::

    format               "vidsparse-robustness/2"
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
    spectral             Spectral (only when measured)
    stability            Stability (only when measured)

Version 1 files (``"vidsparse-robustness/1"``) lack CE, gamma, ``families``,
``frequency_order``, ``frequency_bands`` and ``groups``; what they hold reads the same, so
:func:`read_results` accepts them and the missing fields are ``None``. A change that makes
an old reader misread a file bumps the version.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

RESULTS_FORMAT = "vidsparse-robustness/2"
READABLE_FORMATS = ("vidsparse-robustness/1", RESULTS_FORMAT)
CSV_NAME = "results.csv"
CSV_COLUMNS = ("label", "checkpoint", "model", "method", "sparsity", "seed", "corruption",
               "severity", "accuracy")

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
    """One corruption of the evaluation: its registry kind and the severities run."""

    kind: str | None                # "spatial", "temporal", "codec"; None if unregistered
    severities: list[int]


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
    spectral: Spectral | None = None
    stability: Stability | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: plain types, string keys, NaN as None; ``spectral``, ``stability``
        and a spectral ``description`` only when set."""
        out = dataclasses.asdict(self)
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
        fields = _fields(cls, data, where)
        fields["dataset"] = _typed(DatasetInfo, data["dataset"], f"{where}.dataset")
        fields["corruptions"] = {name: _typed(CorruptionInfo, info, f"{where}.corruptions.{name}")
                                 for name, info in _mapping(data, "corruptions", where).items()}
        fields["methods"] = [_typed(MethodResult, m, f"{where}.methods[{i}]")
                             for i, m in enumerate(_sequence(data, "methods", where))]
        if data.get("groups") is not None:
            fields["groups"] = [_typed(GroupResult, g, f"{where}.groups[{i}]")
                                for i, g in enumerate(_sequence(data, "groups", where))]
        if data.get("spectral") is not None:
            fields["spectral"] = as_spectral(data["spectral"], f"{where}.spectral")
        if data.get("stability") is not None:
            fields["stability"] = as_stability(data["stability"], f"{where}.stability")
        return cls(**fields)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Results":
        """Load ``results.json`` (a file or the report directory); version 1 files load too."""
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
        return cls.from_dict(data, where=str(path))

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

def _fields(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """The entries of ``data`` that are fields of ``cls``; raise on a missing required field
    or an unknown key (a typo or another tool's file would otherwise be read silently)."""
    known = {f.name: f for f in dataclasses.fields(cls)}
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
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    return cls(**_fields(cls, data, where))


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
