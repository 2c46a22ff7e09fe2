"""Phone layouts of the book's charts: each rule of chart_reflow.narrow_spec on hand-made specs;
and the charts' tooltips built by theme.tooltips."""

import copy

import altair as alt
import pytest

from elens_utils import ElensError
from elens_utils.viz import chart_reflow as cr
from elens_utils.viz.theme import tooltips


def _field(name: str, kind: str = "quantitative", **extra) -> dict:
    return {"field": name, "type": kind, **extra}


def test_a_wrapped_facet_keeps_two_narrow_panels_to_a_row_and_asks_for_few_x_ticks():
    spec = {
        "data": {"name": "d"}, "datasets": {"d": [{"m": "a", "x": 1, "y": 2}]},
        "facet": _field("m", "nominal", header={"labelLimit": 220}), "columns": 3,
        "spec": {"width": 170, "mark": "line", "encoding": {"x": _field("x", axis={"format": ".1f"}), "y": _field("y")}},
    }  # fmt: skip
    before = copy.deepcopy(spec)
    out = cr.narrow_spec(spec)
    assert spec == before  # the wide spec is untouched
    assert "datasets" not in out and out["data"] == {"name": "d"}  # the page shares the wide spec's data
    assert out["columns"] == 2 and out["spec"]["width"] == cr.PANEL_WIDTH
    assert out["facet"]["header"]["labelLimit"] == cr.PANEL_WIDTH
    assert out["spec"]["encoding"]["x"]["axis"] == {"format": ".1f", "tickCount": 3}
    alt.TopLevelSpec.validate({**out, "datasets": spec["datasets"]})
    single = cr.narrow_spec({**spec, "columns": 1})
    assert single["columns"] == 1 and single["spec"]["width"] == 170  # one panel a row: only wider ones narrow
    assert "tickCount" not in single["spec"]["encoding"]["x"]["axis"]


def test_side_by_side_becomes_one_above_the_other():
    view = {"mark": "point", "width": 300, "encoding": {"x": _field("x")}}
    out = cr.narrow_spec({"data": {"values": []}, "hconcat": [view, view]})
    assert "hconcat" not in out and [v["width"] for v in out["vconcat"]] == [cr.PLOT_WIDTH] * 2
    across = cr.narrow_spec({"data": {"values": []}, "facet": {"column": _field("method", "nominal")}, "spec": view})
    assert across["facet"] == {**_field("method", "nominal"), "header": {"labelLimit": cr.PLOT_WIDTH}} and across["columns"] == 1
    concat = cr.narrow_spec({"data": {"values": []}, "concat": [view, view], "columns": 2})
    assert concat["columns"] == 1
    for spec in (out, across, concat):
        alt.TopLevelSpec.validate(spec)


def test_row_labels_go_above_their_panel():
    spec = {"data": {"values": []}, "facet": {"row": _field("factor", "nominal", header={"labelAngle": 0, "labelLimit": 200})},
            "spec": {"mark": "tick", "width": 420, "encoding": {"x": _field("auc")}}}  # fmt: skip
    out = cr.narrow_spec(spec)
    header = out["facet"]["row"]["header"]
    assert header["labelOrient"] == "top" and header["labelAngle"] == 0 and header["labelLimit"] == 200
    assert out["spec"]["width"] == cr.PLOT_WIDTH
    alt.TopLevelSpec.validate(out)


def test_legends_move_under_the_plot_and_labels_are_limited():
    enc = {
        "x": _field("block", "nominal", axis={"labelAngle": 0, "labelLimit": 160}),
        "y": _field("model", "nominal", axis={"labelLimit": 260}),
        "color": _field("family", "nominal", legend={"orient": "right", "labelLimit": 400}),
        "opacity": _field("v", legend={"gradientLength": 400}),
        "shape": _field("n", "nominal", legend=None),
        "size": _field("s", "nominal", legend={"orient": "top", "columns": 4}),
    }
    out = cr.narrow_spec({"data": {"values": []}, "mark": "point", "width": {"step": 110}, "encoding": enc})
    got = out["encoding"]
    assert isinstance(out["width"], int)  # a step width becomes a width
    assert got["x"]["axis"] == {"labelAngle": -35, "labelLimit": cr.LABEL_LIMIT, "labelOverlap": False}
    assert got["y"]["axis"]["labelLimit"] == cr.Y_LABEL_LIMIT  # category labels carry meaning: longer
    assert out["width"] == cr.BAND_PLOT_WIDTH  # and leave less room to the plot
    # labels the chart allowed to be long stay whole, one to a row
    assert got["color"]["legend"] == {"orient": "bottom", "labelLimit": cr.WIDE_LEGEND_LABEL_LIMIT, "columns": 1}
    assert got["opacity"]["legend"] == {"orient": "bottom", "gradientLength": cr.PLOT_WIDTH}  # quantitative: no columns
    assert got["shape"]["legend"] is None  # no legend stays no legend
    assert got["size"]["legend"] == {"orient": "top", "columns": 4}  # a placement the chart chose is kept
    assert out["config"]["legend"]["orient"] == "bottom" and "direction: 'vertical'" in out["config"]["legend"]["layout"]["expr"]
    assert out["config"]["view"]["continuousWidth"] == cr.PLOT_WIDTH
    top = cr.narrow_spec({"mark": "rect", "encoding": {"x": _field("k", "nominal", axis={"labelAngle": 0, "orient": "top"})}})
    assert top["encoding"]["x"]["axis"]["labelAngle"] == 35  # leaning left, away from the plot's right edge
    alt.TopLevelSpec.validate(out)


