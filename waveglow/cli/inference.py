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
import random
import sys
import time

import torch
from tqdm import tqdm

from waveglow.errors import CheckpointError, OnnxModelError, first_line
from waveglow.cli.arguments import add_checkpoint, add_files, add_output, non_negative_float, non_negative_int, positive_int
from waveglow.cli.inference_io import (
    DTYPES, Utterance, device_name, discover_inputs, dtype_name, load_inputs, load_model, output_path,
    prepare_output_dir,
)
from waveglow.cli.inference_stream import add_stream_arguments, main_stream
from waveglow.data import AUDIO_SUFFIXES, MEL_SUFFIXES
from waveglow.denoiser import Denoiser
from waveglow.registry import family_of
from waveglow.synthesis import (
    synthesize,
    write_wav,
)

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
