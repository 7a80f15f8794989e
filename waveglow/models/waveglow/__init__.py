"""WaveGlow (Prenger, Valle and Catanzaro, arXiv 1811.00002), NVIDIA's reference made a family.

``model.py`` the model (its blocks in ``layers.py``), ``config.py`` its ``waveglow_config`` section, ``loss.py`` the objective,
``readers.py`` NVIDIA's and DeepLearningExamples' files, ``fast.py`` the exact fast inference
path, ``family.py`` the registry record.
"""

from .config import WaveGlowConfig, WNConfig
from .family import FAMILY
from .fast import FastWaveGlow
from .loss import WaveGlowLoss
from .layers import (
    UPSAMPLE_KERNEL, UPSAMPLE_STRIDE, WN, FrozenInverse1x1Conv, Invertible1x1Conv, WeightNormConv1d, affine_coupling,
    affine_coupling_inverse, fold, gated_activation, unfold,
)
from .model import WaveGlow
from .readers import convert_state_dict, infer_waveglow_config

__all__ = [
    "WaveGlow", "WaveGlowConfig", "WNConfig", "WaveGlowLoss", "FastWaveGlow", "FAMILY", "WN", "Invertible1x1Conv", "FrozenInverse1x1Conv",
    "WeightNormConv1d", "UPSAMPLE_KERNEL", "UPSAMPLE_STRIDE", "affine_coupling", "affine_coupling_inverse", "fold",
    "gated_activation", "unfold", "convert_state_dict", "infer_waveglow_config",
]
