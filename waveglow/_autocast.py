"""Autocast switched off for a block, on any device type."""

from __future__ import annotations

import contextlib

import torch


def autocast_off(device: torch.device):
    """Autocast disabled on ``device``; a plain context on devices autocast does not know (meta)."""
    if device.type == "meta":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)
