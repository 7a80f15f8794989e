"""Checkpoint I/O: our format for every model family, and foreign formats converted on load.

Our format is one ``torch.save`` file that ``torch.load(weights_only=True)`` reads::

    {"format": "waveglow", "format_version": 1, "family": "waveglow" | "flowavenet" | ...,
     "config": <NVIDIA-shaped config dict>, "state_dict": ..., "optimizer": ..., "scaler": ...,
     "scheduler": ..., "iteration": int, "learning_rate": float, "rng_state": {...}, ...extra}

(files written before families existed have no ``family`` and are WaveGlow). Each family reads
its own foreign files (the family record's ``read_foreign``, in the family's ``readers.py``: NVIDIA's and
DeepLearningExamples' for WaveGlow, ksw0306's for FloWaveNet); they are recognised by their
content, never by their name. Files that pickle whole modules (NVIDIA's ``glow.WaveGlow``) are
read with a restricted unpickler (:mod:`waveglow._unpickle`) that imports nothing from the file
and executes nothing.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ._unpickle import RefusedPickle, restricted_pickle_module
from .atomic import atomic_open
from .config import Config, DataConfig, config_from_dict
from .errors import CheckpointError, ConfigError, first_line
from .formats import FORMAT_NAME, FORMAT_VERSION, Checkpoint, load_state_dict_checked, strip_wrapper_prefixes
from .registry import families, family_named, family_names, family_of, unwrap_model

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointError",
    "Checkpoint",
    "save_checkpoint",
    "read_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_state_dict_checked",
    "strip_wrapper_prefixes",
    "build_model",
    "checkpoint_model",
    "checkpoint_config",
    "unwrap_model",
    "capture_rng_state",
    "restore_rng_state",
]


# ----------------------------------------------------------------------------------- saving


def default_config(model: nn.Module) -> Config:
    """A config recording ``model``'s architecture, with its family's default data settings."""
    family = family_of(model)
    data = dict(family.data_defaults)
    data.update(n_mel_channels=model.n_mel_channels, hop_length=model.hop_length)
    if hasattr(model, "filter_length"):
        data.update(filter_length=model.filter_length, win_length=min(model.filter_length, DataConfig.win_length))
    section = dataclasses.asdict(model.config)
    return config_from_dict({family.section: section, "data_config": data}, f"<{family.name} model>")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    config: Config | Mapping | None = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: Any = None,
    scheduler: Any = None,
    iteration: int = 0,
    learning_rate: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Write our checkpoint format atomically (temp file in the same folder, then rename).

    ``model`` may be wrapped in DDP or torch.compile; the unwrapped state dict is saved, with the
    model's :meth:`~waveglow.models.base.FlowVocoder.extra_state` (which :func:`load_model` gives
    back to the model). Without ``config`` the model's own architecture is recorded with default
    train/data settings.
    A failure never leaves a partial file at ``path``.
    """
    path = os.fspath(path)
    model = unwrap_model(model)
    if config is None:
        config = default_config(model)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "family": family_of(model).name,
        "config": config.to_dict() if isinstance(config, Config) else dict(config),
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "iteration": int(iteration),
        "learning_rate": learning_rate,
        "rng_state": capture_rng_state(),
        **model.extra_state(),
        **(extra or {}),
    }
    try:
        with atomic_open(path, "wb") as f:
            torch.save(payload, f)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot write checkpoint: {e.strerror or e}") from None
    return path


def capture_rng_state() -> dict:
    """The torch (CPU and CUDA), Python and numpy generator states, in weights_only-safe types."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping) -> None:
    """Undo :func:`capture_rng_state` (CUDA states only where CUDA is available)."""
    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


# ----------------------------------------------------------------------------------- loading


def _torch_load(path: str, map_location: Any) -> Any:
    """Load with weights_only=True, falling back to the restricted unpickler for pickled modules."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint: {e.strerror or e}") from None
    if not (magic.startswith(b"PK") or magic.startswith(b"\x80")):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint file (neither a zip archive nor a pickle)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        pass  # not weights-only (or not a pickle at all): the restricted loader decides
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {first_line(e)}") from None
    try:
        return torch.load(path, map_location=map_location, weights_only=False, pickle_module=restricted_pickle_module())
    except RefusedPickle as e:
        raise CheckpointError(f"{path}: {e}") from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {first_line(e)}") from None


