"""vidsparse.robustness.stats on hand-made tables whose answers are known."""

import itertools

import numpy as np
import pytest

from vidsparse.robustness import metrics, stats


# --- Holm ------------------------------------------------------------------------------

def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.20 times 4, 3, 2, 1: 0.04, 0.09, 0.08 -> 0.09 (kept
    # monotone), 0.20; back in the order given
    assert stats.holm([0.01, 0.04, 0.03, 0.20]) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    # capped at 1; a single p-value is its own adjustment
    assert stats.holm([0.5, 0.6, 0.01]) == pytest.approx([1.0, 1.0, 0.03])
    assert stats.holm([0.02]) == [0.02]
    # ties keep their order and both get the larger multiplier's product, made monotone
    assert stats.holm([0.01, 0.01]) == pytest.approx([0.02, 0.02])


def test_holm_refuses_what_is_not_a_p_value():
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        stats.holm([0.2, 1.5])
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        stats.holm([float("nan")])


# --- sign-flip test --------------------------------------------------------------------

def test_sign_flip_exact_by_hand():
    # d = (1, 1, 1, -1), sum 2. The 16 sign patterns give sums of four +-1: +-4 twice,
    # +-2 eight times, 0 six times; |sum| >= 2 in 10 of them.
    assert stats.sign_flip_test([1, 1, 1, -1]) == 10 / 16
    # d = (0.5, 0.25): sums 0.75, 0.25, -0.25, -0.75; |sum| >= 0.75 in 2 of 4
    assert stats.sign_flip_test([0.5, 0.25]) == 0.5
    # zeros flip to themselves: the same p as without them
    assert stats.sign_flip_test([0, 0.5, 0, 0.25, 0]) == 0.5
    # five equal differences: only the all-+ and all-- patterns reach |sum| 5
    assert stats.sign_flip_test([1] * 5) == 2 / 32
    assert stats.sign_flip_test([0, 0, 0]) == 1.0


def test_sign_flip_exact_matches_enumeration():
    d = np.array([0.3, -0.1, 0.2, 0.2, 0.05, -0.4, 0.1])
    sums = [abs(np.dot(signs, d)) for signs in itertools.product([1, -1], repeat=d.size)]
    expected = np.mean([s >= abs(d.sum()) - 1e-12 for s in sums])
    assert stats.sign_flip_test(d) == pytest.approx(expected)


def test_sign_flip_monte_carlo_agrees_with_exact_and_is_seeded():
    rng = np.random.default_rng(1)
    d = rng.choice([-1.0, 0.0, 1.0, 0.5], size=18, p=[0.2, 0.2, 0.4, 0.2])
    exact = stats.sign_flip_test(d, exact_up_to=18)
    sampled = stats.sign_flip_test(d, n_permutations=20_000, seed=0, exact_up_to=0)
    assert sampled == pytest.approx(exact, abs=0.01)  # Monte Carlo error ~ 0.003
    assert sampled == stats.sign_flip_test(d, n_permutations=20_000, seed=0, exact_up_to=0)
    assert sampled != stats.sign_flip_test(d, n_permutations=20_000, seed=1, exact_up_to=0)
    # (1 + hits) / (1 + K): never 0, however extreme
    assert stats.sign_flip_test(np.ones(40), n_permutations=99, seed=0) == 1 / 100


def test_sign_flip_bad_input():
    with pytest.raises(ValueError, match="one difference per video"):
        stats.sign_flip_test(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        stats.sign_flip_test([0.1, float("nan")])
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        stats.sign_flip_test(np.ones(20), seed=-1)


# --- paired bootstrap ------------------------------------------------------------------

def two_runs(a, b):
    """runs x 1 quantity x videos from two per-video lists."""
    return np.array([[a], [b]], dtype=float)


def test_a_constant_difference_has_a_point_interval():
    rng = np.random.default_rng(0)
    base = rng.choice([0.0, 0.25, 0.5], size=16)   # 16 videos: every mean is exact
    reps = stats.paired_bootstrap(two_runs(base + 0.25, base), [[0], [1]], n_boot=2000, seed=3)
    diff = reps[:, 0, 0] - reps[:, 1, 0]
    assert (diff == 0.25).all()
    assert stats.percentile_interval(diff) == (0.25, 0.25)
    # the videos themselves were resampled: each run's own mean varies
    assert reps[:, 1, 0].std() > 0


def test_the_same_videos_are_drawn_for_every_run():
    # run 1 is right wherever run 0 is, and on two more videos: paired, it is never behind
    a = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 0], float)
    b = a.copy()
    b[[1, 3]] = 1
    reps = stats.paired_bootstrap(two_runs(a, b), [[0], [1]], n_boot=3000, seed=0)
    diff = reps[:, 1, 0] - reps[:, 0, 0]
    assert (diff >= 0).all() and (diff > 0).any()


