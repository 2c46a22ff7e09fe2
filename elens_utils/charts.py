"""Charts of the Entropy-Lens book: tidy frames, altair charts, and an offline renderer.

Three layers, each usable alone:

* **Frames** turn library results into tidy :class:`pandas.DataFrame` s, one row per mark:
  :func:`lens_frame` (a :class:`~elens_utils.lens.PromptLens`: one row per position x block),
  :func:`curve_frame` (one position's entropy per block and order, with the change dH between
  consecutive blocks) and :func:`depth_frame` (profiles averaged per model against relative
  depth).
* **Charts** take those frames and return altair charts: :func:`profile_heatmap`,
  :func:`shannon_vs_renyi`, :func:`expansion_pruning`, :func:`profiles_by_depth`. They all use
  the book's theme (:data:`THEME`, applied when a chart is rendered) and carry tooltips.
* **Rendering**: :func:`show` displays a chart in a notebook. Under the chapter runner
  (``ELENS_CHART_MODE=book``) it emits :func:`to_html`: a small HTML snippet (a ``div``, the
  Vega-Lite spec as JSON, and a self-contained script that waits for the page to load) that
  draws with ``vegaEmbed`` from the book's single local copy of the Vega bundle (see
  :func:`write_vega_bundle`; the book's Sphinx extension adds it to pages that hold a chart).
  Nothing is fetched from the network and no chart library is copied into a page. Elsewhere
  (plain Jupyter) it displays the altair chart itself. ``static=True`` (or
  ``ELENS_CHART_MODE=svg``) draws an SVG with vl-convert instead.

:func:`parameters_table` shows the parameters a chapter ran with as a small table.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import altair as alt
import numpy as np
import pandas as pd

from .atomic import atomic_file
from .errors import ElensError

if TYPE_CHECKING:
    from .lens import PromptLens
    from .profiles import Profiles

__all__ = [
    "CHART_CLASS",
    "THEME",
    "VEGA_BUNDLE",
    "ParametersTable",
    "chart_spec",
    "curve_frame",
    "depth_frame",
    "depth_summary",
    "expansion_pruning",
    "lens_frame",
    "order_label",
    "parameters_table",
    "profile_heatmap",
    "profiles_by_depth",
    "shannon_vs_renyi",
    "show",
    "summary_table",
    "to_html",
    "to_svg",
    "write_vega_bundle",
]

#: CSS class of every chart container that :func:`to_html` emits (the book's tests look for it).
CHART_CLASS = "elens-chart"
#: Where the Vega bundle lives, relative to the book's static directory (``_static/``).
VEGA_BUNDLE = "elens/vega-bundle.js"
#: Vega-Lite version of the specs altair writes, e.g. ``"6.4"`` (what the bundle must match).
VEGALITE_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])

_EXPANSION, _PRUNING = "#d95f02", "#1b6ca8"  # orange / blue, distinct for colour-blind readers
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

#: The book's altair theme (a Vega-Lite top-level config), applied by :func:`chart_spec`.
THEME: dict[str, Any] = {
    "background": "white",
    "padding": 8,
    "config": {
        "font": _FONT,
        "view": {"stroke": None, "continuousWidth": 560, "continuousHeight": 300},
        "axis": {
            "labelFontSize": 12,
            "titleFontSize": 13,
            "titleFontWeight": "normal",
            "gridColor": "#e8e8e8",
            "domainColor": "#888",
            "tickColor": "#888",
        },
        "legend": {"labelFontSize": 12, "titleFontSize": 12, "titleFontWeight": "normal"},
        "title": {"fontSize": 14, "fontWeight": "normal", "anchor": "start", "subtitleColor": "#555"},
        "range": {"category": {"scheme": "tableau10"}},
        "line": {"strokeWidth": 2},
        "point": {"size": 40, "filled": True},
    },
}


@alt.theme.register("elens", enable=False)
def _elens_theme() -> alt.theme.ThemeConfig:
    return THEME  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# frames


def order_label(alpha: float) -> str:
    """A readable name for a Renyi order: ``1 -> "Shannon (α = 1)"``, ``inf -> "α = ∞"``."""
    a = float(alpha)
    if a == 1.0:
        return "Shannon (α = 1)"
    if math.isinf(a):
        return "Rényi α = ∞"
    return f"Rényi α = {a:g}"


def _show_token(text: str) -> str:
    """A token as a short visible string: spaces as '␣', newlines as '⏎', empty as '∅'."""
    if text == "":
        return "∅"
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥")


def _token_texts(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    out = []
    n_tok = len(tokenizer) if hasattr(tokenizer, "__len__") else None
    for i in ids:
        i = int(i)
        if n_tok is not None and i >= n_tok:  # padded unembedding rows (Qwen3): no text
            out.append(f"<row {i}>")
            continue
        try:
            out.append(_show_token(tokenizer.decode([i])))
        except Exception:  # noqa: BLE001 - any tokenizer failure just shows the id
            out.append(f"<id {i}>")
    return out


def lens_frame(lens: PromptLens, tokenizer: Any, alpha: float = 1.0) -> pd.DataFrame:
    """One row per (position, block) of a :func:`~elens_utils.lens.prompt_lens` result.

    Columns: ``position`` (0-based), ``token`` (the token at that position, shown with visible
    spaces), ``label`` (``"3 ␣cat"``, for an axis), ``next`` (the prompt's actual next token,
    ``""`` at the last position), ``layer`` (block 1..L), ``depth`` (layer / L), ``entropy``
    (nats, order ``alpha``), ``top1`` and ``p_top1`` (the block's most probable next token and
    its probability) and ``top`` (its k most probable tokens with probabilities, one string).
    """
    try:
        a_idx = list(lens.alphas).index(float(alpha))
    except ValueError as err:
        raise ElensError(f"alpha={alpha} was not computed by prompt_lens; available: {list(lens.alphas)}.") from err
    entropy = np.asarray(lens.entropy[..., a_idx], dtype=np.float64)  # [S, L]
    top_ids = np.asarray(lens.top_ids)  # [S, L, k]
    top_probs = np.asarray(lens.top_probs, dtype=np.float64)
    n_pos, n_layers = entropy.shape
    tokens = [_show_token(tokenizer.convert_tokens_to_string([t])) for t in lens.tokens]
    width = len(str(n_pos - 1))
    rows = []
    for s in range(n_pos):
        for layer in range(n_layers):
            texts = _token_texts(tokenizer, top_ids[s, layer])
            probs = top_probs[s, layer]
            rows.append(
                {
                    "position": s,
                    "token": tokens[s],
                    "label": f"{s:>{width}} {tokens[s]}",
                    "next": tokens[s + 1] if s + 1 < n_pos else "",
                    "layer": layer + 1,
                    "depth": (layer + 1) / n_layers,
                    "entropy": float(entropy[s, layer]),
                    "top1": texts[0],
                    "p_top1": float(probs[0]),
                    "top": "  ".join(f"{t} {p:.2f}" for t, p in zip(texts, probs)),
                }
            )
    return pd.DataFrame(rows)


def curve_frame(lens: PromptLens, position: int = -1) -> pd.DataFrame:
    """Entropy per block and Renyi order at one position of a prompt lens (default: the last).

    Columns: ``layer``, ``depth``, ``alpha`` (float; ``inf`` allowed), ``order`` (its label,
    see :func:`order_label`), ``entropy`` (nats), ``dH`` (entropy minus the previous block's;
    NaN for block 1, whose input, the embedding, is not a layer) and ``phase``
    (``"expansion"`` for dH > 0, ``"pruning"`` for dH < 0, ``"first block"``, or ``"flat"``).
    """
    entropy = np.asarray(lens.entropy, dtype=np.float64)  # [S, L, A]
    n_pos = entropy.shape[0]
    if not -n_pos <= position < n_pos:
        raise ElensError(f"position {position} is outside the prompt's {n_pos} positions.")
    h = entropy[position]  # [L, A]
    n_layers = h.shape[0]
    rows = []
    for a_idx, alpha in enumerate(lens.alphas):
        for layer in range(n_layers):
            dh = float(h[layer, a_idx] - h[layer - 1, a_idx]) if layer else float("nan")
            phase = "first block" if not layer else "expansion" if dh > 0 else "pruning" if dh < 0 else "flat"
            rows.append(
                {
                    "layer": layer + 1,
                    "depth": (layer + 1) / n_layers,
                    "alpha": float(alpha),
                    "order": order_label(alpha),
                    "entropy": float(h[layer, a_idx]),
                    "dH": dh,
                    "phase": phase,
                }
            )
    return pd.DataFrame(rows)


def depth_frame(profiles: Profiles | Sequence[Profiles], alpha: float = 1.0) -> pd.DataFrame:
    """Profiles averaged per model, against relative depth, for :func:`profiles_by_depth`.

    Each profile is first averaged over its generated tokens (the paper's "mean" aggregation);
    then, per model and block, the mean and standard deviation over the model's profiles.
    Takes one :class:`~elens_utils.profiles.Profiles` or several (models of different depth
    cannot share one array, so pass one per model). Raw (not resampled) profiles only.

    Columns: ``model``, ``n_layers``, ``layer`` (1..L), ``depth`` (layer / L), ``entropy``
    (mean, nats), ``sd``, ``lo``/``hi`` (mean -/+ sd) and ``n`` (profiles averaged).
    """
    from .profiles import Profiles

    items = [profiles] if isinstance(profiles, Profiles) else list(profiles)
    if not items:
        raise ElensError("depth_frame() needs at least one Profiles.")
    frames = []
    for p in items:
        if (p.meta["depth_grid"] != "raw").any():
            raise ElensError("depth_frame() takes raw profiles (one entry per block), not resampled or padded ones.")
        per_profile = p.select(alpha).mean(axis=1)  # [N, L]
        for model, idx in p.meta.groupby("model", sort=False).indices.items():
            h = per_profile[idx].astype(np.float64)
            n_layers = int(p.meta["n_layers"].iloc[idx[0]])
            mean, sd = h.mean(axis=0), (h.std(axis=0, ddof=1) if len(idx) > 1 else np.zeros(h.shape[1]))
            layer = np.arange(1, h.shape[1] + 1)
            frames.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "n_layers": n_layers,
                        "layer": layer,
                        "depth": layer / n_layers,
                        "entropy": mean,
                        "sd": sd,
                        "lo": mean - sd,
                        "hi": mean + sd,
                        "n": len(idx),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def depth_summary(frame: pd.DataFrame, n_points: int = 20) -> tuple[pd.DataFrame, dict[str, float]]:
    """A per-model summary of a :func:`depth_frame` and how far apart the models' profiles are.

    Returns:
        ``(table, overlap)``: ``table`` has one row per model (its blocks L, the entropy of
        the first and last block, the relative depth of the highest entropy, of the largest
        expansion step and of the largest pruning step); ``overlap`` has ``gap`` (the mean
        absolute difference between two models' mean profiles interpolated on ``n_points``
        common relative depths, averaged over model pairs; NaN for a single model) and
        ``spread`` (the mean, over models, of max - min of the profile along depth), in nats.
    """
    _need(frame, ["model", "n_layers", "layer", "depth", "entropy"], "depth_summary")
    grid = np.arange(1, n_points + 1) / n_points
    rows, curves = [], []
    for model, g in frame.groupby("model", sort=False):
        g = g.sort_values("layer")
        h, d = g["entropy"].to_numpy(float), g["depth"].to_numpy(float)
        dh = np.diff(h)
        rows.append(
            {
                "model": model,
                "L": int(g["n_layers"].iloc[0]),
                "H block 1": h[0],
                "H block L": h[-1],
                "peak H (l/L)": d[int(np.argmax(h))],
                "max expansion (l/L)": d[1 + int(np.argmax(dh))] if len(dh) and dh.max() > 0 else np.nan,
                "max pruning (l/L)": d[1 + int(np.argmin(dh))] if len(dh) and dh.min() < 0 else np.nan,
            }
        )
        curves.append(np.interp(grid, d, h))
    pairs = [np.abs(a - b).mean() for a, b in itertools.combinations(curves, 2)]
    overlap = {
        "gap": float(np.mean(pairs)) if pairs else float("nan"),
        "spread": float(np.mean([c.max() - c.min() for c in curves])),
    }
    return pd.DataFrame(rows), overlap


def summary_table(table: pd.DataFrame, digits: int = 2):
    """A :func:`depth_summary` table styled for the page: fixed decimals, '–' for missing."""
    return (
        table.style.format(precision=digits, na_rep="–")
        .hide(axis="index")
        .set_table_attributes('class="dataframe elens-summary"')
        .set_table_styles([{"selector": "td", "props": "white-space: nowrap;"}])
    )


# ---------------------------------------------------------------------------------------------
# charts


def _need(frame: pd.DataFrame, columns: Sequence[str], fn: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ElensError(f"{fn}() needs the columns {list(columns)}; the frame lacks {missing}.")


def profile_heatmap(
    frame: pd.DataFrame,
    *,
    title: str | None = None,
    labels: bool | None = None,
    width: int | None = None,
) -> alt.Chart:
    """Token x block heat-map of lens entropies, the most probable next token in each cell.

    Args:
        frame: from :func:`lens_frame` (columns ``position``, ``label``, ``layer``, ``entropy``,
            ``top1``, ``p_top1``, ``top``, ``token``, ``next``).
        title: chart title.
        labels: write each cell's top-1 token in it (None: only when the cells are wide enough).
        width: plot width in pixels (None: about 40 px per block, at most 640).

    Rows are prompt positions (read down), columns blocks (read right); the tooltip gives the
    block's k most probable next tokens.
    """
    _need(frame, ["position", "label", "layer", "entropy", "top1", "p_top1", "top", "token", "next"], "profile_heatmap")
    n_layers = int(frame["layer"].max())
    n_pos = int(frame["position"].nunique())
    if width is None:
        width = int(min(640, max(320, 48 * n_layers)))
    if labels is None:
        labels = width / n_layers >= 38
    order = frame.drop_duplicates("position").sort_values("position")["label"].tolist()
    base = alt.Chart(frame).encode(
        x=alt.X("layer:O", title="block (layer)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("label:N", sort=order, title="prompt position (token)"),
    )
    hmax = float(frame["entropy"].max())
    rect = base.mark_rect().encode(
        color=alt.Color(
            "entropy:Q",
            title="entropy (nats)",
            scale=alt.Scale(scheme="viridis", domainMin=0),
            legend=alt.Legend(orient="right", gradientLength=min(200, 22 * n_pos + 40)),
        ),
        tooltip=[
            alt.Tooltip("position:Q", title="position"),
            alt.Tooltip("token:N", title="token"),
            alt.Tooltip("next:N", title="actual next token"),
            alt.Tooltip("layer:O", title="block"),
            alt.Tooltip("entropy:Q", title="entropy (nats)", format=".3f"),
            alt.Tooltip("top:N", title="top predictions"),
        ],
    )
    chart: alt.Chart | alt.LayerChart = rect
    if labels:
        text = base.mark_text(fontSize=10, limit=max(20, width / n_layers - 4)).encode(
            text="top1:N",
            color=alt.condition(f"datum.entropy > {0.55 * hmax:.6g}", alt.value("black"), alt.value("white")),
            tooltip=[alt.Tooltip("top:N", title="top predictions")],
        )
        chart = rect + text
    return chart.properties(
        width=width,
        height=alt.Step(24),
        title=alt.Title(
            title or "Lens entropy at every position and block",
            subtitle="cell text: the block's most probable next token" if labels else "hover a cell for the block's most probable next tokens",
        ),
    )


def shannon_vs_renyi(
    frame: pd.DataFrame,
    *,
    x: str = "layer",
    max_entropy: float | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """Entropy per block for several Renyi orders, one line each.

    Args:
        frame: from :func:`curve_frame` (columns ``layer``/``depth``, ``order``, ``alpha``,
            ``entropy``).
        x: ``"layer"`` (block number) or ``"depth"`` (relative depth l / L).
        max_entropy: draw the maximum entropy (log V, the uniform distribution) as a dashed
            rule; every order is at most log V.
    """
    _need(frame, [x, "order", "alpha", "entropy"], "shannon_vs_renyi")
    orders = frame.sort_values("alpha")["order"].drop_duplicates().tolist()
    x_enc = alt.X(f"{x}:Q", title="block (layer)" if x == "layer" else "relative depth l / L", axis=alt.Axis(tickMinStep=1) if x == "layer" else alt.Axis(format=".1f"))
    sel = alt.selection_point(fields=["order"], bind="legend")
    base = alt.Chart(frame).encode(
        x=x_enc,
        y=alt.Y("entropy:Q", title="entropy (nats)", scale=alt.Scale(zero=True)),
        color=alt.Color("order:N", sort=orders, title="order", legend=alt.Legend(orient="right")),
        opacity=alt.condition(sel, alt.value(1.0), alt.value(0.15)),
    )
    layers: list[Any] = [
        base.mark_line().add_params(sel),
        base.mark_point().encode(
            tooltip=[
                alt.Tooltip("order:N"),
                alt.Tooltip(f"{x}:Q", format=".3g"),
                alt.Tooltip("entropy:Q", title="entropy (nats)", format=".3f"),
            ]
        ),
    ]
    if max_entropy is not None:
        rule = pd.DataFrame({"y": [float(max_entropy)], "what": [f"log V = {max_entropy:.2f} (uniform)"]})
        layers.append(
            alt.Chart(rule)
            .mark_rule(strokeDash=[5, 4], color="#777")
            .encode(y="y:Q", tooltip=alt.Tooltip("what:N", title="maximum"))
        )
    return alt.layer(*layers).properties(
        width=480, height=280, title=alt.Title(title or "Shannon beside Rényi entropies", subtitle="click a legend entry to pick one order")
    )


def expansion_pruning(frame: pd.DataFrame, *, alpha: float = 1.0, title: str | None = None) -> alt.VConcatChart:
    """The entropy curve with each block marked as expansion (dH > 0) or pruning (dH < 0).

    Top: entropy per block; each segment and its end point are coloured by the phase of the
    block it leads into. Bottom: dH per block as bars (up: expansion, the candidate set grows;
    down: pruning, it shrinks). Both panels share the block axis.

    Args:
        frame: from :func:`curve_frame` (columns ``layer``, ``alpha``, ``entropy``, ``dH``,
            ``phase``); only the rows of order ``alpha`` are drawn.
    """
    _need(frame, ["layer", "alpha", "entropy", "dH", "phase"], "expansion_pruning")
    data = frame[frame["alpha"] == float(alpha)].sort_values("layer").copy()
    if data.empty:
        raise ElensError(f"expansion_pruning(): no rows with alpha={alpha}; the frame has {sorted(frame['alpha'].unique())}.")
    data["prev_layer"] = data["layer"].shift(1)
    data["prev_entropy"] = data["entropy"].shift(1)
    n_layers = int(data["layer"].max())
    order = ["expansion", "pruning", "first block", "flat"]
    colours = dict(zip(order, [_EXPANSION, _PRUNING, "#999999", "#bbbbbb"]))
    present = [p for p in order if (data["phase"] == p).any()]
    phases = alt.Scale(domain=present, range=[colours[p] for p in present])
    axis = alt.Axis(values=list(range(1, n_layers + 1)), format="d") if n_layers <= 24 else alt.Axis(tickMinStep=1, format="d")
    x = alt.X("layer:Q", title="block (layer)", axis=axis, scale=alt.Scale(domain=[1, n_layers], padding=14, nice=False))
    tooltip = [
        alt.Tooltip("layer:Q", title="block"),
        alt.Tooltip("entropy:Q", title="entropy (nats)", format=".3f"),
        alt.Tooltip("dH:Q", title="dH (nats)", format="+.3f"),
        alt.Tooltip("phase:N"),
    ]
    y = alt.Y("entropy:Q", title=f"entropy (nats), {order_label(alpha)}", scale=alt.Scale(zero=True))
    colour = alt.Color("phase:N", scale=phases, title="block", legend=alt.Legend(orient="right"))
    steps = data.dropna(subset=["prev_layer"])
    segments = (
        alt.Chart(steps)
        .mark_rule(strokeWidth=3)
        .encode(x=alt.X("prev_layer:Q"), x2="layer:Q", y=alt.Y("prev_entropy:Q"), y2="entropy:Q", color=colour, tooltip=tooltip)
    )
    points = alt.Chart(data).mark_point(size=90, filled=True, opacity=1).encode(x=x, y=y, color=colour, tooltip=tooltip)
    curve = alt.layer(points, segments).resolve_scale(x="shared", y="shared")
    bar_size = max(2, min(16, int(320 / n_layers)))
    bars = alt.Chart(steps).mark_bar(size=bar_size).encode(
        x=x, y=alt.Y("dH:Q", title="dH (nats)"), color=colour, tooltip=tooltip
    )
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#888").encode(y="y:Q")
    return alt.vconcat(
        curve.properties(width=480, height=220),
        (bars + zero).properties(width=480, height=110),
        spacing=6,
    ).properties(
        title=alt.Title(
            title or "Expansion and pruning along the depth",
            subtitle="dH = H(block i) − H(block i−1): > 0 expansion, < 0 pruning",
        )
    )


def profiles_by_depth(
    frame: pd.DataFrame,
    *,
    color: str = "model",
    band: bool = True,
    title: str | None = None,
) -> alt.LayerChart:
    """Mean entropy profiles against relative depth l / L, one line per ``color`` value.

    Args:
        frame: from :func:`depth_frame` (columns ``depth``, ``entropy``, ``layer``,
            ``n_layers``, ``n`` and ``color``; ``lo``/``hi`` for the band).
        color: the column that tells the lines apart (``"model"``).
        band: shade mean -/+ one standard deviation across profiles.

    Click a legend entry to pick a model (the others fade); hover a point for its numbers.
    """
    _need(frame, ["depth", "entropy", "layer", "n_layers", "n", color], "profiles_by_depth")
    keys = frame[color].drop_duplicates().tolist()
    sel = alt.selection_point(fields=[color], bind="legend")
    enc_color = alt.Color(f"{color}:N", sort=keys, title=color, legend=alt.Legend(orient="bottom", columns=2, labelLimit=320, symbolType="stroke", symbolStrokeWidth=3, symbolOpacity=1))
    x = alt.X("depth:Q", title="relative depth l / L", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f"))
    base = alt.Chart(frame).encode(x=x, color=enc_color)
    y = alt.Y("entropy:Q", title="mean entropy (nats)", scale=alt.Scale(zero=True))
    faded = alt.condition(sel, alt.value(1.0), alt.value(0.12))
    # The line comes first: the legend draws its symbols from the first layer.
    layers: list[Any] = [base.mark_line().encode(y=y, opacity=faded).add_params(sel)]
    if band and {"lo", "hi"} <= set(frame.columns):
        layers.append(
            base.mark_area().encode(y="lo:Q", y2="hi:Q", opacity=alt.condition(sel, alt.value(0.15), alt.value(0.0)))
        )
    tooltip = [
        alt.Tooltip(f"{color}:N"),
        alt.Tooltip("layer:Q", title="block"),
        alt.Tooltip("n_layers:Q", title="blocks L"),
        alt.Tooltip("depth:Q", title="l / L", format=".2f"),
        alt.Tooltip("entropy:Q", title="mean entropy (nats)", format=".3f"),
    ]
    if "sd" in frame.columns:
        tooltip.append(alt.Tooltip("sd:Q", title="sd (nats)", format=".3f"))
    tooltip.append(alt.Tooltip("n:Q", title="profiles"))
    layers.append(
        base.mark_point(size=30).encode(y=y, opacity=faded, tooltip=tooltip)
    )
    return alt.layer(*layers).properties(
        width=520,
        height=300,
        title=alt.Title(title or "Entropy profiles against relative depth", subtitle="click a legend entry to pick a model; band: ±1 sd across samples"),
    )


# ---------------------------------------------------------------------------------------------
# rendering


def chart_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec (a dict) with the book's theme applied, validated by altair."""
    with alt.theme.enable("elens"):
        return chart.to_dict(validate=True)


def _json_for_script(obj: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</``, no ``<!--``)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_counter = itertools.count()

# The drawing script: no global but the container's own id; waits until the page (and the
# deferred bundle) has loaded; shows a plain message instead of failing silently.
_SCRIPT = """(function () {
  var id = %(id)s;
  function draw() {
    var el = document.getElementById(id);
    var src = document.getElementById(id + "-spec");
    if (!el || !src || el.getAttribute("data-state")) { return; }
    if (typeof window.vegaEmbed !== "function") {
      el.setAttribute("data-state", "no-library");
      el.textContent = "(This interactive chart needs the book's local Vega bundle, which was not loaded.)";
      return;
    }
    el.setAttribute("data-state", "drawing");
    window.vegaEmbed(el, JSON.parse(src.textContent), {mode: "vega-lite", renderer: "svg", actions: false})
      .then(function () { el.setAttribute("data-state", "drawn"); })
      .catch(function (err) {
        el.setAttribute("data-state", "error");
        el.textContent = "Chart error: " + err;
      });
  }
  if (document.readyState === "complete") { draw(); }
  else { window.addEventListener("load", draw); }
})();"""


def to_html(chart: alt.TopLevelMixin) -> str:
    """An HTML snippet that draws ``chart`` with the page's ``vegaEmbed`` (no library inside).

    The snippet is a ``div.elens-chart`` container, the spec in a ``<script
    type="application/json">`` and a small script in its own function scope that draws once
    the page has loaded (the bundle is loaded with ``defer``). The container gets
    ``data-state="drawn"`` when done, ``"error"`` or ``"no-library"`` otherwise. Ids are
    derived from the spec (and a counter), so re-running a notebook gives the same HTML.
    """
    spec = chart_spec(chart)
    spec.pop("$schema", None)  # a URL nothing fetches; the mode is given to vegaEmbed instead
    body = _json_for_script(spec)
    digest = hashlib.sha1(body.encode()).hexdigest()[:10]
    cid = f"elens-chart-{digest}-{next(_counter)}"
    return (
        f'<div class="{CHART_CLASS}" id="{cid}" style="max-width:100%;overflow-x:auto"></div>\n'
        f'<script type="application/json" id="{cid}-spec">{body}</script>\n'
        f"<script>{_SCRIPT % {'id': json.dumps(cid)}}</script>"
    )


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart drawn as SVG by vl-convert (offline; no interactivity)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart_spec(chart), vl_version=VEGALITE_VERSION)


