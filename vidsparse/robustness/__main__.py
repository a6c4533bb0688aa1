"""Redraw a robustness report from its files, the statistics drawn again.

    python -m vidsparse.robustness REPORT_DIR [--seed N] [--bootstrap B] [--no-resample-seeds] [--out DIR]

Reads results.json and per_video.csv.gz from REPORT_DIR (what recipes/eval_robustness.py
wrote), computes the comparisons with dense again from the per-video predictions
(bootstrap intervals, sign-flip tests, verdicts) with --seed, and writes every report file
to --out (default: REPORT_DIR itself). No model runs: the same files and seed give the
same report.
"""

from __future__ import annotations

import argparse
import sys

from vidsparse.robustness.markdown import summary_table, verdict_lines
from vidsparse.robustness.report import write_report_files
from vidsparse.robustness.results import with_statistics
from vidsparse.robustness.schema import Results
from vidsparse.robustness.stats import StatsConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidsparse.robustness",
                                     description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", metavar="REPORT_DIR",
                        help="a report folder holding results.json and per_video.csv.gz")
    parser.add_argument("--seed", type=int, default=StatsConfig.seed,
                        help=f"seed of the bootstrap and permutation draws (default {StatsConfig.seed})")
    parser.add_argument("--bootstrap", type=int, default=StatsConfig.n_bootstrap, metavar="B",
                        help="bootstrap replicates and random sign patterns "
                             f"(default {StatsConfig.n_bootstrap})")
    parser.add_argument("--resample-seeds", action=argparse.BooleanOptionalAction, default=True,
                        help="with several training seeds per method, resample them too "
                             "(default); --no-resample-seeds takes the trained models as fixed")
    parser.add_argument("--out", metavar="DIR", help="where to write the report (default REPORT_DIR)")
    args = parser.parse_args(argv)
    try:
        config = StatsConfig(seed=args.seed, n_bootstrap=args.bootstrap, n_permutations=args.bootstrap,
                             resample_seeds=args.resample_seeds)
    except ValueError as exc:
        parser.error(f"--seed/--bootstrap: {exc}")
    try:
        results = with_statistics(Results.read(args.report, per_video=True), config)
        paths = write_report_files(results, args.out or args.report)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary_table(results))
    verdicts = verdict_lines(results)
    if verdicts:
        print("\n" + "\n".join(verdicts))
    print(f"\nreport: {paths['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
