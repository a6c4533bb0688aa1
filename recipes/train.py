"""Train a video model, dense or with dynamic sparse training, under Accelerate.

    accelerate launch recipes/train.py --config recipes/configs/r3d_tiny_rigl.yaml \
        output_dir=runs/rigl data.root=data/synthetic max_steps=200

Runs on one process, N processes (DDP) and N machines as Accelerate launches it; on a
machine without CUDA it uses CPU processes with the gloo backend. The final weights,
masks and resolved config land in ``<output_dir>/final/``.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import os
import re
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
from vidsparse.checkpoint import replace_dir, save_final
from vidsparse.config import ConfigError, load_config, sparsity_config
from vidsparse.data import build_dataset, build_transform
from vidsparse.files import atomic_write, reset_mode
from vidsparse.robustness.evaluate import clip_scores

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", required=True, help="YAML config (see recipes/configs/)")
parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_steps=100 data.root=DIR")
args = parser.parse_args()
try:
    cfg = load_config(args.config, args.overrides)
except ConfigError as exc:
    sys.exit(f"error: {exc}")

# --------------------------------------------------------------------------- setup
output_dir = Path(cfg["output_dir"])
# `accelerate launch --use_fsdp/--use_deepspeed` (or a config file saying so) sets these; the
# check comes before Accelerator() because that fails on its own without the packages.
SHARDED = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed",
           "ACCELERATE_USE_MEGATRON_LM": "Megatron-LM"}
sharded = [name for var, name in SHARDED.items() if os.environ.get(var, "").lower() == "true"]
if sharded:
    sys.exit(f"error: accelerate is configured for {sharded[0]}; vidsparse supports DDP (multi-GPU "
             "and multi-node) but not sharded training yet: a mask needs the whole parameter on "
             "every rank. Launch without it (e.g. `accelerate launch --multi_gpu ...`).")
# Checkpoints of an earlier run in the same place would be mixed with this run's, and a later
# resume=auto could pick one of theirs.
stale = sorted((p.name for p in (output_dir / "checkpoints").glob("step_*") if p.is_dir()),
               key=lambda name: int(name[5:]) if name[5:].isdigit() else -1)
if cfg["resume"] == "none" and stale:
    sys.exit(f"error: resume=none but {output_dir / 'checkpoints'} already holds checkpoints of an "
             f"earlier run ({', '.join(stale)}); continue that run with resume=auto, or start "
             "over in another output_dir (or after deleting them)")
# Without cpu=True on a CUDA-less machine, `accelerate launch --multi_gpu` starts processes
# that each train alone (world size 1). With it they form one gloo process group.
accelerator = Accelerator(
    cpu=not torch.cuda.is_available(),
    mixed_precision=cfg["mixed_precision"],
    gradient_accumulation_steps=cfg["grad_accum_steps"],
    step_scheduler_with_optimizer=False,  # the schedule below is in optimizer steps already
    log_with="tensorboard",
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

model = create_model(cfg["model"]["name"], num_classes=cfg["model"]["num_classes"],
                     checkpoint=cfg["model"]["checkpoint"], **cfg["model"]["kwargs"])

# No weight decay on norms and biases (every 0- or 1-dimensional parameter).
decay = [p for p in model.parameters() if p.ndim > 1]
no_decay = [p for p in model.parameters() if p.ndim <= 1]
groups = [{"params": decay, "weight_decay": cfg["optim"]["weight_decay"]},
          {"params": no_decay, "weight_decay": 0.0}]
opt = cfg["optim"]
if opt["name"] == "sgd":
    optimizer = torch.optim.SGD(groups, lr=opt["lr"], momentum=opt["momentum"], nesterov=opt["nesterov"])
else:
    optimizer = torch.optim.AdamW(groups, lr=opt["lr"], betas=tuple(opt["betas"]))

max_steps = cfg["max_steps"]


def lr_factor(step: int) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio``."""
    if step < opt["warmup_steps"]:
        return (step + 1) / opt["warmup_steps"]
    progress = (step - opt["warmup_steps"]) / max(1, max_steps - opt["warmup_steps"])
    return opt["min_lr_ratio"] + (1 - opt["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

# Sparsify before prepare (DESIGN.md): masks are drawn from the seed, identical on every rank.
sparsity = DynamicSparsity(model, optimizer, sparsity_config(cfg), total_steps=max_steps)
layout = sparsity.summary()
if layout["layers"]:  # where the sparsity sits: ERK keeps many small layers dense
    accelerator.print(f"{layout['method']}: density {layout['density']:.4f} over {layout['layers']} "
                      f"prunable weights, {layout['dense_layers']} of them dense "
                      f"({cfg['sparsity']['distribution']})")

model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
accelerator.register_for_checkpointing(sparsity)

# --------------------------------------------------------------------------- resume
checkpoint_root = output_dir / "checkpoints"
step_dir = re.compile(r"^step_(\d+)$")


POSITION = "vidsparse_step.json"  # written last: a step_N without it is not a checkpoint


def checkpoint_problem(directory: Path) -> str | None:
    """Why ``directory`` is not a complete checkpoint (None: it is).

    Checkpoints written by this script list every file with its size, so a file cut short
    or removed after the rename (a full disk, a partial copy, a manual clean-up) is caught
    here instead of as a traceback inside ``load_state``. Older checkpoints carry no list
    and are taken as they are.
    """
    try:
        position = json.loads((directory / POSITION).read_text())
        int(position["step"])
    except FileNotFoundError:
        return f"no {POSITION}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable {POSITION} ({exc})"
    for name, size in position.get("files", {}).items():
        try:
            found = (directory / name).stat().st_size
        except OSError:
            return f"{name} is missing"
        if found != size:
            return f"{name} has {found} bytes, {size} were written"
    return None


def newest_checkpoint(report: bool = False) -> Path | None:
    """The newest complete ``checkpoints/step_N``; ``report`` says which newer ones are not."""
    found = sorted(((int(m.group(1)), p) for p in checkpoint_root.glob("step_*")
                    if (m := step_dir.match(p.name)) and p.is_dir()), reverse=True)
    for _, path in found:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        if report:
            accelerator.print(f"resume=auto: skipping {path}: incomplete checkpoint ({problem})")
    return None


def shut_down() -> None:
    """Close the trackers and the process group, after dropping what holds the group.

    DDP's reducer keeps the gloo process group alive; a group freed only at interpreter exit
    can abort a rank with "terminate called without an active exception" (pytorch#190489).
    Call it where every rank gets to it.
    """
    accelerator.free_memory()
    for name in ("model", "optimizer", "train_loader", "scheduler", "sparsity", "loader"):
        globals().pop(name, None)
    gc.collect()
    accelerator.end_training()


def save_checkpoint(step: int) -> None:
    """Write ``checkpoints/step_N`` through a temporary name so a kill never leaves half of one."""
    final = checkpoint_root / f"step_{step}"
    tmp = checkpoint_root / f".tmp_step_{step}"
    if main and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if main:
        for path in tmp.rglob("*.safetensors"):
            reset_mode(path)  # safetensors >= 0.8 writes 0600; the rest follows the umask
        files = {p.relative_to(tmp).as_posix(): p.stat().st_size
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / POSITION).write_text(json.dumps(
            {"step": step, "mask_update_steps": mask_update_steps, "files": files}))
        # Flushed to disk, then renamed. A step_N already there (a resume from an older
        # checkpoint) is moved aside to .old_step_N, not deleted in place: a kill mid-delete
        # would leave a step_N with its POSITION and without some of its files.
        replace_dir(tmp, final)
    accelerator.wait_for_everyone()


start_step = 0
mask_update_steps: list[int] = []  # optimizer steps (1-based) at which the masks changed
resume = cfg["resume"]
if resume != "none":
    if resume == "auto":
        # What a kill left behind in the middle of save_checkpoint: never a checkpoint.
        for leftover in sorted([*checkpoint_root.glob(".tmp_step_*"), *checkpoint_root.glob(".old_step_*")]):
            kept = checkpoint_root / leftover.name[len(".old_"):]
            if leftover.name.startswith(".old_") and not kept.exists():
                # Killed between replace_dir's two renames: the old copy is the only one.
                accelerator.print(f"resume=auto: restoring {kept} from {leftover} (left by an "
                                  "interrupted checkpoint write)")
                if main:
                    os.replace(leftover, kept)
                continue
            accelerator.print(f"resume=auto: removing {leftover} (left by an interrupted "
                              "checkpoint write)")
            if main:
                shutil.rmtree(leftover, ignore_errors=True)
        accelerator.wait_for_everyone()  # no rank globs checkpoints while they go
    source = newest_checkpoint(report=True) if resume == "auto" else Path(resume)
    problem = source and checkpoint_problem(source)
    if source is None:
        accelerator.print("resume=auto: no complete checkpoint yet, starting from scratch")
    elif problem:
        sys.exit(f"error: resume={resume}: {source} is not a complete checkpoint ({problem})")
    else:
        accelerator.load_state(str(source))
        position = json.loads((source / POSITION).read_text())
        start_step, mask_update_steps = position["step"], position.get("mask_update_steps", [])
        accelerator.print(f"resumed from {source} at step {start_step}")

# --------------------------------------------------------------------------- train
if main:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
hparams = {"model": cfg["model"]["name"], "method": cfg["sparsity"]["method"],
           "density": cfg["sparsity"]["density"], "lr": opt["lr"], "seed": cfg["seed"],
           "batch_size": cfg["batch_size"] * accelerator.num_processes}
accelerator.init_trackers("train", config=hparams)
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


def zeros() -> list[torch.Tensor]:
    # Three separate tensors (a chained `a = b = c = zeros()` would alias one).
    return [torch.zeros((), device=accelerator.device) for _ in range(3)]


def dst_statistics() -> dict[str, float]:
    """Over all sparse layers: the share of active weights regrown at the last mask update,
    and in-time over-parameterisation (the share of weights ever active)."""
    per_layer = sparsity.stats()
    for name, layer in per_layer.items():  # reported once per layer
        if layer["nonzero"] == 0 and name not in all_zero_layers:
            all_zero_layers.append(name)
            accelerator.print(f"warning: step {step}: every weight of {name} is zero "
                              f"({layer['active']} active in the mask, all pruned or regrown at 0)")
    stats = per_layer.values()
    active = sum(s["active"] for s in stats)
    numel = sum(s["numel"] for s in stats)
    return {"mask_changed": sum(s["changed"] * s["active"] for s in stats) / max(active, 1),
            "itop": sum(s["itop"] * s["numel"] for s in stats) / max(numel, 1) if numel else 1.0}


running_loss, running_correct, running_seen = zeros()
skipped_batches = skipped_in_a_row = 0  # non-finite losses skipped (nonfinite_loss=skip)
all_zero_layers: list[str] = []  # sparse layers seen with no nonzero weight
model.train()
while step < max_steps:
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
                if cfg["nonfinite_loss"] == "stop":
                    last = newest_checkpoint()
                    accelerator.print(
                        f"error: the loss is {loss.item()} at optimizer step {step + 1} (on at least "
                        f"one rank); stopping. Last good checkpoint: "
                        f"{last or 'none (checkpoint_every=0)'}; lower optim.lr, set optim.grad_clip, "
                        f"or set nonfinite_loss=skip to skip such batches.", file=sys.stderr)
                    shut_down()
                    sys.exit(3)
                skipped_batches += 1
                skipped_in_a_row += 1
                if skipped_in_a_row > len(train_loader):  # a whole epoch of them: give up
                    accelerator.print(f"error: {skipped_in_a_row} batches in a row had a non-finite "
                                      f"loss at optimizer step {step + 1}; stopping",
                                      file=sys.stderr)
                    shut_down()
                    sys.exit(3)
                optimizer.zero_grad()
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
            row = {"step": step,
                   "loss": (totals[0] / (cfg["log_every"] * cfg["grad_accum_steps"] * accelerator.num_processes)).item(),
                   "accuracy": (totals[1] / totals[2].clamp(min=1)).item(),
                   "lr": scheduler.get_last_lr()[0], "density": sparsity.density(),
                   "mask_updates": len(mask_update_steps), **dst_statistics()}
            running_loss, running_correct, running_seen = zeros()
            accelerator.log({f"train/{k}": v for k, v in row.items() if k != "step"}, step=step)
            progress.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.2f}")
            if main:
                with open(log_path, "a", newline="") as f:
                    csv.writer(f).writerow([row[k] for k in log_fields])
        if cfg["checkpoint_every"] and step % cfg["checkpoint_every"] == 0 and step < max_steps:
            save_checkpoint(step)
        if step >= max_steps:
            break
progress.close()

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
shut_down()
