"""Training the demo voice with the time left: WaveGlow on the demo's training clips, AMP on CUDA.

Resumes from the voice the repository ships (``demo/waveglow_voice.pt``) when there is one, so every
run adds to the same voice; otherwise a short sweep picks the architecture. Batches are drawn in the
process from the clips held in memory (random crops, features on the training device), one
``Trainer.train_step`` each. Every ``voice_checkpoint_every_s`` and at the end the weights are
written, weights only and in float16 when float32 would pass 15 MiB, to ``waveglow_voice.pt`` in
the output folder (atomically: a killed run leaves the previous one whole).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import statistics
import sys
import time

import torch

from waveglow.audio import load_audio
from waveglow.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from waveglow.config import Config, config_from_dict, load_config
from waveglow.data import crop_segment
from waveglow.synthesis import synthesize
from waveglow.training import Trainer

from .profile import MAX_CHECKPOINT_BYTES
from .check import Check

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOICE_FILE = "waveglow_voice.pt"
SATURATED = 0.85  # a batch reaches the GPU's throughput when its samples/s is this share of the best
MAX_NONFINITE_RUN = 20  # non-finite losses in a row that stop training


def _demo_script():
    """scripts/demo.py as a module (its split of the clips is the one the voice must keep)."""
    name = "waveglow_demo_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "scripts", "demo.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def training_clips() -> list[str]:
    """The demo's training clips (demo/data less its four held-out clips), as scripts/demo.py splits them."""
    return _demo_script().split_clips(os.path.join(REPO, "demo", "data"))[0]


def held_out_clips() -> list[str]:
    return _demo_script().split_clips(os.path.join(REPO, "demo", "data"))[1]


class Batches:
    """Random crops of clips held in memory, with their features computed on the training device."""

    def __init__(self, clips: list[torch.Tensor], config: Config, device: torch.device, seed: int) -> None:
        self.clips, self.segment, self.device = clips, config.data_config.segment_length, device
        self.features = config.family.features(config.data_config).to(device)
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mel (B, n_mel, frames) on the device, audio (B, segment) on the device)."""
        crops = []
        for i in torch.randint(len(self.clips), (batch,), generator=self.generator).tolist():
            clip = self.clips[i]
            start = int(torch.randint(max(1, clip.numel() - self.segment + 1), (1,), generator=self.generator))
            crops.append(crop_segment(clip, start, self.segment))
        audio = torch.stack(crops).to(self.device, non_blocking=True)  # (B, segment)
        with torch.no_grad():
            return self.features(audio), audio


class Candidate:
    """One architecture in training: its Trainer, its steps' losses and times."""

    def __init__(self, name: str, config: Config, batches: Batches, warmup_steps: int = 0) -> None:
        self.name, self.config, self.batches = name, config, batches
        self.learning_rate, self.warmup_steps = config.train_config.learning_rate, warmup_steps
        self.trainer = Trainer(config, log=print)
        self.trainer.setup()
        self.trainer.model.train()
        self.batch, self.losses, self.seconds, self.skipped, self.samples = config.train_config.batch_size, [], 0.0, 0, 0
        self.nonfinite_run = 0  # non-finite losses in a row

    def step(self, batch: int | None = None) -> float:
        """One optimizer step; returns its synchronised wall time."""
        batch = batch or self.batch
        device = self.trainer.device
        if self.warmup_steps:  # a resumed voice meets a fresh Adam: its first steps would jolt the weights
            done = len(self.losses) + self.skipped
            self.config.train_config.learning_rate = self.learning_rate * min(1.0, (done + 1) / self.warmup_steps)
        _sync(device)
        started = time.perf_counter()
        mel, audio = self.batches.draw(batch)
        loss, grad_norm = self.trainer.train_step(mel, audio)
        _sync(device)
        elapsed = time.perf_counter() - started
        self.trainer.iteration += 1
        self.seconds += elapsed
        self.samples += audio.numel()
        if grad_norm is None:
            self.skipped, self.nonfinite_run = self.skipped + 1, self.nonfinite_run + 1
        else:
            self.losses.append(loss)
            self.nonfinite_run = 0
        return elapsed

    def parameters(self) -> int:
        return sum(p.numel() for p in self.trainer.model.parameters())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def voice_config(check: Check, shipped: str | None, arch: dict | None, batch: int, name: str) -> Config:
    """The shipped voice's own config (else configs/demo.json with ``arch``), set up for this run."""
    p = check.profile
    base = read_checkpoint(shipped).config.to_dict() if shipped else load_config(os.path.join(REPO, "configs", "demo.json")).to_dict()
    if arch:
        base["waveglow_config"].update(copy.deepcopy(arch))
    folder = os.path.join(check.work, "voice", name)
    os.makedirs(folder, exist_ok=True)
    files = os.path.join(check.work, "voice", "train_files.txt")
    with open(files, "w") as f:
        f.writelines(f"{clip}\n" for clip in training_clips())
    base["train_config"].update(output_directory=folder, checkpoint_path=shipped or "", batch_size=batch,
                                fp16_run=torch.cuda.is_available(), learning_rate=p.voice_learning_rate,
                                max_iterations=0, with_tensorboard=False, num_workers=0, iters_per_checkpoint=10**9)
    base["data_config"].update(training_files=files, segment_length=p.voice_segment, validation_files="")
    return config_from_dict(base, f"<voice {name}>")


