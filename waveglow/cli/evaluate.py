"""Score vocoders by copy synthesis of a list of clips: PESQ, STOI, log-mel L1, MCD, F0, DNSMOS, test LL, RTF.

    waveglow-evaluate -f tests/data/metadata.csv -o eval -w checkpoints/waveglow_10000 --griffin_lim
    waveglow-evaluate -f list.txt -o eval -w ours.pt --wavs hifigan=hifigan_out/ --wavs nvidia=nv_out/

Every clip of the file list (any form ``waveglow.data.read_file_list`` reads) is read at the
evaluation rate (the first checkpoint's sampling rate; 22050 Hz without one). Each checkpoint
(``-w``) vocodes the clip's features in its own recipe (seeded: clip i draws its noise from a CPU
generator seeded ``--seed + i``); ``--griffin_lim`` inverts the Tacotron 2 log-mel with 60
seeded Griffin-Lim iterations; ``--wavs NAME=DIR`` reads another system's ``DIR/<clip stem>.wav``
(or inference.py's ``<clip stem>_synthesis.wav``; same sampling rate; within one hop of the reference's length, trimmed or zero-padded). Every
output is scored against the clip; a ``ground_truth`` row scores the clips themselves with the
reference-free metrics (DNSMOS). Each checkpoint also scores the clips themselves: their exact
log-likelihood under the model (``test_ll``, nats per sample, L0SG/NanoFlow's "Test set LL").
See docs/evaluation.md for what each number means.

Writes ``OUT/summary.json`` (``{"systems": {NAME: {metric: mean, ..., "rtf": ...}}, "clips": N}``),
``OUT/clips.csv`` (every clip's numbers), ``OUT/summary.md`` (the table, also printed) and
``OUT/spectrograms.png`` (reference and each system for the first three clips) and ``OUT/report.html``
(players, spectrograms and scores of every system, first ``--report_clips`` clips). A clip that cannot
be read is reported and skipped; a missing or unusable ``--wavs`` file is reported for that clip
and system, the rest is scored.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from waveglow import evaluation
from waveglow.atomic import write_text
from waveglow.cli.arguments import (
    add_checkpoint, add_files, add_hidden_alias, add_output, non_negative_float, non_negative_int, positive_int,
)
from waveglow.config import DataConfig
from waveglow.data import read_file_list
from waveglow.errors import CheckpointError
from waveglow.evaluation_output import (
    CHECKPOINT,
    GRIFFIN_LIM_ITERATIONS,
    GROUND_TRUTH,
    WAVS,
    Results,
    System,
    checkpoint_system,
    griffin_lim_system,
    ground_truth_system,
    markdown_table,
    score_clips,
    summary,
    wavs_system,
    write_results,
)
from waveglow.report import checkpoint_facts, machine_facts, write_report
from waveglow.synthesis import load_for_inference


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_files(parser, aliases=("--filelist",), nargs=None, help="file list of reference clips (any form)")
    add_output(parser, aliases=("--output_dir",), help="folder for the scores and report.html")
    add_checkpoint(parser, required=False, nargs="+", action="extend", default=[], help="checkpoints to vocode with (any format)")
    parser.add_argument("--wavs", nargs="+", action="extend", default=[], metavar="NAME=DIR",
                        help="another system's outputs: DIR/<clip stem>.wav, scored as NAME")
    griffin_lim = parser.add_argument("--griffin_lim", action="store_true",
                        help=f"add the Griffin-Lim baseline ({GRIFFIN_LIM_ITERATIONS} iterations, seeded)")
    parser.add_argument("--sigma", type=non_negative_float, default=None, help="noise scale; default: each model's own")
    parser.add_argument("--seed", type=int, default=0, help="clip i uses seed + i (vocoding noise, Griffin-Lim)")
    parser.add_argument("--limit", type=positive_int, default=None, help="score only the first N clips of the list")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    parser.add_argument("--metrics", nargs="+", choices=evaluation.METRICS, default=list(evaluation.METRICS))
    report_clips = parser.add_argument("--report_clips", type=non_negative_int, default=20, metavar="N",
                                       help="report.html: players and spectrograms for the first N clips, scores of the rest")
    add_hidden_alias(parser, griffin_lim, "--griffin-lim")
    add_hidden_alias(parser, report_clips, "--report-clips")
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------ systems


class UsageError(ValueError):
    """A flag or file that makes the whole run impossible; the message is one line."""


def parse_wavs(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, directory = item.partition("=")
        if not sep or not name or not directory:
            raise UsageError(f"--wavs {item!r}: expected NAME=DIR")
        if not os.path.isdir(directory):
            raise UsageError(f"--wavs {item!r}: {directory} is not a directory")
        pairs.append((name, directory))
    return pairs


def load_systems(args: argparse.Namespace, device: torch.device) -> tuple[list[System], DataConfig]:
    """Every system the flags ask for, and the data config the clips are read with."""
    systems, data_config = [], None
    for path in args.checkpoint:
        model, config = load_for_inference(path, device)
        if data_config is None:
            data_config = config
        elif config.sampling_rate != data_config.sampling_rate:
            raise UsageError(f"{path}: sampling rate {config.sampling_rate} Hz, the first checkpoint's is "
                             f"{data_config.sampling_rate} Hz: evaluate them separately")
        systems.append(checkpoint_system(os.path.basename(os.path.normpath(path)), model, config, args.sigma))
    data_config = data_config or DataConfig()
    if args.griffin_lim:
        systems.append(griffin_lim_system(data_config))
    systems += [wavs_system(name, directory, data_config) for name, directory in parse_wavs(args.wavs)]
    systems.append(ground_truth_system(data_config))
    names = [s.name for s in systems]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"two systems are named {duplicates[0]!r}: rename a --wavs NAME or a checkpoint file")
    return systems, data_config


def read_clips(path: str, limit: int | None) -> list[str]:
    try:
        files = read_file_list(path)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: cannot read the file list ({getattr(e, 'strerror', None) or e})") from None
    if not files:
        raise UsageError(f"{path}: lists no audio files")
    return files[:limit] if limit is not None else files


# ------------------------------------------------------------------------------ outputs


def summary_markdown(result: dict, results: Results, device: torch.device, seconds: float) -> str:
    lines = [
        "# Objective evaluation", "",
        f"{result['clips']} clips, copy synthesis; vocoding on {device}; {seconds:.0f} s in all.", "",
        markdown_table(result["systems"]), "",
        "Higher is better for PESQ-WB (1.0 noise .. 4.64 identical), STOI (0 .. 1), DNSMOS (1 .. 5) and test LL "
        "(the clip's log-likelihood under the model, nats per sample); "
        "lower is better for log-mel L1, MCD, F0 RMSE, V/UV error and RTF (seconds of vocoding per second "
        "of audio). ground_truth: the clips themselves, scored by the reference-free metrics only. "
        "See docs/evaluation.md.",
    ]
    if results.problems:
        lines += ["", "## Problems", "", *[f"- {p}" for p in results.problems]]
    return "\n".join(lines) + "\n"


def write_page(args: argparse.Namespace, results: Results, result: dict, device: torch.device) -> str:
    """``OUT/report.html``: the run's facts, the means, and every system's audio, spectrogram and scores per clip."""
    systems, rate = results.systems, results.sampling_rate
    facts = [("clips", f"{result['clips']} scored, from {args.files}"), ("sampling rate", f"{rate} Hz")]
    checkpoints = [s for s in systems if s.kind == CHECKPOINT]
    facts += [(f"checkpoint {s.name}", f"{path}: {checkpoint_facts(path)}; sigma {s.sigma:g}")
              for path, s in zip(args.checkpoint, checkpoints)]
    facts += [(f"outputs {s.name}", s.directory) for s in systems if s.kind == WAVS]
    if args.griffin_lim:
        facts.append(("Griffin-Lim", f"{GRIFFIN_LIM_ITERATIONS} iterations from the clip's log-mel"))
    facts += [("denoiser strength", "0 (no denoiser)"), ("seed", f"{args.seed} (clip i: seed + i)"),
              *machine_facts(device)]
    return write_report(args.output, results.rows, dict(results.outputs), rate, title="Objective evaluation",
                        reference=GROUND_TRUTH, facts=facts, summary=result["systems"],
                        labels={GROUND_TRUTH: "original (ground_truth)"}, problems=results.problems,
                        shown=args.report_clips)


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    metrics, messages = evaluation.available_metrics(args.metrics)
    for message in messages:
        print(f"warning: {message}", file=sys.stderr)
    try:
        if args.device == "cuda" and not torch.cuda.is_available():
            raise UsageError("--device cuda: CUDA is not available here")
        if args.limit is not None and args.limit <= 0:
            raise UsageError(f"--limit must be positive, got {args.limit}")
        files = read_clips(args.files, args.limit)
        systems, data_config = load_systems(args, device)
        os.makedirs(args.output, exist_ok=True)
    except (UsageError, CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    results = score_clips(files, systems, data_config, metrics, args.seed, keep=args.report_clips)
    if results.clips == 0:
        print(f"error: {args.files}: none of its {len(files)} clips could be read", file=sys.stderr)
        return 1
    result = summary(results, metrics)
    write_results(args.output, results, metrics, result)
    text = summary_markdown(result, results, device, time.perf_counter() - started)
    write_text(os.path.join(args.output, "summary.md"), text)
    write_page(args, results, result, device)
    print("\n" + text + f"\nwritten to {args.output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
