"""Model families: each flow vocoder is one record here, and the shared code asks it what to do.

A family names its config section (``waveglow_config`` for WaveGlow), and says how to build its
model, its loss, its features and its training data, how to read foreign checkpoints of it, how
to export it, and its inference defaults. Training, synthesis, checkpoint I/O, export, the
command-line tools and the monitor talk to a model only through this small interface (shapes in
:class:`VocoderModel`), never by its class or its name.

Each family is one subpackage, the same shape for all: ``waveglow/models/waveglow/`` and
``waveglow/models/flowavenet/`` hold ``model.py``, ``config.py`` (its section's dataclass and
checks), ``loss.py``, ``readers.py`` (foreign checkpoint formats), ``fast.py`` (an exact faster
inference object, :class:`waveglow.models.fast.FastVocoder`) and ``family.py`` (the record).

To add a family: write its folder (at least a model, a config dataclass, a loss and a
``FAMILY`` record) and register the record, either in code::

    from waveglow.models import register
    register(MY_FAMILY)

or, for a family shipped with the package, by one line in ``_BUILT_IN`` below.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import torch
from torch import nn

from ..errors import ConfigError

if TYPE_CHECKING:  # annotations only: the config module looks families up here
    from ..config import Config, DataConfig, TrainConfig

__all__ = [
    "VocoderModel", "ModelFamily", "FAMILIES", "register", "family_names", "families", "family_named", "family_of",
    "family_for_sections", "unwrap_model", "ReceptiveField",
]


class VocoderModel(Protocol):
    """What the shared code uses of a model (and of a family's fast inference object).

    - ``hop_length``: audio samples per mel frame; ``n_mel_channels``.
    - ``forward(mel (B, n_mel, F), audio (B, hop * F))``: whatever the family's loss takes.
    - ``encode(mel, audio) -> z``: the latent of the audio, in ``infer``'s layout, differentiable;
      ``infer(mel, z=encode(mel, audio))`` returns the audio.
    - ``sample_latent(batch, n, sigma, generator, device)``: sigma * N(0, 1) in the layout ``infer``
      takes, drawn in the family's reference order, with ``n`` steps on its last (time) axis;
      ``latent_steps_per_frame`` steps make one mel frame (WaveGlow: hop / n_group).
    - ``remove_weight_norm() -> model``.
    """

    hop_length: int
    n_mel_channels: int
    latent_steps_per_frame: int

    def infer(self, mel: torch.Tensor, sigma: float = 1.0, *, z: torch.Tensor | None = None,
              generator: torch.Generator | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """mel (B, n_mel, F) -> audio (B, hop * F), in the model's dtype, without gradients.

        Without ``z`` the latent is ``sigma * N(0, 1)`` (``sample_latent``), drawn in float32 from
        ``generator`` if given, on the generator's device, so a CPU generator gives the same noise
        to a model on any device. With ``z`` (in ``sample_latent``'s layout, which is also what the
        family's encoder returns) nothing is drawn: vocoding the latent of some audio returns it.

        ``lengths`` (B,) gives each sequence's own length in samples (a multiple of the family's
        step) for a batch padded to a common length: each sequence's output up to its length is
        then what it would be alone. The default ``sigma`` is the family's reference temperature.
        """
        ...


@dataclass(frozen=True)
class ReceptiveField:
    """How far along time a model's output depends on its inputs, in mel frames: what streaming asks.

    A model reports it from its own config (``model.receptive_field()``). The promise: ``infer`` on
    the frames [s, e) of an utterance of F frames, with the latent sliced alike, gives frame f's
    audio (samples [hop f, hop (f + 1))) exactly as ``infer`` on the whole utterance does, whenever
    s <= f - past or s == 0, e >= f + 1 + future or e == F, s is a multiple of ``alignment`` and
    e - s is a multiple of it or e == F. The window's zero padding then never reaches frame f.
    """

    past: int  # frames of context needed before a frame
    future: int  # frames needed after it: the lookahead of an exact stream
    alignment: int = 1  # window starts and lengths in multiples of this many frames (time squeezes)


@dataclass(frozen=True)
class ModelFamily:
    """One flow vocoder, as the shared tools see it."""

    name: str  # recorded in our checkpoints, e.g. "waveglow"
    title: str  # for people, e.g. "WaveGlow"
    section: str  # its config section, e.g. "waveglow_config"
    config_class: type  # dataclass of that section; ``to_kwargs()`` gives the constructor's arguments
    model_class: type
    build: Callable[["Config"], nn.Module]  # a fresh model for a whole config
    loss: Callable[["TrainConfig"], nn.Module]  # loss(model(mel, audio)) -> scalar
    # (B, T) audio -> (B, n_mel, 1 + T // hop); a MelSpectrogram (subclass): the tools also use its
    # prepare_audio (the recipe's normalisation) and min_samples (the shortest clip it takes)
    features: Callable[["DataConfig"], nn.Module]
    training_dataset: Callable[[list, "DataConfig"], Any]  # items (mel, audio) crops
    validation_dataset: Callable[[list, "DataConfig"], Any]
    validate: Callable[["Config", str], None]  # cross-checks of the sections; raises ConfigError
    model_config: Callable[[nn.Module], Any]  # the section dataclass of a built model
    read_foreign: Callable[[Any, str], Any]  # a loaded foreign file -> Checkpoint, or None if not ours to read
    infer_config: Callable[[Mapping, str], dict]  # the model section recovered from a state dict's shapes
    default_sigma: float  # inference's default sigma (temperature)
    overlap_frames: int  # context each side of a chunk for long audio, from the receptive field
    # What the loss (per sample, train sigma 1) adds to -log N(encode(audio); 0, 1) - log|det d encode / d audio|:
    # 0.5 log(2 pi) when it is the full negative log-likelihood, 0 when it leaves the Gaussian constant out.
    nll_constant: float = 0.0
    mel_channels_key: str = "n_mel_channels"  # the model-section key holding the mel channel count
    initialize: Callable[[nn.Module, torch.Tensor, torch.Tensor], None] | None = None  # data-dependent init
    inference_model: Callable[[nn.Module, bool], Any] | None = None  # a faster inference object for a frozen model
    denoiser_applies: bool = True  # whether the denoiser's bias removal suits this family
    data_defaults: Mapping[str, Any] = field(default_factory=dict)  # data_config of files that carry none
    checkpoint_extra: Callable[[nn.Module], dict] | None = None  # state beyond the state dict, saved with it
    restore_extra: Callable[[nn.Module, Any], None] | None = None  # (model, Checkpoint): undo checkpoint_extra
    silence_feature: float = math.log(1e-5)  # the feature value of silence, for padding batches (Tacotron 2's floor)
    upgrade_state_dict: Callable[[Mapping], dict] | None = None  # older key layouts of our own files -> current
    # Export: a weight-norm-free copy made traceable (e.g. inverses precomputed), and the channels of each
    # N(0, 1) block sample_latent draws, in drawing order (default: one block of the latent's channels).
    export_model: Callable[[nn.Module], nn.Module] | None = None
    latent_draws: Callable[[nn.Module], list[int]] | None = None
    # Give the zero-initialised output layers small random weights (generator-drawn), so that no
    # coupling is the identity: for tests and benchmarks of untrained models.
    perturb: Callable[[nn.Module, torch.Generator], None] | None = None
    demo_config: str | None = None  # file under configs/ that the demo trains (a small model)


# name -> module defining the ``FAMILY`` record of a family shipped with the package, imported on first use.
_BUILT_IN: dict[str, str] = {
    "waveglow": "waveglow.models.waveglow.family",
    "flowavenet": "waveglow.models.flowavenet.family",
    "waveflow": "waveglow.models.waveflow.family",
}
FAMILIES: tuple[str, ...] = tuple(_BUILT_IN)  # the families shipped with the package
_order: list[str] = list(_BUILT_IN)  # every registered family's name, in registration order
_registered: dict[str, ModelFamily] = {}


def register(family: ModelFamily) -> ModelFamily:
    """Make ``family`` known to every tool (config loading, checkpoints, training, inference, export).

    Its ``name`` and ``section`` must be new. Returns the family, so a module can write
    ``FAMILY = register(ModelFamily(...))``.
    """
    for other in families():
        if family.name == other.name or family.section == other.section:
            if other is family:
                return family
            raise ValueError(f"a family named {other.name!r} with section {other.section!r} is registered already")
    _registered[family.name] = family
    _order.append(family.name)
    return family


def family_names() -> tuple[str, ...]:
    """Every registered family's name, the built-in ones first."""
    return tuple(_order)


def families() -> list[ModelFamily]:
    """Every registered family, WaveGlow first."""
    return [family_named(name) for name in _order]


def family_named(name: str) -> ModelFamily:
    if name not in _order:
        raise KeyError(f"unknown model family {name!r} (known: {', '.join(_order)})")
    if name not in _registered:
        _registered[name] = importlib.import_module(_BUILT_IN[name]).FAMILY
    return _registered[name]


def family_for_sections(data: Mapping, source: str) -> ModelFamily:
    """The family whose model section ``data`` holds: exactly one, else a one-line ConfigError."""
    found = [f for f in families() if f.section in data]
    if len(found) == 1:
        return found[0]
    sections = " or ".join(f.section for f in families())
    if not found:
        raise ConfigError(f"{source}: the model section is missing: the config must hold {sections}")
    raise ConfigError(f"{source}: two model sections ({', '.join(f.section for f in found)}): keep exactly one")


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DistributedDataParallel (``module``) and torch.compile (``_orig_mod``) wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel) or type(model).__name__ == "DataParallel":
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def family_of(model: Any) -> ModelFamily:
    """The family of a model (wrappers such as DDP, torch.compile and inference objects unwrapped)."""
    named = getattr(model, "family_name", None)  # a runtime of an exported file (OnnxVocoder) names its family
    if isinstance(named, str) and not isinstance(model, nn.Module):
        return family_named(named)
    model = getattr(model, "model", model) if not isinstance(model, nn.Module) else model
    model = unwrap_model(model)
    for family in families():
        if isinstance(model, family.model_class):
            return family
    raise TypeError(f"{type(model).__name__} is not a model of any registered family ({', '.join(_order)})")
