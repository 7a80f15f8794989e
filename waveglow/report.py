"""One HTML page to hear and see every system's version of each clip: ``report.html``.

    rows = [{"clip": "LJ001-0001", "system": "ground_truth", "dnsmos_ovrl": 3.1, "note": ""},
            {"clip": "LJ001-0001", "system": "waveglow_10000", "pesq_wb": 3.9, "note": ""}, ...]
    audio = {"LJ001-0001": {"ground_truth": clip, "waveglow_10000": vocoded}}   # (T,) float arrays
    write_report("eval", rows, audio, 22050, title="Objective evaluation", reference="ground_truth",
                 facts=[("checkpoint", "waveglow_10000"), *machine_facts(device)])

The page, from the Jinja2 template ``waveglow/templates/report.html.j2`` (autoescaped), holds the
run's facts; the mean of every metric per system with what the metric measures and which direction
is better; and a grid with one row per clip and one column per system, the reference first. Each
cell has an ``<audio controls>`` player, the log-mel spectrogram under it (one colour scale per
row, time in s, frequency in Hz) and the clip's scores, or, where the system gave no audio or
no score, why. The first ``shown`` clips get players and pictures; the rest are listed with their
scores. ``rows`` are ``clips.csv``'s rows: one per clip and system, metric values and a ``note``.

Audio and pictures are files under ``report_files/`` beside the page, named by relative paths, so
the folder can be zipped, served or opened from disk as it is; the page fetches nothing from the
network. WAVs that already lie in the output folder (``wav_files``) are linked where they are;
other audio is written there as 16-bit PCM WAV at ``sampling_rate``.

What each metric means, its precision and better direction (:data:`METRICS`), the means per system
and the pictures' features come from :mod:`waveglow.evaluation_output`, the pipeline behind
``waveglow-evaluate`` and the demo; the pictures are drawn by :mod:`waveglow.plotting`.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Mapping, Sequence
from urllib.parse import quote

import jinja2
import numpy as np
import torch

from .atomic import write_text
from .audio import MelSpectrogram
from .checkpoint import read_checkpoint
from .devices import cpu_name
from .evaluation_output import METRICS, ROW_KEYS, Metric, describe, log_mels, mean_scores, spectrogram_config
from .plotting import DPI, LOG_FLOOR, colour_bar_figure, figure_to_png, new_figure, plot_mel
from .registry import family_named
from .synthesis import write_wav

__all__ = ["METRICS", "Metric", "describe", "checkpoint_facts", "machine_facts", "write_report"]

REPORT = "report.html"
FILES = "report_files"
SIBLINGS = ("summary.md", "summary.txt", "summary.json", "clips.csv", "spectrograms.png", "loss.png")
IMAGE_SIZE = (3.3, 2.1)  # inches at waveglow.plotting.DPI (100): 330 x 210 pixels
COLOUR_BAR_SIZE = (1.1, 2.1)  # the row's colour scale, beside the clip's name


# ------------------------------------------------------------------------------ run facts


def machine_facts(device) -> list[tuple[str, str]]:
    """("device", ...), ("CPU", model name and cores), ("GPU", name or "none used") of this machine."""
    device = torch.device(device)
    gpu = "none used"
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
    return [("device", str(device)), ("CPU", f"{cpu_name()}, {os.cpu_count()} logical cores"), ("GPU", gpu)]


def checkpoint_facts(path: str) -> str:
    """"<family>, iteration N" of a checkpoint, read without loading its weights (meta tensors)."""
    try:
        checkpoint = read_checkpoint(path, map_location="meta")
        family = family_named(checkpoint.family).title
    except (RuntimeError, ValueError, KeyError) as e:
        return f"(not readable: {e})"
    iteration = f"iteration {checkpoint.iteration}" if checkpoint.iteration else "iteration not recorded"
    return f"{family}, {iteration}"


def now() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


# ------------------------------------------------------------------------------ the page's parts


@dataclass
class Cell:
    """What one system gives for one clip: its player, its picture, its scores, or why there are none."""

    audio: str | None = None  # relative URL of the WAV
    image: str | None = None  # relative URL of the spectrogram PNG
    scores: list[tuple[str, str]] = field(default_factory=list)  # (label with unit, value)
    note: str = ""


@dataclass
class Row:
    """One clip: its name, its length, one cell per column."""

    clip: str
    seconds: float | None
    cells: list[Cell]
    scale: str | None = None  # relative URL of the row's colour bar PNG


@dataclass
class SummaryLine:
    """One metric of the mean-score table: its description and each column's value."""

    key: str
    metric: Metric
    values: list[tuple[str, bool]]  # per column: (text, best)


def _order(items) -> list[str]:
    return list(dict.fromkeys(items))


