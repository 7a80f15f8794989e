"""The GPU check's driver: the budget, the stages in order, and the summary rewritten after each.

Every stage gets a deadline from the clock (a share of the budget, never past what the stages after
it need), records what it measured into the summary, and catches its own failure: the run goes on.
Training the demo voice takes whatever time the earlier stages left.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field

from .profile import Profile, gpu_profile, rehearsal_profile
from .report import summary_markdown

STAGES = ("environment", "cuda_tests", "benchmarks", "distributed", "voice", "limits")
SUMMARY_JSON, SUMMARY_MD, LOG = "summary.json", "summary.md", "log.txt"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/gpu_check.sh", description=(
        "The GPU check: CUDA tests, benchmarks of both families, torchrun with a resume, and the demo voice trained "
        "with the time left, within a budget, into one folder (docs/benchmarks.md, 'Running the GPU check')."))
    p.add_argument("out", nargs="?", default=None, help="output folder (default: $OUT)")
    p.add_argument("--cpu-rehearsal", action="store_true",
                   help="every stage on the CPU with tiny sizes; CUDA-only steps skip and say so")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for the whole run (default: 480 on the GPU, 150 for the rehearsal)")
    p.add_argument("--skip", nargs="+", default=[], choices=STAGES[:-1], metavar="STAGE",
                   help=f"stages to leave out, of {', '.join(STAGES[:-1])}")
    p.add_argument("--work", default=None, help="scratch folder for runs (default: a new folder under /tmp)")
    p.add_argument("--voice_checkpoint", default=os.path.join("demo", "waveglow_voice.pt"),
                   help="the shipped demo voice that training resumes from, when the file exists")
    return p.parse_args(argv)


class Clock:
    """Seconds since the start, and what is left of the budget."""

    def __init__(self, budget: float) -> None:
        self.start, self.budget = time.monotonic(), budget

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.budget - self.elapsed()


class Log:
    """Lines to log.txt and to the terminal, flushed at once (a killed run keeps every line)."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "a", encoding="utf-8", buffering=1)

    def write(self, text: str) -> int:
        self.file.write(text)
        sys.__stdout__.write(text)
        sys.__stdout__.flush()
        return len(text)

    def flush(self) -> None:
        self.file.flush()

    def __call__(self, *parts) -> None:
        self.write(" ".join(str(p) for p in parts) + "\n")

    def run(self, command: list[str], timeout: float, env: dict | None = None, cwd: str | None = None,
            lines: list[str] | None = None) -> int:
        """Run a program, its output streamed into the log (and appended to ``lines``); killed with its
        process group at ``timeout`` seconds (status 124)."""
        self(f"$ {' '.join(command)}   (timeout {timeout:.0f} s)")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=env, cwd=cwd, start_new_session=True)
        deadline = time.monotonic() + max(1.0, timeout)
        try:
            for line in _lines_until(process, deadline):
                self.write(line)
                if lines is not None:
                    lines.append(line)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()
                self(f"killed after {timeout:.0f} s")
                return 124
        return process.returncode


def _lines_until(process: subprocess.Popen, deadline: float):
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        if not selector.select(timeout=min(1.0, max(0.0, deadline - time.monotonic()))):
            continue
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
            return
        yield line


