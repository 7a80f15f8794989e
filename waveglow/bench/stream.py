"""The streaming benchmark: latency, cost and error of :class:`~waveglow.streaming.StreamingVocoder`,
one entry per config (random weights, perturbed so no coupling is the identity) and per checkpoint.

For each config it reports the receptive field, the algorithmic latency of an exact stream (its
lookahead, in frames and ms), and for each push size: the compute per push and per pushed frame,
the real-time factor (compute seconds per second of audio) in steady state and the first-audio
latency of a fresh stream fed as fast as it takes frames. Then the error against whole-utterance
inference for each lookahead and exact, on the config's random weights and on each checkpoint's
model: the stream's output for a frame when exactly ``lookahead`` frames after it have arrived
(pushes of one frame), on a speech clip's mel in the family's own features, sampled at
``error_frames`` frames. :func:`plot` draws both.
"""

from __future__ import annotations

import math
import os
import sys
import time

import torch

from ..checkpoint import load_model
from ..config import Config
from ..plotting import figure_to_png, new_figure
from ..registry import family_of
from ..streaming import StreamingVocoder, receptive_field_of, stream_latent
from .meters import device_name
from .models import config_label, load_clip, random_model
from .settings import StreamSettings

__all__ = ["stream_benchmark", "family_result", "checkpoint_result", "timing_rows", "error_rows", "speech_mel", "plot"]


def stream_benchmark(configs: list[Config | str], checkpoints: list[str], settings: StreamSettings, date: str) -> dict:
    """The whole result: ``meta`` (device, threads, torch, date, load averages, settings), a
    :func:`family_result` per config and a :func:`checkpoint_result` per checkpoint."""
    meta = {"cpu": device_name(torch.device(settings.device)), "device": settings.device,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "date": date,
            "loadavg_start": os.getloadavg(), "chunks": settings.chunks, "pushes": settings.pushes,
            "statistic": f"median of {settings.pushes} timed pushes after one untimed",
            "clip": settings.clip or "synthesised speech-like signal"}
    result = {"meta": meta, "families": [family_result(c, settings) for c in configs],
              "checkpoints": [checkpoint_result(c, settings) for c in checkpoints]}
    meta["loadavg_end"] = os.getloadavg()
    return result


def speech_mel(model, data_config, clip: str | None, frames: int) -> torch.Tensor:
    """The clip (None: the synthesised one), repeated to at least ``frames`` frames, in the family's
    features -> (n_mel, frames)."""
    features = family_of(model).features(data_config)
    audio = load_clip(clip, data_config.sampling_rate)
    audio = audio.repeat(math.ceil(frames * model.hop_length / audio.numel()) + 1)
    with torch.no_grad():
        mel = features(features.prepare_audio(audio[None]))[0]
    return mel[:, :frames].contiguous()


