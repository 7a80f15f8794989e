"""A few-minute vocoder demo: train a small model on bundled clips, vocode held-out clips, compare with Griffin-Lim.

    make demo                                    # the same as: python scripts/demo.py (WaveGlow)
    make demo MODEL=flowavenet                   # FloWaveNet (configs/flowavenet_small.json)
    make demo CHECKPOINT=waveglow_256channels_universal_v5.pt   # vocode the same clips; no training
    make demo TRAIN=1                            # train even where the repository ships a demo voice
    python scripts/demo.py --iterations 20       # a shorter run (or DEMO_ITERATIONS=20)

Where the repository ships a voice trained on a GPU (``demo/waveglow_voice.pt``, written by
scripts/gpu_check.sh), a plain ``make demo`` vocodes with it instead of training; ``--train``,
``--iterations``, ``--config`` or ``--model flowavenet`` train as before.

Steps: split ``demo/data`` (Allison Smith's clips, CC-BY-SA-3.0) into training clips and four
held-out clips; train the family's demo config with ``train.py`` (unless ``--checkpoint``); vocode
and score the held-out clips with the evaluation pipeline (:mod:`waveglow.evaluation_output`): the
model from their features, Griffin-Lim from their log-mels, against the original (PESQ, STOI,
DNSMOS, log-mel distance and energy correlation in Tacotron 2's log-mel). Writes to
``demo_output/``: ``<clip>_original.wav``, ``<clip>_<model>.wav``, ``<clip>_griffinlim.wav``,
``spectrograms.png``, ``loss.png`` (when it trained), ``summary.txt``, ``report.html`` and, under
``checkpoints/``, the trained model. A few CPU minutes of training do not give speech; the summary
says so with the run's numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, field

import numpy as np
import torch

from waveglow.atomic import write_text
from waveglow.audio import MelSpectrogram
from waveglow.cli import train
from waveglow.config import load_config
from waveglow.data import read_file_list
from waveglow.errors import CheckpointError
from waveglow.evaluation import available_metrics
from waveglow.evaluation_output import (METRICS, Results, checkpoint_system, griffin_lim_system, ground_truth_system,
                                        mean_scores, score_clips, spectrogram_figure)
from waveglow.metrics import read_metrics
from waveglow.plotting import figure_to_png, loss_figure
from waveglow.registry import family_names, family_of
from waveglow.report import checkpoint_facts, machine_facts, write_report
from waveglow.synthesis import load_for_inference, write_wav
from waveglow.training import checkpoint_name

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the demo's data and configs live here
DEFAULT_DATA = os.path.join(REPO, "demo", "data")
SHIPPED_VOICE = os.path.join(REPO, "demo", "waveglow_voice.pt")  # trained by scripts/gpu_check.sh on a GPU
HELD_OUT = ("allison-tt-weasels", "allison-please-try-call-later", "allison-vm-msgsaved", "allison-one-moment-please")
QUALITY = ("pesq_wb", "stoi", "dnsmos_ovrl")  # the summary's scores, where their packages import
MEASURES = ("log_mel_l1", "energy_correlation")  # in Tacotron 2's log-mel: the page calls the first log_mel_distance
ORIGINAL, GRIFFIN_LIM = "original", "Griffin-Lim"  # system names; the model's is its family's title
ENVELOPE_FOLLOWED = 0.5  # mean energy correlation above which the summary says the envelope is followed
ATTRIBUTION = ("Allison Smith, CC-BY-SA-3.0 (Copyright 2003-2010 Allison Smith; financial contributions "
               "by Digium, Inc.)")


def demo_config(family_name: str) -> str | None:
    """The small config a family's demo trains: configs/<name>_small.json (WaveGlow's: configs/demo.json), or None."""
    path = os.path.join(REPO, "configs", "demo.json" if family_name == "waveglow" else f"{family_name}_small.json")
    return path if os.path.isfile(path) else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="vocode with this checkpoint (any format) instead of training")
    parser.add_argument("--train", action="store_true",
                        help="train even where the repository ships a demo voice (demo/waveglow_voice.pt)")
    parser.add_argument("--model", choices=family_names(), default="waveglow", help="the model family to train (default waveglow)")
    parser.add_argument("--config", default=None,
                        help="training config (default: the family's demo config, e.g. configs/demo.json for waveglow, "
                             "configs/flowavenet_small.json for flowavenet)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="LJSpeech-layout folder of clips (default demo/data)")
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--iterations", type=int, default=_env_int("DEMO_ITERATIONS"),
                        help="training iterations (default: $DEMO_ITERATIONS, else the config's max_iterations)")
    parser.add_argument("--sigma", type=float, default=0.6,
                        help="noise scale (temperature): WaveGlow's paper 0.6, within FloWaveNet's 0.6-0.8")
    parser.add_argument("--seed", type=int, default=0, help="seed of the vocoding noise and of Griffin-Lim")
    parser.add_argument("--griffin_lim_iters", type=int, default=48)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    return parser.parse_args(argv)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def shipped_voice(args: argparse.Namespace) -> str | None:
    """The shipped demo voice, when it exists and nothing asks for training (``--train``,
    ``--iterations``, ``--config``, another family) or for another checkpoint."""
    asked_to_train = args.train or args.iterations is not None or args.config is not None or args.model != "waveglow"
    return SHIPPED_VOICE if args.checkpoint is None and not asked_to_train and os.path.isfile(SHIPPED_VOICE) else None


def split_clips(data_dir: str) -> tuple[list[str], list[str]]:
    """(training wavs, held-out wavs) of ``data_dir/metadata.csv``, in file order."""
    clips = read_file_list(os.path.join(data_dir, "metadata.csv"))
    name = {c: os.path.splitext(os.path.basename(c))[0] for c in clips}
    held_out = [c for c in clips if name[c] in HELD_OUT]
    if len(held_out) != len(HELD_OUT):
        missing = sorted(set(HELD_OUT) - {name[c] for c in held_out})
        raise FileNotFoundError(f"{data_dir}/metadata.csv does not list the held-out clips {missing}")
    return [c for c in clips if c not in held_out], held_out


@dataclass
class TrainingRun:
    checkpoint: str
    iterations: int
    seconds: float
    records: list[dict] = field(default_factory=list)  # the run's metrics.jsonl

    @property
    def losses(self) -> list[float]:
        """The finite training losses, in iteration order."""
        return [float(r["loss"]) for r in sorted(self.records, key=lambda r: r["iteration"])
                if "loss" in r and r["loss"] is not None and math.isfinite(r["loss"])]


def train_demo_model(config: str, train_list: str, output_dir: str, iterations: int | None) -> TrainingRun:
    """Run train.py on the training clips; its lines go to ``checkpoints/train_log.txt``, its numbers
    are read back from the ``metrics.jsonl`` it writes beside its checkpoints."""
    iterations = iterations or load_config(config).train_config.max_iterations
    if iterations <= 0:
        raise ValueError(f"training iterations must be positive, got {iterations}")
    directory = os.path.join(output_dir, "checkpoints")
    overrides = {"data_config.training_files": train_list, "train_config.output_directory": directory,
                 "train_config.max_iterations": iterations}
    argv = ["-c", config] + [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    os.makedirs(directory, exist_ok=True)
    metrics, log_path = os.path.join(directory, "metrics.jsonl"), os.path.join(directory, "train_log.txt")
    if os.path.exists(metrics):
        os.remove(metrics)  # a fresh run: no records of an earlier demo
    print(f"training log: {log_path}", flush=True)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log, redirect_stdout(log):
        status = train.main(argv)
    if status != 0:
        raise RuntimeError(f"training stopped with exit status {status}; see {log_path}")
    try:
        records = read_metrics(metrics)
    except FileNotFoundError:
        raise RuntimeError(f"{metrics}: train.py wrote no metrics file") from None
    checkpoint = os.path.join(directory, checkpoint_name(iterations, load_config(config).family.name))
    return TrainingRun(checkpoint, iterations, time.perf_counter() - started, records)


def score_held_out(model, data_config, paths: list[str], args: argparse.Namespace,
                   metrics: tuple[str, ...] | None = None) -> Results:
    """The original, the model (from its family's features) and Griffin-Lim (from the Tacotron 2
    log-mel) of each clip, scored by the evaluation pipeline; every clip is first prepared as the
    model's features expect it, and distances are measured in Tacotron 2's log-mel."""
    vocoder = checkpoint_system(family_of(model).title, model, data_config, args.sigma,
                                yardstick=MelSpectrogram.from_config(data_config))
    systems = [ground_truth_system(data_config, ORIGINAL), vocoder,
               griffin_lim_system(data_config, args.griffin_lim_iters, GRIFFIN_LIM)]
    metrics = (*available_metrics(QUALITY)[0], *MEASURES) if metrics is None else metrics
    return score_clips(paths, systems, data_config, metrics, args.seed, keep=len(paths), prepare=vocoder.features,
                       desc=f"vocoding ({vocoder.name}, Griffin-Lim)")


# ------------------------------------------------------------------------------ summary.txt


def summary_text(results: Results, title: str, model_line: str, training: TrainingRun | None,
                 args: argparse.Namespace) -> str:
    """The run's numbers per clip and on average, its objective quality, and what to make of them."""
    row = {(r["clip"], r["system"]): r for r in results.rows}
    means = mean_scores(results.rows, [title, GRIFFIN_LIM, ORIGINAL], [*QUALITY, *MEASURES])
    lines = [f"{title} demo", "=" * len(f"{title} demo"), model_line, *(_training_lines(training) if training else []),
             f"vocoded: {results.clips} held-out clips (never trained on) from their features; {title} sigma "
             f"{args.sigma}, Griffin-Lim {args.griffin_lim_iters} iterations from the clip's log-mel", "",
             f"{'clip':34s} {'seconds':>7s}   {'log-mel distance':^22s}   {'energy correlation':^22s}",
             f"{'':34s} {'':>7s}   {title:>10s} {'Griffin-Lim':>11s}   {title:>10s} {'Griffin-Lim':>11s}"]
    for clip, outputs in results.outputs:
        seconds = f"{outputs[ORIGINAL].size / results.sampling_rate:7.2f}"
        lines.append(_row(clip, seconds, [row.get((clip, s), {}).get(m) for m in MEASURES for s in (title, GRIFFIN_LIM)]))
    mean = [means[s][m] for m in MEASURES for s in (title, GRIFFIN_LIM)]
    lines += [_row("mean", "", mean), "", *_quality_lines(means, title), "", *DEFINITIONS, "",
              *_expectations(*mean[:3], training, title), "", *_files(training, title)]
    return "\n".join(lines) + "\n"


