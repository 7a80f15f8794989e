"""FloWaveNet (Kim, Lee, Song, Kim and Yoon, arXiv 1811.02155), ksw0306's reference made a family.

``model.py`` the model (a :class:`~waveglow.models.base.FlowVocoder`), ``layers.py`` its
building blocks, ``config.py`` its ``flowavenet_config`` section, ``loss.py`` the objective,
``features.py`` and ``data.py`` its features and frame-aligned crops, ``readers.py`` ksw0306's
files, ``fast.py`` the exact fast inference path (``model.fast()``), ``family.py`` the registry
record.
"""

from .config import HOP_LENGTH, FloWaveNetConfig
from .data import FrameAlignedDataset, FrameAlignedValidationDataset
from .family import FAMILY
from .fast import FastFloWaveNet, FastWaveNet
from .features import FloWaveNetMelSpectrogram
from .loss import FloWaveNetLoss
from .model import (
    CHUNK_OVERLAP_FRAMES, ActNorm, AffineCoupling, FloWaveNet, WaveNet, WeightNormConvTranspose2d, ZeroConv1d,
    build_flowavenet, initialize, squeeze, unsqueeze,
)
from .readers import infer_flowavenet_config, is_flowavenet_state_dict, read_ksw0306

__all__ = [
    "FloWaveNet", "FloWaveNetConfig", "FloWaveNetLoss", "FastFloWaveNet", "FastWaveNet", "FloWaveNetMelSpectrogram",
    "FrameAlignedDataset", "FrameAlignedValidationDataset", "FAMILY", "HOP_LENGTH", "CHUNK_OVERLAP_FRAMES",
    "ActNorm", "AffineCoupling", "WaveNet", "WeightNormConvTranspose2d", "ZeroConv1d", "initialize", "squeeze",
    "unsqueeze", "build_flowavenet", "infer_flowavenet_config", "is_flowavenet_state_dict", "read_ksw0306",
]
