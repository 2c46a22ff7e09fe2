"""The library's architecture, read from its source: the import graph of its packages, by layer.

The subpackages of ``elens_utils`` stand in layers (:data:`LAYERS`, bottom to top): a package
imports its own modules and those of lower layers, never one beside or above it
(``tests/unit/test_architecture.py`` checks it). This module reads every module of the package with
:mod:`ast` (no import runs), resolves each import statement to the library module it reaches
(imports inside functions and under ``TYPE_CHECKING`` count; relative imports are resolved), and
turns the result into what the book's appendix on the library shows:

* :func:`import_graph`: one row per imported name (or module) per import statement;
* :func:`package_summary`: per pair of packages, the number of import statements that cross
  from one to the other and the names imported most often across that boundary;
* :func:`flows_up`: per package, which packages import it and the names they take from it;
* :func:`dependency_matrix`: who imports from whom, as a matrix of packages ordered by layer;
* :func:`package_table`: per package, its layer, its modules and its line count.

The lower-level pieces (:func:`find_modules`, :func:`package_of`, :func:`import_target`,
:func:`module_imports`, :func:`relative_imports`, :func:`import_edges`) give the graph module by
module, as a test of the layering needs it.
"""

from __future__ import annotations

import ast
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import altair as alt
import pandas as pd

from elens_utils.book.chapter_files import PACKAGE
from elens_utils.core.errors import ElensError
from elens_utils.viz.theme import json_safe, need_columns, tooltips

__all__ = [
    "LAYER",
    "LAYERS",
    "TOP",
    "Import",
    "dependency_matrix",
    "find_modules",
    "flows_up",
    "import_edges",
    "import_graph",
    "import_target",
    "layer_of",
    "module_imports",
    "package_of",
    "package_summary",
    "package_table",
    "relative_imports",
]

#: The name of the pseudo-package of the package's own top-level modules (``__init__``, ``cli``, ...).
TOP = "top"

#: The layers from the bottom up. A package may import its own modules and those of lower
#: layers; packages side by side in one layer do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("core",),  # errors, atomic files, threads, token text, provenance
    ("data", "entropy"),  # prompts and datasets | entropy kernels and the Profiles container
    ("models",),  # names to directories; tiny and zoo architectures; GGUF; real models
    ("lens",),  # locating the lens, loading with parity, capture, generation
    ("sweeps",),  # the profile cache; sweeps on one process or many
    ("analysis",),  # kNN protocol, candidate sets, interventions, scoring, comparisons
    ("viz",),  # charts and their phone layouts
    ("findings",),  # what each chapter's run found: its closing bullets and headline
    ("book",),  # the chapter runner, chapter times, headlines, this module
    ("zoo", "bench"),  # side tools: zoo training and cards | the benchmark
    (TOP,),  # elens_utils/__init__, the command line
]

#: Package name -> its layer's index in :data:`LAYERS`.
LAYER: dict[str, int] = {pkg: i for i, pkgs in enumerate(LAYERS) for pkg in pkgs}


class Import(NamedTuple):
    """One library module reached by an import statement."""

    module: str
    """the library module reached (dotted name; a package's ``__init__`` by the package's name)"""
    name: str
    """the name imported from it (``from module import name``), or ``""`` when the statement
    imports the module itself (``import a.b``, ``from a import b`` with ``a.b`` a module)"""
    line: int
    """the statement's line in the importing module"""


# ---------------------------------------------------------------------------------------------
# the import graph


