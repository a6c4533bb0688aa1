"""corrupt_dataset at scale: the size/time estimate and free-space check before writing, and
the jobs split over the processes of ``accelerate launch`` with the one-process result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidsparse.corruptions import corrupt_dataset, generate
from vidsparse.corruptions.generate import Job, NotEnoughSpaceError, ProcessGroup

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "data_tools" / "corrupt_dataset.py"
ACCELERATE = Path(sys.executable).with_name("accelerate")
ARGS = ["--corruptions", "gaussian_noise,frame_drop,fog", "--severities", "1,4", "--quiet"]


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (the source's index cache aside) by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _videos(dst: Path) -> int:
    return sum(1 for p in dst.rglob("*.avi"))


def test_estimate_is_near_the_written_bytes_and_a_resumed_run_counts_only_what_is_left(
        synthetic_ucf101, tmp_path):
    dst = tmp_path / "out"
    seen = []
    summary = corrupt_dataset(synthetic_ucf101, dst, ["gaussian_noise", "fog", "frame_drop"], [1, 4],
                              progress=False, on_estimate=seen.append)
    assert seen == [summary.estimate] and summary.estimate.files == 36 == _videos(dst)
    written = sum(p.stat().st_size for p in dst.rglob("*.avi"))
    # The sample covers every corruption at severities 1 and 4: the estimate is within a
    # factor 2 of the truth (and here, whole 16-frame videos sampled, much closer).
    assert written / 2 < summary.estimate.bytes < written * 2
    assert summary.estimate.processes == 1 and summary.estimate.free > 0
    text = str(summary.estimate)
    assert text.startswith(f"estimated {summary.estimate.bytes / 1e9:.3g} GB and ~")
    assert "(at 1 workers) for 36 files; free space at " in text
    # Resumed with two files gone: only those two are estimated.
    for path in sorted(dst.rglob("*.avi"))[:2]:
        path.unlink()
    again = corrupt_dataset(synthetic_ucf101, dst, ["gaussian_noise", "fog", "frame_drop"], [1, 4],
                            progress=False)
    assert again.estimate.files == 2 and sum(again.written.values()) == 2
    assert 0 < again.estimate.bytes < summary.estimate.bytes / 5
    done = corrupt_dataset(synthetic_ucf101, dst, ["gaussian_noise", "fog", "frame_drop"], [1, 4],
                           progress=False)
    assert (done.estimate.files, done.estimate.bytes, done.skipped) == (0, 0, 36)


def test_too_little_free_space_refuses_naming_both_figures(synthetic_ucf101, tmp_path, monkeypatch,
                                                           capsys):
    dst = tmp_path / "never"
    monkeypatch.setattr(generate, "free_space", lambda path: (tmp_path, 1000))
    with pytest.raises(NotEnoughSpaceError) as refused:
        corrupt_dataset(synthetic_ucf101, dst, ["gaussian_noise"], [3], progress=False)
    message = str(refused.value)
    assert f"not enough free space at {tmp_path}: the job needs an estimated " in message
    assert "for 6 files, 1e-06 GB are free" in message and "--ignore-free-space" in message
    needed = float(message.split("estimated ")[1].split(" GB")[0])
    assert needed > 1e-06
    assert not dst.exists()  # refused before anything was written

    tool = _load_tool()
    argv = ["--src", str(synthetic_ucf101), "--dst", str(dst), "--corruptions", "gaussian_noise",
            "--severities", "3", "--quiet"]
    with pytest.raises(SystemExit) as exit_:
        tool.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr()
    assert "not enough free space" in err.err and "1e-06 GB are free" in err.err
    assert "for 6 files; free space at" in err.out  # the estimate is printed first
    assert not dst.exists()
    assert tool.main([*argv, "--ignore-free-space"]) == 0
    assert _videos(dst) == 6


def _load_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("corrupt_dataset_tool", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_shares_cover_every_job_once_in_order_and_balanced():
    jobs = [Job(f"v{i // 5}.avi", 0, "fog", i % 5 + 1, i, f"v{i // 5}.avi") for i in range(23)]
    for world in (1, 2, 3, 7, 30):
        shares = [ProcessGroup(rank, world).share(jobs) for rank in range(world)]
        assert [job for share in shares for job in share] == jobs
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def _launch(src: Path, dst: Path, processes: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    if processes == 1:
        cmd = [sys.executable, str(SCRIPT)]
    else:
        cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", "0", str(SCRIPT)]
    result = subprocess.run([*cmd, "--src", str(src), "--dst", str(dst), *ARGS], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_two_processes_write_the_bytes_of_one_and_an_interrupted_run_resumes(synthetic_ucf101,
                                                                             tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _launch(synthetic_ucf101, one, 1)
    result = _launch(synthetic_ucf101, two, 2)
    assert result.stdout.count("wrote 36 files, skipped 0") == 1  # one summary, of both shares
    expected = _files(one)
    assert len([p for p in expected if p.endswith(".avi")]) == 36 and "manifest.json" in expected
    assert _files(two) == expected  # every video, annotation file and the manifest

    # What two killed processes leave: no manifest, each process's record of part of its
    # share, files written after the last record, a file cut short, half-written temporaries.
    manifest = json.loads((two / "manifest.json").read_text())
    (two / "manifest.json").unlink()
    files = manifest["files"]
    for rank, recorded in ((0, files[:10]), (1, files[18:25])):
        (two / f".manifest.part{rank}.json").write_text(json.dumps({"files": recorded, "failed": []}))
    for entry in files[5:8] + files[30:]:
        (two / entry["path"]).unlink()
    (two / files[20]["path"]).write_bytes(b"cut short")
    stale = two / "fog" / "4" / "UCF-101" / "MoveLeft" / ".v_MoveLeft_g01_c01.a1b2c3d4.avi"
    stale.write_bytes(b"half a video")

    result = _launch(synthetic_ucf101, two, 2)
    # 10 + 7 recorded, less 3 deleted and 1 damaged: 13 skipped; the rest written again.
    assert "wrote 23 files, skipped 13 already done" in result.stdout
    assert _files(two) == expected  # no part record, no temporary, the same bytes
