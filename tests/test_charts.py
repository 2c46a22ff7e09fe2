"""The book's charts: tidy frames, valid Vega-Lite specs with the expected encodings, and an
offline HTML renderer that emits no network reference and no copy of the chart library."""

import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from elens_utils import ElensError, charts, load_model, prompt_lens


@pytest.fixture(scope="module")
def gpt2(tiny_model_dirs):
    return load_model(tiny_model_dirs["gpt2"])


@pytest.fixture(scope="module")
def lens(gpt2):
    return prompt_lens(gpt2, "the old man saw a red bird", alphas=(1.0, 0.5, math.inf), k=3)


@pytest.fixture(scope="module")
def depth(tiny_model_dirs):
    out = []
    for arch in ("gpt2", "llama"):
        lm = load_model(tiny_model_dirs[arch])
        blank = lm.tokenizer.bos_token_id if lm.tokenizer.bos_token_id is not None else lm.tokenizer.eos_token_id
        out.append(lm.profile([[blank]] * 3, max_new_tokens=3, do_sample=True, temperature=0.7, seed=0, progress=False))
    return charts.depth_frame(out)


def _params(spec) -> list:
    """Every selection parameter anywhere in a spec (altair lifts them to the top level)."""
    if isinstance(spec, dict):
        return list(spec.get("params", [])) + [p for v in spec.values() for p in _params(v)]
    if isinstance(spec, list):
        return [p for v in spec for p in _params(v)]
    return []


def _enc(spec: dict, layer: int | None = None) -> dict:
    """The encoding of a (possibly layered) spec's layer."""
    if "layer" in spec:
        return spec["layer"][layer or 0]["encoding"]
    return spec["encoding"]


# ---- frames --------------------------------------------------------------------------------


def test_lens_frame(lens, gpt2):
    frame = charts.lens_frame(lens, gpt2.tokenizer)
    n_pos, n_layers = lens.entropy.shape[:2]
    assert len(frame) == n_pos * n_layers
    assert sorted(frame["layer"].unique()) == list(range(1, n_layers + 1))
    np.testing.assert_allclose(frame["entropy"], lens.entropy[..., 0].numpy().reshape(-1), rtol=1e-6)
    assert frame["p_top1"].between(0, 1).all()
    assert frame.loc[frame.position == 0, "next"].iloc[0] == frame.loc[frame.position == 1, "token"].iloc[0]
    assert (frame.loc[frame.position == n_pos - 1, "next"] == "").all()
    inf = charts.lens_frame(lens, gpt2.tokenizer, alpha=math.inf)
    assert (inf["entropy"] <= frame["entropy"] + 1e-5).all()  # Renyi order inf <= Shannon
    with pytest.raises(ElensError, match="available"):
        charts.lens_frame(lens, gpt2.tokenizer, alpha=2.0)


def test_curve_frame_phases(lens):
    curve = charts.curve_frame(lens)
    shannon = curve[curve.alpha == 1.0].sort_values("layer")
    h = lens.entropy[-1, :, 0].numpy()
    np.testing.assert_allclose(shannon["entropy"], h, rtol=1e-6)
    np.testing.assert_allclose(shannon["dH"].iloc[1:], np.diff(h), rtol=1e-5, atol=1e-6)
    assert shannon["phase"].iloc[0] == "first block"
    assert ((shannon["dH"] > 0) == (shannon["phase"] == "expansion")).iloc[1:].all()
    assert set(curve["order"]) == {"Shannon (α = 1)", "Rényi α = 0.5", "Rényi α = ∞"}
    with pytest.raises(ElensError, match="outside"):
        charts.curve_frame(lens, position=99)


def test_depth_frame_and_summary(depth):
    assert set(depth["model"].str.rsplit("/", n=1).str[-1]) == {"gpt2", "llama"}
    for _, g in depth.groupby("model"):
        assert g["depth"].iloc[-1] == pytest.approx(1.0)
        assert (g["n"] == 3).all()
        assert (g["lo"] <= g["entropy"]).all() and (g["entropy"] <= g["hi"]).all()
    table, overlap = charts.depth_summary(depth)
    assert list(table.columns)[:2] == ["model", "L"] and len(table) == 2
    assert overlap["gap"] >= 0 and overlap["spread"] >= 0


