"""WaveGlow: a flow-based vocoder (Prenger, Valle and Catanzaro, arXiv 1811.00002).

Module and attribute names follow NVIDIA's reference (``upsample``, ``WN``, ``convinv``,
``start``, ``end``, ``in_layers``, ``res_skip_layers``, ``cond_layer``), so the state-dict keys
are the published ones.

Shapes: B batch, T audio samples, g = n_group, n = T / g group steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..._autocast import autocast_off
from .. import ReceptiveField
from ..weight_norm import WeightNormConv1d

__all__ = [
    "WaveGlow", "WN", "Invertible1x1Conv", "WeightNormConv1d", "UPSAMPLE_KERNEL", "UPSAMPLE_STRIDE",
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


class WaveGlow(nn.Module):
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
        """The reference path of :meth:`waveglow.models.VocoderModel.infer`: mel (B, n_mel, F) -> (B, hop F).

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
