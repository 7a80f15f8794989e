"""Systems scored on a list of clips, and what that writes: the pipeline of ``waveglow-evaluate`` and the demo.

    systems = [checkpoint_system("ours.pt", model, data_config), griffin_lim_system(data_config),
               ground_truth_system(data_config)]
    results = score_clips(files, systems, data_config, metrics, seed=0)   # rows: one per clip and system
    table = summary(results, metrics)      # {"systems": {name: {metric: mean, ..., "rtf": ...}}, "clips": N}
    write_results("eval", results, metrics, table)   # summary.json, clips.csv, spectrograms.png
    print(markdown_table(table["systems"]))

A *system* gives its version of each clip: a checkpoint vocodes the clip's features (copy synthesis;
clip i draws its noise from a CPU generator seeded ``seed + i``), Griffin-Lim inverts its Tacotron 2
log-mel (initial phases seeded the same way), ``--wavs`` reads another system's file, and
``ground_truth`` is the clip itself, scored by the reference-free metrics only. :func:`score_clips`
reads each clip, asks every system for its version, scores it with
:func:`waveglow.evaluation.score_clip` against the clip as that system's features prepare it, and
keeps one row per clip and system (``clip``, ``system``, the metrics, a ``note`` saying why a value
is missing) and the audio of the first clips, for figures and the listening page (:mod:`waveglow.report`).

:data:`METRICS` describes every number a row or a summary can hold (label, unit, precision, the
better direction, what it measures); the tables here and the page use it. Figures are drawn by
:mod:`waveglow.plotting` in :func:`spectrogram_config`'s features: Tacotron 2's log-mel at the
evaluation rate, 0 Hz to 8 kHz.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import evaluation
from .atomic import atomic_open, write_text
from .audio import MelSpectrogram, load_audio
from .config import DataConfig
from .errors import AudioError
from .likelihood import clip_log_likelihood
from .plotting import figure_to_png, spectrogram_comparison_figure

__all__ = [
    "CHECKPOINT", "WAVS", "GRIFFIN_LIM", "GROUND_TRUTH", "GRIFFIN_LIM_ITERATIONS", "FIGURE_CLIPS", "ROW_KEYS",
    "Metric", "METRICS", "describe", "System", "checkpoint_system", "griffin_lim_system", "wavs_system",
    "ground_truth_system", "Results", "score_clips", "mean_scores", "summary", "write_csv", "markdown_table",
    "spectrogram_config", "log_mels", "spectrogram_figure", "write_results",
]

CHECKPOINT, WAVS, GRIFFIN_LIM, GROUND_TRUTH = "checkpoint", "wavs", "griffin_lim", "ground_truth"  # System.kind
GRIFFIN_LIM_ITERATIONS = 60
FIGURE_CLIPS = 3  # clips in spectrograms.png
SPECTROGRAM_FMAX = 8000.0  # Hz, or half the sampling rate if lower
ROW_KEYS = ("clip", "system", "note")  # the row fields that are not metrics


@dataclass(frozen=True)
class Metric:
    """How one metric is shown: its name, unit, precision, better direction and meaning."""

    label: str
    decimals: int  # on the page
    better: str  # "higher" or "lower"
    meaning: str
    unit: str = ""
    table_decimals: int | None = None  # in summary.md's table, where not ``decimals``

    def format(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "–"
        return f"{value:.{self.decimals}f}"

    @property
    def heading(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


METRICS: dict[str, Metric] = {
    "pesq_wb": Metric("PESQ-WB", 2, "higher", "wide-band PESQ (ITU-T P.862.2), a predicted listening score "
                      "against the original: about 1.0 for noise, 4.64 identical", table_decimals=3),
    "stoi": Metric("STOI", 3, "higher", "short-time objective intelligibility against the original: 0 .. 1"),
    "log_mel_l1": Metric("log-mel L1", 3, "lower", "mean |log-mel difference| from the original in the model's "
                         "own features (natural log): 0 identical"),
    "mcd_db": Metric("MCD", 2, "lower", "mel-cepstral distortion from the original: 0 identical, about 20 for noise",
                     "dB"),
    "f0_rmse_cents": Metric("F0 RMSE", 1, "lower", "pitch error over frames both clips call voiced: "
                            "100 cents is a semitone", "cents"),
    "vuv_error": Metric("V/UV error", 3, "lower", "share of frames whose voiced/unvoiced decision differs "
                        "from the original's: 0 .. 1"),
    "dnsmos_ovrl": Metric("DNSMOS OVRL", 2, "higher", "overall quality a network (DNSMOS P.835) predicts from this "
                          "audio alone, no reference: 1 .. 5", table_decimals=3),
    "dnsmos_p808": Metric("DNSMOS P.808", 2, "higher", "listener rating a network (DNSMOS P.808) predicts from this "
                          "audio alone, no reference: 1 .. 5", table_decimals=3),
    "log_mel_distance": Metric("log-mel distance", 3, "lower", "mean |log-mel difference| from the original in "
                               "Tacotron 2 features (natural log, floor 1e-5): 0 identical"),
    "energy_correlation": Metric("energy correlation", 3, "higher", "correlation of the per-frame energy (dB) "
                                 "with the original's: 1 follows its loudness exactly"),
    "test_ll": Metric("test LL", 4, "higher", "exact log-likelihood of the original clip under the model, nats per "
                      "sample (L0SG/NanoFlow's \"Test set LL\"); a score of the model, not of its audio",
                      "nats/sample"),
    "rtf": Metric("RTF", 3, "lower", "seconds of vocoding per second of audio on the device used "
                  "(below 1: faster than real time)"),
}


def describe(key: str) -> Metric:
    """The metric's description; a key not in :data:`METRICS` is shown by its name."""
    return METRICS.get(key, Metric(key, 3, "", ""))


