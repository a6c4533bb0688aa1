"""Training clips per second at UCF101 size: vidsparse's dataset vs pytorchvideo's.

    python benchmarks/bench_loader.py [--videos N] [--rounds R] [--workers 0,1,2] [--quick]

Both loaders read the same AVI files (MPEG-4 Part 2, as UCF101 ships; by default a
synthetic UCF101-layout set generated in a temporary folder: 175 frames of 320x240 at
25 fps, UCF101's median length and its size) and make the same training item, I3D-style:

- **ours**: ``vidsparse.data.build_dataset`` + ``build_transform`` from a config's ``data``
  section (``frames_per_clip: 8, sampling_rate: 8, resize: 256, crop_size: 224``): a random
  clip of 8 frames taken every 8th frame, short side resized to 256 (bilinear, antialiased),
  a random 224 crop, normalised float32 ``C x T x H x W``. Only the 8 frames are converted
  to RGB.
- **peer**: pytorchvideo's ``LabeledVideoDataset`` with its PyAV decoder (``decoder="pyav"``,
  no audio) and ``make_clip_sampler("random", 64 / 25)``. The sampler is time-based: a
  random 64/25 s window at 25 fps, which is the 64 frames that 8 frames every 8 cover,
  and the dataset returns *every* frame of that window (float32, ``C x T x H x W``). Its
  transform does what pytorchvideo's recipes do, written here with torch ops because
  ``pytorchvideo.transforms`` does not import with current torchvision: keep 8 evenly
  spaced frames of the window (``UniformTemporalSubsample(8)``), divide by 255, resize the
  short side to 256 (``ShortSideScale``: bilinear), a random 224 crop, normalise with the
  same mean and std.

Each item is one random clip of one video; a pass draws ``(batches + 1) x batch`` items
from the training videos (cycled when there are fewer videos), the first batch being the
warm-up (worker start, file cache), not timed. For each DataLoader worker count the two
loaders alternate within a round (the order flips every round) and the table gives the
median clips/s over the rounds with its range, and the median of the per-round ratios
ours / peer (above 1: ours is faster). Torch runs one intra-op thread in every process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # vidsparse need not be installed
from vidsparse.data import build_dataset, build_transform, make_synthetic  # noqa: E402
from vidsparse.data.transforms import KINETICS_MEAN, KINETICS_STD  # noqa: E402

FPS = 25


def our_loader(cfg: dict, items: int, batch_size: int, workers: int) -> DataLoader:
    """vidsparse's training dataset from the ``data`` section ``cfg``, ``items`` per pass."""
    ds = build_dataset(cfg, "train", build_transform(cfg, train=True))
    order = [i % len(ds) for i in torch.randperm(items).tolist()]
    return DataLoader(ds, batch_size=batch_size, sampler=order, num_workers=workers)


class PeerTransform:
    """pytorchvideo's I3D training transform on its dict items (see the module docstring)."""

    def __init__(self, frames: int, resize: int, crop: int):
        self.frames, self.resize, self.crop = frames, resize, crop
        self.mean = torch.tensor(KINETICS_MEAN).view(-1, 1, 1, 1)
        self.std = torch.tensor(KINETICS_STD).view(-1, 1, 1, 1)

    def __call__(self, item: dict) -> dict:
        video = item["video"]  # float32 C x T x H x W in [0, 255]: every frame of the window
        keep = torch.linspace(0, video.shape[1] - 1, self.frames).round().long()
        x = video.index_select(1, keep) / 255.0
        height, width = x.shape[-2:]
        scale = self.resize / min(height, width)
        size = (round(height * scale), round(width * scale))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        top = int(torch.randint(0, size[0] - self.crop + 1, ()))
        left = int(torch.randint(0, size[1] - self.crop + 1, ()))
        x = x[..., top:top + self.crop, left:left + self.crop]
        return {"video": (x - self.mean) / self.std, "label": item["label"]}


def peer_loader(paths: list[tuple[str, int]], cfg: dict, items: int, batch_size: int,
                workers: int) -> DataLoader:
    """pytorchvideo's LabeledVideoDataset (PyAV decoder) over ``items`` entries of ``paths``."""
    from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler
    from pytorchvideo.data.labeled_video_paths import LabeledVideoPaths

    listed = [paths[i % len(paths)] for i in range(items)]
    window = Fraction(cfg["frames_per_clip"] * cfg["sampling_rate"], FPS)
    ds = LabeledVideoDataset(LabeledVideoPaths(listed), make_clip_sampler("random", window),
                             transform=PeerTransform(cfg["frames_per_clip"], cfg["resize"],
                                                     cfg["crop_size"]),
                             decode_audio=False, decoder="pyav")
    return DataLoader(ds, batch_size=batch_size, num_workers=workers)


