"""Vocoding with an exported ONNX file through onnxruntime: no model code, same audio.

    vocoder = OnnxVocoder("waveglow.onnx")           # CUDAExecutionProvider when present, else CPU
    audio = synthesize(vocoder, mel, sigma=0.6, generator=torch.Generator().manual_seed(0))

:class:`OnnxVocoder` has the small interface :mod:`waveglow.synthesis` uses of a model
(``n_mel_channels``, ``latent_channels``, ``hop_length``, ``infer``, ``sample_latent``), reading what it needs
from the file's metadata (see :mod:`waveglow.export`). Its ``sample_latent`` draws the noise exactly
as the PyTorch model does (same blocks, same order), so a seed gives the same audio, within the
export's tolerance, as the checkpoint it came from. Batches padded to a common length
(``lengths=``) run item by item at each item's own length, which is what the model's masking
reproduces.
"""

from __future__ import annotations

import json
import os
from typing import Iterator

import numpy as np
import torch

from .config import DataConfig
from .errors import OnnxModelError
from .export import denoiser_path
from .registry import family_named

__all__ = ["OnnxModelError", "OnnxVocoder", "OnnxDenoiser", "providers_for"]

REQUIRED_METADATA = ("graph", "family", "n_mel_channels", "hop_length", "sampling_rate", "latent_draws")
OLD_FILES_OVERLAP_FRAMES = 32  # chunk context of files exported without ``overlap_frames`` (WaveGlow's)
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def providers_for(device: str | None) -> list[str]:
    """onnxruntime providers: ``cuda`` insists on CUDA, ``cpu`` on the CPU, None takes CUDA when present."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise OnnxModelError("onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu)")
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class _Session:
    """An onnxruntime session and the metadata of its file; raises OnnxModelError on a bad file."""

    def __init__(self, path: str | os.PathLike, device: str | None, graph: str, threads: int | None = None) -> None:
        import onnxruntime

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise OnnxModelError(f"{self.path}: no such ONNX file")
        try:
            options = onnxruntime.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            self.session = onnxruntime.InferenceSession(self.path, options, providers=providers_for(device))
        except OnnxModelError:
            raise
        except Exception as e:  # onnxruntime's own errors: not a protobuf, unknown operators ...
            lines = str(e).strip().splitlines()
            raise OnnxModelError(f"{self.path}: not a usable ONNX file: {lines[0] if lines else type(e).__name__}") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        missing = [k for k in REQUIRED_METADATA if k not in self.metadata]
        if missing:
            raise OnnxModelError(f"{self.path}: not exported by waveglow-export (no {', '.join(missing)} metadata)")
        if self.metadata["graph"] != graph:
            raise OnnxModelError(f"{self.path}: a {self.metadata['graph']} graph, not a {graph} graph")
        self.inputs = self.session.get_inputs()
        self.input_types = [_NUMPY_TYPES.get(i.type, np.float32) for i in self.inputs]

    def run(self, *arrays: torch.Tensor) -> torch.Tensor:
        """CPU tensors in, float32 CPU tensor out, cast to and from the graph's input types."""
        feed = {i.name: x.detach().cpu().numpy().astype(t, copy=False) for i, x, t in zip(self.inputs, arrays, self.input_types)}
        return torch.from_numpy(np.asarray(self.session.run(None, feed)[0], dtype=np.float32))


