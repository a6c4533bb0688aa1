"""Video corruptions: spatial (temporally consistent), temporal and codec.

Importing this package registers every corruption; ``list_corruptions()`` names them.
"""

from vidsparse.corruptions.registry import (
    CORRUPTIONS,
    KINDS,
    Corruption,
    SEVERITIES,
    corrupt,
    list_corruptions,
    register_corruption,
    source_name,
    video_seed,
)
from vidsparse.corruptions import blur, codec, digital, spatial, temporal, weather  # noqa: F401  (importing registers them)
from vidsparse.corruptions.generate import corrupt_dataset, dataset_source, verify_dataset

__all__ = ["CORRUPTIONS", "KINDS", "Corruption", "SEVERITIES", "corrupt", "corrupt_dataset", "dataset_source",
           "list_corruptions", "register_corruption", "source_name", "verify_dataset", "video_seed"]
