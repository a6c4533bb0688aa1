"""Each layout reader on tiny made-up folders: a root and split in, labelled paths out.

Readers never open a video, so empty files stand in for videos here.
"""

from pathlib import Path

import pytest

import vidsparse.data as data
import vidsparse.data.datasets as datasets
from vidsparse.data.finders import CaseInsensitiveFinder, VideoFinder, folder_key
from vidsparse.data.folder import folder_videos
from vidsparse.data.kinetics import kinetics_videos
from vidsparse.data.ucf101 import ucf101_videos
from vidsparse.data.video_dataset import LabeledVideos


def touch(root: Path, *relatives: str) -> Path:
    for relative in relatives:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).touch()
    return root


def test_ucf101_reader_labels_from_classind_and_names_its_list(tmp_path):
    root = touch(tmp_path, "UCF-101/Jump/v_Jump_g01_c01.avi", "UCF-101/Run/v_Run_g01_c01.avi",
                 "UCF-101/Run/v_Run_g02_c01.avi")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Run\n2 Jump\n")
    (lists / "testlist02.txt").write_text("Jump/v_Jump_g01_c01.avi\r\nRun/v_Run_g02_c01.avi\r\n")
    videos = ucf101_videos(root, "test", fold=2)
    assert videos == LabeledVideos(
        root, "test",
        [(root / "UCF-101/Jump/v_Jump_g01_c01.avi", 1),
         (root / "UCF-101/Run/v_Run_g02_c01.avi", 0)],
        ["Run", "Jump"], [], str(lists / "testlist02.txt"))


def test_kinetics_reader_reports_rows_without_a_video_as_missing(tmp_path):
    root = touch(tmp_path, "val/high jump/aaa_000001_000011.mp4", "val/bbb_000002_000012.webm")
    (root / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                    "long jump,xxx,0,10,train\nhigh jump,yyy,0,10,train\n")
    (root / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                       "high jump,aaa,1,11,validate\n"
                                       "long jump,bbb,2,12,validate\n"
                                       "long jump,ccc,3,13,validate\n")
    videos = kinetics_videos(root, "val")
    # classes: the sorted train labels; "bbb" is found flat, "ccc" nowhere.
    assert videos.classes == ["high jump", "long jump"]
    assert videos.samples == [(root / "val/high jump/aaa_000001_000011.mp4", 0),
                              (root / "val/bbb_000002_000012.webm", 1)]
    assert videos.missing == [(root / "val/long jump/ccc_000003_000013.mp4",
                               "missing: not found as val/long jump/ccc_000003_000013.mp4 or "
                               "val/ccc_000003_000013.mp4")]
    assert (videos.root, videos.split, videos.source) == (root, "val", str(root / "validate.csv"))
    with pytest.raises(ValueError, match="fold must be 1, got 2"):
        kinetics_videos(root, "val", fold=2)


def test_folder_reader_numbers_classes_across_splits(tmp_path):
    root = touch(tmp_path, "train/cat/1.mp4", "train/dog/2.mp4", "test/emu/3.mkv",
                 "test/emu/notes.txt")
    videos = folder_videos(root, "test")
    assert videos == LabeledVideos(root, "test", [(root / "test/emu/3.mkv", 2)],
                                   ["cat", "dog", "emu"], [], str(root / "test"))
    with pytest.raises(ValueError, match="a video folder has no folds"):
        folder_videos(root, "test", fold=3)


def test_folder_reader_without_split_folders_warns(tmp_path):
    root = touch(tmp_path, "cat/1.mp4")
    with pytest.warns(UserWarning, match="no split folders .* the train split reads every video"):
        videos = folder_videos(root, "train")
    assert videos.samples == [(root / "cat/1.mp4", 0)] and videos.source == str(root)


def test_case_insensitive_finder_resolves_the_handstand_pushups_quirk(tmp_path):
    root = touch(tmp_path, "HandstandPushups/v_HandStandPushups_g01_c01.avi", "Run/v_Run.avi")
    finder = CaseInsensitiveFinder(tmp_path)
    found = root / "HandstandPushups" / "v_HandStandPushups_g01_c01.avi"
    assert finder.find("HandStandPushups/v_HandStandPushups_g01_c01.avi") == found
    assert finder.find("handstandpushups/V_HANDSTANDPUSHUPS_G01_C01.AVI") == found
    assert finder.find("Run/v_Run.avi") == root / "Run" / "v_Run.avi"
    assert finder.find("Run/v_Walk.avi") is None
    assert finder.find("Swim/v_Swim.avi") is None
    assert finder.find("Run") is None  # a folder is not a video


def test_video_finder_matches_label_folders_loosely_and_prefers_mp4(tmp_path):
    root = touch(tmp_path, "passing_american_football_in_game/abc.webm",
                 "passing_american_football_in_game/abc.mp4", "flat.avi")
    finder = VideoFinder(tmp_path)
    folder = root / "passing_american_football_in_game"
    assert finder.find("passing American football (in game)", "abc") == folder / "abc.mp4"
    assert finder.find("some other label", "flat") == root / "flat.avi"  # flat fallback
    assert finder.find("passing American football (in game)", "nope") is None
    assert folder_key("Passing 'American' football (in_game)") == "passingamericanfootballingame"


def test_old_import_paths_name_the_same_objects():
    # Code outside vidsparse/data imports these from vidsparse.data.datasets and vidsparse.data.
    for name in ("VideoFinder", "kinetics_video_dir", "build_dataset", "detect_layout",
                 "UCF101", "Kinetics", "VideoFolder", "VideoClipDataset", "DatasetFormatError",
                 "ucf101_index", "ucf101_classes", "kinetics_index", "kinetics_classes",
                 "folder_index", "DATASETS"):
        assert getattr(datasets, name) is getattr(data, name)
    assert datasets.VideoFinder is VideoFinder
    assert datasets.kinetics_csv.__module__ == "vidsparse.data.kinetics"
