"""Train a video model, dense or with dynamic sparse training, under Accelerate.

    accelerate launch recipes/train.py --config recipes/configs/r3d_tiny_rigl.yaml \
        output_dir=runs/rigl data.root=data/synthetic max_steps=200

Runs on one process, N processes (DDP) and N machines as Accelerate launches it; on a
machine without CUDA it uses CPU processes with the gloo backend. The final weights,
masks and resolved config land in ``<output_dir>/final/``.

The script reads top to bottom: config, setup, model and sparsity, resume, the training
loop, evaluation and the final save. What it keeps on disk (checkpoint discovery, crash
recovery, the final format) is vidsparse.checkpoint; the config schema is vidsparse.config.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import os
import shutil
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from vidsparse import DynamicSparsity, create_model
from vidsparse.checkpoint import (CheckpointError, commit_step_checkpoint, newest_checkpoint, read_step_file,
                                  recover_interrupted_writes, resume_source, save_final, temp_step_dir)
from vidsparse.config import ConfigError, load_config, sparsity_config, trackers
from vidsparse.data import build_dataset, build_transform
from vidsparse.files import atomic_write
from vidsparse.models.scoring import clip_scores

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", required=True, help="YAML config (see recipes/configs/)")
parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_steps=100 data.root=DIR")
args = parser.parse_args()
try:
    cfg = load_config(args.config, args.overrides)
except ConfigError as exc:
    sys.exit(f"error: {exc}")


def lr_factor(step: int, optim: dict, max_steps: int) -> float:
    """Linear warmup over ``optim["warmup_steps"]``, then cosine decay to ``min_lr_ratio``."""
    if step < optim["warmup_steps"]:
        return (step + 1) / optim["warmup_steps"]
    progress = (step - optim["warmup_steps"]) / max(1, max_steps - optim["warmup_steps"])
    return optim["min_lr_ratio"] + (1 - optim["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def dst_statistics(per_layer: dict[str, dict]) -> dict[str, float]:
    """Over all sparse layers (``sparsity.stats()``): the share of active weights regrown at
    the last mask update, and in-time over-parameterisation (the share of weights ever active)."""
    stats = per_layer.values()
    active = sum(s["active"] for s in stats)
    numel = sum(s["numel"] for s in stats)
    return {"mask_changed": sum(s["changed"] * s["active"] for s in stats) / max(active, 1),
            "itop": sum(s["itop"] * s["numel"] for s in stats) / max(numel, 1) if numel else 1.0}


def save_checkpoint(accelerator: Accelerator, root: Path, step: int, mask_update_steps: list[int]) -> None:
    """Write ``root/step_N`` through a temporary name so a kill never leaves half of one."""
    tmp = temp_step_dir(root, step)
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:  # the file list, fsync, then the rename
        commit_step_checkpoint(root, step, mask_update_steps=mask_update_steps)
    accelerator.wait_for_everyone()


def shut_down(accelerator: Accelerator) -> None:
    """Close the trackers and the process group. Delete the script's own references to the
    model, optimizer, loaders, scheduler and engine first (``del``): DDP's reducer keeps the
    gloo process group alive, and a group freed only at interpreter exit can abort a rank with
    "terminate called without an active exception" (pytorch#190489). Call it on every rank."""
    accelerator.free_memory()
    gc.collect()
    accelerator.end_training()


# --------------------------------------------------------------------------- setup
output_dir = Path(cfg["output_dir"])
checkpoint_root = output_dir / "checkpoints"
# `accelerate launch --use_fsdp/--use_deepspeed` (or a config file saying so) sets these; the
# check comes before Accelerator() because that fails on its own without the packages.
SHARDED = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed",
           "ACCELERATE_USE_MEGATRON_LM": "Megatron-LM"}
sharded = [name for var, name in SHARDED.items() if os.environ.get(var, "").lower() == "true"]
if sharded:
    sys.exit(f"error: accelerate is configured for {sharded[0]}; vidsparse supports DDP (multi-GPU "
             "and multi-node) but not sharded training yet: a mask needs the whole parameter on "
             "every rank. Launch without it (e.g. `accelerate launch --multi_gpu ...`).")
