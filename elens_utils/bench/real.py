"""Benchmark section ``real``: the bf16 lens path and whole profiles on a real model.

Run by ``python -m elens_utils bench`` (section ``real``) when ``real/gemma3-270m`` is installed
(``make setup``); its conversion must already be cached for the quick run to stay short.

Headline keys (``*_vs_*``: our time / the other's; ``*_speedup_*``: the other's / ours):

* ``lens_bf16_vs_matmul_bf16``: :func:`~elens_utils.entropy.streaming.lens_entropy` with
  ``precision="bf16"`` on Gemma-3-270M's unembedding (V 262144, d 640) and real block outputs,
  against the bare bf16 product with the same tiles (:func:`~elens_utils.bench.suite.matmul_tiled`);
  ``lens_fp32_vs_matmul_fp32`` and ``matmul_bf16_speedup`` (fp32 product time / bf16) beside it.
* ``lens_bf16_max_err_nats`` / ``lens_bf16_mean_err_nats``: the largest and the mean
  ``|H_bf16 - H_float64|`` over every block output at every position of a few natural prompts,
  both real models, Shannon and Renyi 0.5, 2 and inf (``lens_fp32_max_err_nats`` beside it).
* ``real_e2e_speedup_vs_fp32``: profiling N natural prompts x T greedy tokens on Gemma-3-270M
  with the fastest path (bf16 lens) against the fp32 path.
* ``real_e2e_vs_limit``: that time against the limit in the same precision: our KV-cached loop
  without hooks or lens (:func:`~elens_utils.bench.suite.plain_generation`) plus the bare bf16 product
  of all ``T x L x N`` lens rows.

Rows: ``ours`` in fp32 and bf16, the ``reference`` (the paper's code's algorithm, timed on one
prompt and scaled to N) and ``naive`` (a KV-cached loop with ``output_hidden_states`` and every
block's logits materialised, ``[L, N, V]`` per step), each with its time and the growth of the
process's peak resident memory during the run (``peak_extra_mb``, in-process: Linux
``clear_refs``; a lower bound where freed pages are reused).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from elens_utils.entropy.streaming import dense_entropy, lens_entropy

__all__ = ["REAL_BENCH_MODEL", "REAL_ERROR_MODELS", "bench_real", "real_block_outputs"]

REAL_BENCH_MODEL = "real/gemma3-270m"
REAL_ERROR_MODELS = ("real/gemma3-270m", "real/smollm2-135m-instruct")
_ERROR_PROMPTS = (
    "One day, Tom found a white boat. Tom ran to the river with the",
    "The capital of France is",
    "def fibonacci(n):",
    "Photosynthesis converts light into",
)
_E2E_PROMPTS = (
    "One day, Tom found a white boat.",
    "The capital of France is",
    "Once upon a time, a little girl",
    "She opened the door and saw",
)
_ALPHAS = (1.0, 0.5, 2.0, math.inf)


def installed(name: str) -> bool:
    """Whether the registry package of the real model ``name`` is installed."""
    import importlib.util

    from elens_utils.models.real_models import REAL_MODELS

    return importlib.util.find_spec(REAL_MODELS[name].module) is not None


@torch.no_grad()
def real_block_outputs(lm, prompts=_ERROR_PROMPTS) -> torch.Tensor:
    """Normalised (and logit-scaled) outputs of every block at every position: ``[rows, d]`` fp32."""
    from elens_utils.lens.capture import BlockCapture

    out = []
    with BlockCapture(lm.parts.blocks, last_only=False) as cap:
        for ids in lm.encode(list(prompts)):
            lm.model(torch.tensor([ids], device=lm.device))
            resid = cap.take()[:, 0]  # [L, seq, d]
            out.append(lm.parts.normalize(resid).reshape(-1, resid.shape[-1]).float() * lm.parts.logit_scale)
    return torch.cat(out)


def _float64_entropy(h: torch.Tensor, weight: torch.Tensor, softcap: float | None, rows: int = 64) -> torch.Tensor:
    w = weight.double()
    parts = []
    for r0 in range(0, h.shape[0], rows):
        z = h[r0 : r0 + rows].double() @ w.T
        if softcap is not None:
            z = torch.tanh(z / softcap) * softcap
        parts.append(dense_entropy(z, _ALPHAS))
    return torch.cat(parts)


def _peak_extra_mb(fn: Callable[[], object]) -> tuple[float, float | None]:
    """``(wall seconds, growth of VmHWM over VmRSS in MB)`` of one run of ``fn``."""
    from elens_utils.bench.timing import status_kb

    reset = True
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        reset = False
    before = status_kb("VmRSS")
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    hwm = status_kb("VmHWM")
    if not reset or before is None or hwm is None:
        return wall, None
    return wall, max(0.0, (hwm - before) / 1024)


@torch.no_grad()
def naive_cached_profiles(lm, prompts, steps: int) -> np.ndarray:
    """KV-cached greedy loop with ``output_hidden_states`` and every block's logits materialised."""
    from elens_utils.core.hf_compat import cache_kwargs, returned_cache

    parts, model = lm.parts, lm.model
    out_h = []
    for ids in prompts:  # one prompt at a time: no padding logic, as a first script would do
        x = torch.tensor([list(ids)], device=lm.device)
        cache, rows = None, []
        for _ in range(steps):
            out = model(input_ids=x, output_hidden_states=True, use_cache=True, **cache_kwargs(model, cache))
            cache = returned_cache(out)
            acts = torch.stack([hs[0, -1] for hs in out.hidden_states[1:]])  # [L, d]; last is normed
            normed = torch.cat([parts.normalize(acts[:-1]), acts[-1:]])
            logp = torch.log_softmax(parts.transform(parts.unembed(normed)).float(), -1)  # [L, V]
            rows.append((-(logp.exp() * logp).sum(-1)).numpy())
            x = out.logits[:, -1].argmax(-1, keepdim=True)
        out_h.append(np.stack(rows))
    return np.stack(out_h)


