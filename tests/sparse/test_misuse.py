"""A wrong call either works or says so: resume orders, rebuilt optimizers, loop order,
zeroed gradients, typos in options, and what channel removal does to the density."""

import copy
import re
import warnings

import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.sparse import DynamicSparsity, SparsityConfig
from vidsparse.sparse.config import OptionTypeError
from vidsparse.sparse.distributions import spread_over_room


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(),
        nn.Conv3d(8, 8, 3, padding=1, groups=2), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 5),
    )


CFG = dict(method="rigl", density=0.5, distribution="uniform", update_interval=2,
           drop_fraction=0.5, end_fraction=1.0)


def clip(step):
    return torch.randn(2, 3, 4, 6, 6, generator=torch.Generator().manual_seed(step))


def train(model, optimizer, sparsity, steps, start=0):
    for step in range(start, start + steps):
        model(clip(step)).pow(2).mean().backward()
        optimizer.step()
        sparsity.step()
        optimizer.zero_grad()


def trained_run(steps=6):
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sparsity = DynamicSparsity(model, optimizer, SparsityConfig(**CFG), total_steps=20)
    train(model, optimizer, sparsity, steps)
    return model, optimizer, sparsity


# ------------------------------------------------------------------ 1. resume order
@pytest.mark.parametrize("order", ["weights_first", "engine_first"])
def test_both_resume_orders_end_bit_identical_to_the_uninterrupted_run(order):
    model, optimizer, sparsity = trained_run()
    saved = copy.deepcopy((model.state_dict(), sparsity.state_dict(), optimizer.state_dict()))
    train(model, optimizer, sparsity, 8, start=6)  # the uninterrupted run

    resumed = tiny_model(seed=1)  # other initial weights: everything must come from the files
    if order == "weights_first":  # the usual PyTorch idiom
        resumed.load_state_dict(saved[0], strict=False)
        opt2 = torch.optim.SGD(resumed.parameters(), lr=0.1, momentum=0.9)
        sp2 = DynamicSparsity(resumed, opt2, SparsityConfig(**CFG), total_steps=20)
    else:
        opt2 = torch.optim.SGD(resumed.parameters(), lr=0.1, momentum=0.9)
        sp2 = DynamicSparsity(resumed, opt2, SparsityConfig(**CFG), total_steps=20)
        resumed.load_state_dict(saved[0])
    sp2.load_state_dict(saved[1])
    opt2.load_state_dict(saved[2])
    for name, value in saved[0].items():  # nothing lost at the moment of resuming
        assert torch.equal(resumed.state_dict()[name], value), name
    train(resumed, opt2, sp2, 8, start=6)
    for name, value in model.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    for name, mask in sparsity.masks.items():
        assert torch.equal(sp2.masks[name], mask), name


def test_fresh_training_keeps_nothing_aside():
    # A freshly initialised model has no exact zeros: the engine keeps no copy of weights.
    model = tiny_model()
    sparsity = DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1),
                               SparsityConfig(**CFG), total_steps=20)
    assert sparsity._stash == {}


# ------------------------------------------------------------------ 2. plain state dicts
def test_a_dst_models_state_dict_loads_into_the_plain_architecture(tmp_path):
    model = vidsparse.create_model("r3d_tiny", num_classes=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, SparsityConfig(method="set"), total_steps=10)
    state = model.state_dict()
    assert not [k for k in state if k.endswith("_mask")]
    plain = vidsparse.create_model("r3d_tiny", num_classes=3)
    plain.load_state_dict(state)  # strict
    torch.save(state, tmp_path / "dst.pt")
    loaded = vidsparse.create_model("r3d_tiny", num_classes=3, checkpoint=tmp_path / "dst.pt")
    for name, value in state.items():
        assert torch.equal(loaded.state_dict()[name], value), name
    # The masks are the engine's to save, and the model still holds them as buffers.
    assert set(sparsity.state_dict()["masks"]) == set(sparsity.masks)
    assert "stem.0.weight_mask" in dict(model.named_buffers())


def test_a_state_dict_with_mask_keys_from_earlier_versions_still_loads_into_a_dst_model():
    model, optimizer, sparsity = trained_run(steps=2)
    old_style = dict(model.state_dict())
    old_style.update({f"{name}_mask": m.clone() for name, m in sparsity.masks.items()})
    other = tiny_model(seed=3)
    other_sparsity = DynamicSparsity(other, torch.optim.SGD(other.parameters(), lr=0.1),
                                     SparsityConfig(**CFG), total_steps=20)
    other.load_state_dict(old_style)  # strict: the stale mask keys are dropped, not refused
    other_sparsity.load_state_dict(sparsity.state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[name], value), name


# ------------------------------------------------------------------ 3. rebuilt optimizer
def test_an_optimizer_rebuilt_after_the_engine_is_an_error_not_a_dense_run():
    model = tiny_model()
    old = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, old, SparsityConfig(**CFG), total_steps=20)
    new = torch.optim.SGD(model.parameters(), lr=0.1)
    model(clip(0)).pow(2).mean().backward()
    new.step()
    with pytest.raises(RuntimeError, match="attach_optimizer"):
        sparsity.step()


