"""File lists in their three forms, training crops and fixed validation crops."""

from __future__ import annotations

import dataclasses
import glob
import os

import numpy as np
import pytest
import soundfile
import torch

from waveglow.audio import AudioError, MelSpectrogram, load_audio
from waveglow.config import DataConfig
from waveglow.data import AudioDataset, ValidationDataset, crop_segment, read_file_list

from conftest import TEST_DATA

CLIPS = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))
METADATA = os.path.join(TEST_DATA, "metadata.csv")
SR = 22050


def _config(**changes) -> DataConfig:
    return dataclasses.replace(DataConfig(), **changes)


def _wav(path, samples: np.ndarray, rate: int = SR) -> str:
    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return str(path)


# ------------------------------------------------------------------------------------ file lists


def test_test_data_is_small_and_consistent():
    assert 5 <= len(CLIPS) <= 8
    assert sum(os.path.getsize(c) for c in CLIPS) < 1_000_000
    assert read_file_list(METADATA) == CLIPS
    for clip in CLIPS:
        info = soundfile.info(clip)
        assert info.samplerate == SR and info.channels == 1 and info.duration < 3


def test_nvidia_list_of_paths_relative_to_the_list(tmp_path):
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "train_files.txt"
    listing.write_text("../audio/a.wav\n\n# a comment\n/abs/b.flac\n  c.wav  \r\n")
    assert read_file_list(listing) == [
        str(tmp_path / "audio" / "a.wav"),
        "/abs/b.flac",
        str(tmp_path / "lists" / "c.wav"),
    ]


def test_dle_list_with_transcripts(tmp_path):
    listing = tmp_path / "dle.txt"
    listing.write_text("wavs/LJ001-0001.wav|Printing, in the only sense|extra\nwavs/x.WAV|Hello.\n")
    assert read_file_list(listing) == [str(tmp_path / "wavs" / "LJ001-0001.wav"), str(tmp_path / "wavs" / "x.WAV")]


def test_ljspeech_metadata_ids_map_to_wavs_folder(tmp_path):
    listing = tmp_path / "metadata.csv"
    listing.write_text("LJ001-0001|Printing, in the only sense|Printing, in the only sense\nLJ001-0002|in being|in being\n")
    assert read_file_list(listing) == [str(tmp_path / "wavs" / "LJ001-0001.wav"), str(tmp_path / "wavs" / "LJ001-0002.wav")]


def test_relative_list_path_resolves_from_its_own_folder(monkeypatch):
    monkeypatch.chdir(os.path.dirname(TEST_DATA))
    assert read_file_list(os.path.join("data", "metadata.csv")) == CLIPS


def test_missing_list_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        read_file_list(tmp_path / "nope.txt")


# ----------------------------------------------------------------------------------------- crops


def test_item_shapes_for_the_default_config():
    mel, audio = AudioDataset(CLIPS, DataConfig())[0]
    assert mel.shape == (80, 63) and audio.shape == (16000,)
    assert mel.dtype == torch.float32 and audio.dtype == torch.float32


def test_mel_is_computed_on_the_crop():
    dataset = AudioDataset(CLIPS, _config(segment_length=8192), generator=torch.Generator().manual_seed(0))
    mel, audio = dataset[1]
    expected = MelSpectrogram.from_config(DataConfig())(audio[None])[0]
    torch.testing.assert_close(mel, expected, atol=0, rtol=0)


def test_random_crop_is_a_slice_of_the_clip():
    whole = load_audio(CLIPS[1], SR)
    dataset = AudioDataset(CLIPS, _config(segment_length=4096), generator=torch.Generator().manual_seed(5))
    starts = set()
    for _ in range(5):
        _, audio = dataset[1]
        start = next(s for s in range(whole.numel() - 4096 + 1) if torch.equal(whole[s : s + 4096], audio))
        starts.add(start)
    assert len(starts) > 1  # crops move


def test_short_clip_is_zero_padded_on_the_right(tmp_path):
    samples = np.linspace(-0.5, 0.5, 3000)
    path = _wav(tmp_path / "short.wav", samples)
    for dataset in (AudioDataset([path], DataConfig()), ValidationDataset([path], DataConfig())):
        mel, audio = dataset[0]
        assert audio.shape == (16000,) and mel.shape == (80, 63)
        torch.testing.assert_close(audio[:3000], load_audio(path, SR))
        assert torch.all(audio[3000:] == 0)