def test_interval_covers_the_true_difference_as_often_as_it_says():
    # Paired videos: model right with probability 0.6, baseline 0.5, independently; the
    # true difference in accuracy is 0.1. Over 300 test sets of 100 videos a 95% interval
    # should cover it about 95% of the time (binomial sd 1.3 points).
    rng = np.random.default_rng(2024)
    covered = 0
    for trial in range(300):
        runs = two_runs(rng.random(100) < 0.6, rng.random(100) < 0.5)
        reps = stats.paired_bootstrap(runs, [[0], [1]], n_boot=500, seed=trial)
        low, high = stats.percentile_interval(reps[:, 0, 0] - reps[:, 1, 0])
        covered += low <= 0.1 <= high
    assert 0.90 <= covered / 300 <= 0.98


def test_interval_of_a_mean_matches_the_normal_one_for_many_videos():
    # 4000 videos of a standard normal: the 95% interval of the mean is about
    # mean +- 1.96 / sqrt(4000) = +- 0.031
    rng = np.random.default_rng(5)
    x = rng.standard_normal(4000)
    reps = stats.paired_bootstrap(x[None, None, :], [[0]], n_boot=4000, seed=0)
    low, high = stats.percentile_interval(reps[:, 0, 0])
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert low == pytest.approx(x.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.15 * half)


def test_the_same_seed_gives_the_same_replicates():
    rng = np.random.default_rng(0)
    runs = rng.random((3, 2, 50))
    first = stats.paired_bootstrap(runs, [[0, 1], [2]], n_boot=300, seed=7)
    np.testing.assert_array_equal(first, stats.paired_bootstrap(runs, [[0, 1], [2]], n_boot=300, seed=7))
    assert not np.array_equal(first, stats.paired_bootstrap(runs, [[0, 1], [2]], n_boot=300, seed=8))


def test_hierarchical_with_one_seed_is_the_video_bootstrap():
    rng = np.random.default_rng(0)
    runs = rng.random((3, 2, 40))
    kwargs = dict(n_boot=500, seed=11)
    np.testing.assert_array_equal(
        stats.paired_bootstrap(runs, [[0], [1], [2]], resample_seeds=True, **kwargs),
        stats.paired_bootstrap(runs, [[0], [1], [2]], resample_seeds=False, **kwargs))


