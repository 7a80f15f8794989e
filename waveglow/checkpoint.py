"""Checkpoint I/O: our format for every model family, and foreign formats converted on load.

Our format is one ``torch.save`` file that ``torch.load(weights_only=True)`` reads::

    {"format": "waveglow", "format_version": 1, "family": "waveglow" | "flowavenet" | ...,
     "config": <NVIDIA-shaped config dict>, "state_dict": ..., "optimizer": ..., "scaler": ...,
     "scheduler": ..., "iteration": int, "learning_rate": float, "rng_state": {...}, ...extra}

(files written before families existed have no ``family`` and are WaveGlow). Each family reads
its own foreign files (``ModelFamily.read_foreign``); they are recognised by their content,
never by their name. WaveGlow's, read by :func:`read_waveglow_foreign`:

- NVIDIA/waveglow training pickles ``{'model': <glow.WaveGlow>, ...}``, read with a restricted
  unpickler (:mod:`waveglow._unpickle`) that imports no ``glow`` and executes nothing;
- DeepLearningExamples ``{'state_dict', 'config', ...}`` with ``module.`` prefixes;
- bare state dicts;
- NVIDIA's older layouts: per-layer ``cond_layers``, separate ``res_layers``/``skip_layers``,
  and weights with weight norm already removed; all converted exactly to the current keys.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ._unpickle import PickledObject, RefusedPickle, restricted_pickle_module
from .config import Config, ConfigError, DataConfig, config_from_dict
from .errors import first_line

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointError",
    "Checkpoint",
    "save_checkpoint",
    "read_checkpoint",
    "load_checkpoint",
    "load_state_dict_checked",
    "convert_state_dict",
    "infer_waveglow_config",
    "read_waveglow_foreign",
    "build_model",
    "checkpoint_config",
    "unwrap_model",
    "capture_rng_state",
    "restore_rng_state",
]

FORMAT_NAME = "waveglow"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read, written or used; the message names the file."""


@dataclass
class Checkpoint:
    """What any supported checkpoint file holds, in our key layout."""

    path: str
    kind: str  # "waveglow" (our format), or the foreign format: "nvidia", "deeplearningexamples", "state_dict", ...
    model_config: dict  # the family's model section, as constructor keyword arguments
    state_dict: dict[str, torch.Tensor]
    config: Config | None = None  # the full config, in our own format only
    optimizer: dict | None = None
    scaler: dict | None = None
    iteration: int = 0
    learning_rate: float | None = None
    rng_state: dict | None = None
    extra: dict = field(default_factory=dict)
    family: str = "waveglow"
    scheduler: dict | None = None
    data_config: dict = field(default_factory=dict)  # data_config keys a foreign file implies (e.g. hop_length)

    @property
    def waveglow_config(self) -> dict:
        if self.family != "waveglow":
            raise AttributeError(f"{self.path} holds a {self.family} model, not a WaveGlow")
        return self.model_config

    @property
    def is_ours(self) -> bool:
        return self.kind == FORMAT_NAME


# ----------------------------------------------------------------------------------- saving


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DistributedDataParallel (``module``) and torch.compile (``_orig_mod``) wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel) or type(model).__name__ == "DataParallel":
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def default_config(model: nn.Module) -> Config:
    """A config recording ``model``'s architecture, with its family's default data settings."""
    from .models import family_of

    family = family_of(model)
    data = dict(family.data_defaults)
    data.update(n_mel_channels=model.n_mel_channels, hop_length=model.hop_length)
    if hasattr(model, "filter_length"):
        data.update(filter_length=model.filter_length, win_length=min(model.filter_length, DataConfig.win_length))
    section = dataclasses.asdict(family.model_config(model))
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

    ``model`` may be wrapped in DDP or torch.compile; the unwrapped state dict is saved. Without
    ``config`` the model's own architecture is recorded with default train/data settings.
    A failure never leaves a partial file at ``path``.
    """
    path = os.fspath(path)
    model = unwrap_model(model)
    from .models import family_of

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
        **(extra or {}),
    }
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as e:
        raise CheckpointError(f"{path}: cannot write checkpoint: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise CheckpointError(f"{path}: cannot write checkpoint: {e.strerror or e}") from None
        raise
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


def _pickled_module_state(obj: PickledObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """Parameters and buffers of a pickled nn.Module tree, keyed like ``state_dict()``."""
    state = {}
    for attr in ("_parameters", "_buffers"):
        for name, value in (getattr(obj, attr, None) or {}).items():
            if isinstance(value, torch.Tensor):
                state[prefix + name] = value.detach()
    for name, child in (getattr(obj, "_modules", None) or {}).items():
        if child is not None:
            state.update(_pickled_module_state(child, f"{prefix}{name}."))
    return state


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and any(
        isinstance(k, str) and k.endswith("upsample.weight") for k in obj
    )


def _parse(path: str, obj: Any) -> Checkpoint:
    """Recognise a loaded object's format and return it as a :class:`Checkpoint`."""
    from .models import FAMILIES, families

    if isinstance(obj, Mapping) and obj.get("format") == FORMAT_NAME:
        return _parse_ours(path, obj)
    for family in families():
        checkpoint = family.read_foreign(obj, path)
        if checkpoint is not None:
            return checkpoint
    raise CheckpointError(
        f"{path}: not a checkpoint of any known model family ({', '.join(FAMILIES)}): no model weights found "
        "(expected our format, an NVIDIA {'model': ...} file, a DeepLearningExamples {'state_dict': ...} file, "
        "a ksw0306 FloWaveNet file or a state dict)"
    )


