"""Convert any checkpoint WaveGlow reads (NVIDIA, DeepLearningExamples, ours) to our format.

    python scripts/convert_checkpoint.py waveglow_256channels_universal_v5.pt waveglow_256.pt

The output loads with ``torch.load(weights_only=True)`` and ``waveglow.load_checkpoint``.
"""

from __future__ import annotations

import argparse
import sys

from waveglow.checkpoint import build_model, checkpoint_config, read_checkpoint, save_checkpoint
from waveglow.errors import CheckpointError, ConfigError
from waveglow.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="checkpoint to read (any supported format)")
    parser.add_argument("output", help="where to write our format")
    parser.add_argument(
        "-c", "--config", help="config.json whose train/data sections to embed (default: NVIDIA's defaults)"
    )
    args = parser.parse_args(argv)
    try:
        checkpoint = read_checkpoint(args.input)
        config = checkpoint_config(checkpoint)
        model = build_model(config, checkpoint.state_dict, checkpoint.path)
        if config.family.restore_extra is not None:
            config.family.restore_extra(model, checkpoint)
        if args.config:
            wanted = load_config(args.config)
            if wanted.model_section != config.model_section or wanted.model_config != config.model_config:
                raise ConfigError(
                    f"{args.config}: {wanted.model_section} {wanted.model_config.to_kwargs()} does not match the "
                    f"checkpoint's {config.model_section} {checkpoint.model_config}"
                )
            config = wanted
        extra = config.family.checkpoint_extra(model) if config.family.checkpoint_extra is not None else None
        save_checkpoint(args.output, model, config, iteration=checkpoint.iteration,
                        learning_rate=checkpoint.learning_rate, extra=extra)
    except (CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n_params = sum(t.numel() for t in checkpoint.state_dict.values())
    print(f"{args.input} ({checkpoint.kind}, {n_params:,} parameters, iteration {checkpoint.iteration}) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
