"""pytorchvideo's video CNNs (X3D, Slow and I3D ResNet-50, CSN) and tiny versions of them.

Nothing is downloaded: the factories build untrained models and the hub builder is called
with ``pretrained=False``. Configurations follow ``pytorchvideo.models.hub``.
"""

from __future__ import annotations

import math
import warnings

import torch.nn as nn

from vidsparse.models.registry import ClipSpec, register_model, smallest_input


def _pytorchvideo():
    """pytorchvideo's model builders, imported on first use.

    Imported here rather than at module level so that ``import vidsparse`` (and every model
    that is not from pytorchvideo) works where pytorchvideo is not installed, e.g. a GPU
    machine with only torch; building one of these models there raises ImportError.
    """
    with warnings.catch_warnings():
        # pytorchvideo 0.1.5 decorates helpers with torch.jit.script, which torch 2.x
        # deprecates; the warning concerns pytorchvideo's code, not ours.
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated",
                                category=FutureWarning)
        import pytorchvideo.models.csn
        import pytorchvideo.models.hub
        import pytorchvideo.models.resnet
        import pytorchvideo.models.x3d
    return pytorchvideo.models


def _head_pool(frames: int, size: int, temporal_stride: int) -> tuple[int, int, int]:
    # pytorchvideo's ResNet heads average a fixed window, the last feature map of the clip
    # size they were published for (slow_r50: (8, 7, 7) at 8x224x224). Computing it from the
    # clip lets other sizes build; the rounding is create_x3d's: time down (stage-1 pooling
    # floors), space up (padded strided convs, 32x in all, round up).
    return (max(1, frames // temporal_stride), math.ceil(size / 32), math.ceil(size / 32))


def _head_kernel(model: nn.Module) -> tuple[int, int, int]:
    pool = model.blocks[-1].pool
    pool = getattr(pool, "pool", pool)  # X3D's head wraps its pool in a ProjectedPool
    return tuple(int(k) for k in pool.kernel_size)


def _pooled_clip(time_stride: int, time_floor: bool = False):
    """The clips a model with a fixed head pool runs: those leaving at least its window.

    Space is downsampled 32x by padded strided layers (a side ``n`` becomes
    ``ceil(n / 32)``); time by ``time_stride`` the same way, or, with ``time_floor``, by
    I3D's unpadded (2, 1, 1) max pool (``n`` becomes ``n // 2``). Larger clips run too:
    the window slides and the head averages its outputs.
    """
    def spec(model: nn.Module) -> ClipSpec:
        kt, kh, kw = _head_kernel(model)
        t = time_stride * kt if time_floor else smallest_input(kt, time_stride)
        return ClipSpec(low=(t, smallest_input(kh, 32), smallest_input(kw, 32)),
                        hint="for shorter or smaller clips, build it with smaller frames= "
                             "and size= (the head pool is sized from them)")
    return spec


def _x3d(num_classes: int, frames: int, size: int, **kwargs) -> nn.Module:
    # create_x3d sizes its head pool from the clip itself. Its default head applies a
    # softmax in forward; models here return logits.
    kwargs.setdefault("head_activation", None)
    # nn.SiLU is pytorchvideo's Swish (x * sigmoid(x), no parameters, so checkpoints load)
    # without its custom backward, which uses the deprecated ctx.saved_variables.
    kwargs.setdefault("inner_act", nn.SiLU)
    return _pytorchvideo().x3d.create_x3d(input_clip_length=frames, input_crop_size=size,
                                          model_num_class=num_classes, **kwargs)


def _slow(num_classes: int, frames: int, size: int, **kwargs) -> nn.Module:
    # hub.slow_r50's configuration; the hub builder itself fixes the head pool at (8, 7, 7).
    return _pytorchvideo().resnet.create_resnet(model_depth=50, stem_conv_kernel_size=(1, 7, 7),
                                                head_pool_kernel_size=_head_pool(frames, size, 1),
                                                model_num_class=num_classes, **kwargs)


def _i3d(num_classes: int, frames: int, size: int, **kwargs) -> nn.Module:
    # I3D pools time 2x after stage 1.
    return _pytorchvideo().hub.i3d_r50(pretrained=False,
                                       head_pool_kernel_size=_head_pool(frames, size, 2),
                                       model_num_class=num_classes, **kwargs)


@register_model("x3d_xs", family="3d-cnn", input_size=(4, 160, 160), head=["blocks.5.proj"],
                test_input=(2, 32, 32), test_kwargs={"frames": 2, "size": 32},
                clip=_pooled_clip(1))
def x3d_xs(num_classes: int = 400, frames: int = 4, size: int = 160, **kwargs) -> nn.Module:
    return _x3d(num_classes, frames, size, **kwargs)


@register_model("x3d_s", family="3d-cnn", input_size=(13, 160, 160), head=["blocks.5.proj"],
                test_input=(2, 32, 32), test_kwargs={"frames": 2, "size": 32},
                clip=_pooled_clip(1))
def x3d_s(num_classes: int = 400, frames: int = 13, size: int = 160, **kwargs) -> nn.Module:
    return _x3d(num_classes, frames, size, **kwargs)


@register_model("x3d_m", family="3d-cnn", input_size=(16, 224, 224), head=["blocks.5.proj"],
                test_input=(2, 32, 32), test_kwargs={"frames": 2, "size": 32},
                clip=_pooled_clip(1))
def x3d_m(num_classes: int = 400, frames: int = 16, size: int = 224, **kwargs) -> nn.Module:
    return _x3d(num_classes, frames, size, **kwargs)


@register_model("x3d_tiny", family="3d-cnn", input_size=(8, 56, 56), head=["blocks.5.proj"],
                test_input=(2, 32, 32), test_kwargs={"frames": 2, "size": 32},
                clip=_pooled_clip(1))
def x3d_tiny(num_classes: int = 400, frames: int = 8, size: int = 56, **kwargs) -> nn.Module:
    # X3D-S/M/XS at half their width (width_factor 2.0), less than half their depth
    # (depth_factor 2.2) and a quarter of their head width (2048).
    kwargs = {"width_factor": 1.0, "depth_factor": 1.0, "head_dim_out": 512, **kwargs}
    return _x3d(num_classes, frames, size, **kwargs)


@register_model("slow_r50", family="3d-cnn", input_size=(8, 224, 224), head=["blocks.5.proj"],
                test_input=(2, 16, 16), test_kwargs={"frames": 2, "size": 16},
                clip=_pooled_clip(1))
def slow_r50(num_classes: int = 400, frames: int = 8, size: int = 224, **kwargs) -> nn.Module:
    return _slow(num_classes, frames, size, **kwargs)


@register_model("slow_tiny", family="3d-cnn", input_size=(8, 56, 56), head=["blocks.5.proj"],
                test_input=(2, 16, 16), test_kwargs={"frames": 2, "size": 16},
                clip=_pooled_clip(1))
def slow_tiny(num_classes: int = 400, frames: int = 8, size: int = 56, stem_dim_out: int = 8,
              **kwargs) -> nn.Module:
    # slow_r50 with every width divided by 8 (stages 32-64-128-256 channels).
    return _slow(num_classes, frames, size, stem_dim_out=stem_dim_out, **kwargs)


@register_model("i3d_r50", family="3d-cnn", input_size=(8, 224, 224), head=["blocks.6.proj"],
                test_input=(4, 16, 16), test_kwargs={"frames": 4, "size": 16},
                clip=_pooled_clip(2, time_floor=True))
def i3d_r50(num_classes: int = 400, frames: int = 8, size: int = 224, **kwargs) -> nn.Module:
    return _i3d(num_classes, frames, size, **kwargs)


@register_model("i3d_tiny", family="3d-cnn", input_size=(8, 56, 56), head=["blocks.6.proj"],
                test_input=(4, 16, 16), test_kwargs={"frames": 4, "size": 16},
                clip=_pooled_clip(2, time_floor=True))
def i3d_tiny(num_classes: int = 400, frames: int = 8, size: int = 56, stem_dim_out: int = 8,
             **kwargs) -> nn.Module:
    # i3d_r50 with every width divided by 8.
    return _i3d(num_classes, frames, size, stem_dim_out=stem_dim_out, **kwargs)


@register_model("csn_r101", family="3d-cnn", input_size=(32, 224, 224), head=["blocks.5.proj"],
                test_input=(16, 16, 16), test_kwargs={"frames": 16, "size": 16},
                clip=_pooled_clip(8))
def csn_r101(num_classes: int = 400, frames: int = 32, size: int = 224, **kwargs) -> nn.Module:
    # hub.csn_r101's configuration (the hub builder fixes the head pool at (4, 7, 7));
    # time is downsampled 8x by stages 2-4.
    return _pytorchvideo().csn.create_csn(model_depth=101, stem_pool=nn.MaxPool3d,
                                          head_pool_kernel_size=_head_pool(frames, size, 8),
                                          model_num_class=num_classes, **kwargs)
