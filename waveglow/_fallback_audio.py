"""What :mod:`waveglow.audio` uses where librosa or soundfile is not installed (a bare GPU image, say).

- :func:`slaney_mel_filterbank`: the Slaney-scale, Slaney-normalised mel filterbank in numpy, the
  filters ``librosa.filters.mel(htk=False, norm="slaney")`` builds (equal to ~1e-15; a test compares them).
- :func:`read_wav`: WAV files through scipy (PCM 8/16/24/32-bit and float), the format of the
  bundled clips, and :func:`wav_info`, their header. Other formats (FLAC, OGG, ...) need soundfile.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import numpy as np

__all__ = ["slaney_mel_filterbank", "hz_to_slaney_mel", "slaney_mel_to_hz", "read_wav", "wav_info"]

# Slaney's Auditory Toolbox scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above it.
_HZ_PER_MEL = 200.0 / 3
_BREAK_HZ = 1000.0
_BREAK_MEL = _BREAK_HZ / _HZ_PER_MEL
_LOG_STEP = math.log(6.4) / 27.0


def hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _HZ_PER_MEL
    logarithmic = _BREAK_MEL + np.log(np.maximum(hz, _BREAK_HZ) / _BREAK_HZ) / _LOG_STEP
    return np.where(hz >= _BREAK_HZ, logarithmic, linear)


def slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _HZ_PER_MEL
    logarithmic = _BREAK_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _BREAK_MEL) - _BREAK_MEL))
    return np.where(mel >= _BREAK_MEL, logarithmic, linear)


def slaney_mel_filterbank(
    sampling_rate: int, filter_length: int, n_mel_channels: int, mel_fmin: float, mel_fmax: Optional[float]
) -> np.ndarray:
    """(n_mel_channels, filter_length // 2 + 1) float64: triangles between mel-spaced edges, each
    scaled by 2 / (its bandwidth in Hz), so every filter has unit area (Slaney's normalisation)."""
    fmax = sampling_rate / 2 if mel_fmax is None else mel_fmax
    bins_hz = np.fft.rfftfreq(filter_length, 1.0 / sampling_rate)  # (n_freq,)
    edges = slaney_mel_to_hz(np.linspace(hz_to_slaney_mel(mel_fmin), hz_to_slaney_mel(fmax), n_mel_channels + 2))
    widths = np.diff(edges)  # (n_mel + 1,)
    offsets = edges[:, None] - bins_hz[None, :]  # (n_mel + 2, n_freq)
    rising = -offsets[:-2] / widths[:-1, None]  # (n_mel, n_freq)
    falling = offsets[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def read_wav(path: str) -> tuple[np.ndarray, int]:
    """A WAV file -> ((T, channels) float32, sampling rate); integer PCM scaled by 1 / 2**(bits - 1).

    Raises ValueError when scipy cannot read the file as WAV."""
    from scipy.io import wavfile

    with warnings.catch_warnings():  # chunks it skips (PEAK, LIST) say nothing about the samples
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        rate, data = wavfile.read(path)
    if data.ndim == 1:
        data = data[:, None]
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        audio = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        audio = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    else:
        audio = data.astype(np.float32)
    return audio, int(rate)


def wav_info(path: str) -> tuple[int, int, int]:
    """A WAV file's (frames, sampling rate, channels), the samples memory-mapped rather than read.

    Raises ValueError when scipy cannot read the file as WAV."""
    from scipy.io import wavfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        try:
            rate, data = wavfile.read(path, mmap=True)
        except ValueError:  # formats scipy cannot map (24-bit): read them
            rate, data = wavfile.read(path)
    return int(data.shape[0]), int(rate), 1 if data.ndim == 1 else int(data.shape[1])
