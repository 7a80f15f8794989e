"""WaveFlow's and NanoFlow's objective: L0SG's negative log-likelihood per audio sample."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["WaveFlowLoss"]


class WaveFlowLoss(nn.Module):
    """[sum 0.5 (ln 2 pi + 2 ln sigma + z^2 / sigma^2) - logdet] / (B h W), in float32 or wider.

    The full negative log-likelihood in nats per sample, Gaussian constant included (L0SG's
    ``models/loss.py``); ``logdet`` is the model's one scalar for the whole batch.
    """

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, model_output: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        z, logdet = model_output
        z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
        n = z.numel()
        constant = 0.5 * (math.log(2 * math.pi) + 2 * math.log(self.sigma)) * n
        return (constant + (z * z).sum() / (2 * self.sigma**2) - logdet) / n