def find_modules(package: str | Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module (``*.py``) of ``package`` and its
    subpackages; a package's ``__init__.py`` is named by the package (``elens_utils.core``)."""
    package = Path(package).resolve()
    if not (package / "__init__.py").is_file():
        raise ElensError(f"find_modules(): {package} is not a Python package (it has no __init__.py).")
    out = {}
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def package_of(module: str, modules: Mapping[str, Path]) -> str:
    """The subpackage ``module`` belongs to (``elens_utils.viz.render`` -> ``"viz"``), or
    :data:`TOP` for the package's own top-level modules (``elens_utils``, ``elens_utils.cli``)."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and module in modules and modules[module].name == "__init__.py"):
        return parts[1]
    return TOP


def layer_of(package: str) -> int:
    """The index in :data:`LAYERS` of ``package`` (a name :func:`package_of` returns).

    Raises:
        ElensError: for a package that no layer names (add it to :data:`LAYERS`).
    """
    if package not in LAYER:
        raise ElensError(f"The package {package!r} stands in no layer: add it to LAYERS in {__name__}.")
    return LAYER[package]


def import_target(module: str, name: str | None, modules: Mapping[str, Path]) -> str | None:
    """The library module that ``from module import name`` reaches: ``module.name`` when that is
    a module (a submodule imported by name), else ``module`` itself, or None when ``module`` is
    not one of ``modules`` (another library, or a name that is no module)."""
    if name and f"{module}.{name}" in modules:
        return f"{module}.{name}"
    return module if module in modules else None


def _absolute(node: ast.ImportFrom, module: str, modules: Mapping[str, Path]) -> str | None:
    """The absolute module name of ``from ... import`` in ``module`` (relative ones resolved)."""
    if not node.level:
        return node.module
    parts = module.split(".")
    if modules[module].name != "__init__.py":
        parts = parts[:-1]  # a module's own package is its name less its last part
    if node.level - 1 > len(parts) - 1:
        return None  # beyond the top-level package
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _tree(module: str, modules: Mapping[str, Path]) -> ast.Module:
    path = modules[module]
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as err:
        raise ElensError(f"Cannot read the module {module} ({path}): {err}") from err


def _root(modules: Mapping[str, Path]) -> str:
    """The top-level package's name (the first part of every module's name)."""
    return min(modules, key=len).split(".")[0] if modules else ""


def _walk_imports(tree: ast.Module, module: str, modules: Mapping[str, Path]) -> tuple[list[Import], dict[str, str]]:
    """``module``'s imports of library modules (as :func:`module_imports` gives them) and its
    local names bound to a library module (``from elens_utils.viz import charts``, ``import a.b
    as c``): local name -> the module, for the attributes read through it."""
    root = _root(modules)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, modules)
            if not source or source.split(".")[0] != root:
                continue
            for alias in node.names:
                target = import_target(source, alias.name, modules)
                if not target:
                    continue
                whole = target.endswith(f".{alias.name}")
                found.append(Import(target, "" if whole else alias.name, node.lineno))
                if whole:
                    aliases[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root and alias.name in modules:
                    found.append(Import(alias.name, "", node.lineno))
                    if alias.asname:
                        aliases[alias.asname] = alias.name
    return sorted(found, key=lambda imp: imp.line), aliases


def module_imports(module: str, modules: Mapping[str, Path]) -> list[Import]:
    """Every import of a module of the package in ``module``, wherever it stands (top level, in
    functions, under ``TYPE_CHECKING``), relative imports resolved, in the order of the source.

    ``from a import x, y`` gives one :class:`Import` per name; a name that is a submodule gives the
    submodule with ``name == ""``. Imports of other libraries are left out.
    """
    return _walk_imports(_tree(module, modules), module, modules)[0]


def relative_imports(module: str, modules: Mapping[str, Path]) -> list[int]:
    """The lines of ``module``'s relative imports (``from . import x``); the library imports
    absolutely, and a test can hold it to that."""
    return sorted(node.lineno for node in ast.walk(_tree(module, modules)) if isinstance(node, ast.ImportFrom) and node.level)


def import_edges(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the other modules of the package it imports (the graph's edges)."""
    return {m: {imp.module for imp in module_imports(m, modules) if imp.module != m} for m in modules}


def _attribute_uses(tree: ast.Module, aliases: Mapping[str, str]) -> dict[str, set[str]]:
    """Library module -> the attributes read through a local name bound to it (``charts.show``)."""
    used: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.setdefault(aliases[node.value.id], set()).add(node.attr)
    return used


_GRAPH_COLUMNS = ["module", "package", "target", "target_package", "name", "line", "via"]


