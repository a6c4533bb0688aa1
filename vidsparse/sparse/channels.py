"""Channel groups: output channels that can leave a model whole, and the smaller model after.

A channel of a layer's output can be removed for real (the tensor gets narrower) when
everything that reads it treats channels one by one until it reaches layers that mix them:

    conv_a -> BatchNorm -> ReLU -> [depthwise conv -> BatchNorm -> SE -> SiLU] -> conv_c
    fc1 -> GELU -> Dropout -> fc2

``find_channel_groups`` traces the model with torch.fx and keeps every Conv/Linear whose
output follows such a path only: each such path is a :class:`ChannelGroup`. Outputs that
reach a residual addition, a concatenation, a reshape or the model's output are left
alone, so the groups of a ResNet are the inner channels of its blocks.

During training (``SparsityConfig.channel_sparsity``) the engine empties a removed channel:
the producer's rows and the consumers' columns leave the mask, and the norm's scale and shift
(and any bias on the path) are held at zero, so the channel carries an exact zero through
the activations (all of them map 0 to 0). :func:`shrink` then cuts those channels out and
gives a physically smaller dense model with the same outputs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ChannelGroup", "channel_scores", "channels_to_remove", "find_channel_groups", "shrink"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# Modules and functions that act on each element alone and map 0 to 0; pooling also keeps
# channels apart when they sit on dimension 1 (convolutions), not on the last (Linear).
_POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.Hardswish, nn.Tanh, nn.ELU,
              nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
          nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
          nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_POINTWISE_NAMES = {"Swish"}  # pytorchvideo's x * sigmoid(x)
_POINTWISE_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.silu, F.gelu, F.leaky_relu, F.hardswish,
                        torch.tanh, F.dropout}
_POOL_FUNCTIONS = {F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d,
                   F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d}
_POINTWISE_METHODS = {"relu", "relu_", "tanh", "contiguous"}


@dataclass(frozen=True)
class ChannelGroup:
    """The output channels of ``producer`` and every module that reads them.

    Attributes:
        producer: module name of the Conv/Linear whose output channels are removed.
        channels: its number of output channels.
        norms: BatchNorm modules on the path (their scale and shift follow the channels).
        depthwise: depthwise convolutions on the path (one filter per channel).
        gates: squeeze-excitation modules on the path, as (module, reduce conv, expand conv).
        consumers: Conv/Linear modules that take these channels as input.
    """

    producer: str
    channels: int
    norms: tuple[str, ...] = ()
    depthwise: tuple[str, ...] = ()
    gates: tuple[tuple[str, str, str], ...] = ()
    consumers: tuple[str, ...] = ()

    @property
    def weights(self) -> dict[str, int]:
        """``{weight name: dimension holding the channels}`` for every weight that changes
        shape when channels go (producer rows, depthwise filters, consumer columns)."""
        out = {f"{self.producer}.weight": 0}
        out.update({f"{name}.weight": 0 for name in self.depthwise})
        out.update({f"{name}.weight": 1 for name in self.consumers})
        return out


def _gate_parts(module: nn.Module) -> tuple[str, str] | None:
    """(reduce, expand) conv names of a squeeze-excitation module ``x * sigmoid(expand(act(
    reduce(pool(x)))))``, as pytorchvideo and torchvision write it; None for anything else."""
    block = getattr(module, "block", None)
    if isinstance(block, nn.Sequential) and len(block) == 4 and isinstance(block[0], _CONV) \
            and isinstance(block[2], _CONV) and isinstance(block[3], nn.Sigmoid):
        return "block.0", "block.2"
    if isinstance(getattr(module, "fc1", None), _CONV) and isinstance(getattr(module, "fc2", None), _CONV) \
            and type(module).__name__ == "SqueezeExcitation":
        return "fc1", "fc2"
    return None


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, module: nn.Module, name: str) -> bool:
        # Subclasses count too: torchvision's Conv3DSimple is an nn.Conv3d.
        return (isinstance(module, (*_CONV, nn.Linear, *_NORM, *_POINTWISE, *_POOLS))
                or _gate_parts(module) is not None or type(module).__name__ in _POINTWISE_NAMES
                or super().is_leaf_module(module, name))


def _is_depthwise(module: nn.Module, channels: int) -> bool:
    return isinstance(module, _CONV) and module.groups == module.in_channels == module.out_channels == channels


def find_channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """Every :class:`ChannelGroup` of ``model``, in the order of the traced graph.

    A model torch.fx cannot trace has no groups found (a ``ValueError`` says why), and so
    has a layer called more than once (its channels would be cut for every call).
    """
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # fx raises many types on dynamic control flow
        raise ValueError(f"channel groups need a model torch.fx can trace; tracing "
                         f"{type(model).__name__} failed: {exc}") from exc
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    groups = []
    for node in graph.nodes:
        if node.op != "call_module" or calls[node.target] != 1:
            continue
        producer = modules[node.target]
        if isinstance(producer, _CONV) and producer.groups == 1:
            kind, channels = "conv", producer.out_channels
        elif isinstance(producer, nn.Linear):
            kind, channels = "linear", producer.out_features
        else:
            continue
        group = _follow(node, node.target, kind, channels, modules, calls)
        if group is not None:
            groups.append(group)
    return groups


def _follow(start, name, kind, channels, modules, calls) -> ChannelGroup | None:
    """Walk the users of ``start``; the group, or None where the channels reach anything
    other than channel-wise modules and consumers."""
    norms, depthwise, gates, consumers = [], [], [], []
    frontier, seen = [start], {start}
    while frontier:
        node = frontier.pop()
        for user in node.users:
            if user in seen:
                continue
            seen.add(user)
            if user.op == "call_module":
                if user.args[:1] != (node,):
                    return None
                module = modules[user.target]
                # A parameterless module (an activation used twice) may serve other calls too;
                # a module with weights must serve this group alone, or cutting it breaks them.
                if calls[user.target] != 1 and any(True for _ in module.parameters()):
                    return None
                if kind == "conv" and isinstance(module, _CONV) and module.groups == 1 \
                        and module.in_channels == channels:
                    consumers.append(user.target)
                    continue
                if kind == "linear" and isinstance(module, nn.Linear) and module.in_features == channels:
                    consumers.append(user.target)
                    continue
                if kind == "conv" and isinstance(module, _NORM) and module.num_features == channels \
                        and module.affine:
                    norms.append(user.target)
                elif kind == "conv" and _is_depthwise(module, channels):
                    depthwise.append(user.target)
                elif kind == "conv" and _gate_parts(module) is not None:
                    gates.append((user.target, *(f"{user.target}.{p}" for p in _gate_parts(module))))
                elif not (isinstance(module, _POINTWISE) or type(module).__name__ in _POINTWISE_NAMES
                          or (kind == "conv" and isinstance(module, _POOLS))):
                    return None
            elif user.op == "call_function" and user.args[:1] == (node,) and (
                    user.target in _POINTWISE_FUNCTIONS or (kind == "conv" and user.target in _POOL_FUNCTIONS)):
                pass
            elif user.op == "call_method" and user.target in _POINTWISE_METHODS and user.args[:1] == (node,):
                pass
            else:  # an addition, a concatenation, a reshape, the output: the channels must stay
                return None
            frontier.append(user)
    if not consumers or channels < 2:
        return None
    return ChannelGroup(name, channels, tuple(norms), tuple(depthwise), tuple(gates), tuple(consumers))


def channels_to_remove(channels: int, share: float, multiple: int = 8) -> int:
    """How many of ``channels`` to remove for a removed ``share``, leaving a count that is a
    multiple of ``multiple`` (rounded towards keeping more), and never all of them.

    CPU and GPU convolution kernels work on channel blocks of 8 or 16; a layer left with 45
    channels ran no faster than one with 64 in ``benchmarks/bench_channel.py``, one with 48 ran
    1.25x faster.
    """
    keep = channels - round(share * channels)
    if multiple > 1 and channels >= multiple:
        keep = max(-(-keep // multiple) * multiple, multiple)
    return max(0, min(channels - keep, channels - 1))


def channel_scores(model: nn.Module, group: ChannelGroup, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per output channel of ``group.producer``: the mean magnitude of its weights, pruned
    ones counted as zero (in the spirit of Chase's unmasked mean magnitude, Yin et al. 2023,
    *Dynamic Sparsity Is Channel-Level Sparsity Learner*): a channel with few and small
    weights left scores low."""
    weight = model.get_submodule(group.producer).weight.detach()
    if mask is not None:
        weight = weight * mask
    return weight.abs().reshape(group.channels, -1).float().mean(1)


