"""File lists and the datasets of (mel, audio) crops that WaveGlow trains and validates on.

File lists come in three forms, all read by :func:`read_file_list`:

- one audio path per line (NVIDIA's ``train_files.txt``);
- ``path|transcript`` lines (NVIDIA DeepLearningExamples);
- LJSpeech's ``metadata.csv`` (``id|text|normalized``): an entry without an audio file extension
  is an utterance id, read from ``wavs/<id>.wav`` beside the list.

Relative paths resolve against the folder holding the list (or, where only that exists, the
working directory, as NVIDIA's lists of repository-relative paths expect). Blank lines and lines
starting with ``#`` are skipped; Windows line ends (CRLF) and a UTF-8 byte-order mark are accepted.
The same reader serves mel lists (``suffixes=MEL_SUFFIXES``).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .audio import MelSpectrogram, check_audio_file, load_audio, min_samples
from .errors import AudioError, TrainingError

__all__ = [
    "AUDIO_SUFFIXES",
    "MEL_SUFFIXES",
    "read_file_list",
    "training_file_list",
    "crop_segment",
    "AudioDataset",
    "ValidationDataset",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".w64", ".caf")
MEL_SUFFIXES = (".pt", ".npy")
MAX_CROP_DRAWS = 10  # attempts at a crop louder than data_config.min_crop_rms


def _resolve_entry(entry: str, folder: str, suffixes: tuple[str, ...]) -> str:
    """One list entry -> a normalised path: beside the list, else as given when only that exists."""
    entry = os.path.expanduser(entry)
    if suffixes == AUDIO_SUFFIXES and not entry.lower().endswith(AUDIO_SUFFIXES):
        entry = os.path.join("wavs", entry + ".wav")  # an LJSpeech utterance id
    beside_list = os.path.normpath(os.path.join(folder, entry))
    if not os.path.isabs(entry) and not os.path.exists(beside_list) and os.path.exists(entry):
        return os.path.normpath(entry)
    return beside_list


def read_file_list(path: str | os.PathLike, suffixes: tuple[str, ...] = AUDIO_SUFFIXES) -> list[str]:
    """Paths listed in ``path`` (any of the three forms), resolved and in file order.

    ``suffixes``: what the entries are; with the audio suffixes (the default) an entry without
    one is an LJSpeech id. Raises OSError when the list cannot be read and UnicodeDecodeError
    (a ValueError) when it is not UTF-8 text.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8-sig") as f:  # a byte-order mark (Windows editors) is skipped
        entries = [line.split("|", 1)[0].strip() for line in f]
    return [_resolve_entry(e, folder, suffixes) for e in entries if e and not e.startswith("#")]


def training_file_list(data_config, key: str) -> list[str]:
    """The files of ``data_config.<key>`` (``training_files`` or ``validation_files``), every one checked.

    Raises :class:`TrainingError` (one line naming the key, the list and the first bad file) when
    the list is empty or unreadable, or any listed file is missing, unreadable, too short for the
    features, or at a rate or channel count the data config does not accept. Only headers are read.
    """
    path = getattr(data_config, key)
    if not path:
        raise TrainingError(f"data_config.{key} is empty: give a file list")
    try:
        files = read_file_list(path)
    except (OSError, ValueError) as e:
        raise TrainingError(f"data_config.{key} {path}: {e}") from None
    if not files:
        raise TrainingError(f"data_config.{key} {path}: lists no audio files")
    missing = [f for f in files if not os.path.isfile(f)]
    if len(missing) == len(files):
        raise TrainingError(f"data_config.{key} {path}: none of its {len(files)} files exist (first: {missing[0]})")
    if missing:
        raise TrainingError(f"data_config.{key} {path}: {len(missing)} listed files do not exist (first: {missing[0]})")
    problems = []
    for file in files:
        try:
            check_audio_file(file, data_config.sampling_rate, resample=data_config.resample,
                             downmix=data_config.downmix, needed=min_samples(data_config.filter_length))
        except AudioError as e:
            problems.append(str(e))
    if problems:
        raise TrainingError(f"data_config.{key} {path}: {len(problems)} listed files cannot be used (first: {problems[0]}); "
                            "leave them out of the list (waveglow-prepare-dataset checks a dataset)")
    return files


