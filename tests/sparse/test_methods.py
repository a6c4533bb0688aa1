"""Every registered method (parametrized over the registry), and each method's own rule."""

import copy

import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.sparse import UPDATERS, DynamicSparsity, SparsityConfig, UpdateSchedule, layer_densities

SPARSE_METHODS = [m for m in UPDATERS.names() if UPDATERS.get(m).sparse]
DYNAMIC_METHODS = [m for m in SPARSE_METHODS if UPDATERS.get(m).dynamic]


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(),
        nn.Conv3d(8, 8, (1, 3, 3), padding=(0, 1, 1)), nn.LayerNorm([4, 6, 6]), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 5),
    )


def train(model, optimizer, sparsity, steps, after_step=None):
    for i in range(steps):
        x = torch.randn(2, 3, 4, 6, 6, generator=torch.Generator().manual_seed(i))
        model(x).pow(2).mean().backward()
        optimizer.step()
        before = {n: m.clone() for n, m in sparsity.masks.items()}
        changed = sparsity.step()
        if after_step:
            after_step(i + 1, before, changed)
        optimizer.zero_grad()


def make(method, opt="sgd", steps=24, **overrides):
    model = small_model()
    if opt == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    options = dict(method=method, sparsity=0.6, distribution="uniform", update_interval=4,
                   drop_fraction=0.5, end_fraction=0.75)
    options.update(overrides)
    return model, optimizer, DynamicSparsity(model, optimizer, SparsityConfig(**options), total_steps=steps)


@pytest.mark.parametrize("method", SPARSE_METHODS)
@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_every_method_ends_exactly_on_target_with_zeros_and_fresh_state(method, opt):
    # The state of a pruned weight is not zeroed every step (it is never read while the
    # weight is pruned); a weight that becomes active starts from zero state.
    model, optimizer, sparsity = make(method, opt)
    params = dict(model.named_parameters())

    def check(step, before, changed):
        for name, mask in sparsity.masks.items():
            p = params[name]
            assert (p.detach()[~mask] == 0).all(), (method, step, name)
            for key, state in optimizer.state[p].items():
                if torch.is_tensor(state) and state.shape == p.shape:
                    assert (state[mask & ~before[name]] == 0).all(), (method, step, name, key)

    train(model, optimizer, sparsity, 24, check)
    for name, stat in sparsity.stats().items():
        assert stat["active"] == round(0.4 * stat["numel"]), (method, name)


@pytest.mark.parametrize("method", DYNAMIC_METHODS)
def test_every_dynamic_method_resumes_bit_identically(method):
    model, optimizer, sparsity = make(method)
    train(model, optimizer, sparsity, 9)  # stop between updates (and inside MEST's soft window)
    saved = copy.deepcopy((sparsity.state_dict(), model.state_dict(), optimizer.state_dict()))
    train(model, optimizer, sparsity, 11)

    model2, optimizer2, sparsity2 = make(method)
    sparsity2.load_state_dict(saved[0])
    model2.load_state_dict(saved[1])
    optimizer2.load_state_dict(saved[2])
    torch.manual_seed(123)  # resumed code must not depend on the global RNG
    train(model2, optimizer2, sparsity2, 11)
    assert sparsity2.step_count == sparsity.step_count == 20
    for name in sparsity.masks:
        assert torch.equal(sparsity.masks[name], sparsity2.masks[name]), name
    for key, value in model.state_dict().items():
        assert torch.equal(value, model2.state_dict()[key]), key
    assert sparsity.stats() == sparsity2.stats()


def test_sparsity_and_density_are_two_spellings():
    assert SparsityConfig(sparsity=0.3).density == pytest.approx(0.7)
    assert SparsityConfig(density=0.7).sparsity == pytest.approx(0.3)
    with pytest.raises(ValueError, match="not both"):
        SparsityConfig(sparsity=0.3, density=0.7)
    cfg = SparsityConfig(method="set", sparsity=0.2)
    from dataclasses import asdict
    assert SparsityConfig.from_dict(asdict(cfg)) == cfg  # what state_dict stores loads back


def test_schedule_start_end_and_decays_hand_computed():
    s = UpdateSchedule(interval=10, drop_fraction=0.4, start_step=5, end_step=45, decay="linear")
    assert [t for t in range(60) if s.is_update_step(t)] == [15, 25, 35]
    assert s.drop_fraction_at(25) == pytest.approx(0.4 * (1 - 20 / 40))
    cos = UpdateSchedule(interval=10, drop_fraction=0.4, start_step=5, end_step=45)
    assert cos.drop_fraction_at(25) == pytest.approx(0.2)  # halfway: 0.4 / 2 * (1 + cos(pi/2))
    # Cubic density (Zhu & Gupta 2017) from 0.8 at step 5 to 0.2 at the last update, 35.
    assert cos.density_at(5, 0.8, 0.2) == pytest.approx(0.8)
    assert cos.density_at(15, 0.8, 0.2) == pytest.approx(0.2 + 0.6 * (1 - 10 / 30) ** 3)
    assert cos.density_at(35, 0.8, 0.2) == pytest.approx(0.2)


def test_gmp_follows_the_cubic_schedule_from_dense():
    model, optimizer, sparsity = make("gmp", steps=24, sparsity=0.75)
    numel = {n: m.numel() for n, m in sparsity.masks.items()}
    assert all(m.all() for m in sparsity.masks.values())  # starts dense
    seen = {}
    train(model, optimizer, sparsity, 24,
          lambda step, before, changed: seen.update({step: {n: int(m.sum()) for n, m in sparsity.masks.items()}}) if changed else None)
    # Updates at 4, 8, 12, 16 (end step 18); density at step t: 0.25 + 0.75 * (1 - t/16)^3.
    assert sorted(seen) == [4, 8, 12, 16]
    for step, counts in seen.items():
        density = 0.25 + 0.75 * (1 - step / 16) ** 3
        assert counts == {n: round(density * numel[n]) for n in numel}, step


