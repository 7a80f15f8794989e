"""One GPU-check run's state: its clock, its log and its summary (what every stage is handed)."""

from __future__ import annotations

import argparse
import json
import selectors
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from .profile import Profile
from .report import summary_markdown

__all__ = ["Check", "Clock", "Log", "SUMMARY_JSON", "SUMMARY_MD"]

SUMMARY_JSON, SUMMARY_MD = "summary.json", "summary.md"


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
