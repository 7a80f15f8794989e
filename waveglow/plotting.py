"""Figures of log-mel spectrograms and training curves, drawn with matplotlib.

Every figure is a ``matplotlib.figure.Figure`` on its own Agg canvas: nothing here touches pyplot's
global state or the process-wide backend, and matplotlib is imported only when a figure is drawn.

    fig = mel_figure(mel, sampling_rate=22050, hop_length=256, title="LJ001-0001")
    figure_to_png(fig, "mel.png")                 # a file
    writer.add_image("mel", figure_to_image(fig))  # a (3, H, W) uint8 tensor for TensorBoard
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch

from .atomic import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "LOG_FLOOR",
    "colour_bar_figure",
    "figure_to_image",
    "figure_to_png",
    "loss_figure",
    "mel_figure",
    "new_figure",
    "plot_mel",
    "running_mean",
    "spectrogram_comparison_figure",
]

LOG_FLOOR = math.log(1e-5)  # the features' clamp: log-mels never go below it
DB_PER_NEPER = 20 / math.log(10)  # natural log of a magnitude -> dB
UNITS = {"log": "log magnitude (natural log)", "dB": "dB (20 log10 magnitude)"}
COLOUR_MAP = "magma"
DPI = 100


# ------------------------------------------------------------------------------ figures and canvases


def new_figure(width: float, height: float) -> "Figure":
    """A figure of ``width`` x ``height`` inches on its own Agg canvas, laid out by constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_to_png(fig: "Figure", path: str) -> str:
    """Write ``fig`` as a PNG file; returns ``path``."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi, facecolor="white")
    return path


def figure_to_image(fig: "Figure") -> torch.Tensor:
    """``fig`` rendered as a (3, H, W) uint8 RGB tensor (TensorBoard's ``add_image`` layout)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4)
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).contiguous()  # (3, H, W)


# ------------------------------------------------------------------------------ mel spectrograms


def _as_array(mel) -> np.ndarray:
    """A (n_mel, frames) tensor or array (a leading batch of 1 allowed) as float64 numpy."""
    if isinstance(mel, torch.Tensor):
        mel = mel.detach().float().cpu().numpy()
    mel = np.asarray(mel, dtype=np.float64)
    if mel.ndim == 3 and mel.shape[0] == 1:
        mel = mel[0]
    if mel.ndim != 2 or mel.size == 0:
        raise ValueError(f"expected a non-empty (n_mel, frames) log-mel, got shape {mel.shape}")
    return mel


def _in_unit(values, unit: str):
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {sorted(UNITS)}, got {unit!r}")
    return values * DB_PER_NEPER if unit == "dB" else values


HZ_TICKS = (0, 250, 500, 1000, 2000, 4000, 8000, 16000)


def _label_in_hz(ax: "Axes", n_mel: int, mel_fmin: float, mel_fmax: float) -> None:
    """Put round frequencies in Hz on a mel-bin y axis, at the bins whose Slaney-mel centres they are."""
    import librosa

    centres = librosa.mel_frequencies(n_mels=n_mel + 2, fmin=mel_fmin, fmax=mel_fmax, htk=False)[1:-1]  # (n_mel,)
    ticks = [hz for hz in HZ_TICKS if centres[0] <= hz <= centres[-1]]
    ax.set_yticks(np.interp(ticks, centres, np.arange(n_mel)), [f"{hz:g}" for hz in ticks])
    ax.set_ylabel("frequency (Hz)")


def plot_mel(
    mel,
    sampling_rate: int,
    hop_length: int,
    ax: "Axes | None" = None,
    *,
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    unit: str = "log",
    frequency_range: tuple[float, float] | None = None,
    colorbar: bool = True,
) -> "Axes":
    """Draw a (n_mel, frames) natural-log mel into ``ax`` (a new figure when None); returns the axes.

    Time runs in seconds (frame ``f`` is centred at ``f * hop_length / sampling_rate``), low
    frequencies at the bottom. The y axis counts mel bins, or, given ``frequency_range=(mel_fmin,
    mel_fmax)``, is labelled with each bin's centre frequency in Hz. ``unit`` is ``"log"`` (the
    features' own natural-log magnitude) or ``"dB"``; ``vmin``/``vmax`` are in that unit and default
    to the features' floor log(1e-5) and the mel's maximum. The colour bar names the unit.
    """
    values = _in_unit(_as_array(mel), unit)
    if ax is None:
        ax = new_figure(6.4, 3.2).add_subplot()
    n_mel, frames = values.shape
    frame_seconds = hop_length / sampling_rate
    low = _in_unit(LOG_FLOOR, unit) if vmin is None else vmin
    high = float(values.max()) if vmax is None else vmax
    image = ax.imshow(
        values, origin="lower", aspect="auto", interpolation="nearest", cmap=COLOUR_MAP,
        vmin=low, vmax=max(high, low + 1e-6),
        extent=(-0.5 * frame_seconds, (frames - 0.5) * frame_seconds, -0.5, n_mel - 0.5),
    )
    ax.set_xlabel("time (s)")
    if frequency_range is None:
        ax.set_ylabel("mel bin")
    else:
        _label_in_hz(ax, n_mel, *frequency_range)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=UNITS[unit], pad=0.01)
    return ax


