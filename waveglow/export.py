"""Export a vocoder's inference path to ONNX or TorchScript, and check the file against the model.

The exported program is ``model.infer(mel, z=z)`` with weight norm folded into plain weights:

    inputs   mel (B, n_mel, F) and z, the latent in the layout ``infer`` takes (WaveGlow: (B, g, hop F / g))
    output   audio (B, hop F)

B and F are dynamic: one file serves every batch size and length. sigma is not an input: it
scales z, so whoever draws z applies it (``z = sigma * N(0, 1)``), as DeepLearningExamples'
export does. The graph is traced from the model's own reverse loop (``model.infer``, the reference
path), on a weight-norm-free copy that the model may adapt first (``prepare_for_export()``:
WaveGlow computes each 1x1 convolution's inverse W^-1 once and stores it as a constant, since
ONNX has no matrix inverse).

WaveGlow's fast path (:mod:`waveglow.models.waveglow.fast`) is not traced: its gain on the CPU comes from the
folded conditioning operators (2 GB for the default model, beyond ONNX's 2 GB protobuf limit
when kept, or rebuilt per call) and from in-place time-major GEMMs, which a graph runtime plans
for itself. ``docs/export.md`` has the measurements.

The denoiser is a second, small graph (:class:`DenoiserGraph`): audio (B, T), strength (1,) ->
audio (B, T), with the STFT and its inverse written as convolutions with the Fourier basis
(ONNX has no inverse STFT and no complex numbers).

Every file carries its settings (family, n_mel_channels, latent_channels, hop_length, sampling_rate,
the latent's drawing order, graph kind, dtype, the data config as JSON) as ONNX ``metadata_props``
or a TorchScript extra file ``metadata.json`` (:mod:`waveglow.export_metadata`); the checks that run
an exported file back live in :mod:`waveglow.export_checks`. Their public names are importable from
here too.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_path
from .config import DataConfig
from .denoiser import Denoiser
from .errors import ExportError
from .export_checks import (
    FLOAT16_TOLERANCE, FLOAT32_TOLERANCE, Verification, _check_onnx, _difference, _random_frames, _refuse_above,
    _Runner, _tolerance,
)
from .export_metadata import METADATA_FILE, denoiser_path, graph_metadata, read_metadata
# not used here; importable from this module, as before
from .export_metadata import latent_channels as latent_channels, latent_draws as latent_draws
from .export_metadata import _format_of as _format_of, _jit_load as _jit_load

__all__ = [
    "FORMATS",
    "DTYPES",
    "DEFAULT_OPSET",
    "FLOAT32_TOLERANCE",
    "FLOAT16_TOLERANCE",
    "ExportError",
    "InferenceGraph",
    "DenoiserGraph",
    "Verification",
    "graph_metadata",
    "export_onnx",
    "export_torchscript",
    "export_denoiser",
    "read_metadata",
    "verify_export",
    "verify_denoiser",
    "denoiser_path",
]

FORMATS = ("onnx", "torchscript")
DTYPES = {"float32": torch.float32, "float16": torch.float16}
DEFAULT_OPSET = 18


# ------------------------------------------------------------------------------ graphs


def _inference_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model``, weight norm removed, in eval mode. An inference object wrapping a
    model (``.model``, e.g. FastWaveGlow) gives a copy of the model it wraps."""
    if not isinstance(model, nn.Module):
        model = model.model
    clone = copy.deepcopy(model)
    clone.remove_weight_norm()
    return clone.eval()


def _export_copy(model: nn.Module) -> nn.Module:
    """:func:`_inference_copy`, adapted for tracing by the model (``prepare_for_export()``)."""
    return _inference_copy(model).prepare_for_export()


