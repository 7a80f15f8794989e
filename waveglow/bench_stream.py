"""``waveglow-benchmark --stream``: streaming latency, cost and error, one row per family.

    python scripts/benchmark.py --stream --threads 1
    python scripts/benchmark.py --stream --configs configs/demo.json --checkpoints demo_output/checkpoints/waveglow_900

For each config (random weights, perturbed so no coupling is the identity) it reports the
receptive field, the algorithmic latency of an exact stream (its lookahead, in frames and ms),
and for pushes of 1, 8 and 32 frames: the compute per push and per pushed frame, the real-time
factor (compute seconds per second of audio) in steady state and the first-audio latency of a
fresh stream fed as fast as it takes frames. Then the error against whole-utterance inference
for lookaheads 0, 8, 16, 32, 64 and exact, on the config's random weights and on each
``--checkpoints`` model: the stream's output for a frame when exactly ``lookahead`` frames after
it have arrived (pushes of one frame), on a speech clip's mel in the family's own features,
sampled at ``--error_frames`` frames. Results go to a JSON file, a Markdown table and a plot.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time

import torch

from waveglow import load_config
from waveglow.audio import load_audio
from waveglow.checkpoint import build_model, load_model
from waveglow.registry import family_of
from waveglow.streaming import StreamingVocoder, receptive_field_of, stream_latent

LOOKAHEADS = (0, 8, 16, 32, 64)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=[os.path.join("configs", "config.json"),
                                                    os.path.join("configs", "flowavenet.json")])
    p.add_argument("--checkpoints", nargs="*", default=[], help="trained models for the error table too")
    p.add_argument("--chunks", type=int, nargs="+", default=[1, 8, 32], help="frames per push")
    p.add_argument("--lookaheads", type=int, nargs="+", default=list(LOOKAHEADS))
    p.add_argument("--pushes", type=int, default=3, help="timed pushes per chunk size, after one untimed")
    p.add_argument("--error_frames", type=int, default=4, help="frames sampled for the error table")
    p.add_argument("--clip", default=os.path.join("tests", "data", "wavs", "allison-vm-tooshort.wav"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--date", default=datetime.date.today().isoformat())
    p.add_argument("--output_json", default=None, help="default: benchmarks/cpu_<date>_streaming.json")
    p.add_argument("--plot", default=os.path.join("docs", "images", "streaming-error.png"))
    return p.parse_args(argv)


def speech_mel(model, data_config, clip: str, frames: int) -> torch.Tensor:
    """The clip, repeated to at least ``frames`` frames, in the family's features -> (n_mel, frames)."""
    features = family_of(model).features(data_config)
    audio = load_audio(clip, data_config.sampling_rate)
    audio = audio.repeat(math.ceil(frames * model.hop_length / audio.numel()) + 1)
    with torch.no_grad():
        mel = features(features.prepare_audio(audio[None]))[0]
    return mel[:, :frames].contiguous()


def timing_rows(model, data_config, args) -> list[dict]:
    """Steady-state cost and first-audio latency of an exact stream at each push size."""
    field, hop, rate = receptive_field_of(model), model.hop_length, data_config.sampling_rate
    rows = []
    for k in args.chunks:
        warm = field.past + field.future + k
        mel = speech_mel(model, data_config, args.clip, warm + (args.pushes + 1) * k)
        stream = StreamingVocoder(model, seed=args.seed)
        start, first = time.perf_counter(), None
        for i in range(0, warm, k):  # a fresh stream fed as fast as it takes frames
            if stream.push(mel[:, i : i + k]).numel() and first is None:
                first = time.perf_counter() - start
        stream.push(mel[:, warm : warm + k])  # untimed
        times = []
        for i in range(args.pushes):
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
def error_rows(model, data_config, args, weights: str) -> list[dict]:
    """Error of frame f's audio when exactly L frames after it have arrived, against the whole utterance."""
    field, hop, steps = receptive_field_of(model), model.hop_length, model.latent_steps_per_frame
    family = family_of(model)
    reach = max(args.lookaheads + [field.future])
    span = max(args.error_frames, 64)  # the sampled frames spread over this many frames of speech
    frames = field.past + reach + span + 1
    frames += (-frames) % field.alignment
    device = next(iter(model.parameters())).device
    mel = speech_mel(model, data_config, args.clip, frames).to(device)
    sigma = family.default_sigma
    z = stream_latent(model, frames, sigma=sigma, seed=args.seed).to(device)
    whole = model.infer(mel[None], sigma, z=z)[0].float().cpu()
    targets = [field.past + (i * span) // args.error_frames for i in range(args.error_frames)]
    rows = []
    for lookahead in sorted(set(args.lookaheads)) + [None]:
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
                     "relative_error_db": 20 * math.log10(rel) if rel > 0 else None, "signal_rms": ref.pow(2).mean().sqrt().item()})
    return rows


