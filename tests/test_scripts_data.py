"""waveglow-prepare-dataset and waveglow-compute-mels on good and bad files."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from waveglow.audio import load_audio, mel_spectrogram
from waveglow.cli import compute_mels, prepare_dataset
from waveglow.config import DataConfig
from waveglow.data import read_file_list

from conftest import CONFIGS, REPO, TEST_DATA, checkout_env

CLIPS = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))
SR = 22050


def _bad_files(folder) -> dict[str, str]:
    """One file per problem, in ``folder`` -> {problem: path}; "missing" is never created."""
    folder.mkdir(parents=True, exist_ok=True)
    whole = open(CLIPS[0], "rb").read()
    (folder / "truncated.wav").write_bytes(whole[: len(whole) // 3])
    soundfile.write(str(folder / "rate16k.wav"), 0.1 * np.ones(16000), 16000, subtype="PCM_16")
    soundfile.write(str(folder / "stereo.wav"), 0.1 * np.ones((22050, 2)), SR, subtype="PCM_16")
    (folder / "empty.wav").write_bytes(b"")
    soundfile.write(str(folder / "zero_length.wav"), np.zeros(0, dtype=np.int16), SR)
    (folder / "not_audio.wav").write_text("hello, I am a text file\n" * 50)
    names = ["truncated", "rate16k", "stereo", "empty", "zero_length", "not_audio", "missing"]
    return {name: str(folder / f"{name}.wav") for name in names}


def _table(out: str) -> dict[str, int]:
    """The summary table's rows: {status: files}."""
    rows = [re.match(r"^  (.+?)\s+(\d+)(\s+[\d.-]+)?$", line) for line in out.splitlines()]
    return {row.group(1): int(row.group(2)) for row in rows if row}


@pytest.fixture
def dataset_folder(tmp_path):
    """An LJSpeech-layout folder: the test clips plus every kind of bad file, all in metadata.csv."""
    root = tmp_path / "dataset"
    shutil.copytree(os.path.join(TEST_DATA, "wavs"), root / "wavs")
    bad = _bad_files(root / "wavs")
    ids = [os.path.basename(c)[:-4] for c in CLIPS] + list(bad)
    (root / "metadata.csv").write_text("".join(f"{i}|text|text\n" for i in ids))
    return root, bad


# ---------------------------------------------------------------------------------- prepare_dataset


def test_prepare_dataset_skips_bad_files_and_splits(dataset_folder, tmp_path, capsys):
    root, bad = dataset_folder
    out = tmp_path / "lists"
    args = [str(root), "-o", str(out), "--validation_size", "2", "--test_size", "1", "--seed", "7"]
    assert prepare_dataset.main(args) == 0
    captured = capsys.readouterr()
    for path in bad.values():
        assert sum(path in line for line in captured.err.splitlines()) == 1, path  # one line each
    assert _table(captured.out) == {"ok": 7, "truncated": 1, "sampling rate": 1, "channels": 1,
                                    "empty": 2, "unreadable": 1, "missing": 1, "total": 14}
    lists = [read_file_list(out / name) for name in prepare_dataset.LIST_NAMES]
    assert [len(files) for files in lists] == [4, 2, 1]
    assert sorted(sum(lists, [])) == sorted(str(root / "wavs" / os.path.basename(c)) for c in CLIPS)
    assert not (out / "train_files.txt").read_text().startswith("/")  # relative to the list's folder


def test_prepare_dataset_is_deterministic(dataset_folder, tmp_path):
    root, _ = dataset_folder
    contents = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert prepare_dataset.main([str(root), "-o", str(out), "--validation_size", "2", "--test_size", "2"]) == 0
        contents.append([(out / name).read_text() for name in prepare_dataset.LIST_NAMES])
    assert contents[0] == contents[1]
    prepare_dataset.main([str(root), "-o", str(tmp_path / "c"), "--validation_size", "2", "--test_size", "2", "--seed", "3"])
    assert [(tmp_path / "c" / n).read_text() for n in prepare_dataset.LIST_NAMES] != contents[0]


