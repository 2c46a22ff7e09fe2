"""The book's charts: tidy frames, valid Vega-Lite specs with the expected encodings, and an
offline HTML renderer that emits no network reference and no copy of the chart library."""

import json
import math
import re
from html.parser import HTMLParser

import altair as alt
import numpy as np
import pandas as pd
import pytest
from helpers import untrained_models

from elens_utils import ElensError, load_model, prompt_lens
from elens_utils.analysis.comparison import AUC_CEILING
from elens_utils.viz import chart_reflow, charts


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
    assert kinds == [("div", None), ("script", "application/json"), ("script", "application/json"), ("script", None)]
    div = parser.tags[0][1]
    assert div["class"] == charts.CHART_CLASS
    assert [a["id"] for _, a in parser.tags[1:3]] == [f"{div['id']}-spec", f"{div['id']}-narrow"]
    assert html.count("</script>") == 3  # the hostile text did not close a script
    assert all("src" not in a for _, a in parser.tags)
    spec_text = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.DOTALL).group(1)
    spec = json.loads(spec_text)
    assert "$schema" not in spec and spec["layer"][0]["mark"]["type"] == "rect"
    assert spec_text.find("alert(1)") > 0
    narrow = json.loads(re.search(r'id="[^"]*-narrow">(.*?)</script>', html, re.DOTALL).group(1))
    assert "datasets" not in narrow and narrow["width"] <= chart_reflow.PLOT_WIDTH  # the data is the wide spec's
    # the drawing script keeps to itself: one IIFE, the container id, nothing global
    script = html.rsplit("<script>", 1)[1]
    assert script.startswith("(function () {") and div["id"] in script
    assert "vegaEmbed" in script and "data-state" in script
    assert f"el.clientWidth < {chart_reflow.NARROW_BREAK}" in script and "data-layout" in script


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


# ---- chapters 5 (expansion and pruning) and 6 (correctness) -----------------------------------


def _layer_marks(spec: dict) -> list[str]:
    """Mark types of a (faceted, layered) spec, in layer order."""
    inner = spec.get("spec", spec)
    layers = inner.get("layer", [inner])
    return [(lay["mark"]["type"] if isinstance(lay["mark"], dict) else lay["mark"]) for lay in layers]


def test_spearman_by_model_and_overlap_specs():
    summary = pd.DataFrame(
        {"model": ["a", "b"], "rho": [0.9, float("nan")], "rho_log": [0.95, float("nan")], "sign_agreement": [0.9, float("nan")],
         "mean_jaccard": [0.4, 1.0], "n_pairs": [100, 100]}  # fmt: skip
    )
    spec = charts.chart_spec(charts.spearman_by_model(summary, reported=(0.74, 0.88)))
    assert _layer_marks(spec) == ["rect", "bar", "rule"]
    assert spec["layer"][1]["encoding"]["x"]["field"] == "rho" and spec["layer"][1]["encoding"]["y"]["sort"] == ["a", "b"]
    assert "a secondary summary attributes to the paper (not checked" in json.dumps(spec)  # never "the paper's" range
    assert _layer_marks(charts.chart_spec(charts.spearman_by_model(summary))) == ["bar", "rule"]
    trans = pd.DataFrame(
        {"model": ["a", "a"], "n_layers": 3, "block": [2, 3], "depth": [2 / 3, 1.0], "transition": ["1->2", "2->3"],
         "jaccard": [0.3, 0.5], "size": [4.0, 3.0], "d_size": [1.0, -1.0], "dH": [0.2, -0.1]}  # fmt: skip
    )
    spec = charts.chart_spec(charts.overlap_by_depth(trans))
    assert _layer_marks(spec) == ["line", "point"]
    assert _enc(spec, 0)["y"]["field"] == "jaccard" and _enc(spec, 0)["x"]["field"] == "depth"
    assert {t["field"] for t in spec["layer"][1]["encoding"]["tooltip"]} >= {"transition", "size", "dH"}
    with pytest.raises(ElensError, match="lacks"):
        charts.overlap_by_depth(trans.drop(columns="jaccard"))


