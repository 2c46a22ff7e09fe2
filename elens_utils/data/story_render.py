"""The story world's two renderings: the zoo's word-level text, and natural English.

The text :class:`~elens_utils.data.story_world.StoryWorld` writes is the **zoo rendering**
(``style="zoo"``, the default everywhere): the form the project's zoo models were trained on and
read with their word-level tokenizer. Real pretrained models read English, so :func:`natural`
renders a zoo text as natural English, line by line:
sentence capitals (the first word of a line and the word after ``.``, ``!``, ``?`` or a
label's ``:``), capitalised names and ``I``, punctuation attached to the word before it
(``once upon a time , tom had a red ball .`` becomes ``Once upon a time, Tom had a red ball.``).
The ``\\n`` line breaks stay where they are, so the lines ``story : ...``, ``question : ...``,
``A : tom`` and ``answer :`` of a question become ``Story: ...``, ``Question: ...``, ``A: Tom``
and ``Answer:``, which ends like an MMLU prompt. Option text keeps its case (``A: ball``). The
world has no quotes or contractions, so nothing else changes: the words are the same, in the
same order, modulo case and spacing. :func:`render` applies it to an item (a :class:`Story`,
:class:`TaskPrompt`, :class:`FormatPrompt`, :class:`FormatText`, :class:`MCQuestion` or
:class:`Document`), and the list methods of :class:`~elens_utils.data.story_world.StoryWorld` take ``style="natural"``. Only
the text a model reads changes: ids, labels, splits, kinds, topics, answer letters and indices,
and the task answers (counts, names, objects, final sentences) are those of the zoo rendering,
so the two renderings of one set line up row by row.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from elens_utils.core.errors import ElensError
from elens_utils.data.story_items import (
    Document,
    FormatPrompt,
    FormatText,
    MCQuestion,
    Story,
    TaskPrompt,
)
from elens_utils.data.story_lexicon import LETTERS, NAMES, NEWLINE, PUNCTUATION, STYLES

_SENTENCE_ENDS = frozenset({".", "!", "?"})
_NAME_SET = frozenset(NAMES)


def natural(text: str, *, capitalise_first: bool = True) -> str:
    """The natural-English rendering of a zoo-form ``text`` (see the module doc).

    Line by line (``\\n`` characters are kept as they are): a punctuation token is attached to
    the word before it (at the start of a line, to the word after it, so that every
    whitespace-separated word still holds exactly one word of the world); names and ``i`` are
    capitalised, and so is the first word of a line (unless ``capitalise_first=False``, for a
    fragment such as an option) and every word after ``.``, ``!``, ``?`` or ``:``, except the
    option text of an option line (``A : ball`` -> ``A: ball``). Deterministic and idempotent
    (``natural(natural(t)) == natural(t)``); the words are those of ``text`` in the same order,
    modulo case and spacing.
    """
    if not isinstance(text, str):
        raise ElensError(f"natural() renders a string of the story world, got {type(text).__name__}.")
    return NEWLINE.join(_natural_line(line, capitalise_first) for line in text.split(NEWLINE))


def _natural_line(line: str, capitalise_first: bool) -> str:
    tokens = line.split()
    option_line = len(tokens) >= 2 and tokens[0] in LETTERS and tokens[1] == ":"
    out: list[str] = []
    pending = ""  # punctuation at the start of a line (scrambled stories), waiting for a word
    start = capitalise_first
    for tok in tokens:
        if tok in PUNCTUATION:
            if out:
                out[-1] += tok
            else:
                pending += tok
            opens = tok in _SENTENCE_ENDS or (tok == ":" and not option_line)
            start = opens or (start and not out)
            continue
        if start or tok in _NAME_SET or tok == "i":
            tok = tok[:1].upper() + tok[1:]
        out.append(pending + tok)
        pending = ""
        start = False
    if pending:
        out.append(pending)
    return " ".join(out)


_Item = TypeVar("_Item", Story, TaskPrompt, FormatPrompt, FormatText, MCQuestion, Document)


def check_style(style: str) -> None:
    """Raise an :class:`~elens_utils.core.errors.ElensError` unless ``style`` is one of :data:`STYLES`."""
    if style not in STYLES:
        raise ElensError(
            f"Unknown style {style!r}: use 'zoo' (the zoo models' lower-case word-level text) or "
            "'natural' (natural English, for other models)."
        )


def render(item: _Item, style: str = "natural") -> _Item:
    """``item`` in rendering ``style``: the item itself for ``"zoo"``, a copy for ``"natural"``.

    Rendered (:func:`natural`): a story's sentences and text; a task prompt's instruction, story,
    prompt and text; a format prompt's prompt; a format text's prompt, body and text; a
    question's question, prompt and text, and its options and answer word as fragments (so
    ``options[answer_index] == answer`` still holds); a document's text. Everything else
    (ids, splits, kinds, topics, facts, letters, indices and a task prompt's ``answer``) is
    kept. Give items in the zoo rendering, as :class:`~elens_utils.data.story_world.StoryWorld` makes them.
    """
    check_style(style)
    if style == "zoo":
        return item
    replace = dataclasses.replace
    if isinstance(item, Story):
        return replace(item, sentences=tuple(natural(x) for x in item.sentences), text=natural(item.text))
    if isinstance(item, TaskPrompt):
        return replace(
            item,
            instruction=natural(item.instruction),
            story=natural(item.story),
            prompt=natural(item.prompt),
            text=None if item.text is None else natural(item.text),
        )
    if isinstance(item, FormatPrompt):
        return replace(item, prompt=natural(item.prompt))
    if isinstance(item, FormatText):
        return replace(item, prompt=natural(item.prompt), body=natural(item.body), text=natural(item.text))
    if isinstance(item, MCQuestion):
        return replace(
            item,
            question=natural(item.question),
            options=tuple(natural(o, capitalise_first=False) for o in item.options),
            answer=natural(item.answer, capitalise_first=False),
            prompt=natural(item.prompt),
            text=natural(item.text),
        )
    if isinstance(item, Document):
        return replace(item, text=natural(item.text))
    raise ElensError(
        f"render() takes an item of the story world (Story, TaskPrompt, FormatPrompt, FormatText, "
        f"MCQuestion or Document), got {type(item).__name__}; use natural() for a string."
    )
