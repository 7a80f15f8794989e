"""FloWaveNet's building blocks: weight-normed convs, the non-causal WaveNet, ActNorm, the affine
coupling, a flow, a block, and the squeeze that trades time for channels.

Module and attribute names follow ksw0306/FloWaveNet (``flows``, ``actnorm``, ``coupling``,
``net``, ``front_conv``, ``res_blocks``, ``final_conv``, ``prior``), so the state-dict keys of
:class:`~waveglow.models.flowavenet.model.FloWaveNet`, built from these, are the published ones.

Shapes: B batch, T time steps (audio samples, squeezed by 2 per block), D audio channels and E
conditioning channels inside a block.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._autocast import autocast_off
from ..weight_norm import WeightNormConv1d

__all__ = [
    "ACTNORM_EPS", "Conv", "ZeroConv1d", "ResBlock", "WaveNet", "ActNorm", "AffineCoupling", "Flow", "Block",
    "swap_halves", "squeeze", "unsqueeze", "gaussian_log_p", "at_least_float32",
]

ACTNORM_EPS = 1e-6  # added to the std in the data-dependent initialisation, as in the reference


# ------------------------------------------------------------------------------ building blocks


class Conv(nn.Module):
    """A weight-normed, non-causal Conv1d with "same" padding; the conv is the attribute ``conv``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = WeightNormConv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def remove_weight_norm(self) -> None:
        self.conv.remove_weight_norm()


class ZeroConv1d(nn.Module):
    """A zero-initialised 1x1 Conv1d scaled by ``exp(3 * scale)``: (B, in, T) -> (B, out, T)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.scale = nn.Parameter(torch.zeros(1, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.exp(3 * self.scale)


class ResBlock(nn.Module):
    """One gated, dilated layer: x (B, C, T), c (B, cond, T) -> (residual (B, C, T), skip (B, C, T))."""

    def __init__(self, channels: int, cin_channels: int, dilation: int) -> None:
        super().__init__()
        self.filter_conv = Conv(channels, channels, 3, dilation)
        self.gate_conv = Conv(channels, channels, 3, dilation)
        self.res_conv = WeightNormConv1d(channels, channels, 1)
        self.skip_conv = WeightNormConv1d(channels, channels, 1)
        self.filter_conv_c = WeightNormConv1d(cin_channels, channels, 1)
        self.gate_conv_c = WeightNormConv1d(cin_channels, channels, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.filter_conv(x) + self.filter_conv_c(c)) * torch.sigmoid(self.gate_conv(x) + self.gate_conv_c(c))
        return (x + self.res_conv(h)) * math.sqrt(0.5), self.skip_conv(h)

    def remove_weight_norm(self) -> None:
        for conv in (self.filter_conv, self.gate_conv, self.res_conv, self.skip_conv, self.filter_conv_c, self.gate_conv_c):
            conv.remove_weight_norm()


class WaveNet(nn.Module):
    """Non-causal WaveNet: x (B, in, T), c (B, cond, T) -> (B, out, T); zero output at initialisation."""

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, cin_channels: int, channels: int = 256) -> None:
        super().__init__()
        self.front_conv = nn.Sequential(Conv(in_channels, channels, 3), nn.ReLU())
        self.res_blocks = nn.ModuleList(ResBlock(channels, cin_channels, 2**n) for n in range(num_layers))
        self.final_conv = nn.Sequential(nn.ReLU(), Conv(channels, channels, 1), nn.ReLU(), ZeroConv1d(channels, out_channels))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.front_conv(x)  # (B, C, T)
        skip = 0
        for block in self.res_blocks:
            h, s = block(h, c)
            skip = skip + s
        return self.final_conv(skip)

    def remove_weight_norm(self) -> None:
        self.front_conv[0].remove_weight_norm()
        for block in self.res_blocks:
            block.remove_weight_norm()
        self.final_conv[1].remove_weight_norm()


# -------------------------------------------------------------------------------------- flows


class ActNorm(nn.Module):
    """Per-channel affine map y = scale * (x + loc): (B, D, T) -> ((B, D, T), log|det|).

    Runs in float32 (or float64) whatever the input dtype or autocast, returning the input's dtype. The
    data-dependent initialisation is explicit (:meth:`initialize_from`, called by
    :meth:`FloWaveNet.initialize <waveglow.models.flowavenet.model.FloWaveNet.initialize>`), never a
    side effect of a forward pass.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1))
        self.scale = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, _, T = x.shape
        with autocast_off(x.device):
            scale, loc, x32 = at_least_float32(self.scale, self.loc, x)
            y = scale * (x32 + loc)
            logdet = B * T * torch.log(scale.abs()).sum()
        return y.to(x.dtype), logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """(B, D, T) -> y / scale - loc, the scale kept at least ACTNORM_EPS away from zero."""
        with autocast_off(y.device):
            scale, loc, y32 = at_least_float32(self.scale, self.loc, y)
            guarded = torch.where(scale.abs() < ACTNORM_EPS, torch.full_like(scale, ACTNORM_EPS).copysign(scale), scale)
            x = y32 / guarded - loc
        return x.to(y.dtype)

    @torch.no_grad()
    def initialize_from(self, x: torch.Tensor) -> None:
        """loc = -mean, scale = 1 / (std + 1e-6) per channel over batch and time (unbiased std), in float32."""
        with autocast_off(x.device):
            flat = at_least_float32(x.detach())[0].transpose(0, 1).reshape(x.size(1), -1)  # (D, B * T)
            self.loc.copy_(-flat.mean(1).view(1, -1, 1))
            self.scale.copy_((1 / (flat.std(1) + ACTNORM_EPS)).view(1, -1, 1))


