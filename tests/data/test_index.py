import json
import os
import shutil
import warnings
from pathlib import Path

import pytest

import vidsparse.data.index as index_module
from vidsparse.data.datasets import UCF101, Kinetics
from vidsparse.data.decode import VideoInfo
from vidsparse.data.index import INDEX_FILE, cache_paths, index_videos


@pytest.fixture
def count_probes(monkeypatch):
    """Counts the headers the index opens: {path name: number of video_info calls}."""
    calls: dict[str, int] = {}
    real = index_module.video_info

    def counting(path):
        calls[Path(path).name] = calls.get(Path(path).name, 0) + 1
        return real(path)

    monkeypatch.setattr(index_module, "video_info", counting)
    return calls


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".vidsparse_index*"))
    return dst


def test_second_construction_reads_no_header_and_a_touched_file_is_reread(
        tmp_path, synthetic_kinetics, count_probes):
    root = _copy(synthetic_kinetics, tmp_path / "k")
    first = Kinetics(root, split="train")
    assert sum(count_probes.values()) == 9 and set(count_probes.values()) == {1}
    assert (root / INDEX_FILE).is_file()
    count_probes.clear()
    second = Kinetics(root, split="train")
    assert count_probes == {}
    assert [second.num_frames(i) for i in range(9)] == [16] * 9
    assert second.samples == first.samples

    touched = second.samples[4][0]
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    Kinetics(root, split="train")
    assert count_probes == {touched.name: 1}
    count_probes.clear()
    Kinetics(root, split="validate")  # the other split shares the file, adding its videos
    assert sum(count_probes.values()) == 3
    entries = json.loads((root / INDEX_FILE).read_text())["videos"]
    assert len(entries) == 12
    assert entries[touched.relative_to(root).as_posix()]["mtime_ns"] == stat.st_mtime_ns + 10**9


def test_ucf101_uses_the_index(tmp_path, synthetic_ucf101, count_probes):
    root = _copy(synthetic_ucf101, tmp_path / "u")
    ds = UCF101(root, split="test")
    assert sum(count_probes.values()) == 6
    count_probes.clear()
    ds = UCF101(root, split="test")
    ds[0]
    assert count_probes == {} and ds.skipped == []


def test_bad_files_are_cached_with_their_reason(tmp_path, synthetic_kinetics, count_probes):
    good = sorted(synthetic_kinetics.glob("train/*/*.mp4"))[0]
    shutil.copyfile(good, tmp_path / "good.mp4")
    (tmp_path / "empty.mp4").touch()
    (tmp_path / "text.mp4").write_text("not a video")
    paths = [tmp_path / n for n in ("good.mp4", "empty.mp4", "text.mp4", "gone.mp4")]
    infos, errors = index_videos(tmp_path, paths, progress=False)
    assert infos == {paths[0]: VideoInfo(16, 25.0, 48, 64)}
    assert errors[paths[1]] == "empty file (0 bytes)"  # told by its size: never opened
    assert errors[paths[2]].startswith("undecodable: cannot open video")
    assert errors[paths[3]] == "missing: file not found"
    assert count_probes == {"good.mp4": 1, "text.mp4": 1}
    count_probes.clear()
    assert index_videos(tmp_path, paths, progress=False) == (infos, errors)
    assert count_probes == {}


def test_unwritable_root_falls_back_to_the_user_cache(tmp_path, synthetic_kinetics,
                                                      count_probes, monkeypatch):
    root = _copy(synthetic_kinetics, tmp_path / "k")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real_write = index_module.write_atomic

    def read_only_root(path, text):
        if path.parent == root.resolve():
            raise PermissionError(13, "Read-only file system", str(path))
        real_write(path, text)

    monkeypatch.setattr(index_module, "write_atomic", read_only_root)
    Kinetics(root, split="validate")
    assert not (root / INDEX_FILE).exists()
    fallback = cache_paths(root)[1]
    assert fallback.parent == tmp_path / "cache" / "vidsparse" and fallback.is_file()
    assert json.loads(fallback.read_text())["root"] == str(root.resolve())
    count_probes.clear()
    Kinetics(root, split="validate")
    assert count_probes == {}
    # another root gets another file
    assert cache_paths(tmp_path / "other")[1] != fallback


def test_damaged_index_is_rebuilt(tmp_path, synthetic_kinetics, count_probes):
    root = _copy(synthetic_kinetics, tmp_path / "k")
    (root / INDEX_FILE).write_text("{not json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no skip warning: every video is fine
        ds = Kinetics(root, split="validate")
    assert len(ds) == 3 and sum(count_probes.values()) == 3
    assert json.loads((root / INDEX_FILE).read_text())["version"] == index_module.INDEX_VERSION


def test_two_indexing_processes_at_once_keep_each_others_entries(tmp_path, synthetic_kinetics, monkeypatch):
    # Two ranks (or two splits) index one root at the same time: the second saves while the
    # first is still probing. The first's save must not drop the second's entries.
    root = _copy(synthetic_kinetics, tmp_path / "k")
    videos = sorted(p for p in root.rglob("*.mp4"))
    first, second = videos[:6], videos[6:]
    real = index_module.video_info
    interleaved = []

    def probe(path):
        if not interleaved:
            interleaved.append(path)
            index_videos(root, second, progress=False)  # the other process, start to end
            assert len(json.loads((root / INDEX_FILE).read_text())["videos"]) == len(second)
        return real(path)

    monkeypatch.setattr(index_module, "video_info", probe)
    index_videos(root, first, progress=False)
    entries = json.loads((root / INDEX_FILE).read_text())["videos"]
    assert sorted(entries) == sorted(p.relative_to(root).as_posix() for p in videos)