def import_graph(package: str | Path = PACKAGE) -> pd.DataFrame:
    """The package's import graph, read from the source of every module.

    Args:
        package: the package directory (default: ``elens_utils`` itself).

    Returns:
        One row per name that crosses an import statement, columns ``module`` (the importing
        module), ``package`` (its package, :func:`package_of`), ``target`` (the library module
        reached), ``target_package``, ``name``, ``line`` (of the statement) and ``via``:
        ``"import"`` for ``from target import name``; ``"attribute"`` for a name read through a
        module the statement imports (``from elens_utils.viz import charts`` then
        ``charts.show``: name ``show``), one row per name and statement; ``"module"`` for a module
        imported and none of its names read through it (``name`` is then ``""``).
    """
    modules = find_modules(package)
    rows = []
    for module in modules:
        tree = _tree(module, modules)
        imports, aliases = _walk_imports(tree, module, modules)
        uses = _attribute_uses(tree, aliases) if aliases else {}
        here = package_of(module, modules)
        for imp in imports:
            there = package_of(imp.module, modules)
            if imp.name:
                rows.append((module, here, imp.module, there, imp.name, imp.line, "import"))
            elif uses.get(imp.module):
                rows += [(module, here, imp.module, there, name, imp.line, "attribute") for name in sorted(uses[imp.module])]
            else:
                rows.append((module, here, imp.module, there, "", imp.line, "module"))
    return pd.DataFrame(rows, columns=_GRAPH_COLUMNS)


def _flow_text(names: Sequence[tuple[str, int]], more: int) -> str:
    text = ", ".join(f"{name} ({n})" if n > 1 else name for name, n in names)
    return text + (f", and {more} more" if more else "")


def _crossing(graph: pd.DataFrame | None, internal: bool, fn: str) -> pd.DataFrame:
    """The graph's rows that cross from one package to another (all with ``internal``), each
    with ``flow_name``: the name, or for a module imported whole its name and a dot."""
    graph = import_graph() if graph is None else graph
    missing = [c for c in _GRAPH_COLUMNS if c not in graph.columns]
    if missing:
        raise ElensError(f"{fn}() needs import_graph()'s frame; it lacks the columns {missing}.")
    frame = graph if internal else graph[graph["package"] != graph["target_package"]]
    return frame.assign(flow_name=[n if n else f"{t.rsplit('.', 1)[-1]}." for n, t in zip(frame["name"], frame["target"])])


def _ranked(part: pd.DataFrame) -> list[tuple[str, int]]:
    """``(name, statements that bring it)``, most first (a name counts once per statement)."""
    counts = Counter(part.drop_duplicates(["module", "line", "flow_name"])["flow_name"])
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))


def _check_top(top: int, fn: str) -> None:
    if top < 1:
        raise ElensError(f"{fn}(): top must be at least 1, got {top}.")


def _by_layer(frame: pd.DataFrame, layer: str, keys: list[str], descending: bool) -> pd.DataFrame:
    """``frame`` sorted by its ``layer`` column (a package in no layer last), then ``keys``."""
    if frame.empty:
        return frame
    order = frame.assign(_l=frame[layer].fillna(-1 if descending else len(LAYERS)))
    order = order.sort_values(["_l", *keys], ascending=[not descending] + [k != "statements" for k in keys], kind="stable")
    return order.drop(columns="_l").reset_index(drop=True)


