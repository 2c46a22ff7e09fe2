"""Atomic file writes: an interrupted run leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_file"]


def _umask_from_proc() -> int | None:
    """The umask as Linux reports it (thread-safe), or None where it does not."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


def _umask_by_setting() -> int:
    mask = os.umask(0o022)  # set and restore at once: done once, at import
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _umask_from_proc()
if _UMASK_AT_IMPORT is None:
    _UMASK_AT_IMPORT = _umask_by_setting()


def _umask() -> int:
    """The process's umask: read from /proc where the system tells it (Linux), else the one
    it had when this module was imported."""
    now = _umask_from_proc()
    return _UMASK_AT_IMPORT if now is None else now


@contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success flush it to disk and rename it over
    ``path``, on any exception (Ctrl-C included) delete it and leave ``path`` untouched.

    Args:
        path: the file to write; its folder is created if missing.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: text encoding (ignored in binary mode).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            # mkstemp makes the file 0600; give it the mode open() would (0666 less the umask)
            try:
                os.fchmod(fh.fileno(), 0o666 & ~_umask())
            except (OSError, AttributeError):  # no fchmod (Windows), or a file system without modes
                pass
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
