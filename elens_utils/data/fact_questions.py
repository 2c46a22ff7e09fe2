"""The project's own four-option questions: facts and story inferences a small real model may know.

Chapters 5 and 6 need multiple-choice questions that a real model of 135-270 M parameters
answers above chance and below ceiling, so that skipping blocks has room to move the accuracy
and right and wrong answers both occur. The story world's questions are at ceiling for real
models under cloze scoring (the answer is copied from the story) and MMLU needs the Hub and is
at chance for them. This module builds 384 questions from :mod:`elens_utils.data.fact_bank`
(written for this project, MIT): twelve subjects of 32, eight of common-sense and world facts,
four of inference over a two-line story whose answer word is not in the story.

:func:`fact_questions` returns them as a frame with the columns of
:func:`elens_utils.data.prompts.multiple_choice` (``data.multiple_choice(source="facts")`` calls it),
plus ``cloze_prompt`` (the question without its options, for
:func:`elens_utils.analysis.cloze.answer_cloze`), ``kind`` and ``context``.

Order and answer letters
------------------------
The seed decides the order of the items within each subject and nothing else (the items, their
options and distractors are fixed). Rows go round-robin over the subjects, in the order of
:data:`~elens_utils.data.fact_bank.SUBJECTS`: row ``12 r + s`` is the ``r``-th item of subject ``s``.
Its correct option goes under letter ``(r + s + seed) mod 4``, and the three distractors fill
the other letters in an order drawn per item and seed. So every subject has each letter exactly
8 times, and every prefix of the full set (``n`` questions) has each letter ``n / 4`` times, up
to one; a question keeps its letter whatever ``n`` or ``subjects`` is asked for.

Prompts
-------
``prompt`` (letter scoring, :func:`~elens_utils.analysis.interventions.answer_multiple_choice`)::

    Answer each question with the letter of the correct option.

    Question: What is the capital of Hungary?
    A. Lisbon
    B. Seoul
    C. Budapest
    D. Bern
    Answer:

``cloze_prompt`` (cloze scoring: each option's text, after a space, is scored as the
continuation)::

    Question: What is the capital of Hungary?
    Answer:

An inference item has a ``Story: ...`` line before its question::

    Story: Tom opened a big box on his birthday and found the bicycle he had wanted all year.
    Question: How did Tom most likely feel?
    Answer:

With ``shots=k`` both prompts begin with the first ``k`` demonstrations of
:data:`~elens_utils.data.fact_bank.SHOTS` (items that are not among the questions), answered,
separated by blank lines; the letter prompts' demonstration answers are spread over A-D.

Measured (``real/SCORING.md``, all 384 questions): letter scoring is at chance for
SmolLM2-135M-Instruct and Gemma-3-270M with 0 or 3 demonstrations (24.7-25.3 %: each model
names nearly always the same letter); cloze scoring (summed, 0 shots) gives 62.2 % and 71.9 %.
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.data.fact_bank import LICENCE, SHOTS, SUBJECTS, FactItem, fact_bank

__all__ = [
    "FACT_COLUMNS",
    "LETTER_HEADER",
    "LICENCE",
    "SHOT_LETTERS",
    "SUBJECTS",
    "accuracy_by_subject",
    "cloze_prompt",
    "fact_questions",
    "letter_prompt",
    "wilson_interval",
]

LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
#: The first line of every letter prompt.
LETTER_HEADER = "Answer each question with the letter of the correct option."
#: The correct letter of each demonstration, in the order of ``fact_bank.SHOTS``.
SHOT_LETTERS: tuple[str, ...] = ("B", "D", "A", "C", "C", "A", "D", "B")
#: Columns of :func:`fact_questions`, in order (``source`` last).
FACT_COLUMNS: list[str] = [
    "prompt", "answer", "answer_index", "answer_text", "options", "subject", "question", "id",
    "kind", "context", "cloze_prompt", "source",
]  # fmt: skip


def _stem(item: FactItem) -> str:
    return (f"Story: {item.context}\n" if item.context else "") + f"Question: {item.question}\n"


def letter_prompt(item: FactItem, options: Sequence[str], shots: int = 0) -> str:
    """The letter-scoring prompt of ``item`` with ``options`` under A-D, ending ``"Answer:"``."""
    parts = [LETTER_HEADER + "\n\n"]
    for shot, letter in zip(SHOTS[:shots], SHOT_LETTERS):
        parts.append(_letter_block(shot, _shot_options(shot, letter)) + f" {letter}\n\n")
    parts.append(_letter_block(item, options))
    return "".join(parts)


def _letter_block(item: FactItem, options: Sequence[str]) -> str:
    lines = "".join(f"{c}. {o}\n" for c, o in zip(LETTERS, options))
    return f"{_stem(item)}{lines}Answer:"


def _shot_options(shot: FactItem, letter: str) -> list[str]:
    opts = list(shot.distractors)
    opts.insert(LETTERS.index(letter), shot.answer)
    return opts


def cloze_prompt(item: FactItem, shots: int = 0) -> str:
    """The cloze prompt of ``item`` (no options), ending ``"Answer:"``."""
    parts = [f"{_stem(shot)}Answer: {shot.answer}\n\n" for shot in SHOTS[:shots]]
    parts.append(f"{_stem(item)}Answer:")
    return "".join(parts)


def _placed(item: FactItem, letter_index: int, seed: int) -> list[str]:
    """The options of ``item`` with the answer at ``letter_index`` and the distractors shuffled."""
    rng = random.Random(f"elens-facts-order/{seed}/{item.id}")
    wrong = list(item.distractors)
    for i in range(len(wrong) - 1, 0, -1):  # Fisher-Yates on Random.random() only (stable)
        j = min(int(rng.random() * (i + 1)), i)
        wrong[i], wrong[j] = wrong[j], wrong[i]
    wrong.insert(letter_index, item.answer)
    return wrong


def _ordered(seed: int) -> list[tuple[FactItem, int]]:
    """Every item with its answer's letter index, in the round-robin order (module doc)."""
    by_subject = {s: [it for it in fact_bank() if it.subject == s] for s in SUBJECTS}
    shuffled = {}
    for s, items in by_subject.items():
        rng = random.Random(f"elens-facts-subject/{seed}/{s}")
        items = list(items)
        for i in range(len(items) - 1, 0, -1):
            j = min(int(rng.random() * (i + 1)), i)
            items[i], items[j] = items[j], items[i]
        shuffled[s] = items
    rounds = max(len(v) for v in shuffled.values())
    out = []
    for r in range(rounds):
        for s_index, s in enumerate(SUBJECTS):
            if r < len(shuffled[s]):
                out.append((shuffled[s][r], (r + s_index + seed) % len(LETTERS)))
    return out


