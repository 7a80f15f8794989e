"""The training loop behind train.py: single process, torchrun/DDP, mixed precision, exact resume.

Resume is exact because everything that decides the trajectory is either saved or a pure
function of (seed, epoch, position): the model, optimizer, GradScaler and iteration are in the
checkpoint; the order of items comes from a seeded per-epoch permutation; and each item's random
crop is drawn from torch's RNG re-seeded from (seed, epoch, index), so neither DataLoader
workers nor a restart change which crop an iteration sees.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import signal
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from .checkpoint import (
    build_model,
    read_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from .config import Config
from .loss import WaveGlowLoss
from .model import WaveGlow

__all__ = ["TrainingError", "Trainer", "find_latest_checkpoint", "checkpoint_name"]

_CHECKPOINT_PATTERN = re.compile(r"^waveglow_(\d+)$")


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why and what to check."""


def checkpoint_name(iteration: int) -> str:
    return f"waveglow_{iteration}"


def _numbered_checkpoints(directory: str) -> list[tuple[int, str]]:
    if not os.path.isdir(directory):
        return []
    found = [(int(m.group(1)), os.path.join(directory, name))
             for name in os.listdir(directory) for m in [_CHECKPOINT_PATTERN.match(name)] if m]
    return sorted(found)


def find_latest_checkpoint(directory: str) -> str | None:
    """The ``waveglow_<iteration>`` file with the highest iteration in ``directory``, if any."""
    found = _numbered_checkpoints(directory)
    return found[-1][1] if found else None


# ------------------------------------------------------------------------------------ data


class _SeededItems(Dataset):
    """Wraps a dataset so item ``(index, seed)`` is drawn with torch's RNG seeded by ``seed``.

    The caller's RNG state is left untouched, so crops depend only on (seed, epoch, index).
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class EpochSampler(Sampler):
    """Seeded per-epoch permutation, split across ranks, resumable at any batch.

    Yields ``(index, item_seed)``; like DistributedSampler with drop_last, every rank gets the
    same number of items. ``set_epoch(epoch, skip_batches)`` starts mid-epoch.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0
        per_rank = n_items // world_size
        self.batches_per_epoch = per_rank // batch_size
        if self.batches_per_epoch == 0:
            raise TrainingError(
                f"{n_items} training files are fewer than batch_size {batch_size} x {world_size} process(es): "
                "add files or lower train_config.batch_size"
            )

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_batches

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.skip) * self.batch_size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n_items, generator=generator).tolist()
        used = self.batches_per_epoch * self.batch_size
        mine = order[self.rank :: self.world_size][:used]
        for index in mine[self.skip * self.batch_size :]:
            yield index, (self.seed * 1_000_003 + self.epoch * 10_007 + index) % (2**63)


# ---------------------------------------------------------------------------------- trainer


@dataclass
class _Stopped:
    signum: int | None = None


