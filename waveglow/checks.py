"""Range checks shared by every config section: one-line :class:`ConfigError` naming the key."""

from __future__ import annotations

import math
from typing import Mapping

from .errors import ConfigError

__all__ = ["require_positive", "require_non_negative"]


def require_positive(values: Mapping[str, float], source: str) -> None:
    """A one-line ConfigError naming the first key whose value is not a positive number (NaN included)."""
    for key, value in values.items():
        if not 0 < value < math.inf:
            raise ConfigError(f"{source}: {key} must be positive, got {value}")


def require_non_negative(values: Mapping[str, float], source: str) -> None:
    """A one-line ConfigError naming the first key whose value is negative or not a finite number."""
    for key, value in values.items():
        if not 0 <= value < math.inf:
            raise ConfigError(f"{source}: {key} must be >= 0, got {value}")
