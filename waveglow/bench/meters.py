"""Timing and memory meters of the benchmarks: synchronised wall clocks, peak tensor memory (CUDA's
allocator statistics, or counted op by op on the CPU), the process's peak resident set, and a count
of the subnormal floats that ops write.
"""

from __future__ import annotations

import statistics
import time
import weakref
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..devices import cpu_name

__all__ = [
    "synchronize", "TensorMemory", "PeakMemory", "PeakResidentMemory", "SubnormalCount", "time_runs", "summarise",
    "device_name", "megabytes",
]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a clock read afterwards includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


class TensorMemory(TorchDispatchMode):
    """Counts the bytes of tensor storage created inside the block and still alive, and its peak.

    The CPU stand-in for CUDA's ``max_memory_allocated``: every ATen op's new output storage is
    added when created and taken off when freed (a weakref finalizer), so reuse inside the
    allocator cannot hide it as it hides from the resident set size.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live, self.peak, self._alive = 0, 0, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if size and key not in self._alive:
                    self._alive.add(key)
                    self.live += size
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._free, key, size)
        return out

    def _free(self, key: int, size: int) -> None:
        self._alive.discard(key)
        self.live -= size


class PeakMemory:
    """The most memory the block's new tensors held at once, above what was allocated at entry:
    CUDA ``max_memory_allocated``, or on CPU :class:`TensorMemory`. Instrumented: never timed.
    ``enabled=False`` measures nothing and leaves ``peak`` None."""

    def __init__(self, device: torch.device, enabled: bool = True) -> None:
        self.device, self.enabled = device, enabled
        self.peak: int | None = 0 if enabled else None

    def __enter__(self) -> "PeakMemory":
        if not self.enabled:
            return self
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._mode = TensorMemory().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._mode.__exit__(*exc)
            self.peak = self._mode.peak


class PeakResidentMemory:
    """The process's peak resident set size inside the block above its size at entry (Linux:
    ``/proc/self/clear_refs`` resets the peak); ``peak`` None where that is unavailable. For
    memory that is not torch tensors (onnxruntime's)."""

    def __enter__(self) -> "PeakResidentMemory":
        self.peak = None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._base = _status_kib("VmRSS")
        except OSError:
            self._base = None
        return self

    def __exit__(self, *exc) -> None:
        if self._base is not None:
            self.peak = max(0, _status_kib("VmHWM") - self._base) * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


class SubnormalCount(TorchDispatchMode):
    """Counts the subnormal float32 values that the ops inside the block write (read from the bits,
    as a float comparison on a thread that treats subnormals as zero would not see them)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.device.type == "cpu":
                bits = t.detach().contiguous().view(torch.int32)
                self.count += int(((bits & 0x7F800000) == 0).logical_and_(bits & 0x007FFFFF != 0).sum())
        return out


def time_runs(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> tuple[list[float], int]:
    """Wall times of ``repeats`` synchronised calls after ``warmup`` untimed ones (at least one,
    through :class:`PeakMemory`: the peak memory returned, state created on a first call included)."""
    with PeakMemory(device) as mem:
        fn()
    for _ in range(warmup - 1):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times, mem.peak


def summarise(times: list[float], samples: int, sampling_rate: int) -> dict:
    """The median call of ``times`` (seconds) that each produced ``samples`` samples of audio:
    latency, samples/s, x real time and seconds of compute per second of audio."""
    median = statistics.median(times)
    audio_seconds = samples / sampling_rate
    return {
        "times_s": times,
        "latency_s": median,
        "samples_per_s": samples / median,
        "x_real_time": audio_seconds / median,
        "s_per_audio_s": median / audio_seconds,
    }


def megabytes(n: int | None) -> str:
    """Bytes as whole MiB for tables and progress lines ('' for None: not measured)."""
    return "" if n is None else f"{n / 2**20:.0f}"