def _row(label: str, seconds: str, values: list[float | None]) -> str:
    v = [math.nan if x is None else x for x in values]  # model and Griffin-Lim distance, then correlation
    return f"{label:34s} {seconds:>7s}   {v[0]:10.3f} {v[1]:11.3f}   {v[2]:10.3f} {v[3]:11.3f}"


def _quality_lines(means: dict, title: str) -> list[str]:
    """Mean PESQ, STOI and DNSMOS of the model, Griffin-Lim and the original clips (where the packages import)."""
    metrics = [m for m in QUALITY if any(means[s][m] is not None for s in means)]
    if not metrics:
        return ["objective quality: no metric package (pesq, pystoi, speechmos) could be imported"]
    lines = ["objective quality (mean over the held-out clips):", "",
             f"{'':14s}" + "".join(f"{METRICS[m].label:>13s}" for m in metrics)]
    for system in (title, GRIFFIN_LIM, ORIGINAL):
        cells = ["-" if means[system][m] is None else f"{means[system][m]:.2f}" for m in metrics]
        lines.append(f"{system:14s}" + "".join(f"{cell:>13s}" for cell in cells))
    return lines + [
        "",
        "PESQ-WB (ITU-T P.862.2, against the original) runs from 1.0 (noise) to 4.5 (transparent); STOI (intelligibility)",
        "from 0 to 1; DNSMOS OVRL (a network's estimate of a listener's overall rating, no reference) from 1 to 5.",
    ]


