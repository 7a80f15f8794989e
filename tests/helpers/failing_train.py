"""train.py, except that rank 1 raises after its first iteration (for the failure test)."""

import os
import sys

from waveglow import training
from waveglow.cli import train

if os.environ.get("RANK") == "1":
    original = training.Trainer.train_step

    def failing_step(self, mel, audio):
        if self.iteration >= 1:
            raise RuntimeError("planted failure on rank 1")
        return original(self, mel, audio)

    training.Trainer.train_step = failing_step

if __name__ == "__main__":
    sys.exit(train.main())
