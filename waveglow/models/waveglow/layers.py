"""WaveGlow's building blocks, with NVIDIA's module and attribute names (``WN``, ``convinv``,
``start``, ``end``, ``in_layers``, ``res_skip_layers``, ``cond_layer``): the published state-dict keys.

Shapes: B batch, T audio samples, g = n_group, n = T / g group steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..._autocast import autocast_off
from ..weight_norm import WeightNormConv1d

__all__ = [
    "WN", "Invertible1x1Conv", "FrozenInverse1x1Conv", "WeightNormConv1d", "UPSAMPLE_KERNEL", "UPSAMPLE_STRIDE",
    "affine_coupling", "affine_coupling_inverse", "gated_activation", "fold", "unfold",
    "flow_channels", "flow_channels_problem", "upsampler_problem",
]

# The reference hard-codes the upsampler; they equal filter_length and hop_length of its config,
# and our models take them from data_config (so a 16 kHz hop-200 setup stays aligned).
UPSAMPLE_KERNEL = 1024
UPSAMPLE_STRIDE = 256


class Invertible1x1Conv(nn.Module):
    """Channel mixing by an invertible c x c matrix W, initialised orthogonal with det(W) = +1.

    :meth:`inverse` computes W^-1 from the current weight, in float32, every call: nothing is
    cached on the module (:class:`~waveglow.models.waveglow.fast.FastWaveGlow` keeps its own W^-1, built once).
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c, c, kernel_size=1, stride=1, padding=0, bias=False)
        W = torch.linalg.qr(torch.randn(c, c))[0]
        if torch.det(W) < 0:
            W[:, 0] = -W[:, 0]
        with torch.no_grad():
            self.conv.weight.copy_(W.view(c, c, 1))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, c, n) -> (W z of shape (B, c, n), log|det| of the whole map, at least float32)."""
        B, _, n = z.shape
        W = self.conv.weight.squeeze(-1)
        with autocast_off(z.device):
            log_det_W = B * n * torch.linalg.slogdet(W.to(torch.promote_types(W.dtype, torch.float32)))[1]
        return self.conv(z), log_det_W

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """(B, c, n) -> W^-1 z, with W^-1 computed in float32 and cast to z's dtype."""
        W_inverse = torch.linalg.inv(self.conv.weight.squeeze(-1).float())
        return F.conv1d(z, W_inverse.to(z.dtype).unsqueeze(-1))


