"""Models, configs and speech for the benchmarks, none of them read from a repository checkout.

A config is a path or a :class:`~waveglow.config.Config`; :func:`default_config` builds a family's
from its config section's defaults. Models are random (drawn from a seed, then ``model.perturb``:
no coupling is the identity; FLOPs do not depend on values) unless a checkpoint is given. The
speech is a file, or :func:`speech_clip`, a deterministic speech-like signal synthesised at the
config's sampling rate.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Mapping

import torch

from ..audio import load_audio
from ..checkpoint import build_model, load_checkpoint
from ..config import Config, config_from_dict, load_config
from ..errors import ConfigError
from ..family import ModelFamily
from ..registry import families
from ..synthesis import write_wav

__all__ = [
    "DTYPES", "default_config", "default_configs", "as_config", "config_label", "random_model", "source_model",
    "inference_model", "set_precision", "speech_clip", "load_clip", "clip_file",
]

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# ----------------------------------------------------------------------------- configs


def default_config(family: ModelFamily, section: Mapping | None = None) -> Config:
    """The family's config from its section's defaults (``section`` giving values, e.g. for keys
    without a default), with the family's ``data_defaults`` and the shared sections' defaults.
    Raises ConfigError where a key has neither."""
    data = {family.section: dict(section or {})}
    if family.data_defaults:
        data["data_config"] = dict(family.data_defaults)
    return config_from_dict(data, f"<default {family.name} config>")


def default_configs(sections: Mapping[str, Mapping] | None = None) -> list[Config]:
    """:func:`default_config` of every registered family whose section builds from its defaults
    or from ``sections[family.section]``, in the registry's order."""
    configs = []
    for family in families():
        try:
            configs.append(default_config(family, (sections or {}).get(family.section)))
        except ConfigError:  # required keys without defaults, and no values given for them
            continue
    return configs


def as_config(config: Config | str | os.PathLike) -> Config:
    """A config, read from its path if given one. Raises ConfigError."""
    return config if isinstance(config, Config) else load_config(config)


def config_label(config: Config | str | os.PathLike) -> str:
    """How results name a config: its path relative to the current directory, or ``default``."""
    if isinstance(config, Config):
        return "default"
    return os.path.relpath(config) if os.path.isabs(config) else os.fspath(config)


# ----------------------------------------------------------------------------- models


def random_model(config: Config | str | os.PathLike, device: torch.device | str, seed: int) -> tuple[torch.nn.Module, Config]:
    """(a default-initialised model of the config's family with its zero-initialised output layers
    drawn small by ``model.perturb``, so no coupling is the identity; the config)."""
    config = as_config(config)
    torch.manual_seed(seed)
    model = build_model(config)
    model.perturb(torch.Generator().manual_seed(seed))
    return model.to(device), config


def source_model(config: Config | str | os.PathLike, checkpoint: str | None, seed: int) -> torch.nn.Module:
    """The checkpoint's weights, or random ones for ``config``, on the CPU: read or drawn once per
    run. Raises CheckpointError or ConfigError."""
    if checkpoint:
        return load_checkpoint(checkpoint, map_location="cpu")
    return random_model(config, torch.device("cpu"), seed)[0]


def inference_model(source: torch.nn.Module, device: torch.device, precision: str) -> torch.nn.Module:
    """A copy of ``source`` to time: on ``device`` in ``precision``, weight norm removed, eval mode."""
    return copy.deepcopy(source).to(device=device, dtype=DTYPES[precision]).eval().remove_weight_norm()


def set_precision(precision: str) -> None:
    """TF32 matrix products and convolutions on for ``tf32``, off otherwise."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


# ----------------------------------------------------------------------------- speech


def speech_clip(sampling_rate: int, seconds: float = 2.0) -> torch.Tensor:
    """A deterministic speech-like signal (T,) float32, peak 0.5: what the benchmarks vocode and train on
    when no clip is given.

    A voiced source (harmonics of a 95-165 Hz pitch contour with vibrato) shaped by three formant
    resonances that glide between vowel-like positions, up to 7 kHz or 0.9 of Nyquist; syllables at
    4 per second with a pause every 1.25 s; a little breath noise from a fixed seed.
    """
    n = max(1, round(seconds * sampling_rate))
    t = torch.arange(n, dtype=torch.float64) / sampling_rate
    f0 = 130.0 * (1 + 0.2 * torch.sin(2 * math.pi * 0.6 * t)) * (1 + 0.02 * torch.sin(2 * math.pi * 5.5 * t))
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sampling_rate
    formants = [(600 + 250 * torch.sin(2 * math.pi * 1.1 * t), 90.0),
                (1500 + 600 * torch.sin(2 * math.pi * 0.8 * t + 1.0), 120.0),
                (2600 + 200 * torch.sin(2 * math.pi * 0.5 * t + 2.0), 180.0)]
    top = min(7000.0, 0.45 * sampling_rate)
    voiced = torch.zeros(n, dtype=torch.float64)
    for k in range(1, int(top // 95.0) + 1):
        frequency = k * f0
        gain = sum(1 / (1 + ((frequency - centre) / width) ** 2) for centre, width in formants) / k ** 0.5
        voiced += torch.where(frequency < top, gain, torch.zeros(())) * torch.sin(k * phase)
    syllables = 0.5 - 0.5 * torch.cos(2 * math.pi * 4.0 * t)
    phrases = (torch.sin(2 * math.pi * 0.8 * t) + 0.9).clamp(0, 1)
    noise = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    audio = (voiced * syllables + 0.02 * noise * voiced.abs().max() * syllables) * phrases
    return (0.5 * audio / audio.abs().max().clamp_min(1e-12)).float()


def load_clip(clip: str | None, sampling_rate: int) -> torch.Tensor:
    """The speech file ``clip`` at ``sampling_rate`` (T,), or :func:`speech_clip` for None. Raises AudioError."""
    return speech_clip(sampling_rate) if clip is None else load_audio(clip, sampling_rate)


def clip_file(clip: str | None, sampling_rate: int, folder: str) -> str:
    """A file of the clip for tools that read files (datasets, the training loop): ``clip`` itself
    (absolute), or :func:`speech_clip` written as a WAV into ``folder``."""
    if clip is not None:
        return os.path.abspath(clip)
    path = os.path.join(folder, f"speech_{sampling_rate}.wav")
    if not os.path.exists(path):
        write_wav(path, speech_clip(sampling_rate), sampling_rate)
    return path
