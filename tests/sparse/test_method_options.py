"""Each method owns its options and state: a new method is one class and a registration."""

from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

from vidsparse.sparse import UPDATERS, DynamicSparsity, SparsityConfig
from vidsparse.sparse.structure import NM, Unstructured
from vidsparse.sparse.updaters import SET


def test_method_options_and_the_legacy_fields_are_one_setting():
    legacy = UPDATERS.get("mest_r")(SparsityConfig(method="mest_r", mest_overshoot=0.25, mest_lambda=2.0))
    new = UPDATERS.get("mest_r")(SparsityConfig(method="mest_r",
                                                method_options={"mest_overshoot": 0.25, "mest_lambda": 2.0}))
    assert legacy.options == new.options
    assert (new.options.mest_overshoot, new.options.mest_lambda) == (0.25, 2.0)
    granet = UPDATERS.get("granet_g")(SparsityConfig(method="granet_g", density=0.5,
                                                     method_options={"init_density": 0.9}))
    assert granet.initial_density(0.5) == 0.9
    assert UPDATERS.get("granet_g")(SparsityConfig(method="granet_g")).initial_density(0.5) == 0.8
    assert UPDATERS.get("gmp")(SparsityConfig(method="gmp")).initial_density(0.5) == 1.0


def test_an_option_the_method_does_not_have_is_an_error_listing_its_options():
    with pytest.raises(ValueError, match=r"'rigl' has no option\(s\) \['mest_lambda'\]; its options: none"):
        SparsityConfig(method="rigl", method_options={"mest_lambda": 1.0})
    with pytest.raises(ValueError, match=r"its options: \['mest_lambda', 'mest_overshoot'\]"):
        SparsityConfig(method="mest_g", method_options={"overshoot": 0.2})


def test_each_method_checks_its_own_option_ranges():
    with pytest.raises(ValueError, match=r"mest_overshoot must be in \[0, 1\], got 1.5"):
        SparsityConfig(method="mest_r", method_options={"mest_overshoot": 1.5})
    with pytest.raises(ValueError, match=r"init_density \(0.3\) must be >= the target density \(0.5\)"):
        SparsityConfig(method="granet_r", density=0.5, init_density=0.3)


def test_mest_state_round_trips_through_the_engine_state_dict():
    layer = nn.Linear(8, 2, bias=False)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    cfg = SparsityConfig(method="mest_r", density=0.5, distribution="uniform", update_interval=4,
                         mest_overshoot=0.25)
    sparsity = DynamicSparsity(nn.Sequential(layer), optimizer, cfg, total_steps=100)
    for _ in range(4):  # the update at step 4 grows 25% of 8 = 2 above the target
        layer(torch.ones(1, 8)).sum().backward()
        optimizer.step()
        sparsity.step()
        optimizer.zero_grad()
    state = sparsity.state_dict()
    assert state["overshoot"] == {"0.weight": 2} and state["prune_back_step"] == 6
    assert int(sparsity.masks["0.weight"].sum()) == 10
    other = DynamicSparsity(nn.Sequential(layer), torch.optim.SGD(layer.parameters(), lr=0.1), cfg,
                            total_steps=100)
    other.load_state_dict(state)
    assert other.updater.overshoot == {"0.weight": 2} and other.updater.prune_back_step == 6


def test_a_new_method_is_one_class_and_a_registration():
    name = "test_largest_weight_regrowth"

    if name not in UPDATERS:
        @UPDATERS.register(name)
        class LargestGradientTimes(SET):
            @dataclass(frozen=True)
            class Options:
                scale: float = 1.0

            def growth_score(self, weight, grad, generator):
                # Regrow at the highest flat index first: a rule one can check by hand.
                return torch.arange(weight.numel(), dtype=torch.float32).view(weight.shape) * self.options.scale

    layer = nn.Linear(8, 1, bias=False)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.0)
    cfg = SparsityConfig(method=name, density=0.5, distribution="uniform", drop_fraction=0.5,
                         decay="constant", update_interval=1, method_options={"scale": 2.0})
    sparsity = DynamicSparsity(nn.Sequential(layer), optimizer, cfg, total_steps=10)
    assert sparsity.updater.options.scale == 2.0
    sparsity.load_state_dict({"step_count": 0, "masks": {"0.weight": torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0]],
                                                                                   dtype=torch.bool)}})
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.9, 0.1, 0.5, 0.2, 0, 0, 0, 0]]))
    sparsity.update_masks_(step=1)
    # Drops the two smallest |w| (1 and 3), regrows the two highest indices (7 and 6).
    assert sparsity.masks["0.weight"].int().tolist() == [[1, 0, 1, 0, 0, 0, 1, 1]]
    with pytest.raises(ValueError, match="has no option"):
        SparsityConfig(method=name, method_options={"temperature": 1.0})


def test_structures_answer_initial_mask_growth_and_check():
    gen = torch.Generator().manual_seed(0)
    nm = NM(2, 4)
    mask = nm.initial_mask(torch.Size([2, 8]), 0, gen)
    assert (mask.view(-1, 4).sum(1) == 2).all()
    flat = torch.tensor([1, 0, 0, 0, 1, 1, 0, 0], dtype=torch.bool)  # group 1 lost one weight
    growth = torch.tensor([0.0, 3.0, 1.0, 2.0, 9.0, 9.0, 9.0, 9.0])
    assert nm.grow(growth, flat, 1, None).tolist() == [1]  # the group's best inactive weight
    with pytest.raises(ValueError, match="breaks the 2:4 pattern"):
        nm.check(flat.view(1, 8), "fc.weight")
    free = Unstructured()
    allowed = torch.tensor([1, 1, 1, 0, 1, 1, 1, 1], dtype=torch.bool)
    flat = torch.tensor([1, 0, 0, 0, 1, 0, 0, 0], dtype=torch.bool)
    growth = torch.tensor([0.0, 1.0, 2.0, 9.0, 0.0, 3.0, 0.5, 0.0])
    assert sorted(free.grow(growth, flat, 2, allowed).tolist()) == [2, 5]  # 3 is not allowed
    assert int(free.initial_mask(torch.Size([4, 4]), 5, gen).sum()) == 5
