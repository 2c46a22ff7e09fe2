"""Charts of the Entropy-Lens book: tidy frames, altair charts, and an offline renderer.

Three layers, each usable alone:

* **Frames** turn library results into tidy :class:`pandas.DataFrame` s, one row per mark:
  :func:`lens_frame` (a :class:`~elens_utils.lens.capture.PromptLens`: one row per position x block),
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

from elens_utils.analysis.comparison import AUC_CEILING
from elens_utils.core.atomic import atomic_file
from elens_utils.core.errors import ElensError
from elens_utils.core.provenance import format_value
from elens_utils.core.token_text import show_token, token_texts
from elens_utils.entropy.stats import order_label  # re-exported: its old home
from elens_utils.viz import chart_reflow

if TYPE_CHECKING:
    from elens_utils.entropy.profiles import Profiles
    from elens_utils.lens.capture import PromptLens

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
    "fmt_range",
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
    "spearman_by_model", "overlap_by_depth", "block_dh_bars", "skip_accuracy", "sublayer_accuracy",  # chapter 5
    "correctness_auc_chart", "mc_accuracy_bars", "profiles_by_outcome",  # chapter 6
    "knn_scores_by_model", "knn_scores_heatmap", "profiles_by_label", "entropy_by_window",  # chapters 3 and 4
    "DEPTH_MODE_NAMES", "profiles_by_family", "embedding_frame", "embedding_scatter", "auc_tests_chart", "auc_by_setting", "permutation_chart",  # chapters 2 and 7
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


# Panels per row and the width (px) of one panel in the facet charts of profiles per model: each
# panel carries its own y axis and title, so three did not fit the book's text column (~540 px)
# even at 125 px; two of 170 px do.
_FACET_COLUMNS = 2
_FACET_PANEL_WIDTH = 170


@alt.theme.register("elens", enable=False)
def _elens_theme() -> alt.theme.ThemeConfig:
    return THEME  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# frames


def lens_frame(lens: PromptLens, tokenizer: Any, alpha: float = 1.0) -> pd.DataFrame:
    """One row per (position, block) of a :func:`~elens_utils.lens.capture.prompt_lens` result.

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
    tokens = [show_token(tokenizer.convert_tokens_to_string([t])) for t in lens.tokens]
    width = len(str(n_pos - 1))
    rows = []
    for s in range(n_pos):
        for layer in range(n_layers):
            texts = token_texts(tokenizer, top_ids[s, layer])
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
    Takes one :class:`~elens_utils.entropy.profiles.Profiles` or several (models of different depth
    cannot share one array, so pass one per model). Raw (not resampled) profiles only.

    Columns: ``model``, ``n_layers``, ``layer`` (1..L), ``depth`` (layer / L), ``entropy``
    (mean, nats), ``sd``, ``lo``/``hi`` (mean -/+ sd) and ``n`` (profiles averaged).
    """
    from elens_utils.entropy.profiles import Profiles

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
                "peak at l/L": d[int(np.argmax(h))],
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


def _is_p_value_column(name: object) -> bool:
    text = str(name)
    return text == "p" or text.startswith(("p (", "p_", "p-"))


# Text columns whose longest value exceeds this many characters wrap in the book's tables.
_WRAP_CHARS = 28


def _holds_counts(values: pd.Series) -> bool:
    """Whole numbers, one of them at least 2 (so that AUCs and shares of exactly 0 or 1 are not
    taken for counts)."""
    v = values.dropna().to_numpy(float)
    return bool(v.size) and bool(np.all(np.isfinite(v))) and bool(np.all(v == np.round(v))) and float(v.max()) >= 2


def summary_table(table: pd.DataFrame, digits: int = 2):
    """A table styled for the page: fixed decimals, '–' for missing, and p-values (columns
    named ``p``, ``p (...)``, ``p_...``) in two significant digits, so that a small one reads
    ``2e-17`` and not ``0.00``. A named index becomes the first column(s); an unnamed one
    (0, 1, 2...) is hidden. Cells of text columns longer than ``_WRAP_CHARS`` characters get
    the class ``elens-text`` (the book's stylesheet lets them wrap). Float columns of whole
    numbers (counts that a missing value made floats) print without decimals, booleans as
    yes/no."""
    if any(name is not None for name in table.index.names):  # a named index is data: show it
        table = table.reset_index()
    p_cols = [c for c in table.columns if _is_p_value_column(c)]
    # per-column formats need one column per label
    dtypes = list(table.dtypes.items()) if table.columns.is_unique else []
    # columns of long text (notes, verdicts) wrap in the book; numbers do not
    text_cols = [
        c for c, dtype in dtypes
        if (dtype == object or pd.api.types.is_string_dtype(dtype)) and table[c].astype(str).str.len().max() > _WRAP_CHARS
    ]
    # counts stored as floats (a NaN made them so) read as counts; True/False as yes/no
    count_cols = [c for c, dtype in dtypes if c not in p_cols and pd.api.types.is_float_dtype(dtype) and _holds_counts(table[c])]
    bool_cols = [c for c, dtype in dtypes if pd.api.types.is_bool_dtype(dtype)]
    styled = (
        table.style.format(precision=digits, na_rep="–")
        .format("{:.2g}", subset=p_cols, na_rep="–")
        .format("{:.0f}", subset=count_cols, na_rep="–")
        .format(lambda v: "yes" if v else "no", subset=bool_cols)
        .hide(axis="index")
        .set_table_attributes('class="dataframe elens-summary"')
    )
    if text_cols and table.index.is_unique:  # pandas styles cells by label: only unique ones
        classes = pd.DataFrame("", index=table.index, columns=table.columns)
        classes[text_cols] = "elens-text"
        styled = styled.set_td_classes(classes)
    return styled


def fmt_range(values: Sequence[float] | pd.Series | np.ndarray, spec: str = ".2f") -> str:
    """``"0.46-0.49"``: the smallest and largest of ``values`` in the format ``spec``, or one
    number where both read the same (``"0.49"``, never ``"0.49-0.49"``). For the closing text
    of a chapter."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return "n/a"
    lo, hi = format(arr.min(), spec), format(arr.max(), spec)
    return lo if lo == hi else f"{lo}-{hi}"


# ---------------------------------------------------------------------------------------------
# charts


def _need(frame: pd.DataFrame, columns: Sequence[str], fn: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ElensError(f"{fn}() needs the columns {list(columns)}; the frame lacks {missing}.")


def _ceiling_band() -> alt.Chart:
    """A shaded strip from :data:`~elens_utils.analysis.comparison.AUC_CEILING` to 1 on an AUC x axis:
    results inside it are at ceiling, where the classifier has nothing left to show."""
    band = pd.DataFrame({"x": [AUC_CEILING], "x2": [1.0], "what": [f"ceiling: AUC ≥ {AUC_CEILING:g}"]})
    return alt.Chart(band).mark_rect(color="#d9d9d9", opacity=0.6).encode(
        x=alt.X("x:Q", scale=alt.Scale(domain=[0, 1])), x2="x2:Q", tooltip=alt.Tooltip("what:N", title="shaded")
    )


def _mean_band_layers(base: alt.Chart, data: pd.DataFrame, tooltip: list, y_title: str) -> alt.LayerChart:
    """Mean line, a band ``lo``..``hi`` and hoverable points of ``entropy`` against ``base``'s x
    (a layer chart to facet). The line comes first: the legend draws its symbols from it."""
    return alt.layer(
        base.mark_line().encode(y=alt.Y("entropy:Q", title=y_title)),
        base.mark_area(opacity=0.12).encode(y="lo:Q", y2="hi:Q"),
        base.mark_point(size=25, filled=True).encode(y="entropy:Q", tooltip=tooltip),
        data=data,
    )


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
        color=alt.Color("order:N", sort=orders, title="order", legend=alt.Legend(orient="bottom")),
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
    colour = alt.Color("phase:N", scale=phases, title="block", legend=alt.Legend(orient="bottom"))
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
    var narrow = document.getElementById(id + "-narrow");
    if (!el || !src || el.getAttribute("data-state")) { return; }
    if (typeof window.vegaEmbed !== "function") {
      el.setAttribute("data-state", "no-library");
      el.textContent = "(This interactive chart needs the book's local Vega bundle, which was not loaded.)";
      return;
    }
    el.setAttribute("data-state", "drawing");
    var spec = JSON.parse(src.textContent);
    // a phone's column: the same chart laid out for it (chart_reflow.narrow_spec), same data
    if (narrow && el.clientWidth < %(breakpoint)d) {
      var wide = spec;
      spec = JSON.parse(narrow.textContent);
      spec.datasets = wide.datasets;
      el.setAttribute("data-layout", "narrow");
    } else {
      el.setAttribute("data-layout", "wide");
    }
    window.vegaEmbed(el, spec, {mode: "vega-lite", renderer: "svg", actions: false})
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
    type="application/json">``, its phone layout (:func:`elens_utils.viz.chart_reflow.narrow_spec`,
    without the data) in another, and a small script in its own function scope that draws once
    the page has loaded (the bundle is loaded with ``defer``): the phone layout when the
    container is narrower than :data:`~elens_utils.viz.chart_reflow.NARROW_BREAK` px, the spec
    otherwise (``data-layout`` says which). The container gets ``data-state="drawn"`` when done,
    ``"error"`` or ``"no-library"`` otherwise. Ids are derived from the spec (and a counter), so
    re-running a notebook gives the same HTML.
    """
    spec = chart_spec(chart)
    spec.pop("$schema", None)  # a URL nothing fetches; the mode is given to vegaEmbed instead
    body = _json_for_script(spec)
    digest = hashlib.sha1(body.encode()).hexdigest()[:10]
    cid = f"elens-chart-{digest}-{next(_counter)}"
    narrow = _json_for_script(chart_reflow.narrow_spec(spec))
    script = _SCRIPT % {"id": json.dumps(cid), "breakpoint": chart_reflow.NARROW_BREAK}
    return (
        f'<div class="{CHART_CLASS}" id="{cid}" style="max-width:100%"></div>\n'
        f'<script type="application/json" id="{cid}-spec">{body}</script>\n'
        f'<script type="application/json" id="{cid}-narrow">{narrow}</script>\n'
        f"<script>{script}</script>"
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


class ParametersTable:
    """A small two-column table of the parameters a chapter ran with (HTML in notebooks)."""

    def __init__(self, params: Mapping[str, Any], title: str | None = None, note: str | None = None):
        self.params = dict(params)
        self.title = title
        self.note = note

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th scope='row'><code>{html.escape(str(k))}</code></th>"
            f"<td>{html.escape(format_value(v))}</td></tr>"
            for k, v in self.params.items()
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        note = f"<p class='elens-params-note'>{html.escape(self.note)}</p>" if self.note else ""
        return f"<table class='elens-params'>{caption}<tbody>{rows}</tbody></table>{note}"

    def __repr__(self) -> str:
        width = max((len(str(k)) for k in self.params), default=0)
        lines = [self.title] if self.title else []
        lines += [f"{k!s:<{width}}  {format_value(v)}" for k, v in self.params.items()]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def parameters_table(params: Mapping[str, Any], title: str | None = "Parameters of this run", note: str | None = None) -> ParametersTable:
    """A small table of ``params`` (name -> value); lists are shown comma-separated."""
    if not isinstance(params, Mapping):
        raise ElensError(f"parameters_table() takes a mapping of name -> value; got {type(params).__name__}.")
    return ParametersTable(params, title, note)


# ---------------------------------------------------------------------------------------------
# expansion and pruning; correctness (chapters 5 and 6)

_STRATEGY_COLOURS = {"expansion": _EXPANSION, "pruning": _PRUNING, "random": "#888888"}


def spearman_by_model(
    summary: pd.DataFrame, *, reported: tuple[float, float] | None = None, title: str | None = None
) -> alt.LayerChart:
    """Spearman correlation of dH with the change of the top-p set size, one bar per model.

    Args:
        summary: :attr:`elens_utils.analysis.expansion.CandidateCheck.summary` (columns ``model``,
            ``rho``, ``rho_log``, ``sign_agreement``, ``mean_jaccard``, ``n_pairs``). A model
            whose rho is NaN (set sizes that never change) gets no bar.
        reported: a range ``(lo, hi)`` to shade, e.g. one quoted for the paper's models (its
            tooltip says that the range is a secondary summary's, unverified).
    """
    _need(summary, ["model", "rho", "rho_log", "sign_agreement", "mean_jaccard", "n_pairs"], "spearman_by_model")
    models = summary["model"].tolist()
    y = alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260))
    x = alt.X("rho:Q", title="Spearman ρ (dH vs change in set size)", scale=alt.Scale(domain=[-1, 1]))
    layers: list[Any] = []
    if reported is not None:
        lo, hi = (float(v) for v in reported)
        band = pd.DataFrame({"lo": [lo], "hi": [hi], "what": [f"a secondary summary's range {lo:g}–{hi:g} (not found in the paper; unverified)"]})
        layers.append(
            alt.Chart(band)
            .mark_rect(color="#d9d9d9", opacity=0.6)
            .encode(x="lo:Q", x2="hi:Q", tooltip=alt.Tooltip("what:N", title="shaded"))
        )
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("rho:Q", title="ρ (size)", format=".3f"),
        alt.Tooltip("rho_log:Q", title="ρ (log size)", format=".3f"),
        alt.Tooltip("sign_agreement:Q", title="same sign", format=".1%"),
        alt.Tooltip("mean_jaccard:Q", title="mean overlap (Jaccard)", format=".2f"),
        alt.Tooltip("n_pairs:Q", title="pairs", format=","),
    ]
    layers.append(alt.Chart(summary).mark_bar(color=_EXPANSION, height=alt.RelativeBandSize(0.6)).encode(x=x, y=y, tooltip=tooltip))
    layers.append(alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#888").encode(x="x:Q"))
    subtitle = "bar: this run, pooled over prompts, tokens and block transitions"
    if reported is not None:
        subtitle += "; grey band: the range reported for the paper's models"
    return alt.layer(*layers).properties(
        width=480, height=alt.Step(28), title=alt.Title(title or "Does dH follow the candidate set?", subtitle=subtitle)
    )


def overlap_by_depth(transitions: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Jaccard overlap of adjacent blocks' top-p sets against relative depth, one line per model.

    Args:
        transitions: :attr:`elens_utils.analysis.expansion.CandidateCheck.transitions` (columns
            ``model``, ``block``, ``depth``, ``transition``, ``jaccard``, ``size``, ``d_size``,
            ``dH``, ``n_layers``).
    """
    _need(transitions, ["model", "block", "depth", "transition", "jaccard", "size", "d_size", "dH", "n_layers"], "overlap_by_depth")
    keys = transitions["model"].drop_duplicates().tolist()
    sel = alt.selection_point(fields=["model"], bind="legend")
    base = alt.Chart(transitions).encode(
        x=alt.X("depth:Q", title="relative depth l / L of block l", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f")),
        y=alt.Y("jaccard:Q", title="overlap of blocks l−1 and l (Jaccard)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", sort=keys, title="model", legend=alt.Legend(orient="bottom", columns=2, labelLimit=320)),
        opacity=alt.condition(sel, alt.value(1.0), alt.value(0.12)),
    )
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("transition:N", title="blocks"),
        alt.Tooltip("jaccard:Q", title="mean Jaccard", format=".3f"),
        alt.Tooltip("size:Q", title="mean set size (block l)", format=".1f"),
        alt.Tooltip("d_size:Q", title="mean change in size", format="+.2f"),
        alt.Tooltip("dH:Q", title="mean dH (nats)", format="+.3f"),
    ]
    return alt.layer(base.mark_line().add_params(sel), base.mark_point(size=40).encode(tooltip=tooltip)).properties(
        width=520,
        height=260,
        title=alt.Title(title or "How much adjacent blocks' candidate sets share", subtitle="1: the same set; 0: no token in common. Click a legend entry to pick a model"),
    )


def block_dh_bars(ranking: pd.DataFrame, *, columns: int = 3, title: str | None = None) -> alt.FacetChart:
    """Mean dH per block, one panel per model: the numbers that rank the blocks for skipping.

    Args:
        ranking: :func:`elens_utils.analysis.expansion.block_ranking` (columns ``model``, ``block``,
            ``transition``, ``mean_dH``, ``std_dH``, ``frac_positive``, ``expansion_rank``,
            ``pruning_rank``).
        columns: panels per row.
    """
    _need(ranking, ["model", "block", "transition", "mean_dH", "std_dH", "frac_positive", "expansion_rank", "pruning_rank"], "block_dh_bars")
    data = ranking.copy()
    data["sign"] = np.where(data["mean_dH"] > 0, "expansion", "pruning")
    keys = data["model"].drop_duplicates().tolist()
    chart = alt.Chart(data).mark_bar().encode(
        x=alt.X("block:O", title="block", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("mean_dH:Q", title="mean dH (nats)"),
        color=alt.Color("sign:N", title="mean dH", scale=alt.Scale(domain=["expansion", "pruning"], range=[_EXPANSION, _PRUNING]), legend=alt.Legend(orient="bottom")),
        tooltip=[
            alt.Tooltip("model:N"),
            alt.Tooltip("transition:N", title="blocks"),
            alt.Tooltip("mean_dH:Q", title="mean dH (nats)", format="+.3f"),
            alt.Tooltip("std_dH:Q", title="sd (nats)", format=".3f"),
            alt.Tooltip("frac_positive:Q", title="share dH > 0", format=".0%"),
            alt.Tooltip("expansion_rank:Q", title="expansion rank"),
            alt.Tooltip("pruning_rank:Q", title="pruning rank"),
        ],
    ).properties(width=150, height=120)
    return chart.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)),
        columns=columns,
    ).resolve_scale(x="independent", y="independent").properties(
        title=alt.Title(title or "Which blocks expand and which prune", subtitle=["mean dH per block, each panel on its own scale;", "expansion rank 1: the tallest orange bar; pruning rank 1: the deepest blue one"])
    )