def read_waveglow_foreign(obj: Any, path: str) -> Checkpoint | None:
    """NVIDIA's pickles, DeepLearningExamples' files and bare WaveGlow state dicts; None for anything else."""
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), PickledObject):
        return _from_state_dict(path, "nvidia", _pickled_module_state(obj["model"]), None, obj)
    if isinstance(obj, Mapping) and _is_state_dict(obj.get("model")):
        return _from_state_dict(path, "nvidia", obj["model"], None, obj)
    if isinstance(obj, Mapping) and _is_state_dict(obj.get("state_dict")):
        return _from_state_dict(path, "deeplearningexamples", obj["state_dict"], obj.get("config"), obj)
    if _is_state_dict(obj):
        return _from_state_dict(path, "state_dict", obj, None, {})
    return None


def _parse_ours(path: str, obj: Mapping) -> Checkpoint:
    from .models import FAMILIES

    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this software reads ({FORMAT_VERSION}); upgrade"
        )
    family = obj.get("family", "waveglow")
    if family not in FAMILIES:
        raise CheckpointError(f"{path}: a {family!r} model, which this software does not know (known: {', '.join(FAMILIES)})")
    try:
        config = config_from_dict(obj["config"], source=f"{path} (embedded config)")
    except (ConfigError, KeyError) as e:
        raise CheckpointError(f"{path}: unusable embedded config: {e}") from None
    known = {"format", "format_version", "family", "config", "state_dict", "optimizer", "scaler", "scheduler",
             "iteration", "learning_rate", "rng_state"}
    return Checkpoint(
        path=path,
        kind=FORMAT_NAME,
        family=config.family.name,
        model_config=config.model_config.to_kwargs(),
        state_dict=convert_state_dict(obj["state_dict"]),
        config=config,
        optimizer=obj.get("optimizer"),
        scaler=obj.get("scaler"),
        scheduler=obj.get("scheduler"),
        iteration=int(obj.get("iteration") or 0),
        learning_rate=obj.get("learning_rate"),
        rng_state=obj.get("rng_state"),
        extra={k: v for k, v in obj.items() if k not in known},
    )


