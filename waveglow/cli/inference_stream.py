"""``waveglow-inference --stream``: feed each mel through a :class:`~waveglow.streaming.StreamingVocoder`
``--push_frames`` frames at a time, writing the audio as it comes.

    waveglow-inference --stream -f mel.pt -w checkpoints/waveglow_10000 -o out            # out/mel_synthesis.wav
    waveglow-inference --stream -f mel.pt -w ckpt -o - | aplay -f S16_LE -r 22050 -c 1   # raw PCM to a player
    waveglow-inference --stream --lookahead_frames 16 --push_frames 1 -f mel.pt -w ckpt -o out

Each WAV is valid at every moment (its header is patched after every chunk); ``-o -`` writes raw
signed 16-bit little-endian mono PCM of one input to stdout, and every message goes to stderr.
Per input it prints the first-audio latency (wall time from the first push until audio came out,
with the frames fed as fast as the stream takes them), the algorithmic latency (lookahead frames
and milliseconds) and the real-time factor (compute seconds per second of audio; below 1 keeps up).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

import torch

from waveglow.cli.arguments import add_hidden_alias
from waveglow.cli.inference_io import discover_inputs, load_inputs, load_model, output_path, prepare_output_dir
from waveglow.errors import CheckpointError, MelError, OnnxModelError, first_line
from waveglow.data import AUDIO_SUFFIXES, MEL_SUFFIXES
from waveglow.streaming import StreamingVocoder, receptive_field_of
from waveglow.synthesis import to_int16
from waveglow.wav_stream import WavStreamWriter

__all__ = ["add_stream_arguments", "main_stream"]


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("streaming (docs/streaming.md)")
    group.add_argument("--stream", action="store_true",
                       help="vocode through the streaming API, writing audio as it comes; -o - writes raw PCM to stdout")
    lookahead = group.add_argument("--lookahead_frames", type=int, default=None, metavar="N",
                       help="--stream: frames to wait for after a frame; default: the model's receptive field (exact)")
    push = group.add_argument("--push_frames", type=int, default=8, metavar="K",
                              help="--stream: mel frames pushed at a time (default 8)")
    add_hidden_alias(parser, lookahead, "--lookahead-frames")
    add_hidden_alias(parser, push, "--chunk-frames")


def stream_problem(args: argparse.Namespace) -> str | None:
    """A one-line complaint about the streaming flags, or None."""
    if args.push_frames < 1:
        return f"--push_frames must be at least 1, got {args.push_frames}"
    if args.lookahead_frames is not None and args.lookahead_frames < 0:
        return f"--lookahead_frames must be >= 0, got {args.lookahead_frames}"
    if args.onnx:
        return "--stream needs a checkpoint (-w): an ONNX file does not report its receptive field"
    if args.denoiser_strength > 0:
        return "--denoiser_strength does not apply to --stream"
    return None


def main_stream(args: argparse.Namespace) -> int:
    """Run --stream for parsed inference arguments -> exit status (messages on stderr only)."""

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    problem = stream_problem(args)
    if problem:
        say(f"error: {problem}")
        return 2
    to_stdout = args.output == "-"
    try:
        if not to_stdout:
            prepare_output_dir(args.output)
    except OSError as e:
        say(f"error: {args.output}: output directory not writable: {e.strerror or e}")
        return 1
    try:
        model, data_config = load_model(args)
        field = receptive_field_of(model)
    except (CheckpointError, OnnxModelError, TypeError) as e:
        say(f"error: {first_line(e)}")
        return 1
    args.sigma = model.default_sigma if args.sigma is None else args.sigma
    failures: list[str] = []

    def report(message: str) -> None:
        failures.append(message)
        say(f"error: {message}")

    files, errors = discover_inputs(args.files, AUDIO_SUFFIXES if args.wav else MEL_SUFFIXES)
    for message in errors:
        report(message)
    utterances = load_inputs(files, model, data_config, args, report)
    if to_stdout and len(utterances) != 1:
        say(f"error: -o - streams exactly one input, got {len(utterances)}")
        return 2
    rate = args.sampling_rate or data_config.sampling_rate
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    lookahead = field.future if args.lookahead_frames is None else args.lookahead_frames
    for u in utterances:
        target = sys.stdout.buffer if to_stdout else output_path(args.output, u.path)
        try:
            stats = stream_one(model, u.mel, target, rate, args, seed + u.index)
        except (MelError, RuntimeError, ValueError, OSError) as e:
            report(f"{u.path}: streaming failed: {first_line(e)}")
            continue
        say(f"{u.path}: {stats['seconds']:.2f} s of audio; first audio after {1000 * stats['first_audio_s']:.1f} ms; "
            f"algorithmic latency {lookahead} frames ({1000 * lookahead * model.hop_length / rate:.1f} ms); "
            f"real-time factor {stats['rtf']:.3f} ({args.push_frames} frames per push, exact lookahead "
            f"{field.future}); sigma {args.sigma}, seed {seed + u.index} -> {'stdout' if to_stdout else target}")
    n_inputs = len(files) + len(errors)
    if n_inputs == 0:
        say("error: no input files found")
        return 1
    if failures:
        say(f"error: {len(failures)} of {n_inputs} inputs failed (see above)")
        return 1
    return 0


def stream_one(model, mel: torch.Tensor, target, rate: int, args: argparse.Namespace, seed: int) -> dict:
    """Push ``mel`` through a stream K frames at a time, writing each piece -> timing statistics."""
    stream = StreamingVocoder(model, sigma=args.sigma, seed=seed, lookahead_frames=args.lookahead_frames)
    writer = WavStreamWriter(target, rate) if isinstance(target, (str, os.PathLike)) else None
    k, samples, compute, first_audio = args.push_frames, 0, 0.0, None
    start = time.perf_counter()
    try:
        for piece in [mel[:, i : i + k] for i in range(0, mel.size(1), k)] + [None]:  # None: flush
            before = time.perf_counter()
            audio = stream.push(piece) if piece is not None else stream.flush()
            compute += time.perf_counter() - before
            if audio.numel() and first_audio is None:
                first_audio = time.perf_counter() - start
            if audio.numel() and not torch.isfinite(audio).all():
                raise ValueError("the model produced NaN/inf audio (try float32)")
            pcm = to_int16(audio)
            samples += pcm.size
            if writer is not None:
                writer.write(pcm)
            else:
                target.write(pcm.astype("<i2").tobytes())
                target.flush()
    finally:
        if writer is not None:
            writer.close()
    seconds = samples / rate
    return {"seconds": seconds, "first_audio_s": first_audio or 0.0, "rtf": compute / seconds if seconds else 0.0}
