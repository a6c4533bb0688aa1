"""Multi-view testing end to end: dataset views, score averaging, and the training recipe."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from vidsparse.data import UCF101, VideoTransform, multi_view_clip_indices, read_frames
from vidsparse.models.scoring import clip_scores

ROOT = Path(__file__).resolve().parents[2]


def test_test_split_returns_clips_times_crops_views(synthetic_ucf101):
    raw = UCF101(synthetic_ucf101, split="test", frames_per_clip=4, sampling_rate=2, num_clips=3)
    views, label = raw[0]
    path, expected_label = raw.samples[0]
    assert label == expected_label
    clips = multi_view_clip_indices(raw.num_frames(0), 4, 2, 3)
    assert views.shape == (3, 4, 48, 64, 3)
    for view, indices in zip(views, clips):
        assert torch.equal(view, torch.from_numpy(read_frames(path, indices)))
    ds = UCF101(synthetic_ucf101, split="test", frames_per_clip=4, sampling_rate=2, num_clips=3,
                transform=VideoTransform(crop_size=32, resize=40, num_crops=3))
    assert ds[0][0].shape == (9, 3, 4, 32, 32)
    train = UCF101(synthetic_ucf101, split="train", frames_per_clip=4, num_clips=3)
    assert train[0][0].shape == (4, 48, 64, 3)  # training always takes one clip


def test_clip_scores_average_softmax_over_views():
    class Fixed(torch.nn.Module):
        def forward(self, x):  # logits from the first pixel of each view
            return torch.stack([x[:, 0, 0, 0, 0], -x[:, 0, 0, 0, 0]], dim=1)

    clips = torch.zeros(1, 2, 3, 1, 1, 1)
    clips[0, 0, 0] = 2.0
    clips[0, 1, 0] = -1.0
    scores = clip_scores(Fixed(), clips)
    expected = (torch.tensor([2.0, -2.0]).softmax(0) + torch.tensor([-1.0, 1.0]).softmax(0)) / 2
    assert torch.allclose(scores[0], expected)
    single = torch.zeros(1, 3, 1, 1, 1)
    assert torch.equal(clip_scores(Fixed(), single), Fixed()(single))


def test_training_recipe_evaluates_with_multi_view(synthetic_ucf101, tmp_path):
    out = tmp_path / "mv"
    proc = subprocess.run(
        [sys.executable, "recipes/train.py", "--config", "recipes/configs/r3d_tiny_set.yaml",
         f"output_dir={out}", f"data.root={synthetic_ucf101}", "max_steps=2", "batch_size=2",
         "data.num_clips=2", "data.num_crops=3"],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "final" / "run.json").read_text())
    assert 0.0 <= result["test_accuracy"] <= 1.0 and "on 6 videos" in proc.stdout + proc.stderr
