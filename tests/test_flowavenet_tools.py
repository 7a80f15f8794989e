"""FloWaveNet through the shared tools: train.py, compute_mels.py, inference.py, load_checkpoint, conversion."""

from __future__ import annotations

import glob
import os

import pytest
import soundfile
import torch

from waveglow.cli import compute_mels, convert_checkpoint, inference, train
from waveglow.checkpoint import CheckpointError, load_checkpoint, load_model, read_checkpoint, save_checkpoint
from waveglow.metrics import read_metrics
from waveglow.registry import family_named, family_of
from waveglow.models.flowavenet import FloWaveNet, FloWaveNetConfig

from conftest import CONFIGS, TEST_DATA

CLIPS = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))
SMALL = os.path.join(CONFIGS, "flowavenet_small.json")
SIZES = dict(n_block=4, n_flow=2, n_layer=2, block_per_split=2, n_channels=16)


def _train_args(tmp_path, iterations, out="out"):
    files = tmp_path / "train.txt"
    files.write_text("".join(f"{c}\n" for c in CLIPS[:4]))
    settings = {
        "data_config.training_files": files,
        "train_config.output_directory": tmp_path / out,
        "train_config.max_iterations": iterations,
        "train_config.iters_per_checkpoint": 2,
        "train_config.batch_size": 2,
        "data_config.segment_length": 4096,
    }
    args = ["-c", SMALL]
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    return args


def _reference_file(path, data_parallel=True, seed=0):
    """A checkpoint written as ksw0306's train.py writes it (DataParallel's prefix by default)."""
    torch.manual_seed(seed)
    model = FloWaveNet(**SIZES)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=200000, gamma=0.5)
    wrapped = torch.nn.DataParallel(model) if data_parallel else model
    torch.save({"state_dict": wrapped.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "global_step": 1234, "global_epoch": 3}, path)
    return model


def test_family_record():
    family = family_named("flowavenet")
    assert family.section == "flowavenet_config" and family.config_class is FloWaveNetConfig
    assert family.model_class is FloWaveNet
    model = FloWaveNet(**SIZES)
    assert model.default_sigma == 0.8 and model.overlap_frames() == 49 and model.silence_feature == 0.0
    assert family_of(model) is family
    features = family.features(train.load_config(SMALL).data_config)
    assert type(features).__name__ == "FloWaveNetMelSpectrogram"


@pytest.mark.parametrize("initialized", [False, True])
def test_save_checkpoint_and_load_model_keep_actnorm_initialisation(tmp_path, initialized):
    """The model's extra_state travels with the checkpoint: a fresh model stays uninitialised
    (though loading its state dict alone would mark it initialised), an initialised one stays so."""
    torch.manual_seed(0)
    model = FloWaveNet(**SIZES)
    if initialized:
        mel = torch.rand(2, 80, 4)
        assert model.initialize(mel, 0.3 * torch.randn(2, 1024))
    path = save_checkpoint(tmp_path / "fwn.pt", model)
    assert read_checkpoint(path).extra["actnorm_initialized"] is initialized
    loaded, config = load_model(path)
    assert isinstance(loaded, FloWaveNet) and loaded.initialized is initialized
    assert config.model_config.to_kwargs() == model.config.to_kwargs()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_train_initialises_once_resumes_and_vocodes(tmp_path, capsys):
    assert train.main(_train_args(tmp_path, 2)) == 0
    assert capsys.readouterr().out.count("initialised flowavenet from the first batch") == 1
    checkpoint = read_checkpoint(tmp_path / "out" / "flowavenet_2")
    assert checkpoint.family == "flowavenet" and checkpoint.extra["actnorm_initialized"] is True
    assert not torch.equal(checkpoint.state_dict["blocks.0.flows.0.actnorm.scale"], torch.ones(1, 2, 1))
    assert train.main(_train_args(tmp_path, 4) + ["--resume"]) == 0
    assert "initialised flowavenet" not in capsys.readouterr().out  # resume never re-initialises
    losses = [line["loss"] for line in read_metrics(tmp_path / "out" / "metrics.jsonl") if "loss" in line]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))

    mel_dir, out_dir = tmp_path / "mels", tmp_path / "wavs"
    files = tmp_path / "vocode.txt"
    files.write_text(f"{CLIPS[0]}\n")
    assert compute_mels.main(["-f", str(files), "-o", str(mel_dir), "-c", SMALL]) == 0
    mel = torch.load(mel_dir / f"{os.path.basename(CLIPS[0])}.pt", weights_only=True)
    assert mel.min() >= 0 and mel.max() <= 1  # FloWaveNet's features, not WaveGlow's log-mel
    assert inference.main(["-f", str(mel_dir / f"{os.path.basename(CLIPS[0])}.pt"), "-w", str(tmp_path / "out" / "flowavenet_4"),
                           "-o", str(out_dir), "--device", "cpu", "--seed", "1"]) == 0
    audio, rate = soundfile.read(glob.glob(str(out_dir / "*.wav"))[0])
    assert rate == 22050 and len(audio) == 256 * mel.size(1) and abs(audio).max() > 0


