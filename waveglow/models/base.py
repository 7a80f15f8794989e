"""The model interface every flow vocoder implements, with its defaults: :class:`FlowVocoder`.

The shared tools (training, synthesis, checkpoints, export, streaming, the commands) ask the
model, never its class or its name. A family subclasses :class:`FlowVocoder` and overrides what
differs from the defaults; it must write ``__init__`` (setting ``config``, ``hop_length``,
``n_mel_channels``, ``latent_steps_per_frame``), ``forward``, ``encode``, ``infer``,
``receptive_field``, and one of ``latent_draws`` (the latent's channels) or ``sample_latent``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..errors import CheckpointError

__all__ = ["FlowVocoder", "ReceptiveField", "redraw"]


@dataclass(frozen=True)
class ReceptiveField:
    """How far along time a model's output depends on its inputs, in mel frames: what streaming asks.

    A model reports it from its own config (``model.receptive_field()``). The promise: ``infer`` on
    the frames [s, e) of an utterance of F frames, with the latent sliced alike, gives frame f's
    audio (samples [hop f, hop (f + 1))) exactly as ``infer`` on the whole utterance does, whenever
    s <= f - past or s == 0, e >= f + 1 + future or e == F, s is a multiple of ``alignment`` and
    e - s is a multiple of it or e == F. The window's zero padding then never reaches frame f.
    """

    past: int  # frames of context needed before a frame
    future: int  # frames needed after it: the lookahead of an exact stream
    alignment: int = 1  # window starts and lengths in multiples of this many frames (time squeezes)


class FlowVocoder(nn.Module):
    """A normalizing-flow vocoder: mel (B, n_mel, F) <-> audio (B, hop F) through a Gaussian latent.

    Instance attributes a subclass sets: ``config`` (its config section's dataclass, whose
    ``to_kwargs()`` rebuilds it), ``hop_length`` (audio samples per mel frame),
    ``n_mel_channels`` and ``latent_steps_per_frame`` (latent time steps per mel frame).
    """

    config: Any
    hop_length: int
    n_mel_channels: int
    latent_steps_per_frame: int

    default_sigma: float = 1.0  # inference's default temperature
    # What the loss (per sample, train sigma 1) adds to -log N(encode(audio); 0, 1) - log|det d encode / d audio|:
    # 0.5 log(2 pi) when it is the full negative log-likelihood, 0 when it leaves the Gaussian constant out.
    nll_constant: float = 0.0
    silence_feature: float = math.log(1e-5)  # the feature value of silence, for padding batches (Tacotron 2's floor)
    denoiser_applies: bool = True  # whether the denoiser's bias removal (tuned on sigma-0 output) suits the model
    mel_channels_key: str = "n_mel_channels"  # the config-section key holding the mel channel count

    # ------------------------------------------------------------------ building and files

    @classmethod
    def from_config(cls, config: Any) -> "FlowVocoder":
        """A fresh model for a whole :class:`~waveglow.config.Config` (its model section's ``to_kwargs()``)."""
        return cls(**config.model_config.to_kwargs())

    @classmethod
    def config_from_state_dict(cls, state_dict: Mapping[str, torch.Tensor], source: str) -> dict:
        """The model section (constructor keyword arguments) a state dict's shapes imply."""
        raise CheckpointError(f"{source}: {cls.__name__} cannot tell its architecture from tensor shapes")

    @classmethod
    def upgrade_state_dict(cls, state_dict: Mapping[str, torch.Tensor]) -> dict:
        """Older key layouts of this project's own files -> the current one (default: unchanged)."""
        return dict(state_dict)

    def extra_state(self) -> dict:
        """State beyond the state dict, saved beside it in checkpoints (plain Python values)."""
        return {}

    def load_extra_state(self, extra: Mapping[str, Any]) -> None:
        """Undo :meth:`extra_state`; ``extra`` is empty for files from elsewhere."""

    # ------------------------------------------------------------------ the flow

    def encode(self, mel: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """The latent of the audio, in ``infer``'s layout, differentiable:
        ``infer(mel, z=encode(mel, audio))`` returns the audio."""
        raise NotImplementedError(f"{type(self).__name__}.encode")

    def infer(self, mel: torch.Tensor, sigma: float = 1.0, *, z: torch.Tensor | None = None,
              generator: torch.Generator | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """mel (B, n_mel, F) -> audio (B, hop * F), in the model's dtype, without gradients.

        Without ``z`` the latent is ``sigma * N(0, 1)`` (:meth:`sample_latent`), drawn in float32
        from ``generator`` if given, on the generator's device, so a CPU generator gives the same
        noise to a model on any device. With ``z`` nothing is drawn. ``lengths`` (B,) gives each
        sequence's own length in samples for a batch padded to a common length: each sequence's
        output up to its length is then what it would be alone.
        """
        raise NotImplementedError(f"{type(self).__name__}.infer")

    def sample_latent(self, batch: int, n: int, sigma: float, generator: torch.Generator | None,
                      device: torch.device | str) -> torch.Tensor:
        """sigma * N(0, 1) in ``infer``'s layout (B, channels, n), one float32 block per
        :meth:`latent_draws` entry, concatenated along channels in reverse drawing order."""
        blocks = [torch.randn(batch, c, n, generator=generator, device=device) for c in self.latent_draws()]
        return sigma * torch.cat(blocks[::-1], 1)

    def latent_draws(self) -> list[int]:
        """Channels of each N(0, 1) block :meth:`sample_latent` draws, in drawing order (default: one block)."""
        return [self.latent_channels]

    @property
    def latent_channels(self) -> int:
        """The latent's channel axis."""
        return self.sample_latent(1, 1, 1.0, None, torch.device("meta")).size(1)

    def check_device(self, name: str, tensor: torch.Tensor) -> None:
        """A ValueError naming both devices unless ``tensor`` (an input called ``name``) is on the model's device."""
        device = next(self.parameters()).device
        if tensor.device != device:
            raise ValueError(f"{name} is on {tensor.device} and the model on {device}: "
                             f"move it with {name}.to({str(device)!r})")

    def receptive_field(self) -> ReceptiveField:
        """Frames of context each output frame depends on (see :class:`ReceptiveField`)."""
        raise NotImplementedError(f"{type(self).__name__}.receptive_field")

    def overlap_frames(self) -> int:
        """Context each side of a chunk when long audio is vocoded in chunks (default: exact, the receptive field)."""
        field = self.receptive_field()
        return max(field.past, field.future)

    def remove_weight_norm(self) -> "FlowVocoder":
        """Fold weight norm into plain weights for inference; returns the model."""
        return self

    # ------------------------------------------------------------------ training, inference, export

    def initialize(self, mel: torch.Tensor, audio: torch.Tensor) -> bool:
        """Data-dependent initialisation from the first batch of a fresh run; True if it did anything."""
        return False

    def fast(self, *, low_memory: bool = False) -> Any:
        """An exact faster inference object for this frozen model (same ``infer``, the model as
        ``.model``), or the model itself. ``low_memory`` trades speed for memory where the model can."""
        return self

    def fast_variants(self) -> dict[str, Callable[[], Any]]:
        """The fast inference objects a benchmark compares, by name (default: ``fast``)."""
        return {"fast": self.fast}

    def prepare_for_export(self) -> nn.Module:
        """This weight-norm-free copy made traceable (e.g. inverses precomputed); default: as it is."""
        return self

    def perturb(self, generator: torch.Generator) -> None:
        """Give zero-initialised parameters small random values (drawn from ``generator``) so that no
        coupling is the identity: for tests and benchmarks of untrained models."""
        redraw([p for p in self.parameters() if not p.any()], 0.01, generator)


@torch.no_grad()
def redraw(parameters, std: float, generator: torch.Generator) -> None:
    """Overwrite each parameter with N(0, std^2) drawn from ``generator`` (float32, then cast), in order."""
    for p in parameters:
        p.copy_(std * torch.randn(p.shape, generator=generator).to(p))
