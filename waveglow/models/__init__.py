"""The flow vocoders: one subpackage per family, each model a :class:`FlowVocoder`.

Each family is one subpackage, the same shape for all: ``waveglow/models/waveglow/``,
``flowavenet/`` and ``waveflow/`` hold ``model.py`` (the :class:`FlowVocoder` subclass, with what
differs from the defaults), ``config.py`` (its section's dataclass and checks), ``loss.py``,
``readers.py`` (foreign checkpoint formats), ``fast.py`` (an exact faster inference object,
:class:`waveglow.models.fast.FastVocoder`, returned by the model's ``fast()``) and ``family.py``
(its :class:`~waveglow.family.ModelFamily` record, registered in :mod:`waveglow.registry`).
"""

from __future__ import annotations

from .base import FlowVocoder, ReceptiveField

__all__ = ["FlowVocoder", "ReceptiveField"]
