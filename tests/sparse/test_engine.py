"""The DST engine: exact densities, zeros that stay zero, RigL's regrowth rule, counting."""

import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.sparse import DynamicSparsity, SparsityConfig, find_prunable


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(),
        nn.Conv3d(8, 8, 3, padding=1, groups=2), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 5),
    )


def make_optimizer(name, model):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)


def train_steps(model, optimizer, sparsity, steps, check=None):
    for i in range(steps):
        x = torch.randn(2, 3, 4, 6, 6, generator=torch.Generator().manual_seed(i))
        loss = model(x).pow(2).mean()
        loss.backward()
        optimizer.step()
        before = {k: v.clone() for k, v in sparsity.masks.items()}
        changed = sparsity.step()
        if check:
            check(before, changed)
        optimizer.zero_grad()


@pytest.mark.parametrize("method", ["set", "rigl"])
@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
@pytest.mark.parametrize("distribution", ["uniform", "erk"])
def test_exact_density_and_zeros_through_many_updates(method, opt_name, distribution):
    model = tiny_model()
    optimizer = make_optimizer(opt_name, model)
    cfg = SparsityConfig(method=method, density=0.3, distribution=distribution,
                         update_interval=2, drop_fraction=0.5, end_fraction=1.0)
    sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=40)
    counts = {n: int(m.sum()) for n, m in sparsity.masks.items()}
    updates = []

    def check(before, changed):
        updates.append(changed)
        for name, stat in sparsity.stats().items():
            assert stat["active"] == counts[name], name  # exact, not approximately
            assert stat["nonzero"] <= stat["active"], name  # pruned weights are exactly 0
        if changed:
            assert any(not torch.equal(before[n], m) for n, m in sparsity.masks.items())

    train_steps(model, optimizer, sparsity, 30, check)
    assert sum(updates) == 15  # every second step, 2..30
    if distribution == "uniform":
        for name, n in counts.items():
            numel = dict(model.named_parameters())[name].numel()
            assert n == round(0.3 * numel)


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_regrown_weights_and_optimizer_state_start_at_zero(opt_name):
    model = tiny_model()
    optimizer = make_optimizer(opt_name, model)
    cfg = SparsityConfig(method="set", density=0.5, distribution="uniform",
                         update_interval=3, drop_fraction=0.5, end_fraction=1.0)
    sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=10)
    params = dict(model.named_parameters())
    seen = []

    def check(before, changed):
        if not changed:
            return
        for name, mask in sparsity.masks.items():
            grown = mask & ~before[name]
            assert grown.any(), name
            p = params[name]
            assert (p.detach()[grown] == 0).all()
            state = optimizer.state[p]
            keys = ["momentum_buffer"] if opt_name == "sgd" else ["exp_avg", "exp_avg_sq"]
            for key in keys:
                assert (state[key][grown] == 0).all(), (name, key)
                assert (state[key][mask & before[name]] != 0).any(), (name, key)  # the rest kept
            seen.append(name)

    train_steps(model, optimizer, sparsity, 7, check)
    assert len(seen) == 2 * 3


def rigl_update_on_one_row(grad):
    """One RigL update of a 1x8 layer with 4 active weights, drop fraction 0.5 (2 swaps)."""
    layer = nn.Linear(8, 1, bias=False)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.0)
    cfg = SparsityConfig(method="rigl", density=0.5, distribution="uniform",
                         drop_fraction=0.5, decay="constant", update_interval=1)
    sparsity = DynamicSparsity(nn.Sequential(layer), optimizer, cfg, total_steps=10)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    sparsity.load_state_dict({"step_count": 0, "masks": {"0.weight": mask}})
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.9, -0.1, 0.5, 0.05, 0, 0, 0, 0]]))
    layer.weight.grad = torch.tensor([grad])
    sparsity.update_masks_(step=1)
    return sparsity.masks["0.weight"].int().tolist()[0], layer.weight.detach().tolist()[0]


