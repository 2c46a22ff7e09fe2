"""The packaging files agree with each other.

``pyproject.toml`` is the source of truth for dependencies; ``environment.yml`` (conda) must list
the same packages with the same version specifiers (core dependencies plus the ``test`` and ``book`` extras),
``constraints.txt`` must pin a torch that pyproject accepts, and the CI entry point and README
must run the tests the same way (``make test``).

Only ``packaging`` (a dependency of pytest) and the standard library are used: environment.yml is
read by a minimal parser for its simple shape (PyYAML is not a declared dependency; when it
happens to be installed, a test checks the parser against it).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
ENVIRONMENT = ROOT / "environment.yml"
CONSTRAINTS = ROOT / "constraints.txt"
CI_RUN = ROOT / ".ci" / "run"
MAKEFILE = ROOT / "Makefile"
README = ROOT / "README.md"

# PyPI name -> conda-forge name, where they differ.
PYPI_TO_CONDA = {"torch": "pytorch"}
# environment.yml entries that are tools of the environment, not packages of the project.
CONDA_NOT_PACKAGES = {"python", "pip"}
# The pyproject extras that environment.yml must cover besides the core dependencies.
EXTRAS = ("test", "book")


def _norm(name: str) -> str:
    """PEP 503 normalisation (lowercase, runs of ``-_.`` to ``-``)."""
    return canonicalize_name(name)


def _strip_comment(line: str) -> str:
    """Drop a YAML comment: ``#`` at the start or after whitespace, outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def parse_environment_yml(text: str) -> dict[str, list[str]]:
    """Read the subset of YAML that conda environment files use.

    Returns ``{"name": [...], "channels": [...], "dependencies": [...], "pip": [...]}``: scalar
    top-level values as one-element lists, block sequences as lists of strings, and the items of a
    ``- pip:`` sub-list under ``"pip"``. Flow syntax (``[a, b]``), anchors and multi-line scalars
    are not supported and raise ``ValueError`` rather than being misread.
    """
    out: dict[str, list[str]] = {}
    key = None  # current top-level key
    sub_indent = None  # indent of the "- pip:" item while reading its sub-list
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        if not line.strip() or line.strip() == "---":
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError(f"environment.yml:{lineno}: tab indentation is not supported")
        if indent == 0:
            m = re.fullmatch(r"([A-Za-z_][\w-]*)\s*:\s*(.*)", body)
            if not m:
                raise ValueError(f"environment.yml:{lineno}: expected 'key: value', got {body!r}")
            key, value = m.group(1), m.group(2)
            if value.startswith(("[", "{", "&", "*", "|", ">")):
                raise ValueError(f"environment.yml:{lineno}: unsupported YAML syntax {value!r}")
            out[key] = [_unquote(value)] if value else []
            sub_indent = None
            continue
        m = re.fullmatch(r"-\s+(.*)", body)
        if key is None or not m:
            raise ValueError(f"environment.yml:{lineno}: expected a '- item' list entry, got {body!r}")
        item = m.group(1).strip()
        if sub_indent is not None and indent > sub_indent:
            out["pip"].append(_unquote(item))
            continue
        sub_indent = None
        if key == "dependencies" and re.fullmatch(r"pip\s*:", item):
            sub_indent = indent
            out.setdefault("pip", [])
            continue
        if item.startswith(("[", "{", "&", "*", "|", ">")) or item.endswith(":"):
            raise ValueError(f"environment.yml:{lineno}: unsupported YAML syntax {item!r}")
        out[key].append(_unquote(item))
    return out


def _spec(text: str) -> SpecifierSet | str:
    """A version constraint as a SpecifierSet when it is PEP 440, else as normalised text
    (conda-only forms such as ``=1.2`` or ``1.2.*``): the comparison is then textual."""
    text = text.strip()
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return re.sub(r"\s+", "", text)


def _show(spec: SpecifierSet | str) -> str:
    if isinstance(spec, SpecifierSet):
        return ",".join(sorted(str(s) for s in spec)) or "(any version)"
    return spec or "(any version)"


def _merge(table: dict[str, SpecifierSet | str], name: str, spec: SpecifierSet | str) -> None:
    if name in table and isinstance(table[name], SpecifierSet) and isinstance(spec, SpecifierSet):
        table[name] = table[name] & spec  # same package listed twice: both constraints hold
    elif name in table and table[name] != spec:
        table[name] = f"{_show(table[name])} & {_show(spec)}"
    else:
        table[name] = spec


def pyproject_requirements() -> dict[str, SpecifierSet | str]:
    """Conda name -> specifier for the core dependencies and the :data:`EXTRAS`."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = list(project.get("dependencies", []))
    for extra in EXTRAS:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    table: dict[str, SpecifierSet | str] = {}
    for line in reqs:
        req = Requirement(line)  # the environment marker (req.marker) is deliberately ignored
        name = _norm(req.name)
        _merge(table, _norm(PYPI_TO_CONDA.get(name, name)), req.specifier)
    return table


def environment_requirements() -> dict[str, SpecifierSet | str]:
    """Conda name -> specifier for environment.yml's dependencies (pip sub-list included)."""
    env = parse_environment_yml(ENVIRONMENT.read_text())
    table: dict[str, SpecifierSet | str] = {}
    for item in env.get("dependencies", []):
        m = re.fullmatch(r"(?:[\w.-]+::)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)", item)
        assert m, f"environment.yml: cannot read dependency {item!r}"
        name = _norm(m.group(1))
        if name not in CONDA_NOT_PACKAGES:
            _merge(table, name, _spec(m.group(2)))
    for item in env.get("pip", []):  # PyPI names and PEP 508 syntax
        req = Requirement(item)
        name = _norm(req.name)
        _merge(table, _norm(PYPI_TO_CONDA.get(name, name)), req.specifier)
    return table


def test_environment_yml_matches_pyproject():
    py = pyproject_requirements()
    env = environment_requirements()
    problems = []
    if missing := sorted(set(py) - set(env)):
        problems.append(
            "in pyproject.toml but missing from environment.yml: "
            + ", ".join(f"{n}{_show(py[n])}" for n in missing)
        )
    if extra := sorted(set(env) - set(py)):
        problems.append(
            "in environment.yml but missing from pyproject.toml (core + "
            + "/".join(EXTRAS)
            + " extra): "
            + ", ".join(f"{n}{_show(env[n])}" for n in extra)
        )
    for name in sorted(set(py) & set(env)):
        if py[name] != env[name]:
            problems.append(
                f"{name}: pyproject.toml says {_show(py[name])!r} but environment.yml says "
                f"{_show(env[name])!r}"
            )
    assert not problems, "environment.yml and pyproject.toml disagree:\n  " + "\n  ".join(problems)


def test_environment_parser_on_tricky_input():
    text = """\
# comment
name: "demo"   # trailing comment
channels:
  - conda-forge
dependencies:
  - python>=3.10
  - conda-forge::numpy >=1.26   # channel prefix, space before the specifier
  - pip
  - pip:
      - torch>=2.4 ; platform_system == 'Linux'
      - "tqdm#not-a-comment"
  - pandas
"""
    env = parse_environment_yml(text)
    assert env["name"] == ["demo"]
    assert env["channels"] == ["conda-forge"]
    assert env["dependencies"] == ["python>=3.10", "conda-forge::numpy >=1.26", "pip", "pandas"]
    assert env["pip"] == ["torch>=2.4 ; platform_system == 'Linux'", "tqdm#not-a-comment"]
    with pytest.raises(ValueError, match="unsupported YAML"):
        parse_environment_yml("dependencies: [numpy, pandas]\n")