def test_block_dh_bars_spec():
    ranking = pd.DataFrame(
        {"model": ["a", "a", "b"], "block": [2, 3, 2], "transition": ["1->2", "2->3", "1->2"], "mean_dH": [0.2, -0.1, 0.05],
         "std_dH": 0.1, "frac_positive": 0.5, "expansion_rank": [1, 2, 1], "pruning_rank": [2, 1, 1]}  # fmt: skip
    )
    spec = charts.chart_spec(charts.block_dh_bars(ranking))
    assert spec["facet"]["field"] == "model" and spec["resolve"]["scale"] == {"x": "independent", "y": "independent"}
    enc = spec["spec"]["encoding"]
    assert enc["y"]["field"] == "mean_dH" and enc["color"]["scale"]["domain"] == ["expansion", "pruning"]
    signs = {r["block"]: r["sign"] for r in spec["datasets"][next(iter(spec["datasets"]))] if r["model"] == "a"}
    assert signs == {2: "expansion", 3: "pruning"}


def test_skip_accuracy_spec():
    rows = [("m", "baseline", 0, None, 0.5, "none"), ("m", "expansion", 1, None, 0.25, "3"), ("m", "pruning", 1, None, 0.4, "2"),
            ("m", "random", 1, 7, 0.3, "2"), ("m", "random", 1, 8, 0.5, "4")]  # fmt: skip
    results = pd.DataFrame(rows, columns=["model", "strategy", "k", "seed", "accuracy", "blocks_text"])
    results = results.assign(n_correct=(results["accuracy"] * 100).astype(int), n_questions=100, chance=0.25)
    spec = charts.chart_spec(charts.skip_accuracy(results))
    assert spec["facet"]["field"] == "model"
    assert _layer_marks(spec) == ["rule", "circle", "line"]
    data = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    lines = data[data["kind"] == "line"]
    # every strategy's line starts at the baseline (k = 0); the random line is the mean of the draws
    assert sorted(lines.loc[lines["k"] == 0, "strategy"]) == ["expansion", "pruning", "random"]
    assert (lines.loc[lines["k"] == 0, "accuracy"] == 0.5).all()
    assert lines.loc[(lines["strategy"] == "random") & (lines["k"] == 1), "accuracy"].item() == pytest.approx(0.4)
    assert len(data[data["kind"] == "draw"]) == 2 and data.loc[data["kind"] == "chance", "accuracy"].item() == 0.25
    assert spec["spec"]["layer"][2]["encoding"]["color"]["scale"]["domain"] == ["expansion", "pruning", "random"]


def _ceiling_band_of(spec) -> list[float]:
    """The x range of a chart's shaded ceiling band (its first layer, a rect)."""
    band = spec["layer"][0]
    row = spec["datasets"][band["data"]["name"]][0]
    return [row["x"], row["x2"]]


def test_correctness_charts_specs():
    nan = float("nan")
    table = pd.DataFrame(
        {"model": ["a", "a", "b", "b"], "features": ["mean", "answer"] * 2, "status": ["ok", "ok", "too few", "too few"],
         "note": ["", "", "only 3 right", "only 3 right"], "auc_mean": [0.6, 0.7, nan, nan], "auc_std": [0.1, 0.1, nan, nan],
         "dummy_auc_mean": [0.5, 0.5, nan, nan], "dummy_auc_std": [0.05, 0.05, nan, nan], "n": 100, "n_correct": [30, 30, 3, 3],
         "accuracy": [0.3, 0.3, 0.03, 0.03], "knn_accuracy": [0.7, 0.7, nan, nan], "p_value": [0.01, 0.02, nan, nan]}  # fmt: skip
    )
    spec = charts.chart_spec(charts.correctness_auc_chart(table))
    assert _layer_marks(spec) == ["rect", "rule", "rule", "point", "text", "rule"]  # rect: the ceiling band
    assert spec["layer"][3]["encoding"]["x"]["field"] == "auc_mean" and spec["layer"][3]["encoding"]["yOffset"]["field"] == "features"
    assert spec["layer"][4]["encoding"]["text"]["field"] == "label" and "too few" in json.dumps(spec)
    assert _ceiling_band_of(spec) == [AUC_CEILING, 1.0]
    spec = charts.chart_spec(charts.mc_accuracy_bars(table, chance=0.25))
    assert _layer_marks(spec) == ["bar", "rule"]
    bars = spec["datasets"][spec["layer"][0]["data"]["name"]]
    assert [r["model"] for r in bars] == ["a", "b"]  # one bar per model
    frame = pd.DataFrame(
        {"model": "a", "n_layers": 2, "outcome": ["correct", "correct", "wrong", "wrong"], "layer": [1, 2, 1, 2],
         "depth": [0.5, 1.0, 0.5, 1.0], "entropy": [1.0, 2.0, 1.5, 2.5], "sd": 0.1, "n": [3, 3, 7, 7]}  # fmt: skip
    )
    spec = charts.chart_spec(charts.profiles_by_outcome(frame))
    assert spec["facet"]["field"] == "model" and _layer_marks(spec) == ["line", "area", "point"]
    assert spec["spec"]["layer"][0]["encoding"]["color"]["scale"]["domain"] == ["correct", "wrong"]


