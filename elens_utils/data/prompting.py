"""How a model is prompted: the story world's rendering it reads, and chat templates.

The story world (:mod:`elens_utils.data.synthetic`) has two renderings of the same items: the
**zoo** rendering (lower case, punctuation as separate words: what the project's zoo models were
trained on and what their word-level tokenizer reads) and the **natural** rendering (English
with capitals and attached punctuation, for real pretrained models). :func:`prompt_style`
chooses one from a model's name, :func:`resolve_style` turns a ``prompt_style`` argument
(``"zoo"``, ``"natural"`` or ``"auto"``) into a rendering, and :func:`chat_prompt` wraps a
prompt in an instruct model's chat template.

Chat templates are off by default everywhere: the paper's code fed raw strings to every model,
its instruct models included, and so does this book unless a chapter asks otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from elens_utils.core.errors import ElensError

__all__ = [
    "PROMPT_STYLES",
    "ZOO_PREFIXES",
    "ZOO_MARKERS",
    "model_name",
    "prompt_style",
    "resolve_style",
    "chat_prompt",
]

#: The values of a ``prompt_style`` argument: a rendering, or ``"auto"`` (per model).
PROMPT_STYLES: tuple[str, ...] = ("zoo", "natural", "auto")
#: Embedded model names that read the zoo rendering (:mod:`elens_utils.models.registry`). ``tiny/``
#: models have random weights and vocabularies of their own: the rendering is immaterial to
#: them, and the zoo's keeps their prompts as the tests wrote them.
ZOO_PREFIXES: tuple[str, ...] = ("zoo/", "untrained/", "tiny/")
#: Files that mark a directory as a zoo model (``elens_utils.zoo.training.METADATA_FILE``) or as one of
#: its untrained stand-ins (written by ``tiny_models.build_untrained_model``). Literals here, so
#: that this module does not import torch; a test keeps them in step.
ZOO_MARKERS: tuple[str, ...] = ("zoo_model.json", "untrained_model.json")


def model_name(model: Any) -> str:
    """The name of ``model``: a string, a path, or a loaded model's ``.name`` (the name given
    to :func:`~elens_utils.load_model`)."""
    name = getattr(model, "name", model) if not isinstance(model, (str, os.PathLike)) else model
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name.strip():
        raise ElensError(
            f"Expected a model name (a Hub id, a directory, 'zoo/llama-8L', 'real/gemma3-270m', a "
            f".gguf path) or a loaded model, got {model!r}."
        )
    return name


def prompt_style(model: Any) -> str:
    """The rendering of the story world that ``model`` reads: ``"zoo"`` or ``"natural"``.

    ``"zoo"`` for the embedded names ``zoo/...``, ``untrained/...`` and ``tiny/...`` and for a
    local directory holding a zoo model (a ``zoo_model.json`` file) or an untrained stand-in
    (``untrained_model.json``); ``"natural"`` for everything else: Hub ids, ``real/...``
    models, ``.gguf`` files and other directories. ``model`` is a name, a path or a loaded
    model (its ``.name``).
    """
    name = model_name(model)
    if name.startswith(ZOO_PREFIXES):
        return "zoo"
    path = Path(name).expanduser()
    if path.is_dir() and any((path / marker).is_file() for marker in ZOO_MARKERS):
        return "zoo"
    return "natural"


def resolve_style(style: str, model: Any = None) -> str:
    """The rendering (``"zoo"`` or ``"natural"``) that a ``prompt_style`` argument asks for.

    ``"auto"`` is :func:`prompt_style` of ``model``, which must then be given.
    """
    if style not in PROMPT_STYLES:
        raise ElensError(
            f"Unknown prompt style {style!r}: use 'zoo' (the zoo models' lower-case word-level "
            "text), 'natural' (English, for real models) or 'auto' (chosen from model=...)."
        )
    if style != "auto":
        return style
    if model is None:
        raise ElensError(
            "prompt_style='auto' chooses the rendering per model: pass model=NAME, or build the "
            "data once in the zoo rendering and call data.for_model(frame, name) for each model."
        )
    return prompt_style(model)


def chat_prompt(tokenizer: Any, prompt: str, *, system: str | None = None) -> str:
    """``prompt`` as the user turn of ``tokenizer``'s chat template, ready for the reply.

    ``tokenizer.apply_chat_template([...], tokenize=False, add_generation_prompt=True)``, with a
    system turn first when ``system`` is given. The string may begin with the BOS token's text
    (Gemma's template writes it): :meth:`~elens_utils.lens.loading.LensModel.encode` then does not
    add a second one. The paper's code did not use chat templates (it fed raw strings to its
    instruct models too), so the book's chapters call this only on request.

    Raises:
        ElensError: when the tokenizer has no chat template (base models and the zoo have none),
            or when its template rejects the messages.
    """
    if not isinstance(prompt, str):
        raise ElensError(f"chat_prompt wraps a string prompt, got {type(prompt).__name__}.")
    if not hasattr(tokenizer, "apply_chat_template"):
        raise ElensError(f"chat_prompt needs a transformers tokenizer, got {type(tokenizer).__name__}.")
    if not getattr(tokenizer, "chat_template", None):
        owner = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ElensError(
            f"The tokenizer of '{owner}' has no chat template (base models and the zoo's models "
            "have none): leave chat_template=False (the default, raw prompts as in the paper's "
            "code), or set tokenizer.chat_template to a Jinja template first."
        )
    messages = [{"role": "user", "content": prompt}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    try:
        out = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as err:  # jinja2's TemplateError, or a template's raise_exception(...)
        raise ElensError(
            f"The chat template rejected the prompt ({type(err).__name__}: {err})"
            + (": it may not accept a system turn; leave system=None." if system is not None else ".")
        ) from err
    if not isinstance(out, str):  # pragma: no cover - transformers returns str for tokenize=False
        raise ElensError(f"apply_chat_template returned {type(out).__name__}, not the prompt string.")
    return out