def choose_batch(candidate: Candidate, batches: list[int], steps: int, stop_at: float) -> list[dict]:
    """Samples/s at each batch (after a warm-up step); the candidate keeps the smallest batch within
    ``SATURATED`` of the best, since past the GPU's saturation a bigger batch only means fewer updates.
    Batches past ``stop_at`` are not tried."""
    rows = []
    for batch in batches:
        if rows and time.monotonic() >= stop_at:
            break
        candidate.step(batch)  # warm-up: kernels chosen, memory allocated
        times = [candidate.step(batch) for _ in range(steps)]
        rows.append({"batch": batch, "samples_per_s": round(batch * candidate.config.data_config.segment_length
                                                            / statistics.median(times))})
    best = max(r["samples_per_s"] for r in rows)
    candidate.batch = min(r["batch"] for r in rows if r["samples_per_s"] >= SATURATED * best)
    return rows


def train_voice(check: Check, deadline: float) -> dict:
    """The voice stage: sweep (or take the shipped voice's architecture), train until the deadline, verify."""
    p, out_path = check.profile, check.path(VOICE_FILE)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolutions
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    shipped = os.path.join(REPO, check.args.voice_checkpoint)
    shipped = shipped if os.path.isfile(shipped) else None
    clips = [load_audio(c, 22050) for c in training_clips()]
    stop_at = deadline - (12.0 if device.type == "cuda" else 3.0)  # time for the last save and its check
    result = {"resumed_from": os.path.relpath(shipped, REPO) if shipped else None, "device": str(device),
              "training_clips": len(clips), "segment_length": p.voice_segment}
    candidates, result["sweep"] = sweep(check, clips, shipped, device, stop_at)
    scored = [c for c in candidates if c.losses]
    if not scored:
        return {**result, "status": "failed", "error": "no finite training loss in the sweep"}
    chosen = min(scored, key=lambda c: result["sweep"][c.name]["final_loss"])
    del candidates, scored
    result.update(chosen=chosen.name, batch=chosen.batch, parameters=chosen.parameters(),
                  start_iteration=read_checkpoint(shipped).iteration if shipped else 0)
    if p.voice_train_cap_s is not None:  # the rehearsal: train briefly, then let the run end
        stop_at = min(stop_at, time.monotonic() + p.voice_train_cap_s)
    print(f"training {chosen.name} at batch {chosen.batch} until {stop_at - time.monotonic():.0f} s from now")
    result.update(train_until(check, chosen, out_path, stop_at))
    if not os.path.exists(out_path):
        return {**result, "status": "failed", "error": "training diverged before the first checkpoint"}
    result.update(verify_voice(out_path))
    if result["checkpoint_bytes"] > MAX_CHECKPOINT_BYTES:
        return {**result, "status": "failed", "error": f"{VOICE_FILE} is {result['checkpoint_bytes'] / 2**20:.1f} MiB, over 15"}
    if not result["vocodes"] or result["diverged"]:
        return {**result, "status": "failed", "error": "training diverged (non-finite losses)" if result["diverged"]
                else "the written voice does not vocode a held-out clip to finite audio of its length"}
    return result