def show(chart: alt.TopLevelMixin, *, static: bool | None = None) -> None:
    """Display a chart in the current notebook, the way the current context needs.

    * ``ELENS_CHART_MODE=book`` (set by the chapter runner): :func:`to_html`, drawn in the
      book by its single local Vega bundle.
    * ``static=True`` or ``ELENS_CHART_MODE=svg``: an SVG image (vl-convert).
    * otherwise (interactive Jupyter): the altair chart itself, rendered by Jupyter's own
      Vega-Lite support, with the book's theme.
    """
    from IPython.display import display

    mode = os.environ.get("ELENS_CHART_MODE", "")
    if static or (static is None and mode == "svg"):
        display({"image/svg+xml": to_svg(chart), "text/plain": "<chart (svg)>"}, raw=True)
    elif mode == "book":
        display({"text/html": to_html(chart), "text/plain": "<interactive chart>"}, raw=True)
    else:
        with alt.theme.enable("elens"):
            display(chart)


def write_vega_bundle(path: str | os.PathLike[str]) -> Path:
    """Write the single Vega + Vega-Lite + vega-embed bundle the book's charts draw with.

    Made by vl-convert for the Vega-Lite version altair writes (:data:`VEGALITE_VERSION`),
    wrapped in a function scope so that only ``window.vegaEmbed``, ``window.vega`` and
    ``window.vegaLite`` are defined (the raw bundle declares top-level constants, which clash
    between classic scripts). Written atomically; returns the path.
    """
    import vl_convert as vlc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    code = vlc.javascript_bundle(vl_version=VEGALITE_VERSION)
    header = (
        f"/* Vega {vlc.get_vega_version()}, Vega-Lite {VEGALITE_VERSION}, vega-embed "
        f"{vlc.get_vega_embed_version()}: bundled by vl-convert-python for the Entropy-Lens book. */\n"
    )
    with atomic_file(path) as fh:
        fh.write(header + "(function () {\n" + code + "\n})();\n")
    return path


