"""The family record: what exists of a flow vocoder without a model (see :mod:`waveglow.registry`).

Behaviour of a model (default sigma, fast path, export preparation, extra checkpoint state, ...)
is the model's: :class:`waveglow.models.base.FlowVocoder`. The record keeps the config section,
the classes, the loss, the features, the datasets, the config checks and the foreign-file reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from torch import nn

from .audio import MelSpectrogram
from .data import AudioDataset, ValidationDataset

if TYPE_CHECKING:  # annotations only
    from .config import Config, DataConfig, TrainConfig
    from .formats import Checkpoint

__all__ = ["ModelFamily"]


def _no_checks(config: "Config", source: str) -> None:
    """A family without cross-checks of its section against the shared ones."""


def _reads_no_foreign_files(obj: Any, source: str) -> None:
    """A family whose only files are this project's own."""
    return None


@dataclass(frozen=True)
class ModelFamily:
    """One flow vocoder, as the shared tools see it before there is a model."""

    name: str  # recorded in our checkpoints, e.g. "waveglow"
    title: str  # for people, e.g. "WaveGlow"
    section: str  # its config section, e.g. "waveglow_config"
    config_class: type  # dataclass of that section; ``to_kwargs()`` gives the constructor's arguments
    model_class: type  # a FlowVocoder subclass; ``model_class.from_config(config)`` builds one
    loss: Callable[["TrainConfig"], nn.Module]  # loss(model(mel, audio)) -> scalar
    # (B, T) audio -> (B, n_mel, 1 + T // hop): a MelSpectrogram (subclass), whose prepare_audio is the
    # recipe's normalisation and min_samples the shortest clip it takes
    features: Callable[["DataConfig"], nn.Module] = MelSpectrogram.from_config
    training_dataset: Callable[[list, "DataConfig"], Any] = AudioDataset  # items (mel, audio) crops
    validation_dataset: Callable[[list, "DataConfig"], Any] = ValidationDataset
    validate: Callable[["Config", str], None] = _no_checks  # cross-checks of the sections; raises ConfigError
    read_foreign: Callable[[Any, str], "Checkpoint | None"] = _reads_no_foreign_files  # a loaded foreign file
    data_defaults: Mapping[str, Any] = field(default_factory=dict)  # data_config of files that carry none
