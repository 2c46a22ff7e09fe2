"""The items of the project's own four-option question set (:mod:`elens_utils.data.fact_questions`).

Licence: written for this project by its authors, MIT (the repository's LICENSE). No item is
taken from a published dataset; the facts are common knowledge, the wording and the stories are
ours.

Twelve subjects of 32 items each. Eight ask for common-sense and world facts, four ask for an
inference over a short story whose answer word is not in the story (the answer cannot be copied):

==============  =========  ===========================================================
subject         kind       what is asked
==============  =========  ===========================================================
capitals        fact       the capital of a country
colours         fact       the usual colour of a thing
animal_sounds   fact       the sound an animal makes, or the animal that makes a sound
opposites       fact       the opposite of a word
arithmetic      fact       one small sum, difference or product
numbers         fact       how many (legs, days, sides, ...)
calendar        fact       the day or month before or after another
categories      fact       which of four things belongs to a category
nature          fact       everyday science and nature
feelings        inference  how a person in a story most likely feels
next_event      inference  what most likely happens next in a story
objects         inference  which object a person in a story needs
==============  =========  ===========================================================

The items of nine subjects are data, in ``fact_bank.yml`` beside this module, whose comments give
each table's row layout: mostly one row per item (``[question, answer, distractors]``, or
``[story, question, answer, distractors]`` for the inference subjects; the capitals, colours and
opposites give the word the question is built around instead of the question, and the feelings
the person's name), while animal sounds list the animals and sounds the questions ask about and
categories their members. Arithmetic and calendar items are computed here, and the few-shot
demonstrations (:data:`SHOTS`) stay in this module. ``distractors`` may hold fewer than three wrong
options: the rest are drawn from the subject's pool (:data:`POOLS`) by a generator seeded with
the item's id, so the bank is the same on every machine and for every ``seed`` of
:func:`~elens_utils.data.fact_questions.fact_questions` (the seed only orders the items and places the
answers). Pools only hold options that are wrong for every item they fill.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from elens_utils.core.errors import ElensError

__all__ = ["FactItem", "LICENCE", "SUBJECTS", "SUBJECT_KIND", "POOLS", "SHOTS", "fact_bank"]  # noqa: F822 - POOLS: __getattr__

LICENCE = "Written for the elens_utils project; MIT licence (see LICENSE). Not taken from any dataset."


@dataclass(frozen=True)
class FactItem:
    """One question of the bank.

    Attributes:
        id: ``"<subject>-<nn>"``, stable across versions of the bank that keep the item.
        subject: one of :data:`SUBJECTS`.
        kind: ``"fact"`` or ``"inference"``.
        question: the question, ending with ``"?"``.
        answer: the correct option's text.
        distractors: the three wrong options' texts.
        context: the story an inference item is about (``""`` for facts).
    """

    id: str
    subject: str
    kind: str
    question: str
    answer: str
    distractors: tuple[str, str, str]
    context: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        """The answer, then the distractors (unshuffled)."""
        return (self.answer, *self.distractors)


# --------------------------------------------------------------------------------------------
# the items of nine subjects, from fact_bank.yml (data, not code)

_ITEMS_FILE = "fact_bank.yml"
# table -> the layout of one row: "s" a string, "l" a list of strings ("": the table is a list of
# strings). categories maps a name to its row; every other table is a list of rows.
_LAYOUT = {"capitals": "ssl", "colours": "ssl", "sounds": "ss", "sound_of": "", "animal_of": "", "opposites": "ssl",
           "numbers": "ssl", "categories": "sl", "nature": "ssl", "feelings": "sssl", "next_events": "sssl",
           "objects": "sssl"}  # fmt: skip
_DAMAGED = "Reinstall elens_utils (or restore the file from the repository)."


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe loader (the C one where PyYAML has it), refusing a key written twice in one
    mapping (PyYAML would keep the last one silently)."""


def _mapping_once(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    pairs = loader.construct_pairs(node)
    keys = [k for k, _ in pairs]
    twice = [k for i, k in enumerate(keys) if k in keys[:i]]
    if twice:
        raise yaml.constructor.ConstructorError(None, None, f"the key {twice[0]!r} is written twice", node.start_mark)
    return dict(pairs)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_once)


