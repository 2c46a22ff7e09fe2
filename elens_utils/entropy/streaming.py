"""Entropies of next-token distributions by a streaming reduction over the vocabulary.

The lens turns a residual vector into logits ``z`` over a vocabulary of size V. Materialising
``[rows x V]`` logits for every layer and token is what makes naive lens code slow and memory
hungry (tens of GB at Gemma-2 sizes), so entropies here come from a handful of per-row
statistics that are accumulated one vocabulary chunk at a time and merged exactly (the columns
and the formulas are in :mod:`elens_utils.entropy.stats`). With a ``support_threshold``, the
Hartley entropy (``a = 0``) is the log of the number of tokens whose probability exceeds it.
All statistics are float32 whatever the model dtype; the Triton kernel in
:mod:`elens_utils.entropy.triton_kernel` produces the same statistics layout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from elens_utils.core.errors import ElensError
from elens_utils.entropy import cpu as entropy_cpu
from elens_utils.entropy.precision import bf16_weight, resolve_precision
from elens_utils.entropy.stats import (  # noqa: F401 (re-exported: the statistics' old home)
    ENTROPY_RANGE_TOL,
    M,
    S,
    T,
    entropy_outside_range,
    finalize_stats,
    logit_stats,
    merge_stats,
    normalize_alphas,
    power_alphas,
)

__all__ = [
    "normalize_alphas",
    "power_alphas",
    "logit_stats",
    "merge_stats",
    "finalize_stats",
    "lens_entropy",
    "dense_entropy",
    "logp_entropy",
    "entropy_outside_range",
]


# Budget for one [rows x vocab] logits tile on the CPU path: 1M floats = 4 MB; three such buffers
# (logits, exponentials, scratch) are reused for every tile. Large enough for the matmul to run at
# full speed, small enough that the reduction passes over a tile stay in the cores' L2 (2 MB each
# here) and the last-level cache: on 2 Xeon cores 1M-element tiles beat 4M-element ones by 5-15%
# (python -m elens_utils.bench.suite). On CUDA the torch path (the fallback to the Triton kernel) takes
# larger tiles, so that each kernel launch has enough work.
_TILE_ELEMENTS = 1 << 20
_CUDA_TILE_ELEMENTS = 1 << 24
#: Logits per row recomputed in fp32 on the bf16 path (precision="bf16"). Measured on the real
#: models' block outputs (both models, every block and position of a few natural prompts):
#: K = 16 cuts the largest error of plain bf16 by 2-6x and the mean by 5-14x; K = 64 helps
#: little more, and the candidates' cost grows with K.
BF16_EXACT_TOP = 16
# Candidates for those K per tile: the tokens of the _TOP_GROUPS groups of _TOP_GROUP adjacent
# vocabulary entries with the largest maxima (a topk over the whole tile would cost 80% of the
# bf16 product; this costs ~25%).
_TOP_GROUP = 32
_TOP_GROUPS = 2
# Tiles whose candidates are collected before the K largest are selected from them (a topk per
# tile cost as much as the candidates themselves).
_TOP_MERGE_TILES = 8
_TOP_GATHER_ELEMENTS = 1 << 22
# Arguments of exp are clamped from below at this value. exp(-87) = 1.6e-38 is float32's smallest
# normal magnitude; torch's vectorised exp takes a slow path about 10x slower for arguments below
# about -104, which real models' logit tiles are full of (Gemma-3's early blocks spread their
# logits over hundreds of nats, and a Renyi order of 5 multiplies the spread by 5). A clamped
# term adds at most V x 1.6e-38 to a sum that holds the max term exp(0) = 1: nothing in float32.
_EXP_FLOOR = -87.0
# Row blocks of at most this many rows use transposed [vocab, rows] tiles on the CPU.
_TRANSPOSE_MAX_ROWS = 512


def _check_lens_inputs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    if hidden.dim() != 2 or weight.dim() != 2:
        raise ElensError(
            f"lens_entropy expects hidden [rows, d] and weight [V, d]; got {tuple(hidden.shape)} "
            f"and {tuple(weight.shape)}."
        )
    if hidden.shape[1] != weight.shape[1]:
        raise ElensError(
            f"Width mismatch: hidden states have d={hidden.shape[1]} but the unembedding has "
            f"d={weight.shape[1]}. Is the final norm / projection applied?"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ElensError(f"Unembedding bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},).")


def _logits_tile(
    h: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    softcap: float | None,
    out: torch.Tensor | None = None,
    transposed: bool = False,
    half_out: torch.Tensor | None = None,
) -> torch.Tensor:
    """fp32 logits of rows ``h`` against vocabulary rows ``w``, with bias and soft-capping.

    With ``out`` (a contiguous float32 buffer of the tile's shape) the logits are written there
    and every step runs in place: no tile-sized allocation, which on the CPU costs more than the
    arithmetic (fresh pages are faulted in and zeroed on every large allocation). With
    ``transposed`` the tile is ``[rows(w), rows(h)]`` (``w @ h.T``), else ``[rows(h), rows(w)]``.
    ``half_out``, a buffer of ``h``'s dtype and the tile's shape, receives a half-precision
    product before its copy into ``out`` (again no allocation).
    """
    if out is None:
        z = (w @ h.T if transposed else h @ w.T).float()
    elif h.dtype == torch.float32:
        z = torch.matmul(w, h.T, out=out) if transposed else torch.matmul(h, w.T, out=out)
    else:  # half-precision product, rounded to its dtype as in the allocating branch
        if half_out is None:
            half = w @ h.T if transposed else h @ w.T
        else:
            half = torch.matmul(w, h.T, out=half_out) if transposed else torch.matmul(h, w.T, out=half_out)
        z = out.copy_(half)
    if b is not None:
        z += b.float().unsqueeze(-1) if transposed else b.float()
    if softcap is not None:
        if out is None:
            z = torch.tanh(z / softcap) * softcap
        else:
            z.div_(softcap).tanh_().mul_(softcap)
    return z


def tile_shape(
    rows: int, vocab: int, chunk_size: int | None = None, device: torch.device | str = "cpu"
) -> tuple[int, int]:
    """``(row_block, chunk)`` of the torch path's logits tiles for ``rows x vocab`` logits.

    About :data:`_TILE_ELEMENTS` logits per tile (CPU), all rows in one block when they fit
    beside a chunk of at least 1024 vocabulary entries. :mod:`elens_utils.bench.suite` times the bare
    matmul with the same tiles, as the hardware limit of this path.
    """
    budget = _CUDA_TILE_ELEMENTS if torch.device(device).type == "cuda" else _TILE_ELEMENTS
    chunk = chunk_size or max(1024, min(vocab, budget // max(rows, 1)))
    chunk = max(1, min(chunk, vocab))
    return max(1, min(rows, budget // chunk)), chunk


def transposed_tiles(row_block: int, device: torch.device | str) -> bool:
    """Whether the torch path lays its tiles out ``[vocab, rows]`` (``weight @ hidden.T``).

    On the CPU, for few rows per tile (one generation step: layers x prompts), MKL runs
    ``[chunk, d] @ [d, rows]`` faster than ``[rows, d] @ [d, chunk]`` (15-20% at 192 rows on 2
    Xeon cores), and the reductions then run down the columns of a contiguous tile.
    """
    return torch.device(device).type == "cpu" and row_block <= _TRANSPOSE_MAX_ROWS


def _power_sum(zc: torch.Tensor, e: torch.Tensor, a: float, scratch: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``sum exp(a * zc)`` along ``dim``, given ``e = exp(zc)``; ``scratch`` is a tile buffer.

    a = 2 is the squared Euclidean norm of ``e`` (one fused read pass), a = 0.5 the sum of its
    square roots; other orders take one multiply and one exponential. These agree with
    ``exp(a * zc)`` to float32 rounding wherever a term is not negligible (``e`` underflows only
    for ``zc < -87``, terms far below the row maximum's contribution of 1).
    """
    if a == 2.0:
        return torch.linalg.vector_norm(e, 2, dim=dim).square_()
    if a == 0.5:
        return torch.sqrt(e, out=scratch).sum(dim)
    return torch.mul(zc, a, out=scratch).clamp_min_(_EXP_FLOOR).exp_().sum(dim)


def _torch_stats(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    softcap: float | None,
    powers: Sequence[float],
    chunk_size: int | None,
    exact_top: int = 0,
) -> torch.Tensor:
    """Statistics ``[rows, 3 + len(powers)]`` by tiles of ``row_block x chunk`` logits.

    Three tile buffers (logits, their exponentials, scratch) are allocated once and reused; each
    tile goes: matmul into the buffer, max over the vocabulary axis, in-place shift by the
    running max, exp, and the sums. The running statistics are re-centred on the new maximum
    after every tile (the algebra of :func:`merge_stats`, applied to ``[rows]`` vectors instead
    of stacking). Small row blocks use transposed tiles (:func:`transposed_tiles`).

    With ``exact_top = K > 0`` the products run in bf16 (``hidden`` and a cached bf16 copy of
    ``weight``; fp32 accumulation, bf16 result) and the K largest logits of each row are then
    recomputed from the fp32 operands, replacing their bf16 values in every statistic
    (:func:`_exact_top_correction`).
    """
    rows, vocab = hidden.shape[0], weight.shape[0]
    row_block, chunk = tile_shape(rows, vocab, chunk_size, hidden.device)
    # The fused kernel reads [rows, vocab] tiles. An fp32 product of few rows runs faster
    # transposed (transposed_tiles) than the kernel saves; a bf16 one does not.
    transposed = transposed_tiles(row_block, hidden.device)
    fused = hidden.device.type == "cpu" and (exact_top or not transposed) and entropy_cpu.available()
    transposed = transposed and not fused
    red = 0 if transposed else 1  # the vocabulary axis of a tile
    n_tile = row_block * chunk
    opts = {"dtype": torch.float32, "device": hidden.device}
    z_buf = torch.empty(n_tile, **opts)
    e_buf = torch.empty(n_tile, **opts)
    p_buf = torch.empty(n_tile, **opts) if any(a != 2.0 for a in powers) else None
    out = torch.empty(rows, 3 + len(powers), **opts)
    product_weight = weight
    half_buf = None
    if exact_top:
        product_weight = bf16_weight(weight)
        half_buf = torch.empty(n_tile, dtype=torch.bfloat16, device=hidden.device)
    for r0 in range(0, rows, row_block):
        h = hidden[r0 : r0 + row_block]
        h_product = h.to(torch.bfloat16) if exact_top else h
        nr = h.shape[0]
        m = s = t = None
        p: list[torch.Tensor] = []
        cand_z: list[torch.Tensor] = []
        cand_i: list[torch.Tensor] = []
        running_top = None
        if fused and exact_top:
            k = min(exact_top, vocab)
            running_top = (torch.full((nr, k), -math.inf), torch.zeros((nr, k), dtype=torch.int64))
        for v0 in range(0, vocab, chunk):
            w = product_weight[v0 : v0 + chunk]
            n = nr * w.shape[0]
            shape = (w.shape[0], nr) if transposed else (nr, w.shape[0])
            b = None if bias is None else bias[v0 : v0 + chunk]
            half = None if half_buf is None else half_buf[:n].view(shape)
            z = _logits_tile(h_product, w, b, softcap, out=z_buf[:n].view(shape), transposed=transposed, half_out=half)
            if fused:  # every statistic in two passes per row, top K kept (elens_utils.entropy.cpu)
                st, _ = entropy_cpu.tile_stats(
                    z, powers, _EXP_FLOOR, _TOP_GROUP if exact_top else 0, _TOP_GROUPS if exact_top else 0,
                    top=running_top, v0=v0,
                )
                m_new = st[:, M] if m is None else torch.maximum(m, st[:, M])
                # the kernel centres a tile's sums on its own maximum: move them to the running one
                s_c, t_c, p_c = _recentre(
                    st[:, M] - m_new, st[:, S], st[:, T], [st[:, 3 + j] for j in range(len(powers))], powers
                )
            else:
                if exact_top:
                    tz, ti = _tile_candidates(z, red, v0)
                    cand_z.append(tz)
                    cand_i.append(ti)
                    if len(cand_z) > _TOP_MERGE_TILES:  # one selection per few tiles, not per tile
                        top = _keep_top(cand_z, cand_i, exact_top)
                        cand_z, cand_i = [top[0]], [top[1]]
                e = e_buf[:n].view(shape)
                scratch = None if p_buf is None else p_buf[:n].view(shape)
                m_new = z.amax(dim=red)
                if m is not None:
                    m_new = torch.maximum(m, m_new)
                zc = z.sub_(m_new.unsqueeze(red))  # <= 0, relative to the running max
                torch.clamp_min(zc, _EXP_FLOOR, out=e).exp_()
                s_c = e.sum(red)
                p_c = [_power_sum(zc, e, a, scratch, red) for a in powers]
                t_c = zc.mul_(e).sum(red)  # zc is not needed after this
            if m is None:
                s, t, p = s_c, t_c, p_c
            else:
                s, t, p = _recentre(m - m_new, s, t, p, powers)
                s, t, p = s + s_c, t + t_c, [p_j + p_cj for p_j, p_cj in zip(p, p_c)]
            m = m_new
        if exact_top:
            top_z, top_i = running_top if fused else _keep_top(cand_z, cand_i, exact_top)
            m, s, t, p = _exact_top_correction(
                h, weight, bias, softcap, powers, top_z, top_i, m, s, t, p
            )
        block = out[r0 : r0 + nr]
        block[:, M], block[:, S], block[:, T] = m, s, t
        for j, p_j in enumerate(p):
            block[:, 3 + j] = p_j
    return out


def _tile_candidates(z: torch.Tensor, red: int, v0: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A tile's candidates for the rows' largest logits: ``([rows, c]`` values, ``[rows, c]`` ids).

    ``z`` is a tile whose vocabulary axis is ``red`` and whose first vocabulary id is ``v0``.
    A ``topk`` over the tile would cost as much as the bf16 product itself, so the candidates
    are the entries of the tile's :data:`_TOP_GROUPS` groups of :data:`_TOP_GROUP` adjacent
    tokens with the largest maxima (plus any ragged tail): they always hold the tile's maximum.
    (The fused CPU kernel picks the same candidates in its first pass.)
    """
    zr = z if red == 1 else z.T  # [rows, chunk] view
    rows, chunk = zr.shape
    main = chunk // _TOP_GROUP * _TOP_GROUP
    parts_z, parts_i = [], []
    if main >= _TOP_GROUP * _TOP_GROUPS:
        n_groups = main // _TOP_GROUP
        if red == 1:
            group_max = z[:, :main].reshape(rows, n_groups, _TOP_GROUP).amax(-1)
        else:
            group_max = z[:main].reshape(n_groups, _TOP_GROUP, rows).amax(1).T
        best = group_max.topk(_TOP_GROUPS, dim=1, sorted=False).indices * _TOP_GROUP  # [rows, groups]
        offsets = torch.arange(_TOP_GROUP, device=z.device)
        cols = (best.unsqueeze(-1) + offsets).reshape(rows, -1)
        parts_z.append(zr.gather(1, cols))
        parts_i.append(cols)
    else:
        main = 0
    if main < chunk:
        parts_z.append(zr[:, main:])
        parts_i.append(torch.arange(main, chunk, device=z.device).expand(rows, -1))
    cand_z = parts_z[0] if len(parts_z) == 1 else torch.cat(parts_z, 1)
    cand_i = parts_i[0] if len(parts_i) == 1 else torch.cat(parts_i, 1)
    return cand_z.clone() if cand_z.data_ptr() == zr.data_ptr() else cand_z, cand_i + v0


def _keep_top(
    parts_z: list[torch.Tensor], parts_i: list[torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest of the candidates collected so far (``[rows, k]`` values and ids)."""
    both_z = parts_z[0] if len(parts_z) == 1 else torch.cat(parts_z, 1)
    both_i = parts_i[0] if len(parts_i) == 1 else torch.cat(parts_i, 1)
    if both_z.shape[1] <= k:
        return both_z, both_i
    keep = both_z.topk(k, dim=1, sorted=False).indices
    return both_z.gather(1, keep), both_i.gather(1, keep)


def _exact_top_correction(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    softcap: float | None,
    powers: Sequence[float],
    top_z: torch.Tensor,
    top_i: torch.Tensor,
    m: torch.Tensor,
    s: torch.Tensor,
    t: torch.Tensor,
    p: list[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Swap the bf16 values of each row's top-K logits for fp32 ones in the running statistics.

    The statistics ``m, s, t, p`` (each ``[rows]``) are centred on ``m``, the bf16 maximum;
    ``top_z [rows, K]`` are the bf16 logits of tokens ``top_i`` and are replaced by the exact
    ``h . W[i] (+ b[i])`` (soft-capped), computed from the fp32 operands (``rows x K x d``
    multiply-adds). The result is re-centred on the exact maximum, so that ``m`` stays the max
    logit (the min-entropy reads it). The tokens that carry most of the probability mass are
    the ones whose rounding moves an entropy most; the others' errors mostly average out.
    """
    exact = torch.empty(top_i.shape, dtype=torch.float32, device=h.device)
    step = max(1, _TOP_GATHER_ELEMENTS // (top_i.shape[1] * h.shape[1]))
    for r0 in range(0, h.shape[0], step):  # gathered rows [step, K, d] stay ~16 MB
        w_top = weight[top_i[r0 : r0 + step]].float()
        torch.mul(w_top, h[r0 : r0 + step].float().unsqueeze(1), out=w_top)
        exact[r0 : r0 + step] = w_top.sum(-1)
    if bias is not None:
        exact = exact + bias.float()[top_i]
    if softcap is not None:
        exact = torch.tanh(exact / softcap) * softcap
    mu = m.unsqueeze(1)
    old_c, new_c = top_z - mu, exact - mu
    old_e, new_e = old_c.exp(), new_c.exp()
    s = s + (new_e - old_e).sum(1)
    t = t + (new_c * new_e - old_c * old_e).sum(1)
    p = [p_j + ((a * new_c).exp() - (a * old_c).exp()).sum(1) for a, p_j in zip(powers, p)]
    m_new = exact.amax(1)  # the bf16 top-K hold the true maximum
    return (m_new, *_recentre(m - m_new, s, t, p, powers))


def _recentre(
    delta: torch.Tensor, s: torch.Tensor, t: torch.Tensor, p: list[torch.Tensor], powers: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Running statistics centred on ``m_old`` re-centred on ``m_new``, ``delta = m_old - m_new``
    (each ``[rows]``): the algebra of :func:`merge_stats` on vectors."""
    scale = torch.exp(delta)
    return scale * s, scale * (t + delta * s), [torch.exp(a * delta) * p_j for a, p_j in zip(powers, p)]


def _support_size(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    softcap: float | None,
    log_z: torch.Tensor,
    threshold: float,
    chunk: int,
) -> torch.Tensor:
    """Second pass: number of tokens with probability > threshold (``z - log Z > log thr``)."""
    cut = log_z + math.log(threshold)
    count = torch.zeros(hidden.shape[0], dtype=torch.int64, device=hidden.device)
    for v0 in range(0, weight.shape[0], chunk):
        b = None if bias is None else bias[v0 : v0 + chunk]
        z = _logits_tile(hidden, weight[v0 : v0 + chunk], b, softcap)
        count += (z > cut.unsqueeze(-1)).sum(-1)
    return count.clamp_min(1)


def lens_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    softcap: float | None = None,
    alphas: float | Sequence[float] = (1.0,),
    chunk_size: int | None = None,
    backend: str = "auto",
    support_threshold: float | None = None,
    precision: str = "fp32",
) -> torch.Tensor:
    """Entropies of ``softmax(f(hidden @ weight.T + bias))`` without materialising the logits.

    Args:
        hidden: ``[rows, d]`` residual vectors that already went through the final norm.
        weight: ``[V, d]`` unembedding matrix (same device and dtype as ``hidden``).
        bias: optional ``[V]`` unembedding bias.
        softcap: if set, ``f(z) = softcap * tanh(z / softcap)`` (Gemma-2); else identity.
        alphas: Renyi orders, each ``>= 0`` or ``inf`` (1 = Shannon).
        chunk_size: vocabulary entries per tile (CPU path); ``None`` picks one for a ~16 MB tile.
            The result does not depend on it beyond float32 rounding.
        backend: ``"torch"``, ``"triton"`` (CUDA tensors, or CPU under ``TRITON_INTERPRET=1``)
            or ``"auto"`` (Triton on CUDA when installed, torch otherwise).
        support_threshold: for ``alpha = 0``, count tokens with probability above this instead of
            using V (costs a second pass over the vocabulary).
        precision: arithmetic of the unembedding product on the torch path (CPU). ``"fp32"``
            (default): float32 operands, agreement with float64 to ~1e-5 nats. ``"bf16"``: bf16
            operands and fp32 statistics, with the :data:`BF16_EXACT_TOP` largest logits of each
            row recomputed in fp32 (2.2x faster than fp32 on the benchmark's Gemma-3 lens, with
            the fused CPU kernel and avx512_bf16; its error against float64 on real models' block
            outputs is in the benchmark's ``real`` section). ``"auto"``: bf16 where measured
            faster and the lens is large (:func:`elens_utils.entropy.precision.resolve_precision`).
            Other than fp32 operands (a bf16 model's) are used as they are.

    Returns:
        ``[rows, len(alphas)]`` float32 entropies in nats.
    """
    alphas = normalize_alphas(alphas)
    _check_lens_inputs(hidden, weight, bias)
    powers = power_alphas(alphas)
    use_triton = backend == "triton" or (backend == "auto" and hidden.is_cuda and _triton_available())
    if backend not in ("auto", "torch", "triton"):
        raise ElensError(f"Unknown backend {backend!r}: use 'auto', 'torch' or 'triton'.")
    if hidden.shape[0] == 0:
        return torch.empty(0, len(alphas), dtype=torch.float32, device=hidden.device)
    if use_triton:
        from elens_utils.entropy.triton_kernel import triton_logit_stats

        stats = triton_logit_stats(hidden, weight, bias, softcap=softcap, powers=powers)
    else:
        lens_macs = hidden.shape[1] * weight.shape[0]
        bf16 = resolve_precision(precision, hidden.device, lens_macs) == "bf16" and hidden.dtype == torch.float32
        stats = _torch_stats(hidden, weight, bias, softcap, powers, chunk_size, BF16_EXACT_TOP if bf16 else 0)
    support = None
    if support_threshold is not None and 0.0 in alphas:
        if not 0 < support_threshold < 1:
            raise ElensError(f"support_threshold must lie in (0, 1); got {support_threshold}.")
        log_z = stats[:, M] + torch.log(stats[:, S])
        support = _support_size(
            hidden, weight, bias, softcap, log_z, support_threshold, chunk_size or 8192
        )
    return finalize_stats(stats, alphas, weight.shape[0], support)


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def dense_entropy(
    logits: torch.Tensor,
    alphas: float | Sequence[float] = (1.0,),
    support_threshold: float | None = None,
) -> torch.Tensor:
    """Reference entropies from materialised logits, by the textbook formulas in float64.

    Meant for tests, small worked examples and the parity check, not for bulk work.

    Args:
        logits: ``[..., V]`` logits (already soft-capped where the model does so).
        alphas: Renyi orders as in :func:`lens_entropy`.
        support_threshold: for a = 0, the probability a token must exceed to count (None: 0,
            so every token whose float64 probability does not underflow counts).

    Returns:
        ``[..., len(alphas)]`` float64 entropies in nats (:func:`logp_entropy` of the float64
        log-softmax).
    """
    logp = torch.log_softmax(logits.double(), dim=-1)
    return logp_entropy(logp, alphas, 0.0 if support_threshold is None else support_threshold)


def logp_entropy(
    logp: torch.Tensor,
    alphas: float | Sequence[float] = (1.0,),
    support_threshold: float | None = None,
) -> torch.Tensor:
    """Entropies of normalised log-probabilities by the textbook formulas, one tensor op each.

    Computed in the dtype of ``logp``: :func:`dense_entropy` passes float64, the benchmark's naive
    contender float32. ``-sum p log p`` (a = 1), ``-max log p`` (a = inf),
    ``log(sum p^a) / (1 - a)`` (other a > 0); a = 0 is ``log V`` when ``support_threshold`` is
    None (as :func:`lens_entropy` gives it), else the log of the number of tokens with
    ``p > support_threshold`` (at least 1).

    Args:
        logp: ``[..., V]`` log-probabilities (nats; each row's ``exp`` sums to 1).
        alphas: Renyi orders as in :func:`lens_entropy`.
        support_threshold: the probability a token must exceed to count in the a = 0 support,
            or None for the whole vocabulary.

    Returns:
        ``[..., len(alphas)]`` entropies in nats, in the dtype of ``logp``.
    """
    alphas = normalize_alphas(alphas)
    p = logp.exp()
    out = []
    for a in alphas:
        if a == 1.0:
            out.append(-(p * logp).sum(-1))
        elif a == math.inf:
            out.append(-logp.amax(-1))
        elif a == 0.0 and support_threshold is None:
            out.append(torch.full_like(logp[..., 0], math.log(logp.shape[-1])))
        elif a == 0.0:
            out.append(torch.log((p > support_threshold).sum(-1).clamp_min(1).to(logp.dtype)))
        else:
            out.append(torch.log((p**a).sum(-1)) / (1.0 - a))
    return torch.stack(out, dim=-1)
