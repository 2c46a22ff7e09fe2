"""Differences between ``transformers`` 5.x releases that the step-by-step generation loops meet.

From 5.24 a causal LM's ``forward`` takes its KV cache as ``cache=`` and returns it as
``out.cache``; ``past_key_values`` still works there but warns that it goes in 5.40. Earlier 5.x
releases know only ``past_key_values``. The step-by-step loops (:mod:`elens_utils.lens.generation`,
:mod:`elens_utils.analysis.cloze`, :mod:`elens_utils.bench.generators`, :mod:`elens_utils.bench.real`)
go through these functions (a step, mostly, through :func:`cached_forward`), so they run
warning-free on both.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

__all__ = ["cache_kwargs", "cached_forward", "returned_cache"]


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


def cached_forward(
    model: Any, input_ids: Any, attention_mask: Any, position_ids: Any, cache: Any, **kwargs: Any
) -> tuple[Any, Any]:
    """One KV-cached forward step of a causal LM: the forward pass and the cache it returns.

    Args:
        model: a causal LM (its ``forward`` takes ``cache=`` or ``past_key_values=``).
        input_ids: ``[B, S]`` token ids: the whole (left-padded) prompts on the first step, the
            ``[B, 1]`` new tokens after.
        attention_mask: ``[B, P + S]`` 1 for real tokens, 0 for padding, P the cached positions.
        position_ids: ``[B, S]`` positions of ``input_ids``.
        cache: the KV cache of the previous step (None on the first).
        **kwargs: further arguments of ``forward`` (``logits_to_keep=1``...).

    Returns:
        ``(out, cache)``: the model's output (``out.logits`` ``[B, S or kept, V]``) and the KV
        cache to pass to the next step.
    """
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        **cache_kwargs(model, cache),
        use_cache=True,
        **kwargs,
    )
    return out, returned_cache(out)
