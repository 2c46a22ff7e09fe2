"""The package's architecture, checked: layered subpackages that import only downwards, no
import cycle (imports inside functions count), no private name used outside its module, no
module longer than ~900 lines.

The layers, bottom to top (a package may import its own modules and those of lower layers)::

    core                      errors, atomic files, threads, token text, provenance
    data | entropy            prompts and datasets | entropy kernels and the Profiles container
    models                    names to directories; tiny and zoo architectures; GGUF; real models
    lens                      locating the lens, loading with parity, capture, generation
    sweeps                    the profile cache; sweeps on one process or many
    analysis                  kNN protocol, candidate sets, interventions, scoring, comparisons
    viz                       charts and their phone layouts
    findings                  each chapter's closing bullets and headline, from tested rules
    book                      the chapter runner, chapter times, headlines
    zoo | bench               side tools: zoo training and cards | the benchmark
    (top)                     elens_utils/__init__, the command line

Packages side by side in one layer do not import each other.
"""

from __future__ import annotations

import pytest

from elens_utils.book.architecture import (
    LAYER,
    LAYERS,
    PACKAGE,
    Import,
    find_modules,
    import_edges,
    import_graph,
    module_imports,
    package_of,
    relative_imports,
)

# The layers as designed, bottom to top. The library's LAYERS (which the checks below and
# Appendix D use) must agree, so that moving a package between layers is a decision made here too.
DESIGNED_LAYERS: list[tuple[str, ...]] = [
    ("core",), ("data", "entropy"), ("models",), ("lens",), ("sweeps",), ("analysis",), ("viz",),
    ("findings",), ("book",), ("zoo", "bench"), ("top",),
]

# What is not yet as the rules want it: each entry is a debt, and the list only shrinks.
KNOWN_UPWARD: set[tuple[str, str]] = set()
KNOWN_CYCLES: list[set[str]] = [
]  # fmt: skip
KNOWN_PRIVATE: set[tuple[str, str]] = set()
KNOWN_LONG: set[str] = set()

MAX_LINES = 900


MODULES = find_modules(PACKAGE)


def _package_of(module: str) -> str:
    return package_of(module, MODULES)


def _imports(module: str) -> list[Import]:
    """An :class:`Import` (imported module, imported name or '', line) for every import of a
    library module in ``module``, wherever it stands (top level, in functions, under TYPE_CHECKING)."""
    return module_imports(module, MODULES)


def _edges() -> dict[str, set[str]]:
    return import_edges(MODULES)


def test_the_library_imports_absolutely():
    relative = {m: lines for m in MODULES if (lines := relative_imports(m, MODULES))}
    assert not relative, f"relative imports (the library imports absolutely): {relative}"


def test_the_library_keeps_the_designed_layers():
    assert LAYERS == DESIGNED_LAYERS


def test_every_module_belongs_to_a_layer():
    assert {_package_of(m) for m in MODULES} <= set(LAYER), "a subpackage missing from LAYERS"


def test_imports_point_down_the_layers():
    upward = set()
    for module in MODULES:
        here = _package_of(module)
        for target, _, line in _imports(module):
            there = _package_of(target)
            if there == here or here == "top" and there == "top":
                continue
            if there == "top" and target == "elens_utils":
                upward.add((module, target))  # the package root imports everything
            elif LAYER[there] >= LAYER[here]:
                upward.add((module, target))
    new = upward - KNOWN_UPWARD
    assert not new, "imports that point up or sideways: " + ", ".join(f"{a} -> {b}" for a, b in sorted(new))
    assert not KNOWN_UPWARD - upward, f"fixed, take them off KNOWN_UPWARD: {sorted(KNOWN_UPWARD - upward)}"


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    edges = _edges()
    # the package roots re-export their modules: an import of a package counts as its modules'
    cycles = [c for c in _cycles(edges) if not all(MODULES[m].name == "__init__.py" for m in c)]
    new = [c for c in cycles if c not in KNOWN_CYCLES]
    assert not new, f"import cycles: {[sorted(c) for c in new]}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in cycles]
    assert not gone, f"known cycles that are gone or changed: take them off KNOWN_CYCLES: {gone}"


def test_no_private_name_is_used_outside_its_module():
    # the graph's names: those imported (from m import _x) and those read through a module
    # imported whole (from elens_utils.viz import charts; charts._x)
    graph = import_graph(PACKAGE)
    used = {
        (row.module, f"{row.target}.{row.name}")
        for row in graph.itertuples(index=False)
        if row.name.startswith("_") and not row.name.startswith("__") and row.target != row.module
    }
    new = used - KNOWN_PRIVATE
    assert not new, "private names used outside their module: " + ", ".join(f"{a} uses {b}" for a, b in sorted(new))
    assert not KNOWN_PRIVATE - used, f"fixed, take them off KNOWN_PRIVATE: {sorted(KNOWN_PRIVATE - used)}"


def test_modules_stay_short():
    long = {m for m, p in MODULES.items() if len(p.read_text().splitlines()) > MAX_LINES}
    assert not long - KNOWN_LONG, f"modules over {MAX_LINES} lines: {sorted(long - KNOWN_LONG)}"
    assert not KNOWN_LONG - long, f"now short, take them off KNOWN_LONG: {sorted(KNOWN_LONG - long)}"


@pytest.mark.parametrize("old", ["charts", "loading", "comparison", "chapters", "zoo_report", "errors"])
def test_old_flat_module_paths_still_import(old):
    import importlib

    from elens_utils import _moved

    module = importlib.import_module(f"elens_utils.{old}")
    assert module is importlib.import_module(f"elens_utils.{_moved.MOVED[old]}")  # the same object
    assert module.__spec__.name == f"elens_utils.{_moved.MOVED[old]}"
    import elens_utils

    assert getattr(elens_utils, old) is module  # from elens_utils import charts


def test_old_package_names_still_work():
    from elens_utils import data, entropy, lens, models

    assert callable(data.task_prompts) and callable(entropy.lens_entropy) and callable(lens.prompt_lens)
    assert callable(models.cache_dir)
