"""Every docstring the API appendix renders parses without a warning, checked in seconds.

The book's strict build (``jupyter-book build -W``) fails on a docstring that Sphinx's napoleon
and docutils warn about: a field list broken by a multi-line argument name, a section title
longer than its underline. That build is a slow test; this one reads the same docstrings the
same way (napoleon's Google style, then docutils at warning level), with Sphinx's roles and
directives stood in for, so the mistake shows in the unit tests.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import io

import docutils.core
import pytest
import yaml
from docutils import nodes
from docutils.parsers.rst import Directive, directives, roles
from sphinx.ext.napoleon import Config
from sphinx.ext.napoleon.docstring import GoogleDocstring

from elens_utils.book.architecture import find_modules
from elens_utils.book.chapter_files import REPO

_ROLES = ("func", "class", "meth", "mod", "data", "attr", "exc", "obj", "ref", "doc", "term")
_DIRECTIVES = ("attribute", "method", "seealso", "versionadded", "versionchanged", "deprecated", "todo")


class _Options(dict):
    """Any option a Sphinx directive takes, as text."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str):
        return directives.unchanged


class _SphinxDirective(Directive):
    """A stand-in for a Sphinx directive: its content is parsed, its arguments and options kept."""

    has_content = True
    optional_arguments = 10
    final_argument_whitespace = True
    option_spec = _Options()

    def run(self) -> list[nodes.Node]:
        node = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


# the book's napoleon settings (_config.yml's sphinx.config)
_SPHINX_CONFIG = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]
_CONFIG = Config(**{k: v for k, v in _SPHINX_CONFIG.items() if k.startswith("napoleon_")})


@functools.cache
def _stand_ins() -> None:
    """Register the Sphinx roles and directives docutils lacks, once, when first needed."""
    for role in _ROLES:
        roles.register_generic_role(role, nodes.literal)
    for directive in _DIRECTIVES:
        directives.register_directive(directive, _SphinxDirective)


def docstring_problems(doc: str) -> str:
    """docutils' warnings and errors on ``doc`` read as napoleon reads a Google-style docstring."""
    _stand_ins()
    text = "\n".join(GoogleDocstring(inspect.cleandoc(doc), _CONFIG).lines())
    stream = io.StringIO()
    docutils.core.publish_doctree(text, settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": stream})
    return stream.getvalue().strip()


def _documented(module_name: str):
    """(qualified name, docstring) of a module and of the public functions, classes, methods
    and properties it defines."""
    module = importlib.import_module(module_name)
    yield module_name, module.__doc__
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module_name}.{name}", obj.__doc__
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if not member.startswith("_") and (inspect.isfunction(value) or isinstance(value, property)):
                    yield f"{module_name}.{name}.{member}", value.__doc__


def test_the_check_sees_what_fails_the_strict_build():
    assert "Title underline too short" in docstring_problems("Title (a long one)\n---------\nbody")
    broken = "Do it.\n\nArgs:\n    a: the a.\n    b, c,\n    d: the same (b None\n        without them).\n"
    assert "Unexpected indentation" in docstring_problems(broken)
    assert docstring_problems("Do it.\n\nArgs:\n    a: the a, with :func:`~x.y`.\n\nReturns:\n    ``[N]``.\n") == ""


@pytest.mark.parametrize("module_name", [m for m in find_modules() if not m.endswith("__main__")])
def test_docstrings_parse_without_warnings(module_name):
    bad = {name: problems for name, doc in _documented(module_name) if doc and (problems := docstring_problems(doc))}
    assert not bad, "\n\n".join(f"{name}:\n{text}" for name, text in bad.items())
