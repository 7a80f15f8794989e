"""The GPU check: one command that a machine with a GPU runs once, within a time budget.

    scripts/gpu_check.sh [OUT]                    # on the GPU machine ($OUT when set)
    scripts/gpu_check.sh --cpu-rehearsal [OUT]    # every stage on the CPU with tiny sizes

Stages, in order, each timed against the budget and each catching its own failure:
environment facts, the CUDA tests (``pytest -m cuda``), benchmarks of both families, a
``torchrun`` run with a checkpoint and a resume, and training the demo voice with the time left.
``summary.json`` and ``summary.md`` are rewritten after every stage, so a run cut short still says
what it measured. Details: docs/benchmarks.md, "Running the GPU check".
"""

from .run import STAGES, main

__all__ = ["STAGES", "main"]