def package_summary(graph: pd.DataFrame | None = None, *, top: int = 5, internal: bool = False) -> pd.DataFrame:
    """The import graph per pair of packages: what flows from one package up to another.

    Args:
        graph: :func:`import_graph`'s frame (default: that of ``elens_utils``).
        top: how many of the names imported most often each row lists.
        internal: also count a package's imports of its own modules (rows with ``package ==
            imported``).

    Returns:
        One row per (importing package, imported package), the importing package's layer top
        first, then the most statements first, columns ``package``, ``imported``, ``layer`` and
        ``imported_layer`` (indices in :data:`LAYERS`, None for a package in no layer),
        ``statements`` (import statements of ``package``'s modules that reach ``imported``),
        ``modules`` (how many of ``package``'s modules import from it), ``n_names`` (distinct
        names), ``names`` (the ``top`` names brought across by the most statements, with that
        number: a list of ``(name, count)``) and ``flow`` (the same as text: ``"Profiles (7),
        lens_entropy (3), ..."``). A module imported whole, none of whose names its importer
        reads through it, counts as its module name followed by a dot (``"charts."``).
    """
    _check_top(top, "package_summary")
    frame = _crossing(graph, internal, "package_summary")
    rows = []
    for (src, dst), part in frame.groupby(["package", "target_package"], sort=False):
        ranked = _ranked(part)
        rows.append({
            "package": src,
            "imported": dst,
            "layer": LAYER.get(src),
            "imported_layer": LAYER.get(dst),
            "statements": int(part.drop_duplicates(["module", "line"]).shape[0]),
            "modules": int(part["module"].nunique()),
            "n_names": len(ranked),
            "names": ranked[:top],
            "flow": _flow_text(ranked[:top], max(0, len(ranked) - top)),
        })  # fmt: skip
    columns = ["package", "imported", "layer", "imported_layer", "statements", "modules", "n_names", "names", "flow"]
    return _by_layer(pd.DataFrame(rows, columns=columns), "layer", ["package", "statements", "imported"], descending=True)


def flows_up(graph: pd.DataFrame | None = None, *, top: int = 5) -> pd.DataFrame:
    """What each package gives the packages that import it: the import graph per imported package.

    Args:
        graph: :func:`import_graph`'s frame (default: that of ``elens_utils``).
        top: how many of the names imported most often each row lists.

    Returns:
        One row per package that another package imports, bottom layer first, columns
        ``package``, ``layer``, ``importers`` (the packages that import from it, comma-separated,
        most statements first), ``n_importers``, ``statements`` (import statements of other
        packages that reach it), ``names`` (the ``top`` names brought out of it by the most
        statements, as ``(name, count)``) and ``flow`` (the same as text).
    """
    _check_top(top, "flows_up")
    frame = _crossing(graph, False, "flows_up")
    rows = []
    for dst, part in frame.groupby("target_package", sort=False):
        ranked = _ranked(part)
        by_importer = part.drop_duplicates(["module", "line"])["package"].value_counts()
        importers = sorted(by_importer.items(), key=lambda kv: (-kv[1], kv[0]))
        rows.append({
            "package": dst,
            "layer": LAYER.get(dst),
            "importers": ", ".join(p for p, _ in importers),
            "n_importers": len(importers),
            "statements": int(by_importer.sum()),
            "names": ranked[:top],
            "flow": _flow_text(ranked[:top], max(0, len(ranked) - top)),
        })  # fmt: skip
    columns = ["package", "layer", "importers", "n_importers", "statements", "names", "flow"]
    return _by_layer(pd.DataFrame(rows, columns=columns), "layer", ["package"], descending=False)


# ---------------------------------------------------------------------------------------------
# the table


