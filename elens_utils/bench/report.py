"""The benchmark's JSON as tidy frames and charts: what the book's performance appendix shows.

:func:`load_result` reads a file written by ``python -m elens_utils bench --out FILE``; the frames
turn its ``rows`` into one row per mark, and the charts draw them with the book's theme:

* :func:`headline_frame`: the headline ratios beside their targets (met or not);
* :func:`lens_frame` / :func:`lens_chart`: the lens stage, each contender's time relative to the
  bare unembedding matmul (the hardware limit) at every shape;
* :func:`e2e_frame` / :func:`e2e_chart`: whole profiles against the number of generated tokens T,
  ours beside the paper's reference algorithm and the limit, on log-log axes (a slope of 1 is
  linear growth, 2 quadratic);
* :func:`memory_frame` / :func:`memory_chart`: the lens stage's peak memory beyond its inputs;
* :func:`real_frames` (:func:`real_error_frame`, :func:`real_lens_frame`, :func:`real_profile_frame`),
  :func:`real_profile_chart` and :func:`real_error_chart`: the section ``real`` (the bf16 lens path
  on real models: its error against float64, the lens stage and whole profiles of Gemma-3-270M);
  :func:`real_section_note` says why a result has none.

:func:`format_value` writes a headline value for a table (three significant digits).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import altair as alt
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.entropy.precision import AUTO_MIN_SPEEDUP
from elens_utils.viz.theme import tooltips

__all__ = [
    "bench_findings",
    "RealFrames",
    "e2e_chart",
    "e2e_frame",
    "format_value",
    "headline_frame",
    "lens_chart",
    "lens_frame",
    "load_result",
    "machine_summary",
    "memory_chart",
    "memory_frame",
    "model_bf16_frame",
    "model_title",
    "model_bf16_verdict",
    "real_error_chart",
    "real_error_frame",
    "real_frames",
    "real_lens_frame",
    "real_profile_chart",
    "real_profile_frame",
    "real_section_note",
]

# What each headline key means, for the table (the benchmark's module docstring has the detail).
_HEADLINE_TEXT = {
    "lens_vs_matmul": "lens (Shannon) time / bare matmul time",
    "lens_renyi_vs_matmul": "lens (Shannon + 3 Rényi orders) time / bare matmul time",
    "lens_vs_naive": "lens time / naive (materialised logits) time",
    "peak_extra_mb": "lens peak memory beyond its inputs (MB, M = 16384, V = 50257)",
    "e2e_speedup_vs_reference_T32": "end to end: reference time / ours, T = 32",
    "e2e_speedup_vs_reference_T128": "end to end: reference time / ours, T = 128",
    "e2e_time_exponent": "end to end: slope of log time over log T (ours)",
    "e2e_time_exponent_reference": "end to end: slope of log time over log T (reference)",
    "e2e_vs_limit": "end to end: our time / (plain generation + bare lens matmul), T = 128",
    # section real: the bf16 lens path on real models (bench_real's module docstring)
    "lens_bf16_vs_matmul_bf16": "real lens stage (Gemma-3-270M), bf16 path: lens time / bare bf16 matmul time",
    "lens_fp32_vs_matmul_fp32": "real lens stage (Gemma-3-270M), fp32: lens time / bare fp32 matmul time",
    "matmul_bf16_speedup": "bare unembedding matmul: fp32 time / bf16 time",
    "lens_bf16_speedup_vs_fp32": "real lens stage: fp32 lens time / bf16 lens time",
    "lens_bf16_max_err_nats": "bf16 lens: largest |H - H_float64| (nats), both real models, 4 orders",
    "lens_bf16_mean_err_nats": "bf16 lens: mean |H - H_float64| (nats), averaged over the two models",
    "lens_fp32_max_err_nats": "fp32 lens: largest |H - H_float64| (nats), the same rows",
    "real_e2e_speedup_vs_fp32": "real profiles (Gemma-3-270M): fp32 path time / bf16 path time",
    "real_e2e_vs_limit": "real profiles, bf16: our time / (plain generation + bare bf16 lens matmul)",
    "real_e2e_speedup_vs_reference": "real profiles: reference time (scaled from 1 prompt) / ours in bf16",
    "real_e2e_speedup_vs_naive": "real profiles: naive output_hidden_states time (scaled from 1 prompt) / ours in bf16",
    "real_tokens_per_s_bf16": "real profiles: generated tokens per second, bf16 lens",
    "real_tokens_per_s_fp32": "real profiles: generated tokens per second, fp32 lens",
    "cpu_has_bf16": "the CPU reports bf16 dot-product instructions",
    "auto_bf16_speedup_probe": (
        f"precision=\"auto\"'s probe: fp32 / bf16 product time (auto picks bf16 at >= {AUTO_MIN_SPEEDUP:g})"
    ),
}
_CONTENDER_TEXT = {
    "ours": "ours (streaming lens)",
    "ours+renyi": "ours, + 3 Rényi orders",
    "naive": "naive (whole fp32 logits)",
    "naive+renyi": "naive, + 3 Rényi orders",
    "chunked": "chunked torch loop",
    "chunked+renyi": "chunked, + 3 Rényi orders",
    "matmul_tiled": "bare matmul, our tiles",
    "matmul_tiled_other": "bare matmul, other tile layout",
    "matmul_whole": "bare matmul, one call",
}
_E2E_TEXT = {
    "ours": "ours (KV cache, streaming lens)",
    "reference": "paper's reference algorithm",
    "limit": "limit: plain generation + bare lens matmul",
    "plain_generation": "plain KV-cached generation, no lens",
    "transformer_lens": "TransformerLens run_with_cache",
    "deferred_lens": "what-if: all lens rows at the end",
}


def load_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The benchmark result written by ``python -m elens_utils bench --out FILE``.

    Raises:
        ElensError: the file is missing or is not a benchmark result.
    """
    p = Path(path)
    if not p.is_file():
        raise ElensError(
            f"No benchmark result at {p}: run `python -m elens_utils bench --quick --out {p}` "
            "(or without --quick for the full shapes) first."
        )
    try:
        result = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise ElensError(f"{p} is not valid JSON ({err}): run the benchmark again to rewrite it.") from err
    if not isinstance(result, dict) or not isinstance(result.get("rows"), list) or "machine" not in result:
        raise ElensError(f"{p} is not a benchmark result (no 'rows' and 'machine'): was it written by the benchmark?")
    return result


