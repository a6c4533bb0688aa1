"""Class scores of a video classifier for a batch of clips, single- or multi-view.

Training's test pass, the robustness evaluation, the spectral curves and the flip rate all
score clips the same way, so the rule lives here, next to the models.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def clip_scores(model: torch.nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """Class scores for a batch of clips.

    ``B x C x T x H x W`` gives the model's logits; multi-view ``B x V x C x T x H x W``
    (clips x crops) gives the softmax averaged over the V views, as the SlowFast /
    pytorchvideo multi-view protocol does. Either way ``argmax(dim=1)`` is the prediction.

    Example:
        >>> scores = clip_scores(model, torch.rand(2, 3, 8, 56, 56))   # B x num_classes
        >>> scores.argmax(dim=1)
        tensor([4, 1])
    """
    if clips.ndim == 6:
        batch, views = clips.shape[:2]
        logits = model(clips.flatten(0, 1))
        return logits.view(batch, views, -1).softmax(dim=-1).mean(dim=1)
    return model(clips)
