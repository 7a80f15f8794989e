"""A few-minute vocoder demo: train a small model on bundled clips, vocode held-out clips, compare with Griffin-Lim.

    make demo                                    # the same as: python scripts/demo.py (WaveGlow)
    make demo MODEL=flowavenet                   # FloWaveNet (configs/flowavenet_small.json)
    make demo CHECKPOINT=waveglow_256channels_universal_v5.pt   # vocode the same clips; no training
    make demo TRAIN=1                            # train even where the repository ships a demo voice
    python scripts/demo.py --iterations 20       # a shorter run (or DEMO_ITERATIONS=20)

Where the repository ships a voice trained on a GPU (``demo/waveglow_voice.pt``, written by
scripts/gpu_check.sh), a plain ``make demo`` vocodes with it instead of training; ``--train``
(``make demo TRAIN=1``), ``--iterations``, ``--config`` or ``--model flowavenet`` train as before.

Steps: split ``demo/data`` (Allison Smith's clips, CC-BY-SA-3.0) into training clips and four
held-out clips; train the model's demo config with ``train.py`` (unless ``--checkpoint``); vocode
the held-out clips from their features with the model and, from their log-mels, with Griffin-Lim;
score both against the original (PESQ, STOI, DNSMOS, log-mel distance). Writes to
``demo_output/``: ``<clip>_original.wav``, ``<clip>_<model>.wav``, ``<clip>_griffinlim.wav``,
``spectrograms.png``, ``loss.png`` (when it trained), ``summary.txt``, ``report.html`` (the
three versions of each clip to play side by side, with spectrograms and scores) and, under
``checkpoints/``, the trained model.

A few CPU minutes of training do not give speech: the demo model's output follows the loudness of
the original but not its spectral detail, and Griffin-Lim scores better. The summary says so with
the numbers of the run. The figures are drawn with ``waveglow.plotting`` (matplotlib); the losses
come from the ``metrics.jsonl`` that training writes.
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
from tqdm import tqdm

from waveglow.atomic import write_text
from waveglow.audio import LOG_CLAMP, MelSpectrogram, load_audio
from waveglow.checkpoint import CheckpointError
from waveglow.data import read_file_list
from waveglow.evaluation import available_metrics, griffin_lim, prepare_reference, score_clip
from waveglow.metrics import read_metrics
from waveglow.registry import family_names, family_of
from waveglow.training import checkpoint_name
from waveglow.plotting import figure_to_png, loss_figure, spectrogram_comparison_figure
from waveglow.report import checkpoint_facts, machine_facts, write_report
from waveglow.synthesis import load_for_inference, synthesize, write_wav

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the demo's data and configs live here

QUALITY = ("pesq_wb", "stoi", "dnsmos_ovrl")  # the summary's scores, where their packages import
DEFAULT_DATA = os.path.join(REPO, "demo", "data")
SHIPPED_VOICE = os.path.join(REPO, "demo", "waveglow_voice.pt")  # trained by scripts/gpu_check.sh on a GPU
HELD_OUT = (  # clips never trained on; vocoded and measured
    "allison-tt-weasels",
    "allison-please-try-call-later",
    "allison-vm-msgsaved",
    "allison-one-moment-please",
)
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


def shipped_voice(args: argparse.Namespace) -> str | None:
    """The shipped demo voice, when it exists and nothing asks for training (``--train``,
    ``--iterations``, ``--config``, another family) or for another checkpoint."""
    asked_to_train = args.train or args.iterations is not None or args.config is not None or args.model != "waveglow"
    if args.checkpoint is None and not asked_to_train and os.path.isfile(SHIPPED_VOICE):
        return SHIPPED_VOICE
    return None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


# ------------------------------------------------------------------------------ clips


def split_clips(data_dir: str) -> tuple[list[str], list[str]]:
    """(training wavs, held-out wavs) of ``data_dir/metadata.csv``, in file order."""
    clips = read_file_list(os.path.join(data_dir, "metadata.csv"))
    held_out = [c for c in clips if _name(c) in HELD_OUT]
    if len(held_out) != len(HELD_OUT):
        missing = sorted(set(HELD_OUT) - {_name(c) for c in held_out})
        raise FileNotFoundError(f"{data_dir}/metadata.csv does not list the held-out clips {missing}")
    return [c for c in clips if c not in held_out], held_out


def _name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def write_file_list(path: str, files: list[str]) -> str:
    write_text(path, "".join(f"{file}\n" for file in files))
    return path


# ------------------------------------------------------------------------------ training


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
    """Run train.py on the training clips; returns the checkpoint and the run's metrics records.

    train.py's per-iteration lines go to ``<output_dir>/checkpoints/train_log.txt``; the numbers
    are read back from the ``metrics.jsonl`` it writes beside its checkpoints.
    """
    from waveglow.cli import train
    from waveglow.config import load_config

    iterations = iterations or load_config(config).train_config.max_iterations
    if iterations <= 0:
        raise ValueError(f"training iterations must be positive, got {iterations}")
    directory = os.path.join(output_dir, "checkpoints")
    overrides = {
        "data_config.training_files": train_list,
        "train_config.output_directory": directory,
        "train_config.max_iterations": iterations,
    }
    argv = ["-c", config] + [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    os.makedirs(directory, exist_ok=True)
    metrics = os.path.join(directory, "metrics.jsonl")
    if os.path.exists(metrics):
        os.remove(metrics)  # a fresh run: no records of an earlier demo
    log_path = os.path.join(directory, "train_log.txt")
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
    family = load_config(config).family.name
    return TrainingRun(os.path.join(directory, checkpoint_name(iterations, family)), iterations,
                       time.perf_counter() - started, records)


# ------------------------------------------------------------------------------ vocoding and metrics


@dataclass
class Clip:
    name: str
    original: np.ndarray  # (T,)
    vocoded: np.ndarray  # (T,), the model's copy synthesis
    griffin_lim: np.ndarray  # (T,)
    mels: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> (n_mel, frames) Tacotron 2 log-mel
    distance: dict[str, float] = field(default_factory=dict)  # kind -> log-mel distance to the original
    energy_correlation: dict[str, float] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # kind -> PESQ, STOI, DNSMOS


def log_mel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two (n_mel, frames) natural-log mels (clamped at 1e-5)."""
    floor = math.log(LOG_CLAMP)
    return float(np.abs(np.maximum(a, floor) - np.maximum(b, floor)).mean())


