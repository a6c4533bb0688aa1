"""Clip loading throughput per decoder and DataLoader worker count, measured in one run.

    python benchmarks/bench_decode.py [--data DIR] [--workers 0,2] [--epochs 2]

Loads every training clip of a UCF101-layout dataset (default: a synthetic one generated in
a temporary folder) through ``vidsparse.data.UCF101`` with the evaluation transform, for each
backend (pyav, decord) and worker count, and prints clips per second and the ratio to
pyav with 0 workers in the same run, as a markdown table. The first pass over the data is
discarded (warm-up: file cache, worker start).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from vidsparse.data import UCF101, VideoTransform, make_synthetic
from vidsparse.data.decode import BACKENDS


def clips_per_second(root, backend: str, workers: int, epochs: int, args) -> float:
    ds = UCF101(root, split="train", frames_per_clip=args.frames_per_clip,
                sampling_rate=args.sampling_rate, backend=backend,
                transform=VideoTransform(crop_size=56, resize=64, train=True))
    loader = DataLoader(ds, batch_size=8, num_workers=workers)
    for _ in loader:  # warm-up
        break
    start, count = time.perf_counter(), 0
    for epoch in range(epochs):
        ds.set_epoch(epoch + 1)
        for clips, _ in loader:
            count += len(clips)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="UCF101-layout root (default: generate a synthetic one)")
    parser.add_argument("--workers", default="0,2", help="DataLoader worker counts")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--epochs", type=int, default=2, help="timed passes over the data")
    parser.add_argument("--frames", type=int, default=64, help="frames per generated video")
    parser.add_argument("--frames-per-clip", type=int, default=8)
    parser.add_argument("--sampling-rate", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = tmp
            make_synthetic(root, classes=4, videos_per_class=16, frames=args.frames)
        print(f"data: {args.data or f'synthetic, 4 classes x 16 videos x {args.frames} frames'}"
              f"; clip {args.frames_per_clip} frames every {args.sampling_rate}")
        rows = []
        for backend in args.backends.split(","):
            for w in workers:
                rows.append((backend, w, clips_per_second(root, backend, w, args.epochs, args)))
    # The reference is pyav with 0 workers, or the first row where that was not run.
    base = next((rate for b, w, rate in rows if (b, w) == ("pyav", 0)), rows[0][2])
    print("\n| decoder | workers | clips/s | vs pyav/0 |\n|---|---:|---:|---:|")
    for backend, w, rate in rows:
        print(f"| {backend} | {w} | {rate:.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
