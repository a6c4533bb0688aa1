"""Run the CPU benchmarks one after the other and collect their tables in one markdown file.

    python benchmarks/run_all.py [--out benchmarks/results.md] [--only engine,memory]

Each benchmark runs as its own subprocess from the repository root, with the arguments
listed in ``BENCHMARKS`` (chosen so that the whole run takes under 10 minutes on a 2-core
machine); its standard output, which holds its table, goes into the results file under the
command that reproduces it, with the machine (CPU model, cores, torch version, date) and its
run time. A benchmark whose script is missing or which fails is reported as such and the
others still run. The file is written to a temporary name and renamed, so an interrupted run
leaves the previous results in place. ``make bench`` runs this script.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_info import cpu_model  # noqa: E402  (a module beside this script)
# The repository root, as the benchmarks get it through PYTHONPATH: vidsparse need not be installed.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from vidsparse.files import atomic_write  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results.md"


@dataclass
class Benchmark:
    """One benchmark: a script under the repository root and the arguments it runs with here."""

    name: str
    script: str
    args: list[str] = field(default_factory=list)
    what: str = ""

    @property
    def command(self) -> str:
        return shlex.join(["python", self.script, *self.args])


@dataclass
class Result:
    benchmark: Benchmark
    status: str  # ok | failed (exit N) | timed out after N s | missing
    seconds: float
    output: str
    load: float = 0.0  # 1-minute load average when it started


BENCHMARKS = [
    Benchmark("engine", "benchmarks/bench_engine.py", ["--steps", "10"],
              "DST (RigL) step time / dense step time, and the cost of one full mask update."),
    Benchmark("memory", "benchmarks/bench_memory.py", [],
              "Peak memory of DST training / dense training, a mask update inside the window."),
    Benchmark("channel", "benchmarks/bench_channel.py", [],
              "Channel-level sparsity: throughput of the exported (smaller) model."),
    Benchmark("nm", "benchmarks/bench_nm.py", [],
              "2:4 semi-structured Linear layers vs dense (needs a CUDA GPU; says so elsewhere)."),
    Benchmark("decode", "benchmarks/bench_decode.py", [],
              "Clip loading throughput per decoder and DataLoader worker count."),
    # 4 UCF101-sized videos (2 for training) and one round: about 40 s on 2 cores; the
    # README's figures come from the script's default run (12 videos, 3 rounds).
    Benchmark("loader", "benchmarks/bench_loader.py", ["--videos", "4", "--rounds", "1"],
              "Training clips/s at UCF101 size (I3D sampling), ours vs pytorchvideo's "
              "LabeledVideoDataset, per DataLoader worker count."),
    # The script's full run (about 1 minute on 2 cores); --out '' leaves results_corruptions.md,
    # which holds the committed run, alone.
    Benchmark("corruptions", "benchmarks/bench_corruptions.py", ["--threads", "1", "--out", ""],
              "Spatial corruption throughput, vidsparse on whole clips vs per-frame ImageNet-C."),
    # One UCF101-sized video, bytes of 4 corruptions: about 80 s on 1 core. The README's
    # dataset-scale table comes from --full (3 videos, bytes of all 34 corruptions).
    Benchmark("protocol", "benchmarks/bench_protocol.py", [],
              "What the corruption protocol costs per UCF101-sized video (decode, whole-video and "
              "needed-frames corruption, clip cost, bytes of copies), scaled to UCF101 and "
              "Kinetics-400."),
]


def machine() -> str:
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    return (f"{cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"torch {torch_version}; {platform.system()} {platform.release()}")


def run(bench: Benchmark, python: str = sys.executable, timeout: float | None = None) -> Result:
    """Run one benchmark from the repository root; never raises for the benchmark's failure."""
    if not (ROOT / bench.script).is_file():
        return Result(bench, "missing", 0.0, f"{bench.script} does not exist.")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "TQDM_DISABLE": "1"}  # no progress bars in the file
    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        done = subprocess.run([python, bench.script, *bench.args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Result(bench, f"timed out after {timeout:.0f} s", time.perf_counter() - start, out, load)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        return Result(bench, f"failed (exit {done.returncode})", seconds,
                      done.stdout + "\n" + done.stderr[-3000:], load)
    return Result(bench, "ok", seconds, done.stdout, load)


def as_markdown(output: str) -> str:
    """A benchmark's stdout as markdown: kept as is if it prints a markdown table, else fenced."""
    text = output.strip()
    if not text:
        return "_(no output)_"
    lines = text.splitlines()
    if any(line.startswith("|") and line.rstrip().endswith("|") for line in lines):
        # Headings a benchmark prints go two levels down, under this file's "## name".
        return "\n".join("##" + line if line.startswith("#") else line for line in lines)
    return f"```\n{text}\n```"


def render(results: list[Result], started: datetime.datetime, total: float) -> str:
    lines = ["# Benchmark results", "",
             f"Written by `python benchmarks/run_all.py` (`make bench`) on "
             f"{started:%Y-%m-%d %H:%M} UTC in {total:.0f} s.", "",
             f"Machine: {machine()}.", "",
             "Each section: the command that reproduces it (from the repository root), how long it "
             "took here, and its output. Ratios compare two configurations measured in the same "
             "run; absolute numbers depend on the machine and its load.", ""]
    for r in results:
        b = r.benchmark
        ran = (f", {r.seconds:.0f} s, on the machine above with a 1-minute load average of {r.load:.1f} "
               f"when it started." if r.status != "missing" else ".")
        lines += [f"## {b.name}", "", b.what, "", f"Command: `{b.command}`", "",
                  f"Status: {r.status}{ran}", ""]
        lines += [as_markdown(r.output) if r.status == "ok" else f"```\n{r.output.strip()}\n```", ""]
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The mode a plain open() gives (mkstemp's would be private to the owner).
    with atomic_write(path, "w", suffix=".tmp") as f:
        f.write(text)


def run_all(benchmarks: list[Benchmark], out: Path, python: str = sys.executable,
            timeout: float | None = None) -> list[Result]:
    """Run ``benchmarks`` in order, print progress, write ``out``; return the results."""
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    results = []
    for i, bench in enumerate(benchmarks, 1):
        print(f"[{i}/{len(benchmarks)}] {bench.command} ...", flush=True)
        result = run(bench, python, timeout)
        results.append(result)
        print(f"[{i}/{len(benchmarks)}] {bench.name}: {result.status}, {result.seconds:.0f} s "
              f"(total {time.perf_counter() - t0:.0f} s)", flush=True)
    write_atomic(out, render(results, started, time.perf_counter() - t0))
    print(f"wrote {out}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", default="", help="comma-separated benchmark names "
                        f"({', '.join(b.name for b in BENCHMARKS)})")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per benchmark")
    args = parser.parse_args()
    chosen = BENCHMARKS
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - {b.name for b in BENCHMARKS}
        if unknown:
            parser.error(f"unknown benchmark(s) {sorted(unknown)}; known: {[b.name for b in BENCHMARKS]}")
        chosen = [b for b in BENCHMARKS if b.name in names]
    results = run_all(chosen, args.out, timeout=args.timeout)
    if any(r.status.startswith(("failed", "timed out")) for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
