"""WaveGlow: a flow-based generative network for speech synthesis, in PyTorch.

    from waveglow import load_checkpoint
    model = load_checkpoint("waveglow_256channels_universal_v5.pt").remove_weight_norm()
    audio = model.infer(mel, sigma=0.6)  # mel (B, 80, frames) -> audio (B, 256 * frames)
"""

from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from .config import Config, ConfigError, load_config
from .loss import WaveGlowLoss
from .model import WaveGlow
from .denoiser import Denoiser
from .synthesis import synthesize

__all__ = [
    "WaveGlow",
    "WaveGlowLoss",
    "Config",
    "ConfigError",
    "load_config",
    "CheckpointError",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "Denoiser",
    "synthesize",
]