@dataclass
class Trainer:
    """One training run. ``run()`` returns the last iteration reached."""

    config: Config
    resume: bool = False
    fine_tune: str | None = None
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    log: callable = print
    stop: _Stopped = field(default_factory=_Stopped)

    def __post_init__(self) -> None:
        t = self.config.train_config
        # local_rank modulo the visible GPUs, as init_distributed sets it: launchers that give each
        # process one GPU through CUDA_VISIBLE_DEVICES leave local ranks past the device count.
        cuda = torch.cuda.is_available()
        self.device = torch.device("cuda", self.local_rank % torch.cuda.device_count()) if cuda else torch.device("cpu")
        self.amp_dtype = torch.bfloat16 if t.amp_dtype == "bfloat16" else torch.float16
        # CPU autocast runs bfloat16 only: float16 mixed precision falls back to float32 there.
        self.use_amp = t.fp16_run and (self.device.type == "cuda" or self.amp_dtype == torch.bfloat16)
        if t.fp16_run and not self.use_amp and self.rank == 0:
            warnings.warn(
                "fp16_run with amp_dtype float16 needs CUDA; training in float32 on the CPU "
                "(amp_dtype bfloat16 runs mixed precision there)", stacklevel=2,
            )
        self.output_directory = t.output_directory
        self.is_main = self.rank == 0

    # ---------------------------------------------------------------- setup

    def setup(self) -> None:
        t = self.config.train_config
        torch.manual_seed(t.seed)
        self._check_output_directory()
        self.dataset = self._training_dataset()
        self.model = WaveGlow(**self.config.waveglow_config.to_kwargs()).to(self.device)
        self.criterion = WaveGlowLoss(t.sigma)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t.learning_rate)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.iteration = 0
        self._load_start_checkpoint()
        self.ddp_model = self.model
        if self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.sampler = EpochSampler(len(self.dataset), t.batch_size, t.seed, self.rank, self.world_size)
        self.loader = DataLoader(
            _SeededItems(self.dataset), batch_size=t.batch_size, sampler=self.sampler,
            num_workers=t.num_workers, pin_memory=self.device.type == "cuda", drop_last=True,
            generator=torch.Generator().manual_seed(t.seed),
        )
        self.validation = self._validation_dataset()
        self.writer = self._tensorboard() if self.is_main else None

    def _check_output_directory(self) -> None:
        if not self.is_main:
            return
        directory = self.output_directory
        try:
            os.makedirs(directory, exist_ok=True)
            probe = os.path.join(directory, f".write-test-{os.getpid()}")
            with open(probe, "w"):
                pass
            os.unlink(probe)
        except OSError as e:
            raise TrainingError(f"output_directory {directory}: not writable ({e.strerror or e})") from None

    def _file_list(self, path: str, key: str) -> list[str]:
        from .data import read_file_list

        if not path:
            raise TrainingError(f"data_config.{key} is empty: give a file list")
        try:
            files = read_file_list(path)
        except (OSError, ValueError) as e:
            raise TrainingError(f"data_config.{key} {path}: {e}") from None
        if not files:
            raise TrainingError(f"data_config.{key} {path}: lists no audio files")
        missing = [f for f in files if not os.path.isfile(f)]
        if len(missing) == len(files):
            raise TrainingError(f"data_config.{key} {path}: none of its {len(files)} files exist (first: {missing[0]})")
        if missing:
            raise TrainingError(f"data_config.{key} {path}: {len(missing)} listed files do not exist (first: {missing[0]})")
        return files

    def _training_dataset(self) -> Dataset:
        from .data import AudioDataset

        files = self._file_list(self.config.data_config.training_files, "training_files")
        return AudioDataset(files, self.config.data_config)

    def _validation_dataset(self) -> Dataset | None:
        from .data import ValidationDataset

        path = self.config.data_config.validation_files
        if not path:
            return None
        return ValidationDataset(self._file_list(path, "validation_files"), self.config.data_config)

    def _tensorboard(self):
        if not self.config.train_config.with_tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(os.path.join(self.output_directory, "logs"), purge_step=self.iteration + 1)

    def _load_start_checkpoint(self) -> None:
        t = self.config.train_config
        path = t.checkpoint_path
        if self.resume:
            latest = find_latest_checkpoint(self.output_directory)
            if latest is None:
                self.log(f"--resume: no waveglow_<iteration> checkpoint in {self.output_directory}; starting fresh")
            path = latest or path
        if self.fine_tune:
            self._load_weights(read_checkpoint(self.fine_tune, map_location="cpu"), "fine-tuning from")
        if not path:
            return
        checkpoint = read_checkpoint(path, map_location="cpu")
        if checkpoint.kind != "waveglow":
            self._load_weights(checkpoint, "fine-tuning (weights only, fresh optimizer) from")
            return
        self._load_weights(checkpoint, "resuming from")
        if checkpoint.optimizer is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer)
        if checkpoint.scaler is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(checkpoint.scaler)
        for group in self.optimizer.param_groups:
            group["lr"] = t.learning_rate
        self.iteration = checkpoint.iteration
        if checkpoint.rng_state is not None:
            restore_rng_state(checkpoint.rng_state)

    def _load_weights(self, checkpoint, verb: str) -> None:
        model = build_model(self.config.waveglow_config.to_kwargs(), checkpoint.state_dict, checkpoint.path)
        self.model.load_state_dict(model.state_dict())
        self.log(f"{verb} {checkpoint.path} ({checkpoint.kind} format, iteration {checkpoint.iteration})")

    # ---------------------------------------------------------------- steps

    def train_step(self, mel: torch.Tensor, audio: torch.Tensor) -> tuple[float, float | None]:
        """One optimizer step. Returns (loss averaged over ranks, gradient norm or None if skipped)."""
        mel = mel.to(self.device, non_blocking=True)
        audio = audio.to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.use_amp else nullcontext()
        with autocast:
            outputs = self.ddp_model(mel, audio)
        loss = self.criterion(outputs)
        reduced = self._average(loss.detach())
        if not math.isfinite(reduced):
            return reduced, None  # every rank sees the same average, so every rank skips
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        clip = self.config.train_config.grad_clip_thresh
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip > 0 else math.inf)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return reduced, float(grad_norm)

    def _average(self, value: torch.Tensor) -> float:
        if self.world_size > 1:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world_size
        return value.item()

    @torch.no_grad()
    def validate(self) -> float:
        """Mean loss over the fixed validation crops (each rank its share, averaged)."""
        self.model.eval()
        total, count = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        for i in range(self.rank, len(self.validation), self.world_size):
            mel, audio = self.validation[i]
            loss = self.criterion(self.model(mel[None].to(self.device), audio[None].to(self.device)))
            total += loss
            count += 1
        self.model.train()
        if self.world_size > 1:
            both = torch.stack([total, count])
            dist.all_reduce(both)
            total, count = both[0], both[1]
        return (total / count.clamp(min=1)).item()

    def save(self) -> str | None:
        if not self.is_main:
            return None
        path = os.path.join(self.output_directory, checkpoint_name(self.iteration))
        save_checkpoint(
            path, self.model, self.config, optimizer=self.optimizer,
            scaler=self.scaler if self.scaler.is_enabled() else None,
            iteration=self.iteration, learning_rate=self.config.train_config.learning_rate,
        )
        self._prune_checkpoints()
        return path

    def _prune_checkpoints(self) -> None:
        keep = self.config.train_config.keep_last
        if keep > 0:
            for _, old in _numbered_checkpoints(self.output_directory)[:-keep]:
                os.unlink(old)

    # ---------------------------------------------------------------- loop

    def total_iterations(self) -> int:
        t = self.config.train_config
        by_epochs = t.epochs * self.sampler.batches_per_epoch
        return min(by_epochs, t.max_iterations) if t.max_iterations > 0 else by_epochs

    def batches(self):
        """(mel, audio) batches from the current iteration on, across epochs."""
        per_epoch = self.sampler.batches_per_epoch
        for epoch in itertools.count(self.iteration // per_epoch):
            self.sampler.set_epoch(epoch, skip_batches=max(0, self.iteration - epoch * per_epoch))
            yield from self.loader

    def run(self) -> int:
        from .monitor import ProgressLog

        t = self.config.train_config
        total = self.total_iterations()
        if self.iteration >= total:
            self.log(f"already at iteration {self.iteration} of {total}; nothing to do")
            return self.iteration
        progress = ProgressLog(self, total)
        nonfinite = 0
        self.model.train()
        for mel, audio in self.batches():
            started = time.perf_counter()
            loss, grad_norm = self.train_step(mel, audio)
            self.iteration += 1
            if grad_norm is None:
                nonfinite += 1
                self._handle_nonfinite(loss, nonfinite)
            else:
                nonfinite = 0
            samples = audio.numel() * self.world_size
            progress.step(loss, grad_norm, samples / (time.perf_counter() - started))
            if nonfinite == 0:
                self._periodic(progress)
            if self._any_rank_stopping():
                path = self.save()
                self.log(f"stopped by signal {self.stop.signum} at iteration {self.iteration}"
                         + (f"; saved {path}" if path else ""))
                break
            if self.iteration >= total:
                if self.iteration % t.iters_per_checkpoint:
                    self.save()
                break
        progress.close()
        return self.iteration

    def _any_rank_stopping(self) -> bool:
        """Whether any rank got SIGINT/SIGTERM, agreed by all ranks so they stop together."""
        stopping = self.stop.signum is not None
        if self.world_size > 1:
            flag = torch.tensor(float(stopping), device=self.device)
            dist.all_reduce(flag)
            stopping = flag.item() > 0
            if stopping and self.stop.signum is None:
                self.stop.signum = signal.SIGTERM
        return stopping

    def _handle_nonfinite(self, loss: float, count: int) -> None:
        limit = self.config.train_config.max_nonfinite_steps
        if self.is_main:
            warnings.warn(f"iteration {self.iteration}: loss is {loss}; step skipped ({count} in a row)", stacklevel=2)
        if count >= limit:
            latest = find_latest_checkpoint(self.output_directory)
            raise TrainingError(
                f"{count} consecutive non-finite losses at iteration {self.iteration}; likely causes: silent or "
                "zero-padded crops (set data_config.min_crop_rms, check files with scripts/prepare_dataset.py), "
                "fp16 overflow (try train_config.amp_dtype=bfloat16 or fp16_run=false), or too high a learning rate. "
                + (f"Last good checkpoint: {latest}" if latest else "No checkpoint was written yet.")
            )

    def _periodic(self, progress) -> None:
        t = self.config.train_config
        if self.iteration % t.iters_per_checkpoint == 0:
            self.save()
        if self.validation is not None and t.iters_per_validation and self.iteration % t.iters_per_validation == 0:
            progress.validation(self.validate())
        if self.validation is not None and t.iters_per_audio and self.iteration % t.iters_per_audio == 0:
            progress.audio(self.model, self.validation)


def install_stop_handlers(stop: _Stopped) -> dict:
    """SIGINT/SIGTERM set ``stop.signum``; the loop saves a checkpoint and exits cleanly."""

    def handler(signum, frame):
        if stop.signum is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        stop.signum = signum
        print(f"signal {signum}: saving a checkpoint after this iteration (send again to abort)", file=sys.stderr)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread
            pass
    return previous


def restore_handlers(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)

