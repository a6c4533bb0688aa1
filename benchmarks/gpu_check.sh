#!/usr/bin/env bash
# The GPU measurements of issues 9 and 17 (DST/dense step time, mask-update cost, peak memory,
# the spatial corruptions on the GPU against 1 CPU thread, 2:4 N:M speed) on one CUDA GPU, in
# under 5 minutes: benchmarks/bench_gpu.py, run from this checkout.
#
#     benchmarks/gpu_check.sh [bench_gpu.py options, e.g. --device cpu --quick, --sections corruptions]
#
# Needs only a `python3` with torch (+ torchvision) and einops: the repository is put on
# PYTHONPATH, nothing is installed and nothing is downloaded; PyAV, decord and pytorchvideo
# are not needed (Pillow, which torchvision brings, only for jpeg_compression). Writes $OUT/gpu_results.md when $OUT is set (and a copy of the log beside
# it), else benchmarks/results_gpu.md. Set PYTHON to use another interpreter.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TQDM_DISABLE=1
PY="${PYTHON:-python3}"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  RESULTS="$OUT/gpu_results.md"
  LOG="$OUT/gpu_check.log"
else
  RESULTS="$ROOT/benchmarks/results_gpu.md"
  LOG=/dev/null
fi

{
  echo "== $(date -u '+%Y-%m-%d %H:%M:%S') UTC, $(hostname)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" - <<'PYEOF'
import importlib.util, sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
for name in ("torchvision", "einops", "PIL", "accelerate", "av", "decord", "pytorchvideo"):
    try:
        found = importlib.util.find_spec(name) is not None
    except ImportError:
        found = False
    print(f"  {name}: {'found' if found else 'missing'}")
PYEOF
  # The whole run stays under 5 minutes: bench_gpu.py gives its last section (N:M) what is
  # left of --budget 280 s, and rewrites its file after every section, so what was measured
  # before a timeout is kept.
  timeout 290 "$PY" benchmarks/bench_gpu.py --out "$RESULTS" --budget 280 "$@"
  rc=$?
  echo "== bench_gpu.py exit status $rc; results: $RESULTS"
  exit $rc
} 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
