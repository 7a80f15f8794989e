"""The pieces of a training run around the loop: its state, the learning-rate schedule, eval mode
for validation, and the SIGINT/SIGTERM handlers that make the loop save a checkpoint and stop."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import torch

__all__ = ["TrainingState", "StopSignal", "learning_rate_at", "evaluating", "install_stop_handlers",
           "restore_handlers"]


@dataclass
class TrainingState:
    """Everything a checkpoint holds about a run's progress."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    iteration: int = 0
    weights_loaded: bool = False  # from a checkpoint: no data-dependent initialisation then


def learning_rate_at(iteration: int, train_config) -> float:
    """The step schedule: learning_rate * lr_gamma ** (iteration // lr_step_size) (constant when lr_step_size is 0)."""
    t = train_config
    if t.lr_step_size <= 0:
        return t.learning_rate
    return t.learning_rate * t.lr_gamma ** (iteration // t.lr_step_size)


@contextmanager
def evaluating(model: torch.nn.Module):
    """Eval mode inside, the previous mode restored after, even when the body raises."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@dataclass
class StopSignal:
    """Set by SIGINT/SIGTERM (see :func:`install_stop_handlers`); the loop saves and exits."""

    signum: int | None = None


_Stopped = StopSignal  # the name earlier releases used


def install_stop_handlers(stop: StopSignal) -> dict:
    """SIGINT/SIGTERM set ``stop.signum``; the loop saves a checkpoint and exits cleanly."""

    def handler(signum, frame):
        if stop.signum is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        stop.signum = signum
        print(f"signal {signum}: saving a checkpoint after this iteration (send again to abort)", file=sys.stderr)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread
            pass
    return previous


def restore_handlers(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
