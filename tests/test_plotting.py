"""waveglow/plotting.py: what each figure shows (axes, units, colour scales, the data drawn) and how it is written."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from waveglow.plotting import (
    DB_PER_NEPER,
    LOG_FLOOR,
    figure_to_image,
    figure_to_png,
    loss_figure,
    mel_figure,
    plot_mel,
    running_mean,
    spectrogram_comparison_figure,
)

from conftest import REPO

RATE, HOP = 22050, 256


def random_mel(frames: int = 40, n_mel: int = 80, seed: int = 0) -> torch.Tensor:
    return torch.randn(n_mel, frames, generator=torch.Generator().manual_seed(seed)) * 2 - 5


def colour_bar_axes(fig):
    return [ax for ax in fig.axes if not ax.images]


def test_plot_mel_axes_time_in_seconds_and_a_log_colour_bar():
    mel = random_mel(frames=87)
    fig = mel_figure(mel, RATE, HOP, title="clip")
    ax = next(ax for ax in fig.axes if ax.images)
    image = ax.images[0]
    left, right, bottom, top = image.get_extent()
    assert right - left == pytest.approx(87 * HOP / RATE)  # 87 frames of 256 samples
    assert (bottom, top) == (-0.5, 79.5)
    np.testing.assert_allclose(image.get_array(), mel.numpy(), rtol=1e-6)  # low bins at the bottom (origin lower)
    assert image.origin == "lower"
    assert image.get_clim() == pytest.approx((LOG_FLOOR, float(mel.max())))
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("time (s)", "mel bin", "clip")
    (bar,) = colour_bar_axes(fig)
    assert "log" in bar.get_ylabel()


def test_plot_mel_in_db_and_hz():
    mel = random_mel()
    ax = plot_mel(mel, RATE, HOP, unit="dB", frequency_range=(0.0, 8000.0), vmax=0.0)
    image = ax.images[0]
    np.testing.assert_allclose(image.get_array(), mel.numpy() * DB_PER_NEPER, rtol=1e-6)
    assert image.get_clim() == pytest.approx((-100.0, 0.0))  # 20 log10(1e-5)
    assert ax.get_ylabel() == "frequency (Hz)"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["250", "500", "1000", "2000", "4000"]
    positions = ax.get_yticks()
    assert np.all(np.diff(positions) > 0) and 0 < positions[0] and positions[-1] < 79
    assert "dB" in colour_bar_axes(ax.figure)[0].get_ylabel()


@pytest.mark.parametrize("bad", [torch.zeros(80), torch.zeros(80, 0), torch.zeros(2, 80, 5)])
def test_plot_mel_refuses_a_shape_that_is_not_a_mel(bad):
    with pytest.raises(ValueError, match="n_mel, frames"):
        plot_mel(bad, RATE, HOP)
    with pytest.raises(ValueError, match="unit"):
        plot_mel(random_mel(), RATE, HOP, unit="bels")


def test_comparison_figure_shares_one_colour_scale_and_bar():
    rows = [(f"clip{r}", {"original": random_mel(30 + 10 * r, seed=r), "WaveGlow": random_mel(30 + 10 * r, seed=9) + 3,
                          "Griffin-Lim": random_mel(30 + 10 * r, seed=5)}) for r in range(2)]
    fig = spectrogram_comparison_figure(rows, RATE, HOP, frequency_range=(0.0, 8000.0), title="demo")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6 and len(colour_bar_axes(fig)) == 1
    highest = max(float(m.max()) for _, row in rows for m in row.values())
    for ax in panels:
        assert ax.images[0].get_clim() == pytest.approx((LOG_FLOOR, highest))
    assert [ax.get_title() for ax in panels[:3]] == ["original", "WaveGlow", "Griffin-Lim"]
    assert panels[0].get_ylabel().startswith("clip0") and panels[3].get_ylabel().startswith("clip1")
    right = [ax.images[0].get_extent()[1] for ax in panels[::3]]
    assert right == pytest.approx([29.5 * HOP / RATE, 39.5 * HOP / RATE])  # each row its own length
    assert fig.get_suptitle() == "demo"
    with pytest.raises(ValueError):
        spectrogram_comparison_figure([], RATE, HOP)


def training_records(n: int) -> list[dict]:
    return [{"iteration": i, "loss": -math.log(i) + 0.1 * math.sin(i), "learning_rate": 1e-4, "grad_norm": 1.0,
             "samples_per_second": 100.0, "time": float(i)} for i in range(1, n + 1)]


def lines_by_label(fig) -> dict:
    ax = fig.axes[0]
    return {line.get_label(): line for line in ax.get_lines()}


def test_loss_figure_draws_the_records_and_their_running_mean():
    records = training_records(400)
    records[7]["loss"] = float("nan")  # a skipped step
    records += [{"iteration": 100 * k, "validation_loss": -k} for k in (1, 2, 3, 4)]
    fig = loss_figure(records[::-1], window=10)  # order in the file does not matter
    lines = lines_by_label(fig)
    per_iteration, mean = lines["loss per iteration"], lines["running mean of 10"]
    kept = [r for r in records[:400] if math.isfinite(r["loss"])]
    np.testing.assert_array_equal(per_iteration.get_xdata(), [r["iteration"] for r in kept])
    np.testing.assert_allclose(per_iteration.get_ydata(), [r["loss"] for r in kept])
    np.testing.assert_allclose(mean.get_ydata()[0], np.mean([r["loss"] for r in kept[:10]]))
    assert mean.get_xdata()[0] == kept[9]["iteration"]
    np.testing.assert_array_equal(lines["validation loss"].get_ydata(), [-1, -2, -3, -4])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"  # 1 .. 400 spans more than two decades
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("iteration", "loss")


def test_loss_figure_scale_window_and_no_data():
    fig = loss_figure(training_records(20))
    assert fig.axes[0].get_xscale() == "linear"
    assert all(tick == int(tick) for tick in fig.axes[0].get_xticks())  # no iteration 2.5
    fig = loss_figure(training_records(60))
    assert "running mean of 2" in lines_by_label(fig)  # a 25th of the records
    log_scaled = loss_figure(training_records(60), log_iterations=True).axes[0]
    assert log_scaled.get_xscale() == "log"
    log_scaled.figure.canvas.draw()
    assert "10" in [t.get_text() for t in log_scaled.get_xticklabels()]  # plain numbers, not powers of ten
    assert list(lines_by_label(loss_figure(training_records(30)))) == ["loss per iteration"]  # too few to average
    empty = loss_figure([{"iteration": 1, "loss": float("inf")}])
    assert not empty.axes[0].get_lines() and "no finite losses" in empty.axes[0].texts[0].get_text()


def test_running_mean():
    np.testing.assert_allclose(running_mean(np.array([1.0, 2.0, 3.0, 6.0]), 2), [1.5, 2.5, 4.5])


def test_figure_to_png_and_to_image_agree_in_size(tmp_path):
    fig = loss_figure(training_records(50))
    path = figure_to_png(fig, str(tmp_path / "loss.png"))
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (800, 420)  # 8 x 4.2 inches at 100 dpi
        pixels = np.asarray(png.convert("RGB"))
    image = figure_to_image(fig)
    assert image.shape == (3, 420, 800) and image.dtype == torch.uint8
    assert (pixels == 255).all(-1).mean() > 0.5  # white background
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # and something drawn on it
    np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), pixels)


def test_plotting_leaves_pyplot_and_the_backend_alone():
    code = (
        "import sys, waveglow.plotting as p\n"
        "assert 'matplotlib' not in sys.modules, 'imported at import time'\n"
        "import matplotlib; backend = dict.__getitem__(matplotlib.rcParams, 'backend')\n"
        "p.figure_to_image(p.loss_figure([{'iteration': 1, 'loss': 0.5}]))\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert dict.__getitem__(matplotlib.rcParams, 'backend') == backend, 'backend changed'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_tensorboard_mel_image_is_a_figure_with_axes(tiny_config):
    from waveglow.monitor import mel_image

    image = mel_image(random_mel(50), tiny_config.data_config, "ground truth")
    assert image.dtype == torch.uint8 and image.shape == (3, 320, 640)  # a 6.4 x 3.2 inch figure, not 80 x 50
    white = (image == 255).all(0)
    assert white.float().mean() > 0.15  # margins with axis labels and a colour bar around the panel
    assert not white[100:200, 100:400].any()  # the spectrogram fills the panel
