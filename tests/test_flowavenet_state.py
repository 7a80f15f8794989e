"""FloWaveNet: ActNorm's initialisation, reference checkpoints, the receptive field, the denoiser, mixed precision."""

from __future__ import annotations

import math
import os

import pytest
import torch
from test_flowavenet import TINY, tiny_batch, tiny_model

from waveglow.checkpoint import CheckpointError
from waveglow.models.flowavenet import (
    CHUNK_OVERLAP_FRAMES,
    FloWaveNet,
    FloWaveNetConfig,
    FloWaveNetLoss,
    build_flowavenet,
    infer_flowavenet_config,
    initialize,
    is_flowavenet_state_dict,
    read_ksw0306,
    squeeze,
)


# ------------------------------------------------------------------ ActNorm initialisation


def test_initialize_runs_once_and_loading_counts_as_initialised():
    torch.manual_seed(0)
    model = FloWaveNet(**TINY)
    mel, audio = tiny_batch()
    assert not model.initialized
    assert initialize(model, mel, audio)
    first = model.blocks[0].flows[0].actnorm
    x = squeeze(audio.unsqueeze(1))
    torch.testing.assert_close(first.loc[0, :, 0], -x.mean((0, 2)))
    torch.testing.assert_close(first.scale[0, :, 0], 1 / (x.std((0, 2)) + 1e-6))
    values = {k: v.clone() for k, v in model.state_dict().items()}
    assert not initialize(model, mel * 0.5, audio * 3)  # a second call changes nothing
    assert all(torch.equal(values[k], v) for k, v in model.state_dict().items())
    fresh = FloWaveNet(**TINY)
    fresh.load_state_dict(values)
    assert fresh.initialized and not initialize(fresh, mel, audio)
    torch.testing.assert_close(fresh.blocks[0].flows[0].actnorm.loc, first.loc)


def test_forward_never_initialises():
    model = FloWaveNet(**TINY)
    model(*tiny_batch())
    assert not model.initialized
    assert torch.equal(model.blocks[0].flows[0].actnorm.scale, torch.ones(1, 2, 1))


