"""vidsparse: dynamic sparse training of video models, and their robustness to corrupted video."""

from vidsparse import sparse
from vidsparse.corruptions import corrupt, list_corruptions
from vidsparse.models import create_model, list_models
from vidsparse.sparse import DynamicSparsity, SparsityConfig

__version__ = "0.1.0"

__all__ = [
    "DynamicSparsity",
    "SparsityConfig",
    "corrupt",
    "create_model",
    "list_corruptions",
    "list_models",
    "sparse",
]
