"""Where the project keeps what it computes: the root of its on-disk caches."""

from __future__ import annotations

import os
from pathlib import Path

from elens_utils.core.errors import ElensError


def cache_dir() -> Path:
    """Root of the project's on-disk caches: ``$ELENS_CACHE`` or ``~/.cache/elens``.

    Raises:
        ElensError: when that path exists and is not a directory.
    """
    root = Path(os.environ.get("ELENS_CACHE") or Path.home() / ".cache" / "elens").expanduser()
    if root.exists() and not root.is_dir():
        raise ElensError(f"The cache directory {root} (ELENS_CACHE) is a file: point ELENS_CACHE at a directory.")
    return root
