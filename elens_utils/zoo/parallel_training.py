"""Training the whole zoo: one single-threaded child process per model, several at once, longest
first."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elens_utils.core.errors import ElensError
from elens_utils.models.zoo_arch import (
    ZOO_DEPTHS,
    ZOO_FAMILIES,
    check_family,
    check_layers,
    model_name,
)


def zoo_models(families: Sequence[str], depths: Sequence[int]) -> list[tuple[str, int]]:
    """Every ``(family, depth)`` of ``families`` x ``depths``, each checked."""
    for f in families:
        check_family(f)
    for d in depths:
        check_layers(d)
    return [(f, d) for f in families for d in depths]


# Training time per token relative to Llama at equal depth (measured with `zoo speed` on one
# thread: Gemma-2's extra norms and eager soft-capped attention cost about half as much again).
RELATIVE_COST = {"llama": 1.0, "gpt2": 1.05, "qwen3": 1.1, "gemma2": 1.5}


def train_zoo(
    out_root: str | os.PathLike,
    *,
    families: Sequence[str] = ZOO_FAMILIES,
    depths: Sequence[int] = ZOO_DEPTHS,
    jobs: int = 2,
    seed: int | None = None,
    tokens: int | None = None,
    python: str = sys.executable,
) -> dict[str, float]:
    """Train the zoo into ``out_root/<family>-<n>L``: ``jobs`` single-threaded processes at once.

    Models are scheduled longest first (by depth times the family's relative cost per token,
    :data:`RELATIVE_COST`), which keeps ``jobs`` workers busy until the end. Each child is ``python -m elens_utils.zoo train --family F --layers N`` with one
    thread, so a model's weights do not depend on ``jobs``. Logs go to
    ``out_root/.logs/<name>.log``. Returns ``{name: wall seconds}``.
    """
    out_root = Path(out_root)
    todo = sorted(zoo_models(families, depths), key=lambda m: (-m[1] * RELATIVE_COST.get(m[0], 1.0), ZOO_FAMILIES.index(m[0])))
    logs = out_root / ".logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[subprocess.Popen, float, Any]] = {}
    done: dict[str, float] = {}
    t_start = time.perf_counter()
    failed: list[str] = []
    while todo or running:
        while todo and len(running) < max(1, jobs):
            family, n = todo.pop(0)
            name = model_name(family, n)
            cmd = [python, "-m", "elens_utils.zoo.training", "train", "--family", family, "--layers", str(n), "--out", str(out_root), "--threads", "1", "--no-progress"]
            if seed is not None:
                cmd += ["--seed", str(seed)]
            if tokens is not None:
                cmd += ["--tokens", str(tokens)]
            log = open(logs / f"{name}.log", "w")  # noqa: SIM115 (closed when the child ends)
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            running[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), time.perf_counter(), log)
            print(f"[{time.perf_counter() - t_start:7.0f}s] started {name}", flush=True)
        time.sleep(0.5)
        for name, (proc, t0, log) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[name]
            done[name] = time.perf_counter() - t0
            status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {logs / (name + '.log')})"
            if proc.returncode != 0:
                failed.append(name)
            print(f"[{time.perf_counter() - t_start:7.0f}s] {status} {name} ({done[name]:.0f}s)", flush=True)
    if failed:
        raise ElensError(f"Training failed for {', '.join(failed)}: see the logs in {logs}.")
    return done
