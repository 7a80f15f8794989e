"""The GPU check's stages before the voice: environment, CUDA tests, benchmarks, distributed; and the limits.

Each is ``stage(check, deadline) -> dict``: what it measured (merged into the summary) and, when it
did not simply succeed, a ``status`` ("skipped", "failed") with a ``reason``.
"""

from __future__ import annotations

import gc
import glob
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ElementTree

import torch

from ..checkpoint import read_checkpoint
from ..cli import benchmark
from ..config import load_config
from ..devices import cpu_name
from .check import Check
from .limits import output_limits, tree_size
from .voice import training_clips

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPTIONAL = ("librosa", "soundfile", "soxr", "pesq", "pystoi", "speechmos", "onnxruntime", "onnxscript")


def child_env() -> dict[str, str]:
    """The environment for a child Python: this checkout importable (it is not installed on the GPU
    machine), output unbuffered."""
    path = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


# ----------------------------------------------------------------------------- environment


def environment(check: Check, deadline: float) -> dict:
    facts = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
             "cpu": cpu_name(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
             "cuda_available": torch.cuda.is_available(),
             "packages_missing": [name for name in OPTIONAL if importlib.util.find_spec(name) is None]}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                     multiprocessors=props.multi_processor_count, capability=f"{props.major}.{props.minor}",
                     cudnn=torch.backends.cudnn.version(), nccl=version_string(torch.cuda.nccl.version()))
    facts["driver"] = _nvidia_smi("driver_version")
    if facts["driver"] is None and not torch.cuda.is_available():
        facts["driver"] = "none (no CUDA)"
    check.summary["environment"] = facts
    for key, value in facts.items():
        print(f"{key}: {value}")
    return {}


def version_string(version) -> str:
    """``(2, 27, 3)`` -> ``"2.27.3"``; an int or a string as it is (torch has returned each)."""
    return ".".join(map(str, version)) if isinstance(version, (tuple, list)) else str(version)


def _nvidia_smi(field: str) -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


# ----------------------------------------------------------------------------- CUDA tests


def cuda_test_files() -> list[str]:
    """The test files holding a ``@pytest.mark.cuda`` test (relative to the repository)."""
    files = sorted(glob.glob(os.path.join(REPO, "tests", "test_*.py")))
    return [os.path.relpath(f, REPO) for f in files if "pytest.mark.cuda" in open(f, encoding="utf-8").read()]


def cuda_tests(check: Check, deadline: float) -> dict:
    """``pytest -m cuda`` over the files that hold CUDA tests; counts and the failures from its JUnit XML."""
    files = cuda_test_files()
    xml = os.path.join(check.work, "cuda_tests.xml")
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "-rfEs",
               "--continue-on-collection-errors",  # a file that will not import there costs only its own tests
               f"--junitxml={xml}", *files]
    code = check.log.run(command, deadline - time.monotonic(), env=child_env(), cwd=REPO)
    result = {"files": files, "exit_code": code, **_junit_counts(xml)}
    if code == 124:
        return {**result, "status": "failed", "error": "pytest ran past the stage's time"}
    if not torch.cuda.is_available():
        ran = result.get("tests", 0) - result.get("skipped", 0)
        return {**result, "status": "skipped" if ran == 0 and code in (0, 5) else "failed",
                "reason": f"no CUDA: the {result.get('tests', 0)} CUDA tests were collected and skipped"}
    if code != 0:
        return {**result, "status": "failed", "error": f"pytest exit status {code}; {len(result.get('failed', []))} failed"}
    return result


