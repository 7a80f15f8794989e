import os

import pytest
import torch

from waveglow import WaveGlow, WaveGlowLoss, load_config
from waveglow.models.waveglow import WN, Invertible1x1Conv, affine_coupling, affine_coupling_inverse, fold, unfold

from conftest import CONFIGS, randomize_end


def test_invertible_1x1_conv_round_trip_and_logdet():
    torch.manual_seed(1)
    conv = Invertible1x1Conv(6)
    with torch.no_grad():
        conv.conv.weight.add_(0.3 * torch.randn_like(conv.conv.weight))  # no longer orthogonal
    z = torch.randn(3, 6, 50)
    out, log_det = conv(z)
    torch.testing.assert_close(conv.inverse(out), z, atol=1e-5, rtol=0)
    W = conv.conv.weight.squeeze(-1).double()
    assert log_det.item() == pytest.approx(3 * 50 * torch.linalg.slogdet(W)[1].item(), rel=1e-5)


def test_1x1_init_is_rotation():
    conv = Invertible1x1Conv(8)
    W = conv.conv.weight.squeeze(-1)
    assert torch.det(W).item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(W @ W.T, torch.eye(8), atol=1e-5, rtol=0)


def test_one_coupling_round_trip():
    """The model's own coupling and its inverse (the functions forward and the reverse loop call)."""
    torch.manual_seed(2)
    wn = WN(2, 16, n_layers=3, n_channels=8, kernel_size=3)
    torch.nn.init.normal_(wn.end.weight, std=0.2)
    audio, spect = torch.randn(2, 4, 40), torch.randn(2, 16, 40)
    coupled, log_s = affine_coupling(audio, lambda a0: wn(a0, spect))
    assert log_s.abs().max() > 1e-3 and (coupled[:, 2:] - audio[:, 2:]).abs().max() > 1e-3  # not the identity
    torch.testing.assert_close(coupled[:, :2], audio[:, :2])  # the conditioning half passes through
    torch.testing.assert_close(affine_coupling_inverse(coupled, lambda a0: wn(a0, spect)), audio, atol=1e-5, rtol=0)


