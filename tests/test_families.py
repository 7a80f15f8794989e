"""The family contract: what the shared tools rely on, checked the same way for every registered family.

Each ``check_*`` takes a family and a tiny config of it; the tests below run them on the families
shipped with the package, and tests/test_third_family.py runs them on a family it registers itself.
"""

from __future__ import annotations

import os

import pytest
import torch
from conftest import CONFIGS

from waveglow.checkpoint import build_model, load_checkpoint, save_checkpoint
from waveglow.config import Config, TrainConfig, config_from_dict, load_config
from waveglow.errors import StaleWeightsError
from waveglow.export import export_torchscript, verify_export
from waveglow.registry import FAMILIES, ModelFamily, family_named, family_of

FRAMES = 3  # mel frames of the test inputs


def tiny_config(name: str) -> Config:
    """A model of a few thousand parameters per shipped family."""
    if name == "waveglow":
        return load_config(os.path.join(CONFIGS, "tiny.json"))
    if name == "waveflow":
        return config_from_dict({
            "waveflow_config": {"res_channels": 8, "n_height": 4, "n_layer": 2, "n_flow": 3, "coupling_type": "waveflow"},
            "data_config": {"segment_length": 1024},
        })
    return config_from_dict({
        "flowavenet_config": {"n_block": 3, "n_flow": 2, "n_layer": 2, "block_per_split": 1, "n_channels": 16},
        "data_config": {"segment_length": 1024, "mel_fmin": 125.0, "mel_fmax": 7600.0},
    })


def tiny_model(family: ModelFamily, config: Config, dtype: torch.dtype = torch.float32, seed: int = 0):
    """A fresh model whose zero-initialised output layers are drawn small: no coupling is the identity."""
    torch.manual_seed(seed)
    model = build_model(config)
    model.perturb(torch.Generator().manual_seed(seed))
    return model.to(dtype).eval()


def inputs(model, batch: int = 2, frames: int = FRAMES, dtype: torch.dtype = torch.float32, seed: int = 1):
    """A log-mel-like mel (B, n_mel, F) and audio (B, hop F) of amplitude 0.3."""
    gen = torch.Generator().manual_seed(seed)
    mel = torch.randn(batch, model.n_mel_channels, frames, generator=gen) - 5.0
    audio = 0.3 * torch.randn(batch, model.hop_length * frames, generator=gen)
    return mel.to(dtype), audio.to(dtype)


def latent(model, batch: int, frames: int, seed: int = 2) -> torch.Tensor:
    return model.sample_latent(batch, frames * model.latent_steps_per_frame, 0.8, torch.Generator().manual_seed(seed),
                               torch.device("cpu"))


# ------------------------------------------------------------------------------ the checks


def check_round_trip(family: ModelFamily, config: Config) -> None:
    """infer(mel, z=encode(mel, audio)) == audio in float32, through couplings that are not the identity."""
    model = tiny_model(family, config)
    mel, audio = inputs(model)
    with torch.no_grad():
        z = model.encode(mel, audio)
    assert z.shape == latent(model, 2, FRAMES).shape
    assert (z.reshape(2, -1) - audio).abs().max() > 1e-2  # the flow changed the audio
    torch.testing.assert_close(model.infer(mel, z=z), audio, atol=1e-5, rtol=0)


def check_log_determinant(family: ModelFamily, config: Config) -> None:
    """The loss (train sigma 1) is -log N(z; 0, 1) - log|det dz/daudio| per sample, the Jacobian by brute force."""
    model = tiny_model(family, config, torch.float64, seed=3)
    mel, audio = inputs(model, batch=1, frames=1, dtype=torch.float64, seed=4)
    loss = family.loss(TrainConfig(sigma=1.0))(model(mel, audio)).double()
    jacobian = torch.autograd.functional.jacobian(lambda a: model.encode(mel, a.view(1, -1)).flatten(), audio.flatten())
    z = model.encode(mel, audio)
    n = audio.numel()
    expected = (0.5 * (z**2).sum() - torch.linalg.slogdet(jacobian)[1]) / n + model.nll_constant
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-8)  # losses sum in float32


