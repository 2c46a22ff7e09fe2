"""The benchmark's JSON as tidy frames and charts: what the book's performance appendix shows.

:func:`load_result` reads a file written by ``python -m elens_utils bench --out FILE``; the frames
turn its ``rows`` into one row per mark, and the charts draw them with the book's theme:

* :func:`headline_frame`: the headline ratios beside their targets (met or not);
* :func:`lens_frame` / :func:`lens_chart`: the lens stage, each contender's time relative to the
  bare unembedding matmul (the hardware limit) at every shape;
* :func:`e2e_frame` / :func:`e2e_chart`: whole profiles against the number of generated tokens T,
  ours beside the paper's reference algorithm and the limit, on log-log axes (a slope of 1 is
  linear growth, 2 quadratic);
* :func:`memory_frame` / :func:`memory_chart`: the lens stage's peak memory beyond its inputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from .errors import ElensError

__all__ = [
    "e2e_chart",
    "e2e_frame",
    "headline_frame",
    "lens_chart",
    "lens_frame",
    "load_result",
    "machine_summary",
    "memory_chart",
    "memory_frame",
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
        tooltip=[
            alt.Tooltip("shape:N"),
            alt.Tooltip("contender:N"),
            alt.Tooltip("time_s:Q", title="time (s)", format=".3f"),
            alt.Tooltip("vs_limit:Q", title="× bare matmul", format=".2f"),
            alt.Tooltip("gflop_per_s:Q", title="GFLOP/s", format=".0f"),
        ],
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
    tooltip = [
        alt.Tooltip("contender:N"),
        alt.Tooltip("T:Q"),
        alt.Tooltip("time_s:Q", title="time (s)", format=".2f"),
        alt.Tooltip("per_prompt_s:Q", title="per prompt (s)", format=".3f"),
        alt.Tooltip("speedup_vs_reference:Q", title="reference / this", format=".1f"),
        alt.Tooltip("scaled:N", title="scaled from fewer prompts"),
    ]
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
        tooltip=[
            alt.Tooltip("probe:N"),
            alt.Tooltip("extra_mb:Q", title="extra MB", format=".1f"),
            alt.Tooltip("logits_mb:Q", title="fp32 logits would take (MB)", format=".0f"),
            alt.Tooltip("method:N"),
        ],
    )
    x = alt.X("extra_mb:Q", title="peak memory beyond the inputs (MB, log scale)", scale=alt.Scale(type="log", domainMin=1))
    stem = base.mark_rule(strokeWidth=3).encode(x=x, x2="floor:Q", color=colour)
    dot = base.mark_point(size=90, filled=True, opacity=1).encode(x=x, color=colour)
    text = base.mark_text(align="left", dx=8, fontSize=11).encode(x=x, text=alt.Text("extra_mb:Q", format=",.0f"))
    return alt.layer(stem, dot, text).properties(
        width=420, height=alt.Step(26), title=title or "Peak memory of the lens stage beyond its inputs"
    )