def test_rigl_drops_smallest_magnitude_and_regrows_largest_gradient():
    # The two smallest |w| (indices 1 and 3) are dropped; among the inactive 1, 3, 4..7 the
    # largest |grad| are at 5 (|-3|) and 7 (2).
    mask, weight = rigl_update_on_one_row([5.0, 0.0, 5.0, 0.0, 0.1, -3.0, 0.2, 2.0])
    assert mask == [1, 0, 1, 0, 0, 1, 0, 1]
    assert weight == pytest.approx([0.9, 0, 0.5, 0, 0, 0, 0, 0])


def test_rigl_may_regrow_what_it_just_dropped_and_restarts_it_from_zero():
    # Indices 1 and 3 are dropped, but their |grad| = 5 is the largest among inactive ones.
    mask, weight = rigl_update_on_one_row([5.0, 5.0, 5.0, 5.0, 0.1, -3.0, 0.2, 2.0])
    assert mask == [1, 1, 1, 1, 0, 0, 0, 0]
    assert weight == pytest.approx([0.9, 0, 0.5, 0, 0, 0, 0, 0])


def test_rigl_without_gradients_is_a_clear_error():
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cfg = SparsityConfig(method="rigl", density=0.5, update_interval=1)
    sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=10)
    with pytest.raises(RuntimeError, match="before optimizer.zero_grad"):
        sparsity.update_masks_(step=1)


def test_only_real_optimizer_steps_are_counted():
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, SparsityConfig(method="set", update_interval=2),
                               total_steps=100)
    for _ in range(3):  # micro-batches of gradient accumulation: no optimizer.step()
        assert sparsity.step() is False
    assert sparsity.step_count == 0
    optimizer.step()
    sparsity.step()
    sparsity.step()  # called twice for one optimizer step
    assert sparsity.step_count == 1


def test_same_seed_same_masks_other_seed_other_masks():
    def run(seed):
        model = tiny_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        cfg = SparsityConfig(method="set", density=0.4, distribution="uniform",
                             update_interval=2, seed=seed)
        sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=20)
        train_steps(model, optimizer, sparsity, 6)
        return sparsity.masks

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)


def test_state_dict_resume_matches_uninterrupted_run():
    def fresh():
        model = tiny_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        cfg = SparsityConfig(method="rigl", density=0.4, update_interval=2, seed=3)
        return model, optimizer, DynamicSparsity(model, optimizer, cfg, total_steps=20)

    model, optimizer, sparsity = fresh()
    train_steps(model, optimizer, sparsity, 5)
    saved = (sparsity.state_dict(), model.state_dict(), optimizer.state_dict())
    saved = tuple({k: v for k, v in s.items()} for s in saved)
    import copy
    saved = copy.deepcopy(saved)
    train_steps(model, optimizer, sparsity, 4)

    model2, optimizer2, sparsity2 = fresh()
    model2.load_state_dict(saved[1])
    optimizer2.load_state_dict(saved[2])
    sparsity2.load_state_dict(saved[0])
    assert sparsity2.step_count == 5
    train_steps(model2, optimizer2, sparsity2, 4)
    for name in sparsity.masks:
        assert torch.equal(sparsity.masks[name], sparsity2.masks[name]), name
    assert sparsity2.step_count == 9


def test_prunable_selection_excludes_norms_biases_embeddings():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv1d(2, 4, 3), nn.Conv2d(2, 4, 3)
            self.c3 = nn.Conv3d(4, 4, 3, groups=4)  # depthwise
            self.bn, self.ln, self.gn = nn.BatchNorm3d(4), nn.LayerNorm(8), nn.GroupNorm(2, 4)
            self.emb = nn.Embedding(10, 8)
            self.pos = nn.Parameter(torch.zeros(1, 5, 8))
            self.attn = nn.MultiheadAttention(8, 2)
            self.fc = nn.Linear(8, 3)

    names = [t.name for t in find_prunable(M())]
    assert names == ["c1.weight", "c2.weight", "c3.weight", "attn.in_proj_weight",
                     "attn.out_proj.weight", "fc.weight"]


def test_filter_fn_and_dense_layers():
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    only_convs = DynamicSparsity(model, optimizer, SparsityConfig(method="static", distribution="uniform"),
                                 total_steps=10, filter_fn=lambda m, n: isinstance(m, nn.Conv3d))
    assert sorted(only_convs.masks) == ["0.weight", "3.weight"]
    model = tiny_model()
    cfg = SparsityConfig(method="static", density=0.5, distribution="uniform", dense_layers=["7.*"])
    sparsity = DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1), cfg, total_steps=10)
    assert sparsity.masks["7.weight"].all()
    assert sparsity.stats()["0.weight"]["density"] == pytest.approx(0.5, abs=1 / 648)


