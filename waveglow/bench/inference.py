"""Inference rows: every requested mode timed on the same mel and latent, and reduced precisions
compared with float32.

A mode is ``plain`` (``model.infer``, the reference path), one of the model's ``fast_variants()``
(by its name: the exact fast inference objects the model offers), or a generic one: ``compile``
(``torch.compile`` of the plain path), ``cudagraph`` (the model's default fast object, ``model.fast()``,
captured once in a CUDA graph and replayed) and ``onnxruntime`` (the model exported by
:mod:`waveglow.export`, run by onnxruntime's CPU provider). Each row records its largest difference
from the plain path and the inference object that computed it.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Callable

import torch

from ..export import export_onnx
from ..onnx_runtime import OnnxVocoder
from .meters import PeakMemory, PeakResidentMemory, summarise, synchronize
from .models import inference_model, set_precision
from .settings import Settings

__all__ = [
    "GENERIC_MODES", "model_modes", "skip_reason", "make_runner", "cuda_graph_runner", "inference_rows",
    "inference_setting", "accuracy_rows", "accuracy_mel", "format_row",
]

GENERIC_MODES = ("compile", "cudagraph", "onnxruntime")  # any model can be timed in these, beside plain and its variants


def model_modes(model: torch.nn.Module) -> list[str]:
    """Every mode ``model`` can be timed in: plain, its fast variants, then the generic modes."""
    return ["plain", *model.fast_variants(), *GENERIC_MODES]


def skip_reason(device: torch.device, precision: str, mode: str, modes: list[str] | None = None) -> str | None:
    """Why ``mode`` is not timed at ``precision`` on ``device`` (None: it is); ``modes`` are the
    model's (:func:`model_modes`), None to skip that check."""
    if modes is not None and mode not in modes:
        return f"skipped: not a mode of this model (its modes: {', '.join(modes)})"
    if device.type == "cpu" and precision == "tf32":
        return "skipped: TF32 is a CUDA tensor-core format"
    if device.type == "cpu" and precision == "fp16":
        return "skipped: fp16 is a CUDA precision here (CPU fp16 kernels are slow emulation)"
    if mode == "cudagraph" and device.type != "cuda":
        return "cudagraph needs CUDA"
    if mode == "onnxruntime" and (device.type != "cpu" or precision != "fp32"):
        return "onnxruntime rows: the CPU provider, fp32"
    return None


def make_runner(model: torch.nn.Module, mode: str, mel: torch.Tensor, z: torch.Tensor, onnx_path: str | None = None):
    """(a no-argument function that synthesises the audio for ``mel`` and ``z`` in ``mode``, the
    inference object it runs or None for the model itself). Each fast variant builds its own object
    from the model; ``onnxruntime`` runs the file ``onnx_path`` exported from it."""
    if mode == "onnxruntime":
        vocoder = OnnxVocoder(onnx_path, "cpu", threads=torch.get_num_threads())
        return (lambda: vocoder.infer(mel, z=z)), vocoder
    if mode == "plain":
        return (lambda: model.infer(mel, z=z)), None
    if mode == "compile":
        compiled = torch.compile(lambda m, zz: model.infer(m, z=zz), dynamic=False)
        return (lambda: compiled(mel, z)), None
    if mode == "cudagraph":
        return cuda_graph_runner(model, mel, z)
    fast = model.fast_variants()[mode]()
    return (lambda: fast.infer(mel, z=z)), fast


def cuda_graph_runner(model: torch.nn.Module, mel: torch.Tensor, z: torch.Tensor):
    """(a function replaying the model's default fast object, ``model.fast()``, captured once in a
    CUDA graph for these shapes, on static copies of the inputs; that object)."""
    fast = model.fast()
    static_mel, static_z = mel.clone(), z.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # builds whatever the object caches (operators, inverses) outside the capture
            fast.infer(static_mel, z=static_z)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = fast.infer(static_mel, z=static_z)

    def run() -> torch.Tensor:
        graph.replay()
        return static_out

    return run, fast


