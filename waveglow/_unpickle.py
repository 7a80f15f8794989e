"""A restricted unpickler for foreign checkpoints that pickle whole modules.

NVIDIA's train.py saves the whole ``glow.WaveGlow`` object. Loading that with plain pickle
needs an importable ``glow`` module and runs whatever callables the file names. This unpickler
instead rebuilds tensors, plain containers and numpy arrays only; every class the file names
from a module tree (``glow.*``, ``torch.nn.*``) becomes an inert :class:`PickledObject` that
just holds its attributes, and any other callable (``os.system``, ``builtins.eval``, ...)
stops the load with :class:`RefusedPickle`.

Used as ``torch.load(f, pickle_module=restricted_pickle_module(), weights_only=False)``, so
torch's own storage handling (zip and legacy formats, ``map_location``) still applies.
"""

from __future__ import annotations

import _compat_pickle
import collections
import copyreg
import pickle
import types
from typing import Any

__all__ = ["PickledObject", "RefusedPickle", "restricted_pickle_module"]


class RefusedPickle(pickle.UnpicklingError):
    """The file asks for a callable that a checkpoint never needs."""


class PickledObject:
    """Stands in for an object of a class named in the file; holds its state and runs nothing."""

    pickled_class = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "PickledObject":
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slot state)
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_pickled_state"] = state

    def __repr__(self) -> str:
        return f"<pickled {self.pickled_class}>"


def _no_backend() -> None:
    """Old torch modules pickled their THNN backend as a call; it carries no data."""
    return None


# Module trees whose classes become PickledObject stand-ins (never imported).
_STAND_IN_MODULES = ("glow", "__main__", "torch.nn.modules", "torch.nn.utils.weight_norm", "torch.nn.utils.parametriz")

_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("torch.nn.backends.thnn", "_get_thnn_function_backend"): _no_backend,
}


def _allowed_torch(module: str, name: str) -> Any:
    import torch

    if module == "torch._utils" and name in (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
    ):
        return getattr(torch._utils, name)
    if module == "torch.nn.parameter" and name == "Parameter":
        return torch.nn.Parameter
    if module == "torch" and name == "Size":
        return torch.Size
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    return None


def _allowed_numpy(module: str, name: str) -> Any:
    if module not in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
        return None
    import numpy

    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(numpy, name)
    if name in ("_reconstruct", "scalar"):
        try:
            from numpy._core import multiarray
        except ImportError:  # numpy < 2
            from numpy.core import multiarray
        return getattr(multiarray, name)
    return None


def _stand_in(module: str, name: str) -> type | None:
    in_tree = any(module == root or module.startswith(root + ".") for root in _STAND_IN_MODULES)
    if not in_tree or not name[:1].isupper():
        return None
    return type(name, (PickledObject,), {"pickled_class": f"{module}.{name}", "__module__": __name__})


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Protocol 2 files name Python 2 modules (__builtin__, copy_reg); map them as pickle does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _ALLOWED.get((module, name))
        for lookup in (_allowed_torch, _allowed_numpy, _stand_in):
            if found is None:
                found = lookup(module, name)
        if found is None:
            raise RefusedPickle(
                f"refused to unpickle {module}.{name}: a checkpoint never needs it, and running it could "
                "execute code from the file"
            )
        return found


def _load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


def restricted_pickle_module() -> types.ModuleType:
    """A module object with ``Unpickler`` and ``load``, for ``torch.load(pickle_module=...)``."""
    module = types.ModuleType("waveglow_restricted_pickle")
    module.Unpickler = _RestrictedUnpickler
    module.load = _load
    module.__dict__["UnpicklingError"] = pickle.UnpicklingError
    return module