def test_families_and_robustness_charts_specs(depth):
    # profiles per family: one panel per family, one line per model coloured by its depth
    spec = charts.chart_spec(charts.profiles_by_family(depth))
    assert spec["facet"]["field"] == "family" and _layer_marks(spec) == ["line", "area", "point"]
    data = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    assert set(data["family"]) == {"gpt2", "llama"}  # family_of of the directory names
    line = spec["spec"]["layer"][0]["encoding"]
    assert line["color"]["field"] == "n_layers" and line["detail"]["field"] == "model" and line["x"]["field"] == "depth"
    # embeddings side by side, coloured by family, shaped by depth
    meta = pd.DataFrame({"model": ["a", "a", "b"], "n_layers": [2, 2, 4]})
    frame = charts.embedding_frame(meta, ["f", "f", "g"], {"t-SNE": np.zeros((3, 2)), "PCA": np.ones((3, 2))})
    assert frame["method"].tolist() == ["t-SNE"] * 3 + ["PCA"] * 3 and set(frame.columns) >= {"x", "y", "label", "sample"}
    spec = charts.chart_spec(charts.embedding_scatter(frame))
    assert spec["facet"]["column"]["field"] == "method" and spec["facet"]["column"]["sort"] == ["t-SNE", "PCA"]
    enc = spec["spec"]["encoding"]
    assert enc["color"]["field"] == "label" and enc["shape"]["field"] == "n_layers"
    assert {t["field"] for t in enc["tooltip"]} >= {"model", "n_layers", "sample"}
    with pytest.raises(ElensError, match="expected \\(3, 2\\)"):
        charts.embedding_frame(meta, ["f", "f", "g"], {"PCA": np.ones((2, 2))})
    # tests side by side (depth modes), a skipped row shown as text
    nan = float("nan")
    table = pd.DataFrame(
        {"depth": ["interpolate", "interpolate", "zero_pad", "zero_pad"], "test": ["10-fold CV", "held out: size 1"] * 2,
         "auc": [0.9, 0.8, 0.95, nan], "auc_std": [0.02, nan, 0.02, nan], "dummy_auc": [0.5] * 4, "accuracy": [0.7, 0.6, 0.8, nan],
         "n_train": 10, "n_test": 5, "detail": "m", "status": ["ok", "ok", "ok", "skipped"], "note": ["", "", "", "one class"]}  # fmt: skip
    )
    spec = charts.chart_spec(charts.auc_tests_chart(table))
    assert _layer_marks(spec) == ["rect", "rule", "rule", "point", "text"]  # rect: the ceiling band
    assert spec["layer"][3]["encoding"]["yOffset"]["field"] == "variant" and "zero-padding (the paper's code)" in json.dumps(spec)
    assert _ceiling_band_of(spec) == [AUC_CEILING, 1.0]
    assert "not scored: skipped" in json.dumps(spec)
    assert "NaN" not in charts.to_html(charts.auc_tests_chart(table))  # strict JSON on the page
    # the robustness sweep: one panel per factor, every fold a tick
    sweep = pd.DataFrame(
        {"factor": ["baseline", "k", "k"], "setting": ["baseline", "3", "11"], "baseline": [True, False, True],
         "auc_mean": [0.9, 0.8, 0.9], "auc_std": 0.05, "auc_min": [0.85, 0.7, 0.85], "auc_max": [0.95, 0.9, 0.95],
         "fold_auc": [[0.85, 0.95], [0.7, 0.9], [0.85, 0.95]], "dummy_auc_mean": 0.5, "accuracy_mean": 0.7, "k": [11, 3, 11],
         "p_value": 0.01}  # fmt: skip
    )
    spec = charts.chart_spec(charts.auc_by_setting(sweep))
    assert spec["facet"]["row"]["field"] == "factor" and spec["facet"]["row"]["sort"] == ["k"]  # the baseline row is the rule
    assert _layer_marks(spec) == ["tick", "point", "rule"]
    rows = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    assert sorted(rows.loc[rows["kind"] == "fold", "fold"]) == [0.7, 0.85, 0.9, 0.95]
    assert (rows.loc[rows["kind"] == "mean", "base_auc"] == 0.9).all()
    assert "NaN" not in charts.to_html(charts.auc_by_setting(sweep.assign(p_value=float("nan"))))
    with pytest.raises(ElensError, match="varies no setting"):
        charts.auc_by_setting(sweep.iloc[:1])
    # the permutation test
    spec = charts.chart_spec(charts.permutation_chart([0.48, 0.5, 0.52], 0.93, 0.005))
    assert _layer_marks(spec) == ["bar", "rule", "text"] and spec["layer"][0]["encoding"]["x"]["bin"]
    assert "AUC 0.930, p = 0.005" in json.dumps(spec)
    with pytest.raises(ElensError, match="non-empty"):
        charts.permutation_chart([], 0.9, 0.1)


