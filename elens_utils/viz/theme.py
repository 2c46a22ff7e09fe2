"""The book's chart theme and the parts its charts share: colours, facet sizes, the ceiling band,
the mean-and-band layers, the check of a frame's columns, the tooltips (:func:`tooltips`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from elens_utils.analysis.comparison import AUC_CEILING
from elens_utils.core.errors import ElensError

#: CSS class of every chart container that :func:`to_html` emits (the book's tests look for it).
CHART_CLASS = "elens-chart"
#: Where the Vega bundle lives, relative to the book's static directory (``_static/``).
VEGA_BUNDLE = "elens/vega-bundle.js"
#: Vega-Lite version of the specs altair writes, e.g. ``"6.4"`` (what the bundle must match).
VEGALITE_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])

EXPANSION_COLOUR, PRUNING_COLOUR = "#d95f02", "#1b6ca8"  # orange / blue, distinct for colour-blind readers
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

#: The book's altair theme (a Vega-Lite top-level config), applied by :func:`chart_spec`.
THEME: dict[str, Any] = {
    "background": "white",
    "padding": 8,
    "config": {
        "font": FONT,
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
FACET_COLUMNS = 2
FACET_PANEL_WIDTH = 170


@alt.theme.register("elens", enable=False)
def _elens_theme() -> alt.theme.ThemeConfig:
    return THEME  # type: ignore[return-value]


def need_columns(frame: pd.DataFrame, columns: Sequence[str], fn: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ElensError(f"{fn}() needs the columns {list(columns)}; the frame lacks {missing}.")


def tooltips(*fields: str | tuple[str, str | None] | tuple[str, str | None, str] | alt.Tooltip) -> list[alt.Tooltip]:
    """Altair tooltips from short specs, one per field, in the order given.

    ``"model:N"`` stands for ``alt.Tooltip("model:N")``, ``("rho:Q", "ρ (size)")`` for
    ``alt.Tooltip("rho:Q", title="ρ (size)")`` and ``("rho:Q", "ρ (size)", ".3f")`` for
    ``alt.Tooltip("rho:Q", title="ρ (size)", format=".3f")``: only the arguments a spec gives are
    passed, so the chart's spec is the same as with the hand-written tooltips (a title of ``None``
    is passed, and written as ``null``).

    Args:
        *fields: each a field with its Vega-Lite type (``"name:N"``, ``"name:Q"``, ...), a
            ``(field, title)`` or ``(field, title, format)`` tuple (``format``: a d3 format such as
            ``".3f"``, ``".1%"`` or ``","``), or an :class:`altair.Tooltip`, kept as it is (for any
            other argument, e.g. a format without a title).

    Returns:
        The tooltips, a list of ``len(fields)`` :class:`altair.Tooltip`, for an encoding's ``tooltip=``.

    Raises:
        ElensError: a tuple of other than two or three items.
    """
    out = []
    for spec in fields:
        if isinstance(spec, alt.Tooltip):
            out.append(spec)
        elif isinstance(spec, str):
            out.append(alt.Tooltip(spec))
        elif len(spec) in (2, 3):
            out.append(alt.Tooltip(spec[0], **dict(zip(("title", "format"), spec[1:]))))
        else:
            raise ElensError(f"tooltips() takes a field, (field, title) or (field, title, format); got {spec!r}.")
    return out


def ceiling_band() -> alt.Chart:
    """A shaded strip from :data:`~elens_utils.analysis.comparison.AUC_CEILING` to 1 on an AUC x axis:
    results inside it are at ceiling, where the classifier has nothing left to show."""
    band = pd.DataFrame({"x": [AUC_CEILING], "x2": [1.0], "what": [f"ceiling: AUC ≥ {AUC_CEILING:g}"]})
    return alt.Chart(band).mark_rect(color="#d9d9d9", opacity=0.6).encode(
        x=alt.X("x:Q", scale=alt.Scale(domain=[0, 1])), x2="x2:Q", tooltip=alt.Tooltip("what:N", title="shaded")
    )


def mean_band_layers(base: alt.Chart, data: pd.DataFrame, tooltip: list, y_title: str) -> alt.LayerChart:
    """Mean line, a band ``lo``..``hi`` and hoverable points of ``entropy`` against ``base``'s x
    (a layer chart to facet). The line comes first: the legend draws its symbols from it."""
    return alt.layer(
        base.mark_line().encode(y=alt.Y("entropy:Q", title=y_title)),
        base.mark_area(opacity=0.12).encode(y="lo:Q", y2="hi:Q"),
        base.mark_point(size=25, filled=True).encode(y="entropy:Q", tooltip=tooltip),
        data=data,
    )


def json_safe(frame: pd.DataFrame) -> pd.DataFrame:
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