# resume=none refuses an earlier run's checkpoints (a later resume=auto could pick one of
# theirs); resume=DIR must name a complete checkpoint. Both are checked before anything is
# built. resume=auto is looked up after the crash recovery below.
resume = cfg["resume"]
source = None
if resume != "auto":
    try:
        source = resume_source(resume, checkpoint_root)
    except CheckpointError as exc:
        sys.exit(f"error: {exc}")
# Without cpu=True on a CUDA-less machine, `accelerate launch --multi_gpu` starts processes
# that each train alone (world size 1). With it they form one gloo process group.
accelerator = Accelerator(
    cpu=not torch.cuda.is_available(),
    mixed_precision=cfg["mixed_precision"],
    gradient_accumulation_steps=cfg["grad_accum_steps"],
    step_scheduler_with_optimizer=False,  # the schedule below is in optimizer steps already
    log_with=trackers(cfg) or None,  # checked by load_config: every package is installed
    project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
)
if accelerator.device.type == "cpu":
    # Share the cores between the processes on this machine instead of oversubscribing.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // accelerator.num_processes))
set_seed(cfg["seed"])
main = accelerator.is_main_process

# Clip positions and crops come from an RNG keyed on (seed, epoch, index): the same on any
# number of processes and loader workers. The first process on each machine opens the
# videos and writes the index cache (vidsparse/data/index.py); the others then read it.
with accelerator.local_main_process_first():
    train_set = build_dataset({**cfg["data"], "seed": cfg["seed"]}, "train",
                              build_transform(cfg["data"], train=True))
if cfg["model"]["num_classes"] is None:
    cfg["model"]["num_classes"] = train_set.num_classes
elif cfg["model"]["num_classes"] != train_set.num_classes:
    sys.exit(f"error: model.num_classes={cfg['model']['num_classes']} but {cfg['data']['root']} "
             f"has {train_set.num_classes} classes")
train_loader = torch.utils.data.DataLoader(
    train_set, batch_size=cfg["batch_size"], shuffle=True, drop_last=True,
    num_workers=cfg["data"]["num_workers"], generator=torch.Generator().manual_seed(cfg["seed"]),
)
if len(train_loader) // accelerator.num_processes < 1:
    sys.exit(f"error: {len(train_set)} training videos are fewer than batch_size={cfg['batch_size']} "
             f"x {accelerator.num_processes} processes")

# --------------------------------------------------------------------------- model, optimizer, sparsity
model = create_model(cfg["model"]["name"], num_classes=cfg["model"]["num_classes"],
                     checkpoint=cfg["model"]["checkpoint"], **cfg["model"]["kwargs"])

opt = cfg["optim"]
max_steps = cfg["max_steps"]
# No weight decay on norms and biases (every 0- or 1-dimensional parameter).
groups = [{"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": opt["weight_decay"]},
          {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0}]
if opt["name"] == "sgd":
    optimizer = torch.optim.SGD(groups, lr=opt["lr"], momentum=opt["momentum"], nesterov=opt["nesterov"])
else:
    optimizer = torch.optim.AdamW(groups, lr=opt["lr"], betas=tuple(opt["betas"]))
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, opt, max_steps))

# Sparsify before prepare (docs/ARCHITECTURE.md, "Multi-GPU rules"): masks are drawn from the
# seed, identical on every rank.
sparsity = DynamicSparsity(model, optimizer, sparsity_config(cfg), total_steps=max_steps)
layout = sparsity.summary()
if layout["layers"]:  # where the sparsity sits: ERK keeps many small layers dense
    accelerator.print(f"{layout['method']}: density {layout['density']:.4f} over {layout['layers']} "
                      f"prunable weights, {layout['dense_layers']} of them dense "
                      f"({cfg['sparsity']['distribution']})")

model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
accelerator.register_for_checkpointing(sparsity)

# --------------------------------------------------------------------------- resume
start_step = 0
mask_update_steps: list[int] = []  # optimizer steps (1-based) at which the masks changed
if resume == "auto":
    if main:  # what a kill in the middle of save_checkpoint left: never a checkpoint
        for line in recover_interrupted_writes(checkpoint_root):
            accelerator.print(f"resume=auto: {line}")
    accelerator.wait_for_everyone()  # no rank looks for checkpoints while they go
    source = resume_source("auto", checkpoint_root, on_skip=lambda path, problem: accelerator.print(
        f"resume=auto: skipping {path}: incomplete checkpoint ({problem})"))
    if source is None:
        accelerator.print("resume=auto: no complete checkpoint yet, starting from scratch")
