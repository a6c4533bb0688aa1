# `make demo` and `make test` each create .venv on first use and install the project into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# torch/torchvision are pinned to the pair that installs from this machine's disk and
# works together (the CPU-only torch 2.13.0 file breaks torchvision's C++ ops).
TORCH  := torch==2.14.1 torchvision==0.29.1

DEMO      ?= runs/demo
DEMO_NPROC ?= 2
DEMO_CORRUPTIONS ?= gaussian_noise,motion_blur,fog,contrast,frame_drop,h264_crf

.PHONY: demo test bench clean-demo

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The demo is a small instance of the sweep (recipes/sweeps/demo.yaml): generate the embedded
# dataset, train dense/SET/RigL (two seeds each) on $(DEMO_NPROC) ranks, evaluate every model on
# the test split corrupted on the fly, report. About 7 minutes on 2 idle CPU cores.
# Rerunning skips what is done; `make clean-demo` starts over.
demo: $(STAMP)
	$(PY) recipes/sweep.py --config recipes/sweeps/demo.yaml output_dir=$(DEMO) \
	  "launch=[--multi_gpu,--num_processes,$(DEMO_NPROC),--num_machines,1,--mixed_precision,'no',--dynamo_backend,'no']" \
	  "corrupt.corruptions=[$(DEMO_CORRUPTIONS)]"
	@echo "Report: $(DEMO)/report/report.md (plots, results.json and results.csv beside it)"

# The bench extra (scipy, scikit-image, OpenCV) is only for the per-frame ImageNet-C reference.
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Runs the CPU benchmarks (under 10 minutes on 2 cores) and writes benchmarks/results.md; the
# GPU measurements are benchmarks/gpu_check.sh, on a machine with a CUDA GPU.
bench: $(BENCH_STAMP)
	$(PY) benchmarks/run_all.py --out benchmarks/results.md

clean-demo:
	rm -rf $(DEMO)
