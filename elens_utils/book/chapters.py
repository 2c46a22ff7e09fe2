"""The chapter runner of the Entropy-Lens book: parameter sets, cached execution, the build.

Every chapter is a notebook in ``notebooks/`` with a cell tagged ``parameters``. A named
*parameter set* is a YAML file ``params/<name>.yml``::

    description: one line on what the set is for
    threads: 1           # optional: CPU threads for small models (elens_utils.core.threads)
    processes: 2         # optional: torchrun workers that profile (elens_utils.sweeps.dist_sweep)
    defaults:            # given to every chapter that declares the parameter
      device: cpu
      seed: 0
    chapters:
      profile:           # only for that chapter (every key must be one of its parameters)
        models: [tiny/gpt2-2L, tiny/gpt2-4L]

Command line (``python -m elens_utils book ...``)::

    list                                   the chapters, their names and parameters
    params CH --params SET [--set K=V]     the parameters CH would run with (YAML)
    run CH|all --params SET [--set K=V ...] [--out book] [--force]
    assets [--dest _assets]                local MathJax (npm) and Vega bundle (vl-convert)
    build --params SET [--set K=V ...] [--root DIR] [--force]

``--set key=value`` parses ``value`` as YAML; for a parameter whose default is a list, a comma
list ``a,b`` becomes the list ``[a, b]`` (``models=Qwen/Qwen3-0.6B,gpt2``). ``run`` executes the
chapter with papermill into ``book/<same name>.ipynb``: the injected-parameters cell and the
notebook's own defaults cell are hidden (tag ``remove-cell``), and a hidden-input cell after them
shows the parameters used as a small table. Execution is skipped when the executed copy's cache
key (``metadata.elens.cache_key``) equals sha256(notebook cells, merged parameters, the
``elens_utils`` sources); writes are atomic (temporary file, then ``os.replace``).

``build`` runs every chapter and builds the HTML with ``jupyter-book build -W`` (a warning, and
so a failed cell or a missing asset, fails the build). With ``--root DIR`` other than the
repository, the book (config, table of contents, the pages of ``book/``, the assets) is staged
into DIR first, so a throw-away build (the smoke test) leaves ``book/`` alone.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from elens_utils.core.atomic import atomic_file
from elens_utils.core.errors import ElensError, first_line, run_command
from elens_utils.core.paths import cache_dir
from elens_utils.core.threads import SMALL_MODEL_THREADS_ENV
from elens_utils.models.registry import check_model_name
from elens_utils.sweeps.dist_sweep import PROCESSES_ENV

__all__ = [
    "Chapter",
    "build_book",
    "cache_key",
    "chapters",
    "find_chapter",
    "library_digest",
    "load_param_set",
    "make_assets",
    "merge_parameters",
    "parse_overrides",
    "run_chapter",
]

#: The repository (source notebooks, parameter sets, book configuration).
REPO = Path(__file__).resolve().parents[2]
PACKAGE = Path(__file__).resolve().parents[1]
MATHJAX_VERSION = "3.2.2"
MATHJAX_FILE = "mathjax/tex-svg-full.js"  # in the assets dir = _static/ of the built book
BOOK_CONFIG = ("_config.yml", "_toc.yml")
_STAMP = ".elens-assets.json"


def _repo(root: str | os.PathLike[str] | None) -> Path:
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


def _read_nb(path: Path):
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:
        raise ElensError(f"Cannot read notebook {path}: {err}") from err


def _parameters_cell(nb) -> tuple[int, Any]:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return i, cell
    raise ElensError("the notebook has no cell tagged 'parameters'")


def _declared_parameters(nb, path: Path) -> dict[str, Any]:
    """``name -> default`` of the top-level assignments of the parameters cell."""
    try:
        _, cell = _parameters_cell(nb)
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
    nb_dir = _repo(root) / "notebooks"
    out = []
    for path in sorted(nb_dir.glob("[0-9]*.ipynb")):
        nb = _read_nb(path)
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


# ---------------------------------------------------------------------------------------------
# parameters


def param_sets(root: str | os.PathLike[str] | None = None) -> list[str]:
    return sorted(p.stem for p in (_repo(root) / "params").glob("*.yml"))


def load_param_set(name: str, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The parameter set ``name`` (``params/<name>.yml``, or a path to a YAML file)."""
    path = Path(name)
    if not (path.suffix in (".yml", ".yaml") and path.is_file()):
        path = _repo(root) / "params" / f"{name}.yml"
    if not path.is_file():
        raise ElensError(
            f"Unknown parameter set {name!r}: use one of {', '.join(param_sets(root)) or '(none)'} "
            "(files params/<name>.yml) or a path to a YAML file."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ElensError(f"Parameter set {path} is not UTF-8 text ({err.reason} at byte {err.start}): save it as UTF-8.") from err
    data = _load_yaml(text, f"Parameter set {path}") or {}
    keys = ("description", "threads", "processes", "defaults", "chapters")
    if not isinstance(data, dict):
        raise ElensError(
            f"Parameter set {path} must be a mapping with the keys {', '.join(keys)}; it holds "
            f"{type(data).__name__} {data!r:.60}."
        )
    if not set(data) <= set(keys):
        raise ElensError(f"Parameter set {path}: expected the keys {', '.join(keys)}; got {list(data)}.")
    for key in ("threads", "processes"):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ElensError(f"Parameter set {path}: '{key}' must be an integer >= 1 (or left out), got {value!r}.")
    for key in ("defaults", "chapters"):
        if not isinstance(data.get(key) or {}, dict):
            raise ElensError(f"Parameter set {path}: '{key}' must be a mapping.")
    data.setdefault("defaults", {})
    data.setdefault("chapters", {})
    data["defaults"] = data["defaults"] or {}
    data["chapters"] = data["chapters"] or {}
    found = {c.name: c for c in chapters(root)}
    if found:  # a typo in a chapter's name or a parameter's would otherwise be ignored
        for name, section in data["chapters"].items():
            if name not in found:
                raise ElensError(f"Parameter set {path} names chapter {name!r}, which does not exist: use one of {', '.join(found)}.")
            if not isinstance(section or {}, dict):
                raise ElensError(f"Parameter set {path}: chapters.{name} must be a mapping of parameters, not {section!r:.60}.")
        declared = set().union(*(c.parameters for c in found.values()))
        unknown = sorted(k for k in data["defaults"] if k not in declared)
        if unknown:
            raise ElensError(f"Parameter set {path}: no chapter declares the default(s) {unknown}.")
    data["name"] = path.stem
    return data


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases (``*name``): parameters are plain values, and nested
    aliases can expand into more values than the machine holds (a "billion laughs" file)."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "uses an alias (*name): write the value out instead", mark
            )
        return super().compose_node(parent, index)


