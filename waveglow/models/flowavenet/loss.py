"""FloWaveNet's objective: the negative log-likelihood the model's forward pass computes."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FloWaveNetLoss"]


class FloWaveNetLoss(nn.Module):
    """Negative log-likelihood per sample, -(log_p + logdet), in float32 (it includes the Gaussian constant)."""

    def forward(self, model_output: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        log_p, logdet = model_output
        return -(log_p.float() + logdet.float())
