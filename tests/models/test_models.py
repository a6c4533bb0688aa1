"""Every registered model (STYLE.md rule 6: parametrized over the registry)."""

import pytest
import torch

import vidsparse
from vidsparse.sparse import find_prunable


@pytest.mark.parametrize("name", vidsparse.list_models())
def test_forward_backward_and_prunable_layers(name):
    torch.manual_seed(0)
    model = vidsparse.create_model(name, num_classes=7)
    clip = torch.randn(2, 3, 4, 32, 32)
    logits = model(clip)
    assert logits.shape == (2, 7)
    logits.sum().backward()
    targets = find_prunable(model)
    convs_and_linears = [m for m in model.modules()
                         if isinstance(m, (torch.nn.Conv3d, torch.nn.Linear))]
    assert len(targets) == len(convs_and_linears) > 0
    assert all(t.param.grad is not None for t in targets)


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError, match="known: .*r3d_18.*r3d_tiny"):
        vidsparse.create_model("r3d_19", num_classes=3)


@pytest.mark.parametrize("bad", [0, -1, 2.5, None])
def test_bad_num_classes_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        vidsparse.create_model("r3d_tiny", num_classes=bad)
