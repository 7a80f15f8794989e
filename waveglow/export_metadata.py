"""What an exported vocoder or denoiser file says about itself, and how to read it back.

Every file carries its settings (family, n_mel_channels, latent_channels, hop_length, sampling_rate,
the latent's drawing order, graph kind, dtype, the data config as JSON) as ONNX ``metadata_props``
or a TorchScript extra file ``metadata.json``. :func:`read_metadata` reads either format; the
format itself is told from the file's first bytes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings

import torch
from torch import nn

from .config import DataConfig
from .registry import family_of

__all__ = ["METADATA_FILE", "graph_metadata", "read_metadata", "denoiser_path", "latent_channels", "latent_draws"]

METADATA_FILE = "metadata.json"  # the TorchScript extra file holding the metadata


def latent_channels(model: nn.Module) -> int:
    """The latent's channel axis (WaveGlow: n_group; FloWaveNet: in_channel)."""
    return model.latent_channels


def latent_draws(model: nn.Module) -> list[int]:
    """Channels of each N(0, 1) block ``model.sample_latent`` draws, in drawing order; the latent is
    their concatenation along channels in the reverse order (WaveGlow: the final channels first,
    then each early block; ``model.latent_draws()``). By default one block of every channel."""
    return list(model.latent_draws())


def graph_metadata(
    model: nn.Module, data_config: DataConfig | None, dtype: torch.dtype, graph: str = "vocoder"
) -> dict[str, str]:
    """What a runtime needs to use a graph, as strings (ONNX metadata_props are string to string)."""
    data_config = data_config or DataConfig(n_mel_channels=model.n_mel_channels)
    vocoder = graph == "vocoder"
    channels, steps = latent_channels(model), model.latent_steps_per_frame
    return {
        "graph": graph,
        "family": family_of(model).name,
        "n_mel_channels": str(model.n_mel_channels),
        "hop_length": str(model.hop_length),
        "latent_channels": str(channels),
        "latent_steps_per_frame": str(steps),
        "sampling_rate": str(int(data_config.sampling_rate)),
        "latent_draws": ",".join(map(str, latent_draws(model))),
        "dtype": str(dtype).removeprefix("torch."),
        "inputs": f"mel (B, {model.n_mel_channels}, F), z (B, {channels}, {steps} F)" if vocoder else "audio (B, T), strength (1,)",
        "outputs": "audio (B, hop F)" if vocoder else "audio (B, T)",
        "data_config": json.dumps(dataclasses.asdict(data_config)),
        "default_sigma": repr(float(model.default_sigma)),
        "silence_feature": repr(float(model.silence_feature)),
        "overlap_frames": str(int(model.overlap_frames())),
    }


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata an exported file carries (either format)."""
    path = os.fspath(path)
    if _format_of(path) == "onnx":
        import onnx

        model = onnx.load(path, load_external_data=False)
        return {p.key: p.value for p in model.metadata_props}
    files = {METADATA_FILE: ""}
    _jit_load(path, files)
    return json.loads(files[METADATA_FILE])


def _format_of(path: str) -> str:
    """``onnx`` for an ONNX protobuf, else ``torchscript`` (a zip archive)."""
    with open(path, "rb") as f:
        return "torchscript" if f.read(4) == b"PK\x03\x04" else "onnx"


def _jit_load(path: str, extra_files: dict | None = None) -> torch.jit.ScriptModule:
    """torch.jit.load without its deprecation warning (TorchScript is the format asked for here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(path, map_location="cpu", _extra_files=extra_files or {})


def denoiser_path(path: str | os.PathLike) -> str:
    """Where the denoiser graph of the vocoder file ``path`` lives: ``x.onnx`` -> ``x.denoiser.onnx``."""
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.denoiser{ext}"