@pytest.mark.parametrize("length", [1000, 8])
def test_model_round_trip_at_lengths_of_no_whole_frame(tiny_model, length):
    """Whole frames are the family contract (tests/test_families.py); WaveGlow takes any multiple of n_group."""
    torch.manual_seed(3)
    mel = torch.randn(2, 80, 9)
    audio = 0.5 * torch.randn(2, length)
    z, log_s_list, _ = tiny_model(mel, audio)
    assert z.shape == (2, 8, length // 8)
    assert max(s.abs().max() for s in log_s_list) > 1e-3
    torch.testing.assert_close(tiny_model.infer(mel, z=z), audio, atol=1e-5, rtol=0)


def test_infer_shapes_and_noise(tiny_model):
    mel = torch.randn(2, 80, 7)
    audio = tiny_model.infer(mel, sigma=0.6, generator=torch.Generator().manual_seed(5))
    assert audio.shape == (2, 256 * 7)
    again = tiny_model.infer(mel, sigma=0.6, generator=torch.Generator().manual_seed(5))
    assert torch.equal(audio, again)
    assert not torch.equal(audio, tiny_model.infer(mel, sigma=0.6, generator=torch.Generator().manual_seed(6)))
    # sigma 0: deterministic regardless of the generator
    assert torch.equal(tiny_model.infer(mel, sigma=0.0), tiny_model.infer(mel, sigma=0.0))


def test_noise_follows_reference_order(tiny_model):
    """Final channels first, then early blocks from the last flow backwards."""
    mel = torch.randn(1, 80, 3)
    n = 256 * 3 // 8
    g = torch.Generator().manual_seed(9)
    final = torch.randn(1, 6, n, generator=g)
    early = torch.randn(1, 2, n, generator=g)  # the tiny model has one early exit
    expected = tiny_model.infer(mel, z=0.7 * torch.cat([early, final], 1))
    torch.testing.assert_close(tiny_model.infer(mel, sigma=0.7, generator=torch.Generator().manual_seed(9)), expected)


def test_wrong_inputs_raise(tiny_model):
    with pytest.raises(ValueError, match="80"):
        tiny_model.infer(torch.randn(1, 40, 5))
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny_model(torch.randn(1, 80, 5), torch.randn(1, 1001))
    with pytest.raises(ValueError, match="fewer than"):
        tiny_model(torch.randn(1, 80, 2), torch.randn(1, 4096))
    meta = tiny_model.to("meta")  # another device (tests/test_families.py checks infer): forward names it too
    with pytest.raises(ValueError, match=r"mel is on cpu and the model on meta: move it with mel.to\('meta'\)"):
        meta(torch.randn(1, 80, 5), torch.empty(1, 1024, device="meta"))


def test_fold_layout():
    x = torch.arange(2 * 3 * 16, dtype=torch.float32).view(2, 3, 16)
    folded = fold(x, 8)
    assert folded.shape == (2, 24, 2)
    # channel c * 8 + j, step t holds x[:, c, t * 8 + j]
    assert folded[1, 2 * 8 + 5, 1] == x[1, 2, 8 + 5]
    assert torch.equal(unfold(fold(x[:, :1], 8)), x[:, 0])


def test_loss_matches_hand_computation():
    z = torch.randn(2, 8, 5)
    log_s_list = [torch.randn(2, 4, 5), torch.randn(2, 2, 5)]
    log_det_W_list = [torch.tensor(0.3), torch.tensor(-1.2)]
    sigma = 0.8
    by_hand = (
        (z**2).sum() / (2 * sigma**2) - (log_s_list[0].sum() + log_s_list[1].sum()) - (0.3 - 1.2)
    ) / (2 * 8 * 5)
    loss = WaveGlowLoss(sigma)((z, log_s_list, log_det_W_list))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_loss_at_init_is_half_mean_square(tiny_config):
    torch.manual_seed(0)
    model = WaveGlow(**tiny_config.waveglow_config.to_kwargs())  # zero `end`: couplings are the identity
    audio = 0.3 * torch.randn(2, 1024)
    loss = WaveGlowLoss()(model(torch.randn(2, 80, 5), audio))
    assert loss.item() == pytest.approx((audio**2).mean().item() / 2, rel=1e-4)


def test_remove_weight_norm_keeps_outputs(tiny_model):
    mel = torch.randn(1, 80, 4)
    before = tiny_model.infer(mel, sigma=0.0)
    assert tiny_model.remove_weight_norm() is tiny_model
    assert not any(k.endswith("weight_g") for k in tiny_model.state_dict())
    torch.testing.assert_close(tiny_model.infer(mel, sigma=0.0), before, atol=1e-5, rtol=1e-4)


def _reference_listing(n_channels: int) -> dict:
    """REFERENCE section 7: every state-dict key and shape of the default architecture."""
    C, keys = n_channels, {"upsample.weight": (80, 80, 1024), "upsample.bias": (80,)}
    for k in range(12):
        h, c = (4, 8) if k < 4 else (3, 6) if k < 8 else (2, 4)
        for i in range(8):
            keys[f"WN.{k}.in_layers.{i}.bias"] = (2 * C,)
            keys[f"WN.{k}.in_layers.{i}.weight_g"] = (2 * C, 1, 1)
            keys[f"WN.{k}.in_layers.{i}.weight_v"] = (2 * C, C, 3)
            out = 2 * C if i < 7 else C
            keys[f"WN.{k}.res_skip_layers.{i}.bias"] = (out,)
            keys[f"WN.{k}.res_skip_layers.{i}.weight_g"] = (out, 1, 1)
            keys[f"WN.{k}.res_skip_layers.{i}.weight_v"] = (out, C, 1)
        keys[f"WN.{k}.start.bias"] = (C,)
        keys[f"WN.{k}.start.weight_g"] = (C, 1, 1)
        keys[f"WN.{k}.start.weight_v"] = (C, h, 1)
        keys[f"WN.{k}.end.weight"] = (2 * h, C, 1)
        keys[f"WN.{k}.end.bias"] = (2 * h,)
        keys[f"WN.{k}.cond_layer.bias"] = (16 * C,)
        keys[f"WN.{k}.cond_layer.weight_g"] = (16 * C, 1, 1)
        keys[f"WN.{k}.cond_layer.weight_v"] = (16 * C, 640, 1)
        keys[f"convinv.{k}.conv.weight"] = (c, c, 1)
    return keys


def test_default_model_counts_keys_and_round_trip():
    config = load_config(os.path.join(CONFIGS, "config.json"))
    torch.manual_seed(0)
    model = WaveGlow(**config.waveglow_config.to_kwargs())
    assert sum(p.numel() for p in model.parameters()) == 87_879_272
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(state) == 686
    assert state == _reference_listing(256)

    randomize_end(model, std=0.02).eval()
    mel = torch.randn(1, 80, 8)
    audio = 0.3 * torch.randn(1, 2048)
    with torch.no_grad():
        z = model(mel, audio)[0]
    torch.testing.assert_close(model.infer(mel, z=z), audio, atol=1e-4, rtol=0)
    model.remove_weight_norm()
    assert sum(p.numel() for p in model.parameters()) == 87_731_816


def test_paper_model_parameter_count():
    config = load_config(os.path.join(CONFIGS, "config_paper.json"))
    model = WaveGlow(**config.waveglow_config.to_kwargs())
    assert sum(p.numel() for p in model.parameters()) == 268_294_760
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == _reference_listing(512)


def test_invalid_architecture_is_rejected():
    with pytest.raises(ValueError, match="even channel count"):
        WaveGlow(80, n_flows=4, n_group=8, n_early_every=1, n_early_size=3,
                 WN_config={"n_layers": 2, "n_channels": 8, "kernel_size": 3})


cuda = pytest.mark.cuda


@cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_inference_close_to_fp32(tiny_config, dtype):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = randomize_end(WaveGlow(**tiny_config.waveglow_config.to_kwargs()), std=0.02).cuda().eval()
    model.remove_weight_norm()
    mel = torch.randn(1, 80, 20, device="cuda")
    reference = model.infer(mel, sigma=0.0).float()
    low = model.to(dtype).infer(mel.to(dtype), sigma=0.0).float()
    assert torch.isfinite(low).all()
    error = (low - reference).norm() / reference.norm()
    assert error < (2e-2 if dtype == torch.bfloat16 else 5e-3)