def machine_summary(result: dict[str, Any]) -> str:
    """One line naming the machine and the configuration of a result."""
    m = result.get("machine", {})
    parts = [
        f"{m.get('cpu', '?')}, {m.get('logical_cores', '?')} logical cores",
        f"torch {m.get('torch', '?')} ({m.get('torch_threads', '?')} threads)",
        f"device {m.get('device', '?')}",
        f"configuration `{result.get('config', '?')}`",
    ]
    if result.get("wall_s") is not None:
        parts.append(f"{result['wall_s']:.0f} s in all")
    return "; ".join(parts)


def headline_frame(result: dict[str, Any]) -> pd.DataFrame:
    """The headline keys: ``key``, ``meaning``, ``value``, ``target`` (or ""), ``met`` (bool/None)."""
    targets = result.get("targets", {})
    rows = []
    for key, text in _HEADLINE_TEXT.items():
        if key not in result:
            continue
        t = targets.get(key, {})
        rows.append({"key": key, "meaning": text, "value": result[key], "target": t.get("target", ""), "met": t.get("met")})
    return pd.DataFrame(rows, columns=["key", "meaning", "value", "target", "met"])


def format_value(value: Any, target: str = "") -> str:
    """A headline value for a table: three significant digits (``1.09``, ``16.9``, ``0.0254``,
    ``1.43e-05``), thousands without decimals, ``yes``/``no`` for a flag, ``n/a`` for none.

    With its ``target`` (``"<= 1.3"``), a value that three digits would show as the bound itself
    gets the digits that tell them apart (``1.3006`` -> ``1.301``, not a missed ``1.3``)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        text = f"{value:.3g}"
        try:
            bound = float(str(target).split()[-1])
        except (IndexError, ValueError):
            return text
        digits = 3
        while float(text) == bound and value != bound and digits < 9:
            digits += 1
            text = f"{value:.{digits}g}"
        return text
    return str(value)


def _shape_label(shape: dict[str, Any]) -> str:
    cap = f", soft-cap {shape['softcap']:g}" if shape.get("softcap") else ""
    return f"{shape.get('label', '')} M={shape['rows']} d={shape['d']} V={shape['vocab']}{cap}".strip()


def lens_frame(result: dict[str, Any]) -> pd.DataFrame:
    """Lens-stage rows: ``shape``, ``contender`` (readable), ``key``, ``time_s``, ``vs_limit``
    (time / the fastest bare matmul at that shape), ``gflop_per_s`` (2 M d V / time)."""
    rows = []
    for r in result["rows"]:
        if r.get("section") != "lens" or r.get("time_s") is None:
            continue
        key = r["contender"] + ("" if r.get("alphas") in ("1", "matmul only") else "+renyi")
        rows.append(
            {
                "shape": _shape_label(r["shape"]),
                "key": key,
                "contender": _CONTENDER_TEXT.get(key, key),
                "time_s": float(r["time_s"]),
                "vs_limit": float(r["vs_limit"]),
                "gflop_per_s": float(r.get("gflop_per_s") or 0.0),
            }
        )
    return pd.DataFrame(rows, columns=["shape", "key", "contender", "time_s", "vs_limit", "gflop_per_s"])


def e2e_frame(result: dict[str, Any]) -> pd.DataFrame:
    """End-to-end rows: ``T``, ``key``, ``contender`` (readable), ``time_s`` (all N prompts),
    ``per_prompt_s``, ``speedup_vs_reference`` (None where not defined), ``scaled`` (the
    reference was timed on fewer prompts and scaled to N)."""
    rows = []
    for r in result["rows"]:
        if r.get("section") != "e2e" or r.get("time_s") is None or "T" not in r:
            continue
        n = (r.get("shape") or {}).get("n_prompts")
        rows.append(
            {
                "T": int(r["T"]),
                "key": r["contender"],
                "contender": _E2E_TEXT.get(r["contender"], r["contender"]),
                "time_s": float(r["time_s"]),
                "per_prompt_s": float(r["per_prompt_s"]) if r.get("per_prompt_s") is not None else (float(r["time_s"]) / n if n else None),
                "speedup_vs_reference": r.get("speedup_vs_reference"),
                "scaled": bool(r.get("scaled_to_prompts")),
            }
        )
    return pd.DataFrame(rows, columns=["T", "key", "contender", "time_s", "per_prompt_s", "speedup_vs_reference", "scaled"])


def memory_frame(result: dict[str, Any]) -> pd.DataFrame:
    """Memory probes: ``contender``, ``rows``, ``vocab``, ``extra_mb`` (peak beyond the
    inputs), ``logits_mb`` (what the fp32 logits alone would take), ``method``."""
    rows = []
    for r in result["rows"]:
        if r.get("section") != "memory" or r.get("extra_mb") is None:
            continue
        key = r["contender"] + ("" if r.get("alphas") in ("1", None) else "+renyi")
        rows.append(
            {
                "contender": _CONTENDER_TEXT.get(key, key),
                "rows": int(r["shape"]["rows"]),
                "vocab": int(r["shape"]["vocab"]),
                "extra_mb": float(r["extra_mb"]),
                "logits_mb": float(r.get("logits_mb") or 0.0),
                "method": r.get("method", ""),
            }
        )
    return pd.DataFrame(rows, columns=["contender", "rows", "vocab", "extra_mb", "logits_mb", "method"])


# --------------------------------------------------------------------------------------------
# section real: the bf16 lens path on real models (elens_utils.bench.real)

_REAL_LENS_TEXT = {
    "lens_bf16": "ours, bf16 path",
    "matmul_bf16": "bare matmul, bf16",
    "lens_fp32": "ours, fp32",
    "matmul_fp32": "bare matmul, fp32",
}
_REAL_PROFILE_TEXT = {
    "ours_bf16": "ours, bf16 lens",
    "ours_fp32": "ours, fp32 lens",
    "limit": "limit: plain generation + bare bf16 lens matmul",
    "reference": "paper's reference algorithm",
    "naive_hidden_states": "naive: output_hidden_states, whole logits",
}
_REAL_COLOURS = {"ours_bf16": "#d95f02", "ours_fp32": "#f1a340", "limit": "#555555", "reference": "#1b6ca8",
                 "naive_hidden_states": "#7b3294"}  # fmt: skip


class RealFrames(NamedTuple):
    """The section ``real`` as tidy frames (each empty where the result has none)."""

    error: pd.DataFrame
    lens: pd.DataFrame
    profiles: pd.DataFrame


def _real_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in result.get("rows", []) if r.get("section") == "real"]


def model_title(name: str) -> str:
    """A real model's own name (``real/gemma3-270m`` -> its title); other names as they are."""
    from elens_utils.models.real_models import REAL_MODELS

    model = REAL_MODELS.get(name)
    return model.title if model is not None else name


