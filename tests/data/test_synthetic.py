import itertools
import math
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from vidsparse.data.datasets import UCF101, Kinetics
from vidsparse.data.decode import read_video, video_info
from vidsparse.data.synthetic import (
    MOTIONS,
    Scene,
    SceneObject,
    SyntheticConfigError,
    best_accuracy,
    draw_scene,
    get_motion,
    list_motions,
    make_synthetic,
    render,
    synthetic_video,
    turned,
    ucf101_groups,
)

SMALL = dict(frames=6, size=(64, 48))
SCRIPT = Path(__file__).resolve().parents[2] / "data_tools" / "make_synthetic.py"


@pytest.mark.parametrize("index", [0, 5])
def test_first_frame_is_the_same_for_every_class(index):
    videos = {m: synthetic_video(m, index, seed=3, **SMALL) for m in list_motions()}
    first = videos["MoveDown"][0]
    for name, video in videos.items():
        assert video.shape == (6, 48, 64, 3) and video.dtype == np.uint8
        assert np.array_equal(video[0], first), name
    for a, b in itertools.combinations(list_motions(), 2):  # ... and only motion differs
        assert not np.array_equal(videos[a][1:], videos[b][1:]), (a, b)


def test_same_seed_same_video_other_seed_or_index_differs():
    a = synthetic_video("ZoomIn", 2, seed=0, **SMALL)
    assert np.array_equal(a, synthetic_video("ZoomIn", 2, seed=0, **SMALL))
    assert not np.array_equal(a[0], synthetic_video("ZoomIn", 2, seed=1, **SMALL)[0])
    assert not np.array_equal(a[0], synthetic_video("ZoomIn", 3, seed=0, **SMALL)[0])


def _object(**kw):
    fields = dict(texture=np.ones((41, 41, 3), np.float32), box=True, half=(10.0, 3.0),
                  start=(10.0, 20.0), speed=2.0, angle=0.0, spin_rate=0.1, scale_phase=0.5,
                  zoom_rate=0.05)
    return SceneObject(**{**fields, **kw})


def test_object_state_by_hand():
    obj, size = _object(), (64, 48)

    def state(motion, t):
        return obj.state(get_motion(motion), t, size)

    assert state("MoveRight", 3)[:2] == (16.0, 20.0)
    assert state("MoveLeft", 6)[:2] == (62.0, 20.0)  # 10 - 12 wraps around x = 0
    assert state("MoveUp", 3)[:2] == (10.0, 14.0)
    assert state("MoveDown", 15)[:2] == (10.0, 2.0)  # 20 + 30 wraps around y = 48
    assert state("RotateClockwise", 2).angle == pytest.approx(0.2)
    assert state("RotateCounterClockwise", 2).angle == pytest.approx(-0.2)
    # Phase 0.5 is the middle of the log-scale range [log 0.65, log 1.35]; 2 frames move it 0.1.
    mid = math.sqrt(0.65 * 1.35)
    assert state("MoveUp", 9).scale == pytest.approx(mid)
    assert state("ZoomIn", 2).scale == pytest.approx(mid * (1.35 / 0.65) ** 0.1)
    assert state("ZoomOut", 2).scale == pytest.approx(mid * (1.35 / 0.65) ** -0.1)
    # Fades over the last and first 0.1 of the cycle instead of jumping from big to small.
    assert state("ZoomIn", 9).opacity == pytest.approx(0.5)  # phase 0.95
    assert state("ZoomIn", 10).opacity == pytest.approx(0.0)  # phase 1.0 == 0.0: the jump
    assert state("ZoomIn", 11).opacity == pytest.approx(0.5)  # phase 0.05
    assert state("ZoomOut", 11).opacity == pytest.approx(0.5)  # phase 0.5 - 0.55 = 0.95
    assert state("MoveUp", 10).opacity == 1.0


def _centroid(mask):
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


