"""Ablating parts of a decoder block: the attention sublayer, the MLP sublayer, single heads.

The paper (v3) skips whole blocks of largest expansion or pruning. This module asks which part
of such a block matters: it removes, **in place and by hooks**, the attention sublayer alone, the
MLP sublayer alone, or chosen attention heads, ranks the heads of a block by their effect on
the block's dH, and measures multiple-choice accuracy against random controls.

The pieces live in :mod:`~elens_utils.analysis.sublayer_parts` (where the parts of a block are),
:mod:`~elens_utils.analysis.sublayer_ablation` (what "remove" means, and the hooks that do it) and
:mod:`~elens_utils.analysis.head_ranking` (heads ranked by their effect on dH, random heads); this
module holds the sweep over models (:func:`sublayer_sweep`, :func:`sublayer_summary`) and gathers
the rest under its name.

Numbering
---------
Blocks are numbered **1..L** (as everywhere in the project); heads are numbered **0..H-1**,
as on the head axis of the attention weights (head ``h`` is the slice ``[h * head_dim,
(h + 1) * head_dim)`` of the output projection's input, see
:mod:`~elens_utils.analysis.sublayer_ablation`). ``dH_l = H_l - H_(l-1)`` belongs to block
``l = 2..L`` (see :mod:`elens_utils.analysis.interventions`).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from elens_utils.analysis.expansion import (
    check_model_profiles,
    first_tokens,
    gap_se,
    loaded_models,
)
from elens_utils.analysis.head_ranking import (
    RANK_COLUMNS,
    random_heads,
    rank_heads,
    top_heads,
)
from elens_utils.analysis.interventions import (
    expansion_blocks,
    mc_accuracy,
    pruning_blocks,
    random_blocks,
    skip_blocks,
)
from elens_utils.analysis.sublayer_ablation import (
    Ablation,
    ablate,
    ablate_attention,
    ablate_heads,
    ablate_mlp,
)
from elens_utils.analysis.sublayer_parts import (
    SUBLAYER_ARCHITECTURES,
    BlockSublayers,
    SublayerSpec,
    find_sublayers,
    sublayer_layout,
)
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles
from elens_utils.lens.loading import LensModel

__all__ = [
    "SUBLAYER_ARCHITECTURES",
    "Ablation",
    "BlockSublayers",
    "SublayerSpec",
    "ablate",
    "ablate_attention",
    "ablate_heads",
    "ablate_mlp",
    "find_sublayers",
    "random_heads",
    "rank_heads",
    "sublayer_layout",
    "sublayer_summary",
    "sublayer_sweep",
    "top_heads",
]


# --------------------------------------------------------------------------------------------
# the sweep


KINDS = ("attention", "mlp", "heads", "block")


def _intervention(lm: LensModel, kind: str, blocks: list[int], heads: dict[int, list[int]] | None):
    if kind == "none":
        return contextlib.nullcontext()
    if kind == "attention":
        return ablate_attention(lm, blocks)
    if kind == "mlp":
        return ablate_mlp(lm, blocks)
    if kind == "heads":
        return ablate_heads(lm, heads or {})
    return skip_blocks(lm, blocks)


def _heads_text(heads: dict[int, list[int]] | None) -> str:
    if heads is None:
        return ""
    return "; ".join(f"{b}:{','.join(map(str, hs))}" for b, hs in sorted(heads.items())) or "none"


def _condition(
    kind: str,
    strategy: str,
    k: int,
    blocks: list[int],
    *,
    seed: int | None = None,
    heads: dict[int, list[int]] | None = None,
) -> dict[str, Any]:
    """One condition of :func:`sublayer_sweep`; heads come ranked unless a seed drew them."""
    heads_from = None if heads is None else "ranked" if seed is None else "random"
    return {
        "kind": kind,
        "strategy": strategy,
        "heads_from": heads_from,
        "k": k,
        "seed": seed,
        "blocks": list(blocks),
        "heads": heads,
    }


def _ranked_heads(
    lm: LensModel,
    prompts: Sequence[str | Sequence[int]],
    blocks: list[int],
    n: int,
    by: str,
    tables: dict[int, pd.DataFrame],
    alpha: float,
    batch_size: int,
) -> dict[int, list[int]]:
    """``{block: the n first heads by rank "by"}``; :func:`rank_heads` tables cached in ``tables``."""
    out = {}
    for b in blocks:
        if b not in tables:
            tables[b] = rank_heads(lm, prompts, b, alpha=alpha, batch_size=batch_size)
        out[b] = top_heads(tables[b], n, by)
    return out


def sublayer_sweep(
    models: Sequence[str | os.PathLike[str]],
    questions: pd.DataFrame,
    ranking_profiles: Sequence[Profiles],
    *,
    ks: Sequence[int] = (1, 2),
    kinds: Sequence[str] = ("attention", "mlp", "heads"),
    heads_per_block: int = 1,
    head_rank: str = "role",
    head_prompts: Sequence[str | Sequence[int]]
    | Callable[[str], Sequence[str | Sequence[int]]]
    | None = None,
    n_random_seeds: int = 3,
    random_excludes_ranked: bool = False,
    rank_tokens: int = 1,
    alpha: float = 1.0,
    seed: int = 0,
    answer_col: str = "answer",
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 8,
    progress: bool | None = None,
    **mc_kwargs: Any,
) -> pd.DataFrame:
    """Multiple-choice accuracy with the attention, the MLP or top heads removed in the
    expansion and pruning blocks of each model, against random controls.

    Per model (loaded one at a time, as in :func:`~elens_utils.analysis.expansion.skip_sweep`): the
    blocks are ranked by the model's ``ranking_profiles`` cut to their first ``rank_tokens``
    steps; for each ``k`` the ``k`` blocks of largest expansion and of largest pruning are
    taken, and for each kind of intervention:

    * ``attention`` / ``mlp`` (/ ``block``, the whole-block skip of
      :func:`~elens_utils.analysis.interventions.skip_blocks`, for comparison): strategies
      ``expansion``, ``pruning`` and ``random`` (``n_random_seeds`` draws of ``k`` random
      blocks of 2..L with the same part removed; draw ``s`` uses seed
      ``seed * 1_000_003 + 1000 * k + s``, the blocks of ``skip_experiment``'s random draw).
    * ``heads``: each block's heads are ranked by :func:`rank_heads` on ``head_prompts``, and
      ``heads_per_block`` heads are removed in each of the ``k`` blocks. ``heads_from``
      ``"ranked"``: the top heads (``head_rank="role"``: in expansion blocks the heads whose
      removal lowers dH most, in pruning blocks those whose removal raises it most; or
      ``"drop"``, ``"rise"``, ``"abs"`` for all blocks); ``"random"``: random heads
      (:func:`random_heads`, same seed scheme) in the same blocks, and for strategy ``random``
      random heads in random blocks.

    Args:
        models: model names, in the order of ``ranking_profiles``.
        questions: multiple-choice questions (``prompt`` column, correct letter in ``answer_col``).
        ranking_profiles: raw profiles of each model, of prompts other than ``questions``.
        ks: numbers of blocks; a model with L blocks can take at most L - 1 (larger ``k`` are
            dropped for it and listed in ``ks_dropped``).
        kinds: any of ``"attention"``, ``"mlp"``, ``"heads"``, ``"block"``.
        heads_per_block: heads removed per block (clipped to the model's H).
        head_rank: ``"role"``, ``"drop"``, ``"rise"`` or ``"abs"`` (see above).
        head_prompts: prompts that rank the heads (or ``model -> prompts``); None takes the
            ranking profiles' prompts (``meta["prompt"]``; pass token ids here if the profiles
            were made from ids).
        n_random_seeds: random draws per ``k`` and kind.
        random_excludes_ranked: random blocks avoid the expansion and pruning blocks of the
            same ``k``.
        rank_tokens, alpha: the block ranking (see ``skip_sweep``); ``alpha`` also ranks heads.
        seed: base seed of the random draws.
        answer_col, device, dtype, batch_size, progress, ``**mc_kwargs``: as for ``skip_sweep``.

    Returns:
        One row per condition: ``model``, ``n_layers``, ``n_heads``, ``kind`` (``none`` for
        the baseline), ``strategy`` (baseline / expansion / pruning / random), ``heads_from``
        (``ranked`` / ``random`` for heads, else None), ``k``, ``seed`` (Int64, None unless
        random), ``blocks`` (list, 1-based), ``heads`` (``{block: [head]}`` or None),
        ``accuracy``, ``n_correct``, ``n_questions``, ``chance``, ``blocks_text``,
        ``heads_text`` and ``ks_dropped``. Conditions that remove the same parts are scored
        once.
    """
    names = [os.fspath(m) for m in models]
    ranking_profiles = check_model_profiles(names, ranking_profiles, "ranking profiles")
    kinds = list(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds or len(set(kinds)) != len(kinds):
        raise ElensError(f"kinds must be distinct values of {', '.join(KINDS)}; got {kinds!r}.")
    if head_rank not in ("role", *RANK_COLUMNS):
        raise ElensError(f"head_rank must be one of role, {', '.join(RANK_COLUMNS)}; got {head_rank!r}.")
    if (
        isinstance(heads_per_block, (bool, np.bool_))
        or not isinstance(heads_per_block, numbers.Integral)
        or heads_per_block < 1
    ):
        raise ElensError(f"heads_per_block must be an integer >= 1; got {heads_per_block!r}.")
    if (
        isinstance(n_random_seeds, (bool, np.bool_))
        or not isinstance(n_random_seeds, numbers.Integral)
        or n_random_seeds < 0
    ):
        raise ElensError(f"n_random_seeds must be a non-negative integer; got {n_random_seeds!r}.")
    if isinstance(ks, (numbers.Integral, np.integer)):
        ks = (int(ks),)
    ks = list(ks)
    for k in ks:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 1:
            raise ElensError(f"ks must hold integers >= 1; got {k!r}.")
    frames = []
    for lm, prof in zip(loaded_models(names, device=device, dtype=dtype), ranking_profiles, strict=False):
        if prof.n_layers != lm.n_layers:
            raise ElensError(
                f"The ranking profiles of {lm.name!r} have {prof.n_layers} blocks; the model has "
                f"{lm.n_layers}: rank the blocks with profiles of this model."
            )
        ranked_prof = first_tokens(prof, rank_tokens)
        usable = [int(k) for k in ks if k < lm.n_layers]
        dropped = [int(k) for k in ks if k >= lm.n_layers]
        n_heads = find_sublayers(lm, 1).n_heads
        n_pick = min(int(heads_per_block), n_heads)
        if callable(head_prompts):
            prompts_h = head_prompts(lm.name)
        elif head_prompts is not None:
            prompts_h = head_prompts
        else:
            prompts_h = ranked_prof.meta["prompt"].tolist()
        head_tables: dict[int, pd.DataFrame] = {}  # rank_heads of each block, computed once

        conditions = [_condition("none", "baseline", 0, [])]
        for k in usable:
            exp, pru = expansion_blocks(ranked_prof, k, alpha), pruning_blocks(ranked_prof, k, alpha)
            exclude = sorted(set(exp) | set(pru)) if random_excludes_ranked else []
            draws = [int(seed) * 1_000_003 + 1000 * k + s for s in range(int(n_random_seeds))]
            rnd_blocks = {s: random_blocks(lm.n_layers, k, s, exclude=exclude) for s in draws}
            for kind in kinds:
                if kind != "heads":
                    conditions += [_condition(kind, "expansion", k, exp), _condition(kind, "pruning", k, pru)]
                    conditions += [_condition(kind, "random", k, rnd_blocks[s], seed=s) for s in draws]
                    continue
                for strategy, blocks, role in (("expansion", exp, "drop"), ("pruning", pru, "rise")):
                    by = role if head_rank == "role" else head_rank
                    top = _ranked_heads(lm, prompts_h, blocks, n_pick, by, head_tables, alpha, batch_size)
                    conditions.append(_condition(kind, strategy, k, blocks, heads=top))
                    for s in draws:
                        drawn = random_heads(n_heads, blocks, n_pick, s)
                        conditions.append(_condition(kind, strategy, k, blocks, seed=s, heads=drawn))
                for s in draws:
                    drawn = random_heads(n_heads, rnd_blocks[s], n_pick, s)
                    conditions.append(_condition(kind, "random", k, rnd_blocks[s], seed=s, heads=drawn))
        scored: dict[tuple, Any] = {}
        rows = []
        for cond in tqdm(
            conditions,
            desc=f"sublayer sweep {lm.name}",
            unit="condition",
            disable=None if progress is None else not progress,
        ):
            key = (cond["kind"], tuple(cond["blocks"]), _heads_text(cond["heads"]))
            if key not in scored:
                with _intervention(lm, cond["kind"], cond["blocks"], cond["heads"]):
                    scored[key] = mc_accuracy(
                        lm,
                        questions,
                        answer_col=answer_col,
                        batch_size=batch_size,
                        progress=False,
                        **mc_kwargs,
                    )
            res = scored[key]
            rows.append(
                {
                    "model": lm.name,
                    "n_layers": lm.n_layers,
                    "n_heads": n_heads,
                    **cond,
                    "blocks": list(cond["blocks"]),
                    "accuracy": res.accuracy,
                    "n_correct": int(res.table["correct"].sum()),
                    "n_questions": res.n_questions,
                    "chance": res.chance,
                    "blocks_text": ", ".join(map(str, cond["blocks"])) or "none",
                    "heads_text": _heads_text(cond["heads"]),
                    "ks_dropped": list(dropped),
                }
            )
        out = pd.DataFrame(rows)
        out["seed"] = out["seed"].astype("Int64")
        out["heads_from"] = out["heads_from"].astype(object).where(out["heads_from"].notna(), None)
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


def sublayer_summary(results: pd.DataFrame) -> pd.DataFrame:
    """One row per model, kind and k of a :func:`sublayer_sweep` result.

    Columns: ``model``, ``kind``, ``k``, ``baseline``, ``expansion``, ``pruning`` (accuracies;
    for heads, with the ranked heads), ``random_mean``, ``random_min``, ``random_max`` (random
    blocks; NaN without draws), for heads also ``expansion_random_heads`` and
    ``pruning_random_heads`` (mean accuracy with random heads in the same blocks; NaN for
    other kinds), ``chance``, ``n_questions``, ``se`` (binomial standard error of the
    baseline, ``sqrt(b (1 - b) / n)``), ``se_gap`` (standard error of the gap between the
    expansion and pruning accuracies, :func:`elens_utils.analysis.expansion.gap_se`),
    ``expansion_blocks``, ``pruning_blocks``,
    ``expansion_heads``, ``pruning_heads`` (text), ``more_critical`` (``"expansion"`` when the
    intervention in the expansion blocks costs more accuracy than in the pruning blocks,
    ``"pruning"`` for the reverse, ``"tie"``) and ``clear`` (the gap exceeds ``2 se_gap``; a rough
    yardstick, not a test: both are measured on the same questions).
    """
    need = [
        "model",
        "kind",
        "strategy",
        "heads_from",
        "k",
        "accuracy",
        "chance",
        "n_questions",
        "blocks_text",
        "heads_text",
    ]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise ElensError(f"sublayer_summary() takes a sublayer_sweep() result; the frame lacks {missing}.")
    rows = []
    for model, g in results.groupby("model", sort=False):
        base = g[g["strategy"] == "baseline"]
        if len(base) != 1:
            raise ElensError(f"Model {model!r} has {len(base)} baseline rows; expected one.")
        b, n_q = float(base["accuracy"].iloc[0]), int(base["n_questions"].iloc[0])
        se = math.sqrt(b * (1 - b) / n_q)
        for (kind, k), at in g[g["k"] > 0].groupby(["kind", "k"], sort=False):
            chosen = at[at["heads_from"].isna() | (at["heads_from"] == "ranked")]
            exp, pru = chosen[chosen["strategy"] == "expansion"], chosen[chosen["strategy"] == "pruning"]
            if len(exp) != 1 or len(pru) != 1:
                raise ElensError(
                    f"Model {model!r}, {kind}, k = {k}: expected one expansion and one pruning row."
                )
            rnd = at.loc[at["strategy"] == "random", "accuracy"]
            alt = at[at["heads_from"] == "random"]
            e, p = float(exp["accuracy"].iloc[0]), float(pru["accuracy"].iloc[0])

            def mean_of(frame: pd.DataFrame) -> float:
                return float(frame["accuracy"].mean()) if len(frame) else math.nan

            rows.append(
                {
                    "model": model,
                    "kind": kind,
                    "k": int(k),
                    "baseline": b,
                    "expansion": e,
                    "pruning": p,
                    "random_mean": float(rnd.mean()) if len(rnd) else math.nan,
                    "random_min": float(rnd.min()) if len(rnd) else math.nan,
                    "random_max": float(rnd.max()) if len(rnd) else math.nan,
                    "expansion_random_heads": mean_of(alt[alt["strategy"] == "expansion"]),
                    "pruning_random_heads": mean_of(alt[alt["strategy"] == "pruning"]),
                    "chance": float(base["chance"].iloc[0]),
                    "n_questions": n_q,
                    "se": se,
                    "se_gap": gap_se(e, p, n_q),
                    "expansion_blocks": exp["blocks_text"].iloc[0],
                    "pruning_blocks": pru["blocks_text"].iloc[0],
                    "expansion_heads": exp["heads_text"].iloc[0],
                    "pruning_heads": pru["heads_text"].iloc[0],
                    "more_critical": "expansion" if e < p else "pruning" if p < e else "tie",
                    # the gap's own standard error, as for whole blocks (expansion.skip_summary):
                    # the baseline's is 0 at 100% and would call any gap clear
                    "clear": abs(e - p) > 2 * gap_se(e, p, n_q),
                }
            )
    return pd.DataFrame(rows)
