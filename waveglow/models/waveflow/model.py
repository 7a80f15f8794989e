"""WaveFlow (Ping et al., ICML 2020) and NanoFlow (Lee et al., NeurIPS 2020), as L0SG/NanoFlow has them.

Module and attribute names follow L0SG/NanoFlow (``flows``, ``coupling``, ``net``, ``front_conv``,
``res_blocks``, ``filter_gate_conv``, ``filter_gate_conv_c``, ``filter_gate_conv_h``,
``res_skip_conv``, ``proj_log_s_t``, ``estimator``, ``flow_embedding``, ``multgate``,
``upsample_conv``), so the state-dict keys and shapes are the published ones (630 tensors and
5,950,180 parameters for waveflow-h16-r64).

Shapes: B batch, T audio samples, F mel frames (T = 256 F), h = n_height, W = T / h. The audio is
folded into a one-channel image (B, 1, h, W) with ``X[b, 0, r, w] = x[b, w h + r]``: height runs
over h consecutive samples, width over blocks of h. Every flow is autoregressive along height
(causal convolutions) and non-causal along width (dilated "same" convolutions). The upsampled mel
is folded the same way, 80 channels per sample: (B, 80, h, W).

One class covers L0SG's four coupling types (``coupling_type``):

- ``waveflow``: one 2-D WaveNet and projection per flow (``flows.k.coupling.net``, ``...proj_log_s_t``);
- ``nanoflow``: one shared WaveNet (``estimator.net``) told which flow it serves by a learned flow
  embedding added inside every gate; per flow a projection and a per-layer residual gain
  ``multgate`` (``flows.k.multgate``, ``flows.k.proj_log_s_t``);
- ``nanoflow_decomp``: one shared plain WaveNet, a projection per flow;
- ``nanoflow_naive``: one flow (``flow.coupling``) applied ``n_flow`` times.

Flow k permutes the rows of the audio *and* of the conditioning (a reversal; with ``bipartize``
the later half of WaveFlow's flows reverse each half of the rows instead), then applies an affine
coupling to every row: row r is scaled and shifted by what the WaveNet computes from rows 0..r-1
(the image moved down one row) and the conditioning. The latent z (B, 1, h, W) is the last flow's
output, in that flow's row order, as L0SG's ``forward`` returns it and its ``reverse`` takes it.
The shared tools see it as (B, h, W) (rows as channels, time last, as WaveGlow's (B, n_group,
T / n_group)): :meth:`WaveFlow.encode` returns and :meth:`WaveFlow.infer` takes that layout, and
the same numbers drawn as L0SG draws its (B, 1, h, W) noise.

:class:`WaveFlow` is a :class:`~waveglow.models.base.FlowVocoder`: what the shared tools ask of it
(default sigma, the loss's Gaussian constant, the fast inverse, the export copy, the config a
state dict implies) are its class attributes and methods. The building blocks live in
``layers.py`` and are importable from here too.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ..base import FlowVocoder, ReceptiveField, redraw
from ..image_upsampler import UPSAMPLE_STRIDE, image_upsampler, remove_upsampler_weight_norm, upsample_image
from ..weight_norm import WeightNormEmbedding
from .config import HOP_LENGTH, WaveFlowConfig
from .fast import FastWaveFlow, RowInverse
from .layers import (
    ZERO_CONV_INIT as ZERO_CONV_INIT,
    Conv2D as Conv2D,
    Coupling as Coupling,
    Estimator,
    Flow,
    ResBlock2D as ResBlock2D,
    SharedFlow,
    Wavenet2D,
    ZeroConv2d,
    flow_embedding,
    fold,
    receptive_field_columns,
    receptive_field_samples,
    shift_down,
    unfold,
)
from .readers import infer_waveflow_config

__all__ = [
    "WaveFlow", "ExportWaveFlow", "Wavenet2D", "ZeroConv2d", "fold", "unfold", "shift_down", "receptive_field_columns",
    "receptive_field_samples",
]

# L0SG's inference drops the last (2 * 16) ** 2 - 16 ** 2 samples of the upsampled mel (a trim
# copied from WaveGlow's upsampler; this one has no overhang, so it removes three real frames).
REFERENCE_TIME_CUTOFF = (2 * UPSAMPLE_STRIDE) ** 2 - UPSAMPLE_STRIDE**2


# ------------------------------------------------------------------------------------ the model


class WaveFlow(FlowVocoder):
    """WaveFlow or NanoFlow with L0SG's constructor keys: ``WaveFlow(**config["waveflow_config"])``.

    Its ``config`` is the :class:`WaveFlowConfig` it was built with; :meth:`from_config` (the
    default) builds one from a whole config's ``waveflow_config`` section.
    """

    default_sigma = 1.0  # L0SG's synthesis temperature
    nll_constant = 0.5 * math.log(2 * math.pi)  # WaveFlowLoss is the full negative log-likelihood
    denoiser_applies = False  # L0SG has none; its bias removal is tuned on WaveGlow's sigma-0 output
    mel_channels_key = "cin_channels"

    def __init__(
        self,
        model_name: str = "waveflow",
        cin_channels: int = 80,
        res_channels: int = 64,
        n_height: int = 16,
        n_layer: int = 8,
        n_flow: int = 8,
        n_layer_per_cycle: int = 1,
        coupling_type: str = "waveflow",
        size_flow_embed: int = 512,
        use_weightnorm_embed: bool | str = False,
        bipartize: bool = False,
    ) -> None:
        super().__init__()
        self.config = WaveFlowConfig(
            model_name, cin_channels, res_channels, n_height, n_layer, n_flow, n_layer_per_cycle, coupling_type,
            size_flow_embed, use_weightnorm_embed, bipartize,
        )
        self.hop_length = HOP_LENGTH
        self.n_mel_channels = cin_channels
        self.n_height = n_height
        self.n_flow = n_flow
        self.coupling_type = coupling_type
        self.latent_steps_per_frame = HOP_LENGTH // n_height  # z is (B, 1, h, T / h)
        sizes = (res_channels, cin_channels, n_layer, n_layer_per_cycle)
        if coupling_type == "waveflow":
            self.flows = nn.ModuleList(Flow(*sizes) for _ in range(n_flow))
        elif coupling_type == "nanoflow_naive":
            self.flow = Flow(*sizes)
        else:
            nanoflow = coupling_type == "nanoflow"
            if nanoflow:
                self.flow_embedding = flow_embedding(n_flow, size_flow_embed, self.config.use_weightnorm_embed)
            self.estimator = Estimator(Wavenet2D(*sizes, size_flow_embed if nanoflow else 0))
            self.flows = nn.ModuleList(SharedFlow(res_channels, n_layer, nanoflow) for _ in range(n_flow))
        self.upsample_conv = image_upsampler()

    @classmethod
    def config_from_state_dict(cls, state_dict: Mapping[str, torch.Tensor], source: str) -> dict:
        """The ``waveflow_config`` a (prefix-free) state dict's shapes imply (:func:`~.readers.infer_waveflow_config`)."""
        return infer_waveflow_config(state_dict, source).to_kwargs()

    # ------------------------------------------------------------------ structure

    @property
    def dtype(self) -> torch.dtype:
        return self.upsample_conv[0].bias.dtype

    @property
    def device(self) -> torch.device:
        return self.upsample_conv[0].bias.device

    def permute(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Flow k's row permutation of (B, C, h, W), its own inverse: a reversal, or (bipartize) each half reversed."""
        if self.config.bipartize and k >= self.n_flow // 2:
            half = self.n_height // 2
            return torch.cat([x[:, :, :half].flip(2), x[:, :, half:].flip(2)], 2)
        return x.flip(2)

    def estimator_of(self, k: int):
        """(net, projection, embedding, gains) that flow k's coupling uses; embedding and gains are NanoFlow's."""
        if self.coupling_type == "waveflow":
            coupling = self.flows[k].coupling
            return coupling.net, coupling.proj_log_s_t, None, None
        if self.coupling_type == "nanoflow_naive":
            return self.flow.coupling.net, self.flow.coupling.proj_log_s_t, None, None
        flow = self.flows[k]
        if self.coupling_type == "nanoflow_decomp":
            return self.estimator.net, flow.proj_log_s_t, None, None
        token = torch.tensor([k], device=self.device)
        embedding = self.flow_embedding(token).view(1, -1, 1, 1)  # (1, E, 1, 1)
        return self.estimator.net, flow.proj_log_s_t, embedding, flow.multgate

    def log_s_t(self, k: int, x_shifted: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow k's coupling parameters from the shifted image (B, 1, h', W) and c (B, cin, h', W): 2 x (B, 1, h', W)."""
        net, projection, embedding, gains = self.estimator_of(k)
        out = projection(net(x_shifted, c, embedding, gains) if embedding is not None else net(x_shifted, c))
        return out[:, :1], out[:, 1:]

    def receptive_field_samples(self) -> int:
        """How far (samples, one side, along time) the output can depend on a latent sample or a mel frame."""
        return receptive_field_samples(self.config)

    def receptive_field(self) -> ReceptiveField:
        """Frames of context each output frame needs, each side (:class:`~waveglow.models.ReceptiveField`).

        The same reach both ways (the width convolutions are symmetric), from
        :func:`receptive_field_samples`: 129 frames for the 8-flow, 8-layer configs. A frame is
        256 / h whole columns, so any frame boundary is a column boundary (alignment 1).
        """
        frames = -(-receptive_field_samples(self.config) // HOP_LENGTH)
        return ReceptiveField(past=frames, future=frames, alignment=1)

    # ------------------------------------------------------------------ conditioning and checks

    def upsample(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mel, F) -> (B, n_mel, 256 F): the mel as a one-channel image, stretched 16 x 16 in time."""
        return upsample_image(self.upsample_conv, mel)

    def conditioning(self, mel: torch.Tensor, length: int) -> torch.Tensor:
        """The first ``length`` samples of the upsampled mel, folded: (B, n_mel, F) -> (B, n_mel, h, length / h)."""
        c = self.upsample(mel)
        if c.size(-1) < length:
            raise ValueError(f"{mel.size(-1)} mel frames give {c.size(-1)} samples, fewer than the audio's {length}")
        return fold(c[..., :length], self.n_height)

    def reference_conditioning(self, mel: torch.Tensor) -> torch.Tensor:
        """L0SG's inference conditioning: the upsampled mel less its last 768 samples, folded (256 (F - 3) samples)."""
        c = self.upsample(mel)[..., :-REFERENCE_TIME_CUTOFF]
        return fold(c, self.n_height)

    def check_inputs(self, mel: torch.Tensor, length: int) -> None:
        """Raise ValueError unless mel is (B, n_mel, F) on the model's device and length is a multiple of h."""
        if mel.dim() != 3 or mel.size(1) != self.n_mel_channels:
            raise ValueError(f"mel must be (batch, {self.n_mel_channels}, frames), got {tuple(mel.shape)}")
        if mel.device != self.device:
            raise ValueError(f"mel is on {mel.device} and the model on {self.device}: move it with mel.to({str(self.device)!r})")
        if length % self.n_height:
            raise ValueError(f"{length} samples is not a multiple of n_height = {self.n_height}")

    # ----------------------------------------------------------------------------- forward

    def forward(self, mel: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, n_mel, F), audio (B, T) with 256 F >= T -> (z (B, 1, h, T / h), logdet summed over the batch)."""
        if audio.dim() != 2:
            raise ValueError(f"audio must be (batch, samples), got {tuple(audio.shape)}")
        self.check_inputs(mel, audio.size(-1))
        c = self.conditioning(mel, audio.size(-1))  # (B, cin, h, W)
        x = fold(audio.to(self.dtype), self.n_height)  # (B, 1, h, W)
        logdet = torch.zeros((), device=x.device)
        for k in range(self.n_flow):
            x, c = self.permute(k, x), self.permute(k, c)
            log_s, t = self.log_s_t(k, shift_down(x), c)
            x = x * torch.exp(log_s) + t
            logdet = logdet + log_s.sum(dtype=torch.promote_types(log_s.dtype, torch.float32))
        return x, logdet

    def encode(self, mel: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mel, F), audio (B, 256 F) -> z (B, h, 16 F) in ``infer``'s layout (differentiable)."""
        return self(mel, audio)[0][:, 0]

    # ----------------------------------------------------------------------------- inverse

    def flow_conditions(self, c: torch.Tensor) -> list[torch.Tensor]:
        """The conditioning each flow sees, its rows permuted by that flow and every flow before it."""
        out = []
        for k in range(self.n_flow):
            c = self.permute(k, c)
            out.append(c)
        return out

    def reverse(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The inverse flow, L0SG's ``reverse``: z (B, 1, h, W), folded conditioning c (B, cin, h, W) -> (B, W h).

        Each coupling is undone row by row; row r reruns the flow's WaveNet on the rows decoded
        so far (height is causal, so row r's output is what the whole image would give).
        """
        return self.reverse_with(z, c, self.reverse_coupling)

    def reverse_with(self, z: torch.Tensor, c: torch.Tensor, reverse_coupling) -> torch.Tensor:
        """The one reverse loop: ``reverse_coupling(k, y, c_k)`` undoes flow k's coupling.

        The fast path (:mod:`.fast`) runs this same loop with its cached-row coupling inverse.
        """
        conditions = self.flow_conditions(c)
        x = z.to(self.dtype)
        for k in reversed(range(self.n_flow)):
            x = self.permute(k, reverse_coupling(k, x, conditions[k]))
        return unfold(x)[:, 0]

    def reverse_coupling(self, k: int, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Undo flow k's coupling: y (B, 1, h, W) -> x, one row at a time, x_r = (y_r - t_r) exp(-log_s_r)."""
        x = torch.zeros_like(y)
        for r in range(self.n_height):
            log_s, t = self.log_s_t(k, shift_down(x[:, :, : r + 1]), c[:, :, : r + 1])
            x[:, :, r] = (y[:, :, r] - t[:, :, r]) * torch.exp(-log_s[:, :, r])
        return x

    @torch.no_grad()
    def infer(self, mel: torch.Tensor, sigma: float = 1.0, *, z: torch.Tensor | None = None,
              generator: torch.Generator | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`waveglow.models.base.FlowVocoder.infer` for WaveFlow: mel (B, n_mel, F) -> (B, 256 F).

        The latent is (B, h, 16 F), as :meth:`encode` returns it (L0SG's (B, 1, h, 16 F) is taken
        too); ``sigma`` is L0SG's temperature, 1.0 by default. Unlike L0SG's inference, every frame is
        vocoded: its conditioning is not trimmed by 768 samples (:meth:`reference_conditioning`
        gives that). ``lengths`` (multiples of 256): each item runs alone on its own frames.
        """
        return self.infer_with(self.reverse, mel, sigma, z=z, generator=generator, lengths=lengths)

    def infer_with(self, reverse, mel: torch.Tensor, sigma: float, *, z, generator, lengths) -> torch.Tensor:
        """:meth:`infer` with ``reverse(z, c)`` (this model's, or a fast object's equivalent) doing the inverse."""
        T = HOP_LENGTH * mel.size(-1)
        if z is None:
            device = generator.device if generator is not None else self.device
            z = self.sample_latent(mel.size(0), T // self.n_height, sigma, generator, device).to(self.device)
        shape = (mel.size(0), self.n_height, T // self.n_height)
        if z.dim() == 4 and z.size(1) == 1:
            z = z[:, 0]  # L0SG's (B, 1, h, W)
        if tuple(z.shape) != shape:
            raise ValueError(f"z must be {shape} for this mel, got {tuple(z.shape)}")
        if z.device != self.device:
            raise ValueError(f"z is on {z.device} and the model on {self.device}: move it with z.to({str(self.device)!r})")
        self.check_inputs(mel, T)
        if lengths is None:
            return reverse(z.unsqueeze(1), self.conditioning(mel, T))
        out = torch.zeros(mel.size(0), T, dtype=self.dtype, device=self.device)
        for b, length in enumerate(torch.as_tensor(lengths).tolist()):
            if length % HOP_LENGTH or not 0 < length <= T:
                raise ValueError(f"lengths[{b}] = {length} must be a positive multiple of {HOP_LENGTH} up to {T}")
            mel_b = mel[b : b + 1, :, : length // HOP_LENGTH]
            z_b = z[b : b + 1, :, : length // self.n_height].unsqueeze(1)  # (1, 1, h, W_b)
            out[b, :length] = reverse(z_b, self.conditioning(mel_b, length))[0]
        return out

    def sample_latent(
        self, batch: int, n: int, sigma: float, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """sigma * N(0, 1) of shape (B, h, n): the numbers of L0SG's one (B, 1, h, n) normal draw."""
        return sigma * torch.randn(batch, self.n_height, n, generator=generator, device=device)

    def remove_weight_norm(self) -> "WaveFlow":
        """Fold weight norm into plain weights for inference (exact to float rounding); returns the model."""
        for module in self.modules():
            if isinstance(module, Wavenet2D):
                module.remove_weight_norm()
        if isinstance(getattr(self, "flow_embedding", None), WeightNormEmbedding):
            self.flow_embedding.remove_weight_norm()
        remove_upsampler_weight_norm(self.upsample_conv)
        return self

    # ----------------------------------------------------------------------------- inference, export, tests

    def fast(self, *, low_memory: bool = False) -> FastWaveFlow:
        """The cached-row inverse (:class:`~.fast.FastWaveFlow`) of this frozen model, exact to float rounding.

        It keeps a few rows per layer whatever ``low_memory`` says: there is no trade to make.
        """
        return FastWaveFlow(self)

    def prepare_for_export(self) -> "ExportWaveFlow":
        """This weight-norm-free copy turned, in place, into an :class:`ExportWaveFlow`: traced, its
        ``infer`` holds h WaveNet row passes per flow, not the plain inverse's h (h + 1) / 2."""
        self.__class__ = ExportWaveFlow
        return self

    def perturb(self, generator: torch.Generator) -> None:
        """Every projection drawn larger than its U(-1e-3, 1e-3) start: no coupling is near the identity."""
        projections = [m for m in self.modules() if isinstance(m, ZeroConv2d)]
        redraw([p for m in projections for p in (m.conv.weight, m.conv.bias, m.scale)], 0.05, generator)


class ExportWaveFlow(WaveFlow):
    """A WaveFlow whose ``infer`` runs the cached-row inverse, for tracing into ONNX or TorchScript.

    The operators are derived from the weights inside each call, so the graph holds them as
    operations on the weights and any dtype the module is cast to works; the plain inverse would
    trace h (h + 1) / 2 WaveNet passes per flow instead of h. :meth:`WaveFlow.prepare_for_export`
    makes one from a private copy; everything else is the model's.
    """

    @torch.no_grad()
    def infer(self, mel: torch.Tensor, sigma: float = 1.0, *, z=None, generator=None, lengths=None) -> torch.Tensor:
        return self.infer_with(RowInverse(self).reverse, mel, sigma, z=z, generator=generator, lengths=lengths)
