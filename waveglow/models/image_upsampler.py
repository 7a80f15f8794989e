"""The mel upsampler FloWaveNet and WaveFlow share: the mel as a one-channel image, stretched 16 x 16 in time.

Two weight-normed ConvTranspose2d (kernel 3 x 32, stride 1 x 16, padding 1 x 8), each followed by
LeakyReLU(0.4), held as the ModuleList both references name ``upsample_conv`` (parameters at indices
0 and 2): exactly 256 samples per frame, no overhang; a frame's conditioning reaches 136 samples
beyond its own 256.
"""

from __future__ import annotations

import torch
from torch import nn

from .weight_norm import WeightNormConvTranspose2d

__all__ = ["UPSAMPLE_STRIDE", "UPSAMPLER_REACH", "image_upsampler", "upsample_image", "remove_upsampler_weight_norm"]

UPSAMPLE_STRIDE = 16  # each transposed convolution stretches time by 16: 256 samples per frame
UPSAMPLER_REACH = 136  # samples a mel frame's upsampled conditioning reaches beyond its own 256


def image_upsampler() -> nn.ModuleList:
    """[ConvTranspose2d, LeakyReLU(0.4)] twice, freshly initialised (PyTorch's default initialisation)."""
    layers = nn.ModuleList()
    for _ in range(2):
        layers.append(WeightNormConvTranspose2d(
            1, 1, (3, 2 * UPSAMPLE_STRIDE), stride=(1, UPSAMPLE_STRIDE), padding=(1, UPSAMPLE_STRIDE // 2)
        ))
        layers.append(nn.LeakyReLU(0.4))
    return layers


def upsample_image(layers: nn.ModuleList, mel: torch.Tensor) -> torch.Tensor:
    """(B, n_mel, F) -> (B, n_mel, 256 F), in the layers' dtype."""
    c = mel.to(layers[0].bias.dtype).unsqueeze(1)  # (B, 1, n_mel, F)
    for layer in layers:
        c = layer(c)
    return c.squeeze(1)  # (B, n_mel, 256 F)


def remove_upsampler_weight_norm(layers: nn.ModuleList) -> None:
    for layer in layers[::2]:
        layer.remove_weight_norm()
