"""Shared fixtures: small data the tests make themselves (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synthetic_ucf101(tmp_path_factory) -> Path:
    """Root of a tiny synthetic dataset in the UCF101 layout (read-only: copy it to alter it).

    3 classes (MoveDown, MoveLeft, MoveRight) x 6 videos, groups g01-g02 test and g03-g06
    train (12 train, 6 test videos), 16 frames of 64x48 at 25 fps, MPEG-4 in AVI, seed 0.
    """
    from vidsparse.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("synthetic_ucf101")
    make_synthetic(root, classes=3, videos_per_class=6, frames=16, size=(64, 48))
    return root


@pytest.fixture(scope="session")
def synthetic_kinetics(tmp_path_factory) -> Path:
    """Root of a tiny synthetic dataset in the Kinetics layout (read-only: copy it to alter it).

    3 classes ("move down", "move left", "move right") x 4 videos: 9 train, 3 validate (video
    0 of each class), nested ``<split>/<label>/<id>_<start>_<end>.mp4`` H.264 files of 16
    frames of 64x48 at 25 fps, ``annotations/{train,validate}.csv``, seed 0.
    """
    from vidsparse.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("synthetic_kinetics")
    make_synthetic(root, layout="kinetics", classes=3, videos_per_class=4, frames=16,
                   size=(64, 48))
    return root
