"""WaveFlow and NanoFlow against the facts of L0SG/NanoFlow: configs, keys, parameter counts, loss, files.

The family contract (round trip, log-determinant, fast = plain, checkpoints, export) runs over
this family in tests/test_families.py; here is what is particular to it.
"""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
from conftest import CONFIGS

from waveglow.checkpoint import load_checkpoint, read_checkpoint
from waveglow.config import load_config
from waveglow.errors import CheckpointError, ConfigError
from waveglow.models.waveflow.config import WaveFlowConfig
from waveglow.models.waveflow.fast import FastWaveFlow
from waveglow.models.waveflow.loss import WaveFlowLoss
from waveglow.models.waveflow.model import WaveFlow, fold, receptive_field_samples, unfold
from waveglow.models.waveflow.readers import infer_waveflow_config

PUBLISHED = ["waveflow-h16-r64", "waveflow-h16-r128", "nanoflow-h16-r128-emb512", "nanoflow-h16-r128-emb1024-f16"]
# (state-dict tensors, parameters with weight norm, without), as REFERENCE-WAVEFLOW.md section 3 measured them
COUNTS = {
    "waveflow-h16-r64": (630, 5_950_180, 5_925_090),
    "waveflow-h16-r128": (630, 22_385_892, 22_335_714),
    "nanoflow-h16-r128-emb512": (138, 3_865_188, 3_856_866),
    "nanoflow-h16-r128-emb1024-f16": (170, 4_936_324, 4_928_002),
}
VARIANTS = ["waveflow", "nanoflow", "nanoflow_decomp", "nanoflow_naive"]


def small(coupling_type: str, **overrides) -> WaveFlow:
    """A few-thousand-parameter model in float64 with projections drawn large enough to matter."""
    torch.manual_seed(0)
    kwargs = dict(res_channels=8, n_layer=3, n_flow=4, n_height=8, coupling_type=coupling_type, size_flow_embed=12)
    model = WaveFlow(**{**kwargs, **overrides}).double()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for name, p in model.named_parameters():
            if "proj_log_s_t" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()


def mel_audio(frames: int = 4, batch: int = 2, seed: int = 2):
    gen = torch.Generator().manual_seed(seed)
    mel = torch.randn(batch, 80, frames, generator=gen, dtype=torch.float64) - 5
    return mel, 0.3 * torch.randn(batch, 256 * frames, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_configs_build_with_l0sgs_keys_and_parameter_counts(name):
    config = load_config(os.path.join(CONFIGS, f"{name}.json"))
    assert config.family.name == "waveflow" and config.train_config.lr_step_size == 200000
    assert config.data_config.validation_files == "test_files.txt"  # L0SG's test_files
    model = WaveFlow(**config.model_config.to_kwargs())
    tensors, with_wn, without_wn = COUNTS[name]
    assert len(model.state_dict()) == tensors
    assert sum(p.numel() for p in model.parameters()) == with_wn
    assert sum(p.numel() for p in model.remove_weight_norm().parameters()) == without_wn


def test_state_dict_keys_and_shapes_are_l0sgs():
    sd = WaveFlow(res_channels=64).state_dict()
    assert sd["flows.0.coupling.net.front_conv.0.conv.weight_v"].shape == (64, 1, 1, 1)
    assert sd["flows.7.coupling.net.res_blocks.7.filter_gate_conv.conv.weight_v"].shape == (128, 64, 3, 3)
    assert sd["flows.3.coupling.net.res_blocks.2.filter_gate_conv_c.weight_g"].shape == (128, 1, 1, 1)
    assert sd["flows.3.coupling.net.res_blocks.2.res_skip_conv.weight_v"].shape == (128, 64, 1, 1)
    assert sd["flows.0.coupling.proj_log_s_t.scale"].shape == (1, 2, 1, 1)
    assert sd["upsample_conv.2.weight_v"].shape == (1, 1, 3, 32)
    nano = WaveFlow(res_channels=128, coupling_type="nanoflow", size_flow_embed=512).state_dict()
    assert list(nano)[0] == "flow_embedding.weight" and nano["flow_embedding.weight"].shape == (8, 512)
    assert nano["estimator.net.res_blocks.0.filter_gate_conv_h.weight_v"].shape == (256, 512, 1, 1)
    assert nano["flows.5.multgate"].shape == (8, 128) and bool((nano["flows.5.multgate"] == 1).all())
    naive = WaveFlow(coupling_type="nanoflow_naive").state_dict()
    assert "flow.coupling.net.front_conv.0.conv.bias" in naive and len(naive) == 84


def test_initialisation_is_l0sgs():
    model = WaveFlow(res_channels=16, n_layer=2, n_flow=2, coupling_type="nanoflow", size_flow_embed=32)
    proj = model.flows[0].proj_log_s_t
    assert 0 < proj.conv.weight.abs().max() <= 1e-3 and bool((proj.scale == 0).all())
    emb = model.flow_embedding.weight
    torch.testing.assert_close(emb @ emb.T, torch.eye(2), atol=1e-5, rtol=0)  # orthonormal rows


def test_string_booleans_of_l0sgs_configs_are_read_not_truth_tested():
    assert WaveFlowConfig(coupling_type="nanoflow", use_weightnorm_embed="False").use_weightnorm_embed is False
    model = WaveFlow(res_channels=8, n_layer=1, n_flow=2, coupling_type="nanoflow", size_flow_embed=4,
                     use_weightnorm_embed="True")
    assert {"flow_embedding.weight_g", "flow_embedding.weight_v"} <= set(model.state_dict())
    with pytest.raises(ConfigError, match="use_weightnorm_embed"):
        WaveFlowConfig(use_weightnorm_embed="maybe")
    with pytest.raises(ConfigError, match="coupling_type"):
        WaveFlowConfig(coupling_type="glow")


def test_fold_is_l0sgs_squeeze():
    x = torch.arange(32.0).view(1, 32)
    X = fold(x, 16)  # (1, 1, 16, 2)
    assert X[0, 0, 3, 1] == 1 * 16 + 3
    torch.testing.assert_close(unfold(X)[:, 0], x)


def test_loss_is_the_full_nll_per_sample_by_hand():
    z = torch.tensor([[[[0.5, -1.0], [2.0, 0.0]]]])  # (1, 1, 2, 2)
    logdet = torch.tensor(0.7)
    sigma = 0.5
    expected = sum(0.5 * (math.log(2 * math.pi) + 2 * math.log(sigma) + v * v / sigma**2) for v in (0.5, -1.0, 2.0, 0.0))
    assert WaveFlowLoss(sigma)((z, logdet)).item() == pytest.approx((expected - 0.7) / 4, rel=1e-6)


def test_loss_at_initialisation_is_gaussian_constant_plus_half_mean_square():
    model = WaveFlow(res_channels=8, n_layer=2, n_flow=2)
    mel, audio = mel_audio(frames=4)
    loss = WaveFlowLoss(1.0)(model(mel.float(), audio.float())).item()
    assert loss == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5 * audio.pow(2).mean().item(), abs=5e-3)