class InferenceGraph(nn.Module):
    """``forward(mel (B, n_mel, F), z) -> audio (B, hop F)``: ``model.infer(mel, z=z)``, exportable.

    Holds a copy of ``model`` in ``dtype`` with weight norm removed, as the family prepares it for
    export; the inference path is the model's own reference path (``infer``).
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        clone = _export_copy(model)
        self.model = clone.to(dtype)
        self.dtype = dtype
        self.n_mel_channels = clone.n_mel_channels
        self.hop_length = clone.hop_length

    def forward(self, mel: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.model.infer(mel, z=z)


class DenoiserGraph(nn.Module):
    """``forward(audio (B, T), strength (1,)) -> (B, T)``: :class:`Denoiser`'s spectral subtraction
    with the STFT and inverse STFT as convolutions (centred, reflect-padded, Hann window, as
    ``torch.stft``/``torch.istft``). T must exceed filter_length / 2 (the Denoiser zero-pads
    shorter clips first; :class:`waveglow.onnx_runtime.OnnxVocoder` does the same)."""

    def __init__(self, denoiser: Denoiser) -> None:
        super().__init__()
        n, hop = denoiser.filter_length, denoiser.hop_length
        self.filter_length, self.hop_length = n, hop
        window = torch.zeros(n, dtype=torch.float64)  # win_length < filter_length: centred, as torch.stft pads it
        left = (n - denoiser.win_length) // 2
        window[left : left + denoiser.win_length] = denoiser.window.detach().cpu().double()
        k = torch.arange(n // 2 + 1, dtype=torch.float64)[:, None]  # frequency bins
        t = torch.arange(n, dtype=torch.float64)[None, :]
        angle = 2 * math.pi * k * t / n  # (K, n)
        # forward: Re X_k = sum w x cos, Im X_k = -sum w x sin
        analysis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window  # (2K, n)
        # inverse (irfft, then the window, then overlap-add): c_k = 1 at DC and Nyquist, else 2
        c = torch.full((n // 2 + 1, 1), 2.0, dtype=torch.float64)
        c[0], c[-1] = 1.0, 1.0
        synthesis = torch.cat([c * torch.cos(angle), -c * torch.sin(angle)]) * window / n  # (2K, n)
        self.register_buffer("analysis", analysis.float().unsqueeze(1))  # (2K, 1, n)
        self.register_buffer("synthesis", synthesis.float().unsqueeze(1))  # (2K, 1, n)
        self.register_buffer("window_square", (window**2).float().view(1, 1, n))  # (1, 1, n)
        self.register_buffer("bias_spec", denoiser.bias_spec.detach().cpu().float())  # (1, K, 1)

    def forward(self, audio: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        n, hop, K = self.filter_length, self.hop_length, self.filter_length // 2 + 1
        x = F.pad(audio.float().unsqueeze(1), (n // 2, n // 2), mode="reflect")  # (B, 1, T + n)
        spec = F.conv1d(x, self.analysis, stride=hop)  # (B, 2K, frames): real rows, then imaginary
        real, imag = spec[:, :K], spec[:, K:]
        magnitude = torch.sqrt(real * real + imag * imag)
        denoised = torch.clamp(magnitude - strength.view(1, 1, 1) * self.bias_spec, min=0.0)
        # the original phase: scale X by |X'| / |X| (0 where |X| = 0, where |X'| is 0 too)
        gain = torch.where(magnitude > 0, denoised / magnitude.clamp_min(1e-30), torch.zeros_like(magnitude))
        frames = F.conv_transpose1d(torch.cat([real * gain, imag * gain], 1), self.synthesis, stride=hop)  # (B, 1, L)
        ones = torch.ones_like(spec[:1, :1])  # (1, 1, frames)
        envelope = F.conv_transpose1d(ones, self.window_square, stride=hop)  # (1, 1, L): sum of w^2 per sample
        length = audio.size(1)
        out = frames[:, 0, n // 2 : n // 2 + length] / envelope[:, 0, n // 2 : n // 2 + length]
        return out.to(audio.dtype)


def latent_length(model: nn.Module, frames: int) -> int:
    """The latent's last dimension for ``frames`` mel frames."""
    return model.latent_steps_per_frame * frames


def example_inputs(
    model: nn.Module, batch: int, frames: int, dtype: torch.dtype, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A log-mel-like mel (B, n_mel, F) and a unit-variance latent in ``infer``'s layout, in ``dtype``."""
    mel = torch.randn(batch, model.n_mel_channels, frames, generator=generator) - 5.0
    z = model.sample_latent(batch, latent_length(model, frames), 1.0, generator, torch.device("cpu"))
    return mel.to(dtype), z.to(dtype)


# ------------------------------------------------------------------------------ export


def _dynamic_shapes(model: nn.Module) -> dict:
    """Batch and frames dynamic; the latent's last axis is a fixed multiple of the frames."""
    batch = torch.export.Dim("batch", min=1, max=1024)
    frames = torch.export.Dim("frames", min=1, max=1 << 20)
    return {"mel": {0: batch, 2: frames}, "z": {0: batch, 2: model.latent_steps_per_frame * frames}}


def _onnx_export(module: nn.Module, args: tuple, path: str, names: tuple, dynamic_shapes: dict, opset: int,
                 metadata: dict[str, str]) -> None:
    """torch.onnx's default (torch.export-based) exporter, one self-contained file, then the metadata."""
    import onnx

    with warnings.catch_warnings(), torch.no_grad(), _quiet_exporter():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, args, input_names=list(names[0]), output_names=list(names[1]), dynamic_shapes=dynamic_shapes,
            opset_version=opset, dynamo=True, external_data=False, verbose=False,
            custom_translation_table=_translations(),
        )
    proto = program.model_proto
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:  # the exporter falls back to its own opset when converting to the asked one fails
        raise ExportError(f"opset {opset} was asked for, but the exporter could only write opset {written}")
    onnx.helper.set_model_props(proto, metadata)
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)


