"""Model families: each flow vocoder is one record here, and the shared code asks it what to do.

A family names its config section (``waveglow_config`` for WaveGlow), and says how to build its
model, its loss, its features and its training data, how to read foreign checkpoints of it, and
its inference defaults. Training, synthesis, checkpoint I/O, inference.py and the monitor talk to
a model only through this small interface (shapes in :class:`VocoderModel`), never by its class.

To add a family: write its module beside ``waveglow.py`` (model, config dataclass, loss, readers)
and add its record to ``FAMILIES`` below. Nothing else in the package names a family.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import torch
from torch import nn

if TYPE_CHECKING:  # for annotations only: config imports this module lazily
    from ..config import Config, DataConfig, TrainConfig

__all__ = ["VocoderModel", "ModelFamily", "FAMILIES", "family_named", "family_of", "family_for_sections"]


class VocoderModel(Protocol):
    """What the shared code uses of a model.

    - ``hop_length``: audio samples per mel frame; ``n_mel_channels``.
    - ``forward(mel (B, n_mel, F), audio (B, hop * F))``: whatever the family's loss takes.
    - ``infer(mel (B, n_mel, F), sigma, *, z=None, generator=None, lengths=None) -> (B, hop * F)``:
      with ``z`` (in the layout ``sample_latent`` returns) nothing is drawn.
    - ``sample_latent(batch, n, sigma, generator, device)``: sigma * N(0, 1) in the layout ``infer``
      takes, drawn in the family's reference order, with ``n`` steps on its last (time) axis;
      ``latent_steps_per_frame`` steps make one mel frame (WaveGlow: hop / n_group).
    - ``remove_weight_norm() -> model``.
    """

    hop_length: int
    n_mel_channels: int
    latent_steps_per_frame: int


@dataclass(frozen=True)
class ModelFamily:
    """One flow vocoder, as the shared tools see it."""

    name: str  # recorded in our checkpoints, e.g. "waveglow"
    title: str  # for people, e.g. "WaveGlow"
    section: str  # its config section, e.g. "waveglow_config"
    config_class: type  # dataclass of that section
    model_class: type
    build: Callable[["Config"], nn.Module]  # a fresh model for a whole config
    loss: Callable[["TrainConfig"], nn.Module]  # loss(model(mel, audio)) -> scalar
    features: Callable[["DataConfig"], nn.Module]  # (B, T) audio -> (B, n_mel, 1 + T // hop)
    training_dataset: Callable[[list, "DataConfig"], Any]  # items (mel, audio) crops
    validation_dataset: Callable[[list, "DataConfig"], Any]
    validate: Callable[["Config", str], None]  # cross-checks of the sections; raises ConfigError
    model_config: Callable[[nn.Module], Any]  # the section dataclass of a built model
    read_foreign: Callable[[Any, str], Any]  # a loaded foreign file -> Checkpoint, or None if not ours to read
    infer_config: Callable[[Mapping, str], dict]  # the model section recovered from a state dict's shapes
    default_sigma: float  # inference's default sigma (temperature)
    overlap_frames: int  # context each side of a chunk for long audio, from the receptive field
    initialize: Callable[[nn.Module, torch.Tensor, torch.Tensor], None] | None = None  # data-dependent init
    inference_model: Callable[[nn.Module, bool], Any] | None = None  # a faster inference object for a frozen model
    denoiser_applies: bool = True  # whether the denoiser's bias removal suits this family
    data_defaults: Mapping[str, Any] = field(default_factory=dict)  # data_config of files that carry none
    checkpoint_extra: Callable[[nn.Module], dict] | None = None  # state beyond the state dict, saved with it
    restore_extra: Callable[[nn.Module, Any], None] | None = None  # (model, Checkpoint): undo checkpoint_extra
    silence_feature: float = math.log(1e-5)  # the feature value of silence, for padding batches (Tacotron 2's floor)


# name -> module that defines the family's ``FAMILY`` record; imported on first use.
_MODULES: dict[str, str] = {
    "waveglow": "waveglow.models.waveglow",
    "flowavenet": "waveglow.models.flowavenet",
}
FAMILIES = tuple(_MODULES)  # names, in registration order
_loaded: dict[str, ModelFamily] = {}


def families() -> list[ModelFamily]:
    """Every registered family, WaveGlow first."""
    return [family_named(name) for name in _MODULES]


def family_named(name: str) -> ModelFamily:
    if name not in _MODULES:
        raise KeyError(f"unknown model family {name!r} (known: {', '.join(_MODULES)})")
    if name not in _loaded:
        _loaded[name] = importlib.import_module(_MODULES[name]).FAMILY
    return _loaded[name]


def family_for_sections(data: Mapping, source: str) -> ModelFamily:
    """The family whose model section ``data`` holds: exactly one, else a one-line ConfigError."""
    from ..config import ConfigError

    found = [f for f in families() if f.section in data]
    if len(found) == 1:
        return found[0]
    sections = " or ".join(f.section for f in families())
    if not found:
        raise ConfigError(f"{source}: the model section is missing: the config must hold {sections}")
    raise ConfigError(f"{source}: two model sections ({', '.join(f.section for f in found)}): keep exactly one")


def family_of(model: Any) -> ModelFamily:
    """The family of a model (wrappers such as DDP, torch.compile and inference objects unwrapped)."""
    from ..checkpoint import unwrap_model

    named = getattr(model, "family_name", None)  # a runtime of an exported file (OnnxVocoder) names its family
    if isinstance(named, str) and not isinstance(model, nn.Module):
        return family_named(named)
    model = getattr(model, "model", model) if not isinstance(model, nn.Module) else model
    model = unwrap_model(model)
    for family in families():
        if isinstance(model, family.model_class):
            return family
    raise TypeError(f"{type(model).__name__} is not a model of any registered family ({', '.join(_MODULES)})")
