"""Flow-based neural vocoders in PyTorch: WaveGlow (and the model families of :mod:`waveglow.models`).

    from waveglow import load_for_inference, synthesize
    model, data_config = load_for_inference("waveglow_256channels_universal_v5.pt")
    audio = synthesize(model, mel, sigma=0.6)  # mel (80, frames) -> audio (256 * frames,)

    from waveglow import load_checkpoint
    model = load_checkpoint("waveglow_256channels_universal_v5.pt").remove_weight_norm()
    audio = model.infer(mel, sigma=0.6)  # mel (B, 80, frames) -> audio (B, 256 * frames)
"""

from .audio import MelSpectrogram, load_audio
from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from .config import Config, ConfigError, load_config
from .denoiser import Denoiser
from .fast import FastWaveGlow
from .loss import WaveGlowLoss
from .models import family_of
from .models.waveglow import WaveGlow
from .synthesis import load_for_inference, synthesize

__all__ = [
    "WaveGlow",
    "WaveGlowLoss",
    "FastWaveGlow",
    "family_of",
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
