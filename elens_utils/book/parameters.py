"""Parameter sets (``params/<name>.yml``), command-line overrides and their checks: what a
chapter runs with, merged from its defaults, the set and ``--set key=value``."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from elens_utils.book.chapter_files import Chapter, chapters, repo_root
from elens_utils.core.errors import ElensError
from elens_utils.core.paths import cache_dir
from elens_utils.models.registry import check_model_name
from elens_utils.sweeps.dist_sweep import PROCESSES_ENV

__all__ = ["check_parameters", "load_param_set", "merge_parameters", "param_sets", "parse_overrides", "split_set_line"]


def param_sets(root: str | os.PathLike[str] | None = None) -> list[str]:
    return sorted(p.stem for p in (repo_root(root) / "params").glob("*.yml"))


def load_param_set(name: str, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The parameter set ``name`` (``params/<name>.yml``, or a path to a YAML file)."""
    path = Path(name)
    if not (path.suffix in (".yml", ".yaml") and path.is_file()):
        path = repo_root(root) / "params" / f"{name}.yml"
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
