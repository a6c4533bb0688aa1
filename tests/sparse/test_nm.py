"""N:M (2:4) masks on Linear layers: the pattern at init and through updates, the SRigL-style
regrowth rule by hand, determinism, checkpoints, export and configuration errors."""

import sys

import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.sparse import DynamicSparsity, SparsityConfig, export, find_prunable
from vidsparse.sparse.masks import nm_pattern_holds
from vidsparse.sparse.export import export_semi_structured, semi_structured_available


def timesformer():
    torch.manual_seed(0)
    return vidsparse.create_model("timesformer_tiny", num_classes=3)


def clip(i):
    return torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(i))


def nm_engine(model, method="rigl", seed=0, optimizer=None, **kwargs):
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    cfg = SparsityConfig(method=method, density=0.3, nm=[2, 4], update_interval=1,
                         drop_fraction=0.5, end_fraction=1.0, seed=seed, **kwargs)
    return DynamicSparsity(model, optimizer, cfg, total_steps=20), optimizer


def train(model, optimizer, sparsity, steps, check=None):
    for i in range(steps):
        model(clip(i)).pow(2).mean().backward()
        optimizer.step()
        before = {k: v.clone() for k, v in sparsity.masks.items()}
        sparsity.step()
        if check:
            check(before)
        optimizer.zero_grad()


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_timesformer_linear_layers_keep_exactly_2_of_4_through_updates(method):
    model = timesformer()
    sparsity, optimizer = nm_engine(model, method)
    linear = {t.name for t in find_prunable(model) if isinstance(t.module, nn.Linear)}
    assert sparsity.nm_layers == linear  # fc1, fc2, temporal_fc, attention out_proj, head
    other = {n: int(m.sum()) for n, m in sparsity.masks.items() if n not in linear}
    params = dict(model.named_parameters())
    changed = []

    def check(before):
        for name, mask in sparsity.masks.items():
            assert not params[name][~mask].any(), name  # pruned weights are exactly 0
            if name in linear:
                assert nm_pattern_holds(mask, 2, 4), name
                # groups run along the input dimension
                assert (mask.view(mask.shape[0], -1, 4).sum(-1) == 2).all(), name
            else:
                assert int(mask.sum()) == other[name], name  # unstructured, exact count
        changed.append(any(not torch.equal(before[n], sparsity.masks[n]) for n in linear))

    check(sparsity.masks)  # at init
    changed.clear()
    train(model, optimizer, sparsity, 4, check)
    assert all(changed)  # every step was an update step and moved some 2:4 mask
    stats = sparsity.stats()
    assert all(stats[n]["density"] == 0.5 for n in linear)
    # patch_embed and the packed q/k/v projection follow the ERK distribution instead
    assert all(stats[n]["density"] < 1.0 for n in other)


def test_regrowth_refills_each_group_by_hand():
    # One output row, two groups of 4. Active: w0=5, w1=0.1 | w4=3, w5=4.
    layer = nn.Linear(8, 1, bias=False)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.0)
    cfg = SparsityConfig(method="rigl", nm=[2, 4], update_interval=1, drop_fraction=0.25,
                         decay="constant", end_fraction=1.0)
    sparsity = DynamicSparsity(layer, optimizer, cfg, total_steps=10)
    layer.weight_mask.copy_(torch.tensor([[1, 1, 0, 0, 1, 1, 0, 0]], dtype=torch.bool))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[5.0, 0.1, 0, 0, 3.0, 4.0, 0, 0]]))
    # The largest gradient (9) sits in group 2, which lost nothing: unstructured RigL would
    # grow it and break 2:4; the N:M rule refills group 1 with its best candidate (index 2).
    layer.weight.grad = torch.tensor([[0.0, 0.0, 1.0, 0.5, 0.0, 0.0, 9.0, 3.0]])
    optimizer.step()
    assert sparsity.step()  # int(0.25 * 4 active) = 1 swap
    assert layer.weight_mask.int().tolist() == [[1, 0, 1, 0, 1, 1, 0, 0]]
    assert layer.weight.tolist() == [[5.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0]]


