"""Weight normalisation as the references store it: ``weight = weight_g * weight_v / ||weight_v||``.

The norm runs over every dimension but the first, and the parameters are named ``weight_g`` and
``weight_v`` as torch.nn.utils.weight_norm (dim=0) names them, so published state dicts load key
for key. ``remove_weight_norm()`` folds them back into a plain ``weight``, exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "WeightNorm", "WeightNormConv1d", "WeightNormConv2d", "WeightNormConvTranspose2d", "WeightNormEmbedding",
    "norm_except_dim0",
]


def norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    """L2 norm over all dims but the first, shaped to broadcast: (n, ...) -> (n, 1, ...)."""
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


class WeightNorm:
    """Mixin for a conv module: replaces its ``weight`` by ``weight_g``/``weight_v`` at construction."""

    def _split_weight(self) -> None:
        weight = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(norm_except_dim0(weight))
        self.weight_v = nn.Parameter(weight.clone())

    @property
    def has_weight_norm(self) -> bool:
        return "weight_v" in self._parameters

    def effective_weight(self) -> torch.Tensor:
        if self.has_weight_norm:
            return self.weight_v * (self.weight_g / norm_except_dim0(self.weight_v))
        return self.weight

    def remove_weight_norm(self) -> None:
        if not self.has_weight_norm:
            return
        with torch.no_grad():
            weight = self.effective_weight()
        del self.weight_g, self.weight_v
        self.weight = nn.Parameter(weight)


class WeightNormConv1d(WeightNorm, nn.Conv1d):
    """Conv1d with weight norm: ``weight_g`` (out, 1, 1), ``weight_v`` (out, in, k)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class WeightNormConv2d(WeightNorm, nn.Conv2d):
    """Conv2d with weight norm: ``weight_g`` (out, 1, 1, 1), ``weight_v`` (out, in, kh, kw)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class WeightNormEmbedding(WeightNorm, nn.Embedding):
    """Embedding with weight norm over each row: ``weight_g`` (n, 1), ``weight_v`` (n, dim)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.effective_weight(), self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)


class WeightNormConvTranspose2d(WeightNorm, nn.ConvTranspose2d):
    """ConvTranspose2d with weight norm: ``weight_g`` (in, 1, 1, 1), ``weight_v`` (in, out, kh, kw).

    torch.nn.utils.weight_norm's default ``dim=0`` is the input-channel dimension of a transposed
    conv's weight; so is ours, so FloWaveNet's keys load.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(
            x, self.effective_weight(), self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )
