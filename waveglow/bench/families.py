"""Model families side by side: each config's model vocoding the same speech in its own features,
timed in every mode it offers, and one training step on a crop of that speech.

Modes: ``reference-style`` keeps weight norm (recomputed every call, as the reference
implementations' inverse passes do), ``plain`` removes it, then each of the model's
``fast_variants()`` by name. Random weights: the arithmetic does not depend on the values.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
from typing import Callable

import torch

from ..config import Config
from ..synthesis import draw_latents
from .meters import megabytes, summarise, time_runs
from .models import clip_file, config_label, load_clip, random_model
from .settings import Settings

__all__ = ["family_rows", "family_vocoders", "family_training"]


def family_vocoders(model: torch.nn.Module) -> dict[str, Callable[[], object]]:
    """Mode -> a factory of the object whose ``infer`` that mode times (copies where the mode changes the model)."""
    def plain() -> torch.nn.Module:
        return copy.deepcopy(model).remove_weight_norm()

    def variant(name: str) -> Callable[[], object]:
        return lambda: plain().fast_variants()[name]()

    return {"reference-style": lambda: model, "plain": plain, **{name: variant(name) for name in model.fast_variants()}}


def family_rows(configs: list[Config | str], settings: Settings, device: torch.device) -> list[dict]:
    """Each config's family on the same speech (``settings.clip``, or the synthesised clip at the
    family's sampling rate): parameters, inference per mode and length, one training step.
    Raises ConfigError or AudioError."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in configs:
            model, config = random_model(source, device, settings.seed)
            model.eval()
            rows += family_inference(model, config, config_label(source), settings, device)
            base = {k: rows[-1][k] for k in ("family", "config", "parameters")}
            clip = clip_file(settings.clip, config.data_config.sampling_rate, tmp)
            rows.append({**base, "mode": "train", **family_training(settings, config, model, device, clip)})
            del model
    return rows


def family_inference(model, config: Config, label: str, settings: Settings, device: torch.device) -> list[dict]:
    """Rows of every mode and length for one family."""
    family, rate = config.family, config.data_config.sampling_rate
    speech = load_clip(settings.clip, rate)
    features = family.features(config.data_config)
    base = {"family": family.name, "config": label, "parameters": sum(p.numel() for p in model.parameters())}
    rows = []
    for seconds in settings.lengths:
        frames = max(1, round(seconds * rate / model.hop_length))
        audio = speech.repeat(1 + frames * model.hop_length // speech.numel())[: frames * model.hop_length]
        with torch.no_grad():
            mel = features(features.prepare_audio(audio[None]))[:, :, :frames].to(device)  # (1, n_mel, frames)
        z = draw_latents(model, [frames * model.latent_steps_per_frame], settings.sigma,
                         torch.Generator().manual_seed(settings.seed))[0][None].to(device)
        for mode, make in family_vocoders(model).items():
            vocoder = make()
            with torch.inference_mode():
                times, peak = time_runs(lambda v=vocoder: v.infer(mel, z=z), device, settings.warmup, settings.repeats)
            row = {**base, "mode": mode, "seconds": frames * model.hop_length / rate, "times_s": times,
                   "peak_memory_bytes": peak}
            row.update(summarise(times, frames * model.hop_length, rate))
            rows.append(row)
            print(f"{family.name} {mode} {row['seconds']:.2f}s: {row['s_per_audio_s']:.2f} s per s of audio, "
                  f"peak {megabytes(peak)} MB", flush=True)
            del vocoder
    return rows


def family_training(settings: Settings, config: Config, model, device: torch.device, clip: str) -> dict:
    """One fp32 Adam step on a batch of one training crop of the file ``clip``, as the family's dataset cuts it."""
    family = config.family
    dataset = family.training_dataset([clip], config.data_config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        mel, audio = dataset[0]
    train_model = copy.deepcopy(model).train()
    loss_fn = family.loss(config.train_config)
    optimizer = torch.optim.Adam(train_model.parameters(), lr=config.train_config.learning_rate)
    mel, audio = mel[None].to(device), audio[None].to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(train_model(mel, audio)).backward()
        optimizer.step()

    times, peak = time_runs(step, device, settings.warmup, settings.repeats)
    median = statistics.median(times)
    print(f"{family.name} train: {median:.2f} s per step, {audio.numel() / median:.0f} samples/s", flush=True)
    return {"segment_length": audio.numel(), "times_s": times, "step_s": median,
            "samples_per_s": audio.numel() / median, "peak_memory_bytes": peak}
