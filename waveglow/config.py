"""Typed, strict configuration compatible with NVIDIA's config.json.

NVIDIA's file has four sections (``train_config``, ``data_config``, ``dist_config``,
``waveglow_config``); the field names below are its keys, so an existing config.json loads
unchanged. The same content in YAML loads too. Unknown keys, missing required keys and values of
the wrong type raise :class:`ConfigError` with one line naming the key and the file.

The model section names the model family (:mod:`waveglow.models`): ``waveglow_config`` for
WaveGlow, ``flowavenet_config`` for FloWaveNet. A file holds exactly one. Settings that contradict
each other (a data ``n_mel_channels`` the model does not take, a crop the model cannot split)
are refused here, before any training starts.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import yaml

from .checks import require_non_negative, require_positive
from .errors import ConfigError
from .registry import family_for_sections

__all__ = [
    "ConfigError",
    "TrainConfig",
    "DataConfig",
    "DistConfig",
    "Config",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "require_positive",
]


@dataclass
class TrainConfig:
    fp16_run: bool = True
    output_directory: str = "checkpoints"
    epochs: int = 100000
    learning_rate: float = 1e-4
    sigma: float = 1.0
    iters_per_checkpoint: int = 2000
    batch_size: int = 12
    seed: int = 1234
    checkpoint_path: str = ""
    with_tensorboard: bool = False
    # Beyond the reference; the defaults keep its behaviour.
    amp_dtype: str = "float16"  # "float16" or "bfloat16", used when fp16_run is on CUDA
    max_iterations: int = 0  # stop after this many iterations in all; 0: run for `epochs`
    grad_clip_thresh: float = 0.0  # clip the gradient norm to this; 0: no clipping
    lr_step_size: int = 0  # multiply the learning rate by lr_gamma every this many iterations; 0: constant
    lr_gamma: float = 0.5
    keep_last: int = 0  # keep only the newest K checkpoints; 0 keeps all
    iters_per_validation: int = 0  # 0: no validation
    iters_per_audio: int = 0  # log vocoded validation clips every N iterations; 0: never
    iters_per_evaluation: int = 0  # score PESQ, STOI, log-mel L1 of validation clips every N iterations; 0: never
    evaluation_clips: int = 4  # how many validation files (the first ones) the evaluation vocodes
    max_nonfinite_steps: int = 10  # stop after this many consecutive non-finite losses
    num_workers: int = 0


@dataclass
class DataConfig:
    training_files: str = "train_files.txt"
    segment_length: int = 16000
    sampling_rate: int = 22050
    filter_length: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    mel_fmin: float = 0.0
    mel_fmax: float = 8000.0
    # Beyond the reference; the defaults keep its behaviour.
    n_mel_channels: int = 80
    validation_files: str = ""
    resample: bool = False  # resample files at another rate instead of failing
    downmix: bool = False  # average multi-channel files instead of failing
    min_crop_rms: float = 0.0  # re-draw crops quieter than this RMS; 0 disables the guard


@dataclass
class DistConfig:
    dist_backend: str = "nccl"
    dist_url: str = "tcp://localhost:54321"


@dataclass
class Config:
    """A whole run's settings: the model section of one family, and the shared sections."""

    model_config: Any  # the family's section, e.g. a WaveGlowConfig; also readable by its name (config.waveglow_config)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    data_config: DataConfig = field(default_factory=DataConfig)
    dist_config: DistConfig = field(default_factory=DistConfig)
    model_section: str = "waveglow_config"

    @property
    def family(self):
        """The :class:`~waveglow.family.ModelFamily` this config trains."""
        return family_for_sections({self.model_section: None}, "<config>")

    def __getattr__(self, name: str) -> Any:
        """The model section by its own name, e.g. ``config.waveglow_config`` (NVIDIA's key)."""
        if name.endswith("_config") and name == self.__dict__.get("model_section"):
            return self.model_config
        raise AttributeError(f"this config has no {name} (its model section is {self.__dict__.get('model_section')})")

    def to_dict(self) -> dict:
        """The NVIDIA-shaped nested dict (what config.json holds)."""
        return {
            "train_config": dataclasses.asdict(self.train_config),
            "data_config": dataclasses.asdict(self.data_config),
            "dist_config": dataclasses.asdict(self.dist_config),
            self.model_section: dataclasses.asdict(self.model_config),
        }