@pytest.mark.parametrize("coupling_type", VARIANTS)
def test_every_coupling_type_inverts_and_its_fast_inverse_equals_the_plain_one(coupling_type):
    # n_flow 3 (odd: L0SG's inverses assume an even count) and height dilations 1, 2 (its fast path assumes 1)
    model = small(coupling_type, n_flow=3, n_layer_per_cycle=2)
    mel, audio = mel_audio()
    z = model.encode(mel, audio).detach()
    assert (unfold(z.unsqueeze(1))[:, 0] - audio).abs().max() > 1e-2
    plain = model.infer(mel, z=z)
    torch.testing.assert_close(plain, audio, atol=1e-10, rtol=0)
    torch.testing.assert_close(FastWaveFlow(model).infer(mel, z=z), plain, atol=1e-10, rtol=0)


def test_l0sg_latent_layout_and_draw_order():
    model = small("waveflow")
    mel, _ = mel_audio(frames=2, batch=1)
    z = model.sample_latent(1, 64, 0.7, torch.Generator().manual_seed(5), torch.device("cpu"))
    reference = 0.7 * torch.randn(1, 1, 8, 64, generator=torch.Generator().manual_seed(5))  # L0SG's (B, 1, h, W)
    torch.testing.assert_close(z, reference[:, 0])
    torch.testing.assert_close(model.infer(mel, z=reference.double()), model.infer(mel, z=z.double()))


