"""The engine inside Accelerate's loop (one CPU process): gradient accumulation, the
optimizer wrapper's state, and AMP-skipped steps count as docs/ARCHITECTURE.md "The training step" says.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.optimizer import AcceleratedOptimizer
from accelerate.state import AcceleratorState, GradientState

from vidsparse.sparse import UPDATERS, DynamicSparsity, SparsityConfig

ALL_METHODS = UPDATERS.names()
DYNAMIC_METHODS = [m for m in ALL_METHODS if UPDATERS.get(m).sparse and UPDATERS.get(m).dynamic]
STATE_KEYS = {"sgd": ["momentum_buffer"], "adamw": ["exp_avg", "exp_avg_sq"]}


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    # Accelerator state is a process-wide singleton: one test's gradient_accumulation_steps
    # would otherwise leak into the next.
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 6, 3, padding=1), nn.BatchNorm3d(6), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(6, 4),
    )


def make_optimizer(name: str, model: nn.Module) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)


def batch(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(i)
    return torch.randn(2, 3, 2, 4, 4, generator=generator), torch.randint(0, 4, (2,), generator=generator)


def config(method: str) -> SparsityConfig:
    return SparsityConfig(method=method, density=0.5, distribution="uniform", update_interval=2,
                          drop_fraction=0.5, end_fraction=1.0, decay="constant")


def update_steps_without_accumulation(method: str, steps: int) -> list[int]:
    """Optimizer steps at which ``method`` updates in a plain loop: the reference for accumulation."""
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, config(method), total_steps=steps)
    updates = []
    for i in range(steps):
        x, y = batch(i)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        if sparsity.step():
            updates.append(sparsity.step_count)
        optimizer.zero_grad()
    return updates


@pytest.mark.parametrize("method", ALL_METHODS)
def test_gradient_accumulation_counts_optimizer_steps_not_micro_batches(method):
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=4)
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, config(method), total_steps=5)  # 20 micro-batches
    model, optimizer = accelerator.prepare(model, optimizer)
    counts, updates = [], []
    for i in range(20):
        with accelerator.accumulate(model):
            x, y = batch(i)
            accelerator.backward(F.cross_entropy(model(x), y))
            optimizer.step()
            if sparsity.step():
                assert accelerator.sync_gradients, f"{method} updated masks on a micro-batch"
                updates.append(sparsity.step_count)
            optimizer.zero_grad()
        counts.append(sparsity.step_count)
    assert counts == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5]
    expected = {"rigl": [2, 4], "set": [2, 4], "static": [], "dense": []}
    if method in expected:
        assert updates == expected[method]
    assert updates == update_steps_without_accumulation(method, steps=5)


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
@pytest.mark.parametrize("method", DYNAMIC_METHODS)
def test_pruned_and_regrown_weights_and_state_are_zero_through_the_wrapper(method, opt_name):
    accelerator = Accelerator(cpu=True)
    model = tiny_model()
    # total_steps=9: rigl and set update at steps 2, 4, 6 and 8
    sparsity = DynamicSparsity(model, make_optimizer(opt_name, model), config(method), total_steps=9)
    params = dict(model.named_parameters())
    model, optimizer = accelerator.prepare(model, sparsity.optimizer)
    assert isinstance(optimizer, AcceleratedOptimizer) and optimizer.optimizer is sparsity.optimizer
    updates = regrowths = 0
    for i in range(8):
        x, y = batch(i)
        accelerator.backward(F.cross_entropy(model(x), y))
        optimizer.step()
        before = {name: mask.clone() for name, mask in sparsity.masks.items()}
        changed = sparsity.step()
        for name, mask in sparsity.masks.items():
            weight = params[name].detach()
            assert (weight[~mask] == 0).all(), f"{name}: pruned weight nonzero after step {i + 1}"
            if not changed:
                assert torch.equal(mask, before[name])
                continue
            grown = mask & ~before[name]
            regrowths += int(grown.any())
            assert (weight[grown] == 0).all(), f"{name}: regrown weight not restarted from 0"
            state = optimizer.state[params[name]]
            assert set(STATE_KEYS[opt_name]) <= set(state)
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == weight.shape:
                    assert (value[grown] == 0).all(), f"{name}: {key} of regrown weights not zeroed"
        updates += changed
        optimizer.zero_grad()
    assert updates >= 1
    if method in ("rigl", "set"):
        assert updates == 4 and regrowths == 4 * len(sparsity.masks)  # every layer, every update


def test_engine_built_from_the_accelerate_wrapper_hooks_the_real_optimizer():
    # The documented order is engine first, then prepare; a wrapper passed in must still work.
    accelerator = Accelerator(cpu=True)
    model = tiny_model()
    optimizer = accelerator.prepare(torch.optim.SGD(model.parameters(), lr=0.1))
    sparsity = DynamicSparsity(model, optimizer, config("set"), total_steps=10)
    assert sparsity.optimizer is optimizer.optimizer
    x, y = batch(0)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    sparsity.step()
    assert sparsity.step_count == 1


@pytest.mark.parametrize("through", ["torch", "accelerate"])
def test_amp_skipped_step_does_not_advance_the_schedule(through):
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sparsity = DynamicSparsity(model, optimizer, config("rigl"), total_steps=10)
    scaler = torch.amp.GradScaler("cpu")
    if through == "accelerate":
        # Accelerate builds no scaler on CPU; its wrapper's scaler path is the one CUDA runs.
        Accelerator(cpu=True)
        optimizer = AcceleratedOptimizer(optimizer, device_placement=False, scaler=scaler)

        def step():
            optimizer.step()  # scaler.step + scaler.update inside
    else:

        def step():
            scaler.step(optimizer)
            scaler.update()

    first_weight = next(model.parameters())
    counts, changed = [], []
    for i in range(4):
        x, y = batch(i)
        scaler.scale(F.cross_entropy(model(x), y)).backward()
        if i == 1:
            first_weight.grad.view(-1)[0] = float("inf")  # overflow: the scaler skips this step
        step()
        if through == "accelerate":
            assert optimizer.step_was_skipped == (i == 1)
        changed.append(sparsity.step())
        counts.append(sparsity.step_count)
        optimizer.zero_grad()
    assert counts == [1, 1, 2, 3]
    assert changed == [False, False, True, False]  # real optimizer step 2 is the update
