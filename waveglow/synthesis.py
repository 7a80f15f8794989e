"""Vocoding mels into audio: batching, long inputs in overlapping chunks, the denoiser, WAV files.

``synthesize(model, mel)`` is the one call a notebook needs. Every output sample depends only on
the mel and the noise near it, never on how the work was cut up:

- Batching: mels of different lengths are padded with silence and each output is trimmed back to
  ``hop * frames`` samples. The model masks its convolutions past each utterance's own end
  (``model.infer(..., lengths=)``), so each utterance comes out as it would alone. Noise is drawn
  per utterance (its own length, in order, from the generator(s) given) and is zero in the padding.
- Long inputs: with ``chunk_frames`` the mel is vocoded in windows of at most
  ``chunk_frames + 2 * overlap_frames`` frames. Each window carries ``overlap_frames`` frames of
  context on each side; neighbours are cross-faded linearly over the middle ``overlap_frames / 2``
  frames around each boundary, so every window's output is used only at least
  ``3/4 * overlap_frames`` frames from its edges (3 frames cover the upsampler's reach; the WNs'
  influence decays with distance). The latent z is drawn once for the whole utterance and
  sliced per window, so the noise at each sample is independent of the chunking.
- Without chunking (or for a mel shorter than one window), ``synthesize`` of one mel is exactly
  ``model.infer``: the reference's audio for the same weights and noise.

Outputs are float32 on the CPU, so GPU memory holds only one window at a time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path
from .checkpoint import load_model
from .config import DataConfig
from .denoiser import Denoiser
from .errors import MelError, first_line

__all__ = [
    "SILENCE_LOG_MEL",
    "DEFAULT_OVERLAP_FRAMES",
    "MelError",
    "Window",
    "check_mel",
    "load_mel",
    "load_for_inference",
    "synthesize",
    "synthesize_batch",
    "vocode_chunked",
    "chunk_windows",
    "to_int16",
    "write_wav",
]

SILENCE_LOG_MEL = math.log(1e-5)  # Tacotron 2's log-mel of silence (the clamp floor)
DEFAULT_OVERLAP_FRAMES = 32  # 8192 samples of context each side; see README "Long audio"

Generators = torch.Generator | Sequence[torch.Generator | None] | None


# ------------------------------------------------------------------------------ inputs


def check_mel(mel: torch.Tensor | np.ndarray, n_mel_channels: int) -> torch.Tensor:
    """Validate one mel: (n_mel, frames) or (1, n_mel, frames) -> float32 (n_mel, frames)."""
    mel = torch.as_tensor(mel)
    shape = tuple(mel.shape)
    if mel.dim() == 3 and shape[0] == 1:
        mel = mel[0]
    if mel.dim() != 2:
        raise MelError(f"mel must be (n_mel, frames) or (1, n_mel, frames), got shape {shape}")
    if not (mel.is_floating_point() or mel.dtype in (torch.int16, torch.int32, torch.int64)):
        raise MelError(f"mel must hold real numbers, got {mel.dtype}")
    if mel.size(0) != n_mel_channels:
        hint = " (transposed? expected channels first)" if mel.size(1) == n_mel_channels else ""
        raise MelError(f"mel has {mel.size(0)} channels, the model expects {n_mel_channels}{hint}; shape {shape}")
    if mel.size(1) == 0:
        raise MelError(f"empty mel (0 frames); shape {shape}")
    mel = mel.float()
    if not torch.isfinite(mel).all():
        raise MelError("mel contains NaN or infinite values")
    return mel


def load_mel(path: str | os.PathLike, n_mel_channels: int) -> torch.Tensor:
    """Read a ``.npy`` or torch-saved (``.pt``) mel file -> float32 (n_mel, frames).

    Raises :class:`MelError` (a one-line message without the path) for anything unusable.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".npy"):
            data = np.load(path, allow_pickle=False)
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as e:
        raise MelError(f"cannot read mel file: {e.strerror or e}") from None
    except Exception as e:  # corrupt zip, pickled objects, truncated arrays ...
        raise MelError(f"cannot read mel file: {first_line(e)}") from None
    if not isinstance(data, (torch.Tensor, np.ndarray)):
        raise MelError(f"expected a tensor or array, the file holds a {type(data).__name__}")
    return check_mel(data, n_mel_channels)


def load_for_inference(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    low_memory: bool = False,
    cache_conditioning: bool | None = None,
) -> tuple[Any, DataConfig]:
    """Load any checkpoint ``load_checkpoint`` reads for vocoding: weight norm removed, eval mode.

    Returns (``model.fast()`` on ``device`` in ``dtype``, the model's data config): the model's
    exact faster inference object (WaveGlow: :class:`~waveglow.models.waveglow.fast.FastWaveGlow`),
    or the model itself; an inference object has the same ``infer``, keeps the model as ``.model``
    and refuses to run once the model's weights change. Files without a config (NVIDIA's and
    DeepLearningExamples' pickles, bare state dicts, ksw0306's files) get their family's default
    data config. ``low_memory`` trades speed for memory where the model can (WaveGlow keeps no
    folded conditioning operators then: 2 GB in float32, 1 GB in half precision, for the default
    256-channel model); ``cache_conditioning=False`` is its older spelling. Raises
    ``CheckpointError`` with a one-line message.
    """
    model, config = load_model(path, map_location="cpu")
    model = model.remove_weight_norm().eval().to(device=device, dtype=dtype)
    low_memory = low_memory or cache_conditioning is False
    return model.fast(low_memory=low_memory), config.data_config


