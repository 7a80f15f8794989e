"""A third model family that lives outside the package, as another project would ship one.

The toy: audio folded into pairs of samples (B, 2, T / 2), one additive coupling of the second
sample on the first and the mel, and a learned per-channel scale. Installed through the
``waveglow.families`` entry point (``toy = toy_vocoder:FAMILY``); nothing in ``waveglow`` knows it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from waveglow.family import ModelFamily
from waveglow.models import FlowVocoder, ReceptiveField


@dataclass
class ToyConfig:
    n_mel_channels: int = 80
    width: int = 4

    def to_kwargs(self) -> dict:
        return asdict(self)


class ToyFlow(FlowVocoder):
    """z = exp(s) * (a, b + t(a, mel)) for audio folded into sample pairs (a, b): latent (B, 2, T / 2)."""

    default_sigma = 0.5

    def __init__(self, n_mel_channels: int = 80, width: int = 4, hop_length: int = 256) -> None:
        super().__init__()
        self.config = ToyConfig(n_mel_channels, width)
        self.n_mel_channels, self.hop_length, self.latent_steps_per_frame = n_mel_channels, hop_length, hop_length // 2
        self.net = nn.Conv1d(1 + n_mel_channels, 1, 2 * width + 1, padding=width)
        self.log_scale = nn.Parameter(torch.zeros(1, 2, 1))

    @classmethod
    def from_config(cls, config) -> "ToyFlow":
        return cls(**config.model_config.to_kwargs(), hop_length=config.data_config.hop_length)

    @classmethod
    def config_from_state_dict(cls, state_dict, source: str) -> dict:
        weight = state_dict["net.weight"]  # (1, 1 + n_mel, 2 width + 1)
        return {"n_mel_channels": weight.size(1) - 1, "width": weight.size(2) // 2}

    def shift(self, a: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """t(a, mel): a (B, 1, n), each mel frame repeated over its hop / 2 steps -> (B, 1, n)."""
        c = mel.to(a.dtype).repeat_interleave(self.latent_steps_per_frame, 2)[:, :, : a.size(2)]
        return self.net(torch.cat([a, c], 1))

    def encode(self, mel: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        x = audio.view(audio.size(0), -1, 2).transpose(1, 2)  # (B, T) -> (B, 2, T / 2)
        a, b = x[:, :1], x[:, 1:]
        return torch.exp(self.log_scale) * torch.cat([a, b + self.shift(a, mel)], 1)

    def forward(self, mel: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(mel, audio)
        return z, self.log_scale.sum() * z.size(2)  # log|det| per item

    @torch.no_grad()
    def infer(self, mel, sigma=1.0, *, z=None, generator=None, lengths=None) -> torch.Tensor:
        self.check_device("mel", mel)
        if z is None:
            n = mel.size(2) * self.latent_steps_per_frame
            z = self.sample_latent(mel.size(0), n, sigma, generator, "cpu").to(mel.device)
        self.check_device("z", z)
        if lengths is not None:  # each item alone, zeros after it
            out = torch.zeros(z.size(0), 2 * z.size(2), device=z.device)
            for i, n in enumerate(torch.as_tensor(lengths).tolist()):
                out[i, :n] = self.infer(mel[i : i + 1, :, : n // self.hop_length], z=z[i : i + 1, :, : n // 2])[0]
            return out
        x = z.to(self.log_scale.dtype) * torch.exp(-self.log_scale)
        a = x[:, :1]
        return torch.cat([a, x[:, 1:] - self.shift(a, mel)], 1).transpose(1, 2).reshape(z.size(0), -1)

    def latent_draws(self) -> list[int]:
        return [2]

    def receptive_field(self) -> ReceptiveField:
        """The net reaches ``width`` steps each way; a frame's mel conditions its own steps only."""
        reach = -(-self.config.width // self.latent_steps_per_frame)
        return ReceptiveField(past=reach, future=reach)

    @torch.no_grad()
    def perturb(self, generator: torch.Generator) -> None:
        for p in self.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator).to(p))


class ToyLoss(nn.Module):
    def forward(self, output: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        z, logdet = output
        return (0.5 * (z.float() ** 2).sum() - z.size(0) * logdet) / z.numel()


FAMILY = ModelFamily(name="toy", title="Toy flow", section="toy_config", config_class=ToyConfig, model_class=ToyFlow,
                     loss=lambda train_config: ToyLoss())
