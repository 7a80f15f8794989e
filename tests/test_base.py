"""FlowVocoder's defaults and the family record: what a new family gets without writing it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from waveglow.errors import CheckpointError
from waveglow.family import ModelFamily
from waveglow.models import FlowVocoder, ReceptiveField
from waveglow.registry import family_named


class Minimal(FlowVocoder):
    """The least a model writes for the defaults below: a latent of 3 channels, a 2/5-frame reach."""

    def __init__(self) -> None:
        super().__init__()
        self.hop_length, self.n_mel_channels, self.latent_steps_per_frame = 6, 4, 2
        self.zero = nn.Parameter(torch.zeros(3, 2))
        self.learned = nn.Parameter(torch.ones(3))

    def latent_draws(self) -> list[int]:
        return [1, 2]

    def receptive_field(self) -> ReceptiveField:
        return ReceptiveField(past=2, future=5)


def test_latent_defaults_draw_block_by_block_in_reverse_concatenation():
    model = Minimal()
    z = model.sample_latent(2, 7, 0.5, torch.Generator().manual_seed(3), "cpu")
    g = torch.Generator().manual_seed(3)
    first, second = torch.randn(2, 1, 7, generator=g), torch.randn(2, 2, 7, generator=g)
    assert torch.equal(z, 0.5 * torch.cat([second, first], 1)) and model.latent_channels == 3


def test_inference_defaults():
    model = Minimal()
    assert model.overlap_frames() == 5  # the receptive field's wider side: exact chunking
    assert model.fast() is model and model.fast(low_memory=True) is model and set(model.fast_variants()) == {"fast"}
    assert model.prepare_for_export() is model and model.remove_weight_norm() is model
    assert model.default_sigma == 1.0 and model.denoiser_applies and model.nll_constant == 0.0
    assert model.extra_state() == {} and model.load_extra_state({"anything": 1}) is None
    assert not model.initialize(torch.zeros(1, 4, 1), torch.zeros(1, 6))


def test_perturb_default_draws_only_the_zero_initialised_parameters():
    model = Minimal()
    model.perturb(torch.Generator().manual_seed(0))
    assert model.zero.abs().min() > 0 and model.zero.abs().max() < 0.1
    assert torch.equal(model.learned, torch.ones(3))


def test_refusals_name_the_class_and_the_devices():
    with pytest.raises(CheckpointError, match="Minimal cannot tell its architecture"):
        Minimal.config_from_state_dict({}, "f.pt")
    with pytest.raises(ValueError, match="mel is on meta and the model on cpu"):
        Minimal().check_device("mel", torch.zeros(1, device="meta"))
    with pytest.raises(NotImplementedError):
        Minimal().infer(torch.zeros(1, 4, 1))


def test_the_record_holds_only_what_exists_without_a_model():
    assert len(dataclasses.fields(ModelFamily)) <= 12
    for name in ("waveglow", "flowavenet", "waveflow"):
        family = family_named(name)
        assert issubclass(family.model_class, FlowVocoder) and family.section == f"{name}_config"
