"""A training run's checkpoint files: their names, which are kept, and which one a resume starts from.

Files are named ``<family>_<iteration>`` (NVIDIA's ``waveglow_<iteration>`` for WaveGlow) and live in
the run's output directory; :class:`CheckpointPolicy` lists, prunes and picks among them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .checkpoint import read_checkpoint
from .errors import CheckpointError

__all__ = ["CheckpointPolicy", "find_latest_checkpoint", "checkpoint_name"]


def checkpoint_name(iteration: int, family: str = "waveglow") -> str:
    """``<family>_<iteration>``: NVIDIA's ``waveglow_<iteration>`` for WaveGlow."""
    return f"{family}_{iteration}"


@dataclass
class CheckpointPolicy:
    """Where a run's checkpoints go, which are kept, and which one a resume starts from."""

    directory: str
    family: str = "waveglow"
    keep_last: int = 0  # 0 keeps all

    def path(self, iteration: int) -> str:
        return os.path.join(self.directory, checkpoint_name(iteration, self.family))

    def numbered(self) -> list[tuple[int, str]]:
        """``(iteration, path)`` of every ``<family>_<n>`` file, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        pattern = re.compile(rf"^{re.escape(self.family)}_(\d+)$")
        found = [(int(m.group(1)), os.path.join(self.directory, name))
                 for name in os.listdir(self.directory) for m in [pattern.match(name)] if m]
        return sorted(found)

    def latest(self) -> str | None:
        found = self.numbered()
        return found[-1][1] if found else None

    def resume_point(self, log=print):
        """The newest checkpoint that reads, as a Checkpoint; each newer unreadable one is named and skipped."""
        for _, path in reversed(self.numbered()):
            try:
                return read_checkpoint(path, map_location="cpu")
            except CheckpointError as e:
                log(f"--resume: skipping {path}: {e}")
        return None

    def prune(self) -> None:
        if self.keep_last > 0:
            for _, old in self.numbered()[: -self.keep_last]:
                os.unlink(old)


def find_latest_checkpoint(directory: str, family: str = "waveglow") -> str | None:
    """The ``<family>_<iteration>`` file with the highest iteration in ``directory``, if any."""
    return CheckpointPolicy(directory, family).latest()
