"""Ranking the attention heads of a block by their effect on the block's dH (each head removed in
turn, lens entropies at the last prompt position), and drawing random heads as controls."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from elens_utils.analysis.interventions import check_batch_size, check_blocks, check_k
from elens_utils.analysis.sublayer_ablation import ablate
from elens_utils.analysis.sublayer_parts import SublayerSpec, find_sublayers
from elens_utils.core.errors import ElensError
from elens_utils.entropy.streaming import normalize_alphas
from elens_utils.lens.generation import left_pad
from elens_utils.lens.loading import LensModel


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the block of interest has run."""


def _check_prompts(lm: LensModel, prompts: Any) -> list[list[int]]:
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence) or len(prompts) == 0:
        raise ElensError("Pass a non-empty list of prompts (strings or token-id lists).")
    return lm.encode(list(prompts), fit_context=True)


@torch.no_grad()
def _entropy_pair(
    lm: LensModel, encoded: list[list[int]], block: int, alpha: float, batch_size: int
) -> np.ndarray:
    """Lens entropies ``[N, 2]`` (nats, float64) of blocks ``block - 1`` and ``block`` at each
    prompt's last position, under whatever hooks are active. The forward pass ends after
    ``block``: the later blocks do not change these values."""
    out = np.empty((len(encoded), 2), dtype=np.float64)
    grabbed: list[torch.Tensor] = []

    def grab(_m: nn.Module, _a: tuple, output: Any) -> None:
        resid = output[0] if isinstance(output, tuple) else output
        grabbed.append(resid[:, -1].clone())

    def grab_and_stop(m: nn.Module, a: tuple, output: Any) -> None:
        grab(m, a, output)
        raise _Stop

    handles = [
        lm.parts.blocks[block - 2].register_forward_hook(grab),
        lm.parts.blocks[block - 1].register_forward_hook(grab_and_stop),
    ]
    try:
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            input_ids, mask, positions = left_pad(
                [encoded[i] for i in idx], lm.tokenizer.pad_token_id, lm.device
            )
            grabbed.clear()
            try:
                lm.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False)
            except _Stop:
                pass
            if len(grabbed) != 2:
                raise RuntimeError(
                    f"captured {len(grabbed)} block outputs, expected 2 (blocks {block - 1}, {block})."
                )
            h = lm.parts.entropy(torch.cat(grabbed), (alpha,))[:, 0].double().cpu().numpy()
            out[idx, 0], out[idx, 1] = h[: len(idx)], h[len(idx) :]
    finally:
        for handle in handles:
            handle.remove()
    if not np.isfinite(out).all():
        raise ElensError("Non-finite lens entropies: the model overflowed; load it in float32 or bfloat16.")
    return out


def rank_heads(
    lm: LensModel,
    prompts: Sequence[str | Sequence[int]],
    block: int,
    *,
    alpha: float = 1.0,
    batch_size: int = 8,
    spec: SublayerSpec | None = None,
    progress: bool | None = False,
) -> pd.DataFrame:
    """Each head's effect on block ``block``'s dH, at the last prompt position.

    For head ``h``: ``effect = mean over prompts of (dH_block with h ablated - dH_block)``, where
    ``dH_block = H_block - H_(block-1)`` is the lens entropy change (nats, Renyi order
    ``alpha``, 1 = Shannon) at each prompt's last position (the prediction of the first
    generated token; for a multiple-choice prompt, of the answer). Ablating a head of block
    ``l`` leaves ``H_(l-1)`` as it is, so the effect is that on ``H_l``.

    Args:
        lm: the model (hooks already active, e.g. :func:`~elens_utils.analysis.interventions.skip_blocks`,
            stay active).
        prompts: N prompts (strings or token-id lists).
        block: a block of ``2..L`` (block 1 has no dH).
        alpha: the Renyi order.
        batch_size: prompts per forward pass (left-padded; each pass stops after ``block``).
        spec: module paths, for an architecture that is not located by itself.
        progress: progress bar over the heads.

    Returns:
        One row per head ``0..H-1``, in head order: ``block``, ``head``, ``dH_baseline`` and
        ``dH_ablated`` (means over prompts, nats), ``effect`` (their difference, the mean of
        the per-prompt differences), ``effect_std`` (over prompts), ``n_prompts`` and three
        ranks (1 = first; ties go to the lower head): ``drop_rank`` (most negative effect:
        the head whose removal lowers dH most, i.e. contributes most to expansion),
        ``rise_rank`` (most positive effect: contributes most to pruning) and ``abs_rank``
        (largest ``|effect|``). Deterministic: the same inputs give the same table.

    Cost: ``(H + 1) * ceil(N / batch_size)`` forward passes through blocks ``1..block`` only
    (no KV cache is kept), and ``2 N (H + 1)`` lens rows.
    """
    (alpha,) = normalize_alphas(alpha)
    batch_size = check_batch_size(batch_size)
    (block,) = check_blocks([block], lm.n_layers, "block")
    if block == 1:
        raise ElensError(
            "Block 1 has no dH (the embedding output is not a layer of the profiles): rank the heads "
            f"of a block in 2..{lm.n_layers}."
        )
    n_heads = find_sublayers(lm, block, spec).n_heads
    encoded = _check_prompts(lm, prompts)
    base = _entropy_pair(lm, encoded, block, alpha, batch_size)
    d_base = base[:, 1] - base[:, 0]
    rows = []
    for h in tqdm(
        range(n_heads),
        desc=f"heads of block {block}",
        unit="head",
        disable=None if progress is None else not progress,
    ):
        with ablate(lm, heads={block: [h]}, spec=spec):
            pair = _entropy_pair(lm, encoded, block, alpha, batch_size)
        d = pair[:, 1] - pair[:, 0]
        diff = d - d_base
        rows.append(
            {
                "block": block,
                "head": h,
                "dH_baseline": float(d_base.mean()),
                "dH_ablated": float(d.mean()),
                "effect": float(diff.mean()),
                "effect_std": float(diff.std()),
                "n_prompts": len(encoded),
            }
        )
    table = pd.DataFrame(rows)
    effect, heads = table["effect"].to_numpy(), table["head"].to_numpy()
    for col, key in (("drop_rank", effect), ("rise_rank", -effect), ("abs_rank", -np.abs(effect))):
        order = np.lexsort((heads, key))
        table[col] = 0
        table.loc[order, col] = np.arange(1, len(table) + 1)
    return table


