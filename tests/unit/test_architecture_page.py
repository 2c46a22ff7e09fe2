"""The architecture appendix's module (elens_utils.book.architecture): the import graph read from a
small hand-made package, its summary per pair of packages, the table, and the dependency matrix."""

from __future__ import annotations

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


def _layer(spec: dict, mark: str, index: int) -> tuple[dict, list[dict]]:
    """The spec's ``index``-th layer (checking its mark) and its inline rows."""
    layer = spec["layer"][index]
    kind = layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
    assert kind == mark, (index, kind)
    return layer, spec["datasets"][layer["data"]["name"]]


@pytest.fixture(scope="module")
def real_matrix():
    summary, table = arch.package_summary(arch.import_graph()), arch.package_table()
    return summary, table, arch.dependency_matrix(summary, table)


def test_the_matrix_has_one_cell_per_importing_pair_with_its_count(real_matrix):
    summary, table, chart = real_matrix
    spec = charts.chart_spec(chart)  # validates against the Vega-Lite schema
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    layer, cells = _layer(spec, "rect", 2)
    assert len(cells) == len(summary)  # one cell per pair of packages with imports, no more
    counts = {(c["package"], c["imported"]): c["statements"] for c in cells}
    assert counts == {(r.package, r.imported): r.statements for r in summary.itertuples()}
    assert all(c["text"] == str(int(c["statements"])) for c in cells)  # the count printed in the cell
    assert layer["encoding"]["color"]["scale"]["type"] == "log"  # 1 and 28 both read
    core = next(c for c in cells if c["package"] == "analysis" and c["imported"] == "entropy")
    assert "Profiles" in core["names_text"] and core["row"] == f"{arch.LAYER['analysis']} analysis"
    assert [t["field"] for t in layer["encoding"]["tooltip"]][:4] == ["across", "statements", "modules", "names_text"]
    # rows and columns: every package, labelled with its layer, the top layer first
    modules = arch.find_modules()
    order = [f"{i} {'top level' if p == arch.TOP else p}" for i in reversed(range(len(arch.LAYERS))) for p in arch.LAYERS[i]]
    assert layer["encoding"]["x"]["sort"] == layer["encoding"]["y"]["sort"] == order
    assert len(order) == len({arch.package_of(m, modules) for m in modules}) == len(table)
    _, zones = _layer(spec, "rect", 0)
    assert len(zones) == len(order) ** 2
    zone = {(z["row"], z["column"]): z["zone"] for z in zones}
    assert zone["1 data", "1 entropy"] == zone["9 bench", "9 zoo"] == zone["5 analysis", "5 analysis"]  # one layer, one grey square
    assert zone["1 data", "0 core"] != zone["0 core", "1 data"] != zone["1 data", "1 entropy"]
    _, diagonal = _layer(spec, "rect", 1)
    assert [(d["row"], d["column"]) for d in diagonal] == [(o, o) for o in order]
    assert next(d for d in diagonal if d["package"] == "core")["imports"] == "0 packages"


def test_no_cell_of_the_real_tree_stands_on_the_wrong_side(real_matrix):
    _, _, chart = real_matrix
    spec = charts.chart_spec(chart)
    layer, cells = _layer(spec, "rect", 2)
    order = layer["encoding"]["y"]["sort"]
    assert all(c["side"] == "down" for c in cells)
    assert all(order.index(c["row"]) < order.index(c["column"]) for c in cells)  # above the diagonal
    assert "every one is there" in " ".join(spec["title"]["subtitle"])


def test_a_cell_on_the_wrong_side_is_outlined(pkg):
    (pkg / "core" / "bad.py").write_text("from pkg.viz.charts import draw\n")  # core imports viz: up the layers
    summary = arch.package_summary(arch.import_graph(pkg))
    spec = charts.chart_spec(arch.dependency_matrix(summary, arch.package_table(pkg)))
    layer, cells = _layer(spec, "rect", 2)
    side = {(c["package"], c["imported"]): c["side"] for c in cells}
    assert side == {(arch.TOP, "core"): "down", (arch.TOP, "viz"): "down", ("data", "core"): "down",
                    ("viz", "core"): "down", ("viz", "data"): "down", ("core", "viz"): "up"}  # fmt: skip
    assert layer["encoding"]["stroke"]["condition"]["test"] == "datum.side != 'down'"
    assert "1 outlined in red" in " ".join(spec["title"]["subtitle"])
    assert layer["encoding"]["x"]["sort"] == ["10 top level", "6 viz", "1 data", "0 core"]  # only the packages there are
    _, diagonal = _layer(spec, "rect", 1)
    core = next(d for d in diagonal if d["package"] == "core")
    assert core["holds"] == "The core: helpers and errors." and core["modules"].startswith("4: ") and core["users"] == "3 packages"


def test_the_matrix_is_offline_and_its_phone_layout_fits_a_phone(real_matrix):
    import vl_convert as vlc

    _, _, chart = real_matrix
    html = charts.to_html(chart)
    assert "http" not in html and '"url"' not in html  # every datum inline
    spec = charts.chart_spec(chart)
    narrow = chart_reflow.narrow_spec(spec) | {"datasets": spec["datasets"]}
    alt.TopLevelSpec.validate(narrow)
    # the numbers in the cells are dropped (a phone's cells are too narrow; the tooltips keep
    # them), the rest is drawn as it is
    assert [layer["mark"] for layer in narrow["layer"]] == [layer["mark"] for layer in spec["layer"][:3]]
    assert spec["layer"][3]["mark"]["type"] == "text"
    for name, drawn in (("wide", spec), ("narrow", narrow)):
        svg = vlc.vegalite_to_svg(drawn, vl_version=charts.VEGALITE_VERSION)
        width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))
        limit = 900 if name == "wide" else chart_reflow.NARROW_WIDTH + 100
        assert width <= limit, f"the {name} layout is {width:.0f} px wide"


def test_a_package_in_no_layer_is_named(pkg):
    (pkg / "extra_pkg").mkdir()
    (pkg / "extra_pkg" / "__init__.py").write_text("from pkg.core.util import helper\n")
    with pytest.raises(ElensError, match=r"\['extra_pkg'\] stand in no layer"):
        arch.dependency_matrix(arch.package_summary(arch.import_graph(pkg)), arch.package_table(pkg))
    with pytest.raises(ElensError, match="lacks"):
        arch.dependency_matrix(pd.DataFrame({"package": []}), arch.package_table(pkg))