def _alpha(order: Any) -> float:
    return math.inf if order == "inf" else float(order)


def real_error_frame(result: dict[str, Any]) -> pd.DataFrame:
    """The bf16 path's error against float64, one row per model, precision, order and statistic:
    ``model`` (its title), ``precision`` (``bf16``; ``fp32`` for the fp32 path's largest error
    over all orders, ``order`` "all orders"), ``order`` (readable), ``alpha`` (NaN for fp32),
    ``stat`` (``max``, ``mean``, ``p99``), ``err_nats``, ``rows`` (block outputs measured)."""
    from elens_utils.viz.charts import order_label

    out = []
    for r in _real_rows(result):
        if r.get("contender") != "bf16 error" or not isinstance(r.get("orders"), list):
            continue
        model, n = model_title(r.get("model") or r["shape"]["label"]), int(r["shape"]["rows"])
        for i, order in enumerate(r["orders"]):
            a = _alpha(order)
            for stat in ("max", "mean", "p99"):
                values = r.get(f"{stat}_err_nats")
                if values is not None:
                    out.append({"model": model, "precision": "bf16", "order": order_label(a), "alpha": a,
                                "stat": stat, "err_nats": float(values[i]), "rows": n})  # fmt: skip
        if r.get("fp32_max_err_nats") is not None:
            out.append({"model": model, "precision": "fp32", "order": "all orders", "alpha": math.nan,
                        "stat": "max", "err_nats": float(r["fp32_max_err_nats"]), "rows": n})  # fmt: skip
    return pd.DataFrame(out, columns=["model", "precision", "order", "alpha", "stat", "err_nats", "rows"])


def real_lens_frame(result: dict[str, Any]) -> pd.DataFrame:
    """The lens stage on the real model's unembedding: ``key``, ``contender`` (readable),
    ``precision``, ``time_s``, ``gflop_per_s`` (2 M d V / time), ``vs_matmul`` (time / the bare
    product in the same precision), ``vs_lens_fp32`` (time / the fp32 lens), ``rows``, ``d``,
    ``vocab``."""
    out = []
    for r in _real_rows(result):
        if r.get("contender") not in _REAL_LENS_TEXT or r.get("time_s") is None or "vocab" not in (r.get("shape") or {}):
            continue
        shape = r["shape"]
        out.append({"key": r["contender"], "contender": _REAL_LENS_TEXT[r["contender"]],
                    "precision": r["contender"].split("_")[1], "time_s": float(r["time_s"]),
                    "gflop_per_s": float(r.get("gflops") or 0.0), "rows": int(shape["rows"]),
                    "d": int(shape["d"]), "vocab": int(shape["vocab"])})  # fmt: skip
    frame = pd.DataFrame(out, columns=["key", "contender", "precision", "time_s", "gflop_per_s", "rows", "d", "vocab"])
    times = dict(zip(frame["key"], frame["time_s"], strict=True))
    frame["vs_matmul"] = [t / times[f"matmul_{p}"] if f"matmul_{p}" in times else math.nan
                          for t, p in zip(frame["time_s"], frame["precision"], strict=True)]  # fmt: skip
    frame["vs_lens_fp32"] = frame["time_s"] / times["lens_fp32"] if "lens_fp32" in times else math.nan
    return frame[["key", "contender", "precision", "time_s", "gflop_per_s", "vs_matmul", "vs_lens_fp32", "rows", "d", "vocab"]]