# ------------------------------------------------------------------------------ synthesis


def synthesize(
    model: nn.Module,
    mel: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    *,
    sigma: float | None = None,
    denoiser_strength: float = 0.0,
    denoiser: Denoiser | None = None,
    chunk_frames: int | None = None,
    overlap_frames: int | None = None,
    generator: Generators = None,
) -> torch.Tensor | list[torch.Tensor]:
    """Vocode one mel or a batch; the result is float32 audio on the CPU.

    ``mel``: (n_mel, frames) -> (hop * frames,); (B, n_mel, frames) -> (B, hop * frames);
    a list of (n_mel, frames_i) -> a list of (hop * frames_i,). ``generator``: one generator
    (drawn from utterance by utterance, in order), one per utterance, or None (torch's global
    RNG); CPU or CUDA generators both work. ``denoiser_strength > 0`` applies ``denoiser``
    (built from ``model`` when not given) to each utterance. ``sigma`` and ``overlap_frames``
    default to the model's (WaveGlow: 1.0 and 32 frames). Raises :class:`MelError` for an
    unusable mel.
    """
    sigma = model.default_sigma if sigma is None else sigma
    overlap_frames = model.overlap_frames() if overlap_frames is None else overlap_frames
    is_list = not isinstance(mel, (torch.Tensor, np.ndarray))
    mels = list(mel) if is_list or mel.ndim == 3 else [mel]
    mels = [check_mel(m, model.n_mel_channels) for m in mels]
    audios = synthesize_batch(model, mels, sigma, chunk_frames, overlap_frames, generator)
    if denoiser_strength > 0:
        denoiser = denoiser if denoiser is not None else Denoiser(model)
        audios = [denoiser(a.unsqueeze(0), denoiser_strength)[0] for a in audios]
    if is_list:
        return audios
    return torch.stack(audios) if mel.ndim == 3 else audios[0]


def synthesize_batch(
    model: nn.Module,
    mels: Sequence[torch.Tensor],
    sigma: float,
    chunk_frames: int | None,
    overlap_frames: int,
    generator: Generators = None,
) -> list[torch.Tensor]:
    """Checked mels [(n_mel, frames_i)] -> float32 CPU audio [(hop * frames_i,)], in one batch."""
    hop, steps = model.hop_length, model.latent_steps_per_frame
    frames = [m.size(1) for m in mels]
    padded_frames = max(frames)
    mel = torch.full((len(mels), model.n_mel_channels, padded_frames), silence_value(model))  # (B, n_mel, F')
    latents = draw_latents(model, [f * steps for f in frames], sigma, generator)
    z = torch.zeros(len(mels), *latents[0].shape[:-1], padded_frames * steps)  # (B, ..., n'), time last
    for i, (m, latent) in enumerate(zip(mels, latents)):
        mel[i, :, : frames[i]] = m
        z[i, ..., : latent.size(-1)] = latent
    audio = vocode_chunked(model, mel, z, chunk_frames, overlap_frames, frames)  # (B, hop * F')
    return [audio[i, : hop * f] for i, f in enumerate(frames)]


def silence_value(model) -> float:
    """The feature value of silence for the model's family (Tacotron 2's log-mel floor for WaveGlow)."""
    return model.silence_feature


def draw_latents(model: nn.Module, lengths: Sequence[int], sigma: float, generator: Generators) -> list[torch.Tensor]:
    """sigma * N(0, 1) latents, one CPU float32 tensor per utterance of n_i latent steps (time last)."""
    if isinstance(generator, torch.Generator) or generator is None:
        generators = [generator] * len(lengths)
    else:
        generators = list(generator)
        if len(generators) != len(lengths):
            raise ValueError(f"got {len(generators)} generators for {len(lengths)} mels")
    if sigma == 0:
        return [torch.zeros_like(model.sample_latent(1, n, 1.0, None, torch.device("meta"))[0], device="cpu") for n in lengths]
    return [
        model.sample_latent(1, n, sigma, gen, gen.device if gen is not None else torch.device("cpu"))[0].float().cpu()
        for n, gen in zip(lengths, generators)
    ]


# ------------------------------------------------------------------------------ chunking


@dataclass(frozen=True)
class Window:
    """One chunk: the model sees mel frames [start, stop); its output is used on [core_start, core_stop)
    and faded in over [core_start - fade, core_start + fade) (out over the same around core_stop)."""

    start: int
    stop: int
    core_start: int
    core_stop: int
    fade: int
    first: bool
    last: bool


