"""The checks that turn a wrong call into an error or a warning instead of a silently
different run: option patterns that match no layer, an optimizer that lacks a masked weight
or was rebuilt behind the engine's back, and the wrong loop order (docs/ARCHITECTURE.md,
"The training step")."""

from __future__ import annotations

import difflib
import fnmatch
import warnings
import weakref
from typing import Sequence

import torch

from vidsparse.sparse.layers import PrunableTarget

__all__ = ["LoopGuard", "check_optimizer_holds", "check_patterns"]


def check_patterns(option: str, patterns: Sequence[str], names: list[str], filtered: bool) -> None:
    """Raise ``ValueError`` for a glob pattern of ``SparsityConfig.<option>`` that matches none
    of the prunable weight ``names``, naming the nearest names. Without this a typo would
    silently train those layers at the distribution's density."""
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(n, pattern) for n in names):
            continue
        near = difflib.get_close_matches(pattern, names, n=5, cutoff=0.4)
        module_names = {n.rsplit(".", 1)[0] for n in names}
        hint = ""
        if pattern in module_names or any(fnmatch.fnmatchcase(m, pattern) for m in module_names):
            hint = f"; patterns match parameter names: try {pattern + '.*'!r}"
        raise ValueError(
            f"SparsityConfig.{option} pattern {pattern!r} matches no prunable layer"
            + (" that filter_fn accepts" if filtered else "") + hint
            + f"; nearest names: {near or names[:5]} ({len(names)} prunable weights, "
            "names as in model.named_parameters())")


def check_optimizer_holds(targets: list[PrunableTarget], optimizer: torch.optim.Optimizer) -> None:
    """Raise ``ValueError`` if a masked weight is not in ``optimizer``: the engine counts steps
    with a hook on that optimizer, and a weight no optimizer moves cannot be regrown usefully."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    outside = [t.name for t in targets if id(t.param) not in held]
    if outside:
        raise ValueError(f"DynamicSparsity: {len(outside)} prunable weight(s) are not in the "
                         f"optimizer's param groups (first: {outside[:3]}); build the optimizer "
                         "over model.parameters() before DynamicSparsity, or leave those "
                         "layers out with filter_fn")


class LoopGuard:
    """Watches the training loop around ``sparsity.step()``.

    * ``on_optimizer_step`` (from the optimizer's post-hook) remembers one gradient as the
      optimizer left it; ``check_order`` (in a ``step()`` that follows a real step) warns
      once if it changed since: a ``zero_grad`` or a new backward ran in between.
    * ``settled`` records the weights' version counters after the engine changed them;
      ``check_unmoved`` (in a ``step()`` with no real step) raises if they moved and a pruned
      weight is no longer zero: another optimizer is updating the model.
    """

    def __init__(self, targets: list[PrunableTarget]):
        self.targets = targets
        self._grad = None  # (target index, weakref to its .grad, its version)
        self._versions: list[int] = []
        self._warned = False

    def on_optimizer_step(self) -> None:
        self._grad = None
        for index, target in enumerate(self.targets):
            grad = target.param.grad
            if grad is not None:
                self._grad = (index, weakref.ref(grad), grad._version)
                break

    def forget_step(self) -> None:
        """The remembered gradient no longer belongs to the next ``step()`` (after a load)."""
        self._grad = None

    def settled(self) -> None:
        # In-place changes bump a tensor's version counter: how check_unmoved tells that
        # something other than the hooked optimizer moved the weights.
        self._versions = [t.param._version for t in self.targets]

    def check_order(self) -> None:
        if self._grad is None or self._warned:
            return
        index, ref, version = self._grad
        grad = self.targets[index].param.grad
        if grad is not None and grad is ref() and grad._version == version:
            return
        self._warned = True
        warnings.warn(
            "DynamicSparsity.step() ran after the gradients changed since the last "
            "optimizer.step() (a zero_grad() or a new backward in between). The loop order is "
            "loss.backward(); optimizer.step(); sparsity.step(); optimizer.zero_grad(). "
            "Otherwise pruned weights take an optimizer step before they are zeroed again, so "
            "the forward pass sees them (close to dense training), and RigL-type updates score "
            "regrowth by the wrong gradient. Warned once.", RuntimeWarning, stacklevel=3)

    @torch.no_grad()
    def check_unmoved(self) -> None:
        if [t.param._version for t in self.targets] == self._versions:
            return
        # Changed in place: by an optimizer the hook does not see, or by a load of weights
        # that respect the masks (then nothing is wrong). A pruned weight that is no longer
        # zero tells the two apart.
        for t in self.targets:
            if bool(t.param.detach().masked_select(~t.mask).any()):
                raise RuntimeError(
                    f"DynamicSparsity: pruned weights of {t.name} are no longer zero, but the "
                    "optimizer the engine follows has not stepped since the last "
                    "sparsity.step(): another optimizer is updating the model (rebuilt after "
                    "DynamicSparsity was built?). Call sparsity.attach_optimizer(new_optimizer) "
                    "after rebuilding it; without that, DST stops and pruned weights grow back")
        self.settled()
