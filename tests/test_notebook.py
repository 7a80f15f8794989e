"""notebooks/vocode.ipynb runs top to bottom, and torch.hub.load finds hubconf.py."""

from __future__ import annotations

import json
import os

import torch

from conftest import REPO
from waveglow import load_checkpoint, save_checkpoint

NOTEBOOK = os.path.join(REPO, "notebooks", "vocode.ipynb")


def test_notebook_is_nbformat_4_without_outputs():
    with open(NOTEBOOK, encoding="utf-8") as f:
        notebook = json.load(f)
    assert notebook["nbformat"] == 4
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_notebook_code_cells_run(tmp_path, tiny_model, monkeypatch, capsys):
    checkpoint = save_checkpoint(tmp_path / "tiny.pt", tiny_model)
    torch.save(torch.randn(80, 20) - 5, tmp_path / "mel.pt")
    monkeypatch.setenv("WAVEGLOW_CHECKPOINT", str(checkpoint))
    monkeypatch.setenv("WAVEGLOW_MEL", str(tmp_path / "mel.pt"))
    monkeypatch.chdir(tmp_path)
    with open(NOTEBOOK, encoding="utf-8") as f:
        cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    namespace: dict = {"__name__": "__notebook__"}
    for i, cell in enumerate(cells):
        exec(compile("".join(cell["source"]), f"vocode.ipynb cell {i}", "exec"), namespace)
    assert namespace["audio"].shape == (256 * 20,)
    assert torch.isfinite(namespace["audio"]).all()
    assert "s of audio" in capsys.readouterr().out


def test_torch_hub_load_local(tmp_path, tiny_model):
    path = save_checkpoint(tmp_path / "tiny.pt", tiny_model)
    model = torch.hub.load(REPO, "waveglow", checkpoint=path, source="local")
    assert not model.training and not model.WN[0].start.has_weight_norm
    mel = torch.randn(1, 80, 10)
    expected = load_checkpoint(path).infer(mel, sigma=0.0)
    torch.testing.assert_close(model.infer(mel, sigma=0.0), expected, atol=1e-5, rtol=0)


def test_torch_hub_untrained_model_with_overrides():
    model = torch.hub.load(REPO, "waveglow", source="local", remove_weight_norm=False, n_flows=4, n_early_every=2,
                           WN_config={"n_layers": 2, "n_channels": 16, "kernel_size": 3})
    assert model.n_flows == 4 and model.WN[0].start.has_weight_norm
    assert model.infer(torch.zeros(1, 80, 3), sigma=0.5).shape == (1, 768)


def test_torch_hub_waveflow_entries_build_the_published_configs():
    model = torch.hub.load(REPO, "waveflow", source="local", config="nanoflow-h16-r128-emb512", res_channels=8,
                           size_flow_embed=16, n_layer=2)
    assert model.coupling_type == "nanoflow" and not model.training
    assert model.infer(torch.zeros(1, 80, 2), sigma=0.5).shape == (1, 512)
    assert torch.hub.load(REPO, "waveflow", source="local").config.res_channels == 64  # waveflow-h16-r64
