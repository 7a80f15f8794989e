"""What only a GPU runs: AMP training steps, a CUDA graph's replay, a model loaded onto the GPU.

Every test here is ``@pytest.mark.cuda``: skipped without CUDA, run by ``pytest -m cuda`` (the GPU
check, scripts/gpu_check.sh). TF32 is off so float32 comparisons are exact to float32 rounding.
"""

from __future__ import annotations

import glob
import math
import os

import pytest
import torch

from waveglow import load_config, save_checkpoint, synthesize
from waveglow.bench.inference import cuda_graph_runner
from waveglow.metrics import read_metrics
from waveglow.synthesis import load_for_inference
from waveglow.training import Trainer

from conftest import CONFIGS, TEST_DATA

pytestmark = pytest.mark.cuda

CLIPS = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))


@pytest.fixture(autouse=True)
def no_tf32():
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


@pytest.mark.parametrize("amp_dtype", ["float16", "bfloat16"])
def test_amp_training_on_cuda(tmp_path, amp_dtype):
    files = tmp_path / "train.txt"
    files.write_text("".join(f"{c}\n" for c in CLIPS[:4]))
    config = load_config(os.path.join(CONFIGS, "tiny.json"), [
        f"data_config.training_files={files}", f"train_config.output_directory={tmp_path / 'out'}",
        "train_config.fp16_run=true", f"train_config.amp_dtype={amp_dtype}", "train_config.max_iterations=4",
        "train_config.iters_per_checkpoint=4", "train_config.batch_size=2",
    ])
    trainer = Trainer(config, log=lambda *a: None)
    trainer.setup()
    assert trainer.use_amp and trainer.device.type == "cuda"
    assert trainer.scaler.is_enabled() == (amp_dtype == "float16")  # bf16 needs no loss scaling
    assert trainer.run() == 4
    assert all(p.device.type == "cuda" and p.dtype == torch.float32 for p in trainer.model.parameters())
    losses = [r["loss"] for r in read_metrics(str(tmp_path / "out" / "metrics.jsonl")) if "loss" in r]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert os.path.exists(tmp_path / "out" / "waveglow_4")


def test_cuda_graph_replay_equals_the_fast_path(tiny_model):
    model = tiny_model.remove_weight_norm().cuda()
    mel = torch.randn(1, 80, 24, generator=torch.Generator().manual_seed(1)).cuda()
    z = model.sample_latent(1, 24 * model.latent_steps_per_frame, 0.6, torch.Generator().manual_seed(2),
                            torch.device("cpu")).cuda()
    with torch.no_grad():
        reference = model.fast(low_memory=True).infer(mel, z=z)
        run, _ = cuda_graph_runner(model, mel, z)
        first = run().clone()
        second = run()
    assert torch.equal(first, second)  # a replay recomputes the same audio from the static inputs
    torch.testing.assert_close(first, reference, atol=1e-4 * reference.abs().max().item(), rtol=0)


def test_checkpoint_loads_onto_the_gpu_and_vocodes(tmp_path, tiny_config, tiny_model):
    path = str(tmp_path / "tiny.pt")
    save_checkpoint(path, tiny_model, tiny_config)
    vocoder, data_config = load_for_inference(path, device="cuda")
    model = getattr(vocoder, "model", vocoder)
    assert all(p.device.type == "cuda" for p in model.parameters())
    mel = torch.randn(80, 30, generator=torch.Generator().manual_seed(3)) - 5.0
    audio = synthesize(vocoder, mel, sigma=0.6, generator=torch.Generator().manual_seed(4))
    expected = synthesize(tiny_model, mel, sigma=0.6, generator=torch.Generator().manual_seed(4))  # on the CPU
    assert audio.shape == (30 * data_config.hop_length,) and audio.dtype == torch.float32
    torch.testing.assert_close(audio.cpu(), expected, atol=1e-4, rtol=0)
