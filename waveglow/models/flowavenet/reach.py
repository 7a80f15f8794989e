"""How far a window's edge reaches into FloWaveNet's output: the receptive field streaming needs.

The reverse pass runs the blocks coarsest first. Block k works on steps of 2 ** (k + 1) samples;
each WaveNet there (a coupling: front conv, then dilated layers 1, 2, 4, ...; a prior: the same
with two layers) reaches a fixed number of steps each side, and the error that zero padding puts
at a window's edge grows by that reach at every net. The upsampled conditioning is wrong within
``upsampler_reach`` samples of the edge, which at block k spoils whole steps: the first
ceil(reach / 2 ** (k + 1)) of them. Unsqueezing into block k - 1 doubles the steps.
"""

from __future__ import annotations

__all__ = ["wavenet_reach", "edge_reach_samples"]


def wavenet_reach(n_layer: int) -> int:
    """Steps one side that a WaveNet of ``n_layer`` dilated layers (kernel 3) after its kernel-3 front conv reaches."""
    return 1 + sum(2**n for n in range(n_layer))


def edge_reach_samples(n_block: int, n_flow: int, n_layer: int, splits: list[bool], upsampler_reach: int) -> int:
    """Samples from a window edge within which the output may differ from the whole utterance's.

    ``splits[k]``: whether block k sets half aside under a prior (run before its flows in reverse).
    """
    error = 0  # steps of the current block, from the edge
    for k in reversed(range(n_block)):
        step = 2 ** (k + 1)
        spoiled = -(-upsampler_reach // step)  # conditioning steps touched by the missing frames
        nets = ([wavenet_reach(2)] if splits[k] else []) + [wavenet_reach(n_layer)] * n_flow
        for reach in nets:
            error = max(error, spoiled) + reach
        if k:
            error *= 2  # unsqueeze: one step of block k is two of block k - 1
    return 2 * error
