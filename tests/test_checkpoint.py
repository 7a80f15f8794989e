import importlib
import os
import subprocess
import sys
import types
import warnings

import pytest
import torch
from torch import nn

from waveglow import CheckpointError, WaveGlow, load_checkpoint, read_checkpoint, save_checkpoint
from waveglow.checkpoint import restore_rng_state
from waveglow.models.waveglow import convert_state_dict

from conftest import REPO, checkout_env


def _outputs(model, seed=0):
    torch.manual_seed(seed)
    mel = torch.randn(2, 80, 6)
    return model.infer(mel, sigma=0.0), model.infer(mel, sigma=0.8, generator=torch.Generator().manual_seed(1))


def _assert_same_model(a, b):
    for x, y in zip(_outputs(a), _outputs(b)):
        assert torch.equal(x, y)


# ------------------------------------------------------------------------------ our format


def test_our_format_round_trip(tmp_path, tiny_model, tiny_config):
    optimizer = torch.optim.Adam(tiny_model.parameters(), lr=1e-3)
    tiny_model.train()
    loss = sum(p.square().sum() for p in tiny_model.parameters())
    loss.backward()
    optimizer.step()
    path = save_checkpoint(tmp_path / "waveglow_7", tiny_model, tiny_config, optimizer=optimizer,
                           iteration=7, learning_rate=1e-3, extra={"epoch": 2})
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["format"] == "waveglow" and raw["iteration"] == 7 and raw["epoch"] == 2
    assert raw["config"]["waveglow_config"]["n_flows"] == 4
    checkpoint = read_checkpoint(path)
    assert checkpoint.kind == "waveglow" and checkpoint.config == tiny_config
    assert checkpoint.optimizer["state"] and checkpoint.learning_rate == 1e-3
    loaded = load_checkpoint(path)
    assert not loaded.training
    _assert_same_model(tiny_model.eval(), loaded)


def test_rng_state_round_trip(tmp_path, tiny_model):
    import random

    import numpy as np

    path = save_checkpoint(tmp_path / "ckpt", tiny_model)
    expected = (torch.rand(3), random.random(), np.random.rand())
    restore_rng_state(read_checkpoint(path).rng_state)
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]


def test_unwraps_compiled_and_wrapped_models(tmp_path, tiny_model):
    wrapped = nn.Module()
    wrapped._orig_mod = tiny_model  # what torch.compile's wrapper looks like
    path = save_checkpoint(tmp_path / "ckpt", wrapped)
    assert all(not k.startswith("_orig_mod") for k in torch.load(path, weights_only=True)["state_dict"])


def test_failed_save_keeps_previous_checkpoint(tmp_path, tiny_model, monkeypatch):
    path = save_checkpoint(tmp_path / "ckpt", tiny_model, iteration=1)
    before = open(path, "rb").read()

    def broken_save(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, tiny_model, iteration=2)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["ckpt"]


