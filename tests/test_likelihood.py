"""Test-set log-likelihood: exact, in one unit for every family, in waveglow-evaluate and in training."""

from __future__ import annotations

import math

import pytest
import torch
from test_families import inputs, tiny_config, tiny_model

from waveglow.config import TrainConfig
from waveglow.likelihood import clip_log_likelihood, log_likelihood_from_loss
from waveglow.registry import family_named


def brute_force_log_likelihood(model, features, audio: torch.Tensor) -> float:
    """log N(z; 0, 1) + log|det dz/dx| per sample, the Jacobian of the whole clip by autograd (float64)."""
    mel = features(audio[None].float()).double()[..., : audio.numel() // model.hop_length]
    jacobian = torch.autograd.functional.jacobian(lambda a: model.encode(mel, a[None]).flatten(), audio, vectorize=True)
    z = model.encode(mel, audio[None]).flatten()
    log_density = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum()
    return ((log_density + torch.linalg.slogdet(jacobian)[1]) / audio.numel()).item()


# One family by brute force (a 768 x 768 Jacobian); the contract suite (tests/test_families.py) checks every
# family's loss against its Jacobian and nll_constant, which is all clip_log_likelihood adds to.
@pytest.mark.parametrize("name", ["waveglow"])
def test_log_likelihood_is_the_exact_density_per_sample(name):
    family = family_named(name)
    config = tiny_config(name)
    model = tiny_model(family, config, torch.float64, seed=5)
    features = family.features(config.data_config)
    _, audio = inputs(model, batch=1, frames=3, dtype=torch.float64, seed=6)  # the STFT needs 3 frames
    audio = audio[0]
    if hasattr(features, "prepare_audio"):  # the family models rescaled audio: give it audio at its own scale
        audio = features.prepare_audio(audio[None])[0]
    expected = brute_force_log_likelihood(model, features, audio)
    assert clip_log_likelihood(model, features, audio) == pytest.approx(expected, abs=1e-5)


def test_a_family_that_rescales_its_audio_reports_the_density_of_the_clip_as_given():
    family = family_named("flowavenet")
    config = tiny_config("flowavenet")
    model = tiny_model(family, config)
    features = family.features(config.data_config)
    _, audio = inputs(model, batch=1, frames=4, seed=7)
    ll = clip_log_likelihood(model, features, audio[0])
    # x and 0.5 x look the same to the model (peak-normalised); the density of 0.5 x is 2x higher per sample
    assert clip_log_likelihood(model, features, 0.5 * audio[0]) == pytest.approx(ll + math.log(2), abs=1e-4)


def test_units_and_constants_by_hand():
    waveglow, waveflow = family_named("waveglow").model_class, family_named("waveflow").model_class
    # WaveGlow's loss leaves out 0.5 ln 2 pi; WaveFlow's includes it: the same density, two losses
    assert log_likelihood_from_loss(1.0, waveglow) == pytest.approx(-1.0 - 0.5 * math.log(2 * math.pi))
    assert log_likelihood_from_loss(1.0 + 0.5 * math.log(2 * math.pi), waveflow) == pytest.approx(-1.0 - 0.5 * math.log(2 * math.pi))


def test_a_clip_shorter_than_one_hop_is_refused():
    family = family_named("waveglow")
    config = tiny_config("waveglow")
    with pytest.raises(ValueError, match="shorter than one hop"):
        clip_log_likelihood(tiny_model(family, config), family.features(config.data_config), torch.zeros(100))


def test_loss_at_sigma_one_is_what_the_likelihood_negates():
    family = family_named("waveflow")
    config = tiny_config("waveflow")
    model = tiny_model(family, config)
    features = family.features(config.data_config)
    _, audio = inputs(model, batch=1, frames=3, seed=8)
    mel = features(audio)[..., :3]
    loss = family.loss(TrainConfig(sigma=1.0))(model(mel, audio)).item()
    assert clip_log_likelihood(model, features, audio[0]) == pytest.approx(-loss, abs=1e-6)
