"""The fast inference path (waveglow/fast.py, FastWaveGlow) against the plain reference path (model.infer)."""

import copy

import pytest
import torch

from waveglow import WaveGlow
from waveglow.models.waveglow.fast import (
    ACTS_SCALE, GATE_SCALE, FastWaveGlow, StaleWeightsError, gate_time_major, gate_time_major_, gate_time_major_tanh_,
    select_gate,
)
from waveglow.models.waveglow import gated_activation

from conftest import randomize_end


def randomize_biases(model: WaveGlow, std: float = 0.1) -> WaveGlow:
    """Non-zero biases everywhere, so the folded biases and padded edges are exercised too."""
    with torch.no_grad():
        model.upsample.bias.normal_(0, std)
        for wn in model.WN:
            for layer in (wn.start, wn.cond_layer, *wn.in_layers, *wn.res_skip_layers):
                layer.bias.normal_(0, std)
    return model


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture
def model(tiny_model):
    return randomize_biases(tiny_model)


def fast(model: WaveGlow, cache_conditioning: bool = False, fold_min_steps: int | None = None) -> FastWaveGlow:
    vocoder = FastWaveGlow(model, cache_conditioning)
    if fold_min_steps is not None:
        vocoder.ops.fold_min_steps = fold_min_steps
    return vocoder


@pytest.mark.parametrize("conditioning", ["plain", "folded", "cached"])
def test_fast_matches_plain(model, conditioning):
    vocoder = fast(model, conditioning == "cached", 0 if conditioning == "folded" else 10**9)
    assert vocoder.ops.uses_folding(1, 8) == (conditioning != "plain")
    mel = torch.randn(2, 80, 9)
    z = torch.randn(2, 8, 9 * 32)
    plain0, plainz = model.infer(mel, sigma=0.0), model.infer(mel, z=z)
    assert plain0.abs().max() > 1e-3 and relative_error(plainz, model.infer(mel, z=z * 0)) > 1e-2
    assert relative_error(vocoder.infer(mel, sigma=0.0), plain0) < 1e-5
    assert relative_error(vocoder.infer(mel, z=z), plainz) < 1e-5


@pytest.mark.parametrize("steps", [1, 2, 37, 250, 300])  # n below the taps, mid-hop, past 256 * frames
def test_fast_matches_plain_at_odd_lengths(model, steps):
    mel, z = torch.randn(1, 80, 9), torch.randn(1, 8, steps)
    assert relative_error(fast(model, fold_min_steps=0).infer(mel, z=z), model.infer(mel, z=z)) < 1e-5


def test_fast_draws_the_same_noise(model):
    mel = torch.randn(1, 80, 5)
    fast_audio = fast(model).infer(mel, sigma=0.7, generator=torch.Generator().manual_seed(3))
    plain = model.infer(mel, sigma=0.7, generator=torch.Generator().manual_seed(3))
    assert relative_error(fast_audio, plain) < 1e-5


def test_unequal_lengths_run_the_masked_plain_path(model):
    """The fast operators do not mask: a batch with lengths= is the model's masked path, exactly."""
    mel = torch.randn(2, 80, 6)
    z = torch.randn(2, 8, 6 * 32)
    lengths = torch.tensor([6 * 256, 4 * 256])
    masked = fast(model, fold_min_steps=0).infer(mel, z=z, lengths=lengths)
    assert torch.equal(masked, model.infer(mel, z=z, lengths=lengths))
    alone = model.infer(mel[1:, :, :4], z=z[1:, :, : 4 * 32])
    assert relative_error(masked[1:, : 4 * 256], alone) < 1e-5


