"""FloWaveNet's record in the family registry: what the shared tools ask of it."""

from __future__ import annotations

import math

import torch

from .. import ModelFamily
from .config import DATA_DEFAULTS, FloWaveNetConfig, validate
from .data import FrameAlignedDataset, FrameAlignedValidationDataset
from .fast import FastFloWaveNet
from .features import FloWaveNetMelSpectrogram
from .loss import FloWaveNetLoss
from .model import CHUNK_OVERLAP_FRAMES, FloWaveNet, ZeroConv1d, initialize
from .readers import infer_flowavenet_config, read_foreign

__all__ = ["FAMILY"]


def checkpoint_extra(model: FloWaveNet) -> dict:
    return {"actnorm_initialized": bool(model.initialized)}


def restore_extra(model: FloWaveNet, checkpoint) -> None:
    """Our checkpoints record whether ActNorm was initialised; any other loaded weights count as initialised."""
    model.initialized = bool(checkpoint.extra.get("actnorm_initialized", True))


@torch.no_grad()
def perturb(model: FloWaveNet, generator: torch.Generator) -> None:
    """Every WaveNet's zero-initialised last conv (and its scale) drawn small: no coupling or prior is the identity."""
    for module in model.modules():
        if isinstance(module, ZeroConv1d):
            for p in (module.conv.weight, module.conv.bias, module.scale):
                p.copy_(0.02 * torch.randn(p.shape, generator=generator).to(p))


FAMILY = ModelFamily(
    name="flowavenet",
    title="FloWaveNet",
    section="flowavenet_config",
    config_class=FloWaveNetConfig,
    model_class=FloWaveNet,
    build=lambda config: FloWaveNet(**config.model_config.to_kwargs()),
    loss=lambda train_config: FloWaveNetLoss(),
    features=FloWaveNetMelSpectrogram.from_config,
    training_dataset=FrameAlignedDataset,
    validation_dataset=FrameAlignedValidationDataset,
    validate=validate,
    model_config=lambda model: model.config,
    read_foreign=read_foreign,
    infer_config=lambda state_dict, source: infer_flowavenet_config(state_dict, source).to_kwargs(),
    default_sigma=0.8,  # ksw0306's synthesize.py temperature
    overlap_frames=CHUNK_OVERLAP_FRAMES,
    mel_channels_key="cin_channel",
    nll_constant=0.5 * math.log(2 * math.pi),  # FloWaveNetLoss is the full negative log-likelihood
    initialize=initialize,
    inference_model=FastFloWaveNet,
    denoiser_applies=True,  # see docs/flowavenet.md: the sigma-0 bias repeats every 256 samples
    data_defaults=DATA_DEFAULTS,
    checkpoint_extra=checkpoint_extra,
    restore_extra=restore_extra,
    silence_feature=0.0,  # clip((20 log10(1e-4) - 20 + 100) / 100, 0, 1)
    perturb=perturb,
    demo_config="flowavenet_small.json",
)