class OnnxVocoder:
    """An exported vocoder graph behind the interface synthesis uses of a model.

    ``infer(mel (B, n_mel, F), sigma, *, z=None, generator=None, lengths=None) -> (B, hop F)``
    float32 on the CPU; ``z`` in the layout ``sample_latent`` returns (B, latent_channels, steps per frame x F).
    ``device``: ``cpu``, ``cuda`` (onnxruntime-gpu's provider) or None (CUDA when present);
    ``threads``: onnxruntime's intra-op threads (default: one per core).
    """

    def __init__(self, path: str | os.PathLike, device: str | None = None, threads: int | None = None) -> None:
        self._session = _Session(path, device, "vocoder", threads)
        self.path, self.device = self._session.path, device
        meta = self.metadata = self._session.metadata
        self.family_name = meta["family"]
        self.n_mel_channels = int(meta["n_mel_channels"])
        self.hop_length = int(meta["hop_length"])
        channels = meta.get("latent_channels", meta.get("n_group"))  # files exported before this key name it n_group
        if channels is None:
            raise OnnxModelError(f"{self.path}: not exported by waveglow-export (no latent_channels metadata)")
        self.latent_channels = int(channels)
        self.latent_steps_per_frame = int(meta.get("latent_steps_per_frame", self.hop_length // self.latent_channels))
        self.sampling_rate = int(meta["sampling_rate"])
        self.latent_blocks = [int(c) for c in meta["latent_draws"].split(",")]
        data = json.loads(meta["data_config"]) if "data_config" in meta else {"n_mel_channels": self.n_mel_channels}
        self.data_config = DataConfig(**data)
        # inference defaults: from the file, else (files exported before these keys) the family's class defaults
        model_class = family_named(self.family_name).model_class
        self.default_sigma = float(meta.get("default_sigma", model_class.default_sigma))
        self.silence_feature = float(meta.get("silence_feature", model_class.silence_feature))
        self.denoiser_applies = bool(model_class.denoiser_applies)
        self._overlap_frames = int(meta.get("overlap_frames", OLD_FILES_OVERLAP_FRAMES))

    def overlap_frames(self) -> int:
        """Context each side of a chunk for chunked vocoding, as the exported model reported it."""
        return self._overlap_frames

    @property
    def providers(self) -> list[str]:
        return self._session.session.get_providers()

    def parameters(self) -> Iterator[torch.Tensor]:
        """One empty float32 CPU tensor: the device and dtype synthesis moves inputs to (onnxruntime takes them from there)."""
        yield torch.empty(0)

    def sample_latent(
        self, batch: int, n: int, sigma: float, generator: torch.Generator | None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """sigma * N(0, 1) of shape (B, latent_channels, n), drawn block by block as the PyTorch model draws it."""
        draws = [torch.randn(batch, c, n, generator=generator, device=device) for c in self.latent_blocks]
        return sigma * torch.cat(draws[::-1], 1)

    @torch.no_grad()
    def infer(self, mel: torch.Tensor, sigma: float = 1.0, *, z: torch.Tensor | None = None,
              generator: torch.Generator | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`waveglow.models.base.FlowVocoder.infer` through the graph: float32 CPU audio (B, hop F)."""
        if mel.dim() != 3 or mel.size(1) != self.n_mel_channels:
            raise ValueError(f"mel must be (batch, {self.n_mel_channels}, frames), got {tuple(mel.shape)}")
        B, frames = mel.size(0), mel.size(2)
        n = frames * self.latent_steps_per_frame
        if z is None:
            gen_device = generator.device if generator is not None else torch.device("cpu")
            z = self.sample_latent(B, n, sigma, generator, gen_device)
        elif tuple(z.shape) != (B, self.latent_channels, n):
            raise ValueError(f"z must be {(B, self.latent_channels, n)}, got {tuple(z.shape)}")
        if lengths is None:
            return self._session.run(mel, z)
        audio = torch.zeros(B, self.hop_length * frames)
        for i, length in enumerate(torch.as_tensor(lengths).tolist()):
            f = int(length) // self.hop_length  # synthesis passes whole frames
            if f > 0:
                audio[i, : self.hop_length * f] = self._session.run(mel[i : i + 1, :, :f], z[i : i + 1, :, : f * self.latent_steps_per_frame])[0]
        return audio

    def denoiser(self) -> "OnnxDenoiser":
        """The denoiser graph exported beside this file (``x.onnx`` -> ``x.denoiser.onnx``)."""
        path = denoiser_path(self.path)
        if not os.path.isfile(path):
            raise OnnxModelError(f"{self.path}: no denoiser graph {path} beside it (export with --denoiser)")
        return OnnxDenoiser(path, self.device)


class OnnxDenoiser:
    """``OnnxDenoiser(path)(audio (B, T), strength) -> (B, T)``, as :class:`waveglow.denoiser.Denoiser`."""

    def __init__(self, path: str | os.PathLike, device: str | None = None) -> None:
        self._session = _Session(path, device, "denoiser")
        self.filter_length = int(self._session.metadata.get("filter_length", 1024))

    def __call__(self, audio: torch.Tensor, strength: float = 0.1) -> torch.Tensor:
        if audio.dim() != 2:
            raise ValueError(f"audio must be (batch, samples), got {tuple(audio.shape)}")
        length = audio.size(1)
        # the reflect padding needs more than filter_length / 2 samples: zero-pad short clips, as Denoiser does
        padded = torch.nn.functional.pad(audio.float(), (0, max(0, self.filter_length // 2 + 1 - length)))
        out = self._session.run(padded, torch.tensor([strength], dtype=torch.float32))
        return out[:, :length].to(dtype=audio.dtype)
