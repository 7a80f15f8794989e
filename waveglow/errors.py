"""The package's exceptions, in one module every other module may import.

Each carries a one-line message that names the file or the setting at fault; command-line
entry points print it as it is (:func:`first_line`) and exit non-zero.
"""

from __future__ import annotations

__all__ = ["ConfigError", "CheckpointError", "StaleWeightsError", "first_line"]


class ConfigError(ValueError):
    """A config file or dict that cannot be used as it is."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read, written or used; the message names the file."""


class StaleWeightsError(RuntimeError):
    """A model's weights changed after the inference object built from them."""


def first_line(e: BaseException) -> str:
    """An exception's message reduced to its first line, for one-line reports."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
