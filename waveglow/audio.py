"""Audio loading and the mel features WaveGlow is conditioned on.

The features follow Tacotron 2's ``TacotronSTFT`` exactly: magnitude STFT with a periodic Hann
window and reflect padding of ``filter_length // 2`` on both sides, a Slaney-scale mel filterbank
with Slaney area normalisation, then ``log(clamp(mel, min=1e-5))``. A clip of ``T`` samples gives
``1 + T // hop_length`` frames.

Audio is read through soundfile as float32 scaled like the reference (int16 / 32768, no peak
normalisation). A file at another sampling rate or with several channels is an :class:`AudioError`
unless resampling or downmixing is asked for.

librosa is imported only where it is needed (the mel filterbank and the resampler), so code that
only loads features from disk does not need it; without librosa the filterbank comes from numpy, and
without soundfile WAV files are read through scipy (:mod:`waveglow._fallback_audio`).
"""

from __future__ import annotations

import os
import struct
from typing import Optional

import numpy as np
import torch
from torch import nn

from ._autocast import autocast_off
from ._fallback_audio import read_wav, slaney_mel_filterbank, wav_info
from .errors import AudioError

__all__ = ["AudioError", "MelSpectrogram", "mel_spectrogram", "mel_filterbank", "load_audio", "check_audio_file",
           "min_samples"]

LOG_CLAMP = 1e-5  # log(clamp(mel, min=LOG_CLAMP)), as in Tacotron 2's dynamic_range_compression


# ------------------------------------------------------------------------------------ features


def min_samples(filter_length: int) -> int:
    """The fewest samples a clip needs for features: the STFT's reflect padding needs more than filter_length // 2."""
    return filter_length // 2 + 1


def mel_filterbank(
    sampling_rate: int, filter_length: int, n_mel_channels: int, mel_fmin: float, mel_fmax: Optional[float]
) -> torch.Tensor:
    """Slaney-scale, Slaney-normalised mel filterbank -> (n_mel_channels, filter_length // 2 + 1) float64."""
    try:
        import librosa  # lazily: only building features needs it
    except ImportError:  # the same filters in numpy (a test holds them equal)
        return torch.from_numpy(slaney_mel_filterbank(sampling_rate, filter_length, n_mel_channels, mel_fmin, mel_fmax))

    basis = librosa.filters.mel(
        sr=sampling_rate,
        n_fft=filter_length,
        n_mels=n_mel_channels,
        fmin=mel_fmin,
        fmax=mel_fmax,
        htk=False,
        norm="slaney",
        dtype=np.float64,
    )
    return torch.from_numpy(basis)


