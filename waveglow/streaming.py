"""Streaming vocoding: audio out while mel frames still arrive, equal to whole-utterance inference.

    stream = StreamingVocoder(model, seed=0)        # exact: waits for the model's receptive field
    for frames in decoder_steps():                   # each (n_mel, k), k >= 0
        play(stream.push(frames))                    # the audio that is now final (may be empty)
    play(stream.flush())                             # the rest, up to the utterance's true end

Every flow of every family is non-causal along time but reaches only a bounded number of frames
(the model reports it: ``model.receptive_field()``, a :class:`~waveglow.models.ReceptiveField`).
The stream keeps the last ``past + lookahead`` frames it received and, once ``lookahead`` frames
after a frame have arrived, vocodes a window of frames ``[a - past, b + min(lookahead, future))`` with the
model's own ``infer`` (its fast path when it has one) and returns the audio of ``[a, b)``. The
first window starts at frame 0 and the last (``flush``) ends at the utterance's last frame, so
the zero padding of whole-utterance inference is reproduced at both ends. With the default
lookahead (the field's ``future``) every returned sample equals ``model.infer`` of the whole mel
with the latent :func:`stream_latent` returns, to float rounding; a smaller lookahead trades an
error (docs/streaming.md measures it) for latency.

The noise of frame f is drawn from its own generator, seeded from (seed, f): it does not depend on
how the frames are pushed. Work per push is one ``infer`` per ``max_window_frames`` of new
audio, each on at most ``past + max_window_frames + lookahead`` frames; with pushes of k frames
each frame is vocoded in at most ``ceil((past + lookahead) / k) + 1`` windows; memory holds at
most ``past + lookahead + alignment`` frames beyond the newest push.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import MelError, StreamClosedError
from .models import ReceptiveField

__all__ = ["StreamingVocoder", "stream_latent", "frame_latent", "receptive_field_of", "MelError", "StreamClosedError"]

MAX_WINDOW_FRAMES = 256  # new frames vocoded per model call at most: bounds one call's memory
_MASK64 = (1 << 64) - 1


def frame_seed(seed: int, index: int) -> int:
    """A 63-bit seed for frame ``index`` of a stream seeded ``seed``: splitmix64 of the pair."""
    x = (seed * 0x9E3779B97F4A7C15 + index + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (x ^ (x >> 31)) >> 1


def frame_latent(model: Any, start: int, stop: int, sigma: float, seed: int) -> torch.Tensor:
    """The latent of frames [start, stop): (1, ..., steps * (stop - start)), float32 on the CPU.

    Frame f's steps are ``model.sample_latent(1, steps_per_frame, sigma, generator)`` with the
    generator seeded ``frame_seed(seed, f)``, in ``infer``'s layout (time last).
    """
    steps, cpu = model.latent_steps_per_frame, torch.device("cpu")
    draws = [
        model.sample_latent(1, steps, sigma, torch.Generator().manual_seed(frame_seed(seed, f)), cpu).float()
        for f in range(start, stop)
    ]
    if not draws:
        return model.sample_latent(1, 0, sigma, None, cpu).float()
    return torch.cat(draws, -1)  # (1, ..., steps * (stop - start))


def stream_latent(model: Any, n_frames: int, *, sigma: float | None = None, seed: int = 0) -> torch.Tensor:
    """The latent a :class:`StreamingVocoder` with ``seed`` uses for an utterance of ``n_frames``.

    ``model.infer(mel[None], sigma, z=stream_latent(model, F, sigma=sigma, seed=s))[0]`` is what the
    stream returns for ``mel`` (exactly, with the default lookahead). Batch 1, float32, CPU.
    """
    sigma = model.default_sigma if sigma is None else sigma
    return frame_latent(model, 0, n_frames, sigma, seed)


def receptive_field_of(model: Any) -> ReceptiveField:
    """The model's :class:`ReceptiveField`, or a TypeError saying it reports none."""
    report = getattr(model, "receptive_field", None)
    if report is None:
        raise TypeError(f"{type(model).__name__} does not report its receptive field (receptive_field()): "
                        "it cannot be streamed")
    field = report()
    if min(field.past, field.future) < 0 or field.alignment < 1:
        raise ValueError(f"{type(model).__name__} reports an impossible receptive field {field}")
    return field


