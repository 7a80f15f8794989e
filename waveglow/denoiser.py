"""Removal of WaveGlow's constant "bias" tones by spectral subtraction (NVIDIA's Denoiser).

A WaveGlow fed an all-zero mel at sigma 0 still outputs a faint periodic signal: with n_group = 8
the flow leaves constant tones at multiples of fs/8. Its spectrum is the "bias"; denoising
subtracts ``strength`` times that magnitude from every STFT frame and resynthesises with the
original phase.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Denoiser"]

BIAS_FRAMES = 88  # length of the all-zero mel the reference vocodes to measure the bias


class Denoiser(nn.Module):
    """``Denoiser(model)(audio, strength=0.1)``: audio (B, T) -> (B, T), same dtype and device.

    The bias spectrum is measured once, at construction, from ``model`` as it is then: build a
    new Denoiser after changing the model's weights.
    """

    def __init__(
        self,
        model: nn.Module,
        filter_length: int = 1024,
        n_overlap: int = 4,
        win_length: int = 1024,
        mode: str = "zeros",
    ) -> None:
        super().__init__()
        if mode not in ("zeros", "normal"):
            raise ValueError(f"mode must be 'zeros' or 'normal', got {mode!r}")
        self.filter_length = filter_length
        self.hop_length = filter_length // n_overlap
        self.win_length = win_length
        parameter = next(model.parameters())
        window = torch.hann_window(win_length, periodic=True, device=parameter.device)
        self.register_buffer("window", window, persistent=False)
        bias_audio = _bias_audio(model, mode).float()  # (1, 256 * BIAS_FRAMES)
        bias_spec = self._stft(bias_audio).abs()[:, :, :1]  # (1, filter_length // 2 + 1, 1)
        self.register_buffer("bias_spec", bias_spec, persistent=False)

    def _stft(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) float32 -> complex (B, filter_length // 2 + 1, 1 + T // hop)."""
        return torch.stft(
            audio,
            self.filter_length,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )

    def forward(self, audio: torch.Tensor, strength: float = 0.1) -> torch.Tensor:
        """audio (B, T) -> (B, T): ISTFT(max(|X| - strength * bias, 0), phase of X)."""
        if audio.dim() != 2:
            raise ValueError(f"audio must be (batch, samples), got {tuple(audio.shape)}")
        length = audio.size(1)
        # reflect padding needs more than filter_length / 2 samples: zero-pad very short clips
        padded = nn.functional.pad(audio.float(), (0, max(0, self.filter_length // 2 + 1 - length)))
        padded = padded.to(self.bias_spec.device)
        spec = self._stft(padded)  # (B, F, frames)
        magnitude = torch.clamp(spec.abs() - strength * self.bias_spec, min=0.0)
        denoised_spec = torch.polar(magnitude, spec.angle())
        denoised = torch.istft(
            denoised_spec,
            self.filter_length,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            length=padded.size(1),
        )  # (B, T')
        return denoised[:, :length].to(device=audio.device, dtype=audio.dtype)


@torch.no_grad()
def _bias_audio(model: nn.Module, mode: str) -> torch.Tensor:
    """The model's output for a silent-looking mel at sigma 0: (1, 256 * BIAS_FRAMES)."""
    parameter = next(model.parameters())
    shape = (1, model.n_mel_channels, BIAS_FRAMES)
    if mode == "zeros":
        mel = torch.zeros(shape)
    else:
        mel = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    return model.infer(mel.to(device=parameter.device, dtype=parameter.dtype), sigma=0.0)
