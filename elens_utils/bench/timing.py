"""Timing and memory of the benchmark: interleaved repetitions robust to shared cores (CPU stall
from Linux PSI), and peak memory beyond the inputs measured in a fresh subprocess."""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from elens_utils.bench.contenders import LENS_CONTENDERS, SHANNON, lens_inputs

MB = 1024.0 * 1024.0

# --------------------------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------------------------


def _sync(device: torch.device | str | None = None) -> None:
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.synchronize()


def interleaved_times(
    fns: dict[str, Callable[[], object]],
    reps: int | dict[str, int],
    *,
    warmup: bool | Sequence[str] = True,
    retries: int = 0,
    stall_limit: float = 0.25,
    desc: str | None = None,
    progress: bool = True,
) -> tuple[dict[str, list[float]], dict[str, list[float]], int]:
    """Wall times (s) of each function over ``reps`` interleaved rounds, after a warm-up.

    ``reps`` may differ per function (a dict): round r runs every function that still needs a
    repetition, in the given order, so every contender sees the same background load.
    ``warmup``: run every function once untimed first (True), none (False), or the named ones.

    Each run also records its CPU stall fraction (Linux PSI: the share of its wall time during
    which some task waited for a CPU; about 0 on an otherwise idle machine). A round in which any
    run stalled more than ``stall_limit`` is discarded and run again, at most ``retries`` times
    in all.

    Returns:
        ``(times, stalls, discarded_rounds)``: per key the kept wall times and their stall
        fractions (empty where PSI is unavailable), and how many rounds were discarded.
    """
    counts = {k: reps[k] if isinstance(reps, dict) else reps for k in fns}
    times: dict[str, list[float]] = {k: [] for k in fns}
    stalls: dict[str, list[float]] = {k: [] for k in fns}
    warm = list(fns) if warmup is True else ([] if warmup is False else [k for k in warmup if k in fns])
    total = sum(counts.values()) + len(warm)
    discarded = 0
    with tqdm(total=total, desc=desc, unit="run", disable=not progress, leave=False, file=sys.stderr) as bar:
        for k in warm:
            bar.set_postfix_str(f"warm-up {k}")
            fns[k]()
            bar.update()
        gc.collect()  # once: a full collection of a large heap takes tens of ms
        r = 0
        while r < max(counts.values(), default=0):
            got: dict[str, tuple[float, float | None]] = {}
            for k, f in fns.items():
                if r >= counts[k]:
                    continue
                bar.set_postfix_str(k)
                _sync()
                p0 = _psi_stall_us()
                t0 = time.perf_counter()
                f()
                _sync()
                dt = time.perf_counter() - t0
                p1 = _psi_stall_us()
                got[k] = (dt, None if p0 is None or p1 is None else min(1.0, (p1 - p0) / 1e6 / dt))
                bar.update()
            worst = max((st for _, st in got.values() if st is not None), default=0.0)
            if worst > stall_limit and discarded < retries:
                discarded += 1
                bar.total += len(got)
                bar.set_postfix_str(f"round discarded (stall {worst:.2f})")
                continue
            for k, (dt, st) in got.items():
                times[k].append(dt)
                if st is not None:
                    stalls[k].append(st)
            r += 1
    return times, stalls, discarded


def _psi_stall_us() -> int | None:
    """Linux PSI: total microseconds during which some runnable task waited for a CPU."""
    try:
        with open("/proc/pressure/cpu") as fh:
            return int(fh.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def median_or_none(xs: Sequence[float]) -> float | None:
    return float(np.median(xs)) if xs else None


def median(xs: Sequence[float]) -> float:
    return float(np.median(xs)) if len(xs) else float("nan")


def status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _probe_child(spec: dict) -> dict:
    """Run in a fresh process: peak resident memory of one contender beyond its inputs."""
    import resource

    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    fn = LENS_CONTENDERS[spec["contender"]]
    h, w = lens_inputs(spec["rows"], spec["d"], spec["vocab"], seed=spec.get("seed", 0))
    alphas = tuple(spec["alphas"])
    softcap = spec.get("softcap")
    fn(h[:8], w[:2048], None, softcap, alphas)  # load kernels, start thread pools
    gc.collect()
    base_kb = status_kb("VmRSS")
    method = "VmHWM after clear_refs"
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak resident set size to the current one
        hwm = status_kb("VmHWM")
        if base_kb is None or hwm is None or hwm > base_kb + 1024:
            raise OSError("high-water mark was not reset")
    except OSError:
        method = "ru_maxrss (upper bound)"
        scale = 1 if sys.platform != "darwin" else 1 / 1024
        base_kb = base_kb or int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)
    t0 = time.perf_counter()
    with torch.no_grad():
        fn(h, w, None, softcap, alphas)
    elapsed = time.perf_counter() - t0
    if method.startswith("VmHWM"):
        peak_kb = status_kb("VmHWM")
    else:
        scale = 1 if sys.platform != "darwin" else 1 / 1024
        peak_kb = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)
    return {
        "base_mb": base_kb / 1024,
        "peak_mb": peak_kb / 1024,
        "extra_mb": max(0.0, (peak_kb - base_kb) / 1024),
        "inputs_mb": (h.numel() + w.numel()) * h.element_size() / MB,
        "method": method,
        "time_s": elapsed,
    }


def measure_peak_extra(contender: str, rows: int, d: int, vocab: int, alphas=SHANNON, softcap=None, timeout=900) -> dict:
    """Peak memory (MB) of one lens-stage contender beyond its inputs, in a fresh subprocess."""
    spec = {
        "contender": contender,
        "rows": rows,
        "d": d,
        "vocab": vocab,
        "alphas": [a if math.isfinite(a) else "inf" for a in alphas],
        "softcap": softcap,
        "threads": torch.get_num_threads(),
    }
    code = "import sys, json; from elens_utils.bench.timing import probe_main; probe_main(sys.argv[1])"
    env = dict(os.environ)
    src_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"probe failed with status {proc.returncode}: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def probe_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    spec["alphas"] = [math.inf if a == "inf" else float(a) for a in spec["alphas"]]
    print(json.dumps(_probe_child(spec)))


def mem_available_mb() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def naive_bytes_estimate(rows: int, vocab: int) -> int:
    """Rough peak of :func:`naive_entropy`: logits, log-probabilities, probabilities, product."""
    return 4 * rows * vocab * 4
