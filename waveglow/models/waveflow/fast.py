"""WaveFlow and NanoFlow inference with cached convolution state: each row computed once per flow.

The plain inverse (:meth:`WaveFlow.reverse`, L0SG's ``reverse``) undoes a coupling row by row and
reruns the flow's WaveNet on every row decoded so far: h (h + 1) / 2 row passes per flow. Height
is causal, so each layer's output row r needs only its input rows r - 2 d_h, r - d_h and r.
:class:`FastWaveFlow` keeps, per layer, the last 2 d_h input rows (a queue, zeros at first) and
computes one new row per layer per step: h row passes per flow, as L0SG's ``reverse_fast``,
but for any height dilation and any number of flows, and correct for every coupling type.

Built once from frozen weights (weight norm folded in):

- each WaveNet's conditioning convolutions of all layers as one 1x1 conv (n_layer * 2R outputs),
  their biases, the dilated convs' biases and (NanoFlow) each flow's embedding term folded into
  one bias per flow;
- the last layer's residual half, which nothing reads, not computed;
- each projection's ``exp(3 * scale)`` folded into its weight and bias.

The output equals ``model.infer`` to float rounding, with the same noise. ``WaveFlow.fast()``
returns a :class:`FastWaveFlow`; the export copy (:class:`~.model.ExportWaveFlow`) traces a
:class:`RowInverse` built inside each call.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..fast import FastVocoder
from .layers import Wavenet2D, ZeroConv2d

if TYPE_CHECKING:  # annotations only: the model imports this module
    from .model import WaveFlow

__all__ = ["FastWaveFlow", "RowInverse"]


def _weight(conv: nn.Module) -> torch.Tensor:
    return conv.effective_weight().detach() if hasattr(conv, "effective_weight") else conv.weight.detach()


class _Layer:
    """One gated layer's frozen tensors."""

    def __init__(self, block, last: bool) -> None:
        self.R = block.channels
        self.dilation = block.dilation
        conv = block.filter_gate_conv.conv
        self.weight = _weight(conv)  # (2R, R, 3, 3)
        self.bias = (conv.bias + block.filter_gate_conv_c.bias).detach()  # (2R,)
        w, b = _weight(block.res_skip_conv), block.res_skip_conv.bias.detach()
        self.res_skip = (w[self.R :], b[self.R :]) if last else (w, b)  # the last layer: its skip half alone
        self.last = last