def _training_lines(training: TrainingRun) -> list[str]:
    losses = training.losses
    tail = losses[-max(1, len(losses) // 10) :]
    lines = [f"trained: {training.iterations} iterations in {training.seconds:.0f} s "
             f"({training.seconds / max(1, training.iterations):.2f} s per iteration)"]
    if losses:
        lines.append(f"training loss: {losses[0]:.3f} at the first iteration, {np.mean(tail):.3f} "
                     f"(mean of the last {len(tail)}), lowest {min(losses):.3f}")
    return lines


DEFINITIONS = [
    "log-mel distance: mean |log-mel(original) - log-mel(vocoded)| over bins and frames, in Tacotron 2's log-mel",
    "  of the model's data settings (natural log, clamped at 1e-5). 0 is identical; lower is better.",
    "energy correlation: Pearson correlation of per-frame energy (dB, the features' STFT frames) of the original",
    "  and the vocoded clip. 1 means the loudness envelope is followed exactly.",
]


def _expectations(wg: float, gl: float, corr: float, training: TrainingRun | None, title: str) -> list[str]:
    better = "Griffin-Lim" if gl < wg else title
    comparison = f"{better} is closer to the original: log-mel distance {min(wg, gl):.3f} against {max(wg, gl):.3f}."
    if training is None:
        return ["What to expect:", f"  {comparison}",
                f"  A well-trained {title} (e.g. NVIDIA's WaveGlow or a ksw0306 FloWaveNet checkpoint) sounds like the",
                "  original speech; an undertrained one sounds like noise. Griffin-Lim inverts the mel itself, so",
                "  it scores well on log-mel distance even where its phase artefacts are audible: listen as well",
                "  as read the numbers."]
    if corr >= ENVELOPE_FOLLOWED:
        sound = ["  The demo model's output follows the loudness envelope of the original (energy correlation",
                 f"  {corr:.2f}) but not the spectral detail of speech, so it sounds like noise shaped by the words'",
                 "  loudness."]
    else:
        sound = ["  The demo model's output does not even follow the loudness envelope yet (energy correlation",
                 f"  {corr:.2f}): it sounds like steady noise. With longer training the envelope comes first, the",
                 "  spectral detail later."]
    return ["What to expect:", "  A few CPU minutes of training do not give speech.", *sound,
            "  The falling loss in loss.png shows that it is learning; it is nowhere near done.", f"  {comparison}",
            *(["  Griffin-Lim needs no training, so it wins at this stage."] if gl < wg else []),
            f"  A usable {title} needs days of training on a GPU. To hear one, vocode the same clips with a trained",
            "  checkpoint: make demo CHECKPOINT=path, e.g. NVIDIA's waveglow_256channels_universal_v5.pt or a",
            "  ksw0306 FloWaveNet checkpoint_step*.pth (both load as they are)."]


def _files(training: TrainingRun | None, title: str) -> list[str]:
    lines = ["Files:",
             f"  <clip>_original.wav, <clip>_{title.lower()}.wav, <clip>_griffinlim.wav: 16-bit WAV, the original's length",
             f"  spectrograms.png: one row per clip, columns original | {title} | Griffin-Lim log-mel against time (s)",
             "    and frequency (Hz, mel scale); one colour scale from the features' floor log(1e-5) to the loudest bin"]
    if training is not None:
        lines += ["  loss.png: training loss per iteration and its running mean, from checkpoints/metrics.jsonl",
                  f"  {training.checkpoint}: the trained model"]
    return lines + ["", f"Clips: {ATTRIBUTION}.", "The wavs written here derive from them and carry the same license."]


# ------------------------------------------------------------------------------ main


def write_outputs(results: Results, title: str, output_dir: str) -> dict[str, dict[str, str]]:
    """Each clip's three WAVs and spectrograms.png; returns clip -> system -> its WAV."""
    suffixes, wav_files = {ORIGINAL: "original", title: title.lower(), GRIFFIN_LIM: "griffinlim"}, {}
    for clip, outputs in results.outputs:
        for system, audio in outputs.items():
            wav_files.setdefault(clip, {})[system] = path = os.path.join(output_dir, f"{clip}_{suffixes[system]}.wav")
            write_wav(path, audio, results.sampling_rate)
    figure = spectrogram_figure(results.outputs, results.sampling_rate, systems=[ORIGINAL, title, GRIFFIN_LIM],
                                title="held-out clips: log-mel of the original and of each vocoding")
    figure_to_png(figure, os.path.join(output_dir, "spectrograms.png"))
    return wav_files


def write_page(results: Results, wav_files: dict, args: argparse.Namespace, checkpoint: str,
               training: TrainingRun | None, title: str, device: torch.device) -> str:
    """``report.html``: each held-out clip as the original, the model and Griffin-Lim give it, with scores."""
    rows = [{("log_mel_distance" if k == "log_mel_l1" else k): v for k, v in r.items()} for r in results.rows]
    iterations = (f"{training.iterations}, trained here in {training.seconds:.0f} s" if training is not None
                  else checkpoint_facts(checkpoint))
    facts = [("checkpoint", f"{checkpoint} ({title})"), ("iterations", iterations), ("sigma", f"{args.sigma:g}"),
             ("denoiser strength", "0 (no denoiser)"), ("Griffin-Lim", f"{args.griffin_lim_iters} iterations"),
             ("clips", f"{results.clips} held out of training; {ATTRIBUTION}"),
             ("seed", f"{args.seed} (clip i: seed + i)"), *machine_facts(device)]
    introduction = "Held-out clips, vocoded from their features by the model and by Griffin-Lim."
    if training is not None:
        introduction += (f" {training.iterations} iterations of CPU training do not make a vocoder: expect noise from "
                         f"{title}, and Griffin-Lim, which needs no training, to win (summary.txt says more).")
    return write_report(args.output_dir, rows, dict(results.outputs), results.sampling_rate, title=f"{title} demo",
                        reference=ORIGINAL, facts=facts, wav_files=wav_files, introduction=introduction)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    os.makedirs(args.output_dir, exist_ok=True)
    try:
        train_clips, held_out = split_clips(args.data)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    train_list = os.path.join(args.output_dir, "train_files.txt")
    write_text(train_list, "".join(f"{file}\n" for file in train_clips))
    write_text(os.path.join(args.output_dir, "held_out_files.txt"), "".join(f"{file}\n" for file in held_out))
    training, voice = None, shipped_voice(args)
    if voice is not None:
        print(f"vocoding with the shipped demo voice {os.path.relpath(voice)} (train instead: make demo TRAIN=1, "
              "or scripts/demo.py --train)", flush=True)
        args.checkpoint = voice
    args.config = args.config or demo_config(args.model)
    if args.config is None and args.checkpoint is None:
        print(f"error: --model {args.model}: the family names no demo config; give one with --config", file=sys.stderr)
        return 1
    try:
        if args.checkpoint is None:
            print(f"training {args.config} on {len(train_clips)} clips of {args.data} ...", flush=True)
            training = train_demo_model(args.config, os.path.abspath(train_list), args.output_dir, args.iterations)
            figure_to_png(loss_figure(training.records, title=f"training loss of {os.path.basename(args.config)}"),
                          os.path.join(args.output_dir, "loss.png"))
        checkpoint = args.checkpoint or training.checkpoint
        model, data_config = load_for_inference(checkpoint, device)
    except (RuntimeError, ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    title = family_of(model).title
    results = score_held_out(model, data_config, held_out, args)
    wav_files = write_outputs(results, title, args.output_dir)
    n_parameters = sum(p.numel() for p in model.parameters())
    model_line = f"model: {checkpoint} ({title}), {n_parameters:,} parameters (weight norm removed), vocoding on {device}"
    text = summary_text(results, title, model_line, training, args)
    write_text(os.path.join(args.output_dir, "summary.txt"), text)
    write_page(results, wav_files, args, checkpoint, training, title, device)
    print("\n" + text + f"\nwritten to {args.output_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
