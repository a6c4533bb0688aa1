"""Temporal corruptions: which source frame each output frame shows.

Both corruptions here keep the clip length ``T``: a frame that is lost or frozen is replaced
by a held copy of another frame, as a player does when a stream stalls, so a model's clip
sampler and the dataset's frame counts stay valid. Each is a map ``t -> source index``
applied with one ``index_select``; pixels are never modified.
"""

from __future__ import annotations

import numpy as np
import torch

from vidsparse.corruptions import _ops
from vidsparse.corruptions.registry import register_corruption

# Yi et al. 2021 ("Benchmarking the robustness of spatial-temporal models against
# corruptions", Mini Kinetics-C "frame_rate"): the video is re-timed to 20, 16, 12, 9 and 6
# fps from Kinetics' nominal 30 fps. We keep the same fraction of frames.
FRAME_RATE_FPS = (20, 16, 12, 9, 6)
FRAME_RATE_SOURCE_FPS = 30
FRAME_DROP_RATE = tuple(1 - fps / FRAME_RATE_SOURCE_FPS for fps in FRAME_RATE_FPS)
DROP_PATTERNS = ("random", "uniform")

# Schiappa et al. 2023 ("Large-scale robustness analysis of video action recognition
# models", "freeze"): the clip shows only k randomly chosen frames, each held until the next,
# with k = 40%, 20%, 10%, 5% of T and a single frame at severity 5. Their code also floors
# severity 4 at 2 frames; we drop that floor so k never grows with severity on short clips.
FREEZE_SHOWN_FRACTION = (0.4, 0.2, 0.1, 0.05, 0.0)


@register_corruption("frame_drop", kind="temporal")
def frame_drop(video, severity, rng, *, pattern="random"):
    """Drops frames and holds the previous one in their place; ``T`` is unchanged.

    ``pattern="random"``: each frame after the first is lost independently with probability
    1/3, 7/15, 0.6, 0.7, 0.8 (severities 1-5), like frames lost in transmission.
    ``pattern="uniform"``: the kept frames are evenly spaced at the same rate, i.e. Yi et al.'s
    frame-rate reduction to 20/16/12/9/6 of 30 fps, shown at the original frame rate.
    The first frame is always kept: there is nothing earlier to hold.
    """
    _ops.check_choice("pattern", pattern, DROP_PATTERNS)
    t = video.shape[0]
    if pattern == "random":
        keep = rng.random(t) >= FRAME_DROP_RATE[severity - 1]
    else:  # output frame j of the slower video is source frame floor(j * 30 / fps)
        keep = np.zeros(t, dtype=bool)
        kept = np.arange(t) * FRAME_RATE_SOURCE_FPS // FRAME_RATE_FPS[severity - 1]
        keep[kept[kept < t]] = True
    keep[0] = True
    return video.index_select(0, _hold_last(keep).to(video.device))


@register_corruption("freeze", kind="temporal")
def freeze(video, severity, rng):
    """Shows only k random frames of the clip, each frozen until the next; ``T`` is unchanged.

    k = max(1, round(f * T)) with f = 0.4, 0.2, 0.1, 0.05 and k = 1 at severity 5 (the whole
    clip is one frame). Frames before the first chosen one show it, so the length is kept
    (Schiappa et al.'s code shortens the clip instead).
    """
    t = video.shape[0]
    shown = max(1, round(FREEZE_SHOWN_FRACTION[severity - 1] * t))
    anchors = np.zeros(t, dtype=bool)
    anchors[rng.choice(t, size=shown, replace=False)] = True
    first = int(np.argmax(anchors))
    anchors[0] = True  # so every frame has an earlier anchor; then point the lead-in at `first`
    index = _hold_last(anchors)
    index[:first] = first
    return video.index_select(0, index.to(video.device))


def _hold_last(keep: np.ndarray) -> torch.Tensor:
    """For each frame, the index of the most recent kept frame at or before it (keep[0] is True)."""
    positions = torch.from_numpy(np.where(keep, np.arange(len(keep)), 0))
    return torch.cummax(positions, dim=0).values
