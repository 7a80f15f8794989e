"""WaveGlow: a flow-based vocoder (Prenger, Valle and Catanzaro, arXiv 1811.00002).

Module and attribute names follow NVIDIA's reference (``upsample``, ``WN``, ``convinv``), so the
state-dict keys are the published ones; the blocks are in :mod:`.layers`.

Shapes: B batch, T audio samples, g = n_group, n = T / g group steps.
"""

from __future__ import annotations

import torch
from torch import nn

from ..base import FlowVocoder, ReceptiveField, redraw
from .config import WaveGlowConfig, WNConfig
from .fast import FastWaveGlow
from .layers import (
    UPSAMPLE_KERNEL, UPSAMPLE_STRIDE, WN, FrozenInverse1x1Conv, Invertible1x1Conv, WeightNormConv1d, affine_coupling,
    affine_coupling_inverse, flow_channels, flow_channels_problem, fold, gated_activation, unfold, upsampler_problem,
)
from .readers import convert_state_dict, infer_waveglow_config

__all__ = [
    "WaveGlow", "WN", "Invertible1x1Conv", "WeightNormConv1d", "UPSAMPLE_KERNEL", "UPSAMPLE_STRIDE",
    "affine_coupling", "affine_coupling_inverse", "gated_activation", "fold", "unfold",
    "flow_channels", "flow_channels_problem", "upsampler_problem",
]

# Chunked vocoding of long audio keeps 32 frames (8192 samples) of context each side: the audio
# differs from whole-utterance vocoding by rounding-level amounts only (see docs on long audio).
CHUNK_OVERLAP_FRAMES = 32


