"""Write the synthetic motion dataset (real video files) in the UCF101 or Kinetics layout.

    python data_tools/make_synthetic.py --out data/synthetic
    python data_tools/make_synthetic.py --out data/synthetic_kinetics --layout kinetics
    python data_tools/make_synthetic.py --out /tmp/s --classes 8 --videos-per-class 12 --seed 1
    python data_tools/make_synthetic.py --out /tmp/hard --videos-per-class 140 --spread 56.25

Classes differ only by motion (MoveDown, MoveLeft, ..., ZoomOut; in the Kinetics layout
labelled "move down", "move left", ...). With --spread each video travels in its class's
direction turned by up to that many degrees, so that past 45 some videos are ambiguous and
the best possible accuracy is below 100% (the summary prints it). See
``vidsparse/data/synthetic.py`` for how the videos are made.
"""

from __future__ import annotations

import argparse

from vidsparse.data.synthetic import (
    DEFAULT_FPS,
    DEFAULT_FRAMES,
    DEFAULT_SIZE,
    LAYOUTS,
    MOTIONS,
    SyntheticConfigError,
    make_synthetic,
)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write (created if missing)")
    parser.add_argument("--layout", default="ucf101", choices=LAYOUTS.names(),
                        help="ucf101: AVI + ucfTrainTestlist/ (default); kinetics: MP4 + "
                             "annotations/{train,validate}.csv")
    parser.add_argument("--classes", type=int, default=4,
                        help=f"number of motion classes, 1..{len(MOTIONS)} (default 4)")
    parser.add_argument("--videos-per-class", type=int, default=24, help="(default 24)")
    parser.add_argument("--seed", type=int, default=0, help="appearance seed (default 0)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                        help=f"frames per video (default {DEFAULT_FRAMES})")
    parser.add_argument("--width", type=int, default=DEFAULT_SIZE[0],
                        help=f"even (default {DEFAULT_SIZE[0]})")
    parser.add_argument("--height", type=int, default=DEFAULT_SIZE[1],
                        help=f"even (default {DEFAULT_SIZE[1]})")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"(default {DEFAULT_FPS:g})")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="turn each video's direction of travel by a random angle of up to "
                             "this many degrees, 0..180; past 45 the translations overlap and no "
                             "model can reach 100%% (default 0)")
    return parser, parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    parser, args = parse_args(argv)
    try:
        summary = make_synthetic(
            args.out, layout=args.layout, classes=args.classes,
            videos_per_class=args.videos_per_class, seed=args.seed, frames=args.frames,
            size=(args.width, args.height), fps=args.fps, progress=True, spread=args.spread,
        )
    except SyntheticConfigError as err:
        # err.option is the keyword name; the command line spells it with dashes.
        parser.error(f"--{err.option.replace('_', '-')}: {str(err).split(': ', 1)[1]}")
    print(summary)


if __name__ == "__main__":
    main()
