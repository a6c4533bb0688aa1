"""Run the DST-robustness protocol from one sweep file: train every (method, sparsity, seed),
evaluate every checkpoint on the corrupted test split and write the report.

    python recipes/sweep.py --config recipes/sweeps/demo.yaml [key=value ...]

Each stage skips what is already done, so an interrupted sweep is started again with the
same command: a run whose ``final/run.json`` exists is not trained again (an unfinished one
resumes from its newest checkpoint, ``resume=auto``), ``corrupt_dataset`` skips files its
manifest holds (only with ``corrupt.on_disk: true``; by default the test videos are
corrupted on the fly), and the evaluation reads the predictions it cached. Training and evaluation
are launched with ``accelerate launch`` and the sweep's ``launch`` arguments.

Layout of ``output_dir``: ``data/`` (when the sweep generates the synthetic dataset),
``runs/<method>[_sparsity<s>]_seed<n>/`` (one training output each), ``corrupted/`` and
``report/``.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import time
from pathlib import Path

import yaml

from vidsparse.config import ConfigError, load_config, merge_config, override_layers, read_yaml_mapping
from vidsparse.corruptions.generate import resolve_corruptions
from vidsparse.sparse import UPDATERS

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))

DEFAULTS = {
    "output_dir": "runs/sweep",
    # Accelerate launch arguments for training and evaluation, e.g. ["--multi_gpu",
    # "--num_processes", "8"]; [] is one process.
    "launch": [],
    "data": {
        "root": None,          # the dataset; None: output_dir/data, generated
        # make_synthetic's arguments when the sweep writes the embedded dataset itself; a
        # mapping given here replaces this one whole (LEAVES)
        "generate": {"classes": 4, "videos_per_class": 24, "seed": 0},
    },
    "train": {
        "config": "recipes/configs/r3d_tiny_rigl.yaml",  # base training config
        "overrides": [],       # key=value for every run
        "methods": ["dense", "set", "rigl"],
        "sparsities": [0.5],   # the paper's range is 0.1-0.5; dense runs once per seed
        "seeds": [0],
    },
    "corrupt": {
        # True: write the corrupted copies with corrupt_dataset and evaluate on them (it
        # refuses when the destination lacks the space it estimates). False, the default:
        # corrupt on the fly, no files; lossless copies of a real dataset take terabytes.
        "on_disk": False,
        # A benchmark preset (imagenet_c, mini_kinetics_c, ucf101_p; see
        # vidsparse.corruptions.presets): its published corruption set and constants. None: ours.
        "preset": None,
        # None: the preset's whole set, or without a preset DEFAULT_CORRUPTIONS below.
        "corruptions": None,
        "severities": [1, 2, 3, 4, 5],
        "workers": 2,
        "seed": 0,
    },
    "evaluate": {"batch_size": 8, "limit": None},
}


DEFAULT_CORRUPTIONS = ["gaussian_noise", "motion_blur", "fog", "contrast", "frame_drop", "h264_crf"]

LEAVES = {"data.generate"}  # mappings taken whole: free-form function arguments


def load_sweep(path: str, overrides: list[str]) -> dict:
    """Defaults <- the sweep file <- ``key=value`` overrides, merged and type-checked as the
    training configs are (vidsparse.config): unknown keys and wrong types are errors."""
    cfg = copy.deepcopy(DEFAULTS)
    for layer, source in [(read_yaml_mapping(path), str(path)), *override_layers(overrides)]:
        merge_config(cfg, layer, DEFAULTS, source, leaves=LEAVES)
    for method in cfg["train"]["methods"]:
        if method not in UPDATERS.names():
            raise ValueError(f"train.methods: unknown method {method!r}; known: {', '.join(UPDATERS.names())}")
    for s in cfg["train"]["sparsities"]:
        if not (isinstance(s, (int, float)) and 0 < s < 1):
            raise ValueError(f"train.sparsities: each must be in (0, 1), got {s!r}")
    if cfg["corrupt"]["corruptions"] is None and cfg["corrupt"]["preset"] is None:
        cfg["corrupt"]["corruptions"] = list(DEFAULT_CORRUPTIONS)
    # A bad corruption name or preset fails now, not after the training runs.
    resolve_corruptions(cfg["corrupt"]["corruptions"], None, cfg["corrupt"]["preset"])
    return cfg


def runs(cfg: dict) -> list[tuple[str, list[str]]]:
    """``(run name, training overrides)`` for every (method, sparsity, seed)."""
    train = cfg["train"]
    out = []
    for seed in train["seeds"]:
        for method in train["methods"]:
            if method == "dense":
                out.append((f"dense_seed{seed}", ["sparsity.method=dense", "sparsity.density=1.0",
                                                  f"seed={seed}"]))
                continue
            for s in train["sparsities"]:
                out.append((f"{method}_sparsity{s:g}_seed{seed}",
                            [f"sparsity.method={method}", f"sparsity.sparsity={s}", f"seed={seed}"]))
    return out


def run(cmd: list[str], what: str) -> None:
    print(f"\n== {what}\n$ {' '.join(cmd)}", flush=True)
    if subprocess.run(cmd, cwd=REPO).returncode != 0:
        sys.exit(f"error: {what} failed (command above); fix it and run the sweep again: "
                 "finished stages are skipped")


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", required=True, help="sweep YAML (see recipes/sweeps/)")
parser.add_argument("overrides", nargs="*", help="key=value, e.g. output_dir=runs/x train.seeds=[0,1]")
parser.add_argument("--print-config", action="store_true",
                    help="check the sweep and every run's config, print the merged sweep and exit")
args = parser.parse_args()
try:
    cfg = load_sweep(args.config, args.overrides)
except (OSError, ValueError, yaml.YAMLError) as exc:
    sys.exit(f"error: {exc}")

# Every run's training config is checked before anything runs: a bad key fails now, not
# after hours of the runs before it.
for name, overrides in runs(cfg):
    try:
        load_config(cfg["train"]["config"], [*cfg["train"]["overrides"], *overrides])
    except ConfigError as exc:
        sys.exit(f"error: run {name}: {exc}")
if args.print_config:
    print(yaml.safe_dump(cfg, sort_keys=False), end="")
    sys.exit(0)

started = time.time()
output = Path(cfg["output_dir"])
launch = [ACCELERATE, "launch", *map(str, cfg["launch"])]

# ----------------------------------------------------------------------------- data
root = Path(cfg["data"]["root"] or output / "data")
if cfg["data"]["root"] is None and not (root / "ucfTrainTestlist").is_dir():
    from vidsparse.data.synthetic import make_synthetic

    print(f"== generating the synthetic dataset in {root}", flush=True)
    make_synthetic(root, progress=True, **cfg["data"]["generate"])

# ----------------------------------------------------------------------------- train
checkpoints = []
for name, overrides in runs(cfg):
    out = output / "runs" / name
    checkpoints.append(out)
    if (out / "final" / "run.json").exists():
        print(f"== {name}: trained already, skipped")
        continue
    run([*launch, "recipes/train.py", "--config", cfg["train"]["config"], *cfg["train"]["overrides"],
         *overrides, f"name={name}", f"output_dir={out}", f"data.root={root}", "resume=auto"],
        f"training {name}")

# ----------------------------------------------------------------------------- corrupt
corrupt = cfg["corrupt"]
corrupted = output / "corrupted"
# Which corruptions: the list, the preset's (its options included), or both (a subset of it).
choice = [*(["--preset", corrupt["preset"]] if corrupt["preset"] else []),
          *(["--corruptions", ",".join(corrupt["corruptions"])] if corrupt["corruptions"] else [])]
if corrupt["on_disk"]:
    # A subprocess like the other stages: corrupt_dataset's worker pool starts fresh
    # interpreters, which would re-run this flat script if the pool were started from it.
    run([sys.executable, "data_tools/corrupt_dataset.py", "--src", str(root), "--dst", str(corrupted),
         *choice, "--severities", ",".join(map(str, corrupt["severities"])),
         "--workers", str(corrupt["workers"]), "--seed", str(corrupt["seed"])],
        "corrupting the test split")

# ----------------------------------------------------------------------------- evaluate
cmd = [*launch, "recipes/eval_robustness.py", "--data", str(root), "--out", str(output / "report"),
       "--batch-size", str(cfg["evaluate"]["batch_size"]), "--seed", str(corrupt["seed"])]
for checkpoint in checkpoints:
    cmd += ["--checkpoint", str(checkpoint)]
if corrupt["on_disk"]:
    cmd += ["--corrupted", str(corrupted)]
else:
    cmd += [*choice, "--severities", ",".join(map(str, corrupt["severities"]))]
if cfg["evaluate"]["limit"]:
    cmd += ["--limit", str(cfg["evaluate"]["limit"])]
run(cmd, "robustness evaluation")
print(f"\nsweep done in {time.time() - started:.0f}s: {output / 'report' / 'report.md'}")
