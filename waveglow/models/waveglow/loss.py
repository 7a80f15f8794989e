"""The single training objective: negative log-likelihood of the audio under the flow."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WaveGlowLoss"]


class WaveGlowLoss(nn.Module):
    """Negative log-likelihood per audio sample, computed in float32.

    loss = (sum(z^2) / (2 sigma^2) - sum(log_s) - sum(log_det_W)) / (B * g * n)

    Without the Gaussian constant 0.5 * log(2 pi sigma^2), as in the reference, so it goes
    negative as training proceeds. At initialisation (zero ``end`` layers) it equals
    mean(audio^2) / 2.
    """

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(
        self, model_output: tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]
    ) -> torch.Tensor:
        z, log_s_list, log_det_W_list = model_output
        z = z.float()
        log_s_total = sum(log_s.float().sum() for log_s in log_s_list)
        log_det_W_total = sum(log_det_W.float() for log_det_W in log_det_W_list)
        loss = torch.sum(z * z) / (2 * self.sigma**2) - log_s_total - log_det_W_total
        return loss / z.numel()
