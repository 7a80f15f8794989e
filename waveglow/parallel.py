"""torch.distributed set-up for training: torchrun's environment, or the reference's -r/-g flags."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .config import DistConfig

__all__ = ["ProcessInfo", "init_distributed", "shutdown_distributed", "DEFAULT_TIMEOUT_S"]

# How long a collective may wait for a missing rank before the job fails instead of hanging.
DEFAULT_TIMEOUT_S = 600


@dataclass(frozen=True)
class ProcessInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def init_distributed(dist_config: DistConfig, rank: int | None = None, group_name: str = "") -> ProcessInfo:
    """Join the process group when there is more than one process.

    torchrun (and SLURM wrappers that export its variables) sets RANK, WORLD_SIZE, LOCAL_RANK
    and MASTER_ADDR/PORT; those win. Without them, the reference's ``-r RANK`` with one process
    per visible GPU applies, rendezvousing at ``dist_config.dist_url``. NCCL needs CUDA: on a
    CPU-only machine the backend falls back to gloo.
    """
    env_rank, env_world = _env_int("RANK"), _env_int("WORLD_SIZE")
    if env_world is not None:
        info = ProcessInfo(env_rank or 0, env_world, _env_int("LOCAL_RANK") or 0)
    elif rank is not None and group_name and torch.cuda.device_count() > 1:
        info = ProcessInfo(rank, torch.cuda.device_count(), rank)
    else:
        return ProcessInfo()
    if info.world_size == 1:
        return info
    backend = dist_config.dist_backend
    if backend == "nccl" and not torch.cuda.is_available():
        backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank % torch.cuda.device_count())
    init_method = "env://" if "MASTER_ADDR" in os.environ else dist_config.dist_url
    timeout = timedelta(seconds=float(os.environ.get("WAVEGLOW_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)))
    dist.init_process_group(
        backend, init_method=init_method, world_size=info.world_size, rank=info.rank, timeout=timeout
    )
    return info


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
