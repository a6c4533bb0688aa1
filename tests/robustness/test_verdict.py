"""The statistics of each comparison with dense in results.json and the report's verdict."""

import json

import numpy as np
import pytest

from vidsparse.robustness import CLEAN, Condition, Evaluation, StatsConfig, report, stats
from vidsparse.robustness.__main__ import main as report_cli
from vidsparse.robustness.schema import RESULTS_FORMAT, Results

from test_per_video import seeded_evaluation
from test_robustness_report import config

N = 40
LABELS = np.arange(N) % 2
FOG, FREEZE = Condition("fog", 1), Condition("freeze", 1)
CONDITIONS = [CLEAN, FOG, FREEZE]
FAST = StatsConfig(seed=0, n_bootstrap=2000, n_permutations=2000)


def right_on(videos):
    """Predictions right on ``videos`` (a range) and wrong elsewhere."""
    right = np.zeros(N, bool)
    right[videos] = True
    return np.where(right, LABELS, 1 - LABELS)


def model(fog, freeze):
    return {CLEAN: right_on(range(N)), FOG: right_on(fog), FREEZE: right_on(freeze)}


# Every model is right on every clean video. mPC = (fog + freeze) / 2 and a video's share of
# mPC is (right under fog + right under freeze) / 2; differences with Dense, per video:
#   Dense:  fog and freeze right on videos 0-19                    mPC 0.5
#   RigL:   right on 0-35: +1 on videos 20-35 (16 videos)          mPC 0.9,  +0.4
#   SET:    fog right on 0-17 and 20-21: -1/2 on 18, 19, +1/2 on 20, 21  mPC 0.5, 0
#   Static: right on 0-9: -1 on videos 10-19 (10 videos)           mPC 0.25, -0.25
# Sign-flip p (exact, zeros set aside): RigL 2 / 2^16 (only all + and all - reach |sum| 16),
# SET 1 (the observed sum is 0, which every pattern reaches), Static 2 / 2^10.
MODELS = {"dense": model(range(20), range(20)), "rigl": model(range(36), range(36)),
          "set": model([*range(18), 20, 21], range(20)), "static": model(range(10), range(10))}
P_RAW = {"rigl": 2 / 2**16, "set": 1.0, "static": 2 / 2**10}


def evaluation(methods=("dense", "rigl", "set", "static")):
    return Evaluation(
        checkpoints=[f"runs/{m}" for m in methods],
        configs=[config(m, 1.0 if m == "dense" else 0.5) for m in methods],
        data_root="data/synthetic", corrupted=None, seed=0,
        videos=[f"UCF-101/C{i % 2}/v{i:02d}.avi" for i in range(N)], labels=LABELS,
        conditions=CONDITIONS, predictions=[MODELS[m] for m in methods])


@pytest.fixture(scope="module")
def results():
    return report.results_from_evaluation(evaluation(), stats_config=FAST)


def test_each_method_is_compared_with_dense(results):
    s = results.statistics
    assert (s.confidence, s.n_bootstrap, s.seed, s.resample_seeds) == (0.95, 2000, 0, True)
    rigl, set_, static = s.comparisons
    assert [c.label for c in s.comparisons] == ["RigL sparsity 0.5", "SET sparsity 0.5",
                                                "Static sparsity 0.5"]
    assert all(c.reference == "Dense" and c.n_videos == N and c.resampling == "videos"
               for c in s.comparisons)
    assert (rigl.mPC.difference, set_.mPC.difference, static.mPC.difference) == pytest.approx(
        (0.4, 0.0, -0.25))
    # every model is right on every clean video: no clean difference, a point interval, p 1
    assert (rigl.clean.difference, rigl.clean.low, rigl.clean.high, rigl.clean.p) == (0, 0, 0, 1)
    # clean accuracy 1: rPC is mPC
    assert rigl.rPC.difference == pytest.approx(0.4) and rigl.rPC.p is None
    assert [c.mPC.p for c in s.comparisons] == pytest.approx([P_RAW["rigl"], P_RAW["set"], P_RAW["static"]])
    # Holm by hand: sorted 2/2^16 x 3, 2/2^10 x 2, 1 x 1
    assert [c.mPC.p_holm for c in s.comparisons] == pytest.approx([6 / 2**16, 1.0, 4 / 2**10])
    assert [c.verdict for c in s.comparisons] == [
        "more robust than Dense", "not resolved at 95%", "less robust than Dense"]
    # RigL's 16 of 40 videos with +1: the interval is about 0.4 +- 1.96 sqrt(0.4 0.6 / 40)
    assert rigl.mPC.low == pytest.approx(0.4 - 0.152, abs=0.03)
    assert rigl.mPC.high == pytest.approx(0.4 + 0.152, abs=0.03)
    assert set_.mPC.low < 0 < set_.mPC.high and static.mPC.high < 0


