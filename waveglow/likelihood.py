"""Exact log-likelihood of audio under a flow vocoder, in L0SG/NanoFlow's units (its "Test set LL").

A normalizing flow gives the density of the audio it is conditioned to produce:
log p(x | mel) = log N(f(x); 0, 1) + log |det df/dx|. L0SG/NanoFlow's published table reports it
as nats per audio sample, audio in int16 / 32768 units (no dequantisation), higher being better,
for whole test clips cut to a multiple of the hop (one clip at a time, every clip counting
equally in the mean). Every family's loss at sigma 1 is that negative log-likelihood up to the
Gaussian constant it leaves out (the model's ``nll_constant``), so:

    LL = -(loss at sigma 1 - nll_constant + 0.5 ln 2 pi)

A family whose features rescale the audio first (FloWaveNet normalises the peak) models the
rescaled audio; its density is brought back to the clip's own units by the change of variables
(+ ln a per sample for a scale a), so the numbers of every family compare.

The mel is the features of the cut clip, one frame per hop of audio (L0SG's full-clip
evaluation conditions on one more frame, which reaches only the last 136 samples).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from .audio import MelSpectrogram
from .config import TrainConfig
from .registry import family_of

__all__ = ["log_likelihood_from_loss", "clip_log_likelihood"]

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def log_likelihood_from_loss(loss: float, model) -> float:
    """A model's loss at sigma 1 (nats per sample, its own constant) -> the log-likelihood per sample.

    ``model``: anything with the model's ``nll_constant`` (the model, its class, its inference object)."""
    return -(loss - model.nll_constant + HALF_LOG_2PI)


def _trainable(model) -> nn.Module:
    """The module under an inference object, in float32 (a half-precision copy would round the density)."""
    module = getattr(model, "model", model) if not isinstance(model, nn.Module) else model
    if next(module.parameters()).dtype in (torch.float16, torch.bfloat16):
        module = copy.deepcopy(module).float()
    return module


def _prepared(features: MelSpectrogram, audio: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(the audio as the family's features see it (``prepare_audio``), ln of the scale applied to it)."""
    prepared = features.prepare_audio(audio[None])[0].float()
    scale = prepared.norm() / audio.norm().clamp(min=1e-12)
    return prepared, math.log(max(scale.item(), 1e-12))


@torch.no_grad()
def clip_log_likelihood(model, features: nn.Module, audio: np.ndarray | torch.Tensor) -> float:
    """The log-likelihood of one (T,) clip under ``model`` in nats per sample (clip cut to a multiple of the hop).

    ``model``: a model of any family or its inference object; ``features``: the family's
    features for the model's data config. Raises ValueError for a clip shorter than one hop.
    """
    family = family_of(model)
    module = _trainable(model)
    hop = module.hop_length
    x = torch.as_tensor(np.asarray(audio, np.float32))
    T = x.numel() // hop * hop
    if T == 0:
        raise ValueError(f"a clip of {x.numel()} samples is shorter than one hop ({hop}): no log-likelihood")
    x, log_scale = _prepared(features, x[:T])
    mel = features(x[None])[..., : T // hop]  # (1, n_mel, T / hop)
    parameter = next(module.parameters())
    was_training = module.training
    module.eval()
    try:
        output = module(mel.to(parameter.device, parameter.dtype), x[None].to(parameter.device, parameter.dtype))
        loss = family.loss(TrainConfig(sigma=1.0))(output).item()
    finally:
        module.train(was_training)
    return log_likelihood_from_loss(loss, module) + log_scale

