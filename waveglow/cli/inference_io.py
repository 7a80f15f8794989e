"""What ``waveglow-inference`` and its ``--stream`` mode share: inputs, outputs, the device and the model.

Inputs are paths, directories or file lists of mel files (or, with ``--wav``, audio files);
each writes ``<output>/<name>_synthesis.wav``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass

import torch

from waveglow.audio import load_audio
from waveglow.config import DataConfig
from waveglow.data import read_file_list
from waveglow.devices import cpu_bf16_support, default_device
from waveglow.errors import AudioError
from waveglow.onnx_runtime import OnnxVocoder
from waveglow.registry import family_of
from waveglow.synthesis import MelError, check_mel, load_for_inference, load_mel

__all__ = [
    "DTYPES", "Utterance", "device_name", "dtype_name", "effective_dtype", "discover_inputs", "mel_from_wav",
    "load_inputs", "prepare_output_dir", "output_path", "load_model",
]

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Utterance:
    index: int  # position among all inputs: the per-file seed is seed + index
    path: str
    mel: torch.Tensor  # (n_mel, frames)


def device_name(args: argparse.Namespace) -> str:
    return default_device(args.device).type


def dtype_name(args: argparse.Namespace) -> str:
    return "float16" if args.is_fp16 else (args.dtype or "float32")


def effective_dtype(args: argparse.Namespace) -> str:
    """The dtype to run: bfloat16 on a CPU without native bf16 falls back to float32, with one warning."""
    name = dtype_name(args)
    if name == "bfloat16" and device_name(args) == "cpu":
        native, reason = cpu_bf16_support()
        if not native:
            print(f"warning: --dtype bfloat16 runs as float32 on this CPU ({reason}): emulated bf16 is "
                  "6-30x slower than float32", file=sys.stderr)
            return "float32"
    return name


# ------------------------------------------------------------------------------ inputs


def discover_inputs(paths: list[str], suffixes: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Expand paths, directories and file lists -> (input files in order, one-line errors)."""
    files, errors = [], []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(suffixes))
        elif path.lower().endswith(suffixes):
            files.append(path)
        else:
            try:
                files += read_file_list(path, suffixes)
            except OSError as e:
                errors.append(f"{path}: cannot read file list: {e.strerror or e}")
            except UnicodeDecodeError:
                errors.append(f"{path}: not a text file list (and not a {'/'.join(suffixes)} file)")
    return files, errors


def mel_from_wav(path: str, features, data_config: DataConfig, args: argparse.Namespace) -> torch.Tensor:
    """--wav mode: the model family's own features (``features``) of an audio file -> (n_mel, frames)."""
    audio = load_audio(path, data_config.sampling_rate, resample=args.resample, downmix=args.downmix,
                       needed=features.min_samples)  # (T,); AudioError naming the file when too short
    with torch.no_grad():
        mel = features(features.prepare_audio(audio.unsqueeze(0)))[0]  # (n_mel, 1 + T // hop)
    return check_mel(mel, data_config.n_mel_channels)


def load_inputs(files: list[str], model, data_config: DataConfig, args: argparse.Namespace, report) -> list[Utterance]:
    """Read every input's mel; failures go to ``report`` and are skipped."""
    n_mel = model.n_mel_channels
    if args.wav:

        features = family_of(model).features(data_config)  # the filterbank once, not per file
        expected: tuple[type[Exception], ...] = (MelError, AudioError, OSError)
    else:
        expected = (MelError,)
    utterances = []
    for index, path in enumerate(files):
        try:
            mel = mel_from_wav(path, features, data_config, args) if args.wav else load_mel(path, n_mel)
        except expected as e:
            report(str(e) if str(e).startswith(path) else f"{path}: {e}")  # AudioError names the file itself
            continue
        utterances.append(Utterance(index, path, mel))
    return utterances


# ------------------------------------------------------------------------------ outputs


def prepare_output_dir(path: str) -> None:
    """Create ``path`` if needed and prove it writable; raises OSError."""
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass


def output_path(output_dir: str, input_path: str) -> str:
    """``<output_dir>/<input name without its last extension>_synthesis.wav``, as the reference names it."""
    name = os.path.splitext(os.path.basename(input_path))[0]
    return os.path.join(output_dir, f"{name}_synthesis.wav")


def load_model(args: argparse.Namespace):
    """(model, data config): the checkpoint's model, or with --onnx an OnnxVocoder of the file."""
    if args.onnx:
        vocoder = OnnxVocoder(args.onnx, args.device)
        return vocoder, vocoder.data_config
    return load_for_inference(
        args.checkpoint, device_name(args), DTYPES[effective_dtype(args)], low_memory=args.low_memory
    )
