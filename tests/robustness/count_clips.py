"""Run a recipe (the first argument; the rest are its own) counting the clips the models it
loads score on this process; at exit write the count to ``$COUNT_DIR/rank<RANK>.json``.

Launched by tests/robustness/test_eval_robustness_recipe.py, alone and under ``accelerate
launch``, to see that every analysis splits its clips between the processes.
"""

import atexit
import importlib
import json
import os
import runpy
import sys
from pathlib import Path

evaluate_module = importlib.import_module("vidsparse.robustness.evaluate")
load_checkpoint = evaluate_module.load_checkpoint
clips = {"n": 0}


def counted(*args, **kwargs):
    checkpoint = load_checkpoint(*args, **kwargs)
    checkpoint.model.register_forward_pre_hook(
        lambda module, inputs: clips.__setitem__("n", clips["n"] + inputs[0].shape[0]))
    return checkpoint


@atexit.register
def write_count():
    out = Path(os.environ["COUNT_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(clips["n"]))


evaluate_module.load_checkpoint = counted  # the recipe imports it when it runs
recipe = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(recipe, run_name="__main__")
