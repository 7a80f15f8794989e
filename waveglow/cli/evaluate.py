"""Score vocoders by copy synthesis of a list of clips: PESQ, STOI, log-mel L1, MCD, F0, DNSMOS, test LL, RTF.

    python scripts/evaluate.py -f tests/data/metadata.csv -o eval -w checkpoints/waveglow_10000 --griffin-lim
    python scripts/evaluate.py -f list.txt -o eval -w ours.pt --wavs hifigan=hifigan_out/ --wavs nvidia=nv_out/

Every clip of the file list (any form ``waveglow.data.read_file_list`` reads) is read at the
evaluation rate (the first checkpoint's sampling rate; 22050 Hz without one). Each checkpoint
(``-w``) vocodes the clip's features in its own recipe (seeded: clip i draws its noise from a CPU
generator seeded ``--seed + i``); ``--griffin-lim`` inverts the Tacotron 2 log-mel with 60
seeded Griffin-Lim iterations; ``--wavs NAME=DIR`` reads another system's ``DIR/<clip stem>.wav``
(or inference.py's ``<clip stem>_synthesis.wav``; same sampling rate; within one hop of the reference's length, trimmed or zero-padded). Every
output is scored against the clip; a ``ground_truth`` row scores the clips themselves with the
reference-free metrics (DNSMOS). Each checkpoint also scores the clips themselves: their exact
log-likelihood under the model (``test_ll``, nats per sample, L0SG/NanoFlow's "Test set LL").
See docs/evaluation.md for what each number means.

Writes ``OUT/summary.json`` (``{"systems": {NAME: {metric: mean, ..., "rtf": ...}}, "clips": N}``),
``OUT/clips.csv`` (every clip's numbers), ``OUT/summary.md`` (the table, also printed) and
``OUT/spectrograms.png`` (reference and each system for the first three clips) and ``OUT/report.html``
(players, spectrograms and scores of every system, first ``--report-clips`` clips). A clip that cannot
be read is reported and skipped; a missing or unusable ``--wavs`` file is reported for that clip
and system, the rest is scored.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from waveglow import evaluation
from waveglow.atomic import atomic_open, write_text
from waveglow.audio import MelSpectrogram, load_audio
from waveglow.errors import AudioError, CheckpointError
from waveglow.cli.arguments import non_negative_float, non_negative_int, positive_int
from waveglow.config import DataConfig
from waveglow.data import read_file_list
from waveglow.likelihood import clip_log_likelihood
from waveglow.report import checkpoint_facts, machine_facts, write_report
from waveglow.synthesis import load_for_inference

GRIFFIN_LIM = "griffin_lim"
GROUND_TRUTH = "ground_truth"
GRIFFIN_LIM_ITERATIONS = 60
FIGURE_CLIPS = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-f", "--filelist", required=True, help="file list of reference clips (any form)")
    parser.add_argument("-o", "--output_dir", required=True)
    parser.add_argument("-w", "--checkpoint", nargs="+", action="extend", default=[], help="checkpoints to vocode with (any format)")
    parser.add_argument("--wavs", nargs="+", action="extend", default=[], metavar="NAME=DIR",
                        help="another system's outputs: DIR/<clip stem>.wav, scored as NAME")
    parser.add_argument("--griffin-lim", dest="griffin_lim", action="store_true",
                        help=f"add the Griffin-Lim baseline ({GRIFFIN_LIM_ITERATIONS} iterations, seeded)")
    parser.add_argument("--sigma", type=non_negative_float, default=None, help="noise scale; default: each model's own")
    parser.add_argument("--seed", type=int, default=0, help="clip i uses seed + i (vocoding noise, Griffin-Lim)")
    parser.add_argument("--limit", type=positive_int, default=None, help="score only the first N clips of the list")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    parser.add_argument("--metrics", nargs="+", choices=evaluation.METRICS, default=list(evaluation.METRICS))
    parser.add_argument("--report-clips", dest="report_clips", type=non_negative_int, default=20, metavar="N",
                        help="report.html: players and spectrograms for the first N clips, scores of the rest")
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------ systems


@dataclass
class System:
    """One row of the table: where its audio comes from, and what it took to make it."""

    name: str
    kind: str  # "checkpoint", "wavs", GRIFFIN_LIM or GROUND_TRUTH
    features: torch.nn.Module  # log_mel_l1 is measured in these
    model: object = None  # a model or its inference object (load_for_inference)
    sigma: float = 0.0
    directory: str = ""
    seconds: float = 0.0  # spent vocoding
    audio_seconds: float = 0.0  # of audio vocoded

    @property
    def rtf(self) -> float | None:
        """Seconds of vocoding (features to waveform) per second of audio; None for outside outputs."""
        if self.kind not in ("checkpoint", GRIFFIN_LIM) or self.audio_seconds == 0:
            return None
        return self.seconds / self.audio_seconds


class UsageError(ValueError):
    """A flag or file that makes the whole run impossible; the message is one line."""


def parse_wavs(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, directory = item.partition("=")
        if not sep or not name or not directory:
            raise UsageError(f"--wavs {item!r}: expected NAME=DIR")
        if not os.path.isdir(directory):
            raise UsageError(f"--wavs {item!r}: {directory} is not a directory")
        pairs.append((name, directory))
    return pairs


def load_systems(args: argparse.Namespace, device: torch.device) -> tuple[list[System], DataConfig]:
    """Every system the flags ask for, and the data config the clips are read with."""
    systems, data_config = [], None
    for path in args.checkpoint:
        model, config = load_for_inference(path, device)
        if data_config is None:
            data_config = config
        elif config.sampling_rate != data_config.sampling_rate:
            raise UsageError(f"{path}: sampling rate {config.sampling_rate} Hz, the first checkpoint's is "
                             f"{data_config.sampling_rate} Hz: evaluate them separately")
        sigma = args.sigma if args.sigma is not None else evaluation.default_sigma(model)
        systems.append(System(os.path.basename(os.path.normpath(path)), "checkpoint",
                              evaluation.model_features(model, config), model=model, sigma=sigma))
    data_config = data_config or DataConfig()
    reference_features = MelSpectrogram.from_config(data_config)
    if args.griffin_lim:
        systems.append(System(GRIFFIN_LIM, GRIFFIN_LIM, reference_features))
    for name, directory in parse_wavs(args.wavs):
        systems.append(System(name, "wavs", reference_features, directory=directory))
    systems.append(System(GROUND_TRUTH, GROUND_TRUTH, reference_features))
    names = [s.name for s in systems]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"two systems are named {duplicates[0]!r}: rename a --wavs NAME or a checkpoint file")
    return systems, data_config


# ------------------------------------------------------------------------------ one clip


def outside_path(directory: str, stem: str) -> str:
    """``DIR/<stem>.wav``, or inference.py's ``DIR/<stem>_synthesis.wav`` when only that exists."""
    path = os.path.join(directory, f"{stem}.wav")
    ours = os.path.join(directory, f"{stem}_synthesis.wav")
    return ours if not os.path.exists(path) and os.path.exists(ours) else path