def test_attach_optimizer_moves_the_hook_and_dst_goes_on():
    model = tiny_model()
    sparsity = DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1),
                               SparsityConfig(**CFG), total_steps=20)
    new = torch.optim.SGD(model.parameters(), lr=0.05)
    sparsity.attach_optimizer(new)
    before = {k: v.clone() for k, v in sparsity.masks.items()}
    train(model, new, sparsity, 4)
    assert sparsity.step_count == 4
    assert any(not torch.equal(before[n], m) for n, m in sparsity.masks.items())
    for t in sparsity.targets:
        assert not t.param.detach()[~t.mask].any(), t.name


def test_a_weight_the_optimizer_does_not_hold_is_refused():
    model = tiny_model()
    head_only = torch.optim.SGD(model[7].parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"not in the optimizer's param groups.*0\.weight"):
        DynamicSparsity(model, head_only, SparsityConfig(**CFG), total_steps=20)


# ------------------------------------------------------------------ 4. loop order
def test_sparsity_step_before_optimizer_step_warns_once_with_the_right_order():
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, SparsityConfig(**CFG), total_steps=20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(6):
            model(clip(step)).pow(2).mean().backward()
            sparsity.step()  # wrong: before optimizer.step()
            optimizer.step()
            optimizer.zero_grad()
    order = [w for w in caught if "loop order" in str(w.message)]
    assert len(order) == 1
    assert "optimizer.step(); sparsity.step(); optimizer.zero_grad()" in str(order[0].message)
    assert order[0].filename == __file__  # it points at the caller's sparsity.step() line


def test_the_documented_order_and_accumulation_do_not_warn():
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, SparsityConfig(**CFG), total_steps=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(model, optimizer, sparsity, 6)
        for step in range(6):  # accumulation: step() on micro-batches that did not step
            model(clip(step)).pow(2).mean().backward()
            if step % 3 == 2:
                optimizer.step()
            sparsity.step()
            if step % 3 == 2:
                optimizer.zero_grad()
    assert sparsity.step_count == 8


# ------------------------------------------------------------------ 5. zeroed gradients
def test_rigl_at_an_update_step_with_zeroed_gradients_raises_and_keeps_the_masks():
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, SparsityConfig(**CFG), total_steps=20)
    train(model, optimizer, sparsity, 1)
    model(clip(1)).pow(2).mean().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=False)  # wrong: before sparsity.step() at update step 2
    before = {k: v.clone() for k, v in sparsity.masks.items()}
    with pytest.warns(RuntimeWarning, match="loop order"), \
            pytest.raises(RuntimeError, match="every gradient of the prunable weights is zero"):
        sparsity.step()
    for name, mask in before.items():
        assert torch.equal(sparsity.masks[name], mask), name


# ------------------------------------------------------------------ 6. options
@pytest.mark.parametrize("option", ["dense_layers", "layer_density"])
def test_a_pattern_matching_no_layer_names_it_and_the_near_names(option):
    model = tiny_model()
    value = ["7.wieght"] if option == "dense_layers" else {"7.wieght": 0.9}
    cfg = SparsityConfig(**{**CFG, option: value})
    with pytest.raises(ValueError, match=rf"{option} pattern '7\.wieght' matches no prunable "
                                         r"layer.*'7\.weight'"):
        DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1), cfg, total_steps=20)
    # A module name instead of a parameter pattern gets the fix.
    cfg = SparsityConfig(**{**CFG, option: ["7"] if option == "dense_layers" else {"7": 0.9}})
    with pytest.raises(ValueError, match=r"try '7\.\*'"):
        DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1), cfg, total_steps=20)


def test_a_pattern_does_not_touch_weights_before_it_is_refused():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError):
        DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1),
                        SparsityConfig(**CFG, dense_layers=["head.*"]), total_steps=20)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert not [n for n, _ in model.named_buffers() if n.endswith("_mask")]


@pytest.mark.parametrize("options, error, message", [
    ({"update_interval": 0}, ValueError, "update_interval must be >= 1"),
    ({"update_interval": 2.5}, TypeError, r"update_interval must be a whole number.*2\.5"),
    ({"update_interval": "2"}, TypeError, r"update_interval must be .*'2' \(str\)"),
    ({"drop_fraction": 1.5}, ValueError, r"drop_fraction must be in \[0, 1\], got 1\.5"),
    ({"drop_fraction": -0.1}, ValueError, "drop_fraction must be in"),
    ({"density": "0.5"}, TypeError, "density must be a number"),
    ({"density": True}, TypeError, r"density must be a number.*\(bool\)"),
    ({"dense_layers": "fc.*"}, TypeError, "dense_layers must be a list"),
    ({"layer_density": {"fc.*": "0.5"}}, TypeError, "layer_density must map"),
    ({"keep_first_dense": 1}, TypeError, "keep_first_dense must be true or false"),
    ({"start_step": -1}, ValueError, "start_step must be >= 0"),
    ({"end_step": 0}, ValueError, "end_step"),
    ({"seed": 1.0}, TypeError, "seed must be an int"),
    ({"mest_lambda": float("nan")}, ValueError, "mest_lambda must be a finite number"),
])
def test_config_checks_types_and_ranges_itself(options, error, message):
    with pytest.raises(error, match=message):
        SparsityConfig(**options)


