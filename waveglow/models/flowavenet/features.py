"""FloWaveNet's features (ksw0306 preprocessing.py): peak-normalised audio to a [0, 1] dB mel."""

from __future__ import annotations

from typing import Optional

import torch

from ..._autocast import autocast_off
from ...audio import MelSpectrogram

__all__ = ["FloWaveNetMelSpectrogram", "PEAK_LEVEL", "FLOWAVENET_MIN_POWER"]

PEAK_LEVEL = 0.999  # FloWaveNet's preprocessing scales each clip to this peak
FLOWAVENET_MIN_POWER = 1e-4  # 20 * log10(max(1e-4, mel)) - 20, then clip((x + 100) / 100, 0, 1)


class FloWaveNetMelSpectrogram(MelSpectrogram):
    """FloWaveNet's features (ksw0306 preprocessing.py): (B, T) -> (B, n_mel_channels, 1 + T // hop_length) in [0, 1].

    Power STFT (periodic Hann window of ``filter_length``, centred with reflect padding, as
    librosa 0.6 did: :meth:`MelSpectrogram.magnitude`), a Slaney mel filterbank,
    ``20 * log10(max(1e-4, mel)) - 20`` dB, then ``clip((dB + 100) / 100, 0, 1)``. The input is
    expected peak-normalised (:meth:`prepare_audio`). Computed in float64, returned as float32.
    """

    def __init__(
        self,
        sampling_rate: int = 22050,
        filter_length: int = 1024,
        hop_length: int = 256,
        n_mel_channels: int = 80,
        mel_fmin: float = 125.0,
        mel_fmax: Optional[float] = 7600.0,
    ) -> None:
        super().__init__(sampling_rate, filter_length, hop_length, filter_length, n_mel_channels, mel_fmin, mel_fmax)

    # win_length is not used: the window is filter_length
    config_keys = ("sampling_rate", "filter_length", "hop_length", "n_mel_channels", "mel_fmin", "mel_fmax")

    @staticmethod
    def prepare_audio(audio: torch.Tensor) -> torch.Tensor:
        """Peak normalisation of each clip, wav / max|wav| * 0.999: (..., T) -> (..., T); silence stays zero."""
        peak = audio.abs().amax(dim=-1, keepdim=True)
        return audio / torch.where(peak > 0, peak, torch.ones_like(peak)) * PEAK_LEVEL

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) peak-normalised audio -> (B, n_mel_channels, 1 + T // hop_length) float32 in [0, 1]."""
        if audio.dim() != 2:
            raise ValueError(f"expected audio of shape (B, T), got {tuple(audio.shape)}")
        with autocast_off(audio.device):
            power = self.magnitude(audio.double()).square()  # (B, n_freq, frames)
            mel = torch.matmul(self.mel_basis.double(), power)  # (B, n_mel, frames)
            db = 20 * torch.log10(torch.clamp(mel, min=FLOWAVENET_MIN_POWER)) - 20
            return torch.clamp((db + 100) / 100, 0, 1).float()