def read_outside_wav(path: str, rate: int) -> np.ndarray:
    """Another system's output at the evaluation rate -> (T,); AudioError naming the file otherwise."""
    import soundfile

    if os.path.isfile(path):
        try:
            file_rate = soundfile.info(path).samplerate
        except RuntimeError as e:
            raise AudioError(f"{path}: cannot read as audio ({e})") from None
        if file_rate != rate:
            raise AudioError(f"{path}: sampling rate {file_rate} Hz, the reference's is {rate} Hz",
                             reason="sampling rate")
    return load_audio(path, rate, downmix=True).numpy()


def read_reference(path: str, rate: int, features: torch.nn.Module) -> np.ndarray:
    """A reference clip at the evaluation rate -> (T,); AudioError naming the file if it cannot be used."""
    return load_audio(path, rate, resample=True, downmix=True, needed=features.min_samples).numpy()


def warm_up(systems: list[System], rate: int) -> None:
    """Vocode half a second of silence with each checkpoint, untimed, so the RTF leaves out one-time costs."""
    silence = np.zeros(rate // 2, np.float32)
    for system in systems:
        if system.kind == "checkpoint":
            evaluation.vocode(system.model, system.features, silence, system.sigma, torch.Generator().manual_seed(0))


def system_output(system: System, index: int, stem: str, clip: np.ndarray, data_config, seed: int) -> np.ndarray:
    """The system's version of ``clip`` (the reference, as the system sees it), same length."""
    if system.kind == GROUND_TRUTH:
        return clip
    if system.kind == "wavs":
        audio = read_outside_wav(outside_path(system.directory, stem), data_config.sampling_rate)
        return evaluation.align(audio, clip.size, data_config.hop_length)
    started = time.perf_counter()
    if system.kind == GRIFFIN_LIM:
        mel = evaluation.log_mel(system.features, clip)
        audio = evaluation.griffin_lim(mel, data_config, clip.size, GRIFFIN_LIM_ITERATIONS, seed + index)
    else:
        generator = torch.Generator().manual_seed(seed + index)  # CPU noise: the same audio on any device
        audio = evaluation.vocode(system.model, system.features, clip, system.sigma, generator)
    system.seconds += time.perf_counter() - started
    system.audio_seconds += clip.size / data_config.sampling_rate
    return audio


def system_metrics(system: System, metrics: tuple[str, ...]) -> tuple[str, ...]:
    if system.kind == GROUND_TRUTH:
        return tuple(m for m in metrics if m in evaluation.REFERENCE_FREE)
    if system.kind != "checkpoint":
        return tuple(m for m in metrics if m not in evaluation.MODEL_METRICS)
    return metrics


def model_scores(system: System, clip: np.ndarray, metrics: tuple[str, ...]) -> dict[str, float]:
    """A checkpoint's scores of the original clip itself: its exact log-likelihood (``test_ll``)."""
    if system.kind != "checkpoint" or "test_ll" not in metrics:
        return {}
    return {"test_ll": clip_log_likelihood(system.model, system.features, clip)}


@dataclass
class Results:
    rows: list[dict] = field(default_factory=list)  # one per (clip, system)
    problems: list[str] = field(default_factory=list)
    figure: list[tuple[str, dict[str, np.ndarray]]] = field(default_factory=list)  # (clip, {system: audio})
    clips: int = 0


def score_clips(files: list[str], systems: list[System], data_config, metrics: tuple[str, ...],
                seed: int, keep: int = FIGURE_CLIPS) -> Results:
    results = Results()
    rate = data_config.sampling_rate
    warm_up(systems, rate)
    for index, path in enumerate(tqdm(files, desc="scoring", unit="clip", dynamic_ncols=True, file=sys.stderr)):
        stem = os.path.splitext(os.path.basename(path))[0]
        try:
            clip = read_reference(path, rate, systems[-1].features)
        except AudioError as e:
            report(results, f"skipped clip: {e}")
            continue
        results.clips += 1
        outputs = {}
        for system in systems:
            row = {"clip": stem, "system": system.name, "note": ""}
            try:
                reference = evaluation.prepare_reference(system.features, clip)
                outputs[system.name] = audio = system_output(system, index, stem, reference, data_config, seed)
                row.update(evaluation.score_clip(reference, audio, rate, system.features,
                                                 system_metrics(system, metrics)))
                row.update(model_scores(system, clip, metrics))
            except (AudioError, ValueError) as e:
                row["note"] = str(e)
                report(results, f"{system.name}, clip {stem}: {e}")
            results.rows.append(row)
        if len(results.figure) < max(keep, FIGURE_CLIPS):  # the figure's clips and the report's
            results.figure.append((stem, outputs))
    return results


def report(results: Results, message: str) -> None:
    results.problems.append(message)
    tqdm.write(f"warning: {message}", file=sys.stderr)


# ------------------------------------------------------------------------------ outputs


def summary(results: Results, systems: list[System], metrics: tuple[str, ...]) -> dict:
    """``{"systems": {name: {metric: mean or None, ..., "rtf": ...}}, "clips": N}``."""
    table = {}
    for system in systems:
        rows = [r for r in results.rows if r["system"] == system.name]
        means = {m: _mean([r[m] for r in rows if m in r]) for m in metrics}
        table[system.name] = {**means, "rtf": system.rtf}
    return {"systems": table, "clips": results.clips}


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else None


def write_csv(path: str, results: Results, metrics: tuple[str, ...]) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["clip", "system", *metrics, "note"], restval="")
        writer.writeheader()
        for row in results.rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})