def skip_accuracy(results: pd.DataFrame, *, columns: int = 3, title: str | None = None) -> alt.FacetChart:
    """Multiple-choice accuracy against the number of skipped blocks, one panel per model.

    Args:
        results: :func:`elens_utils.analysis.expansion.skip_sweep` (columns ``model``, ``strategy``,
            ``k``, ``seed``, ``accuracy``, ``n_correct``, ``n_questions``, ``chance``,
            ``blocks_text``).
        columns: panels per row.

    Lines: skipping the k blocks of largest expansion (orange), of largest pruning (blue), and
    the mean of the random draws (grey, each draw a small grey dot); all start at the model's
    accuracy without skipping (k = 0). Dashed: the chance level.
    """
    _need(results, ["model", "strategy", "k", "seed", "accuracy", "n_correct", "n_questions", "chance", "blocks_text"], "skip_accuracy")
    keys = results["model"].drop_duplicates().tolist()
    base_rows = results[results["strategy"] == "baseline"]
    lines = []
    for strategy in ("expansion", "pruning", "random"):
        start = base_rows.assign(strategy=strategy)
        rows = results[results["strategy"] == strategy]
        if strategy == "random":
            rows = (
                rows.groupby(["model", "k"], sort=False)
                .agg(accuracy=("accuracy", "mean"), n_questions=("n_questions", "first"), chance=("chance", "first"), draws=("accuracy", "size"))
                .reset_index()
                .assign(strategy="random", blocks_text="mean of the random draws")
            )
            rows["n_correct"] = np.nan
        lines.append(pd.concat([start, rows], ignore_index=True))
    line_data = pd.concat(lines, ignore_index=True)[["model", "strategy", "k", "accuracy", "n_correct", "n_questions", "chance", "blocks_text"]]
    line_data["kind"] = "line"
    draws = results[results["strategy"] == "random"][["model", "strategy", "k", "accuracy", "n_correct", "n_questions", "chance", "blocks_text"]].assign(kind="draw")
    chance = base_rows[["model", "chance"]].assign(kind="chance", strategy="chance", k=np.nan, accuracy=base_rows["chance"])
    data = pd.concat([line_data, draws, chance], ignore_index=True)
    # Strategies often skip the same blocks (always at k = L - 1): shift them apart a little.
    data["k_shown"] = data["k"] + data["strategy"].map({"expansion": -0.05, "pruning": 0.05}).fillna(0.0)
    colour = alt.Color(
        "strategy:N",
        title="blocks skipped",
        scale=alt.Scale(domain=list(_STRATEGY_COLOURS), range=list(_STRATEGY_COLOURS.values())),
        legend=alt.Legend(orient="bottom"),
    )
    k_max = max(1, int(results["k"].max()))
    x = alt.X("k_shown:Q", title="blocks skipped k", axis=alt.Axis(values=list(range(k_max + 1)), format="d"), scale=alt.Scale(domain=[-0.15, k_max + 0.15], nice=False))
    y = alt.Y("accuracy:Q", title="accuracy", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1]))
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("strategy:N", title="blocks"),
        alt.Tooltip("k:Q"),
        alt.Tooltip("blocks_text:N", title="skipped"),
        alt.Tooltip("accuracy:Q", format=".1%"),
        alt.Tooltip("n_questions:Q", title="questions"),
    ]
    base = alt.Chart().encode(x=x, y=y)
    layered = alt.layer(
        alt.Chart().mark_rule(strokeDash=[5, 4], color="#777").encode(y="chance:Q", tooltip=alt.Tooltip("chance:Q", title="chance", format=".0%")).transform_filter("datum.kind == 'chance'"),
        base.mark_circle(size=22, color="#888", opacity=0.6).encode(tooltip=tooltip).transform_filter("datum.kind == 'draw'"),
        base.mark_line(point=alt.OverlayMarkDef(size=45, filled=True)).encode(color=colour, tooltip=tooltip).transform_filter("datum.kind == 'line'"),
        data=data,
    ).properties(width=170, height=150)
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)), columns=columns
    ).properties(
        title=alt.Title(title or "Accuracy after skipping blocks", subtitle="k = 0: no block skipped; dashed: chance; grey dots: single random draws")
    )


