"""WaveGlow's foreign checkpoints: NVIDIA's and DeepLearningExamples' files, read into our key layout.

Recognised by their content, never by their name (:func:`read_foreign`):

- NVIDIA/waveglow training pickles ``{'model': <glow.WaveGlow>, ...}``, read with a restricted
  unpickler (:mod:`waveglow._unpickle`) that imports no ``glow`` and executes nothing;
- DeepLearningExamples ``{'state_dict', 'config', ...}`` with ``module.`` prefixes;
- bare state dicts;
- NVIDIA's older layouts: per-layer ``cond_layers``, separate ``res_layers``/``skip_layers``,
  and weights with weight norm already removed; all converted exactly to the current keys
  (:func:`convert_state_dict`).

Without a stored config the architecture is read back from the tensors' shapes
(:func:`infer_waveglow_config`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from ..._unpickle import PickledObject
from ...formats import Checkpoint, strip_wrapper_prefixes
from ...errors import CheckpointError

__all__ = ["read_foreign", "convert_state_dict", "infer_waveglow_config", "stored_waveglow_config"]

WIN_LENGTH = 1024  # the reference's STFT window (data_config's default)


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


def read_foreign(obj: Any, path: str) -> Checkpoint | None:
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


def _from_state_dict(path: str, kind: str, state_dict: Mapping, stored_config: Any, obj: Mapping) -> Checkpoint:
    state_dict = convert_state_dict(state_dict)
    waveglow_config = stored_waveglow_config(stored_config)
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
                     "win_length": min(kernel, WIN_LENGTH), "hop_length": kernel // 4},
    )


def stored_waveglow_config(stored: Any) -> dict | None:
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

_WEIGHT_NORMED = re.compile(r"^(WN\.\d+\.(?:start|cond_layer|(?:in_layers|res_skip_layers|cond_layers|res_layers|skip_layers)\.\d+))\.weight$")


def convert_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Any known layout -> ours: strip wrapper prefixes, restore weight_g/weight_v, fuse old layers.

    Every step is exact: weight-norm parameters concatenate along the output channel, and a
    plain weight w becomes (g = ||w||, v = w).
    """
    converted = {strip_wrapper_prefixes(k): v for k, v in state_dict.items()}
    converted = _split_weight_norm(converted)
    converted = _fuse_res_skip_layers(converted)
    return _fuse_cond_layers(converted)


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