def _translations() -> dict:
    """ONNX for the operators torch's exporter lacks: ``signbit`` (from ``copysign``, in FloWaveNet's
    ActNorm inverse) as x < 0, which differs only for -0.0."""
    from onnxscript import opset18 as op

    def signbit(x):
        return op.Less(x, op.CastLike(0.0, x))

    return {torch.ops.prims.signbit.default: signbit}


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs a warning per missing optional library (torchvision); silence it for the call."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    dtype: torch.dtype = torch.float32,
    data_config: DataConfig | None = None,
) -> str:
    """Write ``model``'s :class:`InferenceGraph` as an ONNX file; returns the path."""
    graph = InferenceGraph(model, dtype).eval()
    args = example_inputs(graph.model, 2, 8, dtype, torch.Generator().manual_seed(0))  # batch 2: 1 would specialise
    path = os.fspath(path)
    _onnx_export(graph, args, path, (("mel", "z"), ("audio",)), _dynamic_shapes(graph.model), opset,
                 graph_metadata(graph.model, data_config, dtype))
    return path


def export_torchscript(
    model: nn.Module, path: str | os.PathLike, dtype: torch.dtype = torch.float32, data_config: DataConfig | None = None
) -> str:
    """Write ``model``'s :class:`InferenceGraph` traced to TorchScript; returns the path."""
    graph = InferenceGraph(model, dtype).eval()
    args = example_inputs(graph.model, 2, 8, dtype, torch.Generator().manual_seed(0))
    path = os.fspath(path)
    _save_traced(graph, args, path, graph_metadata(graph.model, data_config, dtype))
    return path


def _save_traced(module: nn.Module, args: tuple, path: str, metadata: dict[str, str]) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # shape checks traced as constants: the verification covers them
        traced = torch.jit.trace(module, args, check_trace=False)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, tmp, _extra_files={METADATA_FILE: json.dumps(metadata)})  # deprecated in torch 2.13, still supported


def export_denoiser(
    denoiser: Denoiser, path: str | os.PathLike, fmt: str, metadata: dict[str, str], opset: int = DEFAULT_OPSET
) -> str:
    """Write :class:`DenoiserGraph` of ``denoiser`` (float32) in ``fmt``; returns the path."""
    graph = DenoiserGraph(denoiser).eval()
    gen = torch.Generator().manual_seed(0)
    args = (0.1 * torch.randn(2, 4 * denoiser.filter_length, generator=gen), torch.tensor([0.1]))
    meta = {**metadata, "graph": "denoiser", "dtype": "float32", "filter_length": str(denoiser.filter_length),
            "inputs": "audio (B, T), strength (1,)", "outputs": "audio (B, T)"}
    path = os.fspath(path)
    if fmt == "onnx":
        batch = torch.export.Dim("batch", min=1, max=1024)
        samples = torch.export.Dim("samples", min=denoiser.filter_length // 2 + 1, max=1 << 30)
        _onnx_export(graph, args, path, (("audio", "strength"), ("denoised",)),
                     {"audio": {0: batch, 1: samples}, "strength": None}, opset, meta)
    else:
        _save_traced(graph, args, path, meta)
    return path


# ------------------------------------------------------------------------------ verification


@torch.no_grad()
def verify_export(
    path: str | os.PathLike,
    model: nn.Module,
    dtype: torch.dtype = torch.float32,
    *,
    seed: int = 0,
    frames: list[int] | None = None,
    tolerance: float | None = None,
) -> Verification:
    """Load ``path`` back (onnxruntime on the CPU, or torch.jit.load) and compare it with
    ``model.infer(mel, z=z)`` (float32) at two random lengths, batch 1 and 2; ONNX files must
    also pass ``onnx.checker``. Raises :class:`ExportError` above ``tolerance`` (default
    :data:`FLOAT32_TOLERANCE` for float32 files, :data:`FLOAT16_TOLERANCE` for float16)."""
    path = os.fspath(path)
    result = Verification(_tolerance(dtype, tolerance), checker=_check_onnx(path))
    runner = _Runner(path)
    reference_model = _inference_copy(model).float()
    gen = torch.Generator().manual_seed(seed)
    for f in frames or _random_frames(seed):
        for batch in (1, 2):
            mel, z = example_inputs(reference_model, batch, f, torch.float32, gen)
            expected = reference_model.infer(mel, z=z)
            got = runner(mel.to(dtype), z.to(dtype)).float()
            result.max_abs_diff[(batch, f)] = _difference(got, expected)
    _refuse_above(path, result)
    return result


@torch.no_grad()
def verify_denoiser(
    path: str | os.PathLike, denoiser: Denoiser, *, seed: int = 0, tolerance: float = FLOAT32_TOLERANCE,
    strength: float = 0.1,
) -> Verification:
    """Compare a denoiser file with ``denoiser(audio, strength)`` at two random lengths, batch 1 and 2."""
    path = os.fspath(path)
    result = Verification(tolerance, checker=_check_onnx(path))
    runner = _Runner(path)
    gen = torch.Generator().manual_seed(seed)
    for f in _random_frames(seed):
        for batch in (1, 2):
            audio = 0.1 * torch.randn(batch, 256 * f, generator=gen)
            expected = denoiser(audio, strength)
            got = runner(audio, torch.tensor([strength]))
            result.max_abs_diff[(batch, f)] = _difference(got, expected)
    _refuse_above(path, result)
    return result
