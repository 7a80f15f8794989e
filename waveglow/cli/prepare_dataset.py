"""Check a dataset's audio and write deterministic train / validation / test file lists.

    waveglow-prepare-dataset -f LJSpeech-1.1 -o filelists --validation_size 100 --test_size 100

Each of ``-f``'s inputs is an LJSpeech-layout folder (``metadata.csv`` + ``wavs/``), any folder of
audio files (searched recursively), or a file list; a file named twice is used once. Every file is read and checked (readable, sampling rate,
channels, duration, not silent, not clipped); problems are printed one line each and the file is
left out. The usable files are shuffled with ``--seed`` and split; each list holds one path per
line, relative to the output folder (``--absolute`` for absolute paths), sorted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

from waveglow.atomic import atomic_open
from waveglow.audio import load_audio, min_samples
from waveglow.errors import AudioError, ConfigError
from waveglow.cli.arguments import add_files, add_output, fraction, non_negative_float, non_negative_int, positive_int
from waveglow.config import DataConfig, load_config
from waveglow.data import AUDIO_SUFFIXES, read_file_list

CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped
LIST_NAMES = ("train_files.txt", "validation_files.txt", "test_files.txt")


@dataclass
class Finding:
    """What checking one file found: ``status`` is "ok" or why it was left out."""

    path: str
    status: str
    detail: str = ""
    seconds: Optional[float] = None


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_files(parser, positional="data", metavar="DATA",
              help="LJSpeech-layout folders, folders of audio files, or file lists")
    add_output(parser, required=False, aliases=("--output_dir",), default="filelists",
               help="folder for the lists (default: filelists)")
    parser.add_argument("-c", "--config", help="take sampling_rate, resample and downmix from this config's data_config")
    parser.add_argument("--sampling_rate", type=positive_int, default=None, help="required rate (default: config's, else 22050)")
    parser.add_argument("--resample", action="store_true", help="accept files at other rates (they will be resampled)")
    parser.add_argument("--downmix", action="store_true", help="accept multi-channel files (they will be averaged)")
    parser.add_argument("--validation_size", type=non_negative_int, default=100, help="files held out for validation")
    parser.add_argument("--test_size", type=non_negative_int, default=100, help="files held out for testing")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the shuffle before splitting")
    parser.add_argument("--min_duration", type=non_negative_float, default=0.5, help="seconds; shorter files are left out")
    parser.add_argument("--max_duration", type=non_negative_float, default=0.0, help="seconds; longer files are left out (0: no limit)")
    parser.add_argument("--min_rms", type=non_negative_float, default=1e-3, help="quieter files count as silent (1e-3 = -60 dBFS)")
    parser.add_argument("--max_clipped", type=fraction, default=1e-3,
                        help=f"largest fraction of samples at |x| >= {CLIP_LEVEL} before a file counts as clipped")
    parser.add_argument("--absolute", action="store_true", help="write absolute paths")
    return parser.parse_args(argv)


def data_settings(args: argparse.Namespace) -> DataConfig:
    """The data_config the checks use: the config file's (if any) with the command line on top."""
    data_config = load_config(args.config).data_config if args.config else DataConfig()
    if args.sampling_rate is not None:
        data_config.sampling_rate = args.sampling_rate
    data_config.resample = data_config.resample or args.resample
    data_config.downmix = data_config.downmix or args.downmix
    return data_config


def discover(data: str) -> list[str]:
    """Audio paths of a dataset folder or file list, without duplicates, in a stable order."""
    if os.path.isdir(data):
        metadata = os.path.join(data, "metadata.csv")
        if os.path.isfile(metadata):
            files = read_file_list(metadata)
        else:
            files = sorted(
                os.path.join(root, name)
                for root, _, names in os.walk(data)
                for name in names
                if name.lower().endswith(AUDIO_SUFFIXES)
            )
    else:
        files = read_file_list(data)
    return list(dict.fromkeys(os.path.abspath(f) for f in files))


