"""Checking an exported file against the model it came from: running it back, comparing, refusing.

An exported file is run with onnxruntime on the CPU (ONNX, which must also pass ``onnx.checker``)
or ``torch.jit.load`` (TorchScript) and compared with the PyTorch module; :class:`Verification`
records the largest difference per (batch, frames) case, and a file above the tolerance is an
:class:`ExportError`. ``verify_export`` and ``verify_denoiser`` in :mod:`waveglow.export` use these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import ExportError
from .export_metadata import _format_of, _jit_load

__all__ = ["FLOAT32_TOLERANCE", "FLOAT16_TOLERANCE", "Verification"]

# Largest |exported - model.infer| accepted, on random mels and unit-variance z.
FLOAT32_TOLERANCE = 1e-4
FLOAT16_TOLERANCE = 5e-2  # half precision against the float32 model: measured in docs/export.md


@dataclass
class Verification:
    """Largest |exported - reference| per (batch, frames) checked, and the tolerance applied."""

    tolerance: float
    max_abs_diff: dict[tuple[int, int], float] = field(default_factory=dict)
    checker: str = ""

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values())

    def summary(self) -> str:
        cases = ", ".join(f"B{b} F{f}: {d:.2e}" for (b, f), d in self.max_abs_diff.items())
        return f"max abs diff {cases} (tolerance {self.tolerance:g}){self.checker}"


class _Runner:
    """Runs an exported file: ``runner(*numpy arrays) -> numpy array``."""

    def __init__(self, path: str) -> None:
        self.format = _format_of(path)
        if self.format == "onnx":
            import onnxruntime

            self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            self.names = [i.name for i in self.session.get_inputs()]
        else:
            self.module = _jit_load(path)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.format == "onnx":
            feed = {name: x.numpy() for name, x in zip(self.names, inputs)}
            return torch.from_numpy(np.asarray(self.session.run(None, feed)[0]))
        with torch.no_grad():
            return self.module(*inputs)


def _check_onnx(path: str) -> str:
    if _format_of(path) != "onnx":
        return ""
    import onnx

    onnx.checker.check_model(path)
    return "; onnx.checker passed"


def _tolerance(dtype: torch.dtype, tolerance: float | None) -> float:
    if tolerance is not None:
        return tolerance
    return FLOAT32_TOLERANCE if dtype == torch.float32 else FLOAT16_TOLERANCE


def _random_frames(seed: int, count: int = 2, low: int = 5, high: int = 40) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    return [int(f) for f in torch.randint(low, high, (count,), generator=gen)]


def _difference(got: torch.Tensor, expected: torch.Tensor) -> float:
    if got.shape != expected.shape:
        return math.inf
    return (got.float() - expected.float()).abs().max().item()


def _refuse_above(path: str, result: Verification) -> None:
    if not all(d <= result.tolerance for d in result.max_abs_diff.values()):  # NaN and inf fail too
        raise ExportError(f"{path}: the exported graph does not reproduce the model: {result.summary()}")
