"""waveglow-benchmark and the waveglow.bench library on tiny configs: every row is filled, each row
measured what it names, and nothing is read from a checkout unless asked for."""

import json
import math
import os
import shutil

import pytest
import torch
from conftest import CONFIGS

from waveglow import load_config, save_checkpoint
from waveglow.bench import Settings, default_configs, family_rows, inference_rows, speech_clip
from waveglow.bench.models import clip_file, load_clip, random_model
from waveglow.cli import benchmark

TINY = os.path.join(CONFIGS, "tiny.json")


def test_benchmark_main_writes_positive_numbers(tmp_path):
    out = tmp_path / "bench.json"
    rc = benchmark.main([
        "--config", TINY, "--lengths", "0.05", "--batch_sizes", "1",
        "--modes", "plain", "fast", "fast-cached", "--precisions", "fp32", "fp16", "--repeats", "2", "--warmup", "0",
        "--train", "--train_precisions", "fp32", "--segment_length", "1024", "--output_json", str(out),
    ])
    assert rc == 0
    result = json.loads(out.read_text())
    for key in ("device_name", "torch", "date", "threads", "weights"):
        assert result["meta"][key]
    measured = [r for r in result["inference"] if "skipped" not in r]
    assert [r["mode"] for r in measured] == ["plain", "fast", "fast-cached"]
    # each mode timed what it names (the plain path, then the model's fast variants), taking turns on the same input
    assert [r["conditioning"] for r in measured] == ["plain", "fast", "fast-cached"]
    assert any("skipped" in r for r in result["inference"])  # fp16 on CPU
    for row in measured:
        for key in ("latency_s", "samples_per_s", "x_real_time", "s_per_audio_s"):
            assert row[key] > 0
    # tensor memory of set-up and a first call: the cached mode holds its folded operators too
    plain, fast, cached = (r["peak_memory_bytes"] for r in measured)
    assert 0 < plain < cached and 0 < fast
    assert measured[1]["max_rel_diff_vs_plain"] < 1e-5 and measured[2]["max_rel_diff_vs_plain"] < 1e-5
    assert result["accuracy"] == []  # fp16 is skipped on CPU: nothing to compare with fp32
    train = result["training"][0]
    assert train["samples_per_s"] > 0 and train["step_s"] > 0
    assert train["peak_memory_bytes"] > 2 * 4 * sum(p.numel() for p in random_model(TINY, torch.device("cpu"), 0)[0].parameters())  # gradients and Adam's two moments
    assert "| fast | fast | fp32 |" in (tmp_path / "bench.md").read_text()


def test_benchmark_compares_bf16_with_fp32_on_given_weights_and_mel(tmp_path, tiny_model):
    checkpoint = save_checkpoint(tmp_path / "w.pt", tiny_model, load_config(TINY))
    torch.save(torch.randn(80, 9) - 5, tmp_path / "mel.pt")
    out = tmp_path / "bench.json"
    assert benchmark.main([
        "--config", TINY, "--checkpoint", str(checkpoint), "--mel", str(tmp_path / "mel.pt"), "--lengths", "0.2",
        "--modes", "fast", "--precisions", "fp32", "bf16", "--repeats", "1", "--warmup", "0", "--output_json", str(out),
    ]) == 0
    result = json.loads(out.read_text())
    assert result["meta"]["weights"] == str(checkpoint)
    (row,) = result["accuracy"]
    assert row["precision"] == "bf16" and row["nonfinite"] == 0 and row["reference_rms"] > 0
    # bfloat16 keeps 8 significant bits: about 48 dB per rounding, less after 8 flows, far from exact
    assert 15 < row["snr_db"] < 80 and math.isfinite(row["snr_db"])
    assert row["seconds"] * 22050 == 256 * 17  # 0.2 s -> 17 frames: the 9-frame mel repeated, then cut
    assert "| bf16 | 0.20 |" in (tmp_path / "bench.md").read_text()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside torch.compile's own imports