def check_file(path: str, data_config: DataConfig, args: argparse.Namespace) -> Finding:
    """Read one file and judge it against the rate, duration, silence and clipping limits."""
    try:
        audio = load_audio(path, data_config.sampling_rate, resample=data_config.resample, downmix=data_config.downmix,
                           needed=min_samples(data_config.filter_length))
    except AudioError as e:
        return Finding(path, e.reason, str(e))
    seconds = audio.numel() / data_config.sampling_rate
    if seconds < args.min_duration:
        return Finding(path, "too short", f"{path}: {seconds:.2f} s is under --min_duration {args.min_duration} s", seconds)
    if args.max_duration and seconds > args.max_duration:
        return Finding(path, "too long", f"{path}: {seconds:.2f} s is over --max_duration {args.max_duration} s", seconds)
    rms = audio.square().mean().sqrt().item()
    if rms < args.min_rms:
        return Finding(path, "silent", f"{path}: RMS {rms:.2e} is under --min_rms {args.min_rms:g}", seconds)
    clipped = (audio.abs() >= CLIP_LEVEL).float().mean().item()
    if clipped > args.max_clipped:
        return Finding(path, "clipped", f"{path}: {clipped:.2%} of samples at full scale (--max_clipped {args.max_clipped:g})", seconds)
    return Finding(path, "ok", "", seconds)


def check_all(files: list[str], data_config: DataConfig, args: argparse.Namespace) -> list[Finding]:
    """Check every file with a progress bar; each problem is printed on one line as it is found."""
    from tqdm import tqdm

    findings = []
    for path in tqdm(files, desc="checking", unit="file", file=sys.stderr):
        finding = check_file(path, data_config, args)
        if finding.status != "ok":
            tqdm.write(f"skipped {finding.detail}", file=sys.stderr)
        findings.append(finding)
    return findings


def split(paths: list[str], validation_size: int, test_size: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """Seeded shuffle of the sorted paths -> (train, validation, test), each sorted."""
    order = sorted(paths)
    random.Random(seed).shuffle(order)
    test, validation = order[:test_size], order[test_size : test_size + validation_size]
    train = order[test_size + validation_size :]
    return sorted(train), sorted(validation), sorted(test)


def write_lists(paths: list[str], lists: tuple[list[str], ...], absolute: bool) -> None:
    """Write the lists together: all replace the earlier ones, or (on any error) none does."""
    with contextlib.ExitStack() as stack:
        for path, files in zip(paths, lists):
            folder = os.path.dirname(os.path.abspath(path))
            f = stack.enter_context(atomic_open(path, "w", encoding="utf-8"))
            f.writelines((file if absolute else os.path.relpath(file, folder)) + "\n" for file in files)


def summary(findings: list[Finding]) -> str:
    """A table of how many files (and hours, where known) each status has."""
    statuses = ["ok"] + sorted({f.status for f in findings} - {"ok"})
    lines = [f"  {'status':<14}{'files':>7}{'hours':>9}"]
    for status in statuses:
        chosen = [f for f in findings if f.status == status]
        known = [f.seconds for f in chosen if f.seconds is not None]
        hours = f"{sum(known) / 3600:9.3f}" if known else f"{'-':>9}"
        lines.append(f"  {status:<14}{len(chosen):>7}{hours}")
    lines.append(f"  {'total':<14}{len(findings):>7}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.validation_size < 0 or args.test_size < 0:
        print("error: --validation_size and --test_size must be 0 or more", file=sys.stderr)
        return 1
    try:
        data_config = data_settings(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    missing = next((path for path in args.files if not os.path.exists(path)), None)
    if missing is not None:
        print(f"error: {missing}: no such folder or file list", file=sys.stderr)
        return 1
    files: list[str] = []
    for data in args.files:
        try:
            files += discover(data)
        except (OSError, ValueError) as e:
            print(f"error: {data}: cannot read file list: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
            return 1
    files = list(dict.fromkeys(files))
    sources = " ".join(args.files)
    if not files:
        print(f"error: {sources}: no audio files found", file=sys.stderr)
        return 1
    findings = check_all(files, data_config, args)
    print(f"checked {len(findings)} files from {sources} (at {data_config.sampling_rate} Hz):")
    print(summary(findings))
    usable = [f.path for f in findings if f.status == "ok"]
    if len(usable) <= args.validation_size + args.test_size:
        print(
            f"error: {len(usable)} usable files cannot hold out {args.validation_size} validation and "
            f"{args.test_size} test files and still leave training files; lower --validation_size/--test_size",
            file=sys.stderr,
        )
        return 1
    lists = split(usable, args.validation_size, args.test_size, args.seed)
    paths = [os.path.join(args.output, name) for name in LIST_NAMES]
    try:
        os.makedirs(args.output, exist_ok=True)
        write_lists(paths, lists, args.absolute)
    except OSError as e:
        print(f"error: cannot write the lists to {args.output}: {e.strerror or e}", file=sys.stderr)
        return 1
    for path, files_in_list in zip(paths, lists):
        print(f"wrote {path}: {len(files_in_list)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