def sublayer_accuracy(results: pd.DataFrame, *, title: str | None = None, columns: int = 2) -> alt.FacetChart:
    """Multiple-choice accuracy with a part of some blocks removed, one panel per model.

    Args:
        results: :func:`elens_utils.analysis.sublayers.sublayer_sweep` (columns ``model``, ``kind``,
            ``strategy``, ``heads_from``, ``k``, ``seed``, ``accuracy``, ``n_correct``,
            ``n_questions``, ``chance``, ``blocks_text``, ``heads_text``), with one baseline
            row (``strategy == "baseline"``) per model.
        title: chart title.
        columns: panels per row (2 fit the book's text column).

    Rows of a panel: the kind of intervention (attention, MLP, heads, the whole block) and
    ``k``, the number of blocks it is applied to; the x axis is the accuracy. In each row,
    filled points: the part removed in the k blocks of largest expansion (orange, top) and of
    largest pruning (blue, bottom); grey (middle): the random controls, each draw a small dot,
    their mean a tick. For heads the filled points are the ranked heads, the hollow rings the
    random heads of the same blocks (each draw a small ring, their mean a large one). Solid
    vertical line: the accuracy with nothing removed; dashed: the chance level.
    """
    need = ["model", "kind", "strategy", "heads_from", "k", "seed", "accuracy", "n_correct", "n_questions", "chance", "blocks_text", "heads_text"]  # fmt: skip
    _need(results, need, "sublayer_accuracy")
    keys = results["model"].drop_duplicates().tolist()
    base_rows = results[results["strategy"] == "baseline"]
    if base_rows["model"].nunique() != len(keys) or len(base_rows) != len(keys):
        raise ElensError("sublayer_accuracy(): each model needs exactly one baseline row (strategy 'baseline'), as sublayer_sweep() writes.")
    rows = results[results["strategy"] != "baseline"].copy()
    if rows.empty:
        raise ElensError("sublayer_accuracy(): the results hold no intervention (only baselines): give sublayer_sweep() some ks and kinds.")
    names = {"attention": "attention", "mlp": "MLP", "heads": "heads", "block": "whole block"}
    kinds = rows["kind"].drop_duplicates().tolist()
    rows["row"] = [f"{names.get(kd, kd)}, k = {int(k)}" for kd, k in zip(rows["kind"], rows["k"])]
    ordered = rows.assign(kind_pos=rows["kind"].map(kinds.index)).sort_values(["kind_pos", "k"], kind="stable")
    order = ordered["row"].drop_duplicates().tolist()
    first_rows = ordered.drop_duplicates("kind")["row"].tolist()  # the kind is named on these only
    cols = ["model", "kind", "strategy", "heads_from", "k", "seed", "accuracy", "n_correct", "n_questions", "chance", "blocks_text", "heads_text", "row"]  # fmt: skip
    rows = rows[cols]
    alt_heads = rows["heads_from"].eq("random") & rows["strategy"].isin(["expansion", "pruning"])
    is_draw = rows["strategy"] == "random"
    chosen = rows[~alt_heads & ~is_draw].assign(mark="chosen")
    parts = {"attention": "the attention", "mlp": "the MLP", "heads": "the ranked heads", "block": "the whole blocks"}
    chosen["what"] = chosen["kind"].map(lambda kd: parts.get(kd, kd)) + " of the " + chosen["strategy"] + " blocks"
    draws = rows[is_draw].assign(mark="draw", what="one random draw")
    alt_draws = rows[alt_heads].assign(mark="alt_draw")
    alt_draws["what"] = "random heads of the " + alt_draws["strategy"] + " blocks, one draw"
    group = ["model", "kind", "k", "row", "strategy"]

    def means(frame: pd.DataFrame, mark: str) -> pd.DataFrame:
        out = (
            frame.groupby(group, sort=False)
            .agg(accuracy=("accuracy", "mean"), n_questions=("n_questions", "first"), chance=("chance", "first"), draws=("accuracy", "size"), blocks_text=("blocks_text", "first"))
            .reset_index()
        )
        n = out["draws"].astype(str) + " draws"
        if mark == "mean":
            out["blocks_text"], out["what"] = "random (one set per draw)", "mean of " + n
            out["heads_text"] = np.where(out["kind"] == "heads", "random", "")
        else:
            out["heads_text"], out["what"] = "random", "random heads of the " + out["strategy"] + " blocks, mean of " + n
        return out.assign(mark=mark)

    data = pd.concat(
        [
            chosen,
            draws,
            alt_draws,
            means(draws, "mean"),
            means(alt_draws, "alt_mean"),
            base_rows[["model", "kind", "strategy", "k", "accuracy", "n_correct", "n_questions", "chance", "blocks_text", "heads_text"]].assign(mark="baseline", what="nothing removed"),
            base_rows[["model", "chance", "n_questions"]].assign(mark="chance", accuracy=base_rows["chance"], what="chance (guessing)"),
            pd.DataFrame([(m, r) for m in keys for r in first_rows[1:]], columns=["model", "row"]).assign(mark="separator"),
        ],
        ignore_index=True,
    )
    data["seed"] = pd.to_numeric(data["seed"], errors="coerce").astype(float)
    data = _json_safe(data)
    lanes = ["expansion", "random", "pruning"]
    colour = alt.Color(
        "strategy:N",
        title="part removed in",
        scale=alt.Scale(domain=list(_STRATEGY_COLOURS), range=list(_STRATEGY_COLOURS.values())),
        legend=alt.Legend(orient="bottom", symbolOpacity=1, labelExpr="datum.label == 'random' ? 'random blocks' : datum.label + ' blocks'"),
    )
    x = alt.X("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1], nice=False), axis=alt.Axis(format=".0%", values=[0, 0.25, 0.5, 0.75, 1]))
    # "attention, k = 1", then "k = 2", "k = 4": the kind is named on its first row only.
    label = f"indexof({json.dumps(first_rows)}, datum.value) >= 0 ? datum.value : 'k = ' + split(datum.value, ', k = ')[1]"
    y = alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=140, ticks=False, domain=False, labelExpr=label))
    y_off = alt.YOffset("strategy:N", sort=lanes, scale=alt.Scale(domain=lanes, paddingOuter=0.6))
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("kind:N"),
        alt.Tooltip("strategy:N", title="blocks"),
        alt.Tooltip("k:Q"),
        alt.Tooltip("blocks_text:N", title="blocks removed"),
        alt.Tooltip("heads_text:N", title="heads"),
        alt.Tooltip("what:N", title="shows"),
        alt.Tooltip("accuracy:Q", format=".1%"),
        alt.Tooltip("n_questions:Q", title="questions"),
    ]
    rule_tip = [alt.Tooltip("model:N"), alt.Tooltip("what:N", title="accuracy of"), alt.Tooltip("accuracy:Q", format=".1%"), alt.Tooltip("n_questions:Q", title="questions")]
    base = alt.Chart().encode(x=x, y=y, yOffset=y_off)
    width = max(150, (460 - 20 * (columns - 1)) // max(1, columns))  # two panels and the row labels fit 600 px

    def only(mark: str) -> str:
        return f"datum.mark == '{mark}'"

    layered = alt.layer(
        alt.Chart().mark_rule(color="#d0d0d0", strokeWidth=1).encode(y=alt.Y("row:N", sort=order, bandPosition=0)).transform_filter(only("separator")),
        alt.Chart().mark_rule(strokeDash=[5, 4], color="#777").encode(x=alt.X("accuracy:Q"), tooltip=rule_tip).transform_filter(only("chance")),
        alt.Chart().mark_rule(color="#333", strokeWidth=1.5).encode(x=alt.X("accuracy:Q"), tooltip=rule_tip).transform_filter(only("baseline")),
        base.mark_circle(size=22, opacity=0.6).encode(color=colour, tooltip=tooltip).transform_filter(only("draw")),
        base.mark_tick(thickness=2.5, size=11).encode(color=colour, tooltip=tooltip).transform_filter(only("mean")),
        base.mark_point(filled=False, size=26, strokeWidth=1, opacity=0.8).encode(color=colour, tooltip=tooltip).transform_filter(only("alt_draw")),
        base.mark_point(filled=False, size=150, strokeWidth=1.5, opacity=1).encode(color=colour, tooltip=tooltip).transform_filter(only("alt_mean")),
        base.mark_point(filled=True, size=70, opacity=1).encode(color=colour, tooltip=tooltip).transform_filter(only("chosen")),
        data=data,
    ).properties(width=width, height=36 * len(order))
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=width)), columns=columns
    ).properties(
        title=alt.Title(
            title or "Accuracy with a part of the blocks removed",
            subtitle=[
                "the part removed in the k blocks of largest expansion (orange), of largest pruning (blue)",
                "or in k random blocks (grey dots: single draws, tick: their mean); heads: filled points the",
                "ranked heads, rings random heads of the same blocks; line: nothing removed; dashed: chance",
            ],
        )
    )


