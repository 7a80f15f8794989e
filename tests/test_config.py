import json
import os

import pytest
import torch
import yaml

from waveglow import ConfigError, WaveGlow, load_config
from waveglow.cli import train
from waveglow.config import apply_overrides

from conftest import CONFIGS

NVIDIA_CONFIG = os.path.join(CONFIGS, "config.json")


def test_nvidia_config_loads_unchanged():
    config = load_config(NVIDIA_CONFIG)
    assert config.train_config.batch_size == 12
    assert config.train_config.fp16_run is True
    assert config.data_config.segment_length == 16000
    assert config.data_config.mel_fmax == 8000.0
    assert config.dist_config.dist_url == "tcp://localhost:54321"
    assert config.waveglow_config.WN_config.n_channels == 256
    assert load_config(os.path.join(CONFIGS, "config_paper.json")).waveglow_config.WN_config.n_channels == 512


def test_waveglow_constructor_takes_nvidia_section():
    with open(NVIDIA_CONFIG) as f:
        section = json.load(f)["waveglow_config"]
    model = WaveGlow(**section)
    assert model.n_flows == 12 and model.flow_channels() == [8, 8, 8, 8, 6, 6, 6, 6, 4, 4, 4, 4]


def test_yaml_equals_json(tmp_path):
    with open(NVIDIA_CONFIG) as f:
        data = json.load(f)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_config(path) == load_config(NVIDIA_CONFIG)


def test_int_accepted_for_float():
    config = apply_overrides(json.load(open(NVIDIA_CONFIG)), ["data_config.mel_fmax=7600"])
    from waveglow.config import config_from_dict

    assert config_from_dict(config).data_config.mel_fmax == 7600.0


def _write(tmp_path, mutate):
    with open(NVIDIA_CONFIG) as f:
        data = json.load(f)
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d["train_config"].update(batch_sise=3), ["unknown key", "train_config.batch_sise"]),
        (lambda d: d["waveglow_config"].pop("n_flows"), ["required key", "waveglow_config.n_flows", "missing"]),
        (lambda d: d["waveglow_config"]["WN_config"].pop("n_channels"), ["WN_config.n_channels", "missing"]),
        (lambda d: d["train_config"].update(batch_size="12"), ["train_config.batch_size", "integer"]),
        (lambda d: d["train_config"].update(fp16_run=1), ["train_config.fp16_run", "true/false"]),
        (lambda d: d["data_config"].update(segment_length=16000.5), ["data_config.segment_length", "integer"]),
        (lambda d: d.pop("waveglow_config"), ["waveglow_config", "missing"]),
        (lambda d: d.update(extra_section={}), ["unknown section", "extra_section"]),
        (lambda d: d["waveglow_config"]["WN_config"].update(kernel_size=4), ["kernel_size", "odd"]),
        # settings that contradict each other: one line naming both keys
        (lambda d: d["data_config"].update(n_mel_channels=64), ["data_config.n_mel_channels 64", "waveglow_config.n_mel_channels 80"]),
        (lambda d: d["data_config"].update(hop_length=250), ["data_config.hop_length 250", "waveglow_config.n_group 8"]),
        (lambda d: d["data_config"].update(segment_length=16001), ["data_config.segment_length 16001", "n_group"]),
        (lambda d: d["data_config"].update(filter_length=128, win_length=128), ["filter_length 128", "hop_length 256"]),
        (lambda d: d["waveglow_config"].update(n_early_size=3), ["n_early_size 3", "even channel count"]),
        (lambda d: d["waveglow_config"].update(n_early_size=8), ["flow 4 would have 0 channels"]),
    ],
)
def test_bad_config_names_key_and_file(tmp_path, mutate, words):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and path in message
    for word in words:
        assert word in message


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)


def test_overrides():
    config = load_config(NVIDIA_CONFIG, ["train_config.batch_size=3", "train_config.fp16_run=false"])
    assert config.train_config.batch_size == 3 and config.train_config.fp16_run is False
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(NVIDIA_CONFIG, ["batch_size"])


def test_exactly_one_model_section(tmp_path):
    path = _write(tmp_path, lambda d: d.update(flowavenet_config={}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert path in message and "\n" not in message
    assert ("two model sections" in message) or ("unknown section flowavenet_config" in message)


def test_the_upsampler_follows_hop_length():
    """A 16 kHz recipe (hop 200, filter 800) builds an aligned model: 200 samples per mel frame."""
    from waveglow.checkpoint import build_model

    config = load_config(os.path.join(CONFIGS, "tiny.json"), ["data_config.hop_length=200", "data_config.filter_length=800",
                                                              "data_config.win_length=800", "data_config.sampling_rate=16000"])
    model = build_model(config)
    assert model.hop_length == 200 and model.upsample.stride == (200,) and model.upsample.kernel_size == (800,)
    assert model.infer(torch.zeros(1, 80, 7), sigma=0.0).shape == (1, 7 * 200)
    default = build_model(load_config(os.path.join(CONFIGS, "tiny.json")))
    assert default.upsample.stride == (256,) and default.upsample.kernel_size == (1024,)  # NVIDIA's


@pytest.mark.parametrize("setting", [
    "train_config.learning_rate=-1", "train_config.learning_rate=.nan", "train_config.learning_rate=-1e-4",
    "train_config.sigma=0", "train_config.epochs=-1", "train_config.grad_clip_thresh=-0.5",
    "train_config.num_workers=-1", "train_config.keep_last=-1", "train_config.max_nonfinite_steps=-1",
    "data_config.mel_fmin=-10", "data_config.min_crop_rms=-1",
])
def test_bad_numeric_settings_name_their_key(setting):
    with pytest.raises(ConfigError) as info:
        load_config(os.path.join(CONFIGS, "tiny.json"), [setting])
    key = setting.split("=")[0]
    assert str(info.value).startswith(f"{os.path.join(CONFIGS, 'tiny.json')}: {key} must be ") and "\n" not in str(info.value)


def test_exponent_without_a_dot_is_a_number_and_a_zero_learning_rate_is_allowed():
    config = load_config(os.path.join(CONFIGS, "tiny.json"), ["train_config.learning_rate=3e-4"])
    assert config.train_config.learning_rate == 3e-4
    assert load_config(os.path.join(CONFIGS, "tiny.json"), ["train_config.learning_rate=0"]).train_config.learning_rate == 0


def test_train_with_a_negative_learning_rate_is_one_line(capsys):
    assert train.main(["-c", os.path.join(CONFIGS, "tiny.json"), "--set", "train_config.learning_rate=-1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train_config.learning_rate must be >= 0" in err[0] and "Traceback" not in err[0]