if source is not None:
    accelerator.load_state(str(source))
    position = read_step_file(source)
    start_step, mask_update_steps = position["step"], position.get("mask_update_steps", [])
    accelerator.print(f"resumed from {source} at step {start_step}")

# --------------------------------------------------------------------------- train
if main:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
hparams = {"model": cfg["model"]["name"], "method": cfg["sparsity"]["method"],
           "density": cfg["sparsity"]["density"], "lr": opt["lr"], "seed": cfg["seed"],
           "batch_size": cfg["batch_size"] * accelerator.num_processes}
# The run's name in the dashboards that have one (TensorBoard: logs/train/).
accelerator.init_trackers("train", config=hparams,
                          init_kwargs={"wandb": {"name": cfg["name"]}, "mlflow": {"run_name": cfg["name"]}})
log_path = output_dir / "metrics.csv"
log_fields = ["step", "loss", "accuracy", "lr", "density", "mask_updates", "mask_changed", "itop"]
if main:
    kept_rows = []
    if resume != "none" and log_path.exists():
        # A resumed run replays the steps after its checkpoint: their rows from the run that
        # stopped go, so every step is logged once.
        with open(log_path, newline="") as f:
            kept_rows = [row for row in csv.DictReader(f)
                         if row.get("step", "").isdigit() and int(row["step"]) <= start_step]
    # Through a temporary name: a kill mid-write keeps the stopped run's rows for the next try.
    with atomic_write(log_path, "w", newline="") as f:
        writer = csv.DictWriter(f, log_fields, extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(kept_rows)

steps_per_epoch = len(train_loader) // cfg["grad_accum_steps"]
step = start_step
progress = tqdm(total=max_steps, initial=step, disable=not main, desc=cfg["name"], dynamic_ncols=True)
# Running sums since the last log row; three separate tensors (`a = b = c = t` would alias one).
running_loss, running_correct, running_seen = [torch.zeros((), device=accelerator.device) for _ in range(3)]
skipped_batches = skipped_in_a_row = 0  # non-finite losses skipped (nonfinite_loss=skip)
all_zero_layers: list[str] = []  # sparse layers seen with no nonzero weight
failure = None  # the message a non-finite loss stops the run with
loader = train_loader
model.train()
while step < max_steps and failure is None:
    epoch = step // steps_per_epoch
    train_set.set_epoch(epoch)
    train_loader.set_epoch(epoch)
    loader = train_loader
    consumed = (step % steps_per_epoch) * cfg["grad_accum_steps"]
    if consumed:  # resuming mid-epoch: skip the batches this epoch already used
        loader = accelerator.skip_first_batches(train_loader, consumed)
    for clips, labels in loader:
        with accelerator.accumulate(model):
            logits = model(clips)
            loss = F.cross_entropy(logits, labels, label_smoothing=opt["label_smoothing"])
            # All ranks decide together (one all-reduce of a flag), so none waits in backward.
            if accelerator.reduce((~torch.isfinite(loss.detach())).float(), "max") > 0:
                skipped_batches += 1
                skipped_in_a_row += 1
                if cfg["nonfinite_loss"] == "stop":
                    last = newest_checkpoint(checkpoint_root)
                    failure = (f"error: the loss is {loss.item()} at optimizer step {step + 1} (on at "
                               f"least one rank); stopping. Last good checkpoint: "
                               f"{last or 'none (checkpoint_every=0)'}; lower optim.lr, set "
                               "optim.grad_clip, or set nonfinite_loss=skip to skip such batches.")
                elif skipped_in_a_row > len(train_loader):  # a whole epoch of them: give up
                    failure = (f"error: {skipped_in_a_row} batches in a row had a non-finite loss at "
                               f"optimizer step {step + 1}; stopping")
                optimizer.zero_grad()
                if failure:
                    break
                continue
            skipped_in_a_row = 0
            accelerator.backward(loss)
            if opt["grad_clip"] > 0 and accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), opt["grad_clip"])
            optimizer.step()
            # After the step and before zero_grad: re-apply masks; at update steps prune and
            # regrow (RigL reads the all-reduced dense gradient). Only real optimizer steps
            # count inside the engine, so accumulation micro-batches are no-ops.
            if sparsity.step():
                mask_update_steps.append(step + 1)
            optimizer.zero_grad()
        running_loss += loss.detach()
        running_correct += (logits.argmax(1) == labels).sum()
        running_seen += labels.numel()
        if not accelerator.sync_gradients:
            continue
        scheduler.step()
        step += 1
        progress.update(1)
        if step % cfg["log_every"] == 0 or step == max_steps:
            totals = accelerator.reduce(torch.stack([running_loss, running_correct, running_seen]), "sum")
            per_layer = sparsity.stats()
            for name, layer in per_layer.items():  # reported once per layer
                if layer["nonzero"] == 0 and name not in all_zero_layers:
                    all_zero_layers.append(name)
                    accelerator.print(f"warning: step {step}: every weight of {name} is zero "
                                      f"({layer['active']} active in the mask, all pruned or regrown at 0)")
            row = {"step": step,
                   "loss": (totals[0] / (cfg["log_every"] * cfg["grad_accum_steps"] * accelerator.num_processes)).item(),
                   "accuracy": (totals[1] / totals[2].clamp(min=1)).item(),
                   "lr": scheduler.get_last_lr()[0], "density": sparsity.density(),
                   "mask_updates": len(mask_update_steps), **dst_statistics(per_layer)}
            running_loss, running_correct, running_seen = [torch.zeros((), device=accelerator.device) for _ in range(3)]
            accelerator.log({f"train/{k}": v for k, v in row.items() if k != "step"}, step=step)
            progress.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.2f}")
            if main:
                with open(log_path, "a", newline="") as f:
                    csv.writer(f).writerow([row[k] for k in log_fields])
        if cfg["checkpoint_every"] and step % cfg["checkpoint_every"] == 0 and step < max_steps:
            save_checkpoint(accelerator, checkpoint_root, step, mask_update_steps)
        if step >= max_steps:
            break
