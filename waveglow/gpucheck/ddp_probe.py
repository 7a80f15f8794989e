"""A process group and a DistributedDataParallel step, as torchrun starts them.

    torchrun --standalone --nproc-per-node 1 -m waveglow.gpucheck.ddp_probe --backend nccl

train.py joins a process group only with more than one process, so on a one-GPU machine this is
what runs NCCL: an all-reduce, and one backward pass of a small WaveGlow wrapped in DDP (its
gradient buckets all-reduced), compared with the same step without DDP (every rank draws the same
batch, so the averaged gradients equal the plain ones). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.distributed as dist

from waveglow import WaveGlow, WaveGlowLoss


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="nccl", choices=["nccl", "gloo"])
    args = p.parse_args(argv)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if args.backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    dist.init_process_group(args.backend, rank=rank, world_size=world)
    try:
        value = torch.full((4,), float(rank + 1), device=device)
        dist.all_reduce(value)
        torch.manual_seed(0)
        model = WaveGlow(80, n_flows=2, n_group=8, n_early_every=1, n_early_size=2,
                         WN_config={"n_layers": 2, "n_channels": 16, "kernel_size": 3}).to(device)
        reference = WaveGlow(80, n_flows=2, n_group=8, n_early_every=1, n_early_size=2,
                             WN_config={"n_layers": 2, "n_channels": 16, "kernel_size": 3}).to(device)
        reference.load_state_dict(model.state_dict())
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
        mel = torch.randn(2, 80, 9, device=device, generator=torch.Generator(device).manual_seed(1))
        audio = 0.1 * torch.randn(2, 2048, device=device, generator=torch.Generator(device).manual_seed(2))
        loss_fn = WaveGlowLoss(1.0)
        loss_fn(ddp(mel, audio)).backward()
        loss_fn(reference(mel, audio)).backward()
        difference = max(((a.grad - b.grad).abs().max() / b.grad.abs().max().clamp_min(1e-12)).item()
                         for a, b in zip(model.parameters(), reference.parameters()))  # relative, per tensor
        result = {"rank": rank, "world_size": world, "backend": dist.get_backend(), "device": str(device),
                  "all_reduce": value[0].item(), "all_reduce_expected": world * (world + 1) / 2,
                  "ddp_grad_max_rel_diff": difference}
        if device.type == "cuda":
            version = torch.cuda.nccl.version()
            result["nccl_version"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        print("DDP_PROBE " + json.dumps(result), flush=True)
        ok = result["all_reduce"] == result["all_reduce_expected"] and difference <= 1e-3
    finally:
        dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
