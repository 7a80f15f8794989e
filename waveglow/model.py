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

from ._autocast import autocast_off
from .fast import FastInference, parameter_key, tensor_key

__all__ = ["WaveGlow", "WN", "Invertible1x1Conv", "WeightNormConv1d", "UPSAMPLE_KERNEL", "UPSAMPLE_STRIDE"]

# The reference hard-codes the upsampler; they equal filter_length and hop_length of its config.
UPSAMPLE_KERNEL = 1024
UPSAMPLE_STRIDE = 256


class WeightNormConv1d(nn.Conv1d):
    """Conv1d with weight normalisation: ``weight = weight_g * weight_v / ||weight_v||``.

    The norm runs over every dimension but the output channel, and the parameters are named
    ``weight_g`` (out, 1, 1) and ``weight_v`` (out, in, k) as torch.nn.utils.weight_norm names
    them, so NVIDIA's checkpoints load key for key. :meth:`remove_weight_norm` folds them back
    into a plain ``weight``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        weight = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(_norm_except_dim0(weight))
        self.weight_v = nn.Parameter(weight.clone())

    @property
    def has_weight_norm(self) -> bool:
        return "weight_v" in self._parameters

    def effective_weight(self) -> torch.Tensor:
        if self.has_weight_norm:
            return self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)

    def remove_weight_norm(self) -> None:
        if not self.has_weight_norm:
            return
        with torch.no_grad():
            weight = self.effective_weight()
        del self.weight_g, self.weight_v
        self.weight = nn.Parameter(weight)


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    """L2 norm over all dims but the first, shaped to broadcast: (out, ...) -> (out, 1, 1)."""
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


class Invertible1x1Conv(nn.Module):
    """Channel mixing by an invertible c x c matrix W, initialised orthogonal with det(W) = +1.

    :meth:`inverse` computes W^-1 from the current weight, in float32, every call. The fast
    path's :meth:`inverse_weight` caches it, keyed on the weight's ``tensor_key`` (data_ptr,
    version, dtype, device, shape), so any in-place update, optimizer step, load_state_dict or .to()
    recomputes it (edits through ``weight.data`` bypass the version counter: set
    ``_inverse_cache = None``).
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c, c, kernel_size=1, stride=1, padding=0, bias=False)
        W = torch.linalg.qr(torch.randn(c, c))[0]
        if torch.det(W) < 0:
            W[:, 0] = -W[:, 0]
        with torch.no_grad():
            self.conv.weight.copy_(W.view(c, c, 1))
        self._inverse_cache: tuple | None = None  # (key, W^-1 as (c, c, 1)); not a buffer


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

    def inverse_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """W^-1 as a (c, c, 1) conv weight in ``dtype``, computed in float32 once per weight version."""
        w = self.conv.weight
        key = (tensor_key(w), dtype)
        if self._inverse_cache is None or self._inverse_cache[0] != key:
            W_inverse = torch.linalg.inv(w.detach().squeeze(-1).float())
            self._inverse_cache = (key, W_inverse.to(dtype).unsqueeze(-1))
        return self._inverse_cache[1]


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


def gated_activation(x: torch.Tensor, n_channels: int) -> torch.Tensor:
    """tanh(first half) * sigmoid(second half): (B, 2C, n) -> (B, C, n)."""
    return torch.tanh(x[:, :n_channels]) * torch.sigmoid(x[:, n_channels:])


