"""Compute the model's mel features for every listed audio file, as the reference's mel2samp does.

    waveglow-compute-mels -f test_files.txt -o mels -c configs/config.json

The features are those of the config's model family (``-c configs/flowavenet.json``: FloWaveNet's
recipe, on peak-normalised audio); without ``-c``, NVIDIA's WaveGlow features. ``-f`` takes file
lists and audio files, any number of each. Writes ``<wav file name>.pt`` (e.g. ``LJ001-0001.wav.pt``)
holding a (n_mel, frames) float32 tensor, or ``<wav file name>.npy`` with ``--format npy``;
``waveglow-inference`` reads both. A file that cannot be used is reported on one line and skipped,
and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from waveglow.atomic import atomic_open
from waveglow.cli.arguments import add_files, add_output
from waveglow.audio import MelSpectrogram, load_audio
from waveglow.config import Config, DataConfig, load_config
from waveglow.errors import ConfigError
from waveglow.data import AUDIO_SUFFIXES, read_file_list


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_files(parser, aliases=("--filelist_path", "--filelist"),
              help="audio files or file lists (paths, path|text, or LJSpeech metadata.csv)")
    add_output(parser, aliases=("--output_dir",), help="folder for the mel files")
    parser.add_argument("-c", "--config", help="config whose data_config sets the features (default: NVIDIA's)")
    parser.add_argument("--format", choices=("pt", "npy"), default="pt", help="torch tensors (default) or numpy arrays")
    parser.add_argument("--resample", action="store_true", help="resample files at another rate instead of failing")
    parser.add_argument("--downmix", action="store_true", help="average multi-channel files instead of failing")
    return parser.parse_args(argv)


def data_settings(args: argparse.Namespace) -> tuple[DataConfig, nn.Module]:
    """The data_config and the features of the config's model family (WaveGlow's without a config)."""
    config: Config | None = load_config(args.config) if args.config else None
    data_config = config.data_config if config is not None else DataConfig()
    data_config.resample = data_config.resample or args.resample
    data_config.downmix = data_config.downmix or args.downmix
    features = config.family.features(data_config) if config is not None else MelSpectrogram.from_config(data_config)
    return data_config, features


def compute_mel(path: str, features: nn.Module, data_config: DataConfig) -> torch.Tensor:
    """One audio file -> (n_mel, 1 + T // hop_length) float32, prepared as the features expect."""
    audio = load_audio(path, data_config.sampling_rate, resample=data_config.resample, downmix=data_config.downmix,
                       needed=features.min_samples)
    with torch.no_grad():
        return features(features.prepare_audio(audio[None]))[0].contiguous()  # (n_mel, frames)


def save_mel(mel: torch.Tensor, output_path: str, fmt: str) -> None:
    """Write one mel file; an earlier file at ``output_path`` is replaced only once the new one is whole."""
    with atomic_open(output_path, "wb") as f:
        if fmt == "npy":
            np.save(f, mel.numpy())  # an open file: np.save adds no second suffix
        else:
            torch.save(mel.clone(), f)  # clone: save only this tensor's storage


def compute_all(files: list[str], data_config: DataConfig, features: nn.Module, args: argparse.Namespace) -> int:
    """Write every file's mel with a progress bar; each failure is one line. Returns the number of failures."""
    from tqdm import tqdm

    failed, seen = 0, set()
    for path in tqdm(files, desc="mels", unit="file", file=sys.stderr):
        name = f"{os.path.basename(path)}.{args.format}"
        try:
            if name in seen:
                raise ValueError(f"another listed file already wrote {name}")
            seen.add(name)
            save_mel(compute_mel(path, features, data_config), os.path.join(args.output, name), args.format)
        except (ValueError, OSError) as e:  # AudioError is a ValueError whose message names the file
            message = str(e) if str(e).startswith(path) else f"{path}: {e}"
            tqdm.write(f"skipped {message}", file=sys.stderr)
            failed += 1
    return failed


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        data_config, features = data_settings(args)
    except ConfigError as e:
        return fail(str(e))
    files = []
    for path in args.files:
        if path.lower().endswith(AUDIO_SUFFIXES):
            files.append(path)
            continue
        try:
            files += read_file_list(path)
        except (OSError, ValueError) as e:
            return fail(f"{path}: cannot read file list: {getattr(e, 'strerror', None) or e}")
    if not files:
        return fail(f"{' '.join(args.files)}: lists no audio files")
    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as e:
        return fail(f"{args.output}: cannot create output folder: {e.strerror or e}")
    failed = compute_all(files, data_config, features, args)
    print(f"wrote {len(files) - failed} of {len(files)} mel files to {args.output}" + (f"; {failed} skipped" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