# ------------------------------------------------------------------------------ systems


@dataclass
class System:
    """One source of a version of each clip, and what it took to make them."""

    name: str
    kind: str  # CHECKPOINT, WAVS, GRIFFIN_LIM or GROUND_TRUTH
    features: nn.Module  # the reference is prepared by these; a checkpoint vocodes them, Griffin-Lim inverts them
    yardstick: nn.Module | None = None  # log_mel_l1 and energy_correlation are measured in these; None: features
    model: object = None  # a model or its inference object (load_for_inference)
    sigma: float = 0.0
    directory: str = ""  # of a WAVS system
    iterations: int = GRIFFIN_LIM_ITERATIONS  # of a GRIFFIN_LIM system
    seconds: float = 0.0  # spent vocoding
    audio_seconds: float = 0.0  # of audio vocoded

    @property
    def measure(self) -> nn.Module:
        return self.features if self.yardstick is None else self.yardstick

    @property
    def rtf(self) -> float | None:
        """Seconds of vocoding (features to waveform) per second of audio; None for outside outputs."""
        if self.kind not in (CHECKPOINT, GRIFFIN_LIM) or self.audio_seconds == 0:
            return None
        return self.seconds / self.audio_seconds


def checkpoint_system(name: str, model, data_config, sigma: float | None = None,
                      yardstick: nn.Module | None = None) -> System:
    """A model vocoding its family's features of each clip; ``sigma`` None is the family's default."""
    sigma = evaluation.default_sigma(model) if sigma is None else sigma
    return System(name, CHECKPOINT, evaluation.model_features(model, data_config), yardstick, model=model, sigma=sigma)


def griffin_lim_system(data_config, iterations: int = GRIFFIN_LIM_ITERATIONS, name: str = GRIFFIN_LIM) -> System:
    """Griffin-Lim inverting each clip's Tacotron 2 log-mel (``data_config``'s settings)."""
    return System(name, GRIFFIN_LIM, MelSpectrogram.from_config(data_config), iterations=iterations)


def wavs_system(name: str, directory: str, data_config) -> System:
    """Another system's outputs, ``directory/<clip stem>.wav``, measured in Tacotron 2's log-mel."""
    return System(name, WAVS, MelSpectrogram.from_config(data_config), directory=directory)


def ground_truth_system(data_config, name: str = GROUND_TRUTH) -> System:
    """The clips themselves, scored by the reference-free metrics only."""
    return System(name, GROUND_TRUTH, MelSpectrogram.from_config(data_config))


def outside_path(directory: str, stem: str) -> str:
    """``DIR/<stem>.wav``, or inference.py's ``DIR/<stem>_synthesis.wav`` when only that exists."""
    path = os.path.join(directory, f"{stem}.wav")
    ours = os.path.join(directory, f"{stem}_synthesis.wav")
    return ours if not os.path.exists(path) and os.path.exists(ours) else path


def read_outside_wav(path: str, rate: int) -> np.ndarray:
    """Another system's output at the evaluation rate -> (T,); AudioError naming the file otherwise."""
    import soundfile  # optional: load_audio falls back to scipy without it

    if os.path.isfile(path):
        try:
            file_rate = soundfile.info(path).samplerate
        except RuntimeError as e:
            raise AudioError(f"{path}: cannot read as audio ({e})") from None
        if file_rate != rate:
            raise AudioError(f"{path}: sampling rate {file_rate} Hz, the reference's is {rate} Hz",
                             reason="sampling rate")
    return load_audio(path, rate, downmix=True).numpy()


