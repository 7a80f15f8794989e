"""The fast inference path (waveglow/fast.py) against the plain reference path."""

import copy

import pytest
import torch

from waveglow import WaveGlow
from waveglow.fast import ACTS_SCALE, GATE_SCALE, gate_time_major, gate_time_major_, gate_time_major_tanh_, select_gate
from waveglow.model import Invertible1x1Conv, gated_activation

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


@pytest.mark.parametrize("conditioning", ["plain", "folded", "cached"])
def test_fast_matches_plain(model, conditioning):
    ops = model.fast_inference(cache_conditioning=conditioning == "cached")
    ops.fold_min_steps = 0 if conditioning == "folded" else 10**9
    assert ops.uses_folding(1, 8) == (conditioning != "plain")
    mel = torch.randn(2, 80, 9)
    z = torch.randn(2, 8, 9 * 32)
    plain0, plainz = model.infer(mel, sigma=0.0, fast=False), model.infer(mel, z=z, fast=False)
    assert plain0.abs().max() > 1e-3 and relative_error(plainz, model.infer(mel, z=z * 0)) > 1e-2
    assert relative_error(model.infer(mel, sigma=0.0), plain0) < 1e-5
    assert relative_error(model.infer(mel, z=z), plainz) < 1e-5


@pytest.mark.parametrize("steps", [1, 2, 37, 250, 300])  # n below the taps, mid-hop, past 256 * frames
def test_fast_matches_plain_at_odd_lengths(model, steps):
    model.fast_inference().fold_min_steps = 0
    mel, z = torch.randn(1, 80, 9), torch.randn(1, 8, steps)
    assert relative_error(model.infer(mel, z=z), model.infer(mel, z=z, fast=False)) < 1e-5


def test_fast_draws_the_same_noise(model):
    mel = torch.randn(1, 80, 5)
    fast = model.infer(mel, sigma=0.7, generator=torch.Generator().manual_seed(3))
    plain = model.infer(mel, sigma=0.7, generator=torch.Generator().manual_seed(3), fast=False)
    assert relative_error(fast, plain) < 1e-5


@pytest.mark.parametrize("n_group, kernel_size", [(6, 5), (4, 3)])
def test_fast_other_architectures(n_group, kernel_size):
    """n_group 6 does not divide the hop (plain conditioning); kernel 5 pads two steps each side."""
    torch.manual_seed(5)
    model = WaveGlow(
        n_mel_channels=80, n_flows=3, n_group=n_group, n_early_every=2, n_early_size=2,
        WN_config={"n_layers": 3, "n_channels": 8, "kernel_size": kernel_size},
    )
    model = randomize_biases(randomize_end(model)).eval()
    model.fast_inference().fold_min_steps = 0
    assert (model.fast_inference().upsampler is None) == (256 % n_group != 0)
    mel = torch.randn(2, 80, 4)
    for steps in (1, 3, 100):
        z = torch.randn(2, n_group, steps)
        assert relative_error(model.infer(mel, z=z), model.infer(mel, z=z, fast=False)) < 1e-5


def test_fast_with_and_without_weight_norm(model):
    mel = torch.randn(1, 80, 6)
    with_norm = model.infer(mel, sigma=0.0)
    assert relative_error(with_norm, model.infer(mel, sigma=0.0, fast=False)) < 1e-5
    model.remove_weight_norm()
    assert relative_error(model.infer(mel, sigma=0.0), with_norm) < 1e-5


def test_fast_operators_never_stale(model):
    mel = torch.randn(1, 80, 6)
    model.infer(mel, sigma=0.0)  # builds the operators and W^-1 caches
    with torch.no_grad():
        model.WN[0].cond_layer.weight_v.mul_(1.5)
        model.convinv[1].conv.weight.mul_(0.9)
        model.upsample.weight.add_(0.01)
    assert relative_error(model.infer(mel, sigma=0.0), model.infer(mel, sigma=0.0, fast=False)) < 1e-5
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()
    assert relative_error(model.infer(mel, sigma=0.0), model.infer(mel, sigma=0.0, fast=False)) < 1e-5
    other = randomize_end(WaveGlow(**{k: getattr(model, k) for k in
                                      ("n_mel_channels", "n_flows", "n_group", "n_early_every", "n_early_size")},
                                   WN_config=model.WN_config), std=0.2)
    model.load_state_dict(other.state_dict())
    assert relative_error(model.infer(mel, sigma=0.0), model.infer(mel, sigma=0.0, fast=False)) < 1e-5


def test_fast_cache_is_not_state(model):
    keys = list(model.state_dict())
    count = sum(p.numel() for p in model.parameters())
    model.fast_inference(cache_conditioning=True)
    model.infer(torch.randn(1, 80, 3))
    assert list(model.state_dict()) == keys
    assert sum(p.numel() for p in model.parameters()) == count
    assert model.fast_inference() is model.fast_inference()  # reused while nothing changes


def test_inverse_weight_cache():
    torch.manual_seed(1)
    conv = Invertible1x1Conv(4)
    first = conv.inverse_weight(torch.float32)
    assert conv.inverse_weight(torch.float32) is first
    with torch.no_grad():
        conv.conv.weight.mul_(2.0)
    W = conv.conv.weight.squeeze(-1)
    torch.testing.assert_close(conv.inverse_weight(torch.float32).squeeze(-1) @ W, torch.eye(4), atol=1e-5, rtol=0)
    assert conv.inverse_weight(torch.float64).dtype == torch.float64


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
    reference = model.infer(mel, sigma=0.0, fast=False)  # float32

    def snr(audio):
        return 10 * torch.log10(reference.pow(2).sum() / (audio.float() - reference).pow(2).sum()).item()

    half = copy.deepcopy(model).to(dtype)
    plain = snr(half.infer(mel.to(dtype), sigma=0.0, fast=False))
    fast = snr(half.infer(mel.to(dtype), sigma=0.0))
    half.fast_inference(cache_conditioning=True)
    cached = snr(half.infer(mel.to(dtype), sigma=0.0))
    assert plain > floor_db and fast > plain - 1.0 and cached > plain - 1.0


def test_model_copied_inside_inference_mode():
    """Parameters made under inference_mode keep no version counter; the caches must not need one."""
    torch.manual_seed(0)
    base = randomize_end(WaveGlow(n_mel_channels=80, n_flows=4, n_group=8, n_early_every=2, n_early_size=2,
                                  WN_config={"n_layers": 2, "n_channels": 16, "kernel_size": 3})).eval()
    mel = torch.randn(1, 80, 12)
    expected = base.infer(mel, sigma=0.0, fast=False).double()
    with torch.inference_mode():
        model = copy.deepcopy(base).double()  # every parameter an inference tensor
        with pytest.raises(RuntimeError, match="version counter"):
            next(model.parameters())._version
        torch.testing.assert_close(model.infer(mel.double(), sigma=0.0), expected)
        torch.testing.assert_close(model.infer(mel.double(), sigma=0.0), expected)  # from the caches