class MelSpectrogram(nn.Module):
    """Log-mel features of Tacotron 2's recipe: (B, T) audio -> (B, n_mel_channels, 1 + T // hop_length).

    The window and the mel basis are (non-persistent) buffers, so ``.to(device)`` moves them and
    they never appear in a state dict. Whatever the input dtype, the output is float32, but the
    STFT and the mel projection run in float64 (CPU and CUDA): a float32 FFT has a rounding floor
    about 140 dB below its peak, which shows in the log domain as errors up to ~2e-3 in the quiet
    bands of a full-scale tone; in float64 the features match the exact recipe to ~5e-7 (the
    float32 output's rounding), at no measurable cost for clip-sized inputs.
    """

    def __init__(
        self,
        sampling_rate: int = 22050,
        filter_length: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        n_mel_channels: int = 80,
        mel_fmin: float = 0.0,
        mel_fmax: Optional[float] = 8000.0,
    ) -> None:
        super().__init__()
        if win_length > filter_length:
            raise ValueError(f"win_length {win_length} is longer than filter_length {filter_length}")
        self.filter_length = filter_length
        self.hop_length = hop_length
        self.win_length = win_length
        window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
        self.register_buffer("window", window, persistent=False)  # (win_length,)
        basis = mel_filterbank(sampling_rate, filter_length, n_mel_channels, mel_fmin, mel_fmax)
        self.register_buffer("mel_basis", basis, persistent=False)  # (n_mel, filter_length // 2 + 1)

    # the data_config keys the constructor takes, by the same names
    config_keys = ("sampling_rate", "filter_length", "hop_length", "win_length", "n_mel_channels", "mel_fmin", "mel_fmax")

    @classmethod
    def from_config(cls, data_config) -> "MelSpectrogram":
        """Build from a :class:`~waveglow.config.DataConfig` (NVIDIA's ``data_config`` keys)."""
        return cls(**{key: getattr(data_config, key) for key in cls.config_keys})

    def prepare_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio as this recipe's features expect it: Tacotron 2's takes it as read (no normalisation)."""
        return audio

    @property
    def min_samples(self) -> int:
        """The fewest samples a clip needs for these features (pass it to :func:`load_audio`)."""
        return min_samples(self.filter_length)

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """Magnitude STFT: (B, T) -> (B, filter_length // 2 + 1, 1 + T // hop_length), in audio's dtype."""
        if audio.shape[-1] < self.min_samples:
            raise ValueError(
                f"audio of {audio.shape[-1]} samples is too short for features: reflect padding needs "
                f"more than filter_length // 2 = {self.filter_length // 2} samples"
            )
        spectrum = torch.stft(
            audio,
            n_fft=self.filter_length,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window.to(audio.dtype),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )  # (B, n_freq, frames)
        return spectrum.abs()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) audio in [-1, 1] -> (B, n_mel_channels, 1 + T // hop_length) float32 log-mel."""
        if audio.dim() != 2:
            raise ValueError(f"expected audio of shape (B, T), got {tuple(audio.shape)}")
        with autocast_off(audio.device):
            magnitude = self.magnitude(audio.double())  # (B, n_freq, frames)
            mel = torch.matmul(self.mel_basis.double(), magnitude)  # (B, n_mel, frames)
            return torch.log(torch.clamp(mel, min=LOG_CLAMP)).float()


def mel_spectrogram(audio: torch.Tensor, data_config) -> torch.Tensor:
    """Features of one clip: (T,) audio -> (n_mel_channels, 1 + T // hop_length).

    Builds the filterbank on every call; for many clips, build one :class:`MelSpectrogram` instead.
    """
    features = MelSpectrogram.from_config(data_config).to(audio.device)
    with torch.no_grad():
        return features(audio.reshape(1, -1))[0]  # (n_mel, frames)


# -------------------------------------------------------------------------------------- loading


def _riff_data_shortfall(path: str) -> int:
    """Bytes missing from a WAV file's ``data`` chunk (0 when complete, or not a plain RIFF WAV).

    libsndfile quietly reads what is there when a WAV file was cut short; this catches that.
    A data size of 0 or 0xFFFFFFFF (streamed WAVs whose header was never finalised) is not checked.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return 0
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF):
                    return 0
                return max(0, chunk_size - (size - offset - 8))
            offset += 8 + chunk_size + (chunk_size & 1)
    return 0


def _read(path: str) -> tuple[np.ndarray, int]:
    """Read a file with soundfile (WAV through scipy where soundfile is not installed) ->
    ((T, channels) float32, sampling rate); AudioError if unreadable."""
    if not os.path.isfile(path):
        raise AudioError(f"{path}: no such file", reason="missing")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes)", reason="empty")
    try:
        import soundfile
    except ImportError:
        soundfile = None
    try:
        if soundfile is None:
            data, rate = read_wav(path)
        else:
            data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, EOFError) + ((soundfile.SoundFileError,) if soundfile else ()) as e:
        raise AudioError(f"{path}: cannot read as audio ({e})", reason="unreadable") from None
    missing = _riff_data_shortfall(path)
    if missing:
        raise AudioError(f"{path}: truncated WAV file ({missing} bytes of audio data missing)", reason="truncated")
    return data, rate


def _to_mono(data: np.ndarray, path: str, downmix: bool) -> np.ndarray:
    """(T, channels) -> (T,), averaging channels only when ``downmix`` is on."""
    if data.shape[1] == 1:
        return data[:, 0]
    _check_channels(path, data.shape[1], downmix)
    return data.mean(axis=1)


def _check_channels(path: str, channels: int, downmix: bool) -> None:
    if channels > 1 and not downmix:
        raise AudioError(
            f"{path}: {channels} channels, expected mono (downmixing is off: set data_config.downmix or pass --downmix)",
            reason="channels",
        )


def _check_rate(path: str, rate: int, sampling_rate: int, resample: bool) -> None:
    if rate != sampling_rate and not resample:
        raise AudioError(
            f"{path}: sampling rate {rate} Hz, expected {sampling_rate} Hz "
            "(resampling is off: set data_config.resample or pass --resample)",
            reason="sampling rate",
        )


def _resample(audio: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """(T,) at ``orig_rate`` -> (about T * target_rate / orig_rate,) at ``target_rate`` (soxr, high quality)."""
    import librosa  # lazily: only resampling needs it

    return librosa.resample(audio, orig_sr=orig_rate, target_sr=target_rate, res_type="soxr_hq").astype(np.float32)


def _require_samples(path: str, n_samples: int, needed: int, sampling_rate: int) -> None:
    """The one length check of a clip before features are made: AudioError (reason "too short") naming the file."""
    if n_samples < needed:
        raise AudioError(
            f"{path}: too short for the features: {n_samples} samples ({1000 * n_samples / sampling_rate:.1f} ms at "
            f"{sampling_rate} Hz), at least {needed} needed (more than filter_length // 2)",
            reason="too short",
        )


def check_audio_file(
    path: str | os.PathLike, sampling_rate: int, *, resample: bool = False, downmix: bool = False, needed: int = 0
) -> None:
    """What :func:`load_audio` would refuse, judged from the file's header alone (fast: no samples are read).

    Raises :class:`AudioError` naming the file: missing, empty, unreadable, another sampling rate
    (unless ``resample``), several channels (unless ``downmix``), or fewer than ``needed`` samples
    at ``sampling_rate``. Truncated data and NaN samples show only when the file is read.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(f"{path}: no such file", reason="missing")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes)", reason="empty")
    frames, rate, channels = _info(path)
    _check_channels(path, channels, downmix)
    _check_rate(path, rate, sampling_rate, resample)
    _require_samples(path, int(frames * sampling_rate / rate), needed, sampling_rate)


