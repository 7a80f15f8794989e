"""Benchmark WaveGlow inference and training: samples/s, x real time, latency and peak memory.

    python scripts/benchmark.py --device cpu --threads 2 --lengths 1 10 --modes plain fast
    python scripts/benchmark.py --device cuda --precisions fp32 tf32 fp16 bf16 --modes plain fast cudagraph
    python scripts/benchmark.py --families configs/config.json configs/flowavenet.json --lengths 1   # side by side
    python scripts/benchmark.py --no_inference --train_checkpoint demo_output/checkpoints/waveglow_900   # a trained state

Weights are random (``end`` drawn from N(0, 0.01) so no coupling is skipped; FLOPs do not depend
on values) unless ``--checkpoint`` names real ones, the latent z is fixed, and every mode computes
the same audio: each row records its largest difference from the plain path and how it computed
the conditioning. Reduced precisions (tf32, fp16, bf16) are also compared with float32 at sigma 0:
SNR in dB, on ``--mel`` when given (use a real mel and real weights for a meaningful figure).
CUDA timings are synchronised before the clock stops; each row is the median of ``--repeats`` runs after ``--warmup`` untimed ones. Results go to a JSON
file and a Markdown table, with device, torch version, date and the load average recorded.

Modes: ``plain`` (the reference path, ``model.infer``), ``fast`` (``FastWaveGlow(model).infer``),
``fast-cached`` (fast with the 2 GB folded conditioning operator kept), ``compile``
(``torch.compile`` of the plain path), ``cudagraph`` (fast-cached captured in a CUDA graph) and
``onnxruntime`` (the model exported to ONNX by :mod:`waveglow.export`, once per precision and
outside the timing, run by onnxruntime's CPU provider with ``--threads`` threads; its peak memory
is the process's peak resident set above that at entry, since onnxruntime's buffers are not torch
tensors).
Precisions: ``fp32`` (TF32 off), ``tf32``, ``fp16`` and ``bf16`` (the whole model cast, as the
reference's pure-fp16 inference). On CPU, tf32 and fp16 rows are skipped with a note.

``--train_checkpoint`` times training steps from a training checkpoint's state (weights and Adam
moments) on crops of ``--clip``: in train.py's loop (``Trainer.run``, subnormal floats flushed to
zero) and the same steps with subnormals kept, with the count of subnormal values one kept step
writes. A trained model's saturated gates make subnormals, which slow every CPU operation that
touches them; the two columns show what the flushing saves.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import io
import itertools
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import weakref
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from waveglow import load_checkpoint, load_config
from waveglow.errors import AudioError, CheckpointError, ConfigError, MelError, TrainingError
from waveglow.atomic import write_text
from waveglow.cli.arguments import non_negative_float, non_negative_int, positive_float, positive_int
from waveglow.checkpoint import build_model, read_checkpoint
from waveglow.devices import cpu_name
from waveglow.export import export_onnx
from waveglow.onnx_runtime import OnnxVocoder
from waveglow.synthesis import load_mel

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MODES = ("plain", "fast", "fast-cached", "compile", "cudagraph", "onnxruntime")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--config", default=os.path.join("configs", "config.json"),
                   help="model config (default: configs/config.json of the current directory, the repository root)")
    p.add_argument("--checkpoint", default=None,
                   help="weights to time and to compare precisions with (any format load_checkpoint reads); "
                        "default: random weights for --config")
    p.add_argument("--mel", default=None,
                   help="a mel file (.pt/.npy) for the precision comparison; default: random frames")
    p.add_argument("--no_accuracy", action="store_true",
                   help="skip the SNR of each reduced precision against float32 at sigma 0")
    p.add_argument("--accuracy_sigma", type=non_negative_float, default=0.0,
                   help="the precision comparison's latent: 0 (z = 0), else one z ~ N(0, sigma^2) drawn once "
                        "and given to every precision")
    p.add_argument("--lengths", type=positive_float, nargs="+", default=[1.0, 10.0], help="utterance lengths in seconds")
    p.add_argument("--batch_sizes", type=positive_int, nargs="+", default=[1])
    p.add_argument("--precisions", nargs="+", default=["fp32"], choices=list(DTYPES))
    p.add_argument("--modes", nargs="+", default=["plain", "fast"], choices=MODES)
    p.add_argument("--repeats", type=positive_int, default=3)
    p.add_argument("--warmup", type=non_negative_int, default=1)
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--sigma", type=non_negative_float, default=0.6)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--train", action="store_true", help="also benchmark training steps")
    p.add_argument("--train_precisions", nargs="+", default=["fp32", "amp"], choices=["fp32", "amp"])
    p.add_argument("--train_batch_size", type=positive_int, default=1)
    p.add_argument("--segment_length", type=positive_int, default=16000)
    p.add_argument("--no_inference", action="store_true", help="skip the inference rows")
    p.add_argument("--train_checkpoint", default=None,
                   help="time --warmup + --repeats training steps from this checkpoint's state (weights, Adam "
                        "moments) on crops of --clip: in the training loop (subnormals flushed) and with subnormals kept")
    p.add_argument("--families", nargs="+", metavar="CONFIG", default=None,
                   help="compare model families instead: one config per family (e.g. configs/config.json "
                        "configs/flowavenet.json), each vocoding the same speech clip in its own features")
    p.add_argument("--clip", default=os.path.join("tests", "data", "wavs", "allison-vm-tooshort.wav"),
                   help="--families: the speech clip, repeated to each --lengths; --train_checkpoint: crops of it "
                        "(default: a test clip of the repository, relative to the current directory)")
    p.add_argument("--stream", action="store_true",
                   help="the streaming benchmark instead (its own options: --stream --help; docs/streaming.md)")
    p.add_argument("--date", default=datetime.date.today().isoformat())
    p.add_argument("--output_json", default=None, help="default: benchmarks/<device>_<date>.json")
    p.add_argument("--output_md", default=None, help="default: the JSON path with .md")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- measurement


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TensorMemory(TorchDispatchMode):
    """Counts the bytes of tensor storage created inside the block and still alive, and its peak.

    The CPU stand-in for CUDA's ``max_memory_allocated``: every ATen op's new output storage is
    added when created and taken off when freed (a weakref finalizer), so reuse inside the
    allocator cannot hide it as it hides from the resident set size.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live, self.peak, self._alive = 0, 0, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if size and key not in self._alive:
                    self._alive.add(key)
                    self.live += size
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._free, key, size)
        return out

    def _free(self, key: int, size: int) -> None:
        self._alive.discard(key)
        self.live -= size


