"""Video corruptions: spatial (temporally consistent), temporal and codec.

Importing this package registers every corruption; ``list_corruptions()`` names them.
"""

from vidsparse.corruptions.registry import (
    CORRUPTIONS,
    KINDS,
    SEVERITIES,
    corrupt,
    list_corruptions,
    register_corruption,
    source_name,
    video_seed,
)
from vidsparse.corruptions import blur, codec, digital, spatial, temporal, weather  # noqa: F401  (importing registers them)

__all__ = ["CORRUPTIONS", "KINDS", "SEVERITIES", "corrupt", "list_corruptions", "register_corruption",
           "source_name", "video_seed"]
