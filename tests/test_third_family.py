"""A third family shipped by another package goes through the family contract and every console command.

The toy (tests/helpers/toy_vocoder) is installed the way pip installs a package that declares the
``waveglow.families`` entry point: a dist-info folder on the path. Nothing in ``waveglow`` names it;
the registry finds it, in this process and in the command subprocesses.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from conftest import REPO, TEST_DATA
from test_families import (
    check_checkpoint, check_device_placement, check_export, check_fast_path, check_lengths, check_log_determinant,
    check_round_trip, tiny_model,
)

from waveglow.config import config_from_dict
from waveglow.export import read_metadata
from waveglow.registry import FAMILIES, discover_installed, families, family_named, family_names, register
from waveglow.streaming import StreamingVocoder, stream_latent
from waveglow.training import checkpoint_name

HELPERS = os.path.join(REPO, "tests", "helpers")
CLIPS = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))
CONFIG = {"toy_config": {"width": 2}, "data_config": {"segment_length": 2048}, "train_config": {"fp16_run": False}}


def install_toy(site) -> None:
    """What pip leaves on the path for a package declaring the entry point ``toy = toy_vocoder:FAMILY``."""
    info = site / "toy_vocoder-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-vocoder\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[waveglow.families]\ntoy = toy_vocoder:FAMILY\n", encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    install_toy(site)
    for path in (HELPERS, str(site)):
        if path not in sys.path:
            sys.path.insert(0, path)
    discover_installed()
    return site


@pytest.fixture
def toy(site):
    return family_named("toy")


@pytest.fixture
def config(toy):
    return config_from_dict(CONFIG, "<toy>")


def test_found_through_its_entry_point(toy):
    import toy_vocoder  # the helper package, importable once installed

    assert toy is toy_vocoder.FAMILY and register(toy) is toy
    assert "toy" in family_names() and "toy" not in FAMILIES  # FAMILIES: the families shipped with the package
    with pytest.raises(ValueError, match="registered already"):
        register(replace(toy, title="another toy"))  # same name and section, another record


@pytest.mark.parametrize("check", [check_round_trip, check_log_determinant, check_fast_path, check_lengths,
                                   check_device_placement])
def test_the_family_contract(toy, config, check):
    check(toy, config)


def test_streams_exactly_by_reporting_its_receptive_field(toy, config):
    """Streaming knows nothing of the toy: its receptive_field() is all it takes."""
    model = tiny_model(toy, config)
    mel = torch.randn(1, model.n_mel_channels, 12, generator=torch.Generator().manual_seed(1)) - 5
    whole = model.infer(mel, 0.5, z=stream_latent(model, 12, seed=4))[0]
    for sizes in ([12], [1] * 12, [0, 5, 7]):
        stream = StreamingVocoder(model, seed=4)
        bounds = torch.tensor([0, *sizes]).cumsum(0).tolist()
        audio = torch.cat([stream.push(mel[0, :, a:b]) for a, b in zip(bounds, bounds[1:])] + [stream.flush()])
        assert (audio - whole).abs().max() <= 1e-5


def test_checkpoint_and_export_contract(toy, config, tmp_path):
    check_checkpoint(toy, config, tmp_path)
    check_export(toy, config, tmp_path)


def run_command(site, *argv: str) -> subprocess.CompletedProcess:
    """``python -m waveglow <argv>`` in a fresh interpreter that has the toy package installed."""
    path = os.pathsep.join([str(site), HELPERS, REPO, os.environ.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-m", "waveglow", *argv], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": path}, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_console_commands_train_vocode_evaluate_and_export(site, tmp_path):
    config_path, files = tmp_path / "toy.json", tmp_path / "train.txt"
    config_path.write_text(json.dumps(CONFIG))
    files.write_text("".join(f"{c}\n" for c in CLIPS[:2]))
    out = tmp_path / "run"
    run_command(site, "train", "-c", str(config_path), "--set", f"data_config.training_files={files}",
                "--set", f"train_config.output_directory={out}", "--set", "train_config.max_iterations=2",
                "--set", "train_config.iters_per_checkpoint=2", "--set", "train_config.batch_size=2")
    checkpoint = str(out / checkpoint_name(2, "toy"))
    assert torch.load(checkpoint, weights_only=True)["family"] == "toy"

    run_command(site, "inference", "-f", CLIPS[0], "--wav", "-w", checkpoint, "-o", str(tmp_path / "wavs"))
    assert len(os.listdir(tmp_path / "wavs")) == 1

    scores = tmp_path / "scores"
    run_command(site, "evaluate", "-f", str(files), "-o", str(scores), "-w", checkpoint, "--limit", "1",
                "--metrics", "log_mel_l1", "--device", "cpu")
    with open(scores / "clips.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and float(rows[0]["log_mel_l1"]) > 0

    onnx = tmp_path / "toy.onnx"
    run_command(site, "export", "-w", checkpoint, "-o", str(onnx))
    metadata = read_metadata(onnx)
    assert metadata["family"] == "toy" and metadata["latent_draws"] == "2" and metadata["default_sigma"] == "0.5"


def test_a_broken_installed_family_is_left_out_with_a_warning(site, tmp_path):
    """A package whose entry point does not load, or is not a record, must not stop the families that work."""
    info = tmp_path / "broken_vocoders-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-vocoders\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[waveglow.families]\nnotarecord = toy_vocoder:ToyLoss\nmissing = no_such_module_anywhere:FAMILY\n", encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        discover_installed()
        assert {"notarecord", "missing"} <= set(family_names())
        with pytest.warns(UserWarning) as warned:
            names = [f.name for f in families()]
    finally:
        sys.path.remove(str(tmp_path))
    messages = sorted(str(w.message) for w in warned)
    assert "notarecord" not in names and "missing" not in names and "toy" in names and "waveglow" in names
    assert any("missing = no_such_module_anywhere:FAMILY cannot be loaded (ModuleNotFoundError" in m for m in messages)
    assert any("notarecord = toy_vocoder:ToyLoss is not a ModelFamily named 'notarecord'" in m for m in messages)
    assert "missing" not in family_names()
