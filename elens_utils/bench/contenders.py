"""Contenders of the benchmark's lens stage: each maps ``(hidden [M, d], weight [V, d], bias, softcap,
alphas)`` to entropies ``[M, len(alphas)]`` in nats, or (the bare matmuls) to nothing, the limit."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from elens_utils.entropy.streaming import lens_entropy, logp_entropy, normalize_alphas, tile_shape, transposed_tiles

SHANNON: tuple[float, ...] = (1.0,)
RENYI: tuple[float, ...] = (1.0, 0.5, 2.0, math.inf)
WHOLE_MATMUL_MAX_BYTES = 2 << 30

# --------------------------------------------------------------------------------------------
# Contenders of the lens stage. Each maps (hidden [M, d], weight [V, d], bias, softcap, alphas)
# to entropies [M, len(alphas)] in nats.
# --------------------------------------------------------------------------------------------


def _cap(z: torch.Tensor, softcap: float | None) -> torch.Tensor:
    return z if softcap is None else torch.tanh(z / softcap) * softcap


def naive_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    alphas: Sequence[float] = SHANNON,
) -> torch.Tensor:
    """The naive way: materialise all fp32 logits ``[M, V]``, ``log_softmax``, entropies."""
    z = (hidden @ weight.T).float()
    if bias is not None:
        z = z + bias.float()
    logp = torch.log_softmax(_cap(z, softcap), dim=-1)
    del z
    return logp_entropy(logp, alphas)


def chunked_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    alphas: Sequence[float] = SHANNON,
    chunk: int = 8192,
    row_block: int = 1024,
) -> torch.Tensor:
    """The obvious chunked torch loop: a ``logsumexp`` pass, then a pass that sums ``-p log p``.

    Rows in blocks of ``row_block``, vocabulary in chunks of ``chunk``; pass 2 recomputes each
    chunk's logits from the matmul (two matmuls per logit) and allocates fresh tiles.
    """
    alphas = normalize_alphas(alphas)
    vocab = weight.shape[0]
    out = []
    for r0 in range(0, hidden.shape[0], row_block):
        h = hidden[r0 : r0 + row_block]

        def logits(v0: int) -> torch.Tensor:
            z = (h @ weight[v0 : v0 + chunk].T).float()
            if bias is not None:
                z = z + bias[v0 : v0 + chunk].float()
            return _cap(z, softcap)

        lse = torch.full((h.shape[0],), -math.inf, dtype=torch.float32, device=h.device)
        for v0 in range(0, vocab, chunk):
            lse = torch.logaddexp(lse, torch.logsumexp(logits(v0), dim=-1))
        acc = [torch.zeros_like(lse) for _ in alphas]
        for v0 in range(0, vocab, chunk):
            logp = logits(v0) - lse.unsqueeze(-1)
            p = logp.exp()
            for j, a in enumerate(alphas):
                if a == 1.0:
                    acc[j] -= (p * logp).sum(-1)
                elif a == math.inf:
                    acc[j] = torch.maximum(acc[j], p.amax(-1)) if v0 else p.amax(-1)
                elif a != 0.0:
                    acc[j] += (p**a).sum(-1)
        cols = []
        for j, a in enumerate(alphas):
            if a == 1.0:
                cols.append(acc[j])
            elif a == math.inf:
                cols.append(-torch.log(acc[j]))
            elif a == 0.0:
                cols.append(torch.full_like(lse, math.log(vocab)))
            else:
                cols.append(torch.log(acc[j]) / (1.0 - a))
        out.append(torch.stack(cols, dim=-1))
    return torch.cat(out)


def ours_entropy(hidden, weight, bias=None, softcap=None, alphas=SHANNON, backend="torch"):
    """Our streaming reduction, :func:`~elens_utils.entropy.streaming.lens_entropy`."""
    return lens_entropy(hidden, weight, bias, softcap=softcap, alphas=alphas, backend=backend)


def matmul_tiled(
    hidden: torch.Tensor, weight: torch.Tensor, bias=None, softcap=None, alphas=SHANNON, *, transposed: bool | None = None
) -> int:
    """The bare matmul with exactly the tiles of our torch path, into one reused fp32 buffer.

    No bias, cap or reduction: the hardware limit of a tiled lens on this device. ``transposed``:
    the tile orientation (``None``: the one our path picks, see
    :func:`~elens_utils.entropy.streaming.transposed_tiles`). Returns the number of tiles computed.
    """
    rows, vocab = hidden.shape[0], weight.shape[0]
    row_block, chunk = tile_shape(rows, vocab, device=hidden.device)
    if transposed is None:
        transposed = transposed_tiles(row_block, hidden.device)
    buf = torch.empty(row_block * chunk, dtype=torch.float32, device=hidden.device)
    half = hidden.dtype != torch.float32
    tiles = 0
    for r0 in range(0, rows, row_block):
        h = hidden[r0 : r0 + row_block]
        for v0 in range(0, vocab, chunk):
            w = weight[v0 : v0 + chunk]
            n = h.shape[0] * w.shape[0]
            if transposed:
                z = buf[:n].view(w.shape[0], h.shape[0])
                z.copy_(w @ h.T) if half else torch.matmul(w, h.T, out=z)
            else:
                z = buf[:n].view(h.shape[0], w.shape[0])
                z.copy_(h @ w.T) if half else torch.matmul(h, w.T, out=z)
            tiles += 1
    return tiles


def matmul_tiled_other(hidden, weight, bias=None, softcap=None, alphas=SHANNON) -> int:
    """:func:`matmul_tiled` in the orientation our path does not pick (also a limit candidate)."""
    row_block, _ = tile_shape(hidden.shape[0], weight.shape[0], device=hidden.device)
    return matmul_tiled(hidden, weight, transposed=not transposed_tiles(row_block, hidden.device))


def matmul_whole(hidden: torch.Tensor, weight: torch.Tensor, bias=None, softcap=None, alphas=SHANNON) -> None:
    """The bare matmul in one call, into a fresh ``[M, V]`` output."""
    (hidden @ weight.T).float()


LENS_CONTENDERS: dict[str, Callable] = {
    "ours": ours_entropy,
    "naive": naive_entropy,
    "chunked": chunked_entropy,
    "matmul_tiled": matmul_tiled,
    "matmul_tiled_other": matmul_tiled_other,
    "matmul_whole": matmul_whole,
}


def lens_inputs(rows: int, d: int, vocab: int, *, seed: int = 0, dtype=torch.float32, device="cpu", logit_std: float = 3.0):
    """Random ``hidden [rows, d]`` and ``weight [vocab, d]`` whose logits have std ``logit_std``
    (about that of a language model's final logits)."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(rows, d, generator=g)
    w = torch.randn(vocab, d, generator=g) * (logit_std / math.sqrt(d))
    return h.to(device=device, dtype=dtype), w.to(device=device, dtype=dtype)
