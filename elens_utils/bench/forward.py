"""Benchmark section ``model_bf16``: a real model's own forward pass in bf16 on the CPU.

The lens's product is not the only arithmetic a CPU with bf16 units could run in bf16: the
model's blocks can too (``load_model(..., dtype="bfloat16")``, ``--dtype bfloat16``, a chapter's
``dtype``). This section measures what that buys and what it changes, per real model: the same
natural prompts profiled with the model in float32 and in bfloat16, the lens in the same
``precision`` both times, greedy decoding.

Per model (one row, ``section == "model_bf16"``):

* ``seconds_fp32``, ``seconds_bf16`` and ``speedup`` (their ratio): whole profiles, N prompts x T
  tokens in one batch, the model loaded beforehand;
* ``identical_streams``: the fraction of prompts whose T greedy tokens are the same both ways,
  and ``first_divergence_median`` (the median step of the first different token, T where none);
* ``step1_max_abs_dh_nats`` / ``step1_mean_abs_dh_nats``: ``|H_bf16 - H_fp32|`` (Shannon, nats)
  over every block of every prompt at the first generated token, where both read the same
  context, so the difference is the arithmetic's alone;
* ``mean_profile_max_abs_diff_nats``: the largest difference between the two mean profiles
  (mean over prompts and tokens, per block): what a chart of the mean profile would show;
* ``lens_step1_max_abs_dh_nats``: for scale, the same first-token figure for the lens's
  ``precision`` alone (the float32 model with that lens against the float32 model with the fp32
  lens; 0 when ``precision`` is fp32). A third run, untimed in the ratio.

Headline keys: ``model_bf16_speedup_min`` (the smaller speed-up over the models) and
``model_bf16_step1_max_dh_nats`` (the largest first-token difference).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

__all__ = ["bench_model_bf16", "forward_dtype_effect"]


def _natural_prompts(name: str, n: int) -> list[str]:
    """The first ``n`` story-world task prompts in natural English (24 per story)."""
    from elens_utils.data import prompts as data

    items = data.task_prompts("synthetic", max(1, math.ceil(n / 24)), seed=0)
    return data.for_model(items, name)["prompt"].tolist()[:n]


def forward_dtype_effect(fp32, bf16) -> dict:
    """Compare two :class:`~elens_utils.entropy.profiles.Profiles` of the same greedy prompts, one from
    the model in float32 and one in bfloat16 (keys as in the module doc, without the times)."""
    a, b = fp32.select(1.0), bf16.select(1.0)  # [N, T, L] Shannon, nats
    if a.shape != b.shape:
        raise ValueError(f"profiles of different shapes: {a.shape} and {b.shape}")
    ga = np.stack([np.asarray(g) for g in fp32.meta["generated_ids"]])
    gb = np.stack([np.asarray(g) for g in bf16.meta["generated_ids"]])
    differ = ga != gb
    first = np.where(differ.any(axis=1), differ.argmax(axis=1), ga.shape[1])
    step1 = np.abs(a[:, 0] - b[:, 0])
    return {
        "identical_streams": float((~differ.any(axis=1)).mean()),
        "first_divergence_median": float(np.median(first)),
        "step1_max_abs_dh_nats": float(step1.max()),
        "step1_mean_abs_dh_nats": float(step1.mean()),
        "mean_profile_max_abs_diff_nats": float(np.abs(a.mean((0, 1)) - b.mean((0, 1))).max()),
    }


def bench_model_bf16(
    models: Sequence[str] = ("real/smollm2-135m-instruct", "real/gemma3-270m"),
    *,
    n_prompts: int = 32,
    steps: int = 32,
    precision: str = "bf16",
    prompts: Sequence[str] | None = None,
    progress: bool = False,
) -> tuple[list[dict], dict]:
    """Rows and headline keys of the ``model_bf16`` section (module doc).

    Args:
        models: model names (real models that are not installed get a row saying so).
        n_prompts, steps: N story-world task prompts in natural English, T greedy tokens each.
        precision: the lens's ``precision``, the same for both dtypes.
        prompts: other prompts instead of the story world's (``n_prompts`` is then ignored).
        progress: progress bars.
    """
    from elens_utils.bench import real as bench_real  # through the module: a test stands in for it
    from elens_utils.lens.loading import load_model

    rows: list[dict] = []
    speedups, step1 = [], []
    for name in models:
        if name.startswith("real/") and not bench_real.installed(name):
            rows.append({"section": "model_bf16", "model": name, "skipped": "not installed (make setup)"})
            continue
        texts = list(prompts) if prompts is not None else _natural_prompts(name, n_prompts)
        profiles, seconds = {}, {}
        runs = [("float32", precision), ("bfloat16", precision)]
        if precision != "fp32":
            runs.append(("float32", "fp32"))  # what the lens's own precision moves, for scale
        for dtype, lens_precision in runs:
            lm = load_model(name, dtype=dtype)
            start = time.perf_counter()
            profiles[dtype, lens_precision] = lm.profile(
                texts, max_new_tokens=steps, batch_size=len(texts), precision=lens_precision, progress=progress
            )
            seconds[dtype, lens_precision] = time.perf_counter() - start
            del lm
        effect = forward_dtype_effect(profiles["float32", precision], profiles["bfloat16", precision])
        lens_step1 = 0.0
        if precision != "fp32":
            ref = profiles["float32", "fp32"].select(1.0)[:, 0]
            lens_step1 = float(np.abs(profiles["float32", precision].select(1.0)[:, 0] - ref).max())
        seconds = {"float32": seconds["float32", precision], "bfloat16": seconds["bfloat16", precision]}
        speedup = seconds["float32"] / seconds["bfloat16"]
        speedups.append(speedup)
        step1.append(effect["step1_max_abs_dh_nats"])
        rows.append({
            "section": "model_bf16", "model": name, "prompts": len(texts), "steps": steps,
            "lens_precision": precision, "seconds_fp32": seconds["float32"],
            "seconds_bf16": seconds["bfloat16"], "speedup": speedup, **effect,
            "lens_step1_max_abs_dh_nats": lens_step1,
        })  # fmt: skip
    headline = {}
    if speedups:
        headline = {"model_bf16_speedup_min": min(speedups), "model_bf16_step1_max_dh_nats": max(step1)}
    return rows, headline