def sweep(check: Check, clips: list[torch.Tensor], shipped: str | None, device: torch.device,
          stop_at: float) -> tuple[list[Candidate], dict]:
    """Each candidate (the shipped voice alone, else the profile's architectures): its batch chosen,
    then, when there are several, trained for ``voice_trial_s`` of wall clock from the same start.
    Returns (the candidates, what the summary records of each)."""
    p = check.profile
    arches = {"shipped": None} if shipped else p.voice_candidates
    candidates, records = [], {}
    for name, arch in arches.items():
        config = voice_config(check, shipped, arch, p.voice_batches[0], name)
        candidate = Candidate(name, config, Batches(clips, config, device, seed=len(candidates)),
                              warmup_steps=p.voice_warmup_steps if shipped else 0)
        started = time.monotonic()
        rows = choose_batch(candidate, p.voice_batches, 5 if device.type == "cuda" else 1, stop_at)
        while len(arches) > 1 and time.monotonic() - started < p.voice_trial_s and time.monotonic() < stop_at:
            candidate.step()
        tail = candidate.losses[-max(1, len(candidate.losses) // 3):]
        records[name] = {"architecture": arch or config.to_dict()["waveglow_config"], "parameters": candidate.parameters(),
                         "batch_samples_per_s": rows, "batch": candidate.batch, "steps": len(candidate.losses),
                         "trial_s": round(time.monotonic() - started, 1),
                         "final_loss": round(statistics.mean(tail), 4) if tail else None}
        print(f"candidate {name}: {json.dumps(records[name])}")
        candidates.append(candidate)
    return candidates, records


def train_until(check: Check, chosen: Candidate, out_path: str, stop_at: float) -> dict:
    """Train ``chosen`` until ``stop_at``, writing the voice every ``voice_checkpoint_every_s``."""
    every = check.profile.voice_checkpoint_every_s
    first_iteration, steps_before, seconds_before = chosen.trainer.iteration, len(chosen.losses), chosen.seconds
    samples_before, started, last_save, saves, curve = chosen.samples, time.monotonic(), time.monotonic(), 0, []
    diverged = False
    while True:  # one step at least, so a sweep that ate the time still leaves this path run
        chosen.step()
        if chosen.nonfinite_run >= MAX_NONFINITE_RUN:  # diverged: keep the last good voice, write no other
            diverged = True
            print(f"{chosen.nonfinite_run} non-finite losses in a row at iteration {chosen.trainer.iteration}: stopping")
            break
        if chosen.losses and (not curve or time.monotonic() - curve[-1][0] - started >= every / 6):
            curve.append((round(time.monotonic() - started, 1), chosen.trainer.iteration, round(chosen.losses[-1], 4)))
        if time.monotonic() - last_save >= every:
            save_voice(out_path, chosen)
            saves, last_save = saves + 1, time.monotonic()
            check.summary["stages"]["voice"]["progress"] = {"iteration": chosen.trainer.iteration, "loss": curve[-1][2] if curve else None}
            check.write_summary()
        if time.monotonic() >= stop_at:
            break
    if not diverged:
        save_voice(out_path, chosen)
        saves += 1
    losses = chosen.losses[steps_before:]
    seconds = chosen.seconds - seconds_before
    return {"iterations": chosen.trainer.iteration - first_iteration, "end_iteration": chosen.trainer.iteration,
            "train_s": round(time.monotonic() - started, 1), "saves": saves, "diverged": diverged,
            "skipped_steps": chosen.skipped,
            "samples_per_s": round((chosen.samples - samples_before) / seconds) if seconds else None,
            "loss_first": round(losses[0], 4) if losses else None,
            "loss_last": round(statistics.mean(losses[-max(1, len(losses) // 10):]), 4) if losses else None,
            "loss_curve": curve}


def save_voice(path: str, candidate: Candidate) -> None:
    """The weights alone (no optimizer), float16 when float32 would pass the size limit."""
    model = copy.deepcopy(candidate.trainer.model).float().cpu()
    if sum(p.numel() * 4 for p in model.state_dict().values()) > MAX_CHECKPOINT_BYTES - 2**20:
        model = model.half()
    config = candidate.config.to_dict()
    config["train_config"].update(output_directory="demo_output/checkpoints", checkpoint_path="", batch_size=candidate.batch,
                                  learning_rate=candidate.learning_rate)
    config["data_config"].update(training_files="demo_output/train_files.txt")
    save_checkpoint(path, model, config, iteration=candidate.trainer.iteration)


def verify_voice(path: str) -> dict:
    """The written voice loads with load_checkpoint and vocodes a held-out clip to audio of its length."""
    model = load_checkpoint(path).remove_weight_norm()
    clip = load_audio(held_out_clips()[0], 22050)
    config = read_checkpoint(path).config
    with torch.no_grad():
        mel = config.family.features(config.data_config)(clip[None])[0]  # (n_mel, frames)
    audio = synthesize(model, mel, sigma=0.6, generator=torch.Generator().manual_seed(0))
    ok = audio.numel() == mel.size(1) * config.data_config.hop_length and bool(torch.isfinite(audio).all())
    return {"checkpoint": VOICE_FILE, "checkpoint_bytes": os.path.getsize(path),
            "checkpoint_dtype": str(next(iter(read_checkpoint(path).state_dict.values())).dtype),
            "vocodes": ok, "vocoded_samples": audio.numel(), "vocoded_rms": round(float(audio.square().mean().sqrt()), 4)}
