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


def test_groups_of_the_resnets_are_the_inner_block_channels_and_the_residual_streams():
    tiny = find_channel_groups(vidsparse.create_model("r3d_tiny", num_classes=3), residual=True)
    inner = [g for g in tiny if not g.coupled]
    assert [g.producer for g in inner] == ["stages.0.conv1", "stages.1.conv1", "stages.2.conv1"]
    assert [g.consumers for g in inner] == [("stages.0.conv2",), ("stages.1.conv2",), ("stages.2.conv2",)]
    streams = {g.producer: g for g in tiny if g.coupled}
    # Stage 0 keeps the stem's width: the stem and the block's last conv write one stream,
    # read by the block's first conv and by both layers of stage 1's first block.
    s0 = streams["stem.0"]
    assert s0.producers == ("stem.0", "stages.0.conv2") and s0.channels == 16
    assert set(s0.norms) == {"stem.1", "stages.0.bn2"}
    assert set(s0.consumers) == {"stages.0.conv1", "stages.1.conv1", "stages.1.downsample.0"}
    # The last stream is pooled, flattened and read by the classifier.
    s2 = streams["stages.2.downsample.0"]
    assert s2.producers == ("stages.2.downsample.0", "stages.2.conv2") and s2.consumers == ("fc",)
    assert set(streams) == {"stem.0", "stages.1.downsample.0", "stages.2.downsample.0"}

    r3d = find_channel_groups(vidsparse.create_model("r3d_18", num_classes=3), residual=True)
    # Eight BasicBlocks; torchvision wraps each conv in a Sequential with its norm.
    inner = [g for g in r3d if not g.coupled]
    assert len(inner) == 8 and all(g.producer.endswith("conv1.0") for g in inner)
    assert all(g.norms == (g.producer[:-1] + "1",) for g in inner)
    streams = [g for g in r3d if g.coupled]
    assert [g.channels for g in streams] == [64, 128, 256, 512]
    # Each later stage: the shortcut conv and both blocks' last convs write the stream.
    assert streams[1].producers == ("layer2.0.conv2.0", "layer2.0.downsample.0", "layer2.1.conv2.0")
    assert set(streams[1].consumers) == {"layer2.1.conv1.0", "layer3.0.conv1.0", "layer3.0.downsample.0"}
    # Without residual coupling (the default) only the inner channels are groups.
    assert find_channel_groups(vidsparse.create_model("r3d_18", num_classes=3)) == inner