def _check_int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ElensError(f"{what} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def fact_questions(
    n: int | None = None,
    *,
    seed: int = 0,
    subjects: Sequence[str] | str | None = None,
    shots: int = 0,
) -> pd.DataFrame:
    """The project's own multiple-choice questions (see the module doc).

    Args:
        n: the first ``n`` questions of the ordered set (None: all that match ``subjects``;
            384 for all subjects).
        seed: orders the items within each subject and places the answers (module doc); the
            items themselves do not depend on it.
        subjects: some of :data:`~elens_utils.data.fact_bank.SUBJECTS` (None: all).
        shots: demonstrations before each question, 0..8 (both prompt columns).

    Returns:
        One row per question, with the columns ``prompt`` (letter scoring, ends with
        ``"Answer:"``), ``answer`` (the letter), ``answer_index``, ``answer_text``, ``options`` (four strings, in letter
        order), ``subject``, ``question``, ``id`` (``"capitals-03"``: stable per item), ``kind``
        (fact / inference), ``context`` (the story, or ``""``), ``cloze_prompt`` (ends with
        ``"Answer:"``; each option is scored as ``" " + option``) and ``source``
        (``"facts"``). ``attrs``: ``source``, ``dataset``, ``licence``, ``prompt_style``
        (``"natural"``), ``shots`` and ``seed``.

    Raises:
        ElensError: for an unknown subject, ``n`` larger than the matching questions, or a bad
            ``seed`` / ``shots``.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise ElensError(f"The seed must be an integer; got {seed!r}.")
    shots = _check_int(shots, "shots", 0)
    if shots > len(SHOTS):
        raise ElensError(f"There are {len(SHOTS)} demonstrations; asked for shots={shots}.")
    if subjects is not None:
        subjects = [subjects] if isinstance(subjects, str) else list(subjects)
        unknown = [s for s in subjects if s not in SUBJECTS]
        if unknown or not subjects:
            raise ElensError(
                f"Unknown or no subjects {unknown or subjects!r}: use some of {', '.join(SUBJECTS)}, or None for all."
            )
    chosen = [(it, k) for it, k in _ordered(int(seed)) if subjects is None or it.subject in subjects]
    if n is not None:
        n = _check_int(n, "n", 1)
        if n > len(chosen):
            raise ElensError(f"Only {len(chosen)} questions match; asked for n={n}.")
        chosen = chosen[:n]
    rows = []
    for item, k in chosen:
        options = _placed(item, k, int(seed))
        rows.append(
            {
                "prompt": letter_prompt(item, options, shots), "answer": LETTERS[k], "answer_index": k,
                "answer_text": item.answer, "options": options, "subject": item.subject,
                "question": item.question, "id": item.id, "kind": item.kind, "context": item.context,
                "cloze_prompt": cloze_prompt(item, shots), "source": "facts",
            }  # fmt: skip
        )
    frame = pd.DataFrame(rows, columns=FACT_COLUMNS)
    frame.attrs.update(
        source="facts",
        dataset=f"elens_utils.data.fact_bank ({len(fact_bank())} items written for this project)",
        licence=LICENCE,
        prompt_style="natural",
        shots=shots,
        seed=int(seed),
    )
    return frame


# --------------------------------------------------------------------------------------------
# accuracy with intervals


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``k / n``: ``(low, high)``, both in [0, 1].

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 and n.
    """
    k, n = int(k), int(n)
    if n < 1 or not 0 <= k <= n:
        raise ElensError(f"A Wilson interval needs 0 <= k <= n and n >= 1; got k={k}, n={n}.")
    if not 0 < confidence < 1:
        raise ElensError(f"confidence must lie in (0, 1); got {confidence!r}.")
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the ends (no rounding residue)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def accuracy_by_subject(correct: Sequence[bool] | pd.Series, subjects: Sequence[str] | pd.Series) -> pd.DataFrame:
    """Accuracy per subject and over all, with 95 % Wilson intervals.

    Args:
        correct: one bool per question.
        subjects: the question's subject, aligned with ``correct``.

    Returns:
        One row per subject (in order of first appearance), then one for ``"all"``, with the
        columns ``subject``, ``n``, ``n_correct``, ``accuracy``, ``low``, ``high``.
    """
    correct = [bool(c) for c in correct]
    subjects = [str(s) for s in subjects]
    if len(correct) != len(subjects) or not correct:
        raise ElensError(f"Give one subject per answer; got {len(correct)} answers and {len(subjects)} subjects.")
    rows = []
    for s in [*dict.fromkeys(subjects), "all"]:
        these = [c for c, t in zip(correct, subjects) if s in ("all", t)]
        k = sum(these)
        low, high = wilson_interval(k, len(these))
        rows.append({"subject": s, "n": len(these), "n_correct": k, "accuracy": k / len(these), "low": low, "high": high})
    return pd.DataFrame(rows)