def real_profile_frame(result: dict[str, Any]) -> pd.DataFrame:
    """Whole profiles of N prompts x T tokens on the real model: ``key``, ``contender``
    (readable), ``model``, ``N``, ``T``, ``L``, ``time_s`` (all N prompts), ``tokens_per_s``
    (N T / time), ``vs_ours_bf16`` and ``vs_limit`` (time / theirs), ``peak_extra_mb`` (NaN where
    not measured), ``timed_prompts`` and ``scaled`` (timed on fewer prompts and scaled to N)."""
    out = []
    for r in _real_rows(result):
        shape = r.get("shape") or {}
        if r.get("contender") not in _REAL_PROFILE_TEXT or r.get("time_s") is None or "N" not in shape:
            continue
        n, t = int(shape["N"]), int(shape["T"])
        timed = int(r.get("timed_prompts") or n)
        peak = r.get("peak_extra_mb")
        out.append({"key": r["contender"], "contender": _REAL_PROFILE_TEXT[r["contender"]],
                    "model": model_title(shape.get("label", "")), "N": n, "T": t, "L": int(shape.get("L", 0)),
                    "time_s": float(r["time_s"]), "tokens_per_s": n * t / float(r["time_s"]),
                    "peak_extra_mb": math.nan if peak is None else float(peak),
                    "timed_prompts": timed, "scaled": timed < n})  # fmt: skip
    cols = ["key", "contender", "model", "N", "T", "L", "time_s", "tokens_per_s", "vs_ours_bf16", "vs_limit",
            "peak_extra_mb", "timed_prompts", "scaled"]  # fmt: skip
    frame = pd.DataFrame(out, columns=[c for c in cols if not c.startswith("vs_")])
    times = dict(zip(frame["key"], frame["time_s"], strict=True))
    for col, key in (("vs_ours_bf16", "ours_bf16"), ("vs_limit", "limit")):
        frame[col] = frame["time_s"] / times[key] if key in times else math.nan
    return frame[cols]


def real_frames(result: dict[str, Any]) -> RealFrames:
    """The section ``real`` as :class:`RealFrames` (``error``, ``lens``, ``profiles``)."""
    return RealFrames(real_error_frame(result), real_lens_frame(result), real_profile_frame(result))


def real_section_note(result: dict[str, Any]) -> str | None:
    """Why ``result`` shows no real-model rows (a sentence for the page), or None when it has them."""
    rows = _real_rows(result)
    if not rows:
        return (
            "This run has no real-model section: it was run without the section `real` (or before "
            "it existed). `python -m elens_utils bench` runs it when the real models of `make setup` "
            "are installed."
        )
    skipped = [r["skipped"] for r in rows if r.get("skipped")]
    frames = real_frames(result)
    if all(f.empty for f in frames):
        if skipped:
            return f"This run's real-model section was skipped: {'; '.join(skipped)}."
        return "This run's real-model rows are of an older layout than this page reads: run the benchmark again."
    return None


def _need(frame: pd.DataFrame, what: str) -> None:
    if frame.empty:
        raise ElensError(f"The benchmark result has no {what} rows: run the benchmark with that section.")


