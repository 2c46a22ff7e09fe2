"""Profiles of several models, one model in memory at a time, through the profile cache.

Every chapter of the book runs the same prompts through a list of models. :func:`profile_models`
does that loop once for all of them: each model is loaded only when some of its profiles are not
yet on disk (:class:`~elens_utils.sweeps.cache.ProfileCache`), profiled, and released before the next one
is loaded, so the peak memory is that of the largest model, and an interrupted run resumes where
it stopped. With ``ELENS_PROFILE_PROCESSES=K`` (a parameter set's ``processes``) the missing
profiles of each model are computed by K ``torchrun`` workers (:mod:`elens_utils.sweeps.dist_sweep`).
:func:`blank_prompt` gives the paper's BOS-only prompt of a model without loading its weights.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles
from elens_utils.models.registry import resolve_model
from elens_utils.sweeps.cache import ProfileCache
from elens_utils.sweeps.dist_sweep import profile_processes, run_processes

__all__ = ["blank_prompt", "profile_models", "profile_seeds"]

Prompts = Sequence["str | Sequence[int]"]


def blank_prompt(model: str | os.PathLike[str], *, trust_remote_code: bool = False, revision: str | None = None) -> list[int]:
    """The paper's blank prompt of ``model``: ``[bos_token_id]``, or ``[eos_token_id]`` without BOS.

    Only the tokenizer is loaded. The prompt is returned as token ids, so no tokenizer can add
    a second BOS in front of it. (GPT-2 has no separate BOS: its ``<|endoftext|>`` is both.)

    Raises:
        ElensError: the tokenizer has neither a BOS nor an EOS token.
    """
    from transformers import AutoTokenizer

    name = os.fspath(model)
    try:
        tok = AutoTokenizer.from_pretrained(resolve_model(name), trust_remote_code=trust_remote_code, revision=revision)
    except (OSError, ValueError) as err:
        raise ElensError(f"No tokenizer found for '{name}': {str(err).splitlines()[0]}") from err
    token = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if token is None:
        raise ElensError(f"The tokenizer of '{name}' has neither a BOS nor an EOS token: give the prompt as token ids.")
    return [int(token)]


def release_memory() -> None:
    """Free what the last model left behind (garbage collection, the CUDA cache) before the next loads."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def profile_models(
    models: Sequence[str | os.PathLike[str]],
    prompts: Prompts | Callable[[str], Prompts],
    labels: Sequence[str | None] | None = None,
    *,
    cache: ProfileCache | str | os.PathLike[str] | None = None,
    **settings: Any,
) -> list[Profiles]:
    """The profiles of the same prompts under each model, in the order of ``models``.

    Args:
        models: Hub ids, ``save_pretrained`` directories or embedded names (``zoo/llama-8L``).
        prompts: N prompts (strings or token-id lists), or a function ``model name -> prompts``
            for prompts that depend on the model (``lambda m: [blank_prompt(m)] * 64``).
        labels: N labels recorded in the profiles' metadata (task, format, ...).
        cache: a :class:`ProfileCache` or its root directory (default: the user cache,
            ``$ELENS_CACHE/profiles``).
        **settings: passed to :meth:`ProfileCache.profiles`: ``device``, ``dtype``,
            ``max_new_tokens``, ``do_sample``, ``temperature``, ``seed``, ``alphas``,
            ``batch_size``, ``progress``, ``trust_remote_code``...

    Returns:
        One :class:`Profiles` per model, ``entropy [N, T, L_model, A]`` in nats, with the model's
        name in ``meta.model``. Models of different depth are not aligned here: see
        :meth:`Profiles.resample_depth` and :func:`~elens_utils.analysis.classify.profile_features`.

    Raises:
        ElensError: an empty or repeated model list, or whatever loading or generation raises.
    """
    if isinstance(models, (str, bytes, os.PathLike)):
        raise ElensError("Pass a list of models, not a single name: profile_models(['gpt2'], ...).")
    names = [os.fspath(m) for m in models]
    if not names:
        raise ElensError("No models given: pass a non-empty list of model names.")
    repeated = sorted({m for m in names if names.count(m) > 1})
    if repeated:
        raise ElensError(f"Models listed more than once: {repeated}. List each model once.")
    if not isinstance(cache, ProfileCache):
        cache = ProfileCache(cache)
    processes = profile_processes()
    out = []
    for name in names:
        these = prompts(name) if callable(prompts) else prompts
        if processes > 1 and cache.missing_shards(name, these, labels, **settings):
            # data-parallel over torchrun workers into the same cache (elens_utils.sweeps.dist_sweep)
            run_processes(
                name, these, labels, cache=cache.root, shard_size=cache.shard_size, processes=processes,
                settings=settings,
            )  # fmt: skip
        out.append(cache.profiles(name, these, labels, **settings))
        release_memory()  # the model loaded inside cache.profiles is unreferenced now
    return out


def profile_seeds(
    models: Sequence[str | os.PathLike[str]],
    prompts: Prompts | Callable[[str], Prompts],
    seeds: Sequence[int],
    labels: Sequence[str | None] | None = None,
    *,
    cache: ProfileCache | str | os.PathLike[str] | None = None,
    **settings: Any,
) -> dict[int, list[Profiles]]:
    """:func:`profile_models` once per sampling seed: ``{seed: [one Profiles per model]}``.

    For the robustness of a result to the generation seed. Each seed is its own cache entry,
    so a seed computed before (the chapter's own) is a cache hit. ``settings`` as for
    :func:`profile_models`, without ``seed``.

    Raises:
        ElensError: for an empty or repeated seed list, a ``seed`` among ``settings``, and as
            :func:`profile_models`.
    """
    if "seed" in settings:
        raise ElensError("profile_seeds takes the seeds as its `seeds` list: drop the seed= argument.")
    if isinstance(seeds, (int, str)) or not len(seeds):
        raise ElensError(f"seeds must be a non-empty list of integers; got {seeds!r}.")
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ElensError(f"seeds {seeds} list a seed more than once: list each once.")
    if not isinstance(cache, ProfileCache):
        cache = ProfileCache(cache)
    return {s: profile_models(models, prompts, labels, cache=cache, seed=s, **settings) for s in seeds}
