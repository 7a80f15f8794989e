"""Checkpoint averaging: the mean of a run's last N checkpoints, as one checkpoint (L0SG's ``-a N``).

Averaging the weights of the last checkpoints of a run smooths out the noise of the final
optimizer steps; L0SG/NanoFlow's published models are averages of their last 20. Every tensor of
the state dict is averaged in float64 and cast back (weight norm's ``weight_g`` and ``weight_v``
separately, as L0SG does); integer tensors are taken from the newest file. Any family and any
format the package reads can be averaged, as long as every file holds the same family and the same
keys and shapes. The result carries the newest file's config and iteration, and no optimizer
state: training from it starts a fresh optimizer, as L0SG's ``--warm_start`` does.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import torch

from .checkpoint import Checkpoint, read_checkpoint
from .errors import CheckpointError

__all__ = ["average_checkpoints", "last_checkpoints", "average_run"]

_NUMBERED = re.compile(r"^[A-Za-z][A-Za-z0-9]*_(\d+)$")  # <family>_<iteration>: ours, NVIDIA's, L0SG's


def last_checkpoints(directory: str | os.PathLike, n: int) -> list[str]:
    """The ``n`` files named ``<family>_<iteration>`` with the highest iterations in ``directory``, oldest first."""
    directory = os.fspath(directory)
    if n < 1:
        raise CheckpointError(f"{directory}: the number of checkpoints to average must be at least 1, got {n}")
    if not os.path.isdir(directory):
        raise CheckpointError(f"{directory}: not a directory of checkpoints")
    found = sorted((int(m.group(1)), name) for name in os.listdir(directory) for m in [_NUMBERED.match(name)] if m)
    if len(found) < n:
        raise CheckpointError(
            f"{directory}: {n} checkpoints to average, but only {len(found)} named <family>_<iteration> are there"
        )
    return [os.path.join(directory, name) for _, name in found[-n:]]


def average_checkpoints(paths: Sequence[str | os.PathLike]) -> Checkpoint:
    """The mean of the checkpoints at ``paths`` (the last one is the newest), as a Checkpoint of the newest's kind."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    checkpoints = [read_checkpoint(p, map_location="cpu") for p in paths]
    newest = checkpoints[-1]
    for other in checkpoints[:-1]:
        _check_compatible(other, newest)
    for checkpoint in checkpoints:
        _check_finite(checkpoint)
    state_dict = {}
    for key, last in newest.state_dict.items():
        if last.is_floating_point():
            total = sum(c.state_dict[key].double() for c in checkpoints)
            state_dict[key] = (total / len(checkpoints)).to(last.dtype)
        else:
            state_dict[key] = last.clone()
    names = ", ".join(os.path.basename(c.path) for c in checkpoints)
    return Checkpoint(
        path=f"average of {names}", kind=newest.kind, model_config=newest.model_config, state_dict=state_dict,
        config=newest.config, iteration=newest.iteration, learning_rate=newest.learning_rate, extra=dict(newest.extra),
        family=newest.family, data_config=dict(newest.data_config),
    )


def average_run(directory: str | os.PathLike, n: int) -> Checkpoint:
    """The mean of the last ``n`` checkpoints of a run directory."""
    return average_checkpoints(last_checkpoints(directory, n))


def _check_compatible(other: Checkpoint, newest: Checkpoint) -> None:
    """Same family, same keys, same shapes: else a one-line error naming both files and the difference."""
    where = f"{other.path} and {newest.path}"
    if other.family != newest.family:
        raise CheckpointError(f"{where}: cannot be averaged: a {other.family} and a {newest.family} model")
    if other.model_config != newest.model_config:
        raise CheckpointError(f"{where}: cannot be averaged: different architectures")
    if set(other.state_dict) != set(newest.state_dict):
        key = sorted(set(other.state_dict) ^ set(newest.state_dict))[0]
        raise CheckpointError(f"{where}: cannot be averaged: {key} is in one and not the other")
    for key, tensor in newest.state_dict.items():
        if other.state_dict[key].shape != tensor.shape:
            raise CheckpointError(
                f"{where}: cannot be averaged: {key} is {tuple(other.state_dict[key].shape)} in one and {tuple(tensor.shape)} in the other"
            )


def _check_finite(checkpoint: Checkpoint) -> None:
    """A diverged checkpoint would poison the mean: a one-line error naming it and the first bad tensor."""
    for key, tensor in checkpoint.state_dict.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{checkpoint.path}: {key} holds NaN or infinite values: not averaged")
