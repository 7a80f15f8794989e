"""One-line error messages."""

from __future__ import annotations

__all__ = ["first_line"]


def first_line(e: BaseException) -> str:
    """An exception's message reduced to its first line, for one-line reports."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
