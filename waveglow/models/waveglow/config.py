"""WaveGlow's config section, ``waveglow_config``: NVIDIA's keys, and its checks against data_config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...checks import require_positive
from ...errors import ConfigError
from .layers import flow_channels_problem

__all__ = ["WNConfig", "WaveGlowConfig", "validate"]


@dataclass
class WNConfig:
    n_layers: int
    n_channels: int
    kernel_size: int


@dataclass
class WaveGlowConfig:
    n_mel_channels: int
    n_flows: int
    n_group: int
    n_early_every: int
    n_early_size: int
    WN_config: WNConfig

    def to_kwargs(self) -> dict:
        """Keyword arguments for ``WaveGlow(**kwargs)``, as NVIDIA's constructor takes them."""
        return dataclasses.asdict(self)


def validate(config, source: str) -> None:
    """WaveGlow's section, and its agreement with data_config: one-line ConfigErrors naming both keys."""
    wg, wn, d = config.model_config, config.model_config.WN_config, config.data_config
    require_positive({
        "waveglow_config.n_mel_channels": wg.n_mel_channels,
        "waveglow_config.n_flows": wg.n_flows,
        "waveglow_config.n_group": wg.n_group,
        "waveglow_config.n_early_every": wg.n_early_every,
        "waveglow_config.WN_config.n_layers": wn.n_layers,
        "waveglow_config.WN_config.n_channels": wn.n_channels,
        "waveglow_config.WN_config.kernel_size": wn.kernel_size,
    }, source)
    if wn.kernel_size % 2 != 1:
        raise ConfigError(f"{source}: waveglow_config.WN_config.kernel_size must be odd, got {wn.kernel_size}")
    problem = flow_channels_problem(wg.n_flows, wg.n_group, wg.n_early_every, wg.n_early_size)
    if problem:
        raise ConfigError(f"{source}: waveglow_config: {problem}")
    if d.hop_length % wg.n_group:
        raise ConfigError(
            f"{source}: data_config.hop_length {d.hop_length} is not a multiple of waveglow_config.n_group {wg.n_group}"
        )
    if d.filter_length < d.hop_length:
        raise ConfigError(f"{source}: data_config.filter_length {d.filter_length} is shorter than data_config.hop_length {d.hop_length}")
    if d.segment_length % wg.n_group:
        raise ConfigError(
            f"{source}: data_config.segment_length {d.segment_length} is not a multiple of waveglow_config.n_group {wg.n_group}"
        )
