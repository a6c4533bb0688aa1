"""Video corruptions: spatial (temporally consistent), temporal and codec."""

from vidsparse.corruptions.registry import (
    CORRUPTIONS,
    KINDS,
    SEVERITIES,
    corrupt,
    list_corruptions,
    register_corruption,
)

__all__ = ["CORRUPTIONS", "KINDS", "SEVERITIES", "corrupt", "list_corruptions", "register_corruption"]