class WN(nn.Module):
    """The coupling network: a non-causal WaveNet conditioned on the upsampled mel.

    ``n_in_channels`` is half the flow's channels; ``n_mel_channels`` here is the folded
    conditioning width (n_mel * n_group). Output: (B, 2 * n_in, n), ``b`` first, ``log_s`` second.
    """

    def __init__(
        self, n_in_channels: int, n_mel_channels: int, n_layers: int, n_channels: int, kernel_size: int
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WN kernel_size must be odd, got {kernel_size}")
        self.n_layers = n_layers
        self.n_channels = n_channels
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()

        self.start = WeightNormConv1d(n_in_channels, n_channels, 1)
        # Zero-initialised so that every coupling starts as the identity.
        self.end = nn.Conv1d(n_channels, 2 * n_in_channels, 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)
        # One 1x1 conv for all layers' conditioning, sliced per layer in forward.
        self.cond_layer = WeightNormConv1d(n_mel_channels, 2 * n_channels * n_layers, 1)

        for i in range(n_layers):
            dilation = 2**i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(
                WeightNormConv1d(n_channels, 2 * n_channels, kernel_size, dilation=dilation, padding=padding)
            )
            res_skip_channels = 2 * n_channels if i < n_layers - 1 else n_channels
            self.res_skip_layers.append(WeightNormConv1d(n_channels, res_skip_channels, 1))

    def forward(self, audio: torch.Tensor, spect: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """audio (B, n_in, n), spect (B, n_mel * g, n) -> (B, 2 * n_in, n).

        ``mask`` (B, 1, n), 1 inside each sequence and 0 after its end, makes every dilated conv
        see zeros past each sequence's own end, as it would alone: batches of unequal lengths
        then give each sequence exactly its unbatched output.
        """
        return self.end(self.skip_sum(audio, self.cond_layer(spect), mask))

    def skip_sum(self, audio: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The WaveNet stack given the conditioning already projected: cond (B, 2 C L, n) -> (B, C, n)."""
        C = self.n_channels
        audio = self.start(audio)  # (B, C, n)
        output = torch.zeros_like(audio)
        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            if mask is not None:
                audio = audio * mask
            acts = gated_activation(in_layer(audio) + cond[:, i * 2 * C : (i + 1) * 2 * C], C)
            res_skip_acts = res_skip_layer(acts)
            if i < self.n_layers - 1:
                audio = audio + res_skip_acts[:, :C]
                output = output + res_skip_acts[:, C:]
            else:
                output = output + res_skip_acts
        return output

    def remove_weight_norm(self) -> None:
        for layer in (self.start, self.cond_layer, *self.in_layers, *self.res_skip_layers):
            layer.remove_weight_norm()


def affine_coupling(audio: torch.Tensor, net) -> tuple[torch.Tensor, torch.Tensor]:
    """One affine coupling: (B, c, n) -> (cat(a_0, exp(log_s) a_1 + b), log_s), where net(a_0) = cat(b, log_s)."""
    n_half = audio.size(1) // 2
    audio_0, audio_1 = audio[:, :n_half], audio[:, n_half:]
    output = net(audio_0)  # (B, 2 * n_half, n)
    b, log_s = output[:, :n_half], output[:, n_half:]
    return torch.cat([audio_0, torch.exp(log_s) * audio_1 + b], 1), log_s


def affine_coupling_inverse(audio: torch.Tensor, net) -> torch.Tensor:
    """The inverse of :func:`affine_coupling`: (B, c, n) -> cat(a_0, (a_1 - b) / exp(log_s))."""
    n_half = audio.size(1) // 2
    audio_0, audio_1 = audio[:, :n_half], audio[:, n_half:]
    output = net(audio_0)  # (B, 2 * n_half, n)
    b, log_s = output[:, :n_half], output[:, n_half:]
    return torch.cat([audio_0, (audio_1 - b) / torch.exp(log_s)], 1)


def gated_activation(x: torch.Tensor, n_channels: int) -> torch.Tensor:
    """tanh(first half) * sigmoid(second half): (B, 2C, n) -> (B, C, n)."""
    return torch.tanh(x[:, :n_channels]) * torch.sigmoid(x[:, n_channels:])


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


def fold(x: torch.Tensor, n_group: int) -> torch.Tensor:
    """(B, C, T) -> (B, C * g, T / g); channel c * g + j holds x[:, c, t * g + j]."""
    B, C, T = x.shape
    x = x.unfold(2, n_group, n_group)  # (B, C, n, g)
    return x.permute(0, 1, 3, 2).reshape(B, C * n_group, T // n_group)  # (B, C * g, n)


def unfold(audio: torch.Tensor) -> torch.Tensor:
    """(B, g, n) -> (B, g * n), the inverse of ``fold`` for one audio channel."""
    return audio.permute(0, 2, 1).reshape(audio.size(0), -1)  # (B, n * g)


def flow_channels(n_flows: int, n_group: int, n_early_every: int, n_early_size: int) -> list[int]:
    """The channel count each flow sees, before any check."""
    channels, counts = n_group, []
    for k in range(n_flows):
        if k > 0 and k % n_early_every == 0:
            channels -= n_early_size
        counts.append(channels)
    return counts


def flow_channels_problem(n_flows: int, n_group: int, n_early_every: int, n_early_size: int) -> str | None:
    """Why these settings build no WaveGlow, or None: every flow needs a positive, even channel count."""
    if min(n_flows, n_group, n_early_every) <= 0 or n_early_size < 0:
        return "n_flows, n_group and n_early_every must be positive and n_early_size >= 0"
    for k, channels in enumerate(flow_channels(n_flows, n_group, n_early_every, n_early_size)):
        if channels <= 0 or channels % 2:
            return (
                f"flow {k} would have {channels} channels (n_group {n_group}, n_early_every {n_early_every}, "
                f"n_early_size {n_early_size}): every flow needs a positive, even channel count"
            )
    return None


def upsampler_problem(kernel: int, stride: int, n_group: int) -> str | None:
    """Why an upsampler of this kernel and stride cannot serve, or None."""
    if stride <= 0 or kernel < stride:
        return f"the upsampler needs filter_length ({kernel}) >= hop_length ({stride}) > 0"
    if stride % n_group:
        return f"hop_length {stride} is not a multiple of n_group {n_group}: each mel frame must cover whole groups"
    return None