def bench_real(
    n_prompts: int = 8, steps: int = 16, reps: int = 2, error_prompts: int = 4, progress: bool = True
) -> tuple[list[dict], dict]:
    """The section's rows and headline keys (see the module docstring); a "skipped" row when the
    real models are not installed. ``error_prompts``: how many of the natural prompts the bf16
    error is measured on (every block, every position)."""
    from elens_utils.bench.contenders import matmul_tiled
    from elens_utils.bench.generators import plain_generation, reference_profiles
    from elens_utils.bench.timing import interleaved_times
    from elens_utils.entropy.precision import bf16_speedup, cpu_has_bf16
    from elens_utils.lens.generation import generate_profiles
    from elens_utils.lens.loading import load_model

    if not installed(REAL_BENCH_MODEL):
        return [{"section": "real", "skipped": f"{REAL_BENCH_MODEL} is not installed (make setup)"}], {}
    rows: list[dict] = []
    headline: dict = {"cpu_has_bf16": cpu_has_bf16(), "auto_bf16_speedup_probe": round(bf16_speedup(), 3)}

    # -- error of the bf16 path on real block outputs, both models
    max_err, mean_err, fp32_err = [], [], []
    gemma = None
    for name in REAL_ERROR_MODELS:
        if not installed(name):
            continue
        lm = load_model(name)
        h = real_block_outputs(lm, _ERROR_PROMPTS[:error_prompts])
        weight = lm.parts.unembed.weight
        ref = _float64_entropy(h, weight, lm.parts.softcap)
        bf = lens_entropy(h, weight, softcap=lm.parts.softcap, alphas=_ALPHAS, precision="bf16").double()
        fp = lens_entropy(h, weight, softcap=lm.parts.softcap, alphas=_ALPHAS, precision="fp32").double()
        err, err32 = (bf - ref).abs(), (fp - ref).abs()
        rows.append({
            "section": "real", "contender": "bf16 error", "model": name,
            "shape": {"label": name, "rows": int(h.shape[0])},
            "orders": ["inf" if math.isinf(a) else a for a in _ALPHAS],
            "max_err_nats": [round(float(x), 5) for x in err.max(0).values],
            "mean_err_nats": [round(float(x), 6) for x in err.mean(0)],
            "p99_err_nats": [round(float(x), 5) for x in err.quantile(0.99, dim=0)],
            "fp32_max_err_nats": float(err32.max()),
        })
        max_err.append(float(err.max()))
        mean_err.append(float(err.mean()))
        fp32_err.append(float(err32.max()))
        if name == REAL_BENCH_MODEL:
            gemma, gemma_h = lm, h
    headline.update(
        lens_bf16_max_err_nats=max(max_err), lens_bf16_mean_err_nats=float(np.mean(mean_err)),
        lens_fp32_max_err_nats=max(fp32_err),
    )

    # -- the lens stage alone, bf16 and fp32, against the bare products with the same tiles
    lm = gemma
    weight = lm.parts.unembed.weight
    h = gemma_h[:512].contiguous()
    hb, wb = h.bfloat16(), weight.bfloat16()
    fns = {
        "lens_bf16": lambda: lens_entropy(h, weight, precision="bf16"),
        "matmul_bf16": lambda: matmul_tiled(hb, wb),
        "lens_fp32": lambda: lens_entropy(h, weight, precision="fp32"),
        "matmul_fp32": lambda: matmul_tiled(h, weight),
    }
    times, _stalls, _ = interleaved_times(fns, reps, desc="real lens", progress=progress)
    med = {k: float(np.median(v)) for k, v in times.items()}
    flop = 2 * h.shape[0] * h.shape[1] * weight.shape[0]
    for k, t in med.items():
        rows.append({"section": "real", "contender": k, "time_s": t, "gflops": flop / t / 1e9,
                     "shape": {"label": "lens", "rows": int(h.shape[0]), "d": int(h.shape[1]),
                               "vocab": int(weight.shape[0])}})
    headline.update(
        lens_bf16_vs_matmul_bf16=med["lens_bf16"] / med["matmul_bf16"],
        lens_fp32_vs_matmul_fp32=med["lens_fp32"] / med["matmul_fp32"],
        matmul_bf16_speedup=med["matmul_fp32"] / med["matmul_bf16"],
        lens_bf16_speedup_vs_fp32=med["lens_fp32"] / med["lens_bf16"],
    )

    # -- whole profiles: N natural prompts x T greedy tokens
    prompts = lm.encode([_E2E_PROMPTS[i % len(_E2E_PROMPTS)] for i in range(n_prompts)])
    n_layers = lm.n_layers
    lens_rows = steps * n_layers * n_prompts
    limit_h = torch.randn(lens_rows, weight.shape[1]).bfloat16()

    def ours(precision):
        return lambda: generate_profiles(
            lm, prompts, max_new_tokens=steps, batch_size=n_prompts, precision=precision, progress=False
        )

    fns = {
        "ours_fp32": ours("fp32"),
        "ours_bf16": ours("bf16"),
        "limit_generation": lambda: plain_generation(lm, prompts, steps),
        "limit_lens_bf16": lambda: matmul_tiled(limit_h, wb),
    }
    times, _stalls, _ = interleaved_times(fns, reps, desc="real e2e", progress=progress)
    med = {k: float(np.median(v)) for k, v in times.items()}
    limit = med["limit_generation"] + med["limit_lens_bf16"]
    peaks = {}
    for key in ("ours_fp32", "ours_bf16"):
        peaks[key] = _peak_extra_mb(fns[key])[1]
    ref_t, ref_mb = _peak_extra_mb(lambda: reference_profiles(lm, prompts[:1], steps))
    naive_t, naive_mb = _peak_extra_mb(lambda: naive_cached_profiles(lm, prompts[:1], steps))
    shape = {"label": REAL_BENCH_MODEL, "N": n_prompts, "T": steps, "L": n_layers}
    for key, t in (("ours_fp32", med["ours_fp32"]), ("ours_bf16", med["ours_bf16"]),
                   ("limit", limit)):
        rows.append({"section": "real", "contender": key, "shape": shape, "time_s": t,
                     "peak_extra_mb": peaks.get(key)})
    for key, t, mb in (("reference", ref_t, ref_mb), ("naive_hidden_states", naive_t, naive_mb)):
        rows.append({"section": "real", "contender": key, "shape": shape, "time_s": t * n_prompts,
                     "timed_prompts": 1, "peak_extra_mb": mb})
    headline.update(
        real_e2e_speedup_vs_fp32=med["ours_fp32"] / med["ours_bf16"],
        real_e2e_vs_limit=med["ours_bf16"] / limit,
        real_e2e_speedup_vs_reference=ref_t * n_prompts / med["ours_bf16"],
        real_e2e_speedup_vs_naive=naive_t * n_prompts / med["ours_bf16"],
        real_tokens_per_s_bf16=n_prompts * steps / med["ours_bf16"],
        real_tokens_per_s_fp32=n_prompts * steps / med["ours_fp32"],
    )
    return rows, headline
