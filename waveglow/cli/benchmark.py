"""Benchmark a flow vocoder's inference and training: samples/s, x real time, latency and peak memory.

    waveglow-benchmark --device cpu --threads 2 --lengths 1 10 --modes plain fast
    waveglow-benchmark --device cuda --precisions fp32 tf32 fp16 bf16 --modes plain fast cudagraph
    waveglow-benchmark --families configs/config.json configs/flowavenet.json --lengths 1   # side by side
    waveglow-benchmark --no_inference --train_checkpoint demo_output/checkpoints/waveglow_900   # a trained state
    waveglow-benchmark --stream --threads 1   # the streaming benchmark (--stream --help)

Without ``--config`` the model is the package's default (NVIDIA's published 256-channel WaveGlow);
without ``--clip`` the speech is a synthesised speech-like signal: nothing is read from a checkout.
Weights are random (zero-initialised output layers drawn small by ``model.perturb``, so no coupling
is skipped; FLOPs do not depend on values) unless ``--checkpoint`` names real ones, the latent z is
fixed, and every mode computes the same audio: each row records its largest difference from the
plain path and the inference object that ran. Reduced precisions (tf32, fp16, bf16) are also
compared with float32 at sigma 0: SNR in dB, on ``--mel`` when given. CUDA timings are synchronised;
each row is the median of ``--repeats`` runs after ``--warmup`` untimed ones. Results go to a JSON
file and a Markdown table, with device, torch version, date and the load average recorded.

Modes: ``plain`` (``model.infer``), each of the model's fast variants by name (``fast``, and for
WaveGlow ``fast-cached``: fast with its folded conditioning operators kept), ``compile``
(``torch.compile`` of the plain path), ``cudagraph`` (``model.fast()`` captured in a CUDA graph) and
``onnxruntime`` (the model exported to ONNX, run by onnxruntime's CPU provider with ``--threads``
threads; its peak memory is the process's resident set above that at entry). Precisions: ``fp32``
(TF32 off), ``tf32``, ``fp16`` and ``bf16`` (the whole model cast). On CPU, tf32 and fp16 rows are
skipped with a note, as is a mode the model does not offer.

The library is :mod:`waveglow.bench`; this module parses the flags, calls it and writes the files.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys

import torch

from waveglow.atomic import write_text
from waveglow.bench import Settings, StreamSettings, markdown, stream_benchmark, stream_markdown
from waveglow.bench.families import family_rows
from waveglow.bench.inference import GENERIC_MODES, accuracy_rows, inference_rows
from waveglow.bench.meters import device_name
from waveglow.bench.models import DTYPES, as_config, config_label, default_configs, source_model
from waveglow.bench.stream import plot
from waveglow.bench.training import trained_state_rows, training_rows
from waveglow.cli.arguments import (
    add_checkpoint, add_output, non_negative_float, non_negative_int, positive_float, positive_int,
)
from waveglow.config import Config
from waveglow.errors import AudioError, CheckpointError, ConfigError, MelError, TrainingError
from waveglow.synthesis import load_mel

# Values for model sections whose keys have no defaults: NVIDIA's published 256-channel WaveGlow
# (configs/config.json of the repository), so that the installed command needs no checkout.
DEFAULT_SECTIONS = {"waveglow_config": {"n_mel_channels": 80, "n_flows": 12, "n_group": 8, "n_early_every": 4,
                                        "n_early_size": 2, "WN_config": {"n_layers": 8, "n_channels": 256, "kernel_size": 3}}}


def default_model() -> Config:
    """The config timed without ``--config``: the first registered family's defaults."""
    return default_configs(DEFAULT_SECTIONS)[0]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--config", default=None,
                   help="model config (default: the package's default model, NVIDIA's 256-channel WaveGlow)")
    add_checkpoint(p, required=False, default=None,
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
    p.add_argument("--modes", nargs="+", default=["plain", "fast"], metavar="MODE",
                   help=f"plain, the model's fast variants by name (fast; WaveGlow also fast-cached), "
                        f"{', '.join(GENERIC_MODES)}; a mode the model lacks is a skipped row")
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
    p.add_argument("--clip", default=None,
                   help="--families: the speech clip, repeated to each --lengths; --train_checkpoint: crops of it "
                        "(default: a synthesised speech-like signal at the config's sampling rate)")
    p.add_argument("--stream", action="store_true",
                   help="the streaming benchmark instead (its own options: --stream --help; docs/streaming.md)")
    p.add_argument("--date", default=datetime.date.today().isoformat())
    add_output(p, required=False, aliases=("--output_json",), default=None, help="the JSON file (default: benchmarks/<device>_<date>.json)")
    p.add_argument("--output_md", default=None, help="default: the JSON path with .md")
    return p.parse_args(argv)


def metadata(args: argparse.Namespace, device: torch.device, config: Config) -> dict:
    return {
        "device": device.type,
        "device_name": device_name(device),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "date": args.date,
        "config": config_label(args.config) if args.config is not None else f"default ({config.family.name})",
        "weights": args.checkpoint or "random (perturbed: no coupling is the identity)",
        "accuracy_mel": args.mel or "random log-mel-like frames",
        "clip": args.clip or "synthesised speech-like signal",
        "repeats": args.repeats,
        "warmup": args.warmup,
        "sigma": args.sigma,
        "statistic": "median of repeats; CUDA synchronised",
        "loadavg_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--stream" in argv:
        return stream_main([a for a in argv if a != "--stream"])
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    json_path = args.output or os.path.join("benchmarks", f"{device.type}_{args.date}.json")
    md_path = args.output_md or os.path.splitext(json_path)[0] + ".md"
    try:  # the folders first: a run that measured for minutes must not end unable to write
        for path in (json_path, md_path):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as e:
        print(f"error: {e.filename or json_path}: cannot create the output folder: {e.strerror or e}", file=sys.stderr)
        return 1
    settings = Settings.from_namespace(args)
    try:
        config = as_config(args.config) if args.config is not None else default_model()
        sampling_rate = config.data_config.sampling_rate
        source = source_model(config, args.checkpoint, args.seed) if not (args.no_inference or args.families) else None
        given_mel = load_mel(args.mel, source.n_mel_channels) if args.mel and source is not None else None
    except (CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except MelError as e:
        print(f"error: {args.mel}: {e}", file=sys.stderr)
        return 1
    result = {"meta": metadata(args, device, config), "inference": [], "accuracy": [], "training": []}
    try:
        if args.families:
            result["families"] = family_rows(args.families, settings, device)
        elif source is not None:
            result["inference"] = inference_rows(settings, source, device, sampling_rate)
            if not args.no_accuracy:
                result["accuracy"] = accuracy_rows(settings, source, given_mel, device, sampling_rate)
        if args.train:
            result["training"] = training_rows(settings, config, device)
        if args.train_checkpoint:
            result["trained_state"] = trained_state_rows(args.train_checkpoint, settings, config)
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


# ----------------------------------------------------------------------------- --stream


def parse_stream_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="waveglow-benchmark --stream",
        description="The streaming benchmark: latency, cost and error of exact streams, one row per family "
                    "(waveglow.bench.stream; docs/streaming.md).")
    p.add_argument("--configs", nargs="+", default=None,
                   help="default: every registered family's default config (WaveGlow: NVIDIA's 256 channels)")
    add_checkpoint(p, required=False, aliases=("--checkpoints",), nargs="*", default=[], help="trained models for the error table too")
    p.add_argument("--chunks", type=int, nargs="+", default=[1, 8, 32], help="frames per push")
    p.add_argument("--lookaheads", type=int, nargs="+", default=[0, 8, 16, 32, 64])
    p.add_argument("--pushes", type=int, default=3, help="timed pushes per chunk size, after one untimed")
    p.add_argument("--error_frames", type=int, default=4, help="frames sampled for the error table")
    p.add_argument("--clip", default=None, help="the speech whose mel is streamed (default: a synthesised "
                                                "speech-like signal at each config's sampling rate)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--date", default=datetime.date.today().isoformat())
    add_output(p, required=False, aliases=("--output_json",), default=None,
               help="the JSON file (default: benchmarks/<device>_<date>_streaming.json)")
    p.add_argument("--plot", default=os.path.join("docs", "images", "streaming-error.png"))
    return p.parse_args(argv)


def stream_main(argv: list[str] | None = None) -> int:
    """``waveglow-benchmark --stream``: JSON, Markdown and the plot of :func:`waveglow.bench.stream_benchmark`."""
    args = parse_stream_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device is available", file=sys.stderr)
        return 1
    configs = args.configs if args.configs is not None else default_configs(DEFAULT_SECTIONS)
    result = stream_benchmark(configs, args.checkpoint, StreamSettings.from_namespace(args), args.date)
    json_path = args.output or os.path.join("benchmarks", f"{args.device}_{args.date}_streaming.json")
    md_path = os.path.splitext(json_path)[0] + ".md"
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    write_text(json_path, json.dumps(result, indent=2))
    write_text(md_path, stream_markdown(result))
    plot(result, args.plot)
    print(f"wrote {json_path}, {md_path} and {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
