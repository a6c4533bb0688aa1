"""per_video.csv.gz: every prediction behind results.json, enough to recompute every figure."""

import csv
import gzip
import json
import re

import numpy as np
import pytest

from vidsparse.robustness import PER_VIDEO_NAME, metrics, read_per_video, report
from vidsparse.robustness.schema import PER_VIDEO_COLUMNS, Results, check_per_video

from test_comparison import DENSE_SEED1, RIGL_SEED1, seeded
from test_robustness_report import DENSE_PREDS, LABELS, RIGL_PREDS, make_evaluation


def seeded_evaluation():
    """Dense and RigL, two training seeds each, 4 videos, clean + fog 1, 2 + freeze 1."""
    return make_evaluation([DENSE_PREDS, RIGL_PREDS, DENSE_SEED1, RIGL_SEED1],
                           [seeded("dense", 1.0, 0), seeded("rigl", 0.5, 0),
                            seeded("dense", 1.0, 1), seeded("rigl", 0.5, 1)])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    ev = seeded_evaluation()
    out = tmp_path_factory.mktemp("per_video")
    return ev, out, report.write_report(ev, out)


def read_rows(path):
    """The per-video file read with the standard library alone, as a user would."""
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


def test_the_per_video_file_reproduces_every_accuracy(written):
    ev, out, paths = written
    assert paths["per_video"] == out / PER_VIDEO_NAME
    rows = read_rows(out / PER_VIDEO_NAME)
    results = json.loads((out / "results.json").read_text())
    assert tuple(rows[0]) == PER_VIDEO_COLUMNS
    assert len(rows) == 4 * len(ev.conditions) * len(ev.videos)  # checkpoints x conditions x videos
    assert all(int(r["correct"]) == (r["prediction"] == r["target"]) for r in rows)
    assert {(r["video"], int(r["target"])) for r in rows} == set(zip(ev.videos, LABELS.tolist()))

    # Every accuracy, recomputed from the file alone, is results.json's to the last bit.
    correct: dict = {}
    for r in rows:
        correct.setdefault(r["label"], {}).setdefault((r["corruption"], int(r["severity"])), []).append(
            int(r["correct"]))
    tables = {}
    for label, cells in correct.items():
        acc = {cell: float(np.mean(values)) for cell, values in cells.items()}
        tables[label] = {"clean": acc.pop(("clean", 0)), "corrupted": {}}
        for (name, severity), value in acc.items():
            tables[label]["corrupted"].setdefault(name, {})[severity] = value
    assert tables == report.accuracy_tables(results)
    by_label = {m["label"]: m for m in results["methods"]}
    for label, table in tables.items():
        m = by_label[label]
        assert (m["clean"], m["mPC"], m["rPC"]) == (table["clean"], metrics.mpc(table), metrics.rpc(table))
        assert m["per_corruption"] == metrics.corruption_means(table)
        # the rows carry the checkpoint's columns of results.csv
        row = next(r for r in rows if r["label"] == label)
        assert (row["checkpoint"], row["method"], float(row["sparsity"]), int(row["seed"])) == (
            m["checkpoint"], m["method"], m["sparsity"], m["train_seed"])
    # ... and so every mean over seeds: Dense seed 0 mPC 0.5625, seed 1 0.375 (test_comparison)
    for group in results["groups"]:
        seeds = metrics.summarize_seeds([tables[label] for label in group["members"]])
        assert group["mean"]["clean"] == seeds["mean"]["clean"]
        assert group["mean"]["mPC"] == seeds["mean"]["mPC"]
        assert group["mean"]["rPC"] == seeds["mean"]["rPC"]
    assert results["groups"][0]["mean"]["mPC"] == pytest.approx((0.5625 + 0.375) / 2)


def test_the_per_video_file_reads_back(written):
    ev, out, _ = written
    per_video = read_per_video(out / PER_VIDEO_NAME)
    assert per_video.videos == ev.videos
    np.testing.assert_array_equal(per_video.targets, ev.labels)
    assert per_video.conditions == [tuple(c) for c in ev.conditions]
    labels = [m.label for m in Results.read(out).methods]
    assert list(per_video.predictions) == labels
    for label, predictions in zip(labels, ev.predictions):
        np.testing.assert_array_equal(per_video.predictions[label],
                                      np.stack([predictions[c] for c in ev.conditions]))
    typed = Results.read(out, per_video=True)
    np.testing.assert_array_equal(typed.per_video.correct(labels[1]), per_video.correct(labels[1]))
    assert Results.read(out).per_video is None  # only when asked


def test_results_json_holds_no_predictions_and_refuses_them(written):
    _, out, _ = written
    data = json.loads((out / "results.json").read_text())
    assert "per_video" not in data
    with pytest.raises(ValueError, match=r"unknown field\(s\) 'per_video'"):
        Results.from_dict({**data, "per_video": []})


