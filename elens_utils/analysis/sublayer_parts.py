"""Where the parts of a decoder block are: its attention, its MLP, the attention's output
projection and the norms after them, as modules of a loaded model.

:data:`SUBLAYER_ARCHITECTURES` maps ``config.model_type`` to module paths inside a block
(:class:`SublayerSpec`); any other architecture is searched by the usual names, and an unknown
layout fails with an :class:`~elens_utils.core.errors.ElensError` that names the block's children.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
from torch import nn

from elens_utils.analysis.interventions import check_blocks
from elens_utils.core.errors import ElensError
from elens_utils.lens.loading import LensModel


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
