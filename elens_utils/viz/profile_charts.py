"""Charts of entropy profiles (chapter 1): the lens heat-map, Shannon against Rényi, expansion and
pruning, profiles against relative depth."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.entropy.stats import order_label  # re-exported: its old home
from elens_utils.viz.theme import EXPANSION_COLOUR, PRUNING_COLOUR, need_columns, tooltips

# ---------------------------------------------------------------------------------------------
# charts


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
    need_columns(frame, ["position", "label", "layer", "entropy", "top1", "p_top1", "top", "token", "next"], "profile_heatmap")
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
        tooltip=tooltips(
            ("position:Q", "position"), ("token:N", "token"), ("next:N", "actual next token"),
            ("layer:O", "block"), ("entropy:Q", "entropy (nats)", ".3f"), ("top:N", "top predictions"),
        ),
    )
    chart: alt.Chart | alt.LayerChart = rect
    if labels:
        text = base.mark_text(fontSize=10, limit=max(20, width / n_layers - 4)).encode(
            text="top1:N",
            color=alt.condition(f"datum.entropy > {0.55 * hmax:.6g}", alt.value("black"), alt.value("white")),
            tooltip=tooltips(("top:N", "top predictions")),
        )
        chart = rect + text
    return chart.properties(
        width=width,
        height=alt.Step(24),
        title=alt.Title(
            title or "Lens entropy at every position and block",
            subtitle="cell text (on a wide screen) and tooltips: the block's most probable next token" if labels else "hover a cell for the block's most probable next tokens",
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
    need_columns(frame, [x, "order", "alpha", "entropy"], "shannon_vs_renyi")
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
            tooltip=tooltips(
                "order:N", alt.Tooltip(f"{x}:Q", format=".3g"), ("entropy:Q", "entropy (nats)", ".3f"),
            )
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
    need_columns(frame, ["layer", "alpha", "entropy", "dH", "phase"], "expansion_pruning")
    data = frame[frame["alpha"] == float(alpha)].sort_values("layer").copy()
    if data.empty:
        raise ElensError(f"expansion_pruning(): no rows with alpha={alpha}; the frame has {sorted(frame['alpha'].unique())}.")
    data["prev_layer"] = data["layer"].shift(1)
    data["prev_entropy"] = data["entropy"].shift(1)
    n_layers = int(data["layer"].max())
    order = ["expansion", "pruning", "first block", "flat"]
    colours = dict(zip(order, [EXPANSION_COLOUR, PRUNING_COLOUR, "#999999", "#bbbbbb"]))
    present = [p for p in order if (data["phase"] == p).any()]
    phases = alt.Scale(domain=present, range=[colours[p] for p in present])
    axis = alt.Axis(values=list(range(1, n_layers + 1)), format="d") if n_layers <= 24 else alt.Axis(tickMinStep=1, format="d")
    x = alt.X("layer:Q", title="block (layer)", axis=axis, scale=alt.Scale(domain=[1, n_layers], padding=14, nice=False))
    tooltip = tooltips(
        ("layer:Q", "block"), ("entropy:Q", "entropy (nats)", ".3f"), ("dH:Q", "dH (nats)", "+.3f"), "phase:N",
    )
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
    need_columns(frame, ["depth", "entropy", "layer", "n_layers", "n", color], "profiles_by_depth")
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
    tooltip = tooltips(
        f"{color}:N", ("layer:Q", "block"), ("n_layers:Q", "blocks L"), ("depth:Q", "l / L", ".2f"),
        ("entropy:Q", "mean entropy (nats)", ".3f"),
        *([("sd:Q", "sd (nats)", ".3f")] if "sd" in frame.columns else []), ("n:Q", "profiles"),
    )
    layers.append(
        base.mark_point(size=30).encode(y=y, opacity=faded, tooltip=tooltip)
    )
    return alt.layer(*layers).properties(
        width=520,
        height=300,
        title=alt.Title(title or "Entropy profiles against relative depth", subtitle="click a legend entry to pick a model; band: ±1 sd across samples"),
    )
