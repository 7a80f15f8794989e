"""inference.py end to end on a tiny checkpoint: formats, --wav, batching, clipping, bad inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from waveglow.cli import inference, inference_io
from test_checkpoint import _save_nvidia_pickle
from waveglow import save_checkpoint, synthesize
from waveglow.synthesis import load_for_inference

RATE = 16000  # not the 22050 default: proves the rate comes from the checkpoint's config


@pytest.fixture
def checkpoint(tmp_path, tiny_model, tiny_config):
    tiny_config.data_config.sampling_rate = RATE
    return str(save_checkpoint(tmp_path / "tiny.pt", tiny_model, tiny_config))


def _mel(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(80, frames, generator=torch.Generator().manual_seed(seed)) - 5


def _read(path) -> tuple[int, np.ndarray]:
    rate, data = wavfile.read(path)
    assert data.dtype == np.int16
    return rate, data


def _run(*args: str) -> int:
    return inference.main([*args])


def test_both_formats_from_file_list_directory_and_paths(tmp_path, checkpoint, capsys):
    mels = tmp_path / "mels"
    mels.mkdir()
    torch.save(_mel(12), mels / "a.wav.pt")
    torch.save(_mel(7)[None], mels / "b.pt")  # (1, n_mel, frames)
    np.save(mels / "c.npy", _mel(9).numpy())
    (tmp_path / "list.txt").write_text("mels/a.wav.pt|some transcript\n\nmels/c.npy\n")
    cases = {"list": [str(tmp_path / "list.txt")], "dir": [str(mels)], "paths": [str(mels / "b.pt"), str(mels / "c.npy")]}
    expected = {"a.wav_synthesis.wav": 12, "b_synthesis.wav": 7, "c_synthesis.wav": 9}
    for name, inputs in cases.items():
        out = tmp_path / f"out_{name}"
        assert _run("-f", *inputs, "-w", checkpoint, "-o", str(out), "--seed", "1") == 0
        assert os.listdir(out)
        for wav in os.listdir(out):
            rate, data = _read(out / wav)
            assert rate == RATE and data.shape == (256 * expected[wav],)
    assert "3 of 3 files vocoded" in capsys.readouterr().out


def test_output_matches_synthesize_and_is_clipped(tmp_path, checkpoint):
    torch.save(_mel(20), tmp_path / "x.pt")
    assert _run("-f", str(tmp_path / "x.pt"), "-w", checkpoint, "-o", str(tmp_path / "out"), "-s", "20",
                "--seed", "7") == 0
    model, _ = load_for_inference(checkpoint)
    audio = synthesize(model, _mel(20), sigma=20.0, chunk_frames=1024, generator=torch.Generator().manual_seed(7))
    _, data = _read(tmp_path / "out" / "x_synthesis.wav")
    loud = audio.abs() > 1.0
    assert loud.sum() > 100  # sigma 20 drives the tiny model far past full scale
    assert np.all(data[loud.numpy()] == np.where(audio[loud] > 0, 32767, -32768))  # clipped, not wrapped
    expected = np.clip(audio.numpy() * 32768, -32768, 32767).astype(np.int16)
    assert np.abs(data.astype(int) - expected.astype(int)).max() <= 1


def test_batch_of_unequal_lengths_equals_one_by_one(tmp_path, checkpoint):
    for i, frames in enumerate((5, 40, 17, 23)):
        torch.save(_mel(frames, seed=i), tmp_path / f"m{i}.pt")
    files = [str(tmp_path / f"m{i}.pt") for i in range(4)]
    common = ["-w", checkpoint, "-s", "0.7", "--seed", "3", "--chunk_frames", "16", "--overlap_frames", "4"]
    assert _run("-f", *files, "-o", str(tmp_path / "one"), "--batch_size", "1", *common) == 0
    assert _run("-f", *files, "-o", str(tmp_path / "all"), "--batch_size", "3", *common) == 0
    for i in range(4):
        _, one = _read(tmp_path / "one" / f"m{i}_synthesis.wav")
        _, batched = _read(tmp_path / "all" / f"m{i}_synthesis.wav")
        assert np.abs(one.astype(int) - batched.astype(int)).max() <= 1


def test_nvidia_pickle_runs_through_inference(tmp_path, tiny_model, tiny_config):
    path = tmp_path / "waveglow_120"
    _save_nvidia_pickle(path, tiny_model, tiny_config)
    torch.save(_mel(10), tmp_path / "x.pt")
    assert _run("-f", str(tmp_path / "x.pt"), "-w", str(path), "-o", str(tmp_path / "out"), "-d", "0.1") == 0
    rate, data = _read(tmp_path / "out" / "x_synthesis.wav")
    assert rate == 22050 and data.shape == (2560,)  # no config in NVIDIA's files: the default rate


def test_wav_mode_copy_synthesis(tmp_path, checkpoint):
    pytest.importorskip("waveglow.audio")
    t = np.arange(RATE // 2) / RATE
    wavfile.write(tmp_path / "tone.wav", RATE, (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16))
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    code = _run("-f", str(tmp_path / "tone.wav"), str(tmp_path / "bad.wav"), "-w", checkpoint,
                "-o", str(tmp_path / "out"), "--wav")
    assert code == 1  # the bad file is reported, the good one is written
    rate, data = _read(tmp_path / "out" / "tone_synthesis.wav")
    assert rate == RATE and data.shape == (256 * (1 + (RATE // 2) // 256),)


def test_bad_inputs_are_reported_and_skipped(tmp_path, checkpoint, capsys):
    bad = {
        "channels.pt": torch.zeros(40, 10),
        "flat.pt": torch.zeros(80),
        "empty.pt": torch.zeros(80, 0),
        "nan.npy": np.full((80, 5), np.nan, dtype=np.float32),
        "inf.pt": torch.full((80, 5), float("inf")),
    }
    for name, value in bad.items():
        np.save(tmp_path / name, value) if name.endswith(".npy") else torch.save(value, tmp_path / name)
    (tmp_path / "garbage.pt").write_bytes(b"\x80\x02garbage")
    torch.save(_mel(8), tmp_path / "good.pt")
    inputs = [str(tmp_path / n) for n in [*bad, "garbage.pt", "good.pt", "missing.npy", "no_such_list.txt"]]
    code = _run("-f", *inputs, "-w", checkpoint, "-o", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 1
    assert os.listdir(tmp_path / "out") == ["good_synthesis.wav"]
    assert "Traceback" not in err
    for fragment in ["channels.pt: mel has 40 channels", "flat.pt: mel must be", "empty.pt: empty mel",
                     "nan.npy: mel contains NaN", "inf.pt: mel contains NaN", "garbage.pt: cannot read mel file",
                     "missing.npy: cannot read mel file", "no_such_list.txt: cannot read file list",
                     "8 of 9 inputs failed"]:
        assert fragment in err, fragment


def test_unwritable_output_directory(tmp_path, checkpoint, capsys):
    torch.save(_mel(8), tmp_path / "x.pt")
    (tmp_path / "file").write_text("a file, not a folder")
    assert _run("-f", str(tmp_path / "x.pt"), "-w", checkpoint, "-o", str(tmp_path / "file" / "out")) == 1
    err = capsys.readouterr().err
    assert "output directory not writable" in err and "Traceback" not in err


def test_bad_checkpoint_and_settings(tmp_path, checkpoint, capsys):
    torch.save(_mel(8), tmp_path / "x.pt")
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 truncated")
    assert _run("-f", str(tmp_path / "x.pt"), "-w", str(tmp_path / "broken.pt"), "-o", str(tmp_path / "o")) == 1
    if not torch.cuda.is_available():
        assert _run("-f", str(tmp_path / "x.pt"), "-w", checkpoint, "-o", str(tmp_path / "o"), "--is_fp16") == 2
    assert _run("-f", str(tmp_path / "nothing"), "-w", checkpoint, "-o", str(tmp_path / "o")) == 1
    err = capsys.readouterr().err
    assert "broken.pt" in err and "Traceback" not in err


def test_bfloat16_on_cpu_is_close_to_float32(tmp_path, checkpoint, monkeypatch):
    monkeypatch.setattr(inference_io, "cpu_bf16_support", lambda: (True, "test: native bf16"))
    torch.save(_mel(40), tmp_path / "x.pt")
    common = ["-f", str(tmp_path / "x.pt"), "-w", checkpoint, "-s", "0.6", "--seed", "2", "--device", "cpu"]
    assert _run(*common, "-o", str(tmp_path / "fp32")) == 0
    assert _run(*common, "-o", str(tmp_path / "bf16"), "--dtype", "bfloat16") == 0
    _, fp32 = _read(tmp_path / "fp32" / "x_synthesis.wav")
    _, bf16 = _read(tmp_path / "bf16" / "x_synthesis.wav")
    error = (bf16.astype(float) - fp32).std()
    assert fp32.std() > 100 and 0 < error < 0.03 * fp32.std()  # SNR over 30 dB (measured 43): close, not equal
    assert _run(*common, "-o", str(tmp_path / "fp16"), "--dtype", "float16") == 2


def test_bfloat16_without_native_support_runs_float32(tmp_path, checkpoint, monkeypatch, capsys):
    """An AVX2-only CPU emulates bf16 6-30x slower than float32: inference.py runs float32 and says why."""
    monkeypatch.setattr(inference_io, "cpu_bf16_support", lambda: (False, "the CPU has neither avx512_bf16 nor amx_bf16"))
    torch.save(_mel(20), tmp_path / "x.pt")
    common = ["-f", str(tmp_path / "x.pt"), "-w", checkpoint, "-s", "0.6", "--seed", "2", "--device", "cpu"]
    assert _run(*common, "-o", str(tmp_path / "fp32")) == 0
    assert _run(*common, "-o", str(tmp_path / "bf16"), "--dtype", "bfloat16") == 0
    assert "bfloat16 runs as float32 on this CPU (the CPU has neither avx512_bf16" in capsys.readouterr().err
    assert np.array_equal(_read(tmp_path / "fp32" / "x_synthesis.wav")[1], _read(tmp_path / "bf16" / "x_synthesis.wav")[1])


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cuda_half_precision(tmp_path, checkpoint, dtype):
    torch.save(_mel(30), tmp_path / "x.pt")
    code = _run("-f", str(tmp_path / "x.pt"), "-w", checkpoint, "-o", str(tmp_path / "out"), "--device", "cuda",
                "--dtype", dtype, "-d", "0.01", "-s", "0.6")
    assert code == 0
    _, data = _read(tmp_path / "out" / "x_synthesis.wav")
    assert data.shape == (256 * 30,)


def test_low_memory_gives_the_same_audio(tmp_path, checkpoint):
    assert load_for_inference(checkpoint)[0].cache_conditioning
    assert not load_for_inference(checkpoint, cache_conditioning=False)[0].cache_conditioning
    torch.save(_mel(300), tmp_path / "x.pt")  # long enough for the folded conditioning
    common = ["-f", str(tmp_path / "x.pt"), "-w", checkpoint, "-s", "0.6", "--seed", "1"]
    assert _run(*common, "-o", str(tmp_path / "cached")) == 0
    assert _run(*common, "-o", str(tmp_path / "lean"), "--low_memory") == 0
    _, cached = _read(tmp_path / "cached" / "x_synthesis.wav")
    _, lean = _read(tmp_path / "lean" / "x_synthesis.wav")
    assert cached.shape == (256 * 300,) and np.abs(cached.astype(int) - lean.astype(int)).max() <= 1