#: The rank column of a :func:`rank_heads` table for each ``by`` of :func:`top_heads`.
RANK_COLUMNS = {"drop": "drop_rank", "rise": "rise_rank", "abs": "abs_rank"}


def top_heads(table: pd.DataFrame, n: int, by: str = "abs") -> list[int]:
    """The ``n`` first heads of a :func:`rank_heads` table, sorted by head number.

    Args:
        table: one block's :func:`rank_heads` result.
        n: how many heads (``0..H``).
        by: ``"drop"`` (removal lowers dH most: the expansion heads), ``"rise"`` (removal raises
            dH most: the pruning heads) or ``"abs"`` (largest ``|effect|``).
    """
    if by not in RANK_COLUMNS:
        raise ElensError(f"by must be one of {', '.join(RANK_COLUMNS)}; got {by!r}.")
    if (
        not isinstance(table, pd.DataFrame)
        or "head" not in table.columns
        or RANK_COLUMNS[by] not in table.columns
    ):
        raise ElensError("top_heads() takes a rank_heads() table.")
    n = check_k(n, len(table), "heads")
    return sorted(int(h) for h in table.sort_values(RANK_COLUMNS[by])["head"][:n])


_HEADS_STREAM = 0x4EAD5  # random_heads draws from a stream apart from random_blocks' of the same seed


def random_heads(n_heads: int, blocks: Iterable[int], n: int, seed: int) -> dict[int, list[int]]:
    """``n`` distinct heads per block, drawn uniformly at random: ``{block: sorted heads}``.

    Args:
        n_heads: H, heads per block (heads are ``0..H-1``).
        blocks: the blocks (1-based, as given: not range-checked against a model here).
        n: heads per block (``0..H``).
        seed: the draws come from ``numpy.random.default_rng((seed, 0x4EAD5))``, block by
            block in increasing order; the same arguments give the same heads.
    """
    if isinstance(n_heads, (bool, np.bool_)) or not isinstance(n_heads, numbers.Integral) or n_heads < 1:
        raise ElensError(f"n_heads must be a positive integer; got {n_heads!r}.")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise ElensError(f"seed must be an integer; got {seed!r}.")
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Iterable):
        raise ElensError(f"blocks must be an iterable of block numbers; got {blocks!r}.")
    chosen = []
    for b in blocks:
        if isinstance(b, (bool, np.bool_)) or not isinstance(b, numbers.Integral) or b < 1:
            raise ElensError(f"blocks must hold block numbers >= 1; got {b!r}.")
        chosen.append(int(b))
    if len(set(chosen)) != len(chosen):
        raise ElensError(f"blocks {chosen} name a block twice: list each block once.")
    chosen.sort()
    n = check_k(n, int(n_heads), "heads per block")
    rng = np.random.default_rng((int(seed), _HEADS_STREAM))
    return {b: sorted(int(h) for h in rng.choice(int(n_heads), size=n, replace=False)) for b in chosen}