def _junit_counts(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    root = ElementTree.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    counts["failed"] = [f"{case.get('classname')}::{case.get('name')}: "
                        f"{(bad.get('message') or '').splitlines()[0][:200] if bad.get('message') else ''}"
                        for case in suite.iter("testcase") for bad in case if bad.tag in ("failure", "error")]
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


# ----------------------------------------------------------------------------- benchmarks


def derived_config(check: Check, path: str, overrides: list[str], name: str) -> str:
    """``path`` with ``--set``-style overrides, written into the scratch folder (the original if none)."""
    if not overrides:
        return os.path.join(REPO, path)
    target = os.path.join(check.work, name)
    with open(target, "w") as f:
        json.dump(load_config(os.path.join(REPO, path), overrides).to_dict(), f, indent=2)
    return target


def benchmark_sections(check: Check) -> list[tuple[str, list[str]]]:
    """(name, waveglow-benchmark arguments) per section, in the order they run: the profile's first
    precision (fp16 on the GPU, the headline figure) and training first, so a short stage keeps them."""
    p = check.profile
    device = "cuda" if torch.cuda.is_available() else "cpu"
    waveglow = derived_config(check, p.bench_config, p.bench_overrides, "bench_waveglow.json")
    flowavenet = derived_config(check, p.flowavenet_config, p.flowavenet_overrides, "bench_flowavenet.json")
    common = ["--device", device, "--repeats", str(p.repeats), "--warmup", "2" if device == "cuda" else "1"]
    inference = ["--lengths", *map(str, p.bench_lengths), "--batch_sizes", *map(str, p.bench_batches),
                 "--modes", *p.bench_modes, "--accuracy_sigma", "0.6"]
    sections = [(f"waveglow_{precision}", ["--config", waveglow, *common, *inference, "--precisions", precision]
                 + (["--no_accuracy"] if precision == "fp32" else [])) for precision in p.bench_precisions]
    sections.insert(1, ("waveglow_train", ["--config", waveglow, *common, "--no_inference", "--train",
                                           "--train_batch_size", str(p.train_batch), "--segment_length",
                                           str(p.train_segment), "--train_precisions", *p.train_precisions]))
    fw_precisions = ["fp32", "fp16"] if device == "cuda" else ["fp32"]
    sections.append(("flowavenet_inference", ["--config", flowavenet, *common, "--lengths", str(p.bench_lengths[0]),
                                              "--batch_sizes", "1", "--modes", "plain", "fast", "--accuracy_sigma",
                                              "0.6", "--precisions", *fw_precisions]))
    waveflow = derived_config(check, p.waveflow_config, p.waveflow_overrides, "bench_waveflow.json")
    sections.append(("waveflow_inference", ["--config", waveflow, *common, "--lengths", str(p.bench_lengths[0]),
                                            "--batch_sizes", "1", "--modes", "plain", "fast", "--accuracy_sigma",
                                            "0.6", "--precisions", *fw_precisions]))
    sections.append(("flowavenet_train", ["--config", waveglow, *common, "--families", flowavenet, waveflow, "--lengths",
                                          str(p.bench_lengths[0])]))
    return sections


def benchmarks(check: Check, deadline: float) -> dict:
    """``waveglow-benchmark`` section by section (so a slow one costs only itself), merged into
    benchmarks.json and benchmarks.md."""
    merged, markdown, done, skipped = {"sections": {}}, ["# Benchmarks of the GPU check", ""], [], []
    minimum = check.profile.minimum_s["benchmarks"] / 3
    for name, argv in benchmark_sections(check):
        if deadline - time.monotonic() < minimum:
            skipped.append(name)
            print(f"{name}: skipped, {deadline - time.monotonic():.0f} s left of the stage")
            continue
        json_path = os.path.join(check.work, f"bench_{name}.json")
        print(f"\n# {name}: waveglow-benchmark {' '.join(argv)}")
        started = time.monotonic()
        try:
            code = benchmark.main([*argv, "--output_json", json_path, "--output_md", json_path[:-5] + ".md"])
        except Exception as e:  # one section's failure (a CUDA graph that will not capture, say) stops only it
            traceback.print_exc()
            code = f"{type(e).__name__}: {e}"
        if code != 0 or not os.path.exists(json_path):
            merged["sections"][name] = {"error": f"exit status {code}" if isinstance(code, int) else code}
            continue
        with open(json_path) as f:
            merged["sections"][name] = json.load(f)
        merged["sections"][name]["seconds"] = round(time.monotonic() - started, 1)
        with open(json_path[:-5] + ".md") as f:
            markdown += [f"## {name}", "", f"`waveglow-benchmark {' '.join(_relative(a) for a in argv)}`", "", f.read()]
        done.append(name)
        _write_pair(check, "benchmarks", merged, markdown)
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()  # hand the benchmarks' cached blocks back before torchrun's processes start
    failed = [n for n, s in merged["sections"].items() if "error" in s]
    result = {"sections_done": done, "sections_skipped": skipped, "sections_failed": failed,
              "headline": headline_figures(merged)}
    if failed:
        return {**result, "status": "failed", "error": f"sections failed: {', '.join(failed)}"}
    return result


def _relative(arg: str) -> str:
    return os.path.basename(arg) if os.path.isabs(arg) else arg


def _write_pair(check: Check, stem: str, data: dict, markdown: list[str]) -> None:
    for name, text in ((f"{stem}.json", json.dumps(data, indent=2, default=str)), (f"{stem}.md", "\n".join(markdown))):
        tmp = check.path(f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, check.path(name))


def headline_figures(merged: dict) -> dict:
    """The figures the summary shows: best samples/s per precision and mode at batch 1, SNRs, training."""
    heads = {}
    for name, section in merged["sections"].items():
        for row in section.get("inference", []):
            if "skipped" not in row:
                key = f"{name.split('_')[0]} {row['mode']} {row['precision']} B{row['batch']} {row['seconds']:.3g}s"
                heads[key] = {"samples_per_s": round(row["samples_per_s"]), "x_real_time": round(row["x_real_time"], 1),
                              "peak_mb": None if row["peak_memory_bytes"] is None else round(row["peak_memory_bytes"] / 2**20)}
        for row in section.get("accuracy", []):
            heads[f"{name.split('_')[0]} SNR {row['precision']} vs fp32 {row['seconds']:.3g}s"] = round(row["snr_db"], 1)
        for row in section.get("training", []):
            heads[f"train {row['precision']} B{row['batch']}x{row['segment_length']}"] = round(row["samples_per_s"])
        for row in section.get("families", []):
            if row["mode"] == "train":
                heads[f"{row['family']} train B1x{row['segment_length']}"] = round(row["samples_per_s"])
    return heads


# ----------------------------------------------------------------------------- distributed


def distributed(check: Check, deadline: float) -> dict:
    """The project's torchrun launcher (``waveglow.cli.distributed``), one process: a few steps and a
    checkpoint, then ``--resume`` to twice as many; and a DDP step over the process group (ddp_probe)."""
    p, folder = check.profile, os.path.join(check.work, "distributed")
    os.makedirs(folder, exist_ok=True)
    files = os.path.join(folder, "train_files.txt")
    with open(files, "w") as f:
        f.writelines(f"{clip}\n" for clip in training_clips()[:8])
    steps, cuda = p.dist_steps, torch.cuda.is_available()
    backend = p.dist_backend if cuda else "gloo"
    config = os.path.join(folder, "config.json")
    arch = next(iter(p.voice_candidates.values()))
    with open(config, "w") as f:
        json.dump(load_config(os.path.join(REPO, "configs", "demo.json"), [
            f"data_config.training_files={files}", f"train_config.output_directory={folder}/run",
            f"train_config.max_iterations={steps}", f"train_config.iters_per_checkpoint={steps}",
            "train_config.batch_size=2", f"data_config.segment_length={p.voice_segment}",
            f"train_config.fp16_run={'true' if cuda else 'false'}", f"dist_config.dist_backend={backend}",
            *[f"waveglow_config.{k}={json.dumps(v)}" for k, v in arch.items()]]).to_dict(), f, indent=2)
    launch = [sys.executable, "-m", "waveglow.cli.distributed", "-c", config, "--nproc", "1"]
    result = {"backend": backend, "steps": steps}
    result["first_exit"] = check.log.run(launch, _launch_timeout(deadline, 3), env=child_env(), cwd=REPO)
    resume = [*launch, "-a", f"--resume --set train_config.max_iterations={2 * steps}"]
    result["resume_exit"] = check.log.run(resume, _launch_timeout(deadline, 2), env=child_env(), cwd=REPO)
    first, second = (os.path.join(folder, "run", f"waveglow_{n}") for n in (steps, 2 * steps))
    result["checkpoints"] = [os.path.basename(c) for c in (first, second) if os.path.exists(c)]
    if os.path.exists(second):
        result["resumed_iteration"] = read_checkpoint(second).iteration
    probe = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
             "-m", "waveglow.gpucheck.ddp_probe", "--backend", backend]
    lines: list[str] = []
    code = check.log.run(probe, deadline - time.monotonic(), env=child_env(), cwd=REPO, lines=lines)
    found = re.search(r"^DDP_PROBE (.*)$", "".join(lines), re.M)
    result["ddp_probe"] = json.loads(found.group(1)) if found else {"exit": code}
    ok = result["first_exit"] == 0 and result["resume_exit"] == 0 and result.get("resumed_iteration") == 2 * steps
    if not (ok and code == 0):
        return {**result, "status": "failed", "error": "a launch failed or the resume did not reach "
                f"iteration {2 * steps} (first {result['first_exit']}, resume {result['resume_exit']}, probe {code})"}
    return result


def _launch_timeout(deadline: float, launches_left: int) -> float:
    """Half as much again as an equal share of what is left: launches take about the same time, and
    one that runs long should not starve the ones after it."""
    left = deadline - time.monotonic()
    return min(left, 1.5 * left / launches_left)


# ----------------------------------------------------------------------------- limits


def limits(check: Check, deadline: float) -> dict:
    """What the device tool sends and brings back, measured: the tree, and this run's output folder."""
    result = {"tree": tree_size(REPO), "output": output_limits(check.out)}
    problems = result["tree"]["problems"] + result["output"]["problems"]
    if problems:
        return {**result, "status": "failed", "error": "; ".join(problems)}
    return result
