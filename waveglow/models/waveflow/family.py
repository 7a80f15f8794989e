"""WaveFlow's and NanoFlow's record in the family registry: what the shared tools ask of it."""

from __future__ import annotations

import math

import torch

from ...audio import MelSpectrogram
from ...data import AudioDataset, ValidationDataset
from ...errors import ConfigError
from .. import ModelFamily
from .config import HOP_LENGTH, WaveFlowConfig
from .fast import FastWaveFlow, exportable
from .loss import WaveFlowLoss
from .model import WaveFlow, ZeroConv2d, receptive_field_samples
from .readers import infer_waveflow_config, read_foreign

__all__ = ["FAMILY", "validate"]


def validate(config, source: str) -> None:
    """The ``waveflow_config`` section against data_config: one-line ConfigErrors naming both keys."""
    m, d = config.model_config, config.data_config
    if d.hop_length != HOP_LENGTH:
        raise ConfigError(f"{source}: data_config.hop_length must be {HOP_LENGTH} for WaveFlow (its upsampler is fixed), got {d.hop_length}")
    if d.n_mel_channels != m.cin_channels:
        raise ConfigError(
            f"{source}: data_config.n_mel_channels {d.n_mel_channels} differs from waveflow_config.cin_channels "
            f"{m.cin_channels}: the features must be what the model takes"
        )
    if d.segment_length % m.n_height:
        raise ConfigError(
            f"{source}: data_config.segment_length {d.segment_length} must be a multiple of waveflow_config.n_height {m.n_height}"
        )


@torch.no_grad()
def perturb(model: WaveFlow, generator: torch.Generator) -> None:
    """Every projection drawn larger than its U(-1e-3, 1e-3) start: no coupling is near the identity."""
    for module in model.modules():
        if isinstance(module, ZeroConv2d):
            for p in (module.conv.weight, module.conv.bias, module.scale):
                p.copy_(0.05 * torch.randn(p.shape, generator=generator).to(p))


FAMILY = ModelFamily(
    name="waveflow",
    title="WaveFlow",
    section="waveflow_config",
    config_class=WaveFlowConfig,
    model_class=WaveFlow,
    build=lambda config: WaveFlow(**config.model_config.to_kwargs()),
    loss=lambda train_config: WaveFlowLoss(train_config.sigma),
    features=MelSpectrogram.from_config,  # the Tacotron 2 recipe, as L0SG's mel2samp.py
    training_dataset=AudioDataset,
    validation_dataset=ValidationDataset,
    validate=validate,
    model_config=lambda model: model.config,
    read_foreign=read_foreign,
    infer_config=lambda state_dict, source: infer_waveflow_config(state_dict, source).to_kwargs(),
    default_sigma=1.0,  # L0SG's synthesis temperature
    overlap_frames=math.ceil(receptive_field_samples(WaveFlowConfig()) / HOP_LENGTH),  # 129 frames: exact
    nll_constant=0.5 * math.log(2 * math.pi),  # WaveFlowLoss is the full negative log-likelihood
    mel_channels_key="cin_channels",
    inference_model=lambda model, cache_conditioning=False: FastWaveFlow(model),
    denoiser_applies=False,  # L0SG has none; its bias removal is tuned on WaveGlow's sigma-0 output
    export_model=exportable,  # traces the cached-row inverse: h WaveNet row passes per flow, not h (h + 1) / 2
    perturb=perturb,
    demo_config="waveflow_small.json",
)
