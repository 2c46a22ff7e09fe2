"""Old module paths of ``elens_utils`` (before the layered subpackages) keep importing.

Until version 0.2 the library was one flat package (``elens_utils.charts``,
``elens_utils.loading``, ...). Code written against those paths keeps working: a finder on
``sys.meta_path`` answers each old name with the module at its new place (the same module
object, so a monkeypatch through the old name reaches the code), and ``python -m`` with an old
name runs the new module. New code should import from the new places (:data:`MOVED`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

#: Old module name (under ``elens_utils``) -> its module now. Packages that took the name of a
#: module (``data``, ``entropy``, ``models``, ``lens``, ``zoo``, ``bench``) re-export its names
#: instead, so they are not listed.
MOVED: dict[str, str] = {
    "errors": "core.errors", "atomic": "core.atomic", "threads": "core.threads", "token_text": "core.token_text",
    "hf_compat": "core.hf_compat", "provenance": "core.provenance",
    "synthetic": "data.synthetic", "prompting": "data.prompting", "fact_bank": "data.fact_bank",
    "fact_questions": "data.fact_questions",
    "entropy_cpu": "entropy.cpu", "entropy_triton": "entropy.triton_kernel", "precision": "entropy.precision",
    "profiles": "entropy.profiles",
    "tiny_models": "models.tiny", "gguf_convert": "models.gguf_convert", "real_models": "models.real_models",
    "adapters": "lens.adapters", "loading": "lens.loading", "generation": "lens.generation", "lens_work": "lens.work",
    "cache": "sweeps.cache", "sweep": "sweeps.sweep", "dist_sweep": "sweeps.dist_sweep",
    "classify": "analysis.classify", "knn_tables": "analysis.knn_tables", "candidates": "analysis.candidates",
    "interventions": "analysis.interventions", "cloze": "analysis.cloze", "sublayers": "analysis.sublayers",
    "expansion": "analysis.expansion", "correctness": "analysis.correctness", "comparison": "analysis.comparison",
    "quantization": "analysis.quantization",
    "charts": "viz.charts", "chart_reflow": "viz.chart_reflow",
    "chapters": "book.chapters", "chapter_times": "book.chapter_times", "headlines": "book.headlines",
    "zoo_report": "zoo.report", "real_card": "zoo.real_card",
    "bench_real": "bench.real", "bench_forward": "bench.forward", "bench_report": "bench.report",
}  # fmt: skip

_PREFIX = "elens_utils."


class _Alias(importlib.abc.Loader):
    """Loads an old name as the module at its new place (imported normally, under its own name)."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # the import system stamped the alias's spec on the shared module object: give it back its own
        module.__spec__ = self._spec

    def get_code(self, fullname):  # for ``python -m elens_utils.<old name>`` (runpy)
        return importlib.util.find_spec(self.target).loader.get_code(self.target)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(_PREFIX) or fullname[len(_PREFIX) :] not in MOVED:
            return None
        new = _PREFIX + MOVED[fullname[len(_PREFIX) :]]
        return importlib.machinery.ModuleSpec(fullname, _Alias(new), origin=new)


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())  # before path-based finders that may know a stale copy


def old_module(name: str):
    """The module an old attribute name of the package stands for (``elens_utils.charts``), or
    raise AttributeError: the package's ``__getattr__``."""
    if name in MOVED:
        return importlib.import_module(_PREFIX + MOVED[name])
    raise AttributeError(f"module 'elens_utils' has no attribute {name!r}")