def correctness_auc_chart(table: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """kNN ROC-AUC of "answered correctly" per model and feature set, beside the dummy baseline.

    Args:
        table: :func:`elens_utils.analysis.correctness.correctness_auc` (columns ``model``,
            ``features``, ``status``, ``note``, ``auc_mean``, ``auc_std``, ``dummy_auc_mean``,
            ``dummy_auc_std``, ``n``, ``n_correct``, ``knn_accuracy``, ``p_value``). Rows that
            could not be scored (``status != "ok"``) show their status as text.
    """
    _need(table, ["model", "features", "status", "note", "auc_mean", "auc_std", "dummy_auc_mean", "dummy_auc_std", "n", "n_correct", "knn_accuracy", "p_value"], "correctness_auc_chart")
    data = table.copy()
    data["lo"] = data["auc_mean"] - data["auc_std"]
    data["hi"] = data["auc_mean"] + data["auc_std"]
    data["dlo"] = data["dummy_auc_mean"] - data["dummy_auc_std"]
    data["dhi"] = data["dummy_auc_mean"] + data["dummy_auc_std"]
    data["label"] = np.where(data["status"] == "ok", "", "not scored: " + data["status"])
    data["x_text"] = 0.02
    models = data["model"].drop_duplicates().tolist()
    feats = data["features"].drop_duplicates().tolist()
    y = alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260))
    y_off = alt.YOffset("features:N", sort=feats)
    x = alt.X("auc_mean:Q", title="ROC-AUC (mean over folds, ± sd)", scale=alt.Scale(domain=[0, 1]))
    colour = alt.Color("features:N", sort=feats, title="features", legend=alt.Legend(orient="bottom"))
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("features:N"),
        alt.Tooltip("auc_mean:Q", title="kNN AUC", format=".3f"),
        alt.Tooltip("auc_std:Q", title="sd over folds", format=".3f"),
        alt.Tooltip("dummy_auc_mean:Q", title="dummy AUC", format=".3f"),
        alt.Tooltip("knn_accuracy:Q", title="kNN accuracy", format=".1%"),
        alt.Tooltip("p_value:Q", title="paired t-test p", format=".2g"),
        alt.Tooltip("n_correct:Q", title="answered correctly"),
        alt.Tooltip("n:Q", title="questions"),
    ]
    ok = "datum.status == 'ok'"
    base = alt.Chart(data).encode(y=y, yOffset=y_off)
    layers = [
        _ceiling_band(),
        base.mark_rule(color="#bbbbbb", strokeWidth=6).encode(x=alt.X("dlo:Q", scale=alt.Scale(domain=[0, 1])), x2="dhi:Q", tooltip=tooltip).transform_filter(ok),
        base.mark_rule(strokeWidth=2).encode(x=alt.X("lo:Q"), x2="hi:Q", color=colour).transform_filter(ok),
        base.mark_point(size=70, filled=True).encode(x=x, color=colour, tooltip=tooltip).transform_filter(ok),
        base.mark_text(align="left", fontSize=11, color="#a33").encode(x="x_text:Q", text="label:N", tooltip=alt.Tooltip("note:N", title="why")).transform_filter("datum.status != 'ok'"),
        alt.Chart(pd.DataFrame({"x": [0.5]})).mark_rule(strokeDash=[5, 4], color="#777").encode(x="x:Q"),
    ]
    return alt.layer(*layers).properties(
        width=480,
        height=alt.Step(18),
        title=alt.Title(title or "Does the profile tell right from wrong answers?", subtitle="points: kNN (±1 sd over folds); grey bars: the stratified dummy (±1 sd); dashed: 0.5, no information; shaded: at ceiling"),
    )


def mc_accuracy_bars(table: pd.DataFrame, *, chance: float | None = None, title: str | None = None) -> alt.LayerChart:
    """Multiple-choice accuracy per model (one bar each), with the chance level.

    Args:
        table: one row per model (or several, deduplicated on ``model``) with ``accuracy``,
            ``n_correct`` and ``n`` (e.g. :func:`elens_utils.analysis.correctness.correctness_auc`).
        chance: the accuracy of guessing, drawn as a dashed rule (e.g. 0.25).
    """
    _need(table, ["model", "accuracy", "n_correct", "n"], "mc_accuracy_bars")
    data = table.drop_duplicates("model")[["model", "accuracy", "n_correct", "n"]]
    models = data["model"].tolist()
    layers: list[Any] = [
        alt.Chart(data).mark_bar(color="#5b8db8", height=alt.RelativeBandSize(0.6)).encode(
            x=alt.X("accuracy:Q", title="accuracy (letter logits)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%", values=[0, 0.25, 0.5, 0.75, 1])),
            y=alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260)),
            tooltip=[alt.Tooltip("model:N"), alt.Tooltip("accuracy:Q", format=".1%"), alt.Tooltip("n_correct:Q", title="correct"), alt.Tooltip("n:Q", title="questions")],
        )
    ]
    if chance is not None:
        rule = pd.DataFrame({"x": [float(chance)], "what": [f"chance {float(chance):.0%}"]})
        layers.append(alt.Chart(rule).mark_rule(strokeDash=[5, 4], color="#777").encode(x="x:Q", tooltip=alt.Tooltip("what:N", title="guessing")))
    return alt.layer(*layers).properties(
        width=480, height=alt.Step(26), title=alt.Title(title or "How often each model answers correctly", subtitle="dashed: chance" if chance is not None else "")
    )


