"""Channel-level DST: which channels can leave a model, removing them during training, and
the narrower exported model that gives the same outputs."""

import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.sparse import DynamicSparsity, SparsityConfig
from vidsparse.sparse.channels import channels_to_remove, find_channel_groups, shrink


class Block(nn.Module):
    """A residual block beside an MLP: conv1's channels can go, conv2's cannot (they meet
    the skip connection); fc1's hidden units can go, fc2's cannot (the output)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(4, 6, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm3d(6)
        self.conv2 = nn.Conv3d(6, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Linear(4, 12)
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        x = x + self.conv2(torch.relu(self.bn1(self.conv1(x))))
        x = torch.flatten(self.pool(x), 1)
        return self.fc2(nn.functional.gelu(self.fc1(x)))


@pytest.mark.parametrize("channels, share, multiple, removed", [
    (64, 0.3, 8, 16),   # 45 kept would be exact; 48 is the multiple of 8 above it
    (36, 0.3, 8, 4),    # 25 -> 32
    (64, 0.5, 8, 32),
    (16, 0.99, 8, 8),   # at least one block of 8 stays
    (6, 0.5, 8, 3),     # narrower than a block: exact
    (64, 0.3, 1, 19),
    (4, 0.99, 1, 3),    # never every channel
])
def test_channels_to_remove_keeps_whole_blocks(channels, share, multiple, removed):
    assert channels_to_remove(channels, share, multiple) == removed


def test_groups_of_a_hand_built_model():
    groups = {g.producer: g for g in find_channel_groups(Block())}
    assert set(groups) == {"conv1", "fc1"}
    assert groups["conv1"].norms == ("bn1",) and groups["conv1"].consumers == ("conv2",)
    assert groups["conv1"].channels == 6
    assert groups["fc1"].consumers == ("fc2",) and groups["fc1"].norms == ()


def test_groups_of_the_resnets_are_the_inner_block_channels():
    tiny = find_channel_groups(vidsparse.create_model("r3d_tiny", num_classes=3))
    assert [g.producer for g in tiny] == ["stages.0.conv1", "stages.1.conv1", "stages.2.conv1"]
    assert [g.consumers for g in tiny] == [("stages.0.conv2",), ("stages.1.conv2",), ("stages.2.conv2",)]
    r3d = find_channel_groups(vidsparse.create_model("r3d_18", num_classes=3))
    # Eight BasicBlocks; torchvision wraps each conv in a Sequential with its norm.
    assert len(r3d) == 8 and all(g.producer.endswith("conv1.0") for g in r3d)
    assert all(g.norms == (g.producer[:-1] + "1",) for g in r3d)


def test_an_x3d_bottleneck_group_carries_its_depthwise_conv_norms_and_squeeze_excitation():
    groups = {g.producer: g for g in find_channel_groups(vidsparse.create_model("x3d_tiny", num_classes=3))}
    g = groups["blocks.1.res_blocks.0.branch2.conv_a"]
    prefix = "blocks.1.res_blocks.0.branch2."
    assert g.depthwise == (prefix + "conv_b",)
    assert set(g.norms) == {prefix + "norm_a", prefix + "norm_b.0"}
    assert g.gates == ((prefix + "norm_b.1", prefix + "norm_b.1.block.0", prefix + "norm_b.1.block.2"),)
    assert g.consumers == (prefix + "conv_c",)


@pytest.mark.parametrize("name", ["r3d_tiny", "x3d_tiny", "r3d_18"])
def test_shrink_keeps_the_outputs_when_removed_channels_carry_zeros(name):
    torch.manual_seed(0)
    model = vidsparse.create_model(name, num_classes=4).eval()
    groups = find_channel_groups(model)
    alive = {}
    with torch.no_grad():
        for g in groups:
            keep = torch.rand(g.channels) < 0.5
            keep[0] = True
            alive[g.producer] = keep
            producer = model.get_submodule(g.producer)
            producer.weight[~keep] = 0
            for norm in g.norms:  # random statistics: the zeroed scale and shift must win
                bn = model.get_submodule(norm)
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight[~keep] = 0
                bn.bias[~keep] = 0
            for dw in g.depthwise:
                if model.get_submodule(dw).bias is not None:
                    model.get_submodule(dw).bias[~keep] = 0
    small = shrink(model, groups, alive).eval()
    x = torch.randn(1, 3, 8, 56, 56) if name != "r3d_18" else torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)
    first = groups[0]
    assert small.get_submodule(first.producer).weight.shape[0] == int(alive[first.producer].sum())
    assert small.get_submodule(first.consumers[0]).weight.shape[1] == int(alive[first.producer].sum())
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def train(model, sparsity, optimizer, steps, seed=0, size=(4, 24, 24)):
    for i in range(steps):
        g = torch.Generator().manual_seed(seed + i)
        x = torch.randn(2, 3, *size, generator=g)
        y = torch.randint(0, 3, (2,), generator=g)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        sparsity.step()
        optimizer.zero_grad()


def channel_run(steps=12, channel_sparsity=0.5, method="rigl", density=0.5, name="r3d_tiny", **kwargs):
    torch.manual_seed(0)
    model = vidsparse.create_model(name, num_classes=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    cfg = SparsityConfig(method=method, density=density, distribution="uniform", update_interval=2,
                         end_fraction=0.75, channel_sparsity=channel_sparsity, seed=1, **kwargs)
    sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=steps)
    return model, optimizer, sparsity


def test_training_removes_the_scheduled_channels_and_keeps_them_empty():
    model, optimizer, sparsity = channel_run()
    train(model, sparsity, optimizer, 12)  # updates at 2, 4, 6, 8: the last one reaches 50%
    counts = {t.name: t.mask.numel() for t in sparsity.targets}
    for g in sparsity.channel_groups:
        alive = sparsity.alive[g.producer]
        assert int((~alive).sum()) == round(0.5 * g.channels), g.producer
        producer = model.get_submodule(g.producer)
        assert not producer.weight_mask[~alive].any() and (producer.weight[~alive] == 0).all()
        for consumer in g.consumers:
            assert not model.get_submodule(consumer).weight_mask[:, ~alive].any()
        for norm in g.norms:
            bn = model.get_submodule(norm)
            assert (bn.weight[~alive] == 0).all() and (bn.bias[~alive] == 0).all()
            assert (bn.weight[alive] != 0).any()
    # The freed budget regrew in the remaining channels: each layer holds its target count,
    # or all its room where removed channels leave less than that.
    for t in sparsity.targets:
        allowed = sparsity._allowed(t)
        room = counts[t.name] if allowed is None else int(allowed.sum())
        assert int(t.mask.sum()) == min(sparsity.target_counts[t.name], room), t.name
    assert sparsity.channel_stats()["stages.0.conv1"] == {"channels": 16, "alive": 8}


def test_export_is_narrower_and_gives_the_same_outputs():
    model, optimizer, sparsity = channel_run()
    train(model, sparsity, optimizer, 12)
    model.eval()
    small = sparsity.export().eval()
    assert small.stages[0].conv1.out_channels == 8 and small.stages[0].bn1.num_features == 8
    assert small.stages[0].conv2.in_channels == 8 and small.stages[2].conv1.out_channels == 32
    assert not any(name.endswith("_mask") for name, _ in small.named_buffers())
    x = torch.randn(2, 3, 8, 56, 56)
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)


def test_an_x3d_trained_in_channel_mode_exports_to_the_same_outputs():
    # Depthwise convolutions and squeeze-excitation sit inside its groups.
    model, optimizer, sparsity = channel_run(name="x3d_tiny", channel_sparsity=0.3, method="set",
                                             channel_multiple=1)
    train(model, sparsity, optimizer, 12, size=(8, 56, 56))
    assert all(int((~a).sum()) == round(0.3 * a.numel()) for a in sparsity.alive.values())
    for g in sparsity.channel_groups:  # the channels carry exact zeros past every norm
        gone = ~sparsity.alive[g.producer]
        assert all((model.get_submodule(n).weight[gone] == 0).all() and
                   (model.get_submodule(n).bias[gone] == 0).all() for n in g.norms), g.producer
    model.eval()
    small = sparsity.export().eval()
    x = torch.randn(2, 3, 8, 56, 56)
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)
    assert sum(p.numel() for p in small.parameters()) < 0.9 * sum(p.numel() for p in model.parameters())


def test_channel_removal_is_deterministic_and_resumes_from_state_dict():
    a = channel_run()
    train(a[0], a[2], a[1], 12)
    b = channel_run()
    train(b[0], b[2], b[1], 5)
    state = b[2].state_dict()
    c = channel_run()
    c[0].load_state_dict(b[0].state_dict())
    c[1].load_state_dict(b[1].state_dict())
    c[2].load_state_dict(state)
    train(c[0], c[2], c[1], 7, seed=5)
    for name in a[2].alive:
        assert torch.equal(a[2].alive[name], c[2].alive[name]), name
    assert all(torch.equal(a[2].masks[n], c[2].masks[n]) for n in a[2].masks)


def test_channel_sparsity_needs_a_regrowing_method_and_a_model_with_groups():
    with pytest.raises(ValueError, match="channel_sparsity needs a method"):
        SparsityConfig(method="static", channel_sparsity=0.5)
    with pytest.raises(ValueError, match=r"channel_sparsity must be in \[0, 1\)"):
        SparsityConfig(method="rigl", channel_sparsity=1.0)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))  # its only Linear feeds the output
    with pytest.raises(ValueError, match="has no channel group"):
        DynamicSparsity(flat, torch.optim.SGD(flat.parameters(), lr=0.1),
                        SparsityConfig(method="set", channel_sparsity=0.3), total_steps=10)
