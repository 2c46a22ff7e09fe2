"""The architecture appendix's module (elens_utils.book.architecture): the import graph read from a
small hand-made package, its summary per pair of packages, the table, and the chart of the real tree."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import altair as alt
import pandas as pd
import pytest

from elens_utils import ElensError
from elens_utils.book import architecture as arch
from elens_utils.viz import chart_reflow, charts

# A package of three layers (core; data; viz) and a top level. What each file imports:
#   pkg/__init__.py      pkg.core.util.helper                    (top -> core)
#   pkg/cli.py           pkg.viz.draw, inside a function         (top -> viz; a name of viz/__init__)
#   pkg/data/__init__    .load.read, relative                    (data -> data)
#   pkg/data/load.py     ..core.util: helper, CONST (relative);  (data -> core)
#                        . : extra (a module, relative);          (data -> data)
#                        pkg.core.errors in a function, .Err read (data -> core)
#   pkg/viz/__init__     pkg.viz.charts.draw                     (viz -> viz)
#   pkg/viz/charts.py    pkg.core.util.helper; pkg.data.read     (viz -> core; viz -> data's __init__)
#   pkg/viz/more.py      pkg.core.util.helper, os                (viz -> core)
FILES = {
    "__init__.py": '"""A hand-made package."""\nfrom pkg.core.util import helper\n',
    "cli.py": "def main():\n    from pkg.viz import draw\n    return draw()\n",
    "core/__init__.py": '"""The core: helpers and errors."""\n',
    "core/util.py": "CONST = 1\n\n\ndef helper():\n    return CONST\n",
    "core/errors.py": "class Err(Exception):\n    pass\n",
    "data/__init__.py": '"""Data."""\nfrom .load import read\n',
    "data/extra.py": "",
    "data/load.py": textwrap.dedent("""\
        from ..core.util import helper, CONST
        from . import extra
        import os


        def read():
            from pkg.core import errors
            raise errors.Err(helper() + CONST, extra, os)
        """),
    "viz/__init__.py": "from pkg.viz.charts import draw\n",
    "viz/charts.py": "from pkg.core.util import helper\nfrom pkg.data import read\n\n\ndef draw():\n    return helper(), read\n",
    "viz/more.py": "import os\n\nfrom pkg.core.util import helper\n",
}  # fmt: skip


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "stale.py").write_text("import pkg.nothing\n")  # not a module
    return root


def test_modules_and_their_packages(pkg):
    modules = arch.find_modules(pkg)
    assert set(modules) == {
        "pkg", "pkg.cli", "pkg.core", "pkg.core.util", "pkg.core.errors", "pkg.data", "pkg.data.extra",
        "pkg.data.load", "pkg.viz", "pkg.viz.charts", "pkg.viz.more",
    }  # fmt: skip
    assert modules["pkg.core"] == pkg / "core" / "__init__.py"
    packages = {m: arch.package_of(m, modules) for m in modules}
    assert packages["pkg"] == packages["pkg.cli"] == arch.TOP
    assert packages["pkg.core"] == packages["pkg.core.errors"] == "core" and packages["pkg.viz.more"] == "viz"
    with pytest.raises(ElensError, match="not a Python package"):
        arch.find_modules(pkg / "data" / "load.py")


def test_imports_inside_functions_relative_and_from_a_subpackage_init(pkg):
    modules = arch.find_modules(pkg)
    I = arch.Import
    assert arch.module_imports("pkg.data.load", modules) == [
        I("pkg.core.util", "helper", 1), I("pkg.core.util", "CONST", 1),  # relative, two levels up
        I("pkg.data.extra", "", 2),  # relative, a module by name
        I("pkg.core.errors", "", 7),  # inside a function; os is not the package's
    ]  # fmt: skip
    assert arch.module_imports("pkg.cli", modules) == [I("pkg.viz", "draw", 2)]  # inside a function
    assert arch.module_imports("pkg.data", modules) == [I("pkg.data.load", "read", 2)]  # relative, in an __init__
    assert arch.module_imports("pkg.viz.charts", modules) == [I("pkg.core.util", "helper", 1), I("pkg.data", "read", 2)]
    assert arch.relative_imports("pkg.data.load", modules) == [1, 2] and arch.relative_imports("pkg.cli", modules) == []
    edges = arch.import_edges(modules)
    assert edges["pkg.data.load"] == {"pkg.core.util", "pkg.data.extra", "pkg.core.errors"}
    assert edges["pkg"] == {"pkg.core.util"} and edges["pkg.core.util"] == set()
    assert arch.import_target("pkg.core", "errors", modules) == "pkg.core.errors"
    assert arch.import_target("pkg.core", "anything", modules) == "pkg.core"
    assert arch.import_target("numpy", "array", modules) is None


def test_the_graph_reads_names_through_imported_modules(pkg):
    graph = arch.import_graph(pkg)
    load = graph[graph["module"] == "pkg.data.load"]
    assert load[["target", "name", "line", "via"]].values.tolist() == [
        ["pkg.core.util", "helper", 1, "import"], ["pkg.core.util", "CONST", 1, "import"],
        ["pkg.data.extra", "", 2, "module"],  # imported, none of its names read through it
        ["pkg.core.errors", "Err", 7, "attribute"],  # errors.Err
    ]  # fmt: skip
    assert set(graph["package"]) == {arch.TOP, "data", "viz"}  # the core imports nothing of the package


def test_the_summary_counts_statements_and_names_per_pair_of_packages(pkg):
    summary = arch.package_summary(arch.import_graph(pkg))
    rows = {(r.package, r.imported): r for r in summary.itertuples()}
    assert set(rows) == {(arch.TOP, "core"), (arch.TOP, "viz"), ("data", "core"), ("viz", "core"), ("viz", "data")}
    data_core = rows["data", "core"]
    assert (data_core.statements, data_core.modules, data_core.n_names) == (2, 1, 3)
    assert data_core.names == [("CONST", 1), ("Err", 1), ("helper", 1)]
    viz_core = rows["viz", "core"]
    assert (viz_core.statements, viz_core.modules) == (2, 2) and viz_core.names == [("helper", 2)]
    assert viz_core.flow == "helper (2)"
    assert rows["viz", "data"].names == [("read", 1)] and rows[arch.TOP, "viz"].names == [("draw", 1)]
    assert (viz_core.layer, viz_core.imported_layer) == (arch.LAYER["viz"], arch.LAYER["core"])
    assert list(summary["package"]) == [arch.TOP, arch.TOP, "viz", "viz", "data"]  # top layer first
    short = arch.package_summary(arch.import_graph(pkg), top=1)
    assert short.set_index(["package", "imported"]).loc[("data", "core"), "flow"] == "CONST, and 2 more"
    inside = arch.package_summary(arch.import_graph(pkg), internal=True)
    data_data = inside[(inside["package"] == "data") & (inside["imported"] == "data")].iloc[0]
    assert data_data.statements == 2 and dict(data_data.names) == {"read": 1, "extra.": 1}  # a module imported whole: "extra."
    with pytest.raises(ElensError, match="top must be at least 1"):
        arch.package_summary(arch.import_graph(pkg), top=0)
    with pytest.raises(ElensError, match="lacks the columns"):
        arch.package_summary(pd.DataFrame({"module": []}))


def test_what_flows_up_out_of_each_package(pkg):
    up = arch.flows_up(arch.import_graph(pkg)).set_index("package")
    assert up.index.tolist() == ["core", "data", "viz"]  # imported packages, bottom layer first
    core = up.loc["core"]
    assert (core.importers, core.n_importers, core.statements) == ("data, viz, top", 3, 5)  # most statements first
    assert core.names[0] == ("helper", 4) and core.flow == "helper (4), CONST, Err"
    assert up.loc["viz", "flow"] == "draw" and up.loc["data", "importers"] == "viz"
    assert arch.flows_up(arch.import_graph(pkg), top=1).set_index("package").loc["core", "flow"] == "helper (4), and 2 more"


def test_the_table_gives_each_package_its_layer_modules_and_lines(pkg):
    table = arch.package_table(pkg)
    assert table["package"].tolist() == ["core", "data", "viz", arch.TOP]  # bottom layer first
    row = table.set_index("package")
    assert row.loc["data", "modules"] == "extra, load" and row.loc["data", "n_modules"] == 3
    assert row.loc["data", "lines"] == 2 + 0 + len(FILES["data/load.py"].splitlines())
    assert row.loc[arch.TOP, "modules"] == "cli, __init__" and row.loc["core", "holds"] == "The core: helpers and errors."
    assert row.loc["viz", "holds"] == "" and row.loc["core", "layer"] == 0


def test_layers_put_findings_between_viz_and_book():
    order = [p for layer in arch.LAYERS for p in layer]
    assert order.index("viz") < order.index("findings") < order.index("book") and arch.LAYERS[-1] == (arch.TOP,)
    assert arch.layer_of("findings") == arch.LAYER["viz"] + 1
    with pytest.raises(ElensError, match="stands in no layer"):
        arch.layer_of("nowhere")


def test_the_real_tree_has_every_package_in_a_layer():
    modules = arch.find_modules()
    assert {arch.package_of(m, modules) for m in modules} <= set(arch.LAYER)
    assert not any(arch.relative_imports(m, modules) for m in modules)  # the library imports absolutely


@pytest.fixture(scope="module")
def real_chart():
    graph, table = arch.import_graph(), arch.package_table()
    return graph, table, arch.architecture_chart(graph, table)


def test_the_chart_draws_one_box_per_package_and_one_line_per_pair(real_chart):
    graph, table, chart = real_chart
    spec = charts.chart_spec(chart)  # validates against the Vega-Lite schema
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    layers = spec["layer"]
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in layers]
    assert marks == ["rect", "line", "rect", "text"]
    boxes = spec["datasets"][layers[2]["data"]["name"]]
    modules = arch.find_modules()
    assert sorted(b["package"] for b in boxes) == sorted({arch.package_of(m, modules) for m in modules})
    assert sorted(b["label"] for b in spec["datasets"][layers[3]["data"]["name"]]) == sorted(
        "top level" if p == arch.TOP else p for p in table["package"]
    )
    lines = spec["datasets"][layers[1]["data"]["name"]]
    pairs = {(p["package"], p["imported"]) for p in lines}
    summary = arch.package_summary(graph)
    assert pairs == set(zip(summary["package"], summary["imported"]))
    core = next(p for p in lines if p["package"] == "analysis" and p["imported"] == "entropy")
    assert "Profiles" in core["names_text"] and core["statements"] >= 1  # the tooltip's names
    assert layers[1]["encoding"]["tooltip"][-1]["field"] == "names_text"
    # each package's box stays clear of every other
    for a in boxes:
        for b in boxes:
            if a is not b:
                assert a["x1"] <= b["x0"] or b["x1"] <= a["x0"] or a["y1"] <= b["y0"] or b["y1"] <= a["y0"], (a, b)


def test_the_chart_is_offline_and_has_a_phone_layout(real_chart):
    import vl_convert as vlc

    _, _, chart = real_chart
    html = charts.to_html(chart)
    assert "http" not in html and '"url"' not in html  # every datum inline
    spec = charts.chart_spec(chart)
    narrow = chart_reflow.narrow_spec(spec) | {"datasets": spec["datasets"]}
    alt.TopLevelSpec.validate(narrow)
    assert narrow["width"] == chart_reflow.PLOT_WIDTH
    assert json.dumps(narrow["layer"]) == json.dumps(spec["layer"])  # nothing of the drawing is dropped
    svg = vlc.vegalite_to_svg(narrow, vl_version=charts.VEGALITE_VERSION)
    width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))
    assert width <= chart_reflow.NARROW_WIDTH + 100, f"the phone layout is {width:.0f} px wide"


def test_a_package_in_no_layer_is_named(pkg):
    (pkg / "extra_pkg").mkdir()
    (pkg / "extra_pkg" / "__init__.py").write_text("from pkg.core.util import helper\n")
    with pytest.raises(ElensError, match=r"\['extra_pkg'\] stand in no layer"):
        arch.architecture_chart(arch.import_graph(pkg), arch.package_table(pkg))
