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
LAUNCH    := $(VENV)/bin/accelerate launch --multi_gpu --num_processes $(DEMO_NPROC) --num_machines 1 \
             --mixed_precision no --dynamo_backend no
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

demo: $(STAMP)
	$(PY) data_tools/make_synthetic.py --out $(DEMO)/data --seed 0 --videos-per-class 40
	for method in dense set rigl; do \
	  $(LAUNCH) recipes/train.py --config recipes/configs/r3d_tiny_$$method.yaml \
	    output_dir=$(DEMO)/r3d_tiny_$$method data.root=$(DEMO)/data || exit 1; \
	done
	$(PY) data_tools/corrupt_dataset.py --src $(DEMO)/data --dst $(DEMO)/corrupted \
	  --corruptions $(DEMO_CORRUPTIONS) --severities 1,2,3,4,5 --workers 2
	$(PY) recipes/eval_robustness.py --data $(DEMO)/data --corrupted $(DEMO)/corrupted \
	  --checkpoint $(DEMO)/r3d_tiny_dense --checkpoint $(DEMO)/r3d_tiny_set \
	  --checkpoint $(DEMO)/r3d_tiny_rigl --out $(DEMO)/report
	@echo "Report: $(DEMO)/report/report.md (plots and results.json beside it)"

bench: $(STAMP)
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_decode.py

clean-demo:
	rm -rf $(DEMO)