def test_seeds_are_resampled_when_asked():
    # Two seeds of a method, one always right (1) and one always wrong (0), on every video:
    # drawing 2 seeds with replacement gives a group mean of 0, 0.5 or 1 with probabilities
    # 1/4, 1/2, 1/4. Without seed resampling the group mean is always 0.5.
    runs = np.array([[np.ones(12)], [np.zeros(12)]])
    reps = stats.paired_bootstrap(runs, [[0, 1]], n_boot=4000, seed=0)[:, 0, 0]
    shares = [np.mean(reps == v) for v in (0.0, 0.5, 1.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    fixed = stats.paired_bootstrap(runs, [[0, 1]], n_boot=200, seed=0, resample_seeds=False)
    assert (fixed == 0.5).all()


def test_statistic_and_group_statistic():
    # quantity 0 clean correctness, 1 corrupted; statistic: the ratio (rPC-like)
    runs = np.array([[[1, 1, 1, 0], [1, 0, 1, 0]],      # clean 0.75, corrupted 0.5
                     [[1, 1, 0, 0], [1, 0, 0, 0]]], float)  # clean 0.5, corrupted 0.25
    ratio = lambda m: m[..., 1] / m[..., 0]  # noqa: E731
    point = stats.group_statistic(runs, [[0], [1], [0, 1]], ratio)
    assert point[:, 0] == pytest.approx([2 / 3, 0.5, (2 / 3 + 0.5) / 2])
    reps = stats.paired_bootstrap(runs, [[0], [1]], ratio, n_boot=200, seed=0)
    assert reps.shape == (200, 2, 1)


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="runs x quantities x videos"):
        stats.paired_bootstrap(np.zeros((2, 5)), [[0]])
    with pytest.raises(ValueError, match=r"group 1 must list run indices in 0..1"):
        stats.paired_bootstrap(np.zeros((2, 1, 5)), [[0], [2]])
    with pytest.raises(ValueError, match="n_boot must be a positive integer"):
        stats.paired_bootstrap(np.zeros((1, 1, 5)), [[0]], n_boot=0)


def test_percentile_interval():
    assert stats.percentile_interval(np.arange(101.0), 0.5) == (25.0, 75.0)
    low, high = stats.percentile_interval(np.array([0.1, float("nan")]))
    assert np.isnan(low) and np.isnan(high)
    with pytest.raises(ValueError, match="confidence must be in"):
        stats.percentile_interval(np.ones(3), 1.0)


# --- the verdict -----------------------------------------------------------------------

@pytest.mark.parametrize("low, high, p, expected", [
    (0.01, 0.05, 0.001, "more robust than Dense"),
    (-0.05, -0.01, 0.001, "less robust than Dense"),
    (-0.01, 0.05, 0.001, "not resolved at 95%"),   # the interval holds 0
    (0.01, 0.05, 0.06, "not resolved at 95%"),     # the adjusted test does not reject
    (0.0, 0.05, 0.001, "not resolved at 95%"),     # touching 0 is not above it
])
def test_verdict(low, high, p, expected):
    assert stats.verdict(low, high, p, 0.05, reference="Dense") == expected


def test_verdict_names_its_level():
    assert stats.verdict(-1, 1, 0.5, alpha=0.1) == "not resolved at 90%"


def test_stats_config_checks_its_fields():
    assert stats.StatsConfig().alpha == 0.05
    with pytest.raises(ValueError, match="n_bootstrap must be a positive integer"):
        stats.StatsConfig(n_bootstrap=0)
    with pytest.raises(ValueError, match="confidence must be in"):
        stats.StatsConfig(confidence=95)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        stats.StatsConfig(seed=-3)


# --- mPC as a mean over videos ---------------------------------------------------------

def test_mpc_weights_make_mpc_a_weighted_sum():
    table = {"clean": 0.9, "corrupted": {"fog": {1: 0.8, 2: 0.6, 3: 0.1}, "freeze": {2: 0.5}}}
    weights = metrics.mpc_weights((c, s) for c, by_sev in table["corrupted"].items() for s in by_sev)
    assert weights == {("fog", 1): 1 / 6, ("fog", 2): 1 / 6, ("fog", 3): 1 / 6, ("freeze", 2): 0.5}
    total = sum(w * table["corrupted"][c][s] for (c, s), w in weights.items())
    assert total == pytest.approx(metrics.mpc(table))
    with pytest.raises(ValueError, match="at least one corruption"):
        metrics.mpc_weights([])
