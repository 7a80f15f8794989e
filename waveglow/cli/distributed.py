"""Launch training (waveglow.cli.train, which train.py runs) on every GPU of this machine (NVIDIA's
single-node command), via torchrun.

    python distributed.py -c configs/config.json                 # one process per GPU
    python distributed.py -c configs/config.json --nproc 2 -s logs -a "--set train_config.batch_size=6"

Each rank's output goes to LOG_DIR (default: <output_directory>/dist_logs); rank 0's is also shown
here. For several machines run torchrun on each (see README.md, "Multi-GPU and multi-node").
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from waveglow.cli.arguments import port, positive_int
from waveglow.errors import ConfigError

TRAIN_MODULE = "waveglow.cli.train"  # launched as python -m, so no train.py file need sit beside this one


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", required=True, help="JSON or YAML config")
    parser.add_argument("--nproc", type=positive_int, default=None,
                        help="processes to start (default: one per visible GPU, 1 without a GPU)")
    parser.add_argument("-s", "--stdout_dir", "--log_dir", dest="log_dir", default=None,
                        help="folder for per-rank logs (default: <output_directory>/dist_logs)")
    parser.add_argument("-a", "--args_str", default="", help='extra train.py arguments, quoted: -a "--resume"')
    parser.add_argument("--script", default=None,
                        help=f"training script file to launch (default: python -m {TRAIN_MODULE})")
    parser.add_argument("--master_port", type=port, default=None, help="rendezvous port (default: a free one)")
    return parser.parse_args(argv)


def torchrun_args(args: argparse.Namespace, nproc: int, log_dir: str) -> list[str]:
    launch = ["--standalone", "--nnodes", "1", "--nproc-per-node", str(nproc),
              "--log-dir", log_dir, "--redirects", "3", "--tee", "3", "--local-ranks-filter", "0"]
    if args.master_port is not None:
        launch = ["--master-port", str(args.master_port)] + [a for a in launch if a != "--standalone"]
    program = [args.script] if args.script else ["--module", TRAIN_MODULE]
    return launch + [*program, "-c", args.config, *shlex.split(args.args_str)]


def checked_config(args: argparse.Namespace):
    """The config as the training processes will read it (with -a's --set overrides): a bad file or
    value is refused here, once, before any process starts. Raises ConfigError or ValueError."""
    from waveglow.config import load_config  # lazily, as torch: the launcher imports neither to start

    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument("--set", action="append", default=[])
    try:
        words = shlex.split(args.args_str)
    except ValueError as e:
        raise ValueError(f"-a {args.args_str!r}: {e}") from None
    known, _ = overrides.parse_known_args(words)
    return load_config(args.config, known.set)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    nproc = args.nproc or max(torch.cuda.device_count(), 1)
    try:
        config = checked_config(args)
        log_dir = args.log_dir or os.path.join(config.train_config.output_directory, "dist_logs")
        os.makedirs(log_dir, exist_ok=True)
    except (ConfigError, OSError, ValueError) as e:  # ValueError: -a with unbalanced quotes, named
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"launching {nproc} process(es) of {os.path.basename(args.script or TRAIN_MODULE)}; per-rank logs in {log_dir}", flush=True)
    try:
        run(get_args_parser().parse_args(torchrun_args(args, nproc, log_dir)))
    except ChildFailedError as e:
        ranks = ", ".join(f"rank {rank} (exit code {f.exitcode})" for rank, f in sorted(e.failures.items()))
        print(f"error: training failed: {ranks}; see the per-rank logs in {log_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