@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile on CPU needs a C++ compiler")
def test_benchmark_compile_mode_matches_plain(tmp_path):
    out = tmp_path / "bench.json"
    assert benchmark.main([
        "--config", TINY, "--lengths", "0.1", "--modes", "plain", "compile", "--repeats", "1", "--warmup", "1",
        "--output_json", str(out),
    ]) == 0
    plain, compiled = json.loads(out.read_text())["inference"]
    assert compiled["mode"] == "compile" and compiled["latency_s"] > 0
    assert compiled["max_rel_diff_vs_plain"] < 1e-5


def test_benchmark_bad_checkpoint_or_mel_is_one_line(tmp_path, capsys, tiny_model):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    assert benchmark.main(["--config", TINY, "--checkpoint", str(tmp_path / "broken.pt"), "--lengths", "0.05",
                           "--output_json", str(tmp_path / "a.json")]) == 1
    checkpoint = save_checkpoint(tmp_path / "w.pt", tiny_model, load_config(TINY))
    torch.save(torch.randn(40, 9), tmp_path / "mel.pt")  # 40 channels, the model has 80
    assert benchmark.main(["--config", TINY, "--checkpoint", str(checkpoint), "--mel", str(tmp_path / "mel.pt"),
                           "--lengths", "0.05", "--output_json", str(tmp_path / "b.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "broken.pt" in err[0] and err[1].startswith(f"error: {tmp_path / 'mel.pt'}: ")
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()


def test_benchmark_onnxruntime_rows_beside_the_pytorch_paths(tmp_path):
    out = tmp_path / "bench.json"
    assert benchmark.main([
        "--config", TINY, "--lengths", "0.05", "0.1", "--modes", "plain", "fast", "onnxruntime", "--repeats", "1",
        "--warmup", "1", "--threads", "1", "--output_json", str(out),
    ]) == 0
    rows = json.loads(out.read_text())["inference"]
    assert [r["mode"] for r in rows] == ["plain", "fast", "onnxruntime"] * 2
    for row in rows[2::3]:  # one export, two lengths: the graph's frames axis is dynamic
        assert row["conditioning"] == "plain (ONNX graph)" and row["s_per_audio_s"] > 0
        assert row["max_rel_diff_vs_plain"] < 1e-5  # it computed the same audio
    if resident_peak_measurable():  # the first session's graph, arena and outputs are resident memory
        assert rows[2]["peak_memory_bytes"] > 0 and all(r["peak_memory_bytes"] >= 0 for r in rows[2::3])
    else:
        assert all(r["peak_memory_bytes"] is None for r in rows[2::3])
    assert rows[2]["frames"] != rows[5]["frames"]
    assert "| onnxruntime | plain (ONNX graph) | fp32 |" in (tmp_path / "bench.md").read_text()


def resident_peak_measurable() -> bool:
    """Whether this process may reset its resident-set peak (Linux's /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def test_families_side_by_side(tmp_path):
    """--families: every family on the same clip, every mode and a training step, in the JSON and the table."""
    out = tmp_path / "families.json"
    rc = benchmark.main(["--families", TINY, os.path.join(CONFIGS, "flowavenet_small.json"),
                         os.path.join(CONFIGS, "waveflow_small.json"), "--lengths", "0.1",
                         "--repeats", "1", "--warmup", "1", "--output_json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())["families"]
    modes = {"waveglow": ("fast", "fast-cached"), "flowavenet": ("fast",), "waveflow": ("fast",)}  # fast_variants()
    assert [(r["family"], r["mode"]) for r in rows] == [
        (family, mode) for family in ("waveglow", "flowavenet", "waveflow")
        for mode in ("reference-style", "plain", *modes[family], "train")]
    for row in rows:
        assert row["parameters"] > 0 and row["peak_memory_bytes"] > 0
        assert (row["samples_per_s"] if row["mode"] == "train" else row["s_per_audio_s"]) > 0
    table = (tmp_path / "families.md").read_text()
    assert "| flowavenet (flowavenet_small) |" in table and "| waveglow (tiny) |" in table and "train step" in table
    assert "| waveflow (waveflow_small) |" in table


def test_trained_state_rows_time_the_training_loop_and_count_subnormals(tmp_path, tiny_model):
    """--train_checkpoint: steps resumed from the checkpoint, in the loop and with subnormals kept.

    The first gate's sigmoid inputs are pushed to about -88, as a trained model's saturated gates
    push some: sigmoid is subnormal there (below -88.7 torch's sigmoid gives 0), so a step that
    keeps subnormals writes some.
    """
    model = tiny_model.train()
    with torch.no_grad():
        model.WN[0].in_layers[0].bias[model.WN[0].n_channels:] = -88.0
    checkpoint = save_checkpoint(tmp_path / "waveglow_5", model, load_config(TINY), iteration=5)
    out = tmp_path / "bench.json"
    assert benchmark.main(["--config", TINY, "--no_inference", "--train_checkpoint", str(checkpoint),
                           "--repeats", "2", "--warmup", "0", "--output_json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["trained_state"]
    assert row["iteration"] == 5 and row["family"] == "waveglow" and row["batch"] == 2
    assert len(row["loop_times_s"]) == len(row["kept_times_s"]) == 2
    assert row["loop_step_s"] > 0 and row["kept_step_s"] > 0
    assert row["subnormals_written_kept"] > 0
    assert "| waveglow_5 | waveglow | 5 | 2 x 4096 |" in (tmp_path / "bench.md").read_text()


def test_trained_state_bad_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    assert benchmark.main(["--config", TINY, "--no_inference", "--train_checkpoint", str(tmp_path / "broken.pt"),
                           "--output_json", str(tmp_path / "a.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "broken.pt" in err[0]
    assert not (tmp_path / "a.json").exists()


def test_rows_come_from_the_models_fast_variants():
    """The modes a model is timed in are its fast_variants(): WaveGlow fast and fast-cached, FloWaveNet fast
    only (its fast-cached is a skipped row, not a guess)."""
    settings = Settings(lengths=[0.05], modes=["plain", "fast", "fast-cached"], repeats=1, warmup=0)
    for name, variants in (("tiny.json", ["fast", "fast-cached"]), ("flowavenet_small.json", ["fast"])):
        source = random_model(os.path.join(CONFIGS, name), torch.device("cpu"), 0)[0]
        assert list(source.fast_variants()) == variants
        rows = inference_rows(settings, source, torch.device("cpu"), 22050)
        assert [r["mode"] for r in rows if "skipped" not in r] == ["plain", *variants]
        assert [r["conditioning"] for r in rows if "skipped" not in r] == ["plain", *variants]
        assert all("not a mode of this model" in r["skipped"] for r in rows if "skipped" in r)
    families = family_rows([os.path.join(CONFIGS, "flowavenet_small.json")],
                           Settings(lengths=[0.05], repeats=1, warmup=0), torch.device("cpu"))
    assert [r["mode"] for r in families] == ["reference-style", "plain", "fast", "train"]


def test_defaults_need_no_checkout(tmp_path, monkeypatch):
    """The default model and clip come from the package: resolved in an empty working directory."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    config = benchmark.default_model()
    assert config.family.name == "waveglow" and config.model_config.WN_config.n_channels == 256
    assert config.to_dict() == load_config(os.path.join(CONFIGS, "config.json")).to_dict()
    assert [c.family.name for c in default_configs(benchmark.DEFAULT_SECTIONS)] == ["waveglow", "flowavenet", "waveflow"]
    args = benchmark.parse_args([])
    assert args.config is None and args.clip is None
    stream_args = benchmark.parse_stream_args([])
    assert stream_args.configs is None and stream_args.clip is None
    clip = load_clip(None, 16000)
    assert torch.equal(clip, speech_clip(16000)) and clip.numel() == 32000  # deterministic, 2 s at the rate asked
    assert 0.4 < clip.abs().max() <= 0.5 and clip.pow(2).mean().sqrt() > 0.03
    path = clip_file(None, 22050, str(tmp_path))  # for the datasets and the training loop, which read files
    assert torch.allclose(load_clip(path, 22050), speech_clip(22050), atol=1 / 32768)
    assert os.listdir(empty) == []
    assert benchmark.main(["--no_inference", "--output_json", "out/b.json"]) == 0  # the command resolves them too
    assert json.loads((empty / "out" / "b.json").read_text())["meta"]["config"] == "default (waveglow)"
