"""Where to run and in which precision: the device choice and the CPU's bfloat16 support.

bfloat16 pays on a CPU only with native bf16 arithmetic (AVX512-BF16 or AMX-BF16): there torch's
matrix products run bf16 at up to twice float32's rate. Without it (an AVX2-only or an older
AVX-512 CPU) every bf16 operation is emulated and runs 6-30x slower than float32, so
:func:`cpu_precision` falls back to float32 with one warning that says why.
"""

from __future__ import annotations

import functools
import warnings

import torch

__all__ = ["default_device", "cuda_device", "cpu_bf16_support", "cpu_precision"]

_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def default_device(requested: str | None = None) -> torch.device:
    """``requested`` ("cpu", "cuda", "cuda:1"), or CUDA when available, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cuda_device(local_rank: int) -> torch.device:
    """The GPU of a process: local_rank modulo the visible GPUs (launchers that give each process
    one GPU through CUDA_VISIBLE_DEVICES leave local ranks past the device count)."""
    return torch.device("cuda", local_rank % torch.cuda.device_count())


@functools.lru_cache(maxsize=None)
def cpu_bf16_support() -> tuple[bool, str]:
    """(whether this CPU computes bfloat16 natively, a short reason naming what was found)."""
    flags = _cpu_flags()
    if flags is not None:
        found = [f for f in _NATIVE_BF16_FLAGS if f in flags]
        if found:
            return True, f"the CPU has {' and '.join(found)}"
        capability = torch.backends.cpu.get_cpu_capability()
        return False, f"the CPU has neither avx512_bf16 nor amx_bf16 (torch's CPU capability: {capability})"
    supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return supported, "oneDNN reports bf16 support" if supported else "oneDNN reports no bf16 support"


def _cpu_flags() -> set[str] | None:
    """The CPU feature flags from /proc/cpuinfo, or None where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def cpu_precision(dtype: torch.dtype, what: str) -> torch.dtype:
    """``dtype`` for CPU work, or float32 with a warning when it is bfloat16 and the CPU lacks native bf16."""
    if dtype != torch.bfloat16:
        return dtype
    native, reason = cpu_bf16_support()
    if native:
        return dtype
    warnings.warn(
        f"{what}: bfloat16 falls back to float32 on this CPU ({reason}); emulated bf16 runs 6-30x slower than float32",
        stacklevel=2,
    )
    return torch.float32
