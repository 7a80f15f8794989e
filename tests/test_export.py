"""Export to ONNX and TorchScript: the files reproduce model.infer, carry their metadata, serve
inference.py --onnx with the same WAVs, and bad checkpoints or output folders give one clear error."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import torch
from conftest import CONFIGS, REPO, randomize_end
from scipy.io import wavfile

from waveglow.cli import export as export_script
from waveglow.cli import inference
from waveglow import Denoiser, WaveGlow, load_checkpoint, load_config, save_checkpoint
from waveglow.export import ExportError, export_onnx, export_torchscript, read_metadata, verify_export
from waveglow.registry import FAMILIES
from waveglow.onnx_runtime import OnnxDenoiser, OnnxModelError, OnnxVocoder

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")  # the format tested here

RATE = 16000  # not the default: proves the metadata comes from the checkpoint's config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    config = load_config(os.path.join(CONFIGS, "tiny.json"))
    config.data_config.sampling_rate = RATE
    torch.manual_seed(0)
    model = randomize_end(WaveGlow(**config.waveglow_config.to_kwargs()), std=0.05).eval()
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model, config))


@pytest.fixture(scope="module")
def model(checkpoint) -> WaveGlow:
    return load_checkpoint(checkpoint).remove_weight_norm()


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> dict[str, str]:
    """Both formats, each with its denoiser graph, written by waveglow-export."""
    folder = tmp_path_factory.mktemp("exported")
    paths = {"onnx": str(folder / "tiny.onnx"), "torchscript": str(folder / "tiny.ts")}
    for fmt, path in paths.items():
        assert export_script.main(["-w", checkpoint, "-o", path, "--format", fmt, "--denoiser"]) == 0
    return paths


def _inputs(model, batch: int, frames: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    mel = torch.randn(batch, model.n_mel_channels, frames, generator=gen) - 5
    return mel, model.sample_latent(batch, 256 * frames // model.n_group, 1.0, gen, torch.device("cpu"))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_reproduces_infer_at_two_lengths_and_batch_sizes(exported, model, fmt):
    path = exported[fmt]
    run = OnnxVocoder(path, "cpu").infer if fmt == "onnx" else torch.jit.load(path)
    for frames in (6, 17):
        for batch in (1, 2):
            mel, z = _inputs(model, batch, frames, seed=frames + batch)
            expected = model.infer(mel, z=z)
            got = run(mel, z=z) if fmt == "onnx" else run(mel, z)
            assert got.shape == (batch, 256 * frames)
            assert (got - expected).abs().max() < 1e-4
            assert expected.abs().max() > 1e-2  # the flows did something
    meta = read_metadata(path)
    assert (meta["family"], meta["latent_channels"], meta["hop_length"], meta["sampling_rate"]) == ("waveglow", "8", "256", str(RATE))
    assert "n_group" not in meta  # family-neutral names
    if fmt == "onnx":
        onnx.checker.check_model(path)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_denoiser_graph_matches_denoiser(exported, model, fmt):
    path = exported[fmt].replace(".onnx", ".denoiser.onnx").replace(".ts", ".denoiser.ts")
    denoiser = Denoiser(model)
    if fmt == "onnx":
        run = OnnxDenoiser(path)
    else:
        module = torch.jit.load(path)
        run = lambda audio, strength: module(audio, torch.tensor([strength]))  # noqa: E731
    gen = torch.Generator().manual_seed(1)
    for length in (300, 5000):  # 300: shorter than half a filter, zero-padded first (ONNX runner)
        if fmt == "torchscript" and length < 600:
            continue
        for batch in (1, 2):
            audio = 0.1 * torch.randn(batch, length, generator=gen)
            expected = denoiser(audio, 0.3)
            assert (expected - audio).abs().max() > 1e-3  # the subtraction changed something
            assert (run(audio, 0.3) - expected).abs().max() < 1e-4


def test_latent_drawn_as_the_model_draws_it(exported, model):
    vocoder = OnnxVocoder(exported["onnx"], "cpu")
    draw = lambda m: m.sample_latent(2, 64, 0.7, torch.Generator().manual_seed(5), torch.device("cpu"))  # noqa: E731
    assert torch.equal(draw(vocoder), draw(model))
    assert vocoder.latent_blocks == [6, 2]  # tiny: 8 channels, 2 leave before flow 2


def test_a_file_exported_with_the_old_n_group_key_still_loads(tmp_path, exported, model):
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(exported["onnx"])
    props = {p.key: p.value for p in graph.metadata_props}
    props["n_group"] = props.pop("latent_channels")
    del props["latent_steps_per_frame"]  # older files had neither: steps came from hop / n_group
    del graph.metadata_props[:]
    for key, value in props.items():
        graph.metadata_props.add(key=key, value=value)
    old = tmp_path / "old.onnx"
    onnx.save(graph, old)
    vocoder = OnnxVocoder(old, "cpu")
    assert (vocoder.latent_channels, vocoder.latent_steps_per_frame) == (8, 32)
    mel = torch.randn(1, 80, 4) - 5
    z = model.sample_latent(1, 4 * 32, 0.6, torch.Generator().manual_seed(1), torch.device("cpu"))
    torch.testing.assert_close(vocoder.infer(mel, z=z), model.infer(mel, z=z), atol=1e-4, rtol=0)


def test_verification_refuses_a_file_of_other_weights(exported, model):
    path = exported["torchscript"]
    assert verify_export(path, model, frames=[3, 8]).worst < 1e-4
    other = randomize_end(fresh_model_like(model))
    with pytest.raises(ExportError, match="does not reproduce the model"):
        verify_export(path, other, frames=[3, 8])


def fresh_model_like(model: WaveGlow) -> WaveGlow:
    clone = WaveGlow(**{k: getattr(model, k) for k in ("n_mel_channels", "n_flows", "n_group", "n_early_every", "n_early_size", "WN_config")})
    return clone.remove_weight_norm().eval()


def test_bad_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    assert export_script.main(["-w", str(tmp_path / "broken.pt"), "-o", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "broken.pt" in err[0]
    assert not (tmp_path / "x.onnx").exists()


def test_missing_or_read_only_output_folder_is_one_line(tmp_path, checkpoint, capsys, monkeypatch):
    missing = tmp_path / "nowhere" / "x.onnx"
    assert export_script.main(["-w", checkpoint, "-o", str(missing)]) == 1
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    real_access = os.access  # tests run as root, who may write anyway: os.access answers as for a user
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == str(read_only) else real_access(p, mode))
    assert export_script.main(["-w", checkpoint, "-o", str(read_only / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {missing}: folder {missing.parent} does not exist",
                   f"error: {read_only / 'x.onnx'}: folder {read_only} is not writable"]


def test_inference_onnx_writes_the_same_wavs_as_the_checkpoint(tmp_path, checkpoint, exported):
    mels = tmp_path / "mels"
    mels.mkdir()
    for i, frames in enumerate((9, 30, 14)):
        torch.save(torch.randn(80, frames, generator=torch.Generator().manual_seed(i)) - 5, mels / f"m{i}.pt")
    # batched (padded and masked), chunked with overlaps, denoised: every part of the path
    flags = ["--seed", "3", "-s", "0.6", "--batch_size", "2", "--chunk_frames", "8", "--overlap_frames", "4", "-d", "0.2",
             "--device", "cpu"]
    assert inference.main(["-f", str(mels), "-w", checkpoint, "-o", str(tmp_path / "w"), *flags]) == 0
    assert inference.main(["-f", str(mels), "--onnx", exported["onnx"], "-o", str(tmp_path / "x"), *flags]) == 0
    names = sorted(os.listdir(tmp_path / "w"))
    assert names == sorted(os.listdir(tmp_path / "x")) and len(names) == 3
    for name in names:
        rate_w, w = wavfile.read(tmp_path / "w" / name)
        rate_x, x = wavfile.read(tmp_path / "x" / name)
        assert rate_w == rate_x == RATE and w.shape == x.shape
        assert np.abs(w.astype(np.int32)).max() > 300  # audible, not silence
        assert np.abs(w.astype(np.int32) - x).max() / 32768 < 1e-4 + 1 / 32768  # int16 rounding may differ by 1


def test_inference_onnx_bad_file_is_one_line(tmp_path, capsys, exported):
    (tmp_path / "m.pt").write_bytes(b"")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    assert inference.main(["-f", str(tmp_path / "m.pt"), "--onnx", str(tmp_path / "bad.onnx"), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.onnx: not a usable ONNX file" in err[0]
    with pytest.raises(OnnxModelError, match="a denoiser graph, not a vocoder graph"):
        OnnxVocoder(exported["onnx"].replace(".onnx", ".denoiser.onnx"))


def test_docs_snippet_vocodes_with_onnxruntime_alone(tmp_path, exported, model, monkeypatch):
    text = open(os.path.join(REPO, "docs", "export.md")).read()
    snippet = text.split("```python\n")[1].split("```")[0]
    assert "waveglow" not in snippet.replace('"waveglow.onnx"', "")  # no code from this repository
    mel = (torch.randn(80, 11, generator=torch.Generator().manual_seed(2)) - 5).numpy()
    np.save(tmp_path / "mel.npy", mel)
    os.symlink(exported["onnx"], tmp_path / "waveglow.onnx")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(snippet, "docs/export.md", "exec"), namespace)
    expected = model.infer(torch.from_numpy(mel)[None], z=torch.from_numpy(namespace["z"]))[0]
    assert namespace["audio"].shape == (256 * 11,)
    assert np.abs(namespace["audio"] - expected.numpy()).max() < 1e-4


def _tiny_flowavenet():
    from waveglow.models.flowavenet import FloWaveNet

    torch.manual_seed(0)
    model = FloWaveNet(n_block=2, n_flow=1, n_layer=1, block_per_split=1, n_channels=8)
    with torch.no_grad():  # couplings, priors and ActNorms that are not the identity
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.initialized = True
    return model.remove_weight_norm().eval()


@pytest.mark.skipif("flowavenet" not in FAMILIES, reason="FloWaveNet is not a registered family here")
def test_flowavenet_exports_to_both_formats(tmp_path):
    model = _tiny_flowavenet()
    for fmt, export in (("onnx", export_onnx), ("torchscript", export_torchscript)):
        path = export(model, tmp_path / f"fwn.{fmt}")
        assert read_metadata(path)["family"] == "flowavenet" and read_metadata(path)["latent_steps_per_frame"] == "256"
        check = verify_export(path, model, frames=[5, 13])  # two lengths, batch 1 and 2, against model.infer
        assert set(check.max_abs_diff) == {(1, 5), (2, 5), (1, 13), (2, 13)} and check.worst < 1e-4
    vocoder = OnnxVocoder(tmp_path / "fwn.onnx", "cpu")
    mel = torch.randn(2, 80, 6) - 5
    expected = model.infer(mel, 0.8, generator=torch.Generator().manual_seed(4))
    assert expected.abs().max() > 1e-2
    assert (vocoder.infer(mel, 0.8, generator=torch.Generator().manual_seed(4)) - expected).abs().max() < 1e-4
