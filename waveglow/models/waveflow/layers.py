"""WaveFlow's and NanoFlow's building blocks: the fold layout, the receptive field, the 2-D WaveNet and couplings.

Module and attribute names follow L0SG/NanoFlow (``front_conv``, ``res_blocks``, ``filter_gate_conv``,
``filter_gate_conv_c``, ``filter_gate_conv_h``, ``res_skip_conv``, ``proj_log_s_t``, ``coupling``,
``net``, ``multgate``), so the model built from them has the published state-dict keys.

Shapes: B batch, T audio samples, h = n_height, W = T / h. Audio (B, T) is folded into a
one-channel image (B, 1, h, W) with ``X[b, 0, r, w] = x[b, w h + r]`` (:func:`fold`). The
convolutions are causal along height and "same" along width. :class:`~.model.WaveFlow` assembles
these blocks; ``fast.py`` reads their frozen weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..image_upsampler import UPSAMPLE_STRIDE
from ..weight_norm import WeightNormConv2d, WeightNormEmbedding
from .config import HOP_LENGTH, WaveFlowConfig

__all__ = [
    "ZERO_CONV_INIT", "fold", "unfold", "shift_down", "receptive_field_columns", "receptive_field_samples",
    "Conv2D", "ZeroConv2d", "ResBlock2D", "Wavenet2D", "Coupling", "Flow", "SharedFlow", "Estimator", "flow_embedding",
]

ZERO_CONV_INIT = 1e-3  # L0SG's ZeroConv2d draws its weight and bias from U(-1e-3, 1e-3), not zeros


# ------------------------------------------------------------------------------ layout helpers


def fold(x: torch.Tensor, height: int) -> torch.Tensor:
    """(B, C, T) or (B, T) -> (B, C, h, T / h) with out[b, c, r, w] = x[b, c, w h + r]."""
    if x.dim() == 2:
        x = x.unsqueeze(1)
    B, C, T = x.shape
    return x.reshape(B, C, T // height, height).transpose(2, 3)  # (B, C, h, W)


def unfold(x: torch.Tensor) -> torch.Tensor:
    """(B, C, h, W) -> (B, C, W h): the inverse of :func:`fold`."""
    B, C, h, W = x.shape
    return x.transpose(2, 3).reshape(B, C, W * h)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """(B, C, h, W): every row moved down one, a zero row on top and the last row dropped."""
    return nn.functional.pad(x, (0, 0, 1, -1))


def receptive_field_columns(n_layer: int) -> int:
    """Columns (blocks of h samples) one side that a WaveNet's output reads: sum of 2 ** l over its layers."""
    return sum(2**layer for layer in range(n_layer))


def receptive_field_samples(config: WaveFlowConfig) -> int:
    """How far (samples, one side) a model of ``config`` lets an output sample depend on the input.

    Each flow's WaveNet reads sum(2 ** l) columns either side (the width dilations), a column
    being h samples, plus the row block it sits in; the flows compose, and the upsampler's two
    transposed convolutions reach 16 + 256 samples beyond a frame.
    """
    per_flow = receptive_field_columns(config.n_layer) * config.n_height
    return config.n_flow * per_flow + config.n_height + UPSAMPLE_STRIDE + HOP_LENGTH


# ------------------------------------------------------------------------------ building blocks