def mel_figure(mel, sampling_rate: int, hop_length: int, **kwargs) -> "Figure":
    """A new figure holding one :func:`plot_mel` panel with its colour bar."""
    return plot_mel(mel, sampling_rate, hop_length, **kwargs).figure


def colour_bar_figure(vmin: float, vmax: float, width: float = 1.1, height: float = 2.2, *,
                      unit: str = "log") -> "Figure":
    """A figure of only a colour bar from ``vmin`` to ``vmax`` (in ``unit``), for panels drawn with
    ``plot_mel(..., vmin=vmin, vmax=vmax, colorbar=False)`` that share one scale."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig = new_figure(width, height)
    scale = ScalarMappable(Normalize(vmin, max(vmax, vmin + 1e-6)), cmap=COLOUR_MAP)
    fig.colorbar(scale, cax=fig.add_subplot(), label=UNITS[unit])
    return fig


def spectrogram_comparison_figure(
    rows: Sequence[tuple[str, Mapping[str, object]]],
    sampling_rate: int,
    hop_length: int,
    *,
    unit: str = "log",
    frequency_range: tuple[float, float] | None = None,
    title: str | None = None,
) -> "Figure":
    """A grid of log-mels: one row per ``(row name, {column name: (n_mel, frames) mel})``.

    Columns follow the first row's keys (e.g. original | WaveGlow | Griffin-Lim); a column a row
    lacks, or whose mel is None, is an empty panel saying "no output". All panels share one colour
    scale, from the features' floor log(1e-5) to the largest value of any panel, and one colour bar.
    """
    if not rows:
        raise ValueError("no rows to plot")
    columns = list(rows[0][1])
    mels = [[None if panels.get(column) is None else _as_array(panels[column]) for column in columns]
            for _, panels in rows]
    drawn = [m for row in mels for m in row if m is not None]
    if not drawn:
        raise ValueError("no mel to plot: every panel is empty")
    high = max(float(_in_unit(m, unit).max()) for m in drawn)
    fig = new_figure(3.6 * len(columns) + 0.8, 2.1 * len(rows) + 0.5)
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for r, (name, _) in enumerate(rows):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            if mels[r][c] is None:
                ax.text(0.5, 0.5, "no output", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(column)
            else:
                plot_mel(mels[r][c], sampling_rate, hop_length, ax, title=column, vmax=high, unit=unit,
                         frequency_range=frequency_range, colorbar=False)
            if r < len(rows) - 1:
                ax.set_xlabel("")
            ax.set_ylabel(f"{name}\n{ax.get_ylabel()}".strip() if c == 0 else "")
    image = next(ax.images[0] for ax in axes.flat if ax.images)
    fig.colorbar(image, ax=axes, label=UNITS[unit], shrink=min(1.0, 0.4 + 0.15 * len(rows)))
    if title:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------------------------ training curves


def _series(records: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(iterations, values) of the records holding a finite ``key``, in iteration order."""
    pairs = sorted((float(r["iteration"]), float(r[key])) for r in records
                   if key in r and "iteration" in r and r[key] is not None and math.isfinite(float(r[key])))
    if not pairs:
        return np.zeros(0), np.zeros(0)
    steps, values = np.array(pairs).T
    return steps, values


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values: (n,) -> (n - window + 1,)."""
    return np.convolve(values, np.ones(window) / window, mode="valid")


def loss_figure(records: Sequence[Mapping], *, window: int | None = None, log_iterations: bool | None = None,
                title: str = "training loss") -> "Figure":
    """Training loss against iteration from ``metrics.jsonl`` records (:func:`waveglow.metrics.read_metrics`).

    Training records hold ``loss``, validation records ``validation_loss`` (drawn as markers when
    present); non-finite losses are left out. ``window`` defaults to a 25th of the training records
    (no running mean for fewer than 50);
    ``log_iterations`` (default: when the iterations span two decades or more) puts the iteration
    axis on a log scale, which spreads out the fast early fall of the loss.
    """
    steps, losses = _series(records, "loss")
    val_steps, val_losses = _series(records, "validation_loss")
    fig = new_figure(8.0, 4.2)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    if steps.size == 0 and val_steps.size == 0:
        ax.text(0.5, 0.5, "no finite losses recorded", ha="center", va="center", transform=ax.transAxes)
        return fig
    if steps.size:
        window = window or max(1, steps.size // 25)
        window = min(window, steps.size)
        ax.plot(steps, losses, color="#9ab8e0" if window > 1 else "#14286e", linewidth=0.8 if window > 1 else 1.5,
                label="loss per iteration")
        if window > 1:
            ax.plot(steps[window - 1 :], running_mean(losses, window), color="#14286e", linewidth=2.0,
                    label=f"running mean of {window}")
    if val_steps.size:
        ax.plot(val_steps, val_losses, "o-", color="#d1495b", markersize=4, label="validation loss")
    every = np.concatenate([steps, val_steps])
    if log_iterations is None:
        log_iterations = every.min() > 0 and every.max() / every.min() >= 100
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    if log_iterations:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))  # 1, 10, 100 rather than powers of ten
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole iterations only
    ax.grid(True, which="major", color="#dddddd")
    ax.legend(loc="upper right")
    return fig
