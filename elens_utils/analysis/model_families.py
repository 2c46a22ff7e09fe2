"""The model family of a model name (``openai-community/gpt2-xl`` -> ``gpt2``, ``zoo/llama-8L`` ->
``zoo/llama``): the labels of the family experiment."""

from __future__ import annotations

import re

from elens_utils.core.errors import ElensError

#: (pattern on the lowercased last path component of a model name, family); first match wins.
_FAMILY_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), f)
    for p, f in (
        (r"^gpt2(-|$)", "gpt2"),  # gpt2, gpt2-medium/-large/-xl (openai-community/...)
        (r"^(meta-)?llama-?3([.-]|$)", "llama3"),  # Llama-3.2-1B(-Instruct), Meta-Llama-3-8B
        (r"^(meta-)?llama-?2([.-]|$)", "llama2"),
        (r"^gemma-?2-", "gemma2"),  # gemma-2-2b-it, gemma-2-9b (not gemma-2b: Gemma 1)
        (r"^gemma-?3-", "gemma3"),  # gemma-3-270m, real/gemma3-270m, gemma-3-270m-q4_k_m.gguf
        (r"^gemma-\d", "gemma"),  # gemma-2b, gemma-7b
        (r"^qwen3([.-]|$)", "qwen3"),  # Qwen3-1.7B, Qwen3-4B, Qwen3-8B
        (r"^qwen2\.5([.-]|$)", "qwen2.5"),
        (r"^qwen2([.-]|$)", "qwen2"),
        (r"^pythia([.-]|$)", "pythia"),  # EleutherAI/pythia-70m ... pythia-12b(-deduped)
        (r"^opt-", "opt"),
        (r"^mistral-", "mistral"),
        (r"^phi-?3([.-]|$)", "phi3"),
        (r"^smollm2([.-]|$)", "smollm2"),  # SmolLM2-135M-Instruct, real/smollm2-135m-instruct
    )
)
_TINY_NAME = re.compile(r"^tiny/(?P<arch>[a-z0-9_]+?)(?:-\d+L)?$")
_ZOO_NAME = re.compile(r"^(?P<kind>zoo|untrained)/(?P<family>[a-z0-9]+)-\d+L$")


def family_of(model_name: str) -> str:
    """The model family of a Hub id, local path or embedded name (for ``label_column="family"``).

    Recognised (case-insensitive, on the last path component, so ``openai-community/gpt2-xl``
    and ``/models/gpt2-xl`` agree): ``gpt2*`` -> ``"gpt2"``; ``Llama-3*`` / ``Meta-Llama-3*`` ->
    ``"llama3"`` (``Llama-2*`` -> ``"llama2"``); ``gemma-2-*`` -> ``"gemma2"`` (``gemma-3-*`` ->
    ``"gemma3"``, Gemma 1's ``gemma-2b`` / ``gemma-7b`` -> ``"gemma"``); ``Qwen3*`` -> ``"qwen3"``
    (``Qwen2.5*``, ``Qwen2*`` -> ``"qwen2.5"``, ``"qwen2"``); ``pythia*`` -> ``"pythia"``; also
    ``opt-*``, ``Mistral-*``, ``Phi-3*``, ``SmolLM2*`` -> ``"smollm2"`` (the registry's real
    models ``real/smollm2-135m-instruct`` and ``real/gemma3-270m``, and their ``.gguf`` files,
    included). The project's tiny models ``tiny/ARCH-NL`` ->
    ``"tiny/ARCH"`` (all depths of one architecture form a family), the zoo's ``zoo/FAMILY-NL`` ->
    ``"zoo/FAMILY"``, and its untrained stand-ins ``untrained/FAMILY-NL`` -> ``"untrained/FAMILY"``.

    Fallback: any other name gives its own lowercased last path component (``"/ckpt/my-model/"``
    -> ``"my-model"``), i.e. every unrecognised model is a family of its own; put a ``family``
    column in the profiles' meta to group such models yourself.
    """
    if not isinstance(model_name, str) or not model_name.strip():
        raise ElensError(f"A model name must be a non-empty string; got {model_name!r}.")
    name = model_name.strip()
    tiny = _TINY_NAME.match(name)
    if tiny:
        return f"tiny/{tiny['arch']}"
    zoo = _ZOO_NAME.match(name)
    if zoo:
        return f"{zoo['kind']}/{zoo['family']}"
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    for pattern, family in _FAMILY_PATTERNS:
        if pattern.search(base):
            return family
    return base
