import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import warnings

import pytest
import torch

from waveglow.cli import train
from waveglow import load_checkpoint, save_checkpoint, WaveGlow
from waveglow.metrics import read_metrics
from waveglow.devices import flushes_subnormals, subnormals_flushed
from waveglow.training import EpochSampler, Trainer, find_latest_checkpoint, learning_rate_at

from conftest import CONFIGS, REPO, TEST_DATA

CLIPS = sorted(glob.glob(os.path.join(TEST_DATA, "wavs", "*.wav")))


def _file_list(tmp_path, clips, name="train.txt"):
    path = tmp_path / name
    path.write_text("".join(f"{c}\n" for c in clips))
    return str(path)


def _args(tmp_path, out="out", clips=None, **settings):
    settings = {
        "data_config.training_files": _file_list(tmp_path, clips or CLIPS[:5]),
        "train_config.output_directory": str(tmp_path / out),
        "train_config.max_iterations": 4,
        "train_config.iters_per_checkpoint": 2,
        "train_config.batch_size": 2,
        **settings,
    }
    args = ["-c", os.path.join(CONFIGS, "tiny.json")]
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    return args


def _losses(text):
    return [float(v) for v in re.findall(r"^\d+:\t(-?[\d.]+|nan|inf)$", text, re.M)]


def test_enough_clips():
    assert len(CLIPS) >= 5


def test_train_writes_checkpoints_and_tensorboard(tmp_path, capsys):
    args = _args(tmp_path, **{
        "train_config.with_tensorboard": "true",
        "data_config.validation_files": _file_list(tmp_path, CLIPS[5:7] or CLIPS[:2], "val.txt"),
        "train_config.iters_per_validation": 2,
        "train_config.iters_per_audio": 4,
    })
    assert train.main(args) == 0
    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == ["config.json", "logs", "metrics.jsonl", "waveglow_2", "waveglow_4"]
    assert glob.glob(str(out / "logs" / "events.out.tfevents.*"))
    captured = capsys.readouterr().out
    assert len(_losses(captured)) == 4 and "validation loss" in captured
    records = read_metrics(str(out / "metrics.jsonl"))
    steps = [r for r in records if "loss" in r]
    assert [r["iteration"] for r in steps] == [1, 2, 3, 4]
    assert [round(r["loss"], 6) for r in steps] == [round(v, 6) for v in _losses(captured)]
    assert all(r["learning_rate"] == 1e-3 and r["grad_norm"] > 0 and r["samples_per_second"] > 0 for r in steps)
    assert [r["iteration"] for r in records if "validation_loss" in r] == [2, 4]
    for record in (r for r in records if "validation_loss" in r):  # sigma 1: the loss gives the log-likelihood
        assert record["validation_log_likelihood"] == pytest.approx(-record["validation_loss"] - 0.5 * math.log(2 * math.pi))
    model = load_checkpoint(out / "waveglow_4")
    audio = model.infer(torch.randn(1, 80, 10), sigma=0.6)
    assert audio.shape == (1, 2560) and torch.isfinite(audio).all()
    with open(out / "config.json") as f:
        assert json.load(f)["train_config"]["max_iterations"] == 4

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "logs"), size_guidance={"audio": 0, "images": 0}).Reload()
    tags = events.Tags()
    for tag in ("training.loss", "learning_rate", "grad_norm", "samples_per_second", "validation.loss",
                "validation.log_likelihood"):
        assert tag in tags["scalars"], tag
    assert any("vocoded" in t for t in tags["audio"]) and any("ground_truth" in t for t in tags["audio"])
    assert any("mel" in t for t in tags["images"])


def test_loss_falls_overfitting_one_clip(tmp_path, capsys):
    clip = CLIPS[0]
    args = _args(tmp_path, clips=[clip], **{
        "train_config.batch_size": 1, "train_config.max_iterations": 30,
        "train_config.iters_per_checkpoint": 1000, "train_config.learning_rate": 2e-3,
        "data_config.segment_length": 2048,
    })
    assert train.main(args) == 0
    losses = _losses(capsys.readouterr().out)
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1


