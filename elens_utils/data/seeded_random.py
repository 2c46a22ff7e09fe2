"""Portable randomness: string seeds (SHA-512) and only ``Random.random()``, which Python keeps
stable; SHA-256 hashes for the held-out splits. The story world draws every choice from here, so
the same seed gives byte-identical output on any machine and Python version."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from elens_utils.data.story_lexicon import SPLITS

_SPLIT_FRACTIONS = (0.90, 0.05, 0.05)


class PortableRandom:
    """A thin wrapper over :class:`random.Random` that draws only through ``random()``.

    Seeded with the string of the key parts joined by ``/`` (SHA-512 based seeding), so the
    same key gives the same draws on any machine and Python version."""

    __slots__ = ("_r",)

    def __init__(self, *key: object) -> None:
        self._r = random.Random("/".join(str(k) for k in key))

    def below(self, n: int) -> int:
        return min(int(self._r.random() * n), n - 1)

    def uniform_int(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]`` (inclusive)."""
        return lo + self.below(hi - lo + 1)

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[self.below(len(seq))]

    def chance(self, p: float) -> bool:
        return self._r.random() < p

    def shuffle(self, items: list[Any]) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def sample(self, seq: Sequence[Any], k: int) -> list[Any]:
        """``k`` distinct items in random order (a partial Fisher-Yates shuffle)."""
        pool = list(seq)
        n = len(pool)
        for i in range(k):
            j = i + self.below(n - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]

    def weighted(self, weights: Sequence[float]) -> int:
        x = self._r.random() * sum(weights)
        acc = 0.0
        for i, w in enumerate(weights):
            acc += w
            if x < acc:
                return i
        return len(weights) - 1


def unit_hash(*key: object) -> float:
    """A number in ``[0, 1)`` from the SHA-256 of the key parts joined by ``/``."""
    digest = hashlib.sha256("/".join(str(k) for k in key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of_hash(u: float) -> str:
    """The split of a unit hash ``u`` (:func:`unit_hash`): train 90 %, validation 5 %, test 5 %."""
    acc = 0.0
    for name, frac in zip(SPLITS, _SPLIT_FRACTIONS):
        acc += frac
        if u < acc:
            return name
    return SPLITS[-1]
