"""Where to run and in which precision: the device choice, the CPU's bfloat16 support, subnormal floats.

bfloat16 pays on a CPU only with native bf16 arithmetic (AVX512-BF16 or AMX-BF16): there torch's
matrix products run bf16 at up to twice float32's rate. Without it (an AVX2-only or an older
AVX-512 CPU) every bf16 operation is emulated and runs 6-30x slower than float32, so
:func:`cpu_precision` falls back to float32 with one warning that says why.

Subnormal float32 values (magnitude below 1.18e-38) cost an x86 CPU a microcode assist in every
operation that reads or writes one. Training makes them: as WaveGlow's gates saturate, sigmoid
inputs between -88.7 and -87.3 give subnormal outputs, and products of small gate values and
small gradients spread more through the backward convolutions. :func:`subnormals_flushed` runs
the training step with them flushed to zero.
"""

from __future__ import annotations

import functools
import platform
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from collections.abc import Callable, Iterator

import torch

__all__ = ["default_device", "cuda_device", "cpu_bf16_support", "cpu_precision", "subnormals_flushed",
           "flushes_subnormals"]

_SUBNORMAL_BITS = 0x00200000  # the float32 bit pattern of 2**-128 (2.9e-39), a subnormal
_ELEMENTS_PER_THREAD = 1 << 16  # twice torch's grain size: every intra-op thread takes a share

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


def _cpuinfo_field(name: str) -> str | None:
    """The first ``name`` line of /proc/cpuinfo, after its colon; None where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _cpu_flags() -> set[str] | None:
    """The CPU feature flags from /proc/cpuinfo, or None where there is none (not Linux)."""
    flags = _cpuinfo_field("flags")
    return None if flags is None else set(flags.split())


def cpu_name() -> str:
    """This machine's CPU model, as /proc/cpuinfo names it (else the platform's word for it)."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown CPU"


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


@contextmanager
def subnormals_flushed(device: torch.device) -> Iterator[Callable]:
    """Yields ``compute(fn, *args)``, which on the CPU runs ``fn`` with subnormal floats flushed to zero.

    Flush-to-zero and denormals-are-zero (FTZ/DAZ, what ``torch.set_flush_denormal`` sets) are bits
    of each thread's MXCSR register. A thread inherits them when it is created, and torch's OpenMP
    worker threads are created by a thread's first parallel operation, then kept: setting the bits
    on a thread that has computed anything reaches none of its workers. So ``compute`` runs ``fn`` on
    a thread of its own that sets them before its first operation; its workers inherit them. Leaving
    the block ends that thread and its workers; the caller's threads keep their setting throughout.
    Values below 1.18e-38 become 0; nothing else changes. On CUDA ``compute`` calls ``fn`` directly.
    """
    if device.type != "cpu":
        yield _call
        return
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flush-subnormals",
                                  initializer=torch.set_flush_denormal, initargs=(True,))
    try:
        yield lambda fn, *args, **kwargs: executor.submit(fn, *args, **kwargs).result()
    finally:
        executor.shutdown(wait=True)


def _call(fn: Callable, *args, **kwargs):
    return fn(*args, **kwargs)


def flushes_subnormals() -> bool:
    """Whether the calling thread and all of its intra-op worker threads flush subnormal float32 to zero.

    A multiply of subnormals large enough that every worker takes a share; the result is read as
    integer bits, since a float comparison on a DAZ thread would see a subnormal as zero anyway.
    """
    n = _ELEMENTS_PER_THREAD * max(1, torch.get_num_threads())
    subnormal = torch.full((n,), _SUBNORMAL_BITS, dtype=torch.int32).view(torch.float32)
    return not bool((subnormal * 1.0).view(torch.int32).any())