def test_unwritable_directory(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        save_checkpoint(tmp_path / "missing_dir" / "ckpt", tiny_model)


# ------------------------------------------------------------------- NVIDIA's pickles


def _make_glow_module():
    """A stand-in for NVIDIA's glow.py: its class and attribute names, torch's weight_norm hooks."""
    glow = types.ModuleType("glow")

    class Invertible1x1Conv(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv1d(c, c, 1, bias=False)

    class WN(nn.Module):
        def __init__(self, n_in, n_mel, n_layers, n_channels, kernel_size, split_cond=False):
            super().__init__()
            wn = nn.utils.weight_norm
            self.n_layers, self.n_channels = n_layers, n_channels
            self.in_layers, self.res_skip_layers = nn.ModuleList(), nn.ModuleList()
            self.start = wn(nn.Conv1d(n_in, n_channels, 1), name="weight")
            self.end = nn.Conv1d(n_channels, 2 * n_in, 1)
            if split_cond:
                self.cond_layers = nn.ModuleList(
                    [wn(nn.Conv1d(n_mel, 2 * n_channels, 1)) for _ in range(n_layers)])
            else:
                self.cond_layer = wn(nn.Conv1d(n_mel, 2 * n_channels * n_layers, 1), name="weight")
            for i in range(n_layers):
                d = 2**i
                self.in_layers.append(wn(nn.Conv1d(n_channels, 2 * n_channels, kernel_size, dilation=d,
                                                   padding=(kernel_size * d - d) // 2), name="weight"))
                out = 2 * n_channels if i < n_layers - 1 else n_channels
                self.res_skip_layers.append(wn(nn.Conv1d(n_channels, out, 1), name="weight"))

    class WaveGlow(nn.Module):
        def __init__(self, n_mel_channels, n_flows, n_group, n_early_every, n_early_size, WN_config,
                     split_cond=False):
            super().__init__()
            self.upsample = nn.ConvTranspose1d(n_mel_channels, n_mel_channels, 1024, stride=256)
            self.n_flows, self.n_group = n_flows, n_group
            self.n_early_every, self.n_early_size = n_early_every, n_early_size
            self.WN, self.convinv = nn.ModuleList(), nn.ModuleList()
            remaining = n_group
            for k in range(n_flows):
                if k % n_early_every == 0 and k > 0:
                    remaining -= n_early_size
                self.convinv.append(Invertible1x1Conv(remaining))
                self.WN.append(WN(remaining // 2, n_mel_channels * n_group, split_cond=split_cond, **WN_config))
            self.n_remaining_channels = remaining

    for cls in (Invertible1x1Conv, WN, WaveGlow):
        cls.__module__ = "glow"
        cls.__qualname__ = cls.__name__
        setattr(glow, cls.__name__, cls)
    return glow


def _save_nvidia_pickle(path, model, tiny_config, split_cond=False):
    glow = _make_glow_module()
    sys.modules["glow"] = glow
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            nvidia = glow.WaveGlow(**tiny_config.waveglow_config.to_kwargs(), split_cond=split_cond)
        state = model.state_dict()
        if split_cond:
            state = _split_cond_layer(state, tiny_config.waveglow_config.WN_config)
        nvidia.load_state_dict(state, strict=True)
        optimizer = torch.optim.Adam(nvidia.parameters(), lr=1e-4)
        # NVIDIA's train.py: torch.save of the whole module
        torch.save({"model": nvidia, "iteration": 120, "optimizer": optimizer.state_dict(),
                    "learning_rate": 1e-4}, path)
    finally:
        del sys.modules["glow"]


def _split_cond_layer(state, wn_config):
    """Our fused cond_layer -> NVIDIA's older per-layer cond_layers (and DLE's)."""
    out, C = {}, wn_config.n_channels
    for key, value in state.items():
        if ".cond_layer." in key:
            prefix, param = key.split(".cond_layer.")
            for i, part in enumerate(value.split(2 * C, 0)):
                out[f"{prefix}.cond_layers.{i}.{param}"] = part.clone()
        else:
            out[key] = value
    return out


def test_nvidia_pickle_loads_without_glow(tmp_path, tiny_model, tiny_config):
    path = tmp_path / "waveglow_120"
    _save_nvidia_pickle(path, tiny_model, tiny_config)
    with pytest.raises(ImportError):
        importlib.import_module("glow")
    checkpoint = read_checkpoint(path)
    assert checkpoint.kind == "nvidia" and checkpoint.iteration == 120
    assert checkpoint.waveglow_config == tiny_config.waveglow_config.to_kwargs()
    _assert_same_model(tiny_model, load_checkpoint(path))
    assert "glow" not in sys.modules


def test_nvidia_pickle_with_per_layer_cond_layers(tmp_path, tiny_model, tiny_config):
    path = tmp_path / "waveglow_old"
    _save_nvidia_pickle(path, tiny_model, tiny_config, split_cond=True)
    _assert_same_model(tiny_model, load_checkpoint(path))


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": _RunsCommand(f"touch {marker}"), "iteration": 1}, path)
    with pytest.raises(CheckpointError, match="refused to unpickle .*system"):
        load_checkpoint(path)
    assert not marker.exists()


# --------------------------------------------------------- DeepLearningExamples and old layouts


def test_deeplearningexamples_checkpoint(tmp_path, tiny_model, tiny_config):
    state = _split_cond_layer(tiny_model.state_dict(), tiny_config.waveglow_config.WN_config)
    state = {f"module.{k}": v for k, v in state.items()}
    path = tmp_path / "dle.pt"
    torch.save({"epoch": 3, "config": tiny_config.waveglow_config.to_kwargs(), "state_dict": state,
                "optimizer": {}}, path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.kind == "deeplearningexamples" and checkpoint.iteration == 3
    _assert_same_model(tiny_model, load_checkpoint(path))
    # without a stored config the architecture comes from the tensor shapes
    torch.save({"state_dict": state}, path)
    _assert_same_model(tiny_model, load_checkpoint(path))


def test_separate_res_and_skip_layers(tiny_model, tiny_config):
    C, n_layers = 16, tiny_config.waveglow_config.WN_config.n_layers
    old = {}
    for key, value in tiny_model.state_dict().items():
        if ".res_skip_layers." in key:
            prefix, rest = key.split(".res_skip_layers.")
            i, param = rest.split(".", 1)
            if int(i) < n_layers - 1:
                old[f"{prefix}.res_layers.{i}.{param}"] = value[:C]
                old[f"{prefix}.skip_layers.{i}.{param}"] = value[C:]
            else:
                old[f"{prefix}.skip_layers.{i}.{param}"] = value
        else:
            old[key] = value
    converted = convert_state_dict(old)
    assert converted.keys() == tiny_model.state_dict().keys()
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(converted[key], value), key


def test_weight_norm_removed_state_dict(tmp_path, tiny_model):
    reference = _outputs(tiny_model)
    folded = WaveGlow(**{**read_config_kwargs(tiny_model)})
    folded.load_state_dict(tiny_model.state_dict())
    folded.remove_weight_norm()
    path = tmp_path / "plain.pt"
    torch.save(folded.state_dict(), path)
    loaded = load_checkpoint(path)
    assert read_checkpoint(path).kind == "state_dict"
    for x, y in zip(_outputs(loaded), reference):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)


def read_config_kwargs(model):
    return {"n_mel_channels": model.n_mel_channels, "n_flows": model.n_flows, "n_group": model.n_group,
            "n_early_every": model.n_early_every, "n_early_size": model.n_early_size,
            "WN_config": model.WN_config}


# ------------------------------------------------------------------------------ bad input


def test_architecture_mismatch_names_key_shapes_and_cause(tmp_path, tiny_model, tiny_config):
    path = save_checkpoint(tmp_path / "ckpt", tiny_model, tiny_config)
    wider = tiny_config.waveglow_config.to_kwargs()
    wider["WN_config"] = {**wider["WN_config"], "n_channels": 32}
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, config=wider)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "WN.0.in_layers.0.bias" in message and "(32,)" in message and "(64,)" in message  # both shapes
    assert "n_channels 16 vs 32" in message


@pytest.mark.parametrize("content, words", [
    (None, "no such checkpoint"),
    (b"", "empty file"),
    (b"hello, not a checkpoint\n", "not a PyTorch checkpoint"),
])
def test_unreadable_files(tmp_path, content, words):
    path = tmp_path / "file.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_truncated_and_foreign_files(tmp_path, tiny_model):
    good = save_checkpoint(tmp_path / "good", tiny_model)
    data = open(good, "rb").read()
    truncated = tmp_path / "truncated"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a checkpoint of any known model family"):
        load_checkpoint(other)


def _convert(*args):
    return subprocess.run([sys.executable, "-m", "waveglow", "convert-checkpoint", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=checkout_env())


def test_convert_checkpoint_script(tmp_path, tiny_model, tiny_config):
    nvidia = tmp_path / "waveglow_120"
    _save_nvidia_pickle(nvidia, tiny_model, tiny_config)
    out = tmp_path / "converted.pt"
    result = _convert(nvidia, out)
    assert result.returncode == 0, result.stderr
    assert torch.load(out, weights_only=True)["iteration"] == 120
    _assert_same_model(tiny_model, load_checkpoint(out))

    bad = _convert(tmp_path / "missing.pt", out)
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr and "missing.pt" in bad.stderr
