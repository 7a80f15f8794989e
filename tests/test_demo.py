"""scripts/demo.py: the PNG writer, a short end-to-end run, and vocoding with a given checkpoint."""

from __future__ import annotations

import io
import math
import os
import re
import struct
import sys
import zlib

import numpy as np
import pytest
import soundfile
import torch

from waveglow import WaveGlow, save_checkpoint

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "scripts"))
import demo  # noqa: E402

DEMO_DATA = os.path.join(REPO, "demo", "data")
SUFFIXES = ("original", "waveglow", "griffinlim")


def read_png(path: str) -> np.ndarray:
    """Decode an 8-bit RGB, unfiltered PNG (what demo.png_bytes writes) -> (H, W, 3) uint8, checking CRCs."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert width > 0 and height > 0 and (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (1 + 3 * width)
    rows = np.frombuffer(raw, np.uint8).reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 0).all()  # filter type 0 on every row
    return rows[:, 1:].reshape(height, width, 3)


def summary_means(text: str) -> list[float]:
    """The mean line of summary.txt: WaveGlow and Griffin-Lim distance, then both energy correlations."""
    match = re.search(r"^mean\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", text, re.M)
    assert match, text
    return [float(v) for v in match.groups()]


def held_out_lengths() -> dict[str, int]:
    return {name: soundfile.info(os.path.join(DEMO_DATA, "wavs", f"{name}.wav")).frames for name in demo.HELD_OUT}


def check_wavs(directory) -> None:
    for name, frames in held_out_lengths().items():
        for suffix in SUFFIXES:
            info = soundfile.info(str(directory / f"{name}_{suffix}.wav"))
            assert (info.frames, info.samplerate, info.channels) == (frames, 22050, 1), (name, suffix)


def test_png_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    demo.write_png(str(tmp_path / "x.png"), image)
    np.testing.assert_array_equal(read_png(str(tmp_path / "x.png")), image)
    with pytest.raises(ValueError):
        demo.png_bytes(np.zeros((0, 4, 3), np.uint8))


def test_loss_figure_draws_the_curve():
    losses = [(i, -math.log(i)) for i in range(1, 51)]
    image = demo.loss_figure(losses, width=300, height=200)
    assert image.shape == (200, 300, 3)
    dark_line = (image == np.array([20, 40, 110], np.uint8)).all(-1)
    assert dark_line.sum() > 100
    rows = np.nonzero(dark_line)[0]
    assert rows.min() < 80 and rows.max() > 120  # the running mean spans most of the plot's height


def test_loss_recorder_keeps_losses_and_echoes_some():
    stream = io.StringIO()
    recorder = demo._LossRecorder(stream, echo_every=2)
    recorder.write("training 3 iterations\n1:\t0.5\n2:")
    recorder.write("\t-0.25\n3:\tnan\n")
    assert recorder.losses[:2] == [(1, 0.5), (2, -0.25)] and math.isnan(recorder.losses[2][1])
    assert stream.getvalue() == "training 3 iterations\n2:\t-0.25\n"


def test_demo_trains_and_writes_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["--iterations", "2", "--output_dir", str(out), "--griffin_lim_iters", "8", "--device", "cpu"]
    assert demo.main(args) == 0
    check_wavs(out)
    for name in ("spectrograms.png", "loss.png"):
        assert read_png(str(out / name)).shape[0] > 0
    assert os.path.isfile(out / "checkpoints" / "waveglow_2")
    held_out = (out / "held_out_files.txt").read_text().split()
    trained = (out / "train_files.txt").read_text().split()
    assert len(held_out) == len(demo.HELD_OUT) and not set(held_out) & set(trained)
    text = (out / "summary.txt").read_text()
    wg_distance, gl_distance, wg_corr, gl_corr = summary_means(text)
    assert all(math.isfinite(v) for v in (wg_distance, gl_distance, wg_corr, gl_corr))
    assert gl_distance < 0.5 < wg_distance  # Griffin-Lim inverts the same features; 2 iterations learn nothing
    assert gl_corr > 0.9
    assert "2 iterations" in text and "do not give speech" in text and "CC-BY-SA-3.0" in text
    assert "mean" in capsys.readouterr().out  # the summary is printed


def test_demo_vocodes_with_a_checkpoint(tmp_path, tiny_config):
    torch.manual_seed(0)
    path = save_checkpoint(str(tmp_path / "tiny.pt"), WaveGlow(**tiny_config.waveglow_config.to_kwargs()), tiny_config)
    out = tmp_path / "demo"
    assert demo.main(["--checkpoint", path, "--output_dir", str(out), "--griffin_lim_iters", "4"]) == 0
    check_wavs(out)
    assert read_png(str(out / "spectrograms.png")).shape[1] > 0
    assert not os.path.exists(out / "loss.png") and not os.path.exists(out / "checkpoints")
    text = (out / "summary.txt").read_text()
    assert path in text and "trained:" not in text
    assert all(math.isfinite(v) for v in summary_means(text))
