"""scripts/demo.py: its figures, its use of metrics.jsonl, a short end-to-end run, and vocoding with a given checkpoint."""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import re
import sys

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from waveglow import WaveGlow, evaluation_output, save_checkpoint
from waveglow.metrics import read_metrics

from conftest import REPO



def _load_demo():
    """scripts/demo.py is a repository tool, not part of the package: load it from its file."""
    spec = importlib.util.spec_from_file_location("demo", os.path.join(REPO, "scripts", "demo.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


demo = _load_demo()

DEMO_DATA = os.path.join(REPO, "demo", "data")
SUFFIXES = ("original", "waveglow", "griffinlim")


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG file, after decoding every pixel."""
    with Image.open(path) as png:
        assert png.format == "PNG"
        png.load()
        return png.size


def summary_means(text: str) -> list[float]:
    """The mean line of summary.txt: WaveGlow and Griffin-Lim distance, then both energy correlations."""
    match = re.search(r"^mean\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", text, re.M)
    assert match, text
    return [float(v) for v in match.groups()]


def held_out_lengths() -> dict[str, int]:
    return {name: soundfile.info(os.path.join(DEMO_DATA, "wavs", f"{name}.wav")).frames for name in demo.HELD_OUT}


def check_wavs(directory, suffixes=SUFFIXES) -> None:
    for name, frames in held_out_lengths().items():
        for suffix in suffixes:
            info = soundfile.info(str(directory / f"{name}_{suffix}.wav"))
            assert (info.frames, info.samplerate, info.channels) == (frames, 22050, 1), (name, suffix)


def synthetic_clips(n: int) -> list:
    """(clip, {system: audio}) as the demo's pipeline keeps them: noise of a different length per clip."""
    rng = np.random.default_rng(0)
    systems = ("original", "WaveGlow", "Griffin-Lim")
    return [(f"clip{i}", {s: (0.1 * rng.standard_normal(5120 + 1280 * i)).astype(np.float32) for s in systems})
            for i in range(n)]


def test_spectrogram_figure_has_a_row_per_clip():
    fig = evaluation_output.spectrogram_figure(synthetic_clips(3), 22050)  # what demo.write_outputs draws
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 9 and len(fig.axes) == 10  # and one shared colour bar
    assert [ax.get_title() for ax in panels[:3]] == ["original", "WaveGlow", "Griffin-Lim"]
    assert [ax.get_ylabel().split("\n")[0] for ax in panels[::3]] == ["clip0", "clip1", "clip2"]
    assert panels[0].get_ylabel().endswith("frequency (Hz)")


def test_training_losses_come_from_the_metrics_records():
    records = [{"iteration": 2, "loss": -0.5}, {"iteration": 2, "validation_loss": -0.4},
               {"iteration": 1, "loss": 0.25}, {"iteration": 3, "loss": float("nan")}]
    run = demo.TrainingRun("checkpoints/waveglow_3", 3, 6.0, records)
    assert run.losses == [0.25, -0.5]
    text = "\n".join(demo._training_lines(run))
    assert "3 iterations in 6 s (2.00 s per iteration)" in text
    assert "0.250 at the first iteration" in text and "lowest -0.500" in text


def test_demo_trains_and_writes_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["--iterations", "2", "--output_dir", str(out), "--griffin_lim_iters", "8", "--device", "cpu"]
    assert demo.main(args) == 0
    check_wavs(out)
    assert png_size(out / "loss.png") == (800, 420)
    width, height = png_size(out / "spectrograms.png")
    assert width > 1000 and height > 4 * 150  # four rows of three panels
    assert os.path.isfile(out / "checkpoints" / "waveglow_2")
    records = read_metrics(str(out / "checkpoints" / "metrics.jsonl"))
    losses = [r["loss"] for r in records if "loss" in r]
    assert [r["iteration"] for r in records if "loss" in r] == [1, 2]
    held_out = (out / "held_out_files.txt").read_text().split()
    trained = (out / "train_files.txt").read_text().split()
    assert len(held_out) == len(demo.HELD_OUT) and not set(held_out) & set(trained)
    text = (out / "summary.txt").read_text()
    wg_distance, gl_distance, wg_corr, gl_corr = summary_means(text)
    assert all(math.isfinite(v) for v in (wg_distance, gl_distance, wg_corr, gl_corr))
    assert gl_distance < 0.5 < wg_distance  # Griffin-Lim inverts the same features; 2 iterations learn nothing
    assert gl_corr > 0.9
    assert "2 iterations" in text and "do not give speech" in text and "CC-BY-SA-3.0" in text
    assert f"{losses[0]:.3f} at the first iteration" in text  # the summary reads the metrics file
    assert "mean" in capsys.readouterr().out  # the summary is printed
    quality = quality_table(text)
    assert set(quality) == {"WaveGlow", "Griffin-Lim", "original"}
    assert 1.0 <= quality["WaveGlow"][0] < quality["Griffin-Lim"][0] <= 4.7  # PESQ-WB: untrained is noise
    assert quality["Griffin-Lim"][1] > 0.8 > quality["WaveGlow"][1]  # STOI
    assert quality["original"][:2] == [None, None] and quality["original"][2] > quality["WaveGlow"][2]  # DNSMOS
    assert "1.0 (noise) to 4.5 (transparent)" in text
    page = (out / "report.html").read_text(encoding="utf-8")
    for name in demo.HELD_OUT:  # the demo's own WAVs, linked where they lie
        assert all(f'src="{name}_{suffix}.wav"' in page for suffix in SUFFIXES), name
    assert page.count("<audio ") == 12 and "2, trained here in" in page and "sigma" in page


def quality_table(text: str) -> dict[str, list[float | None]]:
    """The summary's objective quality rows: label -> [PESQ-WB, STOI, DNSMOS OVRL] (None for '-')."""
    lines = text.split("objective quality (mean over the held-out clips):")[1].strip().splitlines()[1:4]
    table = {}
    for line in lines:
        label, *cells = line.rsplit(maxsplit=3)
        table[label.strip()] = [None if c == "-" else float(c) for c in cells]
    return table


def test_flowavenet_demo(tmp_path):
    out = tmp_path / "demo"
    args = ["--model", "flowavenet", "--iterations", "2", "--output_dir", str(out), "--griffin_lim_iters", "4",
            "--device", "cpu"]
    assert demo.main(args) == 0
    check_wavs(out, suffixes=("original", "flowavenet", "griffinlim"))
    assert os.path.isfile(out / "checkpoints" / "flowavenet_2")
    text = (out / "summary.txt").read_text()
    assert text.startswith("FloWaveNet demo") and "(FloWaveNet)" in text
    assert set(quality_table(text)) == {"FloWaveNet", "Griffin-Lim", "original"}


def test_demo_vocodes_with_a_checkpoint(tmp_path, tiny_config):
    torch.manual_seed(0)
    path = save_checkpoint(str(tmp_path / "tiny.pt"), WaveGlow(**tiny_config.waveglow_config.to_kwargs()), tiny_config)
    out = tmp_path / "demo"
    assert demo.main(["--checkpoint", path, "--output_dir", str(out), "--griffin_lim_iters", "4"]) == 0
    check_wavs(out)
    assert png_size(out / "spectrograms.png")[0] > 1000
    assert not os.path.exists(out / "loss.png") and not os.path.exists(out / "checkpoints")
    text = (out / "summary.txt").read_text()
    assert path in text and "trained:" not in text
    assert all(math.isfinite(v) for v in summary_means(text))


def test_shipped_voice_is_the_default_unless_training_is_asked_for(tmp_path, monkeypatch):
    voice = tmp_path / "waveglow_voice.pt"
    voice.write_bytes(b"weights")
    monkeypatch.setattr(demo, "SHIPPED_VOICE", str(voice))
    monkeypatch.delenv("DEMO_ITERATIONS", raising=False)
    assert demo.shipped_voice(demo.parse_args([])) == str(voice)
    for argv in (["--train"], ["--iterations", "5"], ["--model", "flowavenet"], ["--checkpoint", "x.pt"],
                 ["--config", "c.json"]):
        assert demo.shipped_voice(demo.parse_args(argv)) is None, argv
    monkeypatch.setenv("DEMO_ITERATIONS", "5")  # make demo DEMO_ITERATIONS=5 trains
    assert demo.shipped_voice(demo.parse_args([])) is None
    monkeypatch.delenv("DEMO_ITERATIONS")
    voice.unlink()
    assert demo.shipped_voice(demo.parse_args([])) is None


def test_the_demo_and_the_evaluate_command_score_through_one_pipeline(tmp_path, tiny_config):
    """Both vocode, score and draw with waveglow.evaluation_output: for the same clip, checkpoint, sigma and
    seed, the demo's numbers are the evaluate command's (the demo's log-mel distance is its log_mel_l1)."""
    from waveglow.cli import evaluate
    from waveglow.synthesis import load_for_inference

    assert demo.score_clips is evaluate.score_clips is evaluation_output.score_clips
    assert demo.spectrogram_figure is evaluation_output.spectrogram_figure  # evaluate's: through write_results
    torch.manual_seed(0)
    path = save_checkpoint(str(tmp_path / "tiny.pt"), WaveGlow(**tiny_config.waveglow_config.to_kwargs()), tiny_config)
    clip = os.path.join(DEMO_DATA, "wavs", f"{demo.HELD_OUT[0]}.wav")
    (tmp_path / "list.txt").write_text(clip + "\n")
    metrics = ("pesq_wb", "stoi", "log_mel_l1")
    assert evaluate.main(["-f", str(tmp_path / "list.txt"), "-o", str(tmp_path / "eval"), "-w", path, "--griffin-lim",
                          "--sigma", "0.6", "--seed", "3", "--device", "cpu", "--metrics", *metrics]) == 0
    with open(tmp_path / "eval" / "clips.csv", newline="", encoding="utf-8") as f:
        command = {row["system"]: row for row in csv.DictReader(f)}
    model, data_config = load_for_inference(path, torch.device("cpu"))
    args = demo.parse_args(["--sigma", "0.6", "--seed", "3", "--griffin_lim_iters", "60"])
    ours = {row["system"]: row for row in demo.score_held_out(model, data_config, [clip], args, metrics).rows}
    for demo_name, command_name in (("WaveGlow", "tiny.pt"), ("Griffin-Lim", "griffin_lim")):
        for metric in metrics:
            assert ours[demo_name][metric] == pytest.approx(float(command[command_name][metric]), rel=1e-9), metric
    assert ours["WaveGlow"]["log_mel_l1"] > 1 > ours["Griffin-Lim"]["log_mel_l1"]  # an untrained model is noise