class StreamingVocoder:
    """Vocode one utterance whose mel frames arrive a few at a time; see the module docstring.

    ``model``: any family's model or fast inference object. An ``nn.Module`` is vocoded through its
    exact fast path (``model.fast()``; ``fast=False``: its plain ``infer``) and, when ``device`` or ``dtype``
    are given, moved there first (``Module.to``, in place); an inference object must already be
    there. ``sigma`` defaults to the model's; ``lookahead_frames`` to the receptive field's
    ``future`` (exact). Audio comes back as float32 CPU tensors.
    """

    def __init__(self, model: Any, *, sigma: float | None = None, seed: int = 0, lookahead_frames: int | None = None,
                 device: str | torch.device | None = None, dtype: torch.dtype | None = None, fast: bool = True,
                 max_window_frames: int = MAX_WINDOW_FRAMES) -> None:
        self.field = receptive_field_of(model)
        if lookahead_frames is not None and (int(lookahead_frames) != lookahead_frames or lookahead_frames < 0):
            raise ValueError(f"lookahead_frames must be a whole number >= 0, got {lookahead_frames}")
        if max_window_frames < 1:
            raise ValueError(f"max_window_frames must be >= 1, got {max_window_frames}")
        self.model = self._prepare(model, device, dtype, fast)
        self.sigma = model.default_sigma if sigma is None else float(sigma)
        self.seed = int(seed)
        self.lookahead = self.field.future if lookahead_frames is None else int(lookahead_frames)
        self.max_window_frames = int(max_window_frames)
        self.hop, self.steps, self.n_mel = model.hop_length, model.latent_steps_per_frame, model.n_mel_channels
        parameter = next(iter(self.model.parameters()))
        self.device, self.dtype = parameter.device, parameter.dtype
        self._mel = torch.zeros(self.n_mel, 0)  # (n_mel, frames kept), float32 CPU
        self._z = frame_latent(model, 0, 0, self.sigma, self.seed)  # (1, ..., steps * frames kept)
        self._offset = 0  # utterance index of the first frame kept
        self.received = 0  # frames pushed so far
        self.emitted = 0  # frames whose audio was returned
        self.closed = False
        self.windows: list[tuple[int, int]] = []  # the last windows vocoded, (start, stop) frames: for inspection

    @staticmethod
    def _prepare(model, device, dtype, fast: bool):
        if isinstance(model, nn.Module):
            if device is not None or dtype is not None:
                model = model.to(device=device, dtype=dtype)
            return model.fast(low_memory=True) if fast else model
        parameter = next(iter(model.parameters()))
        if (device is not None and torch.device(device) != parameter.device) or (dtype not in (None, parameter.dtype)):
            raise ValueError(f"the inference object runs on {parameter.device} in {parameter.dtype}: "
                             "build it there instead of passing device/dtype")
        return model

    @property
    def latency_frames(self) -> int:
        """Frames that must arrive after a frame before its audio comes out (the lookahead)."""
        return self.lookahead

    @property
    def buffered_frames(self) -> int:
        """Mel frames held now (bounded by past + lookahead + alignment after every push)."""
        return self._mel.size(1)

    # ------------------------------------------------------------------------------ the API

    def push(self, mel: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Take new frames (n_mel, k), k >= 0 -> the audio now final: float32 (hop * frames,), maybe empty.

        A bad push raises :class:`MelError` and changes nothing: the stream takes correct frames after it.
        """
        if self.closed:
            raise StreamClosedError("push after flush: this stream has ended; start a new StreamingVocoder")
        frames = self._check(mel)
        self._mel = torch.cat([self._mel, frames], 1)
        self._z = torch.cat([self._z, frame_latent(self.model, self.received, self.received + frames.size(1),
                                                   self.sigma, self.seed)], -1)
        self.received += frames.size(1)
        return self._emit(self.received - self.lookahead, final=False)

    def flush(self) -> torch.Tensor:
        """End the utterance -> the rest of its audio (exact: the last window ends at the true end)."""
        if self.closed:
            raise StreamClosedError("flush after flush: this stream has ended; start a new StreamingVocoder")
        self.closed = True
        return self._emit(self.received, final=True)

    # ------------------------------------------------------------------------------ internals

    def _check(self, mel) -> torch.Tensor:
        """One push's frames -> float32 CPU (n_mel, k), or MelError naming the problem."""
        try:
            mel = torch.as_tensor(mel)
        except (TypeError, RuntimeError, ValueError) as e:
            raise MelError(f"mel frames must be a tensor or a numeric array: {str(e).splitlines()[0]}") from None
        if mel.is_complex() or mel.dtype == torch.bool or not (mel.is_floating_point() or mel.dtype in
                                                                 (torch.int16, torch.int32, torch.int64)):
            raise MelError(f"mel frames of dtype {mel.dtype} are not supported: give real floating-point frames")
        if mel.dim() != 2 or mel.size(0) != self.n_mel:
            raise MelError(f"push takes mel frames ({self.n_mel}, k), got shape {tuple(mel.shape)}")
        mel = mel.detach().to("cpu", torch.float32)
        bad = ~torch.isfinite(mel).all(0)
        if bad.any():
            first = int(bad.nonzero()[0]) + self.received
            raise MelError(f"mel frames hold NaN or infinite values (frame {first} of the utterance); none were taken")
        return mel

    def _emit(self, stop: int, final: bool) -> torch.Tensor:
        pieces = []
        while self.emitted < stop:
            b = min(stop, self.emitted + self.max_window_frames)
            piece = self._vocode(self.emitted, b, final)
            if piece is None:
                break
            pieces.append(piece)
            self._trim()
        return torch.cat(pieces) if pieces else torch.zeros(0)

    def _vocode(self, a: int, b: int, final: bool) -> torch.Tensor | None:
        """Vocode frames [a, b) in a window with the context they need -> their audio (or None: not yet)."""
        field, align = self.field, self.field.alignment
        s = max(0, a - field.past)
        s -= s % align
        ahead = field.future if final else min(self.lookahead, field.future)  # more context changes nothing
        e = min(self.received, b + ahead)
        if (e - s) % align and e != self.received:
            e -= (e - s) % align  # a squeezing family takes whole aligned blocks only
            b = min(b, e - (0 if final else self.lookahead))
            if b <= a:
                return None
        i, j = s - self._offset, e - self._offset
        mel = self._mel[None, :, i:j].to(self.device, self.dtype)  # (1, n_mel, e - s)
        z = self._z[..., i * self.steps : j * self.steps].to(self.device)  # (1, ..., steps * (e - s))
        audio = self.model.infer(mel, self.sigma, z=z)  # (1, hop * (e - s))
        self.windows = self.windows[-63:] + [(s, e)]
        self.emitted = b
        return audio[0, (a - s) * self.hop : (b - s) * self.hop].float().cpu()

    def _trim(self) -> None:
        """Drop the frames no later window needs: keep from ``emitted - past``, aligned down."""
        keep = max(0, self.emitted - self.field.past)
        keep -= keep % self.field.alignment
        drop = keep - self._offset
        if drop > 0:
            self._mel = self._mel[:, drop:].clone()
            self._z = self._z[..., drop * self.steps :].clone()
            self._offset = keep


def windows_per_frame_bound(field: ReceptiveField, lookahead: int, push_frames: int) -> int:
    """How many windows at most vocode one frame when every push brings ``push_frames`` frames."""
    return math.ceil((field.past + lookahead + field.alignment) / max(1, push_frames)) + 1
