"""WaveFlow's and NanoFlow's record in the family registry: its section, classes, loss, checks and reader.

Features and training crops are the shared defaults (the Tacotron 2 mel, as L0SG's mel2samp.py,
and AudioDataset/ValidationDataset); the model's own behaviour is :class:`~.model.WaveFlow`'s.
"""

from __future__ import annotations

from ...family import ModelFamily
from .config import WaveFlowConfig, validate
from .loss import WaveFlowLoss
from .model import WaveFlow
from .readers import read_foreign

__all__ = ["FAMILY", "validate"]

FAMILY = ModelFamily(
    name="waveflow",
    title="WaveFlow",
    section="waveflow_config",
    config_class=WaveFlowConfig,
    model_class=WaveFlow,
    loss=lambda train_config: WaveFlowLoss(train_config.sigma),
    validate=validate,
    read_foreign=read_foreign,
)
