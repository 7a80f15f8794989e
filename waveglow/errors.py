"""The package's exceptions, in one module every other module may import.

Each carries a one-line message that names the file or the setting at fault; command-line
entry points print it as it is (:func:`first_line`) and exit non-zero.
"""

from __future__ import annotations

__all__ = [
    "ConfigError", "CheckpointError", "StaleWeightsError", "AudioError", "MelError", "TrainingError", "ExportError",
    "OnnxModelError", "StreamClosedError", "first_line",
]


class ConfigError(ValueError):
    """A config file or dict that cannot be used as it is."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read, written or used; the message names the file."""


class StaleWeightsError(RuntimeError):
    """A model's weights changed after the inference object built from them."""


class AudioError(ValueError):
    """An audio file that cannot be used as it is; the message starts with the file's path.

    ``reason`` is a short category ("missing", "unreadable", "truncated", "empty", "sampling rate",
    "channels") for tools that tally problems. The constructor also accepts a bare message, so the
    error survives being re-raised from a DataLoader worker.
    """

    def __init__(self, message: str, *, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


class MelError(ValueError):
    """A mel spectrogram that cannot be vocoded (shape, values or file)."""


class ExportError(RuntimeError):
    """An export that failed, or a file that does not reproduce the model."""


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why and what to check."""


class OnnxModelError(RuntimeError):
    """An ONNX file that cannot serve as a vocoder (missing, unreadable, or without our metadata)."""


class StreamClosedError(RuntimeError):
    """A stream used after ``flush()`` ended it."""


def first_line(e: BaseException) -> str:
    """An exception's message reduced to its first line, for one-line reports."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
