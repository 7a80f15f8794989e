"""The GPU check rehearsed on the CPU: scripts/gpu_check.sh --cpu-rehearsal, end to end, as the GPU
machine would run it (no librosa, soundfile or soxr importable), within the device tool's limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from waveglow import load_checkpoint, read_checkpoint, synthesize
from waveglow.gpucheck import STAGES, main
from waveglow.gpucheck.limits import FILE_LIMIT, MAX_FILES_BACK, output_limits
from waveglow.gpucheck.profile import MAX_CHECKPOINT_BYTES

from conftest import REPO

BUDGET_S = 85  # the rehearsal's default is 150; the stages shrink to fit (torchrun launches take ~13 s each on 2 busy cores)
# not installed on the GPU machine (docs/benchmarks.md): the rehearsal must not need them
MISSING = ("librosa", "soundfile", "soxr", "audioread", "pooch", "pesq", "pystoi", "speechmos", "playwright")


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """(exit status, output folder, summary) of one rehearsal with the packages the GPU machine lacks unimportable."""
    root = tmp_path_factory.mktemp("gpu_check")
    blocker = root / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in MISSING))  # import -> ImportError
    env = {**os.environ, "PYTHONPATH": str(blocker), "PYTHON": sys.executable}
    out = root / "out"
    done = subprocess.run(["bash", os.path.join(REPO, "scripts", "gpu_check.sh"), "--cpu-rehearsal", str(out),
                           "--budget", str(BUDGET_S), "--work", str(root / "work")],
                          env=env, capture_output=True, text=True, timeout=BUDGET_S + 60)
    summary = json.loads((out / "summary.json").read_text())
    return done, out, summary


def test_every_stage_ran_or_skipped_as_expected(rehearsal):
    done, out, summary = rehearsal
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stages = summary["stages"]
    assert list(stages) == list(STAGES)
    expected = {"environment": "ok", "cuda_tests": "skipped", "benchmarks": "ok", "distributed": "ok", "voice": "ok",
                "limits": "ok"}
    assert {name: record["status"] for name, record in stages.items()} == expected
    assert "no CUDA" in stages["cuda_tests"]["reason"] and stages["cuda_tests"]["tests"] >= 10
    assert {"librosa", "soundfile", "soxr", "pesq"} <= set(summary["environment"]["packages_missing"])
    assert summary["meta"]["elapsed_s"] <= BUDGET_S + 15
    markdown = (out / "summary.md").read_text()
    for heading in ("## CUDA tests", "## Benchmarks", "## Distributed", "## Demo voice", "## Limits"):
        assert heading in markdown


def test_benchmarks_and_distributed_measured(rehearsal):
    _, out, summary = rehearsal
    bench = summary["stages"]["benchmarks"]
    assert set(bench["sections_done"]) == {"waveglow_fp32", "waveglow_bf16", "waveglow_train", "flowavenet_inference",
                                          "waveflow_inference", "flowavenet_train"}
    sections = json.loads((out / "benchmarks.json").read_text())["sections"]
    assert sections["waveglow_bf16"]["accuracy"][0]["sigma"] == 0.6
    assert all(row["samples_per_s"] > 0 for row in sections["waveglow_train"]["training"])
    dist = summary["stages"]["distributed"]
    assert dist["checkpoints"] == ["waveglow_2", "waveglow_4"] and dist["resumed_iteration"] == 4
    assert dist["ddp_probe"]["all_reduce"] == dist["ddp_probe"]["all_reduce_expected"]


def test_what_comes_back_fits_and_the_voice_vocodes(rehearsal):
    _, out, summary = rehearsal
    limits = output_limits(str(out))
    assert limits["problems"] == [] and limits["count"] <= MAX_FILES_BACK
    assert all(f["bytes"] < FILE_LIMIT for f in limits["files"])
    assert summary["stages"]["limits"]["tree"]["mib"] < 64
    voice = summary["stages"]["voice"]
    assert voice["iterations"] > 0 and voice["vocodes"] and len(voice["sweep"]) == 2
    path = out / "waveglow_voice.pt"
    assert os.path.getsize(path) <= MAX_CHECKPOINT_BYTES
    checkpoint = read_checkpoint(str(path))
    assert checkpoint.optimizer is None and checkpoint.iteration == voice["end_iteration"]
    model = load_checkpoint(str(path))
    mel = torch.randn(80, 20, generator=torch.Generator().manual_seed(0)) - 5.0
    audio = synthesize(model, mel, sigma=0.6)
    assert audio.shape == (20 * 256,) and torch.isfinite(audio).all()


def test_voice_resumes_from_the_shipped_checkpoint(rehearsal, tmp_path):
    """A second run, given the first one's voice as the shipped one, continues it: no sweep, iterations go on."""
    _, out, summary = rehearsal
    shipped = str(out / "waveglow_voice.pt")
    code = main([str(tmp_path / "out"), "--cpu-rehearsal", "--budget", "8", "--work", str(tmp_path / "work"),
                 "--skip", "environment", "cuda_tests", "benchmarks", "distributed", "--voice_checkpoint", shipped])
    assert code == 0
    voice = json.loads((tmp_path / "out" / "summary.json").read_text())["stages"]["voice"]
    assert voice["status"] == "ok" and list(voice["sweep"]) == ["shipped"]
    assert voice["start_iteration"] == summary["stages"]["voice"]["end_iteration"]
    assert voice["end_iteration"] > voice["start_iteration"]


def test_output_limits_name_each_problem(tmp_path):
    for i in range(MAX_FILES_BACK):
        (tmp_path / f"f{i}.txt").write_text("x")
    assert output_limits(str(tmp_path))["problems"] == []
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "deep.txt").write_text("x")
    (tmp_path / "bad name.txt").write_text("x")
    with open(tmp_path / "big.bin", "wb") as f:
        f.truncate(FILE_LIMIT)
    problems = " | ".join(output_limits(str(tmp_path))["problems"])
    for expected in ("deep.txt: more than 2 folders deep", "bad name.txt: a name outside", "big.bin: 16.0 MiB",
                     "11 files in the output folder"):
        assert expected in problems


def test_tree_size_without_git_leaves_out_what_is_never_sent(tmp_path, monkeypatch):
    from waveglow.gpucheck import limits

    monkeypatch.setattr(limits, "_git_files", lambda repo: None)  # as on the GPU machine: a copy, no .git
    (tmp_path / "waveglow").mkdir()
    (tmp_path / "waveglow" / "a.py").write_bytes(b"x" * 1000)
    (tmp_path / ".venv").mkdir()
    with open(tmp_path / ".venv" / "torch.so", "wb") as f:
        f.truncate(limits.TREE_LIMIT)
    size = limits.tree_size(str(tmp_path))
    assert size["bytes"] == 1000 and size["problems"] == []
    (tmp_path / ".whl").mkdir()
    with open(tmp_path / ".whl" / "big.whl", "wb") as f:
        f.truncate(limits.TREE_LIMIT)
    assert "over 64 MiB" in limits.tree_size(str(tmp_path), carried=(".whl",))["problems"][0]
