"""The prepared GPU check: one script, under 8 minutes on one H100/H200, one JSON.

On a CUDA machine with the project installed (``make setup``, or torch with CUDA, triton and
``pip install -e '.[test]'``)::

    PYTHONUNBUFFERED=1 python benchmarks/gpu_check.py --out benchmarks/gpu-h200.json

It runs, in order, each step bounded in time and recorded even when it fails:

1. ``tests``: the Triton kernel's tests compiled, not interpreted (``TRITON_INTERPRET`` unset):
   ``pytest tests/integration/test_entropy_triton.py``.
2. ``lens``: the fused kernel (Shannon, and Shannon + 3 Renyi orders) against the cuBLAS product
   of the same shape (``h @ W.T``, bf16) and against our chunked torch path, at Gemma-3's
   vocabulary (V 262144, d 640 and 2304) and Gemma-2's (V 256000, d 2304, soft-cap 30), M 4096
   and 512 rows, in TFLOP/s (``2 M d V / t``), timed with ``triton.testing.do_bench``.
3. ``tune``: the kernel's tile sizes and launch settings around the defaults at V 262144, d 2304,
   M 4096: the fastest configuration and its ratio to cuBLAS.
4. ``e2e``: whole profiles of the real models (``real/gemma3-270m``,
   ``real/smollm2-135m-instruct``; 64 prompts x 32 greedy tokens, bf16) when their packages are
   installed there, else a row saying why not.

The JSON has the benchmark's layout (``rows`` with ``section`` ``gpu``, ``machine``, headline
keys ``triton_vs_cublas`` and ``triton_speedup_vs_torch`` at V 262144, d 2304, M 4096), so the
performance appendix draws it (``make chapter CH=performance SET="result=../benchmarks/FILE"``).
Targets (the project's): fused kernel <= 1.3x cuBLAS and >= 2x the chunked torch path.

``--tiny`` runs every step on toy shapes; without CUDA it runs them on the CPU under the Triton
interpreter (``TRITON_INTERPRET=1`` must be set before Python starts), which is how the script
itself is tested (``tests/integration/test_gpu_check.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from elens_utils.bench.suite import _cuda_ms, lens_inputs, machine_info  # noqa: E402
from elens_utils.core.atomic import atomic_file  # noqa: E402
from elens_utils.entropy.streaming import finalize_stats, lens_entropy, power_alphas  # noqa: E402

SHAPES = (  # label, rows, d, vocab, softcap
    ("gemma3-270m", 4096, 640, 262144, None),
    ("gemma3-1b-width", 4096, 2304, 262144, None),
    ("gemma3-1b-width", 512, 2304, 262144, None),
    ("gemma2-2b", 4096, 2304, 256000, 30.0),
    ("gemma2-2b", 512, 2304, 256000, 30.0),
)
TINY_SHAPES = (("tiny", 64, 32, 3001, None), ("tiny-cap", 48, 32, 2999, 5.0))
HEADLINE = ("gemma3-1b-width", 4096, 2304, 262144)
TUNE_GRID = [
    {"block_m": bm, "block_v": bv, "block_k": bk, "num_warps": nw, "num_stages": ns}
    for bm in (64, 128)
    for bv in (64, 128, 256)
    for bk in (64, 128)
    for nw in (4, 8)
    for ns in (3, 4)
    if bm * bv <= 128 * 128
]
TINY_TUNE_GRID = [{"block_m": 16, "block_v": 32, "block_k": 16}, {"block_m": 32, "block_v": 16, "block_k": 16}]
RENYI = (1.0, 0.5, 2.0, math.inf)
TARGETS = {"triton_vs_cublas": ("<=", 1.3), "triton_speedup_vs_torch": (">=", 2.0)}


def _time_ms(fn, cuda: bool) -> float:
    if cuda:
        return _cuda_ms(fn)
    fn()
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def step_tests(tiny: bool) -> list[dict]:
    """The Triton tests, compiled where CUDA is (the interpreter's variable removed)."""
    env = dict(os.environ)
    if torch.cuda.is_available():
        env.pop("TRITON_INTERPRET", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", str(ROOT / "tests" / "integration" / "test_entropy_triton.py")]
    if tiny:
        cmd += ["-k", "strided"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
    return [{"section": "gpu", "contender": "triton_tests", "compiled": torch.cuda.is_available(),
             "returncode": res.returncode, "time_s": time.perf_counter() - t0, "summary": " | ".join(tail)}]


def step_lens(shapes, device: str, dtype: torch.dtype) -> tuple[list[dict], dict]:
    """Fused kernel vs cuBLAS vs chunked torch per shape, in TFLOP/s."""
    cuda = device == "cuda"
    rows_out, headline = [], {}
    for i, (label, rows, d, vocab, softcap) in enumerate(shapes):
        h, w = lens_inputs(rows, d, vocab, seed=i, dtype=dtype, device=device)
        fns = {
            "cublas_matmul": lambda: h @ w.T,
            "ours_triton": lambda: lens_entropy(h, w, softcap=softcap, backend="triton"),
            "ours_triton+renyi": lambda: lens_entropy(h, w, softcap=softcap, alphas=RENYI, backend="triton"),
            "ours_torch": lambda: lens_entropy(h, w, softcap=softcap, backend="torch"),
        }
        flop = 2.0 * rows * d * vocab
        times = {}
        for name, fn in fns.items():
            try:
                times[name] = _time_ms(fn, cuda)
            except Exception as err:  # noqa: BLE001 - record and go on
                rows_out.append({"section": "gpu", "contender": name, "shape": {"label": label, "rows": rows, "d": d,
                                 "vocab": vocab}, "error": f"{type(err).__name__}: {err}"})  # fmt: skip
                continue
            rows_out.append({
                "section": "gpu", "contender": name,
                "shape": {"label": label, "rows": rows, "d": d, "vocab": vocab, "softcap": softcap,
                          "dtype": str(dtype).removeprefix("torch.")},
                "time_s": times[name] / 1e3, "tflop_per_s": flop / (times[name] / 1e3) / 1e12,
            })
        if (label, rows, d, vocab) == HEADLINE or (not cuda and i == 0):
            if {"ours_triton", "cublas_matmul", "ours_torch"} <= set(times):
                headline["triton_vs_cublas"] = times["ours_triton"] / times["cublas_matmul"]
                headline["triton_speedup_vs_torch"] = times["ours_torch"] / times["ours_triton"]
        del h, w
        if cuda:
            torch.cuda.empty_cache()
    return rows_out, headline


def step_tune(grid, shape, device: str, dtype: torch.dtype) -> tuple[list[dict], dict]:
    """Every configuration of ``grid`` at one shape; checks each against the default's result."""
    from elens_utils.entropy.triton_kernel import triton_logit_stats

    cuda = device == "cuda"
    label, rows, d, vocab = shape[:4]
    h, w = lens_inputs(rows, d, vocab, seed=7, dtype=dtype, device=device)
    reference = finalize_stats(triton_logit_stats(h, w, None, softcap=None, powers=()), (1.0,), vocab)
    cublas = _time_ms(lambda: h @ w.T, cuda)
    rows_out = []
    for cfg in grid:
        try:
            stats = triton_logit_stats(h, w, None, softcap=None, powers=power_alphas((1.0,)), config=cfg)
            err = float((finalize_stats(stats, (1.0,), vocab) - reference).abs().max())
            ms = _time_ms(lambda: triton_logit_stats(h, w, None, softcap=None, powers=(), config=cfg), cuda)
        except Exception as exc:  # noqa: BLE001 - a configuration may not compile (registers, smem)
            rows_out.append({"section": "gpu_tune", "config": cfg, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        rows_out.append({"section": "gpu_tune", "config": cfg, "time_s": ms / 1e3, "vs_cublas": ms / cublas,
                         "tflop_per_s": 2.0 * rows * d * vocab / (ms / 1e3) / 1e12, "max_diff_nats": err})
    ok = [r for r in rows_out if "time_s" in r and r["max_diff_nats"] < 1e-3]
    best = min(ok, key=lambda r: r["time_s"]) if ok else None
    return rows_out, ({"tune_best_config": best["config"], "tune_best_vs_cublas": best["vs_cublas"]} if best else {})


def step_e2e(device: str, tiny: bool) -> list[dict]:
    """Whole profiles of the real models, where they are installed."""
    import importlib.util

    from elens_utils import load_model
    from elens_utils.lens.generation import generate_profiles
    from elens_utils.models.real_models import REAL_MODELS

    out = []
    names = ["real/smollm2-135m-instruct"] if tiny else ["real/gemma3-270m", "real/smollm2-135m-instruct"]
    n, steps = (2, 2) if tiny else (64, 32)
    for name in names:
        if importlib.util.find_spec(REAL_MODELS[name].module) is None:
            out.append({"section": "gpu_e2e", "model": name, "skipped": f"{REAL_MODELS[name].package} is not installed"})
            continue
        dtype = "bfloat16" if device == "cuda" else "float32"
        lm = load_model(name, device=device, dtype=dtype)
        prompts = [f"Once upon a time, story number {i} began with" for i in range(n)]
        generate_profiles(lm, prompts[:2], max_new_tokens=2, progress=False)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        generate_profiles(lm, prompts, max_new_tokens=steps, batch_size=n, progress=False)
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        out.append({"section": "gpu_e2e", "model": name, "dtype": dtype, "n_prompts": n, "steps": steps,
                    "time_s": dt, "tokens_per_s": n * steps / dt})
        del lm
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="JSON file (default: print only)")
    parser.add_argument("--tiny", action="store_true", help="toy shapes (and the CPU interpreter without CUDA)")
    parser.add_argument("--skip", default="", help="comma-separated steps to skip: tests,lens,tune,e2e")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("error: no CUDA device; run with --tiny to check the script on the CPU", file=sys.stderr)
        return 2
    if not cuda and os.environ.get("TRITON_INTERPRET") != "1":
        print("error: on the CPU set TRITON_INTERPRET=1 before Python starts", file=sys.stderr)
        return 2
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    t_start = time.perf_counter()
    result: dict = {"config": "gpu_check" + ("-tiny" if args.tiny else ""), "machine": machine_info(), "rows": []}
    steps = {
        "tests": lambda: (step_tests(args.tiny), {}),
        "lens": lambda: step_lens(TINY_SHAPES if args.tiny else SHAPES, device, dtype),
        "tune": lambda: step_tune(TINY_TUNE_GRID if args.tiny else TUNE_GRID,
                                  TINY_SHAPES[0] if args.tiny else HEADLINE, device, dtype),
        "e2e": lambda: (step_e2e(device, args.tiny), {}),
    }
    section_s = {}
    for name, run in steps.items():
        if name in skip:
            continue
        t0 = time.perf_counter()
        try:
            rows, head = run()
        except Exception as err:  # noqa: BLE001 - one failed step must not lose the others
            rows, head = [{"section": name, "error": f"{type(err).__name__}: {err}"[:500]}], {}
        section_s[name] = time.perf_counter() - t0
        result["rows"] += rows
        result.update(head)
        print(f"{name}: {section_s[name]:.1f} s, {len(rows)} rows", file=sys.stderr)
    result["section_s"] = section_s
    result["targets"] = {
        k: {"value": result.get(k), "target": f"{op} {bound:g}",
            "met": None if result.get(k) is None else (result[k] <= bound if op == "<=" else result[k] >= bound)}
        for k, (op, bound) in TARGETS.items()
    }  # fmt: skip
    result["wall_s"] = time.perf_counter() - t_start
    text = json.dumps(result, indent=1, default=str)
    if args.out:
        with atomic_file(args.out) as fh:
            fh.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
