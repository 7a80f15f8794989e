"""The device tool's limits, measured: what travels there and what comes back.

The working tree that travels (tracked files and untracked ones git does not ignore, plus carried
paths) must stay under 64 MiB; from the output folder at most 8 files come back, each under 16 MiB,
no deeper than two folders, named in letters, digits, '.', '_' and '-'.
"""

from __future__ import annotations

import os
import re
import subprocess

TREE_LIMIT = 64 * 2**20
FILE_LIMIT = 16 * 2**20
TOTAL_BACK_LIMIT = 64 * 2**20
MAX_FILES_BACK = 8
MAX_DEPTH = 2  # folders below the output folder
NAME = re.compile(r"^[A-Za-z0-9._-]+$")
NEVER_SENT = (".git", ".venv", "__pycache__", ".pytest_cache")  # ignored (.gitignore) or not part of the tree


def tree_size(repo: str, carried: tuple[str, ...] = ()) -> dict:
    """Bytes of the tree the device tool would send: git's tracked and untracked-not-ignored files
    (every file under ``repo`` where there is no git checkout, as on the GPU machine) and ``carried``."""
    files = _git_files(repo)
    how = "git ls-files (tracked + untracked not ignored)"
    if files is None:
        files = [os.path.relpath(os.path.join(d, f), repo) for d, _, names in _walk(repo) for f in names]
        how = f"every file under the repository but {', '.join(NEVER_SENT)} (no git checkout here)"
    total = sum(os.path.getsize(os.path.join(repo, f)) for f in files if os.path.isfile(os.path.join(repo, f)))
    for path in carried:
        full = os.path.join(repo, path)
        total += sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(full) for f in names) \
            if os.path.isdir(full) else (os.path.getsize(full) if os.path.exists(full) else 0)
    problems = [] if total < TREE_LIMIT else [f"the tree that travels is {total / 2**20:.1f} MiB, over 64 MiB"]
    return {"bytes": total, "mib": round(total / 2**20, 2), "files": len(files), "measured_by": how,
            "carried": list(carried), "problems": problems}


def _walk(repo: str):
    """os.walk, leaving out the folders that git ignores here and the device tool never sends."""
    for directory, folders, names in os.walk(repo):
        folders[:] = [f for f in folders if f not in NEVER_SENT]
        yield directory, folders, names


def _git_files(repo: str) -> list[str] | None:
    try:
        out = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return sorted(set(filter(None, out.stdout.decode("utf-8", "replace").split("\0"))))


def output_limits(out: str) -> dict:
    """Every file under ``out`` against what comes back: count, sizes, depth and names."""
    files, problems = [], []
    for directory, _, names in os.walk(out):
        for name in names:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, out)
            files.append({"name": relative, "bytes": os.path.getsize(path)})
            parts = relative.split(os.sep)
            if len(parts) - 1 > MAX_DEPTH:
                problems.append(f"{relative}: more than {MAX_DEPTH} folders deep, would not come back")
            if not all(NAME.match(part) for part in parts):
                problems.append(f"{relative}: a name outside letters, digits, '.', '_' and '-'")
            if os.path.getsize(path) >= FILE_LIMIT:
                problems.append(f"{relative}: {os.path.getsize(path) / 2**20:.1f} MiB, 16 MiB or more")
    total = sum(f["bytes"] for f in files)
    if len(files) > MAX_FILES_BACK:
        problems.append(f"{len(files)} files in the output folder, more than {MAX_FILES_BACK} come back")
    if total > TOTAL_BACK_LIMIT:
        problems.append(f"{total / 2**20:.1f} MiB in the output folder, over 64 MiB")
    return {"files": sorted(files, key=lambda f: f["name"]), "count": len(files), "bytes": total, "problems": problems}