COLUMNS = {  # metric -> (column heading, format)
    "pesq_wb": ("PESQ-WB", "{:.3f}"),
    "stoi": ("STOI", "{:.3f}"),
    "log_mel_l1": ("log-mel L1", "{:.3f}"),
    "mcd_db": ("MCD (dB)", "{:.2f}"),
    "f0_rmse_cents": ("F0 RMSE (cents)", "{:.1f}"),
    "vuv_error": ("V/UV error", "{:.3f}"),
    "dnsmos_ovrl": ("DNSMOS OVRL", "{:.3f}"),
    "dnsmos_p808": ("DNSMOS P.808", "{:.3f}"),
    "test_ll": ("test LL (nats/sample)", "{:.4f}"),
    "rtf": ("RTF", "{:.3f}"),
}


def markdown_table(table: dict) -> str:
    keys = [k for k in COLUMNS if any(k in row for row in table.values())]
    lines = ["| system | " + " | ".join(COLUMNS[k][0] for k in keys) + " |",
             "|---|" + "---:|" * len(keys)]
    for name, row in table.items():
        cells = [COLUMNS[k][1].format(row[k]) if row.get(k) is not None else "-" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(result: dict, results: Results, device: torch.device, seconds: float) -> str:
    lines = [
        "# Objective evaluation", "",
        f"{result['clips']} clips, copy synthesis; vocoding on {device}; {seconds:.0f} s in all.", "",
        markdown_table(result["systems"]), "",
        "Higher is better for PESQ-WB (1.0 noise .. 4.64 identical), STOI (0 .. 1), DNSMOS (1 .. 5) and test LL "
        "(the clip's log-likelihood under the model, nats per sample); "
        "lower is better for log-mel L1, MCD, F0 RMSE, V/UV error and RTF (seconds of vocoding per second "
        "of audio). ground_truth: the clips themselves, scored by the reference-free metrics only. "
        "See docs/evaluation.md.",
    ]
    if results.problems:
        lines += ["", "## Problems", "", *[f"- {p}" for p in results.problems]]
    return "\n".join(lines) + "\n"


def spectrogram_figure(path: str, figure: list[tuple[str, dict[str, np.ndarray]]], rate: int) -> None:
    """The reference and each system's log-mel for the first clips, one colour scale for all panels."""
    from waveglow.plotting import figure_to_png, new_figure

    if not figure:
        return
    features = MelSpectrogram.from_config(DataConfig(sampling_rate=rate, mel_fmax=min(8000.0, rate / 2)))
    names = [n for n in figure[0][1] if n != GROUND_TRUTH]
    columns = [("reference", GROUND_TRUTH), *[(n, n) for n in names]]
    mels = [[evaluation.log_mel(features, outputs[key]) if key in outputs else None for _, key in columns]
            for _, outputs in figure]
    low = math.log(1e-5)
    high = max(m.max() for row in mels for m in row if m is not None)
    fig = new_figure(3.6 * len(columns), 2.6 * len(figure))
    axes = fig.subplots(len(figure), len(columns), squeeze=False, sharey=True)
    image = None
    for r, ((stem, _), row) in enumerate(zip(figure, mels)):
        for c, ((title, _), mel) in enumerate(zip(columns, row)):
            ax = axes[r][c]
            if mel is None:
                ax.text(0.5, 0.5, "no output", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
            else:
                seconds = mel.shape[1] * features.hop_length / rate
                image = ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high,
                                  extent=(0, seconds, 0, mel.shape[0]))
            ax.set_title(f"{title}: {stem}", fontsize=9)
            ax.set_xlabel("time (s)")
            if c == 0:
                _frequency_axis(ax, rate, mel.shape[0] if mel is not None else 80)
    if image is not None:
        fig.colorbar(image, ax=axes, label="log mel magnitude (ln)", shrink=0.9)
    figure_to_png(fig, path)


def _frequency_axis(ax, rate: int, n_mel: int) -> None:
    """Label mel channels with their centre frequencies (Slaney scale, 0 .. 8 kHz)."""
    import librosa

    centres = librosa.mel_frequencies(n_mel + 2, fmin=0.0, fmax=min(8000.0, rate / 2), htk=False)[1:-1]
    ticks = [f for f in (0.5, 1, 2, 4, 8) if f * 1000 <= centres[-1]]
    ax.set_yticks([float(np.searchsorted(centres, f * 1000)) for f in ticks], [f"{f:g}" for f in ticks])
    ax.set_ylabel("frequency (kHz)")


def write_outputs(output_dir: str, result: dict, results: Results, metrics: tuple[str, ...], rate: int,
                  device: torch.device, seconds: float) -> str:
    write_text(os.path.join(output_dir, "summary.json"), json.dumps(result, indent=2) + "\n")
    write_csv(os.path.join(output_dir, "clips.csv"), results, metrics)
    text = summary_markdown(result, results, device, seconds)
    write_text(os.path.join(output_dir, "summary.md"), text)
    spectrogram_figure(os.path.join(output_dir, "spectrograms.png"), results.figure[:FIGURE_CLIPS], rate)
    return text


def write_page(args: argparse.Namespace, systems: list[System], results: Results, result: dict, rate: int,
               device: torch.device) -> str:
    """``OUT/report.html``: the run's facts, the means, and every system's audio, spectrogram and scores per clip."""
    facts = [("clips", f"{result['clips']} scored, from {args.filelist}"), ("sampling rate", f"{rate} Hz")]
    checkpoints = [s for s in systems if s.kind == "checkpoint"]
    facts += [(f"checkpoint {s.name}", f"{path}: {checkpoint_facts(path)}; sigma {s.sigma:g}")
              for path, s in zip(args.checkpoint, checkpoints)]
    facts += [(f"outputs {s.name}", s.directory) for s in systems if s.kind == "wavs"]
    if args.griffin_lim:
        facts.append(("Griffin-Lim", f"{GRIFFIN_LIM_ITERATIONS} iterations from the clip's log-mel"))
    facts += [("denoiser strength", "0 (no denoiser)"), ("seed", f"{args.seed} (clip i: seed + i)"),
              *machine_facts(device)]
    return write_report(args.output_dir, results.rows, dict(results.figure), rate, title="Objective evaluation",
                        reference=GROUND_TRUTH, facts=facts, summary=result["systems"],
                        labels={GROUND_TRUTH: "original (ground_truth)"}, problems=results.problems,
                        shown=args.report_clips)


# ------------------------------------------------------------------------------ main


def read_clips(path: str, limit: int | None) -> list[str]:
    try:
        files = read_file_list(path)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: cannot read the file list ({getattr(e, 'strerror', None) or e})") from None
    if not files:
        raise UsageError(f"{path}: lists no audio files")
    return files[:limit] if limit is not None else files


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    metrics, messages = evaluation.available_metrics(args.metrics)
    for message in messages:
        print(f"warning: {message}", file=sys.stderr)
    try:
        if args.device == "cuda" and not torch.cuda.is_available():
            raise UsageError("--device cuda: CUDA is not available here")
        if args.limit is not None and args.limit <= 0:
            raise UsageError(f"--limit must be positive, got {args.limit}")
        files = read_clips(args.filelist, args.limit)
        systems, data_config = load_systems(args, device)
        os.makedirs(args.output_dir, exist_ok=True)
    except (UsageError, CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    results = score_clips(files, systems, data_config, metrics, args.seed, keep=args.report_clips)
    if results.clips == 0:
        print(f"error: {args.filelist}: none of its {len(files)} clips could be read", file=sys.stderr)
        return 1
    result = summary(results, systems, metrics)
    text = write_outputs(args.output_dir, result, results, metrics, data_config.sampling_rate, device,
                         time.perf_counter() - started)
    write_page(args, systems, results, result, data_config.sampling_rate, device)
    print("\n" + text + f"\nwritten to {args.output_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