def test_crops_reproduce_under_a_fixed_seed():
    dataset = AudioDataset(CLIPS, _config(segment_length=4096))

    def draw():
        torch.manual_seed(1234)
        return [dataset[i][1] for i in range(len(CLIPS))]

    first, second = draw(), draw()
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    torch.manual_seed(99)
    assert not all(torch.equal(a, dataset[i][1]) for i, a in enumerate(first))


def test_crops_reproduce_with_a_generator():
    def draw(seed):
        dataset = AudioDataset(CLIPS, _config(segment_length=4096), generator=torch.Generator().manual_seed(seed))
        return [dataset[i % len(CLIPS)][1] for i in range(10)]

    torch.manual_seed(0)
    first = draw(7)
    torch.manual_seed(1)  # the global RNG does not matter when a generator is given
    assert all(torch.equal(a, b) for a, b in zip(first, draw(7)))


def test_crop_segment():
    audio = torch.arange(10.0)
    assert crop_segment(audio, 3, 4).tolist() == [3, 4, 5, 6]
    assert crop_segment(audio, 8, 4).tolist() == [8, 9, 0, 0]


def test_validation_crops_are_fixed_and_centred():
    dataset = ValidationDataset(CLIPS, DataConfig())
    whole = load_audio(CLIPS[1], SR)
    start = (whole.numel() - 16000) // 2
    torch.manual_seed(0)
    mel, audio = dataset[1]
    torch.manual_seed(1)
    mel_again, audio_again = dataset[1]
    assert torch.equal(audio, whole[start : start + 16000]) and torch.equal(audio, audio_again)
    assert torch.equal(mel, mel_again) and mel.shape == (80, 63)


# ------------------------------------------------------------------------------- near-silent guard


def _half_silent_clip(tmp_path) -> str:
    """4 s: 2.5 s of digital silence, then 1.5 s of a loud tone (61% of 4096-sample crops are silent)."""
    silence = np.zeros(int(2.5 * SR))
    tone = 0.5 * np.sin(2 * np.pi * 300 * np.arange(int(1.5 * SR)) / SR)
    return _wav(tmp_path / "mostly_silent.wav", np.concatenate([silence, tone]))


def test_min_crop_rms_redraws_silent_crops(tmp_path):
    path = _half_silent_clip(tmp_path)
    guarded = AudioDataset([path], _config(segment_length=4096, min_crop_rms=0.01), generator=torch.Generator().manual_seed(0))
    plain = AudioDataset([path], _config(segment_length=4096), generator=torch.Generator().manual_seed(0))
    rms = lambda a: a.square().mean().sqrt().item()  # noqa: E731
    guarded_rms = [rms(guarded[0][1]) for _ in range(20)]
    plain_rms = [rms(plain[0][1]) for _ in range(20)]
    assert sum(r < 0.01 for r in plain_rms) >= 6  # the guard is off by default
    assert sum(r < 0.01 for r in guarded_rms) <= 1  # up to 10 draws: p(silent) = 0.61 ** 10 < 0.01


def test_min_crop_rms_gives_up_on_a_silent_file(tmp_path):
    path = _wav(tmp_path / "silence.wav", np.zeros(SR))
    mel, audio = AudioDataset([path], _config(segment_length=4096, min_crop_rms=0.01))[0]
    assert audio.shape == (4096,) and torch.all(audio == 0) and mel.shape == (80, 17)


# ------------------------------------------------------------------------------------- bad files


def test_bad_file_raises_audio_error_naming_it(tmp_path):
    path = _wav(tmp_path / "rate16k.wav", np.zeros(16000), rate=16000)
    for dataset in (AudioDataset([path], DataConfig()), ValidationDataset([path], DataConfig())):
        with pytest.raises(AudioError, match="rate16k.wav"):
            dataset[0]


def test_dataset_resample_and_downmix_options(tmp_path):
    mono16k = _wav(tmp_path / "mono16k.wav", 0.3 * np.sin(np.arange(16000) / 10), rate=16000)
    stereo = _wav(tmp_path / "stereo.wav", 0.3 * np.stack([np.sin(np.arange(20000) / 7)] * 2, axis=1))
    dataset = AudioDataset([mono16k, stereo], _config(segment_length=8192, resample=True, downmix=True))
    assert dataset[0][1].shape == (8192,) and dataset[1][1].shape == (8192,)
    with pytest.raises(AudioError, match="channels"):
        AudioDataset([stereo], _config(segment_length=8192))[0]
