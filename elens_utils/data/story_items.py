"""The items of the story world: stories, task prompts, format prompts and texts, multiple-choice
questions and training documents, as frozen dataclasses."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Story:
    """One story of the world with the facts it states (``None``: not in the story)."""

    id: str
    split: str
    sentences: tuple[str, ...]
    text: str
    protagonist: str
    friend: str | None
    obj: str
    colour: str
    place: str | None
    animal: str | None


@dataclass(frozen=True)
class TaskPrompt:
    """A prompt of the task-type experiment.

    ``story`` is the story part as shown (after the variant), ``prompt`` the whole prompt (it
    ends with a ``\\n``), ``answer`` the expected answer (``None`` for a continuation whose
    story order was destroyed), ``text`` the prompt followed by the answer (training form).
    """

    story_id: str
    task: str
    phrasing: int
    variant: str
    reversal: str
    instruction: str
    story: str
    prompt: str
    answer: str | None
    text: str | None


@dataclass(frozen=True)
class FormatPrompt:
    """A prompt of the output-format experiment (``format`` in :data:`~elens_utils.data.story_lexicon.FORMATS`)."""

    format: str
    topic: str
    topic_kind: str
    split: str
    prompt: str


@dataclass(frozen=True)
class FormatText:
    """A training text: the format prompt, a line break, then a text in that format."""

    format: str
    topic: str
    topic_kind: str
    split: str
    prompt: str
    body: str
    text: str


@dataclass(frozen=True)
class MCQuestion:
    """A multiple-choice reading-comprehension question; ``prompt`` ends with ``answer :``."""

    id: str
    story_id: str
    split: str
    kind: str
    question: str
    options: tuple[str, str, str, str]
    answer: str
    answer_index: int
    answer_letter: str
    prompt: str
    text: str


@dataclass(frozen=True)
class Document:
    """A document of a training corpus (``kind``: story, task, format or mc)."""

    kind: str
    source: str
    text: str


def as_records(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Items as dicts: ``pandas.DataFrame(as_records(x))``, ``datasets.Dataset.from_list(...)``."""
    return [dataclasses.asdict(item) for item in items]
