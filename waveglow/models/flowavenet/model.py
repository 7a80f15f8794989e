"""FloWaveNet: a flow-based vocoder (Kim, Lee, Song, Kim and Yoon, arXiv 1811.02155).

:class:`FloWaveNet` is the :class:`~waveglow.models.base.FlowVocoder` of the family, built from
the blocks of :mod:`~waveglow.models.flowavenet.layers`. Module and attribute names follow
ksw0306/FloWaveNet (``blocks``, ``flows``, ``actnorm``, ``coupling``, ``net``, ``front_conv``,
``res_blocks``, ``final_conv``, ``prior``, ``upsample_conv``), so the state-dict keys and shapes
are the published ones (2,307 tensors and 182,644,788 parameters for the default 8 blocks x 6
flows x 2 layers, split every 4 blocks).

Shapes: B batch, T audio samples, F mel frames (T = 256 F). Each block squeezes time by 2 into
channels, so T must be a multiple of 2 ** n_block. Inside block k the audio has D channels and
the conditioning E = 80 * 2 ** (k + 1) channels.

The latent ``z`` uses the layout of the reference's ``reverse``: (B, 1, T) (or (B, T)), squeezed
through the blocks exactly like the audio, with the half set aside at each split point holding
that prior's standard-normal ``eps``. :meth:`FloWaveNet.encode` returns that layout and
:meth:`FloWaveNet.infer` takes it, so ``infer(mel, z=encode(mel, audio))`` returns the audio.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from ...errors import CheckpointError
from ...formats import load_state_dict_checked
from ..base import FlowVocoder, ReceptiveField, redraw
from ..image_upsampler import UPSAMPLER_REACH, image_upsampler, remove_upsampler_weight_norm, upsample_image
from ..weight_norm import WeightNormConv1d, WeightNormConvTranspose2d  # noqa: F401  (kept importable from here)
from .config import HOP_LENGTH, FloWaveNetConfig
from .fast import FastFloWaveNet
from .layers import ActNorm, AffineCoupling, Block, WaveNet, ZeroConv1d, at_least_float32, gaussian_log_p, squeeze, unsqueeze
from .layers import ACTNORM_EPS, Conv, Flow, ResBlock, swap_halves  # noqa: F401  (kept importable from here)
from .reach import edge_reach_samples
from .readers import infer_flowavenet_config

__all__ = [
    "FloWaveNet",
    "ActNorm",
    "AffineCoupling",
    "WaveNet",
    "ZeroConv1d",
    "WeightNormConvTranspose2d",
    "initialize",
    "squeeze",
    "unsqueeze",
    "HOP_LENGTH",
    "CHUNK_OVERLAP_FRAMES",
    "build_flowavenet",
]

# Context, in mel frames, each side of a chunk when long audio is vocoded in pieces: the default
# model's receptive field, ceil(receptive_field_samples() / 256) = ceil(12440 / 256) = 49 frames,
# so chunks with this context reproduce the unchunked output. Measured, not only counted:
# tests/test_flowavenet.py perturbs one latent sample and one mel frame of small models in
# float64 and finds every changed output sample inside the computed reach (a 3-block model
# reaching 216 samples changed -63..+83 samples around a latent sample).
CHUNK_OVERLAP_FRAMES = 49


class FloWaveNet(FlowVocoder):
    """FloWaveNet with ksw0306's constructor: ``FloWaveNet(**config["flowavenet_config"])``.

    ``initialized`` says whether ActNorm's data-dependent initialisation has run (or the weights
    came from a checkpoint): it is a plain attribute, not a state-dict key. ``load_state_dict``
    sets it; checkpoints keep it beside the state dict (:meth:`extra_state`).
    """

    default_sigma = 0.8  # ksw0306's synthesize.py temperature
    nll_constant = 0.5 * math.log(2 * math.pi)  # FloWaveNetLoss is the full negative log-likelihood
    silence_feature = 0.0  # clip((20 log10(1e-4) - 20 + 100) / 100, 0, 1)
    denoiser_applies = True  # see docs/flowavenet.md: the sigma-0 bias repeats every 256 samples
    mel_channels_key = "cin_channel"

    def __init__(
        self,
        in_channel: int = 1,
        cin_channel: int = 80,
        n_block: int = 8,
        n_flow: int = 6,
        n_layer: int = 2,
        block_per_split: int = 4,
        affine: bool = True,
        n_channels: int = 256,
    ) -> None:
        super().__init__()
        self.config = FloWaveNetConfig(in_channel, cin_channel, n_block, n_flow, n_layer, block_per_split, affine, n_channels)
        if min(in_channel, cin_channel, n_block, n_flow, n_layer, block_per_split, n_channels) < 1:
            raise ValueError(f"every FloWaveNet size must be positive, got {self.config}")
        self.hop_length = HOP_LENGTH
        self.latent_steps_per_frame = HOP_LENGTH  # z is (B, 1, T): one latent step per sample
        self.n_mel_channels = cin_channel
        self.in_channel = in_channel
        self.n_block = n_block
        self.block_per_split = block_per_split
        self.blocks = nn.ModuleList()
        for i in range(n_block):
            split = self.splits_after(i)
            self.blocks.append(Block(in_channel, cin_channel, n_flow, n_layer, affine, split, n_channels))
            cin_channel *= 2
            if not split:
                in_channel *= 2
        self.upsample_conv = image_upsampler()
        self.initialized = False
        self.register_load_state_dict_post_hook(_mark_initialized)

    def receptive_field_samples(self) -> int:
        """How far (samples, one side) the output can depend on a latent sample or a mel frame's samples.

        Each coupling WaveNet of block k reaches 1 + sum(2 ** n) steps of 2 ** (k + 1) samples (front
        conv, then the dilated layers), each prior 1 + 1 + 2; the flows compose, and the mel's
        upsampler adds UPSAMPLER_REACH.
        """
        coupling = 1 + sum(2**n for n in range(self.config.n_layer))
        reach = UPSAMPLER_REACH
        for k, block in enumerate(self.blocks):
            reach += 2 ** (k + 1) * (len(block.flows) * coupling + (4 if block.split else 0))
        return reach

    def receptive_field(self) -> ReceptiveField:
        """Frames of context each output frame needs, each side (:class:`~waveglow.models.ReceptiveField`).

        From a window edge (:func:`~waveglow.models.flowavenet.reach.edge_reach_samples`): 12,560
        samples for the default model, 50 frames; windows start on multiples of 2 ** n_block samples.
        """
        cfg = self.config
        samples = edge_reach_samples(cfg.n_block, cfg.n_flow, cfg.n_layer, [b.split for b in self.blocks], UPSAMPLER_REACH)
        frames = -(-samples // HOP_LENGTH)
        return ReceptiveField(past=frames, future=frames, alignment=2**cfg.n_block // math.gcd(2**cfg.n_block, HOP_LENGTH))

    def splits_after(self, i: int) -> bool:
        """Whether block i sets half of its output aside (every block_per_split-th, never the last)."""
        return (i + 1) % self.block_per_split == 0 and i != self.n_block - 1

    # ------------------------------------------------------------------ conditioning and checks

    def upsample(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mel, F) -> (B, n_mel, 256 F): the mel as a one-channel image, stretched 16 x 16 in time."""
        return upsample_image(self.upsample_conv, mel)

    def block_conditions(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """Each block's squeezed conditioning: block k gets (B, n_mel * 2 ** (k + 1), T / 2 ** (k + 1))."""
        c, conditions = self.upsample(mel), []
        for block in self.blocks:
            c = squeeze(c)
            conditions.append(c)
            c = block.output_condition(c)
        return conditions

    def check_inputs(self, mel: torch.Tensor, length: int) -> None:
        """Raise ValueError unless mel is (B, n_mel, F) on the model's device and 256 F == length."""
        if mel.dim() != 3 or mel.size(1) != self.n_mel_channels:
            raise ValueError(f"mel must be (batch, {self.n_mel_channels}, frames), got {tuple(mel.shape)}")
        device = self.upsample_conv[0].bias.device
        if mel.device != device:
            raise ValueError(f"mel is on {mel.device} and the model on {device}: move it with mel.to({str(device)!r})")
        if HOP_LENGTH * mel.size(2) != length:
            raise ValueError(f"{mel.size(2)} mel frames give {HOP_LENGTH * mel.size(2)} samples, not {length}")
        if length % 2**self.n_block:
            raise ValueError(f"{length} samples is not a multiple of 2 ** n_block = {2 ** self.n_block}")

    def _audio_3d(self, audio: torch.Tensor, name: str) -> torch.Tensor:
        """(B, T) or (B, in_channel, T) -> (B, in_channel, T)."""
        if audio.dim() == 2 and self.in_channel == 1:
            audio = audio.unsqueeze(1)
        if audio.dim() != 3 or audio.size(1) != self.in_channel:
            raise ValueError(f"{name} must be (batch, T) or (batch, {self.in_channel}, T), got {tuple(audio.shape)}")
        return audio

    # ----------------------------------------------------------------------------- forward

    def forward(self, mel: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, n_mel, F), audio (B, 256 F) -> (log_p, logdet), each summed and divided by B * T."""
        log_p, logdet, _, _ = self._encode(mel, audio)
        B, T = audio.size(0), audio.size(-1)
        return log_p / (B * T), logdet / (B * T)

    def _encode(
        self, mel: torch.Tensor, audio: torch.Tensor, initialize: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The flow from audio to latent -> (log_p sum, logdet sum, final output, each split's eps).

        ``initialize``: each ActNorm first takes its statistics from the input it sees.
        """
        x = self._audio_3d(audio, "audio")
        self.check_inputs(mel, x.size(-1))
        x = x.to(self.upsample_conv[0].bias.dtype)
        logdet = log_p = torch.zeros((), device=x.device)
        eps_list = []
        for block, c in zip(self.blocks, self.block_conditions(mel)):
            x = squeeze(x)  # (B, D, T / 2 ** (k + 1))
            for flow, c_a in zip(block.flows, block.flow_conditions(c)):
                if initialize:
                    flow.actnorm.initialize_from(x)
                x, det = flow(x, c_a)
                logdet = logdet + det
            if block.split:
                x, z = x.chunk(2, 1)
                mean, log_sd = block.prior_params(x, block.output_condition(c))
                log_p = log_p + gaussian_log_p(z, mean, log_sd).sum()
                z, mean, log_sd = at_least_float32(z, mean, log_sd)
                eps_list.append((z - mean) * torch.exp(-log_sd))
        log_p = log_p + (-0.5 * (math.log(2 * math.pi) + at_least_float32(x)[0] ** 2)).sum()
        return log_p, logdet, x, eps_list

    def encode(self, mel: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mel, F), audio (B, 256 F) -> z (B, 1, 256 F) in ``reverse``'s layout, at least float32.

        The split-off halves are standardised by their priors (the eps ``reverse`` expects).
        Differentiable in the audio (wrap it in ``torch.no_grad()`` when only z is wanted).
        """
        _, _, x, eps_list = self._encode(mel, audio)
        (x,) = at_least_float32(x)
        for block in reversed(self.blocks):
            if block.split:
                x = torch.cat([x, eps_list.pop()], 1)
            x = unsqueeze(x)  # (B, D / 2, 2 T')
        return x

    # ----------------------------------------------------------------------------- inverse

    def reverse(self, z: torch.Tensor, mel: torch.Tensor, nets=None) -> torch.Tensor:
        """The inverse flow: z (B, in_channel, T) in the reference's layout, mel (B, n_mel, T / 256) -> (B, in_channel, T).

        ``nets`` (default: the modules themselves) supplies equivalent operators for the WaveNets:
        ``nets.coupling(k, j)`` and ``nets.prior(k)``, callables (x, c) -> output, for block k, flow j.
        """
        coupling = nets.coupling if nets is not None else lambda k, j: self.blocks[k].flows[j].coupling.net
        prior = nets.prior if nets is not None else lambda k: self.blocks[k].prior
        dtype = self.upsample_conv[0].bias.dtype
        x, eps_list = z.to(dtype), []
        for block in self.blocks:
            x = squeeze(x)
            if block.split:
                x, eps = x.chunk(2, 1)
                eps_list.append(eps)
        conditions = self.block_conditions(mel)
        for k in reversed(range(self.n_block)):
            block, c = self.blocks[k], conditions[k]
            if block.split:
                mean, log_sd = prior(k)(x, block.output_condition(c)).chunk(2, 1)
                x = torch.cat([x, mean + torch.exp(log_sd) * eps_list.pop()], 1)
            c_halves = block.flow_conditions(c)
            for j in reversed(range(len(block.flows))):
                x = block.flows[j].inverse(x, c_halves[j], coupling(k, j))
            x = unsqueeze(x)  # (B, D / 2, 2 T')
        return x

    @torch.no_grad()
    def infer(self, mel: torch.Tensor, sigma: float = 0.8, *, z: torch.Tensor | None = None,
              generator: torch.Generator | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`waveglow.models.base.FlowVocoder.infer` for FloWaveNet: mel (B, n_mel, F) -> (B, 256 F).

        The latent is (B, 1, 256 F) (or (B, 256 F)), the reference's ``reverse`` layout, as
        :meth:`encode` returns it. ``lengths`` are multiples of 256; each item of a padded batch
        runs alone on its own frames, and its output past its length is zero.
        """
        return self._infer(mel, sigma, z=z, generator=generator, lengths=lengths)

    def _infer(self, mel, sigma, *, z, generator, lengths, nets=None) -> torch.Tensor:
        """:meth:`infer` through ``nets`` (see :meth:`reverse`)."""
        T = HOP_LENGTH * mel.size(-1)
        device = self.upsample_conv[0].bias.device
        if z is None:
            z = self.sample_latent(mel.size(0), T, sigma, generator, generator.device if generator is not None else device)
            z = z.to(device)
        z = self._audio_3d(z, "z")
        if z.shape != (mel.size(0), self.in_channel, T):
            raise ValueError(f"z must be {(mel.size(0), self.in_channel, T)} for this mel, got {tuple(z.shape)}")
        if z.device != device:
            raise ValueError(f"z is on {z.device} and the model on {device}: move it with z.to({str(device)!r})")
        self.check_inputs(mel, T)
        if lengths is None:
            return self.reverse(z, mel, nets)[:, 0]  # (B, T)
        return self._infer_each(mel, z, lengths, nets)

    def _infer_each(self, mel: torch.Tensor, z: torch.Tensor, lengths, nets=None) -> torch.Tensor:
        """Each item of a padded batch vocoded alone on its own frames: -> (B, T), zero past each length."""
        out = torch.zeros(z.size(0), z.size(-1), dtype=self.upsample_conv[0].bias.dtype, device=z.device)
        for b, length in enumerate(torch.as_tensor(lengths).tolist()):
            if length % HOP_LENGTH or not 0 < length <= z.size(-1):
                raise ValueError(f"lengths[{b}] = {length} must be a positive multiple of {HOP_LENGTH} up to {z.size(-1)}")
            frames = length // HOP_LENGTH
            self.check_inputs(mel[b : b + 1, :, :frames], length)
            out[b, :length] = self.reverse(z[b : b + 1, :, :length], mel[b : b + 1, :, :frames], nets)[0, 0]
        return out

    def sample_latent(
        self, batch: int, n_samples: int, sigma: float, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """sigma * N(0, 1) noise in ``reverse``'s layout (B, in_channel, n_samples), as the reference draws it."""
        return sigma * torch.randn(batch, self.in_channel, n_samples, generator=generator, device=device)

    def remove_weight_norm(self) -> "FloWaveNet":
        """Fold weight norm into plain weights for inference (exact to float rounding); returns the model."""
        for block in self.blocks:
            block.remove_weight_norm()
        remove_upsampler_weight_norm(self.upsample_conv)
        return self

    # ------------------------------------------------------------------ files, training, inference

    @classmethod
    def config_from_state_dict(cls, state_dict: Mapping[str, torch.Tensor], source: str) -> dict:
        """The constructor arguments a (prefix-free) state dict's shapes imply (:func:`infer_flowavenet_config`)."""
        return infer_flowavenet_config(state_dict, source).to_kwargs()

    def extra_state(self) -> dict:
        """Whether ActNorm was initialised, saved beside the state dict."""
        return {"actnorm_initialized": bool(self.initialized)}

    def load_extra_state(self, extra: Mapping[str, Any]) -> None:
        """Our checkpoints record whether ActNorm was initialised; any other loaded weights count as initialised."""
        self.initialized = bool(extra.get("actnorm_initialized", True))

    def overlap_frames(self) -> int:
        """Context each side of a chunk: :data:`CHUNK_OVERLAP_FRAMES`, the default model's reach."""
        return CHUNK_OVERLAP_FRAMES

    @torch.no_grad()
    def initialize(self, mel: torch.Tensor, audio: torch.Tensor) -> bool:
        """ActNorm's data-dependent initialisation from one batch, once; -> whether it ran now.

        Every ActNorm takes loc = -mean and scale = 1 / (std + 1e-6) of the input it sees, in order.
        Does nothing when ``initialized`` (already run, or weights loaded). Under an initialised
        torch.distributed process group, rank 0's values are broadcast to every rank. Call it on
        the unwrapped model, before DistributedDataParallel wraps it.
        """
        if self.initialized:
            return False
        self._encode(mel, audio, initialize=True)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for module in self.modules():
                if isinstance(module, ActNorm):
                    torch.distributed.broadcast(module.loc.data, src=0)
                    torch.distributed.broadcast(module.scale.data, src=0)
        self.initialized = True
        return True

    def fast(self, *, low_memory: bool = False) -> FastFloWaveNet:
        """The fused inference object (:class:`FastFloWaveNet`); it needs no more memory than the model."""
        return FastFloWaveNet(self)

    def perturb(self, generator: torch.Generator) -> None:
        """Every WaveNet's zero-initialised last conv (and its scale) drawn small: no coupling or prior is the identity."""
        zero_convs = [m for m in self.modules() if isinstance(m, ZeroConv1d)]
        redraw([p for m in zero_convs for p in (m.conv.weight, m.conv.bias, m.scale)], 0.02, generator)


def _mark_initialized(module: FloWaveNet, incompatible_keys) -> None:
    """Weights loaded from a state dict carry their ActNorm statistics: no data-dependent init afterwards."""
    if not incompatible_keys.missing_keys:
        module.initialized = True


def initialize(model: FloWaveNet, mel: torch.Tensor, audio: torch.Tensor) -> bool:
    """``model.initialize(mel, audio)`` (:meth:`FloWaveNet.initialize`): ActNorm's one-time initialisation."""
    return model.initialize(mel, audio)


def build_flowavenet(
    state_dict: Mapping[str, torch.Tensor], source: str, config: FloWaveNetConfig | None = None
) -> FloWaveNet:
    """A FloWaveNet of ``config`` (inferred from the tensors when None) holding ``state_dict``, checked."""
    config = config if config is not None else infer_flowavenet_config(state_dict, source)
    try:
        model = FloWaveNet(**config.to_kwargs())
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: cannot build FloWaveNet from its config: {e}") from None
    load_state_dict_checked(model, state_dict, source)
    return model