def test_resume_is_exact(tmp_path):
    straight = _args(tmp_path, out="straight", **{"train_config.max_iterations": 6})
    assert train.main(straight) == 0
    first = _args(tmp_path, out="split", **{"train_config.max_iterations": 3})
    assert train.main(first) == 0
    assert find_latest_checkpoint(str(tmp_path / "split")).endswith("waveglow_3")
    second = _args(tmp_path, out="split", **{"train_config.max_iterations": 6})
    assert train.main(second + ["--resume"]) == 0
    a = torch.load(tmp_path / "straight" / "waveglow_6", weights_only=True)
    b = torch.load(tmp_path / "split" / "waveglow_6", weights_only=True)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert a["iteration"] == b["iteration"] == 6
    assert torch.equal(a["optimizer"]["state"][0]["exp_avg"], b["optimizer"]["state"][0]["exp_avg"])


def test_training_steps_flush_subnormals_and_the_caller_keeps_them(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a worker thread besides the step's own: both must flush
    seen = []
    step = Trainer.train_step

    def spy(self, mel, audio):
        seen.append(flushes_subnormals())
        return step(self, mel, audio)

    monkeypatch.setattr(Trainer, "train_step", spy)
    try:
        assert not flushes_subnormals()
        assert train.main(_args(tmp_path, **{"train_config.max_iterations": 2})) == 0
        assert not flushes_subnormals()  # the caller's threads keep subnormals, before and after
    finally:
        torch.set_num_threads(threads)
    assert seen == [True, True]


def test_subnormals_flushed_runs_on_a_thread_that_ends_with_the_block():
    (torch.randn(1 << 18) * 2).sum()  # the caller's worker threads exist before the block
    with subnormals_flushed(torch.device("cpu")) as compute:
        assert compute(flushes_subnormals)
        assert compute(lambda: threading.current_thread()) is not threading.current_thread()
        with pytest.raises(ZeroDivisionError):
            compute(lambda: 1 / 0)
        assert compute(sum, [1, 2], start=3) == 6
    assert not flushes_subnormals()
    assert not [t for t in threading.enumerate() if t.name.startswith("flush-subnormals")]
    with subnormals_flushed(torch.device("meta")) as compute:  # not the CPU: called as is
        assert compute(threading.current_thread) is threading.current_thread()


def test_epoch_sampler_resumes_mid_epoch():
    full = EpochSampler(10, 2, seed=3)
    full.set_epoch(4)
    resumed = EpochSampler(10, 2, seed=3)
    resumed.set_epoch(4, skip_batches=2)
    assert list(resumed) == list(full)[4:]
    ranks = [EpochSampler(10, 2, seed=3, rank=r, world_size=2) for r in range(2)]
    for s in ranks:
        s.set_epoch(4)
    seen = [i for s in ranks for i, _ in s]
    assert len(seen) == len(set(seen)) == 8


def test_keep_last(tmp_path):
    args = _args(tmp_path, **{"train_config.max_iterations": 6, "train_config.iters_per_checkpoint": 1,
                              "train_config.keep_last": 2})
    assert train.main(args) == 0
    assert sorted(n for n in os.listdir(tmp_path / "out") if n.startswith("waveglow_")) == ["waveglow_5", "waveglow_6"]


def test_fine_tune_from_nvidia_pickle(tmp_path, tiny_model, tiny_config, capsys):
    from test_checkpoint import _save_nvidia_pickle

    pickle_path = tmp_path / "waveglow_nvidia"
    _save_nvidia_pickle(pickle_path, tiny_model, tiny_config)
    args = _args(tmp_path, **{"train_config.max_iterations": 1, "train_config.learning_rate": 0.0})
    assert train.main(args + ["--fine_tune", str(pickle_path)]) == 0
    assert "fine-tuning from" in capsys.readouterr().out
    tuned = torch.load(tmp_path / "out" / "waveglow_1", weights_only=True)
    assert tuned["iteration"] == 1
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(tuned["state_dict"][key], value), key


def test_fp16_on_cpu_falls_back_with_warning(tmp_path):
    with pytest.warns(UserWarning, match="fp16_run with amp_dtype float16 needs CUDA"):
        assert train.main(_args(tmp_path, **{"train_config.fp16_run": "true", "train_config.max_iterations": 1})) == 0


def test_bfloat16_mixed_precision_on_cpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("waveglow.devices.cpu_bf16_support", lambda: (True, "test: native bf16"))
    assert train.main(_args(tmp_path, "fp32", **{"train_config.max_iterations": 3})) == 0
    fp32 = _losses(capsys.readouterr().out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: it runs
        assert train.main(_args(tmp_path, "bf16", **{"train_config.max_iterations": 3, "train_config.fp16_run": "true",
                                                     "train_config.amp_dtype": "bfloat16"})) == 0
    bf16 = _losses(capsys.readouterr().out)
    assert len(bf16) == len(fp32) == 3 and bf16 != fp32  # bfloat16 arithmetic, so not bit-equal
    assert max(abs(a - b) for a, b in zip(bf16, fp32)) < 0.01 * max(abs(v) for v in fp32)  # measured 0.1 %


def test_sigterm_saves_checkpoint(tmp_path):
    args = _args(tmp_path, **{"train_config.max_iterations": 100000, "train_config.iters_per_checkpoint": 100000})
    process = subprocess.Popen([sys.executable, "-u", "train.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if re.match(r"^2:\t", line):
                break
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        process.kill()
    saved = find_latest_checkpoint(str(tmp_path / "out"))
    assert saved is not None
    assert torch.load(saved, weights_only=True)["iteration"] >= 2


# ------------------------------------------------------------------------------ bad input


def _error(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    return lines[0]


def test_missing_and_empty_file_list(tmp_path, capsys):
    args = _args(tmp_path, **{"data_config.training_files": str(tmp_path / "nope.txt")})
    assert train.main(args) == 1
    assert "nope.txt" in _error(capsys)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert train.main(_args(tmp_path, **{"data_config.training_files": str(empty)})) == 1
    assert "empty.txt" in _error(capsys)


def test_every_file_unreadable(tmp_path, capsys):
    bad = []
    for i in range(4):
        path = tmp_path / f"bad{i}.wav"
        path.write_bytes(b"this is not audio" * 10)
        bad.append(str(path))
    assert train.main(_args(tmp_path, clips=bad)) == 1
    message = _error(capsys)
    assert "bad" in message and ".wav" in message


def test_output_directory_not_writable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert train.main(_args(tmp_path, **{"train_config.output_directory": str(blocker / "out")})) == 1
    assert "output_directory" in _error(capsys)


def test_incompatible_checkpoint_is_reported_and_untouched(tmp_path, capsys):
    wide = WaveGlow(80, 4, 8, 2, 2, {"n_layers": 2, "n_channels": 32, "kernel_size": 3})
    out = tmp_path / "out"
    out.mkdir()
    good = save_checkpoint(out / "waveglow_10", wide)
    before = open(good, "rb").read()
    assert train.main(_args(tmp_path, **{"train_config.checkpoint_path": good})) == 1
    message = _error(capsys)
    assert "waveglow_10" in message and "n_channels 32 vs 16" in message
    assert open(good, "rb").read() == before
    assert train.main(_args(tmp_path) + ["--resume"]) == 1
    assert open(good, "rb").read() == before


def test_nonfinite_losses_stop_training(tmp_path, capsys, monkeypatch):
    assert train.main(_args(tmp_path, **{"train_config.max_iterations": 2})) == 0
    good = tmp_path / "out" / "waveglow_2"
    before = open(good, "rb").read()

    from waveglow.models.waveglow import WaveGlowLoss

    monkeypatch.setattr(WaveGlowLoss, "forward", lambda self, outputs: outputs[0].sum() * float("nan"))
    args = _args(tmp_path, **{"train_config.max_iterations": 20, "train_config.max_nonfinite_steps": 3})
    with pytest.warns(UserWarning, match="step skipped"):
        assert train.main(args + ["--resume"]) == 1
    message = _error(capsys)
    assert "3 consecutive non-finite losses" in message and "waveglow_2" in message
    assert open(good, "rb").read() == before


def test_bfloat16_on_a_cpu_without_native_bf16_trains_in_float32(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("waveglow.devices.cpu_bf16_support", lambda: (False, "the CPU has neither avx512_bf16 nor amx_bf16"))
    assert train.main(_args(tmp_path, "fp32", **{"train_config.max_iterations": 2})) == 0
    fp32 = _losses(capsys.readouterr().out)
    with pytest.warns(UserWarning, match="bfloat16 falls back to float32 on this CPU .*neither avx512_bf16"):
        assert train.main(_args(tmp_path, "bf16", **{"train_config.max_iterations": 2, "train_config.fp16_run": "true",
                                                     "train_config.amp_dtype": "bfloat16"})) == 0
    assert _losses(capsys.readouterr().out) == fp32  # float32 arithmetic: bit-equal


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, capsys):
    assert train.main(_args(tmp_path, **{"train_config.max_iterations": 4})) == 0
    newest = tmp_path / "out" / "waveglow_4"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 3])  # a copy cut short, a disk that filled up
    capsys.readouterr()
    assert train.main(_args(tmp_path, **{"train_config.max_iterations": 6}) + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert f"skipping {newest}" in out and "truncated or corrupt" in out
    assert "resuming from" in out and "waveglow_2" in out
    assert torch.load(tmp_path / "out" / "waveglow_6", weights_only=True)["iteration"] == 6
    records = [r for r in read_metrics(str(tmp_path / "out" / "metrics.jsonl")) if "loss" in r]
    assert [r["iteration"] for r in records] == [1, 2, 3, 4, 5, 6]  # 3 and 4 of the first run dropped, then redone


def test_step_schedule_of_the_learning_rate(tmp_path):
    from waveglow.config import TrainConfig

    t = TrainConfig(learning_rate=1e-3, lr_step_size=2, lr_gamma=0.5)
    assert [learning_rate_at(i, t) for i in range(5)] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]
    assert learning_rate_at(10**6, TrainConfig(learning_rate=1e-4)) == 1e-4  # NVIDIA's constant rate by default
    args = _args(tmp_path, **{"train_config.max_iterations": 4, "train_config.lr_step_size": 2})
    assert train.main(args) == 0
    records = read_metrics(str(tmp_path / "out" / "metrics.jsonl"))
    assert [r["learning_rate"] for r in records] == [1e-3, 1e-3, 5e-4, 5e-4]


def test_hop_length_200_trains_an_aligned_model(tmp_path):
    """A 16 kHz-style hop: the upsampler steps 200 samples per frame, recorded in the checkpoint."""
    args = _args(tmp_path, **{"train_config.max_iterations": 1, "data_config.hop_length": 200,
                              "data_config.filter_length": 800, "data_config.win_length": 800})
    assert train.main(args) == 0
    model = load_checkpoint(tmp_path / "out" / "waveglow_1")
    assert model.upsample.stride == (200,) and model.upsample.kernel_size == (800,)
    assert model.infer(torch.zeros(1, 80, 5), sigma=0.0).shape == (1, 1000)


@pytest.mark.parametrize("setting, words", [
    ("data_config.hop_length=250", ["data_config.hop_length 250", "waveglow_config.n_group 8"]),
    ("data_config.n_mel_channels=64", ["data_config.n_mel_channels 64", "waveglow_config.n_mel_channels 80"]),
    ("waveglow_config.n_early_size=3", ["n_early_size 3", "even channel count"]),
])
def test_contradicting_settings_fail_before_training(tmp_path, capsys, setting, words):
    assert train.main(_args(tmp_path) + ["--set", setting]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    for word in words:
        assert word in err
    assert not (tmp_path / "out").exists()  # nothing written
