"""What a benchmark run measures: :class:`Settings` (inference, precision, training and family rows)
and :class:`StreamSettings` (the streaming benchmark). Their defaults are the command's."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

__all__ = ["Settings", "StreamSettings"]


@dataclass
class Settings:
    """Lengths, batches, precisions and modes to time, how often, and from which latent and clip.

    ``modes`` name the plain path, any of the model's ``fast_variants()`` and the generic modes of
    :mod:`waveglow.bench.inference`; ``clip`` is a speech file, or None for the synthesised one
    (:func:`waveglow.bench.models.speech_clip`).
    """

    lengths: list[float] = field(default_factory=lambda: [1.0, 10.0])  # utterance lengths in seconds
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    modes: list[str] = field(default_factory=lambda: ["plain", "fast"])
    repeats: int = 3
    warmup: int = 1
    sigma: float = 0.6
    seed: int = 1234
    accuracy_sigma: float = 0.0  # the precision comparison's latent: 0 (z = 0) or one draw at this sigma
    train_precisions: list[str] = field(default_factory=lambda: ["fp32", "amp"])
    train_batch_size: int = 1
    segment_length: int = 16000
    clip: str | None = None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "Settings":
        """The settings among parsed arguments of the same names."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


@dataclass
class StreamSettings:
    """The streaming benchmark's push sizes, lookaheads, sample counts, clip (None: synthesised) and device."""

    chunks: list[int] = field(default_factory=lambda: [1, 8, 32])  # frames per push
    lookaheads: list[int] = field(default_factory=lambda: [0, 8, 16, 32, 64])
    pushes: int = 3  # timed pushes per chunk size, after one untimed
    error_frames: int = 4  # frames sampled for the error table
    clip: str | None = None
    device: str = "cpu"
    seed: int = 1234

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "StreamSettings":
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
