"""TimeSformer and ViViT: shapes, divided/factorised attention, sizes, parameters, DST coverage."""

import re

import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.models import MODELS
from vidsparse.models.transformers import DividedSpaceTimeBlock, TimeSformer, ViViT
from vidsparse.sparse import find_prunable

# The models this file builds (other files register transformers too).
TRANSFORMERS = [n for n in vidsparse.list_models()
                if MODELS.get(n).__module__ == "vidsparse.models.transformers"]
EMBEDDINGS = {"cls_token", "pos_embed", "time_embed", "temporal_cls_token", "temporal_pos_embed"}


def _build(name, **kwargs):
    torch.manual_seed(0)
    meta = MODELS.meta(name)
    model = vidsparse.create_model(name, num_classes=5, **{**meta["test_kwargs"], **kwargs})
    return model.eval(), meta["test_input"]


def test_the_four_models_are_registered():
    assert TRANSFORMERS == ["timesformer", "timesformer_tiny", "vivit", "vivit_tiny"]
    assert all(MODELS.meta(n)["family"] == "transformer" for n in TRANSFORMERS)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_forward_backward_at_the_test_size(name):
    model, (t, h, w) = _build(name)
    model.train()
    logits = model(torch.randn(2, 3, t, h, w))
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["timesformer_tiny", "vivit_tiny"])
def test_tiny_models_take_their_input_size(name):
    meta = MODELS.meta(name)
    assert meta["test_input"] == meta["input_size"] and meta["test_kwargs"] == {}
    assert meta["head"] == ["head"]


@pytest.mark.parametrize("name", TRANSFORMERS)
@pytest.mark.parametrize("wrong", ["frames", "size"])
def test_a_clip_of_another_size_is_a_clear_error(name, wrong):
    model, (t, h, w) = _build(name)
    t, h, w = (t * 2, h, w) if wrong == "frames" else (t, h + 16, w + 16)
    expected = "(B, 3, {}, {}, {})".format(*MODELS.meta(name)["test_input"])
    with pytest.raises(ValueError, match=rf"built for clips of shape {re.escape(expected)}, "
                                         rf"got \(1, 3, {t}, {h}, {w}\)"):
        model(torch.randn(1, 3, t, h, w))


def test_a_geometry_that_does_not_tile_is_refused_at_construction():
    with pytest.raises(ValueError, match="size 70 is not a multiple of patch_size 16"):
        TimeSformer(frames=4, size=70)
    with pytest.raises(ValueError, match="frames 5 is not a multiple of tubelet 2"):
        ViViT(frames=5, size=32)


# Published sizes (Kinetics-400 head). TimeSformer: Bertasius et al. 2021, Table 1, divided
# space-time attention, 121.4M. ViViT-B factorised encoder: Arnab et al. 2021, Table 2, 115.1M.
@pytest.mark.parametrize("name, paper, exact", [
    ("timesformer", 121.4e6, 121_566_352),
    ("vivit", 115.1e6, 115_062_928),
])
def test_published_configs_have_the_papers_parameter_count(name, paper, exact):
    with torch.device("meta"):  # ~120M parameters, nothing allocated
        model = vidsparse.create_model(name, num_classes=400)
    count = sum(p.numel() for p in model.parameters())
    assert count == pytest.approx(paper, rel=0.01)
    assert count == exact


def test_published_parameter_count_by_hand():
    d, hidden, patches, k400 = 768, 3072, 196, 400
    layer_norm, mha = 2 * d, 4 * d * d + 4 * d
    mlp = layer_norm + d * hidden + hidden + hidden * d + d
    encoder_block = layer_norm + mha + mlp
    head = d * k400 + k400
    # TimeSformer: frame patches (Conv3d 1x16x16), cls, 1+196 spatial + 8 temporal embeddings;
    # each block adds temporal attention and temporal_fc to a ViT block.
    timesformer = (3 * 16 * 16 * d + d) + d + (1 + patches) * d + 8 * d \
        + 12 * (encoder_block + layer_norm + mha + d * d + d) + layer_norm + head
    # ViViT FE: tubelets (Conv3d 2x16x16), 12 spatial blocks with cls and 1+196 embeddings,
    # 4 temporal blocks with their cls and 1+16 embeddings.
    vivit = (3 * 2 * 16 * 16 * d + d) + d + (1 + patches) * d + 12 * encoder_block \
        + layer_norm + d + (1 + 16) * d + 4 * encoder_block + layer_norm + head
    assert (timesformer, vivit) == (121_566_352, 115_062_928)


# Divided attention, checked on one block: perturb some input tokens, see which outputs move.
T, N, D = 3, 4, 16


def _block_outputs_that_change(block, t, n):
    torch.manual_seed(1)
    x = torch.randn(2, 1 + T * N, D)
    y = x.clone()
    # Token order: cls, then frame by frame. Not a constant shift, which LayerNorm removes.
    y[:, 1 + t * N + n] += torch.randn(D)
    with torch.no_grad():
        changed = (block(x, T) - block(y, T)).abs().amax(dim=(0, 2)) > 1e-6
    cls, patches = changed[0].item(), changed[1:].view(T, N)
    return cls, patches


def _zero_(linear):
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)


