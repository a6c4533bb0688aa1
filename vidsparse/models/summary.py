"""Parameter counts per registered model: ``python -m vidsparse.models``."""

from __future__ import annotations

import torch

from vidsparse.models.registry import MODELS, create_model, list_models
from vidsparse.sparse.layers import find_prunable


def model_summary(name: str, num_classes: int = 400) -> dict:
    """Parameters, prunable parameters (what DynamicSparsity masks) and their share.

    Built on the meta device: nothing is allocated, so the large models cost nothing.
    """
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes)
    total = sum(p.numel() for p in model.parameters())
    prunable = sum(t.param.numel() for t in find_prunable(model))
    meta = MODELS.meta(name)
    return {"name": name, "family": meta.get("family", "?"), "input_size": meta.get("input_size"),
            "params": total, "prunable": prunable, "share": prunable / total}


def markdown_table(num_classes: int = 400) -> str:
    rows = ["| model | family | input (T×H×W) | parameters | prunable | prunable share |",
            "|---|---|---|---:|---:|---:|"]
    for name in list_models():
        s = model_summary(name, num_classes)
        size = "×".join(str(x) for x in s["input_size"]) if s["input_size"] else "?"
        rows.append(f"| `{name}` | {s['family']} | {size} | {s['params'] / 1e6:.2f}M | "
                    f"{s['prunable'] / 1e6:.2f}M | {s['share']:.1%} |")
    return "\n".join(rows)
