"""Differences between ``transformers`` 5.x releases that the step-by-step generation loops meet.

From 5.24 a causal LM's ``forward`` takes its KV cache as ``cache=`` and returns it as
``out.cache``; ``past_key_values`` still works there but warns that it goes in 5.40. Earlier 5.x
releases know only ``past_key_values``. The loops in :mod:`elens_utils.lens.generation` and
:mod:`elens_utils.bench.suite` go through these two functions, so they run warning-free on both.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

__all__ = ["cache_kwargs", "returned_cache"]


@lru_cache(maxsize=None)
def _cache_parameter(forward_type: type) -> str:
    params = inspect.signature(forward_type.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """``{"cache": cache}`` or ``{"past_key_values": cache}``: the KV-cache argument ``model`` takes."""
    return {_cache_parameter(type(model)): cache}


def returned_cache(out: Any) -> Any:
    """The KV cache a forward pass returned (``out.cache`` from 5.24, ``out.past_key_values`` before)."""
    cache = out.get("cache")
    return cache if cache is not None else out.get("past_key_values")
