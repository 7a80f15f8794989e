"""Training rows: steps of a random model on a fixed random batch (fp32, or AMP: fp16 with a loss
scaler on CUDA, bfloat16 autocast on the CPU), and steps resumed from a training checkpoint's
state, in the training loop (subnormal floats flushed to zero) and with subnormals kept.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import statistics
import tempfile
import time
from typing import Callable

import torch

from ..checkpoint import read_checkpoint
from ..config import Config, load_config
from ..metrics import read_metrics
from ..training import Trainer
from .meters import SubnormalCount, time_runs
from .models import as_config, clip_file, random_model, set_precision
from .settings import Settings

__all__ = ["training_rows", "make_train_step", "trained_state_rows", "trained_state_config"]


def training_rows(settings: Settings, config: Config | str, device: torch.device) -> list[dict]:
    """One row per training precision: ``repeats`` Adam steps after ``warmup``, batch
    ``train_batch_size`` x ``segment_length``, from a fresh random model of ``config``."""
    rows = []
    for precision in settings.train_precisions:
        set_precision("fp32")
        model, full = random_model(config, device, settings.seed)
        model.train()
        loss_fn = full.family.loss(full.train_config)
        optimizer = torch.optim.Adam(model.parameters(), lr=full.train_config.learning_rate)
        step = make_train_step(model, loss_fn, optimizer, device, precision, settings)
        times, peak = time_runs(step, device, settings.warmup, settings.repeats)
        samples = settings.train_batch_size * settings.segment_length
        row = {"precision": precision, "batch": settings.train_batch_size, "segment_length": settings.segment_length,
               "times_s": times, "step_s": statistics.median(times), "samples_per_s": samples / statistics.median(times),
               "peak_memory_bytes": peak}
        rows.append(row)
        print(f"train {precision}: {row['step_s']:.3f} s/step, {row['samples_per_s']:.0f} samples/s", flush=True)
        del model, optimizer
    return rows


def make_train_step(model, loss_fn, optimizer, device, precision: str, settings: Settings) -> Callable[[], torch.Tensor]:
    """One forward + backward + Adam step on a fixed random batch; AMP is fp16 with a GradScaler on
    CUDA and bfloat16 autocast on CPU."""
    gen = torch.Generator().manual_seed(settings.seed)
    frames = settings.segment_length // model.hop_length + 1
    mel = torch.randn(settings.train_batch_size, model.n_mel_channels, frames, generator=gen).to(device)
    audio = (0.1 * torch.randn(settings.train_batch_size, settings.segment_length, generator=gen)).to(device)
    amp = precision == "amp"
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            loss = loss_fn(model(mel, audio))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    return step


def trained_state_rows(checkpoint_path: str, settings: Settings, config: Config | str) -> list[dict]:
    """``warmup`` + ``repeats`` steps from the training checkpoint's state, twice: in ``Trainer.run``
    (the step times it records in metrics.jsonl) and called on this thread, where subnormals are kept.
    Both start from the same state and batches (crops of ``settings.clip``), on the device train.py
    would choose; ``config`` is for a foreign file that carries none.
    Raises CheckpointError, ConfigError, AudioError or TrainingError."""
    checkpoint = read_checkpoint(checkpoint_path)
    steps = settings.warmup + settings.repeats
    with tempfile.TemporaryDirectory() as tmp:
        config = trained_state_config(checkpoint, checkpoint_path, settings.clip, config, tmp, steps)
        loop = Trainer(config, log=lambda *a: None)
        loop.setup()
        with contextlib.redirect_stdout(io.StringIO()):
            loop.run()
        records = [r for r in read_metrics(os.path.join(tmp, "loop", "metrics.jsonl")) if "samples_per_second" in r]
        samples = config.train_config.batch_size * config.data_config.segment_length
        loop_times = [samples / r["samples_per_second"] for r in records][settings.warmup:]
        config.train_config.output_directory = os.path.join(tmp, "kept")
        kept = Trainer(config, log=lambda *a: None)
        kept.setup()
        kept.model.train()
        batches = kept.batches()
        kept_times = []
        for mel, audio in itertools.islice(batches, steps):
            start = time.perf_counter()
            kept.train_step(mel, audio)
            kept_times.append(time.perf_counter() - start)
        with SubnormalCount() as count:
            kept.train_step(*next(batches))
    loop_s, kept_s = statistics.median(loop_times), statistics.median(kept_times[settings.warmup:])
    row = {"checkpoint": checkpoint_path, "family": config.family.name, "iteration": checkpoint.iteration,
           "batch": config.train_config.batch_size, "segment_length": config.data_config.segment_length,
           "loop_times_s": loop_times, "kept_times_s": kept_times[settings.warmup:], "loop_step_s": loop_s,
           "kept_step_s": kept_s, "kept_over_loop": kept_s / loop_s, "subnormals_written_kept": count.count}
    print(f"trained state {checkpoint.iteration}: {loop_s:.3f} s per step in the training loop, {kept_s:.3f} s with "
          f"subnormals kept ({count.count} written per step)", flush=True)
    return [row]


def trained_state_config(checkpoint, checkpoint_path: str, clip: str | None, config: Config | str, tmp: str,
                         steps: int) -> Config:
    """The checkpoint's own config (``config`` for a foreign file), resuming from it for ``steps``
    iterations on crops of ``clip`` (None: the synthesised speech, written into ``tmp``), with no
    validation, logging or checkpoints beyond the last."""
    own = checkpoint.config if checkpoint.config is not None else as_config(config)
    path = os.path.join(tmp, "config.json")
    with open(path, "w") as f:
        json.dump(own.to_dict(), f)
    files = os.path.join(tmp, "files.txt")
    with open(files, "w") as f:
        f.write(f"{clip_file(clip, own.data_config.sampling_rate, tmp)}\n" * own.train_config.batch_size)
    return load_config(path, [
        f"data_config.training_files={files}", "data_config.validation_files=",
        f"train_config.output_directory={os.path.join(tmp, 'loop')}",
        f"train_config.checkpoint_path={os.path.abspath(checkpoint_path)}",
        f"train_config.max_iterations={checkpoint.iteration + steps}", "train_config.iters_per_checkpoint=1000000000",
        "train_config.with_tensorboard=false", "train_config.num_workers=0", "train_config.keep_last=0",
    ])
