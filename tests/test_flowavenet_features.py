"""FloWaveNet's features against an independent float64 numpy rendering of ksw0306's recipe."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import torch

from waveglow.audio import MelSpectrogram, load_audio
from waveglow.models.flowavenet import FloWaveNetMelSpectrogram
from waveglow.config import DataConfig

from conftest import TEST_DATA
from test_audio import _numpy_mel_basis  # Slaney's mel filterbank written out in numpy

CLIPS = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))


def numpy_flowavenet_mel(wav: np.ndarray, sr=22050, n_fft=1024, hop=256, n_mels=80, fmin=125.0, fmax=7600.0) -> np.ndarray:
    """(T,) -> (n_mels, 1 + T // hop): reflect-padded power STFT, Slaney mel, dB - 20, clipped to [0, 1]."""
    wav = np.asarray(wav, dtype=np.float64)
    padded = np.pad(wav, n_fft // 2, mode="reflect")
    frames = 1 + (len(padded) - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    segments = np.stack([padded[i * hop : i * hop + n_fft] * window for i in range(frames)], axis=1)
    power = np.abs(np.fft.rfft(segments, axis=0)) ** 2  # (n_fft // 2 + 1, frames)
    mel = _numpy_mel_basis(sr, n_fft, n_mels, fmin, fmax) @ power
    db = 20 * np.log10(np.maximum(1e-4, mel)) - 20
    return np.clip((db + 100) / 100, 0, 1)


def _peak_normalised(path: str) -> np.ndarray:
    wav = load_audio(path, 22050).numpy().astype(np.float64)
    return wav / np.abs(wav).max() * 0.999


@pytest.mark.parametrize("path", CLIPS[:4], ids=os.path.basename)
def test_features_match_the_float64_recipe_on_speech(path):
    features = FloWaveNetMelSpectrogram()
    audio = features.prepare_audio(load_audio(path, 22050))
    np.testing.assert_allclose(audio.numpy(), _peak_normalised(path), atol=1e-6, rtol=0)
    got = features(audio[None])[0].numpy()
    want = numpy_flowavenet_mel(_peak_normalised(path))
    assert got.shape == (80, 1 + audio.numel() // 256) == want.shape
    assert np.abs(got - want).max() < 1e-3 and np.abs(got - want).mean() < 1e-5
    assert 0 <= got.min() and got.max() <= 1 and got.max() > 0.5  # speech reaches the upper range


def test_prepare_audio_peaks_at_0999_per_clip_and_keeps_silence():
    audio = torch.stack([torch.linspace(-0.2, 0.1, 1000), torch.zeros(1000)])
    prepared = FloWaveNetMelSpectrogram.prepare_audio(audio)
    torch.testing.assert_close(prepared[0].abs().max(), torch.tensor(0.999))
    assert torch.equal(prepared[1], torch.zeros(1000))
    assert torch.equal(MelSpectrogram().prepare_audio(audio), audio)  # WaveGlow's recipe: unchanged


def test_from_config_takes_the_data_config_and_differs_from_waveglows():
    config = DataConfig(mel_fmin=125.0, mel_fmax=7600.0)
    features = FloWaveNetMelSpectrogram.from_config(config)
    reference = FloWaveNetMelSpectrogram()
    assert torch.equal(features.mel_basis, reference.mel_basis)
    audio = features.prepare_audio(load_audio(CLIPS[0], 22050))[None]
    assert not torch.allclose(features(audio), MelSpectrogram.from_config(config)(audio), atol=0.1)
    with pytest.raises(ValueError, match="too short"):
        features(torch.zeros(1, 100))


# ------------------------------------------------------------------------- frame-aligned data


def _data_config(segment_length=4096):
    return DataConfig(segment_length=segment_length, mel_fmin=125.0, mel_fmax=7600.0)


def test_frame_aligned_crops_are_slices_of_the_whole_clip():
    from waveglow.models.flowavenet import FrameAlignedDataset

    dataset = FrameAlignedDataset(CLIPS[:2], _data_config(15872), generator=torch.Generator().manual_seed(0))
    features = FloWaveNetMelSpectrogram()
    audio = features.prepare_audio(load_audio(CLIPS[0], 22050))
    whole = features(audio[None])[0]
    padded = torch.nn.functional.pad(audio, (0, whole.size(1) * 256 - audio.numel()))
    starts = set()
    for _ in range(4):
        mel, crop = dataset[0]
        assert mel.shape == (80, 62) and crop.shape == (62 * 256,)
        start = next(s for s in range(whole.size(1) - 61) if torch.equal(whole[:, s : s + 62], mel))
        assert torch.equal(crop, padded[start * 256 : (start + 62) * 256])
        starts.add(start)
    assert len(starts) > 1  # random frame offsets


def test_short_clips_are_zero_padded_and_validation_crops_are_centred():
    from waveglow.models.flowavenet import FrameAlignedValidationDataset

    long_config = _data_config(256 * 400)
    dataset = FrameAlignedValidationDataset(CLIPS[:1], long_config)
    mel, crop = dataset[0]
    frames = 1 + load_audio(CLIPS[0], 22050).numel() // 256
    assert frames < 400 and mel.shape == (80, 400) and crop.shape == (400 * 256,)
    assert torch.equal(mel[:, frames:], torch.zeros(80, 400 - frames))
    assert torch.equal(crop[frames * 256 :], torch.zeros((400 - frames) * 256))
    assert abs(crop.abs().max().item() - 0.999) < 1e-6  # peak-normalised
    short = FrameAlignedValidationDataset(CLIPS[:1], _data_config(2560))
    first, again = short[0], short[0]
    assert torch.equal(first[0], again[0])
    assert torch.equal(first[0], dataset.clip(0)[0][:, (frames - 10) // 2 : (frames - 10) // 2 + 10])