def object_description(mode: str) -> str:
    """The ``conditioning`` column: what computed a mode's audio (the plain path, a fast variant by name, ...)."""
    return {"plain": "plain", "compile": "plain", "onnxruntime": "plain (ONNX graph)",
            "cudagraph": "fast (default), CUDA graph"}.get(mode, mode)


# ----------------------------------------------------------------------------- timing


def inference_rows(settings: Settings, source: torch.nn.Module, device: torch.device, sampling_rate: int) -> list[dict]:
    """A row per precision, length, batch and mode of ``settings`` for a copy of ``source``."""
    rows = []
    for precision in settings.precisions:
        set_precision(precision)
        model = inference_model(source, device, precision)
        modes = model_modes(model)
        with tempfile.TemporaryDirectory() as folder:
            onnx_path = None
            if "onnxruntime" in settings.modes and not skip_reason(device, precision, "onnxruntime", modes):
                onnx_path = export_onnx(model, os.path.join(folder, "model.onnx"))
            for seconds in settings.lengths:
                for batch in settings.batch_sizes:
                    rows += inference_setting(settings, model, device, precision, seconds, batch, sampling_rate,
                                              onnx_path)
        del model
    return rows


def inference_setting(settings: Settings, model, device, precision, seconds, batch, sampling_rate,
                      onnx_path=None) -> list[dict]:
    """Every requested mode for one (precision, length, batch). Modes take turns within each
    repeat, so background load drifting during the run affects them alike."""
    frames = max(1, round(seconds * sampling_rate / model.hop_length))
    gen = torch.Generator().manual_seed(settings.seed)
    mel = torch.randn(batch, model.n_mel_channels, frames, generator=gen).to(device)
    z = model.sample_latent(batch, frames * model.latent_steps_per_frame, settings.sigma, gen,
                            torch.device("cpu")).to(device)
    samples = batch * model.hop_length * frames
    base = {"precision": precision, "seconds": samples / batch / sampling_rate, "batch": batch, "frames": frames}
    modes = model_modes(model)
    rows, runners = {}, {}
    for mode in settings.modes:
        reason = skip_reason(device, precision, mode, modes)
        if reason:
            rows[mode] = {**base, "mode": mode, "skipped": reason}
            continue
        setup_start = time.perf_counter()
        # set-up and a first call; not under torch.compile on CPU, which would trace the dispatch mode
        with grad_mode(mode), memory_meter(device, mode) as mem:
            runners[mode] = make_runner(model, mode, mel, z, onnx_path)[0]
            runners[mode]()
        with grad_mode(mode):
            for _ in range(settings.warmup - 1):
                runners[mode]()
        synchronize(device)
        rows[mode] = {**base, "mode": mode, "setup_s": time.perf_counter() - setup_start, "times_s": [],
                      "peak_memory_bytes": mem.peak}
    outputs = {}
    for _ in range(settings.repeats):
        for mode, run in runners.items():
            elapsed, out = time_once(run, device, mode)
            rows[mode]["times_s"].append(elapsed)
            outputs.setdefault(mode, out.float().cpu())
    reference = outputs.get("plain")
    for mode in runners:
        rows[mode].update(summarise(rows[mode]["times_s"], samples, sampling_rate))
        rows[mode]["max_rel_diff_vs_plain"] = relative_difference(outputs[mode], reference)
        rows[mode]["conditioning"] = object_description(mode)
    for mode in settings.modes:
        print(format_row(rows[mode]), flush=True)
    return [rows[mode] for mode in settings.modes]


def memory_meter(device: torch.device, mode: str):
    """Peak memory of a mode's set-up and first call: torch tensors, or the resident set for onnxruntime."""
    if mode == "onnxruntime":
        return PeakResidentMemory()
    return PeakMemory(device, enabled=not (mode == "compile" and device.type == "cpu"))


def grad_mode(mode: str):
    return torch.no_grad() if mode in ("cudagraph", "compile", "onnxruntime") else torch.inference_mode()


