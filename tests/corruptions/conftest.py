"""Small clips for the corruption tests: tiny, so the whole folder runs in seconds on one core."""

import numpy as np
import pytest

T, H, W = 12, 32, 48


def moving_square_clip(frames: int = T, height: int = H, width: int = W) -> np.ndarray:
    """Mid-grey gradient with a bright square moving right: every frame differs, nothing saturates."""
    y, x = np.mgrid[0:height, 0:width]
    background = 60 + 100 * (x / width) + 40 * (y / height)
    clip = np.repeat(background[None, ..., None], 3, axis=-1).repeat(frames, axis=0)
    clip[..., 1] *= 0.8
    for t in range(frames):
        left = 2 + 2 * t
        clip[t, 8:18, left:left + 10] = (210, 180, 150)
    return clip.round().astype(np.uint8)


@pytest.fixture
def clip() -> np.ndarray:
    return moving_square_clip()


@pytest.fixture
def static_clip() -> np.ndarray:
    """Every frame identical: any frame-to-frame change in the output comes from the corruption."""
    return np.repeat(moving_square_clip()[:1], T, axis=0)
