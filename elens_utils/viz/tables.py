"""Tables on the book's pages: summary tables (fixed decimals, p-values, wrapped text), ranges of
numbers in prose, and the parameters table of a run."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.core.provenance import format_value


def _is_p_value_column(name: object) -> bool:
    text = str(name)
    return text == "p" or text.startswith(("p (", "p_", "p-"))


# Text columns whose longest value exceeds this many characters wrap in the book's tables.
_WRAP_CHARS = 28


def _holds_counts(values: pd.Series) -> bool:
    """Whole numbers, one of them at least 2 (so that AUCs and shares of exactly 0 or 1 are not
    taken for counts)."""
    v = values.dropna().to_numpy(float)
    return bool(v.size) and bool(np.all(np.isfinite(v))) and bool(np.all(v == np.round(v))) and float(v.max()) >= 2


def summary_table(table: pd.DataFrame, digits: int = 2):
    """A table styled for the page: fixed decimals, '–' for missing, and p-values (columns
    named ``p``, ``p (...)``, ``p_...``) in two significant digits, so that a small one reads
    ``2e-17`` and not ``0.00``. A named index becomes the first column(s); an unnamed one
    (0, 1, 2...) is hidden. Cells of text columns longer than ``_WRAP_CHARS`` characters get
    the class ``elens-text`` (the book's stylesheet lets them wrap). Float columns of whole
    numbers (counts that a missing value made floats) print without decimals, booleans as
    yes/no."""
    if any(name is not None for name in table.index.names):  # a named index is data: show it
        table = table.reset_index()
    p_cols = [c for c in table.columns if _is_p_value_column(c)]
    # per-column formats need one column per label
    dtypes = list(table.dtypes.items()) if table.columns.is_unique else []
    # columns of long text (notes, verdicts) wrap in the book; numbers do not
    text_cols = [
        c for c, dtype in dtypes
        if (dtype == object or pd.api.types.is_string_dtype(dtype)) and table[c].astype(str).str.len().max() > _WRAP_CHARS
    ]
    # counts stored as floats (a NaN made them so) read as counts; True/False as yes/no
    count_cols = [c for c, dtype in dtypes if c not in p_cols and pd.api.types.is_float_dtype(dtype) and _holds_counts(table[c])]
    # (a column of booleans with a missing value, e.g. the paper's row, holds objects)
    bool_cols = [c for c, dtype in dtypes if pd.api.types.is_bool_dtype(dtype) or (
        dtype == object and table[c].notna().any() and table[c].dropna().map(lambda v: isinstance(v, (bool, np.bool_))).all())]
    styled = (
        table.style.format(precision=digits, na_rep="–")
        .format("{:.2g}", subset=p_cols, na_rep="–")
        .format("{:.0f}", subset=count_cols, na_rep="–")
        .format(lambda v: "–" if v is None or (isinstance(v, float) and v != v) else "yes" if v else "no", subset=bool_cols)
        .hide(axis="index")
        .set_table_attributes('class="dataframe elens-summary"')
    )
    if text_cols and table.index.is_unique:  # pandas styles cells by label: only unique ones
        classes = pd.DataFrame("", index=table.index, columns=table.columns)
        classes[text_cols] = "elens-text"
        styled = styled.set_td_classes(classes)
    return styled


def fmt_range(values: Sequence[float] | pd.Series | np.ndarray, spec: str = ".2f") -> str:
    """``"0.46-0.49"``: the smallest and largest of ``values`` in the format ``spec``, or one
    number where both read the same (``"0.49"``, never ``"0.49-0.49"``). For the closing text
    of a chapter."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return "n/a"
    lo, hi = format(arr.min(), spec), format(arr.max(), spec)
    return lo if lo == hi else f"{lo}-{hi}"


# ---------------------------------------------------------------------------------------------
# parameters


class ParametersTable:
    """A small two-column table of the parameters a chapter ran with (HTML in notebooks)."""

    def __init__(self, params: Mapping[str, Any], title: str | None = None, note: str | None = None):
        self.params = dict(params)
        self.title = title
        self.note = note

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th scope='row'><code>{html.escape(str(k))}</code></th>"
            f"<td>{html.escape(format_value(v))}</td></tr>"
            for k, v in self.params.items()
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        note = f"<p class='elens-params-note'>{html.escape(self.note)}</p>" if self.note else ""
        return f"<table class='elens-params'>{caption}<tbody>{rows}</tbody></table>{note}"

    def __repr__(self) -> str:
        width = max((len(str(k)) for k in self.params), default=0)
        lines = [self.title] if self.title else []
        lines += [f"{k!s:<{width}}  {format_value(v)}" for k, v in self.params.items()]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def parameters_table(params: Mapping[str, Any], title: str | None = "Parameters of this run", note: str | None = None) -> ParametersTable:
    """A small table of ``params`` (name -> value); lists are shown comma-separated."""
    if not isinstance(params, Mapping):
        raise ElensError(f"parameters_table() takes a mapping of name -> value; got {type(params).__name__}.")
    return ParametersTable(params, title, note)