def test_depth_summary_gap_is_exact():
    frame = pd.DataFrame(
        {
            "model": ["a"] * 2 + ["b"] * 4,
            "n_layers": [2] * 2 + [4] * 4,
            "layer": [1, 2, 1, 2, 3, 4],
            "depth": [0.5, 1.0, 0.25, 0.5, 0.75, 1.0],
            "entropy": [1.0, 1.0, 2.0, 2.0, 2.0, 2.0],
        }
    )
    table, overlap = charts.depth_summary(frame)
    assert overlap["gap"] == pytest.approx(1.0)  # constant curves 1 nat apart
    assert overlap["spread"] == pytest.approx(0.0)
    assert math.isnan(table.loc[0, "max expansion (l/L)"])


# ---- charts ---------------------------------------------------------------------------------


def test_profile_heatmap_spec(lens, gpt2):
    chart = charts.profile_heatmap(charts.lens_frame(lens, gpt2.tokenizer), labels=True)
    spec = charts.chart_spec(chart)  # validates against the Vega-Lite schema
    enc = _enc(spec, 0)
    assert spec["layer"][0]["mark"]["type"] == "rect"
    assert enc["x"]["field"] == "layer" and enc["y"]["field"] == "label" and enc["color"]["field"] == "entropy"
    assert {t["field"] for t in enc["tooltip"]} >= {"token", "layer", "entropy", "top"}
    assert _enc(spec, 1)["text"]["field"] == "top1"
    # the rows are in prompt order, not alphabetical
    order = enc["y"]["sort"]
    assert order[0].startswith("0 ") and len(order) == lens.entropy.shape[0]
    assert spec["background"] == "white"  # the book's theme is applied


def test_shannon_vs_renyi_spec(lens):
    spec = charts.chart_spec(charts.shannon_vs_renyi(charts.curve_frame(lens), max_entropy=5.0))
    enc = _enc(spec, 0)
    assert enc["color"]["field"] == "order" and enc["y"]["field"] == "entropy"
    assert enc["color"]["sort"][0] == "Rényi α = 0.5"  # sorted by alpha
    assert any(p.get("bind") == "legend" and p["select"]["fields"] == ["order"] for p in _params(spec))
    assert spec["layer"][2]["mark"]["type"] == "rule"


def test_expansion_pruning_spec(lens):
    spec = charts.chart_spec(charts.expansion_pruning(charts.curve_frame(lens)))
    top, bottom = spec["vconcat"]
    points = top["layer"][0]
    assert points["encoding"]["color"]["field"] == "phase"
    colours = dict(zip(points["encoding"]["color"]["scale"]["domain"], points["encoding"]["color"]["scale"]["range"]))
    assert colours.get("expansion", "#d95f02") != colours.get("pruning", "#1b6ca8")
    assert bottom["layer"][0]["encoding"]["y"]["field"] == "dH"
    with pytest.raises(ElensError, match="no rows"):
        charts.expansion_pruning(charts.curve_frame(lens), alpha=3.0)


def test_profiles_by_depth_spec(depth):
    spec = charts.chart_spec(charts.profiles_by_depth(depth))
    line = spec["layer"][0]
    assert line["mark"]["type"] == "line"
    enc = line["encoding"]
    assert enc["x"]["field"] == "depth" and enc["x"]["scale"]["domain"] == [0, 1]
    assert enc["color"]["field"] == "model"
    assert any(p.get("bind") == "legend" and p["select"]["fields"] == ["model"] for p in _params(spec))  # pick a model
    tooltip = {t["field"] for t in spec["layer"][-1]["encoding"]["tooltip"]}
    assert {"model", "layer", "n_layers", "entropy"} <= tooltip


