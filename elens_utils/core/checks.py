"""Checks of arguments that every layer uses: a wrong value raises :class:`ElensError` saying what
was given and what to give instead."""

from __future__ import annotations

import numbers
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
