"""The chapter runner of the Entropy-Lens book: parameter sets, cached execution, the build.

Every chapter is a notebook in ``notebooks/`` with a cell tagged ``parameters``. It runs with a
named *parameter set* (``params/<name>.yml``; ``params/default.yml`` is the commented example)
and ``--set key=value`` overrides, which :mod:`elens_utils.book.parameters` reads, types and
checks (this module re-exports its functions under their old names).

Command line (``python -m elens_utils book ...``)::

    list                                   the chapters, their names and parameters
    params CH --params SET [--set K=V]     the parameters CH would run with (YAML)
    run CH|all --params SET [--set K=V ...] [--out book] [--force]
    assets [--dest _assets]                local MathJax (npm) and Vega bundle (vl-convert)
    build --params SET [--set K=V ...] [--root DIR] [--force]

``run`` executes the chapter with papermill into ``book/<same name>.ipynb``: the
injected-parameters cell and the notebook's own defaults cell are hidden (tag ``remove-cell``),
and a hidden-input cell after them shows the parameters used as a small table. Execution is
skipped when the executed copy's cache key (``metadata.elens.cache_key``) equals
sha256(notebook cells, merged parameters, the ``elens_utils`` sources); writes are atomic
(temporary file, then ``os.replace``).

``build`` runs every chapter and builds the HTML with ``jupyter-book build -W`` (a warning, and
so a failed cell or a missing asset, fails the build). With ``--root DIR`` other than the
repository, the book (config, table of contents, the pages of ``book/``, the assets) is staged
into DIR first, so a throw-away build (the smoke test) leaves ``book/`` alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from elens_utils.book.assets import MATHJAX_FILE, make_assets
from elens_utils.book.chapter_files import (
    PACKAGE,
    REPO,
    Chapter,
    chapters,
    find_chapter,
    read_notebook,
    repo_root,
)
from elens_utils.book.parameters import (
    check_parameters,
    load_param_set,
    merge_parameters,
    param_sets,
    parse_overrides,
    split_set_line,
)
from elens_utils.core.atomic import atomic_file
from elens_utils.core.errors import ElensError, first_line, run_command
from elens_utils.core.threads import SMALL_MODEL_THREADS_ENV
from elens_utils.sweeps.dist_sweep import PROCESSES_ENV

__all__ = [
    "Chapter",
    "build_book",
    "cache_key",
    "chapters",
    "check_parameters",
    "find_chapter",
    "library_digest",
    "load_param_set",
    "make_assets",
    "merge_parameters",
    "param_sets",
    "parse_overrides",
    "run_chapter",
    "split_set_line",
]

BOOK_CONFIG = ("_config.yml", "_toc.yml")


# ---------------------------------------------------------------------------------------------
# cache keys


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

    Skipped when the executed copy's cache key matches.

    Args:
        name: the chapter, by name or number (``"families"``, ``"02"``).
        param_set: the parameter set (``params/<set>.yml``).
        overrides: parameter name -> value (as text, as on the command line).
        out_dir: where the executed notebook goes (default ``<root>/book``).
        root: the repository whose ``notebooks/`` and ``params/`` are read (default: this one).
        force: run even when the executed copy is up to date.
        strict: an override that the chapter does not declare is an error (``run_chapters``
            relaxes it for ``all``).
        progress: show papermill's progress bar.
        log: where progress lines go.

    Returns:
        The executed notebook's path.

    Raises:
        ElensError: unknown chapter / set / parameter, or a cell that failed (the message
            names the cell and the error; the failed notebook is kept as ``<stem>.failed.ipynb``).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from elens_utils.core.provenance import page_substitutions
    from elens_utils.core.version import __version__

    root_path = repo_root(root)
    chapter = find_chapter(name, root_path)
    pset = load_param_set(param_set, root_path)
    params = merge_parameters(chapter, pset, overrides, strict=strict)
    check_parameters(chapter, params, overrides)
    out_dir = Path(out_dir) if out_dir is not None else root_path / "book"
    if out_dir.exists() and not out_dir.is_dir():
        raise ElensError(f"--out {out_dir} is a file: give a directory for the executed notebooks.")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / chapter.path.name
    source = read_notebook(chapter.path)
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
    **unknown: Any,
) -> Path:
    """Run every chapter, then ``jupyter-book build ROOT -W``; returns ``ROOT/_build/html``.

    Args:
        param_set: the parameter set of every chapter (``params/<set>.yml``).
        overrides: parameter overrides, each applied to the chapters that declare it.
        root: where the book is built (default: the repository); another directory gets a
            staged copy of the configuration, the pages and a link to the assets.
        assets: the local assets (MathJax and the chart libraries; default ``_assets/``).
        force: run every chapter even when its executed copy is up to date.
        progress: show papermill's progress bar.
        log: where progress lines go.

    Raises:
        ElensError: a chapter failed, an asset is missing, or the build had a warning/error.
    """
    if unknown:
        raise ElensError(f"build_book() does not take {sorted(unknown)}: its run options are force and progress.")
    repo, book_root = repo_root(None), repo_root(root)
    assets_dir = Path(assets) if assets is not None else repo / "_assets"
    if not (assets_dir / MATHJAX_FILE).is_file():
        raise ElensError(f"The local assets are missing from {assets_dir}: run `make assets` first.")
    if book_root != repo:
        _stage(book_root, repo, assets_dir)
    run_chapters("all", param_set, overrides, out_dir=book_root / "book", log=log, force=force, progress=progress)
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