def test_a_type_error_is_also_a_value_error_for_config_loaders():
    with pytest.raises(ValueError):
        SparsityConfig(update_interval="2")
    assert issubclass(OptionTypeError, TypeError)


def test_numpy_numbers_are_accepted_as_plain_ones():
    import numpy as np
    cfg = SparsityConfig(update_interval=np.int64(5), density=np.float32(0.25))
    assert type(cfg.update_interval) is int and cfg.update_interval == 5
    assert cfg.density == 0.25


@pytest.mark.parametrize("total_steps", [None, 0, 2.5, "100"])
def test_total_steps_must_be_a_positive_int(total_steps):
    model = tiny_model()
    with pytest.raises(ValueError, match="total_steps must be"):
        DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1),
                        SparsityConfig(**CFG), total_steps=total_steps)


def test_a_dict_config_is_a_clear_type_error():
    model = tiny_model()
    with pytest.raises(TypeError, match=r"config must be a SparsityConfig, got dict.*from_dict"):
        DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1), dict(CFG),
                        total_steps=20)


# ------------------------------------------------------------------ summary
def test_summary_counts_dense_layers():
    model = tiny_model()
    sparsity = DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1),
                               SparsityConfig(**CFG, dense_layers=["7.*"]), total_steps=20)
    summary = sparsity.summary()
    assert (summary["layers"], summary["dense_layers"], summary["sparse_layers"]) == (3, 1, 2)
    # conv 3*8*27 = 648 -> 324, grouped conv 8*4*27 = 864 -> 432, linear 40 dense.
    assert summary["density"] == pytest.approx((324 + 432 + 40) / (648 + 864 + 40))
    assert summary["dense_share"] == pytest.approx(40 / (324 + 432 + 40))


# ------------------------------------------------------------------ 8. channel mode density
def channel_run(name, density, channel_sparsity, residual=False):
    torch.manual_seed(0)
    model = vidsparse.create_model(name, num_classes=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    cfg = SparsityConfig(method="rigl", density=density, channel_sparsity=channel_sparsity,
                         update_interval=1, end_fraction=1.0, channel_residual=residual)
    sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=6)
    budget = sum(int(m.count_nonzero()) for m in sparsity.masks.values())
    x = torch.randn(2, 3, 8, 56, 56, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(6):
            model(x).sum().backward()
            optimizer.step()
            sparsity.step()
            optimizer.zero_grad()
    return sparsity, budget, [w for w in caught if "channel_sparsity" in str(w.message)]


def test_removed_channels_give_their_budget_to_layers_with_room():
    sparsity, budget, warned = channel_run("r3d_tiny", 0.5, 0.5)
    assert sum(s["alive"] for s in sparsity.channel_stats().values()) < \
        sum(s["channels"] for s in sparsity.channel_stats().values())
    held = sum(int(m.count_nonzero()) for m in sparsity.masks.values())
    assert held == budget and not warned  # exactly the density asked for
    for t in sparsity.targets:  # and no weight in a removed channel
        allowed = sparsity._allowed(t)
        if allowed is not None:
            assert not (t.mask & ~allowed).any(), t.name


def test_when_every_layer_is_full_the_density_falls_and_a_warning_says_by_how_much():
    sparsity, budget, warned = channel_run("x3d_tiny", 0.5, 0.5)
    held = sum(int(m.count_nonzero()) for m in sparsity.masks.values())
    rooms = sum(sparsity._room(t) for t in sparsity.targets)
    assert held == rooms < budget  # every layer full
    assert len(warned) == 1
    first = re.search(rf"room for (\d+) of the {budget} weights", str(warned[0].message))
    assert first and held <= int(first.group(1)) < budget  # said at the first shortfall


def test_spread_over_room_hand_computed():
    # Budget 324 + 432 + 40 = 796. The head (kept dense, not free) holds 30 of its 40, the
    # first conv 100 of its 324: the 234 short go to the grouped conv, 432 + 234 = 666 <= 864.
    counts = {"0.weight": 324, "3.weight": 432, "7.weight": 40}
    rooms = {"0.weight": 100, "3.weight": 864, "7.weight": 30}
    assert spread_over_room(counts, rooms, free=["0.weight", "3.weight"]) == \
        {"0.weight": 100, "3.weight": 666, "7.weight": 30}
    # Two free layers with room share in proportion to their counts: 10 short, counts 30:10
    # -> 7.5 and 2.5; the half weight goes to the earlier layer.
    counts = {"a": 20, "b": 30, "c": 10}
    rooms = {"a": 10, "b": 100, "c": 100}
    assert spread_over_room(counts, rooms, free=["a", "b", "c"]) == {"a": 10, "b": 38, "c": 12}
    # No room anywhere: every layer full, the total falls short.
    assert spread_over_room(counts, {"a": 5, "b": 5, "c": 5}, free=["a", "b", "c"]) == \
        {"a": 5, "b": 5, "c": 5}