def test_prepare_dataset_silence_clipping_duration_and_options(tmp_path, capsys):
    folder = tmp_path / "plain"  # a folder of audio files, no metadata.csv, in subfolders
    (folder / "sub").mkdir(parents=True)
    tone = 0.3 * np.sin(2 * np.pi * 200 * np.arange(SR) / SR)
    soundfile.write(str(folder / "tone.wav"), tone, SR, subtype="PCM_16")
    soundfile.write(str(folder / "sub" / "tone.flac"), tone, SR)
    soundfile.write(str(folder / "silent.wav"), np.zeros(SR), SR, subtype="PCM_16")
    soundfile.write(str(folder / "clipped.wav"), np.clip(10 * tone, -1, 1), SR, subtype="PCM_16")
    soundfile.write(str(folder / "short.wav"), tone[:2000], SR, subtype="PCM_16")
    soundfile.write(str(folder / "rate16k.wav"), tone[:16000], 16000, subtype="PCM_16")
    out = tmp_path / "lists"
    assert prepare_dataset.main([str(folder), "-o", str(out), "--validation_size", "0", "--test_size", "1"]) == 0
    err = capsys.readouterr().err
    for name, word in [("silent", "RMS"), ("clipped", "full scale"), ("short", "min_duration"), ("rate16k", "16000 Hz")]:
        assert any(f"{name}.wav" in line and word in line for line in err.splitlines()), name
    assert prepare_dataset.main([str(folder), "-o", str(out), "--validation_size", "0", "--test_size", "1",
                                 "--resample", "--absolute"]) == 0
    listed = sum((read_file_list(out / n) for n in prepare_dataset.LIST_NAMES), [])
    assert sorted(listed) == sorted(str(folder / n) for n in ["rate16k.wav", "sub/tone.flac", "tone.wav"])
    assert (out / "test_files.txt").read_text().startswith("/")


def test_prepare_dataset_errors(tmp_path, capsys):
    assert prepare_dataset.main([str(tmp_path / "nothing_here"), "-o", str(tmp_path / "o")]) == 1
    assert "nothing_here" in capsys.readouterr().err
    assert prepare_dataset.main([TEST_DATA, "-o", str(tmp_path / "o")]) == 1  # 7 files cannot hold out 100 + 100
    assert "validation" in capsys.readouterr().err
    assert prepare_dataset.main([TEST_DATA, "-o", str(tmp_path / "o"), "-c", str(tmp_path / "nope.json")]) == 1
    assert "nope.json" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- compute_mels


def test_compute_mels_writes_pt_files(tmp_path, capsys):
    out = tmp_path / "mels"
    args = ["-f", os.path.join(TEST_DATA, "metadata.csv"), "-o", str(out), "-c", os.path.join(CONFIGS, "config.json")]
    assert compute_mels.main(args) == 0
    assert sorted(os.listdir(out)) == sorted(os.path.basename(c) + ".pt" for c in CLIPS)
    mel = torch.load(out / (os.path.basename(CLIPS[0]) + ".pt"), weights_only=True)
    expected = mel_spectrogram(load_audio(CLIPS[0], SR), DataConfig())
    assert mel.dtype == torch.float32 and mel.shape == expected.shape and mel.shape[0] == 80
    torch.testing.assert_close(mel, expected, atol=0, rtol=0)
    assert "wrote 7 of 7" in capsys.readouterr().out


def test_compute_mels_npy(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{CLIPS[1]}|some text\n")
    assert compute_mels.main(["-f", str(listing), "-o", str(tmp_path / "m"), "--format", "npy"]) == 0
    name = os.path.basename(CLIPS[1]) + ".npy"
    assert os.listdir(tmp_path / "m") == [name]
    array = np.load(tmp_path / "m" / name)
    assert array.dtype == np.float32 and array.shape == (80, 1 + soundfile.info(CLIPS[1]).frames // 256)


def test_compute_mels_skips_bad_files_and_fails_at_the_end(tmp_path, capsys):
    bad = _bad_files(tmp_path / "bad")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in [CLIPS[0], *bad.values(), CLIPS[1]]))
    assert compute_mels.main(["-f", str(listing), "-o", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    for path in bad.values():
        assert sum(path in line for line in err.splitlines()) == 1, path
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path / "m")) == sorted(os.path.basename(c) + ".pt" for c in CLIPS[:2])


def test_compute_mels_bad_arguments(tmp_path, capsys):
    assert compute_mels.main(["-f", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "m")]) == 1
    assert "nope.txt" in capsys.readouterr().err


def test_python_dash_m_runs_from_the_repo_root(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{CLIPS[0]}\n")
    result = subprocess.run(
        [sys.executable, "-m", "waveglow", "compute-mels", "-f", str(listing), "-o", str(tmp_path / "m")],
        cwd=REPO, env=checkout_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path / "m") == [os.path.basename(CLIPS[0]) + ".pt"]
