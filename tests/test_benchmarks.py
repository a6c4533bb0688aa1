"""The benchmark tooling: the GPU check's import needs and run_all's results file (no timings)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import run_all  # noqa: E402  (a script in benchmarks/)

# Run first in a fresh interpreter: any import of these modules fails, as on a GPU machine
# that has torch, einops and accelerate but not PyAV, decord or pytorchvideo.
BLOCK = textwrap.dedent("""
    import sys

    class _Missing:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("av", "decord", "pytorchvideo"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None

    sys.meta_path.insert(0, _Missing())
""")


@pytest.mark.slow
def test_the_gpu_check_needs_no_av_decord_or_pytorchvideo():
    code = BLOCK + textwrap.dedent("""
        import torch
        import vidsparse
        import vidsparse.data
        import vidsparse.sparse.export
        model = vidsparse.create_model("r3d_18", num_classes=10)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        cfg = vidsparse.SparsityConfig(method="rigl", density=0.5)
        sparsity = vidsparse.DynamicSparsity(model, optimizer, cfg, total_steps=100)
        assert sparsity.masks and "x3d_tiny" in vidsparse.list_models()
        try:  # a pytorchvideo model is listed, and says what is missing when built
            vidsparse.create_model("x3d_tiny")
        except ImportError as exc:
            assert "pytorchvideo" in str(exc), exc
        else:
            raise AssertionError("x3d_tiny built without pytorchvideo")
        blocked = sorted(m for m in sys.modules if m.split(".")[0] in ("av", "decord", "pytorchvideo"))
        assert not blocked, blocked
        print("ok")
    """)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


@pytest.mark.slow
def test_without_torchvision_vidsparse_imports_and_trains_its_own_models():
    # The GPU machine may lack torchvision too: r3d_tiny (ours), the engine and channel
    # export still work; torchvision's models say what they need.
    code = BLOCK.replace('("av", "decord", "pytorchvideo")', '("av", "decord", "pytorchvideo", "torchvision")')
    code += textwrap.dedent("""
        import torch
        import vidsparse
        model = vidsparse.create_model("r3d_tiny", num_classes=3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        cfg = vidsparse.SparsityConfig(method="rigl", density=0.5, channel_sparsity=0.5)
        sparsity = vidsparse.DynamicSparsity(model, optimizer, cfg, total_steps=100)
        assert len(sparsity.channel_groups) == 3  # the inner channels of its 3 blocks
        assert "mc3_18" not in vidsparse.list_models()
        try:
            vidsparse.create_model("r3d_18")
        except ImportError as exc:
            assert "torchvision" in str(exc), exc
        else:
            raise AssertionError("r3d_18 built without torchvision")
        assert not [m for m in sys.modules if m.split(".")[0] == "torchvision"]
        print("ok")
    """)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def test_run_all_writes_each_command_status_and_table(tmp_path):
    table = "| model | ratio |\\n|---|---:|\\n| fake | 1.05 |"
    benchmarks = [
        run_all.Benchmark("table", _script(tmp_path, "table.py", f'print("# heading\\n{table}")'),
                          ["--steps", "2"], "Prints a markdown table."),
        run_all.Benchmark("plain", _script(tmp_path, "plain.py", 'print("a  b\\n1  2")'), [],
                          "Prints fixed-width text."),
        run_all.Benchmark("broken", _script(tmp_path, "broken.py", 'raise SystemExit("it broke")'), []),
        run_all.Benchmark("absent", str(tmp_path / "absent.py"), ["--x", ""]),
    ]
    out = tmp_path / "sub" / "results.md"
    results = run_all.run_all(benchmarks, out)
    text = out.read_text()

    assert [r.status for r in results] == ["ok", "ok", "failed (exit 1)", "missing"]
    for bench in benchmarks:
        assert f"## {bench.name}" in text and f"Command: `{bench.command}`" in text
    assert f"table.py --steps 2`" in text and "absent.py --x ''`" in text  # quoted as a shell would
    assert "| fake | 1.05 |" in text and "\n### heading\n" in text  # a printed heading goes down
    assert "```\na  b\n1  2\n```" in text  # not a table: kept verbatim in a code block
    assert "it broke" in text and "absent.py does not exist" in text
    assert "torch" in text and f"{os.cpu_count()} cores" in text
    assert [p.name for p in out.parent.iterdir()] == ["results.md"]  # no temporary file left


def test_run_all_lists_every_benchmark_script():
    scripts = {b.script for b in run_all.BENCHMARKS}
    names = ("engine", "memory", "channel", "nm", "decode", "loader", "corruptions", "protocol")
    expected = {f"benchmarks/bench_{n}.py" for n in names}
    assert scripts == expected
    present = {s for s in scripts if (ROOT / s).is_file()}
    assert present >= expected - {"benchmarks/bench_channel.py"}  # the others ship with the repo


@pytest.mark.slow
def test_bench_loader_quick_compares_the_same_clips_and_prints_finite_ratios():
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "TQDM_DISABLE": "1"}
    done = subprocess.run([sys.executable, "benchmarks/bench_loader.py", "--quick"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    # Both loaders made batches of 4 clips of 8 frames, 3 x 112 x 112 (--quick's crop).
    assert "batch of clips: [4, 3, 8, 112, 112] (B x C x T x H x W)" in lines
    assert "| workers | ours clips/s | pytorchvideo clips/s | ours / pytorchvideo |" in lines
    rows = [line.strip("|").split("|") for line in lines
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1]  # --quick's worker counts, in order
    for _, ours, peer, ratio in rows:
        ours, peer, ratio = float(ours), float(peer), float(ratio)
        assert 0 < ours < float("inf") and 0 < peer < float("inf")
        # One round: the ratio is the two rates' quotient (to the printed rounding).
        assert ratio == pytest.approx(ours / peer, rel=0.05, abs=0.01)


def test_protocol_costs_scale_by_pixels_and_frames():
    import bench_protocol as bp  # a script in benchmarks/

    measured = bp.Dataset("measured", 1, 100, 320, 240)
    big = bp.Dataset("big", 10, 300, 640, 480)  # 4x the pixels per frame, 3x the frames
    assert bp.scale(big, True, measured) == 12 and bp.scale(big, False, measured) == 4
    # Per measured video: 1 s of whole-video work + 0.5 s on a fixed number of frames, and 2 s
    # of whole-video work; 5 severities: 10 videos x 5 x (1 x 12 + 0.5 x 4 + 2 x 12) s = 1900 s.
    assert bp.core_hours([(1.0, 0.5), (2.0, 0.0)], big, 5, measured) == pytest.approx(1900 / 3600)
    # Copies of 1 MB and 3 MB per measured video: 4 MB x 12 x 10 videos x 5 severities.
    assert bp.disk_bytes([1e6, 3e6], big, 5, measured) == pytest.approx(2.4e9)
    assert bp.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    ucf101 = bp.DATASETS[0]  # the measured videos are UCF101-sized
    assert ucf101.videos == 3783 and bp.scale(ucf101, True) == bp.scale(ucf101, False) == 1
