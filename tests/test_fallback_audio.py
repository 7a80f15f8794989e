"""Features and WAV reading without librosa or soundfile (the GPU image has neither)."""

from __future__ import annotations

import glob
import os
import sys

import numpy as np
import pytest
import torch

from waveglow._fallback_audio import hz_to_slaney_mel, read_wav, slaney_mel_filterbank, slaney_mel_to_hz, wav_info
from waveglow.audio import AudioError, MelSpectrogram, check_audio_file, load_audio

from conftest import TEST_DATA

CLIP = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))[0]


@pytest.mark.parametrize("rate, n_fft, n_mels, fmin, fmax", [(22050, 1024, 80, 0.0, 8000.0), (16000, 512, 40, 50.0, None)])
def test_filterbank_equals_librosa(rate, n_fft, n_mels, fmin, fmax):
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False,
                                   norm="slaney", dtype=np.float64)
    ours = slaney_mel_filterbank(rate, n_fft, n_mels, fmin, fmax)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_mel_scale_round_trip_and_break_point():
    hz = np.array([0.0, 500.0, 999.9, 1000.0, 4000.0, 11025.0])
    np.testing.assert_allclose(slaney_mel_to_hz(hz_to_slaney_mel(hz)), hz, rtol=1e-12, atol=1e-9)
    assert hz_to_slaney_mel(np.array([1000.0]))[0] == pytest.approx(15.0)  # 1000 / (200/3)


def test_features_and_audio_without_librosa_or_soundfile(monkeypatch):
    audio = load_audio(CLIP, 22050)
    with torch.no_grad():
        expected = MelSpectrogram()(audio[None])
    monkeypatch.setitem(sys.modules, "librosa", None)  # import librosa -> ImportError
    monkeypatch.setitem(sys.modules, "soundfile", None)
    fallback_audio = load_audio(CLIP, 22050)
    assert torch.equal(fallback_audio, audio)
    with torch.no_grad():
        torch.testing.assert_close(MelSpectrogram()(fallback_audio[None]), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("subtype, tolerance", [("PCM_24", 1e-7), ("FLOAT", 0), ("PCM_U8", 1 / 64)])
def test_read_wav_scales_like_soundfile(tmp_path, subtype, tolerance):
    soundfile = pytest.importorskip("soundfile")
    signal = (0.5 * np.sin(np.arange(3000) / 7.0)).astype(np.float32)
    path = str(tmp_path / "a.wav")
    soundfile.write(path, signal, 22050, subtype=subtype)
    data, rate = read_wav(path)
    assert rate == 22050 and data.shape == (3000, 1) and data.dtype == np.float32
    assert np.abs(data[:, 0] - soundfile.read(path, dtype="float32")[0]).max() <= tolerance


@pytest.mark.parametrize("subtype, channels", [("PCM_16", 1), ("PCM_24", 2), ("FLOAT", 1)])
def test_header_check_without_soundfile_agrees_with_soundfile(tmp_path, monkeypatch, subtype, channels):
    soundfile = pytest.importorskip("soundfile")
    path = str(tmp_path / "a.wav")
    soundfile.write(path, np.zeros((3000, channels), np.float32), 16000, subtype=subtype)
    info = soundfile.info(path)
    assert wav_info(path) == (info.frames, info.samplerate, info.channels)
    monkeypatch.setitem(sys.modules, "soundfile", None)
    check_audio_file(path, 16000, downmix=True, needed=3000)
    with pytest.raises(AudioError, match="too short"):
        check_audio_file(path, 16000, downmix=True, needed=3001)
    with pytest.raises(AudioError, match="sampling rate 16000 Hz"):
        check_audio_file(path, 22050, downmix=True)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav file")
    with pytest.raises(AudioError, match="broken.wav: cannot read as WAV"):
        check_audio_file(str(broken), 16000)
