"""A 16-bit PCM WAV file written a piece at a time, valid at every moment.

The header is written first with no data; after every piece the samples are flushed to disk and then
the whole 44-byte header is rewritten in one write, its RIFF and data sizes counting them, so a player or a reader opening the file at any moment finds a valid WAV
of the audio written so far (a crash leaves a valid, shorter file).
"""

from __future__ import annotations

import os
import struct

import numpy as np

__all__ = ["WavStreamWriter", "wav_header"]


def wav_header(sampling_rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """The 44-byte header of a 16-bit PCM WAV holding ``data_bytes`` bytes of samples."""
    block = 2 * channels
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sampling_rate, sampling_rate * block, block, 16)
            + b"data" + struct.pack("<I", data_bytes))


class WavStreamWriter:
    """``write(int16 samples)`` appends and patches the header; ``close()`` ends the file. A context manager."""

    def __init__(self, path: str | os.PathLike, sampling_rate: int) -> None:
        self.path, self.sampling_rate, self.data_bytes = os.fspath(path), int(sampling_rate), 0
        self._file = open(self.path, "wb")
        self._file.write(wav_header(self.sampling_rate, 0))
        self._file.flush()

    def write(self, samples: np.ndarray) -> None:
        data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
        if not data:
            return
        self._file.seek(0, os.SEEK_END)
        self._file.write(data)
        self._file.flush()  # the samples are on disk before the header counts them
        self.data_bytes += len(data)
        self._file.seek(0)
        self._file.write(wav_header(self.sampling_rate, self.data_bytes))  # both sizes in one write
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "WavStreamWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