def timing_rows(model, data_config, settings: StreamSettings) -> list[dict]:
    """Steady-state cost and first-audio latency of an exact stream at each push size."""
    field, hop, rate = receptive_field_of(model), model.hop_length, data_config.sampling_rate
    rows = []
    for k in settings.chunks:
        warm = field.past + field.future + k
        mel = speech_mel(model, data_config, settings.clip, warm + (settings.pushes + 1) * k)
        stream = StreamingVocoder(model, seed=settings.seed)
        start, first = time.perf_counter(), None
        for i in range(0, warm, k):  # a fresh stream fed as fast as it takes frames
            if stream.push(mel[:, i : i + k]).numel() and first is None:
                first = time.perf_counter() - start
        stream.push(mel[:, warm : warm + k])  # untimed
        times = []
        for i in range(settings.pushes):
            a = warm + (i + 1) * k
            t = time.perf_counter()
            stream.push(mel[:, a : a + k])
            times.append(time.perf_counter() - t)
        per_push = sorted(times)[len(times) // 2]
        rows.append({"chunk_frames": k, "push_s": per_push, "ms_per_frame": 1000 * per_push / k,
                     "rtf": per_push / (k * hop / rate), "first_audio_s": first,
                     "window_frames": stream.windows[-1][1] - stream.windows[-1][0]})
    return rows


@torch.no_grad()
def error_rows(model, data_config, settings: StreamSettings, weights: str, sigma: float) -> list[dict]:
    """Error of frame f's audio when exactly L frames after it have arrived, against the whole
    utterance, from one latent at ``sigma`` (the model's ``default_sigma``)."""
    field, hop, steps = receptive_field_of(model), model.hop_length, model.latent_steps_per_frame
    reach = max(list(settings.lookaheads) + [field.future])
    span = max(settings.error_frames, 64)  # the sampled frames spread over this many frames of speech
    frames = field.past + reach + span + 1
    frames += (-frames) % field.alignment
    device = next(iter(model.parameters())).device
    mel = speech_mel(model, data_config, settings.clip, frames).to(device)
    z = stream_latent(model, frames, sigma=sigma, seed=settings.seed).to(device)
    whole = model.infer(mel[None], sigma, z=z)[0].float().cpu()
    targets = [field.past + (i * span) // settings.error_frames for i in range(settings.error_frames)]
    rows = []
    for lookahead in sorted(set(settings.lookaheads)) + [None]:
        L = field.future if lookahead is None else lookahead
        err, ref = [], []
        for f in targets:
            s = f - field.past
            s -= s % field.alignment
            e = min(frames, f + 1 + L)
            e -= (e - s) % field.alignment
            out = model.infer(mel[None, :, s:e], sigma, z=z[..., s * steps : e * steps])[0].float().cpu()
            err.append(out[(f - s) * hop : (f - s + 1) * hop] - whole[f * hop : (f + 1) * hop])
            ref.append(whole[f * hop : (f + 1) * hop])
        err, ref = torch.cat(err), torch.cat(ref)
        rel = (err.norm() / ref.norm()).item()
        rows.append({"weights": weights, "lookahead": "exact" if lookahead is None else lookahead,
                     "lookahead_frames": L, "max_abs_error": err.abs().max().item(),
                     "relative_error_db": 20 * math.log10(rel) if rel > 0 else None,
                     "signal_rms": ref.pow(2).mean().sqrt().item()})
    return rows


def prepared(model, device: str):
    """The model's low-memory fast object, weight norm removed, in eval mode on ``device``."""
    return model.remove_weight_norm().eval().to(device).fast(low_memory=True)


def family_result(config: Config | str, settings: StreamSettings) -> dict:
    """Receptive field, latency, timing rows and error rows of a random model of ``config``."""
    model, full = random_model(config, "cpu", settings.seed)
    sigma, model = model.default_sigma, prepared(model, settings.device)
    field, rate = receptive_field_of(model), full.data_config.sampling_rate
    print(f"{config_label(config)} ({family_of(model).name}): {field}", file=sys.stderr, flush=True)
    return {
        "family": family_of(model).name, "config": config_label(config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "receptive_field": {"past": field.past, "future": field.future, "alignment": field.alignment},
        "latency_frames": field.future, "latency_ms": 1000 * field.future * model.hop_length / rate,
        "timing": timing_rows(model, full.data_config, settings),
        "errors": error_rows(model, full.data_config, settings, "random, perturbed", sigma),
    }


def checkpoint_result(path: str, settings: StreamSettings) -> dict:
    """Receptive field and error rows of a trained model."""
    model, config = load_model(path, map_location="cpu")
    sigma, model = model.default_sigma, prepared(model, settings.device)
    field = receptive_field_of(model)
    return {"family": family_of(model).name, "checkpoint": path,
            "receptive_field": {"past": field.past, "future": field.future, "alignment": field.alignment},
            "errors": error_rows(model, config.data_config, settings, f"trained: {os.path.basename(path)}", sigma)}


def plot(result: dict, path: str) -> None:
    """Left: error (dB relative to the signal) against lookahead, one line per family and weights.
    Right: real-time factor against frames per push, one line per family."""
    fig = new_figure(11, 4.4)
    ax, speed = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    floor = -160.0
    for r in result["families"] + result["checkpoints"]:
        rows = sorted(r["errors"], key=lambda e: e["lookahead_frames"])
        xs = [e["lookahead_frames"] for e in rows]
        ys = [floor if e["relative_error_db"] is None else max(floor, e["relative_error_db"]) for e in rows]
        ax.plot(xs, ys, marker="o", label=f"{r['family']}, {rows[0]['weights']} (exact at {r['receptive_field']['future']})")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("lookahead (mel frames after the frame)")
    ax.set_ylabel("error / signal (dB, RMS over sampled frames)")
    ax.set_title(f"Error against whole-utterance inference ({floor:.0f} dB: identical)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    for r in result["families"]:
        chunks = [t["chunk_frames"] for t in r["timing"]]
        speed.plot(chunks, [t["rtf"] for t in r["timing"]], marker="o",
                   label=f"{r['family']} ({r['parameters'] / 1e6:.1f} M parameters), exact lookahead {r['latency_frames']}")
    speed.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    speed.set_xscale("log", base=2)
    ticks = sorted({t["chunk_frames"] for r in result["families"] for t in r["timing"]})
    speed.set_xticks(ticks, [str(t) for t in ticks])
    speed.set_yscale("log")
    speed.set_xlabel("frames per push")
    speed.set_ylabel("real-time factor (compute s per audio s)")
    meta = result["meta"]
    where = "CUDA" if meta.get("device") == "cuda" else f"CPU, {meta['threads']} thread(s), shared machine"
    speed.set_title(f"Exact streaming cost, {where}", fontsize=10)
    speed.grid(True, which="both", alpha=0.3)
    speed.legend(fontsize=7)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure_to_png(fig, path)
