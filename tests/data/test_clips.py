import numpy as np
import pytest

from vidsparse.data.clips import clip_span, test_clip_indices, train_clip_indices


def test_clip_span():
    assert clip_span(8, 2) == 15
    assert clip_span(1, 5) == 1


@pytest.mark.parametrize("num_frames, fpc, rate, expected", [
    (32, 8, 2, [8, 10, 12, 14, 16, 18, 20, 22]),  # start (32 - 15) // 2 = 8
    (15, 8, 2, [0, 2, 4, 6, 8, 10, 12, 14]),      # exactly one clip fits
    (17, 8, 2, [1, 3, 5, 7, 9, 11, 13, 15]),
    (5, 1, 1, [2]),
    (10, 8, 2, [7, 9, 1, 3, 5, 7, 9, 1]),         # short: start -3 wraps to 7
    (3, 4, 1, [2, 0, 1, 2]),                      # start (3 - 4) // 2 = -1
])
def test_test_clip_is_centred_and_loops_short_videos(num_frames, fpc, rate, expected):
    assert test_clip_indices(num_frames, fpc, rate) == expected


def test_train_clip_covers_every_start_that_fits():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(500):
        idx = train_clip_indices(32, 8, 2, rng)
        assert np.all(np.diff(idx) == 2) and len(idx) == 8
        starts.add(idx[0])
    assert starts == set(range(18))  # 32 - 15 + 1 starts, last clip ends at frame 31


def test_train_clip_loops_short_video():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        idx = train_clip_indices(10, 8, 2, rng)
        assert all(0 <= i < 10 for i in idx)
        assert [(idx[0] + 2 * k) % 10 for k in range(8)] == idx
        seen.add(idx[0])
    assert seen == set(range(10))


def test_train_clip_is_deterministic_given_the_generator():
    a = train_clip_indices(100, 8, 4, np.random.default_rng(7))
    b = train_clip_indices(100, 8, 4, np.random.default_rng(7))
    assert a == b


@pytest.mark.parametrize("args, name", [
    ((0, 8, 2), "num_frames"), ((32, 0, 2), "frames_per_clip"), ((32, 8, 0), "sampling_rate"),
    ((32, 2.5, 2), "frames_per_clip"),
])
def test_bad_arguments_name_the_argument(args, name):
    with pytest.raises(ValueError, match=name):
        test_clip_indices(*args)
    with pytest.raises(ValueError, match=name):
        train_clip_indices(*args, rng=np.random.default_rng(0))