def _check_value(value: Any, expected: Any, where: str, source: str) -> Any:
    """Return ``value`` converted to ``expected`` where lossless, else raise ConfigError."""
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is bool and value in ("true", "True", "false", "False"):  # L0SG's configs spell booleans so
        return value in ("true", "True")
    if expected in (int, str, bool, float) and type(value) is expected:
        return value
    name = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}[expected]
    raise ConfigError(f"{source}: {where} must be {name}, got {value!r}")


def _build(cls: type, data: Any, where: str, source: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {where} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{source}: unknown key {where}.{key} (known keys: {known})")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{where}.{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: required key {sub} is missing")
            continue
        expected = hints[name]
        if dataclasses.is_dataclass(expected):
            kwargs[name] = _build(expected, data[name], sub, source)
        else:
            kwargs[name] = _check_value(data[name], expected, sub, source)
    return cls(**kwargs)


SHARED_SECTIONS = {"train_config": TrainConfig, "data_config": DataConfig, "dist_config": DistConfig}
# Other references' names for keys of the shared sections (L0SG/NanoFlow's), read as ours.
KEY_ALIASES = {
    "train_config": {"lr_decay_step": "lr_step_size", "lr_decay_gamma": "lr_gamma"},
    "data_config": {"test_files": "validation_files"},
}


def _resolve_aliases(section: str, data: Any, source: str) -> Any:
    """``data`` with another reference's key names replaced by ours; both spellings at once is an error."""
    aliases = KEY_ALIASES.get(section, {})
    if not isinstance(data, Mapping) or not any(key in data for key in aliases):
        return data
    data = dict(data)
    for alias, key in aliases.items():
        if alias in data:
            if key in data:
                raise ConfigError(f"{source}: {section}.{alias} and {section}.{key} are the same setting: keep one")
            data[key] = data.pop(alias)
    return data


def _validate_features(d: DataConfig, source: str) -> None:
    """The STFT and mel settings agree with each other and with the sampling rate (after the family's checks)."""
    if d.hop_length > d.win_length:
        raise ConfigError(f"{source}: data_config.hop_length {d.hop_length} exceeds data_config.win_length {d.win_length}: "
                          "the samples between windows would never be seen")
    if not d.mel_fmax <= d.sampling_rate / 2:  # NaN fails too
        raise ConfigError(f"{source}: data_config.mel_fmax {d.mel_fmax} is above the Nyquist frequency "
                          f"{d.sampling_rate / 2:g} Hz of data_config.sampling_rate {d.sampling_rate}")
    if not d.mel_fmin < d.mel_fmax:
        raise ConfigError(f"{source}: data_config.mel_fmin {d.mel_fmin} must be below data_config.mel_fmax {d.mel_fmax}")
    if d.segment_length <= d.filter_length // 2:
        raise ConfigError(f"{source}: data_config.segment_length {d.segment_length} is too short for the features: it must "
                          f"exceed data_config.filter_length // 2 = {d.filter_length // 2} samples")


