"""What every family's fast inference object shares: built once from frozen weights, refusing stale ones.

A fast inference object (``FastWaveGlow``, ``FastFloWaveNet``, ``FastWaveFlow``; what
``model.fast()`` returns) holds operators derived from a model's weights (folded, fused, inverted)
and computes what ``model.infer`` computes, faster. :class:`FastVocoder` is their base: it keeps
the model as ``.model``, answers every other attribute of the model interface from the model
(``hop_length``, ``sample_latent``, ``receptive_field``, ``default_sigma``, ``overlap_frames``,
``parameters``, ...), and records every parameter's (data_ptr, _version, dtype, device, shape). Once any of them changed (an optimizer step, load_state_dict, ``.to()``,
``.half()``, ``remove_weight_norm()``), ``infer`` raises :class:`StaleWeightsError`: build a new
object then. Edits through ``param.data`` bypass the version counter and go unnoticed.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import StaleWeightsError

__all__ = ["FastVocoder", "StaleWeightsError", "parameter_key", "tensor_key"]


def tensor_key(t: torch.Tensor) -> tuple:
    """Changes whenever ``t`` is replaced, updated in place, moved or cast.

    Inference tensors (made under ``torch.inference_mode``, e.g. a model cast there) keep no
    version counter; they cannot be updated in place outside inference mode, and in-place edits
    inside it go unnoticed, as edits through ``.data`` do.
    """
    version = -1 if t.is_inference() else t._version
    return (t.data_ptr(), version, t.dtype, t.device, tuple(t.shape))


def parameter_key(module: nn.Module) -> tuple:
    """Changes whenever any parameter of ``module`` is replaced, updated in place, moved or cast."""
    return tuple((name, *tensor_key(p)) for name, p in module.named_parameters())


class FastVocoder:
    """Base of the fast inference objects: the model interface, forwarded, and the staleness check.

    A subclass builds its operators in ``__init__`` (after calling this one) and implements
    :meth:`fast_infer`; ``infer`` (the contract of :meth:`waveglow.models.base.FlowVocoder.infer`)
    checks the weights are those it was built from, then calls it.
    """

    # The model interface answered by the model (the fast path computes the same function).
    FORWARDED = frozenset({
        "hop_length", "n_mel_channels", "latent_steps_per_frame", "latent_channels", "latent_draws", "sample_latent",
        "receptive_field", "overlap_frames", "default_sigma", "nll_constant", "silence_feature", "denoiser_applies",
        "config", "parameters",
    })

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.key = parameter_key(model)

    def __getattr__(self, name: str):
        if name in FastVocoder.FORWARDED:
            return getattr(self.__dict__["model"], name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def check_fresh(self) -> None:
        """Raise :class:`StaleWeightsError` if the model's weights changed since this object was built."""
        if parameter_key(self.model) != self.key:
            name = type(self).__name__
            raise StaleWeightsError(
                f"the model's weights changed after its {name} was built (an optimizer step, "
                f"load_state_dict, .to() or .half()): build a new {name}(model)"
            )

    @torch.no_grad()
    def infer(self, mel: torch.Tensor, sigma: float | None = None, *, z=None, generator=None, lengths=None) -> torch.Tensor:
        """``model.infer`` with the same arguments (sigma defaulting to the model's), computed the fast way."""
        self.check_fresh()
        sigma = self.default_sigma if sigma is None else sigma
        return self.fast_infer(mel, sigma, z=z, generator=generator, lengths=lengths)

    def fast_infer(self, mel: torch.Tensor, sigma: float, *, z, generator, lengths) -> torch.Tensor:
        raise NotImplementedError
