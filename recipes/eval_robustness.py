"""Evaluate trained checkpoints on clean and corrupted test videos; write a report.

    python recipes/eval_robustness.py --checkpoint runs/dense --checkpoint runs/rigl \
        --data data/synthetic --out reports/synthetic [--corrupted data/synthetic-c]

Given only ``--data`` (a clean dataset root) the test split is corrupted on the fly with
``vidsparse.robustness.DEFAULT_CORRUPTIONS`` at severities 1-5 (or ``--corruptions`` /
``--severities``); given ``--corrupted`` (the output of data_tools/corrupt_dataset.py) it reads
those copies instead. Writes ``report.md``, ``results.json``, ``results.csv``,
``per_video.csv.gz`` (every prediction) and the plots (accuracy against severity per
corruption and per family, relative improvement over dense; with ``--spectral``
radius-accuracy curves) to ``--out`` and prints clean accuracy, mPC, rPC and mCE per
checkpoint, then one verdict line per method against dense (bootstrap interval and
permutation test, drawn from ``--stats-seed``, by default ``--seed``). ``--flip-rate K``
adds prediction stability (flip rate between consecutive clips).

On a GPU, frame-local corruptions (most spatial ones) run there after the loader, a batch
at a time, and the loader workers only decode (``--corrupt-on``).

Runs on one process or under ``accelerate launch``: each process takes a share of every
condition's videos (and of the spectral and flip-rate clips); the predictions are gathered
and the main process writes the report. Predictions are cached in ``--out/cache`` per
(checkpoint, corruption, severity), so an interrupted evaluation started again continues
where it stopped (``--no-cache`` to skip).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import torch
from accelerate import Accelerator

from vidsparse.config import parse_overrides
from vidsparse.corruptions import Corruption
from vidsparse.robustness import (
    StatsConfig,
    evaluate,
    results_from_evaluation,
    summary_table,
    verdict_lines,
    write_report_files,
)
from vidsparse.robustness.evaluate import CORRUPT_ON, build_test_split, load_checkpoint
from vidsparse.robustness.labels import unique_labels
from vidsparse.robustness.schema import Stability
from vidsparse.robustness.spectral import spectral_curves
from vidsparse.robustness.stability import flip_rate


def csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--checkpoint", action="append", required=True, metavar="DIR",
                    help="a training run's output_dir (or its final/); repeat for several")
parser.add_argument("--data", required=True, metavar="DIR", help="clean dataset root")
parser.add_argument("--corrupted", metavar="DIR",
                    help="corrupt_dataset.py output; default: corrupt on the fly")
parser.add_argument("--out", required=True, metavar="DIR", help="where the report goes")
parser.add_argument("--corruptions", type=csv_list, metavar="A,B",
                    help="default: DEFAULT_CORRUPTIONS on the fly, everything found on disk")
parser.add_argument("--severities", type=lambda s: [int(x) for x in csv_list(s)], metavar="1,2,3",
                    help="default: 1-5 on the fly, everything found on disk")
parser.add_argument("--preset", metavar="NAME",
                    help="a benchmark's published corruption set and constants (imagenet_c, "
                         "mini_kinetics_c, ucf101_p): --corruptions defaults to its set; on the "
                         "fly its options are used")
parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="an on-the-fly corruption option, given to every corruption that takes "
                         "it, e.g. temporal=iid (repeatable)")
parser.add_argument("--batch-size", type=int, default=8)
parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
parser.add_argument("--seed", type=int, default=0, help="seed of on-the-fly corruption")
parser.add_argument("--stats-seed", type=int, metavar="N",
                    help="seed of the bootstrap and permutation draws (default: --seed); the same "
                         "predictions and seed give the same intervals and p-values")
parser.add_argument("--bootstrap", type=int, default=StatsConfig.n_bootstrap, metavar="B",
                    help="bootstrap replicates and random sign patterns of the comparisons "
                         f"with dense (default {StatsConfig.n_bootstrap})")
parser.add_argument("--resample-seeds", action=argparse.BooleanOptionalAction, default=True,
                    help="with several training seeds per method, resample them too in the "
                         "bootstrap (seeds, then videos; default); --no-resample-seeds takes the "
                         "trained models as fixed")
parser.add_argument("--limit", type=int, metavar="N", help="at most N test videos (quick runs)")
parser.add_argument("--baseline", help="the checkpoint mCE is normalised by and the others are "
                    "compared with (a label such as Dense, a run name or path); default the first dense one")
parser.add_argument("--spectral", action="store_true",
                    help="also radius-accuracy curves on low- and high-pass filtered clean clips")
parser.add_argument("--flip-rate", type=int, default=0, metavar="K",
                    help="also the flip rate over K consecutive clips per video, clean and under "
                         "each corruption at severity 3 (on the fly); 0 = off (default)")
parser.add_argument("--flip-stride", type=int, default=1, metavar="FRAMES",
                    help="frames between the starts of consecutive clips for --flip-rate (default 1)")
parser.add_argument("--cpu", action="store_true", help="run on the CPU even where CUDA is available")
parser.add_argument("--corrupt-on", choices=CORRUPT_ON, default="auto",
                    help="where on-the-fly frame-local corruptions (most spatial ones) run: in the "
                         "loader workers, or after the loader on the evaluation's device (the GPU), "
                         "with the eval transform; auto (default): the device on CUDA. Fog, "
                         "temporal and codec corruptions always run in the loader; the results and "
                         "the cache are the same either way (up to a GPU's float rounding)")
parser.add_argument("--no-cache", action="store_true", help="neither read nor write --out/cache")
args = parser.parse_args()
try:
    stats_config = StatsConfig(seed=args.seed if args.stats_seed is None else args.stats_seed,
                               n_bootstrap=args.bootstrap, n_permutations=args.bootstrap,
                               resample_seeds=args.resample_seeds)
except ValueError as exc:
    parser.error(f"--stats-seed/--bootstrap: {exc}")

# ---------------------------------------------------------------------------- evaluate
# cpu=True without CUDA: `accelerate launch --multi_gpu` then gives gloo ranks on the CPU.
accelerator = Accelerator(cpu=args.cpu or not torch.cuda.is_available())
if accelerator.device.type == "cpu" and accelerator.num_processes > 1:
    torch.set_num_threads(max(1, torch.get_num_threads() // accelerator.num_processes))
try:
    # Each checkpoint is loaded once: the evaluation, the spectral curves and the flip rates
    # all run the same models.
    checkpoints = [load_checkpoint(c, accelerator.device) for c in args.checkpoint]
    evaluation = evaluate(
        checkpoints, args.data, corrupted=args.corrupted, corruptions=args.corruptions,
        severities=args.severities, batch_size=args.batch_size, num_workers=args.num_workers,
        seed=args.seed, limit=args.limit, accelerator=accelerator,
        cache_dir=None if args.no_cache else f"{args.out}/cache",
        preset=args.preset, options=parse_overrides(args.option, what="--option"),
        corrupt_on=args.corrupt_on,
    )
except (FileNotFoundError, ValueError, KeyError) as exc:
    # Bad paths, unknown corruptions, mismatched checkpoints: a message, not a traceback.
    sys.exit(f"error: {exc}")

# ------------------------------------------------- spectral curves, flip rate (sharded too)
spectral = stability = None
try:
    if args.spectral:
        spectral = spectral_curves(checkpoints, args.data, batch_size=args.batch_size,
                                   num_workers=args.num_workers, limit=args.limit,
                                   progress=accelerator.is_main_process, accelerator=accelerator)
    if args.flip_rate:
        with accelerator.local_main_process_first():
            test = build_test_split(checkpoints, args.data)
        labels = unique_labels(evaluation.configs, evaluation.checkpoints)
        models = [c.model for c in checkpoints]
        conditions = {"clean": None}
        for name in dict.fromkeys(c.corruption for c in evaluation.conditions if not c.is_clean):
            conditions[f"{name} s3"] = Corruption(name, 3, seed=args.seed)
        rates: dict[str, dict[str, float]] = {label: {} for label in labels}
        for condition, corruption in conditions.items():
            out = flip_rate(models, test, clips_per_video=args.flip_rate, stride=args.flip_stride,
                            corruption=corruption, batch_size=args.batch_size, limit=args.limit,
                            progress=False, accelerator=accelerator)
            for label, rate in zip(labels, out["flip_rate"]):
                rates[label][condition] = rate
        stability = Stability(clips_per_video=args.flip_rate, stride=args.flip_stride,
                              flip_rate=rates)
except ValueError as exc:  # e.g. a --flip-stride too long for the clips to overlap
    sys.exit(f"error: {exc}")

# The collectives are over: every rank frees the process group now rather than at exit, where
# gloo can abort the process (pytorch#190489). What follows runs on the main process alone.
accelerator.wait_for_everyone()
accelerator.end_training()
if not accelerator.is_main_process:
    sys.exit(0)

# ------------------------------------------------------------------------------ report
evaluation = dataclasses.replace(evaluation, spectral=spectral, stability=stability)
try:
    results = results_from_evaluation(evaluation, baseline=args.baseline, stats_config=stats_config)
except ValueError as exc:  # e.g. a --baseline that names no checkpoint
    sys.exit(f"error: {exc}")
paths = write_report_files(results, args.out)
corrupted = results.dataset.corrupted
source = f"read from {corrupted}" if corrupted else f"corrupted on the fly (seed {args.seed})"
print(f"\n{results.dataset.num_videos} test videos, "
      f"{len(results.corruptions)} corruption(s) {source}; accuracy in %")
print(summary_table(results))
verdicts = verdict_lines(results)
if verdicts:
    print("\n" + "\n".join(verdicts))
print("\n" + "\n".join(f"{key}: {path}" for key, path in paths.items()))
