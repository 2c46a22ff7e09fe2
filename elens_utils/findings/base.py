"""The result of a chapter's closing cell, and the count of verdicts in words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from elens_utils.analysis.model_groups import model_group
from elens_utils.analysis.zoo_quantization import quantization_caveat

__all__ = ["Findings", "any_quantized", "is_random", "is_zoo", "quantization_line", "tally"]


@dataclass(frozen=True)
class Findings:
    """What a chapter's run found.

    Attributes:
        lines: Markdown bullets (``"- **Data**: ..."``), in the order the chapter prints them;
            a line that starts with two spaces continues the bullet above it.
        verdict: a few words for the introduction's table (``"3 at ceiling, 1 above 0.9"``,
            ``"not tested"``, ...).
        detail: one sentence with the numbers behind the verdict.
    """

    lines: list[str] = field(default_factory=list)
    verdict: str = ""
    detail: str = ""

    def markdown(self) -> str:
        """The bullets as one Markdown string, one line each."""
        return "\n".join(self.lines)


def tally(verdicts: Iterable[str], *, order: Iterable[str] = (), notes: Mapping[str, str] | None = None) -> str:
    """Count verdicts in words: ``["at chance", "at ceiling", "at chance"] -> "2 at chance,
    1 at ceiling"``. Verdicts named in ``order`` come first, in that order; the others follow,
    most frequent first. ``notes`` qualifies a verdict's count in parentheses right after it
    (``{"at chance": "1 of them untrained"}`` -> ``"2 at chance (1 of them untrained)"``); a note
    for a verdict not present is dropped. An empty list gives ``"none"``."""
    counts = Counter(str(v) for v in verdicts)
    if not counts:
        return "none"
    notes = notes or {}
    first = [v for v in dict.fromkeys(order) if v in counts]
    rest = sorted((v for v in counts if v not in first), key=lambda v: (-counts[v], v))
    return ", ".join(f"{counts[v]} {v}" + (f" ({notes[v]})" if notes.get(v) else "") for v in [*first, *rest])


def is_random(models: Iterable[str]) -> bool:
    """Whether every model named has random weights (``tiny/...`` or ``untrained/...``):
    such a run checks the machinery and tests none of the paper's claims."""
    return all(model_group(str(m)) == "other" for m in models)


def is_zoo(models: Iterable[str]) -> bool:
    """Whether every model named is one of the project's zoo (``zoo/...``): small models trained
    on the story world, which test the paper's method in miniature, not its numbers."""
    return all(model_group(str(m)) == "zoo" for m in models)


def any_quantized(models: Iterable[str]) -> bool:
    """Whether a model named holds 4-bit weights: a ``real/...`` model or a ``.gguf`` file."""
    return any(m.startswith("real/") or m.endswith(".gguf") for m in models)


def quantization_line(models: str = "the real models", experiment: str = "family") -> str:
    """The closing bullet on the real models' 4-bit weights: ``models`` (how the chapter names
    them) and :func:`~elens_utils.analysis.zoo_quantization.quantization_caveat` of its
    ``experiment`` (``"family"`` or ``"task"``)."""
    return f"- **Quantization**: {models} hold 4-bit weights. {quantization_caveat(experiment=experiment)}"