def test_titles_wrap_into_lines():
    long = "Family identification: how the AUC moves with each choice the paper fixed"
    out = cr.narrow_spec({"data": {"values": []}, "mark": "point", "title": {"text": long, "subtitle": [long, "short"]},
                          "encoding": {"x": _field("x", title="ROC-AUC (mean over folds; ticks: single folds)")}})  # fmt: skip
    text, subtitle = out["title"]["text"], out["title"]["subtitle"]
    assert isinstance(text, list) and " ".join(text) == long and max(map(len, text)) <= cr.TITLE_CHARS
    assert " ".join(subtitle) == long + " short"  # lines broken for the wide layout are broken again
    assert max(map(len, subtitle)) <= cr.TITLE_CHARS
    axis_title = out["encoding"]["x"]["title"]
    assert isinstance(axis_title, list) and max(map(len, axis_title)) <= cr.PLOT_WIDTH // 6
    assert cr.narrow_spec({"mark": "point", "title": "short"})["title"] == "short"
    alt.TopLevelSpec.validate(out)


def test_heat_map_cell_labels_go_and_many_blocks_show_every_other_label():
    cell = {"mark": {"type": "text"}, "encoding": {"x": _field("block", "ordinal"), "y": _field("token", "nominal"), "text": _field("top", "nominal")}}
    rects = {"mark": "rect", "encoding": {"x": _field("block", "ordinal", axis={"labelAngle": 0}), "y": _field("token", "nominal"), "color": _field("h")}}
    bar_label = {"mark": {"type": "text"}, "encoding": {"x": _field("mb"), "y": _field("probe", "nominal"), "text": _field("mb")}}
    out = cr.narrow_spec({"data": {"values": []}, "layer": [rects, cell, bar_label]})
    assert [v["mark"] for v in out["layer"]] == ["rect", {"type": "text"}]  # the cells' text went, the bar's label stays
    assert out["layer"][1]["encoding"]["x"]["type"] == "quantitative"
    assert out["layer"][0]["encoding"]["x"]["axis"]["labelOverlap"] == "parity"
    assert out["config"]["legend"]["offset"] == 14  # a bottom legend keeps clear of the axis title
    alt.TopLevelSpec.validate(out)


def test_tooltips_are_the_hand_written_ones():
    kept = alt.Tooltip("accuracy:Q", format=".1%")  # a format without a title: passed as it is
    got = tooltips("model:N", ("rho:Q", "ρ (size)"), ("rho:Q", "ρ (size)", ".3f"), ("label:N", None), kept)
    want = [
        alt.Tooltip("model:N"),
        alt.Tooltip("rho:Q", title="ρ (size)"),
        alt.Tooltip("rho:Q", title="ρ (size)", format=".3f"),
        alt.Tooltip("label:N", title=None),
        alt.Tooltip("accuracy:Q", format=".1%"),
    ]
    assert [t.to_dict() for t in got] == [t.to_dict() for t in want]
    assert got[4] is kept
    # the title and the format land where they belong, and nothing is added
    assert got[0].to_dict() == {"field": "model", "type": "nominal"}
    assert got[1].to_dict() == {"field": "rho", "type": "quantitative", "title": "ρ (size)"}
    assert got[2].to_dict() == {"field": "rho", "type": "quantitative", "title": "ρ (size)", "format": ".3f"}
    assert got[2].to_dict() != alt.Tooltip("rho:Q", title=".3f", format="ρ (size)").to_dict()
    assert got[3].to_dict() == {"field": "label", "type": "nominal", "title": None}  # a None title is written as null
    chart = alt.Chart().mark_point().encode(tooltip=got)
    assert chart.to_dict()["encoding"]["tooltip"] == alt.Chart().mark_point().encode(tooltip=want).to_dict()["encoding"]["tooltip"]
    assert tooltips() == []
    with pytest.raises(ElensError, match="field, title"):
        tooltips(("model:N",))
