"""Shared fixtures: tiny configs and models that run in milliseconds on a CPU."""

from __future__ import annotations

import os

import pytest
import torch

from waveglow import WaveGlow, load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")
TEST_DATA = os.path.join(REPO, "tests", "data")


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one); scripts/gpu_check.sh runs them")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


def checkout_env() -> dict[str, str]:
    """The environment for a subprocess that must import this checkout's ``waveglow``, installed or not."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}


@pytest.fixture
def tiny_config():
    return load_config(os.path.join(CONFIGS, "tiny.json"))


def randomize_end(model: WaveGlow, std: float = 0.1) -> WaveGlow:
    """Give every zero-initialised ``end`` layer random weights, so couplings are not the identity."""
    with torch.no_grad():
        for wn in model.WN:
            wn.end.weight.normal_(0, std)
            wn.end.bias.normal_(0, std)
    return model


@pytest.fixture
def tiny_model(tiny_config):
    torch.manual_seed(0)
    return randomize_end(WaveGlow(**tiny_config.waveglow_config.to_kwargs())).eval()
