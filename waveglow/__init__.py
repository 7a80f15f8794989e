"""Flow-based neural vocoders in PyTorch: WaveGlow, FloWaveNet, WaveFlow and NanoFlow (the model families of
:mod:`waveglow.models`).

    from waveglow import load_for_inference, synthesize
    model, data_config = load_for_inference("waveglow_256channels_universal_v5.pt")
    audio = synthesize(model, mel, sigma=0.6)  # mel (80, frames) -> audio (256 * frames,)

    from waveglow import load_checkpoint
    model = load_checkpoint("waveglow_256channels_universal_v5.pt").remove_weight_norm()
    audio = model.infer(mel, sigma=0.6)  # mel (B, 80, frames) -> audio (B, 256 * frames)
"""

from .audio import MelSpectrogram, load_audio
from .checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from .config import Config, load_config
from .denoiser import Denoiser
from .errors import CheckpointError, ConfigError, StaleWeightsError
from .family import ModelFamily
from .models import FlowVocoder
from .models.flowavenet import FastFloWaveNet, FloWaveNet, FloWaveNetLoss, FloWaveNetMelSpectrogram
from .models.waveflow import FastWaveFlow, WaveFlow, WaveFlowLoss
from .models.waveglow import FastWaveGlow, WaveGlow, WaveGlowLoss
from .registry import family_of, register
from .synthesis import load_for_inference, synthesize

__all__ = [
    "WaveGlow",
    "WaveGlowLoss",
    "FastWaveGlow",
    "FloWaveNet",
    "FloWaveNetLoss",
    "FastFloWaveNet",
    "FloWaveNetMelSpectrogram",
    "WaveFlow",
    "WaveFlowLoss",
    "FastWaveFlow",
    "FlowVocoder",
    "ModelFamily",
    "register",
    "family_of",
    "StaleWeightsError",
    "Config",
    "ConfigError",
    "load_config",
    "CheckpointError",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "MelSpectrogram",
    "load_audio",
    "Denoiser",
    "synthesize",
    "load_for_inference",
]
