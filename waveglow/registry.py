"""The registry of model families: which flow vocoders the tools know, found by name, section or model.

Families shipped with the package are listed in ``_BUILT_IN`` and imported on first use. A family
shipped by another installed package registers through the entry-point group ``waveglow.families``
(the entry point's name is the family's name, its object the :class:`ModelFamily` record)::

    [project.entry-points."waveglow.families"]
    mytoy = "mytoy.family:FAMILY"

and code may register one at run time with :func:`register`. This module imports no family at
import time and nothing above the record, so every other module can use it.
"""

from __future__ import annotations

import importlib
import warnings
from importlib.metadata import entry_points
from typing import Any, Mapping

from torch import nn

from .errors import ConfigError
from .family import ModelFamily

__all__ = [
    "ModelFamily", "FAMILIES", "ENTRY_POINT_GROUP", "register", "family_names", "families", "family_named",
    "family_of", "family_for_sections", "unwrap_model", "discover_installed",
]

ENTRY_POINT_GROUP = "waveglow.families"
# name -> module defining the ``FAMILY`` record of a family shipped with the package, imported on first use.
_BUILT_IN: dict[str, str] = {
    "waveglow": "waveglow.models.waveglow.family",
    "flowavenet": "waveglow.models.flowavenet.family",
    "waveflow": "waveglow.models.waveflow.family",
}
FAMILIES: tuple[str, ...] = tuple(_BUILT_IN)  # the families shipped with the package
_order: list[str] = list(_BUILT_IN)  # every known family's name: built-in, installed, then registered
_registered: dict[str, ModelFamily] = {}
_installed: dict[str, Any] = {}  # name -> entry point of a family another package ships, loaded on first use


def discover_installed() -> None:
    """Look (again) for families that installed packages declare in the ``waveglow.families`` entry-point group."""
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name not in _order:
            _installed[point.name] = point
            _order.append(point.name)


def register(family: ModelFamily) -> ModelFamily:
    """Make ``family`` known to every tool (config loading, checkpoints, training, inference, export).

    Its ``name`` and ``section`` must be new. Returns the family, so a module can write
    ``FAMILY = register(ModelFamily(...))``.
    """
    for other in families():
        if family.name == other.name or family.section == other.section:
            if other is family:
                return family
            raise ValueError(f"a family named {other.name!r} with section {other.section!r} is registered already")
    _registered[family.name] = family
    _order.append(family.name)
    return family


def family_names() -> tuple[str, ...]:
    """Every known family's name, the built-in ones first."""
    return tuple(_order)


def families() -> list[ModelFamily]:
    """Every known family, WaveGlow first (an installed family that cannot be loaded is left out, with a warning)."""
    for name in list(_order):
        if name in _installed and name not in _registered:
            _load_installed(name)
    return [family_named(name) for name in _order]


def family_named(name: str) -> ModelFamily:
    if name in _installed and name not in _registered:
        _load_installed(name)
    if name not in _order:
        raise KeyError(f"unknown model family {name!r} (known: {', '.join(_order)})")
    if name not in _registered:
        _registered[name] = importlib.import_module(_BUILT_IN[name]).FAMILY
    return _registered[name]


def _load_installed(name: str) -> None:
    """Load an installed package's family; one that fails to load is dropped with a one-line warning."""
    point = _installed.pop(name)
    try:
        family = point.load()
    except Exception as e:  # a broken plugin must not stop the families that work
        problem = f"cannot be loaded ({type(e).__name__}: {e})"
    else:
        if isinstance(family, ModelFamily) and family.name == name:
            _registered[name] = family
            return
        problem = f"is not a ModelFamily named {name!r}"
    _order.remove(name)
    warnings.warn(f"{ENTRY_POINT_GROUP} entry point {name} = {point.value} {problem}: family left out", stacklevel=3)


def family_for_sections(data: Mapping, source: str) -> ModelFamily:
    """The family whose model section ``data`` holds: exactly one, else a one-line ConfigError."""
    found = [f for f in families() if f.section in data]
    if len(found) == 1:
        return found[0]
    sections = " or ".join(f.section for f in families())
    if not found:
        raise ConfigError(f"{source}: the model section is missing: the config must hold {sections}")
    raise ConfigError(f"{source}: two model sections ({', '.join(f.section for f in found)}): keep exactly one")


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DistributedDataParallel (``module``) and torch.compile (``_orig_mod``) wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel) or type(model).__name__ == "DataParallel":
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def family_of(model: Any) -> ModelFamily:
    """The family of a model (wrappers such as DDP, torch.compile and inference objects unwrapped)."""
    named = getattr(model, "family_name", None)  # a runtime of an exported file (OnnxVocoder) names its family
    if isinstance(named, str) and not isinstance(model, nn.Module):
        return family_named(named)
    model = getattr(model, "model", model) if not isinstance(model, nn.Module) else model
    model = unwrap_model(model)
    for family in families():
        if isinstance(model, family.model_class):
            return family
    raise TypeError(f"{type(model).__name__} is not a model of any registered family ({', '.join(_order)})")


discover_installed()