class Streams(nn.Module):
    """Residual sums the groups must refuse: with the input, with a concatenation, with a
    constant, and one they may take (two convolutions summed, pooled, flattened, classified)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv3d(3, 8, 1), nn.Conv3d(3, 8, 1), nn.Conv3d(3, 3, 1)
        self.d, self.e = nn.Conv3d(8, 4, 1), nn.Conv3d(8, 4, 1)
        self.f = nn.Conv3d(8, 8, 1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8, 2)
        self.g = nn.Linear(8, 4)
        self.h = nn.Linear(4, 2)

    def forward(self, x):
        kept = self.a(x) + self.b(x)                 # a group: a and b drop the same channels
        with_input = self.c(x) + x                   # the input's channels are fixed
        widened = torch.cat([self.d(kept), self.e(kept)], 1)
        shifted = self.f(widened) + 1.0              # a constant: removed channels would be 1
        mixed = self.g(kept)                         # a Linear over the width of a clip
        y = self.fc(torch.flatten(self.pool(torch.relu(kept)), 1))
        return y, with_input, shifted, self.h(mixed)


def test_residual_groups_take_sums_of_producers_only():
    groups = {g.producer: g for g in find_channel_groups(Streams(), residual=True)}
    # kept also reaches self.g, a Linear acting on the clip's last dimension, so a and b are
    # no group; c meets the input, d and e a concatenation, f a constant. Only g's outputs,
    # read by h alone, can go.
    assert set(groups) == {"g"} and groups["g"].consumers == ("h",)
    class Fine(Streams):
        def forward(self, x):
            kept = self.a(x) + self.b(x)
            return self.fc(torch.flatten(self.pool(torch.relu(kept)), 1)), self.d(kept)
    groups = find_channel_groups(Fine(), residual=True)
    assert len(groups) == 1
    assert groups[0].producers == ("a", "b") and set(groups[0].consumers) == {"fc", "d"}


def test_an_x3d_bottleneck_group_carries_its_depthwise_conv_norms_and_squeeze_excitation():
    groups = {g.producer: g for g in find_channel_groups(vidsparse.create_model("x3d_tiny", num_classes=3))}
    g = groups["blocks.1.res_blocks.0.branch2.conv_a"]
    prefix = "blocks.1.res_blocks.0.branch2."
    assert g.depthwise == (prefix + "conv_b",)
    assert set(g.norms) == {prefix + "norm_a", prefix + "norm_b.0"}
    assert g.gates == ((prefix + "norm_b.1", prefix + "norm_b.1.block.0", prefix + "norm_b.1.block.2"),)
    assert g.consumers == (prefix + "conv_c",)
    # The head's 2048 features reach its Linear through a permute that puts channels last.
    assert groups["blocks.5.pool.post_conv"].consumers == ("blocks.5.proj",)


def test_the_last_stream_of_a_pytorchvideo_resnet_reaches_its_head_through_a_permute():
    groups = find_channel_groups(vidsparse.create_model("slow_tiny", num_classes=3), residual=True)
    last = [g for g in groups if "blocks.5.proj" in g.consumers]
    assert len(last) == 1 and last[0].producer == "blocks.4.res_blocks.0.branch1_conv"
    assert len(last[0].producers) == 4  # the shortcut and three blocks write the stream


@pytest.mark.parametrize("name", ["r3d_tiny", "x3d_tiny", "r3d_18", "i3d_tiny", "r2plus1d_tiny", "slow_tiny"])
def test_shrink_keeps_the_outputs_when_removed_channels_carry_zeros(name):
    torch.manual_seed(0)
    model = vidsparse.create_model(name, num_classes=4).eval()
    groups = find_channel_groups(model, residual=True)  # streams: several producers per group
    alive = {}
    with torch.no_grad():
        for g in groups:
            keep = torch.rand(g.channels) < 0.5
            keep[0] = True
            alive[g.producer] = keep
            for name in g.producers:
                producer = model.get_submodule(name)
                producer.weight[~keep] = 0
                if producer.bias is not None:
                    producer.bias[~keep] = 0
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


def channel_run(steps=12, channel_sparsity=0.5, method="rigl", density=0.5, name="r3d_tiny",
                filter_fn=None, **kwargs):
    torch.manual_seed(0)
    model = vidsparse.create_model(name, num_classes=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    cfg = SparsityConfig(method=method, density=density, distribution="uniform", update_interval=2,
                         end_fraction=0.75, channel_sparsity=channel_sparsity, seed=1, **kwargs)
    sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=steps, filter_fn=filter_fn)
    return model, optimizer, sparsity


def test_training_removes_the_scheduled_channels_and_keeps_them_empty():
    model, optimizer, sparsity = channel_run(channel_residual=True)
    assert len(sparsity.channel_groups) == 6  # 3 inner block channels, 3 residual streams
    train(model, sparsity, optimizer, 12)  # updates at 2, 4, 6, 8: the last one reaches 50%
    counts = {t.name: t.mask.numel() for t in sparsity.targets}
    for g in sparsity.channel_groups:
        alive = sparsity.alive[g.producer]
        assert int((~alive).sum()) == round(0.5 * g.channels), g.producer
        for name in g.producers:  # all writers of a residual stream lose the same rows
            producer = model.get_submodule(name)
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


@pytest.mark.parametrize("residual", [False, True])
def test_export_is_narrower_and_gives_the_same_outputs(residual):
    model, optimizer, sparsity = channel_run(channel_residual=residual)
    train(model, sparsity, optimizer, 12)
    model.eval()
    small = sparsity.export().eval()
    assert small.stages[0].conv1.out_channels == 8 and small.stages[0].bn1.num_features == 8
    assert small.stages[0].conv2.in_channels == 8 and small.stages[2].conv1.out_channels == 32
    if residual:  # the streams narrowed too: the stem, the blocks' outputs, the classifier input
        assert small.stem[0].out_channels == small.stages[0].conv2.out_channels == 8
        assert small.stages[2].downsample[0].out_channels == small.fc.in_features == 32
    else:
        assert small.stem[0].out_channels == small.stages[0].conv2.out_channels == 16
        assert small.stages[2].downsample[0].out_channels == small.fc.in_features == 64
    assert not any(name.endswith("_mask") for name, _ in small.named_buffers())
    x = torch.randn(2, 3, 8, 56, 56)
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)


def test_a_producer_left_dense_by_filter_fn_still_loses_its_rows():
    # The stem is no sparse target here, yet it writes the first residual stream.
    model, optimizer, sparsity = channel_run(filter_fn=lambda module, name: name != "stem.0",
                                             channel_residual=True)
    assert "stem.0.weight" not in sparsity.masks
    train(model, sparsity, optimizer, 12)
    gone = ~sparsity.alive["stem.0"]
    assert int(gone.sum()) == 8
    assert (model.stem[0].weight[gone] == 0).all() and (model.stem[0].weight[~gone] != 0).any()
    model.eval()
    small = sparsity.export().eval()
    x = torch.randn(2, 3, 8, 56, 56)
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)


def test_by_default_channel_mode_keeps_the_residual_streams():
    model, optimizer, sparsity = channel_run()
    assert sorted(sparsity.alive) == ["stages.0.conv1", "stages.1.conv1", "stages.2.conv1"]
    with pytest.raises(ValueError, match="channel_residual must be true or false"):
        SparsityConfig(method="rigl", channel_sparsity=0.5, channel_residual="yes")


def test_an_x3d_trained_in_channel_mode_exports_to_the_same_outputs():
    # Depthwise convolutions and squeeze-excitation sit inside its groups.
    model, optimizer, sparsity = channel_run(name="x3d_tiny", channel_sparsity=0.3, method="set",
                                             channel_multiple=1, channel_residual=True)
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
    a = channel_run(channel_residual=True)
    train(a[0], a[2], a[1], 12)
    b = channel_run(channel_residual=True)
    train(b[0], b[2], b[1], 5)
    state = b[2].state_dict()
    c = channel_run(channel_residual=True)
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
