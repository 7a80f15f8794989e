"""FloWaveNet: invertibility, log-determinants, the loss, ActNorm's initialisation, reference layout."""

from __future__ import annotations

import math

import pytest
import torch

from waveglow.models.flowavenet import (
    ActNorm,
    AffineCoupling,
    FloWaveNet,
    FloWaveNetConfig,
    FloWaveNetLoss,
    ZeroConv1d,
    initialize,
    squeeze,
    unsqueeze,
)

TINY = dict(n_block=3, n_flow=2, n_layer=2, block_per_split=1, n_channels=16)


def randomize_zero_convs(model: torch.nn.Module, std: float = 0.1) -> torch.nn.Module:
    """Give every zero-initialised ZeroConv1d random weights, so couplings and priors do something."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ZeroConv1d):
                module.conv.weight.normal_(0, std)
                module.conv.bias.normal_(0, std)
                module.scale.normal_(0, std)
    return model


def tiny_model(dtype=torch.float32, **sizes) -> FloWaveNet:
    torch.manual_seed(0)
    return randomize_zero_convs(FloWaveNet(**{**TINY, **sizes})).to(dtype).eval()


def tiny_batch(batch=2, frames=3, dtype=torch.float32, seed=1):
    generator = torch.Generator().manual_seed(seed)
    mel = torch.rand(batch, 80, frames, generator=generator, dtype=dtype)
    audio = 0.3 * torch.randn(batch, 256 * frames, generator=generator, dtype=dtype)
    return mel, audio


# ------------------------------------------------------------------------ reference rendering
# The procedure of ksw0306's Flowavenet.forward / reverse, written out step by step with the
# conditioning carried along and swapped by change_order exactly as there: an independent
# check of FloWaveNet's bookkeeping (per-block conditioning halves, split layout).


def _ref_squeeze(x):
    B, C, T = x.shape
    return x.view(B, C, T // 2, 2).permute(0, 1, 3, 2).contiguous().view(B, 2 * C, T // 2)


def _ref_unsqueeze(x):
    B, C, T = x.shape
    return x.view(B, C // 2, 2, T).permute(0, 1, 3, 2).contiguous().view(B, C // 2, 2 * T)


def _ref_change_order(x, c):
    x_a, x_b = x.chunk(2, 1)
    c_a, c_b = c.chunk(2, 1)
    return torch.cat([x_b, x_a], 1), torch.cat([c_b, c_a], 1)


def reference_forward(model, mel, audio):
    x, c = audio.unsqueeze(1), model.upsample(mel)
    B, _, T = x.shape
    log_p, logdet = 0.0, 0.0
    for block in model.blocks:
        x, c = _ref_squeeze(x), _ref_squeeze(c)
        for flow in block.flows:
            actnorm = flow.actnorm
            x = actnorm.scale * (x + actnorm.loc)
            logdet = logdet + x.size(0) * x.size(2) * torch.log(actnorm.scale.abs()).sum()
            x_a, x_b = x.chunk(2, 1)
            log_s, t = flow.coupling.net(x_a, c.chunk(2, 1)[0]).chunk(2, 1)
            x = torch.cat([x_a, (x_b - t) * torch.exp(-log_s)], 1)
            logdet = logdet - log_s.sum()
            x, c = _ref_change_order(x, c)
        if block.split:
            x, z = x.chunk(2, 1)
            mean, log_sd = block.prior(x, c).chunk(2, 1)
            log_p = log_p + (-0.5 * math.log(2 * math.pi) - log_sd - 0.5 * (z - mean) ** 2 / torch.exp(2 * log_sd)).sum()
    log_p = log_p + (0.5 * (-math.log(2 * math.pi) - x**2)).sum()
    return log_p / (B * T), logdet / (B * T)


def reference_reverse(model, z, mel):
    x, c = z, model.upsample(mel)
    eps = []
    for block in model.blocks:
        x, c = _ref_squeeze(x), _ref_squeeze(c)
        if block.split:
            x, e = x.chunk(2, 1)
            eps.append(e)
    for block in reversed(model.blocks):
        if block.split:
            mean, log_sd = block.prior(x, c).chunk(2, 1)
            x = torch.cat([x, mean + torch.exp(log_sd) * eps.pop()], 1)
        for flow in reversed(block.flows):
            x, c = _ref_change_order(x, c)
            x_a, x_b = x.chunk(2, 1)
            log_s, t = flow.coupling.net(x_a, c.chunk(2, 1)[0]).chunk(2, 1)
            x = torch.cat([x_a, x_b * torch.exp(log_s) + t], 1)
            x = x / flow.actnorm.scale - flow.actnorm.loc
        x, c = _ref_unsqueeze(x), _ref_unsqueeze(c)
    return x


# ----------------------------------------------------------------------------- architecture


def test_default_keys_shapes_and_parameter_count():
    with torch.device("meta"):
        model = FloWaveNet(**FloWaveNetConfig().to_kwargs())
    state = model.state_dict()
    assert len(state) == 2307
    assert sum(t.numel() for t in state.values()) == 182_644_788
    expected = {
        "blocks.0.flows.0.actnorm.loc": (1, 2, 1),
        "blocks.0.flows.0.coupling.net.front_conv.0.conv.weight_v": (256, 1, 3),
        "blocks.0.flows.0.coupling.net.front_conv.0.conv.weight_g": (256, 1, 1),
        "blocks.0.flows.0.coupling.net.res_blocks.0.filter_conv_c.weight_v": (256, 80, 1),
        "blocks.3.prior.res_blocks.0.filter_conv_c.weight_v": (256, 1280, 1),
        "blocks.3.prior.final_conv.3.scale": (1, 16, 1),
        "blocks.3.prior.final_conv.3.conv.weight": (16, 256, 1),
        "upsample_conv.0.weight_v": (1, 1, 3, 32),
        "upsample_conv.2.weight_g": (1, 1, 1, 1),
        "blocks.7.flows.5.coupling.net.res_blocks.1.gate_conv_c.weight_v": (256, 10240, 1),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert [k for k in state if ".prior." in k and not k.startswith("blocks.3.")] == []
    assert model.hop_length == 256 and model.n_mel_channels == 80
    assert model.config == FloWaveNetConfig()


def test_audio_and_conditioning_widths_per_block():
    with torch.device("meta"):
        model = FloWaveNet()
    widths = [block.flows[0].actnorm.loc.size(1) for block in model.blocks]
    assert widths == [2 * c for c in (1, 2, 4, 8, 8, 16, 32, 64)]
    cond = [block.flows[0].coupling.net.res_blocks[0].filter_conv_c.weight_v.size(1) for block in model.blocks]
    assert cond == [80 * 2**k for k in range(8)]  # half of the squeezed conditioning 160 * 2 ** k


def test_upsampler_gives_256_samples_per_frame():
    model = tiny_model()
    assert model.upsample(torch.rand(2, 80, 5)).shape == (2, 80, 1280)


# ------------------------------------------------------------------------------ round trips


def test_actnorm_round_trip_and_logdet():
    torch.manual_seed(0)
    actnorm = ActNorm(4)
    x = torch.randn(2, 4, 10) * 3 + 1
    actnorm.initialize_from(x)
    y, logdet = actnorm(x)
    torch.testing.assert_close(y.mean((0, 2)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std((0, 2)), torch.ones(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(actnorm.inverse(y), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(logdet, 20 * torch.log(actnorm.scale.abs()).sum())


def test_actnorm_inverse_guards_a_zero_scale_and_stays_float32_under_autocast():
    actnorm = ActNorm(2)
    with torch.no_grad():
        actnorm.scale.zero_()
    assert torch.isfinite(actnorm.inverse(torch.ones(1, 2, 3))).all()
    actnorm = ActNorm(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, logdet = actnorm(torch.randn(1, 2, 3) * 1e3 + 1e-3)
    assert y.dtype == torch.float32 and logdet.dtype == torch.float32


def test_coupling_round_trip():
    torch.manual_seed(0)
    coupling = randomize_zero_convs(AffineCoupling(4, 32, num_layers=2, width=16))
    x, c_a = torch.randn(2, 4, 32), torch.randn(2, 16, 32)
    y, _ = coupling(x, c_a)
    assert (y - x).abs().max() > 1e-2  # not the identity
    torch.testing.assert_close(coupling.inverse(y, c_a), x, atol=1e-5, rtol=0)


def test_squeeze_layout_and_round_trip():
    x = torch.arange(2 * 3 * 8.0).view(2, 3, 8)
    s = squeeze(x)
    assert s.shape == (2, 6, 4)
    for c in range(3):
        for j in range(2):
            torch.testing.assert_close(s[:, 2 * c + j], x[:, c, j::2])
    assert torch.equal(unsqueeze(s), x)
    a, b = s.chunk(2, 1)
    assert torch.equal(unsqueeze(torch.cat([a, b], 1)), x)


def test_initialised_round_trip_takes_z_as_b_t_too():
    """The contract's round trip (tests/test_families.py) after ActNorm's initialisation, z (B, T) as well."""
    model = tiny_model()
    mel, audio = tiny_batch()
    initialize(model, mel, audio)
    with torch.no_grad():
        z = model.encode(mel, audio)
    assert z.shape == (2, 1, 768)
    torch.testing.assert_close(model.infer(mel, z=z[:, 0]), audio, atol=1e-5, rtol=0)


def test_forward_and_reverse_match_the_reference_procedure():
    model = tiny_model(torch.float64)
    mel, audio = tiny_batch(dtype=torch.float64)
    initialize(model, mel, audio)
    with torch.no_grad():
        for got, want in zip(model(mel, audio), reference_forward(model, mel, audio)):
            torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
        z = torch.randn(2, 1, 768, dtype=torch.float64)
        torch.testing.assert_close(model.infer(mel, z=z), reference_reverse(model, z, mel)[:, 0], atol=1e-12, rtol=0)


def test_remove_weight_norm_is_exact_and_returns_the_model():
    model = tiny_model()
    mel, _ = tiny_batch()
    z = torch.randn(2, 1, 768)
    before = model.infer(mel, z=z)
    assert model.remove_weight_norm() is model
    assert not any(k.endswith(("weight_g", "weight_v")) for k in model.state_dict())
    torch.testing.assert_close(model.infer(mel, z=z), before, atol=1e-5, rtol=0)


def test_infer_draws_sigma_scaled_noise_from_the_generator():
    model = tiny_model()
    mel, _ = tiny_batch()
    a = model.infer(mel, 0.8, generator=torch.Generator().manual_seed(3))
    z = model.sample_latent(2, 768, 0.8, torch.Generator().manual_seed(3), torch.device("cpu"))
    assert z.shape == (2, 1, 768)
    torch.testing.assert_close(z, 0.8 * torch.randn(2, 1, 768, generator=torch.Generator().manual_seed(3)))
    torch.testing.assert_close(a, model.infer(mel, z=z))


def test_lengths_leave_zeros_past_each_end():
    """Each item runs alone (the contract, tests/test_families.py); past its length the output is zero."""
    model = tiny_model()
    mel, _ = tiny_batch(frames=4)
    z = torch.randn(2, 1, 1024)
    out = model.infer(mel, z=z, lengths=torch.tensor([1024, 512]))
    assert torch.equal(out[1, 512:], torch.zeros(512))
    with pytest.raises(ValueError, match="multiple of 256"):
        model.infer(mel, z=z, lengths=torch.tensor([1000, 512]))


def test_bad_shapes_are_one_line_errors():
    model = tiny_model()
    mel, audio = tiny_batch()
    with pytest.raises(ValueError, match="mel frames give 768 samples, not 512"):
        model(mel, audio[:, :512])
    with pytest.raises(ValueError, match=r"mel must be \(batch, 80, frames\)"):
        model.infer(torch.rand(1, 40, 3))
    with pytest.raises(ValueError, match="not a multiple of 2 \\*\\* n_block"):
        tiny_model(n_block=9).infer(torch.rand(1, 80, 1))


# -------------------------------------------------------------------- log-determinant, loss


def test_flow_logdet_matches_a_brute_force_jacobian():
    model = tiny_model(torch.float64, n_block=1, n_flow=1, n_layer=1, n_channels=8)
    flow = model.blocks[0].flows[0]
    with torch.no_grad():
        flow.actnorm.scale.uniform_(0.5, 2)
    x, c_a = torch.randn(1, 2, 16, dtype=torch.float64), torch.randn(1, 80, 16, dtype=torch.float64)
    _, logdet = flow(x, c_a)
    jacobian = torch.autograd.functional.jacobian(lambda v: flow(v, c_a)[0].flatten(), x).view(32, 32)
    torch.testing.assert_close(logdet.detach(), torch.slogdet(jacobian)[1], atol=1e-10, rtol=0)


def test_loss_at_initialisation_by_hand():
    """Zero ZeroConv1d's and unit ActNorms: the latent is a permutation of the audio."""
    torch.manual_seed(0)
    model = FloWaveNet(**TINY)
    mel, audio = tiny_batch()
    loss = FloWaveNetLoss()(model(mel, audio))
    torch.testing.assert_close(loss, 0.5 * math.log(2 * math.pi) + 0.5 * audio.pow(2).mean())
    assert loss.dtype == torch.float32
