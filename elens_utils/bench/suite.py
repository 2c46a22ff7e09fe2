"""Benchmark: the lens stage and whole profiles, ours against the naive way, the reference and the limit.

``python -m elens_utils.bench.suite --quick`` (or ``python -m elens_utils bench --quick`` once the
subcommand is wired) measures in one run, side by side, and prints one JSON object (stdout) and a
table (stderr). All contenders of one section are timed in interleaved repetitions (one warm-up
each, then ``rep 1: A B C ..., rep 2: A B C ...``) and reported by their median, so that a
neighbour's load on shared cores hits every contender alike.

Sections
--------
**lens** -- entropies of ``softmax(hidden @ weight.T)`` for ``M`` rows (layers x tokens), width
``d`` and vocabulary ``V`` (GPT-2 50257, Llama-3 128256, Gemma-2 256000 with its soft-cap 30):

* ``ours``: :func:`~elens_utils.entropy.streaming.lens_entropy` (torch path on the CPU);
* ``naive``: fp32 logits materialised whole, ``log_softmax``, ``-(p * log p).sum``;
* ``chunked``: the obvious chunked torch loop: vocabulary chunks of 8192 (row blocks of 1024),
  pass 1 a running ``logsumexp``, pass 2 recomputes each chunk's logits and sums ``-p log p``
  (two matmuls per logit, a fresh tile per chunk);
* ``matmul_tiled``: the hardware limit: the bare matmul with exactly our tiles
  (:func:`~elens_utils.entropy.streaming._tile_shape`; ``weight @ hidden.T`` tiles for small row blocks,
  ``hidden @ weight.T`` otherwise) into one reused buffer, no reduction work;
  ``matmul_tiled_other``: the same in the other orientation;
* ``matmul_whole``: the bare matmul in one call into a fresh ``[M, V]`` output (only while that
  output stays below 2 GB). The limit used in the ratios is the fastest of the bare matmuls.

Contenders run with Shannon alone and (``LensShape.renyi``) with Shannon plus Renyi ``0.5, 2,
inf`` in the same pass. Peak memory is measured beyond the inputs, in a fresh subprocess per contender: it builds
the inputs, warms the libraries up on a tiny slice, reads its resident set (``VmRSS``), resets the
kernel's high-water mark (``echo 5 > /proc/self/clear_refs``), runs the contender once and reads
``VmHWM``. That counts every page the stage touches, torch's allocations and BLAS work buffers
alike (``tracemalloc`` sees neither); a fresh process keeps pages freed earlier from hiding new
ones. Where ``clear_refs`` is not writable it falls back to ``ru_maxrss``, an upper bound.

**e2e** -- profiles of N prompts x T greedy tokens on a GPT-2-small-shaped model with random
weights (12 blocks, d = 768, V = 50257; built in memory with ``GPT2Config``):

* ``ours``: :func:`~elens_utils.lens.generation.generate_profiles` (KV cache, hooks, streaming lens);
* ``reference``: the algorithm of the paper's public code (``ModelInspector``): one prompt at a
  time, the whole prefix re-run for every new token (no KV cache), logits of every position,
  every block's output kept (``output_hidden_states``), the next token by ``argmax`` of the
  softmax of all logits, then the lens logits of every block and token materialised, copied to
  the CPU in fp32, ``softmax`` and ``-(p * log(p + 1e-20)).sum``. (It appends token ids instead of
  re-tokenising the growing text, which only spares it work.) Its prompts are independent, so
  it is timed on a subset of equally long prompts and scaled to N (``ref_prompts`` in the rows);
* ``transformer_lens``: ``HookedTransformer.run_with_cache`` per step, the public code's own
  tool, when ``transformer_lens`` is importable (skipped otherwise);
* ``limit``: ``plain_generation`` (our KV-cached loop with no hooks and no lens) plus
  ``lens_matmul`` (the bare tiled matmul of all ``L * N * T`` lens rows at once);
* ``deferred_lens``: a what-if for :mod:`elens_utils.lens.generation`: the same loop keeping the
  block outputs, and one lens call over all rows at the end (:func:`deferred_lens_profiles`).

The ``agreement`` rows compare the profiles: ours against the reference (same greedy tokens,
the largest absolute difference of the entropies in nats) and the deferred variant against ours.

**gpu** (CUDA only) -- ``lens_entropy(backend="triton")`` against the cuBLAS matmul and the torch
path at Gemma-2-2B and Llama-3-8B shapes in bf16, in TFLOP/s (``2 M d V / t``), timed with
``triton.testing.do_bench`` (CUDA events as fallback).

Shared cores
------------
Each timed run records its CPU stall fraction (Linux PSI ``/proc/pressure/cpu``: the share of
its wall time during which some task waited for a CPU, about 0 on an idle machine). A round of
the interleaved repetitions in which a run stalled more than 0.25 is discarded and run again
(``retries`` per section); rows carry ``cpu_stall``, and the result ``cpu_stall_median`` and
``contended`` (median stall above 0.2: other work shared the cores, run again).

Headline keys (``*_vs_*``: our time / the other's, lower is better; ``*_speedup_*``: the other's
time / ours): ``lens_vs_matmul``, ``lens_renyi_vs_matmul``, ``lens_vs_naive``, ``peak_extra_mb``
(ours, M = 16384, V = 50257), ``e2e_speedup_vs_reference_T32``, ``..._T128``,
``e2e_time_exponent`` (least-squares slope of log time over log T, ours) and ``e2e_vs_limit``
(T = 128).

Configurations (:data:`CONFIGS`): ``full`` keeps the shapes above (GPT-2 small end to end, N = 16
prompts, Llama-3.2-1B and Gemma-2-2B widths for the lens; several minutes); ``quick`` (under two
minutes on 2 idle cores) narrows them (fewer lens rows, N = 8 prompts, fewer repetitions, the
reference timed on one prompt); ``tiny`` is a toy for the tests.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from elens_utils.bench.contenders import (  # noqa: F401 (the suite's names, as before the split)
    LENS_CONTENDERS,
    RENYI,
    SHANNON,
    WHOLE_MATMUL_MAX_BYTES,
    chunked_entropy,
    lens_inputs,
    matmul_tiled,
    matmul_tiled_other,
    matmul_whole,
    naive_entropy,
    ours_entropy,
)
from elens_utils.bench.generators import (  # noqa: F401
    GPT2_SMALL,
    bench_prompts,
    build_gpt2_lens_model,
    deferred_lens_profiles,
    ours_profiles,
    plain_generation,
    reference_profiles,
    transformer_lens_runner,
)
from elens_utils.bench.timing import (  # noqa: F401
    MB,
    interleaved_times,
    measure_peak_extra,
    median,
    median_or_none,
    mem_available_mb,
    naive_bytes_estimate,
    status_kb,
)
from elens_utils.core.atomic import atomic_file
from elens_utils.entropy.streaming import lens_entropy

__all__ = [
    "BenchConfig",
    "CONFIGS",
    "RENYI",
    "build_gpt2_lens_model",
    "chunked_entropy",
    "main",
    "matmul_tiled",
    "naive_entropy",
    "plain_generation",
    "reference_profiles",
    "run_benchmark",
    "write_json_atomic",
]


HEADLINE_KEYS = (
    "lens_vs_matmul",
    "lens_renyi_vs_matmul",
    "lens_vs_naive",
    "peak_extra_mb",
    "e2e_speedup_vs_reference_T32",
    "e2e_speedup_vs_reference_T128",
    "e2e_time_exponent",
    "e2e_vs_limit",
)


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LensShape:
    """One lens-stage shape: ``label`` (vocabulary family), rows, width, vocabulary, soft-cap."""

    label: str
    rows: int
    d: int
    vocab: int
    softcap: float | None = None
    contenders: tuple[str, ...] = ("ours", "matmul_tiled", "matmul_tiled_other", "matmul_whole", "chunked", "naive")
    renyi: tuple[str, ...] = ("ours", "chunked", "naive")  # also timed with the Renyi orders


@dataclass(frozen=True)
class MemProbe:
    contender: str
    rows: int
    d: int
    vocab: int
    alphas: tuple[float, ...] = SHANNON


@dataclass(frozen=True)
class BenchConfig:
    """What one benchmark run measures (see :data:`CONFIGS`, whose entries set only what differs
    from these defaults)."""

    name: str
    lens_shapes: tuple[LensShape, ...]
    headline_shape: int  # index into lens_shapes for the lens_* keys
    lens_reps: int
    mem_probes: tuple[MemProbe, ...]
    model: dict = field(default_factory=dict)  # GPT2Config overrides
    n_prompts: int = 16
    prompt_len: int = 16
    steps: tuple[int, ...] = (8, 32, 128)
    e2e_reps: dict = field(default_factory=dict)  # T -> repetitions
    ref_prompts: dict = field(default_factory=dict)  # T -> prompts the reference is timed on
    peak_rows: int = 16384  # rows of the peak_extra_mb probe
    deferred_lens: bool = True  # also time the deferred-lens what-if (deferred_lens_profiles)
    retries: int = 1  # rounds that may be re-run per section when other work stalled the CPU
    threads: int | None = None  # torch CPU threads (None: torch's default, one per core)



CONFIGS: dict[str, BenchConfig] = {
    "full": BenchConfig(
        name="full",
        lens_shapes=(
            LensShape("gpt2", 192, 768, 50257),  # one generation step: 12 blocks x 16 prompts
            LensShape("gpt2", 2048, 768, 50257),
            LensShape("gpt2", 16384, 768, 50257, contenders=("ours", "matmul_tiled", "matmul_tiled_other", "chunked")),
            LensShape("llama3", 1024, 2048, 128256),  # Llama-3.2-1B width
            LensShape("gemma2", 1024, 2304, 256000, softcap=30.0),  # Gemma-2-2B width
        ),
        headline_shape=1,
        lens_reps=5,
        mem_probes=(
            MemProbe("ours", 16384, 768, 50257),
            MemProbe("ours", 16384, 768, 50257, RENYI),
            MemProbe("matmul_tiled", 16384, 768, 50257),
            MemProbe("chunked", 16384, 768, 50257),
            MemProbe("naive", 16384, 768, 50257),
        ),
        model=GPT2_SMALL,
        e2e_reps={8: 5, 32: 3, 128: 3},
        ref_prompts={8: 16, 32: 4, 128: 2},
        retries=2,
    ),
    "quick": BenchConfig(
        name="quick",
        lens_shapes=(
            LensShape("gpt2", 1024, 768, 50257, renyi=("ours",)),
            LensShape("llama3", 128, 1024, 128256, contenders=("ours", "matmul_tiled", "matmul_tiled_other")),
            LensShape(
                "gemma2", 128, 1152, 256000, softcap=30.0, contenders=("ours", "matmul_tiled", "matmul_tiled_other")
            ),
        ),
        headline_shape=0,
        lens_reps=3,
        mem_probes=(
            MemProbe("ours", 16384, 64, 50257),
            MemProbe("naive", 4096, 64, 50257),
        ),
        # GPT-2 small's depth and vocabulary at half its width: the reference alone would take
        # over a minute at T = 128 on 2 cores with d = 768 (one prompt).
        model={**GPT2_SMALL, "n_embd": 384, "n_head": 6},
        e2e_reps={8: 3, 32: 3, 128: 1},
        ref_prompts={8: 2, 32: 1, 128: 1},
        deferred_lens=False,  # the what-if runs in the full benchmark
    ),
    "tiny": BenchConfig(
        name="tiny",
        lens_shapes=(
            LensShape("tiny", 64, 32, 3001),
            LensShape("tiny-cap", 16, 24, 1999, softcap=5.0),
        ),
        headline_shape=0,
        lens_reps=2,
        mem_probes=(MemProbe("ours", 512, 32, 3001),),
        model={"n_layer": 2, "n_embd": 32, "n_head": 2, "vocab_size": 301, "n_positions": 160},
        n_prompts=3,
        prompt_len=4,
        e2e_reps={8: 1, 32: 1, 128: 1},
        ref_prompts={8: 2, 32: 2, 128: 1},
        peak_rows=512,
        threads=1,  # toy shapes: parallel regions only add latency, worst on shared cores
        retries=0,
    ),
}


# --------------------------------------------------------------------------------------------
# The lens stage
# --------------------------------------------------------------------------------------------


def _shape_dict(s: LensShape) -> dict:
    return {"rows": s.rows, "d": s.d, "vocab": s.vocab, "softcap": s.softcap}


def bench_lens(config: BenchConfig, progress: bool = True) -> tuple[list[dict], dict]:
    """Time every contender at every shape, Shannon and Renyi, interleaved. Returns rows and
    the headline ratios at ``config.headline_shape``."""
    rows_out: list[dict] = []
    headline: dict = {}
    for i, shape in enumerate(tqdm(config.lens_shapes, desc="lens shapes", disable=not progress, file=sys.stderr)):
        h, w = lens_inputs(shape.rows, shape.d, shape.vocab, seed=i)
        contenders = list(shape.contenders)
        if "matmul_whole" in contenders and 4 * shape.rows * shape.vocab > WHOLE_MATMUL_MAX_BYTES:
            contenders.remove("matmul_whole")
        if "naive" in contenders:
            avail = mem_available_mb()
            need = naive_bytes_estimate(shape.rows, shape.vocab) / MB
            if avail is not None and need > 0.5 * avail:
                contenders.remove("naive")
        fns: dict[str, Callable] = {}
        for name in contenders:
            fn = LENS_CONTENDERS[name]
            # each closure binds this shape's inputs; `del ... fns` below frees them before the next shape
            if name.startswith("matmul"):
                fns[name] = lambda fn=fn, h=h, w=w: fn(h, w)
                continue
            fns[name] = lambda fn=fn, h=h, w=w, cap=shape.softcap: fn(h, w, None, cap, SHANNON)
            if name in shape.renyi:
                fns[name + "+renyi"] = lambda fn=fn, h=h, w=w, cap=shape.softcap: fn(h, w, None, cap, RENYI)
        with torch.no_grad():
            times, stalls, discarded = interleaved_times(
                fns, config.lens_reps, retries=config.retries, desc=f"lens {shape.label} M={shape.rows}", progress=progress
            )
        med = {k: median(v) for k, v in times.items()}
        limit_name = min((k for k in med if k.startswith("matmul")), key=lambda k: med[k])
        limit = med[limit_name]
        flop = 2.0 * shape.rows * shape.d * shape.vocab
        for k, ts in times.items():
            name, _, renyi = k.partition("+")
            rows_out.append(
                {
                    "section": "lens",
                    "contender": name,
                    "alphas": "matmul only" if name.startswith("matmul") else ("1,0.5,2,inf" if renyi else "1"),
                    "shape": {"label": shape.label, **_shape_dict(shape)},
                    "time_s": med[k],
                    "times_s": ts,
                    "vs_limit": med[k] / limit,
                    "limit": limit_name,
                    "gflop_per_s": flop / med[k] / 1e9,
                    "cpu_stall": median_or_none(stalls[k]),
                    "discarded_rounds": discarded,
                }
            )
        if i == config.headline_shape:
            headline["lens_vs_matmul"] = med["ours"] / limit
            headline["lens_renyi_vs_matmul"] = med["ours+renyi"] / limit
            if "naive" in med:
                headline["lens_vs_naive"] = med["ours"] / med["naive"]
            headline["lens_limit"] = limit_name
            headline["lens_headline_shape"] = _shape_dict(shape)
        del h, w, fns
        gc.collect()
    return rows_out, headline


def bench_memory(config: BenchConfig, progress: bool = True) -> tuple[list[dict], dict]:
    """Peak memory beyond the inputs of each probe, one fresh subprocess each."""
    rows_out, headline = [], {}
    for probe in tqdm(config.mem_probes, desc="memory probes", disable=not progress, file=sys.stderr):
        if probe.contender == "naive":
            avail = mem_available_mb()
            need = naive_bytes_estimate(probe.rows, probe.vocab) / MB
            if avail is not None and need > 0.6 * avail:
                rows_out.append(
                    {
                        "section": "memory",
                        "contender": probe.contender,
                        "shape": {"rows": probe.rows, "d": probe.d, "vocab": probe.vocab},
                        "skipped": f"needs about {need:.0f} MB, {avail:.0f} MB available",
                    }
                )
                continue
        res = measure_peak_extra(probe.contender, probe.rows, probe.d, probe.vocab, probe.alphas)
        row = {
            "section": "memory",
            "contender": probe.contender,
            "alphas": ",".join("inf" if math.isinf(a) else f"{a:g}" for a in probe.alphas),
            "shape": {"rows": probe.rows, "d": probe.d, "vocab": probe.vocab},
            **res,
        }
        if "extra_mb" in res:
            row["peak_extra_mb"] = res["extra_mb"]
            row["logits_mb"] = 4 * probe.rows * probe.vocab / MB
        rows_out.append(row)
        if (
            probe.contender == "ours"
            and probe.alphas == SHANNON
            and probe.rows == config.peak_rows
            and "extra_mb" in res
        ):
            headline["peak_extra_mb"] = res["extra_mb"]
            headline["peak_method"] = res["method"]
    return rows_out, headline


# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y over log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def bench_e2e(config: BenchConfig, progress: bool = True, lm=None) -> tuple[list[dict], dict]:
    """Profiles of N prompts x T tokens: ours, the reference, the limit, for every T.

    All (T, contender) pairs are timed in the same interleaved rounds (rounds beyond a T's
    repetitions skip it), so that load from elsewhere is spread over every T and contender;
    the contenders at the smallest T are warmed up first.
    """
    if lm is None:
        lm = build_gpt2_lens_model(**config.model)
    cfg = lm.model.config
    n_layers, d, vocab = lm.n_layers, cfg.n_embd, lm.parts.vocab_size
    prompts = bench_prompts(config.n_prompts, config.prompt_len, vocab)
    n_prompts = len(prompts)
    tl_run, tl_reason = transformer_lens_runner(lm)
    lens_w = lm.parts.unembed.weight
    shape = {"n_layers": n_layers, "d": d, "vocab": vocab, "n_prompts": n_prompts, "prompt_len": config.prompt_len}
    results: dict[str, object] = {}
    fns: dict[str, Callable] = {}
    reps: dict[str, int] = {}
    n_ref: dict[int, int] = {}
    lens_rows: dict[int, int] = {}

    def keep(key, fn):
        def run():
            results[key] = fn()

        return run

    for steps in config.steps:
        n_ref[steps] = min(config.ref_prompts.get(steps, 1), n_prompts)
        lens_rows[steps] = n_layers * n_prompts * steps
        # The bare lens matmul: as many rows as the pipeline reads through the lens, at once.
        lens_h = torch.randn(lens_rows[steps], d, generator=torch.Generator().manual_seed(steps), dtype=lm.dtype)
        entries = {
            "ours": keep((steps, "ours"), lambda steps=steps: ours_profiles(lm, prompts, steps)),
            "plain_generation": lambda steps=steps: plain_generation(lm, prompts, steps),
            "lens_matmul": lambda lens_h=lens_h: matmul_tiled(lens_h, lens_w),
            "reference": keep(
                (steps, "reference"), lambda steps=steps: reference_profiles(lm, prompts[: n_ref[steps]], steps)
            ),
        }
        if config.deferred_lens:
            entries["deferred_lens"] = keep(
                (steps, "deferred_lens"), lambda steps=steps: deferred_lens_profiles(lm, prompts, steps)
            )
        if tl_run is not None:
            entries["transformer_lens"] = lambda steps=steps: tl_run(prompts[: n_ref[steps]], steps)
        for name, fn in entries.items():
            fns[f"T{steps}/{name}"] = fn
            reps[f"T{steps}/{name}"] = config.e2e_reps.get(steps, 1)
    first = min(config.steps)
    times, stalls, discarded = interleaved_times(
        fns,
        reps,
        warmup=[k for k in fns if k.startswith(f"T{first}/")],
        retries=config.retries,
        desc="e2e",
        progress=progress,
    )

    rows_out: list[dict] = []
    per_t: dict[int, dict[str, float]] = {}
    agreement: dict[int, float] = {}
    for steps in config.steps:
        med = {k.split("/", 1)[1]: median(v) for k, v in times.items() if k.startswith(f"T{steps}/")}
        for k in ("reference", "transformer_lens"):  # timed on n_ref prompts, scaled to all
            if k in med:
                med[k] *= n_prompts / n_ref[steps]
        limit = med["plain_generation"] + med["lens_matmul"]
        per_t[steps] = {**med, "limit": limit}
        ours_h, ours_ids = results[steps, "ours"]
        ref_h, ref_ids = results[steps, "reference"]
        same = (ours_ids[: n_ref[steps]] == ref_ids).all(axis=1)
        diff = float(np.abs(ours_h[: n_ref[steps]][same] - ref_h[same]).max()) if same.any() else float("nan")
        agreement[steps] = diff
        deferred_diff = None
        if (steps, "deferred_lens") in results:
            def_h, def_ids = results[steps, "deferred_lens"]
            deferred_diff = float(np.abs(def_h - ours_h).max()) if (def_ids == ours_ids).all() else float("nan")
        for name, value in med.items():
            row = {
                "section": "e2e",
                "contender": name,
                "T": steps,
                "shape": shape if name != "lens_matmul" else {"rows": lens_rows[steps], "d": d, "vocab": vocab},
                "time_s": value,
                "times_s": times[f"T{steps}/{name}"],
                "per_prompt_s": value / n_prompts,
                "cpu_stall": median_or_none(stalls[f"T{steps}/{name}"]),
                "discarded_rounds": discarded,
            }
            if name in ("reference", "transformer_lens"):
                row["timed_prompts"] = n_ref[steps]
                row["scaled_to_prompts"] = n_prompts
            if name in ("ours", "reference", "transformer_lens", "deferred_lens"):
                row["vs_limit"] = value / limit
                row["speedup_vs_reference"] = med["reference"] / value
            rows_out.append(row)
        rows_out.append(
            {"section": "e2e", "contender": "limit", "T": steps, "shape": shape, "time_s": limit,
             "vs_limit": 1.0, "note": "plain_generation + lens_matmul"}
        )
        if tl_run is None:
            rows_out.append({"section": "e2e", "contender": "transformer_lens", "T": steps, "skipped": tl_reason})
        rows_out.append(
            {"section": "e2e", "contender": "agreement", "T": steps, "prompts_compared": n_ref[steps],
             "same_tokens": int(same.sum()), "max_abs_diff_nats": diff,
             "deferred_lens_max_abs_diff_nats": deferred_diff}
        )
    headline: dict = {}
    ts = sorted(per_t)
    for steps in ts:
        headline[f"e2e_speedup_vs_reference_T{steps}"] = per_t[steps]["reference"] / per_t[steps]["ours"]
        headline[f"e2e_vs_limit_T{steps}"] = per_t[steps]["ours"] / per_t[steps]["limit"]
    if len(ts) >= 2:
        headline["e2e_time_exponent"] = _slope(ts, [per_t[t]["ours"] for t in ts])
        headline["e2e_time_exponent_reference"] = _slope(ts, [per_t[t]["reference"] for t in ts])
        headline["e2e_time_exponent_limit"] = _slope(ts, [per_t[t]["limit"] for t in ts])
    headline["e2e_vs_limit"] = per_t[ts[-1]]["ours"] / per_t[ts[-1]]["limit"]
    finite = [v for v in agreement.values() if not math.isnan(v)]
    headline["e2e_max_abs_diff_nats"] = max(finite) if finite else float("nan")
    headline["e2e_model"] = {"name": lm.name, **shape}
    return rows_out, headline


# --------------------------------------------------------------------------------------------
# GPU (CUDA only; not exercised on CPU machines)
# --------------------------------------------------------------------------------------------

GPU_SHAPES = (
    LensShape("gemma2-2b", 4096, 2304, 256000, softcap=30.0),
    LensShape("llama3-8b", 4096, 4096, 128256),
    LensShape("gemma2-2b", 512, 2304, 256000, softcap=30.0),
    LensShape("llama3-8b", 512, 4096, 128256),
)


def _cuda_ms(fn: Callable[[], object]) -> float:
    """Median milliseconds of ``fn`` on the current CUDA device."""
    try:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=25, rep=200, return_mode="median"))
    except ImportError:
        fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(20):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        return median(times)


def bench_gpu(shapes: Sequence[LensShape] = GPU_SHAPES, dtype=torch.bfloat16, progress: bool = True) -> list[dict]:
    """Triton lens vs cuBLAS matmul vs the torch path, bf16, in TFLOP/s and peak extra memory."""
    rows_out = []
    for i, s in enumerate(tqdm(shapes, desc="gpu", disable=not progress, file=sys.stderr)):
        h, w = lens_inputs(s.rows, s.d, s.vocab, seed=i, dtype=dtype, device="cuda")
        # the closures bind this shape's inputs; `del ... fns` below frees them before the next shape
        fns = {
            "cublas_matmul": lambda h=h, w=w: h @ w.T,
            "ours_triton": lambda h=h, w=w, cap=s.softcap: lens_entropy(h, w, softcap=cap, backend="triton"),
            "ours_triton+renyi": lambda h=h, w=w, cap=s.softcap: lens_entropy(h, w, softcap=cap, alphas=RENYI, backend="triton"),
            "ours_torch": lambda h=h, w=w, cap=s.softcap: lens_entropy(h, w, softcap=cap, backend="torch"),
        }
        flop = 2.0 * s.rows * s.d * s.vocab
        for name, fn in fns.items():
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            try:
                fn()
                torch.cuda.synchronize()
                peak = (torch.cuda.max_memory_allocated() - base) / MB
                ms = _cuda_ms(fn)
            except Exception as err:  # noqa: BLE001 - report, keep going
                rows_out.append({"section": "gpu", "contender": name, "shape": _shape_dict(s), "error": str(err)})
                continue
            rows_out.append(
                {
                    "section": "gpu",
                    "contender": name,
                    "shape": {"label": s.label, **_shape_dict(s), "dtype": str(dtype).removeprefix("torch.")},
                    "time_s": ms / 1e3,
                    "tflop_per_s": flop / (ms / 1e3) / 1e12,
                    "peak_extra_mb": peak,
                }
            )
        del h, w, fns, fn
        torch.cuda.empty_cache()
    return rows_out


# --------------------------------------------------------------------------------------------
# Running, reporting
# --------------------------------------------------------------------------------------------


def machine_info() -> dict:
    """CPU model, cores, threads, library versions and the device."""
    from elens_utils.entropy.precision import cpu_model_name

    cpu = cpu_model_name()
    import transformers

    info = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "mem_available_mb": mem_available_mb(),
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    try:
        info["load_avg_1m"] = os.getloadavg()[0]
    except OSError:
        pass
    info["cpu_pressure"] = cpu_pressure()
    return info


def cpu_pressure() -> dict | None:
    """Linux PSI ``some`` CPU pressure (% of time some task waited for a CPU), or None.

    Recorded at the start and the end of a run: on shared cores it says how much the timings
    were disturbed by other work.
    """
    try:
        with open("/proc/pressure/cpu") as fh:
            first = fh.readline().split()
    except OSError:
        return None
    return {k: float(v) for k, v in (item.split("=") for item in first[1:]) if k.startswith("avg")}


def _finite(obj) -> bool:
    return isinstance(obj, (int, float)) and math.isfinite(obj)


def run_benchmark(
    config: str | BenchConfig = "quick",
    sections: Sequence[str] = ("lens", "memory", "e2e", "real", "gpu"),
    progress: bool = True,
    threads: int | None = None,
) -> dict:
    """Run the benchmark and return the result object (headline keys, ``rows``, ``machine``).

    Args:
        config: ``"full"``, ``"quick"``, ``"tiny"`` or a :class:`BenchConfig`.
        sections: any of :data:`SECTIONS` (``gpu`` runs only with CUDA; ``real`` and
            ``model_bf16`` need the real models of ``make setup`` and are skipped by ``tiny``).
        progress: show progress bars (stderr).
        threads: torch CPU threads for the run (default: the config's, else torch's).
    """
    cfg = CONFIGS[config] if isinstance(config, str) else config
    if threads is not None:
        cfg = replace(cfg, threads=threads)
    saved_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, sections, progress)
    finally:
        torch.set_num_threads(saved_threads)


def _run(cfg: BenchConfig, sections: Sequence[str], progress: bool) -> dict:
    t0 = time.perf_counter()
    result: dict = {"config": cfg.name, "machine": machine_info()}
    rows: list[dict] = []
    headline: dict = {}
    section_s: dict[str, float] = {}
    runners = {"lens": bench_lens, "memory": bench_memory, "e2e": bench_e2e}
    for name in ("lens", "memory", "e2e"):
        if name in sections:
            start = time.perf_counter()
            r, h = runners[name](cfg, progress)
            section_s[name] = time.perf_counter() - start
            rows += r
            headline.update(h)
    from elens_utils.bench.forward import bench_model_bf16
    from elens_utils.bench.real import bench_real

    # the real-model sections, which the tiny configuration skips
    for name, runner, sizes in (("real", bench_real, REAL_SIZES), ("model_bf16", bench_model_bf16, MODEL_BF16_SIZES)):
        if name in sections and cfg.name != "tiny":
            start = time.perf_counter()
            r, h = runner(**sizes.get(cfg.name, sizes["quick"]), progress=progress)
            section_s[name] = time.perf_counter() - start
            rows += r
            headline.update(h)
    if "gpu" in sections and torch.cuda.is_available():
        start = time.perf_counter()
        rows += bench_gpu(progress=progress)
        section_s["gpu"] = time.perf_counter() - start
    result["section_s"] = section_s
    result.update(headline)
    result["targets"] = check_targets(result)
    result["settings"] = _settings(cfg)
    result["rows"] = rows
    result["cpu_pressure_end"] = cpu_pressure()
    stalls = [r["cpu_stall"] for r in rows if r.get("cpu_stall") is not None]
    if stalls:
        # Fraction of the timed runs' wall time during which some task waited for a CPU: near 0
        # on an idle machine; above ~0.2 other work shared the cores and the ratios are suspect.
        result["cpu_stall_median"] = float(np.median(stalls))
        result["contended"] = bool(np.median(stalls) > 0.2)
    result["wall_s"] = time.perf_counter() - t0
    return result


#: Sizes of the ``real`` section (:func:`elens_utils.bench.real.bench_real`) per configuration.
REAL_SIZES = {
    "quick": {"n_prompts": 8, "steps": 8, "reps": 1, "error_prompts": 1},
    "full": {"n_prompts": 16, "steps": 32, "reps": 3, "error_prompts": 4},
}

#: Every section; the last, ``model_bf16`` (the real models' forward pass in bf16), runs only
#: when asked for (``--sections model_bf16``): about 90 s on 2 cores.
SECTIONS = ("lens", "memory", "e2e", "real", "gpu", "model_bf16")

#: Sizes of the ``model_bf16`` section (:mod:`elens_utils.bench.forward`; not run by default).
MODEL_BF16_SIZES = {
    "quick": {"n_prompts": 32, "steps": 32},
    "full": {"n_prompts": 64, "steps": 64},
}

TARGETS = {
    "lens_vs_matmul": ("<=", 1.25),
    "lens_renyi_vs_matmul": ("<=", 1.5),
    "peak_extra_mb": ("<=", 256.0),
    "e2e_speedup_vs_reference_T32": (">=", 5.0),
    "e2e_speedup_vs_reference_T128": (">=", 15.0),
    "e2e_time_exponent": ("<=", 1.15),
    "e2e_vs_limit": ("<=", 1.3),
    # the bf16 path on a real model (section real; the targets, not all met on every CPU)
    "lens_bf16_vs_matmul_bf16": ("<=", 1.3),
    "lens_bf16_max_err_nats": ("<=", 0.02),
    "real_e2e_speedup_vs_fp32": (">=", 3.0),
    "real_e2e_vs_limit": ("<=", 1.3),
}


def check_targets(result: dict) -> dict:
    """``{key: {"value", "target", "met"}}`` for the headline keys with a target."""
    out = {}
    for key, (op, bound) in TARGETS.items():
        value = result.get(key)
        met = None if not _finite(value) else (value <= bound if op == "<=" else value >= bound)
        out[key] = {"value": value, "target": f"{op} {bound:g}", "met": met}
    return out


def _settings(cfg: BenchConfig) -> dict:
    s = asdict(cfg)
    s["e2e_reps"] = {str(k): v for k, v in cfg.e2e_reps.items()}
    s["ref_prompts"] = {str(k): v for k, v in cfg.ref_prompts.items()}
    s["renyi_alphas"] = [a if math.isfinite(a) else "inf" for a in RENYI]
    return _jsonable(s)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json_atomic(obj, path: str | os.PathLike) -> None:
    """Write ``obj`` as JSON to ``path`` atomically: a temporary file beside it, then ``os.replace``.

    A reader sees the old file or the complete new one, never a partial write; on failure the
    temporary file is removed and ``path`` is left as it was.
    """
    with atomic_file(path) as fh:
        json.dump(_jsonable(obj), fh, indent=2, allow_nan=False)
        fh.write("\n")


def format_table(result: dict) -> str:
    """A plain-text table of every row, then the headline keys against their targets."""
    lines = [
        f"{'section':8} {'contender':18} {'alphas':12} {'shape':34} {'time s':>9} {'vs limit':>8} "
        f"{'peak MB':>8} {'stall':>5}"
    ]
    for r in result.get("rows", []):
        shape = r.get("shape", {})
        if r.get("section") == "e2e":
            desc = f"T={r.get('T')}"
            if "rows" in shape:
                desc += f" rows={shape['rows']} d={shape['d']} V={shape['vocab']}"
            elif shape:
                desc += f" N={shape['n_prompts']} P={shape['prompt_len']} L={shape['n_layers']} d={shape['d']}"
        else:
            desc = " ".join(f"{k}={v}" for k, v in shape.items() if v is not None and k != "label")
            desc = f"{shape.get('label', '')} {desc}".strip()
        t = r.get("time_s")
        vs = r.get("vs_limit")
        mem = r.get("peak_extra_mb")
        stall = r.get("cpu_stall")
        note = r.get("skipped") or r.get("error") or ""
        if r.get("contender") == "bf16 error":
            note = f"max |dH| {max(r['max_err_nats']):.3f}, mean {max(r['mean_err_nats']):.4f} nats (bf16 vs float64)"
        if r.get("section") == "model_bf16" and "speedup" in r:
            desc, t = f"{r['model']} N={r['prompts']} T={r['steps']}", r["seconds_bf16"]
            note = (
                f"model in bf16 {r['speedup']:.2f}x faster than fp32; same tokens {r['identical_streams']:.0%}, "
                f"first-token max |dH| {r['step1_max_abs_dh_nats']:.3f} nats"
            )
        if r.get("contender") == "agreement":
            note = f"same tokens {r['same_tokens']}/{r['prompts_compared']}, max |dH| {r['max_abs_diff_nats']:.2g} nats"
        lines.append(
            f"{r.get('section') or '':8} {r.get('contender') or '':18} {r.get('alphas') or '':12} {desc[:34]:34} "
            f"{'' if t is None else f'{t:9.3f}':>9} {'' if vs is None else f'{vs:8.2f}':>8} "
            f"{'' if mem is None else f'{mem:8.1f}':>8} "
            f"{'' if stall is None else f'{stall:5.2f}':>5} {note}"
        )
    lines.append("")
    for key, t in result.get("targets", {}).items():
        v = t["value"]
        status = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        lines.append(f"{key:32} {'' if v is None else f'{v:10.3f}':>10}  target {t['target']:8} {status}")
    lines.append(f"wall time {result.get('wall_s', float('nan')):.1f} s, config {result.get('config')}")
    if result.get("contended"):
        lines.append(
            f"WARNING: other work shared the CPU (median stall {result['cpu_stall_median']:.2f}): "
            "timings are disturbed, run again on an idle machine"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bench`` options (shared by ``python -m elens_utils bench`` and this module)."""
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller shapes, under two minutes on 2 CPU cores")
    size.add_argument("--tiny", action="store_true", help="toy shapes, seconds (for tests)")
    parser.add_argument("--sections", default="lens,memory,e2e,real,gpu",
                        help="comma-separated subset of lens,memory,e2e,real,gpu,model_bf16 (default: the first "
                             "five; gpu only with CUDA; real and model_bf16 need make setup's real models)")
    parser.add_argument("--out", metavar="FILE", help="also write the JSON to FILE (atomically)")
    parser.add_argument("--no-table", action="store_true", help="do not print the table to stderr")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: one per core)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed ``bench`` options: JSON to stdout, table to stderr, ``--out`` file."""
    from elens_utils.core.errors import ElensError

    config = "tiny" if args.tiny else ("quick" if args.quick else "full")
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ElensError(f"Unknown benchmark section(s) {sorted(unknown)}: use {', '.join(SECTIONS)}.")
    if args.threads is not None and args.threads < 1:
        raise ElensError(f"--threads must be >= 1; got {args.threads}.")
    result = run_benchmark(config, sections, progress=not args.no_progress, threads=args.threads)
    if args.out:
        write_json_atomic(result, args.out)
    if not args.no_table:
        print(format_table(result), file=sys.stderr)
    print(json.dumps(_jsonable(result), allow_nan=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elens_utils.bench.suite", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    from elens_utils.core.errors import run_command

    return run_command(lambda: run_from_args(args))


if __name__ == "__main__":
    sys.exit(main())
