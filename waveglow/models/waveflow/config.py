"""The ``waveflow_config`` section: L0SG/NanoFlow's model keys, with its coupling types, and its
cross-checks against ``data_config`` (:func:`validate`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ...errors import ConfigError

__all__ = ["WaveFlowConfig", "COUPLING_TYPES", "HOP_LENGTH", "parse_bool", "validate"]

HOP_LENGTH = 256  # the upsampler's two transposed convolutions each stretch time by 16
# coupling_type -> what it builds: WaveFlow has a WaveNet per flow; the NanoFlow variants share one.
COUPLING_TYPES = ("waveflow", "nanoflow", "nanoflow_decomp", "nanoflow_naive")


def parse_bool(value: bool | str, key: str) -> bool:
    """L0SG's configs spell booleans as strings ("False"); its builder reads them, so do we.

    A non-empty string is truthy in Python, so handing "False" on unchanged would switch the
    option on: every spelling is read explicitly, and anything else is a one-line error.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"waveflow_config.{key} must be true or false (or the strings \"True\"/\"False\"), got {value!r}")


@dataclass
class WaveFlowConfig:
    """The ``waveflow_config`` section, key for key L0SG's (its six shipped configs load unchanged).

    ``size_flow_embed`` and ``use_weightnorm_embed`` are read by NanoFlow only (L0SG's WaveFlow
    configs leave them out). ``bipartize`` is the WaveFlow paper's second permutation for the
    later half of the flows, off as in every shipped config.
    """

    model_name: str = "waveflow"
    cin_channels: int = 80
    res_channels: int = 64
    n_height: int = 16
    n_layer: int = 8
    n_flow: int = 8
    n_layer_per_cycle: int = 1
    coupling_type: str = "waveflow"
    size_flow_embed: int = 512
    use_weightnorm_embed: bool = False  # L0SG's files write "False": read as false
    bipartize: bool = False

    def __post_init__(self) -> None:
        self.use_weightnorm_embed = parse_bool(self.use_weightnorm_embed, "use_weightnorm_embed")
        self.bipartize = parse_bool(self.bipartize, "bipartize")
        if self.coupling_type not in COUPLING_TYPES:
            raise ConfigError(
                f"waveflow_config.coupling_type must be one of {', '.join(COUPLING_TYPES)}, got {self.coupling_type!r}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and not (isinstance(value, int) and value > 0):
                raise ConfigError(f"waveflow_config.{f.name} must be a positive integer, got {value!r}")
        if HOP_LENGTH % self.n_height:
            raise ConfigError(f"waveflow_config.n_height {self.n_height} must divide the hop length {HOP_LENGTH}")
        if self.bipartize and self.coupling_type != "waveflow":
            raise ConfigError("waveflow_config.bipartize applies to coupling_type \"waveflow\" only")

    def to_kwargs(self) -> dict:
        return asdict(self)


def validate(config, source: str) -> None:
    """The ``waveflow_config`` section against data_config: one-line ConfigErrors naming both keys."""
    m, d = config.model_config, config.data_config
    if d.hop_length != HOP_LENGTH:
        raise ConfigError(f"{source}: data_config.hop_length must be {HOP_LENGTH} for WaveFlow (its upsampler is fixed), got {d.hop_length}")
    if d.segment_length % m.n_height:
        raise ConfigError(
            f"{source}: data_config.segment_length {d.segment_length} must be a multiple of waveflow_config.n_height {m.n_height}"
        )