def _parse(path: str, obj: Any) -> Checkpoint:
    """Recognise a loaded object's format and return it as a :class:`Checkpoint`."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT_NAME:
        return _parse_ours(path, obj)
    for family in families():
        checkpoint = family.read_foreign(obj, path)
        if checkpoint is not None:
            return checkpoint
    raise CheckpointError(
        f"{path}: not a checkpoint of any known model family ({', '.join(family_names())}): no model weights found "
        "(expected our format, an NVIDIA {'model': ...} file, a DeepLearningExamples {'state_dict': ...} file, "
        "a ksw0306 FloWaveNet file or a state dict)"
    )


def _parse_ours(path: str, obj: Mapping) -> Checkpoint:
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this software reads ({FORMAT_VERSION}); upgrade"
        )
    family = obj.get("family", "waveglow")
    if family not in family_names():
        raise CheckpointError(f"{path}: a {family!r} model, which this software does not know (known: {', '.join(family_names())})")
    try:
        config = config_from_dict(obj["config"], source=f"{path} (embedded config)")
    except (ConfigError, KeyError) as e:
        raise CheckpointError(f"{path}: unusable embedded config: {e}") from None
    known = {"format", "format_version", "family", "config", "state_dict", "optimizer", "scaler", "scheduler",
             "iteration", "learning_rate", "rng_state"}
    upgrade = config.family.model_class.upgrade_state_dict
    return Checkpoint(
        path=path,
        kind=FORMAT_NAME,
        family=config.family.name,
        model_config=config.model_config.to_kwargs(),
        state_dict=upgrade({strip_wrapper_prefixes(k): v for k, v in obj["state_dict"].items()}),
        config=config,
        model_section=config.family.section,
        optimizer=obj.get("optimizer"),
        scaler=obj.get("scaler"),
        scheduler=obj.get("scheduler"),
        iteration=int(obj.get("iteration") or 0),
        learning_rate=obj.get("learning_rate"),
        rng_state=obj.get("rng_state"),
        extra={k: v for k, v in obj.items() if k not in known},
    )


# ------------------------------------------------------------------------ building models


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Checkpoint:
    """Read any supported checkpoint into a :class:`Checkpoint` (state dict in our layout)."""
    path = os.fspath(path)
    return _parse(path, _torch_load(path, map_location))


def checkpoint_config(checkpoint: Checkpoint, config: Config | Mapping | None = None) -> Config:
    """The whole config to rebuild a checkpoint's model: its own, or one its tensors imply.

    ``config`` insists on an architecture: a :class:`Config`, or a model-section dict (or a
    mapping holding the family's section, as NVIDIA's config.json does).
    """
    if isinstance(config, Config):
        return config
    family = family_named(checkpoint.family)
    if checkpoint.config is not None and config is None:
        return checkpoint.config
    section = checkpoint.model_config
    if config is not None:
        section = dict(config.get(family.section, config))
    data = {**family.data_defaults, **checkpoint.data_config}
    if checkpoint.config is not None:
        data = dataclasses.asdict(checkpoint.config.data_config)
    data["n_mel_channels"] = section.get(family.model_class.mel_channels_key, data.get("n_mel_channels", DataConfig.n_mel_channels))
    try:
        return config_from_dict({family.section: section, "data_config": data}, f"{checkpoint.path} (model config)")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def build_model(config: Config, state_dict: Mapping[str, torch.Tensor] | None = None, source: str = "<model>") -> nn.Module:
    """A fresh model of ``config``'s family; with ``state_dict``, loaded into it, checked."""
    try:
        model = config.family.model_class.from_config(config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: cannot build {config.family.name} from its config: {e}") from None
    if state_dict is not None:
        load_state_dict_checked(model, state_dict, source)
    return model


def load_model(
    path: str | os.PathLike, map_location: Any = "cpu", config: Config | Mapping | None = None
) -> tuple[nn.Module, Config]:
    """(the model of any supported checkpoint file, on ``map_location``, in train mode; the config that built it).

    The architecture comes from the checkpoint (its stored config, else the tensor shapes);
    ``config`` (a Config or a model-section dict) insists on one, in which case a mismatching
    file raises :class:`CheckpointError` naming the key and both shapes.
    """
    return checkpoint_model(read_checkpoint(path, map_location), config)


def checkpoint_model(checkpoint: Checkpoint, config: Config | Mapping | None = None) -> tuple[nn.Module, Config]:
    """(the model a read checkpoint holds, its weights and extra state loaded, on their device; its config)."""
    config = checkpoint_config(checkpoint, config)
    model = build_model(config, checkpoint.state_dict, checkpoint.path)
    model.load_extra_state(checkpoint.extra)
    return model.to(next(iter(checkpoint.state_dict.values())).device), config


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu", config: Config | Mapping | None = None
) -> nn.Module:
    """Load a model of any family, in eval mode, from any supported checkpoint file (see :func:`load_model`)."""
    return load_model(path, map_location, config)[0].eval()
