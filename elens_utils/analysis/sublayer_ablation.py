"""Removing the attention sublayer, the MLP sublayer or single attention heads of chosen blocks,
in place and by hooks, while a context is open.

What "remove" means
-------------------
A sublayer's *write* is what it adds to the residual stream. Removing it replaces the write by
zero and changes nothing else:

* ``ablate_attention``: the attention's write is zero. For a pre-norm block
  (GPT-2, Llama, ...): ``out = x + mlp(norm2(x))``; for a parallel block (GPT-NeoX with
  ``use_parallel_residual``, Phi): ``out = x + mlp(norm(x))``, the MLP reading the block input
  as always; for a sandwich-norm block (Gemma-2, Gemma-3), whose attention output passes
  through ``post_attention_layernorm`` before it is added, the *norm's output* is zeroed:
  ``out = x + post_ff_norm(mlp(pre_ff_norm(x)))``.
* ``ablate_mlp``: the MLP's write is zero (``out = x + attn(norm1(x))`` for pre-norm blocks; the
  post-feedforward norm's output for sandwich blocks; ``fc2``'s output, bias included, for OPT
  whose MLP is inline in the block).
* ``ablate_heads``: the head's slice ``[h * head_dim, (h + 1) * head_dim)`` of the input of the
  attention's output projection (``o_proj`` / ``c_proj`` / ``dense`` / ``out_proj``) is zeroed,
  so the head's term of the projection vanishes and the other heads are untouched. A bias of
  the projection stays (GPT-2, GPT-NeoX, OPT and Phi have one): removing *every* head leaves
  that bias, while :func:`ablate_attention` removes it too. In a sandwich block the remaining
  heads' sum still passes through the post-attention RMSNorm, which rescales it: there the
  head's removal is not purely additive (nor is anything through a norm).

Zeroing the post-norm's output rather than the attention's output matters only for a norm that
does not map 0 to 0: RMSNorm without bias (Gemma-2/3's ``x * rsqrt(mean(x^2) + eps) * (1 + w)``)
maps 0 to exactly 0, so both are the same there; a LayerNorm with a bias would map 0 to its bias.
For post-LN blocks (OPT-350m, ``do_layer_norm_before=False``) the norm sits after the residual
sum, ``out = LN(x + 0)``: the write is removed, the norm still runs.

The sublayers still run (their result is discarded), so the attention's KV-cache slot is filled
exactly as without the ablation, and a KV-cached generation under an ablation equals full
forward passes under the same ablation. The ``ModuleList`` and the weights are never touched;
on exit (normal or by an exception) every hook is removed. The zeroing hooks are registered in
front of other hooks (``prepend=True``), so captures of the same modules see the ablated value.
They compose with :func:`~elens_utils.analysis.interventions.skip_blocks`: a skipped block stays skipped
whatever is ablated inside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from elens_utils.analysis.interventions import check_blocks
from elens_utils.analysis.sublayer_parts import SublayerSpec, find_sublayers
from elens_utils.core.errors import ElensError
from elens_utils.lens.loading import LensModel


def _zero_hook(_module: nn.Module, _args: tuple, output: Any) -> Any:
    """Forward hook: the module's output (or the first item of a tuple output) becomes zero."""
    if isinstance(output, tuple):  # attention modules: (attn_output, attn_weights)
        return (torch.zeros_like(output[0]), *output[1:])
    return torch.zeros_like(output)


