"""WaveGlow's record in the family registry: what exists of it without a model."""

from __future__ import annotations

from ...family import ModelFamily
from .config import WaveGlowConfig, validate
from .loss import WaveGlowLoss
from .model import WaveGlow
from .readers import read_foreign

__all__ = ["FAMILY"]

FAMILY = ModelFamily(
    name="waveglow",
    title="WaveGlow",
    section="waveglow_config",
    config_class=WaveGlowConfig,
    model_class=WaveGlow,
    loss=lambda train_config: WaveGlowLoss(train_config.sigma),
    validate=validate,
    read_foreign=read_foreign,
)
