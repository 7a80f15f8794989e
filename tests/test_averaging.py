"""Checkpoint averaging: the library, waveglow-average-checkpoints, and train.py starting from an average."""

from __future__ import annotations

import os

import pytest
import torch
from conftest import randomize_end
from test_train import _args

from waveglow import WaveGlow, load_checkpoint, read_checkpoint, save_checkpoint
from waveglow.averaging import average_checkpoints, last_checkpoints
from waveglow.cli import average_checkpoints as average_cli
from waveglow.cli import train
from waveglow.errors import CheckpointError
from waveglow.models.waveflow.model import WaveFlow


def tiny(tiny_config, seed: int) -> WaveGlow:
    torch.manual_seed(seed)
    return randomize_end(WaveGlow(**tiny_config.waveglow_config.to_kwargs())).eval()


@pytest.fixture
def run_dir(tmp_path, tiny_config):
    """A run with three checkpoints of different weights, iterations 10, 20 and 30."""
    run = tmp_path / "run"
    run.mkdir()
    for i, seed in enumerate((1, 2, 3)):
        save_checkpoint(run / f"waveglow_{10 * (i + 1)}", tiny(tiny_config, seed), tiny_config, iteration=10 * (i + 1))
    (run / "config.json").write_text("{}")  # not a checkpoint: ignored
    return run


def test_average_of_identical_files_is_that_file(tmp_path, tiny_config):
    model = tiny(tiny_config, 1)
    paths = [save_checkpoint(tmp_path / f"waveglow_{i}", model, tiny_config, iteration=i) for i in (1, 2)]
    average = average_checkpoints(paths)
    for key, value in model.state_dict().items():
        assert torch.equal(average.state_dict[key], value), key
    assert average.iteration == 2


def test_average_of_two_is_their_mean_differs_from_both_and_loads(tmp_path, run_dir, tiny_config, capsys):
    out = tmp_path / "averaged.pt"
    assert average_cli.main([str(run_dir), "-n", "2", "-o", str(out)]) == 0
    assert "averaged 2 checkpoints (waveglow_20 .. waveglow_30)" in capsys.readouterr().out
    a, b = (read_checkpoint(run_dir / f"waveglow_{i}").state_dict for i in (20, 30))
    averaged = read_checkpoint(out)
    assert averaged.iteration == 30 and averaged.extra["averaged_from"] == ["waveglow_20", "waveglow_30"]
    key = "WN.0.end.weight"
    torch.testing.assert_close(averaged.state_dict[key], (a[key] + b[key]) / 2)
    assert not torch.equal(averaged.state_dict[key], a[key]) and not torch.equal(averaged.state_dict[key], b[key])
    model = load_checkpoint(out)
    assert model.infer(torch.zeros(1, 80, 2), sigma=0.0).shape == (1, 512)


def test_last_checkpoints_take_the_highest_iterations_in_order(run_dir):
    assert [os.path.basename(p) for p in last_checkpoints(run_dir, 2)] == ["waveglow_20", "waveglow_30"]
    with pytest.raises(CheckpointError, match="only 3"):
        last_checkpoints(run_dir, 4)


def test_l0sg_files_average(tmp_path):
    for i, seed in enumerate((4, 5)):
        torch.manual_seed(seed)
        model = WaveFlow(res_channels=8, n_layer=2, n_flow=2, coupling_type="nanoflow", size_flow_embed=8)
        state = {**model.state_dict(), "h_cache": torch.zeros(2, 2, 16, 1, 1)}  # stale: dropped
        torch.save({"model": state, "iteration": 5000 * i, "optimizer": {}, "scheduler": {}, "learning_rate": 1e-3},
                   tmp_path / f"waveflow_{5000 * i}")
    out = tmp_path / "avg.pt"
    assert average_cli.main([str(tmp_path), "-n", "2", "-o", str(out)]) == 0
    assert isinstance(load_checkpoint(out), WaveFlow)


@pytest.mark.parametrize("case", ["family", "nan", "output_is_input", "directory_without_n"])
def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, run_dir, tiny_config, capsys, case):
    out = tmp_path / "averaged.pt"
    args = [str(run_dir), "-n", "2", "-o", str(out)]
    if case == "family":
        torch.manual_seed(0)
        save_checkpoint(run_dir / "waveflow_40", WaveFlow(res_channels=8, n_layer=1, n_flow=2), iteration=40)
        expected = "a waveglow and a waveflow model"
    elif case == "nan":
        model = tiny(tiny_config, 4)
        with torch.no_grad():
            model.WN[0].end.weight[0, 0] = float("nan")
        save_checkpoint(run_dir / "waveglow_40", model, tiny_config, iteration=40)
        expected = "waveglow_40: WN.0.end.weight holds NaN"
    elif case == "output_is_input":
        args = [str(run_dir / "waveglow_10"), str(run_dir / "waveglow_20"), "-o", str(run_dir / "waveglow_20")]
        expected = "is one of the inputs"
    else:
        args = [str(run_dir), "-o", str(out)]
        expected = "pass -n N"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert average_cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1
    assert not out.exists() and {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_train_fine_tunes_from_the_average_of_a_run(tmp_path, run_dir, capsys):
    args = _args(tmp_path, **{"train_config.max_iterations": 1, "train_config.learning_rate": 0.0})
    assert train.main(args + ["--fine_tune", str(run_dir), "--average", "2"]) == 0
    assert "fine-tuning from average of waveglow_20, waveglow_30" in capsys.readouterr().out
    tuned = torch.load(tmp_path / "out" / "waveglow_1", weights_only=True)["state_dict"]
    expected = average_checkpoints(last_checkpoints(run_dir, 2)).state_dict
    for key, value in expected.items():
        assert torch.equal(tuned[key], value), key
    assert train.main(args + ["--average", "2"]) == 1
    assert "--average N needs -w/--checkpoint RUN_DIR" in capsys.readouterr().err
