"""Writing a user's file so that a failed run never destroys the one already there.

Every file the package writes for the user (checkpoints, exported graphs, WAVs, mels, lists, summaries,
reports, benchmark results) goes through :func:`atomic_path`: the writer fills a temporary file in
the destination folder, which is flushed to disk and renamed over the destination only when the
writer returns without an exception. On an exception the temporary file is removed and the earlier
file, if any, is left byte for byte as it was.

    with atomic_path("out/model.onnx") as tmp:
        export(model, tmp)
        verify(tmp)          # raises: out/model.onnx is untouched
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

__all__ = ["atomic_path", "atomic_open", "write_text"]


def _permissions(path: str) -> int:
    """The mode a new file at ``path`` gets: an existing file's mode, else 0o666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path`` (same folder and extension); on success it replaces ``path``.

    The extension is kept because some writers pick the format from it (soundfile, matplotlib).
    Raises OSError when the folder does not exist or is not writable, before anything is written.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=f".tmp{ext}")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _permissions(path))
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """``open(path, mode, **kwargs)`` on a temporary file that replaces ``path`` when the block succeeds."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes a whole file: mode {mode!r} must start with 'w'")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_text(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8), atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