def crop_segment(audio: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """``audio[start:start + length]``, zero-padded on the right to ``length``: (T,) -> (length,)."""
    segment = audio[start : start + length]
    return F.pad(segment, (0, length - segment.numel()))


def _rms(audio: torch.Tensor) -> float:
    return audio.square().mean().sqrt().item()


class _CropDataset(Dataset):
    """Items ``(mel (n_mel, 1 + segment_length // hop), audio (segment_length,))``, one per file.

    Subclasses choose where each crop starts.
    """

    def __init__(self, files: Sequence[str], data_config) -> None:
        self.files = list(files)
        self.segment_length = data_config.segment_length
        self.sampling_rate = data_config.sampling_rate
        self.resample = data_config.resample
        self.downmix = data_config.downmix
        self.mel = MelSpectrogram.from_config(data_config)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        audio = self.load(index)  # (T,)
        segment = self.crop(audio)  # (segment_length,)
        with torch.no_grad():
            mel = self.mel(segment[None])[0]  # (n_mel, frames)
        return mel, segment

    def load(self, index: int) -> torch.Tensor:
        """The whole clip of file ``index`` -> (T,) float32."""
        return load_audio(self.files[index], self.sampling_rate, resample=self.resample, downmix=self.downmix,
                          needed=self.mel.min_samples)

    def crop(self, audio: torch.Tensor) -> torch.Tensor:
        """(T,) -> (segment_length,)."""
        raise NotImplementedError


class AudioDataset(_CropDataset):
    """Training items as in the reference: a random ``segment_length`` crop of each file.

    Clips shorter than ``segment_length`` are zero-padded on the right. Crop starts come from
    ``torch.randint``, so the global torch seed (and DataLoader's per-worker seeding) reproduces
    them; pass ``generator`` to draw from that instead (single-process use: every DataLoader worker
    would get a copy of the same generator).

    With ``data_config.min_crop_rms > 0``, a crop whose RMS is below it is re-drawn, up to
    ``MAX_CROP_DRAWS`` draws in all, keeping the loudest when none passes.
    """

    def __init__(self, files: Sequence[str], data_config, generator: Optional[torch.Generator] = None) -> None:
        super().__init__(files, data_config)
        self.min_crop_rms = data_config.min_crop_rms
        self.generator = generator

    def random_start(self, n_samples: int) -> int:
        """A start in ``[0, n_samples - segment_length]``, uniformly; 0 for short clips."""
        max_start = max(0, n_samples - self.segment_length)
        return int(torch.randint(0, max_start + 1, (1,), generator=self.generator).item())

    def random_crop(self, audio: torch.Tensor) -> torch.Tensor:
        """(T,) -> a (segment_length,) crop at a random start."""
        return crop_segment(audio, self.random_start(audio.numel()), self.segment_length)

    def crop(self, audio: torch.Tensor) -> torch.Tensor:
        """A random (segment_length,) crop, re-drawn while quieter than ``min_crop_rms``."""
        segment = self.random_crop(audio)
        if self.min_crop_rms <= 0 or audio.numel() <= self.segment_length:
            return segment  # the guard is off, or the clip has only one crop
        best, best_rms = segment, _rms(segment)
        for _ in range(MAX_CROP_DRAWS - 1):
            if best_rms >= self.min_crop_rms:
                break
            segment = self.random_crop(audio)
            rms = _rms(segment)
            if rms > best_rms:
                best, best_rms = segment, rms
        return best


class ValidationDataset(_CropDataset):
    """Fixed crops for a validation loss: the centred ``segment_length`` samples of each file.

    The centre avoids the leading silence most recordings start with; clips shorter than
    ``segment_length`` are kept whole and zero-padded on the right. Items never change.
    """

    def crop(self, audio: torch.Tensor) -> torch.Tensor:
        start = max(0, (audio.numel() - self.segment_length) // 2)
        return crop_segment(audio, start, self.segment_length)