class AffineCoupling(nn.Module):
    """x = (x_a, x_b) -> (x_a, (x_b - t) * exp(-log_s)), (log_s, t) = net(x_a, c_a).

    ``c_a`` is the half of the block's conditioning this flow sees: (B, E / 2, T).
    """

    def __init__(self, channels: int, cin_channels: int, num_layers: int, affine: bool = True, width: int = 256) -> None:
        super().__init__()
        self.affine = affine
        out = channels if affine else channels // 2
        self.net = WaveNet(channels // 2, out, num_layers, cin_channels // 2, width)

    def forward(self, x: torch.Tensor, c_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x.chunk(2, 1)
        if not self.affine:
            return torch.cat([x_a, x_b - self.net(x_a, c_a)], 1), x.new_zeros((), dtype=torch.float32)
        log_s, t = self.net(x_a, c_a).chunk(2, 1)
        y_b = (x_b - t) * torch.exp(-log_s)
        return torch.cat([x_a, y_b.to(x.dtype)], 1), -at_least_float32(log_s)[0].sum()

    def inverse(self, y: torch.Tensor, c_a: torch.Tensor, net=None) -> torch.Tensor:
        """The inverse map; ``net(y_a, c_a)`` (default: ``self.net``) may be an equivalent fast operator."""
        net = self.net if net is None else net
        y_a, y_b = y.chunk(2, 1)
        if not self.affine:
            return torch.cat([y_a, y_b + net(y_a, c_a)], 1)
        log_s, t = net(y_a, c_a).chunk(2, 1)
        return torch.cat([y_a, (y_b * torch.exp(log_s) + t).to(y.dtype)], 1)


def swap_halves(x: torch.Tensor) -> torch.Tensor:
    """The reference's ``change_order``: (B, 2H, T) -> channels H..2H-1 first, then 0..H-1."""
    a, b = x.chunk(2, 1)
    return torch.cat([b, a], 1)


class Flow(nn.Module):
    """ActNorm, then the affine coupling, then the channel halves swapped."""

    def __init__(self, channels: int, cin_channels: int, num_layers: int, affine: bool, width: int) -> None:
        super().__init__()
        self.actnorm = ActNorm(channels)
        self.coupling = AffineCoupling(channels, cin_channels, num_layers, affine, width)

    def forward(self, x: torch.Tensor, c_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, logdet = self.actnorm(x)
        x, det = self.coupling(x, c_a)
        return swap_halves(x), logdet + det

    def inverse(self, y: torch.Tensor, c_a: torch.Tensor, net=None) -> torch.Tensor:
        return self.actnorm.inverse(self.coupling.inverse(swap_halves(y), c_a, net))


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, 2C, T / 2): channel 2c + j holds x[c, 2t + j], as in the reference."""
    B, C, T = x.shape
    x = x.view(B, C, T // 2, 2).permute(0, 1, 3, 2)  # (B, C, 2, T / 2)
    return x.reshape(B, 2 * C, T // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """(B, 2C, T / 2) -> (B, C, T), the inverse of :func:`squeeze`."""
    B, C2, n = x.shape
    x = x.view(B, C2 // 2, 2, n).permute(0, 1, 3, 2)  # (B, C, T / 2, 2)
    return x.reshape(B, C2 // 2, 2 * n)


def at_least_float32(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each tensor promoted to float32, or kept when already wider (float64)."""
    return tuple(t.to(torch.promote_types(t.dtype, torch.float32)) for t in tensors)


def gaussian_log_p(x: torch.Tensor, mean: torch.Tensor, log_sd: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(x; mean, exp(log_sd)^2), including the -0.5 log(2 pi) term, in float32."""
    x, mean, log_sd = at_least_float32(x, mean, log_sd)
    return -0.5 * math.log(2 * math.pi) - log_sd - 0.5 * (x - mean) ** 2 * torch.exp(-2 * log_sd)


class Block(nn.Module):
    """Squeeze, n_flow flows, and (when ``split``) half of the channels set aside under a WaveNet prior.

    Works on the squeezed width D = 2 * in_channel with conditioning E = 2 * cin_channel.
    """

    def __init__(
        self, in_channel: int, cin_channel: int, n_flow: int, n_layer: int, affine: bool, split: bool, width: int
    ) -> None:
        super().__init__()
        self.split = split
        D, E = 2 * in_channel, 2 * cin_channel
        self.flows = nn.ModuleList(Flow(D, E, n_layer, affine, width) for _ in range(n_flow))
        if split:
            self.prior = WaveNet(D // 2, D, 2, E, width)

    def flow_conditions(self, c: torch.Tensor) -> list[torch.Tensor]:
        """The half of the squeezed conditioning c (B, E, T) each flow sees: first, second, first, ..."""
        first, second = c.chunk(2, 1)
        return [first if j % 2 == 0 else second for j in range(len(self.flows))]

    def output_condition(self, c: torch.Tensor) -> torch.Tensor:
        """The conditioning after the flows' swaps, as the prior and the next block see it."""
        return swap_halves(c) if len(self.flows) % 2 else c

    def prior_params(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_sd = self.prior(x, c).chunk(2, 1)
        return mean, log_sd

    def remove_weight_norm(self) -> None:
        for flow in self.flows:
            flow.coupling.net.remove_weight_norm()
        if self.split:
            self.prior.remove_weight_norm()