def _docstring_line(path: Path) -> str:
    """The first line of the module's docstring (what a package says it holds)."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except (SyntaxError, UnicodeDecodeError):
        return ""
    return (doc or "").strip().splitlines()[0].strip() if doc and doc.strip() else ""


def _packages(modules: Mapping[str, Path]) -> dict[str, list[str]]:
    """Package -> its modules (dotted names), in the order of :data:`LAYERS`, then any other."""
    found: dict[str, list[str]] = {}
    for module in modules:
        found.setdefault(package_of(module, modules), []).append(module)
    ordered = [p for layer in LAYERS for p in layer if p in found]
    return {p: found[p] for p in ordered + sorted(set(found) - set(ordered))}


def package_table(package: str | Path = PACKAGE) -> pd.DataFrame:
    """Per package of ``package``: its layer, its modules and its size.

    Returns:
        One row per package, bottom layer first, columns ``layer`` (index in :data:`LAYERS`;
        None for a package in no layer), ``package``, ``modules`` (the module names within it,
        comma-separated: ``cpu, precision, ...``; the top level's also ``__init__``), ``n_modules``
        (files, ``__init__.py`` included), ``lines`` (lines of source, all its files) and
        ``holds`` (the first line of the package's docstring: what it says it holds).
    """
    modules = find_modules(package)
    root = _root(modules)
    rows = []
    for pkg, names in _packages(modules).items():
        prefix = root if pkg == TOP else f"{root}.{pkg}"
        short = []
        for m in names:
            if m == prefix:
                if pkg == TOP:
                    short.append("__init__")
                continue
            short.append(m[len(prefix) + 1 :])
        rows.append({
            "layer": LAYER.get(pkg),
            "package": pkg,
            "modules": ", ".join(sorted(short, key=lambda s: (s.startswith("_"), s))),
            "n_modules": len(names),
            "lines": sum(len(modules[m].read_text(encoding="utf-8").splitlines()) for m in names),
            "holds": _docstring_line(modules[prefix]) if prefix in modules else "",
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["layer", "package", "modules", "n_modules", "lines", "holds"])


# ---------------------------------------------------------------------------------------------
# the chart

_ALLOWED, _SAME, _FORBIDDEN = "below the row's: allowed", "the row's own: not allowed", "above the row's: not allowed"
_ZONE_COLOURS = {_ALLOWED: "#e3eee0", _SAME: "#d4d4d4", _FORBIDDEN: "#ffffff"}
_WRONG_COLOUR = "#d62728"
_CELL_W, _CELL_H = 38, 26  # a cell's width and height (px) in the wide layout


def _label(package: str) -> str:
    """A package's name on the chart's axes: its layer, then its name (``"8 book"``)."""
    return f"{LAYER[package]} {'top level' if package == TOP else package}"


def dependency_matrix(
    summary: pd.DataFrame | None = None,
    table: pd.DataFrame | None = None,
    *,
    title: str | None = None,
    subtitle: str | None = None,
) -> alt.LayerChart:
    """The imports between packages as a dependency-structure matrix: importers in rows, imported
    packages in columns, a cell per pair with imports, coloured and labelled by their number.

    Args:
        summary: :func:`package_summary`'s frame (default: that of ``elens_utils``); rows of a
            package with itself (``internal=True``) are left out: the diagonal stays neutral.
        table: :func:`package_table`'s frame of the same package (default: ``elens_utils``'s);
            every package in it gets a row and a column, and the diagonal's tooltips give what
            it holds, its modules and its lines.
        title: replaces the chart's own title.
        subtitle: replaces the chart's own subtitle (which says how to read the chart).

    Rows and columns both stand in the order of :data:`LAYERS`, the top layer first, each
    labelled with its layer (``"8 book"``): imports that point down the layers fall above the
    diagonal, on the shaded side. A package's own layer is a grey square on the diagonal (two
    packages wide for ``data | entropy``), and a cell outside the shaded side is outlined in red.
    A cell's colour (log scale) and number give the import statements of the row's package that
    reach the column's; its tooltip adds the importing modules and the names that cross. The data
    are inline (no URL).

    Raises:
        ElensError: for a package in no layer of :data:`LAYERS`.
    """
    summary = package_summary() if summary is None else summary
    table = package_table() if table is None else table
    need_columns(summary, ["package", "imported", "statements", "modules", "flow"], "dependency_matrix")
    need_columns(table, ["package", "modules", "n_modules", "lines", "holds"], "dependency_matrix")
    packages = list(dict.fromkeys([*table["package"], *summary["package"], *summary["imported"]]))
    extra = [p for p in packages if p not in LAYER]
    if extra:
        raise ElensError(f"dependency_matrix(): the packages {extra} stand in no layer: add them to LAYERS in {__name__}.")
    order = [p for layer in reversed(LAYERS) for p in layer if p in packages]  # top layer first
    labels = [_label(p) for p in order]

    cells = summary[summary["package"] != summary["imported"]]
    imports = cells.groupby("package")["imported"].nunique()
    users = cells.groupby("imported")["package"].nunique()
    info = table.set_index("package")
    zones, diagonal = [], []
    for p in order:
        for q in order:
            zone = _ALLOWED if LAYER[q] < LAYER[p] else _SAME if LAYER[q] == LAYER[p] else _FORBIDDEN
            zones.append({"row": _label(p), "column": _label(q), "zone": zone})
        row = info.loc[p] if p in info.index else None
        diagonal.append({
            "row": _label(p), "column": _label(p), "package": p, "layer": LAYER[p],
            "holds": (row["holds"] if row is not None else "") or "–",
            "modules": f"{int(row['n_modules'])}: {row['modules']}" if row is not None else "–",
            "lines": int(row["lines"]) if row is not None else 0,
            "imports": f"{int(imports.get(p, 0))} packages", "users": f"{int(users.get(p, 0))} packages",
        })  # fmt: skip
    side = ["down" if LAYER[b] < LAYER[a] else "sideways" if LAYER[b] == LAYER[a] else "up" for a, b in zip(cells["package"], cells["imported"])]
    data = json_safe(cells.assign(
        row=[_label(p) for p in cells["package"]],
        column=[_label(p) for p in cells["imported"]],
        across=cells["package"] + " imports from " + cells["imported"],
        side=side,
        names_text=cells["flow"].where(cells["flow"] != "", "(none)"),
        text=cells["statements"].astype(int).astype(str),
    )[["row", "column", "package", "imported", "across", "side", "statements", "modules", "names_text", "text"]])

    most = max(2, int(cells["statements"].max()) if len(cells) else 2)
    dark = math.sqrt(most)  # the log scale's middle: white numbers on the darker half
    x = alt.X("column:N", sort=labels, title="imported package", axis=alt.Axis(
        orient="top", labelAngle=-90, labelAlign="left", labelBaseline="middle", labelLimit=120, labelFontSize=12, ticks=False, domain=False))  # fmt: skip
    y = alt.Y("row:N", sort=labels, title="importing package", axis=alt.Axis(labelLimit=140, ticks=False, domain=False))
    zone = alt.Chart(pd.DataFrame(zones)).mark_rect().encode(
        x=x, y=y,
        fill=alt.Fill("zone:N", title="the column's layer is", scale=alt.Scale(domain=list(_ZONE_COLOURS), range=list(_ZONE_COLOURS.values())),
                      legend=alt.Legend(orient="right", symbolType="square", symbolStrokeColor="#999", symbolStrokeWidth=1, labelLimit=180)),
    )  # fmt: skip
    own_tooltip = tooltips(
        "package:N", "layer:Q", ("holds:N", "holds"), ("modules:N", "modules"),
        ("lines:Q", "lines of code", ","), ("imports:N", "imports from"), ("users:N", "imported by"),
    )
    own = alt.Chart(json_safe(pd.DataFrame(diagonal))).mark_rect(fill=_ZONE_COLOURS[_SAME]).encode(x=x, y=y, tooltip=own_tooltip)
    tooltip = tooltips(
        ("across:N", "imports"), ("statements:Q", "import statements"), ("modules:Q", "importing modules"),
        ("names_text:N", "names (statements)"), ("side:N", "across the layers"),
    )
    counts = alt.Chart(data).mark_rect(stroke="white", strokeWidth=1).encode(
        x=x, y=y,
        color=alt.Color("statements:Q", title="import statements", scale=alt.Scale(type="log", scheme={"name": "blues", "extent": [0.2, 1]}, domain=[1, most]),
                        legend=alt.Legend(orient="right", gradientLength=120, values=[v for v in (1, 3, 10, 30, 100) if v <= most])),
        stroke=alt.condition("datum.side != 'down'", alt.value(_WRONG_COLOUR), alt.value("white")),
        strokeWidth=alt.condition("datum.side != 'down'", alt.value(3), alt.value(1)),
        tooltip=tooltip,
    )  # fmt: skip
    numbers = alt.Chart(data).mark_text(fontSize=12).encode(
        x=x, y=y, text="text:N",
        color=alt.condition(f"datum.statements > {dark:.6g}", alt.value("white"), alt.value("black")),
        tooltip=tooltip,
    )  # fmt: skip
    wrong = sum(s != "down" for s in side)
    default_sub = [
        "a row's package imports from a column's: the cell counts the statements (tap it for the names);",
        "green: layers below the row's, where imports belong" + (" (every one is there)" if not wrong else f" ({wrong} outlined in red are not)"),
    ]
    return alt.layer(zone, own, counts, numbers).properties(
        width=alt.Step(_CELL_W),
        height=alt.Step(_CELL_H),
        title=alt.Title(title or "Which package imports from which, by layer", subtitle=subtitle or default_sub),
    )