def profiles_by_outcome(frame: pd.DataFrame, *, columns: int = _FACET_COLUMNS, title: str | None = None) -> alt.FacetChart:
    """Mean profile of the right and of the wrong answers against relative depth, per model.

    Args:
        frame: :func:`elens_utils.analysis.correctness.outcome_depth_frame` (columns ``model``,
            ``outcome``, ``layer``, ``depth``, ``entropy``, ``sd``, ``n``).
        columns: panels per row.
    """
    _need(frame, ["model", "outcome", "layer", "depth", "entropy", "sd", "n"], "profiles_by_outcome")
    keys = frame["model"].drop_duplicates().tolist()
    data = frame.assign(lo=frame["entropy"] - frame["sd"], hi=frame["entropy"] + frame["sd"])
    colour = alt.Color("outcome:N", title="answer", scale=alt.Scale(domain=["correct", "wrong"], range=["#1b9e77", "#7570b3"]), legend=alt.Legend(orient="bottom"))
    x = alt.X("depth:Q", title="relative depth l / L", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f"))
    base = alt.Chart().encode(x=x, color=colour)
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("outcome:N", title="answer"),
        alt.Tooltip("layer:Q", title="block"),
        alt.Tooltip("entropy:Q", title="mean entropy (nats)", format=".3f"),
        alt.Tooltip("sd:Q", title="sd (nats)", format=".3f"),
        alt.Tooltip("n:Q", title="questions"),
    ]
    layered = _mean_band_layers(base, data, tooltip, "entropy (nats)").properties(width=_FACET_PANEL_WIDTH, height=140)
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)), columns=columns
    ).properties(
        title=alt.Title(title or "Profiles of right and wrong answers", subtitle="mean over the questions, band ±1 sd; where only one colour shows, the other lies under it")
    )


# ---------------------------------------------------------------------------------------------
# task type and output format (chapters 3 and 4)

_SCORE_TITLES = {"auc": "ROC-AUC", "accuracy": "accuracy"}


def _group_key(frame: pd.DataFrame, color: str | None) -> pd.Series:
    """The colour key of :func:`knn_scores_by_model` as text (``k`` becomes ``"k = 3"``)."""
    if color is None:
        return pd.Series("kNN", index=frame.index)
    if color == "k":
        return "k = " + frame["k"].astype(int).astype(str)
    return frame[color].astype(str)


def knn_scores_by_model(
    summary: pd.DataFrame,
    folds: pd.DataFrame,
    *,
    metric: str = "auc",
    color: str | None = None,
    legend_title: str | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> alt.LayerChart:
    """A kNN score per model (mean over folds, each fold a tick) beside its stratified dummy.

    Args:
        summary: rows of :attr:`elens_utils.analysis.knn_tables.KnnTable.summary` to draw (columns
            ``model``, ``features``, ``subset``, ``k``, ``n``, ``n_classes``, ``auc_mean``,
            ``auc_std``, ``accuracy_mean``, ``accuracy_std``, ``dummy_auc_mean``,
            ``dummy_auc_std``, ``dummy_accuracy_mean``, ``dummy_accuracy_std``, ``p_value``).
        folds: :attr:`~elens_utils.analysis.knn_tables.KnnTable.folds` (columns ``model``,
            ``features``, ``subset``, ``k``, ``fold``, ``auc``, ``accuracy``); only the folds
            of the summary rows are drawn.
        metric: ``"auc"`` (one-vs-rest macro ROC-AUC; a dashed rule at 0.5, no information)
            or ``"accuracy"``.
        color: a summary column that tells several rows of one model apart (``"features"``,
            ``"subset"``, ``"k"``), drawn side by side; None when there is one row per model.
        legend_title: the legend's title (default: ``color``).

    Rows: models, in the order of ``summary``. Grey: the dummy's mean (a bar) and its -/+ sd
    over folds (a band); ticks: the kNN's single folds; point: their mean.
    """
    need = ["model", "features", "subset", "k", "n", "n_classes", "auc_mean", "auc_std", "accuracy_mean", "accuracy_std",
            "dummy_auc_mean", "dummy_auc_std", "dummy_accuracy_mean", "dummy_accuracy_std", "p_value"]  # fmt: skip
    _need(summary, need + ([color] if color else []), "knn_scores_by_model")
    _need(folds, ["model", "features", "subset", "k", "fold", "auc", "accuracy"], "knn_scores_by_model")
    if metric not in _SCORE_TITLES:
        raise ElensError(f"knn_scores_by_model(): metric must be 'auc' or 'accuracy'; got {metric!r}.")
    if summary.empty:
        raise ElensError("knn_scores_by_model(): the summary has no rows to draw.")
    keys = ["model", "features", "subset", "k"]
    rows = summary.copy()
    rows["group"] = _group_key(rows, color)
    rows["mean"] = rows[f"{metric}_mean"]
    rows["lo"], rows["hi"] = rows["mean"] - rows[f"{metric}_std"], rows["mean"] + rows[f"{metric}_std"]
    rows["dummy"] = rows[f"dummy_{metric}_mean"]
    rows["dlo"] = rows["dummy"] - rows[f"dummy_{metric}_std"]
    rows["dhi"] = rows["dummy"] + rows[f"dummy_{metric}_std"]
    rows["kind"] = "summary"
    ticks = folds.merge(rows[keys + ["group"]], on=keys, how="inner")
    ticks = ticks.assign(value=ticks[metric], kind="fold")[keys + ["group", "fold", "value", "kind"]]
    data = pd.concat([rows, ticks], ignore_index=True)
    models = rows["model"].drop_duplicates().tolist()
    groups = rows["group"].drop_duplicates().tolist()
    name = _SCORE_TITLES[metric]
    y = alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260))
    offset = {"yOffset": alt.YOffset("group:N", sort=groups)} if len(groups) > 1 else {}
    x_scale = alt.Scale(domain=[0, 1])
    colour = alt.Color("group:N", sort=groups, title=legend_title or color or "", legend=alt.Legend(orient="bottom") if len(groups) > 1 else None)
    tooltip = [
        alt.Tooltip("model:N"),
        *([alt.Tooltip("group:N", title=legend_title or color)] if color else []),
        alt.Tooltip("features:N"),
        alt.Tooltip("k:Q", title="k used"),
        alt.Tooltip("mean:Q", title=f"kNN {name} (mean)", format=".3f"),
        alt.Tooltip(f"{metric}_std:Q", title="sd over folds", format=".3f"),
        alt.Tooltip("dummy:Q", title=f"dummy {name}", format=".3f"),
        alt.Tooltip("p_value:Q", title="paired t-test p (AUC)", format=".2g"),
        alt.Tooltip("n:Q", title="prompts"),
        alt.Tooltip("n_classes:Q", title="classes"),
    ]
    base = alt.Chart(data).encode(y=y, **offset)
    is_row, is_fold = "datum.kind == 'summary'", "datum.kind == 'fold'"
    layers: list[Any] = [
        base.mark_rule(color="#bbbbbb", strokeWidth=6).encode(x=alt.X("dlo:Q", scale=x_scale), x2="dhi:Q", tooltip=tooltip).transform_filter(is_row),
        base.mark_tick(color="#777777", thickness=3, size=12).encode(x=alt.X("dummy:Q", scale=x_scale), tooltip=tooltip).transform_filter(is_row),
        base.mark_tick(thickness=1.5, size=9, opacity=0.55).encode(
            x=alt.X("value:Q", scale=x_scale),
            color=colour,
            tooltip=[alt.Tooltip("model:N"), alt.Tooltip("group:N", title=legend_title or color or "kNN"), alt.Tooltip("fold:Q"), alt.Tooltip("value:Q", title=name, format=".3f")],
        ).transform_filter(is_fold),
        base.mark_point(size=75, filled=True, opacity=1).encode(
            x=alt.X("mean:Q", title=f"{name} (mean over folds; ticks: single folds)", scale=x_scale), color=colour, tooltip=tooltip
        ).transform_filter(is_row),
    ]
    if metric == "auc":
        layers.insert(0, _ceiling_band())
        layers.append(alt.Chart(pd.DataFrame({"x": [0.5]})).mark_rule(strokeDash=[5, 4], color="#777").encode(x="x:Q"))
    default_sub = "point: kNN mean over folds; ticks: single folds; grey: stratified dummy (mean, ±1 sd)"
    if metric == "auc":
        default_sub += f"; dashed: 0.5, no information; shaded: at ceiling (≥ {AUC_CEILING:g})"
    return alt.layer(*layers).properties(
        width=480,
        height=alt.Step(16 if len(groups) > 1 else 26),
        title=alt.Title(title or f"kNN {name} per model", subtitle=subtitle or default_sub),
    )


