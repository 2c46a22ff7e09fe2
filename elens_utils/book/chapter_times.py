"""How long a chapter takes: measured times, recorded beside the book, told before a run starts.

Every executed chapter records its wall time in its notebook's metadata (``elens.seconds``).
``python -m elens_utils book times --params NAME --write`` collects those of ``book/`` into
:data:`TIMES_FILE` (``benchmarks/book-times.json``) with the machine they ran on and whether the
profile cache was cold; before it executes a chapter, the runner prints what was measured there
for the same parameter set, and what the last run on this machine took (:func:`estimate_line`).
Nothing is guessed: a chapter never measured says so.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import date
from pathlib import Path
from typing import Any

from elens_utils.core.atomic import atomic_file

__all__ = ["TIMES_FILE", "executed_seconds", "recorded_times", "estimate_line", "collect_times", "write_times"]

TIMES_FILE = Path("benchmarks") / "book-times.json"


def executed_seconds(notebook: str | os.PathLike[str]) -> tuple[float | None, str | None]:
    """``(seconds, parameter set)`` recorded in an executed chapter, ``(None, None)`` if none."""
    try:
        meta = json.loads(Path(notebook).read_text(encoding="utf-8")).get("metadata", {}).get("elens", {})
    except (OSError, ValueError):
        return None, None
    seconds = meta.get("seconds")
    return (float(seconds) if isinstance(seconds, (int, float)) else None), meta.get("params_set")


def recorded_times(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The contents of :data:`TIMES_FILE` under ``root`` (``{}`` when missing or unreadable)."""
    try:
        data = json.loads((Path(root) / TIMES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def estimate_line(chapter: str, param_set: str, root: str | os.PathLike[str], previous: str | os.PathLike[str]) -> str:
    """One line on how long ``chapter`` takes with ``param_set``: the time measured for the
    project (:data:`TIMES_FILE`), and the last run's here (``previous``, its executed copy)."""
    parts = []
    entry = recorded_times(root).get(param_set, {})
    measured = entry.get("chapters", {}).get(chapter)
    if isinstance(measured, (int, float)):
        where = entry.get("machine", "the project's machine")
        cache = entry.get("cache", "cold")
        parts.append(
            f"measured {_minutes(measured)} on {where} with a {cache} profile cache ({entry.get('measured', '?')})"
        )
    seconds, last_set = executed_seconds(previous)
    if seconds is not None and last_set == param_set:
        parts.append(f"last run here {_minutes(seconds)}")
    if not parts:
        return f"{chapter}: no time measured for the parameter set '{param_set}' yet"
    return f"{chapter}: " + "; ".join(parts) + " (cached profiles make a re-run shorter)"


def collect_times(book_dir: str | os.PathLike[str], param_set: str) -> dict[str, float]:
    """``{chapter: seconds}`` of the executed chapters in ``book_dir`` run with ``param_set``."""
    out = {}
    for path in sorted(Path(book_dir).glob("*.ipynb")):
        try:
            meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("elens", {})
        except (OSError, ValueError):
            continue
        if meta.get("params_set") == param_set and isinstance(meta.get("seconds"), (int, float)):
            out[str(meta.get("chapter"))] = float(meta["seconds"])
    return out


def write_times(root: str | os.PathLike[str], param_set: str, times: dict[str, float], *, cache: str, machine: str | None = None) -> Path:
    """Record ``times`` for ``param_set`` in :data:`TIMES_FILE` (atomically, other sets kept)."""
    data = recorded_times(root)
    data[param_set] = {
        "measured": date.today().isoformat(),
        "machine": machine or f"{os.cpu_count()} CPU cores ({platform.machine()}), {platform.system()}",
        "cache": cache,
        "chapters": {k: round(v, 1) for k, v in sorted(times.items())},
        "total_s": round(sum(times.values()), 1),
    }
    path = Path(root) / TIMES_FILE
    with atomic_file(path) as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return path