def _load_yaml(text: str, what: str) -> Any:
    """``text`` as YAML without aliases; an :class:`ElensError` naming ``what`` if it is not."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise ElensError(f"{what} is not valid YAML for a parameter: {err}") from err


def _split_list(text: str) -> list[Any]:
    return [_load_yaml(item.strip(), f"List item {item.strip()!r}") if item.strip() else "" for item in text.split(",")]


def split_set_line(text: str) -> list[str]:
    """``make chapter SET="..."``'s text as ``KEY=VALUE`` items: split at whitespace, and a word
    that does not start a ``KEY=`` continues the value before it, so values may hold spaces
    (``"prompt=The capital of France is seed=1"`` -> ``["prompt=The capital of France is", "seed=1"]``)."""
    items: list[str] = []
    for word in text.split():
        key, sep, _ = word.partition("=")
        if (sep and key.isidentifier()) or not items:
            items.append(word)
        else:
            items[-1] += " " + word
    return items


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (values still text: typed per chapter)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ElensError(f"Override {item!r} is not KEY=VALUE with KEY a parameter name (e.g. seed=1, models=a,b).")
        out[key] = value
    return out


def _typed(value: str, default: Any) -> Any:
    """An override's text as YAML; for a list parameter a comma list (or one item) is a list.

    For a text parameter the text is taken as it is (``prompt=Question: 2+2``, ``prompt=yes``),
    unless quoted; for a number parameter a number YAML reads as text (``1e-3``) is a number.
    """
    text = value.strip()
    if isinstance(default, (list, tuple)) and not text.startswith("["):
        return _split_list(text)
    if isinstance(default, str) and not (len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""):
        return int(text) if text.isdigit() and default == "auto" else value  # device=0 means cuda:0
    typed = _load_yaml(text, f"Override value {value!r}") if text else ""
    if isinstance(default, (int, float)) and not isinstance(default, bool) and isinstance(typed, str):
        try:
            return float(typed) if isinstance(default, float) or not float(typed).is_integer() else int(float(typed))
        except ValueError:
            return typed
    return typed


def merge_parameters(chapter: Chapter, pset: Mapping[str, Any], overrides: Mapping[str, str] | None = None, *, strict: bool = True) -> dict[str, Any]:
    """The parameters ``chapter`` runs with: set defaults (those it declares), then the set's
    section for the chapter, then ``overrides``.

    Raises:
        ElensError: for a chapter-section or override key the chapter does not declare
            (with ``strict=False`` overrides it does not declare are ignored: ``run all``).
    """
    declared = chapter.parameters
    valid = ", ".join(declared)
    params = {k: v for k, v in (pset.get("defaults") or {}).items() if k in declared}
    section = (pset.get("chapters") or {}).get(chapter.name) or {}
    unknown = [k for k in section if k not in declared]
    if unknown:
        raise ElensError(
            f"Parameter set '{pset.get('name')}' gives chapter '{chapter.name}' the parameter(s) "
            f"{unknown}, which its parameters cell does not declare. Valid: {valid}."
        )
    params.update(section)
    for key, text in (overrides or {}).items():
        if key not in declared:
            if strict:
                raise ElensError(f"Chapter '{chapter.name}' has no parameter {key!r}. Valid: {valid}.")
            continue
        params[key] = _typed(text, declared[key])
    return params


# Integer parameters that may be 0 (seeds, numbers of random draws); every other integer
# parameter counts something and must be >= 1.
_MAY_BE_ZERO = re.compile(r"(^|_)seeds?$")
# Parameters that name models; a name that can only be a path must exist.
_MODEL_PARAMS = re.compile(r"(^|_)models?$|^example_model$|^real_example$")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _kind_error(key: Any, value: Any, default: Any) -> str | None:
    """What is wrong with ``value`` for a parameter whose declared default is ``default``
    (None when it fits): the type of the default, integers counting from 1 (seeds from 0),
    positive finite floats, list items of the default's items' type."""
    if default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if _is_int(default):
        low = 0 if _MAY_BE_ZERO.search(key) else 1
        return None if _is_int(value) and value >= low else f"an integer >= {low}"
    if isinstance(default, float):
        ok = _is_number(value) and math.isfinite(value) and value > 0
        if key.endswith("top_p"):
            ok = ok and value <= 1
            return None if ok else "a number in (0, 1]"
        return None if ok else "a positive number"
    if isinstance(default, str):
        if key == "device" and _is_int(value) and value >= 0:  # --set device=0: cuda:0
            return None
        return None if isinstance(value, str) else "a string"
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return "a list (a,b,c or [a, b, c])"
        items = list(default)
        if items and all(isinstance(x, str) for x in items):
            bad = [x for x in value if not isinstance(x, str)]
            return f"a list of strings (not {bad[0]!r})" if bad else None
        if items and all(_is_int(x) for x in items):
            low = 0 if _MAY_BE_ZERO.search(key) else 1
            bad = [x for x in value if not (_is_int(x) and x >= low)]
            return f"a list of integers >= {low} (not {bad[0]!r})" if bad else None
        if items and all(_is_number(x) or isinstance(x, str) for x in items):  # Renyi orders: numbers or inf
            bad = [x for x in value if not (_is_number(x) or isinstance(x, str))]
            return f"a list of numbers (not {bad[0]!r})" if bad else None
    return None


# Parameters whose values come from a fixed list.
_CHOICES: dict[str, tuple[str, ...]] = {
    "precision": ("fp32", "bf16", "auto"),
    "real_scoring": ("cloze", "letters"),
}


def _value_error(key: str, value: Any, machine: bool = True) -> str | None:
    """What is wrong with the value of a parameter with known meaning (None when it is fine);
    ``machine``: also whether this machine has the device asked for."""
    from elens_utils.entropy.streaming import normalize_alphas
    from elens_utils.lens.loading import DTYPES, resolve_device

    try:
        if key in _CHOICES and value not in _CHOICES[key]:
            return f"must be one of {', '.join(_CHOICES[key])}"
        if key == "dtype" and value != "auto" and value not in DTYPES:
            return f"must be auto or one of {', '.join(sorted(DTYPES))}"
        if key == "device" and machine:
            resolve_device(value)
        if key == "alphas":
            normalize_alphas(value)
    except ElensError as err:
        return f"is refused: {str(err).rstrip('.')}"
    return None


def check_parameters(
    chapter: Chapter, params: Mapping[str, Any], overrides: Mapping[str, str] | None = None, *, machine: bool = True
) -> None:
    """Check every parameter's value against its declared default before a kernel starts
    (``machine=False``: leave out what depends on this machine, the device and the environment).

    Raises:
        ElensError: naming the parameter, the value, what it must be, and where it came from
            (an override or the parameter set).
    """
    problems = []
    processes = os.environ.get(PROCESSES_ENV) if machine else None
    if processes is not None and not (processes.strip().isdigit() and int(processes) >= 1):
        problems.append(f"{PROCESSES_ENV}={processes!r} must be an integer >= 1")
    try:
        if machine:
            cache_dir()
    except ElensError as err:
        problems.append(str(err).rstrip("."))
    for key, value in params.items():
        if key not in chapter.parameters:
            continue
        need = _kind_error(key, value, chapter.parameters[key])
        where = f" (from --set {key}={overrides[key]})" if overrides and key in overrides else ""
        if need:
            problems.append(f"{key} = {value!r}{where} must be {need}")
            continue
        problem = _value_error(key, value, machine)
        if problem:
            problems.append(f"{key} = {value!r}{where} {problem}")
            continue
        if _MODEL_PARAMS.search(key) and value is not None:
            from elens_utils.lens.loading import looks_like_path

            names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
            if names is None or not all(isinstance(m, str) for m in names):
                problems.append(f"{key} = {value!r}{where} must name models (a string, or a list of strings)")
                continue
            for m in names:
                try:
                    check_model_name(m)
                except ElensError as err:
                    problems.append(f"{key}{where}: {err}")
                    continue
                # a relative path is read from the notebooks' folder, where the kernel runs
                here = chapter.path.parent / Path(m).expanduser()
                if (looks_like_path(m) or m.lower().endswith(".gguf")) and not here.exists():
                    problems.append(
                        f"{key} names {m!r}{where}, which does not exist (no such directory or file; a relative "
                        f"path is read from {chapter.path.parent})"
                    )
    if problems:
        raise ElensError(f"Chapter '{chapter.name}': " + "; ".join(problems) + ".")


# ---------------------------------------------------------------------------------------------
# cache key


def library_digest(package: Path = PACKAGE) -> str:
    """sha256 over the ``elens_utils`` source files (relative path and content)."""
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _notebook_digest(nb) -> str:
    cells = [
        {"type": c.cell_type, "source": c.source, "tags": sorted(c.get("metadata", {}).get("tags", []))}
        for c in nb.cells
    ]
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


def _canonical(params: Mapping[str, Any]) -> str:
    def fix(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): fix(x) for k, x in v.items()}
        return v

    return json.dumps(fix(dict(params)), sort_keys=True)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def inputs_digest(params: Mapping[str, Any], base: str | os.PathLike[str]) -> dict[str, str]:
    """Digests of the local inputs that parameters name, so that changing one re-runs a chapter.

    A string parameter (or list item) that is an existing file relative to ``base`` (where the
    chapter executes) or absolute gets the sha256 of its content; a model name that resolves to
    a local directory (``zoo/llama-8L``, a ``save_pretrained`` path) gets the digest of its
    weights and config (:func:`~elens_utils.sweeps.cache.model_fingerprint`). Hub ids and ``tiny/``
    models (rebuilt identically from the library's code) add nothing.
    """
    from elens_utils.models.registry import resolve_zoo
    from elens_utils.sweeps.cache import model_fingerprint

    out: dict[str, str] = {}
    for key, value in sorted(params.items()):
        for text in _strings(value):
            if not text or text.startswith("tiny/") or len(text) > 1024:
                continue
            try:
                path = Path(resolve_zoo(text) or (Path(base) / text))
                if path.is_file():
                    out[f"{key}:{text}"] = hashlib.sha256(path.read_bytes()).hexdigest()
                elif path.is_dir() and (path / "config.json").is_file():
                    out[f"{key}:{text}"] = hashlib.sha256(json.dumps(model_fingerprint(path), sort_keys=True).encode()).hexdigest()
            except (OSError, ElensError):
                continue  # not a local input: a Hub id, a missing zoo model (the run will say so)
    return out


def cache_key(
    nb, params: Mapping[str, Any], library: str | None = None, inputs: Mapping[str, str] | None = None
) -> str:
    """sha256 of (notebook cells, parameters, library sources, local inputs' digests)."""
    payload = {"notebook": _notebook_digest(nb), "params": _canonical(params), "library": library or library_digest()}
    if inputs:
        payload["inputs"] = dict(sorted(inputs.items()))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# running a chapter


def _table_cell(names: Sequence[str], set_name: str, chapter: Chapter, overrides: Mapping[str, str] | None = None):
    import nbformat

    from elens_utils.core.provenance import rerun_command
    from elens_utils.core.version import __version__

    given = f" with {', '.join(f'{k}={v}' for k, v in overrides.items())}" if overrides else ""
    note = (
        f"parameter set: {set_name}{given} · elens_utils {__version__} · "
        f"re-run: {rerun_command(chapter.name, set_name, overrides)}"
    )
    code = (
        "# The parameters this chapter ran with (the cells that set them are hidden in the book).\n"
        "import time as _elens_time\n\n"
        "from elens_utils.viz.charts import parameters_table\n\n"
        "_elens_started = _elens_time.time()\n"
        f"parameters_table({{_k: globals()[_k] for _k in {list(names)!r}}}, note={note!r})"
    )
    cell = nbformat.v4.new_code_cell(code)
    cell.metadata["tags"] = ["remove-input", "elens-parameters-table"]
    return cell


def _footer_cell():
    import nbformat

    code = (
        "# What this page ran on (elens_utils.core.provenance)\n"
        "from IPython.display import Markdown\n\n"
        "from elens_utils.core.provenance import run_footer\n\n"
        "Markdown(run_footer(_elens_started))"
    )
    cell = nbformat.v4.new_code_cell(code)
    cell.metadata["tags"] = ["remove-input", "elens-run-footer"]
    return cell


def _prepare(chapter: Chapter, params: Mapping[str, Any], set_name: str, overrides: Mapping[str, str] | None = None):
    """The notebook to execute: parameters injected, set-up cells hidden, the parameters table
    (with the command that reproduces the page) after them and the run footer at the end."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(chapter.path))  # papermill's loader adds the metadata it needs
    nb = parameterize_notebook(nb, dict(params), kernel_name="python3", language="python")
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    idx = next(i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", []))
    nb.cells.insert(idx + 1, _table_cell(list(chapter.parameters), set_name, chapter, overrides))
    nb.cells.append(_footer_cell())
    return nb


def _stored_key(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        with path.open() as fh:
            return json.load(fh).get("metadata", {}).get("elens", {}).get("cache_key")
    except (OSError, ValueError):
        return None


def _atomic_write_nb(nb, path: Path) -> None:
    import nbformat

    with atomic_file(path) as fh:
        nbformat.write(nb, fh)


def _kernel_manager(folder: Path) -> dict[str, Any]:
    """papermill's keyword for a kernel that talks over Unix sockets in ``folder`` (POSIX): a
    kernel on local TCP ports warns on every start that it runs unencrypted, the build log's
    only noise. Elsewhere: ``{}`` (jupyter's default, TCP)."""
    if os.name != "posix":
        return {}
    from jupyter_client.manager import AsyncKernelManager

    class _SocketKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)
            self.ip = str(folder / "kernel")  # socket files kernel-1, kernel-2, ... in folder

    return {"kernel_manager_class": _SocketKernelManager}


def _thread_env(threads: int | None) -> dict[str, str]:
    """Environment that caps the kernel's CPU threads for small models at ``threads`` (none for
    None, or when the user already set ``OMP_NUM_THREADS``, which then rules every model).

    Why a set may cap them, and why only for small models: :mod:`elens_utils.core.threads`.
    """
    if threads is None or "OMP_NUM_THREADS" in os.environ:
        return {}
    return {SMALL_MODEL_THREADS_ENV: str(threads)}


def run_chapter(
    name: str,
    param_set: str = "default",
    overrides: Mapping[str, str] | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    force: bool = False,
    strict: bool = True,
    progress: bool = True,
    log=print,
) -> Path:
    """Execute one chapter with a parameter set and overrides into ``out_dir`` (``book/``).

    Skipped when the executed copy's cache key matches. Returns the executed notebook's path.

    Raises:
        ElensError: unknown chapter / set / parameter, or a cell that failed (the message
            names the cell and the error; the failed notebook is kept as ``<stem>.failed.ipynb``).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from elens_utils.core.provenance import page_substitutions
    from elens_utils.core.version import __version__

    root_path = _repo(root)
    chapter = find_chapter(name, root_path)
    pset = load_param_set(param_set, root_path)
    params = merge_parameters(chapter, pset, overrides, strict=strict)
    check_parameters(chapter, params, overrides)
    out_dir = Path(out_dir) if out_dir is not None else root_path / "book"
    if out_dir.exists() and not out_dir.is_dir():
        raise ElensError(f"--out {out_dir} is a file: give a directory for the executed notebooks.")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / chapter.path.name
    source = _read_nb(chapter.path)
    applied = {k: v for k, v in (overrides or {}).items() if k in chapter.parameters}
    # the page shows the set and the overrides (its re-run command): they are part of the key
    shown = {**params, "__page__": {"set": pset["name"], "overrides": applied}}
    key = cache_key(source, shown, inputs=inputs_digest(params, chapter.path.parent))
    if not force and _stored_key(target) == key:
        log(f"{chapter.name}: up to date ({target}), not re-run")
        return target
    from elens_utils.book.chapter_times import estimate_line

    log(estimate_line(chapter.name, pset["name"], root_path, target))
    log(f"{chapter.name}: executing {chapter.path.name} with parameter set '{pset['name']}'")
    prepared = _prepare(chapter, params, pset["name"], applied)
    failed = out_dir / f"{chapter.stem}.failed.ipynb"
    # The kernel inherits these: charts.show() emits HTML, and the set's thread count (unless
    # the user's environment names one) caps torch's CPU threads.
    kernel_env = {"ELENS_CHART_MODE": "book", **_thread_env(pset.get("threads"))}
    if pset.get("processes") and PROCESSES_ENV not in os.environ:  # the user's own setting wins
        kernel_env[PROCESSES_ENV] = str(pset["processes"])
    env_before = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="elens-chapter-") as tmp:
        tmp_in, tmp_out = Path(tmp) / "in.ipynb", Path(tmp) / "out.ipynb"
        import nbformat

        nbformat.write(prepared, tmp_in)
        try:
            executed = papermill.execute_notebook(
                str(tmp_in),
                str(tmp_out),
                kernel_name="python3",
                progress_bar=progress,
                cwd=str(chapter.path.parent),
                **_kernel_manager(Path(tmp)),
            )
        except PapermillExecutionError as err:
            if tmp_out.is_file():
                shutil.copyfile(tmp_out, failed)
            raise ElensError(
                f"Chapter '{chapter.name}' failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                f"The executed notebook with the traceback: {failed}"
            ) from None
        except (RuntimeError, TimeoutError) as err:  # nbclient's DeadKernelError, a lost kernel
            raise ElensError(
                f"Chapter '{chapter.name}': its kernel failed to start or stopped before the chapter finished "
                f"({type(err).__name__}: {first_line(err)}). A kernel that dies mid-chapter has usually run out of memory "
                "(lower batch_size or the counts) or been killed; the profiles it finished are cached, so "
                "running again resumes."
            ) from None
        finally:
            for k, v in env_before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    elapsed = time.perf_counter() - start
    executed.metadata.setdefault("papermill", {})["input_path"] = str(chapter.path.relative_to(root_path))
    executed.metadata["papermill"]["output_path"] = target.name
    executed.metadata["elens"] = {
        "chapter": chapter.name,
        "source": str(chapter.path.relative_to(root_path)),
        "params_set": pset["name"],
        "parameters": json.loads(_canonical(params)),
        "library_version": __version__,
        "cache_key": key,
        "seconds": round(elapsed, 1),
    }
    # the page's prose shows parameter values and the run time through MyST substitutions (every
    # declared parameter: those the set leaves alone keep the notebook's default)
    shown_values = {**chapter.parameters, **params}
    executed.metadata["myst"] = {"substitutions": page_substitutions(shown_values, elapsed, pset["name"])}
    _atomic_write_nb(executed, target)
    failed.unlink(missing_ok=True)
    log(f"{chapter.name}: executed in {elapsed:.1f} s -> {target}")
    return target


def run_chapters(names: Sequence[str] | str, param_set: str, overrides: Mapping[str, str] | None = None, **kwargs) -> list[Path]:
    """Run one chapter, several, or ``"all"``; for ``all`` an override applies to the chapters
    that declare it (an override that no chapter declares is an error)."""
    root = kwargs.get("root")
    if names == "all" or names == ["all"]:
        found = chapters(root)
        if not found:
            raise ElensError("No chapters in notebooks/.")
        declared = set().union(*(c.parameters for c in found))
        unknown = [k for k in (overrides or {}) if k not in declared]
        if unknown:
            raise ElensError(f"No chapter has the parameter(s) {unknown}. Valid: {', '.join(sorted(declared))}.")
        return [run_chapter(c.name, param_set, overrides, strict=False, **kwargs) for c in found]
    if isinstance(names, str):
        names = [names]
    return [run_chapter(n, param_set, overrides, **kwargs) for n in names]


# ---------------------------------------------------------------------------------------------
# assets


def make_assets(dest: str | os.PathLike[str] | None = None, *, npm: str | None = None, log=print) -> Path:
    """Write the book's local static assets into ``dest`` (``_assets/``), once.

    * ``mathjax/tex-svg-full.js`` from the npm package ``mathjax@MATHJAX_VERSION`` (``npm pack``).
    * ``elens/vega-bundle.js``: Vega, Vega-Lite and vega-embed from vl-convert-python, for the
      Vega-Lite version altair writes (:func:`elens_utils.viz.charts.write_vega_bundle`).

    A stamp file records the versions; up-to-date files are not fetched again.

    Raises:
        ElensError: when npm is missing or ``npm pack`` fails.
    """
    from elens_utils.viz import charts

    dest = Path(dest) if dest is not None else REPO / "_assets"
    dest.mkdir(parents=True, exist_ok=True)
    stamp_path = dest / _STAMP
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        stamp = {}
    mj = dest / MATHJAX_FILE
    if stamp.get("mathjax") != MATHJAX_VERSION or not mj.is_file():
        npm = npm or shutil.which("npm")
        if not npm:
            raise ElensError(
                "npm is not installed, and the book serves MathJax from a local copy fetched from "
                "the npm registry. Install Node.js and npm (Debian: apt-get install npm), then "
                "run `make assets` again."
            )
        with tempfile.TemporaryDirectory(prefix="elens-npm-") as tmp:
            log(f"assets: npm pack mathjax@{MATHJAX_VERSION}")
            proc = subprocess.run(
                [npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent", "--pack-destination", tmp],
                capture_output=True, text=True, check=False,
            )
            tarballs = list(Path(tmp).glob("mathjax-*.tgz"))
            if proc.returncode or not tarballs:
                raise ElensError(
                    f"`npm pack mathjax@{MATHJAX_VERSION}` failed (exit {proc.returncode}): "
                    f"{(proc.stderr or proc.stdout).strip()[-500:]}. Check access to the npm registry."
                )
            with tarfile.open(tarballs[0]) as tar:
                member = tar.getmember("package/es5/tex-svg-full.js")
                data = tar.extractfile(member).read()
                license_text = tar.extractfile(tar.getmember("package/LICENSE")).read()
        mj.parent.mkdir(parents=True, exist_ok=True)
        tmp_file = mj.with_name(f".{mj.name}.tmp")
        tmp_file.write_bytes(data)
        os.replace(tmp_file, mj)
        (mj.parent / "LICENSE").write_bytes(license_text)
        stamp["mathjax"] = MATHJAX_VERSION
    vega = dest / charts.VEGA_BUNDLE
    vega_id = f"vega-lite {charts.VEGALITE_VERSION}, vl-convert {_dist_version('vl-convert-python')}"
    if stamp.get("vega") != vega_id or not vega.is_file():
        log(f"assets: Vega bundle ({vega_id})")
        charts.write_vega_bundle(vega)
        stamp["vega"] = vega_id
    stamp_path.write_text(json.dumps(stamp, indent=1) + "\n")
    log(f"assets: {dest} ready (MathJax {stamp['mathjax']}; {stamp['vega']})")
    return dest


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------------------------
# the book


def _stage(book_root: Path, source_root: Path, assets: Path) -> None:
    """Copy the book's configuration and non-notebook pages into ``book_root``."""
    book_root.mkdir(parents=True, exist_ok=True)
    for name in BOOK_CONFIG:
        shutil.copyfile(source_root / name, book_root / name)
    src_book = source_root / "book"
    for path in src_book.rglob("*"):
        rel = path.relative_to(src_book)
        if path.is_dir() or path.suffix == ".ipynb" or "__pycache__" in rel.parts:
            continue
        (book_root / "book" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, book_root / "book" / rel)
    link = book_root / "_assets"
    if link.is_symlink() or link.exists():
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.symlink_to(assets.resolve(), target_is_directory=True)


def build_book(
    param_set: str = "default",
    overrides: Mapping[str, str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    assets: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
    log=print,
) -> Path:
    """Run every chapter, then ``jupyter-book build ROOT -W``; returns ``ROOT/_build/html``.

    ``root`` (default: the repository) is where the book is built; another directory gets a
    staged copy of the configuration, the pages and a link to the assets.

    Raises:
        ElensError: a chapter failed, an asset is missing, or the build had a warning/error.
    """
    book_root = Path(root).resolve() if root is not None else REPO
    assets_dir = Path(assets) if assets is not None else REPO / "_assets"
    if not (assets_dir / MATHJAX_FILE).is_file():
        raise ElensError(f"The local assets are missing from {assets_dir}: run `make assets` first.")
    if book_root != REPO:
        _stage(book_root, REPO, assets_dir)
    run_chapters("all", param_set, overrides, out_dir=book_root / "book", force=force, progress=progress, log=log)
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(book_root), "--all", "--builder", "html", "-W", "--keep-going"]
    log("book: " + " ".join(cmd))
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise ElensError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    html = book_root / "_build" / "html"
    log(f"book: built in {time.perf_counter() - start:.1f} s -> {html}/index.html")
    return html


# ---------------------------------------------------------------------------------------------
# command line


def _print_yaml(data: Any) -> None:
    print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    """The ``--set`` items and the ``--set-line`` text of a command line, as one mapping."""
    return parse_overrides([*args.overrides, *split_set_line(getattr(args, "set_line", ""))])


def main(argv: Sequence[str] | None = None, prog: str = "python -m elens_utils book") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--params", default="default", help="parameter set: params/<NAME>.yml or a YAML path (default: default)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a parameter (YAML value; a,b for a list); repeatable")
        p.add_argument("--set-line", default="", metavar="TEXT",
                       help="several KEY=VALUE in one string, values may hold spaces (make chapter SET=...)")
        p.add_argument("--force", action="store_true", help="execute even when the cached copy is up to date")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("list", help="the chapters and their parameters")
    p_params = sub.add_parser("params", help="print the merged parameters of a chapter")
    p_params.add_argument("chapter")
    p_params.add_argument("--params", default="default")
    p_params.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p_params.add_argument("--set-line", default="", metavar="TEXT")
    p_run = sub.add_parser("run", help="execute chapters into book/ (cached)")
    p_run.add_argument("chapters", nargs="+", help="chapter names, or all")
    p_run.add_argument("--out", default=None, help="directory of the executed copies (default: book/)")
    common(p_run)
    p_assets = sub.add_parser("assets", help="local MathJax and Vega bundle for the book")
    p_assets.add_argument("--dest", default=None)
    p_times = sub.add_parser("times", help="the executed chapters' wall times (book/); --write records them")
    p_times.add_argument("--params", default="default", help="the parameter set the chapters ran with")
    p_times.add_argument("--out", default=None, help="directory of the executed copies (default: book/)")
    p_times.add_argument("--write", action="store_true", help="record them in benchmarks/book-times.json")
    p_times.add_argument("--cache", default="cold", choices=("cold", "warm"),
                         help="whether the profile cache was empty when they ran (default: cold)")
    p_build = sub.add_parser("build", help="run all chapters and build the HTML book")
    p_build.add_argument("--root", default=None, help="build here (staged copy) instead of the repository")
    common(p_build)

    args = parser.parse_args(argv)

    def body() -> None:
        if args.cmd == "list":
            for ch in chapters():
                print(f"{ch.name:<12} {ch.path.relative_to(REPO)}  parameters: {', '.join(ch.parameters)}")
            print(f"parameter sets: {', '.join(param_sets())}")
        elif args.cmd == "params":
            ch = find_chapter(args.chapter)
            given = _overrides(args)
            merged = merge_parameters(ch, load_param_set(args.params), given)
            check_parameters(ch, merged, given, machine=False)
            _print_yaml(merged)
        elif args.cmd == "run":
            names = "all" if args.chapters == ["all"] else args.chapters
            run_chapters(names, args.params, _overrides(args), out_dir=args.out, force=args.force, progress=not args.no_progress)
        elif args.cmd == "times":
            from elens_utils.book.chapter_times import collect_times, write_times

            book_dir = Path(args.out) if args.out else REPO / "book"
            times = collect_times(book_dir, Path(args.params).stem)
            if not times:
                raise ElensError(f"No chapter in {book_dir} was executed with the parameter set '{args.params}'.")
            for name, seconds in times.items():
                print(f"{name:<12} {seconds:8.1f} s")
            print(f"{'total':<12} {sum(times.values()):8.1f} s")
            if args.write:
                print(f"recorded in {write_times(REPO, Path(args.params).stem, times, cache=args.cache)}")
        elif args.cmd == "assets":
            make_assets(args.dest)
        elif args.cmd == "build":
            build_book(args.params, _overrides(args), root=args.root, force=args.force, progress=not args.no_progress)

    return run_command(body)


if __name__ == "__main__":
    raise SystemExit(main())
