"""FloWaveNet's record in the family registry: its config section, classes, loss, features, data and reader.

What a FloWaveNet does (default sigma, fast path, extra checkpoint state, ActNorm initialisation,
...) is the model's own: :class:`~waveglow.models.flowavenet.model.FloWaveNet`.
"""

from __future__ import annotations

from ...family import ModelFamily
from .config import DATA_DEFAULTS, FloWaveNetConfig, validate
from .data import FrameAlignedDataset, FrameAlignedValidationDataset
from .features import FloWaveNetMelSpectrogram
from .loss import FloWaveNetLoss
from .model import FloWaveNet
from .readers import read_foreign

__all__ = ["FAMILY"]

FAMILY = ModelFamily(
    name="flowavenet",
    title="FloWaveNet",
    section="flowavenet_config",
    config_class=FloWaveNetConfig,
    model_class=FloWaveNet,
    loss=lambda train_config: FloWaveNetLoss(),
    features=FloWaveNetMelSpectrogram.from_config,
    training_dataset=FrameAlignedDataset,
    validation_dataset=FrameAlignedValidationDataset,
    validate=validate,
    read_foreign=read_foreign,
    data_defaults=DATA_DEFAULTS,
)