def profiles_by_label(
    frame: pd.DataFrame,
    *,
    centered: bool = False,
    legend_title: str = "label",
    columns: int = _FACET_COLUMNS,
    title: str | None = None,
) -> alt.FacetChart:
    """Mean profile of each label against relative depth, one panel per model.

    Args:
        frame: :func:`elens_utils.analysis.knn_tables.label_depth_frame` (columns ``model``,
            ``label``, ``layer``, ``depth``, ``entropy``, ``sd``, ``centered``, ``n``).
        centered: draw each label's difference from the model's mean profile (what sets the
            labels apart; a rule at 0) instead of the mean with a band of -/+ 1 sd.
        legend_title: what the labels are (``"task"``, ``"format"``).
        columns: panels per row.

    Each panel has its own y scale (models differ in their entropy range).
    """
    _need(frame, ["model", "label", "layer", "depth", "entropy", "sd", "centered", "n"], "profiles_by_label")
    keys = frame["model"].drop_duplicates().tolist()
    labels = frame["label"].drop_duplicates().tolist()
    data = frame.assign(lo=frame["entropy"] - frame["sd"], hi=frame["entropy"] + frame["sd"])
    colour = alt.Color("label:N", sort=labels, title=legend_title, legend=alt.Legend(orient="bottom"))
    x = alt.X("depth:Q", title="relative depth l / L", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f"))
    value = "centered" if centered else "entropy"
    y_title: str | list[str] = ["minus the model's", "mean (nats)"] if centered else "mean entropy (nats)"
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("label:N", title=legend_title),
        alt.Tooltip("layer:Q", title="block"),
        alt.Tooltip("entropy:Q", title="mean entropy (nats)", format=".3f"),
        alt.Tooltip("centered:Q", title="minus the model's mean", format="+.3f"),
        alt.Tooltip("sd:Q", title="sd of single profiles", format=".3f"),
        alt.Tooltip("n:Q", title="prompts"),
    ]
    base = alt.Chart().encode(x=x, color=colour)
    layers: list[Any] = [base.mark_line().encode(y=alt.Y(f"{value}:Q", title=y_title, scale=alt.Scale(zero=centered)))]
    if centered:
        layers.append(alt.Chart().mark_rule(color="#888").encode(y=alt.datum(0)))
    else:
        layers.append(base.mark_area(opacity=0.12).encode(y="lo:Q", y2="hi:Q"))
    layers.append(base.mark_point(size=25, filled=True).encode(y=f"{value}:Q", tooltip=tooltip))
    layered = alt.layer(*layers, data=data).properties(width=_FACET_PANEL_WIDTH, height=140)
    subtitle = (
        "each label's mean profile minus the model's mean over all prompts (each panel its own scale)"
        if centered
        else "mean over the prompts of each label, band ±1 sd (each panel its own scale)"
    )
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)), columns=columns
    ).resolve_scale(y="independent").properties(title=alt.Title(title or f"Mean profile per {legend_title}", subtitle=subtitle))


def entropy_by_window(frame: pd.DataFrame, *, legend_title: str = "label", columns: int = _FACET_COLUMNS, title: str | None = None) -> alt.FacetChart:
    """Mean entropy of one block in each window of the generation, per label, one panel per model.

    Args:
        frame: :func:`elens_utils.analysis.knn_tables.window_frame` (columns ``model``, ``block``,
            ``n_layers``, ``label``, ``window``, ``tokens``, ``entropy``, ``sd``, ``n``).
        legend_title: what the labels are (``"format"``).
        columns: panels per row.
    """
    _need(frame, ["model", "block", "n_layers", "label", "window", "tokens", "entropy", "sd", "n"], "entropy_by_window")
    keys = frame["model"].drop_duplicates().tolist()
    labels = frame["label"].drop_duplicates().tolist()
    data = frame.assign(lo=frame["entropy"] - frame["sd"], hi=frame["entropy"] + frame["sd"])
    n_windows = int(frame["window"].max())
    x = alt.X("window:Q", title="window of the generation", axis=alt.Axis(values=list(range(1, n_windows + 1)), format="d"), scale=alt.Scale(domain=[1, n_windows], nice=False))
    colour = alt.Color("label:N", sort=labels, title=legend_title, legend=alt.Legend(orient="bottom"))
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("label:N", title=legend_title),
        alt.Tooltip("window:Q"),
        alt.Tooltip("tokens:N", title="generated tokens"),
        alt.Tooltip("block:Q", title="block"),
        alt.Tooltip("entropy:Q", title="mean entropy (nats)", format=".3f"),
        alt.Tooltip("sd:Q", title="sd over prompts", format=".3f"),
        alt.Tooltip("n:Q", title="prompts"),
    ]
    base = alt.Chart().encode(x=x, color=colour)
    layered = alt.layer(
        base.mark_line().encode(y=alt.Y("entropy:Q", title="mean entropy (nats)", scale=alt.Scale(zero=False))),
        base.mark_area(opacity=0.12).encode(y="lo:Q", y2="hi:Q"),
        base.mark_point(size=25, filled=True).encode(y="entropy:Q", tooltip=tooltip),
        data=data,
    ).properties(width=_FACET_PANEL_WIDTH, height=140)
    blocks = sorted({(int(b), int(n)) for b, n in zip(frame["block"], frame["n_layers"])})
    which = "the last block" if all(b == n for b, n in blocks) else "block " + ", ".join(str(b) for b, _ in blocks)
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)), columns=columns
    ).resolve_scale(y="independent").properties(
        title=alt.Title(title or f"Entropy along the generation, per {legend_title}", subtitle=f"{which}; mean over the prompts, band ±1 sd (each panel its own scale)")
    )


# ---------------------------------------------------------------------------------------------
# families and robustness (chapters 2 and 7)

#: How the depth modes of :func:`elens_utils.analysis.classify.profile_features` are named on the page.
DEPTH_MODE_NAMES = {
    "interpolate": "interpolation on relative depth",
    "zero_pad": "zero-padding (the paper's code)",
    "raw": "raw layer axis",
}


