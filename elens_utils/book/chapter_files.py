"""The chapters of the book: the notebooks in ``notebooks/``, their names and the parameters
their ``parameters`` cell declares."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elens_utils.core.errors import ElensError

__all__ = ["PACKAGE", "REPO", "Chapter", "chapters", "find_chapter", "parameters_cell", "read_notebook", "repo_root"]

#: The repository (source notebooks, parameter sets, book configuration).
REPO = Path(__file__).resolve().parents[2]
#: The ``elens_utils`` package, whose sources key the chapters' cache.
PACKAGE = Path(__file__).resolve().parents[1]


def repo_root(root: str | os.PathLike[str] | None) -> Path:
    """``root`` resolved, or the repository (:data:`REPO`, read at each call) when None."""
    return Path(root).resolve() if root is not None else REPO


# ---------------------------------------------------------------------------------------------
# chapters


@dataclass(frozen=True)
class Chapter:
    """A chapter notebook: its short ``name`` (``profile``), its source path and parameters."""

    name: str
    path: Path
    parameters: dict[str, Any]  # name -> default value (literal) from the parameters cell

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def aliases(self) -> tuple[str, ...]:
        number = self.stem.split("_", 1)[0]
        rest = self.stem.split("_", 1)[1] if "_" in self.stem else self.stem
        out = [self.name, self.stem, rest]
        if number.isdigit():
            out += [number, str(int(number))]
        return tuple(dict.fromkeys(out))


def read_notebook(path: Path):
    """The notebook at ``path`` (nbformat 4), or an :class:`ElensError` that names it."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:
        raise ElensError(f"Cannot read notebook {path}: {err}") from err


def parameters_cell(nb) -> tuple[int, Any]:
    """``(index, cell)`` of the notebook's code cell tagged ``parameters``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return i, cell
    raise ElensError("the notebook has no cell tagged 'parameters'")


def _declared_parameters(nb, path: Path) -> dict[str, Any]:
    """``name -> default`` of the top-level assignments of the parameters cell."""
    try:
        _, cell = parameters_cell(nb)
    except ElensError as err:
        raise ElensError(f"{path}: {err}; every chapter needs one (see notebooks/README.md).") from err
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as err:
        raise ElensError(f"{path}: the parameters cell is not valid Python: {err}") from err
    out: dict[str, Any] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    out[target.id] = ast.literal_eval(value) if value is not None else None
                except ValueError:  # an expression: a list stays a list (for --set a,b)
                    out[target.id] = [] if isinstance(value, (ast.List, ast.Tuple)) else ast.unparse(value)
    return out


def chapters(root: str | os.PathLike[str] | None = None) -> list[Chapter]:
    """The chapters in ``notebooks/``, in file order. A chapter's name is its notebook's
    ``metadata.elens.chapter`` (else the stem without the number prefix)."""
    nb_dir = repo_root(root) / "notebooks"
    out = []
    for path in sorted(nb_dir.glob("[0-9]*.ipynb")):
        nb = read_notebook(path)
        name = nb.metadata.get("elens", {}).get("chapter") or path.stem.split("_", 1)[-1]
        out.append(Chapter(name=name, path=path, parameters=_declared_parameters(nb, path)))
    return out


def find_chapter(name: str, root: str | os.PathLike[str] | None = None) -> Chapter:
    """The chapter called ``name`` (its name, file stem, stem without number, or number)."""
    found = chapters(root)
    for ch in found:
        if name in ch.aliases:
            return ch
    valid = ", ".join(f"{c.name} ({c.path.name})" for c in found) or "none: notebooks/ is empty"
    raise ElensError(f"Unknown chapter {name!r}. Chapters: {valid}; or 'all'.")
