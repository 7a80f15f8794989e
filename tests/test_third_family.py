"""A third family, defined and registered in this file only, goes through every tool and the family contract.

The toy: audio folded into pairs of samples (B, 2, T / 2), one additive coupling of the second
sample on the first and the mel, and a learned per-channel scale. Nothing outside this file knows it.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from dataclasses import asdict, dataclass, replace

import pytest
import torch
from conftest import TEST_DATA
from test_families import (
    check_checkpoint, check_export, check_fast_path, check_lengths, check_log_determinant, check_round_trip, tiny_model,
)
from torch import nn

from waveglow.audio import MelSpectrogram
from waveglow.cli import evaluate, export, inference, train
from waveglow.config import config_from_dict
from waveglow.data import AudioDataset, ValidationDataset
from waveglow.export import read_metadata
from waveglow.registry import FAMILIES, ModelFamily, ReceptiveField, family_named, family_names, register
from waveglow.streaming import StreamingVocoder, stream_latent
from waveglow.training import checkpoint_name


CLIPS = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))


@dataclass
class ToyConfig:
    n_mel_channels: int = 80
    width: int = 4

    def to_kwargs(self) -> dict:
        return asdict(self)


class ToyFlow(nn.Module):
    """z = exp(s) * (a, b + t(a, mel)) for audio folded into sample pairs (a, b): latent (B, 2, T / 2)."""

    def __init__(self, n_mel_channels: int = 80, width: int = 4, hop_length: int = 256) -> None:
        super().__init__()
        self.config = ToyConfig(n_mel_channels, width)
        self.n_mel_channels, self.hop_length, self.latent_steps_per_frame = n_mel_channels, hop_length, hop_length // 2
        self.net = nn.Conv1d(1 + n_mel_channels, 1, 2 * width + 1, padding=width)
        self.log_scale = nn.Parameter(torch.zeros(1, 2, 1))

    def shift(self, a: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """t(a, mel): a (B, 1, n), each mel frame repeated over its hop / 2 steps -> (B, 1, n)."""
        c = mel.to(a.dtype).repeat_interleave(self.latent_steps_per_frame, 2)[:, :, : a.size(2)]
        return self.net(torch.cat([a, c], 1))

    def encode(self, mel: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        x = audio.view(audio.size(0), -1, 2).transpose(1, 2)  # (B, T) -> (B, 2, T / 2)
        a, b = x[:, :1], x[:, 1:]
        return torch.exp(self.log_scale) * torch.cat([a, b + self.shift(a, mel)], 1)

    def forward(self, mel: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(mel, audio)
        return z, self.log_scale.sum() * z.size(2)  # log|det| per item

    def sample_latent(self, batch: int, n: int, sigma: float, generator, device) -> torch.Tensor:
        return sigma * torch.randn(batch, 2, n, generator=generator, device=device)

    @torch.no_grad()
    def infer(self, mel, sigma=1.0, *, z=None, generator=None, lengths=None) -> torch.Tensor:
        if z is None:
            z = self.sample_latent(mel.size(0), mel.size(2) * self.latent_steps_per_frame, sigma, generator, "cpu")
        if lengths is not None:  # each item alone, zeros after it
            out = torch.zeros(z.size(0), 2 * z.size(2))
            for i, n in enumerate(torch.as_tensor(lengths).tolist()):
                out[i, :n] = self.infer(mel[i : i + 1, :, : n // self.hop_length], z=z[i : i + 1, :, : n // 2])[0]
            return out
        x = z * torch.exp(-self.log_scale)
        a = x[:, :1]
        return torch.cat([a, x[:, 1:] - self.shift(a, mel)], 1).transpose(1, 2).reshape(z.size(0), -1)

    def remove_weight_norm(self) -> "ToyFlow":
        return self

    def receptive_field(self) -> ReceptiveField:
        """The net reaches ``width`` steps each way; a frame's mel conditions its own steps only."""
        reach = -(-self.config.width // self.latent_steps_per_frame)
        return ReceptiveField(past=reach, future=reach)


class ToyLoss(nn.Module):
    def forward(self, output: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        z, logdet = output
        return (0.5 * (z.float() ** 2).sum() - z.size(0) * logdet) / z.numel()


def perturb(model: ToyFlow, generator: torch.Generator) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


TOY = register(ModelFamily(
    name="toy", title="Toy flow", section="toy_config", config_class=ToyConfig, model_class=ToyFlow,
    build=lambda config: ToyFlow(**config.model_config.to_kwargs(), hop_length=config.data_config.hop_length),
    loss=lambda train_config: ToyLoss(), features=MelSpectrogram.from_config,
    training_dataset=AudioDataset, validation_dataset=ValidationDataset, validate=lambda config, source: None,
    model_config=lambda model: model.config, read_foreign=lambda obj, path: None,
    infer_config=lambda state_dict, source: {"n_mel_channels": state_dict["net.weight"].size(1) - 1},
    default_sigma=0.5, overlap_frames=4, perturb=perturb,
))
CONFIG = {"toy_config": {"width": 2}, "data_config": {"segment_length": 2048}, "train_config": {"fp16_run": False}}


def test_registered_once_and_found_by_name():
    assert family_named("toy") is TOY and register(TOY) is TOY
    assert "toy" in family_names() and "toy" not in FAMILIES  # FAMILIES: the families shipped with the package
    with pytest.raises(ValueError, match="registered already"):
        register(replace(TOY, title="another toy"))  # same name and section, another record


def test_the_family_contract():
    config = config_from_dict(CONFIG, "<toy>")
    for check in (check_round_trip, check_log_determinant, check_fast_path, check_lengths):
        check(TOY, config)


def test_streams_exactly_by_reporting_its_receptive_field():
    """Streaming knows nothing of the toy: its receptive_field() is all it takes."""
    model = tiny_model(TOY, config_from_dict(CONFIG, "<toy>"))
    mel = torch.randn(1, model.n_mel_channels, 12, generator=torch.Generator().manual_seed(1)) - 5
    whole = model.infer(mel, 0.5, z=stream_latent(model, 12, seed=4))[0]
    for sizes in ([12], [1] * 12, [0, 5, 7]):
        stream = StreamingVocoder(model, seed=4)
        bounds = torch.tensor([0, *sizes]).cumsum(0).tolist()
        audio = torch.cat([stream.push(mel[0, :, a:b]) for a, b in zip(bounds, bounds[1:])] + [stream.flush()])
        assert (audio - whole).abs().max() <= 1e-5


def test_checkpoint_and_export_contract(tmp_path):
    config = config_from_dict(CONFIG, "<toy>")
    check_checkpoint(TOY, config, tmp_path)
    check_export(TOY, config, tmp_path)


def test_train_vocode_evaluate_and_export(tmp_path):
    config_path, files = tmp_path / "toy.json", tmp_path / "train.txt"
    config_path.write_text(json.dumps(CONFIG))
    files.write_text("".join(f"{c}\n" for c in CLIPS[:2]))
    out = tmp_path / "run"
    assert train.main(["-c", str(config_path), "--set", f"data_config.training_files={files}",
                       "--set", f"train_config.output_directory={out}", "--set", "train_config.max_iterations=2",
                       "--set", "train_config.iters_per_checkpoint=2", "--set", "train_config.batch_size=2"]) == 0
    checkpoint = str(out / checkpoint_name(2, "toy"))
    assert torch.load(checkpoint, weights_only=True)["family"] == "toy"

    assert inference.main(["-f", CLIPS[0], "--wav", "-w", checkpoint, "-o", str(tmp_path / "wavs")]) == 0
    assert len(os.listdir(tmp_path / "wavs")) == 1

    scores = tmp_path / "scores"
    assert evaluate.main(["-f", str(files), "-o", str(scores), "-w", checkpoint, "--limit", "1",
                          "--metrics", "log_mel_l1", "--device", "cpu"]) == 0
    with open(scores / "clips.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and float(rows[0]["log_mel_l1"]) > 0

    onnx = tmp_path / "toy.onnx"
    assert export.main(["-w", checkpoint, "-o", str(onnx)]) == 0
    assert read_metadata(onnx)["family"] == "toy" and read_metadata(onnx)["latent_draws"] == "2"
