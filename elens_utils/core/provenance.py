"""What a chapter page ran on: the command that reproduces it, the software, the machine, the time.

The chapter runner puts two cells into every executed chapter (hidden inputs): under the
parameters table, :func:`rerun_command` (the set and every ``--set`` override, quoted for a
shell), and at the end of the page :func:`run_footer`, one line with the run time, the machine
(:func:`machine_text`) and the versions of Python, torch, transformers and elens_utils
(:func:`software_versions`). After the run it stores :func:`page_substitutions` in the
notebook's metadata (``myst.substitutions``): the page's prose writes ``{{ run_time }}`` or a
parameter's name, ``{{ k }}``, and the book shows the value this run used.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import shlex
import time
from collections.abc import Mapping
from typing import Any

__all__ = [
    "duration_text", "format_value", "machine_text", "markdown_escape", "model_versions", "page_substitutions", "rerun_command",
    "run_footer", "software_versions",
]


def format_value(value: Any) -> str:
    """A parameter value as a reader sees it: ``[1.0, inf] -> "1.0, ∞"``, ``[] -> "(none)"``,
    ``{"a": 1} -> "a: 1"``, ``None -> "(not set)"`` (the chapter then chooses; its parameters
    cell says how)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value) if value else "(none)"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    if value is None:
        return "(not set)"
    return str(value)


def duration_text(seconds: float) -> str:
    """``"46 s"`` below 90 s, ``"9.6 min"`` below 90 min, ``"1.6 h"`` above."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def page_substitutions(params: Mapping[str, Any], seconds: float, param_set: str) -> dict[str, str]:
    """The MyST substitutions of an executed chapter: every parameter by name (its value as
    :func:`format_value` writes it) and ``run_time``, one sentence on how long the chapter ran,
    on what machine, with which parameter set."""
    subs = {str(k): markdown_escape(format_value(v)) for k, v in params.items()}
    subs["run_time"] = (
        f"{duration_text(seconds)} for this page in this build, the kernel's start included (parameter set "
        f"{markdown_escape(param_set)}, {markdown_escape(machine_text())})."
    )
    return subs


# MyST reads a substitution's value as Markdown: these characters would become formatting or math
_MARKDOWN_SPECIAL = set("\\`*_[]<>$|~#{}")


def markdown_escape(text: str) -> str:
    """``text`` with Markdown's special characters backslash-escaped, so that MyST shows it as
    written: ``"a_b $1"`` -> ``"a\\_b \\$1"``."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in str(text))


def rerun_command(chapter: str, param_set: str, overrides: Mapping[str, str] | None = None) -> str:
    """The shell command that runs ``chapter`` again with ``param_set`` and ``overrides``
    (``{"models": "zoo/llama-8L,zoo/qwen3-8L"}``, values as given on the command line).

    Without overrides it is the Makefile's ``make chapter CH=... PARAMS=...``; with them, the
    runner's own command line, each ``--set`` quoted (a value may hold spaces).
    """
    if not overrides:
        return f"make chapter CH={chapter} PARAMS={param_set}"
    sets = " ".join(f"--set {shlex.quote(f'{k}={v}')}" for k, v in overrides.items())
    return f"python -m elens_utils book run {chapter} --params {shlex.quote(param_set)} {sets}"


def software_versions() -> dict[str, str]:
    """``{"python": ..., "torch": ..., "transformers": ..., "elens_utils": ...}``."""
    import torch
    import transformers

    from elens_utils.core.version import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "elens_utils": __version__,
    }


def model_versions() -> dict[str, str]:
    """``{"torch": ..., "transformers": ..., "python": ...}``: the versions that a zoo model's
    metadata and the model cards record, from :func:`software_versions`, in this order."""
    versions = software_versions()
    return {key: versions[key] for key in ("torch", "transformers", "python")}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_text() -> str:
    """``"2 CPU cores (AMD EPYC 9R14), no GPU"`` or ``"... , 1 x NVIDIA H100 80GB HBM3"``."""
    import torch

    cores = os.cpu_count() or 1
    text = f"{cores} CPU core{'s' if cores != 1 else ''} ({_cpu_name()})"
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        groups = {n: names.count(n) for n in dict.fromkeys(names)}
        return text + ", " + ", ".join(f"{c} x {n}" for n, c in groups.items())
    return text + ", no GPU"


def run_footer(started: float, *, now: float | None = None) -> str:
    """One line (Markdown) for the end of a chapter page: how long it ran since ``started``
    (a :func:`time.time` value), on what machine, with which software, on what date (UTC)."""
    took = duration_text((time.time() if now is None else now) - float(started))
    versions = ", ".join(f"{k} {v}" for k, v in software_versions().items())
    day = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    return f"*The cells of this page ran in {took} on {machine_text()}, with {versions}, on {day}.*"
