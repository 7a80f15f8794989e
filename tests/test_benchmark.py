"""Smoke test of scripts/benchmark.py on the tiny config."""

import json
import os
import sys

from conftest import CONFIGS, REPO

sys.path.insert(0, os.path.join(REPO, "scripts"))

import benchmark  # noqa: E402


def test_benchmark_main_writes_positive_numbers(tmp_path):
    out = tmp_path / "bench.json"
    rc = benchmark.main([
        "--config", os.path.join(CONFIGS, "tiny.json"), "--lengths", "0.05", "--batch_sizes", "1",
        "--modes", "plain", "fast", "fast-cached", "--precisions", "fp32", "fp16", "--repeats", "2", "--warmup", "0",
        "--train", "--train_precisions", "fp32", "--segment_length", "1024", "--output_json", str(out),
    ])
    assert rc == 0
    result = json.loads(out.read_text())
    for key in ("device_name", "torch", "date", "threads"):
        assert result["meta"][key]
    measured = [r for r in result["inference"] if "skipped" not in r]
    assert [r["mode"] for r in measured] == ["plain", "fast", "fast-cached"]
    # each mode timed what it names, though the modes take turns on the same input
    assert [r["conditioning"] for r in measured] == ["plain", "time-major", "folded, cached"]
    assert any("skipped" in r for r in result["inference"])  # fp16 on CPU
    for row in measured:
        for key in ("latency_s", "samples_per_s", "x_real_time", "s_per_audio_s"):
            assert row[key] > 0
        assert row["peak_memory_bytes"] >= 0
    assert measured[1]["max_rel_diff_vs_plain"] < 1e-5 and measured[2]["max_rel_diff_vs_plain"] < 1e-5
    train = result["training"][0]
    assert train["samples_per_s"] > 0 and train["step_s"] > 0
    assert "| fast | time-major | fp32 |" in (tmp_path / "bench.md").read_text()
