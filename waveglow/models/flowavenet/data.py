"""FloWaveNet's training and validation crops: whole mel frames, each owning exactly hop samples."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...audio import load_audio
from ...data import crop_segment
from .features import FloWaveNetMelSpectrogram

__all__ = ["FrameAlignedDataset", "FrameAlignedValidationDataset"]


class _FrameAlignedCrops(Dataset):
    """Items ``(mel (n_mel, frames), audio (frames * hop,))`` where each mel frame owns exactly hop samples.

    FloWaveNet's data (ksw0306 preprocessing.py and data.py): the features of the whole
    peak-normalised clip, the audio zero-padded or trimmed to ``(1 + T // hop) * hop`` samples,
    then a crop of ``frames = segment_length // hop`` frames and the matching samples. Clips
    shorter than that are zero-padded (a mel of 0 is the recipe's silence floor). ``features``
    defaults to :class:`~waveglow.models.flowavenet.features.FloWaveNetMelSpectrogram` of ``data_config``; its
    ``prepare_audio`` is applied to each clip first. Subclasses choose the first frame.
    """

    def __init__(self, files: Sequence[str], data_config, features: Optional[torch.nn.Module] = None) -> None:
        self.files = list(files)
        self.hop_length = data_config.hop_length
        self.frames = data_config.segment_length // data_config.hop_length
        if self.frames < 1:
            raise ValueError(f"segment_length {data_config.segment_length} is shorter than one frame of {self.hop_length}")
        self.sampling_rate = data_config.sampling_rate
        self.resample = data_config.resample
        self.downmix = data_config.downmix
        self.mel = features if features is not None else FloWaveNetMelSpectrogram.from_config(data_config)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        mel, audio = self.clip(index)  # (n_mel, F), (F * hop,)
        start = self.first_frame(mel.size(1))
        mel = F.pad(mel[:, start : start + self.frames], (0, max(0, start + self.frames - mel.size(1))))
        audio = crop_segment(audio, start * self.hop_length, self.frames * self.hop_length)
        return mel, audio  # (n_mel, frames), (frames * hop,)

    def clip(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole clip of file ``index`` -> (mel (n_mel, F), audio (F * hop,)), F = 1 + T // hop."""
        audio = load_audio(self.files[index], self.sampling_rate, resample=self.resample, downmix=self.downmix,
                           needed=self.mel.min_samples)
        audio = self.mel.prepare_audio(audio)  # (T,)
        with torch.no_grad():
            mel = self.mel(audio[None])[0]  # (n_mel, F)
        return mel, crop_segment(audio, 0, mel.size(1) * self.hop_length)

    def first_frame(self, n_frames: int) -> int:
        raise NotImplementedError


class FrameAlignedDataset(_FrameAlignedCrops):
    """Training crops for FloWaveNet: ``segment_length // hop`` frames at a uniformly random frame offset.

    Offsets come from ``torch.randint`` (or ``generator``, for single-process use).
    """

    def __init__(
        self,
        files: Sequence[str],
        data_config,
        features: Optional[torch.nn.Module] = None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(files, data_config, features)
        self.generator = generator

    def first_frame(self, n_frames: int) -> int:
        max_start = max(0, n_frames - self.frames)
        return int(torch.randint(0, max_start + 1, (1,), generator=self.generator).item())


class FrameAlignedValidationDataset(_FrameAlignedCrops):
    """Fixed crops for a validation loss: the centred ``segment_length // hop`` frames of each clip."""

    def first_frame(self, n_frames: int) -> int:
        return max(0, (n_frames - self.frames) // 2)
