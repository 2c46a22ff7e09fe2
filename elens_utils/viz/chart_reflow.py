"""Phone layouts for the book's charts: the same Vega-Lite spec, laid out again for a narrow column.

A chart drawn for the desktop column (about 620 px) shrinks to fit a phone's (about 360 px), and
its 12-px labels shrink with it, to 6-7 px. :func:`narrow_spec` lays the same chart out again for
:data:`NARROW_WIDTH` px instead: panels side by side stack, wrapped facets take one column, plots and
label limits narrow, legends move under the plot and long titles wrap onto several lines. The data,
marks, scales and tooltips are untouched, so the narrow chart shows exactly what the wide one does.

The book's page script (:func:`elens_utils.viz.charts.to_html`) draws the narrow layout instead of the
wide one when the chart's column is narrower than :data:`NARROW_BREAK` px.
"""

from __future__ import annotations

import copy
import textwrap
from typing import Any

NARROW_WIDTH = 340
"""px: the width a narrow layout aims at (a 400-px phone screen, less the page's margins)."""

NARROW_BREAK = 560
"""px: a chart whose column is narrower than this is drawn with its narrow layout."""

PLOT_WIDTH = 230
"""px: the width of one plot in the narrow layout, leaving room for a y axis."""

PANEL_WIDTH = 115
"""px: the width of one panel of a wrapped facet in the narrow layout, two panels to a row."""

LABEL_LIMIT = 110
"""px: the longest x-axis label in the narrow layout; longer ones end in an ellipsis."""

Y_LABEL_LIMIT = 200
"""px: the longest label of a y axis of categories (model names, settings), which carry meaning."""

BAND_PLOT_WIDTH = 160
"""px: the width of a plot with a y axis of categories, leaving room for their labels."""

WIDE_LEGEND_LABEL_LIMIT = 300
"""px: legend labels the chart allowed to be long stay whole, one to a row."""

LEGEND_LABEL_LIMIT = 145
"""px: the longest legend label in the narrow layout (two columns of them fit :data:`NARROW_WIDTH`)."""

TITLE_CHARS = 42
"""Characters per line of a wrapped chart title or subtitle (14-px and 12-px fonts)."""


_VIEW_KEYS = ("mark", "layer", "facet", "hconcat", "vconcat", "concat", "spec", "encoding")
_POSITION = ("x", "y")
_LEGENDS = ("color", "fill", "stroke", "shape", "size", "opacity", "strokeDash", "strokeWidth")


