"""Every registered model refuses a clip it cannot run with a ValueError naming the shape it
takes, and accepts every clip it can run (parametrized over the registry)."""

import copy
import functools
import pickle
import re

import pytest
import torch

import vidsparse
from vidsparse.models import MODELS
from vidsparse.models.registry import ClipCheck

NAMES = vidsparse.list_models()
ANY_SIZE = re.escape("r3d_tiny was built for clips of shape (B, 3, T, H, W), got ")


@functools.lru_cache(maxsize=None)
def build(name, **kwargs):
    """The model at its test size (``test_kwargs``), or at ``kwargs``; eval mode, cached."""
    torch.manual_seed(0)
    kwargs = kwargs or MODELS.meta(name).get("test_kwargs", {})
    return vidsparse.create_model(name, num_classes=7, **kwargs).eval()


def spec_of(model):
    (check,) = [h for h in model._forward_pre_hooks.values() if isinstance(h, ClipCheck)]
    return check.spec


def run(model, shape, checked=True, device="cpu"):
    """Logits of one random clip; ``checked=False`` calls ``forward`` itself, past the check."""
    x = torch.randn(1, *shape, device=device)
    with torch.no_grad():
        return model(x) if checked else model.forward(x)


def shapes_at_the_bounds(spec, base):
    """(T, H, W) at each bound of each dimension, the other two at ``base``: (inside, shape)."""
    for d in range(3):
        high = spec.high[d]
        for value, inside in [(spec.low[d], True), (spec.low[d] - 1, False),
                              (high, True), (None if high is None else high + 1, False)]:
            if value is not None and value >= 1:
                shape = list(base)
                shape[d] = value
                yield inside, tuple(shape)


@pytest.mark.parametrize("name", NAMES)
def test_a_4d_clip_names_the_5d_shape(name):
    model = build(name)
    t, h, w = MODELS.meta(name)["test_input"]
    with pytest.raises(ValueError, match=rf"^{name} was built for clips of shape \(B, 3, .*"
                                         rf"got \(3, {t}, {h}, {w}\); a single clip needs a "
                                         rf"batch dimension \(clip\.unsqueeze\(0\)\)"):
        model(torch.randn(3, t, h, w))
    with pytest.raises(ValueError, match=r"shape \(B, 3, "):
        model(torch.randn(1, 1, 3, t, h, w))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", [1, 4])
def test_a_clip_with_another_channel_count_names_the_shape(name, channels):
    model = build(name)
    t, h, w = MODELS.meta(name)["test_input"]
    with pytest.raises(ValueError, match=rf"^{name} was built for clips of shape \(B, 3, .*, "
                                         rf"got \(2, {channels}, {t}, {h}, {w}\)$"):
        model(torch.randn(2, channels, t, h, w))


@pytest.mark.parametrize("name", NAMES)
def test_the_bounds_are_those_of_the_network(name):
    """At each bound the clip runs; one past it the network itself cannot run it (so the
    check refuses no clip that works) and the check says so, naming the shape it takes."""
    model = build(name)
    spec = spec_of(model)
    base = MODELS.meta(name)["test_input"]
    assert spec.channels == 3 and spec.fits(base)
    assert run(model, (3, *base)).shape == (1, 7)
    for inside, shape in shapes_at_the_bounds(spec, base):
        if inside:
            assert run(model, (3, *shape)).shape == (1, 7), shape
            continue
        with pytest.raises((RuntimeError, ValueError)):
            run(model, (3, *shape), checked=False)
        expected = re.escape(f"{name} was built for clips of shape {spec.describe()}, "
                             f"got (1, 3, {', '.join(map(str, shape))}); ")
        with pytest.raises(ValueError, match=f"^{expected}"):
            run(model, (3, *shape))


@pytest.mark.parametrize("name", NAMES)
def test_the_bounds_at_the_published_size(name):
    """As above at the size each model is published for, on the meta device (shapes only,
    nothing computed), where the head pools cover several positions."""
    with torch.device("meta"):
        model = vidsparse.create_model(name, num_classes=7).eval()
    spec = spec_of(model)
    base = MODELS.meta(name)["input_size"]
    assert spec.fits(base)
    for inside, shape in shapes_at_the_bounds(spec, base):
        if inside:
            assert run(model, (3, *shape), device="meta").shape == (1, 7), shape
            continue
        with pytest.raises((RuntimeError, ValueError)):
            run(model, (3, *shape), checked=False, device="meta")
        with pytest.raises(ValueError, match=re.escape(spec.describe())):
            run(model, (3, *shape), device="meta")


@pytest.mark.parametrize("name", [n for n in NAMES if MODELS.meta(n)["family"] == "3d-cnn"])
def test_cnns_take_clips_larger_than_their_test_size(name):
    model = build(name)
    t, h, w = MODELS.meta(name)["test_input"]
    assert spec_of(model).high == (None, None, None)
    assert run(model, (3, t + 3, h + 5, w + 9)).shape == (1, 7)