class PeakMemory:
    """The most memory the block's new tensors held at once, above what was allocated at entry:
    CUDA ``max_memory_allocated``, or on CPU :class:`TensorMemory`. Instrumented: never timed.
    ``enabled=False`` measures nothing and leaves ``peak`` None."""

    def __init__(self, device: torch.device, enabled: bool = True) -> None:
        self.device, self.enabled = device, enabled
        self.peak: int | None = 0 if enabled else None

    def __enter__(self) -> "PeakMemory":
        if not self.enabled:
            return self
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._mode = TensorMemory().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._mode.__exit__(*exc)
            self.peak = self._mode.peak


class PeakResidentMemory:
    """The process's peak resident set size inside the block above its size at entry (Linux:
    ``/proc/self/clear_refs`` resets the peak); ``peak`` None where that is unavailable. For
    memory that is not torch tensors (onnxruntime's)."""

    def __enter__(self) -> "PeakResidentMemory":
        self.peak = None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._base = _status_kib("VmRSS")
        except OSError:
            self._base = None
        return self

    def __exit__(self, *exc) -> None:
        if self._base is not None:
            self.peak = max(0, _status_kib("VmHWM") - self._base) * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def time_runs(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> tuple[list[float], int]:
    """Wall times of ``repeats`` synchronised calls after ``warmup`` untimed ones (at least one,
    through :class:`PeakMemory`: the peak memory returned, state created on a first call included)."""
    with PeakMemory(device) as mem:
        fn()
    for _ in range(warmup - 1):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times, mem.peak


# ----------------------------------------------------------------------------- set-up


def random_model(config_path: str, device: torch.device, seed: int) -> tuple[torch.nn.Module, object]:
    """A default-initialised model of the config's family, its zero-initialised output layers drawn
    small (``model.perturb``; WaveGlow: ``end`` ~ N(0, 0.01)), so no coupling is the identity."""
    config = load_config(config_path)
    torch.manual_seed(seed)
    model = build_model(config)
    model.perturb(torch.Generator().manual_seed(seed))
    return model.to(device), config


def source_model(args: argparse.Namespace) -> torch.nn.Module:
    """``--checkpoint``'s weights or random ones, on the CPU, read or drawn once per run.
    Raises CheckpointError or ConfigError."""
    if args.checkpoint:
        return load_checkpoint(args.checkpoint, map_location="cpu")
    return random_model(args.config, torch.device("cpu"), args.seed)[0]


def inference_model(source: torch.nn.Module, device: torch.device, precision: str) -> torch.nn.Module:
    """A copy of ``source`` to time: on ``device`` in ``precision``, weight norm removed, eval mode."""
    return copy.deepcopy(source).to(device=device, dtype=DTYPES[precision]).eval().remove_weight_norm()


def set_precision(precision: str) -> None:
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def skip_reason(device: torch.device, precision: str, mode: str) -> str | None:
    if device.type == "cpu" and precision == "tf32":
        return "skipped: TF32 is a CUDA tensor-core format"
    if device.type == "cpu" and precision == "fp16":
        return "skipped: fp16 is a CUDA precision here (CPU fp16 kernels are slow emulation)"
    if mode == "cudagraph" and device.type != "cuda":
        return "cudagraph needs CUDA"
    if mode == "onnxruntime" and (device.type != "cpu" or precision != "fp32"):
        return "onnxruntime rows: the CPU provider, fp32"
    return None


def fast_vocoder(model, cache_conditioning: bool = False):
    """The model's exact fast inference object (``model.fast()``), else the model."""
    return model.fast(low_memory=not cache_conditioning)


def make_runner(model: torch.nn.Module, mode: str, mel: torch.Tensor, z: torch.Tensor, onnx_path: str | None = None):
    """(a no-argument function that synthesises the audio for ``mel`` and ``z`` in ``mode``, the
    FastWaveGlow or OnnxVocoder it runs or None). Each fast mode builds its own FastWaveGlow from
    the model; ``onnxruntime`` runs the file ``onnx_path`` exported from it."""
    if mode == "onnxruntime":
        vocoder = OnnxVocoder(onnx_path, "cpu", threads=torch.get_num_threads())
        return (lambda: vocoder.infer(mel, z=z)), vocoder
    if mode == "plain":
        return (lambda: model.infer(mel, z=z)), None
    if mode in ("fast", "fast-cached"):
        fast = fast_vocoder(model, cache_conditioning=mode == "fast-cached")
        return (lambda: fast.infer(mel, z=z)), fast
    if mode == "compile":
        compiled = torch.compile(lambda m, zz: model.infer(m, z=zz), dynamic=False)
        return (lambda: compiled(mel, z)), None
    return cuda_graph_runner(model, mel, z)


def cuda_graph_runner(model: torch.nn.Module, mel: torch.Tensor, z: torch.Tensor):
    """The fast path, with the cached operators, captured once for these shapes; each call replays
    it on the static inputs."""
    model = fast_vocoder(model, cache_conditioning=True)
    static_mel, static_z = mel.clone(), z.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # builds the operators and W^-1 caches outside the capture
            model.infer(static_mel, z=static_z)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = model.infer(static_mel, z=static_z)

    def run() -> torch.Tensor:
        graph.replay()
        return static_out

    return run, model


# ----------------------------------------------------------------------------- inference


def inference_rows(args: argparse.Namespace, source: torch.nn.Module, device: torch.device, sampling_rate: int) -> list[dict]:
    rows = []
    for precision in args.precisions:
        set_precision(precision)
        model = inference_model(source, device, precision)
        with tempfile.TemporaryDirectory() as folder:
            onnx_path = None
            if "onnxruntime" in args.modes and not skip_reason(device, precision, "onnxruntime"):
                onnx_path = export_onnx(model, os.path.join(folder, "model.onnx"))
            for seconds in args.lengths:
                for batch in args.batch_sizes:
                    rows += inference_setting(args, model, device, precision, seconds, batch, sampling_rate, onnx_path)
        del model
    return rows


def inference_setting(args, model, device, precision, seconds, batch, sampling_rate, onnx_path=None) -> list[dict]:
    """Every requested mode for one (precision, length, batch). Modes take turns within each
    repeat, so background load drifting during the run affects them alike."""
    frames = max(1, round(seconds * sampling_rate / model.hop_length))
    gen = torch.Generator().manual_seed(args.seed)
    mel = torch.randn(batch, model.n_mel_channels, frames, generator=gen).to(device)
    z = model.sample_latent(batch, frames * model.latent_steps_per_frame, args.sigma, gen, torch.device("cpu")).to(device)
    samples = batch * model.hop_length * frames
    base = {"precision": precision, "seconds": samples / batch / sampling_rate, "batch": batch, "frames": frames}
    rows, runners, vocoders = {}, {}, {}
    for mode in args.modes:
        reason = skip_reason(device, precision, mode)
        if reason:
            rows[mode] = {**base, "mode": mode, "skipped": reason}
            continue
        setup_start = time.perf_counter()
        # set-up and a first call; not under torch.compile on CPU, which would trace the dispatch mode
        with grad_mode(mode), memory_meter(device, mode) as mem:
            runners[mode], vocoders[mode] = make_runner(model, mode, mel, z, onnx_path)
            runners[mode]()
        with grad_mode(mode):
            for _ in range(args.warmup - 1):
                runners[mode]()
        synchronize(device)
        rows[mode] = {**base, "mode": mode, "setup_s": time.perf_counter() - setup_start, "times_s": [],
                      "peak_memory_bytes": mem.peak}
    outputs = {}
    for _ in range(args.repeats):
        for mode, run in runners.items():
            elapsed, out = time_once(run, device, mode)
            rows[mode]["times_s"].append(elapsed)
            outputs.setdefault(mode, out.float().cpu())
    reference = outputs.get("plain")
    for mode in runners:
        rows[mode].update(summarise(rows[mode]["times_s"], samples, sampling_rate))
        rows[mode]["max_rel_diff_vs_plain"] = relative_difference(outputs[mode], reference)
        rows[mode]["conditioning"] = conditioning_used(vocoders[mode], batch, z.size(2))
        print(format_row(rows[mode]), flush=True)
    return [rows[mode] for mode in args.modes]


def memory_meter(device: torch.device, mode: str):
    """Peak memory of a mode's set-up and first call: torch tensors, or the resident set for onnxruntime."""
    if mode == "onnxruntime":
        return PeakResidentMemory()
    return PeakMemory(device, enabled=not (mode == "compile" and device.type == "cpu"))


def conditioning_used(vocoder, batch: int, n: int) -> str:
    """How the timed calls computed the conditioning, read back from the FastWaveGlow they ran (None: plain)."""
    if isinstance(vocoder, OnnxVocoder):
        return "plain (ONNX graph)"
    ops = getattr(vocoder, "ops", None)  # FastWaveGlow's operators; other families have no folding
    if ops is None:
        return "plain"
    if not ops.uses_folding(batch, n):
        return "time-major"
    return "folded, cached" if ops.cache_conditioning else "folded per layer"


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


def summarise(times: list[float], samples: int, sampling_rate: int) -> dict:
    median = statistics.median(times)
    audio_seconds = samples / sampling_rate
    return {
        "times_s": times,
        "latency_s": median,
        "samples_per_s": samples / median,
        "x_real_time": audio_seconds / median,
        "s_per_audio_s": median / audio_seconds,
    }


# ----------------------------------------------------------------------------- precision


def accuracy_rows(
    args: argparse.Namespace, source: torch.nn.Module, given_mel: torch.Tensor | None, device: torch.device, sampling_rate: int
) -> list[dict]:
    """Each reduced precision's fast-path output against float32's (TF32 off) from the same latent
    (z = 0, or one draw at ``--accuracy_sigma``), batch 1: SNR in dB = 10 log10(sum ref^2 / sum (out - ref)^2),
    and the largest difference."""
    reduced = [p for p in args.precisions if p != "fp32" and not skip_reason(device, p, "fast")]
    if not reduced:
        return []
    set_precision("fp32")
    model = inference_model(source, device, "fp32")
    mels = {s: accuracy_mel(given_mel, model.n_mel_channels, s * sampling_rate / model.hop_length, args.seed)
            for s in args.lengths}
    gen = torch.Generator().manual_seed(args.seed + 2)
    latents = {s: model.sample_latent(1, mel.size(2) * model.latent_steps_per_frame, args.accuracy_sigma, gen,
                                      torch.device("cpu")).to(device) for s, mel in mels.items()}
    with torch.inference_mode():
        fast = fast_vocoder(model)
        references = {s: fast.infer(mel.to(device), z=latents[s]).float() for s, mel in mels.items()}
    del model, fast
    rows = []
    for precision in reduced:
        set_precision(precision)
        model = inference_model(source, device, precision)
        fast = fast_vocoder(model)
        for seconds, mel in mels.items():
            with torch.inference_mode():
                out = fast.infer(mel.to(device), z=latents[seconds]).float()
            ref = references[seconds]
            noise = (out - ref).pow(2).sum().item()
            snr = float("inf") if noise == 0 else 10 * math.log10(ref.pow(2).sum().item() / noise)
            row = {"precision": precision, "seconds": ref.size(1) / sampling_rate, "snr_db": snr, "sigma": args.accuracy_sigma,
                   "max_abs_diff": (out - ref).abs().max().item(), "reference_rms": ref.pow(2).mean().sqrt().item(),
                   "nonfinite": int((~torch.isfinite(out)).sum().item())}
            rows.append(row)
            print(f"{precision} vs fp32 {row['seconds']:.2f}s: SNR {snr:.1f} dB", flush=True)
        del model, fast
    set_precision("fp32")
    return rows


def accuracy_mel(given_mel: torch.Tensor | None, n_mel: int, frames: float, seed: int) -> torch.Tensor:
    """(1, n_mel, frames): ``--mel`` (repeated or cut to the length), else log-mel-like random frames."""
    frames = max(1, round(frames))
    if given_mel is not None:
        return given_mel.repeat(1, -(-frames // given_mel.size(1)))[:, :frames][None]
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randn(1, n_mel, frames, generator=gen) - 5.0


# ----------------------------------------------------------------------------- training


def training_rows(args: argparse.Namespace, device: torch.device) -> list[dict]:
    rows = []
    for precision in args.train_precisions:
        set_precision("fp32")
        model, config = random_model(args.config, device, args.seed)
        model.train()
        loss_fn = config.family.loss(config.train_config)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.train_config.learning_rate)
        step = make_train_step(model, loss_fn, optimizer, device, precision, args)
        times, peak = time_runs(step, device, args.warmup, args.repeats)
        samples = args.train_batch_size * args.segment_length
        row = {"precision": precision, "batch": args.train_batch_size, "segment_length": args.segment_length,
               "times_s": times, "step_s": statistics.median(times), "samples_per_s": samples / statistics.median(times),
               "peak_memory_bytes": peak}
        rows.append(row)
        print(f"train {precision}: {row['step_s']:.3f} s/step, {row['samples_per_s']:.0f} samples/s", flush=True)
        del model, optimizer
    return rows


def make_train_step(model, loss_fn, optimizer, device, precision, args) -> Callable[[], float]:
    """One forward + backward + Adam step on a fixed random batch; AMP is fp16 with a GradScaler on
    CUDA and bfloat16 autocast on CPU."""
    gen = torch.Generator().manual_seed(args.seed)
    frames = args.segment_length // model.hop_length + 1
    mel = torch.randn(args.train_batch_size, model.n_mel_channels, frames, generator=gen).to(device)
    audio = (0.1 * torch.randn(args.train_batch_size, args.segment_length, generator=gen)).to(device)
    amp = precision == "amp"
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            loss = loss_fn(model(mel, audio))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    return step


# ----------------------------------------------------------------------------- trained state


class SubnormalCount(TorchDispatchMode):
    """Counts the subnormal float32 values that the ops inside the block write (read from the bits,
    as a float comparison on a thread that treats subnormals as zero would not see them)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.device.type == "cpu":
                bits = t.detach().contiguous().view(torch.int32)
                self.count += int(((bits & 0x7F800000) == 0).logical_and_(bits & 0x007FFFFF != 0).sum())
        return out


def trained_state_rows(args: argparse.Namespace) -> list[dict]:
    """``--warmup`` + ``--repeats`` steps from ``--train_checkpoint``'s state, twice: in ``Trainer.run``
    (the step times it records in metrics.jsonl) and called on this thread, where subnormals are kept.
    Both start from the same state and batches, on the device train.py would choose.
    Raises CheckpointError, ConfigError or TrainingError."""
    from waveglow.metrics import read_metrics
    from waveglow.training import Trainer

    checkpoint = read_checkpoint(args.train_checkpoint)
    steps = args.warmup + args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        config = trained_state_config(checkpoint, args, tmp, steps)
        loop = Trainer(config, log=lambda *a: None)
        loop.setup()
        with contextlib.redirect_stdout(io.StringIO()):
            loop.run()
        records = [r for r in read_metrics(os.path.join(tmp, "loop", "metrics.jsonl")) if "samples_per_second" in r]
        samples = config.train_config.batch_size * config.data_config.segment_length
        loop_times = [samples / r["samples_per_second"] for r in records][args.warmup:]
        config.train_config.output_directory = os.path.join(tmp, "kept")
        kept = Trainer(config, log=lambda *a: None)
        kept.setup()
        kept.model.train()
        batches = kept.batches()
        kept_times = []
        for mel, audio in itertools.islice(batches, steps):
            start = time.perf_counter()
            kept.train_step(mel, audio)
            kept_times.append(time.perf_counter() - start)
        with SubnormalCount() as count:
            kept.train_step(*next(batches))
    loop_s, kept_s = statistics.median(loop_times), statistics.median(kept_times[args.warmup:])
    row = {"checkpoint": args.train_checkpoint, "family": config.family.name, "iteration": checkpoint.iteration,
           "batch": config.train_config.batch_size, "segment_length": config.data_config.segment_length,
           "loop_times_s": loop_times, "kept_times_s": kept_times[args.warmup:], "loop_step_s": loop_s,
           "kept_step_s": kept_s, "kept_over_loop": kept_s / loop_s, "subnormals_written_kept": count.count}
    print(f"trained state {checkpoint.iteration}: {loop_s:.3f} s per step in the training loop, {kept_s:.3f} s with "
          f"subnormals kept ({count.count} written per step)", flush=True)
    return [row]


def trained_state_config(checkpoint, args: argparse.Namespace, tmp: str, steps: int):
    """The checkpoint's own config (``--config`` for a foreign file), resuming from it for ``steps``
    iterations on crops of ``--clip``, with no validation, logging or checkpoints beyond the last."""
    config = checkpoint.config if checkpoint.config is not None else load_config(args.config)
    path = os.path.join(tmp, "config.json")
    with open(path, "w") as f:
        json.dump(config.to_dict(), f)
    files = os.path.join(tmp, "files.txt")
    with open(files, "w") as f:
        f.write(f"{os.path.abspath(args.clip)}\n" * config.train_config.batch_size)
    return load_config(path, [
        f"data_config.training_files={files}", "data_config.validation_files=",
        f"train_config.output_directory={os.path.join(tmp, 'loop')}",
        f"train_config.checkpoint_path={os.path.abspath(args.train_checkpoint)}",
        f"train_config.max_iterations={checkpoint.iteration + steps}", "train_config.iters_per_checkpoint=1000000000",
        "train_config.with_tensorboard=false", "train_config.num_workers=0", "train_config.keep_last=0",
    ])


def trained_state_markdown(rows: list[dict]) -> list[str]:
    lines = ["", "Training steps from a trained state (crops of --clip; the loop flushes subnormals to zero):", "",
             ("| checkpoint | family | iteration | batch x segment | s per step, training loop | "
              "s per step, subnormals kept | kept / loop | subnormals written per kept step |"),
             "|---|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {os.path.basename(r['checkpoint'])} | {r['family']} | {r['iteration']} | "
                     f"{r['batch']} x {r['segment_length']} | {r['loop_step_s']:.3f} | {r['kept_step_s']:.3f} | "
                     f"{r['kept_over_loop']:.2f} | {r['subnormals_written_kept']:,} |")
    return lines


# ----------------------------------------------------------------------------- families


FAMILY_MODES = ("reference-style", "plain", "fast")


def family_rows(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Each family on the same speech: parameters, inference per mode and length, one training step.

    ``reference-style`` keeps weight norm (recomputed every call, as ksw0306's ``reverse`` does),
    ``plain`` removes it, ``fast`` is the family's exact inference object (``FastWaveGlow``,
    ``FastFloWaveNet``). Random weights: the arithmetic does not depend on the values.
    """
    from waveglow.audio import load_audio
    from waveglow.synthesis import draw_latents

    rows = []
    for config_path in args.families:
        config = load_config(config_path)
        family = config.family
        torch.manual_seed(args.seed)
        model = build_model(config).to(device).eval()
        speech = load_audio(args.clip, config.data_config.sampling_rate)
        features = family.features(config.data_config)
        base = {"family": family.name, "config": os.path.relpath(config_path),
                "parameters": sum(p.numel() for p in model.parameters())}
        for seconds in args.lengths:
            frames = max(1, round(seconds * config.data_config.sampling_rate / model.hop_length))
            audio = speech.repeat(1 + frames * model.hop_length // speech.numel())[: frames * model.hop_length]
            with torch.no_grad():
                mel = features(features.prepare_audio(audio[None]))[:, :, :frames].to(device)  # (1, n_mel, frames)
            z = draw_latents(model, [frames * model.latent_steps_per_frame], args.sigma,
                             torch.Generator().manual_seed(args.seed))[0][None].to(device)
            for mode in FAMILY_MODES:
                vocoder = family_vocoder(model, family, mode)
                with torch.inference_mode():
                    times, peak = time_runs(lambda v=vocoder: v.infer(mel, z=z), device, args.warmup, args.repeats)
                row = {**base, "mode": mode, "seconds": frames * model.hop_length / config.data_config.sampling_rate,
                       "times_s": times, "peak_memory_bytes": peak}
                row.update(summarise(times, frames * model.hop_length, config.data_config.sampling_rate))
                rows.append(row)
                print(f"{family.name} {mode} {row['seconds']:.2f}s: {row['s_per_audio_s']:.2f} s per s of audio, "
                      f"peak {megabytes(peak)} MB", flush=True)
                del vocoder
        rows.append({**base, "mode": "train", **family_training(args, config, model, device)})
        del model
    return rows


def family_vocoder(model, family, mode: str):
    """The object whose ``infer`` a family mode times (a copy for the modes that change the model)."""
    if mode == "reference-style":
        return model
    plain = copy.deepcopy(model).remove_weight_norm()
    return plain if mode == "plain" else plain.fast(low_memory=True)


def family_training(args: argparse.Namespace, config, model, device: torch.device) -> dict:
    """One fp32 Adam step on a batch of one training crop of the clip, as the family's dataset cuts it."""
    family = config.family
    dataset = family.training_dataset([args.clip], config.data_config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        mel, audio = dataset[0]
    train_model = copy.deepcopy(model).train()
    loss_fn = family.loss(config.train_config)
    optimizer = torch.optim.Adam(train_model.parameters(), lr=config.train_config.learning_rate)
    mel, audio = mel[None].to(device), audio[None].to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(train_model(mel, audio)).backward()
        optimizer.step()

    times, peak = time_runs(step, device, args.warmup, args.repeats)
    median = statistics.median(times)
    print(f"{family.name} train: {median:.2f} s per step, {audio.numel() / median:.0f} samples/s", flush=True)
    return {"segment_length": audio.numel(), "times_s": times, "step_s": median,
            "samples_per_s": audio.numel() / median, "peak_memory_bytes": peak}


def families_markdown(rows: list[dict]) -> list[str]:
    lines = ["", "Model families on the same speech (random weights, batch 1, fp32; peak: tensor memory of the first call "
             "or step, the inference object's set-up not counted):", "",
             "| family (config) | parameters | mode | audio s | s per s of audio | peak MB | train samples/s |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        name = f"{r['family']} ({os.path.splitext(os.path.basename(r['config']))[0]})"
        if r["mode"] == "train":
            lines.append(f"| {name} | {r['parameters']:,} | train step ({r['segment_length']} samples) | | | "
                         f"{megabytes(r['peak_memory_bytes'])} | {r['samples_per_s']:,.0f} |")
        else:
            lines.append(f"| {name} | {r['parameters']:,} | {r['mode']} | {r['seconds']:.2f} | "
                         f"{r['s_per_audio_s']:.2f} | {megabytes(r['peak_memory_bytes'])} | |")
    return lines


# ----------------------------------------------------------------------------- report


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def metadata(args: argparse.Namespace, device: torch.device) -> dict:
    return {
        "device": device.type,
        "device_name": device_name(device),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "date": args.date,
        "config": os.path.relpath(args.config) if os.path.isabs(args.config) else args.config,
        "weights": args.checkpoint or "random (end ~ N(0, 0.01))",
        "accuracy_mel": args.mel or "random log-mel-like frames",
        "repeats": args.repeats,
        "warmup": args.warmup,
        "sigma": args.sigma,
        "statistic": "median of repeats; CUDA synchronised",
        "loadavg_start": os.getloadavg(),
    }


def format_row(row: dict) -> str:
    if "skipped" in row:
        return f"{row['mode']} {row['precision']} {row['seconds']:.2f}s B{row['batch']}: {row['skipped']}"
    return (f"{row['mode']} {row['precision']} {row['seconds']:.2f}s B{row['batch']}: {row['latency_s']:.3f} s, "
            f"{row['s_per_audio_s']:.3f} s per audio s, {row['samples_per_s']:.0f} samples/s")


def megabytes(n: int | None) -> str:
    return "" if n is None else f"{n / 2**20:.0f}"


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        f"Device: {meta['device_name']} ({meta['device']}, {meta['threads']} threads), torch {meta['torch']}, "
        f"{meta['date']}, config `{meta['config']}`, median of {meta['repeats']} after {meta['warmup']} warm-up; "
        f"load average {meta['loadavg_start'][0]:.2f} at start, {meta['loadavg_end'][0]:.2f} at end.",
    ]
    if result["inference"]:
        lines += [
            "",
            "| mode | conditioning | precision | batch | audio s | latency s | s per audio s | x real time | samples/s | peak MB | rel. diff vs plain |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for r in result["inference"]:
        if "skipped" in r:
            lines.append(f"| {r['mode']} | | {r['precision']} | {r['batch']} | {r['seconds']:.2f} | {r['skipped']} ||||||")
            continue
        diff = "" if r["max_rel_diff_vs_plain"] is None else f"{r['max_rel_diff_vs_plain']:.1e}"
        lines.append(
            f"| {r['mode']} | {r['conditioning']} | {r['precision']} | {r['batch']} | {r['seconds']:.2f} | {r['latency_s']:.3f} | "
            f"{r['s_per_audio_s']:.3f} | {r['x_real_time']:.3f} | {r['samples_per_s']:.0f} | "
            f"{megabytes(r['peak_memory_bytes'])} | {diff} |"
        )
    if result["accuracy"]:
        lines += ["", "Reduced precision against float32 (fast path, sigma 0, batch 1):", "",
                  "| precision | audio s | SNR dB | max abs diff | fp32 output RMS | non-finite |", "|---|---|---|---|---|---|"]
        for r in result["accuracy"]:
            lines.append(f"| {r['precision']} | {r['seconds']:.2f} | {r['snr_db']:.1f} | {r['max_abs_diff']:.2e} | "
                         f"{r['reference_rms']:.2e} | {r['nonfinite']} |")
    if result["training"]:
        lines += ["", "| training | batch | segment | s per step | samples/s | peak MB |", "|---|---|---|---|---|---|"]
        for r in result["training"]:
            lines.append(f"| {r['precision']} | {r['batch']} | {r['segment_length']} | {r['step_s']:.3f} | "
                         f"{r['samples_per_s']:.0f} | {megabytes(r['peak_memory_bytes'])} |")
    if result.get("families"):
        lines += families_markdown(result["families"])
    if result.get("trained_state"):
        lines += trained_state_markdown(result["trained_state"])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--stream" in argv:
        from waveglow.bench_stream import main as stream_main

        return stream_main([a for a in argv if a != "--stream"])
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    json_path = args.output_json or os.path.join("benchmarks", f"{device.type}_{args.date}.json")
    md_path = args.output_md or os.path.splitext(json_path)[0] + ".md"
    try:  # the folders first: a run that measured for minutes must not end unable to write
        for path in (json_path, md_path):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as e:
        print(f"error: {e.filename or json_path}: cannot create the output folder: {e.strerror or e}", file=sys.stderr)
        return 1
    try:
        sampling_rate = load_config(args.config).data_config.sampling_rate
        source = source_model(args) if not (args.no_inference or args.families) else None
        given_mel = load_mel(args.mel, source.n_mel_channels) if args.mel and source is not None else None
    except (CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except MelError as e:
        print(f"error: {args.mel}: {e}", file=sys.stderr)
        return 1
    result = {"meta": metadata(args, device), "inference": [], "accuracy": [], "training": []}
    if args.families:
        try:
            result["families"] = family_rows(args, device)
        except (CheckpointError, ConfigError, AudioError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    elif source is not None:
        result["inference"] = inference_rows(args, source, device, sampling_rate)
        if not args.no_accuracy:
            result["accuracy"] = accuracy_rows(args, source, given_mel, device, sampling_rate)
    if args.train:
        result["training"] = training_rows(args, device)
    if args.train_checkpoint:
        try:
            result["trained_state"] = trained_state_rows(args)
        except (CheckpointError, ConfigError, AudioError, TrainingError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    result["meta"]["loadavg_end"] = os.getloadavg()
    try:
        write_text(json_path, json.dumps(result, indent=2))
        write_text(md_path, markdown(result))
    except OSError as e:
        print(f"error: cannot write {json_path} and {md_path}: {e.strerror or e}"
              + (f" ({e.filename})" if e.filename else ""), file=sys.stderr)
        return 1
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