def test_the_statistics_are_fixed_by_the_seed():
    ev = evaluation()
    first = report.results_from_evaluation(ev, stats_config=FAST).statistics
    assert report.results_from_evaluation(ev, stats_config=FAST).statistics == first
    # 40 videos: interval ends are multiples of 1/80, which 2000 replicates pin down; with
    # 50 the draws show
    few = [report.results_from_evaluation(ev, stats_config=StatsConfig(seed=seed, n_bootstrap=50))
           .statistics.comparisons[0].mPC for seed in (0, 1)]
    assert (few[0].low, few[0].high) != (few[1].low, few[1].high)
    assert few[0].difference == few[1].difference == first.comparisons[0].mPC.difference


def test_several_seeds_are_resampled_and_the_test_uses_seed_means():
    ev = seeded_evaluation()
    results = report.results_from_evaluation(ev, stats_config=FAST)
    (c,) = results.statistics.comparisons
    assert (c.label, c.reference, c.seeds, c.reference_seeds) == ("RigL sparsity 0.5", "Dense", [0, 1], [0, 1])
    assert c.resampling == "seeds, then videos"
    dense, rigl = results.groups
    assert c.mPC.difference == pytest.approx(rigl.mean["mPC"] - dense.mean["mPC"])
    assert c.rPC.difference == pytest.approx(rigl.mean["rPC"] - dense.mean["rPC"])
    # The test's per-video differences by hand: a video's share of mPC is fog 1 and fog 2
    # at 1/4 each and freeze at 1/2 (metrics.mpc_weights), averaged over the two seeds.
    weights = {CLEAN: 0.0, Condition("fog", 1): 0.25, Condition("fog", 2): 0.25,
               Condition("freeze", 1): 0.5}

    def share(i):
        return sum(w * (ev.predictions[i][cond] == ev.labels) for cond, w in weights.items())

    d = (share(1) + share(3)) / 2 - (share(0) + share(2)) / 2
    assert c.mPC.p == stats.sign_flip_test(d) and c.mPC.p_holm == c.mPC.p
    without = report.results_from_evaluation(
        ev, stats_config=StatsConfig(n_bootstrap=2000, resample_seeds=False)).statistics
    assert without.comparisons[0].resampling == "videos"


def test_no_dense_model_means_no_statistics(tmp_path):
    results = report.results_from_evaluation(evaluation(("rigl", "set")), stats_config=FAST)
    assert results.statistics is None
    paths = report.write_report_files(results, tmp_path)
    text = paths["report"].read_text()
    assert "Verdict" not in text and "How sure" not in text
    assert report.verdict_lines(results) == []


