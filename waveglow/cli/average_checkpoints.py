"""Average the last N checkpoints of a training run (or the files named) into one checkpoint.

    waveglow-average-checkpoints -n 10 checkpoints/ -o averaged.pt
    waveglow-average-checkpoints waveglow_90000 waveglow_95000 waveglow_100000 -o averaged.pt

Every family and every format the package reads (ours, NVIDIA's, ksw0306's, L0SG's ``waveflow_<N>``
files) can be averaged, as long as all the files hold the same architecture. The output is our
format (it loads with ``waveglow.load_checkpoint``) with the newest file's config and iteration and
no optimizer state; ``train.py --fine_tune averaged.pt`` (or ``--fine_tune RUN_DIR --average N``)
trains on from it with a fresh optimizer.
"""

from __future__ import annotations

import argparse
import os
import sys

from waveglow.averaging import average_checkpoints, last_checkpoints
from waveglow.checkpoint import checkpoint_model, save_checkpoint
from waveglow.errors import CheckpointError, ConfigError
from waveglow.cli.arguments import positive_int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="RUN_DIR_OR_FILES",
                        help="a run directory (with -n), or the checkpoint files to average, oldest first")
    parser.add_argument("-n", "--last", type=positive_int, default=None,
                        help="average the N newest <family>_<iteration> files of the run directory")
    parser.add_argument("-o", "--output", required=True, help="where to write the averaged checkpoint")
    return parser.parse_args(argv)


def input_paths(args: argparse.Namespace) -> list[str]:
    """The files to average, oldest first; a one-line CheckpointError for a wrong combination."""
    if args.last is not None:
        if len(args.inputs) != 1:
            raise CheckpointError(f"-n/--last takes one run directory, got {len(args.inputs)} paths")
        if not os.path.isdir(args.inputs[0]):
            raise CheckpointError(f"{args.inputs[0]}: not a directory (-n/--last takes a run directory)")
        return last_checkpoints(args.inputs[0], args.last)
    if any(os.path.isdir(p) for p in args.inputs):
        raise CheckpointError(f"{next(p for p in args.inputs if os.path.isdir(p))}: a directory: pass -n N to average its last N")
    return list(args.inputs)


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