class WaveGlow(nn.Module):
    """WaveGlow with NVIDIA's constructor: ``WaveGlow(**config["waveglow_config"])``."""

    def __init__(
        self,
        n_mel_channels: int,
        n_flows: int,
        n_group: int,
        n_early_every: int,
        n_early_size: int,
        WN_config: dict,
    ) -> None:
        super().__init__()
        self.n_mel_channels = n_mel_channels
        self.n_flows = n_flows
        self.n_group = n_group
        self.n_early_every = n_early_every
        self.n_early_size = n_early_size
        self.WN_config = dict(WN_config)
        self.upsample = nn.ConvTranspose1d(n_mel_channels, n_mel_channels, UPSAMPLE_KERNEL, stride=UPSAMPLE_STRIDE)
        self.WN = nn.ModuleList()
        self.convinv = nn.ModuleList()
        for k, channels in enumerate(self.flow_channels()):
            if channels <= 0 or channels % 2:
                raise ValueError(
                    f"flow {k} would have {channels} channels; n_group, n_early_size and n_early_every must "
                    "leave every flow a positive, even channel count"
                )
            self.convinv.append(Invertible1x1Conv(channels))
            self.WN.append(WN(channels // 2, n_mel_channels * n_group, **self.WN_config))
        self.n_remaining_channels = self.flow_channels()[-1]
        self._fast: FastInference | None = None  # derived operators for infer(fast=True); not in state_dict

    def is_early_exit(self, k: int) -> bool:
        """Whether n_early_size channels leave the flow before flow k."""
        return k > 0 and k % self.n_early_every == 0

    def flow_channels(self) -> list[int]:
        """The channel count each flow sees (8,8,8,8,6,6,6,6,4,4,4,4 for the default config)."""
        channels, counts = self.n_group, []
        for k in range(self.n_flows):
            if self.is_early_exit(k):
                channels -= self.n_early_size
            counts.append(channels)
        return counts

    def condition(self, mel: torch.Tensor, length: int) -> torch.Tensor:
        """Upsample and fold the mel: (B, n_mel, frames) -> (B, n_mel * g, length / g).

        Channel ``m * g + j`` holds mel bin m at offset j within each group of g samples.
        """
        self.check_mel(mel, length)
        spect = self.upsample(mel.to(self.upsample.weight.dtype))  # (B, n_mel, 256 * (frames - 1) + 1024)
        spect = spect[:, :, :length]  # (B, n_mel, T)
        return fold(spect, self.n_group)

    def check_mel(self, mel: torch.Tensor, length: int) -> None:
        """Raise ValueError unless mel is (B, n_mel, frames) and its frames cover ``length`` samples."""
        if mel.dim() != 3 or mel.size(1) != self.n_mel_channels:
            raise ValueError(f"mel must be (batch, {self.n_mel_channels}, frames), got {tuple(mel.shape)}")
        device = self.upsample.weight.device
        if mel.device != device:
            raise ValueError(f"mel is on {mel.device} and the model on {device}: move it with mel.to({str(device)!r})")
        covered = UPSAMPLE_STRIDE * (mel.size(2) - 1) + UPSAMPLE_KERNEL
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
            n_half = audio.size(1) // 2
            audio_0, audio_1 = audio[:, :n_half], audio[:, n_half:]
            output = self.WN[k](audio_0, spect)  # (B, 2 * n_half, n)
            b, log_s = output[:, :n_half], output[:, n_half:]
            audio_1 = torch.exp(log_s) * audio_1 + b
            log_s_list.append(log_s)
            audio = torch.cat([audio_0, audio_1], 1)
        output_audio.append(audio)
        return torch.cat(output_audio, 1), log_s_list, log_det_W_list

    @torch.no_grad()
    def infer(
        self,
        mel: torch.Tensor,
        sigma: float = 1.0,
        *,
        z: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        fast: bool = True,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """mel (B, n_mel, frames) -> audio (B, 256 * frames), in the model's dtype.

        Without ``z`` the latent is ``sigma * N(0, 1)`` drawn in float32 (from ``generator`` if
        given, on the generator's device, so a CPU generator gives the same noise to a model on any
        device) in the reference's order: the final channels first, then each early block as the
        reverse pass reaches it. With ``z`` (forward's layout, (B, g, n)) nothing is drawn and the
        output has g * n samples: ``infer(mel, z=forward(mel, audio)[0])`` returns ``audio``.

        ``fast=True`` runs the exact fast path (:mod:`waveglow.fast`: folded conditioning and
        layers, cached W^-1); ``fast=False`` the plain reference path. They agree to float
        rounding and draw the same noise.

        ``lengths`` (B,) gives each sequence's own length in samples (a multiple of n_group) for a
        batch padded to a common length: each sequence's output up to its length is then what it
        would be alone (the plain path runs, with the WN convolutions masked past each end).
        """
        frames = mel.size(-1)
        length = z.size(2) * self.n_group if z is not None else UPSAMPLE_STRIDE * frames
        self.check_mel(mel, length)
        B, n, dtype, device = mel.size(0), length // self.n_group, self.upsample.weight.dtype, self.upsample.weight.device
        if z is None:  # drawn where the generator lives (a CPU generator serves a CUDA model too)
            z = self.sample_latent(B, n, sigma, generator, generator.device if generator is not None else device).to(device)
        elif z.shape != (B, self.n_group, n):
            raise ValueError(f"z must be {(B, self.n_group, n)}, got {tuple(z.shape)}")
        elif z.device != device:
            raise ValueError(f"z is on {z.device} and the model on {device}: move it with z.to({str(device)!r})")
        if lengths is not None:
            steps = torch.arange(n, device=device)
            mask = (steps < torch.as_tensor(lengths, device=device).view(-1, 1) // self.n_group).to(dtype)
            return unfold(self.reverse(z.to(dtype), self.condition(mel, length), mask.unsqueeze(1)))  # (B, g * n)
        if not fast:
            return unfold(self.reverse(z.to(dtype), self.condition(mel, length)))  # (B, g * n)
        ops = self.fast_inference()
        cond = ops.conditioner(mel, lambda: self.condition(mel, length), n)
        audio = self._reverse(z.to(dtype), lambda k, audio_0: ops.coupling(k, audio_0, cond), ops.inverse)  # (B, g, n)
        return unfold(audio)

    def fast_inference(self, cache_conditioning: bool | None = None) -> FastInference:
        """The fast path's precomputed operators, rebuilt only when a parameter has changed.

        ``cache_conditioning=True`` also keeps the folded conditioning operator of every layer
        (n_flows * n_layers * 32 * 2C * 320 floats: 2 GB in float32 for the default model), which
        is the fastest path for any length; ``False`` builds it per layer when the input is long
        enough to repay that; ``None`` keeps the current choice. Call it once after loading to
        pay the set-up cost up front.
        """
        if cache_conditioning is None:
            cache_conditioning = self._fast is not None and self._fast.cache_conditioning
        stale = self._fast is None or self._fast.key != parameter_key(self)
        if stale or self._fast.cache_conditioning != cache_conditioning:
            self._fast = None  # free the old operators before building new ones
            self._fast = FastInference(self, cache_conditioning)
        return self._fast

    def clear_fast_cache(self) -> None:
        """Drop the fast path's derived operators (needed only after edits through ``param.data``)."""
        self._fast = None
        for conv in self.convinv:
            conv._inverse_cache = None

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
        return self._reverse(
            z, lambda k, audio_0: self.WN[k](audio_0, spect, mask), lambda k, audio: self.convinv[k].inverse(audio)
        )

    def _reverse(self, z: torch.Tensor, coupling, inverse) -> torch.Tensor:
        """The one reverse loop: ``coupling(k, audio_0)`` is WN[k]'s output, ``inverse(k, x)`` W_k^-1 x."""
        es = self.n_early_size
        audio, early = z[:, self.n_group - self.n_remaining_channels :], z[:, : self.n_group - self.n_remaining_channels]
        for k in reversed(range(self.n_flows)):
            n_half = audio.size(1) // 2
            audio_0, audio_1 = audio[:, :n_half], audio[:, n_half:]
            output = coupling(k, audio_0)  # (B, 2 * n_half, n)
            b, log_s = output[:, :n_half], output[:, n_half:]
            audio_1 = (audio_1 - b) / torch.exp(log_s)
            audio = inverse(k, torch.cat([audio_0, audio_1], 1))
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