def system_output(system: System, index: int, stem: str, clip: np.ndarray, data_config, seed: int) -> np.ndarray:
    """The system's version of ``clip`` (the reference, as the system sees it), same length."""
    if system.kind == GROUND_TRUTH:
        return clip
    if system.kind == WAVS:
        audio = read_outside_wav(outside_path(system.directory, stem), data_config.sampling_rate)
        return evaluation.align(audio, clip.size, data_config.hop_length)
    started = time.perf_counter()
    if system.kind == GRIFFIN_LIM:
        mel = evaluation.log_mel(system.features, clip)
        audio = evaluation.griffin_lim(mel, data_config, clip.size, system.iterations, seed + index)
    else:
        generator = torch.Generator().manual_seed(seed + index)  # CPU noise: the same audio on any device
        audio = evaluation.vocode(system.model, system.features, clip, system.sigma, generator)
    system.seconds += time.perf_counter() - started
    system.audio_seconds += clip.size / data_config.sampling_rate
    return audio


def system_metrics(system: System, metrics: Sequence[str]) -> tuple[str, ...]:
    """The metrics that apply to the system: the reference-free ones for the clips themselves,
    scores of a model (test LL) for checkpoints only."""
    if system.kind == GROUND_TRUTH:
        return tuple(m for m in metrics if m in evaluation.REFERENCE_FREE)
    if system.kind != CHECKPOINT:
        return tuple(m for m in metrics if m not in evaluation.MODEL_METRICS)
    return tuple(metrics)


def model_scores(system: System, clip: np.ndarray, metrics: Sequence[str]) -> dict[str, float]:
    """A checkpoint's scores of the original clip itself: its exact log-likelihood (``test_ll``)."""
    if system.kind != CHECKPOINT or "test_ll" not in metrics:
        return {}
    return {"test_ll": clip_log_likelihood(system.model, system.features, clip)}


