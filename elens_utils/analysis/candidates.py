"""Top-p candidate sets per block: the v3 check that dH tracks expansion and pruning.

The paper (v3) reads ``dH_l = H_l - H_(l-1) > 0`` as *expansion* (block l widens the set of
candidate next tokens) and ``dH_l < 0`` as *pruning*. It checks this with the size of the top-p
candidate set of each block's lens distribution (p = 0.6): the Spearman correlation between dH
and the change in set size between consecutive blocks.

Definitions used here
---------------------
* **Top-p set** of a distribution ``q`` over the vocabulary: the smallest set of tokens whose
  probabilities sum to ``>= p``, i.e. the ``k`` most probable tokens where ``k`` is the first
  count whose cumulative probability reaches ``p``. Its *size* does not depend on how ties are
  ordered; its *members* do when tokens tie at the boundary: ties are broken by token id (the
  lower id enters first), so the set is deterministic. Probabilities and cumulative sums are
  float64 (from float32 lens logits); ``p`` lies in ``(0, 1]``.
* **Which tokens.** :func:`candidate_set_sizes` generates with
  :func:`~elens_utils.lens.generation.generate_profiles` (same settings, same tokens, same entropy
  profiles) and then runs one *teacher-forced* forward pass over prompt + generated tokens per
  batch, reading the T positions whose next token was generated: position ``k`` is exactly the
  state of generation step ``k`` (the KV-cached and the full pass agree to float rounding), so
  sizes, overlaps and the profiles' entropies describe the same predictions. The dense
  float32 logits of four blocks and the float64 ``[rows, V]`` distribution of one block, for
  one chunk of rows, are the largest tensors ever built (never ``[L, T, V]``).
* **Overlap** of adjacent blocks: Jaccard index ``|S_(l-1) & S_l| / |S_(l-1) | S_l|`` of their
  top-p sets, entry ``l - 2`` for blocks ``l - 1, l`` (``l = 2..L``), aligned with
  :meth:`Profiles.delta`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles
from elens_utils.lens.capture import BlockCapture
from elens_utils.lens.generation import left_pad
from elens_utils.lens.loading import LensModel

__all__ = [
    "CandidateSets",
    "candidate_set_sizes",
    "jaccard",
    "spearman_delta_vs_size",
    "top_p_sets",
]


# top_p_sets looks for a row's set among its this many largest probabilities first (a partial
# selection), and sorts the whole row only when the set does not close there.
_TOP_CANDIDATES = 1024
# Blocks whose lens logits one product computes (float32 [blocks, rows, V]: 4 x 128 MB for a
# row chunk of 16 M float64 probabilities).
_BLOCKS_PER_PRODUCT = 4


def _check_p(p: Any) -> float:
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0 < float(p) <= 1:
        raise ElensError(f"p must be a number in (0, 1] (the paper used 0.6); got {p!r}.")
    return float(p)


def top_p_sets(probs: torch.Tensor, p: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    """Sizes and members of the top-p sets of probability rows.

    Args:
        probs: ``[rows, V]`` probabilities (each row sums to 1; float64 recommended).
        p: mass threshold in ``(0, 1]``.

    Returns:
        ``sizes [rows]`` (int64, the smallest k whose k largest probabilities sum to ``>= p``;
        at most V) and ``members [rows, V]`` (bool; ties at the boundary go to the lower id).
    """
    p = _check_p(p)
    if probs.ndim != 2 or probs.shape[-1] == 0:
        raise ElensError(f"probs must be a [rows, V] tensor; got shape {tuple(probs.shape)}.")
    vocab = probs.shape[-1]
    sizes = torch.empty(probs.shape[0], dtype=torch.long, device=probs.device)
    members = torch.zeros(probs.shape, dtype=torch.bool, device=probs.device)
    rest = torch.arange(probs.shape[0], device=probs.device)
    if _TOP_CANDIDATES < vocab:
        # Most sets are far smaller than V: find them among the row's top K, ordered as the full
        # sort would order them (ties by id). A row is settled when its set closes inside the K
        # and its last member is larger than the K-th value, so that no token tied with it lies
        # outside; the others take the full sort below.
        values, ids = probs.topk(_TOP_CANDIDATES, dim=-1, sorted=False)
        by_id = ids.argsort(dim=-1)
        values, ids = values.gather(-1, by_id), ids.gather(-1, by_id)
        values, order = torch.sort(values, dim=-1, descending=True, stable=True)
        ids = ids.gather(-1, order)
        top_sizes = (values.cumsum(-1) < p).sum(-1) + 1
        last = values.gather(-1, (top_sizes - 1).clamp_max(_TOP_CANDIDATES - 1).unsqueeze(-1)).squeeze(-1)
        settled = (top_sizes <= _TOP_CANDIDATES) & (last > values[:, -1])
        ranks = torch.arange(_TOP_CANDIDATES, device=probs.device)
        rows = settled.nonzero().squeeze(-1)
        sizes[rows] = top_sizes[rows]
        members[rows] = members[rows].scatter(-1, ids[rows], ranks.unsqueeze(0) < top_sizes[rows].unsqueeze(-1))
        rest = (~settled).nonzero().squeeze(-1)
    if len(rest):
        values, order = torch.sort(probs[rest], dim=-1, descending=True, stable=True)
        csum = values.cumsum(-1)
        rest_sizes = ((csum < p).sum(-1) + 1).clamp_max(vocab)
        ranks = torch.arange(vocab, device=probs.device)
        sizes[rest] = rest_sizes
        members[rest] = members[rest].scatter(-1, order, ranks.unsqueeze(0) < rest_sizes.unsqueeze(-1))
    return sizes, members


def jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Jaccard index of row sets given as bool masks ``[rows, V]`` -> ``[rows]`` float64.

    Two empty sets have index 1 (identical); top-p sets are never empty.
    """
    if a.shape != b.shape or a.dtype != torch.bool or b.dtype != torch.bool:
        raise ElensError(f"jaccard takes two bool masks of one shape; got {a.dtype} {tuple(a.shape)} and {b.dtype} {tuple(b.shape)}.")
    inter = (a & b).sum(-1).double()
    union = (a | b).sum(-1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


@dataclasses.dataclass(frozen=True)
class CandidateSets:
    """Top-p candidate sets of every block at every generated token.

    Attributes:
        profiles: the generation's entropy profiles (``[N, T, L, A]``), from
            :func:`~elens_utils.lens.generation.generate_profiles`, or the profiles passed in.
        p: the mass threshold.
        sizes: ``[N, T, L]`` int64 set sizes; ``sizes[n, k-1, l-1]`` is block l at token k.
        jaccard: ``[N, T, L-1]`` float64 overlap of blocks ``l-1`` and ``l`` at entry ``l-2``.
        entropy: ``[N, T, L]`` float64 Shannon entropy (nats) of the same dense distributions,
            a check that sizes and profiles describe the same predictions (it equals the
            profiles' Shannon entropy to float rounding).
    """

    profiles: Profiles
    p: float
    sizes: np.ndarray
    jaccard: np.ndarray
    entropy: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """Long form: one row per prompt, token and block, with ``H``, ``dH``, ``size``,
        ``d_size`` and ``jaccard_prev`` (``dH``, ``d_size``, ``jaccard_prev`` are NaN for block 1)."""
        n, t, l = self.sizes.shape
        nn_, tt, ll = np.meshgrid(np.arange(n), np.arange(1, t + 1), np.arange(1, l + 1), indexing="ij")
        pad = np.full((n, t, 1), np.nan)
        h = self.entropy
        return pd.DataFrame(
            {
                "model": np.asarray(self.profiles.meta["model"], dtype=object)[nn_.ravel()],
                "prompt_index": nn_.ravel(),
                "token": tt.ravel(),
                "block": ll.ravel(),
                "H": h.ravel(),
                "dH": np.concatenate([pad, np.diff(h, axis=2)], axis=2).ravel(),
                "size": self.sizes.ravel(),
                "d_size": np.concatenate([pad, np.diff(self.sizes.astype(np.float64), axis=2)], axis=2).ravel(),
                "jaccard_prev": np.concatenate([pad, self.jaccard], axis=2).ravel(),
            }
        )


def _row_chunk(vocab: int, row_chunk: int | None) -> int:
    if row_chunk is None:
        return max(1, (1 << 24) // vocab)  # 16 M float64 probabilities (128 MB) per chunk
    if isinstance(row_chunk, (bool, np.bool_)) or not isinstance(row_chunk, numbers.Integral) or row_chunk < 1:
        raise ElensError(f"row_chunk must be an integer >= 1 or None; got {row_chunk!r}.")
    return int(row_chunk)


@torch.no_grad()
def _batch_sets(lm: LensModel, rows: list[list[int]], steps: int, p: float, chunk: int):
    """Sizes ``[B, T, L]``, Jaccard ``[B, T, L-1]``, entropy ``[B, T, L]`` for one batch of
    teacher-forced sequences whose last ``steps`` positions are the generation steps."""
    parts = lm.parts
    input_ids, mask, positions = left_pad(rows, lm.tokenizer.pad_token_id, lm.device)
    with BlockCapture(parts.blocks, last_only=False) as cap:
        lm.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False, logits_to_keep=1)
        resid = cap.take()[:, :, -steps:]  # [L, B, T, d]
    n_layers, batch = resid.shape[0], resid.shape[1]
    flat = resid.reshape(n_layers, batch * steps, -1)
    sizes = torch.empty((n_layers, batch * steps), dtype=torch.long)
    overlap = torch.empty((max(n_layers - 1, 0), batch * steps), dtype=torch.float64)
    entropy = torch.empty((n_layers, batch * steps), dtype=torch.float64)
    for r0 in range(0, batch * steps, chunk):
        prev = None
        for layer in range(n_layers):
            if layer % _BLOCKS_PER_PRODUCT == 0:
                # Several blocks' rows in one product: the unembedding (671 MB for Gemma-3 in
                # float32) is then read once for all of them, not once per block's few rows.
                group = parts.logits(flat[layer : layer + _BLOCKS_PER_PRODUCT, r0 : r0 + chunk])
            logits = group[layer % _BLOCKS_PER_PRODUCT]  # [r, V] float32
            if not torch.isfinite(logits).all():
                raise ElensError(
                    f"Non-finite lens logits at block {layer + 1}: the model overflowed; load it in "
                    "float32 or bfloat16."
                )
            probs = torch.softmax(logits.double(), dim=-1)
            size, members = top_p_sets(probs, p)
            sizes[layer, r0 : r0 + chunk] = size.cpu()
            entropy[layer, r0 : r0 + chunk] = torch.special.entr(probs).sum(-1).cpu()
            if prev is not None:
                overlap[layer - 1, r0 : r0 + chunk] = jaccard(prev, members).cpu()
            prev = members
            del logits, probs
        del group
    shape = (batch, steps)
    return (
        sizes.view(n_layers, *shape).permute(1, 2, 0).numpy(),
        overlap.view(-1, *shape).permute(1, 2, 0).numpy(),
        entropy.view(n_layers, *shape).permute(1, 2, 0).numpy(),
    )


def candidate_set_sizes(
    lm: LensModel,
    prompts: Sequence[str | Sequence[int]],
    *,
    p: float = 0.6,
    max_new_tokens: int = 32,
    profiles: Profiles | None = None,
    batch_size: int = 8,
    row_chunk: int | None = None,
    progress: bool | None = None,
    **generation_kwargs,
) -> CandidateSets:
    """Top-p candidate-set size of every block's lens at every generated token.

    Args:
        lm: a model from :func:`elens_utils.load_model`.
        prompts: N prompts (strings or token-id lists), as for ``lm.profile``.
        p: the mass threshold of the sets (the paper: 0.6).
        max_new_tokens: T, tokens generated per prompt.
        profiles: profiles already generated by ``lm`` from these ``prompts`` (in order): their
            ``generated_ids`` are reused and nothing is generated.
        batch_size: prompts per forward pass (generation and the teacher-forced pass).
        row_chunk: rows of dense ``[rows, V]`` probabilities handled at once (None: about 16 M
            values per chunk).
        progress: progress bars (None: only in a terminal or notebook).
        **generation_kwargs: ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``seed``,
            ``alphas``, ``labels`` for :func:`~elens_utils.lens.generation.generate_profiles`.

    Returns:
        :class:`CandidateSets` (see the module docstring for the exact definitions).
    """
    p = _check_p(p)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ElensError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    chunk = _row_chunk(lm.parts.vocab_size, row_chunk)
    if profiles is None:
        profiles = lm.profile(
            prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress, **generation_kwargs
        )
    else:
        if generation_kwargs:
            raise ElensError(
                f"Generation settings {sorted(generation_kwargs)} were given with profiles=...: the "
                "profiles' own generated tokens are used, so drop them."
            )
        if not isinstance(profiles, Profiles):
            raise ElensError(f"profiles must be a Profiles object; got {type(profiles).__name__}.")
        if profiles.n != len(prompts):
            raise ElensError(f"Got {profiles.n} profiles for {len(prompts)} prompts: pass the prompts they were generated from.")
        if profiles.n_layers != lm.n_layers or (profiles.meta["depth_grid"] != "raw").any():
            raise ElensError(
                f"The profiles (L = {profiles.n_layers}, depth grid {sorted(set(profiles.meta['depth_grid']))}) "
                f"are not raw profiles of this {lm.n_layers}-block model."
            )
    encoded = lm.encode(prompts)
    generated = [list(g) for g in profiles.meta["generated_ids"]]
    steps = profiles.n_tokens
    n, n_layers = len(encoded), lm.n_layers
    sizes = np.empty((n, steps, n_layers), dtype=np.int64)
    overlap = np.empty((n, steps, n_layers - 1), dtype=np.float64)
    entropy = np.empty((n, steps, n_layers), dtype=np.float64)
    order = sorted(range(n), key=lambda i: -len(encoded[i]))
    with tqdm(total=n, desc=f"candidate sets {lm.name}", unit="prompt", disable=None if progress is None else not progress) as bar:
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            rows = [encoded[i] + generated[i][: steps - 1] for i in idx]
            s, o, h = _batch_sets(lm, rows, steps, p, chunk)
            sizes[idx], overlap[idx], entropy[idx] = s, o, h
            bar.update(len(idx))
    return CandidateSets(profiles=profiles, p=p, sizes=sizes, jaccard=overlap, entropy=entropy)


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import spearmanr

    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan, math.nan  # undefined for constant input
    res = spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def spearman_delta_vs_size(
    entropy_profiles: Profiles | Sequence[Profiles],
    sizes: Any,
    *,
    alpha: float = 1.0,
    log_sizes: bool = False,
) -> pd.DataFrame:
    """Spearman correlation between dH_l and the change in top-p set size from block l-1 to l.

    Args:
        entropy_profiles: raw profiles ``[N, T, L, A]``, or a list of them (one per model, as
            models of different depth cannot share one :class:`Profiles`).
        sizes: the matching set sizes ``[N, T, L]``: an array or a :class:`CandidateSets` (or a
            list of them, paired with the list of profiles).
        alpha: the Renyi order of the entropies (1 = Shannon).
        log_sizes: correlate with the change in ``log(size)`` instead of ``size``.

    Returns:
        One row per model (``meta["model"]``) and a last row ``model = "pooled"`` over every
        (prompt, token, block-transition) pair of every model, with ``rho``, ``pvalue``
        (scipy's, which treats the pairs as independent, as they are not) and ``n_pairs``.
        ``rho`` is NaN where either variable is constant.
    """
    many = not isinstance(entropy_profiles, Profiles)
    profs = list(entropy_profiles) if many else [entropy_profiles]
    size_list = list(sizes) if many else [sizes]
    if len(profs) != len(size_list) or not profs:
        raise ElensError(f"Got {len(profs)} profiles for {len(size_list)} size arrays: pass one size array per Profiles.")
    xs: dict[str, list[np.ndarray]] = {}
    ys: dict[str, list[np.ndarray]] = {}
    for prof, sz in zip(profs, size_list):
        if not isinstance(prof, Profiles):
            raise ElensError(f"Expected Profiles; got {type(prof).__name__}.")
        if isinstance(sz, CandidateSets):
            sz = sz.sizes
        sz = np.asarray(sz)
        if sz.dtype.kind not in "iuf" or sz.shape != prof.entropy.shape[:3]:
            raise ElensError(
                f"sizes must be a numeric [N, T, L] = {prof.entropy.shape[:3]} array matching the "
                f"profiles; got {sz.dtype} {sz.shape}."
            )
        if (prof.meta["depth_grid"] != "raw").any():
            raise ElensError("Use raw profiles (one entry per block): sizes are per block, not on a resampled grid.")
        if prof.n_layers < 2:
            raise ElensError("A model with one block has no block-to-block changes.")
        if (sz < 1).any():
            raise ElensError("Set sizes must be >= 1.")
        d_h = prof.delta()[..., prof._alpha_index(alpha)].astype(np.float64)
        s = np.log(sz.astype(np.float64)) if log_sizes else sz.astype(np.float64)
        d_s = np.diff(s, axis=2)
        for model in prof.meta["model"].unique():
            rows = np.flatnonzero((prof.meta["model"] == model).to_numpy())
            xs.setdefault(model, []).append(d_h[rows].ravel())
            ys.setdefault(model, []).append(d_s[rows].ravel())
    out = []
    for model in list(xs) + ["pooled"]:
        if model == "pooled":
            x = np.concatenate([a for v in xs.values() for a in v])
            y = np.concatenate([a for v in ys.values() for a in v])
        else:
            x, y = np.concatenate(xs[model]), np.concatenate(ys[model])
        rho, pval = _spearman(x, y)
        out.append({"model": model, "rho": rho, "pvalue": pval, "n_pairs": int(x.size)})
    return pd.DataFrame(out)
