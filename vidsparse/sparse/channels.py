"""Channel groups: output channels that can leave a model whole, and the smaller model after.

A channel of a layer's output can be removed for real (the tensor gets narrower) when
everything that reads it treats channels one by one until it reaches layers that mix them:

    conv_a -> BatchNorm -> ReLU -> [depthwise conv -> BatchNorm -> SE -> SiLU] -> conv_c
    fc1 -> GELU -> Dropout -> fc2

and, through residual additions (``residual=True``), when every layer that writes into the
sum drops the same channels: in a ResNet stage the stem (or the downsampling shortcut) and
the last conv of every block write the residual stream, and the first conv of every block
(and the next stage's shortcut) read it.

``find_channel_groups`` traces the model with torch.fx and collects such channels into
:class:`ChannelGroup` s. Channels that reach a concatenation, a reshape, the model's input or
its output are left alone.

During training (``SparsityConfig.channel_sparsity``) the engine empties a removed channel:
the producers' rows and the consumers' columns leave the mask, and the norms' scale and shift
(and any bias on the path) are held at zero, so the channel carries an exact zero through
the activations and additions (all of them map 0 to 0). :func:`shrink` then cuts those
channels out and gives a physically smaller dense model with the same outputs.
"""

from __future__ import annotations

import copy
import operator
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
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_"}


@dataclass(frozen=True)
class ChannelGroup:
    """Output channels that leave together, and every module that writes or reads them.

    Attributes:
        producer: module name of the first Conv/Linear writing the channels; it names the
            group (``DynamicSparsity.alive``, ``channel_stats()``).
        channels: number of channels.
        norms: BatchNorm modules on the way (their scale and shift follow the channels).
        depthwise: depthwise convolutions on the way (one filter per channel).
        gates: squeeze-excitation modules on the way, as (module, reduce conv, expand conv).
        consumers: Conv/Linear modules that take these channels as input.
        coupled: further Conv/Linear modules whose outputs are added to the producer's (the
            writers of a residual stream); they lose the same channels.
    """

    producer: str
    channels: int
    norms: tuple[str, ...] = ()
    depthwise: tuple[str, ...] = ()
    gates: tuple[tuple[str, str, str], ...] = ()
    consumers: tuple[str, ...] = ()
    coupled: tuple[str, ...] = ()

    @property
    def producers(self) -> tuple[str, ...]:
        return (self.producer, *self.coupled)

    @property
    def weights(self) -> dict[str, int]:
        """``{weight name: dimension holding the channels}`` for every weight that changes
        shape when channels go (producer rows, depthwise filters, consumer columns)."""
        out = {f"{name}.weight": 0 for name in (*self.producers, *self.depthwise)}
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


def find_channel_groups(model: nn.Module, residual: bool = False) -> list[ChannelGroup]:
    """Every :class:`ChannelGroup` of ``model``, in the order of their first producer.

    Tensors that carry the same channels (a layer's output, its norm, its activation, and,
    with ``residual``, every tensor summed with it) form one class; a class becomes a group
    when Conv/Linear layers produce it and read it, and nothing else that fixes its channels
    (the model's input or output, a concatenation, a reshape, an unknown operation) touches
    it. With ``residual=False`` (default) residual streams stay whole: only channels that
    meet no addition can go, as in the inner channels of a ResNet block.

    A model torch.fx cannot trace raises ``ValueError``; a layer with weights called more
    than once is never part of a group (its channels would be cut for every call).
    """
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # fx raises many types on dynamic control flow
        raise ValueError(f"channel groups need a model torch.fx can trace; tracing "
                         f"{type(model).__name__} failed: {exc}") from exc
    classes = _ChannelClasses(dict(model.named_modules()), graph, residual)
    return classes.groups()