def time_once(run: Callable[[], torch.Tensor], device: torch.device, mode: str) -> tuple[float, torch.Tensor]:
    """One synchronised, timed call: (seconds, output)."""
    with grad_mode(mode):
        start = time.perf_counter()
        out = run()
        synchronize(device)
        elapsed = time.perf_counter() - start
    return elapsed, out


def relative_difference(audio: torch.Tensor, reference: torch.Tensor | None) -> float | None:
    if reference is None:
        return None
    return ((audio - reference).abs().max() / reference.abs().max().clamp_min(1e-30)).item()


def format_row(row: dict) -> str:
    """One inference row as a line of progress output."""
    if "skipped" in row:
        return f"{row['mode']} {row['precision']} {row['seconds']:.2f}s B{row['batch']}: {row['skipped']}"
    return (f"{row['mode']} {row['precision']} {row['seconds']:.2f}s B{row['batch']}: {row['latency_s']:.3f} s, "
            f"{row['s_per_audio_s']:.3f} s per audio s, {row['samples_per_s']:.0f} samples/s")


# ----------------------------------------------------------------------------- precision


def accuracy_rows(settings: Settings, source: torch.nn.Module, given_mel: torch.Tensor | None, device: torch.device,
                  sampling_rate: int) -> list[dict]:
    """Each reduced precision's fast-path output (``model.fast(low_memory=True)``) against float32's
    (TF32 off) from the same latent (z = 0, or one draw at ``accuracy_sigma``), batch 1: SNR in dB =
    10 log10(sum ref^2 / sum (out - ref)^2), and the largest difference."""
    reduced = [p for p in settings.precisions if p != "fp32" and not skip_reason(device, p, "plain")]
    if not reduced:
        return []
    set_precision("fp32")
    model = inference_model(source, device, "fp32")
    mels = {s: accuracy_mel(given_mel, model.n_mel_channels, s * sampling_rate / model.hop_length, settings.seed)
            for s in settings.lengths}
    gen = torch.Generator().manual_seed(settings.seed + 2)
    latents = {s: model.sample_latent(1, mel.size(2) * model.latent_steps_per_frame, settings.accuracy_sigma, gen,
                                      torch.device("cpu")).to(device) for s, mel in mels.items()}
    with torch.inference_mode():
        fast = model.fast(low_memory=True)
        references = {s: fast.infer(mel.to(device), z=latents[s]).float() for s, mel in mels.items()}
    del model, fast
    rows = []
    for precision in reduced:
        set_precision(precision)
        fast = inference_model(source, device, precision).fast(low_memory=True)
        for seconds, mel in mels.items():
            with torch.inference_mode():
                out = fast.infer(mel.to(device), z=latents[seconds]).float()
            ref = references[seconds]
            noise = (out - ref).pow(2).sum().item()
            snr = float("inf") if noise == 0 else 10 * math.log10(ref.pow(2).sum().item() / noise)
            row = {"precision": precision, "seconds": ref.size(1) / sampling_rate, "snr_db": snr,
                   "sigma": settings.accuracy_sigma, "max_abs_diff": (out - ref).abs().max().item(),
                   "reference_rms": ref.pow(2).mean().sqrt().item(), "nonfinite": int((~torch.isfinite(out)).sum().item())}
            rows.append(row)
            print(f"{precision} vs fp32 {row['seconds']:.2f}s: SNR {snr:.1f} dB", flush=True)
        del fast
    set_precision("fp32")
    return rows


def accuracy_mel(given_mel: torch.Tensor | None, n_mel: int, frames: float, seed: int) -> torch.Tensor:
    """(1, n_mel, frames): ``given_mel`` (repeated or cut to the length), else log-mel-like random frames."""
    frames = max(1, round(frames))
    if given_mel is not None:
        return given_mel.repeat(1, -(-frames // given_mel.size(1)))[:, :frames][None]
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randn(1, n_mel, frames, generator=gen) - 5.0