def test_the_same_predictions_give_the_same_bytes(written, tmp_path):
    ev, out, _ = written
    report.write_report(seeded_evaluation(), tmp_path)
    assert (tmp_path / PER_VIDEO_NAME).read_bytes() == (out / PER_VIDEO_NAME).read_bytes()


def test_a_report_redrawn_from_results_json_keeps_the_per_video_file(written, tmp_path):
    _, out, _ = written
    for name in ("results.json", PER_VIDEO_NAME):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    before = (tmp_path / PER_VIDEO_NAME).read_bytes()
    paths = report.write_report_files(report.read_results(tmp_path), tmp_path)
    assert "per_video" not in paths
    assert (tmp_path / PER_VIDEO_NAME).read_bytes() == before


def test_predictions_that_do_not_give_the_accuracies_are_refused(tmp_path):
    results = report.results_from_evaluation(seeded_evaluation())
    label = results.methods[1].label
    results.per_video.predictions[label][0, 0] += 1   # one clean prediction changed
    with pytest.raises(ValueError, match=re.escape(f"predictions of '{label}' under clean 0 do not give")):
        report.write_report_files(results, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # before anything was written
    results.per_video.videos = results.per_video.videos[::-1]
    with pytest.raises(ValueError, match="videos differ from results.json"):
        check_per_video(results, results.per_video)


def rewrite(path, edit):
    """The per-video file at ``path`` with its rows (header first) passed through ``edit``."""
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    rows = edit(rows)
    with gzip.open(path, "wt", newline="") as f:
        csv.writer(f).writerows(rows)


def set_cell(line, column, value):
    def edit(rows):
        rows[line - 1][PER_VIDEO_COLUMNS.index(column)] = value
        return rows
    return edit


@pytest.mark.parametrize("edit, message", [
    (lambda rows: [rows[0][:-1]] + rows[1:], r"expected the columns label, .*, correct"),
    (set_cell(2, "correct", "0"), r"line 2: correct is 0 but prediction 0 vs target 0"),
    (set_cell(3, "prediction", "one"), r"line 3: severity, target, prediction and correct must be integers"),
    # line 18: RigL seed 0, clean, the first video (target 0), made target 1 and predicted 1
    (lambda rows: set_cell(18, "prediction", "1")(set_cell(18, "target", "1")(rows)),
     r"line 18: video UCF-101/A/a.avi has target 1 here and 0 on an earlier line"),
    (lambda rows: rows[:-1], r"has predictions of 3 of the 4 videos under freeze 1"),
    (lambda rows: rows + [rows[1]], r"line 66: Dense \(dense_s0\) on UCF-101/A/a.avi \(clean 0\) appears twice"),
])
def test_a_malformed_per_video_file_is_refused_naming_the_line(written, tmp_path, edit, message):
    path = tmp_path / PER_VIDEO_NAME
    path.write_bytes((written[1] / PER_VIDEO_NAME).read_bytes())
    rewrite(path, edit)
    with pytest.raises(ValueError, match=message) as info:
        read_per_video(path)
    assert str(path) in str(info.value)


def test_a_missing_or_unreadable_per_video_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"per_video.csv.gz does not exist"):
        read_per_video(tmp_path / PER_VIDEO_NAME)
    (tmp_path / PER_VIDEO_NAME).write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="not a readable per-video file"):
        read_per_video(tmp_path / PER_VIDEO_NAME)


def test_a_checkpoint_not_run_under_a_condition_has_no_rows_for_it(tmp_path):
    # RigL was not run under freeze: the file has no RigL freeze rows, reads back with that
    # row marked NOT_RUN, and the comparison with Dense is over fog alone, as the
    # comparison of the accuracy tables is.
    from vidsparse.robustness.schema import NOT_RUN
    from test_robustness_report import evaluation_without_freeze_for_rigl

    ev = evaluation_without_freeze_for_rigl()
    report.write_report(ev, tmp_path)
    rows = read_rows(tmp_path / PER_VIDEO_NAME)
    assert len(rows) == 4 * 3 + 4 * 2
    assert not [r for r in rows if r["label"] == "RigL sparsity 0.5" and r["corruption"] == "freeze"]
    per_video = read_per_video(tmp_path / PER_VIDEO_NAME)
    assert per_video.ran("RigL sparsity 0.5") == [True, True, False]
    assert (per_video.predictions["RigL sparsity 0.5"][2] == NOT_RUN).all()
    results = Results.read(tmp_path, per_video=True)   # checks the file against results.json
    (comparison,) = results.statistics.comparisons
    # fog alone: Dense 3/4, RigL 2/4
    assert comparison.mPC.difference == pytest.approx(-0.25)
    assert comparison.mPC.difference == pytest.approx(results.groups[1].vs_reference["mPC_difference"])
