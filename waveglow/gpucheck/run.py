"""The GPU check's driver: the budget, the stages in order, and the summary rewritten after each.

Every stage gets a deadline from the clock (a share of the budget, never past what the stages after
it need), records what it measured into the summary, and catches its own failure: the run goes on.
Training the demo voice takes whatever time the earlier stages left.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout

from . import stages, voice
from .check import Check, Clock, Log
from .profile import gpu_profile, rehearsal_profile

STAGES = ("environment", "cuda_tests", "benchmarks", "distributed", "voice", "limits")
LOG = "log.txt"


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