def clips_per_second(loader: DataLoader) -> tuple[float, tuple[int, ...]]:
    """Clips/s over one pass after its first batch, and the shape of a batch's clips."""
    it = iter(loader)
    first = next(it)  # warm-up: not timed
    shape = tuple((first[0] if isinstance(first, (list, tuple)) else first["video"]).shape)
    start, count = time.perf_counter(), 0
    for batch in it:
        count += len(batch[1] if isinstance(batch, (list, tuple)) else batch["label"])
    seconds = time.perf_counter() - start
    if count == 0:
        raise SystemExit("bench_loader: a pass needs at least two batches (--batches >= 1)")
    return count / seconds, shape


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="UCF101-layout root (default: generate a synthetic one)")
    parser.add_argument("--videos", type=int, default=12,
                        help="synthetic videos to generate, split over 2 classes (default 12)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--workers", default="0,1,2", help="DataLoader worker counts")
    parser.add_argument("--batches", type=int, default=6, help="timed batches per pass")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 4 short 160x120 videos, resize 128, crop 112, "
                             "2 timed batches, 1 round, workers 0,1")
    args = parser.parse_args(argv)
    frames, size = 175, (320, 240)
    cfg = {"layout": "ucf101", "frames_per_clip": 8, "sampling_rate": 8, "resize": 256,
           "crop_size": 224, "hflip": False}
    if args.quick:
        args.videos, args.rounds, args.batches = 4, 1, 2
        args.workers = "0,1" if args.workers == parser.get_default("workers") else args.workers
        frames, size = 80, (160, 120)
        cfg.update(resize=128, crop_size=112)
    if args.videos < 4 or args.rounds < 1 or args.batches < 1 or args.batch_size < 1:
        parser.error("--videos must be >= 4 (2 classes, 2 or more videos each); --rounds, "
                     "--batches and --batch-size >= 1")
    workers = [int(w) for w in args.workers.split(",")]
    torch.set_num_threads(1)
    items = (args.batches + 1) * args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or tmp
        if args.data is None:
            make_synthetic(root, classes=2, videos_per_class=args.videos // 2, frames=frames,
                           size=size, fps=FPS)
        cfg["root"] = root
        train = build_dataset(cfg, "train")
        paths = [(str(p), label) for p, label in train.samples]
        made = (f"synthetic, {len(paths)} training videos of {frames} frames, "
                f"{size[0]}x{size[1]} at {FPS} fps")
        print(f"data: {args.data or made}; "
              f"clip {cfg['frames_per_clip']} frames every {cfg['sampling_rate']}, short side "
              f"{cfg['resize']}, crop {cfg['crop_size']}; batch {args.batch_size}, "
              f"{args.batches} timed batches per pass, {args.rounds} round(s)")
        rates: dict[tuple[str, int], list[float]] = {}
        ratios: dict[int, list[float]] = {w: [] for w in workers}
        shapes = {}
        for r in range(args.rounds):
            for w in workers:
                got = {}
                for name in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
                    loader = (our_loader(cfg, items, args.batch_size, w) if name == "ours"
                              else peer_loader(paths, cfg, items, args.batch_size, w))
                    got[name], shapes[name] = clips_per_second(loader)
                    rates.setdefault((name, w), []).append(got[name])
                ratios[w].append(got["ours"] / got["peer"])
    if shapes["ours"] != shapes["peer"]:
        raise SystemExit(f"bench_loader: the loaders' clips differ in shape: ours "
                         f"{shapes['ours']}, peer {shapes['peer']}")
    print(f"batch of clips: {list(shapes['ours'])} (B x C x T x H x W)")

    def rate(value: float) -> str:  # three significant figures down to 0.1 clips/s
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"

    def cell(values: list[float]) -> str:
        median = rate(statistics.median(values))
        if len(values) == 1:
            return median
        return f"{median} ({rate(min(values))}–{rate(max(values))})"

    print("\n| workers | ours clips/s | pytorchvideo clips/s | ours / pytorchvideo |\n"
          "|---:|---:|---:|---:|")
    for w in workers:
        rat = ratios[w]
        span = f" ({min(rat):.2f}–{max(rat):.2f})" if len(rat) > 1 else ""
        print(f"| {w} | {cell(rates['ours', w])} | {cell(rates['peer', w])} | "
              f"{statistics.median(rat):.2f}{span} |")


if __name__ == "__main__":
    main()
