"""The zoo's card: ``card.json`` (its schema, :data:`CARD_FIELDS`, and its check) and ``CARD.md``,
written from the evaluation of every model."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from elens_utils.core.atomic import atomic_file
from elens_utils.core.checks import card_problems
from elens_utils.core.errors import ElensError
from elens_utils.data.synthetic import LETTERS
from elens_utils.zoo.checkpoint import versions
from elens_utils.zoo.recipe import Recipe

CARD_JSON = "card.json"
CARD_MD = "CARD.md"
CARD_SCHEMA_VERSION = 2
# Fields of every model's entry in card.json, with their types (validate_card checks them).
CARD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,  # "llama-8L": the directory under the zoo root, and zoo/<name> for load_model
    "family": str,
    "n_layers": int,
    "n_params": int,
    "dtype": str,
    "size_bytes": int,
    "train_tokens": int,
    "train_seconds": (int, float),
    "train_threads": int,
    "loss": (int, float),
    "mc_accuracy": (int, float),
    "mc_n": int,
    "lookup_accuracy": (int, float),  # the letter read-out alone (lookup_questions), mc_n prompts
    "task_accuracy": (int, float),
    "task_accuracy_by_task": dict,
    "task_n": dict,
}


def card_from_results(
    entries: Sequence[Mapping[str, Any]], *, split: str, eval_settings: Mapping[str, Any], recipe: Recipe | Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The card.json document for ``entries`` (see :data:`CARD_FIELDS`); ``recipe`` is the
    :class:`Recipe` or the recipe dict recorded in a model's ``zoo_model.json``."""
    if not isinstance(recipe, Mapping):
        recipe = (recipe or Recipe()).to_json()
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "split": split,
        "chance_mc_accuracy": 1 / len(LETTERS),
        "evaluation": dict(eval_settings),
        "recipe": dict(recipe),
        "total_size_bytes": int(sum(e["size_bytes"] for e in entries)),
        "versions": versions(),
        "models": [dict(e) for e in entries],
    }


def validate_card(card: Mapping[str, Any]) -> None:
    """Raise :class:`ElensError` when ``card`` does not follow the card.json schema."""
    top = {"schema_version": int, "split": str, "models": list, "total_size_bytes": int, "evaluation": dict, "recipe": dict}
    problems = card_problems(card, top, CARD_FIELDS, ("mc_accuracy", "task_accuracy"), allow_nan=True)
    if problems:
        raise ElensError("Bad zoo card: " + "; ".join(problems) + ".")


def _card_markdown(card: Mapping[str, Any]) -> str:
    lines = [
        "# The model zoo",
        "",
        "Small language models of four real architectures trained by `python -m elens_utils.zoo train --all`",
        f"on the story world (seed {card['recipe']['seed']}); numbers from `python -m elens_utils.zoo card`,",
        f"on held-out items of the `{card['split']}` split. Multiple-choice chance is 25 %.",
        "",
        "| model | blocks | parameters | training tokens | training time | held-out loss (nats/token) | multiple choice | letter read-out | task (semantic) | counting | continuation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in card["models"]:
        t = m["task_accuracy_by_task"]
        lines.append(
            f"| {m['name']} | {m['n_layers']} | {m['n_params'] / 1e6:.2f} M | {m['train_tokens'] / 1e6:.2f} M | "
            f"{m['train_seconds'] / 60:.1f} min ({m['train_threads']} thr.) | {m['loss']:.3f} | {100 * m['mc_accuracy']:.1f} % | "
            f"{100 * m['lookup_accuracy']:.1f} % | {100 * m['task_accuracy']:.1f} % | {100 * t.get('counting', float('nan')):.1f} % | {100 * t.get('continuation', float('nan')):.1f} % |"
        )
    ev = card["evaluation"]
    lines += [
        "",
        f"Weights: {card['models'][0]['dtype'] if card['models'] else '-'} safetensors, {card['total_size_bytes'] / 2**20:.1f} MiB in all.",
        f"Multiple choice: {ev.get('n_questions')} questions, the largest next-token logit of A-D after `answer :`.",
        "Letter read-out: the same number of prompts whose question is the answer word itself (`question : map`),",
        "so only the last step of a multiple-choice answer is left: find the matching option, give its letter.",
        f"Tasks: the task prompts of {ev.get('n_task_stories')} stories, greedy answers, exact match.",
        "Held-out loss: documents of the training mix from held-out stories and topics.",
        "",
    ]
    return "\n".join(lines)


def write_card(card: Mapping[str, Any], root: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``root/card.json`` and ``root/CARD.md`` (each atomically)."""
    validate_card(card)
    root = Path(root)
    with atomic_file(root / CARD_JSON) as fh:
        fh.write(json.dumps(card, indent=1) + "\n")
    with atomic_file(root / CARD_MD) as fh:
        fh.write(_card_markdown(card))
    return root / CARD_JSON, root / CARD_MD