def test_missing_columns_message():
    with pytest.raises(ElensError, match="lacks"):
        charts.profiles_by_depth(pd.DataFrame({"depth": [0.5]}))


# ---- rendering ------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_to_html_is_small_offline_and_self_contained(lens, gpt2):
    frame = charts.lens_frame(lens, gpt2.tokenizer)
    frame.loc[0, "top"] = "</script><script>alert(1)</script> & <!--"  # hostile token text
    html = charts.to_html(charts.profile_heatmap(frame))
    assert not re.search(r"https?://", html)
    assert len(html) < 100_000  # the spec and a few lines of script, no library
    parser = _Tags()
    parser.feed(html)
    kinds = [(t, a.get("type")) for t, a in parser.tags]
    assert kinds == [("div", None), ("script", "application/json"), ("script", None)]
    div = parser.tags[0][1]
    assert div["class"] == charts.CHART_CLASS
    assert html.count("</script>") == 2  # the hostile text did not close a script
    assert all("src" not in a for _, a in parser.tags)
    spec_text = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.DOTALL).group(1)
    spec = json.loads(spec_text)
    assert "$schema" not in spec and spec["layer"][0]["mark"]["type"] == "rect"
    assert spec_text.find("alert(1)") > 0
    # the drawing script keeps to itself: one IIFE, the container id, nothing global
    script = html.rsplit("<script>", 1)[1]
    assert script.startswith("(function () {") and div["id"] in script
    assert "vegaEmbed" in script and "data-state" in script


def test_to_html_ids_are_unique_and_stable(lens):
    chart = charts.shannon_vs_renyi(charts.curve_frame(lens))
    a, b = charts.to_html(chart), charts.to_html(chart)
    id_a = re.search(r'id="(elens-chart-[^"]+)"', a).group(1)
    id_b = re.search(r'id="(elens-chart-[^"]+)"', b).group(1)
    assert id_a != id_b and id_a.rsplit("-", 1)[0] == id_b.rsplit("-", 1)[0]


def test_show_modes(lens, monkeypatch):
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    chart = charts.shannon_vs_renyi(charts.curve_frame(lens))
    monkeypatch.setenv("ELENS_CHART_MODE", "book")
    charts.show(chart)
    obj, raw = shown[-1]
    assert raw and charts.CHART_CLASS in obj["text/html"]
    monkeypatch.setenv("ELENS_CHART_MODE", "svg")
    charts.show(chart)
    obj, raw = shown[-1]
    assert raw and obj["image/svg+xml"].lstrip().startswith("<svg")
    monkeypatch.delenv("ELENS_CHART_MODE")
    charts.show(chart)
    assert shown[-1][0] is chart  # plain Jupyter: altair's own display


def test_vega_bundle(tmp_path):
    path = charts.write_vega_bundle(tmp_path / "elens" / "vega-bundle.js")
    text = path.read_text()
    assert text.startswith("/* Vega ") and f"Vega-Lite {charts.VEGALITE_VERSION}" in text.splitlines()[0]
    body = text.split("\n", 1)[1]
    assert body.startswith("(function () {\n") and body.rstrip().endswith("})();")
    assert "window.vegaEmbed" in body
    assert len(text) > 300_000  # the whole library, once per book


def test_parameters_table():
    table = charts.parameters_table(
        {"models": ["tiny/gpt2-2L", "gpt2"], "alphas": [1.0, math.inf], "prompt": "<b>x</b> & y", "seed": 0},
        note="set: smoke",
    )
    html = table._repr_html_()
    assert "tiny/gpt2-2L, gpt2" in html and "1.0, ∞" in html
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in html and "<b>x" not in html
    assert "set: smoke" in html and html.startswith("<table class='elens-params'>")
    assert "models" in repr(table) and "tiny/gpt2-2L, gpt2" in repr(table)
    with pytest.raises(ElensError, match="mapping"):
        charts.parameters_table([("a", 1)])
