"""A few-minute WaveGlow demo: train a small model on bundled clips, vocode held-out clips, compare with Griffin-Lim.

    make demo                                    # the same as: python scripts/demo.py
    make demo CHECKPOINT=waveglow_256channels_universal_v5.pt   # vocode the same clips; no training
    python scripts/demo.py --iterations 20       # a shorter run (or DEMO_ITERATIONS=20)

Steps: split ``demo/data`` (Allison Smith's clips, CC-BY-SA-3.0) into training clips and four
held-out clips; train ``configs/demo.json`` with ``train.py`` (unless ``--checkpoint``); vocode the
held-out clips from their log-mels with WaveGlow and with Griffin-Lim; measure both against the
original. Writes to ``demo_output/``: ``<clip>_original.wav``, ``<clip>_waveglow.wav``,
``<clip>_griffinlim.wav``, ``spectrograms.png``, ``loss.png`` (when it trained), ``summary.txt``
and, under ``checkpoints/``, the trained model.

A few CPU minutes of training do not give speech: the demo model's output follows the loudness of
the original but not its spectral detail, and Griffin-Lim scores better. The summary says so with
the numbers of the run. PNGs are drawn with numpy and written by the small encoder below.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import struct
import sys
import time
import zlib
from contextlib import redirect_stdout
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from waveglow.audio import LOG_CLAMP, MelSpectrogram, load_audio  # noqa: E402
from waveglow.checkpoint import CheckpointError  # noqa: E402
from waveglow.data import read_file_list  # noqa: E402
from waveglow.synthesis import load_for_inference, synthesize, write_wav  # noqa: E402

DEFAULT_CONFIG = os.path.join(REPO, "configs", "demo.json")
DEFAULT_DATA = os.path.join(REPO, "demo", "data")
HELD_OUT = (  # clips never trained on; vocoded and measured
    "allison-tt-weasels",
    "allison-please-try-call-later",
    "allison-vm-msgsaved",
    "allison-one-moment-please",
)
ENVELOPE_FOLLOWED = 0.5  # mean energy correlation above which the summary says the envelope is followed
LOSS_LINE = re.compile(r"^(\d+):\t(\S+)$")
ATTRIBUTION = ("Allison Smith, CC-BY-SA-3.0 (Copyright 2003-2010 Allison Smith; financial contributions "
               "by Digium, Inc.)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="vocode with this checkpoint (any format) instead of training")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="training config (default configs/demo.json)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="LJSpeech-layout folder of clips (default demo/data)")
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--iterations", type=int, default=_env_int("DEMO_ITERATIONS"),
                        help="training iterations (default: $DEMO_ITERATIONS, else the config's max_iterations)")
    parser.add_argument("--sigma", type=float, default=0.6, help="WaveGlow's noise scale")
    parser.add_argument("--seed", type=int, default=0, help="seed of the vocoding noise and of Griffin-Lim")
    parser.add_argument("--griffin_lim_iters", type=int, default=48)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    return parser.parse_args(argv)


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
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{file}\n" for file in files)
    return path


# ------------------------------------------------------------------------------ training


class _LossRecorder(io.TextIOBase):
    """A stdout stand-in: keeps train.py's ``<iteration>:\\t<loss>`` lines, passes the rest through.

    Every ``echo_every``-th loss line is passed through too, so a log without a progress bar
    still shows progress without 400 lines of numbers.
    """

    def __init__(self, stream, echo_every: int) -> None:
        self.stream, self.echo_every = stream, echo_every
        self.losses: list[tuple[int, float]] = []
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            match = LOSS_LINE.match(line)
            if match:
                self.losses.append((int(match.group(1)), float(match.group(2))))
            if not match or int(match.group(1)) % self.echo_every == 0:
                self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


@dataclass
class TrainingRun:
    checkpoint: str
    iterations: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)


def train_demo_model(config: str, train_list: str, output_dir: str, iterations: int | None) -> TrainingRun:
    """Run train.py on the training clips; returns the checkpoint and every iteration's loss."""
    import train
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
    recorder = _LossRecorder(sys.stdout, echo_every=max(1, iterations // 8))
    started = time.perf_counter()
    with redirect_stdout(recorder):
        status = train.main(argv)
    if status != 0:
        raise RuntimeError(f"training stopped with exit status {status}")
    return TrainingRun(os.path.join(directory, f"waveglow_{iterations}"), iterations,
                       time.perf_counter() - started, recorder.losses)


# ------------------------------------------------------------------------------ vocoding and metrics


@dataclass
class Clip:
    name: str
    original: np.ndarray  # (T,)
    waveglow: np.ndarray  # (T,)
    griffin_lim: np.ndarray  # (T,)
    mels: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> (n_mel, frames) log-mel
    distance: dict[str, float] = field(default_factory=dict)  # kind -> log-mel distance to the original
    energy_correlation: dict[str, float] = field(default_factory=dict)


def griffin_lim(mel: np.ndarray, data_config, length: int, n_iter: int, seed: int) -> np.ndarray:
    """Invert a Tacotron 2 log-mel (magnitude, Slaney) with Griffin-Lim: (n_mel, frames) -> (length,)."""
    import librosa

    magnitude = librosa.feature.inverse.mel_to_stft(
        M=np.exp(mel.astype(np.float64)), sr=data_config.sampling_rate, n_fft=data_config.filter_length,
        power=1.0, fmin=data_config.mel_fmin, fmax=data_config.mel_fmax, htk=False, norm="slaney",
    )  # (n_freq, frames)
    audio = librosa.griffinlim(
        S=magnitude, n_iter=n_iter, hop_length=data_config.hop_length, win_length=data_config.win_length,
        n_fft=data_config.filter_length, window="hann", center=True, pad_mode="reflect", length=length,
        random_state=seed,
    )
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


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
    """Copy synthesis of each clip with WaveGlow and Griffin-Lim, plus both measured against the original."""
    features = MelSpectrogram.from_config(data_config)
    clips = []
    for i, path in enumerate(tqdm(paths, desc="vocoding (WaveGlow)", unit="clip", dynamic_ncols=True)):
        original = load_audio(path, data_config.sampling_rate, resample=True, downmix=True).numpy()
        mel = log_mel(features, original)  # (n_mel, frames)
        generator = torch.Generator().manual_seed(args.seed + i)  # CPU noise: the same audio on any device
        audio = synthesize(model, torch.from_numpy(mel).to(device), sigma=args.sigma, generator=generator)
        waveglow = audio[: original.size].clamp(-1, 1).numpy()
        clips.append(Clip(_name(path), original, waveglow, np.zeros(0, np.float32), {"original": mel}))
    for i, clip in enumerate(tqdm(clips, desc="vocoding (Griffin-Lim)", unit="clip", dynamic_ncols=True)):
        clip.griffin_lim = griffin_lim(clip.mels["original"], data_config, clip.original.size,
                                       args.griffin_lim_iters, args.seed + i)
        measure(clip, features)
    return clips


def measure(clip: Clip, features: MelSpectrogram) -> None:
    energy = frame_energy_db(features, clip.original)
    for kind, audio in (("waveglow", clip.waveglow), ("griffin_lim", clip.griffin_lim)):
        clip.mels[kind] = log_mel(features, audio)
        clip.distance[kind] = log_mel_distance(clip.mels["original"], clip.mels[kind])
        clip.energy_correlation[kind] = correlation(energy, frame_energy_db(features, audio))


# ------------------------------------------------------------------------------ PNG images


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 RGB image as a PNG file (8-bit truecolour, no filtering)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected a non-empty (H, W, 3) image, got shape {image.shape}")
    height, width, _ = image.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, width * 3)], axis=1)  # filter 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, deflate, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
            + chunk(b"IEND", b""))