def _damaged(what: str) -> ElensError:
    return ElensError(f"{_ITEMS_FILE} is damaged: {what}. {_DAMAGED}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _damaged(f"{where} should be a list of quoted strings; it is {value!r}")
    return tuple(value)


def _row(value: Any, layout: str, where: str) -> tuple[Any, ...]:
    """One row, checked cell by cell against ``layout``, with its lists as tuples."""
    if not isinstance(value, list) or len(value) != len(layout):
        raise _damaged(f"{where} should be a list of {len(layout)} cells; it is {value!r}")
    cells = []
    for i, (cell, kind) in enumerate(zip(value, layout)):
        if kind == "l":
            cells.append(_strings(cell, f"cell {i + 1} of {where}"))
        elif isinstance(cell, str):
            cells.append(cell)
        else:
            raise _damaged(f"cell {i + 1} of {where} should be a quoted string; it is {cell!r}")
    return tuple(cells)


def _parse_items(text: str) -> dict[str, Any]:
    """The tables of :data:`_ITEMS_FILE`'s ``text``, checked cell by cell, with tuples for lists.

    Raises:
        ElensError: for text that is not YAML, a key written twice, a table missing or extra, or
            a row or cell of another shape than :data:`_LAYOUT` gives (e.g. a number, which YAML
            reads from an unquoted ``8``).
    """
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise _damaged(str(exc)) from None
    if not isinstance(data, dict) or set(map(str, data)) != set(_LAYOUT) or len(data) != len(_LAYOUT):
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise _damaged(f"expected the tables {list(_LAYOUT)}, found {found}")
    items: dict[str, Any] = {}
    for name, layout in _LAYOUT.items():
        table = data[name]
        if not layout:
            items[name] = _strings(table, name)
        elif name == "categories":
            if not isinstance(table, dict) or not all(isinstance(k, str) for k in table):
                raise _damaged(f"{name} should map quoted names to rows; it is {table!r}")
            items[name] = {k: _row(v, layout, f"{name}: {k}") for k, v in table.items()}
        elif isinstance(table, list):
            items[name] = tuple(_row(r, layout, f"row {i + 1} of {name}") for i, r in enumerate(table))
        else:
            raise _damaged(f"{name} should be a list of rows; it is {table!r}")
    return items


@lru_cache(maxsize=1)
def _items() -> dict[str, Any]:
    """The tables of :data:`_ITEMS_FILE`, read on first use (not at import, so that code which
    only imports this module's neighbours neither pays for nor depends on the file)."""
    try:
        text = resources.files(__package__).joinpath(_ITEMS_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise _damaged(f"it cannot be read ({exc})") from None
    return _parse_items(text)


# The calendar is computed, not listed: 7 days after, 7 days before, 9 months after, 9 months before.
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip
_MONTHS_AFTER = ("January", "February", "March", "April", "June", "August", "September", "October", "November")
_MONTHS_BEFORE = ("February", "March", "May", "June", "July", "August", "October", "November", "December")

# --------------------------------------------------------------------------------------------
# few-shot demonstrations (never among the questions)

SHOTS: tuple[FactItem, ...] = (
    FactItem("shot-1", "demo", "fact", "What colour is a ripe orange?", "orange", ("blue", "black", "white")),
    FactItem("shot-2", "demo", "fact", 'What is the opposite of "young"?', "old", ("tiny", "green", "fast")),
    FactItem("shot-3", "demo", "inference", "How did Pia most likely feel?", "happy", ("sad", "angry", "scared"),
             "Pia's class went to the fair, and she won a big toy bear."),  # fmt: skip
    FactItem("shot-4", "demo", "fact", "How many legs does a cat have?", "4", ("2", "6", "8")),
    FactItem("shot-5", "demo", "fact", "What is the capital of Slovenia?", "Ljubljana", ("Zagreb", "Sofia", "Riga")),
    FactItem("shot-6", "demo", "inference", "What did Kim need?", "a bucket", ("a book", "a fork", "a shoe"),
             "Kim wanted to carry water from the well to the garden."),  # fmt: skip
    FactItem("shot-7", "demo", "fact", "Which month comes after December?", "January", ("November", "February", "June")),
    FactItem("shot-8", "demo", "fact", "What is 1 plus 1?", "2", ("3", "1", "4")),
)
"""Demonstrations for few-shot prompts, in the order they are used."""

SUBJECTS: tuple[str, ...] = (
    "capitals", "colours", "animal_sounds", "opposites", "arithmetic", "numbers",
    "calendar", "categories", "nature", "feelings", "next_event", "objects",
)  # fmt: skip
SUBJECT_KIND: dict[str, str] = {s: "inference" if s in ("feelings", "next_event", "objects") else "fact" for s in SUBJECTS}

@lru_cache(maxsize=1)
def _pools() -> dict[str, tuple[str, ...]]:
    """The pools that fill up items given fewer than three distractors (animal sounds draw sounds for
    a sound and animals, with their article, for an animal; calendar items draw days for a day and
    months for a month); :data:`POOLS`."""
    items = _items()
    return {
        "capitals": tuple(c for _, c, _ in items["capitals"]),
        "animal_sounds": tuple(s for _, s in items["sounds"]) + tuple(a for a, _ in items["sounds"]),
        "opposites": tuple(w for pair in items["opposites"] for w in pair[:2]),
        "calendar": _DAYS + _MONTHS,
    }


def __getattr__(name: str) -> Any:
    # POOLS is built from fact_bank.yml on first use (see _items)
    if name == "POOLS":
        return _pools()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _draw(pool: Sequence[str], exclude: set[str], k: int, key: str) -> list[str]:
    """``k`` distinct pool entries not in ``exclude``, in a fixed pseudo-random order for ``key``.

    Uses only ``Random.random()`` (its sequence is stable across Python versions).
    """
    rng = random.Random(f"elens-facts/{key}")
    left = [x for x in pool if x not in exclude]
    out = []
    for _ in range(k):
        j = min(int(rng.random() * len(left)), len(left) - 1)
        out.append(left.pop(j))
    return out


def _fill(given: Sequence[str], answer: str, pool: Sequence[str], key: str, forbidden: Sequence[str] = ()) -> tuple[str, str, str]:
    chosen = list(given)
    chosen += _draw(pool, {answer, *chosen, *forbidden}, 3 - len(chosen), key)
    return tuple(chosen)  # type: ignore[return-value]


def _a(noun: str) -> str:
    """``noun`` with its indefinite article."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _arithmetic() -> list[tuple[str, str, tuple[str, ...]]]:
    """32 sums, differences and products of small numbers (fixed, not drawn per seed).

    The operands come from a generator seeded once for the bank. Distractors: off by one, off by
    two, and the result of the wrong operation where it differs.
    """
    rng = random.Random("elens-facts/arithmetic")

    def num(lo: int, hi: int) -> int:
        return lo + min(int(rng.random() * (hi - lo + 1)), hi - lo)

    items: list[tuple[str, str, tuple[str, ...]]] = []
    seen: set[str] = set()
    i = 0
    while len(items) < 32:
        op = ("plus", "minus", "times", "plus")[i % 4]
        if op == "plus":
            a, b = (num(2, 9), num(2, 9)) if i % 8 < 4 else (num(11, 40), num(2, 9))
            value, wrong_op = a + b, a * b if i % 8 < 4 else a - b
        elif op == "minus":
            a = num(6, 20)
            b = num(2, a - 2)
            value, wrong_op = a - b, a + b
        else:
            a, b = num(2, 9), num(2, 9)
            value, wrong_op = a * b, a + b
        wrong = []
        for w in (wrong_op, value + 1, value - 1, value + 2, value - 2, value + 10):
            if w != value and w > 0 and w not in wrong:
                wrong.append(w)
        question = f"What is {a} {op} {b}?"
        if question not in seen:  # a repeat draws again, in the same slot of the op cycle
            seen.add(question)
            items.append((question, str(value), tuple(str(w) for w in wrong[:3])))
            i += 1
    return items


@lru_cache(maxsize=1)
def fact_bank() -> tuple[FactItem, ...]:
    """Every item of the bank, subject by subject in :data:`SUBJECTS` order, 32 per subject."""
    tables, pools = _items(), _pools()
    items: list[FactItem] = []

    def add(subject: str, question: str, answer: str, distractors: tuple[str, str, str], context: str = "") -> None:
        n = sum(1 for it in items if it.subject == subject)
        items.append(FactItem(f"{subject}-{n:02d}", subject, SUBJECT_KIND[subject], question, answer, distractors, context))

    for country, capital, given in tables["capitals"]:
        add("capitals", f"What is the capital of {country}?", capital,
            _fill(given, capital, pools["capitals"], f"capitals/{country}"))  # fmt: skip
    for thing, colour, given in tables["colours"]:
        add("colours", f"What colour is {thing}?", colour, tuple(given))  # type: ignore[arg-type]
    sound = dict(tables["sounds"])
    animal = {s: a for a, s in tables["sounds"]}
    for a in tables["sound_of"]:
        add("animal_sounds", f"What sound does {_a(a)} make?", sound[a],
            _fill((), sound[a], [s for _, s in tables["sounds"]], f"sound/{a}"))  # fmt: skip
    for s in tables["animal_of"]:
        right = _a(animal[s])
        add("animal_sounds", f'Which animal says "{s}"?', right,
            _fill((), right, [_a(x) for x, _ in tables["sounds"]], f"animal/{s}"))  # fmt: skip
    for word, opposite, given in tables["opposites"]:
        add("opposites", f'What is the opposite of "{word}"?', opposite,
            _fill(given, opposite, pools["opposites"], f"opposite/{word}", forbidden=(word,)))  # fmt: skip
    for question, answer, given in _arithmetic():
        add("arithmetic", question, answer, given)  # type: ignore[arg-type]
    for question, answer, given in tables["numbers"]:
        add("numbers", question, answer, given)  # type: ignore[arg-type]
    for i, day in enumerate(_DAYS):
        nxt, prev = _DAYS[(i + 1) % 7], _DAYS[i - 1]
        add("calendar", f"Which day comes after {day}?", nxt, _fill((prev,), nxt, _DAYS, f"day-after/{day}", forbidden=(day,)))
    for i, day in enumerate(_DAYS):
        nxt, prev = _DAYS[(i + 1) % 7], _DAYS[i - 1]
        add("calendar", f"Which day comes before {day}?", prev, _fill((nxt,), prev, _DAYS, f"day-before/{day}", forbidden=(day,)))
    for month in _MONTHS_AFTER:
        i = _MONTHS.index(month)
        nxt, prev = _MONTHS[(i + 1) % 12], _MONTHS[i - 1]
        add("calendar", f"Which month comes after {month}?", nxt,
            _fill((prev,), nxt, _MONTHS, f"month-after/{month}", forbidden=(month,)))  # fmt: skip
    for month in _MONTHS_BEFORE:
        i = _MONTHS.index(month)
        nxt, prev = _MONTHS[(i + 1) % 12], _MONTHS[i - 1]
        add("calendar", f"Which month comes before {month}?", prev,
            _fill((nxt,), prev, _MONTHS, f"month-before/{month}", forbidden=(month,)))  # fmt: skip
    names = list(tables["categories"])
    for j in range(2):
        for cat in names:
            label, members = tables["categories"][cat]
            right = members[j]
            # three members of three other categories, drawn for this item
            others = _draw([c for c in names if c != cat], set(), 3, f"category/{cat}/{j}")
            wrong = tuple(tables["categories"][o][1][(j + 2) % 4] for o in others)
            add("categories", f"Which of these is {label}?", right, wrong)  # type: ignore[arg-type]
    for question, answer, given in tables["nature"]:
        add("nature", question, answer, given)  # type: ignore[arg-type]
    for name, story, answer, given in tables["feelings"]:
        add("feelings", f"How did {name} most likely feel?", answer, tuple(given), story)  # type: ignore[arg-type]
    for story, question, answer, given in tables["next_events"]:
        add("next_event", question, answer, given, story)
    for story, question, answer, given in tables["objects"]:
        add("objects", question, answer, tuple(given), story)  # type: ignore[arg-type]
    return tuple(items)
