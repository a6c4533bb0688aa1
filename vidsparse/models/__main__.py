"""Print the model table: ``python -m vidsparse.models [--classes N]``."""

import argparse

from vidsparse.models.summary import markdown_table

parser = argparse.ArgumentParser(description="Parameter counts of every registered model.")
parser.add_argument("--classes", type=int, default=400, help="head size (default 400, Kinetics)")
print(markdown_table(parser.parse_args().classes))
