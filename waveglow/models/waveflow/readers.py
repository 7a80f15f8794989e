"""WaveFlow's and NanoFlow's foreign checkpoints: L0SG's training files and bare state dicts.

L0SG's train.py saves ``torch.save({"model", "iteration", "optimizer", "scheduler",
"learning_rate"})`` with "model" a plain state dict (no ``module.`` prefix as saved, though its
loader strips one), and no config: the architecture is read back from the tensors' shapes
(:func:`infer_waveflow_config`). NanoFlow files written after an in-training sample also hold
a stale ``h_cache`` tensor (the flow embedding's cached gate terms), which every loader drops.
Neither ``n_height`` nor ``n_layer_per_cycle`` shows in any shape, nor how often nanoflow_naive's
one flow runs: they take the values of L0SG's configs (16, 1 and 8).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from ...formats import Checkpoint, strip_wrapper_prefixes
from ...errors import CheckpointError
from .config import WaveFlowConfig

__all__ = ["L0SG_KEYS", "read_foreign", "read_l0sg", "is_waveflow_state_dict", "infer_waveflow_config"]

L0SG_KEYS = frozenset({"model", "iteration", "optimizer", "scheduler", "learning_rate"})
NAIVE_N_FLOW = 8
STALE_KEYS = ("h_cache",)  # NanoFlow's cached embedding terms, registered by L0SG's in-training sample
# the front conv of the first WaveNet, by coupling type
_MARKERS = {
    "waveflow": "flows.0.coupling.net.front_conv.0.conv.bias",
    "nanoflow_naive": "flow.coupling.net.front_conv.0.conv.bias",
    "estimator": "estimator.net.front_conv.0.conv.bias",
}


def _coupling_type(keys) -> str | None:
    keys = set(keys)
    if _MARKERS["waveflow"] in keys:
        return "waveflow"
    if _MARKERS["nanoflow_naive"] in keys:
        return "nanoflow_naive"
    if _MARKERS["estimator"] in keys:
        return "nanoflow" if "flow_embedding.weight" in keys or "flow_embedding.weight_v" in keys else "nanoflow_decomp"
    return None


def is_waveflow_state_dict(mapping: Any) -> bool:
    """Whether ``mapping`` is a WaveFlow/NanoFlow state dict (tensor values, L0SG's keys, any wrapper prefix)."""
    if not isinstance(mapping, Mapping) or not mapping or not all(isinstance(k, str) for k in mapping):
        return False
    keys = [strip_wrapper_prefixes(k) for k in mapping]
    has_upsampler = "upsample_conv.0.weight_v" in keys or "upsample_conv.0.weight" in keys
    return has_upsampler and _coupling_type(keys) is not None and all(isinstance(v, torch.Tensor) for v in mapping.values())


def _indices(state_dict: Mapping, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in state_dict for m in [pattern.match(k)] if m})


def _first(state_dict: Mapping, source: str, *keys: str) -> torch.Tensor:
    for key in keys:
        if key in state_dict:
            return state_dict[key]
    raise CheckpointError(f"{source}: not a WaveFlow state dict (missing {keys[0]})")


def infer_waveflow_config(state_dict: Mapping[str, torch.Tensor], source: str = "<state_dict>") -> WaveFlowConfig:
    """The architecture a (prefix-free) WaveFlow/NanoFlow state dict was built with, from its tensors' shapes."""
    coupling_type = _coupling_type(state_dict)
    if coupling_type is None:
        raise CheckpointError(f"{source}: not a WaveFlow or NanoFlow state dict (no {_MARKERS['waveflow']} or the like)")
    net = {"waveflow": "flows.0.coupling.net.", "nanoflow_naive": "flow.coupling.net."}.get(coupling_type, "estimator.net.")
    front = _first(state_dict, source, net + "front_conv.0.conv.bias")
    cond = _first(state_dict, source, net + "res_blocks.0.filter_gate_conv_c.weight_v", net + "res_blocks.0.filter_gate_conv_c.weight")
    # nanoflow_naive's one flow runs n_flow times, which no shape shows: L0SG's config runs it 8 times
    n_flow = NAIVE_N_FLOW if coupling_type == "nanoflow_naive" else len(_indices(state_dict, "flows."))
    kwargs = dict(
        cin_channels=cond.size(1), res_channels=front.size(0), n_layer=len(_indices(state_dict, net + "res_blocks.")),
        n_flow=n_flow, coupling_type=coupling_type,
        use_weightnorm_embed="flow_embedding.weight_v" in state_dict,
    )
    if coupling_type == "nanoflow":
        kwargs["size_flow_embed"] = _first(state_dict, source, "flow_embedding.weight", "flow_embedding.weight_v").size(1)
    return WaveFlowConfig(**kwargs)


def read_l0sg(obj: Any, path: str) -> tuple[dict[str, torch.Tensor], int]:
    """A loaded L0SG checkpoint (or bare state dict) -> (state dict, iteration).

    The state dict comes back without wrapper prefixes and without the stale ``h_cache``.
    """
    if isinstance(obj, Mapping) and "model" in obj and set(obj) <= L0SG_KEYS:
        state_dict, iteration = obj["model"], obj.get("iteration", 0)
    else:
        state_dict, iteration = obj, 0
    if not is_waveflow_state_dict(state_dict):
        raise CheckpointError(f"{path}: not a WaveFlow or NanoFlow checkpoint")
    if not isinstance(iteration, int):
        raise CheckpointError(f"{path}: iteration is {type(iteration).__name__}, not an integer")
    state_dict = {strip_wrapper_prefixes(k): v for k, v in state_dict.items()}
    for key in STALE_KEYS:
        state_dict.pop(key, None)
    return state_dict, iteration


def read_foreign(obj: Any, path: str):
    """An L0SG file or a bare WaveFlow/NanoFlow state dict -> Checkpoint; None for anything else."""
    candidate = obj.get("model") if isinstance(obj, Mapping) and "model" in obj and set(obj) <= L0SG_KEYS else obj
    if not is_waveflow_state_dict(candidate):
        return None
    state_dict, iteration = read_l0sg(obj, path)
    config = infer_waveflow_config(state_dict, path)
    lr = obj.get("learning_rate") if candidate is not obj else None
    return Checkpoint(
        path=path, kind="l0sg" if candidate is not obj else "state_dict", model_config=config.to_kwargs(),
        state_dict=state_dict, iteration=iteration, family="waveflow",
        learning_rate=float(lr) if isinstance(lr, (int, float)) else None,
    )
