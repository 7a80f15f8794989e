"""torch.hub entry points.

    model = torch.hub.load("/path/to/this/repo", "waveglow", checkpoint="waveglow_256.pt", source="local")
    audio = waveglow.synthesize(model, mel, sigma=0.6)
"""

import os

dependencies = ["torch"]

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "config.json")


def waveglow(checkpoint=None, map_location="cpu", remove_weight_norm=True, **kwargs):
    """A WaveGlow in eval mode.

    With ``checkpoint`` (any file ``waveglow.load_checkpoint`` reads, NVIDIA's pickles included)
    the trained model, ``kwargs`` going to ``load_checkpoint`` (e.g. ``config=``). Without it, an
    untrained model of the default config (configs/config.json), ``kwargs`` overriding its
    ``waveglow_config`` entries (e.g. ``n_flows=4``). Weight norm is folded away unless
    ``remove_weight_norm=False`` (keep it to train further). For the fastest inference at any
    length, wrap the final model once in ``waveglow.FastWaveGlow(model, cache_conditioning=True)``
    (2 GB for the default model in float32), as ``waveglow.load_for_inference`` does.
    """
    from waveglow import WaveGlow, load_checkpoint, load_config

    if checkpoint is not None:
        model = load_checkpoint(checkpoint, map_location=map_location, **kwargs)
    else:
        config = load_config(_DEFAULT_CONFIG).waveglow_config.to_kwargs()
        model = WaveGlow(**{**config, **kwargs}).to(map_location)
    if remove_weight_norm:
        model.remove_weight_norm()
    return model.eval()
