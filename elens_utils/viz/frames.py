"""Tidy frames for the charts: a prompt's lens per position and block, one position's curve, profiles
against relative depth, and the depth summary."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.core.token_text import show_token, token_texts
from elens_utils.entropy.profiles import raw_profiles
from elens_utils.entropy.stats import order_label  # re-exported: its old home

if TYPE_CHECKING:
    from elens_utils.entropy.profiles import Profiles
    from elens_utils.lens.capture import PromptLens

from elens_utils.viz.theme import need_columns

# ---------------------------------------------------------------------------------------------
# frames


def lens_frame(lens: PromptLens, tokenizer: Any, alpha: float = 1.0) -> pd.DataFrame:
    """One row per (position, block) of a :func:`~elens_utils.lens.capture.prompt_lens` result.

    Columns: ``position`` (0-based), ``token`` (the token at that position, shown with visible
    spaces), ``label`` (``"3 ␣cat"``, for an axis), ``next`` (the prompt's actual next token,
    ``""`` at the last position), ``layer`` (block 1..L), ``depth`` (layer / L), ``entropy``
    (nats, order ``alpha``), ``top1`` and ``p_top1`` (the block's most probable next token and
    its probability) and ``top`` (its k most probable tokens with probabilities, one string).
    """
    try:
        a_idx = list(lens.alphas).index(float(alpha))
    except ValueError as err:
        raise ElensError(f"alpha={alpha} was not computed by prompt_lens; available: {list(lens.alphas)}.") from err
    entropy = np.asarray(lens.entropy[..., a_idx], dtype=np.float64)  # [S, L]
    top_ids = np.asarray(lens.top_ids)  # [S, L, k]
    top_probs = np.asarray(lens.top_probs, dtype=np.float64)
    n_pos, n_layers = entropy.shape
    tokens = [show_token(tokenizer.convert_tokens_to_string([t])) for t in lens.tokens]
    width = len(str(n_pos - 1))
    rows = []
    for s in range(n_pos):
        for layer in range(n_layers):
            texts = token_texts(tokenizer, top_ids[s, layer])
            probs = top_probs[s, layer]
            rows.append(
                {
                    "position": s,
                    "token": tokens[s],
                    "label": f"{s:>{width}} {tokens[s]}",
                    "next": tokens[s + 1] if s + 1 < n_pos else "",
                    "layer": layer + 1,
                    "depth": (layer + 1) / n_layers,
                    "entropy": float(entropy[s, layer]),
                    "top1": texts[0],
                    "p_top1": float(probs[0]),
                    "top": "  ".join(f"{t} {p:.2f}" for t, p in zip(texts, probs)),
                }
            )
    return pd.DataFrame(rows)


def curve_frame(lens: PromptLens, position: int = -1) -> pd.DataFrame:
    """Entropy per block and Renyi order at one position of a prompt lens (default: the last).

    Columns: ``layer``, ``depth``, ``alpha`` (float; ``inf`` allowed), ``order`` (its label,
    see :func:`order_label`), ``entropy`` (nats), ``dH`` (entropy minus the previous block's;
    NaN for block 1, whose input, the embedding, is not a layer) and ``phase``
    (``"expansion"`` for dH > 0, ``"pruning"`` for dH < 0, ``"first block"``, or ``"flat"``).
    """
    entropy = np.asarray(lens.entropy, dtype=np.float64)  # [S, L, A]
    n_pos = entropy.shape[0]
    if not -n_pos <= position < n_pos:
        raise ElensError(f"position {position} is outside the prompt's {n_pos} positions.")
    h = entropy[position]  # [L, A]
    n_layers = h.shape[0]
    rows = []
    for a_idx, alpha in enumerate(lens.alphas):
        for layer in range(n_layers):
            dh = float(h[layer, a_idx] - h[layer - 1, a_idx]) if layer else float("nan")
            phase = "first block" if not layer else "expansion" if dh > 0 else "pruning" if dh < 0 else "flat"
            rows.append(
                {
                    "layer": layer + 1,
                    "depth": (layer + 1) / n_layers,
                    "alpha": float(alpha),
                    "order": order_label(alpha),
                    "entropy": float(h[layer, a_idx]),
                    "dH": dh,
                    "phase": phase,
                }
            )
    return pd.DataFrame(rows)


def depth_frame(profiles: Profiles | Sequence[Profiles], alpha: float = 1.0) -> pd.DataFrame:
    """Profiles averaged per model, against relative depth, for :func:`profiles_by_depth`.

    Each profile is first averaged over its generated tokens (the paper's "mean" aggregation);
    then, per model and block, the mean and standard deviation over the model's profiles.
    Takes one :class:`~elens_utils.entropy.profiles.Profiles` or several (models of different depth
    cannot share one array, so pass one per model). Raw (not resampled) profiles only.

    Columns: ``model``, ``n_layers``, ``layer`` (1..L), ``depth`` (layer / L), ``entropy``
    (mean, nats), ``sd``, ``lo``/``hi`` (mean -/+ sd) and ``n`` (profiles averaged).
    """
    frames = []
    for p in raw_profiles(profiles, "depth_frame()"):
        per_profile = p.select(alpha).mean(axis=1)  # [N, L]
        for model, idx in p.meta.groupby("model", sort=False).indices.items():
            h = per_profile[idx].astype(np.float64)
            n_layers = int(p.meta["n_layers"].iloc[idx[0]])
            mean, sd = h.mean(axis=0), (h.std(axis=0, ddof=1) if len(idx) > 1 else np.zeros(h.shape[1]))
            layer = np.arange(1, h.shape[1] + 1)
            frames.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "n_layers": n_layers,
                        "layer": layer,
                        "depth": layer / n_layers,
                        "entropy": mean,
                        "sd": sd,
                        "lo": mean - sd,
                        "hi": mean + sd,
                        "n": len(idx),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def depth_summary(frame: pd.DataFrame, n_points: int = 20) -> tuple[pd.DataFrame, dict[str, float]]:
    """A per-model summary of a :func:`depth_frame` and how far apart the models' profiles are.

    Returns:
        ``(table, overlap)``: ``table`` has one row per model (its blocks L, the entropy of
        the first and last block, the relative depth of the highest entropy, of the largest
        expansion step and of the largest pruning step); ``overlap`` has ``gap`` (the mean
        absolute difference between two models' mean profiles interpolated on ``n_points``
        common relative depths, averaged over model pairs; NaN for a single model) and
        ``spread`` (the mean, over models, of max - min of the profile along depth), in nats.
    """
    need_columns(frame, ["model", "n_layers", "layer", "depth", "entropy"], "depth_summary")
    grid = np.arange(1, n_points + 1) / n_points
    rows, curves = [], []
    for model, g in frame.groupby("model", sort=False):
        g = g.sort_values("layer")
        h, d = g["entropy"].to_numpy(float), g["depth"].to_numpy(float)
        dh = np.diff(h)
        rows.append(
            {
                "model": model,
                "L": int(g["n_layers"].iloc[0]),
                "H block 1": h[0],
                "H block L": h[-1],
                "peak at l/L": d[int(np.argmax(h))],
                "max expansion (l/L)": d[1 + int(np.argmax(dh))] if len(dh) and dh.max() > 0 else np.nan,
                "max pruning (l/L)": d[1 + int(np.argmin(dh))] if len(dh) and dh.min() < 0 else np.nan,
            }
        )
        curves.append(np.interp(grid, d, h))
    pairs = [np.abs(a - b).mean() for a, b in itertools.combinations(curves, 2)]
    overlap = {
        "gap": float(np.mean(pairs)) if pairs else float("nan"),
        "spread": float(np.mean([c.max() - c.min() for c in curves])),
    }
    return pd.DataFrame(rows), overlap
