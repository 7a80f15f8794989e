"""Exact fast paths for WaveGlow inference: the same function as the plain path, fewer FLOPs.

Every rewrite here is linear algebra on the trained weights, exact up to floating-point
rounding (tests/test_fast.py compares against the plain path to 1e-5 in float32):

* **Folded conditioning.** ``cond_layer(fold(trim(upsample(mel))))`` is linear in the mel. With
  g = n_group, hop 256 and kernel 1024 = 4 hops, group step ``s = 32 f + p`` (P = 256 / g = 32
  phases) reads only mel frames f, f-1, f-2, f-3 (320 numbers) through weights that depend on p.
  Each WN layer's 2C conditioning rows are therefore one matmul of the (B, frames, 320) mel
  windows with a (320, P * 2C) operator: 320 MACs per output instead of 640, and no upsampler.
  The operator is ``P * 2C * 320`` floats per layer: 2 GB for all layers of the default
  256-channel model, so it is built per layer on the fly (a fixed cost of 10240 * 640 * 2C MACs)
  unless ``cache_conditioning=True``. Built on the fly it pays once B * n > 20480 group steps
  (about 7.4 s of audio); below that the plain conditioning is used, one layer slice at a time.
* **start folded into in_layers[0]** (a kernel-k conv of a 1x1 conv is a kernel-k conv from n_in
  channels; start's bias becomes a per-tap vector, corrected at the zero-padded edges).
* **skip halves folded into end**: ``end(sum_i skip_i)`` = ``sum_i (E S_i) acts_i + const``, so
  each res_skip layer produces C residual rows plus 2 n_in output rows instead of 2C rows.
* **W^-1** of every flow is computed once, in float32, when the object is built.
* The gate computes half the activation, tanh(a) sigmoid(b) / 2, from 2a: the 2 is folded into
  the weights and biases of the tanh half, the 1/2 into the res and skip weights that read the
  gate's output (both linear). On CPU in float32 it is (sigmoid(2a) - 1/2) sigmoid(b), within
  2e-7: one in-place sigmoid over the whole buffer, a subtraction and a product (torch's CPU
  sigmoid is several times faster than its tanh; 5 ms instead of 13 ms per layer for 10 s of
  audio). Half types use tanh itself (the subtraction would cost 1e-3 absolute near a = 0); on
  CUDA a TorchScript-fused tanh form.
* The conditioning of each layer is written into one reused buffer (fresh 50 MB tensors cost page
  faults on CPU), and the cached folded operators carry their bias as an extra row, padded with
  zero rows to an inner dimension of 328 (a multiple of 8: 321 ran 25 % slower on CPU).
* The WN runs time-major, (n, channels): every conv is a GEMM (a kernel-k conv is k shifted
  ``addmm_`` calls accumulating in place), and the folded conditioning lands in that layout
  with no transpose; measured faster than mkldnn's channels-first conv1d on this CPU.

Everything derived lives in an explicit object, :class:`FastWaveGlow`, built from a model whose
weights are then frozen; the model itself keeps nothing. Like every family's fast object it
refuses to run once the model's weights changed (:class:`waveglow.models.fast.FastVocoder`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fast import FastVocoder, parameter_key
from ...errors import StaleWeightsError
from .layers import unfold

__all__ = [
    "FastWaveGlow", "StaleWeightsError", "FastInference", "select_gate",
    "gate_time_major_", "gate_time_major_tanh_", "gate_time_major",
    "FOLD_MIN_STEPS", "GATE_SCALE", "ACTS_SCALE",
]

# The fast path keeps the tanh half of each gate's input multiplied by GATE_SCALE, and its gate
# returns the activation times ACTS_SCALE (see gate_time_major_); the layers reading it undo that.
GATE_SCALE = 2.0
ACTS_SCALE = 0.5
# Below this many group steps (B * n), building the folded operator on the fly costs more than it saves.
FOLD_MIN_STEPS = 20480


class FoldedUpsampler:
    """The upsampler's weights regrouped by phase: for the mel windows of :meth:`windows`."""

    def __init__(self, upsample: nn.ConvTranspose1d, n_group: int) -> None:
        stride, kernel = upsample.stride[0], upsample.kernel_size[0]
        n_mel = upsample.in_channels
        self.n_group, self.taps, self.phases = n_group, kernel // stride, stride // n_group
        w = upsample.weight.detach().float()  # (mel in d, mel out c, kernel), tap = stride * j + g * p + i
        w = w.view(n_mel, n_mel, self.taps, self.phases, n_group)  # (d, c, j, p, i)
        self.weight = w.permute(0, 2, 3, 1, 4).reshape(n_mel * self.taps * self.phases, n_mel * n_group)  # ((d, j, p), (c, i))
        self.bias = upsample.bias.detach().float().repeat_interleave(n_group)  # (c * g + i,)
        self.width = n_mel * self.taps  # one mel window
        # With the bias row, the cached operators' inner dimension rounded up to a multiple of 8:
        # a product with K = 321 ran 25 % slower than with K = 328 (zero rows) on the CPU measured.
        self.padded_width = -(-(self.width + 1) // 8) * 8

    @staticmethod
    def supports(upsample: nn.ConvTranspose1d, n_group: int) -> bool:
        stride, kernel = upsample.stride[0], upsample.kernel_size[0]
        return stride % n_group == 0 and kernel % stride == 0 and upsample.padding[0] == 0

    def windows(self, mel: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
        """mel (B, n_mel, F) -> (B, ceil(n / P), n_mel * taps): row f holds mel[:, d, f - j] at d * taps + j."""
        frames = -(-n // self.phases)
        right = max(frames - mel.size(2), 0)
        padded = F.pad(mel.to(dtype), (self.taps - 1, right))[:, :, : frames + self.taps - 1]  # (B, n_mel, frames + taps - 1)
        win = padded.unfold(2, self.taps, 1).flip(-1)  # (B, n_mel, frames, taps), [.., f, j] = mel[f - j]
        return win.permute(0, 2, 1, 3).reshape(mel.size(0), frames, -1)  # (B, frames, n_mel * taps)

    def compose(self, cond_weight: torch.Tensor) -> torch.Tensor:
        """cond rows (R, n_mel * g) -> (n_mel * taps, P * R): the operator for :meth:`windows`."""
        R = cond_weight.size(0)
        op = self.weight @ cond_weight.float().t()  # ((d, j, p), R)
        n_in = self.weight.size(0) // self.phases
        return op.view(n_in, self.phases * R)  # ((d, j), (p, R))


class FastFlow:
    """One flow's WN as time-major (n, channels) matmuls, start folded into in_layers[0] and the
    skip halves folded into end. Weights are stored transposed, (in, out), per kernel tap."""

    def __init__(self, wn: nn.Module, dtype: torch.dtype, upsampler: FoldedUpsampler | None, cache: bool) -> None:
        C, L = wn.n_channels, wn.n_layers
        self.n_channels, self.n_layers, self.dtype = C, L, dtype
        f32 = lambda t: t.detach().float()  # noqa: E731
        # The tanh half of every gate input is stored doubled: the gate then needs no scaling pass.
        device = wn.start.bias.device
        gate_scale = torch.cat([torch.full((C,), GATE_SCALE, device=device), torch.ones(C, device=device)])  # (2C,)
        start_w, start_b = f32(wn.start.effective_weight())[:, :, 0], f32(wn.start.bias)  # (C, n_in), (C,)
        self.start = (start_w.t().contiguous().to(dtype), start_b.to(dtype))  # (n_in, C), (C,)
        self.in_taps: list[list[tuple[int, torch.Tensor]]] = []  # per layer: (time offset, (in, 2C)) per tap
        in_bias = []
        for i, layer in enumerate(wn.in_layers):
            w, d, pad = f32(layer.effective_weight()) * gate_scale.view(-1, 1, 1), layer.dilation[0], layer.padding[0]  # (2C, C, k)
            if i == 0:
                w = torch.einsum("ock,ci->oik", w, start_w)  # (2C, n_in, k): in_layers[0] of start
            self.in_taps.append([(tap * d - pad, w[:, :, tap].t().contiguous().to(dtype)) for tap in range(w.size(2))])
            in_bias.append(f32(layer.bias) * gate_scale)
        w0 = f32(wn.in_layers[0].effective_weight()) * gate_scale.view(-1, 1, 1)
        start_bias_taps = [(off, w0[:, :, tap] @ start_b) for tap, (off, _) in enumerate(self.in_taps[0])]
        in_bias[0] = in_bias[0] + sum(v for _, v in start_bias_taps)
        self.start_bias_taps = [(off, v.to(dtype)) for off, v in start_bias_taps]
        E = f32(wn.end.weight)[:, :, 0]  # (2 n_in, C)
        self.res, self.skip, out_bias = [], [], f32(wn.end.bias)
        for i, layer in enumerate(wn.res_skip_layers):
            w, b = f32(layer.effective_weight())[:, :, 0], f32(layer.bias)  # (2C or C, C)
            w = w / ACTS_SCALE  # reads the gate's scaled output
            res = C if i < L - 1 else 0  # the last layer has no residual rows
            self.res.append((w[:res].t().contiguous().to(dtype), b[:res].to(dtype)))  # (C, C), (C,)
            self.skip.append((E @ w[res:]).t().contiguous().to(dtype))  # (C, 2 n_in)
            out_bias = out_bias + E @ b[res:]
        self.out_bias = out_bias.to(dtype)
        cond_scale = gate_scale.repeat(L)  # (2CL,)
        cond_w = f32(wn.cond_layer.effective_weight())[:, :, 0] * cond_scale[:, None]  # (2CL, n_mel g)
        cond_b = f32(wn.cond_layer.bias) * cond_scale
        rows = [slice(2 * C * i, 2 * C * (i + 1)) for i in range(L)]
        # (n_mel g, 2C) per layer: the plain conditioning, and (transposed back) the input of
        # on-the-fly folding. Exact in the model's dtype: its weights are in it, scaled by 2.
        self.plain_cond = [cond_w[r].t().contiguous().to(dtype) for r in rows]
        self.plain_bias = [(in_bias[i] + cond_b[r]).to(dtype) for i, r in enumerate(rows)]
        self.folded_bias = self.folded = None
        if upsampler is not None:
            up_b = cond_w @ upsampler.bias  # the upsampler's bias through cond_layer
            self.folded_bias = [(in_bias[i] + cond_b[r] + up_b[r]).to(dtype) for i, r in enumerate(rows)]
            if cache:  # the bias as a row read by a column of ones in the windows: no separate pass
                pad = upsampler.padded_width - upsampler.width - 1
                self.folded = []  # (padded_width, P 2C): n_mel taps weight rows, the bias row, zero rows
                for r, bias in zip(rows, self.folded_bias):
                    op = torch.cat([upsampler.compose(cond_w[r]), bias.float().repeat(upsampler.phases)[None]])
                    self.folded.append(F.pad(op, (0, 0, 0, pad)).to(dtype))
                self.plain_cond = self.plain_bias = None  # the cached operators serve every length

    def in_layer(self, i: int, x: torch.Tensor, source: torch.Tensor) -> None:
        """x (n, 2C) += in_layers[i] of source (n, C) (layer 0: of audio_0 (n, n_in)), zero-padded."""
        n = x.size(0)
        for off, w in self.in_taps[i]:
            if abs(off) < n:
                x[max(-off, 0) : n - max(off, 0)].addmm_(source[max(off, 0) : n + min(off, 0)], w)
        if i == 0:  # start's bias is in the layer bias; take it back where a tap reads the padding
            for off, v in self.start_bias_taps:
                if off < 0:
                    x[: min(-off, n)] -= v
                elif off > 0:
                    x[max(n - off, 0) :] -= v

    def coupling(self, audio_0: torch.Tensor, cond, gate) -> torch.Tensor:
        """WN's output for one batch item: audio_0 (n, n_in), cond(i) -> (n, 2C) fresh -> (n, 2 n_in)."""
        C = self.n_channels
        audio = torch.addmm(self.start[1], audio_0, self.start[0])  # (n, C), the residual stream
        output = torch.zeros(audio_0.size(0), self.out_bias.numel(), dtype=audio.dtype, device=audio.device)
        for i in range(self.n_layers):
            x = cond(i)  # (n, 2C), conditioning plus both biases
            self.in_layer(i, x, audio_0 if i == 0 else audio)
            acts = gate(x, C)  # (n, C)
            if i < self.n_layers - 1:
                audio.addmm_(acts, self.res[i][0]).add_(self.res[i][1])  # in place: in_layers[i] has read it
            output.addmm_(acts, self.skip[i])
        return output.add_(self.out_bias)


def gate_time_major_(x: torch.Tensor, n_channels: int) -> torch.Tensor:
    """The gate on a time-major (n, 2C) float32 buffer whose tanh half holds 2a (``GATE_SCALE``),
    in place: -> (n, C) view of ``ACTS_SCALE`` tanh(a) sigmoid(b) = (sigmoid(2a) - 1/2) sigmoid(b).

    One sigmoid pass over the whole buffer, a subtraction and a product: on CPU torch's sigmoid
    is several times faster than its tanh. The subtraction costs absolute accuracy near a = 0
    (2e-7 in float32; in half precision 1e-3, so half types use :func:`gate_time_major_tanh_`).
    """
    s = x.sigmoid_()
    return s[:, :n_channels].sub_(0.5).mul_(s[:, n_channels:])


def gate_time_major_tanh_(x: torch.Tensor, n_channels: int) -> torch.Tensor:
    """The same gate through tanh, in place: relative accuracy at every magnitude, for half types."""
    t = x[:, :n_channels].mul_(0.5).tanh_().mul_(ACTS_SCALE)
    return t.mul_(x[:, n_channels:].sigmoid_())


def gate_time_major(x: torch.Tensor, n_channels: int) -> torch.Tensor:
    """The gate out of place, through tanh, for TorchScript to fuse into one CUDA kernel: (n, 2C) -> (n, C)."""
    return 0.5 * torch.tanh(0.5 * x[:, :n_channels]) * torch.sigmoid(x[:, n_channels:])


def select_gate(device: torch.device, dtype: torch.dtype):
    """CUDA: one fused kernel; CPU float32: the sigmoid form; CPU half types: the tanh form."""
    if device.type == "cuda":
        return torch.jit.script(gate_time_major)
    return gate_time_major_ if dtype in (torch.float32, torch.float64) else gate_time_major_tanh_


class FastInference:
    """Precomputed operators of a WaveGlow's inference path (see the module docstring)."""

    def __init__(self, model: nn.Module, cache_conditioning: bool = False) -> None:
        self.key = parameter_key(model)
        self.cache_conditioning = cache_conditioning
        self.dtype = model.upsample.weight.dtype
        device = model.upsample.weight.device
        supported = FoldedUpsampler.supports(model.upsample, model.n_group)
        self.upsampler = FoldedUpsampler(model.upsample, model.n_group) if supported else None
        self.flows = [FastFlow(wn, self.dtype, self.upsampler, cache_conditioning) for wn in model.WN]
        self.inverse_weights = [
            torch.linalg.inv(conv.conv.weight.detach().squeeze(-1).float()).to(self.dtype).unsqueeze(-1)
            for conv in model.convinv
        ]  # W_k^-1 as (c, c, 1) conv weights
        # On CUDA the scripted gate is one fused kernel; on CPU scripting does not fuse, and the
        # in-place versions (no temporaries) are the fastest measured.
        self.gate = select_gate(device, self.dtype)
        self.fold_min_steps = FOLD_MIN_STEPS

    def uses_folding(self, batch: int, n: int) -> bool:
        """Folded conditioning when cached, or when B * n group steps repay building it per layer."""
        return self.upsampler is not None and (self.cache_conditioning or batch * n >= self.fold_min_steps)

    def conditioner(self, mel: torch.Tensor, spect_fn, n: int):
        """Returns cond(k, i, b) -> (n, 2C): layer i of flow k's conditioning for item b, biases included.

        Every call writes into one reused buffer (a fresh tensor this large costs page faults on
        CPU), so a result is valid until the next call: the coupling uses each layer's at once.
        """
        buffers: dict[tuple, torch.Tensor] = {}

        def out(rows: int, cols: int) -> torch.Tensor:
            if (rows, cols) not in buffers:
                buffers[(rows, cols)] = torch.empty(rows, cols, dtype=self.dtype, device=mel.device)
            return buffers[(rows, cols)]

        if self.uses_folding(mel.size(0), n):
            win = self.upsampler.windows(mel, n, self.dtype)  # (B, frames, n_mel * taps)
            extra = torch.zeros(*win.shape[:2], self.upsampler.padded_width - win.size(2), dtype=win.dtype, device=win.device)
            extra[:, :, 0] = 1  # the column read by the cached operators' bias row; zeros after it
            win_and_one = torch.cat([win, extra], 2)  # (B, frames, padded_width)

            def cond(k: int, i: int, b: int) -> torch.Tensor:
                flow = self.flows[k]
                y = out(win.size(1), self.upsampler.phases * 2 * flow.n_channels)  # (frames, P 2C)
                if flow.folded is not None:
                    torch.mm(win_and_one[b], flow.folded[i], out=y)
                else:
                    op = self.upsampler.compose(flow.plain_cond[i].t()).to(self.dtype)
                    torch.addmm(flow.folded_bias[i].repeat(self.upsampler.phases), win[b], op, out=y)
                return y.view(-1, flow.n_channels * 2)[:n]  # (frames P, 2C) -> (n, 2C), time-major

            return cond
        spect = spect_fn().transpose(1, 2).contiguous()  # (B, n, n_mel g)

        def cond(k: int, i: int, b: int) -> torch.Tensor:
            flow = self.flows[k]
            y = out(n, 2 * flow.n_channels)
            return torch.addmm(flow.plain_bias[i], spect[b], flow.plain_cond[i], out=y)  # (n, 2C)

        return cond

    def coupling(self, k: int, audio_0: torch.Tensor, cond) -> torch.Tensor:
        """WN[k](audio_0, spect) computed the fast way: (B, n_in, n) -> (B, 2 n_in, n)."""
        flow, outputs = self.flows[k], []
        for b in range(audio_0.size(0)):
            a = audio_0[b].t().contiguous()  # (n, n_in)
            outputs.append(flow.coupling(a, lambda i: cond(k, i, b), self.gate).t())  # (2 n_in, n)
        return torch.stack(outputs)

    def inverse(self, k: int, z: torch.Tensor) -> torch.Tensor:
        return F.conv1d(z, self.inverse_weights[k].to(z.dtype))


class FastWaveGlow(FastVocoder):
    """WaveGlow inference the exact fast way, for a model whose weights no longer change.

    ``FastWaveGlow(model)`` builds the operators once from the model as it is (weight norm removed
    or not); ``infer`` then computes what ``model.infer`` computes, to float rounding, with the
    same noise (the shared interface and the staleness check: :class:`~waveglow.models.fast.FastVocoder`).

    ``cache_conditioning=True`` also keeps the folded conditioning operator of every layer
    (n_flows * n_layers * 32 * 2C * 328 floats: 2 GB in float32 for the default model), the
    fastest path at any length; ``False`` builds it per layer when the input is long enough to
    repay that. A batch with ``lengths`` (unequal utterances padded together) runs the model's
    masked plain path: the fast operators do not mask.
    """

    def __init__(self, model: nn.Module, cache_conditioning: bool = False) -> None:
        super().__init__(model)
        self.ops = FastInference(model, cache_conditioning)

    @property
    def n_group(self) -> int:
        return self.model.n_group

    @property
    def cache_conditioning(self) -> bool:
        return self.ops.cache_conditioning

    def fast_infer(self, mel: torch.Tensor, sigma: float, *, z, generator, lengths) -> torch.Tensor:
        if lengths is not None:
            return self.model.infer(mel, sigma, z=z, generator=generator, lengths=lengths)
        model = self.model
        z, length = model.prepare_latent(mel, sigma, z, generator)
        cond = self.ops.conditioner(mel, lambda: model.condition(mel, length), z.size(2))
        audio = model.reverse_with(z, lambda k, audio_0: self.ops.coupling(k, audio_0, cond), self.ops.inverse)
        return unfold(audio)  # (B, g, n) -> (B, n * g)