@pytest.mark.parametrize("n_group, kernel_size", [(6, 5), (4, 3)])
def test_fast_other_architectures(n_group, kernel_size):
    """n_group 6 does not divide the hop 256 (plain conditioning, hop 252); kernel 5 pads two steps each side."""
    torch.manual_seed(5)
    hop = 256 - 256 % n_group
    model = WaveGlow(
        n_mel_channels=80, n_flows=3, n_group=n_group, n_early_every=2, n_early_size=2,
        WN_config={"n_layers": 3, "n_channels": 8, "kernel_size": kernel_size}, upsample_stride=hop,
    )
    model = randomize_biases(randomize_end(model)).eval()
    vocoder = fast(model, fold_min_steps=0)
    assert (vocoder.ops.upsampler is None) == (1024 % hop != 0)
    mel = torch.randn(2, 80, 4)
    for steps in (1, 3, 100):
        z = torch.randn(2, n_group, steps)
        assert relative_error(vocoder.infer(mel, z=z), model.infer(mel, z=z)) < 1e-5


@pytest.mark.parametrize("hop, kernel", [(200, 800), (300, 1200), (240, 1024)])
def test_fast_follows_the_upsampler_of_other_hops(hop, kernel):
    """16 kHz (hop 200) and 24 kHz (hop 300) recipes; a kernel that is no multiple of the hop uses plain conditioning."""
    torch.manual_seed(2)
    model = randomize_biases(randomize_end(WaveGlow(
        n_mel_channels=80, n_flows=2, n_group=4, n_early_every=4, n_early_size=2,
        WN_config={"n_layers": 2, "n_channels": 8, "kernel_size": 3}, upsample_kernel=kernel, upsample_stride=hop,
    ))).eval()
    mel = torch.randn(1, 80, 5)
    plain = model.infer(mel, sigma=0.0)
    assert plain.shape == (1, 5 * hop)
    assert relative_error(fast(model, fold_min_steps=0).infer(mel, sigma=0.0), plain) < 1e-5


def test_fast_with_and_without_weight_norm(model):
    mel = torch.randn(1, 80, 6)
    with_norm = fast(model).infer(mel, sigma=0.0)
    assert relative_error(with_norm, model.infer(mel, sigma=0.0)) < 1e-5
    model.remove_weight_norm()
    assert relative_error(fast(model).infer(mel, sigma=0.0), with_norm) < 1e-5


