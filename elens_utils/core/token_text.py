"""Tokens as short visible strings, for tables and chart axes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["show_token", "token_texts"]


def show_token(text: str) -> str:
    """A token's text made visible: spaces as '␣', newlines as '⏎', tabs as '⇥', empty as '∅'."""
    if text == "":
        return "∅"
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥")


def token_texts(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each id decoded on its own and made visible (:func:`show_token`).

    Raw vocabulary strings (``ĠParis``, ``▁the``, ``Ċ``) are the tokenizer's internal spelling;
    decoding gives the text a reader sees (``␣Paris``, ``␣the``, ``⏎``). Ids past the tokenizer's
    vocabulary (padded unembedding rows, as in Qwen3) show as ``<row i>``.
    """
    out = []
    n_tok = len(tokenizer) if hasattr(tokenizer, "__len__") else None
    for i in ids:
        i = int(i)
        if n_tok is not None and i >= n_tok:
            out.append(f"<row {i}>")
            continue
        try:
            out.append(show_token(tokenizer.decode([i])))
        except Exception:  # noqa: BLE001 - any tokenizer failure just shows the id
            out.append(f"<id {i}>")
    return out
