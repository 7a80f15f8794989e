"""The checkpoint record every reader returns, and the state-dict helpers readers share.

:class:`Checkpoint` is what any supported file holds once read, in our key layout
(:mod:`waveglow.checkpoint` writes and reads the files). Families' readers (``readers.py``)
build it; nothing here imports a family or the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import nn

from .errors import CheckpointError

if TYPE_CHECKING:  # annotations only
    from .config import Config

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Checkpoint", "strip_wrapper_prefixes", "load_state_dict_checked"]

FORMAT_NAME = "waveglow"
FORMAT_VERSION = 1
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


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
    model_section: str = ""  # the family's config section; default "<family>_config"

    def __post_init__(self) -> None:
        self.model_section = self.model_section or f"{self.family}_config"

    def __getattr__(self, name: str) -> Any:
        """The model section by its own name, e.g. ``checkpoint.waveglow_config`` (constructor kwargs)."""
        if name.endswith("_config") and name == self.__dict__.get("model_section"):
            return self.model_config
        raise AttributeError(f"{self.__dict__.get('path')} has no {name} (it holds a {self.__dict__.get('family')} model)")

    @property
    def is_ours(self) -> bool:
        return self.kind == FORMAT_NAME


def strip_wrapper_prefixes(key: str) -> str:
    """A state-dict key without DistributedDataParallel's ``module.`` and torch.compile's ``_orig_mod.``."""
    while key.startswith(_WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(strict=True)``, with a one-line error naming the first mismatch."""
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state_dict:
            raise CheckpointError(f"{source}: missing key {key}; {_architecture_hint(expected, state_dict, type(model))}")
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{source}: {key} has shape {tuple(state_dict[key].shape)} in the checkpoint but "
                f"{tuple(tensor.shape)} in the model; {_architecture_hint(expected, state_dict, type(model))}"
            )
    unexpected = [k for k in state_dict if k not in expected]
    if unexpected:
        raise CheckpointError(f"{source}: unexpected key {unexpected[0]}; {_architecture_hint(expected, state_dict, type(model))}")
    model.load_state_dict(state_dict, strict=True)


def _architecture_hint(expected: Mapping, found: Mapping, model_class: type) -> str:
    try:
        a = _flatten(model_class.config_from_state_dict(found, ""))
        b = _flatten(model_class.config_from_state_dict(expected, ""))
    except CheckpointError:
        return f"the file does not hold a {model_class.__name__} of this layout"
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