def _heads_hook(slices: list[tuple[int, int]]) -> Callable:
    """Forward pre-hook on an output projection: zero the given column ranges of its input."""

    def hook(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if args:
            x = args[0].clone()
            for a, b in slices:
                x[..., a:b] = 0
            return (x, *args[1:]), kwargs
        key = next(iter(kwargs))  # nn.Linear(input=...): its only argument
        x = kwargs[key].clone()
        for a, b in slices:
            x[..., a:b] = 0
        return args, {**kwargs, key: x}

    return hook


def _check_heads(lm: LensModel, heads: Any, spec: SublayerSpec | None) -> dict[int, list[int]]:
    """``{block: sorted distinct heads}`` with blocks in ``1..L`` and heads in ``0..H-1``."""
    if not isinstance(heads, Mapping):
        raise ElensError(
            "heads must be a mapping {block: [head, ...]} with 1-based blocks and 0-based heads, "
            f"e.g. {{3: [0, 2]}}; got {type(heads).__name__}."
        )
    blocks = check_blocks(list(heads), lm.n_layers, "heads' blocks")
    out = {}
    for b in blocks:
        chosen = heads[b] if b in heads else next(v for k, v in heads.items() if int(k) == b)
        n_heads = find_sublayers(lm, b, spec).n_heads
        if isinstance(chosen, (str, bytes)) or not isinstance(chosen, Iterable):
            raise ElensError(
                f"The heads of block {b} must be an iterable of head numbers (0..{n_heads - 1}); "
                f"got {chosen!r}."
            )
        hs = []
        for h in chosen:
            if isinstance(h, (bool, np.bool_)) or not isinstance(h, numbers.Integral):
                raise ElensError(f"Heads must be integers (0..{n_heads - 1}); got {h!r} for block {b}.")
            h = int(h)
            if not 0 <= h < n_heads:
                hint = " Heads are numbered from 0." if h == n_heads else ""
                raise ElensError(
                    f"Head {h} does not exist in block {b}: this model has heads 0..{n_heads - 1}.{hint}"
                )
            hs.append(h)
        if len(set(hs)) != len(hs):
            raise ElensError(f"The heads {hs} of block {b} name a head twice: list each head once.")
        out[b] = sorted(hs)
    return out


@dataclasses.dataclass(frozen=True)
class Ablation:
    """What an :func:`ablate` context removes: blocks (1-based) and heads (``{block: [head]}``)."""

    attention: list[int]
    mlp: list[int]
    heads: dict[int, list[int]]


@contextlib.contextmanager
def ablate(
    lm: LensModel,
    *,
    attention: Iterable[int] = (),
    mlp: Iterable[int] = (),
    heads: Mapping[int, Iterable[int]] | None = None,
    spec: SublayerSpec | None = None,
) -> Iterator[Ablation]:
    """Remove attention sublayers, MLP sublayers and single heads while the context is open.

    Args:
        lm: a model from :func:`elens_utils.load_model`.
        attention: blocks (1-based) whose attention write is zeroed.
        mlp: blocks whose MLP write is zeroed.
        heads: ``{block: [head, ...]}``, heads 0-based, whose slice of the output projection's
            input is zeroed.
        spec: module paths for an architecture that is not located by itself.

    Yields:
        An :class:`Ablation` with the checked, sorted blocks and heads.

    Every argument is checked before any hook is installed; on exit (normal or by an
    exception) the hooks are removed and the model is exactly as before.

    Raises:
        ElensError: for a block outside ``1..L``, a head outside ``0..H-1``, a repeated block
            or head, or a layout that cannot be located.
    """
    attn_blocks = check_blocks(attention, lm.n_layers, "attention blocks")
    mlp_blocks = check_blocks(mlp, lm.n_layers, "mlp blocks")
    head_map = _check_heads(lm, {} if heads is None else heads, spec)
    plan: list[tuple[nn.Module, str, Any]] = []
    for b in attn_blocks:
        plan.append((find_sublayers(lm, b, spec).attention_write, "out", _zero_hook))
    for b in mlp_blocks:
        plan.append((find_sublayers(lm, b, spec).mlp_write, "out", _zero_hook))
    for b, hs in head_map.items():
        if hs:
            s = find_sublayers(lm, b, spec)
            plan.append((s.o_proj, "pre", _heads_hook([(h * s.head_dim, (h + 1) * s.head_dim) for h in hs])))
    handles = []
    try:
        for module, kind, hook in plan:
            if kind == "out":
                handles.append(module.register_forward_hook(hook, prepend=True))
            else:
                handles.append(module.register_forward_pre_hook(hook, with_kwargs=True, prepend=True))
        yield Ablation(attn_blocks, mlp_blocks, head_map)
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def ablate_attention(
    lm: LensModel, blocks: Iterable[int], *, spec: SublayerSpec | None = None
) -> Iterator[list[int]]:
    """Zero the attention sublayer's write in ``blocks`` (1-based); yields the sorted blocks.

    See the module docstring for what is zeroed per layout; :func:`ablate` for the rules.
    """
    with ablate(lm, attention=blocks, spec=spec) as done:
        yield done.attention


@contextlib.contextmanager
def ablate_mlp(
    lm: LensModel, blocks: Iterable[int], *, spec: SublayerSpec | None = None
) -> Iterator[list[int]]:
    """Zero the MLP sublayer's write in ``blocks`` (1-based); yields the sorted blocks."""
    with ablate(lm, mlp=blocks, spec=spec) as done:
        yield done.mlp


@contextlib.contextmanager
def ablate_heads(
    lm: LensModel, heads: Mapping[int, Iterable[int]], *, spec: SublayerSpec | None = None
) -> Iterator[dict[int, list[int]]]:
    """Zero single heads, ``{block: [head, ...]}`` (blocks 1-based, heads 0-based), at the
    input of each block's attention output projection; yields the checked mapping."""
    with ablate(lm, heads=heads, spec=spec) as done:
        yield done.heads
