"""The story world's closed lexicon: its word lists, the names of its splits, tasks, variants,
reversals, formats and letters, its special tokens, and how its text splits into words."""

from __future__ import annotations

import re
from collections.abc import Iterable

NAMES: tuple[str, ...] = (
    "tom", "anna", "ben", "lily", "sam", "mia", "max", "zoe", "leo", "ella", "jack", "rosa",
    "finn", "ivy", "noah", "kate", "luke", "nina", "omar", "ruby", "paul", "sara", "tim", "uma",
)  # fmt: skip
OBJECTS: tuple[str, ...] = (
    "ball", "kite", "book", "hat", "cup", "box", "car", "doll", "drum", "boat",
    "key", "apple", "shoe", "bell", "lamp", "sock", "train", "bag", "map", "coin",
)  # fmt: skip
COLOURS: tuple[str, ...] = (
    "red", "blue", "green", "yellow", "white", "black", "pink", "brown", "orange", "purple",
)  # fmt: skip
PLACES: tuple[str, ...] = (
    "garden", "park", "kitchen", "school", "forest", "beach", "river", "house", "shop", "farm",
    "hill", "lake",
)  # fmt: skip
ANIMALS: tuple[str, ...] = ("cat", "dog", "bird", "fish", "frog", "duck", "cow", "horse")

SPLITS: tuple[str, ...] = ("train", "validation", "test")
TASK_FAMILIES: tuple[str, ...] = ("continuation", "counting", "semantic")
VARIANTS: tuple[str, ...] = ("base", "reversed", "scrambled", "reversed_scrambled")
REVERSALS: tuple[str, ...] = ("sentences", "instruction_first")
FORMATS: tuple[str, ...] = ("chat", "poem", "science")
LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
NEWLINE = "\n"
PUNCTUATION: frozenset[str] = frozenset({".", ",", "!", "?", ":"})
#: The renderings of the world's text: the zoo's word-level form, and natural English.
STYLES: tuple[str, ...] = ("zoo", "natural")
_WORD = re.compile(r"\n|[^\s]+")


def words(text: str) -> list[str]:
    """The tokenizer's pre-tokenization in Python: whitespace-separated words and ``\\n`` tokens."""
    return _WORD.findall(text)


def join_words(tokens: Iterable[str]) -> str:
    """Canonical text of a token sequence: single spaces, no spaces around ``\\n``.

    This is exactly what the tokenizer of :func:`~elens_utils.data.story_tokenizer.build_tokenizer` decodes to, so
    ``decode(encode(join_words(t)))`` round-trips.
    """
    out: list[str] = []
    prev: str | None = None
    for tok in tokens:
        if tok != NEWLINE and prev is not None and prev != NEWLINE:
            out.append(" ")
        out.append(tok)
        prev = tok
    return "".join(out)