def _json_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every column float or str, so that altair writes NaN / None as JSON null.

    (altair turns NaN in a float column into null, but leaves NaN in an object column, and the
    page's chart data must be strict JSON.) Columns of lists are left alone.
    """
    out = frame.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            continue
        values = [v for v in col.tolist() if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if any(isinstance(v, (list, tuple, np.ndarray)) for v in values):
            continue
        if values and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values):
            out[c] = pd.to_numeric(col, errors="coerce").astype(float)
        else:
            out[c] = ["" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v) for v in col.tolist()]
    return out


def profiles_by_family(frame: pd.DataFrame, *, columns: int = 2, title: str | None = None) -> alt.FacetChart:
    """Mean blank-prompt profiles against relative depth, one panel per family, one line per model.

    Args:
        frame: :func:`depth_frame` of the models (columns ``model``, ``n_layers``, ``layer``,
            ``depth``, ``entropy``, ``sd``, ``lo``, ``hi``, ``n``); a ``family`` column is added
            with :func:`elens_utils.analysis.classify.family_of` when missing.
        columns: panels per row.

    Lines are coloured by the model's depth L (darker: deeper), the band is ±1 sd across the
    model's samples. If the family's profiles overlap, its lines lie on one another.
    """
    from elens_utils.analysis.classify import family_of

    _need(frame, ["model", "n_layers", "layer", "depth", "entropy", "sd", "lo", "hi", "n"], "profiles_by_family")
    data = frame if "family" in frame.columns else frame.assign(family=frame["model"].map(family_of))
    families = data["family"].drop_duplicates().tolist()
    depths = sorted(int(v) for v in data["n_layers"].unique())
    colour = alt.Color(
        "n_layers:O",
        title="blocks L",
        scale=alt.Scale(domain=depths, scheme={"name": "viridis", "extent": [0.75, 0.05]}),
        legend=alt.Legend(orient="bottom", direction="horizontal", symbolType="stroke", symbolStrokeWidth=3),
    )
    x = alt.X("depth:Q", title="relative depth l / L", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f"))
    base = alt.Chart().encode(x=x, color=colour, detail="model:N")
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("layer:Q", title="block"),
        alt.Tooltip("n_layers:Q", title="blocks L"),
        alt.Tooltip("depth:Q", title="l / L", format=".2f"),
        alt.Tooltip("entropy:Q", title="mean entropy (nats)", format=".3f"),
        alt.Tooltip("sd:Q", title="sd (nats)", format=".3f"),
        alt.Tooltip("n:Q", title="samples"),
    ]
    layered = _mean_band_layers(base, data, tooltip, "mean entropy (nats)").properties(width=250, height=170)
    return layered.facet(
        facet=alt.Facet("family:N", sort=families, title=None, header=alt.Header(labelFontSize=13, labelLimit=260)),
        columns=columns,
    ).properties(
        title=alt.Title(title or "Blank-prompt profiles per family", subtitle="one line per model (mean over samples and tokens), band ±1 sd across samples")
    )


def embedding_frame(meta: pd.DataFrame, labels: Sequence[Any], embeddings: Mapping[str, Any]) -> pd.DataFrame:
    """Tidy rows of 2-d embeddings for :func:`embedding_scatter`: one row per (method, sample).

    Args:
        meta: ``[N]`` rows describing the samples (``model``, ``n_layers``; e.g. the ``meta``
            of :func:`elens_utils.analysis.classify.profile_features` with ``return_meta=True``).
        labels: ``[N]`` class of each sample (the colour), e.g. the family.
        embeddings: method name -> ``[N, 2]`` coordinates (from
            :func:`elens_utils.analysis.classify.embed_2d`), in the order the panels should appear.

    Columns: ``method``, ``x``, ``y``, ``label``, ``model``, ``n_layers``, ``sample``.
    """
    _need(meta, ["model", "n_layers"], "embedding_frame")
    n = len(meta)
    if len(labels) != n:
        raise ElensError(f"embedding_frame: {len(labels)} labels for {n} meta rows; give one label per sample.")
    frames = []
    for method, xy in embeddings.items():
        xy = np.asarray(xy, dtype=np.float64)
        if xy.shape != (n, 2):
            raise ElensError(f"embedding_frame: the {method!r} embedding has shape {xy.shape}; expected ({n}, 2), one row per sample.")
        frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "x": xy[:, 0],
                    "y": xy[:, 1],
                    "label": [str(v) for v in labels],
                    "model": meta["model"].to_numpy(),
                    "n_layers": meta["n_layers"].to_numpy(),
                    "sample": np.arange(n),
                }
            )
        )
    if not frames:
        raise ElensError("embedding_frame: give at least one embedding (method name -> [N, 2] array).")
    return pd.concat(frames, ignore_index=True)


def embedding_scatter(frame: pd.DataFrame, *, legend_title: str = "family", title: str | None = None) -> alt.FacetChart:
    """2-d embeddings of the samples side by side (one panel per method), coloured by class.

    Args:
        frame: :func:`embedding_frame` (columns ``method``, ``x``, ``y``, ``label``,
            ``model``, ``n_layers``, ``sample``).
        legend_title: what the colour is (``"family"``).

    The shape tells the model's depth L. Axes carry no unit (t-SNE distances mean little beyond
    neighbourhoods), so each panel has its own scales. Click a legend entry to pick a class.
    """
    _need(frame, ["method", "x", "y", "label", "model", "n_layers", "sample"], "embedding_scatter")
    methods = frame["method"].drop_duplicates().tolist()
    keys = frame["label"].drop_duplicates().tolist()
    sel = alt.selection_point(fields=["label"], bind="legend")
    chart = (
        alt.Chart(frame)
        .mark_point(filled=True, size=28)
        .encode(
            x=alt.X("x:Q", title=None, axis=alt.Axis(labels=False, ticks=False)),
            y=alt.Y("y:Q", title=None, axis=alt.Axis(labels=False, ticks=False)),
            color=alt.Color("label:N", sort=keys, title=legend_title, legend=alt.Legend(orient="bottom", columns=4, labelLimit=220)),
            shape=alt.Shape("n_layers:O", title="blocks L", legend=alt.Legend(orient="bottom")),
            opacity=alt.condition(sel, alt.value(0.75), alt.value(0.06)),
            tooltip=[
                alt.Tooltip("label:N", title=legend_title),
                alt.Tooltip("model:N"),
                alt.Tooltip("n_layers:Q", title="blocks L"),
                alt.Tooltip("sample:Q", title="sample #"),
            ],
        )
        .add_params(sel)
        .properties(width=300, height=280)
    )
    return chart.facet(
        column=alt.Column("method:N", sort=methods, title=None, header=alt.Header(labelFontSize=13)),
    ).resolve_scale(x="independent", y="independent").properties(
        title=alt.Title(title or "The profiles in two dimensions", subtitle="one point per sample; click a legend entry to pick a class")
    )


def auc_tests_chart(table: pd.DataFrame, *, color: str = "depth", title: str | None = None) -> alt.LayerChart:
    """kNN ROC-AUC of several tests (cross-validation, held-out groups), side by side per ``color``.

    Args:
        table: :func:`elens_utils.analysis.classify.depth_rescaling` (``color="depth"``) or
            :func:`elens_utils.analysis.classify.transfer_sweep` (``color="model"``): columns ``test``,
            ``auc``, ``auc_std``, ``dummy_auc``, ``accuracy``, ``n_train``, ``n_test``,
            ``detail``, ``status``, ``note`` and ``color``.
        color: the column that tells the compared variants apart (depth modes are shown with
            their names in :data:`DEPTH_MODE_NAMES`).

    Points: the AUC (for cross-validation, the mean over folds with a ±1 sd bar); dashed: 0.5,
    no information. Rows that could not be scored say so in red.
    """
    _need(table, ["test", "auc", "auc_std", "dummy_auc", "accuracy", "n_train", "n_test", "detail", "status", "note", color], "auc_tests_chart")
    data = table.copy()
    data["variant"] = data[color].map(lambda v: DEPTH_MODE_NAMES.get(v, v) if color == "depth" else v).astype(str)
    data["lo"] = data["auc"] - data["auc_std"].fillna(0.0)
    data["hi"] = data["auc"] + data["auc_std"].fillna(0.0)
    data["label"] = np.where(data["status"] == "ok", "", "not scored: " + data["status"].astype(str))
    data["x_text"] = 0.02
    data = _json_safe(data)
    tests = data["test"].drop_duplicates().tolist()
    variants = data["variant"].drop_duplicates().tolist()
    y = alt.Y("test:N", sort=tests, title=None, axis=alt.Axis(labelLimit=280))
    y_off = alt.YOffset("variant:N", sort=variants)
    colour = alt.Color("variant:N", sort=variants, title=None, legend=alt.Legend(orient="bottom", columns=1, labelLimit=400))
    tooltip = [
        alt.Tooltip("variant:N", title=color),
        alt.Tooltip("test:N"),
        alt.Tooltip("auc:Q", title="kNN AUC", format=".3f"),
        alt.Tooltip("auc_std:Q", title="sd over folds", format=".3f"),
        alt.Tooltip("accuracy:Q", title="kNN accuracy", format=".1%"),
        alt.Tooltip("dummy_auc:Q", title="baseline AUC", format=".3f"),
        alt.Tooltip("n_train:Q", title="training rows"),
        alt.Tooltip("n_test:Q", title="test rows"),
        alt.Tooltip("detail:N", title="tested on"),
        alt.Tooltip("note:N", title="note"),
    ]
    ok = "datum.status == 'ok'"
    base = alt.Chart(data).encode(y=y, yOffset=y_off)
    x = alt.X("auc:Q", title="ROC-AUC", scale=alt.Scale(domain=[0, 1]))
    layers = [
        _ceiling_band(),
        alt.Chart(pd.DataFrame({"x": [0.5]})).mark_rule(strokeDash=[5, 4], color="#777").encode(x="x:Q"),
        base.mark_rule(strokeWidth=2).encode(x=alt.X("lo:Q", scale=alt.Scale(domain=[0, 1])), x2="hi:Q", color=colour).transform_filter(ok),
        base.mark_point(size=80, filled=True).encode(x=x, color=colour, tooltip=tooltip).transform_filter(ok),
        base.mark_text(align="left", fontSize=11, color="#a33").encode(x="x_text:Q", text="label:N", tooltip=tooltip).transform_filter("datum.status != 'ok'"),
    ]
    return alt.layer(*layers).properties(
        width=440,
        height=alt.Step(20),
        title=alt.Title(title or "kNN ROC-AUC by test", subtitle="cross-validation: mean ± 1 sd over folds; held out: one train/test split; dashed: 0.5, no information; shaded: at ceiling"),
    )


def auc_by_setting(table: pd.DataFrame, *, title: str | None = None) -> alt.FacetChart:
    """Cross-validated kNN AUC per setting, one panel per factor varied, with every fold shown.

    Args:
        table: :func:`elens_utils.analysis.classify.robustness_sweep` (columns ``factor``, ``setting``,
            ``baseline``, ``auc_mean``, ``auc_std``, ``auc_min``, ``auc_max``, ``fold_auc``,
            ``dummy_auc_mean``, ``accuracy_mean``, ``k``, ``p_value``). Its ``"baseline"`` row
            is drawn as the dashed rule in every panel.

    Small ticks: the AUC of each fold; large points: the mean over folds (dark: the baseline
    setting). The axis spans the folds' AUCs (the dummy's mean AUC is in the tooltips: the
    chance level is the permutation test's business, see :func:`permutation_chart`).
    """
    _need(table, ["factor", "setting", "baseline", "auc_mean", "auc_std", "auc_min", "auc_max", "fold_auc", "dummy_auc_mean", "accuracy_mean", "k", "p_value"], "auc_by_setting")
    base_row = table[table["factor"] == "baseline"]
    data = table[table["factor"] != "baseline"].copy()
    if data.empty:
        raise ElensError("auc_by_setting: the table varies no setting (only the baseline row): give robustness_sweep some values to vary.")
    data["which"] = np.where(data["baseline"], "the baseline setting", "changed setting")
    data["row"] = np.arange(len(data))
    folds = data[["row", "factor", "setting", "fold_auc"]].explode("fold_auc").rename(columns={"fold_auc": "fold"})
    folds["fold"] = folds["fold"].astype(float)
    summary = data.drop(columns=["fold_auc"])
    long = pd.concat([summary.assign(kind="mean"), folds.assign(kind="fold")], ignore_index=True)
    factors = data["factor"].drop_duplicates().tolist()
    lo = max(0.0, math.floor(float(data["auc_min"].min()) * 20 - 1) / 20)  # a margin of 0.05 or more
    scale = alt.Scale(domain=[lo, 1.0], nice=False)
    y = alt.Y("setting:N", sort=None, title=None, axis=alt.Axis(labelLimit=260))
    tooltip = [
        alt.Tooltip("factor:N"),
        alt.Tooltip("setting:N"),
        alt.Tooltip("auc_mean:Q", title="mean AUC", format=".3f"),
        alt.Tooltip("auc_std:Q", title="sd over folds", format=".3f"),
        alt.Tooltip("auc_min:Q", title="worst fold", format=".3f"),
        alt.Tooltip("auc_max:Q", title="best fold", format=".3f"),
        alt.Tooltip("accuracy_mean:Q", title="accuracy", format=".1%"),
        alt.Tooltip("dummy_auc_mean:Q", title="dummy AUC", format=".3f"),
        alt.Tooltip("p_value:Q", title="paired t-test p", format=".2g"),
    ]
    colour = alt.Color(
        "which:N", title=None, scale=alt.Scale(domain=["the baseline setting", "changed setting"], range=["#1b6ca8", "#e08214"]), legend=alt.Legend(orient="bottom")
    )
    layers = [
        alt.Chart().mark_tick(color="#555", opacity=0.5, thickness=1, size=10).encode(x=alt.X("fold:Q", scale=scale), y=y, tooltip=alt.Tooltip("fold:Q", title="AUC of one fold", format=".3f")).transform_filter("datum.kind == 'fold'"),
        alt.Chart().mark_point(filled=True, size=70).encode(x=alt.X("auc_mean:Q", scale=scale, title="ROC-AUC (mean over folds; ticks: single folds)"), y=y, color=colour, tooltip=tooltip).transform_filter("datum.kind == 'mean'"),
    ]
    if len(base_row):
        long["base_auc"] = float(base_row["auc_mean"].iloc[0])
        layers.append(alt.Chart().mark_rule(strokeDash=[4, 3], color="#1b6ca8", opacity=0.6).encode(x=alt.X("base_auc:Q", scale=scale)).transform_filter("datum.kind == 'mean'"))
    layered = alt.layer(*layers, data=_json_safe(long)).properties(width=420, height=alt.Step(20))
    return layered.facet(
        row=alt.Row("factor:N", sort=factors, title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=13, labelLimit=200)),
    ).resolve_scale(y="independent").properties(
        title=alt.Title(title or "How the AUC moves with each setting", subtitle="one setting changed at a time; points: mean over folds, ticks: single folds; dashed: the baseline's mean")
    )


def permutation_chart(null: Sequence[float], score: float, p_value: float, *, title: str | None = None) -> alt.LayerChart:
    """The permutation test: histogram of the AUCs on shuffled labels, the true AUC as a rule.

    Args:
        null: the ``[n_permutations]`` mean AUCs on shuffled labels
            (:func:`elens_utils.analysis.classify.permutation_test`).
        score: the mean AUC on the true labels; p_value: the permutation p-value.
    """
    values = np.asarray(null, dtype=np.float64)
    if values.ndim != 1 or not len(values) or not np.isfinite(values).all():
        raise ElensError("permutation_chart: null must be a non-empty 1-d array of finite AUCs (from permutation_test).")
    data = pd.DataFrame({"auc": values})
    lo = min(0.4, float(values.min()) - 0.02)
    scale = alt.Scale(domain=[max(0.0, lo), 1.0], nice=False)
    marks = pd.DataFrame({"x": [float(score)], "what": [f"true labels: AUC {score:.3f}, p = {p_value:.2g}"]})
    hist = alt.Chart(data).mark_bar(color="#9e9e9e", opacity=0.8).encode(
        x=alt.X("auc:Q", bin=alt.Bin(maxbins=40, extent=[max(0.0, lo), 1.0]), title="mean ROC-AUC over folds", scale=scale),
        y=alt.Y("count():Q", title="permutations"),
        tooltip=[alt.Tooltip("count():Q", title="permutations")],
    )
    rule = alt.Chart(marks).mark_rule(color=_EXPANSION, strokeWidth=2.5).encode(x=alt.X("x:Q", scale=scale), tooltip=alt.Tooltip("what:N", title="observed"))
    text = alt.Chart(marks).mark_text(align="right", dx=-6, dy=-120, color=_EXPANSION, fontSize=12).encode(x=alt.X("x:Q", scale=scale), text="what:N")
    return alt.layer(hist, rule, text).properties(
        width=480,
        height=240,
        title=alt.Title(title or "Permutation test", subtitle=f"grey: the AUC with the labels shuffled, {len(values)} times; orange: with the true labels"),
    )


def knn_scores_heatmap(
    summary: pd.DataFrame,
    *,
    column: str,
    metric: str = "auc",
    legend_title: str | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> alt.LayerChart:
    """A kNN score per model (rows) and per value of ``column`` (columns), as a table of colours.

    For many models x a few settings (variants of the prompts, feature sets), where one dot plot
    row per pair would be too tall. Each cell shows the mean over folds; the tooltip adds the
    spread over folds and the dummy.

    Args:
        summary: rows of :attr:`elens_utils.analysis.knn_tables.KnnTable.summary`, one per (model,
            ``column`` value) (columns ``model``, ``k``, ``n``, ``auc_mean``, ``auc_std``,
            ``accuracy_mean``, ``accuracy_std``, ``dummy_auc_mean``, ``dummy_accuracy_mean``,
            ``p_value`` and ``column``).
        column: the summary column of the x axis (``"subset"``, ``"features"``).
        metric: ``"auc"`` (colours from 0.5, no information, to 1) or ``"accuracy"`` (0 to 1).
        legend_title: the x axis title (default: ``column``).
    """
    _need(summary, ["model", "k", "n", "auc_mean", "auc_std", "accuracy_mean", "accuracy_std", "dummy_auc_mean", "dummy_accuracy_mean", "p_value", column], "knn_scores_heatmap")
    if metric not in _SCORE_TITLES:
        raise ElensError(f"knn_scores_heatmap(): metric must be 'auc' or 'accuracy'; got {metric!r}.")
    if summary.duplicated(["model", column]).any():
        raise ElensError(f"knn_scores_heatmap(): several rows per (model, {column}); filter the summary to one k and one of everything else.")
    data = summary.assign(
        key=summary[column].astype(str),
        mean=summary[f"{metric}_mean"],
        sd=summary[f"{metric}_std"],
        dummy=summary[f"dummy_{metric}_mean"],
        text=summary[f"{metric}_mean"].map(lambda v: f"{v:.2f}"),
    )
    models = data["model"].drop_duplicates().tolist()
    keys = data["key"].drop_duplicates().tolist()
    name = _SCORE_TITLES[metric]
    low = 0.5 if metric == "auc" else 0.0
    base = alt.Chart(data).encode(
        x=alt.X("key:N", sort=keys, title=legend_title or column, axis=alt.Axis(labelAngle=0, orient="top", labelLimit=160)),
        y=alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260)),
    )
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("key:N", title=legend_title or column),
        alt.Tooltip("mean:Q", title=f"kNN {name} (mean over folds)", format=".3f"),
        alt.Tooltip("sd:Q", title="sd over folds", format=".3f"),
        alt.Tooltip("dummy:Q", title=f"dummy {name}", format=".3f"),
        alt.Tooltip("p_value:Q", title="paired t-test p (AUC)", format=".2g"),
        alt.Tooltip("k:Q", title="k used"),
        alt.Tooltip("n:Q", title="prompts"),
    ]
    cells = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("mean:Q", title=name, scale=alt.Scale(scheme="blues", domain=[low, 1.0], clamp=True), legend=alt.Legend(orient="right", gradientLength=120)),
        tooltip=tooltip,
    )
    text = base.mark_text(fontSize=12).encode(
        text="text:N",
        color=alt.condition(f"datum.mean > {(low + 1.0) / 2:.6g}", alt.value("white"), alt.value("black")),
        tooltip=tooltip,
    )
    return (cells + text).properties(
        width=alt.Step(110),
        height=alt.Step(24),
        title=alt.Title(title or f"kNN {name} per model and {legend_title or column}", subtitle=subtitle or "mean over folds; hover a cell for its spread and the dummy"),
    )
