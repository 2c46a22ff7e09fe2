"""Ablating parts of a decoder block: the attention sublayer, the MLP sublayer, single heads.

The paper (v3) skips whole blocks of largest expansion or pruning. This module asks which part
of such a block matters: it removes, **in place and by hooks**, the attention sublayer alone, the
MLP sublayer alone, or chosen attention heads, ranks the heads of a block by their effect on
the block's dH, and measures multiple-choice accuracy against random controls.

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

Numbering
---------
Blocks are numbered **1..L** (as everywhere in the project); heads are numbered **0..H-1**,
as on the head axis of the attention weights (head ``h`` is the slice above). ``dH_l = H_l -
H_(l-1)`` belongs to block ``l = 2..L`` (see :mod:`elens_utils.analysis.interventions`).

Where the parts are
-------------------
:data:`SUBLAYER_ARCHITECTURES` maps ``config.model_type`` to module paths inside a block
(:class:`SublayerSpec`); any other architecture is searched by the usual names, and an unknown
layout fails with an :class:`~elens_utils.core.errors.ElensError` that names the block's children.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from elens_utils.analysis.expansion import check_model_profiles, first_tokens, gap_se, loaded_models
from elens_utils.analysis.interventions import (
    check_batch_size,
    check_blocks,
    check_k,
    expansion_blocks,
    mc_accuracy,
    pruning_blocks,
    random_blocks,
    skip_blocks,
)
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles
from elens_utils.entropy.streaming import normalize_alphas
from elens_utils.lens.generation import left_pad
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
# locating the parts of a block


@dataclasses.dataclass(frozen=True)
class SublayerSpec:
    """Module paths (dotted, relative to one decoder block) of a block's sublayers.

    Attributes:
        attention: the self-attention module, e.g. ``"self_attn"``.
        mlp: the module whose output is the MLP's result before any post-norm, e.g. ``"mlp"``
            (OPT, whose MLP is inline in the block: ``"fc2"``).
        o_proj: the attention's output projection, e.g. ``"self_attn.o_proj"``; its input is
            ``[..., n_heads * head_dim]``, head ``h`` at ``[h * head_dim, (h + 1) * head_dim)``.
        attention_post_norm: a norm applied to the attention output before it is added to the
            residual (Gemma-2/3's ``post_attention_layernorm``), or None.
        mlp_post_norm: likewise for the MLP (``post_feedforward_layernorm``), or None.
        parallel: True when attention and MLP read the same block input (Phi), False when the
            MLP reads the residual after attention, or the name of a block attribute that says
            which (GPT-NeoX's ``use_parallel_residual``). Informative: the ablations are the
            same hooks either way.
    """

    attention: str
    mlp: str
    o_proj: str
    attention_post_norm: str | None = None
    mlp_post_norm: str | None = None
    parallel: bool | str = False


_PRE_NORM = SublayerSpec("self_attn", "mlp", "self_attn.o_proj")
_SANDWICH = SublayerSpec(
    "self_attn", "mlp", "self_attn.o_proj", "post_attention_layernorm", "post_feedforward_layernorm"
)

SUBLAYER_ARCHITECTURES: dict[str, SublayerSpec] = {
    "gpt2": SublayerSpec("attn", "mlp", "attn.c_proj"),
    "gpt_neox": SublayerSpec("attention", "mlp", "attention.dense", parallel="use_parallel_residual"),
    "opt": SublayerSpec("self_attn", "fc2", "self_attn.out_proj"),
    "llama": _PRE_NORM,
    "mistral": _PRE_NORM,
    "gemma": _PRE_NORM,
    "gemma2": _SANDWICH,
    "gemma3_text": _SANDWICH,
    "qwen2": _PRE_NORM,
    "qwen3": _PRE_NORM,
    "phi3": _PRE_NORM,
    "phi": SublayerSpec("self_attn", "mlp", "self_attn.dense", parallel=True),
}
"""Architectures (``config.model_type``) whose sublayers are located from a table."""

_ATTENTION_NAMES = ("self_attn", "attn", "attention", "self_attention")
_MLP_NAMES = ("mlp", "feed_forward", "ffn", "fc2")
_O_PROJ_NAMES = ("o_proj", "out_proj", "c_proj", "dense", "wo")


@dataclasses.dataclass(frozen=True)
class BlockSublayers:
    """The located sublayers of one block.

    Attributes:
        block: the block number, 1-based.
        attention, mlp, o_proj: the modules of :class:`SublayerSpec`.
        attention_write, mlp_write: the modules whose output is zeroed to remove the sublayer
            (the post-norm where there is one, else the sublayer itself).
        n_heads: H, query heads of the attention.
        head_dim: width of one head at the output projection's input.
        parallel: attention and MLP read the same input.
        paths: the dotted paths (relative to the block) of the parts, for messages and tables.
        source: ``"table"``, ``"search"`` or ``"spec"``.
    """

    block: int
    attention: nn.Module
    mlp: nn.Module
    o_proj: nn.Module
    attention_write: nn.Module
    mlp_write: nn.Module
    n_heads: int
    head_dim: int
    parallel: bool
    paths: dict[str, str]
    source: str


def _child(module: nn.Module, path: str | None) -> nn.Module | None:
    if path is None:
        return None
    try:
        return module.get_submodule(path)
    except AttributeError:
        return None


def _layout_error(lm: LensModel, block: int, what: str) -> ElensError:
    module = lm.parts.blocks[block - 1]
    children = ", ".join(f"{n} ({type(m).__name__})" for n, m in module.named_children()) or "none"
    return ElensError(
        f"Cannot locate the {what} of block {block} of this '{lm.arch}' model ({type(module).__name__} "
        f"with children: {children}). Name the parts yourself: pass spec=SublayerSpec(attention=..., "
        "mlp=..., o_proj=..., attention_post_norm=..., mlp_post_norm=...) with paths relative to the block."
    )


def _search_spec(block: nn.Module) -> SublayerSpec | None:
    """A spec from the usual names, or None when a part is missing."""
    attention = next((n for n in _ATTENTION_NAMES if isinstance(_child(block, n), nn.Module)), None)
    mlp = next((n for n in _MLP_NAMES if isinstance(_child(block, n), nn.Module)), None)
    if attention is None or mlp is None:
        return None
    attn = block.get_submodule(attention)
    o_proj = next((n for n in _O_PROJ_NAMES if isinstance(_child(attn, n), nn.Module)), None)
    if o_proj is None:
        return None
    # Sandwich norms (Gemma-2/3, OLMo-2) are told apart from Llama's pre-MLP norm, which is also
    # called post_attention_layernorm, by the presence of a post-feedforward norm.
    post_ff = _child(block, "post_feedforward_layernorm")
    post_attn = (
        "post_attention_layernorm"
        if post_ff is not None and _child(block, "post_attention_layernorm") is not None
        else None
    )
    # Parallel blocks (Phi, GPT-J, Falcon) have a single norm before both sublayers; a
    # sequential pre-norm block needs two (informative only: the hooks are the same).
    norms = [n for n, _ in block.named_children() if "norm" in n or n.startswith("ln")]
    parallel: bool | str = (
        "use_parallel_residual" if hasattr(block, "use_parallel_residual") else len(norms) == 1
    )
    return SublayerSpec(
        attention,
        mlp,
        f"{attention}.{o_proj}",
        post_attn,
        "post_feedforward_layernorm" if post_ff is not None else None,
        parallel,
    )


def _in_features(module: nn.Module) -> int | None:
    for attr in ("in_features", "nx"):  # nn.Linear; GPT-2's Conv1D
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    return None


def _head_geometry(lm: LensModel, block: int, attention: nn.Module, o_proj: nn.Module) -> tuple[int, int]:
    cfg = lm.model.config
    cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    n_heads = getattr(cfg, "num_attention_heads", None)
    if not isinstance(n_heads, int):
        n_heads = next(
            (
                getattr(attention, a)
                for a in ("num_heads", "num_attention_heads")
                if isinstance(getattr(attention, a, None), int)
            ),
            None,
        )
    if not isinstance(n_heads, int) or n_heads < 1:
        raise ElensError(
            f"Cannot tell the number of attention heads of this '{lm.arch}' model: its config has no "
            "num_attention_heads."
        )
    head_dim = next(
        (
            getattr(attention, a)
            for a in ("head_dim", "head_size")
            if isinstance(getattr(attention, a, None), int)
        ),
        None,
    )
    if head_dim is None:
        head_dim = getattr(cfg, "head_dim", None)
    if not isinstance(head_dim, int) and isinstance(getattr(cfg, "hidden_size", None), int):
        head_dim = cfg.hidden_size // n_heads
    if not isinstance(head_dim, int):
        raise ElensError(
            f"Cannot tell the head width of this '{lm.arch}' model: neither its attention module nor its "
            "config has head_dim (or hidden_size)."
        )
    width = _in_features(o_proj)
    if width != n_heads * head_dim:
        raise ElensError(
            f"The output projection of block {block} ({type(o_proj).__name__}) takes {width} inputs, not "
            f"n_heads * head_dim = {n_heads} * {head_dim} = {n_heads * head_dim}: its input is not "
            "laid out head by head, so single heads cannot be located there."
        )
    return n_heads, head_dim


def find_sublayers(lm: LensModel, block: int, spec: SublayerSpec | None = None) -> BlockSublayers:
    """The attention, MLP and output projection of block ``block`` (1-based).

    Args:
        lm: a model from :func:`elens_utils.load_model`.
        block: the block number, ``1..L``.
        spec: module paths for an architecture neither the table nor the search handles.

    Raises:
        ElensError: for a block outside ``1..L`` or a layout that cannot be located.
    """
    (block,) = check_blocks([block], lm.n_layers, "block")
    module = lm.parts.blocks[block - 1]
    if spec is not None:
        source = "spec"
    elif lm.arch in SUBLAYER_ARCHITECTURES:
        spec, source = SUBLAYER_ARCHITECTURES[lm.arch], "table"
    else:
        spec, source = _search_spec(module), "search"
        if spec is None:
            raise _layout_error(lm, block, "attention, MLP and attention output projection")
    parts = {}
    for what in ("attention", "mlp", "o_proj", "attention_post_norm", "mlp_post_norm"):
        path = getattr(spec, what)
        if path is None:
            continue
        found = _child(module, path)
        if found is None:
            raise _layout_error(lm, block, f"{what.replace('_', ' ')} (expected at '{path}')")
        parts[what] = found
    parallel = spec.parallel
    if isinstance(parallel, str):
        parallel = bool(getattr(module, parallel, getattr(lm.model.config, parallel, False)))
    n_heads, head_dim = _head_geometry(lm, block, parts["attention"], parts["o_proj"])
    paths = {
        k: getattr(spec, k) for k in ("attention", "mlp", "o_proj", "attention_post_norm", "mlp_post_norm")
    }
    paths["attention_write"] = spec.attention_post_norm or spec.attention
    paths["mlp_write"] = spec.mlp_post_norm or spec.mlp
    return BlockSublayers(
        block=block,
        attention=parts["attention"],
        mlp=parts["mlp"],
        o_proj=parts["o_proj"],
        attention_write=parts.get("attention_post_norm", parts["attention"]),
        mlp_write=parts.get("mlp_post_norm", parts["mlp"]),
        n_heads=n_heads,
        head_dim=head_dim,
        parallel=bool(parallel),
        paths=paths,
        source=source,
    )


def sublayer_layout(lm: LensModel, spec: SublayerSpec | None = None) -> pd.DataFrame:
    """One row per block: where its parts are and what is zeroed to remove them.

    Columns: ``block``, ``attention``, ``mlp``, ``o_proj``, ``attention_write``, ``mlp_write``
    (paths relative to the block), ``n_heads``, ``head_dim``, ``parallel``, ``source``.
    """
    rows = []
    for b in range(1, lm.n_layers + 1):
        s = find_sublayers(lm, b, spec)
        rows.append(
            {
                "block": b,
                **{k: s.paths[k] for k in ("attention", "mlp", "o_proj", "attention_write", "mlp_write")},
                "n_heads": s.n_heads,
                "head_dim": s.head_dim,
                "parallel": s.parallel,
                "source": s.source,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# the ablations


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


# --------------------------------------------------------------------------------------------
# ranking heads by their effect on dH


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


_RANK_COLUMNS = {"drop": "drop_rank", "rise": "rise_rank", "abs": "abs_rank"}


def top_heads(table: pd.DataFrame, n: int, by: str = "abs") -> list[int]:
    """The ``n`` first heads of a :func:`rank_heads` table, sorted by head number.

    Args:
        table: one block's :func:`rank_heads` result.
        n: how many heads (``0..H``).
        by: ``"drop"`` (removal lowers dH most: the expansion heads), ``"rise"`` (removal raises
            dH most: the pruning heads) or ``"abs"`` (largest ``|effect|``).
    """
    if by not in _RANK_COLUMNS:
        raise ElensError(f"by must be one of {', '.join(_RANK_COLUMNS)}; got {by!r}.")
    if (
        not isinstance(table, pd.DataFrame)
        or "head" not in table.columns
        or _RANK_COLUMNS[by] not in table.columns
    ):
        raise ElensError("top_heads() takes a rank_heads() table.")
    n = check_k(n, len(table), "heads")
    return sorted(int(h) for h in table.sort_values(_RANK_COLUMNS[by])["head"][:n])


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
    if head_rank not in ("role", *_RANK_COLUMNS):
        raise ElensError(f"head_rank must be one of role, {', '.join(_RANK_COLUMNS)}; got {head_rank!r}.")
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
