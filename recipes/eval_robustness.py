"""Evaluate trained checkpoints on clean and corrupted test videos; write a report.

    python recipes/eval_robustness.py --checkpoint runs/dense --checkpoint runs/rigl \
        --data data/synthetic --out reports/synthetic [--corrupted data/synthetic-c]

Given only ``--data`` (a clean dataset root) the test split is corrupted on the fly with
``vidsparse.robustness.DEFAULT_CORRUPTIONS`` at severities 1-5 (or ``--corruptions`` /
``--severities``); given ``--corrupted`` (the output of data_tools/corrupt_dataset.py) it reads
those copies instead. Writes ``report.md``, ``results.json`` and ``accuracy_vs_severity.png``
to ``--out`` and prints clean accuracy, mPC and rPC per checkpoint.

Runs on one process or under ``accelerate launch`` (each process takes a share of every
condition's videos; the predictions are gathered and the main process writes the report).
Predictions are cached in ``--out/cache`` per (checkpoint, corruption, severity), so an
interrupted evaluation started again continues where it stopped (``--no-cache`` to skip).
"""

from __future__ import annotations

import argparse
import sys

import torch
from accelerate import Accelerator

from vidsparse.robustness import evaluate, read_results, summary_table, write_report


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
parser.add_argument("--batch-size", type=int, default=8)
parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
parser.add_argument("--seed", type=int, default=0, help="seed of on-the-fly corruption")
parser.add_argument("--limit", type=int, metavar="N", help="at most N test videos (quick runs)")
parser.add_argument("--cpu", action="store_true", help="run on the CPU even where CUDA is available")
parser.add_argument("--no-cache", action="store_true", help="neither read nor write --out/cache")
args = parser.parse_args()

# ---------------------------------------------------------------------------- evaluate
# cpu=True without CUDA: `accelerate launch --multi_gpu` then gives gloo ranks on the CPU.
accelerator = Accelerator(cpu=args.cpu or not torch.cuda.is_available())
if accelerator.device.type == "cpu" and accelerator.num_processes > 1:
    torch.set_num_threads(max(1, torch.get_num_threads() // accelerator.num_processes))
try:
    evaluation = evaluate(
        args.checkpoint, args.data, corrupted=args.corrupted, corruptions=args.corruptions,
        severities=args.severities, batch_size=args.batch_size, num_workers=args.num_workers,
        seed=args.seed, limit=args.limit, accelerator=accelerator,
        cache_dir=None if args.no_cache else f"{args.out}/cache",
    )
except (FileNotFoundError, ValueError, KeyError) as exc:
    # Bad paths, unknown corruptions, mismatched checkpoints: a message, not a traceback.
    sys.exit(f"error: {exc}")
if not accelerator.is_main_process:
    sys.exit(0)

# ------------------------------------------------------------------------------ report
paths = write_report(evaluation, args.out)
results = read_results(paths["results"])
corrupted = results["dataset"]["corrupted"]
source = f"read from {corrupted}" if corrupted else f"corrupted on the fly (seed {args.seed})"
print(f"\n{results['dataset']['num_videos']} test videos, "
      f"{len(results['corruptions'])} corruption(s) {source}; accuracy in %")
print(summary_table(results))
print(f"\nreport: {paths['report']}\nresults: {paths['results']}\nplot: {paths['plot']}")
