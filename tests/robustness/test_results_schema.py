"""The typed results (vidsparse.robustness.schema): what results.json holds and how it reads."""

import copy
import dataclasses
import json

import pytest

from vidsparse.robustness import report
from vidsparse.robustness.schema import (
    RESULTS_FORMAT,
    CorruptionInfo,
    GroupResult,
    MethodResult,
    Results,
    Stability,
)

from test_robustness_report import DENSE_PREDS, RIGL_PREDS, as_version_1, config, make_evaluation

# Flip rates of a made-up --flip-rate run: Dense flips on half the clean pairs, a quarter
# under fog; shown in report.md in %.
STABILITY = {"clips_per_video": 3, "stride": 1,
             "flip_rate": {"Dense": {"clean": 0.5, "fog s3": 0.25},
                           "RigL sparsity 0.5": {"clean": 0.0, "fog s3": 1.0}}}
SPECTRAL = {"radii": [2, 8], "curves": {"Dense": {"low": [0.25, 0.75], "high": [0.5, 0.125]},
                                        "RigL sparsity 0.5": {"low": [0.5, 1.0], "high": [0.0, 0.0]}}}


@pytest.fixture
def evaluation():
    return make_evaluation([DENSE_PREDS, RIGL_PREDS], [config("dense", 1.0), config("rigl", 0.5)])


def test_results_json_reads_back_typed_and_unchanged(evaluation, tmp_path):
    paths = report.write_report(evaluation, tmp_path)
    on_disk = json.loads(paths["results"].read_text())
    results = Results.read(tmp_path)
    assert results.format == RESULTS_FORMAT == on_disk["format"]
    assert results.to_dict() == on_disk  # nothing lost or added on the way through the types
    dense, rigl = results.methods
    assert isinstance(rigl, MethodResult) and isinstance(results.groups[1], GroupResult)
    # by hand (see test_robustness_report): RigL mPC 0.625, mCE 5/6 against Dense
    assert (rigl.label, rigl.mPC, rigl.mCE) == ("RigL sparsity 0.5", pytest.approx(0.625), pytest.approx(5 / 6))
    assert rigl.accuracy == {"fog": {"1": 0.75, "2": 0.75}, "freeze": {"1": 0.5}}
    assert results.corruptions["fog"] == CorruptionInfo(kind="spatial", severities=[1, 2])
    assert (results.dataset.num_videos, results.dataset.source) == (4, "on-the-fly")
    assert results.groups[1].reference == "Dense" and results.groups[0].vs_reference is None
    assert results.spectral is None and results.stability is None
    assert "spectral" not in on_disk and "stability" not in on_disk


def test_evaluation_spectral_and_stability_reach_the_report(evaluation, tmp_path):
    # write_report reads evaluation.spectral; an Evaluation used to have no such field, so
    # curves measured by the recipe could only be passed around the Evaluation.
    ev = dataclasses.replace(evaluation, spectral=SPECTRAL, stability=STABILITY)
    paths = report.write_report(ev, tmp_path)
    assert paths["spectral_plot"].read_bytes()[:4] == b"\x89PNG"
    results = report.read_results(tmp_path)
    assert results["spectral"] == SPECTRAL and results["stability"] == STABILITY
    text = paths["report"].read_text()
    # Radius | Dense (low) | Dense (high) | RigL (low) | RigL (high)
    assert "| 2 | 25.0 | 50.0 | 50.0 | 0.0 |" in text
    # method | clean | fog s3
    assert "| Dense | 50.0 | 25.0 |" in text and "| RigL sparsity 0.5 | 0.0 | 100.0 |" in text
    typed = Results.read(tmp_path)
    assert typed.stability == Stability(**STABILITY)
    # An explicit spectral= wins over the evaluation's own.
    only_dense = {"radii": [4], "curves": {"Dense": {"low": [1.0], "high": [0.0]}}}
    assert report.build_results(ev, spectral=only_dense)["spectral"] == only_dense


def test_version_1_files_read_with_the_new_fields_empty(evaluation):
    results = Results.from_dict(as_version_1(report.build_results(evaluation)))
    assert results.format == "vidsparse-robustness/1"
    assert results.groups is None and results.families is None and results.frequency_order is None
    assert results.methods[1].mCE is None and results.methods[1].CE is None
    assert results.methods[1].mPC == pytest.approx(0.625)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["methods"][0].pop("label"), r"results.methods\[0\]: missing field\(s\) 'label'"),
    (lambda d: d["methods"][1].update(mpc=0.5), r"results.methods\[1\]: unknown field\(s\) 'mpc'"),
    (lambda d: d["dataset"].pop("videos"), r"results.dataset: missing field\(s\) 'videos'"),
    (lambda d: d.update(methods={}), r"results.methods: expected a list, got dict"),
    (lambda d: d.update(format="vidsparse-robustness/9"), "not a vidsparse robustness results file"),
    (lambda d: d.update(spectral={"radii": [1, 2], "curves": {"Dense": {"low": [0.5]}}}),
     "spectral curve 'Dense' low: 1 values for 2 radii"),
])
def test_a_malformed_results_dictionary_is_refused_naming_the_field(evaluation, tmp_path, edit, message):
    broken = copy.deepcopy(report.build_results(evaluation))
    edit(broken)
    with pytest.raises(ValueError, match=message):
        Results.from_dict(broken)
    with pytest.raises(ValueError, match=message):
        report.write_report_files(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_results_file_that_is_not_json_is_named(tmp_path):
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"results.json: not JSON"):
        report.read_results(tmp_path)


def test_typed_and_dictionary_results_render_the_same(evaluation, tmp_path):
    typed = report.results_from_evaluation(evaluation)
    as_dict = report.build_results(evaluation)
    assert typed.to_dict() == as_dict
    assert report.summary_table(typed) == report.summary_table(as_dict)
    assert report.render_markdown(typed) == report.render_markdown(as_dict)
    assert report.csv_rows(typed) == report.csv_rows(as_dict)
