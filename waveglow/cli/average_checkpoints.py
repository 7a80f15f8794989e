"""Average the last N checkpoints of a training run (or the files named) into one checkpoint.

    waveglow-average-checkpoints -n 10 -w checkpoints/ -o averaged.pt
    waveglow-average-checkpoints -w waveglow_90000 waveglow_95000 waveglow_100000 -o averaged.pt

Every family and every format the package reads (ours, NVIDIA's, ksw0306's, L0SG's ``waveflow_<N>``
files) can be averaged, as long as all the files hold the same architecture. The output is our
format (it loads with ``waveglow.load_checkpoint``) with the newest file's config and iteration and
no optimizer state; ``train.py -w averaged.pt`` (or ``-w RUN_DIR --average N``)
trains on from it with a fresh optimizer.
"""

from __future__ import annotations

import argparse
import os
import sys

from waveglow.averaging import average_checkpoints, last_checkpoints
from waveglow.checkpoint import checkpoint_model, save_checkpoint
from waveglow.errors import CheckpointError, ConfigError
from waveglow.cli.arguments import add_checkpoint, add_output, positive_int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint(parser, nargs="+", positional="inputs", metavar="RUN_DIR_OR_FILE",
                   help="a run directory (with -n), or the checkpoint files to average, oldest first")
    parser.add_argument("-n", "--last", type=positive_int, default=None,
                        help="average the N newest <family>_<iteration> files of the run directory")
    add_output(parser, help="where to write the averaged checkpoint")
    return parser.parse_args(argv)


def input_paths(args: argparse.Namespace) -> list[str]:
    """The files to average, oldest first; a one-line CheckpointError for a wrong combination."""
    if args.last is not None:
        if len(args.checkpoint) != 1:
            raise CheckpointError(f"-n/--last takes one run directory, got {len(args.checkpoint)} paths")
        if not os.path.isdir(args.checkpoint[0]):
            raise CheckpointError(f"{args.checkpoint[0]}: not a directory (-n/--last takes a run directory)")
        return last_checkpoints(args.checkpoint[0], args.last)
    if any(os.path.isdir(p) for p in args.checkpoint):
        raise CheckpointError(f"{next(p for p in args.checkpoint if os.path.isdir(p))}: a directory: pass -n N to average its last N")
    return list(args.checkpoint)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        paths = input_paths(args)
        if os.path.abspath(args.output) in map(os.path.abspath, paths):
            raise CheckpointError(f"{args.output}: is one of the inputs: write the average elsewhere")
        average = average_checkpoints(paths)
        model, config = checkpoint_model(average)
        save_checkpoint(args.output, model, config, iteration=average.iteration, learning_rate=average.learning_rate,
                        extra={"averaged_from": [os.path.basename(p) for p in paths]})
    except (CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"averaged {len(paths)} checkpoints ({os.path.basename(paths[0])} .. {os.path.basename(paths[-1])}) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
