"""The library's architecture, read from its source: the import graph of its packages, by layer.

The subpackages of ``elens_utils`` stand in layers (:data:`LAYERS`, bottom to top): a package
imports its own modules and those of lower layers, never one beside or above it
(``tests/test_architecture.py`` checks it). This module reads every module of the package with
:mod:`ast` (no import runs), resolves each import statement to the library module it reaches
(imports inside functions and under ``TYPE_CHECKING`` count; relative imports are resolved), and
turns the result into what the book's appendix on the library shows:

* :func:`import_graph`: one row per imported name (or module) per import statement;
* :func:`package_summary`: per pair of packages, the number of import statements that cross
  from one to the other and the names imported most often across that boundary;
* :func:`flows_up`: per package, which packages import it and the names they take from it;
* :func:`architecture_chart`: the layers as rows, the packages as boxes, the imports as lines;
* :func:`package_table`: per package, its layer, its modules and its line count.

The lower-level pieces (:func:`find_modules`, :func:`package_of`, :func:`import_target`,
:func:`module_imports`, :func:`relative_imports`, :func:`import_edges`) give the graph module by
module, as a test of the layering needs it.
"""

from __future__ import annotations

import ast
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import altair as alt
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.viz.theme import json_safe, need_columns

__all__ = [
    "LAYER",
    "LAYERS",
    "PACKAGE",
    "PACKAGE_COLOURS",
    "TOP",
    "Import",
    "architecture_chart",
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

#: The ``elens_utils`` package directory (the one this module belongs to).
PACKAGE = Path(__file__).resolve().parents[1]

#: The name of the pseudo-package of the package's own top-level modules (``__init__``, ``cli``, ...).
TOP = "top"

#: The layers, bottom to top: a package may import its own modules and those of lower layers;
#: packages side by side in one layer do not import each other.
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


def module_imports(module: str, modules: Mapping[str, Path]) -> list[Import]:
    """Every import of a module of the package in ``module``, wherever it stands (top level, in
    functions, under ``TYPE_CHECKING``), relative imports resolved, in the order of the source.

    ``from a import x, y`` gives one :class:`Import` per name; a name that is a submodule gives the
    submodule with ``name == ""``. Imports of other libraries are left out.
    """
    root = _root(modules)
    found = []
    for node in ast.walk(_tree(module, modules)):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, modules)
            if not source or source.split(".")[0] != root:
                continue
            for alias in node.names:
                target = import_target(source, alias.name, modules)
                if target:
                    found.append(Import(target, "" if target.endswith(f".{alias.name}") else alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root and alias.name in modules:
                    found.append(Import(alias.name, "", node.lineno))
    return sorted(found, key=lambda imp: imp.line)


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
        imports = module_imports(module, modules)
        tree = _tree(module, modules) if any(not imp.name for imp in imports) else None
        uses: dict[str, set[str]] = {}
        if tree is not None:
            aliases: dict[str, str] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    source = _absolute(node, module, modules)
                    for alias in node.names:
                        target = import_target(source, alias.name, modules) if source else None
                        if target and target.endswith(f".{alias.name}"):
                            aliases[alias.asname or alias.name] = target
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.asname and alias.name in modules:
                            aliases[alias.asname] = alias.name
            uses = _attribute_uses(tree, aliases)
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

#: One colour per package (the lines take the colour of the package they come up from).
PACKAGE_COLOURS: dict[str, str] = {
    "core": "#4e79a7", "data": "#f28e2b", "entropy": "#e15759", "models": "#76b7b2", "lens": "#59a14f",
    "sweeps": "#edc948", "analysis": "#b07aa1", "viz": "#ff9da7", "findings": "#9c755f", "book": "#6b6ecf",
    "zoo": "#8c6d31", "bench": "#17becf", TOP: "#555555",
}  # fmt: skip
_OTHER_COLOURS = ["#bab0ac", "#843c39", "#393b79", "#637939"]

_HALF = 1.0  # the drawing spans x in [-_HALF, _HALF]
_BOX = 0.34  # half a single box's width
_SIBLING = 0.22  # half the width of a box beside another in its layer
_STEP_EXTRA = 0.45  # the extra height of a row for each package beside the first
_TRACK0 = 0.41  # the innermost line's distance from the middle
_BOX_H = 0.62  # a single box's height, in layers
_BAND_PX = 48  # px per layer


@dataclass(frozen=True)
class _Box:
    package: str
    band: int  # the row (0: the lowest layer drawn)
    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def y(self) -> float:
        return (self.y0 + self.y1) / 2


def _bands(packages: Sequence[str]) -> list[tuple[int, list[str]]]:
    """(layer, its packages) of every layer that holds one of ``packages``, bottom first."""
    extra = [p for p in packages if p not in LAYER]
    if extra:
        raise ElensError(f"architecture_chart(): the packages {extra} stand in no layer: add them to LAYERS in {__name__}.")
    rows = [(i, [p for p in layer if p in packages]) for i, layer in enumerate(LAYERS)]
    return [(i, row) for i, row in rows if row]


def _band_edges(bands: Sequence[tuple[int, list[str]]]) -> list[float]:
    """Where each row starts (and the last ends), in units of a one-package row's height: a row
    of several packages is taller, for its boxes stand in steps."""
    out = [0.0]
    for _, row in bands:
        out.append(out[-1] + 1 + _STEP_EXTRA * (len(row) - 1))
    return out


def _boxes(packages: Sequence[str]) -> dict[str, _Box]:
    """Boxes of the packages, a row per layer that has one; packages side by side in a layer
    stand in steps (the left one lower), so that a line can leave either side of each."""
    bands = _bands(packages)
    starts = _band_edges(bands)
    out = {}
    for band, (_, row) in enumerate(bands):
        k, lo, hi = len(row), starts[band], starts[band + 1]
        if k == 1:
            mid = (lo + hi) / 2
            out[row[0]] = _Box(row[0], band, -_BOX, _BOX, mid - _BOX_H / 2, mid + _BOX_H / 2)
            continue
        step = (hi - lo - 0.2) / k  # each box takes a step of the row's height
        centres = [-_BOX + _SIBLING + i * (2 * (_BOX - _SIBLING)) / (k - 1) for i in range(k)]
        for i, pkg in enumerate(row):
            y0 = lo + 0.1 + i * step
            out[pkg] = _Box(pkg, band, centres[i] - _SIBLING, centres[i] + _SIBLING, y0 + 0.05, y0 + step - 0.05)
    return out


def _assign_tracks(edges: pd.DataFrame, boxes: Mapping[str, _Box]) -> list[tuple[int, int]]:
    """(side, track) of each edge: side -1 left, +1 right; track 0 the innermost. Shorter lines
    go inside longer ones, and lines on one track never share a stretch of height."""
    used: dict[tuple[int, int], list[tuple[float, float]]] = {}
    count = {-1: 0, 1: 0}
    spans = [(abs(boxes[a].y - boxes[b].y), i) for i, (a, b) in enumerate(zip(edges["package"], edges["imported"]))]
    out: dict[int, tuple[int, int]] = {}
    for _, i in sorted(spans):
        a, b = boxes[edges["package"].iloc[i]], boxes[edges["imported"].iloc[i]]
        lo, hi = sorted((a.y, b.y))
        track = 0
        while True:
            sides = sorted((-1, 1), key=lambda s: (count[s], -s))
            free = [s for s in sides if all(hi <= l2 or lo >= h2 for l2, h2 in used.get((s, track), []))]
            if free:
                side = free[0]
                break
            track += 1
        used.setdefault((side, track), []).append((lo, hi))
        count[side] += 1
        out[i] = (side, track)
    return [out[i] for i in range(len(edges))]


def _edge_paths(edges: pd.DataFrame, boxes: Mapping[str, _Box], tracks: Sequence[tuple[int, int]], spacing: float) -> pd.DataFrame:
    """The points of each line: out of the importer's side, along its track, into the imported
    package's side; ports on a side are ordered so that lines leaving one box do not cross there."""
    ports: dict[tuple[str, int], list[tuple[int, int, int]]] = {}  # (package, side) -> (order key, edge, end)
    for i, ((side, track), a, b) in enumerate(zip(tracks, edges["package"], edges["imported"])):
        for end, (here, there) in enumerate(((a, b), (b, a))):
            up = boxes[there].y > boxes[here].y
            # top to bottom: the lines going up, inner track first, then those going down, outer
            # first, so that no line's stub to its track crosses another line's track there
            key = (0, track) if up else (1, -track)
            ports.setdefault((here, side), []).append((key, i, end))
    where: dict[tuple[int, int], float] = {}
    for (pkg, _side), items in ports.items():
        box = boxes[pkg]
        items.sort(key=lambda t: (t[0], t[1]))
        margin = 0.12 * (box.y1 - box.y0)
        n = len(items)
        for rank, (_, i, end) in enumerate(items):
            where[i, end] = box.y1 - margin - (rank + 0.5) * (box.y1 - box.y0 - 2 * margin) / n
    rows = []
    corner = 0.35 * spacing
    for i, ((side, track), a, b) in enumerate(zip(tracks, edges["package"], edges["imported"])):
        xa = boxes[a].x1 if side > 0 else boxes[a].x0
        xb = boxes[b].x1 if side > 0 else boxes[b].x0
        xt = side * (_TRACK0 + track * spacing)
        ya, yb = where[i, 0], where[i, 1]
        dy = corner if yb > ya else -corner
        points = [(xa, ya), (xt - side * corner, ya), (xt, ya + dy * 0.6), (xt, yb - dy * 0.6), (xt - side * corner, yb), (xb, yb)]
        rows += [{"edge": i, "point": k, "x": x, "y": y} for k, (x, y) in enumerate(points)]
    return pd.DataFrame(rows)


def architecture_chart(
    graph: pd.DataFrame | None = None,
    table: pd.DataFrame | None = None,
    *,
    top: int = 5,
    title: str | None = None,
    subtitle: str | None = None,
) -> alt.LayerChart:
    """The packages as boxes in their layers (rows, bottom to top) and their imports as lines.

    Args:
        graph: :func:`import_graph`'s frame (default: that of ``elens_utils``).
        table: :func:`package_table`'s frame of the same package (default: ``elens_utils``'s); the
            boxes' tooltips give its modules and lines.
        top: how many names a line's tooltip lists (those imported most often across it).
        title, subtitle: replace the chart's own (the subtitle says how to read it).

    Every line joins a package to one it imports, leaving and entering the boxes at their sides;
    its colour is the imported package's and its width grows with the number of import
    statements. Shorter lines run inside longer ones, and two lines never share a stretch. The
    tooltip of a line gives both packages, the statements and the names that flow along it; a
    box's, what the package holds (its docstring's first line), its modules and lines, and which
    packages it imports and is imported by. The data are inline (no URL).

    Raises:
        ElensError: for a package in no layer of :data:`LAYERS`.
    """
    graph = import_graph() if graph is None else graph
    table = package_table() if table is None else table
    need_columns(table, ["layer", "package", "modules", "lines", "holds"], "architecture_chart")
    summary = package_summary(graph, top=top)
    packages = table["package"].tolist()
    boxes = _boxes(packages)
    bands = _bands(packages)
    starts = _band_edges(bands)
    edges = summary[summary["package"].isin(boxes) & summary["imported"].isin(boxes)].reset_index(drop=True)
    tracks = _assign_tracks(edges, boxes)
    n_tracks = 1 + max((t for _, t in tracks), default=0)
    spacing = min(0.06, (_HALF - 0.02 - _TRACK0) / max(1, n_tracks - 1))
    paths = _edge_paths(edges, boxes, tracks, spacing)
    info = edges.assign(
        edge=range(len(edges)),
        across=edges["package"] + " imports from " + edges["imported"],
        names_text=edges["flow"].where(edges["flow"] != "", "(none)"),
    )[["edge", "package", "imported", "across", "statements", "modules", "names_text"]]
    lines = json_safe(paths.merge(info, on="edge"))

    colours = {**PACKAGE_COLOURS}
    for i, p in enumerate(p for p in packages if p not in colours):
        colours[p] = _OTHER_COLOURS[i % len(_OTHER_COLOURS)]
    scale = alt.Scale(domain=packages, range=[colours[p] for p in packages])

    imports = {p: ", ".join(edges.loc[edges["package"] == p, "imported"]) or "nothing of the library" for p in packages}
    users = {p: ", ".join(edges.loc[edges["imported"] == p, "package"]) or "nothing" for p in packages}
    box_rows = []
    for _, row in table.iterrows():
        b = boxes[row["package"]]
        box_rows.append({
            "package": b.package, "label": b.package if b.package != TOP else "top level", "x0": b.x0, "x1": b.x1, "y0": b.y0, "y1": b.y1,
            "xm": (b.x0 + b.x1) / 2, "ym": b.y, "layer": str(row["layer"]), "holds": row["holds"] or "–",
            "modules": row["modules"], "lines": int(row["lines"]), "imports": imports[b.package], "users": users[b.package],
        })  # fmt: skip
    box_frame = json_safe(pd.DataFrame(box_rows))
    band_frame = pd.DataFrame({"y0": starts[:-1], "y1": starts[1:]}).iloc[::2]  # every other row shaded
    centres = [round((a + b) / 2, 4) for a, b in itertools.pairwise(starts)]
    band_labels = [str(layer) for layer, _ in bands]

    x_scale = alt.Scale(domain=[-_HALF, _HALF], nice=False, zero=False)
    y_scale = alt.Scale(domain=[0, starts[-1]], nice=False, zero=False)
    y_axis = alt.Axis(
        values=centres, labelExpr=f"{band_labels!r}[indexof({centres!r}, datum.value)]", grid=False, domain=False,
        ticks=False, labelPadding=4, labelFontSize=11, labelColor="#777", titleColor="#777",
    )  # fmt: skip
    stripes = alt.Chart(band_frame).mark_rect(color="#f3f3f3").encode(
        x=alt.value(0), x2=alt.value("width"), y=alt.Y("y0:Q", scale=y_scale, title="layer", axis=y_axis), y2="y1:Q"
    )
    line_tooltip = [
        alt.Tooltip("across:N", title="imports"),
        alt.Tooltip("statements:Q", title="import statements"),
        alt.Tooltip("modules:Q", title="importing modules"),
        alt.Tooltip("names_text:N", title="names (statements)"),
    ]
    drawn = alt.Chart(lines).mark_line(opacity=0.85, strokeCap="round", strokeJoin="round").encode(
        x=alt.X("x:Q", scale=x_scale, axis=None),
        y=alt.Y("y:Q", scale=y_scale),
        detail="edge:N",
        order="point:Q",
        color=alt.Color("imported:N", scale=scale, legend=None),
        strokeWidth=alt.StrokeWidth("statements:Q", scale=alt.Scale(range=[1.0, 3.0], zero=False), legend=None),
        tooltip=line_tooltip,
    )
    box_tooltip = [
        alt.Tooltip("package:N"),
        alt.Tooltip("layer:N"),
        alt.Tooltip("holds:N", title="holds"),
        alt.Tooltip("modules:N"),
        alt.Tooltip("lines:Q", title="lines of code", format=","),
        alt.Tooltip("imports:N", title="imports from"),
        alt.Tooltip("users:N", title="imported by"),
    ]
    rects = alt.Chart(box_frame).mark_rect(cornerRadius=4, strokeWidth=1.5, fillOpacity=0.16).encode(
        x=alt.X("x0:Q", scale=x_scale, axis=None), x2="x1:Q", y=alt.Y("y0:Q", scale=y_scale), y2="y1:Q",
        fill=alt.Fill("package:N", scale=scale, legend=None), stroke=alt.Stroke("package:N", scale=scale, legend=None),
        tooltip=box_tooltip,
    )  # fmt: skip
    labels = alt.Chart(box_frame).mark_text(fontSize=12, fontWeight="bold", color="#222").encode(
        x=alt.X("xm:Q", scale=x_scale, axis=None), y=alt.Y("ym:Q", scale=y_scale), text="label:N", tooltip=box_tooltip
    )
    down = bool((edges["imported_layer"] < edges["layer"]).all())
    default_sub = [
        f"rows: the layers, bottom to top; a line joins a package to one it imports{' (always lower)' if down else ''};",
        "colour: the imported package; width: import statements; hover or tap a line for the names that cross",
    ]
    return alt.layer(stripes, drawn, rects, labels).properties(
        width=560,
        height=round(starts[-1] * _BAND_PX),
        title=alt.Title(title or "How the library is built: packages by layer, and their imports", subtitle=subtitle or default_sub),
    )