@pytest.mark.parametrize("data_parallel", [True, False])
def test_a_ksw0306_file_loads_vocodes_and_converts(tmp_path, data_parallel):
    path = tmp_path / "checkpoint_step000001234.pth"
    reference = _reference_file(path, data_parallel)
    checkpoint = read_checkpoint(path)
    assert checkpoint.kind == "ksw0306" and checkpoint.iteration == 1234 and checkpoint.family == "flowavenet"
    model = load_checkpoint(path)
    assert isinstance(model, FloWaveNet) and model.initialized and model.config == FloWaveNetConfig(**SIZES)
    mel, z = torch.rand(1, 80, 4), torch.randn(1, 1, 1024)
    torch.testing.assert_close(model.infer(mel, z=z), reference.eval().infer(mel, z=z), atol=0, rtol=0)

    converted = tmp_path / "ours.pt"
    assert convert_checkpoint.main([str(path), str(converted)]) == 0
    ours = read_checkpoint(converted)
    assert ours.is_ours and ours.family == "flowavenet" and ours.iteration == 1234
    assert ours.config.data_config.mel_fmin == 125.0 and ours.config.data_config.mel_fmax == 7600.0
    torch.testing.assert_close(load_checkpoint(converted).infer(mel, z=z), model.infer(mel, z=z), atol=0, rtol=0)

    wav_dir = tmp_path / "wavs"
    assert inference.main(["-f", CLIPS[1], "--wav", "-w", str(path), "-o", str(wav_dir), "--device", "cpu", "--seed", "2"]) == 0
    assert len(glob.glob(str(wav_dir / "*.wav"))) == 1


def test_mismatched_and_truncated_ksw0306_files_are_one_line_errors(tmp_path, capsys):
    path = tmp_path / "checkpoint_step000001234.pth"
    _reference_file(path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, config={**SIZES, "n_flow": 3})
    assert "\n" not in str(e.value) and "missing key blocks.0.flows.2." in str(e.value) and "n_flow 2 vs 3" in str(e.value)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pth: not a readable PyTorch checkpoint"):
        load_checkpoint(truncated)
    assert inference.main(["-f", CLIPS[0], "--wav", "-w", str(truncated), "-o", str(tmp_path / "o"), "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated.pth" in err[0] and "Traceback" not in err[0]


def test_chunks_with_the_receptive_field_as_overlap_reproduce_the_whole():
    from waveglow.synthesis import synthesize

    torch.manual_seed(0)
    model = FloWaveNet(n_block=8, n_flow=1, n_layer=1, block_per_split=4, n_channels=8)
    with torch.no_grad():
        for module in model.modules():
            if type(module).__name__ == "ZeroConv1d":
                module.conv.weight.normal_(0, 0.3)
                module.scale.normal_(0, 0.1)
    model.eval()
    overlap = -(-model.receptive_field_samples() // 256)  # 5 frames
    mel = torch.rand(80, 40)
    vocode = lambda **kw: synthesize(model, mel, sigma=0.8, generator=torch.Generator().manual_seed(3), **kw)  # noqa: E731
    whole = vocode()
    torch.testing.assert_close(vocode(chunk_frames=8, overlap_frames=overlap), whole, atol=1e-5, rtol=0)
    assert (vocode(chunk_frames=8, overlap_frames=1) - whole).abs().max() > 1e-3  # too little context shows


@pytest.mark.parametrize("override, message", [
    ("data_config.hop_length=200", "data_config.hop_length must be 256 for FloWaveNet"),
    ("data_config.n_mel_channels=64", "data_config.n_mel_channels 64 differs from flowavenet_config.cin_channel 80"),
    ("data_config.segment_length=100", "data_config.segment_length 100 gives 0 frames"),
    ("flowavenet_config.n_flow=0", "flowavenet_config.n_flow must be positive"),
    ("flowavenet_config.n_blocks=3", "n_blocks"),
])
def test_contradicting_settings_are_one_line_config_errors(override, message):
    from waveglow.config import ConfigError, load_config

    with pytest.raises(ConfigError) as e:
        load_config(SMALL, [override])
    assert message in str(e.value) and "\n" not in str(e.value) and "flowavenet_small.json" in str(e.value)