def write_png(path: str, image: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(png_bytes(image))


# Anchors of an inferno-like colour map: black, purple, red, orange, pale yellow.
_COLOUR_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float64)

# A 3x5 pixel font: each glyph is five rows of three pixels.
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", "-": "000000111000000", ".": "000000000000010",
    " ": "000000000000000", "A": "010101111101101", "C": "011100100100011", "D": "110101101101110",
    "E": "111100110100111", "F": "111100110100100", "G": "011100101101011", "I": "111010010010111",
    "L": "100100100100111", "M": "101111111101101", "N": "110101101101101", "O": "010101101101010",
    "R": "110101110101101", "S": "011100010001110", "T": "111010010010010", "V": "101101101101010",
    "W": "101101111111101", "X": "101101010101101", "(": "010100100100010", ")": "010001001001010",
}


def colourise(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """(H, W) values -> (H, W, 3) uint8 through the colour map, ``low`` black and ``high`` pale yellow."""
    t = np.clip((values - low) / max(high - low, 1e-9), 0, 1) * (len(_COLOUR_ANCHORS) - 1)
    index = np.minimum(t.astype(int), len(_COLOUR_ANCHORS) - 2)
    frac = (t - index)[..., None]
    colour = _COLOUR_ANCHORS[index] * (1 - frac) + _COLOUR_ANCHORS[index + 1] * frac
    return np.round(colour).astype(np.uint8)


def draw_text(image: np.ndarray, text: str, x: int, y: int, scale: int = 2, colour=(0, 0, 0)) -> None:
    """Write ``text`` (upper-cased; unknown characters as spaces) with its top-left corner at (x, y)."""
    for k, char in enumerate(text.upper()):
        glyph = np.array([int(b) for b in _GLYPHS.get(char, _GLYPHS[" "])], bool).reshape(5, 3)
        pixels = np.kron(glyph, np.ones((scale, scale), bool))  # (5 * scale, 3 * scale)
        left = x + k * 4 * scale
        region = image[y : y + pixels.shape[0], left : left + pixels.shape[1]]
        region[pixels[: region.shape[0], : region.shape[1]]] = colour


def resize_nearest(values: np.ndarray, height: int, width: int) -> np.ndarray:
    rows = np.arange(height) * values.shape[0] // height
    cols = np.arange(width) * values.shape[1] // width
    return values[rows][:, cols]


def spectrogram_figure(clips: list[Clip], panel_width: int = 360, panel_height: int = 160) -> np.ndarray:
    """One row per clip: original | WaveGlow | Griffin-Lim log-mels, low frequencies at the bottom.

    Each row shares one colour scale: log(1e-5) (black) to the original's maximum (pale yellow).
    """
    gap, title = 10, 24
    kinds = (("original", "ORIGINAL"), ("waveglow", "WAVEGLOW"), ("griffin_lim", "GRIFFIN-LIM"))
    height = title + len(clips) * (panel_height + gap) + gap
    width = len(kinds) * (panel_width + gap) + gap
    image = np.full((height, width, 3), 255, np.uint8)
    for col, (_, label) in enumerate(kinds):
        draw_text(image, label, gap + col * (panel_width + gap), 7)
    for row, clip in enumerate(clips):
        top = title + row * (panel_height + gap)
        high = float(clip.mels["original"].max())
        for col, (kind, _) in enumerate(kinds):
            panel = resize_nearest(clip.mels[kind][::-1], panel_height, panel_width)  # low bins at the bottom
            left = gap + col * (panel_width + gap)
            image[top : top + panel_height, left : left + panel_width] = colourise(panel, math.log(LOG_CLAMP), high)
    return image


def nice_step(span: float, lines: int = 5) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about ``lines`` gridlines over ``span``."""
    raw = max(span, 1e-12) / lines
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def draw_polyline(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, colour, thickness: int = 2) -> None:
    """Draw straight segments through pixel coordinates (xs[i], ys[i])."""
    points = []
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 2
        points.append(np.stack([np.linspace(x0, x1, n), np.linspace(y0, y1, n)], 1))
    if not points:
        points = [np.stack([xs, ys], 1)]
    px, py = np.round(np.concatenate(points)).astype(int).T
    for dx in range(thickness):
        for dy in range(thickness):
            x, y = px + dx - thickness // 2, py + dy - thickness // 2
            keep = (x >= 0) & (x < image.shape[1]) & (y >= 0) & (y < image.shape[0])
            image[y[keep], x[keep]] = colour


def _format_tick(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{decimals}f}"


def loss_figure(losses: list[tuple[int, float]], width: int = 800, height: int = 420) -> np.ndarray:
    """Training loss against iteration: each iteration in light blue, a running mean in dark blue."""
    left, right, top, bottom = 70, 20, 34, 40
    image = np.full((height, width, 3), 255, np.uint8)
    steps = np.array([i for i, _ in losses], np.float64)
    values = np.array([v for _, v in losses], np.float64)
    finite = np.isfinite(values)
    steps, values = steps[finite], values[finite]
    draw_text(image, "TRAINING LOSS", left, 10)
    if values.size == 0:
        return image
    step = nice_step(values.max() - values.min())
    low, high = math.floor(values.min() / step) * step, math.ceil(values.max() / step) * step
    high = high if high > low else low + step
    x_max = max(steps.max(), steps.min() + 1)

    def to_x(s):
        return left + (s - steps.min()) / (x_max - steps.min()) * (width - left - right - 1)

    def to_y(v):
        return top + (high - v) / (high - low) * (height - top - bottom - 1)

    for k in range(int(round((high - low) / step)) + 1):
        value = low + k * step
        y = int(round(to_y(value)))
        image[y, left : width - right] = (150, 150, 150) if abs(value) < step / 2 else (220, 220, 220)
        draw_text(image, _format_tick(value, step), 6, y - 5)
    image[top : height - bottom, left] = 0
    image[height - bottom, left : width - right] = 0
    draw_polyline(image, to_x(steps), to_y(values), (170, 195, 235), thickness=1)
    window = max(1, values.size // 25)
    running = np.convolve(values, np.ones(window) / window, mode="valid")
    draw_polyline(image, to_x(steps[window - 1 :]), to_y(running), (20, 40, 110), thickness=2)
    draw_text(image, f"{int(steps.min())}", left - 4, height - bottom + 8)
    draw_text(image, f"ITERATION {int(steps.max())}", width - right - 4 * 2 * len(f"ITERATION {int(steps.max())}"),
              height - bottom + 8)
    return image


# ------------------------------------------------------------------------------ summary


def summary_text(
    clips: list[Clip], sampling_rate: int, model_line: str, training: TrainingRun | None, args: argparse.Namespace
) -> str:
    mean = {key: {kind: float(np.mean([getattr(c, key)[kind] for c in clips])) for kind in ("waveglow", "griffin_lim")}
            for key in ("distance", "energy_correlation")}
    lines = ["WaveGlow demo", "=============", model_line]
    if training is not None:
        lines += _training_lines(training)
    lines += [
        f"vocoded: {len(clips)} held-out clips (never trained on) from their log-mels; WaveGlow sigma {args.sigma}, "
        f"Griffin-Lim {args.griffin_lim_iters} iterations from the same log-mel",
        "",
        f"{'clip':34s} {'seconds':>7s}   {'log-mel distance':^22s}   {'energy correlation':^22s}",
        f"{'':34s} {'':>7s}   {'WaveGlow':>10s} {'Griffin-Lim':>11s}   {'WaveGlow':>10s} {'Griffin-Lim':>11s}",
    ]
    for c in clips:
        lines.append(_row(c.name, f"{c.original.size / sampling_rate:7.2f}", c.distance, c.energy_correlation))
    lines.append(_row("mean", "", mean["distance"], mean["energy_correlation"]))
    lines += ["", *_definitions(), "", *_expectations(mean, training), "", *_files(clips, training)]
    return "\n".join(lines) + "\n"


def _row(label: str, seconds: str, distance: dict, corr: dict) -> str:
    return (f"{label:34s} {seconds:>7s}   {distance['waveglow']:10.3f} {distance['griffin_lim']:11.3f}   "
            f"{corr['waveglow']:10.3f} {corr['griffin_lim']:11.3f}")


def _training_lines(training: TrainingRun) -> list[str]:
    losses = [v for _, v in training.losses if math.isfinite(v)]
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


def _expectations(mean: dict, training: TrainingRun | None) -> list[str]:
    wg, gl = mean["distance"]["waveglow"], mean["distance"]["griffin_lim"]
    corr = mean["energy_correlation"]["waveglow"]
    better = "Griffin-Lim" if gl < wg else "WaveGlow"
    comparison = f"{better} is closer to the original: log-mel distance {min(wg, gl):.3f} against {max(wg, gl):.3f}."
    if training is None:
        return ["What to expect:", f"  {comparison}",
                "  A well-trained WaveGlow (e.g. NVIDIA's waveglow_256channels_universal_v5.pt) sounds like the",
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
        "  A usable WaveGlow needs days of training on a GPU. To hear one, vocode the same clips with a trained",
        "  checkpoint: make demo CHECKPOINT=path, e.g. NVIDIA's published waveglow_256channels_universal_v5.pt.",
    ]


def _files(clips: list[Clip], training: TrainingRun | None) -> list[str]:
    lines = [
        "Files:",
        "  <clip>_original.wav, <clip>_waveglow.wav, <clip>_griffinlim.wav: 16-bit WAV, the original's length",
        "  spectrograms.png: one row per clip, columns original | WaveGlow | Griffin-Lim log-mel (low frequencies",
        "    at the bottom; black = log(1e-5), pale yellow = the original's loudest bin)",
    ]
    if training is not None:
        lines += ["  loss.png: training loss per iteration (light blue) and its running mean (dark blue);",
                  "    grey gridlines, the darker one at 0",
                  f"  {training.checkpoint}: the trained model"]
    lines += ["", f"Clips: {ATTRIBUTION}.", "The wavs written here derive from them and carry the same license."]
    return lines


# ------------------------------------------------------------------------------ main


def write_outputs(clips: list[Clip], output_dir: str, sampling_rate: int) -> None:
    for clip in clips:
        for suffix, audio in (("original", clip.original), ("waveglow", clip.waveglow),
                              ("griffinlim", clip.griffin_lim)):
            write_wav(os.path.join(output_dir, f"{clip.name}_{suffix}.wav"), audio, sampling_rate)
    write_png(os.path.join(output_dir, "spectrograms.png"), spectrogram_figure(clips))


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
    try:
        if args.checkpoint is None:
            print(f"training {args.config} on {len(train_clips)} clips of {args.data} ...", flush=True)
            training = train_demo_model(args.config, os.path.abspath(train_list), args.output_dir, args.iterations)
            write_png(os.path.join(args.output_dir, "loss.png"), loss_figure(training.losses))
        checkpoint = args.checkpoint or training.checkpoint
        model, data_config = load_for_inference(checkpoint, device)
    except (RuntimeError, ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    clips = vocode_clips(model, data_config, held_out, args, device)
    write_outputs(clips, args.output_dir, data_config.sampling_rate)
    n_parameters = sum(p.numel() for p in model.parameters())
    model_line = (f"model: {checkpoint}, {n_parameters:,} parameters (weight norm removed), vocoding on {device}")
    text = summary_text(clips, data_config.sampling_rate, model_line, training, args)
    with open(os.path.join(args.output_dir, "summary.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    print("\n" + text + f"\nwritten to {args.output_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
