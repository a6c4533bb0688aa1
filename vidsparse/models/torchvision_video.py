"""torchvision's video models (``torchvision.models.video``) and tiny versions of them.

Nothing is downloaded: every builder passes ``weights=None`` or calls the model class.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import torch.nn as nn
from torchvision.models import video as tv_video
from torchvision.models.video.mvit import MSBlockConfig
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D

from vidsparse.models.registry import ClipSpec, register_model, smallest_input


class NarrowVideoResNet(tv_video.VideoResNet):
    """torchvision's ``VideoResNet`` with caller-chosen stage widths.

    ``VideoResNet`` fixes its widths at 64-128-256-512; this keeps its stages, blocks,
    ``conv_makers`` and forward and only lets ``widths`` vary. ``stem()`` must output
    ``widths[0]`` channels.
    """

    def __init__(self, block, conv_makers, layers: Sequence[int], stem, widths: Sequence[int],
                 num_classes: int = 400):
        # Skip VideoResNet.__init__ (hard-coded widths); its _make_layer and forward are reused.
        nn.Module.__init__(self)
        self.inplanes = widths[0]
        self.stem = stem()
        for i, (conv, width, depth) in enumerate(zip(conv_makers, widths, layers)):
            layer = self._make_layer(block, conv, width, depth, stride=1 if i == 0 else 2)
            setattr(self, f"layer{i + 1}", layer)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)
        # VideoResNet's initialisation.
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


def _r2plus1d_stem(width: int) -> nn.Sequential:
    # torchvision's R2Plus1dStem (3 -> 45 -> 64, spatial then temporal) at any width;
    # 45/64 keeps its ratio of hidden to output channels.
    mid = max(1, width * 45 // 64)
    return nn.Sequential(
        nn.Conv3d(3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, (3, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


def _mvit_v2_blocks(depths: Sequence[int], dims: Sequence[int], heads: Sequence[int],
                    kv_stride: int) -> list[MSBlockConfig]:
    """MViTv2 blocks in the per-stage form of Li et al. 2022 (MViTv2), Table 1.

    The first block of each later stage widens the channels and halves the query grid
    in H and W; the key/value pooling stride starts at ``kv_stride`` and halves with each
    stage, so keys and values keep the same grid size throughout.
    ``depths=(1, 2, 11, 2), dims=(96, 192, 384, 768), heads=(1, 2, 4, 8), kv_stride=8``
    is torchvision's ``mvit_v2_s``.
    """
    blocks, dim_in = [], dims[0]
    for stage, (depth, dim, num_heads) in enumerate(zip(depths, dims, heads)):
        kv = max(1, kv_stride >> stage)
        for i in range(depth):
            q = 2 if stage > 0 and i == 0 else 1
            blocks.append(MSBlockConfig(num_heads=num_heads, input_channels=dim_in,
                                        output_channels=dim, kernel_q=[3, 3, 3],
                                        kernel_kv=[3, 3, 3], stride_q=[1, q, q],
                                        stride_kv=[1, kv, kv]))
            dim_in = dim
    return blocks


def _mvit_v2(blocks: list[MSBlockConfig], num_classes: int, frames: int, size: int,
             **kwargs) -> nn.Module:
    # MViT is built for one clip size: its token grid (clip size // patch stride) and the
    # relative position tables sized from it are fixed at construction and forward assumes
    # that grid, so a size the patch stride does not divide would fail deep inside forward.
    # The class token and the rel_pos_{t,h,w} tables are nn.Parameters, not layers.
    stride = kwargs.get("patch_embed_stride", (2, 4, 4))
    if frames % stride[0] or size % stride[1]:
        raise ValueError(f"MViT: frames must be a multiple of {stride[0]} and size of "
                         f"{stride[1]} (the patch stride), got frames={frames}, size={size}")
    kwargs.setdefault("stochastic_depth_prob", 0.2)  # torchvision's mvit_v2_s
    return tv_video.MViT(spatial_size=(size, size), temporal_size=frames, block_setting=blocks,
                         residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True,
                         proj_after_attn=True, num_classes=num_classes, **kwargs)


def _s3d_clip(model: nn.Module) -> ClipSpec:
    # S3D's features map a side n to floor(ceil(n / a) / 2): padded strided layers (a = 4
    # in time, 16 in space), then an unpadded 2x2x2 max pool. The fixed average pool needs
    # its window in that map.
    kt, kh, kw = model.avgpool.kernel_size
    return ClipSpec(low=(smallest_input(2 * kt, 4), smallest_input(2 * kh, 16),
                         smallest_input(2 * kw, 16)),
                    hint="for shorter or smaller clips, build it with smaller frames= "
                         "and size= (the pool is sized from them)")


def _mvit_clip(model: nn.Module) -> ClipSpec:
    # The patch grid is fixed at construction; a side n gives floor((n + 2p - k) / s) + 1
    # patches, so each grid length g is reached by s consecutive clip lengths.
    conv, enc = model.conv_proj, model.pos_encoding
    grid = (enc.temporal_size, *enc.spatial_size)
    low = tuple(max(1, (g - 1) * s + k - 2 * p)
                for g, k, s, p in zip(grid, conv.kernel_size, conv.stride, conv.padding))
    high = tuple(lo + s - 1 for lo, s in zip(low, conv.stride))
    return ClipSpec(low=low, high=high, hint="MViT's patch grid is fixed when it is built: "
                                             "build it with frames= and size= matching the clip")


@register_model("mc3_18", family="3d-cnn", input_size=(16, 112, 112), head=["fc"],
                test_input=(2, 16, 16), test_kwargs={})
def mc3_18(num_classes: int = 400, **kwargs) -> nn.Module:
    return tv_video.mc3_18(weights=None, num_classes=num_classes, **kwargs)


@register_model("r2plus1d_18", family="3d-cnn", input_size=(16, 112, 112), head=["fc"],
                test_input=(2, 32, 32), test_kwargs={})
def r2plus1d_18(num_classes: int = 400, **kwargs) -> nn.Module:
    return tv_video.r2plus1d_18(weights=None, num_classes=num_classes, **kwargs)


@register_model("r2plus1d_tiny", family="3d-cnn", input_size=(8, 56, 56), head=["fc"],
                test_input=(2, 32, 32), test_kwargs={})
def r2plus1d_tiny(num_classes: int = 400, widths: Sequence[int] = (16, 32, 64, 128)) -> nn.Module:
    return NarrowVideoResNet(BasicBlock, [Conv2Plus1D] * 4, [1, 1, 1, 1],
                             partial(_r2plus1d_stem, widths[0]), widths, num_classes)


@register_model("s3d", family="3d-cnn", input_size=(16, 224, 224), head=["classifier"],
                test_input=(16, 32, 32), test_kwargs={"frames": 16, "size": 32},
                clip=_s3d_clip)
def s3d(num_classes: int = 400, frames: int = 16, size: int = 224, **kwargs) -> nn.Module:
    model = tv_video.s3d(weights=None, num_classes=num_classes, **kwargs)
    # S3D averages a fixed (2, 7, 7) window, the last feature map of a 16x224x224 clip
    # (time is downsampled 8x, space 32x). Sizing it from the clip lets smaller clips run;
    # rounding down keeps it inside the map for other sizes. At 16x224 it is unchanged.
    kernel = (max(1, frames // 8), max(1, size // 32), max(1, size // 32))
    model.avgpool = nn.AvgPool3d(kernel, stride=1)
    return model


# Swin3D pads the clip to whole patches and shrinks its windows to fit small clips, so it
# runs at any clip size; its relative_position_bias_table is an nn.Parameter, not a layer.
@register_model("swin3d_t", family="transformer", input_size=(16, 224, 224), head=["head"],
                test_input=(2, 16, 16), test_kwargs={})
def swin3d_t(num_classes: int = 400, **kwargs) -> nn.Module:
    return tv_video.swin3d_t(weights=None, num_classes=num_classes, **kwargs)


@register_model("swin3d_tiny", family="transformer", input_size=(8, 56, 56), head=["head"],
                test_input=(2, 16, 16), test_kwargs={})
def swin3d_tiny(num_classes: int = 400, **kwargs) -> nn.Module:
    # swin3d_t's patch and window; a quarter of its width and shallower stages.
    return tv_video.SwinTransformer3d(patch_size=[2, 4, 4], embed_dim=24, depths=[2, 2, 2, 2],
                                      num_heads=[1, 2, 4, 8], window_size=[8, 7, 7],
                                      stochastic_depth_prob=0.1, num_classes=num_classes, **kwargs)


@register_model("mvit_v2_s", family="transformer", input_size=(16, 224, 224), head=["head"],
                test_input=(2, 32, 32), test_kwargs={"frames": 2, "size": 32},
                clip=_mvit_clip)
def mvit_v2_s(num_classes: int = 400, frames: int = 16, size: int = 224, **kwargs) -> nn.Module:
    # Built from the class, not tv_video.mvit_v2_s, which fixes the clip at 16x224x224.
    blocks = _mvit_v2_blocks((1, 2, 11, 2), (96, 192, 384, 768), (1, 2, 4, 8), kv_stride=8)
    return _mvit_v2(blocks, num_classes, frames, size, **kwargs)


@register_model("mvit_tiny", family="transformer", input_size=(8, 56, 56), head=["head"],
                test_input=(2, 16, 16), test_kwargs={"frames": 2, "size": 16},
                clip=_mvit_clip)
def mvit_tiny(num_classes: int = 400, frames: int = 8, size: int = 56, **kwargs) -> nn.Module:
    blocks = _mvit_v2_blocks((1, 1, 1, 1), (24, 48, 96, 192), (1, 2, 4, 8), kv_stride=4)
    return _mvit_v2(blocks, num_classes, frames, size, **kwargs)
