"""WaveGlow's record in the family registry: what the shared tools ask of it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...audio import MelSpectrogram
from ...data import AudioDataset, ValidationDataset
from .. import ModelFamily
from .config import WaveGlowConfig, WNConfig, validate
from .fast import FastWaveGlow
from .loss import WaveGlowLoss
from .model import Invertible1x1Conv, WaveGlow
from .readers import convert_state_dict, infer_waveglow_config, read_foreign

__all__ = ["FAMILY", "FrozenInverse1x1Conv"]


def build(config) -> WaveGlow:
    d = config.data_config
    return WaveGlow(**config.model_config.to_kwargs(), upsample_kernel=d.filter_length, upsample_stride=d.hop_length)


def model_config(model: WaveGlow) -> WaveGlowConfig:
    return WaveGlowConfig(
        n_mel_channels=model.n_mel_channels, n_flows=model.n_flows, n_group=model.n_group,
        n_early_every=model.n_early_every, n_early_size=model.n_early_size, WN_config=WNConfig(**model.WN_config),
    )


class FrozenInverse1x1Conv(nn.Module):
    """An :class:`Invertible1x1Conv` for export: the same weights, W^-1 computed once (float32)
    and kept as a buffer instead of per call (ONNX has no matrix inverse). Built from frozen
    weights: rebuild after changing them."""

    def __init__(self, conv: Invertible1x1Conv) -> None:
        super().__init__()
        self.conv = conv.conv
        weight = conv.conv.weight.detach().squeeze(-1).double()
        self.register_buffer("weight_inverse", torch.linalg.inv(weight).float().unsqueeze(-1))  # (c, c, 1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("an exported 1x1 conv only runs inverse()")

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """(B, c, n) -> W^-1 z."""
        return F.conv1d(z, self.weight_inverse.to(z.dtype))


def export_model(model: WaveGlow) -> WaveGlow:
    """``model`` (a weight-norm-free copy) with every 1x1 conv's inverse precomputed, for tracing."""
    model.convinv = nn.ModuleList(FrozenInverse1x1Conv(conv) for conv in model.convinv)
    return model


def latent_draws(model: WaveGlow) -> list[int]:
    """The final channels first, then each early block, as :meth:`WaveGlow.sample_latent` draws them."""
    n_early = sum(model.is_early_exit(k) for k in range(model.n_flows))
    return [model.n_remaining_channels] + [model.n_early_size] * n_early


@torch.no_grad()
def perturb(model: WaveGlow, generator: torch.Generator) -> None:
    """Every WN's zero-initialised ``end`` drawn from N(0, 0.01): no coupling is the identity."""
    for wn in model.WN:
        for p in (wn.end.weight, wn.end.bias):
            p.copy_(0.01 * torch.randn(p.shape, generator=generator).to(p))


FAMILY = ModelFamily(
    name="waveglow",
    title="WaveGlow",
    section="waveglow_config",
    config_class=WaveGlowConfig,
    model_class=WaveGlow,
    build=build,
    loss=lambda train_config: WaveGlowLoss(train_config.sigma),
    features=MelSpectrogram.from_config,
    training_dataset=AudioDataset,
    validation_dataset=ValidationDataset,
    validate=validate,
    model_config=model_config,
    read_foreign=read_foreign,
    infer_config=infer_waveglow_config,
    default_sigma=1.0,  # NVIDIA's inference.py; its paper vocodes at 0.6
    overlap_frames=32,  # 8192 samples of context each side; see docs on long audio
    nll_constant=0.0,  # NVIDIA's loss leaves out the Gaussian constant
    mel_channels_key="n_mel_channels",
    inference_model=FastWaveGlow,
    denoiser_applies=True,
    upgrade_state_dict=convert_state_dict,
    export_model=export_model,
    latent_draws=latent_draws,
    perturb=perturb,
    demo_config="demo.json",
)