def frame_energy_db(features: MelSpectrogram, audio: np.ndarray) -> np.ndarray:
    """Per-frame energy of the STFT the features use: (T,) -> (frames,) in dB."""
    with torch.no_grad():
        magnitude = features.magnitude(torch.from_numpy(audio).double()[None])[0]  # (n_freq, frames)
    return 10 * np.log10(magnitude.square().sum(0).numpy() + 1e-10)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant."""
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def log_mel(features: MelSpectrogram, audio: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return features(torch.from_numpy(audio)[None])[0].numpy()  # (n_mel, frames)


def vocode_clips(model, data_config, paths: list[str], args: argparse.Namespace, device: torch.device) -> list[Clip]:
    """Copy synthesis of each clip with the model (from its family's features) and with Griffin-Lim
    (from the clip's Tacotron 2 log-mel), both measured against the original."""
    family = family_of(model)
    model_features = family.features(data_config)
    features = MelSpectrogram.from_config(data_config)  # the common yardstick, and Griffin-Lim's input
    clips = []
    for i, path in enumerate(tqdm(paths, desc=f"vocoding ({family.title})", unit="clip", dynamic_ncols=True)):
        original = prepare_reference(model_features, load_audio(path, data_config.sampling_rate, resample=True,
                                                                downmix=True).numpy())
        with torch.no_grad():
            mel = model_features(torch.from_numpy(original)[None])[0]  # (n_mel, frames)
        generator = torch.Generator().manual_seed(args.seed + i)  # CPU noise: the same audio on any device
        audio = synthesize(model, mel.to(device), sigma=args.sigma, generator=generator)
        vocoded = audio[: original.size].clamp(-1, 1).numpy()
        clips.append(Clip(_name(path), original, vocoded, np.zeros(0, np.float32), {"original": log_mel(features, original)}))
    for i, clip in enumerate(tqdm(clips, desc="vocoding (Griffin-Lim)", unit="clip", dynamic_ncols=True)):
        clip.griffin_lim = griffin_lim(clip.mels["original"], data_config, clip.original.size,
                                       args.griffin_lim_iters, args.seed + i)
        measure(clip, features, data_config.sampling_rate)
    return clips


def measure(clip: Clip, features: MelSpectrogram, rate: int) -> None:
    energy = frame_energy_db(features, clip.original)
    metrics = available_metrics(QUALITY)[0]
    for kind, audio in (("vocoded", clip.vocoded), ("griffin_lim", clip.griffin_lim)):
        clip.mels[kind] = log_mel(features, audio)
        clip.distance[kind] = log_mel_distance(clip.mels["original"], clip.mels[kind])
        clip.energy_correlation[kind] = correlation(energy, frame_energy_db(features, audio))
        clip.scores[kind] = score_clip(clip.original, audio, rate, metrics=metrics)
    clip.scores["original"] = score_clip(clip.original, clip.original, rate,
                                         metrics=[m for m in metrics if m.startswith("dnsmos")])


# ------------------------------------------------------------------------------ figures


def spectrogram_figure(clips: list[Clip], data_config, title: str = "WaveGlow"):
    """One row per clip: original | model | Griffin-Lim log-mels on one colour scale, axes in s and Hz."""
    kinds = (("original", "original"), ("vocoded", title), ("griffin_lim", "Griffin-Lim"))
    rows = [(clip.name, {label: clip.mels[kind] for kind, label in kinds}) for clip in clips]
    fmax = data_config.mel_fmax or data_config.sampling_rate / 2
    return spectrogram_comparison_figure(rows, data_config.sampling_rate, data_config.hop_length,
                                         frequency_range=(data_config.mel_fmin, fmax),
                                         title="held-out clips: log-mel of the original and of each vocoding")


# ------------------------------------------------------------------------------ summary


def summary_text(
    clips: list[Clip], sampling_rate: int, model_line: str, training: TrainingRun | None, args: argparse.Namespace,
    title: str = "WaveGlow",
) -> str:
    mean = {key: {kind: float(np.mean([getattr(c, key)[kind] for c in clips])) for kind in ("vocoded", "griffin_lim")}
            for key in ("distance", "energy_correlation")}
    lines = [f"{title} demo", "=" * len(f"{title} demo"), model_line]
    if training is not None:
        lines += _training_lines(training)
    lines += [
        f"vocoded: {len(clips)} held-out clips (never trained on) from their features; {title} sigma {args.sigma}, "
        f"Griffin-Lim {args.griffin_lim_iters} iterations from the clip's log-mel",
        "",
        f"{'clip':34s} {'seconds':>7s}   {'log-mel distance':^22s}   {'energy correlation':^22s}",
        f"{'':34s} {'':>7s}   {title:>10s} {'Griffin-Lim':>11s}   {title:>10s} {'Griffin-Lim':>11s}",
    ]
    for c in clips:
        lines.append(_row(c.name, f"{c.original.size / sampling_rate:7.2f}", c.distance, c.energy_correlation))
    lines.append(_row("mean", "", mean["distance"], mean["energy_correlation"]))
    lines += ["", *_quality_lines(clips, title)]
    lines += ["", *_definitions(), "", *_expectations(mean, training, title), "", *_files(clips, training, title)]
    return "\n".join(lines) + "\n"


def _quality_lines(clips: list[Clip], title: str) -> list[str]:
    """Mean PESQ, STOI and DNSMOS of the model, Griffin-Lim and the original clips (where the packages import)."""
    metrics = [m for m in QUALITY if m in clips[0].scores["vocoded"]]
    if not metrics:
        return ["objective quality: no metric package (pesq, pystoi, speechmos) could be imported"]
    names = {"pesq_wb": "PESQ-WB", "stoi": "STOI", "dnsmos_ovrl": "DNSMOS OVRL"}
    lines = ["objective quality (mean over the held-out clips):", "",
             f"{'':14s}" + "".join(f"{names[m]:>13s}" for m in metrics)]
    for kind, label in (("vocoded", title), ("griffin_lim", "Griffin-Lim"), ("original", "original")):
        cells = []
        for m in metrics:
            values = [c.scores[kind].get(m) for c in clips]
            cells.append("-" if values[0] is None else f"{np.mean(values):.2f}")
        lines.append(f"{label:14s}" + "".join(f"{cell:>13s}" for cell in cells))
    return lines + [
        "",
        "PESQ-WB (ITU-T P.862.2, against the original) runs from 1.0 (noise) to 4.5 (transparent); STOI (intelligibility)",
        "from 0 to 1; DNSMOS OVRL (a network's estimate of a listener's overall rating, no reference) from 1 to 5.",
    ]


def _row(label: str, seconds: str, distance: dict, corr: dict) -> str:
    return (f"{label:34s} {seconds:>7s}   {distance['vocoded']:10.3f} {distance['griffin_lim']:11.3f}   "
            f"{corr['vocoded']:10.3f} {corr['griffin_lim']:11.3f}")


def _training_lines(training: TrainingRun) -> list[str]:
    losses = training.losses
    tail = losses[-max(1, len(losses) // 10) :]
    lines = [f"trained: {training.iterations} iterations in {training.seconds:.0f} s "
             f"({training.seconds / max(1, training.iterations):.2f} s per iteration)"]
    if losses:
        lines.append(f"training loss: {losses[0]:.3f} at the first iteration, {np.mean(tail):.3f} "
                     f"(mean of the last {len(tail)}), lowest {min(losses):.3f}")
    return lines


def _definitions() -> list[str]:
    return [
        "log-mel distance: mean |log-mel(original) - log-mel(vocoded)| over bins and frames, in the model's own",
        "  features (natural log, clamped at 1e-5). 0 is identical; lower is better.",
        "energy correlation: Pearson correlation of per-frame energy (dB, the features' STFT frames) of the original",
        "  and the vocoded clip. 1 means the loudness envelope is followed exactly.",
    ]


def _expectations(mean: dict, training: TrainingRun | None, title: str = "WaveGlow") -> list[str]:
    wg, gl = mean["distance"]["vocoded"], mean["distance"]["griffin_lim"]
    corr = mean["energy_correlation"]["vocoded"]
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
    return [
        "What to expect:",
        "  A few CPU minutes of training do not give speech.",
        *sound,
        "  The falling loss in loss.png shows that it is learning; it is nowhere near done.",
        f"  {comparison}",
        *(["  Griffin-Lim needs no training, so it wins at this stage."] if gl < wg else []),
        f"  A usable {title} needs days of training on a GPU. To hear one, vocode the same clips with a trained",
        "  checkpoint: make demo CHECKPOINT=path, e.g. NVIDIA's waveglow_256channels_universal_v5.pt or a",
        "  ksw0306 FloWaveNet checkpoint_step*.pth (both load as they are).",
    ]


def _files(clips: list[Clip], training: TrainingRun | None, title: str = "WaveGlow") -> list[str]:
    lines = [
        "Files:",
        f"  <clip>_original.wav, <clip>_{title.lower()}.wav, <clip>_griffinlim.wav: 16-bit WAV, the original's length",
        f"  spectrograms.png: one row per clip, columns original | {title} | Griffin-Lim log-mel against time (s)",
        "    and frequency (Hz, mel scale); one colour scale from the features' floor log(1e-5) to the loudest bin",
    ]
    if training is not None:
        lines += ["  loss.png: training loss per iteration and its running mean, from checkpoints/metrics.jsonl",
                  f"  {training.checkpoint}: the trained model"]
    lines += ["", f"Clips: {ATTRIBUTION}.", "The wavs written here derive from them and carry the same license."]
    return lines


# ------------------------------------------------------------------------------ main


def clip_wavs(clip: Clip, output_dir: str, title: str) -> dict[str, tuple[str, np.ndarray]]:
    """system -> (its WAV of the clip, its audio): the original, the model (``title``) and Griffin-Lim."""
    return {name: (os.path.join(output_dir, f"{clip.name}_{suffix}.wav"), audio)
            for name, suffix, audio in (("original", "original", clip.original), (title, title.lower(), clip.vocoded),
                                        ("Griffin-Lim", "griffinlim", clip.griffin_lim))}


def write_outputs(clips: list[Clip], output_dir: str, data_config, title: str = "WaveGlow") -> None:
    for clip in clips:
        for path, audio in clip_wavs(clip, output_dir, title).values():
            write_wav(path, audio, data_config.sampling_rate)
    figure_to_png(spectrogram_figure(clips, data_config, title), os.path.join(output_dir, "spectrograms.png"))


def write_page(clips: list[Clip], args: argparse.Namespace, checkpoint: str, training: TrainingRun | None,
               title: str, data_config, device: torch.device) -> str:
    """``report.html``: each held-out clip as the original, the model and Griffin-Lim give it, with scores."""
    rows, audio, wav_files = [], {}, {}
    for clip in clips:
        for system, (path, samples) in clip_wavs(clip, args.output_dir, title).items():
            kind = {title: "vocoded", "Griffin-Lim": "griffin_lim"}.get(system, "original")
            row = {"clip": clip.name, "system": system, **clip.scores[kind]}
            if kind != "original":
                row.update(log_mel_distance=clip.distance[kind], energy_correlation=clip.energy_correlation[kind])
            rows.append(row)
            audio.setdefault(clip.name, {})[system] = samples
            wav_files.setdefault(clip.name, {})[system] = path
    iterations = (f"{training.iterations}, trained here in {training.seconds:.0f} s" if training is not None
                  else checkpoint_facts(checkpoint))
    facts = [("checkpoint", f"{checkpoint} ({title})"), ("iterations", iterations), ("sigma", f"{args.sigma:g}"),
             ("denoiser strength", "0 (no denoiser)"), ("Griffin-Lim", f"{args.griffin_lim_iters} iterations"),
             ("clips", f"{len(clips)} held out of training; {ATTRIBUTION}"),
             ("seed", f"{args.seed} (clip i: seed + i)"),
             *machine_facts(device)]
    introduction = "Held-out clips, vocoded from their features by the model and by Griffin-Lim."
    if training is not None:
        introduction += (f" {training.iterations} iterations of CPU training do not make a vocoder: expect noise from "
                         f"{title}, and Griffin-Lim, which needs no training, to win (summary.txt says more).")
    return write_report(args.output_dir, rows, audio, data_config.sampling_rate, title=f"{title} demo",
                        reference="original", facts=facts, wav_files=wav_files, introduction=introduction)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    os.makedirs(args.output_dir, exist_ok=True)
    try:
        train_clips, held_out = split_clips(args.data)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    train_list = write_file_list(os.path.join(args.output_dir, "train_files.txt"), train_clips)
    write_file_list(os.path.join(args.output_dir, "held_out_files.txt"), held_out)
    training = None
    voice = shipped_voice(args)
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
    clips = vocode_clips(model, data_config, held_out, args, device)
    write_outputs(clips, args.output_dir, data_config, title)
    n_parameters = sum(p.numel() for p in model.parameters())
    model_line = (f"model: {checkpoint} ({title}), {n_parameters:,} parameters (weight norm removed), vocoding on {device}")
    text = summary_text(clips, data_config.sampling_rate, model_line, training, args, title)
    write_text(os.path.join(args.output_dir, "summary.txt"), text)
    write_page(clips, args, checkpoint, training, title, data_config, device)
    print("\n" + text + f"\nwritten to {args.output_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