def test_without_temporal_attention_frames_do_not_see_each_other():
    torch.manual_seed(0)
    block = DividedSpaceTimeBlock(D, num_heads=2).eval()
    cls, patches = _block_outputs_that_change(block, t=0, n=1)
    assert patches[1:].any(), "temporal attention should carry frame 0 to frames 1 and 2"

    _zero_(block.temporal_fc)
    cls, patches = _block_outputs_that_change(block, t=0, n=1)
    assert patches[0].all() and cls  # spatial attention: all of frame 0 and the class token
    assert not patches[1:].any()


def test_without_spatial_attention_only_one_spatial_position_moves():
    torch.manual_seed(0)
    block = DividedSpaceTimeBlock(D, num_heads=2).eval()
    _zero_(block.spatial.attn.out_proj)
    cls, patches = _block_outputs_that_change(block, t=0, n=1)
    expected = torch.zeros(T, N, dtype=torch.bool)
    expected[:, 1] = True  # the same patch position, in every frame
    assert torch.equal(patches, expected) and not cls


def _frames_reversed(x, step):
    # Reverse whole temporal tokens (tubelets of `step` frames), keeping each one intact.
    t = x.shape[2] // step
    return x.unflatten(2, (t, step)).flip(2).flatten(2, 3)


@pytest.mark.parametrize("name, step, time_embeddings", [
    ("timesformer_tiny", 1, ["time_embed"]),
    ("vivit_tiny", 2, ["temporal_pos_embed"]),
])
def test_frame_order_matters_only_through_the_temporal_embedding(name, step, time_embeddings):
    model, (t, h, w) = _build(name)
    x = torch.randn(2, 3, t, h, w)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(_frames_reversed(x, step)), atol=1e-4)
        for pname in time_embeddings:
            getattr(model, pname).zero_()
        torch.testing.assert_close(model(x), model(_frames_reversed(x, step)),
                                   atol=1e-5, rtol=1e-4)


def test_vivit_spatial_encoder_is_shared_across_time():
    model, (t, h, w) = _build("vivit_tiny")
    x = torch.randn(1, 3, t, h, w)
    x[:, :, 2:4] = x[:, :, 0:2]  # temporal indices 0 and 1 see the same tubelet
    with torch.no_grad():
        features = model.spatial_features(x)
    assert features.shape == (1, t // 2, 64)
    torch.testing.assert_close(features[:, 0], features[:, 1])
    assert not torch.allclose(features[:, 0], features[:, 2])
    # One set of spatial weights whatever the clip length: going from 8 to 16 frames adds
    # only 4 temporal position embeddings.
    sizes = [sum(p.numel() for p in vidsparse.create_model("vivit_tiny", frames=f).parameters())
             for f in (8, 16)]
    assert sizes[1] - sizes[0] == 4 * 64


@pytest.mark.parametrize("name, per_block", [("timesformer_tiny", 7), ("vivit_tiny", 4)])
def test_find_prunable_covers_every_projection_and_nothing_else(name, per_block):
    model, _ = _build(name)
    targets = {t.name for t in find_prunable(model)}
    expected = {f"{m}.weight" for m, mod in model.named_modules()
                if isinstance(mod, (nn.Linear, nn.Conv3d))}
    expected |= {f"{m}.in_proj_weight" for m, mod in model.named_modules()
                 if isinstance(mod, nn.MultiheadAttention)}
    assert targets == expected
    # TimeSformer block: 2 x (in_proj, out_proj), temporal_fc, fc1, fc2; ViViT block: 4.
    # Plus the patch embedding and the head. Tiny: 2 spatial (+1 temporal for ViViT) blocks.
    blocks = 2 if name == "timesformer_tiny" else 3
    assert len(targets) == per_block * blocks + 2
    assert {"patch_embed.weight", "head.weight"} <= targets

    norms = {f"{m}.{p}" for m, mod in model.named_modules() if isinstance(mod, nn.LayerNorm)
             for p in ("weight", "bias")}
    for pname, _ in model.named_parameters():
        if pname not in targets:
            assert pname.endswith("bias") or pname in norms or pname in EMBEDDINGS, pname
    assert not targets & (norms | EMBEDDINGS)


@pytest.mark.parametrize("name", ["timesformer_tiny", "vivit_tiny"])
def test_rigl_keeps_attention_projections_sparse_through_mask_updates(name):
    model, (t, h, w) = _build(name)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cfg = vidsparse.SparsityConfig(method="rigl", density=0.3, distribution="uniform",
                                   update_interval=1, seed=0)
    sparsity = vidsparse.DynamicSparsity(model, optimizer, cfg, total_steps=4)
    before = {n: m.clone() for n, m in sparsity.masks.items()}
    for _ in range(2):
        model(torch.randn(2, 3, t, h, w)).sum().backward()
        optimizer.step()
        sparsity.step()
        optimizer.zero_grad()
    for target in sparsity.targets:
        assert int(target.mask.sum()) == sparsity.target_counts[target.name]
        assert not target.param[~target.mask].any()
    attn = [n for n in before if n.endswith("in_proj_weight")]
    assert attn and any(not torch.equal(before[n], sparsity.masks[n]) for n in attn)