@dataclass
class Check:
    """One run: where it writes, its sizes, its clock, its log and its summary."""

    out: str
    work: str
    profile: Profile
    clock: Clock
    log: Log
    args: argparse.Namespace
    summary: dict = field(default_factory=dict)

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def write_summary(self) -> None:
        """summary.json and summary.md, each written to a temporary file and renamed into place."""
        self.summary["meta"]["elapsed_s"] = round(self.clock.elapsed(), 1)
        for name, text in ((SUMMARY_JSON, json.dumps(self.summary, indent=2, default=str)),
                           (SUMMARY_MD, summary_markdown(self.summary))):
            tmp = self.path(f".{name}.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path(name))


def stage_deadline(check: Check, name: str) -> float:
    """Seconds this stage may take: its share of the budget, leaving the later stages their minimum."""
    later = STAGES[STAGES.index(name) + 1:]
    reserve = sum(check.profile.minimum_s.get(s, 0) for s in later if s not in check.args.skip)
    share = check.profile.share_s.get(name)
    left = check.clock.left() - reserve
    return max(0.0, left if share is None else min(share, left))


def run_stage(check: Check, name: str, fn) -> None:
    """Run one stage with its deadline; record status, seconds and whatever it returned or raised."""
    record = check.summary["stages"][name]
    allowed = stage_deadline(check, name)
    if name in check.args.skip:
        record.update(status="skipped", reason="--skip")
    elif allowed < check.profile.minimum_s.get(name, 1) and name != "limits":  # the limits take no time: always
        record.update(status="skipped", reason=f"no time left ({allowed:.0f} s of the budget for it)")
    else:
        check.log(f"\n=== {name} ({allowed:.0f} s allowed; {check.clock.elapsed():.0f} s into the run)")
        record.update(status="running", allowed_s=round(allowed, 1))
        check.write_summary()
        started = time.monotonic()
        try:
            with redirect_stdout(check.log), redirect_stderr(check.log):
                result = fn(check, time.monotonic() + allowed) or {}
            record.update(result)
            record["status"] = result.get("status", "ok")
        except Exception as e:  # a stage's failure is recorded; the run goes on
            record.update(status="failed", error=f"{type(e).__name__}: {e}")
            check.log(traceback.format_exc())
        record["seconds"] = round(time.monotonic() - started, 1)
    check.log(f"--- {name}: {record['status']}" + (f" ({record.get('reason') or record.get('error')})"
                                                   if record["status"] not in ("ok", "running") else ""))
    check.write_summary()


def stage_functions() -> dict:
    from . import stages, voice  # lazily: both import Check from this module, so a top-level import is circular

    return {"environment": stages.environment, "cuda_tests": stages.cuda_tests, "benchmarks": stages.benchmarks,
            "distributed": stages.distributed, "voice": voice.train_voice, "limits": stages.limits}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or os.environ.get("OUT")
    if not out:
        print("error: no output folder: pass one or set $OUT", file=sys.stderr)
        return 2
    profile = rehearsal_profile() if args.cpu_rehearsal else gpu_profile()
    budget = args.budget if args.budget is not None else profile.default_budget_s
    try:
        os.makedirs(out, exist_ok=True)
        work = args.work or _scratch()
        os.makedirs(work, exist_ok=True)
    except OSError as e:
        print(f"error: {out}: cannot create the output folder ({e.strerror or e})", file=sys.stderr)
        return 2
    check = Check(out=out, work=work, profile=profile, clock=Clock(budget), log=Log(os.path.join(out, LOG)), args=args)
    check.summary = {
        "meta": {"mode": profile.name, "budget_s": budget, "started": datetime.datetime.now(datetime.timezone.utc)
                 .isoformat(timespec="seconds"), "out": os.path.abspath(out), "work": work, "arguments": vars(args)},
        "stages": {name: {"status": "not reached"} for name in STAGES},
    }
    check.log(f"GPU check ({profile.name}), budget {budget:.0f} s, output {out}, scratch {work}")
    if profile.name == "gpu":
        import torch

        if not torch.cuda.is_available():
            check.log("warning: no CUDA device; the CUDA-only steps will skip (use --cpu-rehearsal on a CPU)")
    for name, fn in stage_functions().items():
        run_stage(check, name, fn)
    check.summary["meta"]["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    check.write_summary()
    failed = [n for n, r in check.summary["stages"].items() if r["status"] == "failed"]
    check.log(f"done in {check.clock.elapsed():.0f} s; " + (f"failed: {', '.join(failed)}" if failed else "no stage failed"))
    return 1 if failed else 0


def _scratch() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="gpu_check_")
