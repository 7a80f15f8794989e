"""The training loop behind train.py: single process, torchrun/DDP, mixed precision, exact resume.

Resume is exact because everything that decides the trajectory is either saved or a pure
function of (seed, epoch, position): the model, optimizer, GradScaler and iteration are in the
checkpoint; the order of items comes from a seeded per-epoch permutation; and each item's random
crop is drawn from torch's RNG re-seeded from (seed, epoch, index), so neither DataLoader
workers nor a restart change which crop an iteration sees.

The loop (:class:`Trainer`) lives here; the checkpoint files in :mod:`waveglow.checkpoint_policy`, the
item order in :mod:`waveglow.sampling`, and the state, schedule and stop signals in
:mod:`waveglow.training_parts`. Their public names are importable from here too.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from .checkpoint import (
    Checkpoint, build_model, load_state_dict_checked, read_checkpoint, restore_rng_state, save_checkpoint,
)
from .checkpoint_policy import CheckpointPolicy, checkpoint_name, find_latest_checkpoint
from .config import Config
from .data import training_file_list
from .devices import cpu_precision, cuda_device, subnormals_flushed
from .errors import TrainingError
from .evaluation import evaluate_model
from .metrics import MetricsLog
from .models import FlowVocoder
from .monitor import VALIDATION_SIGMA, ProgressLog
from .sampling import EpochSampler, _SeededItems
from .training_parts import StopSignal, TrainingState, evaluating, learning_rate_at
# not used here; importable from this module, as before (the CLI imports the handlers from it)
from .training_parts import _Stopped as _Stopped, install_stop_handlers as install_stop_handlers
from .training_parts import restore_handlers as restore_handlers

__all__ = ["TrainingError", "Trainer", "CheckpointPolicy", "find_latest_checkpoint", "checkpoint_name", "learning_rate_at"]


@dataclass
class Trainer:
    """One training run of any model family: ``setup()`` then ``run()`` (the last iteration reached).

    The pieces, in the order a run uses them: precision (:meth:`_choose_precision`), state
    (:meth:`_new_state`, :meth:`_load_start_checkpoint`), the family's data-dependent
    initialisation (:meth:`_initialize`), one optimizer step (:meth:`train_step`), validation
    (:meth:`validate`), the checkpoint policy (:class:`CheckpointPolicy`, :meth:`save`) and stop
    signals (:meth:`_any_rank_stopping`). Every number goes to ``metrics.jsonl`` too.
    """

    config: Config
    resume: bool = False
    fine_tune: str | Checkpoint | None = None  # weights to start from: a file, or a Checkpoint read already
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    log: callable = print
    stop: StopSignal = field(default_factory=StopSignal)

    def __post_init__(self) -> None:
        self.family = self.config.family
        self.device = cuda_device(self.local_rank) if torch.cuda.is_available() else torch.device("cpu")
        self.is_main = self.rank == 0
        self.output_directory = self.config.train_config.output_directory
        self.checkpoints = CheckpointPolicy(self.output_directory, self.family.name, self.config.train_config.keep_last)
        self._choose_precision()

    def _choose_precision(self) -> None:
        """AMP on CUDA (float16 or bfloat16); on the CPU bfloat16 only, and only where the CPU has it natively."""
        t = self.config.train_config
        self.amp_dtype = torch.bfloat16 if t.amp_dtype == "bfloat16" else torch.float16
        self.use_amp = t.fp16_run and (self.device.type == "cuda" or self.amp_dtype == torch.bfloat16)
        if t.fp16_run and not self.use_amp and self.is_main:
            warnings.warn(
                "fp16_run with amp_dtype float16 needs CUDA; training in float32 on the CPU "
                "(amp_dtype bfloat16 runs mixed precision there)", stacklevel=3,
            )
        if self.use_amp and self.device.type == "cpu":
            with warnings.catch_warnings():
                if not self.is_main:
                    warnings.simplefilter("ignore")
                self.use_amp = cpu_precision(self.amp_dtype, "train_config.amp_dtype bfloat16") == torch.bfloat16

    # ---------------------------------------------------------------- setup

    def setup(self) -> None:
        t = self.config.train_config
        torch.manual_seed(t.seed)
        self._check_output_directory()
        self.dataset = self.family.training_dataset(training_file_list(self.config.data_config, "training_files"), self.config.data_config)
        self.criterion = self.family.loss(t)
        self.state = self._new_state()
        self._load_start_checkpoint()
        self.sampler = EpochSampler(len(self.dataset), t.batch_size, t.seed, self.rank, self.world_size)
        self.loader = DataLoader(
            _SeededItems(self.dataset), batch_size=t.batch_size, sampler=self.sampler,
            num_workers=t.num_workers, pin_memory=self.device.type == "cuda", drop_last=True,
            generator=torch.Generator().manual_seed(t.seed),
        )
        self._initialize()
        self.ddp_model = self.model
        if self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        path = self.config.data_config.validation_files
        self.validation = self.family.validation_dataset(training_file_list(self.config.data_config, "validation_files"), self.config.data_config) if path else None
        self.writer = self._tensorboard() if self.is_main else None
        self.metrics = MetricsLog(os.path.join(self.output_directory, "metrics.jsonl"), self.iteration) if self.is_main else None

    @property
    def model(self) -> torch.nn.Module:
        return self.state.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.state.optimizer

    @property
    def scaler(self) -> torch.amp.GradScaler:
        return self.state.scaler

    @property
    def iteration(self) -> int:
        return self.state.iteration

    @iteration.setter
    def iteration(self, value: int) -> None:
        self.state.iteration = value

    def _new_state(self) -> TrainingState:
        t = self.config.train_config
        model = build_model(self.config, source=f"{self.family.section}").to(self.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=t.learning_rate)
        scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        return TrainingState(model, optimizer, scaler)

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

    def _tensorboard(self):
        if not self.config.train_config.with_tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(os.path.join(self.output_directory, "logs"), purge_step=self.iteration + 1)

    def _load_start_checkpoint(self) -> None:
        """Resume (newest readable checkpoint of this run), fine-tune (weights only), or checkpoint_path."""
        path = self.config.train_config.checkpoint_path
        checkpoint = None
        if self.resume:
            checkpoint = self.checkpoints.resume_point(self.log)
            if checkpoint is None:
                self.log(f"--resume: no readable {checkpoint_name('<iteration>', self.family.name)} checkpoint in "
                         f"{self.output_directory}; starting fresh")
        if self.fine_tune:  # a file, or a Checkpoint already read (e.g. an average of several)
            start = self.fine_tune if isinstance(self.fine_tune, Checkpoint) else read_checkpoint(self.fine_tune, map_location="cpu")
            self._load_weights(start, "fine-tuning from")
        if checkpoint is None and path:
            checkpoint = read_checkpoint(path, map_location="cpu")
        if checkpoint is None:
            return
        if not checkpoint.is_ours:
            self._load_weights(checkpoint, "fine-tuning (weights only, fresh optimizer) from")
            return
        self._load_weights(checkpoint, "resuming from")
        if checkpoint.optimizer is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer)
        if checkpoint.scaler is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(checkpoint.scaler)
        self.iteration = checkpoint.iteration
        if checkpoint.rng_state is not None:
            restore_rng_state(checkpoint.rng_state)

    def _load_weights(self, checkpoint, verb: str) -> None:
        if checkpoint.family != self.family.name:
            raise TrainingError(f"{checkpoint.path}: holds a {checkpoint.family} model, but the config trains {self.family.name}")
        load_state_dict_checked(self.model, checkpoint.state_dict, checkpoint.path)  # in place: no second model
        self.state.weights_loaded = True
        self.model.load_extra_state(checkpoint.extra)
        self.log(f"{verb} {checkpoint.path} ({checkpoint.kind} format, iteration {checkpoint.iteration})")

    def _initialize(self) -> None:
        """The model's data-dependent initialisation, on the first training batch, before DDP wraps the model."""
        if self.state.weights_loaded or type(self.model).initialize is FlowVocoder.initialize:
            return  # weights loaded, or a model without one: no batch to read
        self.sampler.set_epoch(0)
        mel, audio = next(iter(self.loader))
        if self.model.initialize(mel.to(self.device), audio.to(self.device)):
            self.log(f"initialised {self.family.name} from the first batch")

    # ---------------------------------------------------------------- steps

    def train_step(self, mel: torch.Tensor, audio: torch.Tensor) -> tuple[float, float | None]:
        """One optimizer step. Returns (loss averaged over ranks, gradient norm or None if skipped)."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate_at(self.iteration, self.config.train_config)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(mel, audio)
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

    def loss(self, mel: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """The family's loss of one batch on the training device, under autocast when AMP is on."""
        mel = mel.to(self.device, non_blocking=True)
        audio = audio.to(self.device, non_blocking=True)
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.use_amp else nullcontext()
        with autocast:
            outputs = self.ddp_model(mel, audio)
        return self.criterion(outputs)

    def _average(self, value: torch.Tensor) -> float:
        if self.world_size > 1:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world_size
        return value.item()

    @torch.no_grad()
    def validate(self) -> float:
        """Mean loss over the fixed validation crops (each rank its share, averaged)."""
        total, count = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        with evaluating(self.model):
            for i in range(self.rank, len(self.validation), self.world_size):
                mel, audio = self.validation[i]
                total += self.criterion(self.model(mel[None].to(self.device), audio[None].to(self.device)))
                count += 1
        if self.world_size > 1:
            both = torch.stack([total, count])
            dist.all_reduce(both)
            total, count = both[0], both[1]
        return (total / count.clamp(min=1)).item()

    def save(self) -> str | None:
        """Write ``<family>_<iteration>`` atomically (rank 0), then prune to keep_last."""
        if not self.is_main:
            return None
        path = self.checkpoints.path(self.iteration)
        save_checkpoint(
            path, self.model, self.config, optimizer=self.optimizer,
            scaler=self.scaler if self.scaler.is_enabled() else None,
            iteration=self.iteration, learning_rate=learning_rate_at(self.iteration, self.config.train_config),
        )
        self.checkpoints.prune()
        return path

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
        """Train to the last iteration; each step with subnormal floats flushed to zero (see :func:`subnormals_flushed`)."""
        with subnormals_flushed(self.device) as compute:
            return self._run(compute)

    def _run(self, compute) -> int:
        total = self.total_iterations()
        if self.iteration >= total:
            self.log(f"already at iteration {self.iteration} of {total}; nothing to do")
            return self.iteration
        progress = ProgressLog(self, total)
        nonfinite = 0
        self.model.train()
        try:
            for mel, audio in self.batches():
                started = time.perf_counter()
                loss, grad_norm = compute(self.train_step, mel, audio)
                self.iteration += 1
                nonfinite = nonfinite + 1 if grad_norm is None else 0
                if nonfinite:
                    self._handle_nonfinite(loss, nonfinite)
                progress.step(loss, grad_norm, audio.numel() * self.world_size / (time.perf_counter() - started))
                if nonfinite == 0:
                    self._periodic(progress, compute)
                if self._any_rank_stopping():
                    path = self.save()
                    self.log(f"stopped by signal {self.stop.signum} at iteration {self.iteration}"
                             + (f"; saved {path}" if path else ""))
                    break
                if self.iteration >= total:
                    if self.iteration % self.config.train_config.iters_per_checkpoint:
                        self.save()
                    break
        finally:
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
            latest = self.checkpoints.latest()
            raise TrainingError(
                f"{count} consecutive non-finite losses at iteration {self.iteration}; likely causes: silent or "
                "zero-padded crops (set data_config.min_crop_rms, check files with waveglow-prepare-dataset), "
                "fp16 overflow (try train_config.amp_dtype=bfloat16 or fp16_run=false), or too high a learning rate. "
                + (f"Last good checkpoint: {latest}" if latest else "No checkpoint was written yet.")
            )

    def _periodic(self, progress, compute) -> None:
        t = self.config.train_config
        if self.iteration % t.iters_per_checkpoint == 0:
            self.save()
        if self.validation is not None and t.iters_per_validation and self.iteration % t.iters_per_validation == 0:
            progress.validation(compute(self.validate))
        if self.validation is not None and t.iters_per_audio and self.iteration % t.iters_per_audio == 0:
            progress.audio(self.model, self.validation)
        if self.is_main and self.validation is not None and t.iters_per_evaluation \
                and self.iteration % t.iters_per_evaluation == 0:
            progress.evaluation(self.evaluate())

    def evaluate(self) -> dict[str, float]:
        """PESQ, STOI and log-mel L1 of copy synthesis of the first ``evaluation_clips`` validation files."""
        files = self.validation.files[: self.config.train_config.evaluation_clips]
        sigma = min(VALIDATION_SIGMA, self.model.default_sigma)  # as the logged audio
        return evaluate_model(self.model, self.config.data_config, files, sigma=sigma, seed=0)