def test_reference_conditioning_drops_three_frames_as_l0sg_does():
    model = small("waveflow")
    mel, _ = mel_audio(frames=6, batch=1)
    c = model.reference_conditioning(mel)
    assert c.shape == (1, 80, 8, 256 * 3 // 8)
    torch.testing.assert_close(c, model.conditioning(mel, 256 * 3))


def test_receptive_field_bounds_the_influence_of_a_latent_sample():
    model = small("waveflow", n_flow=2, n_layer=2, n_height=4)
    frames = 12
    mel, _ = mel_audio(frames=frames, batch=1)
    z = torch.randn(1, 4, 64 * frames, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    bumped = z.clone()
    bumped[0, 1, 300] += 1.0  # sample 300 * 4 + 1
    diff = (model.infer(mel, z=bumped) - model.infer(mel, z=z))[0].abs()
    changed = torch.nonzero(diff > 0).flatten()
    reach = receptive_field_samples(model.config)
    assert changed.numel() > 0 and changed.min() >= 1201 - reach and changed.max() <= 1201 + reach


def save_l0sg_file(path, model: WaveFlow, *, prefix: str = "", h_cache: bool = False, iteration: int = 5000):
    """A file shaped as L0SG's train.py saves it (a plain dict of plain containers and tensors)."""
    state = {prefix + k: v for k, v in model.state_dict().items()}
    if h_cache:
        state["h_cache"] = torch.zeros(model.n_flow, 3, 16, 1, 1)
    torch.save({"model": state, "iteration": iteration, "optimizer": {"state": {}, "param_groups": []},
                "scheduler": {"step_size": 200000}, "learning_rate": 1e-3}, path)


@pytest.mark.parametrize("prefix,h_cache", [("", False), ("module.", True)])
def test_l0sg_checkpoints_load_with_their_keys(tmp_path, prefix, h_cache):
    model = small("nanoflow", n_height=16).float()  # L0SG's height, which no shape tells
    path = tmp_path / "waveflow_5000"
    save_l0sg_file(path, model, prefix=prefix, h_cache=h_cache)
    checkpoint = read_checkpoint(str(path))
    assert checkpoint.family == "waveflow" and checkpoint.kind == "l0sg" and checkpoint.iteration == 5000
    assert "h_cache" not in checkpoint.state_dict
    config = checkpoint.model_config
    assert (config["coupling_type"], config["res_channels"], config["n_flow"], config["size_flow_embed"]) == ("nanoflow", 8, 4, 12)
    loaded = load_checkpoint(str(path))
    assert isinstance(loaded, WaveFlow) and loaded.n_height == 16
    mel, _ = mel_audio(frames=2, batch=1)
    z = model.sample_latent(1, 32, 1.0, torch.Generator().manual_seed(0), torch.device("cpu"))
    torch.testing.assert_close(loaded.infer(mel.float(), z=z), model.infer(mel.float(), z=z))


def test_shapes_tell_the_architecture_and_a_foreign_file_is_refused(tmp_path):
    for coupling_type in VARIANTS:
        model = small(coupling_type)
        inferred = infer_waveflow_config(model.state_dict())
        assert inferred.coupling_type == coupling_type and inferred.res_channels == 8 and inferred.n_layer == 3
    with pytest.raises(CheckpointError, match="not a WaveFlow"):
        infer_waveflow_config({"foo": torch.zeros(1)})
    path = tmp_path / "other.pt"
    torch.save({"model": {"foo": torch.zeros(1)}, "iteration": 1}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(str(path))


def test_small_config_is_a_small_waveflow():
    with open(os.path.join(CONFIGS, "waveflow_small.json")) as f:
        section = json.load(f)["waveflow_config"]
    model = WaveFlow(**section)
    assert load_config(os.path.join(CONFIGS, "waveflow_small.json")).family.name == "waveflow"
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_train_resume_and_vocode_through_the_commands(tmp_path, capsys):
    from test_train import CLIPS, _file_list

    from waveglow.cli import inference, train

    config = {
        "train_config": {"output_directory": str(tmp_path / "run"), "batch_size": 2, "max_iterations": 2,
                         "iters_per_checkpoint": 1, "learning_rate": 1e-3, "fp16_run": False, "grad_clip_thresh": 5.0},
        "data_config": {"training_files": _file_list(tmp_path, CLIPS[:3]), "segment_length": 2048},
        "waveflow_config": {"res_channels": 8, "n_height": 8, "n_layer": 2, "n_flow": 2, "coupling_type": "nanoflow",
                            "size_flow_embed": 8},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert train.main(["-c", str(path)]) == 0
    assert train.main(["-c", str(path), "--resume", "--set", "train_config.max_iterations=3"]) == 0
    out = capsys.readouterr().out
    assert "resuming from" in out and sorted(os.listdir(tmp_path / "run")) == [
        "config.json", "metrics.jsonl", "waveflow_1", "waveflow_2", "waveflow_3"]
    mel = tmp_path / "mel.pt"
    torch.save(torch.randn(80, 7) - 5, mel)
    assert inference.main(["-f", str(mel), "-w", str(tmp_path / "run" / "waveflow_3"), "-o", str(tmp_path / "wav"),
                           "--seed", "0"]) == 0
    assert sorted(os.listdir(tmp_path / "wav")) == ["mel_synthesis.wav"]