def test_the_report_opens_with_the_verdict(results, tmp_path):
    paths = report.write_report_files(results, tmp_path)
    lines = paths["report"].read_text().splitlines()
    rigl, set_, static = results.statistics.comparisons
    assert lines[0] == "# Robustness report"
    assert lines[2].startswith("Verdict on mPC against dense (95% paired bootstrap interval")
    assert lines[4] == (f"- **RigL sparsity 0.5: more robust than Dense** (mPC +40.0 points vs "
                        f"Dense, 95% CI {100 * rigl.mPC.low:+.1f} to {100 * rigl.mPC.high:+.1f}; "
                        f"Holm-adjusted p < 0.001; 40 videos, 1 seed each)")
    assert lines[5].startswith("- **SET sparsity 0.5: not resolved at 95%** (mPC +0.0 points vs "
                               "Dense") and "Holm-adjusted p = 1.000" in lines[5]
    assert lines[6].startswith("- **Static sparsity 0.5: less robust than Dense** (mPC -25.0 points")
    text = "\n".join(lines)
    assert "## How sure: differences with dense" in text
    # Method | Sparsity | Videos | Clean - Dense | p | mPC - Dense | p | rPC - Dense | Seeds | ...
    # (every config here has training seed 3)
    assert (f"| SET sparsity 0.5 | 0.5 | 40 | +0.0 [+0.0, +0.0] | 1.000 | +0.0 "
            f"[{100 * set_.mPC.low:+.1f}, {100 * set_.mPC.high:+.1f}] | 1.000 | ") in text
    assert "| 3 vs 3 | videos | not resolved at 95% |" in text
    assert "**Verdict, intervals, p**" in text and "Holm-adjusted over the 3 method(s)" in text
    assert "seed 0: the same predictions and seed give the same numbers" in text
    on_disk = json.loads(paths["results"].read_text())
    assert on_disk["format"] == RESULTS_FORMAT == "vidsparse-robustness/3"
    assert on_disk["statistics"]["comparisons"][0]["verdict"] == "more robust than Dense"
    assert Results.read(tmp_path).statistics == results.statistics  # typed down to each Estimate


def as_version_2(results: dict) -> dict:
    """``results`` (a current results dict) as version 2 of the format wrote it."""
    old = {k: v for k, v in results.items() if k != "statistics"}
    old["format"] = "vidsparse-robustness/2"
    return old


def test_version_2_files_read_without_statistics(results, tmp_path):
    old = as_version_2(results.to_dict())
    typed = Results.from_dict(old)
    assert typed.format == "vidsparse-robustness/2" and typed.statistics is None
    assert typed.methods[1].mPC == pytest.approx(0.9)
    text = report.render_markdown(old, plot_name=None)
    assert "Verdict" not in text and "| RigL sparsity 0.5 |" in text


def test_a_malformed_statistics_entry_is_named(results):
    broken = results.to_dict()
    del broken["statistics"]["comparisons"][1]["mPC"]["low"]
    with pytest.raises(ValueError, match=r"statistics.comparisons\[1\].mPC: missing field\(s\) 'low'"):
        Results.from_dict(broken)


def test_the_report_command_draws_the_statistics_again(tmp_path, capsys):
    ev = evaluation()
    report.write_report(ev, tmp_path / "a", stats_config=FAST)
    original = json.loads((tmp_path / "a" / "results.json").read_text())
    # the same seed and replicates: the same results.json, statistics and all
    assert report_cli([str(tmp_path / "a"), "--seed", "0", "--bootstrap", "2000",
                       "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "results.json").read_text()) == original
    assert "RigL sparsity 0.5: more robust than Dense" in capsys.readouterr().out
    # another seed: what results_from_evaluation gives with it
    assert report_cli([str(tmp_path / "a"), "--seed", "4", "--bootstrap", "500"]) == 0
    again = Results.read(tmp_path / "a")
    expected = report.results_from_evaluation(
        ev, stats_config=StatsConfig(seed=4, n_bootstrap=500, n_permutations=500))
    assert again.statistics == expected.statistics and again.statistics.seed == 4


def test_the_report_command_names_a_missing_per_video_file_and_bad_options(tmp_path, capsys):
    report.write_report_files(report.build_results(evaluation(), stats_config=FAST), tmp_path)
    assert report_cli([str(tmp_path)]) == 1
    assert "per_video.csv.gz does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        report_cli([str(tmp_path), "--bootstrap", "0"])
    assert "--seed/--bootstrap: StatsConfig.n_bootstrap must be a positive integer, got 0" in \
        capsys.readouterr().err