def _distributed_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        model = FloWaveNet(**TINY)
        mel, audio = tiny_batch(seed=10 + rank)  # each rank sees its own batch
        initialize(model, mel, audio)
        torch.save(model.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()


def test_initialisation_is_broadcast_from_rank_0(tmp_path):
    torch.multiprocessing.spawn(
        _distributed_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True
    )
    torch.manual_seed(0)
    model = FloWaveNet(**TINY)
    initialize(model, *tiny_batch(seed=10))  # what rank 0 computes alone
    alone = model.state_dict()
    for rank in range(2):
        state = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for key in alone:
            if "actnorm" in key:
                assert torch.equal(state[key], alone[key]), (rank, key)
    assert not torch.equal(alone["blocks.0.flows.0.actnorm.loc"], torch.zeros(1, 2, 1))


# ------------------------------------------------------------------------------ checkpoints


def _save_the_reference_way(path, model, data_parallel=False, global_step=7):
    """As ksw0306's train.py saves: the (possibly DataParallel-wrapped) state dict and training state."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=200000, gamma=0.5)
    wrapped = torch.nn.DataParallel(model) if data_parallel else model
    torch.save({"state_dict": wrapped.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "global_step": global_step, "global_epoch": 1}, path)


@pytest.mark.parametrize("data_parallel", [False, True])
def test_reference_checkpoint_loads_with_its_architecture_inferred(tmp_path, data_parallel):
    sizes = dict(n_block=4, n_flow=3, n_layer=1, block_per_split=2, n_channels=8)
    model = tiny_model(**sizes)
    path = tmp_path / "checkpoint_step000000007.pth"
    _save_the_reference_way(path, model, data_parallel)
    obj = torch.load(path, weights_only=True)
    assert any(k.startswith("module.") for k in obj["state_dict"]) == data_parallel
    state_dict, config, iteration = read_ksw0306(obj, str(path))
    assert config == FloWaveNetConfig(**sizes) and iteration == 7
    loaded = build_flowavenet(state_dict, str(path))
    assert loaded.initialized
    mel, _ = tiny_batch(frames=2)
    z = torch.randn(2, 1, 512)
    torch.testing.assert_close(loaded.eval().infer(mel, z=z), model.infer(mel, z=z), atol=0, rtol=0)


def test_default_architecture_is_inferred_from_shapes():
    with torch.device("meta"):
        state_dict = FloWaveNet().state_dict()
    assert infer_flowavenet_config(state_dict) == FloWaveNetConfig()
    assert is_flowavenet_state_dict(state_dict) and is_flowavenet_state_dict({"module." + k: v for k, v in state_dict.items()})
    assert not is_flowavenet_state_dict({"upsample.weight": torch.zeros(1)})


def test_mismatched_and_incomplete_state_dicts_are_one_line_errors(tmp_path):
    state_dict = tiny_model().state_dict()
    with pytest.raises(CheckpointError) as e:
        build_flowavenet(state_dict, "f.pth", FloWaveNetConfig(**{**TINY, "n_flow": 3}))
    message = str(e.value)
    assert "\n" not in message and message.startswith("f.pth: missing key blocks.0.flows.2.")
    assert "n_flow 2 vs 3" in message
    with pytest.raises(CheckpointError, match=r"f.pth: blocks.0.flows.0.coupling.net.res_blocks.0.filter_conv_c.weight_v "
                                              r"has shape \(16, 80, 1\) in the checkpoint but \(16, 40, 1\) in the model; "
                                              r"likely cause: checkpoint vs config cin_channel 80 vs 40"):
        build_flowavenet(state_dict, "f.pth", FloWaveNetConfig(**{**TINY, "cin_channel": 40}))
    del state_dict["blocks.1.flows.1.coupling.net.res_blocks.1.skip_conv.weight_v"]
    with pytest.raises(CheckpointError, match="f.pth: missing key blocks.1.flows.1.coupling.net.res_blocks.1.skip_conv.weight_v; "
                                              "the file is incomplete"):
        build_flowavenet(state_dict, "f.pth")
    with pytest.raises(CheckpointError, match="g.pth: not a FloWaveNet checkpoint"):
        read_ksw0306({"state_dict": {"upsample.weight": torch.zeros(1)}, "global_step": 1}, "g.pth")


# --------------------------------------------------------------------------- receptive field


def test_default_overlap_covers_the_receptive_field():
    with torch.device("meta"):
        model = FloWaveNet()
    assert model.receptive_field_samples() == 12440
    assert CHUNK_OVERLAP_FRAMES == math.ceil(12440 / 256)


@pytest.mark.parametrize("sizes", [dict(), dict(n_block=4, n_flow=3, n_layer=3, block_per_split=2)])
def test_perturbations_stay_within_the_receptive_field(sizes):
    model = tiny_model(torch.float64, **sizes)
    reach = model.receptive_field_samples()
    frames = 2 * math.ceil(reach / 256) + 4
    mel = torch.rand(1, 80, frames, dtype=torch.float64)
    z = torch.randn(1, 1, 256 * frames, dtype=torch.float64)
    base = model.infer(mel, z=z)[0]
    p, f = 128 * frames + 5, frames // 2
    z2 = z.clone()
    z2[0, 0, p] += 1e-3
    changed = ((model.infer(mel, z=z2)[0] - base) != 0).nonzero()[:, 0]
    assert changed.numel() > 0 and p - reach <= changed.min() and changed.max() <= p + reach
    mel2 = mel.clone()
    mel2[0, :, f] += 0.1
    changed = ((model.infer(mel2, z=z)[0] - base) != 0).nonzero()[:, 0]
    assert changed.numel() > 0 and 256 * f - reach <= changed.min() and changed.max() < 256 * (f + 1) + reach


# -------------------------------------------------------------------------------- denoiser


def test_bias_at_sigma_0_is_periodic_in_2_pow_n_block_and_the_denoiser_removes_it():
    """An all-zero mel is FloWaveNet's silence; at sigma 0 the flow leaves a pattern repeating every
    2 ** n_block samples (tones at multiples of fs / 256 for 8 blocks), which Denoiser measures and subtracts."""
    from waveglow.denoiser import Denoiser

    model = tiny_model(n_block=8, n_flow=2, block_per_split=4)
    bias = model.infer(torch.zeros(1, 80, 88), sigma=0.0)[0]
    middle = bias[60 * 256 : 80 * 256]  # away from the edges' zero padding
    assert middle.std() > 0.05
    torch.testing.assert_close(middle[256:], middle[:-256], atol=1e-6, rtol=0)
    assert (middle[128:] - middle[:-128]).abs().max() > 0.05
    denoised = Denoiser(model)(bias[None], strength=1.0)[0, 60 * 256 : 80 * 256]
    assert denoised.pow(2).mean() < 0.3 * middle.pow(2).mean()


def test_loss_under_bfloat16_autocast_is_float32_and_close():
    model = tiny_model().train()
    mel, audio = tiny_batch()
    initialize(model, mel, audio)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = FloWaveNetLoss()(model(mel, audio))
    assert loss.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        torch.testing.assert_close(loss.detach(), FloWaveNetLoss()(model(mel, audio)), atol=2e-2, rtol=0)
