"""The machine-readable training log: ``metrics.jsonl`` in the run's output directory.

One JSON object per line, appended as training goes:

- training steps: ``{"iteration", "loss", "learning_rate", "grad_norm", "samples_per_second", "time"}``
  (``grad_norm`` is null for a skipped non-finite step; ``time`` is seconds since the epoch);
- validation: ``{"iteration", "validation_loss"}``;
- objective scores during training: ``{"iteration", "pesq_wb", "stoi", "log_mel_l1"}``.

A resumed run first drops the records past the iteration it resumes from, so the file always
describes one trajectory. Tools read it with :func:`read_metrics`.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from .atomic import atomic_open

__all__ = ["MetricsLog", "read_metrics"]


class MetricsLog:
    """Appends records to ``path``; records past ``start_iteration`` from an earlier run are dropped."""

    def __init__(self, path: str, start_iteration: int = 0) -> None:
        self.path = path
        if os.path.exists(path):
            kept = [r for r in read_metrics(path) if r.get("iteration", 0) <= start_iteration]
            with atomic_open(path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)
        self.file = open(path, "a", encoding="utf-8")

    def write(self, iteration: int, **values: Any) -> None:
        record = {"iteration": int(iteration), **{k: _plain(v) for k, v in values.items()}}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def step(self, iteration: int, loss: float, learning_rate: float, grad_norm: float | None, samples_per_second: float) -> None:
        self.write(iteration, loss=loss, learning_rate=learning_rate, grad_norm=grad_norm,
                   samples_per_second=samples_per_second, time=time.time())

    def close(self) -> None:
        self.file.close()


def _plain(value: Any) -> Any:
    """JSON has no NaN or infinity: non-finite floats are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: str) -> list[dict]:
    """Every record of a metrics.jsonl file, in order; a torn last line (a killed run) is ignored."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
