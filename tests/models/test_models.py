"""Every registered model, parametrized over the registry (so a new model is tested too)."""

import pickle

import pytest
import torch
import torch.nn as nn

import vidsparse
from vidsparse.models import MODELS
from vidsparse.sparse import DynamicSparsity, SparsityConfig

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def build(name, num_classes=7):
    torch.manual_seed(0)
    return vidsparse.create_model(name, num_classes=num_classes, **MODELS.meta(name).get("test_kwargs", {}))


def clip(name, batch=1):
    t, h, w = MODELS.meta(name)["test_input"]
    return torch.randn(batch, 3, t, h, w)


def expected_prunable(model):
    """Independent of find_prunable: every conv/linear weight and attention input projection."""
    names = set()
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            names.add(prefix + "weight")
        if isinstance(module, nn.MultiheadAttention):
            names.update(prefix + n for n, p in module.named_parameters(recurse=False)
                         if n.endswith("proj_weight"))
    return names


@pytest.mark.parametrize("name", vidsparse.list_models())
def test_registration_meta(name):
    meta = MODELS.meta(name)
    assert meta["family"] in ("3d-cnn", "transformer")
    assert len(meta["input_size"]) == 3 and len(meta["test_input"]) == 3
    assert meta["head"], "a head prefix is needed to load checkpoints with another class count"
    params = dict(build(name).named_parameters())
    assert all(any(k.startswith(p + ".") for k in params) for p in meta["head"]), meta["head"]


@pytest.mark.parametrize("name", vidsparse.list_models())
def test_forward_backward(name):
    model = build(name)
    logits = model(clip(name))
    assert logits.shape == (1, 7)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", vidsparse.list_models())
def test_sparse_coverage_density_and_updates(name):
    model = build(name)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    cfg = SparsityConfig(method="rigl", density=0.5, distribution="uniform", update_interval=1,
                         drop_fraction=0.3, end_fraction=1.0)
    sparsity = DynamicSparsity(model, optimizer, cfg, total_steps=10)
    masks = sparsity.masks
    # Every conv / linear / attention projection weight is masked; nothing else is.
    assert set(masks) == expected_prunable(model)
    for module_name, module in model.named_modules():
        if isinstance(module, NORMS):
            assert not any(n.startswith(f"{module_name}.") for n in masks), module_name
    assert not any(n.endswith("bias") for n in masks)
    counts = {n: int(m.sum()) for n, m in masks.items()}
    assert counts == {n: round(0.5 * m.numel()) for n, m in masks.items()}
    total = sum(m.numel() for m in masks.values())
    assert abs(sparsity.density() - 0.5) <= len(masks) / total  # rounding, one weight per layer
    # One RigL update and one SET update keep every layer's count exactly.
    model(clip(name)).sum().backward()
    optimizer.step()
    assert sparsity.step() is True
    assert {n: int(m.sum()) for n, m in sparsity.masks.items()} == counts
    sparsity.updater = vidsparse.sparse.UPDATERS.get("set")(cfg)
    sparsity.update_masks_(step=2)
    assert {n: int(m.sum()) for n, m in sparsity.masks.items()} == counts


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError, match="known: .*r3d_18.*r3d_tiny"):
        vidsparse.create_model("r3d_19", num_classes=3)


@pytest.mark.parametrize("bad", [0, -1, 2.5, None, True])
def test_bad_num_classes_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        vidsparse.create_model("r3d_tiny", num_classes=bad)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_checkpoint_with_another_class_count_replaces_only_the_head(tmp_path, suffix):
    source = build("r3d_tiny", num_classes=5)
    path = tmp_path / f"kinetics{suffix}"
    if suffix == ".pt":
        torch.save({"model_state": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    else:
        from safetensors.torch import save_file
        save_file(source.state_dict(), str(path))
    torch.manual_seed(1)
    model = vidsparse.create_model("r3d_tiny", num_classes=3, checkpoint=path)
    for key, value in source.state_dict().items():
        if key.startswith("fc."):
            assert model.state_dict()[key].shape[0] == 3
        else:
            assert torch.equal(model.state_dict()[key], value), key
    same = vidsparse.create_model("r3d_tiny", num_classes=5, checkpoint=path)
    assert torch.equal(same.fc.weight, source.fc.weight)


def test_checkpoint_errors_name_the_file_and_never_unpickle(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        vidsparse.create_model("r3d_tiny", num_classes=3, checkpoint=tmp_path / "nothing.pt")
    wrong = tmp_path / "r3d18.pt"
    torch.save(vidsparse.create_model("r3d_18", num_classes=3).state_dict(), wrong)
    with pytest.raises(ValueError, match="r3d18.pt does not fit"):
        vidsparse.create_model("r3d_tiny", num_classes=3, checkpoint=wrong)

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle.dumps({"fc.weight": Payload()}, protocol=2))
    with pytest.raises(ValueError, match="hostile.pt is not a plain tensor state dict"):
        vidsparse.create_model("r3d_tiny", num_classes=3, checkpoint=hostile)
    assert not (tmp_path / "pwned").exists()


def test_model_table_counts_prunable_parameters():
    from vidsparse.models.summary import model_summary
    s = model_summary("r3d_tiny", num_classes=4)
    model = vidsparse.create_model("r3d_tiny", num_classes=4)
    assert s["params"] == sum(p.numel() for p in model.parameters())
    convs_and_fc = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv3d, nn.Linear)))
    assert s["prunable"] == convs_and_fc


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_checkpoint_with_mask_buffers_of_a_sparse_run_loads(tmp_path, suffix):
    # A state dict saved from a model carrying DynamicSparsity's masks (as set_mask_ leaves
    # them: a bool buffer beside the weight, pruned weights zeroed).
    source = build("r3d_tiny", num_classes=5)
    conv = source.stages[0].conv1
    mask = torch.rand(conv.weight.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    conv.register_buffer("weight_mask", mask)
    with torch.no_grad():
        conv.weight.mul_(mask)
    state = source.state_dict()
    assert "stages.0.conv1.weight_mask" in state
    path = tmp_path / f"sparse{suffix}"
    if suffix == ".pt":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file
        save_file(state, str(path))
    torch.manual_seed(1)
    model = vidsparse.create_model("r3d_tiny", num_classes=5, checkpoint=path)
    loaded = model.state_dict()
    assert set(loaded) == set(state) - {"stages.0.conv1.weight_mask"}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key
    assert int((model.stages[0].conv1.weight == 0).sum()) >= int((~mask).sum())
