"""The groups of the chapters' comparison tables: real pretrained models, the project's zoo, and
the random stand-ins (:func:`model_group`), in the order every table shows them."""

from __future__ import annotations

import pandas as pd

GROUP_ORDER = ("real", "zoo", "other")


def sort_by_group(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its rows in the order of :data:`GROUP_ORDER` by its ``group`` column,
    stable within a group, index reset."""
    order = table["group"].map({g: i for i, g in enumerate(GROUP_ORDER)})
    return table.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def model_group(name: str) -> str:
    """``"real"`` for real pretrained models (``real/...``, ``.gguf`` files, Hub ids and other
    directories), ``"zoo"`` for the project's zoo (``zoo/...``); ``"other"`` for the random
    stand-ins (``tiny/...``, ``untrained/...``)."""
    if name.startswith("zoo/"):
        return "zoo"
    if name.startswith(("tiny/", "untrained/")):
        return "other"
    return "real"