def test_environment_parser_agrees_with_pyyaml():
    yaml = pytest.importorskip("yaml")  # not a dependency; checked when present
    ours = parse_environment_yml(ENVIRONMENT.read_text())
    theirs = yaml.safe_load(ENVIRONMENT.read_text())
    flat, pip = [], []
    for item in theirs["dependencies"]:
        if isinstance(item, dict):
            pip += item["pip"]
        else:
            flat.append(str(item))
    assert ours["dependencies"] == flat
    assert ours.get("pip", []) == pip
    assert ours["channels"] == theirs.get("channels", [])
    assert ours["name"] == [theirs["name"]]


def _constraint_lines() -> list[str]:
    lines = []
    for raw in CONSTRAINTS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def test_constraints_pin_torch_within_pyproject():
    pins = {}
    for line in _constraint_lines():
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            pytest.fail(f"constraints.txt: cannot read {line!r}: {e}")
        pins[_norm(req.name)] = req
    assert "torch" in pins, "constraints.txt does not pin torch (expected a line like torch==2.13.0)"
    specs = list(pins["torch"].specifier)
    assert len(specs) == 1 and specs[0].operator in ("==", "==="), (
        f"constraints.txt must pin torch to one version with ==, got {str(pins['torch'])!r}"
    )
    pinned = specs[0].version
    assert "*" not in pinned, f"constraints.txt pins torch with a wildcard ({pinned}); pin one version"

    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    torch_reqs = [Requirement(d) for d in deps if _norm(Requirement(d).name) == "torch"]
    assert torch_reqs, "pyproject.toml does not list torch among the core dependencies"
    allowed = torch_reqs[0].specifier
    assert allowed.contains(Version(pinned), prereleases=True), (
        f"constraints.txt pins torch=={pinned}, which pyproject.toml's torch{allowed} excludes"
    )


def _shell_commands(path: Path) -> list[list[str]]:
    """The commands of a simple shell script, comments and blank lines removed, split into words."""
    commands = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"\s*(?:&&|\|\||;)\s*", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                words = part.split()
            if words:
                commands.append(words)
    return commands


def _runs_make_test(words: list[str]) -> bool:
    while words and (words[0] in ("exec", "command", "time") or re.fullmatch(r"\w+=.*", words[0])):
        words = words[1:]  # `exec make test`, `VAR=1 make test`
    return bool(words) and Path(words[0]).name in ("make", "gmake") and "test" in words[1:]


def test_ci_runs_make_test():
    assert CI_RUN.is_file(), f"{CI_RUN.relative_to(ROOT)} is missing"
    commands = _shell_commands(CI_RUN)
    assert any(_runs_make_test(c) for c in commands), (
        f".ci/run does not invoke `make test`; its commands are: {[' '.join(c) for c in commands]}"
    )


def test_makefile_has_test_target():
    text = MAKEFILE.read_text()
    assert re.search(r"^test\s*:", text, re.MULTILINE), "Makefile has no `test:` target"


def test_readme_mentions_make_test():
    if not README.is_file():
        pytest.skip("no README.md yet")
    assert re.search(r"\bmake\s+test\b", README.read_text()), "README.md does not mention `make test`"


def test_package_data_lists_every_data_file_of_the_package():
    """A file of elens_utils that is not Python reaches a wheel only through package-data: a
    non-editable install without it would fail at import (the question bank loads its items)."""
    import fnmatch

    globs = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"].get("package-data", {})
    package = ROOT / "elens_utils"
    data_files = [
        p for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]  # fmt: skip
    assert data_files, "expected the question bank's fact_bank.yml among the package's files"
    unlisted = []
    for path in data_files:
        rel = path.relative_to(ROOT)
        owner = ".".join(rel.parent.parts)
        if not any(fnmatch.fnmatch(path.name, g) for g in globs.get(owner, [])):
            unlisted.append(str(rel))
    assert not unlisted, f"add these to [tool.setuptools.package-data] in pyproject.toml: {unlisted}"