def test_regrown_weights_and_adam_state_start_at_zero():
    model = timesformer()
    sparsity, optimizer = nm_engine(model, "set")
    params = dict(model.named_parameters())

    def check(before):
        for name in sparsity.nm_layers:
            grown = sparsity.masks[name] & ~before[name]
            assert grown.any(), name
            assert not params[name][grown].any(), name
            state = optimizer.state[params[name]]
            assert not state["exp_avg"][grown].any() and not state["exp_avg_sq"][grown].any()

    train(model, optimizer, sparsity, 2, check)


def test_same_seed_same_masks_other_seed_other_masks():
    runs = []
    for seed in (0, 0, 1):
        model = timesformer()
        sparsity, optimizer = nm_engine(model, "set", seed=seed)
        train(model, optimizer, sparsity, 2)
        runs.append(sparsity.masks)
    assert all(torch.equal(runs[0][n], runs[1][n]) for n in runs[0])
    assert any(not torch.equal(runs[0][n], runs[2][n]) for n in runs[0])


def test_masks_survive_a_state_dict_round_trip_and_a_broken_pattern_is_refused():
    model = timesformer()
    sparsity, optimizer = nm_engine(model, "rigl")
    train(model, optimizer, sparsity, 2)
    state, weights = sparsity.state_dict(), model.state_dict()

    fresh = timesformer()
    fresh_sparsity, _ = nm_engine(fresh, "rigl", seed=1)  # different initial masks
    fresh.load_state_dict(weights)
    fresh_sparsity.load_state_dict(state)
    assert all(torch.equal(m, state["masks"][n]) for n, m in fresh_sparsity.masks.items())
    assert all(nm_pattern_holds(fresh_sparsity.masks[n], 2, 4) for n in fresh_sparsity.nm_layers)

    name = "blocks.0.mlp.fc1.weight"
    state["masks"][name] = state["masks"][name].clone()
    state["masks"][name][0, :4] = True  # 4 of 4 in one group
    with pytest.raises(ValueError, match="fc1.weight breaks the 2:4 pattern"):
        fresh_sparsity.load_state_dict(state)


def test_exported_model_gives_the_masked_models_outputs():
    model = timesformer()
    sparsity, optimizer = nm_engine(model, "rigl")
    train(model, optimizer, sparsity, 2)
    model.eval()
    plain = export(model)
    assert not any(name.endswith("_mask") for name, _ in plain.named_buffers())
    with torch.no_grad():
        assert torch.equal(plain(clip(99)), model(clip(99)))
    for name in sparsity.nm_layers:
        weight = dict(plain.named_parameters())[name]
        assert ((weight != 0).view(-1, 4).sum(1) <= 2).all(), name


@pytest.mark.skipif(semi_structured_available(), reason="a GPU with 2:4 kernels is present")
def test_semi_structured_export_needs_an_ampere_gpu():
    model = timesformer()
    nm_engine(model, "static")
    with pytest.raises(RuntimeError, match="compute capability >= 8.0"):
        export_semi_structured(model)


