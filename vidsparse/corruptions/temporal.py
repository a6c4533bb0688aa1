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


# Schiappa et al. 2023, "sampling" / "reverse_sampling": keep every r-th frame and show each r
# times (reversed for reverse_sampling), r = 2, 4, 8, 16, 32. Their output is ceil(T/r) * r
# frames long; we cut it to T.
SAMPLING_RATE = (2, 4, 8, 16, 32)
# Schiappa et al. 2023, "jumble": frames are shuffled within consecutive segments of
# 64 // 2**s = 32, 16, 8, 4, 2 frames. "box_jumble": the clip is cut into segments of
# (s + 1)**2 = 4, 9, 16, 25, 36 frames whose order is shuffled. Both are frame counts (their
# clips were 4 x 32 = 128 frames).
JUMBLE_SEGMENT = (32, 16, 8, 4, 2)
BOX_JUMBLE_SEGMENT = (4, 9, 16, 25, 36)
# Yi et al. 2021, Mini Kinetics-C "motion_blur" (a temporal blur): frame t is the mean of the
# 2c frames t-c .. t+c-1 with c = 3, 5, 7, 9, 11 (Mini SSv2-C uses 1, 2, 3, 4, 6).
TEMPORAL_BLUR_HALF_WINDOW = (3, 5, 7, 9, 11)


@register_corruption("frame_rate", kind="temporal")
def frame_rate(video, severity, rng):
    """Re-times the clip from 30 fps to 20, 16, 12, 9, 6 fps (Yi et al.): ``T`` SHRINKS.

    Output frame j is source frame floor(j * 30 / fps), for every j that falls inside the
    clip: ``T' = ceil(T * fps / 30)`` frames. ``frame_drop(pattern="uniform")`` keeps ``T``
    by holding frames instead.
    """
    fps = FRAME_RATE_FPS[severity - 1]
    kept = -(-video.shape[0] * fps // FRAME_RATE_SOURCE_FPS)
    index = torch.arange(kept) * FRAME_RATE_SOURCE_FPS // fps
    return video.index_select(0, index.to(video.device))


@register_corruption("sampling", kind="temporal")
def sampling(video, severity, rng):
    """Every r-th frame held r times, r = 2, 4, 8, 16, 32 (Schiappa et al.); ``T`` is kept."""
    return video.index_select(0, _sampled(video.shape[0], severity).to(video.device))


@register_corruption("reverse_sampling", kind="temporal")
def reverse_sampling(video, severity, rng):
    """``sampling`` played backwards (Schiappa et al.); ``T`` is kept."""
    return video.index_select(0, _sampled(video.shape[0], severity).flip(0).to(video.device))


@register_corruption("jumble", kind="temporal")
def jumble(video, severity, rng):
    """Frames shuffled within segments of 32, 16, 8, 4, 2 frames (Schiappa et al.); ``T`` kept.

    A segment is at most the clip. The shuffle is redrawn if it would leave every frame in place.
    """
    t = video.shape[0]
    seg = min(JUMBLE_SEGMENT[severity - 1], t)
    return video.index_select(0, _not_identity(
        lambda: np.concatenate([start + rng.permutation(min(seg, t - start))
                                for start in range(0, t, seg)]), t).to(video.device))


@register_corruption("box_jumble", kind="temporal")
def box_jumble(video, severity, rng):
    """Segments of 4, 9, 16, 25, 36 frames in shuffled order (Schiappa et al.); ``T`` kept.

    A segment is at most ceil(T / 4) frames, so even a short clip has four segments to
    reorder; the order is redrawn if it would be unchanged.
    """
    t = video.shape[0]
    seg = max(1, min(BOX_JUMBLE_SEGMENT[severity - 1], -(-t // 4)))
    boxes = [np.arange(start, min(start + seg, t)) for start in range(0, t, seg)]
    return video.index_select(0, _not_identity(
        lambda: np.concatenate([boxes[i] for i in rng.permutation(len(boxes))]), t).to(video.device))


@register_corruption("temporal_motion_blur", kind="temporal")
def temporal_motion_blur(video, severity, rng):
    """Each frame is the mean of the 2c frames t-c .. t+c-1, c = 3, 5, 7, 9, 11 (Yi et al.).

    Frames beyond the clip's ends repeat the first / last frame, so ``T`` is kept (Yi et al.
    drop the first and last c frames instead). Exact integer mean, rounded half up. Distinct
    from the spatial ``motion_blur`` (a streak within each frame).
    """
    c = TEMPORAL_BLUR_HALF_WINDOW[severity - 1]
    t = video.shape[0]
    index = torch.arange(-c, t + c).clamp(0, t - 1).to(video.device)
    padded = video.index_select(0, index).to(torch.int64)
    sums = torch.cat([torch.zeros_like(padded[:1]), padded.cumsum(0)])
    window = sums[2 * c:2 * c + t] - sums[:t]  # frames t-c .. t+c-1
    return ((window + c) // (2 * c)).to(torch.uint8)


def _sampled(t: int, severity: int) -> torch.Tensor:
    rate = SAMPLING_RATE[severity - 1]
    return torch.arange(t) // rate * rate


def _not_identity(draw, t: int) -> torch.Tensor:
    """``draw()`` (a permutation of range(t)) redrawn while it is the identity (if t > 1)."""
    order = draw()
    while t > 1 and np.array_equal(order, np.arange(t)):
        order = draw()
    return torch.from_numpy(np.asarray(order, dtype=np.int64))