def _validate(config: Config, source: str) -> None:
    """Checks every family shares; the family's own ``validate`` checks its section against them."""
    d, t = config.data_config, config.train_config
    require_positive({
        "data_config.segment_length": d.segment_length,
        "data_config.sampling_rate": d.sampling_rate,
        "data_config.hop_length": d.hop_length,
        "data_config.filter_length": d.filter_length,
        "data_config.win_length": d.win_length,
        "data_config.n_mel_channels": d.n_mel_channels,
        "train_config.batch_size": t.batch_size,
        "train_config.iters_per_checkpoint": t.iters_per_checkpoint,
        "train_config.evaluation_clips": t.evaluation_clips,
        "train_config.sigma": t.sigma,
    }, source)
    require_non_negative({
        f"train_config.{key}": getattr(t, key)
        for key in ("learning_rate", "epochs", "max_iterations", "grad_clip_thresh", "keep_last", "iters_per_validation",
                    "iters_per_audio", "iters_per_evaluation", "max_nonfinite_steps", "num_workers")
    }, source)
    require_non_negative({"data_config.mel_fmin": d.mel_fmin, "data_config.min_crop_rms": d.min_crop_rms}, source)
    if d.win_length > d.filter_length:
        raise ConfigError(f"{source}: data_config.win_length {d.win_length} exceeds data_config.filter_length {d.filter_length}")
    if t.amp_dtype not in ("float16", "bfloat16"):
        raise ConfigError(f"{source}: train_config.amp_dtype must be 'float16' or 'bfloat16', got {t.amp_dtype!r}")
    if t.lr_step_size < 0 or not 0 < t.lr_gamma <= 1:
        raise ConfigError(f"{source}: train_config.lr_step_size must be >= 0 and lr_gamma in (0, 1]")
    config.family.validate(config, source)
    _validate_mel_channels(config, source)
    _validate_features(d, source)


def _validate_mel_channels(config: Config, source: str) -> None:
    """data_config.n_mel_channels is what the model section says the model takes (its ``mel_channels_key``)."""
    key = config.family.model_class.mel_channels_key
    channels = getattr(config.model_config, key)
    if config.data_config.n_mel_channels != channels:
        raise ConfigError(
            f"{source}: data_config.n_mel_channels {config.data_config.n_mel_channels} differs from "
            f"{config.model_section}.{key} {channels}: the features must be what the model takes"
        )


def config_from_dict(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Build and validate a :class:`Config` from NVIDIA-shaped nested data."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the config must be a mapping of sections, got {type(data).__name__}")
    family = family_for_sections(data, source)
    for key in data:
        if key not in SHARED_SECTIONS and key != family.section:
            known = ", ".join([*SHARED_SECTIONS, family.section])
            raise ConfigError(f"{source}: unknown section {key} (known sections: {known})")
    sections = {
        name: _build(cls, _resolve_aliases(name, data[name], source), name, source)
        for name, cls in SHARED_SECTIONS.items() if name in data
    }
    model_config = _build(family.config_class, data[family.section], family.section, source)
    config = Config(model_config=model_config, model_section=family.section, **sections)
    _validate(config, source)
    return config


def _read_file(path: str) -> Any:
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark (Windows editors) is skipped
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror or e}") from None
    try:
        if path.endswith((".yaml", ".yml")):
            return yaml.safe_load(text)
        return json.loads(text)
    except ValueError as e:  # json.JSONDecodeError and yaml.YAMLError's parse errors
        raise ConfigError(f"{path}: not valid {'YAML' if path.endswith(('.yaml', '.yml')) else 'JSON'}: {e}") from None
    except Exception as e:  # yaml.YAMLError does not derive from ValueError
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Config:
    """Load a JSON (``.json``) or YAML (``.yaml``/``.yml``) config file.

    ``overrides`` are ``section.key=value`` strings (``value`` parsed as YAML, so numbers,
    booleans and strings all work) applied before validation.
    """
    path = os.fspath(path)
    data = _read_file(path)
    if overrides:
        data = apply_overrides(data, overrides, path)
    return config_from_dict(data, path)


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def apply_overrides(data: Any, overrides: Sequence[str], source: str = "<config>") -> dict:
    """Return a copy of nested config ``data`` with ``section.key=value`` overrides applied."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the config must be a mapping of sections, got {type(data).__name__}")
    data = copy.deepcopy(dict(data))
    for item in overrides:
        dotted, sep, raw = item.partition("=")
        parts = dotted.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train_config.batch_size=4")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            node[parts[-1]] = raw
        if isinstance(node[parts[-1]], str) and _NUMBER.fullmatch(raw.strip()):
            node[parts[-1]] = float(raw)  # YAML 1.1 reads 1e-4 (no dot) as a string
    return data
