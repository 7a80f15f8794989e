"""Export a checkpoint's inference path to ONNX or TorchScript, then check the file against the model.

    waveglow-export -w waveglow_256channels_universal_v5.pt -o waveglow.onnx
    waveglow-export -w checkpoints/waveglow_10000 -o waveglow.ts --format torchscript --denoiser
    waveglow-export -w waveglow.pt -o waveglow_fp16.onnx --dtype float16

The graph takes mel (B, n_mel, F) and z, the latent already scaled by sigma in the layout the
model's ``sample_latent`` draws (WaveGlow: (B, n_group, hop F / n_group); FloWaveNet: (B, 1, hop F)),
and returns audio (B, hop F); any registered family exports the same way; batch and length are
dynamic. ``--denoiser`` also writes the denoiser graph beside it (``waveglow.onnx`` -> ``waveglow.denoiser.onnx``). Every file is
loaded back (onnxruntime on the CPU, or torch.jit.load) and compared with ``model.infer`` at two
random lengths, batch 1 and 2. Each file is written under a temporary name beside the output and
takes the output's name only once every check has passed: when the file differs by more than the
tolerance (1e-4 in float32), or anything else fails, the exit status is 1 and an earlier file at the
output path is left as it was. See docs/export.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import torch

from waveglow.atomic import atomic_path
from waveglow.errors import CheckpointError, first_line
from waveglow.cli.arguments import add_checkpoint, add_output, onnx_opset
from waveglow.denoiser import Denoiser
from waveglow.export import (
    DEFAULT_OPSET,
    DTYPES,
    FORMATS,
    ExportError,
    denoiser_path,
    export_denoiser,
    export_onnx,
    export_torchscript,
    graph_metadata,
    verify_denoiser,
    verify_export,
)
from waveglow.synthesis import load_for_inference


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_checkpoint(parser, aliases=("--waveglow_path",))
    add_output(parser, help="the file to write")
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument("--opset", type=onnx_opset(DEFAULT_OPSET), default=DEFAULT_OPSET, help="ONNX opset (18 or newer)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                        help="the graph's precision (inputs and output too)")
    parser.add_argument("--denoiser", action="store_true", help="also write the denoiser graph (float32)")
    parser.add_argument("--seed", type=int, default=0, help="for the random lengths and inputs of the check")
    return parser.parse_args(argv)


def output_problem(path: str) -> str | None:
    """Why ``path`` cannot be written, or None."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {folder} is not writable"
    if os.path.isdir(path):
        return "is a folder"
    return None


def export(model, path: str, args: argparse.Namespace, data_config) -> None:
    """Write the vocoder graph; raises whatever the exporter raises."""
    dtype = DTYPES[args.dtype]
    if args.format == "onnx":
        export_onnx(model, path, opset=args.opset, dtype=dtype, data_config=data_config)
    else:
        export_torchscript(model, path, dtype=dtype, data_config=data_config)


def write_and_verify(path: str, tmp: str, write, verify) -> str:
    """Write the temporary file ``tmp`` (``write(tmp)``) and check it (``verify(tmp)``); returns the check's
    summary. Failures raise ExportError, a one-line message naming ``path``, the file the user asked for."""
    try:
        write(tmp)
        return verify(tmp).summary()
    except ExportError as e:
        raise ExportError(str(e).replace(tmp, path)) from None
    except Exception as e:  # the exporter's own errors: unsupported operators, disk full ...
        raise ExportError(f"{path}: export failed: {first_line(e).replace(tmp, path)}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = [args.output] + ([denoiser_path(args.output)] if args.denoiser else [])
    for path in paths:
        problem = output_problem(path)
        if problem:
            print(f"error: {path}: {problem}", file=sys.stderr)
            return 1
    if args.format == "onnx" and args.opset < DEFAULT_OPSET:
        print(f"error: --opset {args.opset}: the exporter needs opset {DEFAULT_OPSET} or newer", file=sys.stderr)
        return 1
    try:
        model, data_config = load_for_inference(args.checkpoint, "cpu", torch.float32, low_memory=True)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    model = model if isinstance(model, torch.nn.Module) else model.model  # the model a fast inference object wraps
    diverged = next((name for name, p in model.state_dict().items() if not torch.isfinite(p).all()), None)
    if diverged is not None:  # the check would refuse the file anyway: say why, before minutes of exporting
        print(f"error: {args.checkpoint}: {diverged} holds NaN or infinite values (a diverged checkpoint?): "
              "nothing to export", file=sys.stderr)
        return 1
    dtype = DTYPES[args.dtype]
    try:  # both files replace earlier ones only once both have passed their checks
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(args.output))
            start = time.perf_counter()
            summary = write_and_verify(args.output, tmp, lambda p: export(model, p, args, data_config),
                                       lambda p: verify_export(p, model, dtype, seed=args.seed))
            messages = [f"wrote {args.output} ({args.format}, {args.dtype}) in {time.perf_counter() - start:.1f} s: {summary}"]
            if args.denoiser:
                tmp = stack.enter_context(atomic_path(paths[1]))
                denoiser = Denoiser(model)
                meta = graph_metadata(model, data_config, torch.float32)
                summary = write_and_verify(paths[1], tmp, lambda p: export_denoiser(denoiser, p, args.format, meta, args.opset),
                                           lambda p: verify_denoiser(p, denoiser, seed=args.seed))
                messages.append(f"wrote {paths[1]} (denoiser, float32): {summary}")
    except (ExportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\n".join(messages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
