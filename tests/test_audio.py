"""Mel features against an independent numpy implementation, and audio loading (good and bad files)."""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import pytest
import torch

from waveglow.audio import AudioError, MelSpectrogram, load_audio, mel_spectrogram
from waveglow.config import DataConfig

from conftest import TEST_DATA

CLIPS = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))
SR = 22050


# ------------------------------------------------------------ independent numpy reference recipe


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's Auditory Toolbox mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    return np.where(hz < min_log_hz, hz / f_sp, min_log_hz / f_sp + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(mel < min_log_mel, mel * f_sp, min_log_hz * np.exp(logstep * (mel - min_log_mel)))


def _numpy_mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular filters equally spaced on the Slaney mel scale, each scaled to unit area -> (n_mels, n_fft // 2 + 1)."""
    bins_hz = np.arange(n_fft // 2 + 1) * sr / n_fft
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    basis = np.zeros((n_mels, bins_hz.size))
    for m in range(n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        rising = (bins_hz - left) / (centre - left)
        falling = (right - bins_hz) / (right - centre)
        basis[m] = np.maximum(0.0, np.minimum(rising, falling)) * 2.0 / (right - left)
    return basis


def _numpy_log_mel(audio: np.ndarray, sr=SR, n_fft=1024, hop=256, win=1024, n_mels=80, fmin=0.0, fmax=8000.0) -> np.ndarray:
    """The Tacotron 2 recipe in float64 numpy: (T,) -> (n_mels, 1 + T // hop)."""
    audio = np.asarray(audio, dtype=np.float64)
    padded = np.pad(audio, n_fft // 2, mode="reflect")
    n_frames = 1 + (padded.size - n_fft) // hop
    n = np.arange(win)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / win)  # periodic Hann
    left = (n_fft - win) // 2
    window = np.pad(window, (left, n_fft - win - left))  # centred in the frame, as torch.stft does
    frames = np.stack([padded[i * hop : i * hop + n_fft] for i in range(n_frames)])  # (frames, n_fft)
    k = np.arange(n_fft // 2 + 1)
    dft = np.exp(-2j * np.pi * np.outer(np.arange(n_fft), k) / n_fft)  # (n_fft, n_freq)
    magnitude = np.abs((frames * window) @ dft).T  # (n_freq, frames)
    mel = _numpy_mel_basis(sr, n_fft, n_mels, fmin, fmax) @ magnitude  # (n_mels, frames)
    return np.log(np.maximum(mel, 1e-5))


def _errors(features: torch.Tensor, expected: np.ndarray) -> tuple[float, float]:
    diff = np.abs(features.double().numpy() - expected)
    return diff.mean(), diff.max()


# -------------------------------------------------------------------------------------- features


@pytest.fixture(scope="module")
def features():
    return MelSpectrogram()


def test_mel_basis_matches_numpy_slaney(features):
    expected = _numpy_mel_basis(SR, 1024, 80, 0.0, 8000.0)
    np.testing.assert_allclose(features.mel_basis.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_speech_matches_numpy_reference(features):
    audio = load_audio(CLIPS[0], SR)
    with torch.no_grad():
        mel = features(audio[None])[0]
    mean, worst = _errors(mel, _numpy_log_mel(audio.numpy()))
    assert mel.shape == (80, 1 + audio.numel() // 256)
    assert mean <= 1e-5 and worst <= 1e-3, (mean, worst)


def test_sine_matches_numpy_reference(features):
    t = np.arange(8000) / SR
    audio = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    with torch.no_grad():
        mel = features(torch.from_numpy(audio)[None])[0]
    mean, worst = _errors(mel, _numpy_log_mel(audio))
    assert mean <= 1e-5 and worst <= 1e-3, (mean, worst)
    assert mel[:, 10].argmax().item() == np.argmax(_numpy_mel_basis(SR, 1024, 80, 0, 8000)[:, round(440 * 1024 / SR)])


def test_short_window_matches_numpy_reference():
    features = MelSpectrogram(filter_length=1024, win_length=800, hop_length=200, n_mel_channels=40, mel_fmax=11025.0)
    audio = torch.randn(5000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        mel = features(audio[None])[0]
    expected = _numpy_log_mel(audio.numpy(), hop=200, win=800, n_mels=40, fmax=11025.0)
    mean, worst = _errors(mel, expected)
    assert mean <= 1e-5 and worst <= 1e-3, (mean, worst)


@pytest.mark.parametrize("length", [513, 1000, 4096, 16000, 16001, 22050 + 255])
def test_frame_count(features, length):
    with torch.no_grad():
        assert features(torch.zeros(2, length)).shape == (2, 80, 1 + length // 256)


def test_too_short_is_a_clear_error(features):
    with pytest.raises(ValueError, match="too short"):
        features(torch.zeros(1, 512))


def test_batched_equals_per_clip(features):
    batch = torch.randn(3, 6000, generator=torch.Generator().manual_seed(1)) * 0.3
    with torch.no_grad():
        together = features(batch)
        apart = torch.stack([features(clip[None])[0] for clip in batch])
    torch.testing.assert_close(together, apart, atol=1e-5, rtol=0)


def test_half_input_gives_float32(features):
    audio = (torch.randn(1, 4000, generator=torch.Generator().manual_seed(2)) * 0.3).half()
    with torch.no_grad():
        mel = features(audio)
    assert mel.dtype == torch.float32
    torch.testing.assert_close(mel, features(audio.float()), atol=0, rtol=0)


def test_one_clip_function_and_from_config():
    config = DataConfig(n_mel_channels=64, mel_fmax=7000.0)
    audio = load_audio(CLIPS[1], SR)
    mel = mel_spectrogram(audio, config)
    assert mel.shape == (64, 1 + audio.numel() // 256)
    expected = _numpy_log_mel(audio.numpy(), n_mels=64, fmax=7000.0)
    assert _errors(mel, expected)[1] <= 1e-3


def test_buffers_not_in_state_dict_and_output_float32(features):
    assert features.state_dict() == {}
    halved = MelSpectrogram().half()  # e.g. swept up by a model.half(): still float32 features
    audio = torch.randn(1, 3000, generator=torch.Generator().manual_seed(4)) * 0.2
    with torch.no_grad():
        assert halved(audio).dtype == torch.float32 and features(audio.double()).dtype == torch.float32


@pytest.mark.cuda
def test_cpu_equals_cuda(features):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    audio = load_audio(CLIPS[2], SR)[None]
    with torch.no_grad():
        on_gpu = MelSpectrogram().cuda()(audio.cuda())
        assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
        torch.testing.assert_close(on_gpu.cpu(), features(audio), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------------------- loading


def _write(path, data, rate=SR, subtype="PCM_16") -> str:
    import soundfile  # here, not at the top: the CUDA test of this file runs where soundfile is not installed

    soundfile.write(str(path), data, rate, subtype=subtype)
    return str(path)


def test_int16_scaling_matches_reference(tmp_path):
    raw = np.array([0, 16384, -16384, 32767, -32768, 1], dtype=np.int16)
    audio = load_audio(_write(tmp_path / "a.wav", raw), SR)
    assert audio.dtype == torch.float32 and audio.shape == (6,)
    assert torch.equal(audio, torch.from_numpy(raw.astype(np.float32) / 32768))


@pytest.mark.parametrize(
    "name, subtype",
    [("a24.wav", "PCM_24"), ("a32.wav", "PCM_32"), ("f32.wav", "FLOAT"), ("a.flac", "PCM_16"), ("a.ogg", "VORBIS")],
)
def test_formats(tmp_path, name, subtype):
    signal = (0.5 * np.sin(2 * np.pi * 300 * np.arange(4000) / SR)).astype(np.float32)
    audio = load_audio(_write(tmp_path / name, signal, subtype=subtype), SR)
    assert audio.dtype == torch.float32 and audio.ndim == 1
    if subtype == "VORBIS":  # lossy: compare loudness only
        assert abs(audio.square().mean().sqrt().item() - 0.5 / math.sqrt(2)) < 0.02
    else:
        assert audio.numel() == 4000
        assert np.abs(audio.numpy() - signal).max() < 1e-4


def test_real_clip_loads(tmp_path):
    import soundfile

    audio = load_audio(CLIPS[0], SR)
    assert audio.ndim == 1 and audio.numel() == soundfile.info(CLIPS[0]).frames
    assert 0 < audio.abs().max() <= 1


def _assert_audio_error(path, match, **kwargs):
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path, SR, **kwargs)
    assert os.fspath(path) in str(info.value)
    return info.value


def test_truncated_wav(tmp_path):
    whole = open(CLIPS[0], "rb").read()
    path = tmp_path / "truncated.wav"
    path.write_bytes(whole[: len(whole) // 2])
    assert _assert_audio_error(path, "truncated").reason == "truncated"
    header_only = tmp_path / "cut_in_header.wav"
    header_only.write_bytes(whole[:30])
    _assert_audio_error(header_only, "cannot read")


def test_wrong_sampling_rate(tmp_path):
    path = _write(tmp_path / "16k.wav", np.zeros(1600, dtype=np.float32), rate=16000)
    error = _assert_audio_error(path, "16000 Hz, expected 22050 Hz")
    assert error.reason == "sampling rate"


def test_resample_opt_in(tmp_path):
    signal = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    audio = load_audio(_write(tmp_path / "16k.wav", signal, rate=16000), SR, resample=True)
    assert audio.dtype == torch.float32 and audio.numel() == SR
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    assert np.abs(audio.numpy() - expected)[1000:-1000].max() < 2e-3  # away from the edges


def test_stereo_and_downmix(tmp_path):
    left, right = np.full(1000, 0.5), np.full(1000, -0.25)
    path = _write(tmp_path / "stereo.wav", np.stack([left, right], axis=1))
    assert _assert_audio_error(path, "2 channels").reason == "channels"
    audio = load_audio(path, SR, downmix=True)
    assert audio.shape == (1000,)
    torch.testing.assert_close(audio, torch.full((1000,), 0.125), atol=1e-4, rtol=0)


def test_empty_zero_length_garbage_and_missing(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert _assert_audio_error(empty, "0 bytes").reason == "empty"
    zero = _write(tmp_path / "zero.wav", np.zeros(0, dtype=np.int16))
    assert _assert_audio_error(zero, "no audio samples").reason == "empty"
    garbage = tmp_path / "notes.wav"
    garbage.write_text("this is not audio\n" * 20)
    assert _assert_audio_error(garbage, "cannot read").reason == "unreadable"
    assert _assert_audio_error(tmp_path / "nope.wav", "no such file").reason == "missing"


def test_audio_error_is_a_value_error_and_rebuilds_from_a_message():
    error = AudioError("x.wav: broken")
    assert isinstance(error, ValueError) and error.reason == "unreadable" and str(error) == "x.wav: broken"