class WaveGlow(FlowVocoder):
    """WaveGlow with NVIDIA's constructor: ``WaveGlow(**config["waveglow_config"])``.

    ``upsample_kernel`` and ``upsample_stride`` (beyond the reference, which hard-codes 1024 and
    256) are data_config's ``filter_length`` and ``hop_length``: one mel frame per hop.
    """

    def __init__(
        self,
        n_mel_channels: int,
        n_flows: int,
        n_group: int,
        n_early_every: int,
        n_early_size: int,
        WN_config: dict,
        upsample_kernel: int = UPSAMPLE_KERNEL,
        upsample_stride: int = UPSAMPLE_STRIDE,
    ) -> None:
        super().__init__()
        self.n_mel_channels = n_mel_channels
        self.n_flows = n_flows
        self.n_group = n_group
        self.n_early_every = n_early_every
        self.n_early_size = n_early_size
        self.WN_config = dict(WN_config)
        problem = upsampler_problem(upsample_kernel, upsample_stride, n_group)
        if problem:
            raise ValueError(problem)
        self.hop_length = upsample_stride
        self.filter_length = upsample_kernel
        self.latent_steps_per_frame = upsample_stride // n_group
        self.upsample = nn.ConvTranspose1d(n_mel_channels, n_mel_channels, upsample_kernel, stride=upsample_stride)
        self.WN = nn.ModuleList()
        self.convinv = nn.ModuleList()
        problem = flow_channels_problem(n_flows, n_group, n_early_every, n_early_size)
        if problem:
            raise ValueError(problem)
        for channels in self.flow_channels():
            self.convinv.append(Invertible1x1Conv(channels))
            self.WN.append(WN(channels // 2, n_mel_channels * n_group, **self.WN_config))
        self.n_remaining_channels = self.flow_channels()[-1]

    default_sigma = 1.0  # NVIDIA's inference.py; its paper vocodes at 0.6
    nll_constant = 0.0  # NVIDIA's loss leaves out the Gaussian constant

    @classmethod
    def from_config(cls, config) -> "WaveGlow":
        """The model of a whole config: the upsampler's kernel and stride are data_config's filter and hop."""
        d = config.data_config
        return cls(**config.model_config.to_kwargs(), upsample_kernel=d.filter_length, upsample_stride=d.hop_length)

    @classmethod
    def config_from_state_dict(cls, state_dict, source: str) -> dict:
        return infer_waveglow_config(state_dict, source)

    @classmethod
    def upgrade_state_dict(cls, state_dict) -> dict:
        """Files of ours written with the older ``cond_layers`` / ``res_layers`` keys -> NVIDIA's layout."""
        return convert_state_dict(state_dict)

    @property
    def config(self) -> WaveGlowConfig:
        """The ``waveglow_config`` section this model was built from."""
        return WaveGlowConfig(
            n_mel_channels=self.n_mel_channels, n_flows=self.n_flows, n_group=self.n_group,
            n_early_every=self.n_early_every, n_early_size=self.n_early_size, WN_config=WNConfig(**self.WN_config),
        )

    def is_early_exit(self, k: int) -> bool:
        """Whether n_early_size channels leave the flow before flow k."""
        return k > 0 and k % self.n_early_every == 0

    def flow_channels(self) -> list[int]:
        """The channel count each flow sees (8,8,8,8,6,6,6,6,4,4,4,4 for the default config)."""
        return flow_channels(self.n_flows, self.n_group, self.n_early_every, self.n_early_size)

    def receptive_field(self) -> ReceptiveField:
        """Frames of context each output frame needs (see :class:`~waveglow.models.ReceptiveField`).

        Each flow's WN reaches (kernel - 1) / 2 * (2 ** n_layers - 1) group steps each side and the
        flows compose; the upsampler adds (filter - hop) samples of past (each frame's kernel spills
        into later frames, never earlier ones). Default model: 12 * 255 steps of 8 samples = 95.6
        frames ahead, 98.6 behind -> (99, 96).
        """
        k, layers = self.WN_config["kernel_size"], self.WN_config["n_layers"]
        reach = self.n_flows * (k - 1) // 2 * (2**layers - 1)  # group steps, one side, all flows
        spill = -(-(self.filter_length - self.hop_length) // self.n_group)  # steps a window's first frames lack
        steps = self.latent_steps_per_frame
        return ReceptiveField(past=-(-(reach + spill) // steps), future=-(-reach // steps))

    def overlap_frames(self) -> int:
        return CHUNK_OVERLAP_FRAMES

    def latent_draws(self) -> list[int]:
        """The final channels first, then each early block, as :meth:`sample_latent` draws them."""
        n_early = sum(self.is_early_exit(k) for k in range(self.n_flows))
        return [self.n_remaining_channels] + [self.n_early_size] * n_early

    def fast(self, *, low_memory: bool = False) -> FastWaveGlow:
        """:class:`FastWaveGlow`; without ``low_memory`` it also keeps every layer's folded conditioning operator."""
        return FastWaveGlow(self, cache_conditioning=not low_memory)

    def fast_variants(self) -> dict:
        """``fast`` folds the conditioning per layer and call; ``fast-cached`` keeps it folded (more memory)."""
        return {"fast": lambda: self.fast(low_memory=True), "fast-cached": self.fast}

    def prepare_for_export(self) -> "WaveGlow":
        """This weight-norm-free copy with every 1x1 conv's inverse precomputed (ONNX has no matrix inverse)."""
        self.convinv = nn.ModuleList(FrozenInverse1x1Conv(conv) for conv in self.convinv)
        return self

    def perturb(self, generator: torch.Generator) -> None:
        """Every WN's zero-initialised ``end`` drawn from N(0, 0.01): no coupling is the identity."""
        redraw([p for wn in self.WN for p in (wn.end.weight, wn.end.bias)], 0.01, generator)

    def condition(self, mel: torch.Tensor, length: int) -> torch.Tensor:
        """Upsample and fold the mel: (B, n_mel, frames) -> (B, n_mel * g, length / g).

        Channel ``m * g + j`` holds mel bin m at offset j within each group of g samples.
        """
        self.check_inputs(mel, length)
        spect = self.upsample(mel.to(self.upsample.weight.dtype))  # (B, n_mel, hop * (frames - 1) + kernel)
        spect = spect[:, :, :length]  # (B, n_mel, T)
        return fold(spect, self.n_group)

    def check_inputs(self, mel: torch.Tensor, length: int) -> None:
        """Raise ValueError unless mel is (B, n_mel, frames) and its frames cover ``length`` samples."""
        if mel.dim() != 3 or mel.size(1) != self.n_mel_channels:
            raise ValueError(f"mel must be (batch, {self.n_mel_channels}, frames), got {tuple(mel.shape)}")
        device = self.upsample.weight.device
        if mel.device != device:
            raise ValueError(f"mel is on {mel.device} and the model on {device}: move it with mel.to({str(device)!r})")
        covered = self.hop_length * (mel.size(2) - 1) + self.upsample.kernel_size[0]
        if covered < length:
            raise ValueError(f"{mel.size(2)} mel frames cover {covered} samples, fewer than the {length} requested")

    def forward(
        self, mel: torch.Tensor, audio: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """mel (B, n_mel, frames), audio (B, T) -> (z (B, g, T/g), log_s_list, log_det_W_list).

        z holds the early outputs first and the final channels last, as NVIDIA's does.
        """
        if audio.dim() != 2 or audio.size(1) % self.n_group:
            raise ValueError(f"audio must be (batch, T) with T a multiple of {self.n_group}, got {tuple(audio.shape)}")
        spect = self.condition(mel, audio.size(1))  # (B, n_mel * g, n)
        audio = fold(audio.unsqueeze(1), self.n_group).to(spect.dtype)  # (B, g, n)

        output_audio, log_s_list, log_det_W_list = [], [], []
        for k in range(self.n_flows):
            if self.is_early_exit(k):
                output_audio.append(audio[:, : self.n_early_size])
                audio = audio[:, self.n_early_size :]
            audio, log_det_W = self.convinv[k](audio)
            log_det_W_list.append(log_det_W)
            audio, log_s = affine_coupling(audio, lambda audio_0: self.WN[k](audio_0, spect))
            log_s_list.append(log_s)
        output_audio.append(audio)
        return torch.cat(output_audio, 1), log_s_list, log_det_W_list

    def encode(self, mel: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mel, F), audio (B, T) -> z (B, g, T / g), the latent ``infer`` takes (forward's z)."""
        return self(mel, audio)[0]

    @torch.no_grad()
    def infer(self, mel: torch.Tensor, sigma: float = 1.0, *, z: torch.Tensor | None = None,
              generator: torch.Generator | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The reference path of :meth:`waveglow.models.base.FlowVocoder.infer`: mel (B, n_mel, F) -> (B, hop F).

        WaveGlow's latent is forward's z, (B, g, n), drawn in the reference's order: the final
        channels first, then each early block as the reverse pass reaches it, so
        ``infer(mel, z=forward(mel, audio)[0])`` returns ``audio``. ``lengths`` are multiples of
        n_group; the WN convolutions are masked past each end.
        :class:`~waveglow.models.waveglow.fast.FastWaveGlow` computes the same function faster.
        """
        z, spect_length = self.prepare_latent(mel, sigma, z, generator)
        mask = self.length_mask(lengths, z.size(2)) if lengths is not None else None
        return unfold(self.reverse(z, self.condition(mel, spect_length), mask))  # (B, g * n)

    def prepare_latent(
        self, mel: torch.Tensor, sigma: float, z: torch.Tensor | None, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, int]:
        """Check mel (and z), draw z when not given -> (z (B, g, n) in the model's dtype, g * n)."""
        length = z.size(2) * self.n_group if z is not None else self.hop_length * mel.size(-1)
        self.check_inputs(mel, length)
        B, n, dtype, device = mel.size(0), length // self.n_group, self.upsample.weight.dtype, self.upsample.weight.device
        if z is None:  # drawn where the generator lives (a CPU generator serves a CUDA model too)
            z = self.sample_latent(B, n, sigma, generator, generator.device if generator is not None else device).to(device)
        elif z.shape != (B, self.n_group, n):
            raise ValueError(f"z must be {(B, self.n_group, n)}, got {tuple(z.shape)}")
        elif z.device != device:
            raise ValueError(f"z is on {z.device} and the model on {device}: move it with z.to({str(device)!r})")
        return z.to(dtype), length

    def length_mask(self, lengths: torch.Tensor, n: int) -> torch.Tensor:
        """(B,) lengths in samples -> (B, 1, n) mask, 1 up to each sequence's end."""
        device = self.upsample.weight.device
        steps = torch.arange(n, device=device)
        mask = steps < torch.as_tensor(lengths, device=device).view(-1, 1) // self.n_group
        return mask.to(self.upsample.weight.dtype).unsqueeze(1)

    def sample_latent(
        self, batch: int, n: int, sigma: float, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """sigma * N(0, 1) noise in forward's z layout (B, g, n), drawn in the reference's order."""
        n_early = sum(self.is_early_exit(k) for k in range(self.n_flows))
        final = torch.randn(batch, self.n_remaining_channels, n, generator=generator, device=device)
        early = [
            torch.randn(batch, self.n_early_size, n, generator=generator, device=device) for _ in range(n_early)
        ]
        return sigma * torch.cat(early[::-1] + [final], 1)

    def reverse(self, z: torch.Tensor, spect: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The inverse flow: z (B, g, n) in forward's layout, spect (B, n_mel * g, n) -> (B, g, n).

        ``mask`` (B, 1, n): see :meth:`WN.forward`.
        """
        return self.reverse_with(
            z, lambda k, audio_0: self.WN[k](audio_0, spect, mask), lambda k, audio: self.convinv[k].inverse(audio)
        )

    def reverse_with(self, z: torch.Tensor, coupling, inverse) -> torch.Tensor:
        """The one reverse loop: ``coupling(k, audio_0)`` is WN[k]'s output, ``inverse(k, x)`` W_k^-1 x.

        The fast path (:mod:`waveglow.models.waveglow.fast`) runs this same loop with its own operators.
        """
        es = self.n_early_size
        audio, early = z[:, self.n_group - self.n_remaining_channels :], z[:, : self.n_group - self.n_remaining_channels]
        for k in reversed(range(self.n_flows)):
            audio = inverse(k, affine_coupling_inverse(audio, lambda audio_0: coupling(k, audio_0)))
            if self.is_early_exit(k):
                audio, early = torch.cat([early[:, -es:], audio], 1), early[:, :-es]
        return audio

    def remove_weight_norm(self) -> "WaveGlow":
        """Fold weight norm into plain weights for inference; returns the model."""
        for wn in self.WN:
            wn.remove_weight_norm()
        return self
