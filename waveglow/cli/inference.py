"""Vocode mel spectrograms (or, with --wav, wav files) into 16-bit WAV files.

    waveglow-inference -f mels.txt -w waveglow_256channels_universal_v5.pt -o out -s 0.6
    waveglow-inference -f recordings/ -w checkpoints/waveglow_10000 -o out --wav   # copy synthesis
    waveglow-inference -f mels.txt --onnx waveglow.onnx -o out -s 0.6               # onnxruntime (docs/export.md)
    waveglow-inference -f mel.pt -w checkpoints/waveglow_10000 -o - --stream | aplay -f S16_LE -r 22050  # docs/streaming.md
    python inference.py -f mels.txt -w waveglow_256channels_universal_v5.pt -o out -s 0.6   # NVIDIA's command, as is

Inputs: ``.pt`` (tensor (n_mel, frames) or (1, n_mel, frames)) and ``.npy`` mel files, given as
paths, directories or file lists (one path per line; ``path|transcript`` lines work too). Each
input writes ``<output>/<name>_synthesis.wav``. A bad input is reported on one line and
skipped; the exit status is 1 when any input failed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from waveglow.audio import load_audio
from waveglow.errors import AudioError, CheckpointError, OnnxModelError, first_line
from waveglow.cli.arguments import add_checkpoint, add_files, add_output, non_negative_float, non_negative_int, positive_int
from waveglow.cli.inference_stream import add_stream_arguments, main_stream
from waveglow.config import DataConfig
from waveglow.data import AUDIO_SUFFIXES, MEL_SUFFIXES, read_file_list
from waveglow.denoiser import Denoiser
from waveglow.devices import cpu_bf16_support, default_device
from waveglow.registry import family_of
from waveglow.onnx_runtime import OnnxVocoder
from waveglow.synthesis import (
    MelError,
    check_mel,
    load_for_inference,
    load_mel,
    synthesize,
    write_wav,
)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Utterance:
    index: int  # position among all inputs: the per-file seed is seed + index
    path: str
    mel: torch.Tensor  # (n_mel, frames)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_files(parser, nvidia=True, help="mel files (.pt/.npy), directories of them, or text file lists")
    model = parser.add_mutually_exclusive_group(required=True)
    add_checkpoint(parser, nvidia=True, group=model)
    model.add_argument("--onnx", help="an ONNX file from waveglow-export, run with onnxruntime (its dtype is the file's)")
    add_output(parser, nvidia=True, help="folder for <name>_synthesis.wav; with --stream, - writes raw PCM to stdout")
    parser.add_argument("-s", "--sigma", type=non_negative_float, default=None,
                        help="noise scale (temperature); default: the model family's (WaveGlow 1.0, FloWaveNet 0.8)")
    parser.add_argument("--sampling_rate", type=positive_int, default=None,
                        help="WAV header rate; default: the checkpoint's data_config (22050 when it has none)")
    parser.add_argument("--is_fp16", action="store_true", help="same as --dtype float16 (CUDA only)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default float32")
    parser.add_argument("-d", "--denoiser_strength", type=non_negative_float, default=0.0, help="0 disables the denoiser")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    parser.add_argument("--batch_size", type=positive_int, default=1)
    parser.add_argument("--seed", type=int, default=None, help="file i uses seed + i; default: random")
    parser.add_argument("--chunk_frames", type=non_negative_int, default=1024,
                        help="vocode longer mels in chunks of this many frames; 0: never chunk")
    parser.add_argument("--overlap_frames", type=non_negative_int, default=None,
                        help="context frames on each side of a chunk; default: the model family's (WaveGlow 32)")
    parser.add_argument("--low_memory", action="store_true",
                        help="do not keep the folded conditioning operators (2 GB in float32 for the default "
                             "model): slower, and the peak memory of the model alone")
    parser.add_argument("--wav", action="store_true", help="inputs are audio files: vocode their mels")
    parser.add_argument("--resample", action="store_true", help="--wav: resample files at another rate")
    parser.add_argument("--downmix", action="store_true", help="--wav: average multi-channel files")
    add_stream_arguments(parser)
    return parser.parse_args(argv)


def check_settings(args: argparse.Namespace) -> str | None:
    """A one-line complaint about an unusable combination of flags, or None (argparse range-checks each flag)."""
    if args.overlap_frames is not None and 0 < args.chunk_frames < max(1, args.overlap_frames):
        return f"--chunk_frames ({args.chunk_frames}) must be at least --overlap_frames ({args.overlap_frames})"
    if args.device == "cuda" and not torch.cuda.is_available():
        return "--device cuda: no CUDA device is available"
    if args.is_fp16 and args.dtype not in (None, "float16"):
        return f"--is_fp16 contradicts --dtype {args.dtype}"
    if dtype_name(args) == "float16" and device_name(args) == "cpu":
        return "float16 inference needs --device cuda; on the CPU use float32 or bfloat16"
    return None


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


def vocode_batch(model, batch: list[Utterance], denoiser, args: argparse.Namespace, seed: int) -> list[torch.Tensor]:
    """Vocode one batch; each file's noise comes from its own generator, seeded seed + index."""
    generators = [torch.Generator().manual_seed(seed + u.index) for u in batch]
    return synthesize(
        model,
        [u.mel for u in batch],
        sigma=args.sigma,
        denoiser_strength=args.denoiser_strength,
        denoiser=denoiser,
        chunk_frames=args.chunk_frames or None,
        overlap_frames=args.overlap_frames,
        generator=generators,
    )


