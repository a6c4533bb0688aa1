"""The dynamic sparse training engine (in progress)."""
from dataclasses import dataclass


@dataclass
class SparsityConfig:  # placeholder replaced by engine.py
    method: str = "rigl"


class DynamicSparsity:  # placeholder replaced by engine.py
    pass