class _ChannelClasses:
    """Union-find over the traced graph's nodes: nodes in one class carry the same channels.

    Every node records its layout: ``conv`` (channels on dimension 1 of a clip or feature
    map), ``linear`` (channels on the last dimension) or ``flat`` (a ``[batch, channels]``
    matrix, both at once). Layers that read a class check that it has the layout they act on.
    """

    def __init__(self, modules: dict[str, nn.Module], graph: torch.fx.Graph, residual: bool):
        self.modules = modules
        self.parent: dict[torch.fx.Node, torch.fx.Node] = {}
        self.layout: dict[torch.fx.Node, str | None] = {}
        self.blocked: set[torch.fx.Node] = set()
        # (node whose class the role belongs to, role, module name, channels, layouts it needs)
        self.roles: list[tuple[torch.fx.Node, str, object, int, tuple[str, ...]]] = []
        self.order: dict[torch.fx.Node, int] = {}
        calls: dict[str, int] = {}
        for node in graph.nodes:
            if node.op == "call_module":
                calls[node.target] = calls.get(node.target, 0) + 1
        for index, node in enumerate(graph.nodes):
            self.order[node] = index
            if node.op == "call_module":
                self._module(node, calls[node.target])
            elif node.op in ("call_function", "call_method"):
                self._function(node, residual)
            else:  # the input, the output, constants: their channels are fixed
                self._block(node, *node.all_input_nodes)

    def find(self, node: torch.fx.Node) -> torch.fx.Node:
        root = node
        while self.parent.get(root, root) is not root:
            root = self.parent[root]
        while node is not root:
            node, self.parent[node] = self.parent[node], root
        return root

    def _join(self, node: torch.fx.Node, source: torch.fx.Node, needs: tuple[str, ...] = ()) -> None:
        """``node`` carries ``source``'s channels in the same layout (one of ``needs``, if given)."""
        layout = self.layout.get(source)
        if needs and layout not in needs:
            self._block(node, source)
            return
        self.layout[node] = layout
        self.parent[self.find(node)] = self.find(source)

    def _block(self, *nodes: torch.fx.Node) -> None:
        self.blocked.update(nodes)

    def _module(self, node: torch.fx.Node, calls: int) -> None:
        module = self.modules[node.target]
        x = node.args[0] if node.args else None
        # A parameterless module (an activation used twice) may serve other calls too; a
        # module with weights must serve one class alone, or cutting it breaks the others.
        if not isinstance(x, torch.fx.Node) or len(node.all_input_nodes) != 1 \
                or (calls != 1 and any(True for _ in module.parameters())):
            self._block(node, *node.all_input_nodes)
            return
        name = node.target
        if isinstance(module, _CONV) and module.groups == 1:
            self.roles.append((x, "consumers", name, module.in_channels, ("conv",)))
            self.roles.append((node, "producers", name, module.out_channels, ()))
            self.layout[node] = "conv"
        elif isinstance(module, nn.Linear):
            self.roles.append((x, "consumers", name, module.in_features, ("linear", "flat")))
            self.roles.append((node, "producers", name, module.out_features, ()))
            self.layout[node] = "linear"
        elif isinstance(module, _NORM) and module.affine:
            self._join(node, x, ("conv", "flat"))
            self.roles.append((node, "norms", name, module.num_features, ()))
        elif isinstance(module, _CONV) and module.groups == module.in_channels == module.out_channels:
            self._join(node, x, ("conv",))
            self.roles.append((node, "depthwise", name, module.out_channels, ()))
        elif _gate_parts(module) is not None:
            self._join(node, x, ("conv",))
            reduce, expand = _gate_parts(module)
            gate = (name, f"{name}.{reduce}", f"{name}.{expand}")
            self.roles.append((node, "gates", gate, module.get_submodule(reduce).in_channels, ()))
        elif isinstance(module, _POINTWISE) or type(module).__name__ in _POINTWISE_NAMES:
            self._join(node, x)
        elif isinstance(module, _POOLS):
            self._join(node, x, ("conv",))
        elif isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1 \
                and self._pooled_to_one(x):
            self._join(node, x, ("conv",))
            self.layout[node] = "flat"
        else:
            self._block(node, x)

    def _function(self, node: torch.fx.Node, residual: bool) -> None:
        x = node.args[0] if node.args else None
        inputs = node.all_input_nodes
        alone = isinstance(x, torch.fx.Node) and inputs == [x]
        target = node.target
        if alone and (target in _POINTWISE_FUNCTIONS or target in _POINTWISE_METHODS):
            self._join(node, x)
        elif alone and target in _POOL_FUNCTIONS:
            self._join(node, x, ("conv",))
        elif alone and target in (torch.flatten, "flatten") and self._flattens_channels(node):
            self._join(node, x, ("conv",))
            self.layout[node] = "flat"
        elif alone and target in (torch.permute, "permute") and self._moves_channels_last(node):
            self._join(node, x, ("conv",))  # pytorchvideo's heads, before their Linear
            self.layout[node] = "linear"
        elif residual and target in _ADD and len(node.args) == 2 and not node.kwargs \
                and all(isinstance(a, torch.fx.Node) for a in node.args):
            a, b = node.args
            if self.layout.get(a) is None or self.layout.get(a) != self.layout.get(b):
                self._block(node, a, b)
            else:  # a sum of two tensors whose removed channels are zero is zero there
                self._join(node, a)
                self._join(node, b)
        else:  # a concatenation, a reshape, anything else: the channels must stay
            self._block(node, *inputs)

    def _flattens_channels(self, node: torch.fx.Node) -> bool:
        """``flatten(x, 1)`` of a clip pooled to one position: channels become features."""
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return start == 1 and end == -1 and self._pooled_to_one(node.args[0])

    @staticmethod
    def _moves_channels_last(node: torch.fx.Node) -> bool:
        """``x.permute(0, 2, ..., n - 1, 1)``: channels from dimension 1 to the last."""
        dims = node.args[1:] if len(node.args) > 2 else node.args[1] if len(node.args) == 2 \
            else node.kwargs.get("dims", ())
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else ()
        return len(dims) >= 3 and dims == (0, *range(2, len(dims)), 1)

    def _pooled_to_one(self, node: torch.fx.Node) -> bool:
        if node.op != "call_module":
            return False
        module = self.modules[node.target]
        size = getattr(module, "output_size", None)
        return isinstance(module, _POOLS) and size is not None and \
            all(s == 1 for s in (size if isinstance(size, tuple) else (size,)))

    def groups(self) -> list[ChannelGroup]:
        members: dict[torch.fx.Node, dict[str, list]] = {}
        invalid = {self.find(n) for n in self.blocked}
        channels: dict[torch.fx.Node, set[int]] = {}
        first: dict[torch.fx.Node, int] = {}  # class -> graph position of its first producer
        for node, role, name, count, needs in self.roles:  # roles are in graph order
            root = self.find(node)
            if role == "producers":
                first.setdefault(root, self.order[node])
            if needs and self.layout.get(node) not in needs:
                invalid.add(root)  # e.g. a Linear reading a clip acts on its width, not channels
            members.setdefault(root, {}).setdefault(role, []).append(name)
            channels.setdefault(root, set()).add(count)
        found = []
        for root, parts in members.items():
            producers = parts.get("producers", [])
            if root in invalid or not producers or not parts.get("consumers") \
                    or len(channels[root]) != 1 or min(channels[root]) < 2:
                continue
            found.append((first[root], ChannelGroup(
                producer=producers[0], channels=min(channels[root]), norms=tuple(parts.get("norms", ())),
                depthwise=tuple(parts.get("depthwise", ())), gates=tuple(parts.get("gates", ())),
                consumers=tuple(parts.get("consumers", ())), coupled=tuple(producers[1:]))))
        return [group for _, group in sorted(found, key=lambda item: item[0])]


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


def channel_scores(model: nn.Module, group: ChannelGroup) -> torch.Tensor:
    """Per channel of ``group``: the mean magnitude of the weights that write it (the rows
    of all its producers), pruned ones counted as zero (in the spirit of Chase's unmasked
    mean magnitude, Yin et al. 2023, *Dynamic Sparsity Is Channel-Level Sparsity Learner*): a
    channel with few and small weights left scores low. A producer's ``weight_mask`` buffer,
    where the engine put one, marks its pruned weights."""
    rows = []
    for name in group.producers:
        module = model.get_submodule(name)
        weight = module.weight.detach()
        mask = getattr(module, "weight_mask", None)
        if mask is not None:
            weight = weight * mask
        rows.append(weight.abs().reshape(group.channels, -1).float())
    return torch.cat(rows, 1).mean(1)


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
        for name in group.producers:
            _replace(small, name, _narrow(small.get_submodule(name), keep, out=True))
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
