"""Checks that every layer uses: of arguments (a wrong value raises :class:`ElensError` saying
what was given and what to give instead), and of records read from files (the problems listed
in words, for the file's validator to report together)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from elens_utils.core.errors import ElensError


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) ``>= minimum``; otherwise an
    :class:`ElensError` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ElensError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if int(value) < minimum:
        raise ElensError(f"{name} must be an integer >= {minimum}; got {value}.")
    return int(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def schema_problems(record: Mapping[str, Any], fields: Mapping[str, type | tuple[type, ...]], where: str) -> list[str]:
    """What in ``record`` does not follow ``fields``, in words, for a file's validator to report.

    Args:
        record: one JSON object (e.g. a card, or one model's entry in it).
        fields: field name -> the type (or types) its value must have; a bool passes only where
            ``bool`` is among them (Python counts it as an ``int``).
        where: the record's name in the messages, e.g. ``"model 3"``.

    Returns:
        One message per missing field (``"model 3 lacks 'loss'"``) and per field of another type
        (``"model 3 'loss' has type str"``), in the order of ``fields``; empty when all is well.
    """
    problems = []
    for key, typ in fields.items():
        if key not in record:
            problems.append(f"{where} lacks '{key}'")
        elif not isinstance(record[key], typ) or (isinstance(record[key], bool) and bool not in _types(typ)):
            problems.append(f"{where} '{key}' has type {type(record[key]).__name__}")
    return problems


def _types(typ: type | tuple[type, ...]) -> tuple[type, ...]:
    return typ if isinstance(typ, tuple) else (typ,)


def fraction_problems(record: Mapping[str, Any], keys: Iterable[str], where: str, *, allow_nan: bool = False) -> list[str]:
    """The fields of ``record`` among ``keys`` that are numbers outside [0, 1], in words.

    Args:
        record: one JSON object.
        keys: the fields that hold fractions (shares, accuracies); absent or non-numeric ones are
            left to :func:`schema_problems`.
        where: the record's name in the messages, e.g. ``"model 3"``.
        allow_nan: whether NaN (a fraction that was not measured) passes.

    Returns:
        One message per fraction out of range (``"model 3 'mc_accuracy' = 1.5 outside [0, 1]"``).
    """
    problems = []
    for key in keys:
        v = record.get(key)
        if _is_number(v) and not (0.0 <= v <= 1.0 or (allow_nan and math.isnan(v))):
            problems.append(f"{where} '{key}' = {v} outside [0, 1]")
    return problems


def card_problems(
    card: Mapping[str, Any],
    top: Mapping[str, type | tuple[type, ...]],
    model_fields: Mapping[str, type | tuple[type, ...]],
    fractions: Iterable[str],
    *,
    allow_nan: bool = False,
    model_check: Callable[[Mapping[str, Any], str], list[str]] | None = None,
) -> list[str]:
    """What in a model card (``card.json``: its top level and a list ``"models"`` of entries)
    does not follow its schema, in words, for the card's validator to report.

    Args:
        card: the card's JSON object.
        top: the top level's fields and their types, as :func:`schema_problems` takes them.
        model_fields: the fields of every entry of ``card["models"]`` and their types.
        fractions: the fields of an entry that hold fractions (see :func:`fraction_problems`).
        allow_nan: whether a NaN fraction passes.
        model_check: further problems of one entry, given the entry and its name in the
            messages (``"model 3"``); ``None`` for none.

    Returns:
        The top level's problems (``"the card lacks 'models'"``), then those of each entry in
        turn: its schema, its fractions, ``model_check``; empty when all is well.
    """
    fractions = tuple(fractions)
    problems = schema_problems(card, top, "the card")
    for i, model in enumerate(card.get("models") or []):
        where = f"model {i}"
        problems += schema_problems(model, model_fields, where)
        problems += fraction_problems(model, fractions, where, allow_nan=allow_nan)
        if model_check is not None:
            problems += model_check(model, where)
    return problems
