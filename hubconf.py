"""torch.hub entry points, one per model family.

    model = torch.hub.load("/path/to/this/repo", "waveglow", checkpoint="waveglow_256.pt", source="local")
    model = torch.hub.load("/path/to/this/repo", "flowavenet", checkpoint="ksw0306_checkpoint.pth", source="local")
    model = torch.hub.load("/path/to/this/repo", "waveflow", checkpoint="waveflow_5000", source="local")
    audio = waveglow.synthesize(model, mel)
"""

import os

dependencies = ["torch"]

_CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def _model(default_config, checkpoint, map_location, remove_weight_norm, kwargs):
    """A model in eval mode: ``checkpoint``'s (``kwargs`` to ``load_checkpoint``), or an untrained one of
    ``default_config`` with ``kwargs`` overriding entries of its model section."""
    from waveglow import load_checkpoint, load_config
    from waveglow.checkpoint import build_model
    from waveglow.config import config_from_dict

    if checkpoint is not None:
        model = load_checkpoint(checkpoint, map_location=map_location, **kwargs)
    else:
        data = load_config(default_config).to_dict()
        section = next(name for name in data if name not in ("train_config", "data_config", "dist_config"))
        data[section].update(kwargs)
        model = build_model(config_from_dict(data, default_config)).to(map_location)
    if remove_weight_norm:
        model.remove_weight_norm()
    return model.eval()


def waveglow(checkpoint=None, map_location="cpu", remove_weight_norm=True, **kwargs):
    """A WaveGlow in eval mode.

    With ``checkpoint`` (any file ``waveglow.load_checkpoint`` reads, NVIDIA's pickles included)
    the trained model, ``kwargs`` going to ``load_checkpoint`` (e.g. ``config=``). Without it, an
    untrained model of the default config (configs/config.json), ``kwargs`` overriding its
    ``waveglow_config`` entries (e.g. ``n_flows=4``). Weight norm is folded away unless
    ``remove_weight_norm=False`` (keep it to train further). For the fastest inference at any
    length, take the final model's ``model.fast()`` once (a ``FastWaveGlow``; 2 GB for the default
    model in float32), as ``waveglow.load_for_inference`` does.
    """
    return _model(os.path.join(_CONFIGS, "config.json"), checkpoint, map_location, remove_weight_norm, kwargs)


def flowavenet(checkpoint=None, map_location="cpu", remove_weight_norm=True, **kwargs):
    """A FloWaveNet in eval mode, as :func:`waveglow` (ksw0306's files included); the untrained default
    is configs/flowavenet.json, ``kwargs`` overriding its ``flowavenet_config`` entries (e.g. ``n_block=4``).
    ``waveglow.FastFloWaveNet(model)`` is its faster exact inference path."""
    return _model(os.path.join(_CONFIGS, "flowavenet.json"), checkpoint, map_location, remove_weight_norm, kwargs)


def waveflow(checkpoint=None, map_location="cpu", remove_weight_norm=True, config="waveflow-h16-r64", **kwargs):
    """A WaveFlow or NanoFlow in eval mode, as :func:`waveglow` (L0SG/NanoFlow's files included); the
    untrained default is ``configs/<config>.json`` (one of waveflow-h16-r64, waveflow-h16-r128,
    nanoflow-h16-r128-emb512, nanoflow-h16-r128-emb1024-f16), ``kwargs`` overriding its ``waveflow_config``
    entries. ``waveglow.FastWaveFlow(model)`` is its faster exact inference path."""
    return _model(os.path.join(_CONFIGS, f"{config}.json"), checkpoint, map_location, remove_weight_norm, kwargs)