def chunk_windows(frames: int, chunk_frames: int | None, overlap_frames: int) -> list[Window]:
    """Cut ``frames`` into cores of ``chunk_frames`` with ``overlap_frames`` of context each side.

    The last core absorbs a remainder shorter than ``overlap_frames``, so no window is longer
    than ``chunk_frames + 2 * overlap_frames``. Without ``chunk_frames``: one window.
    """
    if overlap_frames < 0:
        raise ValueError(f"overlap_frames must be >= 0, got {overlap_frames}")
    if chunk_frames is None or frames <= chunk_frames + 2 * overlap_frames:
        return [Window(0, frames, 0, frames, 0, True, True)]
    if chunk_frames < max(1, overlap_frames):
        raise ValueError(f"chunk_frames ({chunk_frames}) must be at least overlap_frames ({overlap_frames}) and 1")
    n_chunks = max(1, math.ceil((frames - overlap_frames) / chunk_frames))
    bounds = [k * chunk_frames for k in range(n_chunks)] + [frames]
    fade = overlap_frames // 4  # half-width of the cross-fade: 3/4 of the overlap stays pure context
    return [
        Window(
            start=max(0, bounds[k] - overlap_frames),
            stop=min(frames, bounds[k + 1] + overlap_frames),
            core_start=bounds[k],
            core_stop=bounds[k + 1],
            fade=fade,
            first=k == 0,
            last=k == n_chunks - 1,
        )
        for k in range(n_chunks)
    ]


def crossfade_weights(window: Window, hop: int) -> torch.Tensor:
    """Weights of a window's output samples: (hop * (stop - start),), linear ramps at shared edges."""
    s = torch.arange(window.start * hop, window.stop * hop, dtype=torch.float64) + 0.5  # sample centres
    weight = torch.ones_like(s)
    if not window.first:
        weight = weight * _ramp(s, window.core_start * hop, window.fade * hop)
    if not window.last:
        weight = weight * (1 - _ramp(s, window.core_stop * hop, window.fade * hop))
    return weight.float()


def _ramp(s: torch.Tensor, centre: int, half_width: int) -> torch.Tensor:
    """0 before ``centre - half_width``, 1 after ``centre + half_width``, linear between (a step if 0)."""
    if half_width == 0:
        return (s >= centre).to(s.dtype)
    return ((s - (centre - half_width)) / (2 * half_width)).clamp(0, 1)


@torch.no_grad()
def vocode_chunked(
    model: nn.Module,
    mel: torch.Tensor,
    z: torch.Tensor,
    chunk_frames: int | None,
    overlap_frames: int,
    frames: Sequence[int] | None = None,
) -> torch.Tensor:
    """mel (B, n_mel, F), z (B, ..., F * steps per frame) -> float32 CPU audio (B, hop * F), window by window.

    ``frames``: each utterance's own length when the batch is padded; windows that reach past an
    utterance's end are vocoded with the model's masking, as if that utterance ended there alone.
    """
    hop, steps = model.hop_length, model.latent_steps_per_frame
    parameter = next(model.parameters())
    audio = torch.zeros(mel.size(0), hop * mel.size(2))  # (B, T)
    for window in chunk_windows(mel.size(2), chunk_frames, overlap_frames):
        mel_window = mel[:, :, window.start : window.stop].to(device=parameter.device, dtype=parameter.dtype)
        z_window = z[..., window.start * steps : window.stop * steps].to(parameter.device)
        lengths = _window_lengths(window, frames, hop)
        piece = model.infer(mel_window, z=z_window, lengths=lengths).float().cpu()  # (B, hop * (stop - start))
        audio[:, window.start * hop : window.stop * hop] += piece * crossfade_weights(window, hop)
    return audio


def _window_lengths(window: Window, frames: Sequence[int] | None, hop: int) -> torch.Tensor | None:
    """Each utterance's length in samples within ``window``, or None when none ends inside it."""
    size = window.stop - window.start
    if frames is None or all(f >= window.stop for f in frames):
        return None
    return torch.tensor([hop * min(max(f - window.start, 0), size) for f in frames])


# ------------------------------------------------------------------------------ WAV output


def to_int16(audio: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> int16, clipped (the reference wraps loud samples around)."""
    audio = np.asarray(torch.as_tensor(audio, dtype=torch.float32).cpu(), dtype=np.float32)
    return np.clip(audio * 32768.0, -32768, 32767).astype(np.int16)


def write_wav(path: str | os.PathLike, audio: torch.Tensor | np.ndarray, sampling_rate: int) -> None:
    """Write (T,) float audio as a 16-bit PCM WAV file (soundfile if installed, else scipy)."""
    samples = to_int16(audio)
    with atomic_path(path) as tmp:  # a failed write leaves an earlier file at path as it was
        try:
            import soundfile
        except ImportError:
            from scipy.io import wavfile

            wavfile.write(tmp, int(sampling_rate), samples)
            return
        soundfile.write(tmp, samples, int(sampling_rate), subtype="PCM_16", format="WAV")