@torch.no_grad()
def shrink(model: nn.Module, groups: list[ChannelGroup], alive: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with the removed channels cut out.

    ``alive`` maps a group's producer name to a bool vector over its channels (True: kept);
    groups without an entry keep all their channels. Every module of a group is replaced by
    a narrower one of the same class holding the kept slices (weights, biases, norm
    statistics); the copy is a plain dense model. Its outputs equal ``model``'s wherever the
    removed channels carry zeros, as the engine keeps them (weights of the producer rows, and
    norm scale and shift, at zero).
    """
    small = copy.deepcopy(model)
    for group in groups:
        keep_mask = alive.get(group.producer)
        if keep_mask is None or bool(keep_mask.all()):
            continue
        keep = keep_mask.nonzero().flatten().to(torch.long)
        if keep.numel() == 0:
            raise ValueError(f"channel group {group.producer}: every channel was removed")
        _replace(small, group.producer, _narrow(small.get_submodule(group.producer), keep, out=True))
        for name in group.norms:
            _replace(small, name, _narrow_norm(small.get_submodule(name), keep))
        for name in group.depthwise:
            _replace(small, name, _narrow(small.get_submodule(name), keep, out=True, depthwise=True))
        for _, reduce, expand in group.gates:
            _replace(small, reduce, _narrow(small.get_submodule(reduce), keep, out=False))
            _replace(small, expand, _narrow(small.get_submodule(expand), keep, out=True))
        for name in group.consumers:
            _replace(small, name, _narrow(small.get_submodule(name), keep, out=False))
    return small


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _narrow(module: nn.Module, keep: torch.Tensor, out: bool, depthwise: bool = False) -> nn.Module:
    """A copy of a Conv/Linear keeping output (``out``) or input channels ``keep``."""
    new = copy.copy(module)  # same class and hyper-parameters; tensors replaced below
    new._parameters = dict(module._parameters)
    new._buffers = {k: v for k, v in module._buffers.items() if not k.endswith("_mask")}
    n = keep.numel()
    weight = module.weight.detach()
    if depthwise:
        weight = weight.index_select(0, keep)
        new.in_channels = new.out_channels = new.groups = n
    elif out:
        weight = weight.index_select(0, keep)
        if isinstance(module, nn.Linear):
            new.out_features = n
        else:
            new.out_channels = n
    else:
        weight = weight.index_select(1, keep)
        if isinstance(module, nn.Linear):
            new.in_features = n
        else:
            new.in_channels = n
    new.weight = nn.Parameter(weight.clone(), requires_grad=module.weight.requires_grad)
    if module.bias is not None and (out or depthwise):
        new.bias = nn.Parameter(module.bias.detach().index_select(0, keep).clone(),
                                requires_grad=module.bias.requires_grad)
    new.__dict__.pop("density", None)
    return new


def _narrow_norm(norm: nn.Module, keep: torch.Tensor) -> nn.Module:
    new = copy.copy(norm)
    new._parameters = {k: None if v is None else nn.Parameter(v.detach().index_select(0, keep).clone(),
                                                               requires_grad=v.requires_grad)
                       for k, v in norm._parameters.items()}
    new._buffers = {k: v if v is None or v.dim() == 0 else v.index_select(0, keep).clone()
                    for k, v in norm._buffers.items()}
    new.num_features = keep.numel()
    return new
