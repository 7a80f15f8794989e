"""argparse types that range-check numeric flags where they are parsed.

A value out of range stops the command before it does anything, with argparse's one line naming the
flag (``error: argument --sigma: must be a number >= 0, got 'nan'``) and exit status 2. NaN and
infinity are out of range for every float flag.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

__all__ = ["positive_int", "non_negative_int", "positive_float", "non_negative_float", "fraction", "port", "onnx_opset"]


def _checked(convert: Callable[[str], float], test: Callable[[float], bool], wanted: str) -> Callable[[str], float]:
    """An argparse ``type`` converting with ``convert`` and accepting what passes ``test``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = wanted  # argparse names the type in some messages
    return parse


positive_int = _checked(int, lambda v: v > 0, "a positive integer")
non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: 0 < v < math.inf, "a positive number")
non_negative_float = _checked(float, lambda v: 0 <= v < math.inf, "a number >= 0")
fraction = _checked(float, lambda v: 0 <= v <= 1, "a number from 0 to 1")
port = _checked(int, lambda v: 0 < v < 65536, "a port number from 1 to 65535")


def onnx_opset(minimum: int) -> Callable[[str], int]:
    """An opset from ``minimum`` to the newest one the installed onnx package knows (no upper bound without it)."""
    try:
        from onnx.defs import onnx_opset_version

        newest = onnx_opset_version()
    except ImportError:
        newest = None
    if newest is None:
        return _checked(int, lambda v: v >= minimum, f"an ONNX opset >= {minimum}")
    return _checked(int, lambda v: minimum <= v <= newest, f"an ONNX opset from {minimum} to {newest}")