def test_semi_structured_export_converts_the_plain_2_4_linears(monkeypatch):
    # No GPU here: stand in for the device check and the conversion, to test which layers
    # are converted and that the model still computes the same function.
    # (``vidsparse.sparse.export`` the attribute is the function; the module is in sys.modules)
    export_module = sys.modules["vidsparse.sparse.export"]
    seen = []

    def fake_convert(weight):
        seen.append(weight)
        return weight.clone()

    monkeypatch.setattr(export_module, "semi_structured_available", lambda device: True)
    monkeypatch.setattr(torch.sparse, "to_sparse_semi_structured", fake_convert)
    model = timesformer()
    nm_engine(model, "static")
    model.eval()
    with pytest.raises(RuntimeError, match="float16 or bfloat16"):
        export_semi_structured(model)
    model.to(torch.bfloat16)
    fast, converted = export_semi_structured(model)
    # out_proj belongs to nn.MultiheadAttention, head (3 x 64) is below the kernel's minimum
    assert converted == [f"blocks.{b}.{layer}" for b in (0, 1)
                         for layer in ("temporal_fc", "mlp.fc1", "mlp.fc2")]
    assert all(((w != 0).view(-1, 4).sum(1) <= 2).all() for w in seen)
    assert all(not fast.get_submodule(n).weight.requires_grad for n in converted)
    with torch.no_grad():
        x = clip(5).to(torch.bfloat16)
        assert torch.equal(fast(x), export(model)(x))


def test_semi_structured_export_without_2_4_masks_says_how_to_get_them():
    model = timesformer()
    DynamicSparsity(model, torch.optim.SGD(model.parameters(), lr=0.1),
                    SparsityConfig(method="static"), total_steps=10)
    with pytest.raises(ValueError, match=r"nm=\[2, 4\]"):
        export_semi_structured(model)


@pytest.mark.parametrize("nm", [[4, 2], [2, 2], [0, 4], [2], [2, 4, 8], "2:4", [2.0, 4], [True, 4]])
def test_a_bad_nm_raises_naming_the_field(nm):
    with pytest.raises(ValueError, match=r"SparsityConfig\.nm"):
        SparsityConfig(nm=nm)


@pytest.mark.parametrize("method", ["gmp", "granet_g"])
def test_nm_refuses_gradual_methods(method):
    with pytest.raises(ValueError, match=r"SparsityConfig\.nm=\[2, 4\].*" + method):
        SparsityConfig(method=method, nm=[2, 4])


def test_nm_from_a_yaml_style_dict_and_a_tuple():
    assert SparsityConfig.from_dict({"method": "set", "nm": (2, 4)}).nm == [2, 4]


def test_a_linear_whose_in_features_m_does_not_divide_raises_naming_it():
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"layer 0\.weight has in_features 6, not divisible by M=4"):
        DynamicSparsity(model, optimizer, SparsityConfig(method="set", nm=[2, 4]), total_steps=10)
    # kept dense, it is left alone and the other Linear is 2:4
    sparsity = DynamicSparsity(model, optimizer,
                               SparsityConfig(method="set", nm=[2, 4], dense_layers=["0.*"]),
                               total_steps=10)
    assert sparsity.nm_layers == {"2.weight"}
    assert sparsity.masks["0.weight"].all()
    assert nm_pattern_holds(sparsity.masks["2.weight"], 2, 4)


def _two_rank_worker(rank: int, init_file: str, out: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.manual_seed(0)  # same initial weights on both ranks
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    digests = []
    for method in ("set", "rigl"):
        cfg = SparsityConfig(method=method, nm=[2, 4], update_interval=1, drop_fraction=0.5,
                             end_fraction=1.0, sync="none")
        sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=10)  # before wrapping
        ddp = DistributedDataParallel(model)
        for step in range(3):
            # Each rank its own batch: only the all-reduced gradient is common.
            x = torch.randn(4, 16, generator=torch.Generator().manual_seed(100 * step + rank))
            ddp(x).pow(2).mean().backward()
            optimizer.step()
            sparsity.step()
            optimizer.zero_grad()
        digests.append(sparsity.mask_digest())
        sparsity.remove()
    digest = torch.cat(digests)
    gathered = [torch.empty_like(digest) for _ in range(2)]
    dist.all_gather(gathered, digest)
    if rank == 0:
        torch.save(gathered, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_hold_identical_nm_masks_without_broadcast(tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "digests.pt"
    mp.spawn(_two_rank_worker, args=(str(tmp_path / "init"), str(out)), nprocs=2)
    rank0, rank1 = torch.load(out)
    assert torch.equal(rank0, rank1)
