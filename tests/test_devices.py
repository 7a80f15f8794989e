"""Every path keeps its tensors on the model's device.

No GPU is needed to check that: the meta device (shapes and dtypes only, no data) refuses to mix
with CPU tensors exactly as CUDA does, so a CPU-made constant in a CUDA code path fails here too.
"""

import pytest
import torch

from waveglow import WaveGlow
from waveglow.audio import MelSpectrogram
from waveglow.denoiser import Denoiser
from waveglow.models.waveglow import FastWaveGlow
from waveglow.training import Trainer

META = torch.device("meta")


@pytest.fixture
def meta_model(tiny_config):
    return WaveGlow(**tiny_config.waveglow_config.to_kwargs()).to(META)


@pytest.mark.parametrize("path", ["plain", "fast", "fast-folded", "fast-cached", "lengths"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_inference_stays_on_the_model_device(meta_model, path, dtype):
    model = meta_model.eval().remove_weight_norm().to(dtype)
    vocoder = model if path == "plain" else FastWaveGlow(model, cache_conditioning=path == "fast-cached")
    if path == "fast-folded":
        vocoder.ops.fold_min_steps = 0
    mel = torch.empty(2, 80, 40, device=META, dtype=dtype)
    with torch.inference_mode():
        if path == "lengths":
            audio = vocoder.infer(mel, sigma=0.6, lengths=torch.tensor([40 * 256, 17 * 256]))
        else:
            audio = vocoder.infer(mel, sigma=0.6)
    assert audio.device == META and audio.dtype == dtype and audio.shape == (2, 40 * 256)


def test_the_trainers_loss_and_backward_stay_on_its_device(tiny_config):
    """The Trainer's own loss (the family's criterion) and backward on a meta 'GPU'; CPU batches moved there.
    (Autocast knows no meta device; the AMP path runs in tests/test_train.py on the CPU.)"""
    trainer = Trainer(tiny_config)
    trainer.device = META
    trainer.criterion = trainer.family.loss(tiny_config.train_config)
    trainer.state = trainer._new_state()
    trainer.ddp_model = trainer.model
    loss = trainer.loss(torch.zeros(2, 80, 17), torch.zeros(2, 4096))  # CPU batches, as the DataLoader gives
    trainer.scaler.scale(loss).backward()
    assert loss.device == META and loss.dtype == torch.float32
    assert all(p.device == META and p.grad is not None and p.grad.device == META for p in trainer.model.parameters())


def test_denoiser_and_mel_features_stay_on_the_model_device(meta_model, tiny_config):
    model = meta_model.eval().remove_weight_norm().half()
    denoiser = Denoiser(model)  # vocodes its bias audio on the model's device, then takes its STFT
    assert denoiser.bias_spec.device == META and denoiser.window.device == META
    features = MelSpectrogram.from_config(tiny_config.data_config).to(META)
    assert features(torch.empty(2, 5000, device=META)).shape == (2, 80, 1 + 5000 // 256)


def test_a_cpu_generator_seeds_a_model_on_another_device(meta_model):
    """CUDA refuses a CPU generator for CUDA tensors: the noise is drawn on the CPU, then moved."""
    generator = torch.Generator().manual_seed(0)
    before = generator.get_state().clone()
    with torch.inference_mode():
        audio = meta_model.eval().infer(torch.empty(1, 80, 6, device=META), sigma=0.6, generator=generator)
    assert audio.device == META and not torch.equal(generator.get_state(), before)  # drawn from it