def test_rendered_motion_goes_the_named_way():
    # One white bar (half extents 10 x 3) on black, at scale 1 (phase 0.5 is the geometric
    # middle of the range, not 1: pick the phase whose scale is exactly 1).
    phase = -math.log(0.65) / (math.log(1.35) - math.log(0.65))
    bar = _object(start=(32.0, 24.0), scale_phase=phase)
    scene = Scene(np.zeros((48, 64, 3), np.float32), (bar,))
    right = render(scene, "MoveRight", 4)[..., 0] > 127
    x0, y0 = _centroid(right[0])
    x3, y3 = _centroid(right[3])
    assert (x3 - x0, y3 - y0) == pytest.approx((6.0, 0.0), abs=0.05)  # 2 px/frame for 3 frames
    assert right[0].sum() == pytest.approx(20 * 6, abs=2)
    # Clockwise on screen (y down): the bar's right end goes down, its left end up.
    spun = render(scene, "RotateClockwise", 3)[..., 0] > 127
    right_end_dy = _centroid(spun[2][:, 32:])[1] - _centroid(spun[0][:, 32:])[1]
    left_end_dy = _centroid(spun[2][:, :32])[1] - _centroid(spun[0][:, :32])[1]
    assert right_end_dy > 0.5 and left_end_dy < -0.5  # 0.2 rad: about 5 * sin(0.2) = 1 px
    grown = render(scene, "ZoomIn", 3)[..., 0] > 127
    assert grown[2].sum() > grown[0].sum()


@pytest.mark.parametrize("n, expected_test", [(2, 1), (4, 1), (6, 2), (12, 4), (24, 8), (100, 28)])
def test_ucf101_groups_hold_out_the_first_groups(n, expected_test):
    plan = ucf101_groups(n)
    assert len(plan) == n
    test = [(g, c) for g, c, is_test in plan if is_test]
    assert len(test) == expected_test
    first_train_group = min(g for g, _, is_test in plan if not is_test)
    assert all(g < first_train_group for g, _ in test)  # test groups come first, like g01-g07
    assert len(set((g, c) for g, c, _ in plan)) == n
    assert all(1 <= c <= 7 for _, c, _ in plan)


def test_ucf101_groups_split_about_a_quarter_to_a_third():
    for n in range(2, 120):
        test = sum(is_test for _, _, is_test in ucf101_groups(n))
        assert 1 <= test <= n - 1
        if n >= 6:  # whole groups: 17 videos in groups of 2 give 6 test videos (35.3%)
            assert 0.25 <= test / n <= 0.37, n


def _lines(path):
    return path.read_text().split("\n")


def test_list_files_are_in_ucf101_format(synthetic_ucf101):
    lists = synthetic_ucf101 / "ucfTrainTestlist"
    assert sorted(p.name for p in lists.iterdir()) == ["classInd.txt", "testlist01.txt",
                                                        "trainlist01.txt"]  # no temp files left
    assert _lines(lists / "classInd.txt") == ["1 MoveDown", "2 MoveLeft", "3 MoveRight", ""]
    number = {"MoveDown": 1, "MoveLeft": 2, "MoveRight": 3}
    train = _lines(lists / "trainlist01.txt")
    test = _lines(lists / "testlist01.txt")
    assert train[-1] == test[-1] == ""  # newline-terminated
    assert train[0] == "MoveDown/v_MoveDown_g03_c01.avi 1"
    assert test[0] == "MoveDown/v_MoveDown_g01_c01.avi"
    for line in train[:-1]:
        m = re.fullmatch(r"(\w+)/v_\1_g(\d\d)_c(\d\d)\.avi (\d+)", line)
        assert m and int(m[4]) == number[m[1]] and int(m[2]) >= 3, line
    for line in test[:-1]:
        m = re.fullmatch(r"(\w+)/v_\1_g(\d\d)_c(\d\d)\.avi", line)
        assert m and int(m[2]) <= 2, line
    train_files = {line.split()[0] for line in train[:-1]}
    assert len(train_files) == 12 and len(test) - 1 == 6
    assert not train_files & set(test)
    on_disk = {p.relative_to(synthetic_ucf101 / "UCF-101").as_posix()
               for p in (synthetic_ucf101 / "UCF-101").rglob("*")
               if p.is_file()}
    assert on_disk == train_files | set(test[:-1])  # every video listed once, nothing else


def test_written_videos_decode_to_the_generated_frames(synthetic_ucf101):
    path = synthetic_ucf101 / "UCF-101" / "MoveLeft" / "v_MoveLeft_g02_c01.avi"
    info = video_info(path)
    assert (info.num_frames, info.height, info.width, info.fps) == (16, 48, 64, 25.0)
    frames, _ = read_video(path)
    assert frames.shape == (16, 48, 64, 3)
    # g02_c01 is video index 1 of its class (groups of one clip for 6 videos per class).
    original = synthetic_video("MoveLeft", 1, seed=0, frames=16, size=(64, 48))
    mse = np.mean((frames.astype(float) - original) ** 2)
    assert 10 * np.log10(255**2 / mse) > 28  # same content, MPEG-4 at a fixed quantiser