def write_batch(batch: list[Utterance], audios: list[torch.Tensor], args, sampling_rate: int, report) -> float:
    """Write each utterance's WAV; returns the seconds of audio written."""
    seconds = 0.0
    for utterance, audio in zip(batch, audios):
        if not torch.isfinite(audio).all():
            report(f"{utterance.path}: the model produced NaN/inf audio (try float32 or bfloat16)")
            continue
        try:
            write_wav(output_path(args.output, utterance.path), audio, sampling_rate)
        except (OSError, RuntimeError) as e:
            report(f"{utterance.path}: cannot write WAV: {getattr(e, 'strerror', None) or e}")
            continue
        seconds += audio.numel() / sampling_rate
    return seconds


# ------------------------------------------------------------------------------ main


def load_model(args: argparse.Namespace):
    """(model, data config): the checkpoint's model, or with --onnx an OnnxVocoder of the file."""
    if args.onnx:
        vocoder = OnnxVocoder(args.onnx, args.device)
        return vocoder, vocoder.data_config
    return load_for_inference(
        args.checkpoint, device_name(args), DTYPES[effective_dtype(args)], low_memory=args.low_memory
    )


def load_denoiser(model, args: argparse.Namespace):
    """The PyTorch Denoiser of the model, or with --onnx the denoiser graph exported beside the file."""
    return model.denoiser() if args.onnx else Denoiser(model)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    failures: list[str] = []

    def report(message: str) -> None:
        failures.append(message)
        tqdm.write(f"error: {message}", file=sys.stderr)

    problem = check_settings(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.stream:
        return main_stream(args)
    try:
        prepare_output_dir(args.output)
    except OSError as e:
        print(f"error: {args.output}: output directory not writable: {e.strerror or e}", file=sys.stderr)
        return 1
    try:
        model, data_config = load_model(args)
    except (CheckpointError, OnnxModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.wav:
        try:
            import waveglow.audio  # noqa: F401
        except ImportError:
            print("error: --wav needs waveglow.audio, which this installation lacks", file=sys.stderr)
            return 1
    family = family_of(model)
    args.sigma = model.default_sigma if args.sigma is None else args.sigma
    args.overlap_frames = model.overlap_frames() if args.overlap_frames is None else args.overlap_frames
    if 0 < args.chunk_frames < max(1, args.overlap_frames):
        print(f"error: --chunk_frames ({args.chunk_frames}) must be at least the overlap ({args.overlap_frames} frames)",
              file=sys.stderr)
        return 2
    if args.denoiser_strength > 0 and not model.denoiser_applies:
        print(f"error: --denoiser_strength: the denoiser does not apply to {family.name} (see docs/{family.name}.md)",
              file=sys.stderr)
        return 2
    sampling_rate = args.sampling_rate or data_config.sampling_rate
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)

    files, errors = discover_inputs(args.files, AUDIO_SUFFIXES if args.wav else MEL_SUFFIXES)
    for message in errors:
        report(message)
    utterances = load_inputs(files, model, data_config, args, report)
    utterances.sort(key=lambda u: u.mel.size(1))  # similar lengths share a batch: less padding
    try:
        denoiser = load_denoiser(model, args) if args.denoiser_strength > 0 else None
    except OnnxModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    start, seconds = time.perf_counter(), 0.0
    with tqdm(total=len(utterances), unit="file", file=sys.stderr) as progress:
        for i in range(0, len(utterances), args.batch_size):
            batch = utterances[i : i + args.batch_size]
            try:
                audios = vocode_batch(model, batch, denoiser, args, seed)
            except (RuntimeError, ValueError) as e:  # e.g. out of memory
                for u in batch:
                    report(f"{u.path}: synthesis failed: {first_line(e)}")
                progress.update(len(batch))
                continue
            seconds += write_batch(batch, audios, args, sampling_rate, report)
            progress.update(len(batch))
    elapsed = time.perf_counter() - start
    return summarize(len(files) + len(errors), len(failures), seconds, elapsed, args, sampling_rate, seed)


def summarize(n_inputs: int, n_failed: int, seconds: float, elapsed: float, args, sampling_rate: int, seed: int) -> int:
    """Print the closing summary; the exit status is 1 if anything failed or nothing was found."""
    speed = seconds / elapsed if elapsed > 0 else 0.0
    print(
        f"{n_inputs - n_failed} of {n_inputs} files vocoded: {seconds:.2f} s of audio at {sampling_rate} Hz "
        f"in {elapsed:.2f} s ({speed:.1f}x real time), sigma {args.sigma}, seed {seed} "
        f"-> {args.output}"
    )
    if n_inputs == 0:
        print("error: no input files found", file=sys.stderr)
        return 1
    if n_failed:
        print(f"error: {n_failed} of {n_inputs} inputs failed (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