def test_unreachable_density_names_the_layer():
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.Linear(1, 400, bias=False))
    cfg = SparsityConfig(method="static", density=0.1, distribution="uniform")
    with pytest.raises(ValueError, match=r"layer 0\.weight"):
        DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1), cfg, total_steps=10)


def test_dense_method_leaves_model_untouched():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, SparsityConfig(method="dense"), total_steps=10)
    assert sparsity.masks == {} and sparsity.density() == 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_masks_are_buffers_hidden_from_ddp_broadcast():
    model = tiny_model()
    sparsity = DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1),
                               SparsityConfig(method="set"), total_steps=10)
    buffers = dict(model.named_buffers())
    assert "0.weight_mask" in buffers and buffers["0.weight_mask"].dtype == torch.bool
    assert "0.weight_mask" in model._ddp_params_and_buffers_to_ignore
    assert "1.running_mean" not in model._ddp_params_and_buffers_to_ignore
    assert set(sparsity.masks) == {"0.weight", "3.weight", "7.weight"}


def test_sparse_conv3d_keeps_its_own_density_under_the_engine():
    conv = vidsparse.sparse.SparseConv3d(4, 6, kernel_size=3, padding=1, density=0.25)
    assert int(conv.weight_mask.sum()) == round(0.25 * conv.weight.numel())
    assert int((conv.weight != 0).sum()) <= int(conv.weight_mask.sum())
    model = nn.Sequential(conv, nn.Flatten(), vidsparse.sparse.SparseLinear(6 * 8, 3, density=0.5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = DynamicSparsity(model, optimizer, SparsityConfig(method="set", density=0.9,
                                                                update_interval=1), total_steps=10)
    for i in range(3):
        model(torch.randn(1, 4, 2, 2, 2)).sum().backward()
        optimizer.step()
        sparsity.step()
        optimizer.zero_grad()
    stats = sparsity.stats()
    assert stats["0.weight"]["active"] == round(0.25 * conv.weight.numel())
    assert stats["2.weight"]["active"] == round(0.5 * 48 * 3)


def test_bad_config_is_a_clear_error():
    with pytest.raises(KeyError, match="known: dense, gmp, granet_g, granet_r, mest_g, mest_r, rigl, set, static"):
        SparsityConfig(method="rigl2")
    with pytest.raises(ValueError, match="density must be in"):
        SparsityConfig(density=1.5)
    with pytest.raises(ValueError, match="unknown sparsity option"):
        SparsityConfig.from_dict({"method": "set", "desnity": 0.5})


def test_select_picks_extremes_among_candidates_ties_to_the_lower_index():
    from vidsparse.sparse.masks import select

    scores = torch.tensor([5.0, 1.0, 3.0, 1.0, 9.0, 1.0, float("nan"), 0.5])
    candidates = torch.tensor([True, True, True, True, True, True, True, False])
    # Lowest 3 among candidates: NaN counts as -inf (index 6), then the 1.0 ties at 1 and 3
    # (index 7 scores lower but is no candidate).
    assert sorted(select(scores, candidates, 3, largest=False).tolist()) == [1, 3, 6]
    # Highest 2: 9 at 4 and 5 at 0.
    assert sorted(select(scores, candidates, 2, largest=True).tolist()) == [0, 4]
    # Highest 4 reaches the 1.0 tie: 9, 5, 3 and then the first of the tied ones.
    assert sorted(select(scores, candidates, 4, largest=True).tolist()) == [0, 1, 2, 4]
    assert sorted(select(scores, candidates, 10, largest=True).tolist()) == list(range(7))


def test_packed_bits_round_trip_and_count():
    from vidsparse.sparse.masks import count_bits, pack_bits, unpack_bits

    mask = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0)) < 0.3
    packed = pack_bits(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-mask.numel() // 8)
    assert torch.equal(unpack_bits(packed, mask.shape), mask)
    assert count_bits(packed) == int(mask.sum())