def random_model(config_path: str, seed: int, device: str):
    config = load_config(config_path)
    torch.manual_seed(seed)
    model = build_model(config)
    model.perturb(torch.Generator().manual_seed(seed))
    return prepared(model, device), config.data_config


def prepared(model, device: str):
    return model.remove_weight_norm().eval().to(device).fast(low_memory=True)


def family_result(config_path: str, args) -> dict:
    model, data_config = random_model(config_path, args.seed, args.device)
    field, rate = receptive_field_of(model), data_config.sampling_rate
    print(f"{config_path}: {field}", file=sys.stderr, flush=True)
    return {
        "family": family_of(model).name, "config": config_path,
        "parameters": sum(p.numel() for p in model.parameters()),
        "receptive_field": {"past": field.past, "future": field.future, "alignment": field.alignment},
        "latency_frames": field.future, "latency_ms": 1000 * field.future * model.hop_length / rate,
        "timing": timing_rows(model, data_config, args),
        "errors": error_rows(model, data_config, args, "random, perturbed"),
    }


def checkpoint_result(path: str, args) -> dict:
    model, config = load_model(path, map_location="cpu")
    model = prepared(model, args.device)
    field = receptive_field_of(model)
    return {"family": family_of(model).name, "checkpoint": path,
            "receptive_field": {"past": field.past, "future": field.future, "alignment": field.alignment},
            "errors": error_rows(model, config.data_config, args, f"trained: {os.path.basename(path)}")}


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [f"Device: {meta['cpu']} ({meta.get('device', 'cpu')}, {meta['threads']} threads), torch {meta['torch']}, {meta['date']}; load average "
             f"{meta['loadavg_start'][0]:.2f} at start, {meta['loadavg_end'][0]:.2f} at end (a shared machine: "
             "timings are indicative). Random weights perturbed so no coupling is the identity.", "",
             "| family | parameters | receptive field past / future frames | algorithmic latency | frames per push | "
             "window frames | compute per push s | ms per pushed frame | real-time factor | first audio s |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["families"]:
        for t in r["timing"]:
            lines.append(f"| {r['family']} | {r['parameters']:,} | {r['receptive_field']['past']} / "
                         f"{r['receptive_field']['future']} | {r['latency_frames']} frames, {r['latency_ms']:.0f} ms | "
                         f"{t['chunk_frames']} | {t['window_frames']} | {t['push_s']:.3f} | {t['ms_per_frame']:.1f} | "
                         f"{t['rtf']:.2f} | {t['first_audio_s']:.2f} |")
    lines += ["", "Error against whole-utterance inference by lookahead (a frame's audio when exactly that many "
              "frames after it have arrived; sampled frames of a speech clip's mel):", "",
              "| family | weights | lookahead | frames | max abs error | error / signal (dB) | signal RMS |",
              "|---|---|---|---:|---:|---:|---:|"]
    for r in result["families"] + result["checkpoints"]:
        for e in r["errors"]:
            db = "exact (0)" if e["relative_error_db"] is None else f"{e['relative_error_db']:.1f}"
            lines.append(f"| {r['family']} | {e['weights']} | {e['lookahead']} | {e['lookahead_frames']} | "
                         f"{e['max_abs_error']:.2e} | {db} | {e['signal_rms']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: str) -> None:
    """Left: error (dB relative to the signal) against lookahead, one line per family and weights.
    Right: real-time factor against frames per push, one line per family."""
    from waveglow.plotting import figure_to_png, new_figure

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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from waveglow.cli.benchmark import device_name

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device is available", file=sys.stderr)
        return 1
    meta = {"cpu": device_name(torch.device(args.device)), "device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "date": args.date, "loadavg_start": os.getloadavg(), "chunks": args.chunks, "pushes": args.pushes,
            "statistic": f"median of {args.pushes} timed pushes after one untimed", "clip": args.clip}
    result = {"meta": meta, "families": [family_result(c, args) for c in args.configs],
              "checkpoints": [checkpoint_result(c, args) for c in args.checkpoints]}
    meta["loadavg_end"] = os.getloadavg()
    json_path = args.output_json or os.path.join("benchmarks", f"{args.device}_{args.date}_streaming.json")
    md_path = os.path.splitext(json_path)[0] + ".md"
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(result, f, indent=2)
    with open(md_path, "w") as f:
        f.write(markdown(result))
    plot(result, args.plot)
    print(f"wrote {json_path}, {md_path} and {args.plot}", file=sys.stderr)
    return 0