def test_granet_starts_at_its_initial_density_and_regrows_on_the_way_down():
    model, optimizer, sparsity = make("granet_r", steps=24)
    for name, mask in sparsity.masks.items():
        assert int(mask.sum()) == round(0.8 * mask.numel()), name  # the paper's 0.8
    changed_fractions = []
    train(model, optimizer, sparsity, 24,
          lambda step, before, changed: changed_fractions.append(
              max(s["changed"] for s in sparsity.stats().values())) if changed else None)
    assert len(changed_fractions) == 4 and all(f > 0 for f in changed_fractions)  # regrowth happened
    _, _, other = make("granet_g", init_density=0.9)
    assert all(int(m.sum()) == round(0.9 * m.numel()) for m in other.masks.values())


def test_mest_keeps_a_small_but_moving_weight_and_prunes_back_the_overshoot():
    layer = nn.Linear(8, 1, bias=False)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.0)
    cfg = SparsityConfig(method="mest_r", density=0.5, distribution="uniform", drop_fraction=0.25,
                         decay="constant", update_interval=4, mest_lambda=1.0, mest_overshoot=0.25)
    sparsity = DynamicSparsity(nn.Sequential(layer), optimizer, cfg, total_steps=100)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    sparsity.load_state_dict({"step_count": 4, "masks": {"0.weight": mask}})
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.9, 0.05, 0.5, 0.2, 0, 0, 0, 0]]))
    # |w| + |g|: 0.9, 1.05, 0.5, 0.2 -> drop index 3 (0.2), though index 1 has the smallest |w|.
    layer.weight.grad = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0, 0, 0, 0]])
    sparsity.update_masks_(step=4)
    m, w = sparsity.masks["0.weight"][0], layer.weight.detach()[0]
    assert m[0] and m[1] and m[2]
    assert w[1] == pytest.approx(0.05) and w[3] == 0  # 3 was dropped (if regrown, from zero)
    assert int(m.sum()) == 4 + 1  # one swapped, one grown beyond the target (25% of 4)
    for step in (5, 6):  # half an interval (2 steps) later it prunes back to the target
        layer(torch.ones(1, 8)).sum().backward()
        optimizer.step()
        assert sparsity.step() is (step == 6)
    assert sparsity.step_count == 6 and int(sparsity.masks["0.weight"].sum()) == 4


def test_er_distribution_hand_computed():
    # raw: a = (10 + 10) / 100 = 0.2 (kernel dims ignored), b = 200 / 10000 = 0.02;
    # kept = 0.1 * (2700 + 10000) = 1270; eps = 1270 / (0.2 * 2700 + 0.02 * 10000) = 1270 / 740.
    d = layer_densities("er", {"a": (10, 10, 3, 3, 3), "b": (100, 100)}, 0.1)
    assert d["a"] == pytest.approx(0.2 * 1270 / 740)
    assert d["b"] == pytest.approx(0.02 * 1270 / 740)


def test_first_last_dense_and_per_layer_densities():
    _, _, sparsity = make("set", keep_first_dense=True, keep_last_dense=True)
    assert sparsity.masks["0.weight"].all() and sparsity.masks["8.weight"].all()
    assert int(sparsity.masks["3.weight"].sum()) == round(0.4 * 576)
    _, _, sparsity = make("set", layer_density={"3.*": 0.25, "*": 0.9})
    assert int(sparsity.masks["3.weight"].sum()) == 144  # first matching pattern wins
    assert int(sparsity.masks["8.weight"].sum()) == 36


def test_stats_report_changed_share_and_itop():
    model, optimizer, sparsity = make("set", drop_fraction=0.5, decay="constant")
    assert all(s["itop"] == pytest.approx(s["density"], abs=1e-9) for s in sparsity.stats().values())
    records = []

    def record(step, before, changed):
        if changed:
            regrown = {n: int((m & ~before[n]).sum()) for n, m in sparsity.masks.items()}
            records.append((regrown, sparsity.stats()))

    train(model, optimizer, sparsity, 8, record)
    regrown, stats = records[-1]
    for name, stat in stats.items():
        assert stat["changed"] == pytest.approx(regrown[name] / stat["active"])
        assert stat["density"] < stat["itop"] <= 1.0


def test_export_bakes_masks_in_and_leaves_a_plain_model():
    conv = vidsparse.sparse.SparseConv3d(3, 4, kernel_size=3, padding=1, density=0.3)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 4 * 4, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, SparsityConfig(method="set", density=0.5), total_steps=10)
    plain = sparsity.export()
    x = torch.randn(2, 3, 2, 4, 4)
    assert torch.equal(plain(x), model(x))
    assert type(plain[0]) is nn.Conv3d and not hasattr(plain[0], "density")
    assert not any(n.endswith("_mask") for n, _ in plain.named_buffers())
    assert not hasattr(plain, "_ddp_params_and_buffers_to_ignore")
    reference = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(128, 3))
    reference.load_state_dict(plain.state_dict())  # strict: the same keys as a plain model
    assert int((plain[0].weight != 0).sum()) <= int(sparsity.masks["0.weight"].sum())
    assert any(n.endswith("_mask") for n, _ in model.named_buffers())  # the original is untouched