def narrow_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The chart ``spec`` laid out for a column of :data:`NARROW_WIDTH` px.

    Args:
        spec: a Vega-Lite spec as altair writes it (``chart.to_dict()``); not modified.

    Returns:
        A new spec without the ``datasets`` entry (the page script shares the wide spec's data
        with it): ``hconcat`` becomes ``vconcat``; a facet by column and a wrapped concat take one
        column, a wrapped facet at most two (panels of :data:`PANEL_WIDTH` px); widths above
        :data:`PLOT_WIDTH` (:data:`BAND_PLOT_WIDTH` beside a y axis of categories) shrink to it;
        label limits are at most :data:`LABEL_LIMIT` (x), :data:`Y_LABEL_LIMIT` (y) and
        :data:`LEGEND_LABEL_LIMIT` (legends the chart let run long keep one label a row), a
        header's the panel's width; legends on the right or left move to the bottom; text written
        into the cells of a grid of categories is dropped (the tooltips keep it); titles,
        subtitles and long axis titles wrap.
    """
    out = _narrow_view({k: v for k, v in spec.items() if k != "datasets"})
    config = copy.deepcopy(out.get("config", {}))
    legend = config.setdefault("legend", {})
    legend.update(orient="bottom", labelLimit=min(legend.get("labelLimit", LEGEND_LABEL_LIMIT), LEGEND_LABEL_LIMIT), offset=14)
    # several legends under the plot stack rather than stand side by side: Vega's legend layout,
    # which Vega-Lite's schema admits only as an expression (Vega evaluates it)
    legend["layout"] = {"expr": "{bottom: {anchor: 'start', direction: 'vertical', margin: 6}}"}
    view = config.setdefault("view", {})
    for key in ("continuousWidth", "discreteWidth"):
        if not isinstance(view.get(key), (int, float)) or view[key] > PLOT_WIDTH:
            view[key] = PLOT_WIDTH
    # an axis of many ticks: drop labels that would collide rather than overprint them
    config.setdefault("axisX", {}).setdefault("labelOverlap", True)
    out["config"] = config
    return out


def _narrow_view(view: dict[str, Any], plot_width: int = PLOT_WIDTH) -> dict[str, Any]:
    """One view (single, layered, faceted or concatenated) of a spec, narrowed to plots at most
    ``plot_width`` px wide; a new dict."""
    view = dict(view)
    if "hconcat" in view:
        view["vconcat"] = view.pop("hconcat")
    if _band_y(view):
        plot_width = min(plot_width, BAND_PLOT_WIDTH)
    if "layer" in view:
        # labels written inside the cells of a heat-map do not fit a phone's cells: the tooltips keep them
        view["layer"] = [v for v in view["layer"] if not _cell_text(v)]
    for key in ("layer", "vconcat", "concat"):
        if key in view:
            view[key] = [_narrow_view(v, plot_width) if _is_view(v) else v for v in view[key]]
    if "concat" in view:
        view["columns"] = 1
    if "facet" in view:
        facet = copy.deepcopy(view["facet"])
        panel_width = PLOT_WIDTH
        if isinstance(facet, dict) and "column" in facet and "row" not in facet:
            facet = facet["column"]  # a facet across becomes a wrapped facet, one panel per row
            view["columns"] = 1
        elif isinstance(facet, dict) and "field" in facet:
            # a grid of small multiples stays a grid, two narrower panels to a row
            view["columns"] = min(view.get("columns") or 1, 2)
            panel_width = PANEL_WIDTH if view["columns"] == 2 else PLOT_WIDTH
        if isinstance(facet, dict) and "field" in facet:
            _limit_header(facet, panel_width)
        elif isinstance(facet, dict):
            for channel in ("row", "column"):
                if isinstance(facet.get(channel), dict):
                    _limit_header(facet[channel], PLOT_WIDTH)
            if isinstance(facet.get("row"), dict) and isinstance(facet["row"].get("header"), dict):
                # row labels above their panel rather than beside it, where they take the width
                facet["row"]["header"].update(labelOrient="top", labelAngle=0, labelAlign="left", labelAnchor="start")
        view["facet"] = facet
        if isinstance(view.get("spec"), dict):
            view["spec"] = _narrow_view(view["spec"], panel_width)
    elif isinstance(view.get("spec"), dict):
        view["spec"] = _narrow_view(view["spec"])
    width = view.get("width")
    if isinstance(width, (int, float)) and width > plot_width:
        view["width"] = plot_width
    elif isinstance(width, dict) and "step" in width:
        view["width"] = plot_width  # the band's step follows from the width and the category count
    if isinstance(view.get("encoding"), dict):
        view["encoding"] = _narrow_encoding(view["encoding"], few_ticks=plot_width <= PANEL_WIDTH, plot_width=plot_width)
    if "title" in view:
        view["title"] = _wrap_title(view["title"])
    return view


def _is_view(obj: Any) -> bool:
    return isinstance(obj, dict) and any(k in obj for k in _VIEW_KEYS)


def _categorical(view: dict[str, Any], channel: str) -> bool:
    """Whether ``view`` encodes ``channel`` with categories (a nominal or ordinal field)."""
    field = view.get("encoding", {}).get(channel)
    return isinstance(field, dict) and field.get("type") in ("nominal", "ordinal")


def _band_y(view: dict[str, Any]) -> bool:
    """Whether the view (or one of its layers) has a y axis of categories."""
    return any(_categorical(v, "y") for v in [view, *view.get("layer", [])] if isinstance(v, dict))


def _cell_text(view: Any) -> bool:
    """A text layer written into the cells of a grid of categories (x and y both categorical)."""
    if not isinstance(view, dict):
        return False
    mark = view.get("mark")
    kind = mark.get("type") if isinstance(mark, dict) else mark
    return kind == "text" and _categorical(view, "x") and _categorical(view, "y")


def _narrow_encoding(encoding: dict[str, Any], *, few_ticks: bool = False, plot_width: int = PLOT_WIDTH) -> dict[str, Any]:
    """``encoding`` narrowed for a plot ``plot_width`` px wide; ``few_ticks`` (a narrow facet
    panel) asks a quantitative x axis for about three ticks, so that its labels do not run into
    each other."""
    title_chars = max(20, plot_width // 6)  # 13-px axis titles; "relative depth l / L" stays whole
    encoding = copy.deepcopy(encoding)
    for channel in _POSITION:
        field = encoding.get(channel)
        if not isinstance(field, dict):
            continue
        if few_ticks and channel == "x" and field.get("type") == "quantitative" and field.get("axis", {}) is not None:
            field["axis"] = {**(field.get("axis") or {}), "tickCount": 3}
        axis = field.get("axis")
        if isinstance(axis, dict):
            limit = Y_LABEL_LIMIT if channel == "y" else LABEL_LIMIT
            if axis.get("labelLimit", 0) > limit:
                axis["labelLimit"] = limit
            # level labels of a nominal x axis are words: tilt them rather than let them collide
            if channel == "x" and field.get("type") == "nominal" and axis.get("labelAngle") == 0:
                # tilted labels do not collide; leaning away from the plot's right edge
                axis.update(labelAngle=35 if axis.get("orient") == "top" else -35, labelOverlap=False)
            elif channel == "x" and field.get("type") == "ordinal":
                axis.setdefault("labelOverlap", "parity")  # many blocks: every other label, not a smear
        if isinstance(field.get("title"), str) and len(field["title"]) > title_chars:
            field["title"] = textwrap.wrap(field["title"], title_chars)
    for channel in _LEGENDS:
        field = encoding.get(channel)
        if not isinstance(field, dict) or "field" not in field or field.get("legend", {}) is None:
            continue  # a constant ({"value": ...}) draws no legend
        legend = dict(field.get("legend") or {})
        if legend.get("orient", "right") in ("right", "left", "top-right", "bottom-right"):
            legend["orient"] = "bottom"
        if legend.get("labelLimit", 0) > LEGEND_LABEL_LIMIT:
            # the chart let these labels be long: keep them whole, one to a row
            legend.update(labelLimit=min(legend["labelLimit"], WIDE_LEGEND_LABEL_LIMIT), columns=1)
        if legend.get("gradientLength", 0) > PLOT_WIDTH:
            legend["gradientLength"] = PLOT_WIDTH
        if field.get("type") == "nominal" and "columns" not in legend:
            legend["columns"] = 2
        if isinstance(field.get("title"), str) and len(field["title"]) > title_chars:
            field["title"] = textwrap.wrap(field["title"], title_chars)
        field["legend"] = legend
    return encoding


def _limit_header(facet_field: dict[str, Any], width: int) -> None:
    header = facet_field.setdefault("header", {})
    if isinstance(header, dict):
        header["labelLimit"] = min(header.get("labelLimit") or width, width)


def _wrap_title(title: Any) -> Any:
    """A title (string or ``{"text", "subtitle", ...}``) with its text and subtitle wrapped."""
    if isinstance(title, str):
        return _wrap(title)
    if isinstance(title, dict):
        title = dict(title)
        for key in ("text", "subtitle"):
            if key in title:
                title[key] = _wrap(title[key])
        return title
    return title


def _wrap(text: Any) -> Any:
    """Lines of at most :data:`TITLE_CHARS` characters (lines broken for the wide layout are
    joined and broken again)."""
    if isinstance(text, list):
        text = " ".join(str(item) for item in text)
    if isinstance(text, str):
        lines = textwrap.wrap(text, TITLE_CHARS) or [text]
        return lines[0] if len(lines) == 1 else lines
    return text
