"""Convert any checkpoint WaveGlow reads (NVIDIA, DeepLearningExamples, ours) to our format.

    waveglow-convert-checkpoint -w waveglow_256channels_universal_v5.pt -o waveglow_256.pt

The output loads with ``torch.load(weights_only=True)`` and ``waveglow.load_checkpoint``.
"""

from __future__ import annotations

import argparse
import sys

from waveglow.cli.arguments import add_checkpoint, add_output
from waveglow.checkpoint import checkpoint_model, read_checkpoint, save_checkpoint
from waveglow.errors import CheckpointError, ConfigError
from waveglow.config import load_config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint(parser, positional="input", help="checkpoint to read (any supported format)")
    add_output(parser, positional="output_file", help="where to write our format")
    parser.add_argument(
        "-c", "--config", help="config.json whose train/data sections to embed (default: NVIDIA's defaults)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        checkpoint = read_checkpoint(args.checkpoint)
        model, config = checkpoint_model(checkpoint)
        if args.config:
            wanted = load_config(args.config)
            if wanted.model_section != config.model_section or wanted.model_config != config.model_config:
                raise ConfigError(
                    f"{args.config}: {wanted.model_section} {wanted.model_config.to_kwargs()} does not match the "
                    f"checkpoint's {config.model_section} {checkpoint.model_config}"
                )
            config = wanted
        save_checkpoint(args.output, model, config, iteration=checkpoint.iteration,
                        learning_rate=checkpoint.learning_rate)
    except (CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n_params = sum(t.numel() for t in checkpoint.state_dict.values())
    print(f"{args.checkpoint} ({checkpoint.kind}, {n_params:,} parameters, iteration {checkpoint.iteration}) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
