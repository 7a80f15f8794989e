"""FloWaveNet inference with fused, frozen operators: the same reverse pass, fewer and larger GEMMs.

Every WaveNet of the model is rebuilt as plain tensors once (weight norm folded in):

- filter and gate convolutions of a layer as one conv with 2C outputs, the filter half doubled so
  that the gate is one in-place sigmoid over both halves (tanh(a) = 2 sigmoid(2a) - 1);
- the conditioning of all its layers as one 1x1 conv (n_layer * 2C outputs), its biases folded
  into the dilated convs' biases;
- residual and skip 1x1 convs as one conv; the last layer's residual, which nothing reads, is
  not computed;
- the ZeroConv1d's ``exp(3 * scale)`` folded into its weight and bias.

These are exact rewrites: the output equals ``model.infer`` to float rounding, with the same
noise. :class:`FastFloWaveNet` keeps the model interface the shared tools use and raises
:class:`~waveglow.errors.StaleWeightsError` if the model's weights change after it was built
(:class:`waveglow.models.fast.FastVocoder`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..fast import FastVocoder
from ...errors import StaleWeightsError
from .layers import WaveNet

if TYPE_CHECKING:  # annotations only: the model imports this module
    from .model import FloWaveNet

__all__ = ["FastFloWaveNet", "FastWaveNet", "StaleWeightsError", "GATE_SCALE"]

GATE_SCALE = 2.0  # the filter half of each gate's input is kept doubled (see gate_)


def _weight(conv: nn.Module) -> torch.Tensor:
    return conv.effective_weight().detach() if hasattr(conv, "effective_weight") else conv.weight.detach()


class FastWaveNet:
    """One WaveNet as fused tensors: x (B, in, T), c (B, cond, T) -> (B, out, T), as ``net(x, c)``."""

    def __init__(self, net: WaveNet) -> None:
        front = net.front_conv[0].conv
        self.front = (_weight(front), front.bias.detach())
        self.channels = front.out_channels
        cond_weights, self.layers = [], []
        for n, block in enumerate(net.res_blocks):
            filter_conv, gate_conv = block.filter_conv.conv, block.gate_conv.conv
            # The filter (tanh) half is stored doubled: the gate computes tanh(a) as 2 sigmoid(2a) - 1.
            w_in = torch.cat([GATE_SCALE * _weight(filter_conv), _weight(gate_conv)], 0)  # (2C, C, 3)
            b_in = torch.cat(
                [GATE_SCALE * (filter_conv.bias + block.filter_conv_c.bias), gate_conv.bias + block.gate_conv_c.bias]
            ).detach()  # (2C,)
            cond_weights += [GATE_SCALE * _weight(block.filter_conv_c), _weight(block.gate_conv_c)]
            last = n == len(net.res_blocks) - 1
            if last:  # only the skip output is used
                w_out, b_out = _weight(block.skip_conv), block.skip_conv.bias.detach()
            else:
                w_out = torch.cat([_weight(block.res_conv), _weight(block.skip_conv)], 0)  # (2C, C, 1)
                b_out = torch.cat([block.res_conv.bias, block.skip_conv.bias]).detach()
            self.layers.append((w_in, b_in, filter_conv.dilation[0], w_out, b_out, last))
        self.cond = torch.cat(cond_weights, 0)  # (n_layer * 2C, cond, 1)
        hidden, zero = net.final_conv[1].conv, net.final_conv[3]
        gain = torch.exp(3 * zero.scale.detach()).view(-1)  # (out,)
        self.final = (_weight(hidden), hidden.bias.detach())
        self.zero = (zero.conv.weight.detach() * gain.view(-1, 1, 1), zero.conv.bias.detach() * gain)

    def __call__(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        C = self.channels
        h = F.conv1d(x, *self.front, padding=1).relu_()  # (B, C, T)
        cond = pointwise(c, self.cond)  # (B, n_layer * 2C, T)
        skip = None
        for n, (w_in, b_in, dilation, w_out, b_out, last) in enumerate(self.layers):
            acts = F.conv1d(h, w_in, b_in, padding=dilation, dilation=dilation).add_(cond[:, 2 * C * n : 2 * C * (n + 1)])
            gated = gate_(acts, C)  # (B, C, T), a view of acts
            out = pointwise(gated, w_out, b_out)
            if not last:
                h = h.add_(out[:, :C]).mul_(math.sqrt(0.5))  # in place: this layer's conv has read h
                out = out[:, C:]
            skip = out if skip is None else skip.add_(out)  # the first layer's output buffer holds the sum
        hidden = pointwise(skip.relu_(), *self.final).relu_()
        return pointwise(hidden, *self.zero)


def gate_(acts: torch.Tensor, C: int) -> torch.Tensor:
    """tanh(a) sigmoid(b) in place, for acts (B, 2C, T) holding (2a, b): -> (B, C, T) view of acts.

    float32/64: one sigmoid pass over the whole buffer, tanh(a) = 2 sigmoid(2a) - 1 (torch's CPU
    sigmoid is several times faster than its tanh; within 2e-7 in float32). Half types take tanh
    itself, whose relative accuracy holds near a = 0.
    """
    if acts.dtype in (torch.float32, torch.float64):
        s = acts.sigmoid_()
        return s[:, :C].mul_(2).sub_(1).mul_(s[:, C:])
    return acts[:, :C].mul_(1 / GATE_SCALE).tanh_().mul_(acts[:, C:].sigmoid_())


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 convolution as one batched GEMM: x (B, I, T), weight (O, I, 1), bias (O,) -> (B, O, T)."""
    w = weight[:, :, 0].expand(x.size(0), -1, -1)  # (B, O, I)
    if bias is None:
        return torch.bmm(w, x)
    return torch.baddbmm(bias.view(1, -1, 1), w, x)


class FastFloWaveNet(FastVocoder):
    """FloWaveNet inference through :class:`FastWaveNet` operators, for a model whose weights are frozen.

    The model's own reverse pass runs with these operators in place of its WaveNets
    (``nets`` of :meth:`FloWaveNet.reverse`). ``model.fast()`` returns one.
    """

    default_sigma = 0.8

    def __init__(self, model: FloWaveNet) -> None:
        super().__init__(model)
        self._coupling = [[FastWaveNet(flow.coupling.net) for flow in block.flows] for block in model.blocks]
        self._prior = [FastWaveNet(block.prior) if block.split else None for block in model.blocks]

    def coupling(self, k: int, j: int) -> FastWaveNet:
        return self._coupling[k][j]

    def prior(self, k: int) -> FastWaveNet:
        return self._prior[k]

    def fast_infer(self, mel: torch.Tensor, sigma: float, *, z, generator, lengths) -> torch.Tensor:
        return self.model._infer(mel, sigma, z=z, generator=generator, lengths=lengths, nets=self)
