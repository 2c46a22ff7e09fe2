"""Per-row statistics of logits from which every Rényi entropy follows, and their exact merge.

The lens turns a residual vector into logits ``z`` over a vocabulary of size V. Entropies come
from a handful of per-row statistics, accumulated one vocabulary slice at a time (on the CPU in
:mod:`elens_utils.entropy.streaming`, on a GPU in :mod:`elens_utils.entropy.triton_kernel`) and
merged exactly:

=========  ============================================  ==========================================
column     statistic (per row, ``m`` = max logit)        used for
=========  ============================================  ==========================================
``M``      ``m = max z``                                  everything (numerical stability)
``S``      ``s = sum exp(z - m)``                         normaliser: ``log Z = m + log s``
``T``      ``t = sum (z - m) exp(z - m)``                 Shannon ``H = log s - t / s``
``3 + j``  ``s_j = sum exp(a_j (z - m))``                 Renyi ``H_a = (log s_j - a log s) / (1 - a)``
=========  ============================================  ==========================================

The min-entropy (``a = inf``) is ``log s`` and the Hartley entropy (``a = 0``) is ``log V``
or the log of a counted support. All entropies are in nats; all statistics are float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from elens_utils.core.errors import ElensError

#: Slack of :func:`entropy_outside_range`, nats (float32 rounding of an entropy is ~1e-5).
ENTROPY_RANGE_TOL = 1e-3


def entropy_outside_range(h: torch.Tensor, vocab_size: int, tol: float = ENTROPY_RANGE_TOL) -> torch.Tensor:
    """Boolean mask of the entries of ``h`` (entropies, nats, any shape) outside
    ``[0, log V]`` by more than ``tol``, or not finite.

    Every Rényi entropy of a distribution over ``V`` tokens lies in ``[0, log V]``: a value
    outside is a broken computation, never a result.
    """
    bound = math.log(int(vocab_size))
    return ~torch.isfinite(h) | (h < -tol) | (h > bound + tol)

M, S, T = 0, 1, 2  # columns of a statistics tensor; power sums follow from column 3 on


def normalize_alphas(alphas: float | Sequence[float]) -> tuple[float, ...]:
    """Validate Renyi orders: floats ``>= 0`` or ``math.inf``; ``1`` means Shannon.

    Raises :class:`ElensError` for a negative, NaN, non-numeric or empty specification.
    """
    if isinstance(alphas, (int, float, np.floating, np.integer)):
        alphas = (alphas,)
    try:
        out = tuple(float(a) for a in alphas)
    except (TypeError, ValueError) as err:
        raise ElensError(f"alphas must be a sequence of numbers; got {alphas!r}.") from err
    if not out:
        raise ElensError("No entropy order given: pass at least one alpha (1.0 is Shannon).")
    for a in out:
        if math.isnan(a) or a < 0:
            raise ElensError(
                f"Renyi order alpha={a} is not allowed: use alpha >= 0 "
                "(0 = log support size, 1 = Shannon, inf = min-entropy)."
            )
    return out


def power_alphas(alphas: Sequence[float]) -> tuple[float, ...]:
    """The orders among ``alphas`` that need a power-sum column (all but 0, 1 and inf), unique."""
    seen: list[float] = []
    for a in alphas:
        if a not in (0.0, 1.0, math.inf) and a not in seen:
            seen.append(a)
    return tuple(seen)


def logit_stats(z: torch.Tensor, powers: Sequence[float] = ()) -> torch.Tensor:
    """Statistics of a block of logits.

    Args:
        z: logits ``[rows, V_chunk]``, float32.
        powers: the Renyi orders needing a power sum (see :func:`power_alphas`).

    Returns:
        float32 statistics ``[rows, 3 + len(powers)]`` (``m, s, t, s_1, ...``, as in the module docstring).
    """
    m = z.amax(dim=-1)
    zc = z - m.unsqueeze(-1)  # <= 0; the max entry is exactly 0
    e = torch.exp(zc)
    cols = [m, e.sum(-1), torch.linalg.vecdot(zc, e)]
    for a in powers:
        cols.append(torch.exp(zc * a).sum(-1))
    return torch.stack(cols, dim=-1)


def merge_stats(parts: torch.Tensor, powers: Sequence[float] = ()) -> torch.Tensor:
    """Merge statistics of disjoint vocabulary slices into those of their union.

    Args:
        parts: ``[K, rows, 3 + len(powers)]`` statistics of K slices (any K >= 1).
        powers: the orders of the power-sum columns, in column order.

    Returns:
        ``[rows, 3 + len(powers)]``, exactly what :func:`logit_stats` gives on the union.
    """
    m_k = parts[..., M]
    m = m_k.amax(dim=0)
    shift = m_k - m  # <= 0
    w = torch.exp(shift)
    s_k = parts[..., S]
    s = (w * s_k).sum(0)
    # Re-centre each slice's sum of (z - m_k) e^(z - m_k) on the common max m.
    t = (w * (parts[..., T] + shift * s_k)).sum(0)
    cols = [m, s, t]
    for j, a in enumerate(powers):
        cols.append((torch.exp(a * shift) * parts[..., 3 + j]).sum(0))
    return torch.stack(cols, dim=-1)


def finalize_stats(
    stats: torch.Tensor,
    alphas: Sequence[float],
    vocab_size: int,
    support_size: torch.Tensor | None = None,
) -> torch.Tensor:
    """Entropies (nats) from merged statistics.

    Args:
        stats: ``[rows, 3 + len(power_alphas(alphas))]`` float32.
        alphas: the requested orders (validated).
        vocab_size: V, for the Hartley entropy when no support is counted.
        support_size: optional ``[rows]`` count of tokens above a probability threshold.

    Returns:
        ``[rows, len(alphas)]`` float32 entropies in nats.
    """
    powers = power_alphas(alphas)
    log_s = torch.log(stats[:, S])
    out = []
    for a in alphas:
        if a == 1.0:
            out.append(log_s - stats[:, T] / stats[:, S])
        elif a == math.inf:
            out.append(log_s)
        elif a == 0.0:
            if support_size is None:
                out.append(torch.full_like(log_s, math.log(vocab_size)))
            else:
                out.append(torch.log(support_size.to(log_s.dtype)))
        else:
            j = powers.index(a)
            out.append((torch.log(stats[:, 3 + j]) - a * log_s) / (1.0 - a))
    return torch.stack(out, dim=-1)


def order_label(alpha: float) -> str:
    """A readable name for a Renyi order: ``1 -> "Shannon (α = 1)"``, ``inf -> "Rényi α = ∞"``."""
    a = float(alpha)
    if a == 1.0:
        return "Shannon (α = 1)"
    if math.isinf(a):
        return "Rényi α = ∞"
    return f"Rényi α = {a:g}"