def warm_up(systems: Sequence[System], rate: int) -> None:
    """Vocode half a second of silence with each checkpoint, untimed, so the RTF leaves out one-time costs."""
    silence = np.zeros(rate // 2, np.float32)
    for system in systems:
        if system.kind == CHECKPOINT:
            evaluation.vocode(system.model, system.features, silence, system.sigma, torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------ scoring


@dataclass
class Results:
    systems: list[System]
    sampling_rate: int  # of the clips and every output
    rows: list[dict] = field(default_factory=list)  # one per (clip, system): clips.csv
    problems: list[str] = field(default_factory=list)
    outputs: list[tuple[str, dict[str, np.ndarray]]] = field(default_factory=list)  # (clip, {system: audio})
    clips: int = 0  # read and scored

    def report(self, message: str) -> None:
        self.problems.append(message)
        tqdm.write(f"warning: {message}", file=sys.stderr)


def clip_name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def score_clips(files: Sequence[str], systems: Sequence[System], data_config, metrics: Sequence[str], seed: int = 0,
                keep: int = FIGURE_CLIPS, *, prepare: nn.Module | None = None, desc: str = "scoring") -> Results:
    """Every system's version of every clip of ``files``, scored against the clip.

    Clips are read at ``data_config.sampling_rate`` (resampled, downmixed); one that cannot be used
    is reported and skipped. ``prepare``: features whose ``prepare_audio`` every clip goes through
    as read (the demo's: the model's, so that all systems hear one clip). Each system scores its
    output against the clip as its own features prepare it, with the ``metrics`` that apply to it
    (:func:`system_metrics`); a failing output gives a row with a ``note`` and is reported. The
    outputs of the first ``keep`` clips (at least :data:`FIGURE_CLIPS`) are kept.
    """
    rate = data_config.sampling_rate
    results = Results(list(systems), rate)
    needed = max(s.features.min_samples for s in systems)
    warm_up(systems, rate)
    for index, path in enumerate(tqdm(files, desc=desc, unit="clip", dynamic_ncols=True, file=sys.stderr)):
        stem = clip_name(path)
        try:
            clip = load_audio(path, rate, resample=True, downmix=True, needed=needed).numpy()
        except AudioError as e:
            results.report(f"skipped clip: {e}")
            continue
        if prepare is not None:
            clip = evaluation.prepare_reference(prepare, clip)
        results.clips += 1
        outputs = {}
        for system in systems:
            row = {"clip": stem, "system": system.name, "note": ""}
            try:
                reference = evaluation.prepare_reference(system.features, clip)
                outputs[system.name] = audio = system_output(system, index, stem, reference, data_config, seed)
                row.update(evaluation.score_clip(reference, audio, rate, system.measure,
                                                 system_metrics(system, metrics)))
                row.update(model_scores(system, clip, metrics))
            except (AudioError, ValueError) as e:
                row["note"] = str(e)
                results.report(f"{system.name}, clip {stem}: {e}")
            results.rows.append(row)
        if len(results.outputs) < max(keep, FIGURE_CLIPS):
            results.outputs.append((stem, outputs))
    return results


def _finite(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def mean_scores(rows: Sequence[Mapping], systems: Sequence[str],
                keys: Sequence[str] | None = None) -> dict[str, dict[str, float | None]]:
    """system -> metric -> the mean of its rows' finite values (None where there is none), for the
    metrics ``keys`` or, by default, every metric the system's rows hold."""
    table = {}
    for system in systems:
        mine = [r for r in rows if r["system"] == system]
        names = keys if keys is not None else list(dict.fromkeys(k for r in mine for k in r if k not in ROW_KEYS))
        values = {k: [v for r in mine if (v := _finite(r.get(k))) is not None] for k in names}
        table[system] = {k: float(np.mean(v)) if v else None for k, v in values.items()}
    return table


def summary(results: Results, metrics: Sequence[str]) -> dict:
    """``{"systems": {name: {metric: mean or None, ..., "rtf": ...}}, "clips": N}`` (summary.json)."""
    means = mean_scores(results.rows, [s.name for s in results.systems], metrics)
    return {"systems": {s.name: {**means[s.name], "rtf": s.rtf} for s in results.systems}, "clips": results.clips}


# ------------------------------------------------------------------------------ tables and figures


def write_csv(path: str, rows: Sequence[Mapping], metrics: Sequence[str]) -> None:
    """clips.csv: ``clip, system, <metrics>, note``; an empty cell where a metric has no value."""
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["clip", "system", *metrics, "note"], restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})


def markdown_table(table: Mapping[str, Mapping[str, float | None]]) -> str:
    """system -> metric -> value as a Markdown table, a column per metric any system has; ``-`` for None."""
    keys = [k for k in METRICS if any(k in row for row in table.values())]
    lines = ["| system | " + " | ".join(METRICS[k].heading for k in keys) + " |", "|---|" + "---:|" * len(keys)]
    for name, row in table.items():
        cells = []
        for key in keys:
            metric = METRICS[key]
            decimals = metric.decimals if metric.table_decimals is None else metric.table_decimals
            cells.append("-" if row.get(key) is None else f"{row[key]:.{decimals}f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spectrogram_config(sampling_rate: int) -> DataConfig:
    """The pictures' features: Tacotron 2's log-mel at ``sampling_rate``, 0 Hz .. 8 kHz (or Nyquist)."""
    return DataConfig(sampling_rate=sampling_rate, mel_fmax=min(SPECTROGRAM_FMAX, sampling_rate / 2))


def log_mels(features: nn.Module, outputs: Mapping[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    """system -> (n_mel, frames) log-mel of each output long enough for one frame."""
    return {system: evaluation.log_mel(features, audio) for system, audio in outputs.items()
            if audio is not None and np.asarray(audio).size >= features.filter_length}


def spectrogram_figure(clips: Sequence[tuple[str, Mapping[str, np.ndarray]]], sampling_rate: int, *,
                       systems: Sequence[str] | None = None, labels: Mapping[str, str] | None = None,
                       title: str | None = None):
    """One row per ``(clip, {system: (T,) audio})``, one column per system (default: the first clip's),
    the log-mels on one colour scale (:func:`waveglow.plotting.spectrogram_comparison_figure`); a
    system without audio for a clip is an empty "no output" panel. ``labels``: column titles."""
    config = spectrogram_config(sampling_rate)
    features = MelSpectrogram.from_config(config)
    systems = list(clips[0][1]) if systems is None else systems
    rows = []
    for clip, outputs in clips:
        mels = log_mels(features, outputs)
        rows.append((clip, {(labels or {}).get(s, s): mels.get(s) for s in systems}))
    return spectrogram_comparison_figure(rows, sampling_rate, config.hop_length, title=title,
                                         frequency_range=(config.mel_fmin, config.mel_fmax))


def write_results(output_dir: str, results: Results, metrics: Sequence[str], table: Mapping) -> None:
    """``summary.json`` (``table``, from :func:`summary`), ``clips.csv`` and ``spectrograms.png`` (the
    reference and every system for the first :data:`FIGURE_CLIPS` clips) in ``output_dir``."""
    write_text(os.path.join(output_dir, "summary.json"), json.dumps(table, indent=2) + "\n")
    write_csv(os.path.join(output_dir, "clips.csv"), results.rows, metrics)
    if results.outputs:
        names = [s.name for s in results.systems]
        columns = [GROUND_TRUTH] + [n for n in names if n != GROUND_TRUTH] if GROUND_TRUTH in names else names
        fig = spectrogram_figure(results.outputs[:FIGURE_CLIPS], results.sampling_rate, systems=columns,
                                 labels={GROUND_TRUTH: "reference"},
                                 title="log-mel of the reference and of each system")
        figure_to_png(fig, os.path.join(output_dir, "spectrograms.png"))
