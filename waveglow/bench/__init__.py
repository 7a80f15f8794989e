"""The benchmark library behind ``waveglow-benchmark`` (:mod:`waveglow.cli.benchmark`).

- :mod:`.settings`: what a run measures (:class:`Settings`, :class:`StreamSettings`);
- :mod:`.meters`: synchronised timing, peak tensor and resident memory, subnormal counts;
- :mod:`.models`: configs (a path, or a family's defaults), random or loaded models, precisions,
  and the speech clip (a file, or a synthesised speech-like signal: nothing is read from a checkout);
- :mod:`.inference`: inference rows, one per mode (plain, the model's ``fast_variants()``, compile,
  cudagraph, onnxruntime), and reduced precisions against float32;
- :mod:`.training`: training-step rows, and steps resumed from a training checkpoint's state;
- :mod:`.families`: families side by side on the same speech;
- :mod:`.stream`: the streaming benchmark and its plot;
- :mod:`.markdown`: the tables.

Every row asks the model (its fast variants, hop, latent layout, default sigma, receptive field):
nothing here depends on which family it is.
"""

from .families import family_rows
from .inference import accuracy_rows, inference_rows, model_modes
from .markdown import markdown, stream_markdown
from .models import default_config, default_configs, random_model, speech_clip
from .settings import Settings, StreamSettings
from .stream import stream_benchmark
from .training import trained_state_rows, training_rows

__all__ = [
    "Settings", "StreamSettings", "accuracy_rows", "default_config", "default_configs", "family_rows",
    "inference_rows", "markdown", "model_modes", "random_model", "speech_clip", "stream_benchmark",
    "stream_markdown", "trained_state_rows", "training_rows",
]
