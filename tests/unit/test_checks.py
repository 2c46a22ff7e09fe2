"""Tests of elens_utils.core.checks: argument checks and the schema checks the cards' validators use."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elens_utils.core.checks import fraction_problems, positive_int, schema_problems
from elens_utils.core.errors import ElensError


def test_positive_int():
    assert positive_int(np.int64(3), "n") == 3 and type(positive_int(np.int64(3), "n")) is int
    assert positive_int(0, "n", minimum=0) == 0
    for bad in (True, 2.0, "3", None):
        with pytest.raises(ElensError, match="n must be an integer >= 1"):
            positive_int(bad, "n")
    with pytest.raises(ElensError, match="got 0"):
        positive_int(0, "n")


def test_schema_problems_names_each_missing_or_mistyped_field_in_order():
    fields = {"name": str, "n": int, "x": (int, float), "flag": bool, "tags": list}
    good = {"name": "a", "n": 3, "x": 0.5, "flag": False, "tags": [], "extra": object()}
    assert schema_problems(good, fields, "model 0") == []
    assert schema_problems({**good, "x": 2}, fields, "model 0") == []
    bad = {"n": True, "x": "1", "flag": 1, "tags": ()}
    assert schema_problems(bad, fields, "model 2") == [
        "model 2 lacks 'name'",
        "model 2 'n' has type bool",  # a bool is not a count
        "model 2 'x' has type str",
        "model 2 'flag' has type int",
        "model 2 'tags' has type tuple",
    ]
    assert schema_problems({"n": np.bool_(True)}, {"n": (int, np.integer)}, "m") == ["m 'n' has type bool"]


def test_fraction_problems():
    rec = {"a": 0.0, "b": 1.0, "c": 1.5, "d": -0.01, "e": math.nan, "f": "0.5", "g": True, "h": 1}
    keys = ("a", "b", "c", "d", "e", "f", "g", "h", "missing")
    assert fraction_problems(rec, keys, "model 1") == [
        "model 1 'c' = 1.5 outside [0, 1]",
        "model 1 'd' = -0.01 outside [0, 1]",
        "model 1 'e' = nan outside [0, 1]",
    ]
    assert fraction_problems(rec, keys, "model 1", allow_nan=True) == [
        "model 1 'c' = 1.5 outside [0, 1]",
        "model 1 'd' = -0.01 outside [0, 1]",
    ]
