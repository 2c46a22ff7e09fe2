"""Fused Triton kernel for the lens statistics: logits are never written to memory.

:func:`triton_logit_stats` returns the same ``[rows, 3 + len(powers)]`` statistics as
:func:`elens_utils.entropy.streaming.logit_stats` applied to the full logits ``f(hidden @ weight.T + bias)``,
but computes them in one pass over the unembedding without materialising a single logit outside
registers.

Design
------
* **Fused tiles.** A program owns ``BLOCK_M`` rows and walks a range of vocabulary tiles of
  ``BLOCK_V`` entries. For each tile it forms the logits with ``tl.dot`` over ``d`` in ``BLOCK_K``
  steps, accumulating in float32 (half-precision products are exact in float32, so the only
  rounding is that of the fp32 sums; float32 inputs use IEEE precision, not TF32, to agree with the
  torch path). Bias and soft-capping ``c * tanh(z / c)`` are applied in float32.
* **Online statistics.** The running ``m, s, t, s_j`` of the program's rows are updated per tile
  with the same re-centring algebra as :func:`~elens_utils.entropy.stats.merge_stats`: with the new
  maximum ``m'`` and ``delta = m - m' <= 0``, ``s <- e^delta s``, ``t <- e^delta (t + delta s)``
  and ``s_j <- e^(a_j delta) s_j`` before the tile's own sums are added. Vocabulary entries past
  ``V`` (the ragged tail, e.g. ``V = 50257``) are treated as ``-inf``: they contribute nothing.
* **Split vocabulary.** The lens has few rows (layers x tokens, often 100-2000) and a huge
  vocabulary (50k-256k), so parallelism over rows alone would leave most of a GPU idle. The grid is
  ``(cdiv(M, BLOCK_M), n_splits)``: each program handles a contiguous range of vocabulary tiles and
  writes partial statistics ``[n_splits, M, C]``, which :func:`~elens_utils.entropy.stats.merge_stats`
  merges exactly. ``n_splits`` aims at a few waves of programs on the device's multiprocessors, and
  every split owns at least one tile (an empty split would have ``m = -inf`` and break the merge).
  Row tiles vary fastest in launch order, so the programs running at the same time read the same
  slice of the unembedding and share it through L2.

The same code runs on CPU tensors under the Triton interpreter (``TRITON_INTERPRET=1``), which is
how it is tested without a GPU. Triton picks compiled or interpreted execution when a function is
decorated with ``triton.jit``, and its own library (``tl.zeros``, ``tl.sum``, ...) is decorated
when ``triton`` is imported, so the variable must be set before the first ``import triton``; a
mismatch is reported as an :class:`~elens_utils.core.errors.ElensError` rather than an obscure
interpreter failure. The interpreter multiplies bfloat16 tiles incorrectly (it sees their raw
16-bit storage as integers), so there half-precision tiles are upcast to float32 before
``tl.dot``; the result is the same, since their products are exact in float32 either way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from elens_utils.core.errors import ElensError
from elens_utils.entropy.stats import merge_stats

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is missing
    triton = None
    tl = None

__all__ = ["triton_logit_stats"]

_SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# GPU tile shape: a 64 x 128 fp32 logits tile per program (32 KB of registers over 4 warps), fed by
# 64-wide K steps that map onto the tensor-core MMA shapes for bf16/fp16 on Ampere and Hopper.
_BLOCK_M, _BLOCK_V, _BLOCK_K = 64, 128, 64
_NUM_WARPS, _NUM_STAGES = 4, 3
# Programs per multiprocessor to aim for: enough waves to hide the tail of uneven splits.
_PROGRAMS_PER_SM = 4
# Vocabulary splits under the interpreter: more than one, so the merge is exercised, but few,
# since each program runs serially on the CPU.
_INTERPRETER_SPLITS = 3


def _interpreting() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for the CPU interpreter now."""
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _decorated_mode(fn: object) -> bool | None:
    """Whether a ``triton.jit`` function was decorated for the interpreter (None: cannot tell)."""
    return {"InterpretedFunction": True, "JITFunction": False}.get(type(fn).__name__)