def lens_chart(frame: pd.DataFrame, title: str | None = None) -> alt.FacetChart:
    """Bars of time / bare matmul per contender, one panel per shape; the dashed rule at 1 is
    the hardware limit. Hover a bar for seconds and GFLOP/s."""
    _need(frame, "lens")
    order = frame.sort_values("vs_limit")["contender"].drop_duplicates().tolist()
    f = frame.assign(limit=1.0)
    base = alt.Chart().encode(
        y=alt.Y("contender:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X("vs_limit:Q", title="time / bare matmul time (1 = the hardware limit)", scale=alt.Scale(zero=True)),
        tooltip=tooltips(
            "shape:N", "contender:N", ("time_s:Q", "time (s)", ".3f"), ("vs_limit:Q", "× bare matmul", ".2f"),
            ("gflop_per_s:Q", "GFLOP/s", ".0f"),
        ),
    )
    bars = base.mark_bar(height=12).encode(
        color=alt.condition(alt.datum.key == "ours", alt.value("#d95f02"), alt.value("#9a9a9a"))
    )
    text = base.mark_text(align="left", dx=4, fontSize=11).encode(text=alt.Text("vs_limit:Q", format=".2f"))
    rule = alt.Chart().mark_rule(strokeDash=[4, 3], color="#333").encode(x="limit:Q")
    return (
        alt.layer(bars, text, rule, data=f)
        .properties(width=420, height=alt.Step(18))
        .facet(
            row=alt.Row(
                "shape:N", title=None,
                header=alt.Header(labelOrient="top", labelAnchor="start", labelAngle=0, labelFontSize=12, labelFontWeight="bold"),
            )
        )
        .resolve_scale(y="independent")
        .properties(title=alt.Title(title or "The lens stage against the bare unembedding matmul",
                                    subtitle="orange: ours; hover a bar for seconds and GFLOP/s"))
    )  # fmt: skip


def e2e_chart(frame: pd.DataFrame, title: str | None = None) -> alt.LayerChart:
    """Time of whole profiles against T, log-log, one line per contender (hover for numbers)."""
    _need(frame, "end-to-end")
    keep = frame[frame["key"].isin(["ours", "reference", "limit", "plain_generation", "transformer_lens", "deferred_lens"])]
    keys = [k for k in _E2E_TEXT if k in set(keep["key"])]
    colours = {"ours": "#d95f02", "reference": "#1b6ca8", "limit": "#555555", "plain_generation": "#aaaaaa",
               "transformer_lens": "#7b3294", "deferred_lens": "#1b9e77"}  # fmt: skip
    enc_color = alt.Color(
        "contender:N",
        sort=[_E2E_TEXT[k] for k in keys],
        scale=alt.Scale(domain=[_E2E_TEXT[k] for k in keys], range=[colours[k] for k in keys]),
        legend=alt.Legend(orient="bottom", columns=2, labelLimit=320, title=None),
    )
    base = alt.Chart(keep).encode(
        x=alt.X("T:Q", title="generated tokens T (log scale)", scale=alt.Scale(type="log", base=2), axis=alt.Axis(values=sorted(keep["T"].unique().tolist()))),
        y=alt.Y("time_s:Q", title="seconds for all prompts (log scale)", scale=alt.Scale(type="log")),
        color=enc_color,
    )
    tooltip = tooltips(
        "contender:N", "T:Q", ("time_s:Q", "time (s)", ".2f"), ("per_prompt_s:Q", "per prompt (s)", ".3f"),
        ("speedup_vs_reference:Q", "reference / this", ".1f"), ("scaled:N", "scaled from fewer prompts"),
    )
    return alt.layer(base.mark_line(), base.mark_point(size=50).encode(tooltip=tooltip)).properties(
        width=520, height=300,
        title=alt.Title(title or "Whole profiles: time against the number of generated tokens",
                        subtitle="log-log: a slope of 1 is linear growth in T, 2 quadratic"),
    )  # fmt: skip


def memory_chart(frame: pd.DataFrame, title: str | None = None) -> alt.LayerChart:
    """Peak memory beyond the inputs per probe, on a log scale (a dot on a stem from 1 MB);
    hover for the size the fp32 logits alone would take."""
    _need(frame, "memory")
    f = frame.assign(probe=frame["contender"] + ", M = " + frame["rows"].astype(str), floor=1.0)
    f = f.assign(ours=f["contender"].str.startswith("ours"))
    colour = alt.Color("ours:N", scale=alt.Scale(domain=[True, False], range=["#d95f02", "#9a9a9a"]), legend=None)
    base = alt.Chart(f).encode(
        y=alt.Y("probe:N", sort=alt.EncodingSortField("extra_mb"), title=None, axis=alt.Axis(labelLimit=300)),
        tooltip=tooltips(
            "probe:N", ("extra_mb:Q", "extra MB", ".1f"), ("logits_mb:Q", "fp32 logits would take (MB)", ".0f"),
            "method:N",
        ),
    )
    x = alt.X("extra_mb:Q", title="peak memory beyond the inputs (MB, log scale)", scale=alt.Scale(type="log", domainMin=1))
    stem = base.mark_rule(strokeWidth=3).encode(x=x, x2="floor:Q", color=colour)
    dot = base.mark_point(size=90, filled=True, opacity=1).encode(x=x, color=colour)
    text = base.mark_text(align="left", dx=8, fontSize=11).encode(x=x, text=alt.Text("extra_mb:Q", format=",.0f"))
    return alt.layer(stem, dot, text).properties(
        width=420, height=alt.Step(26), title=title or "Peak memory of the lens stage beyond its inputs"
    )


def real_profile_chart(frame: pd.DataFrame, title: str | None = None) -> alt.LayerChart:
    """Time of whole profiles on the real model per contender, log scale (a dot on a stem);
    each label gives the time and its ratio to ours in bf16; hover for tokens per second, the
    ratio to the limit and the peak memory."""
    _need(frame, "real-model profile")
    f = frame.copy()
    floor = 10.0 ** math.floor(math.log10(f["time_s"].min()))
    f["floor"] = floor
    f["label"] = [f"{t:.2f} s" + ("" if math.isnan(v) or k == "ours_bf16" else f", {v:.2f}×")
                  for k, t, v in zip(f["key"], f["time_s"], f["vs_ours_bf16"], strict=True)]  # fmt: skip
    f["peak_extra_mb"] = f["peak_extra_mb"].astype(float)
    keys = [k for k in _REAL_PROFILE_TEXT if k in set(f["key"])]
    colour = alt.Color("key:N", scale=alt.Scale(domain=keys, range=[_REAL_COLOURS[k] for k in keys]), legend=None)
    base = alt.Chart(f).encode(
        y=alt.Y("contender:N", sort=alt.EncodingSortField("time_s"), title=None, axis=alt.Axis(labelLimit=330)),
        tooltip=tooltips(
            "contender:N", ("time_s:Q", "time (s)", ".2f"), ("tokens_per_s:Q", "generated tokens per s", ".1f"),
            ("vs_ours_bf16:Q", "× ours (bf16)", ".2f"), ("vs_limit:Q", "× the limit", ".2f"),
            ("peak_extra_mb:Q", "peak memory growth (MB)", ".0f"), ("timed_prompts:Q", "prompts timed"),
        ),
    )
    top = float(f["time_s"].max()) * 8  # room for the labels right of the largest dot
    x = alt.X("time_s:Q", title="seconds for all prompts (log scale)",
              scale=alt.Scale(type="log", domainMin=floor, domainMax=top))  # fmt: skip
    stem = base.mark_rule(strokeWidth=3).encode(x=x, x2="floor:Q", color=colour)
    dot = base.mark_point(size=90, filled=True, opacity=1).encode(x=x, color=colour)
    text = base.mark_text(align="left", dx=8, fontSize=11).encode(x=x, text="label:N")
    first = f.iloc[0]
    scaled = f[f["scaled"]]
    note = "; ".join(
        ["labels: seconds, and × the time of ours in bf16"]
        + ([f"{' and '.join(scaled['key'].map(lambda k: k.split('_')[0]))} timed on "
            f"{int(scaled['timed_prompts'].min())} of {int(first['N'])} prompts and scaled"] if len(scaled) else [])
    )  # fmt: skip
    return alt.layer(stem, dot, text).properties(
        width=300, height=alt.Step(26),
        title=alt.Title(title or f"Whole profiles of {first['model']}: {int(first['N'])} prompts × {int(first['T'])} "
                                 f"tokens, {int(first['L'])} blocks", subtitle=note),
    )  # fmt: skip


def real_error_chart(frame: pd.DataFrame, target: float | None = 0.02, title: str | None = None) -> alt.FacetChart:
    """The lens's error against float64 per model and order: the largest (dark) and mean (light)
    ``|H - H_float64|`` of the bf16 path joined by a line, the fp32 path's largest in grey, on a
    log scale; the dashed red rule is ``target`` for the largest (None: no rule)."""
    _need(frame, "real-model error")
    f = frame[frame["stat"].isin(["max", "mean"]) & (frame["err_nats"] > 0)].copy()
    p99 = frame[frame["stat"] == "p99"].set_index(["model", "precision", "order"])["err_nats"]
    f["p99"] = [p99.get((m, p, o), math.nan) for m, p, o in zip(f["model"], f["precision"], f["order"], strict=True)]
    f["line"] = f["precision"] + ", " + f["order"]
    f["what"] = f["precision"] + " " + f["stat"]
    f["target"] = target if target is not None else math.nan
    order = f["line"].drop_duplicates().tolist()
    whats = [w for w in ("bf16 max", "bf16 mean", "fp32 max") if w in set(f["what"])]
    shades = {"bf16 max": "#d95f02", "bf16 mean": "#f4b183", "fp32 max": "#777777"}
    labels = {"bf16 max": "bf16, largest", "bf16 mean": "bf16, mean", "fp32 max": "fp32, largest"}
    f["what"] = f["what"].map(labels)
    x_title = "|H - H_float64| (nats, log scale)"
    x = alt.X("err_nats:Q", title=x_title, scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"))
    y = alt.Y("line:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
    base = alt.Chart().encode(y=y)
    link = base.mark_rule(color="#cccccc", strokeWidth=2).encode(x=alt.X("min(err_nats):Q", scale=alt.Scale(type="log"), title=x_title), x2="max(err_nats):Q")
    dots = base.mark_point(size=70, filled=True, opacity=1).encode(
        x=x,
        color=alt.Color("what:N", sort=[labels[w] for w in whats],
                        scale=alt.Scale(domain=[labels[w] for w in whats], range=[shades[w] for w in whats]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=tooltips(
            "model:N", ("line:N", "path, order"), ("what:N", "error"), ("err_nats:Q", "nats", ".3g"),
            ("p99:Q", "99th percentile (nats)", ".3g"), ("rows:Q", "block outputs measured"),
        ),
    )  # fmt: skip
    layers = [link, dots]
    if target is not None:
        layers.append(alt.Chart().mark_rule(strokeDash=[4, 3], color="#c0392b").encode(x="target:Q"))
    subtitle = "largest and mean over every block output of a few prompts"
    if target is not None:
        subtitle += f"; dashed red: the target for the largest, {target:g} nats"
    return (
        alt.layer(*layers, data=f)
        .properties(width=340, height=alt.Step(16))
        .facet(
            row=alt.Row(
                "model:N", title=None,
                header=alt.Header(labelOrient="top", labelAnchor="start", labelAngle=0, labelFontSize=12, labelFontWeight="bold"),
            )
        )
        .properties(title=alt.Title(title or "Error of the lens against float64 on real models' block outputs",
                                    subtitle=subtitle))
    )  # fmt: skip


def model_bf16_frame(result: dict[str, Any]) -> pd.DataFrame:
    """One row per model of the ``model_bf16`` section (:mod:`elens_utils.bench.forward`):
    ``model``, ``prompts``, ``steps``, ``seconds_fp32``, ``seconds_bf16``, ``speedup``,
    ``identical_streams``, ``step1_max_abs_dh_nats``, ``step1_mean_abs_dh_nats``,
    ``mean_profile_max_abs_diff_nats``, ``lens_step1_max_abs_dh_nats``; empty when the run has
    none."""
    cols = [
        "model", "prompts", "steps", "seconds_fp32", "seconds_bf16", "speedup", "identical_streams",
        "step1_max_abs_dh_nats", "step1_mean_abs_dh_nats", "mean_profile_max_abs_diff_nats",
        "lens_step1_max_abs_dh_nats",
    ]  # fmt: skip
    rows = [r for r in result.get("rows", []) if r.get("section") == "model_bf16" and "speedup" in r]
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


def model_bf16_verdict(result: dict[str, Any]) -> str:
    """What the ``model_bf16`` rows support, in one paragraph of Markdown.

    The rule: running the model in bf16 is worth it for the book's figures only if it moves the
    first-token entropies no more than the bf16 lens already does on the same prompts
    (``lens_step1_max_abs_dh_nats``, the error the book states); otherwise it is a
    speed-for-accuracy trade left to the reader (``dtype``).
    """
    frame = model_bf16_frame(result)
    if frame.empty:
        return (
            "This run has no `model_bf16` rows: `python -m elens_utils bench --quick --sections model_bf16` "
            "measures the models' own forward pass in bf16."
        )
    lo, hi = frame["speedup"].min(), frame["speedup"].max()
    speed = f"{lo:.2f}x" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}x"
    worst = frame.loc[frame["step1_max_abs_dh_nats"].idxmax()]
    changed = sorted({f"{1 - v:.0%}" for v in (frame["identical_streams"].max(), frame["identical_streams"].min())})
    text = (
        f"With the model itself in bf16 (blocks, KV cache and head; the lens in the same precision), "
        f"whole profiles ran {speed} faster ({', '.join(f'{model_title(m)} {s:.2f}x' for m, s in zip(frame['model'], frame['speedup']))}; "
        f"{int(frame['prompts'].iloc[0])} natural prompts x {int(frame['steps'].iloc[0])} greedy tokens). "
        f"At the first generated token, where both read the same context, the block entropies moved by up to "
        f"{worst['step1_max_abs_dh_nats']:.2f} nats ({model_title(worst['model'])}; mean "
        f"{frame['step1_mean_abs_dh_nats'].max():.3f}), and {'-'.join(changed)} of the prompts "
        f"generated other tokens somewhere in their {int(frame['steps'].iloc[0])}."
    )
    lens = frame["lens_step1_max_abs_dh_nats"].dropna()
    if lens.empty or not (lens > 0).any():
        return text + " This run did not measure what the bf16 lens alone moves, to compare with."
    lens_max_err_nats = float(lens.max())
    ratio = worst["step1_max_abs_dh_nats"] / lens_max_err_nats
    if ratio > 1:
        return text + (
            f" That is {ratio:.0f} times what the bf16 lens alone moves on the same prompts (up to "
            f"{lens_max_err_nats:.3f} nats), and it "
            "changes which tokens are generated: the book keeps the models in float32 on the CPU "
            "(`dtype: auto`), and `dtype: bfloat16` is there for a reader who trades that for speed."
        )
    return text + (
        f" That is within what the bf16 lens alone moves on the same prompts ({lens_max_err_nats:.3f} nats): "
        "on this machine the bf16 model costs the figures no more than the bf16 lens does."
    )


def bench_findings(res: dict[str, Any]) -> list[str]:
    """Appendix C's closing bullets, from a benchmark result (:func:`load_result`): the lens
    stage and the end-to-end ratios, the real models' bf16 error and speed, what
    ``precision="auto"`` picks on this CPU, the targets met, missed and not measured, how the
    reference is timed, a caution when the cores were shared, and the GPU section (its Triton
    kernel against the bare cuBLAS product, or why it has no measurements)."""
    t = res["targets"]

    def fmt(key: str, digits: int = 2) -> str:
        v = res.get(key)
        return "n/a" if v is None else f"{v:.{digits}f}"

    def val(key: str) -> str:
        return format_value(res.get(key), t.get(key, {}).get("target", ""))

    def target(key: str) -> str:
        if key not in t or t[key]["met"] is None:
            return ""
        return f" (target {t[key]['target']}: {'met' if t[key]['met'] else 'missed'})"

    def listed(keys: list[str]) -> str:
        return ", ".join(f"`{k}` = {format_value(t[k]['value'], t[k]['target'])} (target {t[k]['target']})"
                         for k in keys)

    lines = []
    hs = res.get("lens_headline_shape")
    if hs and res.get("lens_vs_matmul") is not None:
        lines.append(
            f"- **Lens stage** (M = {hs['rows']}, d = {hs['d']}, V = {hs['vocab']}): "
            f"ours takes {fmt('lens_vs_matmul')}x the bare matmul with Shannon alone and "
            f"{fmt('lens_renyi_vs_matmul')}x with three Rényi orders in the same pass, and "
            f"{fmt('lens_vs_naive')}x the time of the naive way, using {fmt('peak_extra_mb', 1)} MB beyond "
            "its inputs at M = 16384, V = 50257."
        )
    if res.get("e2e_speedup_vs_reference_T32") is not None:
        lines.append(
            f"- **End to end**: {fmt('e2e_speedup_vs_reference_T32', 1)}x faster than the reference at T = 32 "
            f"and {fmt('e2e_speedup_vs_reference_T128', 1)}x at T = 128. Our time grows as T^{fmt('e2e_time_exponent')} "
            f"(the reference as T^{fmt('e2e_time_exponent_reference')}), and at T = 128 it is "
            f"{fmt('e2e_vs_limit')}x the limit."
        )
    real_note = real_section_note(res)
    if real_note:
        lines.append(f"- **Real models**: {real_note}")
    else:
        err, rlens, prof = real_frames(res)
        if not err.empty:
            n_rows = err.drop_duplicates("model").set_index("model")["rows"]
            orders = ", ".join(err[err.precision == "bf16"]["order"].drop_duplicates())
            lines.append(
                "- **bf16 error** on " + " and ".join(f"{n} block outputs of {m}" for m, n in n_rows.items())
                + f", over {orders}: the largest is {val('lens_bf16_max_err_nats')} nats"
                + target("lens_bf16_max_err_nats") + f", the mean {val('lens_bf16_mean_err_nats')} nats; "
                f"the fp32 path's largest is {val('lens_fp32_max_err_nats')} nats."
            )
        if not rlens.empty and res.get("lens_bf16_vs_matmul_bf16") is not None:
            r0 = rlens.iloc[0]
            lines.append(
                f"- **Real lens stage** (M = {r0['rows']}, d = {r0['d']}, V = {r0['vocab']}): the bare product is "
                f"{val('matmul_bf16_speedup')}x faster in bf16 than in fp32; our bf16 lens takes "
                f"{val('lens_bf16_vs_matmul_bf16')}x the bare bf16 product" + target("lens_bf16_vs_matmul_bf16")
                + f" and our fp32 lens {val('lens_fp32_vs_matmul_fp32')}x the bare fp32 one, so the bf16 lens is "
                f"{val('lens_bf16_speedup_vs_fp32')}x faster than the fp32 lens."
            )
        if not prof.empty and res.get("real_e2e_speedup_vs_fp32") is not None:
            p0 = prof.iloc[0]
            peaks = prof.set_index("key")["peak_extra_mb"]
            peak_text = ", ".join(
                f"{name} {peaks[k]:.0f} MB" for k, name in
                (("ours_bf16", "ours in bf16"), ("ours_fp32", "in fp32"), ("reference", "the reference"),
                 ("naive_hidden_states", "naive"))
                if k in peaks.index and not math.isnan(peaks[k])
            )
            lines.append(
                f"- **Whole profiles of {p0['model']}** ({p0['N']} prompts × {p0['T']} tokens, {p0['L']} blocks): "
                f"bf16 is {val('real_e2e_speedup_vs_fp32')}x faster than fp32" + target("real_e2e_speedup_vs_fp32")
                + f", {val('real_tokens_per_s_bf16')} against {val('real_tokens_per_s_fp32')} generated tokens per "
                f"second; in bf16 it takes {val('real_e2e_vs_limit')}x the limit" + target("real_e2e_vs_limit")
                + f", and it is {val('real_e2e_speedup_vs_reference')}x faster than the paper's reference algorithm "
                f"and {val('real_e2e_speedup_vs_naive')}x faster than the naive loop (both timed on "
                f"{prof['timed_prompts'].min()} prompt{'s' if prof['timed_prompts'].min() > 1 else ''} and scaled)."
                + (f" Growth of the process's peak memory (a lower bound): {peak_text}." if peak_text else "")
            )
        if res.get("cpu_has_bf16") is not None:
            has = res["cpu_has_bf16"]
            probe = res.get("auto_bf16_speedup_probe")
            auto = "bf16" if has and probe is not None and probe >= AUTO_MIN_SPEEDUP else "fp32"
            lines.append(
                f"- **This CPU** {'reports' if has else 'does not report'} bf16 dot-product instructions"
                + (f"; the probe of `precision=\"auto\"` measured the bf16 product {val('auto_bf16_speedup_probe')}x "
                   f"faster, so `auto` would choose {auto} here" if probe is not None else "")
                + f". The default parameter set gives the chapters `precision: auto`, so on such a machine the real "
                f"models' lenses run in {auto} (the zoo's small lenses stay fp32 whatever the machine)"
                + (f"; in this run bf16 made the profiles {val('real_e2e_speedup_vs_fp32')}x faster at a largest "
                   f"error of {val('lens_bf16_max_err_nats')} nats."
                   if res.get("real_e2e_speedup_vs_fp32") is not None and res.get("lens_bf16_max_err_nats") is not None
                   else ".")
            )
    met = [k for k, v in t.items() if v["met"] is True]
    missed = [k for k, v in t.items() if v["met"] is False]
    unmeasured = [k for k, v in t.items() if v["met"] is None]
    lines.append(
        "- **Targets**: "
        + ("; ".join(part for part in (
            f"met: {listed(met)}" if met else "",
            f"missed: {listed(missed)}" if missed else "none missed",
            ("not measured in this run: " + ", ".join(f"`{k}`" for k in unmeasured)) if unmeasured else "",
        ) if part))
        + "."
    )
    ref_rows = [r for r in res["rows"] if r.get("section") == "e2e" and r.get("contender") == "reference" and "timed_prompts" in r]
    if ref_rows:
        last = max(ref_rows, key=lambda r: r["T"])
        n_runs = len(last.get("times_s", [])) or 1
        lines.append(
            f"- **How the reference is timed**: at T = {last['T']} on {last['timed_prompts']} of the {last['scaled_to_prompts']} "
            f"prompts, {n_runs} time{'s' if n_runs > 1 else ''}, and scaled to all of them (one prompt alone takes seconds to "
            "minutes). The speed-up at the largest T is therefore the least precise ratio: repeat the run to see its spread."
        )
    if res.get("contended"):
        lines.append("- **Caution**: other work shared the cores during this run (median CPU stall "
                     f"{res['cpu_stall_median']:.2f}); the ratios are less reliable.")
    gpu_rows = [r for r in res["rows"] if r.get("section") == "gpu"]
    gpu_timed = {(r["shape"].get("label", ""), r["shape"]["rows"], r["contender"]): r["time_s"]
                 for r in gpu_rows if r.get("time_s") is not None}
    gpu_ratios = [
        f"{label} M = {rows}: {gpu_timed[(label, rows, 'ours_triton')] / t_cublas:.2f}x"
        for (label, rows, who), t_cublas in gpu_timed.items()
        if who == "cublas_matmul" and (label, rows, "ours_triton") in gpu_timed
    ]
    if gpu_ratios:
        lines.append("- **GPU** (bf16): the Triton lens kernel takes " + "; ".join(gpu_ratios)
                     + " the time of the bare cuBLAS matmul.")
    elif gpu_rows:
        lines.append("- **GPU**: the section ran but timed nothing (its rows carry the errors).")
    else:
        device = res.get("machine", {}).get("device", "?")
        lines.append(f"- **GPU**: not measured: no GPU was available for this run (device `{device}`), so the GPU "
                     "section (the Triton lens kernel against cuBLAS and our torch path at Gemma-2-2B and Llama-3-8B "
                     "shapes) has no measurements in this file.")
    return lines