def _optimizer_step(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 0.01
    optimizer.step()


def _load_other_weights(model):
    other = randomize_end(copy.deepcopy(model), std=0.2)
    model.load_state_dict(other.state_dict())


CHANGES = {
    "optimizer step": _optimizer_step,
    "load_state_dict": _load_other_weights,
    "to(float64)": lambda m: m.to(torch.float64),
    "half()": lambda m: m.half(),
    "remove_weight_norm()": lambda m: m.remove_weight_norm(),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_changed_weights_refuse_and_a_new_object_is_fresh(model, change):
    """Every way a user changes weights makes the old FastWaveGlow refuse; a new one equals the plain path."""
    mel = torch.randn(1, 80, 6)
    vocoder = fast(model, cache_conditioning=True)
    vocoder.infer(mel, sigma=0.0)
    with torch.no_grad():
        CHANGES[change](model)
    with pytest.raises(StaleWeightsError, match="build a new FastWaveGlow"):
        vocoder.infer(mel, sigma=0.0)
    dtype = next(model.parameters()).dtype
    fresh = fast(model, cache_conditioning=True).infer(mel.to(dtype), sigma=0.0).float()
    plain = model.infer(mel.to(dtype), sigma=0.0).float()
    assert relative_error(fresh, plain) < (2e-2 if dtype == torch.float16 else 1e-5)


def test_unchanged_weights_keep_the_object_valid(model):
    mel = torch.randn(1, 80, 6)
    vocoder = fast(model)
    before = vocoder.infer(mel, sigma=0.0)
    model.to("cpu").eval()  # no parameter replaced
    torch.testing.assert_close(vocoder.infer(mel, sigma=0.0), before)


def test_a_copy_gets_its_own_object(model):
    mel = torch.randn(1, 80, 6)
    copied = copy.deepcopy(model)
    _load_other_weights(copied)
    assert relative_error(fast(copied).infer(mel, sigma=0.0), copied.infer(mel, sigma=0.0)) < 1e-5
    assert relative_error(fast(model).infer(mel, sigma=0.0), model.infer(mel, sigma=0.0)) < 1e-5


def test_the_model_keeps_nothing_derived(model):
    keys, attributes = list(model.state_dict()), set(vars(model))
    fast(model, cache_conditioning=True).infer(torch.randn(1, 80, 3))
    assert list(model.state_dict()) == keys and set(vars(model)) == attributes
    import sys

    import waveglow.models.waveglow.model as module

    assert "fast" not in {name.rsplit(".", 1)[-1] for name in vars(module) if isinstance(vars(module)[name], type(sys))}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script, used on CUDA only
def test_gates_match_plain():
    x = torch.randn(2, 12, 30)  # (B, 2C, n)
    expected = ACTS_SCALE * gated_activation(x, 6)[0].t()
    time_major = x[0].t().clone()  # (n, 2C)
    time_major[:, :6] *= GATE_SCALE  # the fast path stores the tanh half scaled
    scripted = torch.jit.script(gate_time_major)(time_major, 6)
    torch.testing.assert_close(scripted, expected, atol=2e-7, rtol=0)
    torch.testing.assert_close(gate_time_major_(time_major.clone(), 6), expected, atol=2e-7, rtol=0)
    torch.testing.assert_close(gate_time_major_tanh_(time_major.clone(), 6), expected, atol=2e-7, rtol=0)
    assert select_gate(torch.device("cpu"), torch.float32) is gate_time_major_


def test_half_precision_gate_keeps_small_activations():
    """In bfloat16 the sigmoid form's subtraction leaves nothing of a small tanh input; tanh keeps it."""
    a = torch.full((64, 4), 1e-3)  # small tanh-half inputs, where trained WN layers often sit
    x = torch.cat([GATE_SCALE * a, torch.zeros(64, 4)], 1)  # sigmoid half 0: sigmoid = 1/2
    expected = ACTS_SCALE * torch.tanh(a) * 0.5
    gate = select_gate(torch.device("cpu"), torch.bfloat16)
    assert gate is gate_time_major_tanh_
    kept = gate(x.bfloat16(), 4).float()
    assert ((kept - expected).abs() / expected).max() < 1e-2  # bfloat16's own rounding
    lost = gate_time_major_(x.bfloat16(), 4).float()
    assert ((lost - expected).abs() / expected).max() > 0.5  # why half types do not use it


@pytest.mark.parametrize("dtype, floor_db", [(torch.float16, 55.0), (torch.bfloat16, 38.0)])
def test_fast_path_in_half_precision_is_as_accurate_as_plain(model, dtype, floor_db):
    mel = torch.randn(1, 80, 60, generator=torch.Generator().manual_seed(5)) - 5
    reference = model.infer(mel, sigma=0.0)  # float32

    def snr(audio):
        return 10 * torch.log10(reference.pow(2).sum() / (audio.float() - reference).pow(2).sum()).item()

    half = copy.deepcopy(model).to(dtype)
    plain = snr(half.infer(mel.to(dtype), sigma=0.0))
    folded = snr(fast(half).infer(mel.to(dtype), sigma=0.0))
    cached = snr(fast(half, cache_conditioning=True).infer(mel.to(dtype), sigma=0.0))
    assert plain > floor_db and folded > plain - 1.0 and cached > plain - 1.0


def test_model_copied_inside_inference_mode():
    """Parameters made under inference_mode keep no version counter; FastWaveGlow must not need one."""
    torch.manual_seed(0)
    base = randomize_end(WaveGlow(n_mel_channels=80, n_flows=4, n_group=8, n_early_every=2, n_early_size=2,
                                  WN_config={"n_layers": 2, "n_channels": 16, "kernel_size": 3})).eval()
    mel = torch.randn(1, 80, 12)
    expected = base.infer(mel, sigma=0.0).double()
    with torch.inference_mode():
        model = copy.deepcopy(base).double()  # every parameter an inference tensor
        with pytest.raises(RuntimeError, match="version counter"):
            next(model.parameters())._version
        vocoder = FastWaveGlow(model)
        torch.testing.assert_close(vocoder.infer(mel.double(), sigma=0.0), expected)
        torch.testing.assert_close(vocoder.infer(mel.double(), sigma=0.0), expected)  # the same object again