def _from_state_dict(path: str, kind: str, state_dict: Mapping, stored_config: Any, obj: Mapping) -> Checkpoint:
    state_dict = convert_state_dict(state_dict)
    waveglow_config = _stored_waveglow_config(stored_config)
    if waveglow_config is None:
        waveglow_config = infer_waveglow_config(state_dict, path)
    iteration = obj.get("iteration", obj.get("epoch", 0))
    kernel = state_dict["upsample.weight"].shape[2]
    return Checkpoint(
        path=path,
        kind=kind,
        model_config=waveglow_config,
        state_dict=state_dict,
        optimizer=obj.get("optimizer") if isinstance(obj.get("optimizer"), Mapping) else None,
        iteration=iteration if isinstance(iteration, int) else 0,
        learning_rate=obj.get("learning_rate"),
        # the reference's upsampler steps a quarter of its kernel (256 of 1024)
        data_config={"n_mel_channels": waveglow_config["n_mel_channels"], "filter_length": kernel,
                     "win_length": min(kernel, DataConfig.win_length), "hop_length": kernel // 4},
    )


def _stored_waveglow_config(stored: Any) -> dict | None:
    """A waveglow_config stored in a foreign file (DLE keeps the constructor kwargs)."""
    if not isinstance(stored, Mapping):
        return None
    stored = stored.get("waveglow_config", stored)
    keys = ("n_mel_channels", "n_flows", "n_group", "n_early_every", "n_early_size")
    if not isinstance(stored, Mapping) or not all(k in stored for k in keys) or "WN_config" not in stored:
        return None
    wn = stored["WN_config"]
    return {**{k: stored[k] for k in keys}, "WN_config": {k: wn[k] for k in ("n_layers", "n_channels", "kernel_size")}}


def infer_waveglow_config(state_dict: Mapping[str, torch.Tensor], source: str = "<state_dict>") -> dict:
    """Recover ``waveglow_config`` from tensor shapes of a state dict in our key layout."""
    for key in ("upsample.weight", "convinv.0.conv.weight", "WN.0.start.weight_v", "WN.0.in_layers.0.weight_v"):
        if key not in state_dict:
            raise CheckpointError(f"{source}: not a WaveGlow state dict (missing {key})")
    channels = []
    while f"convinv.{len(channels)}.conv.weight" in state_dict:
        channels.append(state_dict[f"convinv.{len(channels)}.conv.weight"].shape[0])
    drops = [k for k in range(1, len(channels)) if channels[k] < channels[k - 1]]
    n_layers = 0
    while f"WN.0.in_layers.{n_layers}.weight_v" in state_dict:
        n_layers += 1
    return {
        "n_mel_channels": state_dict["upsample.weight"].shape[0],
        "n_flows": len(channels),
        "n_group": channels[0],
        "n_early_every": drops[0] if drops else len(channels),
        "n_early_size": channels[drops[0] - 1] - channels[drops[0]] if drops else 2,
        "WN_config": {
            "n_layers": n_layers,
            "n_channels": state_dict["WN.0.start.weight_v"].shape[0],
            "kernel_size": state_dict["WN.0.in_layers.0.weight_v"].shape[2],
        },
    }


# ------------------------------------------------------------------------ layout conversion

_PREFIXES = ("module.", "_orig_mod.")
_WEIGHT_NORMED = re.compile(r"^(WN\.\d+\.(?:start|cond_layer|(?:in_layers|res_skip_layers|cond_layers|res_layers|skip_layers)\.\d+))\.weight$")


def convert_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Any known layout -> ours: strip wrapper prefixes, restore weight_g/weight_v, fuse old layers.

    Every step is exact: weight-norm parameters concatenate along the output channel, and a
    plain weight w becomes (g = ||w||, v = w).
    """
    converted = {_strip_prefixes(k): v for k, v in state_dict.items()}
    converted = _split_weight_norm(converted)
    converted = _fuse_res_skip_layers(converted)
    return _fuse_cond_layers(converted)


def _strip_prefixes(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix) :], True
    return key


def _split_weight_norm(state_dict: dict) -> dict:
    out = {}
    for key, value in state_dict.items():
        match = _WEIGHT_NORMED.match(key)
        if match:
            out[f"{match.group(1)}.weight_g"] = value.flatten(1).norm(dim=1).view(-1, 1, 1).to(value.dtype)
            out[f"{match.group(1)}.weight_v"] = value
        else:
            out[key] = value
    return out


def _layer_indices(state_dict: Mapping, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in state_dict for m in [pattern.match(k)] if m})


def _flow_indices(state_dict: Mapping, part: str) -> list[int]:
    pattern = re.compile(r"^WN\.(\d+)\." + re.escape(part) + r"\.")
    return sorted({int(m.group(1)) for k in state_dict for m in [pattern.match(k)] if m})


def _fuse_cond_layers(state_dict: dict) -> dict:
    """Per-layer ``cond_layers.i`` (before 2019-08, and DLE) -> one ``cond_layer``, in layer order."""
    for k in _flow_indices(state_dict, "cond_layers"):
        prefix = f"WN.{k}.cond_layers."
        layers = _layer_indices(state_dict, prefix)
        for param in ("bias", "weight_g", "weight_v"):
            parts = [state_dict.pop(f"{prefix}{i}.{param}") for i in layers]
            state_dict[f"WN.{k}.cond_layer.{param}"] = torch.cat(parts, 0)
    return state_dict


def _fuse_res_skip_layers(state_dict: dict) -> dict:
    """Separate ``res_layers.i`` and ``skip_layers.i`` (before 2018-11) -> ``res_skip_layers.i``.

    The residual half comes first; the last layer has no residual part.
    """
    for k in _flow_indices(state_dict, "skip_layers"):
        res_prefix, skip_prefix = f"WN.{k}.res_layers.", f"WN.{k}.skip_layers."
        res_layers = set(_layer_indices(state_dict, res_prefix))
        for i in _layer_indices(state_dict, skip_prefix):
            for param in ("bias", "weight_g", "weight_v"):
                skip = state_dict.pop(f"{skip_prefix}{i}.{param}")
                parts = [state_dict.pop(f"{res_prefix}{i}.{param}"), skip] if i in res_layers else [skip]
                state_dict[f"WN.{k}.res_skip_layers.{i}.{param}"] = torch.cat(parts, 0)
    return state_dict


# ------------------------------------------------------------------------ building models


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Checkpoint:
    """Read any supported checkpoint into a :class:`Checkpoint` (state dict in our layout)."""
    path = os.fspath(path)
    return _parse(path, _torch_load(path, map_location))


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(strict=True)``, with a one-line error naming the first mismatch."""
    from .models import family_of

    family = family_of(model)
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state_dict:
            raise CheckpointError(f"{source}: missing key {key}; {_architecture_hint(expected, state_dict, family)}")
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{source}: {key} has shape {tuple(state_dict[key].shape)} in the checkpoint but "
                f"{tuple(tensor.shape)} in the model; {_architecture_hint(expected, state_dict, family)}"
            )
    unexpected = [k for k in state_dict if k not in expected]
    if unexpected:
        raise CheckpointError(f"{source}: unexpected key {unexpected[0]}; {_architecture_hint(expected, state_dict, family)}")
    model.load_state_dict(state_dict, strict=True)


