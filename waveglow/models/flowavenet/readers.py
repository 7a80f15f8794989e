"""FloWaveNet's foreign checkpoints: ksw0306's training files and bare state dicts.

ksw0306's train.py saves ``torch.save({"state_dict", "optimizer", "scheduler", "global_step",
"global_epoch"})``, with a ``module.`` prefix on every key under DataParallel, and no config:
the architecture is read back from the tensors' shapes (:func:`infer_flowavenet_config`).
This module reads files only; :func:`~waveglow.models.flowavenet.model.build_flowavenet` builds
and checks a model from what it returns.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from ...formats import Checkpoint, strip_wrapper_prefixes
from ...errors import CheckpointError
from .config import DATA_DEFAULTS, FloWaveNetConfig

__all__ = ["KSW0306_KEYS", "read_foreign", "read_ksw0306", "is_flowavenet_state_dict", "infer_flowavenet_config"]


KSW0306_KEYS = frozenset({"state_dict", "optimizer", "scheduler", "global_step", "global_epoch"})
_MARKER = "blocks.0.flows.0.actnorm.loc"


def is_flowavenet_state_dict(mapping: Any) -> bool:
    """Whether ``mapping`` is a FloWaveNet state dict (tensor values, ksw0306's keys, any wrapper prefix)."""
    if not isinstance(mapping, Mapping) or not mapping:
        return False
    keys = [k for k in mapping if isinstance(k, str)]
    return len(keys) == len(mapping) and any(strip_wrapper_prefixes(k) == _MARKER for k in keys) and all(
        isinstance(v, torch.Tensor) for v in mapping.values()
    )


def _indices(state_dict: Mapping, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in state_dict for m in [pattern.match(k)] if m})


def _tensor(state_dict: Mapping, source: str, *keys: str) -> torch.Tensor:
    """The first of ``keys`` present (weight-normed or plain variants); CheckpointError naming the first."""
    for key in keys:
        if key in state_dict:
            return state_dict[key]
    raise CheckpointError(f"{source}: not a FloWaveNet state dict (missing {keys[0]})")


def infer_flowavenet_config(state_dict: Mapping[str, torch.Tensor], source: str = "<state_dict>") -> FloWaveNetConfig:
    """The architecture a (prefix-free) FloWaveNet state dict was built with, from its tensors' shapes."""
    blocks = _indices(state_dict, "blocks.")
    if not blocks:
        raise CheckpointError(f"{source}: not a FloWaveNet state dict (missing {_MARKER})")
    if blocks != list(range(len(blocks))):
        raise CheckpointError(f"{source}: FloWaveNet blocks {blocks} are not numbered 0..{len(blocks) - 1}")
    net = "blocks.0.flows.0.coupling.net."
    loc = _tensor(state_dict, source, _MARKER)
    cond = _tensor(state_dict, source, net + "res_blocks.0.filter_conv_c.weight_v", net + "res_blocks.0.filter_conv_c.weight")
    front = _tensor(state_dict, source, net + "front_conv.0.conv.weight_v", net + "front_conv.0.conv.weight")
    final = _tensor(state_dict, source, net + "final_conv.3.conv.weight")
    splits = [i for i in blocks if f"blocks.{i}.prior.front_conv.0.conv.bias" in state_dict]
    return FloWaveNetConfig(
        in_channel=loc.size(1) // 2,
        cin_channel=cond.size(1),
        n_block=len(blocks),
        n_flow=len(_indices(state_dict, "blocks.0.flows.")),
        n_layer=len(_indices(state_dict, net + "res_blocks.")),
        block_per_split=splits[0] + 1 if splits else len(blocks),
        affine=final.size(0) == loc.size(1),
        n_channels=front.size(0),
    )


def read_ksw0306(obj: Any, path: str) -> tuple[dict[str, torch.Tensor], FloWaveNetConfig, int]:
    """A loaded ksw0306 checkpoint (or bare FloWaveNet state dict) -> (state dict, config, iteration).

    The state dict comes back without DataParallel's ``module.`` prefix; the config is inferred
    from its shapes; the iteration is ``global_step`` (0 for a bare state dict).
    """
    if isinstance(obj, Mapping) and "state_dict" in obj and set(obj) <= KSW0306_KEYS:
        state_dict, iteration = obj["state_dict"], obj.get("global_step", 0)
    else:
        state_dict, iteration = obj, 0
    if not is_flowavenet_state_dict(state_dict):
        raise CheckpointError(f"{path}: not a FloWaveNet checkpoint (no {_MARKER} among its tensors)")
    if not isinstance(iteration, int):
        raise CheckpointError(f"{path}: global_step is {type(iteration).__name__}, not an integer")
    state_dict = {strip_wrapper_prefixes(k): v for k, v in state_dict.items()}
    return state_dict, infer_flowavenet_config(state_dict, path), iteration


def read_foreign(obj: Any, path: str):
    """A ksw0306 file or a bare FloWaveNet state dict -> Checkpoint; None for anything else."""
    candidate = obj.get("state_dict") if isinstance(obj, Mapping) and set(obj) <= KSW0306_KEYS else obj
    if not is_flowavenet_state_dict(candidate):
        return None
    state_dict, config, iteration = read_ksw0306(obj, path)
    kind = "ksw0306" if candidate is not obj else "state_dict"
    return Checkpoint(path=path, kind=kind, model_config=config.to_kwargs(), state_dict=state_dict, iteration=iteration,
                      family="flowavenet", data_config=dict(DATA_DEFAULTS))