def _columns(rows: Sequence[Mapping], summary: Mapping | None, reference: str) -> list[str]:
    systems = _order([*(summary or {}), *(r["system"] for r in rows)])
    return [reference, *[s for s in systems if s != reference]] if reference in systems else systems


def _metric_keys(rows: Sequence[Mapping], summary: Mapping[str, Mapping]) -> list[str]:
    found = _order([*(k for r in rows for k in r if k not in ROW_KEYS), *(k for s in summary.values() for k in s)])
    return [k for k in METRICS if k in found] + [k for k in found if k not in METRICS]


def _finite(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def summary_lines(summary: Mapping[str, Mapping], columns: Sequence[str], keys: Sequence[str],
                  reference: str) -> list[SummaryLine]:
    """One line per metric; the best value of the systems other than the reference is marked."""
    lines = []
    for key in keys:
        metric = describe(key)
        values = [_finite(summary.get(c, {}).get(key)) for c in columns]
        ranked = [v for c, v in zip(columns, values) if v is not None and c != reference]
        best = None
        if len(ranked) > 1 and metric.better:
            best = max(ranked) if metric.better == "higher" else min(ranked)
        lines.append(SummaryLine(key, metric, [(metric.format(v), v is not None and v == best and c != reference)
                                               for c, v in zip(columns, values)]))
    return lines


def cell_scores(row: Mapping | None) -> list[tuple[str, str]]:
    if row is None:
        return []
    keys = [k for k in METRICS if k in row] + [k for k in row if k not in METRICS and k not in ROW_KEYS]
    return [(describe(k).heading, describe(k).format(_finite(row[k]))) for k in keys]


def _safe(name: str) -> str:
    """A file-name-safe version of a clip or system name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "x"


def _url(path: str) -> str:
    return quote(path.replace(os.sep, "/"))


# ------------------------------------------------------------------------------ files beside the page


def _spectrogram_png(path: str, mel: np.ndarray, config, vmax: float) -> None:
    """One panel, no colour bar: the row's scale is drawn once by :func:`_colour_bar_png`."""
    fig = new_figure(*IMAGE_SIZE)
    plot_mel(mel, config.sampling_rate, config.hop_length, fig.add_subplot(), vmin=LOG_FLOOR, vmax=vmax,
             frequency_range=(config.mel_fmin, config.mel_fmax), colorbar=False)
    figure_to_png(fig, path)


def _colour_bar_png(path: str, vmax: float) -> None:
    figure_to_png(colour_bar_figure(LOG_FLOOR, vmax, *COLOUR_BAR_SIZE), path)


@dataclass
class _Writer:
    """Writes one shown clip's files into ``staging`` (to become ``output_dir/report_files``)."""

    output_dir: str
    staging: str
    config: object  # the pictures' DataConfig (spectrogram_config)
    wav_files: Mapping[str, Mapping[str, str]]
    sampling_rate: int = field(init=False)
    features: object = field(init=False)  # (B, T) -> (B, n_mel, frames)

    def __post_init__(self) -> None:
        self.sampling_rate = self.config.sampling_rate
        self.features = MelSpectrogram.from_config(self.config)

    def row(self, index: int, clip: str, columns: Sequence[str], outputs: Mapping[str, np.ndarray | None],
            rows: Mapping[str, Mapping]) -> Row:
        folder = f"{index:03d}_{_safe(clip)}"
        os.makedirs(os.path.join(self.staging, folder), exist_ok=True)
        mels = log_mels(self.features, outputs)
        vmax = max((float(m.max()) for m in mels.values()), default=0.0)
        cells = [self.cell(folder, k, system, clip, outputs.get(system), mels.get(system), vmax, rows.get(system))
                 for k, system in enumerate(columns)]
        lengths = [np.asarray(outputs[s]).size for s in columns if outputs.get(s) is not None]  # the reference's first
        row = Row(clip, lengths[0] / self.sampling_rate if lengths else None, cells)
        if mels:
            _colour_bar_png(os.path.join(self.staging, folder, "scale.png"), vmax)
            row.scale = _url(os.path.join(FILES, folder, "scale.png"))
        return row

    def cell(self, folder: str, k: int, system: str, clip: str, audio, mel, vmax: float, row) -> Cell:
        name = os.path.join(folder, f"{k}_{_safe(system)}")
        cell = Cell(scores=cell_scores(row), note=(row or {}).get("note", "") or "")
        if audio is None:
            cell.note = cell.note or ("no output" if row is not None else "not scored")
            return cell
        cell.audio = self.audio(name, system, clip, audio)
        if mel is None:
            cell.note = cell.note or "too short for a spectrogram"
        else:
            _spectrogram_png(os.path.join(self.staging, name + ".png"), mel, self.config, vmax)
            cell.image = _url(os.path.join(FILES, name + ".png"))
        return cell

    def audio(self, name: str, system: str, clip: str, audio: np.ndarray) -> str:
        """The relative URL of the output's WAV: an existing file in the output folder, else a new one."""
        existing = self.wav_files.get(clip, {}).get(system)
        if existing is not None:
            relative = os.path.relpath(os.path.abspath(existing), os.path.abspath(self.output_dir))
            if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
                return _url(relative)
            shutil.copyfile(existing, os.path.join(self.staging, name + ".wav"))
        else:
            write_wav(os.path.join(self.staging, name + ".wav"), np.asarray(audio, np.float32), self.sampling_rate)
        return _url(os.path.join(FILES, name + ".wav"))


def _scores_only(clip: str, columns: Sequence[str], rows: Mapping[str, Mapping]) -> Row:
    """A clip past the shown ones: its scores and notes, no audio or pictures."""
    cells = [Cell(scores=cell_scores(rows.get(s)), note=rows[s].get("note", "") if s in rows else "not scored")
             for s in columns]
    return Row(clip, None, cells)


def _replace_folder(staging: str, final: str) -> None:
    """Put ``staging`` in ``final``'s place; the old folder is removed only once the new one is there."""
    old = None
    if os.path.exists(final):
        old = final + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _render(context: Mapping) -> str:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("waveglow", "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template("report.html.j2").render(context)


# ------------------------------------------------------------------------------ the page


def write_report(
    output_dir: str,
    rows: Sequence[Mapping],
    audio: Mapping[str, Mapping[str, np.ndarray | None]],
    sampling_rate: int,
    *,
    title: str,
    reference: str,
    facts: Sequence[tuple[str, str]] = (),
    summary: Mapping[str, Mapping[str, float | None]] | None = None,
    labels: Mapping[str, str] | None = None,
    problems: Sequence[str] = (),
    shown: int = 20,
    wav_files: Mapping[str, Mapping[str, str]] | None = None,
    introduction: str = "",
) -> str:
    """Write ``output_dir/report.html`` and ``output_dir/report_files/``; returns the page's path.

    ``rows``: one mapping per clip and system (``clip``, ``system``, metric values, ``note``);
    ``audio``: clip -> system -> (T,) output at ``sampling_rate`` (None or absent: no output), for at
    least the first ``shown`` clips; ``reference``: the system that is the original clip (the first
    column); ``summary``: system -> metric -> mean (default: the mean of ``rows``); ``labels``:
    column headings (default: the system names); ``wav_files``: clip -> system -> an existing
    WAV of that output, linked where it lies inside ``output_dir``, copied otherwise.
    """
    if shown < 0:
        raise ValueError(f"shown must be >= 0, got {shown}")
    columns = _columns(rows, summary, reference)
    summary = summary if summary is not None else mean_scores(rows, columns)
    by_clip = _by_clip(rows, audio)
    labels = labels or {}
    staging = tempfile.mkdtemp(prefix=f".{FILES}-", dir=output_dir)
    try:
        spectrogram = spectrogram_config(sampling_rate)
        writer = _Writer(output_dir, staging, spectrogram, wav_files or {})
        grid = [writer.row(i + 1, clip, columns, audio.get(clip, {}), by_clip[clip])
                for i, clip in enumerate(list(by_clip)[:shown])]
        page = _render({
            "title": title, "introduction": introduction, "facts": list(facts), "date": now(),
            "columns": [labels.get(c, c) for c in columns], "systems": columns,
            "reference": labels.get(reference, reference),
            "summary": summary_lines(summary, columns, _metric_keys(rows, summary), reference),
            "clips": len(by_clip), "grid": grid, "problems": list(problems),
            "rest": [_scores_only(clip, columns, by_clip[clip]) for clip in list(by_clip)[shown:]],
            "siblings": [name for name in SIBLINGS if os.path.isfile(os.path.join(output_dir, name))],
            "spectrogram": spectrogram, **_pixel_sizes(),
        })
        _replace_folder(staging, os.path.join(output_dir, FILES))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    path = os.path.join(output_dir, REPORT)
    write_text(path, page)
    return path


def _by_clip(rows: Sequence[Mapping], audio: Mapping[str, Mapping]) -> dict[str, dict[str, Mapping]]:
    """clip -> system -> its row, clips in the order of ``rows`` (then of ``audio``)."""
    by_clip: dict[str, dict[str, Mapping]] = {}
    for row in rows:
        by_clip.setdefault(row["clip"], {})[row["system"]] = row
    for clip in audio:
        by_clip.setdefault(clip, {})
    return by_clip


def _pixel_sizes() -> dict[str, list[int]]:
    return {"image_size": [round(inches * DPI) for inches in IMAGE_SIZE],
            "scale_size": [round(inches * DPI) for inches in COLOUR_BAR_SIZE]}
