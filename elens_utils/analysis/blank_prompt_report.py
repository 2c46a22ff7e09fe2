"""Blank-prompt profiles of real models and the zoo side by side (chapter 1): one row per model
with its shape along relative depth and its counts, and the bullets that say what the rows show."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from elens_utils.analysis.model_groups import model_group, sort_by_group
from elens_utils.analysis.verdicts import span
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles, raw_profiles


def unembedding_rows(name: str) -> int:
    """Rows V of a model's unembedding, from its config (no weights are loaded): the ``V`` of
    ``log V``, padded rows included (Qwen3)."""
    from transformers import AutoConfig

    from elens_utils.models.registry import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(name))
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(text.vocab_size)


def blank_prompt_comparison(
    profiles: Sequence[Profiles],
    vocab_sizes: Mapping[str, int] | None = None,
    paper: str | None = None,
    alpha: float = 1.0,
) -> pd.DataFrame:
    """One row per model of blank-prompt profiles: their shape along relative depth, with counts.

    Each profile is averaged over its generated tokens, then over the model's samples (the
    paper's "mean" aggregation), giving a mean profile ``H_1..H_L`` in nats.

    Args:
        profiles: one :class:`Profiles` per model (raw, one entry per block).
        vocab_sizes: ``model -> V`` (rows of the unembedding), for ``log V``; None: read from
            each model's config (:func:`unembedding_rows`).
        paper: the paper's setting in words, added as a last row with no numbers.
        alpha: the entropy order (1.0: Shannon).

    Returns:
        Columns ``group`` (real / zoo / other / paper), ``model``, ``L``, ``samples``,
        ``tokens``, ``log V``, ``H block 1``, ``peak H``, ``peak at l/L`` (relative depth of the
        highest mean entropy), ``H block L``, ``peak / log V``, ``expanding steps`` (share of
        the L-1 block-to-block steps with dH > 0); the paper's row holds its setting in
        ``model`` and NaN elsewhere. Rows are ordered real, zoo, other, then paper.
    """
    rows = []
    for p in raw_profiles(profiles, "blank_prompt_comparison()"):
        name = str(p.meta["model"].iloc[0])
        if vocab_sizes is None:
            v = unembedding_rows(name)
        elif name in vocab_sizes:
            v = vocab_sizes[name]
        else:
            raise ElensError(f"blank_prompt_comparison(): no vocabulary size given for '{name}'.")
        h = p.select(alpha).mean(axis=(0, 1))  # [L]
        L = h.shape[0]
        peak = int(np.argmax(h))
        log_v = math.log(v)
        rows.append(
            {
                "group": model_group(name),
                "model": name,
                "L": L,
                "samples": int(p.entropy.shape[0]),
                "tokens": int(p.entropy.shape[1]),
                "log V": log_v,
                "H block 1": float(h[0]),
                "peak H": float(h[peak]),
                "peak at l/L": (peak + 1) / L,
                "H block L": float(h[-1]),
                "peak / log V": float(h[peak]) / log_v,
                "expanding steps": float((np.diff(h) > 0).mean()) if L > 1 else float("nan"),
            }
        )
    table = pd.DataFrame(rows)
    table = sort_by_group(table)
    if paper is not None:
        table = pd.concat([table, pd.DataFrame([{"group": "paper", "model": paper}])], ignore_index=True)
    # Counts stay whole numbers beside the paper's blank row (NaN would make them floats).
    return table.astype({"L": "Int64", "samples": "Int64", "tokens": "Int64"})


def blank_prompt_findings(table: pd.DataFrame) -> list[str]:
    """Markdown bullet lines on the real models of a :func:`blank_prompt_comparison` table.

    For each real model: where its mean blank-prompt profile peaks along relative depth and how
    high (nats and share of log V), its first and last block; then how the real models' peaks
    compare with the zoo's, as shares of log V. Empty when the table has no real model.
    """
    real = table[table["group"] == "real"]
    zoo = table[table["group"] == "zoo"]
    lines = []
    for _, r in real.iterrows():
        lines.append(
            f"- **{r['model']}** ({int(r['L'])} blocks, {int(r['samples'])} samples x {int(r['tokens'])} tokens): "
            f"{r['H block 1']:.2f} nats at block 1, a peak of {r['peak H']:.2f} nats "
            f"({100 * r['peak / log V']:.0f}% of log V) at relative depth {r['peak at l/L']:.2f}, "
            f"{r['H block L']:.2f} nats at the last block; {100 * r['expanding steps']:.0f}% of its "
            "block-to-block steps expand."
        )
    if len(real) and len(zoo):
        lines.append(
            f"- **Real against zoo**: the real models' profiles peak at "
            f"{span(100 * real['peak / log V'])}% of log V, the zoo's at {span(100 * zoo['peak / log V'])}%; "
            f"the peaks sit at relative depth {span(real['peak at l/L'], 2)} (real) and "
            f"{span(zoo['peak at l/L'], 2)} (zoo)."
        )
    return lines