progress.close()
if failure:  # every rank got here together (the flag above is all-reduced)
    accelerator.print(failure, file=sys.stderr)
    del model, optimizer, train_loader, loader, scheduler, sparsity
    shut_down(accelerator)
    sys.exit(3)

# --------------------------------------------------------------------------- evaluate, save
results = {"steps": step, "world_size": accelerator.num_processes,
           "mixed_precision": accelerator.mixed_precision, "skipped_batches": skipped_batches,
           "skipped_videos": {"train": len(train_set.skipped)},
           "all_zero_layers": all_zero_layers,
           "channels": sparsity.channel_stats(),  # channel mode: alive channels per group
           "layout": sparsity.summary(),  # prunable layers, how many dense, density
           "engine_steps": sparsity.step_count, "mask_update_steps": mask_update_steps}
if cfg["eval_at_end"]:
    with accelerator.local_main_process_first():
        test_set = build_dataset(cfg["data"], cfg["data"]["test_split"], build_transform(cfg["data"], train=False))
    test_loader = accelerator.prepare(torch.utils.data.DataLoader(
        test_set, batch_size=cfg["batch_size"], num_workers=cfg["data"]["num_workers"]))
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for clips, labels in test_loader:
            preds = clip_scores(model, clips).argmax(1)  # multi-view batches are averaged
            preds, labels = accelerator.gather_for_metrics((preds, labels))
            correct += int((preds == labels).sum())
            seen += labels.numel()
    results["test_accuracy"] = correct / max(seen, 1)
    results["skipped_videos"]["test"] = len(getattr(test_set, "skipped", ()))
    accelerator.log({"test/accuracy": results["test_accuracy"]}, step=step)
    accelerator.print(f"{cfg['name']}: clean test accuracy {results['test_accuracy']:.3f} on {seen} videos")

# Every rank reports its mask digest: the saved run then shows that all ranks agreed.
digest = sparsity.mask_digest().to(accelerator.device)
digests = accelerator.gather(digest.unsqueeze(0)).cpu().tolist()
accelerator.wait_for_everyone()
if main:
    unwrapped = accelerator.unwrap_model(model)
    final = save_final(output_dir / "final", unwrapped, cfg, masks=sparsity.masks, stats=sparsity.stats())
    (final / "run.json").write_text(json.dumps({**results, "mask_digests": digests}, indent=2))
    accelerator.print(f"saved {final}")
accelerator.wait_for_everyone()
del model, optimizer, train_loader, loader, scheduler, sparsity
shut_down(accelerator)
