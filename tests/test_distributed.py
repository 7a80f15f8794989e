"""Multi-process training on CPU with gloo, launched through distributed.py (torchrun)."""

import os
import socket

import torch

from waveglow.cli import distributed, train
from waveglow import load_checkpoint
from waveglow.training import Trainer

from conftest import REPO, checkout_env
from test_train import _args


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path, nproc, extra_settings, script=None):
    args = _args(tmp_path, **extra_settings)
    config, sets = args[1], args[2:]
    argv = ["-c", config, "--nproc", str(nproc), "-s", str(tmp_path / "logs"), "--master_port", str(_free_port()),
            "-a", " ".join(f"'{a}'" for a in sets)]
    if script:
        argv += ["--script", script]
    return distributed.main(argv)


def test_two_processes_match_one_with_double_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", checkout_env()["PYTHONPATH"])  # the ranks run python -m waveglow.cli.train
    steps = {"train_config.max_iterations": 3, "train_config.iters_per_checkpoint": 3}
    assert _launch(tmp_path, 2, {**steps, "train_config.batch_size": 1,
                                 "train_config.output_directory": str(tmp_path / "two")}) == 0
    assert train.main(_args(tmp_path, **steps, **{"train_config.batch_size": 2,
                                                  "train_config.output_directory": str(tmp_path / "one")})) == 0
    two = torch.load(tmp_path / "two" / "waveglow_3", weights_only=True)["state_dict"]
    one = torch.load(tmp_path / "one" / "waveglow_3", weights_only=True)["state_dict"]
    assert two.keys() == one.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=0, msg=key)
    assert not any(k.startswith("module.") for k in two)
    # per-rank logs, and the checkpoint loads
    assert sorted(os.listdir(tmp_path / "two")) == ["config.json", "metrics.jsonl", "waveglow_3"]
    from waveglow.metrics import read_metrics

    records = read_metrics(str(tmp_path / "two" / "metrics.jsonl"))  # rank 0 alone writes it
    assert [r["iteration"] for r in records] == [1, 2, 3] and all(r["samples_per_second"] > 0 for r in records)
    assert load_checkpoint(tmp_path / "two" / "waveglow_3").n_flows == 4


def test_failing_rank_stops_the_job(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", checkout_env()["PYTHONPATH"])  # the helper script imports this checkout
    monkeypatch.setenv("WAVEGLOW_DIST_TIMEOUT", "60")
    code = _launch(tmp_path, 2, {"train_config.max_iterations": 1000, "train_config.batch_size": 1},
                   script=os.path.join(REPO, "tests", "helpers", "failing_train.py"))
    assert code == 1
    # rank 0 stopped with rank 1 instead of training on (the collective timeout, 60 s, bounds a hang)
    assert not (tmp_path / "out" / "waveglow_1000").exists()
    err = capsys.readouterr().err
    assert "rank 1" in err and "Traceback" not in err.split("error:")[-1]


def test_each_process_takes_a_visible_gpu(monkeypatch, tiny_config):
    """With one GPU visible per process (CUDA_VISIBLE_DEVICES), local rank 3 must use cuda:0."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert Trainer(tiny_config, rank=3, world_size=4, local_rank=3).device == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert Trainer(tiny_config, rank=7, world_size=8, local_rank=3).device == torch.device("cuda", 3)