def _knn_table():
    """A small knn_tables.KnnTable (two models, two feature sets, two ks) for chart tests."""
    from elens_utils.analysis import knn_tables
    from elens_utils.entropy.profiles import Profiles

    rng = np.random.default_rng(0)
    out = []
    for model, n_layers in (("a", 2), ("b", 3)):
        n = 30
        labels = ["x", "y", "z"] * (n // 3)
        meta = pd.DataFrame(
            {"model": model, "n_layers": n_layers, "prompt": [f"p{i}" for i in range(n)], "label": labels, "text": "",
             "generated_ids": [[0] * 4 for _ in range(n)], "seed": None, "settings": "{}", "variant": ["u", "v"] * (n // 2)}  # fmt: skip
        )
        out.append(Profiles(rng.normal(2, 0.3, (n, 4, n_layers, 2)).astype(np.float32), (1.0, 5.0), meta))
    table = knn_tables.knn_by_model(out, feature_sets=knn_tables.alpha_feature_sets([1.0, 5.0]), ks=[3, 5], folds=5)
    return out, table


def test_knn_scores_by_model_spec():
    _, table = _knn_table()
    rows = table.summary[table.summary["features"] == "both"]
    spec = charts.chart_spec(charts.knn_scores_by_model(rows, table.folds, color="k"))
    assert _layer_marks(spec) == ["rect", "rule", "tick", "tick", "point", "rule"]  # rect: the ceiling band
    assert _ceiling_band_of(spec) == [AUC_CEILING, 1.0]
    point = spec["layer"][4]["encoding"]
    assert point["x"]["field"] == "mean" and point["y"]["sort"] == ["a", "b"] and point["yOffset"]["field"] == "group"
    data = pd.DataFrame(spec["datasets"][spec["layer"][1]["data"]["name"]])
    ticks = data[data["kind"] == "fold"]
    assert len(ticks) == 2 * 2 * 5 and set(ticks["group"]) == {"k = 3", "k = 5"}  # only the folds of the rows drawn
    summary = data[data["kind"] == "summary"].set_index(["model", "group"])
    assert summary.loc[("a", "k = 3"), "mean"] == pytest.approx(rows.iloc[0]["auc_mean"])
    assert {t["field"] for t in point["tooltip"]} >= {"model", "k", "dummy", "p_value", "n"}
    acc = charts.chart_spec(charts.knn_scores_by_model(rows[rows["k"] == 3], table.folds, metric="accuracy"))
    assert _layer_marks(acc) == ["rule", "tick", "tick", "point"]  # no 0.5 rule for accuracy
    assert "yOffset" not in acc["layer"][3]["encoding"]  # one row per model: no offset, no legend
    assert acc["layer"][1]["encoding"]["x"]["field"] == "dummy"  # the dummy's mean shows even when its sd is 0
    with pytest.raises(ElensError, match="metric must be"):
        charts.knn_scores_by_model(rows, table.folds, metric="f1")
    with pytest.raises(ElensError, match="lacks"):
        charts.knn_scores_by_model(rows.drop(columns="p_value"), table.folds)


def test_profiles_by_label_and_entropy_by_window_specs():
    from elens_utils.analysis import knn_tables

    profiles, _ = _knn_table()
    frame = knn_tables.label_depth_frame(profiles)
    spec = charts.chart_spec(charts.profiles_by_label(frame, legend_title="task"))
    assert spec["facet"]["field"] == "model" and _layer_marks(spec) == ["line", "area", "point"]
    assert spec["spec"]["layer"][0]["encoding"]["y"]["field"] == "entropy"
    assert spec["spec"]["layer"][0]["encoding"]["color"]["title"] == "task"
    centred = charts.chart_spec(charts.profiles_by_label(frame, centered=True))
    assert _layer_marks(centred) == ["line", "rule", "point"]
    assert centred["spec"]["layer"][0]["encoding"]["y"]["field"] == "centered"
    windows = knn_tables.window_frame(profiles, windows=4)
    spec = charts.chart_spec(charts.entropy_by_window(windows, legend_title="format"))
    assert spec["facet"]["field"] == "model" and _layer_marks(spec) == ["line", "area", "point"]
    assert spec["spec"]["layer"][0]["encoding"]["x"]["field"] == "window"
    assert "the last block" in json.dumps(spec)
    with pytest.raises(ElensError, match="lacks"):
        charts.entropy_by_window(windows.drop(columns="tokens"))


def test_knn_scores_heatmap_spec():
    _, table = _knn_table()
    rows = table.summary[table.summary["k"] == 3]
    spec = charts.chart_spec(charts.knn_scores_heatmap(rows, column="features", legend_title="entropy"))
    assert _layer_marks(spec) == ["rect", "text"]
    enc = spec["layer"][0]["encoding"]
    assert enc["x"]["field"] == "key" and enc["x"]["sort"] == ["Shannon (α = 1)", "Rényi α = 5", "both"]
    assert enc["y"]["sort"] == ["a", "b"] and enc["color"]["scale"]["domain"] == [0.5, 1.0]
    data = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    assert len(data) == 2 * 3 and data["text"].iloc[0] == f"{rows['auc_mean'].iloc[0]:.2f}"
    acc = charts.chart_spec(charts.knn_scores_heatmap(rows, column="features", metric="accuracy"))
    assert acc["layer"][0]["encoding"]["color"]["scale"]["domain"] == [0.0, 1.0]
    with pytest.raises(ElensError, match="several rows"):
        charts.knn_scores_heatmap(table.summary, column="features")


def test_fmt_range_collapses_equal_ends():
    assert charts.fmt_range([0.4612, 0.4649], ".2f") == "0.46"  # both ends read 0.46
    assert charts.fmt_range(pd.Series([0.46, 0.49, np.nan]), ".2f") == "0.46-0.49"
    assert charts.fmt_range(np.array([0.581, 0.834]), ".0%") == "58%-83%"
    assert charts.fmt_range([], ".2f") == "n/a"


def test_summary_table_writes_small_p_values_in_two_digits():
    table = pd.DataFrame({"model": ["a", "b"], "AUC": [0.9561, 0.5], "p (t-test)": [2.1e-17, 0.31]})
    html = charts.summary_table(table, digits=3).to_html()
    assert "0.956" in html and "2.1e-17" in html and "0.31" in html
    assert "0.000" not in html


def test_summary_table_shows_a_named_index_and_hides_a_range():
    table = pd.DataFrame({"key": ["lens_vs_matmul", "peak_extra_mb"], "value": [1.15, 8.3]})
    assert "lens_vs_matmul" in charts.summary_table(table.set_index("key")).to_html()
    plain = charts.summary_table(table).to_html()
    assert "lens_vs_matmul" in plain and ">0</th>" not in plain


# ---- sublayer interventions (chapter 5) -----------------------------------------------------


@pytest.fixture(scope="module")
def sublayer_results(tmp_path_factory):
    """A real sublayer_sweep result: two untrained models of the story world, every kind, k = 1
    and 2, two random draws (a few seconds on CPU)."""
    from elens_utils.analysis.sublayers import sublayer_sweep
    from elens_utils.data import prompts as data
    names = untrained_models(tmp_path_factory.mktemp("sublayer_chart"), ("llama", 3), ("gpt2", 3))
    questions = data.multiple_choice("synthetic", 20)
    profiles = [load_model(n).profile(questions["prompt"].tolist()[12:], max_new_tokens=1, progress=False) for n in names]
    return sublayer_sweep(
        names, questions.iloc[:12].reset_index(drop=True), profiles, ks=[1, 2], kinds=("attention", "mlp", "heads", "block"),
        n_random_seeds=2, progress=False,
    )  # fmt: skip


def _chart_rows(spec: dict) -> pd.DataFrame:
    return pd.DataFrame(spec["datasets"][spec["data"]["name"]])


def test_sublayer_accuracy_spec(sublayer_results):
    res = sublayer_results
    models = res["model"].drop_duplicates().tolist()
    chart = charts.sublayer_accuracy(res)
    spec = charts.chart_spec(chart)  # validates against the Vega-Lite schema
    # one panel per model, in the order of the results
    assert spec["facet"]["field"] == "model" and spec["facet"]["sort"] == models and spec["columns"] == 2
    data = _chart_rows(spec)
    assert data["model"].drop_duplicates().tolist() == models
    assert _layer_marks(spec) == ["rule", "rule", "rule", "circle", "tick", "point", "point", "point"]
    layers = spec["spec"]["layer"]
    # every condition of the sweep is in the data with its accuracy (the baseline as the rule)
    for row in res.itertuples():
        seed = float("nan") if pd.isna(row.seed) else float(row.seed)
        hit = data[
            (data["model"] == row.model) & (data["kind"] == row.kind) & (data["strategy"] == row.strategy)
            & (data["heads_from"] == (row.heads_from or "")) & (data["k"] == row.k)
            & ((data["seed"] == seed) | (data["seed"].isna() & math.isnan(seed)))
        ]  # fmt: skip
        assert len(hit) == 1, row
        assert hit["accuracy"].item() == pytest.approx(row.accuracy)
        assert hit["blocks_text"].item() == row.blocks_text and hit["n_questions"].item() == row.n_questions
    marks = data.groupby("mark").size()
    assert marks["baseline"] == marks["chance"] == len(models)
    assert marks["chosen"] == ((res["strategy"].isin(["expansion", "pruning"])) & (res["heads_from"] != "random")).sum()
    # the grey mean and the hollow ring are the means of the draws (as sublayer_summary has them)
    from elens_utils.analysis.sublayers import sublayer_summary

    summary = sublayer_summary(res)
    for s in summary.itertuples():
        at = data[(data["model"] == s.model) & (data["kind"] == s.kind) & (data["k"] == s.k)]
        assert at.loc[at["mark"] == "mean", "accuracy"].item() == pytest.approx(s.random_mean)
        if s.kind == "heads":
            ring = at[(at["mark"] == "alt_mean") & (at["strategy"] == "expansion")]
            assert ring["accuracy"].item() == pytest.approx(s.expansion_random_heads)
        else:
            assert not (at["mark"] == "alt_mean").any()
    # the colours of skip_accuracy; ranked heads filled, random heads of the same blocks hollow
    colour = layers[-1]["encoding"]["color"]
    assert colour["field"] == "strategy"
    assert dict(zip(colour["scale"]["domain"], colour["scale"]["range"])) == charts.STRATEGY_COLOURS
    assert layers[-1]["mark"]["filled"] is True and layers[-2]["mark"]["filled"] is False
    assert layers[-1]["transform"] == [{"filter": "datum.mark == 'chosen'"}]
    assert layers[-2]["transform"] == [{"filter": "datum.mark == 'alt_mean'"}]
    assert layers[1]["mark"]["strokeDash"] and layers[1]["transform"] == [{"filter": "datum.mark == 'chance'"}]
    # rows: kind by kind, k within; x: accuracy 0-100 %
    enc = layers[-1]["encoding"]
    assert enc["y"]["sort"] == [f"{name}, k = {k}" for name in ("attention", "MLP", "heads", "whole block") for k in (1, 2)]
    assert enc["yOffset"]["field"] == "strategy" and enc["yOffset"]["sort"] == ["expansion", "random", "pruning"]
    assert enc["x"]["field"] == "accuracy" and enc["x"]["scale"]["domain"] == [0, 1] and enc["x"]["axis"]["format"] == ".0%"
    tips = {t["field"]: t for t in enc["tooltip"]}
    assert {"model", "kind", "strategy", "k", "blocks_text", "heads_text", "accuracy", "n_questions"} <= set(tips)
    assert tips["accuracy"]["format"] == ".1%"
    # fits the book's text column, and the page gets strict JSON and no network reference
    svg = charts.to_svg(chart)
    assert int(re.search(r'<svg[^>]*\bwidth="(\d+)', svg).group(1)) <= 600
    page = charts.to_html(chart)
    assert "NaN" not in page and not re.search(r"https?://", page)


def test_sublayer_accuracy_hand_made_and_errors():
    rows = [("m", "none", "baseline", None, 0, None, 0.8, "none", ""), ("m", "mlp", "expansion", None, 1, None, 0.4, "3", ""),
            ("m", "mlp", "pruning", None, 1, None, 0.7, "5", ""), ("m", "mlp", "random", None, 1, 7, 0.5, "2", ""),
            ("m", "mlp", "random", None, 1, 8, 0.7, "4", "")]  # fmt: skip
    cols = ["model", "kind", "strategy", "heads_from", "k", "seed", "accuracy", "blocks_text", "heads_text"]
    results = pd.DataFrame(rows, columns=cols).assign(n_correct=0, n_questions=10, chance=0.25)
    spec = charts.chart_spec(charts.sublayer_accuracy(results, title="MLPs only", columns=1))
    assert spec["title"]["text"] == "MLPs only" and spec["columns"] == 1
    data = _chart_rows(spec)
    assert data.loc[data["mark"] == "mean", "accuracy"].item() == pytest.approx(0.6)
    assert data.loc[data["mark"] == "baseline", "accuracy"].item() == 0.8
    assert sorted(data.loc[data["mark"] == "draw", "accuracy"]) == [0.5, 0.7]
    assert spec["spec"]["layer"][-1]["encoding"]["y"]["sort"] == ["MLP, k = 1"]
    with pytest.raises(ElensError, match=r"sublayer_accuracy\(\) needs the columns .* lacks \['heads_text'\]"):
        charts.sublayer_accuracy(results.drop(columns="heads_text"))
    with pytest.raises(ElensError, match="one baseline row"):
        charts.sublayer_accuracy(results[results["strategy"] != "baseline"])
    with pytest.raises(ElensError, match="no intervention"):
        charts.sublayer_accuracy(results[results["strategy"] == "baseline"])


def test_summary_table_lets_long_text_columns_wrap_and_nothing_else():
    import pandas as pd

    table = pd.DataFrame({
        "model": ["zoo/llama-8L", "real/smollm2-135m-instruct"],
        "AUC": [0.99, 0.52],
        "note": ["short", "a note long enough that it must wrap in a narrow column"],
    })  # fmt: skip
    html = charts.summary_table(table).to_html()
    assert html.count("elens-text") == 2  # both cells of the long "note" column, none elsewhere
    assert "white-space: nowrap" not in html  # the stylesheet decides
    assert "elens-text" not in charts.summary_table(table[["model", "AUC"]]).to_html()
    # repeated labels render as before, without the classes
    twice = pd.concat([table, table])
    assert twice.index.tolist() == [0, 1, 0, 1] and "elens-text" not in charts.summary_table(twice).to_html()
    dup = table.set_axis(["model", "x", "x"], axis=1)
    assert "<table" in charts.summary_table(dup).to_html()


def test_summary_table_prints_counts_as_counts_and_booleans_as_words():
    import pandas as pd

    table = pd.DataFrame({"n models": [12.0, float("nan")], "AUC": [1.0, 0.0], "above 0.9": [True, False], "p": [0.5, 0.01]})
    html = charts.summary_table(table, digits=3).to_html()
    assert ">12<" in html and "12.000" not in html  # a count, though NaN made it a float
    assert "1.000" in html and "0.000" in html  # AUCs of exactly 1 and 0 stay scores
    assert ">yes<" in html and ">no<" in html and "True" not in html
    # booleans beside a missing value (the paper's row) are objects: still words, the gap a dash
    mixed = pd.DataFrame({"model": ["a", "paper"], "above 0.9": [True, None]})
    html = charts.summary_table(mixed).to_html()
    assert ">yes<" in html and ">–<" in html and "True" not in html and "None" not in html


def test_every_kind_of_chart_has_a_phone_layout_that_fits_a_phone(lens, gpt2, depth):
    """The narrow layout of each shape of chart the book draws (single, layered, stacked, wrapped
    facet, facet across, facet by row) is valid Vega-Lite and, drawn, at most ~440 px wide: at a
    phone's ~370-px column its 12-px labels stay above 10 px (the wide layouts are up to 870 px)."""
    import vl_convert as vlc

    from elens_utils.analysis import knn_tables

    profiles, table = _knn_table()
    sweep = pd.DataFrame(
        {"factor": ["baseline", "k", "k"], "setting": ["baseline", "3", "11"], "baseline": [True, False, True],
         "auc_mean": [0.9, 0.8, 0.9], "auc_std": 0.05, "auc_min": [0.85, 0.7, 0.85], "auc_max": [0.95, 0.9, 0.95],
         "fold_auc": [[0.85, 0.95], [0.7, 0.9], [0.85, 0.95]], "dummy_auc_mean": 0.5, "accuracy_mean": 0.7, "k": [11, 3, 11],
         "p_value": 0.01}  # fmt: skip
    )
    meta = pd.DataFrame({"model": ["a", "a", "b"], "n_layers": [2, 2, 4]})
    embedded = charts.embedding_frame(meta, ["f", "f", "g"], {"t-SNE": np.zeros((3, 2)), "PCA": np.ones((3, 2))})
    drawn = {
        "heat-map": charts.profile_heatmap(charts.lens_frame(lens, gpt2.tokenizer)),
        "layered": charts.shannon_vs_renyi(charts.curve_frame(lens)),
        "stacked": charts.expansion_pruning(charts.curve_frame(lens)),
        "by depth": charts.profiles_by_depth(depth),
        "per model": charts.knn_scores_by_model(table.summary[table.summary["features"] == "both"], table.folds, color="k"),
        "wrapped facet": charts.profiles_by_label(knn_tables.label_depth_frame(profiles), legend_title="task"),
        "facet across": charts.embedding_scatter(embedded),
        "facet by row": charts.auc_by_setting(sweep),
    }
    for name, chart in drawn.items():
        spec = charts.chart_spec(chart)
        narrow = chart_reflow.narrow_spec(spec) | {"datasets": spec.get("datasets", {})}
        alt.TopLevelSpec.validate(narrow)
        svg = vlc.vegalite_to_svg(narrow, vl_version=charts.VEGALITE_VERSION)
        width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))
        assert width <= chart_reflow.NARROW_WIDTH + 100, f"{name}: the phone layout is {width:.0f} px wide"