# Hand-computed from each architecture's strides (see the spec functions' comments).
@pytest.mark.parametrize("name, kwargs, described", [
    ("r3d_tiny", {}, "(B, 3, T, H, W)"),
    ("swin3d_tiny", {}, "(B, 3, T, H, W)"),
    ("timesformer_tiny", {}, "(B, 3, 8, 64, 64)"),
    ("vivit_tiny", {"frames": 4, "size": 32}, "(B, 3, 4, 32, 32)"),
    # patch embedding: kernel (3, 7, 7), stride (2, 4, 4), padding (1, 3, 3); grid 2 x 8 x 8
    ("mvit_tiny", {"frames": 4, "size": 32},
     "(B, 3, T, H, W) with 3 <= T <= 4 and 29 <= H, W <= 32"),
    # head pool (4, 2, 2); space / 32
    ("slow_tiny", {"frames": 4, "size": 64}, "(B, 3, T, H, W) with T >= 4 and H, W >= 33"),
    # head pool (3, 2, 2)
    ("x3d_tiny", {"frames": 3, "size": 40}, "(B, 3, T, H, W) with T >= 3 and H, W >= 33"),
    # head pool (5 // 2, 2, 2); time // 2 after stage 1
    ("i3d_tiny", {"frames": 5, "size": 48}, "(B, 3, T, H, W) with T >= 4 and H, W >= 33"),
    # pool (8 // 8, 64 // 32, 64 // 32); features floor(ceil(T / 4) / 2), floor(ceil(H / 16) / 2)
    ("s3d", {"frames": 8, "size": 64}, "(B, 3, T, H, W) with T >= 5 and H, W >= 49"),
    # head pool (16 // 8, 1, 1); time ceil(T / 8)
    ("csn_r101", {"frames": 16, "size": 16}, "(B, 3, T, H, W) with T >= 9"),
])
def test_the_shape_named_for_a_clip_too_small_or_of_another_size(name, kwargs, described):
    model = build(name, **kwargs)
    assert spec_of(model).describe() == described
    # The bounds hold beyond the test sizes, where the head pools cover more than one position.
    base = spec_of(model).low
    for inside, shape in shapes_at_the_bounds(spec_of(model), base):
        if inside:
            assert run(model, (3, *shape)).shape == (1, 7), shape
        else:
            with pytest.raises((RuntimeError, ValueError)):
                run(model, (3, *shape), checked=False)
            with pytest.raises(ValueError, match=re.escape(described)):
                run(model, (3, *shape))


def test_the_hint_names_the_builder_arguments():
    with pytest.raises(ValueError,
                       match="with T >= 2, got .*build it with smaller frames= and size="):
        run(build("slow_tiny"), (3, 1, 16, 16))
    with pytest.raises(ValueError,
                       match="got .*; build it with frames= and size= matching the clip"):
        run(build("timesformer_tiny"), (3, 8, 32, 32))


def test_the_check_survives_copies_and_adds_no_state():
    model = build("r3d_tiny")
    bare = MODELS.get("r3d_tiny")(num_classes=7)
    assert list(model.state_dict()) == list(bare.state_dict())
    for copied in (copy.deepcopy(model), pickle.loads(pickle.dumps(model)),
                   vidsparse.sparse.export(model)):
        assert run(copied, (3, 8, 56, 56)).shape == (1, 7)
        with pytest.raises(ValueError, match=ANY_SIZE):
            copied(torch.randn(3, 8, 56, 56))


@pytest.mark.parametrize("name", ["r3d_tiny", "mvit_tiny", "timesformer_tiny"])
def test_symbolic_trace_and_compile_still_work(name):
    model = build(name)
    clip = torch.randn(1, 3, *MODELS.meta(name)["test_input"])
    with torch.no_grad():
        expected = model(clip)
        if name == "r3d_tiny":  # the transformers use Python control flow fx cannot trace
            traced = torch.fx.symbolic_trace(model)
            assert torch.allclose(traced(clip), expected)
            # Inside a larger model the check sees an fx Proxy, not a tensor, and lets it by.
            nested = torch.fx.symbolic_trace(torch.nn.Sequential(model))
            assert torch.allclose(nested(clip), expected)
        compiled = torch.compile(model, backend="eager")
        assert torch.allclose(compiled(clip), expected, atol=1e-6)
        with pytest.raises(ValueError, match=rf"{name} was built for clips of shape"):
            compiled(clip[0])


def test_a_ddp_wrapped_model_is_checked(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        ddp = DistributedDataParallel(vidsparse.create_model("r3d_tiny", num_classes=3))
        assert ddp(torch.randn(2, 3, 4, 32, 32)).shape == (2, 3)
        with pytest.raises(ValueError, match=ANY_SIZE):
            ddp(torch.randn(2, 1, 4, 32, 32))
    finally:
        dist.destroy_process_group()
