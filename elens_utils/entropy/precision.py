"""Which arithmetic the lens's unembedding product runs in: ``"fp32"``, ``"bf16"`` or ``"auto"``.

The lens's cost is one ``[rows, d] x [d, V]`` product per batch of block outputs (Gemma-3-270M:
6 GFLOP per generated token, against 0.5 GFLOP for the model's own forward pass). CPUs with
bfloat16 dot-product units (x86 ``avx512_bf16`` or ``amx_bf16``; Arm ``bf16``) run that product in
bf16 two to three times faster than in fp32. The bf16 path keeps every statistic in fp32 and
recomputes the few most probable tokens' logits exactly (:func:`elens_utils.entropy.streaming.lens_entropy`);
its error against a float64 reference is measured in ``benchmarks/`` and bounded by
``tests/integration/test_precision.py``.

``"auto"`` does not trust the flags alone: the first time it is asked on a machine it times both
products on a lens-shaped problem and picks bf16 only where it is at least
:data:`AUTO_MIN_SPEEDUP` times faster; the measurement is kept (:func:`auto_speedup`), so the
choice stays the same from run to run. Nor does it use bf16 for a small lens (fewer than
:data:`~elens_utils.core.threads.LARGE_LENS_MACS` multiply-adds per row, the zoo's models): there the
product is a small part of the work and the exact top-K recomputation costs more than it saves.
On CUDA, ``"auto"`` keeps the dtype of the tensors it is given (a bf16 model's lens is bf16
already).
"""

from __future__ import annotations

import functools
import platform
import time
import weakref

import torch

from elens_utils.core.errors import ElensError
from elens_utils.core.threads import LARGE_LENS_MACS

__all__ = [
    "PRECISIONS", "AUTO_MIN_SPEEDUP", "cpu_has_bf16", "bf16_speedup", "auto_speedup", "resolve_precision", "bf16_weight",
]

#: The accepted values of every ``precision`` argument.
PRECISIONS = ("fp32", "bf16", "auto")
#: ``"auto"`` picks bf16 on a CPU only where the measured product is at least this much faster.
AUTO_MIN_SPEEDUP = 1.5

_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@functools.lru_cache(maxsize=1)
def cpuinfo() -> dict[str, str]:
    """The first value of each field of Linux's ``/proc/cpuinfo`` (``{}`` elsewhere)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_flags() -> set[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``); empty where unknown."""
    info = cpuinfo()
    return set((info.get("flags") or info.get("Features") or "").split())


def cpu_model_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    return cpuinfo().get("model name") or platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether the CPU reports bfloat16 dot-product instructions (Linux ``/proc/cpuinfo`` flags;
    Apple silicon from M2 on reports them as ``hw.optional.arm.FEAT_BF16``)."""
    if cpuinfo():
        return bool(cpu_flags() & set(_BF16_FLAGS))
    if platform.system() == "Darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            return out == "1"
        except (OSError, subprocess.SubprocessError):
            return False
    return False


@functools.lru_cache(maxsize=1)
def bf16_speedup(rows: int = 256, d: int = 640, vocab: int = 8192, repeats: int = 5) -> float:
    """Measured time of a ``[rows, d] x [d, vocab]`` fp32 product over its bf16 twin (best of
    ``repeats``, after a warm-up), on the CPU with torch's current thread count. ~0.1 s."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(rows, d, generator=gen)
    w = torch.randn(vocab, d, generator=gen)
    hb, wb = h.bfloat16(), w.bfloat16()

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    return best(lambda: w @ h.T) / best(lambda: wb @ hb.T)


def _machine_key() -> str:
    return f"{cpu_model_name()} | torch {torch.__version__}"


@functools.lru_cache(maxsize=1)
def auto_speedup() -> float:
    """The bf16 speed-up ``"auto"`` decides by: measured once per machine and torch version
    (:func:`bf16_speedup`) and kept in ``$ELENS_CACHE/precision-auto.json``, so that the choice,
    and with it every profile computed with ``"auto"``, does not flip with the load on the
    machine from one run to the next. Delete the file to measure again."""
    import json

    from elens_utils.core.atomic import atomic_file
    from elens_utils.core.paths import cache_dir

    path = cache_dir() / "precision-auto.json"
    key = _machine_key()
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            record = {}
    except (OSError, ValueError):
        record = {}
    entry = record.get(key)
    if isinstance(entry, dict) and isinstance(entry.get("bf16_speedup"), (int, float)):
        return float(entry["bf16_speedup"])
    speedup = bf16_speedup()
    record[key] = {"bf16_speedup": round(speedup, 3), "measured": time.strftime("%Y-%m-%d")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as fh:
            json.dump(record, fh, indent=1, sort_keys=True)
    except OSError:
        pass  # a read-only cache: measured again in the next process
    return speedup


def resolve_precision(precision: str, device: torch.device | str = "cpu", lens_macs: int | None = None) -> str:
    """``"fp32"`` or ``"bf16"``: what ``precision`` means on ``device`` (see the module docstring).

    ``lens_macs`` (``d x V`` of the lens at hand) lets ``"auto"`` keep a small lens in fp32;
    without it the answer is the machine's (bf16 where the probe finds it faster).

    Raises:
        ElensError: for a value not in :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ElensError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    if precision != "auto":
        return precision
    if torch.device(device).type != "cpu":
        return "fp32"  # the tensors' own dtype decides on accelerators
    if lens_macs is not None and lens_macs < LARGE_LENS_MACS:
        return "fp32"
    return "bf16" if cpu_has_bf16() and auto_speedup() >= AUTO_MIN_SPEEDUP else "fp32"


# id(weight) -> (weakref to weight, its version when copied, the copy). Tensors cannot be keys of
# a WeakKeyDictionary (their == is elementwise); a finalizer drops the entry with the weight.
_BF16_COPIES: dict[int, tuple[weakref.ref, int, torch.Tensor]] = {}


def bf16_weight(weight: torch.Tensor) -> torch.Tensor:
    """A bf16 copy of an unembedding matrix, made once and reused while ``weight`` is unchanged.

    (An in-place change to ``weight`` bumps its version counter, which invalidates the copy.)
    """
    if weight.dtype == torch.bfloat16:
        return weight
    key = id(weight)
    held = _BF16_COPIES.get(key)
    if held is not None and held[0]() is weight and held[1] == weight._version:
        return held[2]
    copy = weight.detach().to(torch.bfloat16)
    if held is None or held[0]() is not weight:
        weakref.finalize(weight, _BF16_COPIES.pop, key, None)
    _BF16_COPIES[key] = (weakref.ref(weight), weight._version, copy)
    return copy