def check_fast_path(family: ModelFamily, config: Config) -> None:
    """The model's fast inference object computes what infer does, and refuses weights changed after it was built."""
    model = tiny_model(family, config).remove_weight_norm()
    mel, _ = inputs(model)
    z = latent(model, 2, FRAMES)
    fast = model.fast()
    if fast is model:  # no fast path: the model is its own
        return
    assert fast.model is model and fast.default_sigma == model.default_sigma
    assert fast.overlap_frames() == model.overlap_frames() and fast.latent_draws() == model.latent_draws()
    assert fast.hop_length == model.hop_length and fast.n_mel_channels == model.n_mel_channels
    assert family_of(fast) is family
    torch.testing.assert_close(fast.infer(mel, z=z), model.infer(mel, z=z), atol=1e-5, rtol=1e-5)
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    torch.testing.assert_close(fast.infer(mel, 0.7, generator=gen()), model.infer(mel, 0.7, generator=gen()),
                               atol=1e-5, rtol=1e-5)
    lengths = torch.tensor([FRAMES * model.hop_length, model.hop_length])
    torch.testing.assert_close(fast.infer(mel, z=z, lengths=lengths), model.infer(mel, z=z, lengths=lengths),
                               atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    with pytest.raises(StaleWeightsError, match=f"build a new {type(fast).__name__}"):
        fast.infer(mel, z=z)


def check_lengths(family: ModelFamily, config: Config) -> None:
    """A padded batch with ``lengths`` gives each item, up to its length, what it gives alone."""
    model = tiny_model(family, config)
    long_mel, _ = inputs(model, batch=1, frames=4, seed=6)
    short_mel, _ = inputs(model, batch=1, frames=2, seed=7)
    long_z, short_z = latent(model, 1, 4, seed=8), latent(model, 1, 2, seed=9)
    mel = torch.full((2, model.n_mel_channels, 4), model.silence_feature)
    mel[0], mel[1, :, :2] = long_mel[0], short_mel[0]
    z = torch.zeros(2, *long_z.shape[1:])
    z[0], z[1, ..., : short_z.size(-1)] = long_z[0], short_z[0]
    hop = model.hop_length
    batch = model.infer(mel, z=z, lengths=torch.tensor([4 * hop, 2 * hop]))
    assert batch.shape == (2, 4 * hop)
    torch.testing.assert_close(batch[0], model.infer(long_mel, z=long_z)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batch[1, : 2 * hop], model.infer(short_mel, z=short_z)[0], atol=1e-5, rtol=0)
    unmasked = model.infer(mel, z=z)
    assert (unmasked[1, : 2 * hop] - batch[1, : 2 * hop]).abs().max() > 1e-4  # lengths= is what makes them equal


def check_device_placement(family: ModelFamily, config: Config) -> None:
    """A model on another device (meta: CUDA's errors without a GPU) names both devices; inputs there run there."""
    model = tiny_model(family, config).to("meta")
    mel = torch.randn(1, model.n_mel_channels, FRAMES)
    with pytest.raises(ValueError, match="mel is on cpu and the model on meta"):
        model.infer(mel)
    z = latent(model, 1, FRAMES)
    with pytest.raises(ValueError, match="z is on cpu and the model on meta"):
        model.infer(mel.to("meta"), z=z)
    audio = model.infer(mel.to("meta"), z=z.to("meta"))
    assert audio.device.type == "meta" and audio.shape == (1, model.hop_length * FRAMES)


def check_checkpoint(family: ModelFamily, config: Config, tmp_path) -> None:
    """save_checkpoint then load_checkpoint: the same family, keys, weights and output."""
    model = tiny_model(family, config)
    path = save_checkpoint(tmp_path / f"{family.name}.pt", model, config, iteration=7)
    loaded = load_checkpoint(path)
    assert family_of(loaded) is family and not loaded.training
    assert list(loaded.state_dict()) == list(model.state_dict())
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    mel, _ = inputs(model)
    z = latent(model, 2, FRAMES)
    assert torch.equal(loaded.infer(mel, z=z), model.infer(mel, z=z))


def check_export(family: ModelFamily, config: Config, tmp_path) -> None:
    """The exported graph (TorchScript here) reproduces infer at other batch sizes and lengths."""
    model = tiny_model(family, config)
    path = export_torchscript(model, tmp_path / f"{family.name}.pt", data_config=config.data_config)
    result = verify_export(path, model, frames=[2, 5])
    assert set(result.max_abs_diff) == {(1, 2), (2, 2), (1, 5), (2, 5)} and result.worst <= 1e-4


# ------------------------------------------------------------------------------ the shipped families


@pytest.fixture(params=FAMILIES)
def family(request) -> ModelFamily:
    return family_named(request.param)


def test_round_trip(family):
    check_round_trip(family, tiny_config(family.name))


def test_log_determinant_against_a_brute_force_jacobian(family):
    check_log_determinant(family, tiny_config(family.name))


def test_fast_path_equals_plain_path(family):
    check_fast_path(family, tiny_config(family.name))


def test_lengths_mask_makes_batch_members_independent(family):
    check_lengths(family, tiny_config(family.name))


def test_device_placement(family):
    check_device_placement(family, tiny_config(family.name))


def test_checkpoint_save_load(family, tmp_path):
    check_checkpoint(family, tiny_config(family.name), tmp_path)


def test_export_round_trip(family, tmp_path):
    check_export(family, tiny_config(family.name), tmp_path)
