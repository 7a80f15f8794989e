"""The Denoiser: NVIDIA's bias-spectrum subtraction."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from waveglow import Denoiser, synthesize

FS = 22050


class _ToneModel(nn.Module):
    """A stand-in vocoder whose output at sigma 0 is a stationary tone at fs/8, whatever the mel."""

    n_mel_channels = 80

    def __init__(self, amplitude: float) -> None:
        super().__init__()
        self.amplitude = nn.Parameter(torch.tensor(amplitude))

    def infer(self, mel: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
        t = torch.arange(256 * mel.size(2), dtype=torch.float32)
        return (self.amplitude * torch.cos(2 * math.pi * t / 8)).expand(mel.size(0), -1)  # (B, 256 * frames)


def _band_amplitude(audio: torch.Tensor, hz: float) -> float:
    """Amplitude of the component at ``hz`` in (T,) audio (a DFT bin; T covers whole periods)."""
    spectrum = torch.fft.rfft(audio.double())
    return (2 * spectrum[round(hz * audio.numel() / FS)].abs() / audio.numel()).item()


def test_removes_a_planted_tone_at_fs_over_8_and_keeps_the_rest():
    t = torch.arange(22000, dtype=torch.float32)  # whole periods of fs/8, fs/50 and fs/5: each is one DFT bin
    clean = 0.3 * torch.sin(2 * math.pi * 441 * t / FS) + 0.2 * torch.sin(2 * math.pi * 4410 * t / FS + 1.0)
    tone = 0.05 * torch.sin(2 * math.pi * (FS / 8) * t / FS + 0.3)  # another phase than the bias
    denoiser = Denoiser(_ToneModel(0.05))
    assert denoiser.bias_spec.shape == (1, 513, 1)

    denoised = denoiser((clean + tone)[None], strength=1.0)[0]

    assert denoised.shape == clean.shape
    assert _band_amplitude(clean + tone, FS / 8) > 0.049
    assert _band_amplitude(denoised, FS / 8) < 0.05 * 0.01  # more than 40 dB down
    for hz, amplitude in ((441, 0.3), (4410, 0.2)):
        assert _band_amplitude(denoised, hz) == pytest.approx(amplitude, rel=1e-3)
    assert (denoised - clean)[1024:-1024].abs().max() < 0.005  # the edges see reflect padding


def test_strength_zero_is_the_identity_up_to_stft_round_trip(tiny_model):
    audio = torch.randn(2, 5000, generator=torch.Generator().manual_seed(0)) * 0.1
    out = Denoiser(tiny_model)(audio, strength=0.0)
    assert out.shape == audio.shape and out.dtype == audio.dtype
    torch.testing.assert_close(out, audio, atol=1e-5, rtol=0)


def test_reduces_the_models_own_bias_tones(tiny_model):
    mel = torch.zeros(1, 80, 200)
    bias = tiny_model.infer(mel, sigma=0.0)  # (1, 51200): periodic with period n_group = 8
    denoised = Denoiser(tiny_model)(bias, strength=1.0)
    middle = slice(2048, -2048)  # away from the model's edge effects
    # the bias spectrum is the first STFT frame, which sees the model's edge: not a perfect match
    assert denoised[:, middle].square().mean() < 0.2 * bias[:, middle].square().mean()


def test_short_and_odd_lengths(tiny_model):
    denoiser = Denoiser(tiny_model)
    for length in (1, 100, 513, 1000):
        assert denoiser(torch.randn(1, length), 0.1).shape == (1, length)
    with pytest.raises(ValueError, match="batch, samples"):
        denoiser(torch.randn(100))


def test_synthesize_applies_the_denoiser(tiny_model):
    mel = torch.zeros(80, 60)
    plain = synthesize(tiny_model, mel, sigma=0.0)
    denoised = synthesize(tiny_model, mel, sigma=0.0, denoiser_strength=1.0)
    torch.testing.assert_close(denoised, Denoiser(tiny_model)(plain[None], 1.0)[0])
    assert denoised.square().mean() < plain.square().mean()


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda(tiny_model, dtype):
    model = tiny_model.remove_weight_norm().cuda().to(dtype)
    denoiser = Denoiser(model)
    cpu_denoiser = Denoiser(tiny_model.float().cpu())
    audio = torch.randn(2, 6000, device="cuda", dtype=dtype) * 0.1
    out = denoiser(audio, 0.1)
    assert out.device.type == "cuda" and out.dtype == dtype and torch.isfinite(out.float()).all()
    assert denoiser(audio.cpu().float(), 0.1).device.type == "cpu"
    if dtype == torch.float32:
        torch.testing.assert_close(out.cpu(), cpu_denoiser(audio.cpu(), 0.1), atol=1e-4, rtol=0)