def _jit(fn):
    """``triton.jit`` where triton is installed; the plain function otherwise (never launched)."""
    return fn if triton is None else triton.jit(fn)


@_jit
def _stats_kernel(
    h_ptr,
    w_ptr,
    b_ptr,
    pow_ptr,
    out_ptr,
    M,
    V,
    D,
    tiles_per_split,
    stride_hm,
    stride_hk,
    stride_wv,
    stride_wk,
    stride_os,
    stride_om,
    softcap,
    HAS_BIAS: tl.constexpr,
    SOFTCAP: tl.constexpr,
    N_POW: tl.constexpr,
    N_POW_P2: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """One program: statistics of ``BLOCK_M`` rows over the vocabulary tiles of split ``pid_s``.

    Writes ``out[pid_s, rows, :]`` with columns ``m, s, t, s_1 .. s_N_POW``.
    """
    pid_m = tl.program_id(0)
    pid_s = tl.program_id(1)

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    ks = tl.arange(0, BLOCK_K)
    vs0 = tl.arange(0, BLOCK_V)
    js = tl.arange(0, N_POW_P2)
    pow_ok = js < N_POW
    alphas = tl.load(pow_ptr + js, mask=pow_ok, other=0.0)

    h_base = h_ptr + rows.to(tl.int64)[:, None] * stride_hm
    neg_inf = float("-inf")
    m_i = tl.full([BLOCK_M], neg_inf, tl.float32)
    s_i = tl.zeros([BLOCK_M], tl.float32)
    t_i = tl.zeros([BLOCK_M], tl.float32)
    p_i = tl.zeros([BLOCK_M, N_POW_P2], tl.float32)

    tile_lo = pid_s * tiles_per_split
    tile_hi = tl.minimum(tile_lo + tiles_per_split, tl.cdiv(V, BLOCK_V))
    for tile in range(tile_lo, tile_hi):
        vs = tile * BLOCK_V + vs0
        v_ok = vs < V
        w_base = w_ptr + vs.to(tl.int64)[None, :] * stride_wv

        z = tl.zeros([BLOCK_M, BLOCK_V], tl.float32)
        for k0 in range(0, D, BLOCK_K):
            kk = k0 + ks
            k_ok = kk < D
            h_mask = row_ok[:, None] & k_ok[None, :]
            w_mask = k_ok[:, None] & v_ok[None, :]
            h = tl.load(h_base + kk[None, :] * stride_hk, mask=h_mask, other=0.0)
            w = tl.load(w_base + kk[:, None] * stride_wk, mask=w_mask, other=0.0)
            if UPCAST:
                h = h.to(tl.float32)
                w = w.to(tl.float32)
            z = tl.dot(h, w, z, input_precision=PRECISION)

        if HAS_BIAS:
            z += tl.load(b_ptr + vs, mask=v_ok, other=0.0).to(tl.float32)[None, :]
        if SOFTCAP:
            # tanh(x) = sign(x) (1 - e^(-2|x|)) / (1 + e^(-2|x|)): the exponent is never positive.
            x = z / softcap
            e2 = tl.exp(-2.0 * tl.abs(x))
            th = (1.0 - e2) / (1.0 + e2)
            z = softcap * tl.where(x < 0, -th, th)
        z = tl.where(v_ok[None, :], z, neg_inf)

        m_new = tl.maximum(m_i, tl.max(z, axis=1))
        # Before the first tile s = t = s_j = 0 and m = -inf: a zero shift keeps them zero (no NaN).
        delta = tl.where(m_i > neg_inf, m_i - m_new, 0.0)
        scale = tl.exp(delta)
        zc = z - m_new[:, None]
        e = tl.exp(zc)
        # Masked entries have zc = -inf and e = 0: zero zc there so that they add 0, not NaN.
        t_i = scale * (t_i + delta * s_i) + tl.sum(tl.where(v_ok[None, :], zc, 0.0) * e, axis=1)
        s_i = scale * s_i + tl.sum(e, axis=1)
        if N_POW > 0:
            p_i = p_i * tl.exp(alphas[None, :] * delta[:, None])
            for j in tl.static_range(N_POW):
                a_j = tl.load(pow_ptr + j)
                p_j = tl.sum(tl.exp(a_j * zc), axis=1)
                p_i += tl.where(js[None, :] == j, p_j[:, None], 0.0)
        m_i = m_new

    out_rows = out_ptr + pid_s * stride_os + rows * stride_om
    tl.store(out_rows, m_i, mask=row_ok)
    tl.store(out_rows + 1, s_i, mask=row_ok)
    tl.store(out_rows + 2, t_i, mask=row_ok)
    if N_POW > 0:
        tl.store(out_rows[:, None] + 3 + js[None, :], p_i, mask=row_ok[:, None] & pow_ok[None, :])


def _check_inputs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    if triton is None:
        raise ElensError(
            "backend='triton' needs the triton package, which is not installed: "
            "pip install 'elens-utils[gpu]', or use backend='torch'."
        )
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ElensError(
            "triton_logit_stats expects hidden [M, d] and weight [V, d]; got "
            f"{tuple(hidden.shape)} and {tuple(weight.shape)}."
        )
    if weight.shape[0] == 0:
        raise ElensError("The unembedding has an empty vocabulary (weight has 0 rows).")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ElensError(
            f"Unembedding bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)."
        )
    tensors = [hidden, weight] + ([] if bias is None else [bias])
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ElensError(
            f"hidden, weight and bias must be on one device; got {sorted(map(str, devices))}."
        )
    if hidden.dtype not in _SUPPORTED_DTYPES or weight.dtype != hidden.dtype:
        raise ElensError(
            f"backend='triton' needs hidden and weight of one dtype among float32, bfloat16 and "
            f"float16; got {hidden.dtype} and {weight.dtype}."
        )
    device = hidden.device
    if device.type == "cpu":
        if not _interpreting():
            raise ElensError(
                "backend='triton' got CPU tensors, but Triton kernels run on CUDA devices: "
                "use backend='torch' or set TRITON_INTERPRET=1 (slow; for testing)."
            )
    elif device.type != "cuda":
        raise ElensError(f"backend='triton' supports CUDA tensors only; got tensors on {device}.")
    modes = {_interpreting(), _decorated_mode(tl.cdiv), _decorated_mode(_stats_kernel)} - {None}
    if len(modes) > 1:
        raise ElensError(
            "TRITON_INTERPRET changed after triton was imported, so Triton is half set up for its "
            "interpreter: set TRITON_INTERPRET=1 (or leave it unset) before the first "
            "'import triton', e.g. in the environment or at the top of conftest.py."
        )


def _default_splits(device: torch.device, row_tiles: int, vocab_tiles: int) -> int:
    if _interpreting():
        wanted = _INTERPRETER_SPLITS
    else:
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        wanted = triton.cdiv(_PROGRAMS_PER_SM * sms, row_tiles)
    return max(1, min(vocab_tiles, wanted))


def _launch(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    softcap: float | None,
    powers: Sequence[float],
    *,
    block_m: int,
    block_v: int,
    block_k: int,
    n_splits: int | None,
    num_warps: int = _NUM_WARPS,
    num_stages: int = _NUM_STAGES,
) -> torch.Tensor:
    """Run the kernel with explicit tile sizes and return the merged ``[M, 3 + len(powers)]`` stats.

    ``n_splits=None`` picks the default for the device; any requested count is reduced so that
    every split owns at least one vocabulary tile.
    """
    _check_inputs(hidden, weight, bias)
    if min(block_m, block_v, block_k) < 16:
        raise ElensError("Triton tile sizes must be at least 16 (a tl.dot requirement).")
    powers = tuple(float(a) for a in powers)
    device = hidden.device
    rows, d = hidden.shape
    vocab = weight.shape[0]
    n_cols = 3 + len(powers)
    if rows == 0:
        return torch.empty(0, n_cols, dtype=torch.float32, device=device)

    if hidden.stride(1) != 1:
        hidden = hidden.contiguous()
    if weight.stride(1) != 1:
        weight = weight.contiguous()
    if bias is not None:
        bias = bias.contiguous()

    row_tiles = triton.cdiv(rows, block_m)
    vocab_tiles = triton.cdiv(vocab, block_v)
    splits = _default_splits(device, row_tiles, vocab_tiles) if n_splits is None else n_splits
    splits = max(1, min(splits, vocab_tiles))
    tiles_per_split = triton.cdiv(vocab_tiles, splits)
    splits = triton.cdiv(vocab_tiles, tiles_per_split)

    partial = torch.empty(splits, rows, n_cols, dtype=torch.float32, device=device)
    pows = torch.tensor(powers if powers else (0.0,), dtype=torch.float32, device=device)
    interpreting = _interpreting()
    half = hidden.dtype != torch.float32
    extra = {} if interpreting else {"num_warps": num_warps, "num_stages": num_stages}
    _stats_kernel[(row_tiles, splits)](
        hidden,
        weight,
        hidden if bias is None else bias,  # never read without HAS_BIAS
        pows,
        partial,
        rows,
        vocab,
        d,
        tiles_per_split,
        hidden.stride(0),
        hidden.stride(1),
        weight.stride(0),
        weight.stride(1),
        partial.stride(0),
        partial.stride(1),
        1.0 if softcap is None else float(softcap),
        HAS_BIAS=bias is not None,
        SOFTCAP=softcap is not None,
        N_POW=len(powers),
        N_POW_P2=triton.next_power_of_2(max(1, len(powers))),
        UPCAST=interpreting and half,
        PRECISION="ieee" if hidden.dtype == torch.float32 else "tf32",  # acts on fp32 operands only
        BLOCK_M=block_m,
        BLOCK_V=block_v,
        BLOCK_K=block_k,
        **extra,
    )
    if splits == 1:
        return partial[0]
    return merge_stats(partial, powers)


def triton_logit_stats(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    softcap: float | None,
    powers: Sequence[float],
    config: dict | None = None,
) -> torch.Tensor:
    """Lens statistics of ``f(hidden @ weight.T + bias)`` by the fused Triton kernel.

    Args:
        hidden: ``[M, d]`` float32, bfloat16 or float16 rows (any strides).
        weight: ``[V, d]`` unembedding, same dtype and device as ``hidden``.
        bias: optional ``[V]`` bias (added in float32).
        softcap: if set, ``f(z) = softcap * tanh(z / softcap)``; else identity.
        powers: the Renyi orders needing a power sum, as from
            :func:`~elens_utils.entropy.streaming.power_alphas` (none of 0, 1, inf).
        config: tile sizes and launch settings to use instead of the defaults (for tuning,
            ``benchmarks/gpu_check.py``): any of ``block_m``, ``block_v``, ``block_k`` (each
            >= 16), ``num_warps``, ``num_stages``, ``n_splits``.

    Returns:
        ``[M, 3 + len(powers)]`` float32 statistics ``m, s, t, s_1, ...``, the layout of
        :func:`~elens_utils.entropy.streaming.logit_stats`, ready for
        :func:`~elens_utils.entropy.streaming.finalize_stats`.

    Raises:
        ElensError: triton is missing, the inputs disagree in shape, dtype or device, or the
            tensors are on the CPU without ``TRITON_INTERPRET=1``.
    """
    settings = {"block_m": _BLOCK_M, "block_v": _BLOCK_V, "block_k": _BLOCK_K, "n_splits": None,
                "num_warps": _NUM_WARPS, "num_stages": _NUM_STAGES}  # fmt: skip
    unknown = sorted(set(config or {}) - set(settings))
    if unknown:
        raise ElensError(f"Unknown Triton settings {unknown}: use {', '.join(settings)}.")
    settings.update(config or {})
    return _launch(hidden, weight, bias, softcap, powers, **settings)
