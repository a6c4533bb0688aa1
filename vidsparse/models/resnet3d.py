"""3D ResNets: torchvision's video ResNets and a tiny one for CPU training."""

from __future__ import annotations

import torch
import torch.nn as nn
from vidsparse.models.registry import register_model


class BasicBlock3d(nn.Module):
    """Two 3x3x3 convolutions with a residual connection (He et al. 2016, in 3D)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv3d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(out_ch)
        self.conv2 = nn.Conv3d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm3d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TinyResNet3d(nn.Module):
    """A small 3D ResNet that trains on two CPU cores in minutes.

    Same shape of network as R3D-18 (stem, residual stages, global pooling, linear head)
    with one block per stage and narrow channels.
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 32, 64), in_chans: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(in_chans, widths[0], (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2), bias=False),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, in_ch = [], widths[0]
        for i, w in enumerate(widths):
            stages.append(BasicBlock3d(in_ch, w, stride=1 if i == 0 else 2))
            in_ch = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model("r3d_tiny", family="3d-cnn", input_size=(8, 56, 56), head=["fc"],
                test_input=(8, 56, 56), test_kwargs={})
def r3d_tiny(num_classes: int = 400, **kwargs) -> nn.Module:
    return TinyResNet3d(num_classes=num_classes, **kwargs)


@register_model("r3d_18", family="3d-cnn", input_size=(16, 112, 112), head=["fc"],
                test_input=(4, 32, 32), test_kwargs={})
def r3d_18(num_classes: int = 400, **kwargs) -> nn.Module:
    from torchvision.models import video as tv_video  # here: vidsparse imports without torchvision

    # weights=None: nothing is downloaded at run time.
    return tv_video.r3d_18(weights=None, num_classes=num_classes, **kwargs)