@pytest.mark.parametrize("kwargs, option", [
    (dict(classes=len(MOTIONS) + 1), "classes"),
    (dict(classes=0), "classes"),
    (dict(videos_per_class=1), "videos_per_class"),
    (dict(seed=-1), "seed"),
    (dict(frames=0), "frames"),
    (dict(size=(63, 48)), "width"),
    (dict(size=(64, 8)), "height"),
    (dict(layout="kinetic"), "layout"),
    (dict(fps=0), "fps"),
    (dict(spread=-1.0), "spread"),
    (dict(spread=181), "spread"),
    (dict(spread="wide"), "spread"),
])
def test_bad_arguments_name_the_option(tmp_path, kwargs, option):
    with pytest.raises(SyntheticConfigError, match=f"^{option}: ") as err:
        make_synthetic(tmp_path / "out", **kwargs)
    assert err.value.option == option
    assert not (tmp_path / "out").exists()


def _run_script(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")


def test_cli_writes_and_summarises(tmp_path, monkeypatch, capsys):
    _run_script(monkeypatch, "--out", str(tmp_path), "--classes", "2", "--videos-per-class", "2",
                "--frames", "3", "--width", "32", "--height", "32", "--seed", "4")
    out = capsys.readouterr().out
    assert "wrote 4 videos (2 train, 2 test) in the ucf101 layout" in out
    assert "MoveDown, MoveLeft" in out
    assert video_info(tmp_path / "UCF-101" / "MoveLeft" / "v_MoveLeft_g02_c01.avi").num_frames == 3


@pytest.mark.parametrize("args, message", [
    (["--classes", "9"], "--classes: at most 8"),
    (["--videos-per-class", "1"], "--videos-per-class"),
    (["--width", "33"], "--width: must be even"),
    (["--layout", "kinetic"], "--layout"),
    (["--spread", "200"], "--spread: must be a number of degrees in [0, 180]"),
])
def test_cli_errors_name_the_option(tmp_path, monkeypatch, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        _run_script(monkeypatch, "--out", str(tmp_path / "x"), *args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_scene_does_not_depend_on_the_class():
    # The scene is drawn before any motion is known; this pins that the API keeps it so.
    a, b = draw_scene(4, seed=1, size=(64, 48)), draw_scene(4, seed=1, size=(64, 48))
    assert np.array_equal(a.background, b.background) and len(a.objects) == len(b.objects)
    assert np.array_equal(render(a, "MoveUp", 2)[0], render(b, "ZoomOut", 2)[0])


@pytest.mark.parametrize("layout, pattern", [("ucf101", "UCF-101/*/*.avi"), ("kinetics", "*/*/*.mp4")])
def test_a_smaller_run_into_the_same_folder_removes_the_earlier_videos_only(tmp_path, layout, pattern):
    out = tmp_path / "data"
    make_synthetic(out, layout=layout, classes=3, videos_per_class=4, frames=4, size=(32, 32))
    first = sorted(out.glob(pattern))
    assert len(first) == 12
    keep = first[0].parent / f"my_notes{first[0].suffix}"  # not a name make_synthetic writes
    keep.write_bytes(b"mine")
    make_synthetic(out, layout=layout, classes=2, videos_per_class=3, frames=4, size=(32, 32))
    if layout == "ucf101":
        listed = {out / "UCF-101" / line.split()[0] for name in ("trainlist01.txt", "testlist01.txt")
                  for line in (out / "ucfTrainTestlist" / name).read_text().splitlines()}
        dataset = UCF101(out, split="train")
    else:
        listed = set()
        for split in ("train", "validate"):
            for row in (out / "annotations" / f"{split}.csv").read_text().splitlines()[1:]:
                label, video_id, start, end = row.split(",")[:4]
                listed.add(out / split / label / f"{video_id}_{int(start):06d}_{int(end):06d}.mp4")
        dataset = Kinetics(out, split="train")
    assert len(listed) == 6
    assert set(out.glob(pattern)) - {keep} == listed
    assert keep.read_bytes() == b"mine"
    assert dataset.num_classes == 2 and not dataset.skipped


# --------------------------------------------------------------------------- direction spread

TRANSLATIONS = ["MoveDown", "MoveLeft", "MoveRight", "MoveUp"]  # list_motions()[:4]


@pytest.mark.parametrize("classes, spread, expected", [
    # Four directions 90 degrees apart, each spread over 2 * spread degrees: up to 45 the arcs
    # do not overlap; past it the 360 degrees they cover are shared by 4 * 2 * spread.
    (TRANSLATIONS, 0.0, 1.0),
    (TRANSLATIONS, 45.0, 1.0),
    (TRANSLATIONS, 56.25, 360 / 450),  # 0.8
    (TRANSLATIONS, 90.0, 360 / 720),
    (TRANSLATIONS, 180.0, 0.25),  # every direction equally likely for every class: chance
    # Down and left, 90 degrees apart: at 56.25 the arcs overlap by 22.5 degrees of 225.
    (["MoveDown", "MoveLeft"], 56.25, (225 - 22.5) / 225),
    (["MoveRight"], 90.0, 1.0),  # nothing to confuse it with
    # Rotations and zooms do not translate: each keeps 1; the four translations share 360/360.
    (list_motions(), 90.0, (4 + 360 / 180) / 8),
])
def test_best_accuracy_by_hand(classes, spread, expected):
    assert best_accuracy(classes, spread) == pytest.approx(expected)


def test_best_accuracy_rejects_a_spread_outside_a_half_turn():
    with pytest.raises(ValueError, match="spread must be in"):
        best_accuracy(TRANSLATIONS, 190.0)


def test_turned_rotates_the_direction_clockwise_on_screen():
    assert turned("MoveRight", math.pi / 2).direction == pytest.approx((0.0, 1.0))  # down
    assert turned("MoveUp", math.pi / 2).direction == pytest.approx((1.0, 0.0))  # right
    assert turned("MoveRight", -math.pi / 4).direction == pytest.approx((0.5**0.5, -0.5**0.5))
    assert turned("ZoomIn", 1.0) == get_motion("ZoomIn")  # nothing to turn


def test_spread_turns_the_whole_video_by_an_angle_drawn_per_video():
    plain = draw_scene(4, seed=1, size=(64, 48))
    for spread in (20.0, 40.0, 180.0):
        scene = draw_scene(4, seed=1, size=(64, 48), spread=spread)
        # The appearance does not depend on the spread; only the turn does, in proportion.
        assert np.array_equal(scene.background, plain.background)
        assert [o.start for o in scene.objects] == [o.start for o in plain.objects]
        assert scene.turn == pytest.approx(draw_scene(4, seed=1, size=(64, 48), spread=20.0).turn
                                           * spread / 20.0)
    assert plain.turn == 0.0
    turns = [draw_scene(k, seed=0, size=(32, 32), spread=50.0).turn for k in range(200)]
    assert all(abs(t) <= math.radians(50.0) for t in turns)
    assert min(turns) < -math.radians(40.0) and max(turns) > math.radians(40.0)


def test_with_spread_the_first_frame_is_still_the_same_for_every_class():
    videos = [synthetic_video(m, 2, seed=3, spread=60.0, **SMALL) for m in TRANSLATIONS]
    assert all(np.array_equal(v[0], videos[0][0]) for v in videos)


def test_overlapping_classes_can_make_the_same_video():
    # MoveRight turned 50 degrees clockwise and MoveDown turned 40 degrees anticlockwise both
    # travel 50 degrees below the x axis: past 45 degrees of spread the classes overlap.
    phase = -math.log(0.65) / (math.log(1.35) - math.log(0.65))
    bar = _object(start=(32.0, 24.0), scale_phase=phase)
    base = Scene(np.zeros((48, 64, 3), np.float32), (bar,))
    right = render(Scene(base.background, base.objects, math.radians(50)), "MoveRight", 4)
    down = render(Scene(base.background, base.objects, math.radians(-40)), "MoveDown", 4)
    assert np.abs(right.astype(int) - down.astype(int)).max() <= 1  # float rounding only

    def centroid(frame):  # weighted by intensity: the soft edge keeps sub-pixel positions
        ys, xs = np.mgrid[0:frame.shape[0], 0:frame.shape[1]]
        return (xs * frame).sum() / frame.sum(), (ys * frame).sum() / frame.sum()

    x0, y0 = centroid(right[0][..., 0].astype(float))
    x3, y3 = centroid(right[3][..., 0].astype(float))
    angle = math.radians(50)  # 2 px per frame for 3 frames, 50 degrees clockwise from right
    assert (x3 - x0, y3 - y0) == pytest.approx((6 * math.cos(angle), 6 * math.sin(angle)), abs=0.05)


def test_make_synthetic_with_spread_reports_the_ceiling(tmp_path):
    summary = make_synthetic(tmp_path / "d", classes=4, videos_per_class=2, frames=3,
                             size=(32, 32), spread=56.25)
    assert summary.spread == 56.25 and summary.best_accuracy == pytest.approx(0.8)
    assert "no model can be right on more than 80.0% of the videos" in str(summary)
    assert "no model" not in str(make_synthetic(tmp_path / "e", classes=2, videos_per_class=2,
                                                frames=3, size=(32, 32)))