def _info(path: str) -> tuple[int, int, int]:
    """(frames, sampling rate, channels) from the header: soundfile, or scipy for WAV where it is not installed."""
    try:
        import soundfile
    except ImportError:
        try:
            return wav_info(path)
        except (ValueError, EOFError, OSError) as e:
            raise AudioError(f"{path}: cannot read as WAV audio ({e}; other formats need soundfile)",
                             reason="unreadable") from None
    try:
        info = soundfile.info(path)
    except (soundfile.SoundFileError, RuntimeError) as e:
        raise AudioError(f"{path}: cannot read as audio ({e})", reason="unreadable") from None
    return info.frames, info.samplerate, info.channels


def load_audio(
    path: str | os.PathLike, sampling_rate: int, *, resample: bool = False, downmix: bool = False, needed: int = 0
) -> torch.Tensor:
    """Read a mono audio file at ``sampling_rate`` -> (T,) float32.

    Any format soundfile reads (WAV of 16/24/32-bit int or float, FLAC, OGG, ...). Integer PCM is
    scaled by 1 / 2**(bits - 1), so int16 audio is int16 / 32768 as in the reference. Raises
    :class:`AudioError` (naming the file) for a missing, empty, truncated or unreadable file, a
    file without samples, one at another rate (unless ``resample``), one with several channels
    (unless ``downmix``), one holding NaN/inf samples, or one shorter than ``needed`` samples
    (pass the features' ``min_samples`` when the whole clip's features will be made).
    """
    path = os.fspath(path)
    if not sampling_rate > 0:
        raise ValueError(f"sampling_rate must be positive, got {sampling_rate}")
    data, rate = _read(path)
    if data.shape[0] == 0:
        raise AudioError(f"{path}: no audio samples", reason="empty")
    audio = _to_mono(data, path, downmix)  # (T,)
    _check_rate(path, rate, sampling_rate, resample)
    if rate != sampling_rate:
        audio = _resample(audio, rate, sampling_rate)
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: holds NaN or infinite samples", reason="unreadable")
    _require_samples(path, audio.shape[0], needed, sampling_rate)
    return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
