"""The model registry: ``create_model(name, num_classes=...)`` and ``list_models()``."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from vidsparse.registry import Registry

MODELS = Registry("model")

# Keys under which training frameworks nest a state dict (pytorchvideo/SlowFast use
# "model_state"; many scripts save {"state_dict": ...} or {"model": ...}).
_NESTED_KEYS = ("model_state", "state_dict", "model")


def register_model(name: str | None = None, **meta: Any) -> Callable:
    """Register a builder ``fn(num_classes=..., **kwargs) -> nn.Module`` under ``name``.

    Meta every builder gives: ``family`` (3d-cnn | transformer), ``input_size`` (the
    published T, H, W), ``head`` (parameter-name prefixes of the classifier, replaced when a
    checkpoint has another class count), ``test_input`` and ``test_kwargs`` (a small clip
    size and the builder arguments that make the model fast enough for CPU tests).
    Optional: ``clip``, a function of the built model returning the :class:`ClipSpec` of
    the T, H and W it can run; without it any T, H and W are accepted.
    """
    return MODELS.register(name, **meta)


@dataclass(frozen=True)
class ClipSpec:
    """The clips a built model accepts: ``B x channels x T x H x W``.

    ``low`` and ``high`` bound T, H and W (inclusive); ``None`` in ``high`` is no upper
    bound, and equal bounds mean the architecture fixes that size. ``channels`` left
    ``None`` is read from the model's first Conv3d. ``hint`` says how to build the model
    for clips outside the bounds.
    """

    low: tuple[int, int, int] = (1, 1, 1)
    high: tuple[int | None, int | None, int | None] = (None, None, None)
    channels: int | None = None
    hint: str = ""

    def fits(self, shape: Sequence[int]) -> bool:
        """True if a ``(T, H, W)`` lies within the bounds."""
        return all(lo <= n and (hi is None or n <= hi)
                   for n, lo, hi in zip(shape, self.low, self.high))

    def describe(self) -> str:
        """The accepted shape, e.g. ``(B, 3, T, H, W) with T >= 8 and H, W >= 193``."""
        dims, bounds = [], {}
        for letter, lo, hi in zip("THW", self.low, self.high):
            if lo == hi:
                dims.append(str(lo))
                continue
            dims.append(letter)
            if hi is not None:
                bounds.setdefault(f"{lo} <= {{}} <= {hi}", []).append(letter)
            elif lo > 1:
                bounds.setdefault(f"{{}} >= {lo}", []).append(letter)
        shape = f"(B, {self.channels}, {', '.join(dims)})"
        if not bounds:
            return shape
        return shape + " with " + " and ".join(form.format(", ".join(letters))
                                               for form, letters in bounds.items())


def smallest_input(feature: int, stride: int) -> int:
    """The smallest length ``n`` with ``ceil(n / stride) >= feature``.

    Padded strided convolutions and poolings map a length ``n`` to ``ceil(n / stride)``,
    so this is the shortest clip side that still leaves ``feature`` positions for a
    fixed-size pooling window at the end of such a network.
    """
    return stride * (max(1, int(feature)) - 1) + 1


class ClipCheck:
    """A forward pre-hook that refuses clips the model cannot run, naming the shape it takes.

    Without it a wrong clip fails deep inside the network (a convolution's channel count,
    a reshape, an unpack) with no word of what the model expected. A plain class rather
    than a closure so that models with it still pickle and deep-copy.
    """

    def __init__(self, name: str, spec: ClipSpec):
        self.name, self.spec = name, spec

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        x = args[0] if args else next(iter(kwargs.values()), None)
        # Not a tensor: a torch.fx Proxy while the model is traced inside a larger one, or
        # an input torch itself will refuse; there is no shape to check.
        if not isinstance(x, torch.Tensor):
            return
        if x.dim() == 5 and x.shape[1] == self.spec.channels and self.spec.fits(x.shape[2:]):
            return
        message = (f"{self.name} was built for clips of shape {self.spec.describe()}, "
                   f"got {tuple(x.shape)}")
        if x.dim() == 4:
            message += "; a single clip needs a batch dimension (clip.unsqueeze(0))"
        elif x.dim() == 5 and x.shape[1] == self.spec.channels and self.spec.hint:
            message += f"; {self.spec.hint}"
        raise ValueError(message)


def attach_clip_check_(model: nn.Module, name: str) -> ClipSpec:
    """Register :class:`ClipCheck` on ``model`` from the ``clip`` meta of ``name``.

    A forward pre-hook on the root adds no parameters or buffers (state dicts keep their
    keys) and is not run by ``torch.fx.symbolic_trace``, which traces ``forward`` itself.
    """
    spec = MODELS.meta(name).get("clip", lambda model: ClipSpec())(model)
    if spec.channels is None:
        first = next((m for m in model.modules() if isinstance(m, nn.Conv3d)), None)
        spec = replace(spec, channels=first.in_channels if first is not None else 3)
    model.register_forward_pre_hook(ClipCheck(name, spec), with_kwargs=True)
    return spec


def create_model(
    name: str, num_classes: int = 400, checkpoint: str | os.PathLike | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered video model; optionally load weights from a local file.

    Models take clips shaped ``B x C x T x H x W``; any other clip, or one whose T, H or W
    the architecture cannot run, raises ``ValueError`` naming the shape it takes (see
    :class:`ClipSpec`). ``checkpoint`` is a state dict saved by
    torchvision, pytorchvideo or vidsparse (safetensors, or a ``torch.save`` file read with
    ``weights_only=True``, so nothing in it is executed). If its class count differs from
    ``num_classes``, the classifier head is left freshly initialised; every other weight
    must match. Mask buffers of a sparse run (keys ending in ``_mask``) are ignored: the
    pruned weights are stored as zeros.

    Example:
        >>> model = vidsparse.create_model("r3d_18", num_classes=101)
        >>> model(torch.randn(2, 3, 16, 112, 112)).shape
        torch.Size([2, 101])
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"create_model({name!r}): num_classes must be a positive int, "
                         f"got {num_classes!r}")
    model = MODELS.get(name)(num_classes=num_classes, **kwargs)
    if checkpoint is not None:
        load_weights_(model, checkpoint, head=MODELS.meta(name).get("head", []))
    attach_clip_check_(model, name)
    return model


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return MODELS.names()


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a safetensors or ``torch.save`` file, without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle.UnpicklingError and friends: refuse, do not execute
            raise ValueError(f"checkpoint {path} is not a plain tensor state dict "
                             f"(weights_only load failed: {exc})") from exc
    for key in _NESTED_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"checkpoint {path} does not hold a state dict of tensors")
    # Weights saved from a DDP- or DataParallel-wrapped model carry a "module." prefix.
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights_(model: nn.Module, path: str | os.PathLike, head: list[str]) -> list[str]:
    """Load ``path`` into ``model``; return the head keys left at their fresh values."""
    state = read_state_dict(path)
    own = model.state_dict()
    # DynamicSparsity's mask buffers, saved with the weights by earlier versions or by a
    # user's torch.save(model.state_dict()): the pruned weights are already zeros.
    for key in [k for k in state if k.endswith("_mask") and k not in own]:
        del state[key]
    in_head = [k for k in own if any(k == p or k.startswith(p + ".") for p in head)]
    replaced = [k for k in in_head if k in state and state[k].shape != own[k].shape]
    for key in replaced:
        del state[key]
    missing = [k for k in own if k not in state and k not in replaced and not k.endswith("_mask")]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise ValueError(f"checkpoint {path} does not fit {type(model).__name__}: "
                         f"missing {missing[:3]}, unexpected {unexpected[:3]}, "
                         f"other shapes outside the head {mismatched[:3]}")
    model.load_state_dict(state, strict=False)
    return replaced