class _Net:
    """A Wavenet2D's frozen tensors, stepped one row at a time."""

    def __init__(self, net: Wavenet2D) -> None:
        front = net.front_conv[0].conv
        self.front = (_weight(front), front.bias.detach())
        self.layers = [_Layer(block, n == len(net.res_blocks) - 1) for n, block in enumerate(net.res_blocks)]
        self.cond = torch.cat([_weight(block.filter_gate_conv_c) for block in net.res_blocks])  # (L 2R, cin, 1, 1)
        self.bias = torch.cat([layer.bias for layer in self.layers])  # (L 2R,)
        self.embedding_convs = [getattr(block, "filter_gate_conv_h", None) for block in net.res_blocks]

    def flow_bias(self, embedding: torch.Tensor | None) -> torch.Tensor:
        """The conditioning's bias for one flow: the layers' biases, plus NanoFlow's embedding terms."""
        if embedding is None:
            return self.bias
        terms = [conv(embedding).reshape(-1).detach() for conv in self.embedding_convs]  # L x (2R,)
        return self.bias + torch.cat(terms)

    def start(self, batch: int, width: int, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
        """Each layer's queue of its last 2 d_h input rows, zeros: the rows above the image."""
        R = self.layers[0].R
        return [torch.zeros(batch, R, 2 * layer.dilation[0], width, dtype=dtype, device=device) for layer in self.layers]

    def step(self, x_row: torch.Tensor, cond_row: torch.Tensor, queues: list[torch.Tensor], gains) -> torch.Tensor:
        """One row: x_row (B, 1, 1, W) (the row above), cond_row (B, L 2R, 1, W) -> the skip sum (B, R, 1, W).

        Updates ``queues`` in place of the list.
        """
        h = F.conv2d(x_row, *self.front)  # (B, R, 1, W)
        skip = None
        for n, layer in enumerate(self.layers):
            window = torch.cat([queues[n], h], 2)  # (B, R, 2 d_h + 1, W)
            queues[n] = window[:, :, 1:]
            a = F.conv2d(window, layer.weight, None, dilation=layer.dilation, padding=(0, layer.dilation[1]))
            a = a + cond_row[:, 2 * layer.R * n : 2 * layer.R * (n + 1)]  # (B, 2R, 1, W)
            out = F.conv2d(torch.tanh(a[:, : layer.R]) * torch.sigmoid(a[:, layer.R :]), *layer.res_skip)
            if layer.last:
                skip = out if skip is None else skip + out
                continue
            res, s = out[:, : layer.R], out[:, layer.R :]
            h = (h + res) * math.sqrt(0.5) if gains is None else h + res * gains[n].view(1, -1, 1, 1)
            skip = s if skip is None else skip + s
        return skip


def _projection(proj: ZeroConv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The projection's conv with exp(3 scale) folded in: weight (2, R, 1, 1), bias (2,)."""
    gain = torch.exp(3 * proj.scale.detach()).view(-1)
    return proj.conv.weight.detach() * gain.view(-1, 1, 1, 1), proj.conv.bias.detach() * gain


class RowInverse:
    """The cached-row inverse of a (frozen) model: its tensors, and ``reverse(z, c)`` as :meth:`WaveFlow.reverse`."""

    def __init__(self, model: WaveFlow) -> None:
        self.model = model
        nets: dict[int, _Net] = {}
        self.flows = []
        for k in range(model.n_flow):
            net, proj, embedding, gains = model.estimator_of(k)
            fast = nets.setdefault(id(net), _Net(net))
            self.flows.append((fast, fast.flow_bias(embedding), _projection(proj), None if gains is None else gains.detach()))

    def reverse(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """z (B, 1, h, W), folded conditioning c (B, cin, h, W) -> audio (B, W h)."""
        return self.model.reverse_with(z, c, self.reverse_coupling)

    def reverse_coupling(self, k: int, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Undo flow k's coupling, one row per step: y (B, 1, h, W) -> x (B, 1, h, W)."""
        net, bias, (proj_w, proj_b), gains = self.flows[k]
        B, _, height, W = y.shape
        queues = net.start(B, W, y.dtype, y.device)
        row = torch.zeros(B, 1, 1, W, dtype=y.dtype, device=y.device)  # the zero row above the image
        rows = []
        for r in range(height):
            cond_row = F.conv2d(c[:, :, r : r + 1], net.cond, bias)  # (B, L 2R, 1, W)
            log_s_t = F.conv2d(net.step(row, cond_row, queues, gains), proj_w, proj_b)  # (B, 2, 1, W)
            row = (y[:, :, r : r + 1] - log_s_t[:, 1:]) * torch.exp(-log_s_t[:, :1])
            rows.append(row)
        return torch.cat(rows, 2)


class FastWaveFlow(FastVocoder):
    """``model.infer`` for WaveFlow and NanoFlow, each coupling undone with cached convolution state."""

    default_sigma = 1.0  # L0SG's synthesis temperature

    def __init__(self, model: WaveFlow) -> None:
        super().__init__(model)
        with torch.no_grad():
            self.inverse = RowInverse(model)

    def fast_infer(self, mel: torch.Tensor, sigma: float, *, z, generator, lengths) -> torch.Tensor:
        return self.model.infer_with(self.inverse.reverse, mel, sigma, z=z, generator=generator, lengths=lengths)