# ---------------------------------------------------------------------------------------------
# parameters


def _format_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_value(v) for v in value) if value else "(none)"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items())
    if value is None:
        return "None"
    return str(value)


class ParametersTable:
    """A small two-column table of the parameters a chapter ran with (HTML in notebooks)."""

    def __init__(self, params: Mapping[str, Any], title: str | None = None, note: str | None = None):
        self.params = dict(params)
        self.title = title
        self.note = note

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th scope='row'><code>{html.escape(str(k))}</code></th>"
            f"<td>{html.escape(_format_value(v))}</td></tr>"
            for k, v in self.params.items()
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        note = f"<p class='elens-params-note'>{html.escape(self.note)}</p>" if self.note else ""
        return f"<table class='elens-params'>{caption}<tbody>{rows}</tbody></table>{note}"

    def __repr__(self) -> str:
        width = max((len(str(k)) for k in self.params), default=0)
        lines = [self.title] if self.title else []
        lines += [f"{k!s:<{width}}  {_format_value(v)}" for k, v in self.params.items()]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def parameters_table(params: Mapping[str, Any], title: str | None = "Parameters of this run", note: str | None = None) -> ParametersTable:
    """A small table of ``params`` (name -> value); lists are shown comma-separated."""
    if not isinstance(params, Mapping):
        raise ElensError(f"parameters_table() takes a mapping of name -> value; got {type(params).__name__}.")
    return ParametersTable(params, title, note)
