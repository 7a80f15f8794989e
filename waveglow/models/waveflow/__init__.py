"""WaveFlow (Ping et al., ICML 2020) and NanoFlow (Lee et al., NeurIPS 2020), L0SG/NanoFlow's reference made a family.

``model.py`` the model (every coupling type, a :class:`~waveglow.models.base.FlowVocoder`),
``layers.py`` its building blocks, ``config.py`` its ``waveflow_config`` section and checks,
``loss.py`` the objective, ``readers.py`` L0SG's files, ``fast.py`` the exact fast inverse,
``family.py`` the registry record. Features and training crops are WaveGlow's (the same recipe).
"""

from .config import COUPLING_TYPES, HOP_LENGTH, WaveFlowConfig
from .family import FAMILY
from .fast import FastWaveFlow
from .loss import WaveFlowLoss
from .layers import Wavenet2D, ZeroConv2d, fold, receptive_field_samples, unfold
from .model import WaveFlow
from .readers import infer_waveflow_config, is_waveflow_state_dict, read_l0sg

__all__ = [
    "WaveFlow", "WaveFlowConfig", "WaveFlowLoss", "FastWaveFlow", "FAMILY", "HOP_LENGTH", "COUPLING_TYPES",
    "Wavenet2D", "ZeroConv2d", "fold", "unfold", "receptive_field_samples", "infer_waveflow_config",
    "is_waveflow_state_dict", "read_l0sg",
]
