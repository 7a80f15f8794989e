"""FloWaveNet's config section, ``flowavenet_config``: ksw0306's constructor arguments, and its checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ...checks import require_positive
from ...errors import ConfigError

__all__ = ["FloWaveNetConfig", "HOP_LENGTH", "DATA_DEFAULTS", "validate"]

HOP_LENGTH = 256  # the upsampler's two transposed convolutions each stretch time by 16
# data_config of files that carry none (ksw0306's): its preprocessing and crops
DATA_DEFAULTS = {"mel_fmin": 125.0, "mel_fmax": 7600.0, "segment_length": 15872}


@dataclass
class FloWaveNetConfig:
    """The ``flowavenet_config`` section; the field names are ksw0306's constructor arguments.

    ``n_channels`` (the WaveNets' width, 256 in the reference) is ours: the default keeps the
    reference's keys and shapes.
    """

    in_channel: int = 1
    cin_channel: int = 80
    n_block: int = 8
    n_flow: int = 6
    n_layer: int = 2
    block_per_split: int = 4
    affine: bool = True
    n_channels: int = 256

    def to_kwargs(self) -> dict:
        return asdict(self)


def validate(config, source: str) -> None:
    """FloWaveNet's section, and its agreement with data_config: one-line ConfigErrors naming both keys."""
    m, d = config.model_config, config.data_config
    require_positive({f"flowavenet_config.{f.name}": getattr(m, f.name) for f in fields(m) if f.name != "affine"}, source)
    if d.hop_length != HOP_LENGTH:
        raise ConfigError(f"{source}: data_config.hop_length must be {HOP_LENGTH} for FloWaveNet (its upsampler is fixed), got {d.hop_length}")
    if m.in_channel != 1:
        raise ConfigError(f"{source}: flowavenet_config.in_channel must be 1 (mono audio), got {m.in_channel}")
    frames = d.segment_length // HOP_LENGTH
    if frames < 1 or (frames * HOP_LENGTH) % 2**m.n_block:
        raise ConfigError(
            f"{source}: data_config.segment_length {d.segment_length} gives {frames} frames; FloWaveNet needs at least "
            f"one, and frames * 256 a multiple of 2 ** n_block = {2 ** m.n_block}"
        )
