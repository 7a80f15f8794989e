"""Train a flow vocoder: WaveGlow, or any family of waveglow.models (the config's model section says which).

    python train.py -c configs/config.json
    python train.py -c configs/config.json --set train_config.batch_size=4 --set data_config.training_files=train.txt
    python train.py -c configs/config.json --resume           # continue from the newest checkpoint
    python train.py -c configs/config.json -w waveglow_256channels_universal_v5.pt   # fine-tune from these weights
    python train.py -c configs/config.json -w checkpoints/ --average 10   # from the mean of the run's last 10
    torchrun --nproc_per_node 8 train.py -c configs/config.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from waveglow.atomic import atomic_open
from waveglow.averaging import average_run
from waveglow.errors import AudioError, CheckpointError, ConfigError, TrainingError
from waveglow.cli.arguments import add_checkpoint, non_negative_int, positive_int
from waveglow.config import load_config
from waveglow.parallel import init_distributed, shutdown_distributed
from waveglow.training import Trainer, install_stop_handlers, restore_handlers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", required=True, help="JSON or YAML config (NVIDIA's config.json loads as is)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value; repeatable")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest readable <family>_<iteration> (waveglow_<iteration>) in output_directory")
    add_checkpoint(parser, required=False, aliases=("--fine_tune",),
                   help="fine-tune: start from these weights (any supported format) with a fresh optimizer")
    parser.add_argument("--average", type=positive_int, default=None, metavar="N",
                        help="with -w RUN_DIR: start from the mean of its last N <family>_<iteration> checkpoints")
    parser.add_argument("-r", "--rank", type=non_negative_int, default=None, help="process rank (reference-style launch)")
    parser.add_argument("-g", "--group_name", default="", help="process group name (reference-style launch)")
    return parser.parse_args(argv)


def _write_resolved_config(config, directory: str) -> None:
    with atomic_open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config.to_dict(), f, indent=4)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config, args.set)
        fine_tune = args.checkpoint
        if args.average is not None:
            if not args.checkpoint:
                raise ConfigError("--average N needs -w/--checkpoint RUN_DIR: the run whose last N checkpoints to average")
            fine_tune = average_run(args.checkpoint, args.average)
        process = init_distributed(config.dist_config, args.rank, args.group_name)
        trainer = Trainer(config, resume=args.resume, fine_tune=fine_tune, rank=process.rank,
                          world_size=process.world_size, local_rank=process.local_rank)
        previous = install_stop_handlers(trainer.stop)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("once")
                trainer.setup()
                if trainer.is_main:
                    _write_resolved_config(config, trainer.output_directory)
                trainer.run()
        finally:
            restore_handlers(previous)
            shutdown_distributed()
    except (ConfigError, CheckpointError, TrainingError, AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if trainer.stop.signum is not None:
        return 128 + trainer.stop.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