class Conv2D(nn.Module):
    """A weight-normed Conv2d, causal along height and "same" along width; the conv is ``conv``.

    The conv pads (kh - 1) d_h rows on both sides and the last (kh - 1) d_h output rows are
    dropped, so output row r reads input rows r - (kh - 1) d_h .. r.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        self.causal_rows = (kernel_size - 1) * dilation[0]
        padding = (self.causal_rows, (kernel_size - 1) * dilation[1] // 2)
        self.conv = WeightNormConv2d(in_channels, out_channels, kernel_size, dilation=dilation, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)  # (B, out, h + causal_rows, W)
        return out[:, :, : out.size(2) - self.causal_rows] if self.causal_rows else out

    def remove_weight_norm(self) -> None:
        self.conv.remove_weight_norm()


class ZeroConv2d(nn.Module):
    """A 1x1 Conv2d drawn from U(-1e-3, 1e-3), scaled by ``exp(3 * scale)``: (B, in, h, W) -> (B, out, h, W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        nn.init.uniform_(self.conv.weight, -ZERO_CONV_INIT, ZERO_CONV_INIT)
        nn.init.uniform_(self.conv.bias, -ZERO_CONV_INIT, ZERO_CONV_INIT)
        self.scale = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.exp(3 * self.scale)


class ResBlock2D(nn.Module):
    """One gated layer: h (B, R, h, W), c (B, cin, h, W) -> (residual (B, R, h, W), skip (B, R, h, W)).

    ``embed_channels`` > 0 adds NanoFlow's ``filter_gate_conv_h``, which maps the flow embedding
    (1, E, 1, 1) to a per-channel term of the gate.
    """

    def __init__(self, channels: int, cin_channels: int, dilation: tuple[int, int], embed_channels: int = 0) -> None:
        super().__init__()
        self.channels = channels
        self.dilation = dilation
        self.filter_gate_conv = Conv2D(channels, 2 * channels, 3, dilation)
        self.filter_gate_conv_c = WeightNormConv2d(cin_channels, 2 * channels, 1)
        if embed_channels:
            self.filter_gate_conv_h = WeightNormConv2d(embed_channels, 2 * channels, 1)
        self.res_skip_conv = WeightNormConv2d(channels, 2 * channels, 1)

    def forward(
        self, h: torch.Tensor, c: torch.Tensor, embedding: torch.Tensor | None = None, gain: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.filter_gate_conv(h) + self.filter_gate_conv_c(c)  # (B, 2R, h, W)
        if embedding is not None:
            a = a + self.filter_gate_conv_h(embedding)
        return self.residual_and_skip(h, a, gain)

    def residual_and_skip(
        self, h: torch.Tensor, a: torch.Tensor, gain: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The gate tanh(a[:R]) sigmoid(a[R:]), then the residual update and the skip."""
        R = self.channels
        out = self.res_skip_conv(torch.tanh(a[:, :R]) * torch.sigmoid(a[:, R:]))  # (B, 2R, h, W)
        res, skip = out[:, :R], out[:, R:]
        if gain is None:
            return (h + res) * math.sqrt(0.5), skip
        return h + res * gain.view(1, R, 1, 1), skip

    def remove_weight_norm(self) -> None:
        self.filter_gate_conv.remove_weight_norm()
        for name in ("filter_gate_conv_c", "filter_gate_conv_h", "res_skip_conv"):
            if hasattr(self, name):
                getattr(self, name).remove_weight_norm()


class Wavenet2D(nn.Module):
    """The 2-D WaveNet: x (B, 1, h, W), c (B, cin, h, W) -> the sum of the skips (B, R, h, W).

    Height dilation 2 ** (l mod n_layer_per_cycle), width dilation 2 ** l for layer l. With
    ``embed_channels`` (NanoFlow's shared estimator) ``forward`` also takes the flow embedding
    and the flow's residual gains ``multgate`` (n_layer, R).
    """

    def __init__(
        self, res_channels: int, cin_channels: int, n_layer: int, n_layer_per_cycle: int, embed_channels: int = 0
    ) -> None:
        super().__init__()
        self.front_conv = nn.Sequential(Conv2D(1, res_channels, 1))
        self.res_blocks = nn.ModuleList(
            ResBlock2D(res_channels, cin_channels, (2 ** (n % n_layer_per_cycle), 2**n), embed_channels)
            for n in range(n_layer)
        )

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, embedding: torch.Tensor | None = None, multgate: torch.Tensor | None = None
    ) -> torch.Tensor:
        h = self.front_conv(x)  # (B, R, h, W)
        skip = 0
        for n, block in enumerate(self.res_blocks):
            h, s = block(h, c, embedding, None if multgate is None else multgate[n])
            skip = skip + s
        return skip

    def remove_weight_norm(self) -> None:
        self.front_conv[0].remove_weight_norm()
        for block in self.res_blocks:
            block.remove_weight_norm()


class Coupling(nn.Module):
    """WaveFlow's coupling network: ``net`` (a Wavenet2D) and its projection ``proj_log_s_t``."""

    def __init__(self, res_channels: int, cin_channels: int, n_layer: int, n_layer_per_cycle: int) -> None:
        super().__init__()
        self.net = Wavenet2D(res_channels, cin_channels, n_layer, n_layer_per_cycle)
        self.proj_log_s_t = ZeroConv2d(res_channels, 2)


class Flow(nn.Module):
    """One WaveFlow flow: its ``coupling``."""

    def __init__(self, res_channels: int, cin_channels: int, n_layer: int, n_layer_per_cycle: int) -> None:
        super().__init__()
        self.coupling = Coupling(res_channels, cin_channels, n_layer, n_layer_per_cycle)


class SharedFlow(nn.Module):
    """One flow of a shared-estimator model: its projection, and (NanoFlow) its residual gains ``multgate``."""

    def __init__(self, res_channels: int, n_layer: int, gains: bool) -> None:
        super().__init__()
        if gains:
            self.multgate = nn.Parameter(torch.ones(n_layer, res_channels))
        self.proj_log_s_t = ZeroConv2d(res_channels, 2)


class Estimator(nn.Module):
    """The WaveNet every flow of a NanoFlow model shares, as ``net``."""

    def __init__(self, net: Wavenet2D) -> None:
        super().__init__()
        self.net = net


def flow_embedding(n_flow: int, size: int, weight_norm: bool) -> nn.Embedding:
    """NanoFlow's flow embedding, initialised orthogonal; with weight norm, g = each row's norm."""
    weight = torch.empty(n_flow, size)
    nn.init.orthogonal_(weight)
    embedding = (WeightNormEmbedding if weight_norm else nn.Embedding)(n_flow, size, _weight=weight)
    return embedding