def _architecture_hint(expected: Mapping, found: Mapping, family=None) -> str:
    from .models import family_named

    family = family or family_named("waveglow")
    try:
        a, b = _flatten(family.infer_config(found, "")), _flatten(family.infer_config(expected, ""))
    except CheckpointError:
        return f"the file does not hold a {family.name} of this layout"
    diffs = [f"{k} {a[k]} vs {b[k]}" for k in a if k in b and a[k] != b[k]]
    if not diffs:
        return "the file is incomplete (truncated or edited?): its other tensors fit this architecture"
    return "likely cause: checkpoint vs config " + ", ".join(diffs) + " (use the config the checkpoint was trained with)"


def _flatten(config: Mapping, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def checkpoint_config(checkpoint: Checkpoint, config: Config | Mapping | None = None) -> Config:
    """The whole config to rebuild a checkpoint's model: its own, or one its tensors imply.

    ``config`` insists on an architecture: a :class:`Config`, or a model-section dict.
    """
    from .models import family_named

    if isinstance(config, Config):
        return config
    family = family_named(checkpoint.family)
    if checkpoint.config is not None and config is None:
        return checkpoint.config
    section = checkpoint.model_config
    if config is not None:
        section = (_stored_waveglow_config(config) if family.name == "waveglow" else None) or dict(config)
    data = {**family.data_defaults, **checkpoint.data_config}
    if checkpoint.config is not None:
        data = dataclasses.asdict(checkpoint.config.data_config)
    data["n_mel_channels"] = section.get("n_mel_channels", section.get("cin_channel", data.get("n_mel_channels", 80)))
    try:
        return config_from_dict({family.section: section, "data_config": data}, f"{checkpoint.path} (model config)")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def build_model(config: Config, state_dict: Mapping[str, torch.Tensor] | None = None, source: str = "<model>") -> nn.Module:
    """A fresh model of ``config``'s family; with ``state_dict``, loaded into it, checked."""
    try:
        model = config.family.build(config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: cannot build {config.family.name} from its config: {e}") from None
    if state_dict is not None:
        load_state_dict_checked(model, state_dict, source)
    return model


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu", config: Config | Mapping | None = None
) -> nn.Module:
    """Load a model of any family, in eval mode, from any supported checkpoint file.

    The architecture comes from the checkpoint (its stored config, else the tensor shapes);
    pass ``config`` (a Config or a model-section dict) to insist on one, in which case a
    mismatching file raises :class:`CheckpointError` naming the key and both shapes.
    """
    checkpoint = read_checkpoint(path, map_location)
    config = checkpoint_config(checkpoint, config)
    model = build_model(config, checkpoint.state_dict, checkpoint.path)
    if config.family.restore_extra is not None:
        config.family.restore_extra(model, checkpoint)
    return model.to(next(iter(checkpoint.state_dict.values())).device).eval()
