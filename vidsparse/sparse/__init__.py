"""The dynamic sparse training engine.

``SparsityConfig`` + ``DynamicSparsity`` drive masks on any model; ``SparseConv3d`` and
``SparseLinear`` are drop-in layers for people who write their own model.
"""

from vidsparse.sparse.channels import ChannelGroup, find_channel_groups, shrink
from vidsparse.sparse.distributions import DISTRIBUTIONS, layer_densities
from vidsparse.sparse.config import SparsityConfig
from vidsparse.sparse.engine import DynamicSparsity
from vidsparse.sparse.export import export, export_semi_structured, semi_structured_available
from vidsparse.sparse.layers import SparseConv3d, SparseLinear, find_prunable
from vidsparse.sparse.schedules import UpdateSchedule
from vidsparse.sparse.updaters import UPDATERS, Updater

__all__ = [
    "ChannelGroup",
    "DISTRIBUTIONS",
    "DynamicSparsity",
    "SparseConv3d",
    "SparseLinear",
    "SparsityConfig",
    "UPDATERS",
    "UpdateSchedule",
    "Updater",
    "export",
    "export_semi_structured",
    "find_channel_groups",
    "find_prunable",
    "layer_densities",
    "semi_structured_available",
    "shrink",
]
