"""Where the logit lens attaches in a decoder-only ``transformers`` model.

The lens needs four things from a causal LM: the list of its L decoder blocks (whose outputs are
the residual stream read at each depth), the modules between the last block and the unembedding
(the final norm, and for some OPT sizes a projection), the unembedding itself (``lm_head``, with
bias if it has one) and the model's transform of its final logits.

:func:`find_lens_parts` finds the modules for the architectures in :data:`KNOWN_ARCHITECTURES`
from a table of module paths, and for any other model by looking for the usual names; a
:class:`LensSpec` names them explicitly for a model neither way handles.

The final-logit transform is read from the model's config through :data:`LOGIT_TRANSFORMS`, a
table of (config attribute, kind) steps in the order the ``*ForCausalLM`` forward applies them
after (or, for the ``hidden_*`` kinds, just before) the unembedding. The kinds found in
transformers 5.x are:

=====================  ==========================================  ===============================
kind                   what the forward does                       architectures (config attribute)
=====================  ==========================================  ===============================
``multiply``           ``z = z * c``                               Cohere 1/2/2-MoE (``logit_scale``),
                                                                   Falcon-H1 (``lm_head_multiplier``),
                                                                   HyperCLOVA X (``logits_scaling``),
                                                                   Muse (``output_multiplier``)
``divide``             ``z = z / c``                               Granite family (``logits_scaling``)
``softcap``            ``z = c * tanh(z / c)``; None = no cap      Gemma-2/3/3n/4, VaultGemma,
                                                                   NanoChat, Beam, Inkling-2
                                                                   (``final_logit_softcapping``),
                                                                   RecurrentGemma (``logits_soft_cap``),
                                                                   xLSTM (``output_logit_soft_cap``)
``hidden_divide``      ``h = h / c`` before the unembedding        MiniCPM3 (``logits_scaling``),
                                                                   Inkling (``logits_mup_width_multiplier``)
``hidden_multiply``    ``h = h * c`` before the unembedding        (for LensSpec users)
=====================  ==========================================  ===============================

Any chain of scalar multiplications and at most one soft-cap reduces to ``f(z) = C tanh(s z / C)``
(or ``s z`` without a cap), which is what :class:`LensParts` stores (``logit_scale`` s and
``softcap`` C); the entropy kernels take a soft-cap only, so the scale is folded into the
normalized hidden state and the bias (``s z = (s h) W^T + s b``). A transform the table does not
know still fails the parity check (:func:`check_parity`), which ``load_model`` runs on every load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from elens_utils.core.errors import ElensError
from elens_utils.entropy.streaming import lens_entropy

__all__ = [
    "KNOWN_ARCHITECTURES",
    "LOGIT_TRANSFORMS",
    "TRANSFORM_KINDS",
    "LensSpec",
    "LensParts",
    "check_parity",
    "find_lens_parts",
    "logit_transforms_for",
]


TRANSFORM_KINDS: tuple[str, ...] = ("multiply", "divide", "softcap", "hidden_multiply", "hidden_divide")
"""Kinds of final-logit transform steps (see the module docstring)."""

Transform = tuple[str, str]
"""One transform step: ``(config attribute, kind)``."""


@dataclass(frozen=True)
class LensSpec:
    """Module paths (dotted, relative to the ``*ForCausalLM`` model) that locate the lens.

    Attributes:
        blocks: the ``nn.ModuleList`` of decoder blocks, e.g. ``"model.layers"``.
        final: modules applied in order to a block output before the unembedding,
            e.g. ``("model.norm",)``; may be empty.
        unembed: the output embedding (a module with ``weight [V, d]`` and optional ``bias``);
            None means the model's own ``get_output_embeddings()``.
        softcap_attr: config attribute holding a final-logit soft-cap, if any (applied last,
            after ``logit_transforms``).
        logit_transforms: final-logit transform steps ``(config attribute, kind)`` in the order
            the model applies them, kinds from :data:`TRANSFORM_KINDS`, e.g.
            ``(("logit_scale", "multiply"),)``.

    A spec given to :func:`find_lens_parts` (``load_model(..., lens_spec=spec)``) is taken
    literally: only the transforms it names are applied. The entries of
    :data:`KNOWN_ARCHITECTURES` name modules only; their transforms come from
    :data:`LOGIT_TRANSFORMS`.
    """

    blocks: str
    final: tuple[str, ...]
    unembed: str | None = None
    softcap_attr: str | None = None
    logit_transforms: tuple[Transform, ...] = ()


_LLAMA_LIKE = LensSpec("model.layers", ("model.norm",))

KNOWN_ARCHITECTURES: dict[str, LensSpec] = {
    "gpt2": LensSpec("transformer.h", ("transformer.ln_f",)),
    "gpt_neox": LensSpec("gpt_neox.layers", ("gpt_neox.final_layer_norm",)),
    "opt": LensSpec("model.decoder.layers", ("model.decoder.final_layer_norm", "model.decoder.project_out")),
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "mixtral": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gemma3_text": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen2_moe": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "qwen3_moe": _LLAMA_LIKE,
    "phi3": _LLAMA_LIKE,
    "phi": LensSpec("model.layers", ("model.final_layernorm",)),
    "cohere": _LLAMA_LIKE,
    "cohere2": _LLAMA_LIKE,
    "granite": _LLAMA_LIKE,
    "granitemoe": _LLAMA_LIKE,
    "olmo": _LLAMA_LIKE,
    "olmo2": _LLAMA_LIKE,
    "smollm3": _LLAMA_LIKE,
    "stablelm": _LLAMA_LIKE,
    "starcoder2": _LLAMA_LIKE,
    "falcon": LensSpec("transformer.h", ("transformer.ln_f",)),
    "bloom": LensSpec("transformer.h", ("transformer.ln_f",)),
    "gpt_bigcode": LensSpec("transformer.h", ("transformer.ln_f",)),
    "gptj": LensSpec("transformer.h", ("transformer.ln_f",)),
    "mpt": LensSpec("transformer.blocks", ("transformer.norm_f",)),
    "mamba": LensSpec("backbone.layers", ("backbone.norm_f",)),
    # LFM2 names its final norm "embedding_norm" (it is applied after the last block).
    "lfm2": LensSpec("model.layers", ("model.embedding_norm",)),
    "lfm2_moe": LensSpec("model.layers", ("model.embedding_norm",)),
    "lfm3": LensSpec("model.layers", ("model.embedding_norm",)),
    # Post-LN: every block ends in its own LayerNorm, and no final norm follows the last one.
    "openai-gpt": LensSpec("transformer.h", ()),
}
"""Architectures (``config.model_type``) whose lens modules are located from a table and tested
(tests/integration/test_any_architecture.py); others are found by :func:`find_lens_parts`'s search."""

_GENERIC_TRANSFORMS: tuple[Transform, ...] = (
    ("logit_scale", "multiply"),  # Cohere, Cohere2, Cohere2-MoE
    ("logits_scaling", "divide"),  # Granite, GraniteMoE (muP)
    ("lm_head_multiplier", "multiply"),  # Falcon-H1
    ("output_multiplier", "multiply"),  # Muse (before its soft-cap)
    ("final_logit_softcapping", "softcap"),  # Gemma-2/3/3n/4, VaultGemma, NanoChat, Beam, Inkling-2
    ("logits_soft_cap", "softcap"),  # RecurrentGemma
    ("output_logit_soft_cap", "softcap"),  # xLSTM
)

LOGIT_TRANSFORMS: dict[str | None, tuple[Transform, ...]] = {
    None: _GENERIC_TRANSFORMS,
    # The same attribute name means something else in these architectures.
    "hyperclovax": (("logits_scaling", "multiply"),),
    "minicpm3": (("logits_scaling", "hidden_divide"),),  # hidden_size / dim_model_base
    "inkling_text": (("logits_mup_width_multiplier", "hidden_divide"),),
    # MosaicML's own code multiplied by config.logit_scale; transformers' MptForCausalLM does not.
    "mpt": (),
}
"""Final-logit transforms by ``config.model_type``, as ``(config attribute, kind)`` steps in the
order the forward applies them; the ``None`` entry serves every model type not listed. A step
whose attribute is absent or None is skipped, so one generic list covers most families (Gemma-3's
``final_logit_softcapping`` is None: no cap)."""

_BLOCK_NAMES = ("layers", "h", "blocks", "decoder.layers")
_NORM_NAMES = (
    "norm",
    "ln_f",
    "final_layer_norm",
    "final_layernorm",
    "final_norm",
    "norm_f",
    "ln_out",
    "out_norm",
    "layer_norm",
    "layernorm",
    "decoder.final_layer_norm",
)


def _get(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


class _HiddenScale(nn.Module):
    """Multiplies the normalized hidden state by a constant before the unembedding (MiniCPM3)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


@dataclass
class LensParts:
    """The located parts of one model's lens.

    The lens logits of a residual ``x [..., d]`` are ``f(unembed(normalize(x)))`` with the
    final-logit transform ``f(z) = softcap * tanh(logit_scale * z / softcap)``, or
    ``logit_scale * z`` when ``softcap`` is None (:meth:`transform`). For most models
    ``logit_scale`` is 1 and ``f`` is the identity or Gemma-2's soft-cap.

    Attributes:
        blocks: the L decoder blocks, in order.
        final: modules applied in order to a block output ``[..., d]`` before unembedding (the
            final norm, and any scaling of the hidden state the model applies before its head).
        unembed: module with ``weight [V, d]`` (and ``bias [V]`` or None).
        softcap: final-logit soft-cap ``C`` (logits become ``C * tanh(z / C)``), or None.
        source: how the parts were found ("table", "search" or "spec"), for messages.
        logit_scale: factor applied to the raw logits before the soft-cap (Cohere's
            ``logit_scale``, one over Granite's ``logits_scaling``); 1.0 for most models.
    """

    blocks: Sequence[nn.Module]
    final: Sequence[nn.Module]
    unembed: nn.Module
    softcap: float | None
    source: str
    logit_scale: float = 1.0

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def vocab_size(self) -> int:
        """Rows of the unembedding, which may exceed the tokenizer's vocabulary (Qwen3)."""
        return self.unembed.weight.shape[0]

    def normalize(self, resid: torch.Tensor) -> torch.Tensor:
        """Apply the final norm (and projection, hidden scaling) to residual vectors ``[..., d]``."""
        for module in self.final:
            resid = module(resid)
        return resid

    def transform(self, z: torch.Tensor) -> torch.Tensor:
        """The model's final-logit transform of raw unembedding logits ``[..., V]`` (same shape)."""
        if self.logit_scale != 1.0:
            z = z * self.logit_scale
        if self.softcap is not None:
            z = torch.tanh(z / self.softcap) * self.softcap
        return z

    def logits(self, resid: torch.Tensor) -> torch.Tensor:
        """Dense lens logits ``[..., V]`` (float32) of residual vectors ``[..., d]``.

        Materialises the vocabulary axis: for worked examples and checks, not bulk work
        (use :meth:`entropy`).
        """
        # The unembedding's weight and bias, not its forward: exactly what :meth:`entropy` uses,
        # so that check_parity vets the kernels' arithmetic (a head whose forward does more
        # than ``h W^T + b`` fails there instead of passing unnoticed).
        weight = self.unembed.weight
        h = self.normalize(resid).to(weight.dtype)
        z = nn.functional.linear(h, weight, getattr(self.unembed, "bias", None))
        return self.transform(z.float())

    def entropy(
        self,
        resid: torch.Tensor,
        alphas: float | Sequence[float] = (1.0,),
        **kwargs,
    ) -> torch.Tensor:
        """Lens entropies (nats) of residual vectors ``[rows, d]`` -> ``[rows, len(alphas)]``.

        Keyword arguments go to :func:`elens_utils.entropy.streaming.lens_entropy` (``chunk_size``, ``precision``,
        ``backend``, ``support_threshold``).
        """
        weight = self.unembed.weight
        bias = getattr(self.unembed, "bias", None)
        h = self.normalize(resid)
        if self.logit_scale != 1.0:
            # s * (h W^T + b) = (s h) W^T + s b: the kernels never see the scale.
            h = h.float() * self.logit_scale
            bias = None if bias is None else bias * self.logit_scale
        return lens_entropy(h.to(weight.dtype), weight, bias, softcap=self.softcap, alphas=alphas, **kwargs)


def logit_transforms_for(config) -> tuple[Transform, ...]:
    """The final-logit transform steps of a model with this config (:data:`LOGIT_TRANSFORMS`)."""
    return LOGIT_TRANSFORMS.get(getattr(config, "model_type", None), LOGIT_TRANSFORMS[None])


def _resolve_transforms(config, steps: Sequence[Transform]) -> tuple[float, float, float | None]:
    """Reduce transform steps to ``(hidden_scale, logit_scale, softcap)`` using config values.

    A multiplication after the cap moves in front of it: ``b * C tanh(z / C) = (bC) tanh(bz / (bC))``.
    """
    arch = getattr(config, "model_type", "?")
    hidden_scale, pre, post, cap = 1.0, 1.0, 1.0, None
    for attr, kind in steps:
        if kind not in TRANSFORM_KINDS:
            raise ElensError(
                f"Unknown final-logit transform kind {kind!r} for config attribute '{attr}'; "
                f"use one of {', '.join(TRANSFORM_KINDS)}."
            )
        value = getattr(config, attr, None)
        if value is None or (kind == "softcap" and not value):
            continue  # absent, or explicitly off (Gemma-3: final_logit_softcapping = None)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value == 0:
            raise ElensError(
                f"The '{arch}' config sets {attr} = {value!r}, which the lens reads as a final-logit "
                f"'{kind}' and cannot use (it needs a finite non-zero number). Name the model's real "
                "transforms with LensSpec(..., logit_transforms=((attribute, kind), ...)) and pass it "
                "as load_model(..., lens_spec=spec)."
            )
        value = float(value)
        if kind == "hidden_multiply":
            hidden_scale *= value
        elif kind == "hidden_divide":
            hidden_scale /= value
        elif kind == "softcap":
            if cap is not None:
                raise ElensError(
                    f"The '{arch}' model soft-caps its logits twice ({attr}); the lens supports one "
                    "soft-cap. Pass a LensSpec that names the transforms you want, or open an issue."
                )
            cap = value
        else:
            factor = value if kind == "multiply" else 1.0 / value
            if cap is None:
                pre *= factor
            else:
                post *= factor
    if cap is None:
        return hidden_scale, pre * post, None
    return hidden_scale, pre * post, cap * post


def _spec_transforms(spec: LensSpec) -> tuple[Transform, ...]:
    tail = ((spec.softcap_attr, "softcap"),) if spec.softcap_attr else ()
    return tuple(spec.logit_transforms) + tail


def _assemble(
    model: nn.Module,
    blocks: Sequence[nn.Module],
    final: list[nn.Module],
    unembed: nn.Module,
    steps: Sequence[Transform],
    source: str,
) -> LensParts:
    hidden_scale, logit_scale, softcap = _resolve_transforms(model.config, steps)
    if hidden_scale != 1.0:
        final = [*final, _HiddenScale(hidden_scale)]
    return LensParts(list(blocks), final, unembed, softcap, source, logit_scale)


def _from_spec(model: nn.Module, spec: LensSpec, source: str) -> LensParts:
    missing = []
    blocks = _get(model, spec.blocks)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        missing.append(f"decoder blocks at '{spec.blocks}'")
    final = []
    for path in spec.final:
        module = _get(model, path)
        # Optional parts (OPT's project_out, its final norm in post-norm sizes) are None.
        if module is not None:
            final.append(module)
        elif not _is_none_attr(model, path):
            missing.append(f"final module at '{path}'")
    if spec.unembed is None:
        unembed = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    else:
        unembed = _get(model, spec.unembed)
    if unembed is None or not isinstance(getattr(unembed, "weight", None), torch.Tensor):
        missing.append(f"unembedding at '{spec.unembed or 'get_output_embeddings()'}'")
    if missing:
        raise ElensError(_not_found_message(model, missing))
    steps = _spec_transforms(spec) if source == "spec" else logit_transforms_for(model.config)
    return _assemble(model, blocks, final, unembed, steps, source)


def _is_none_attr(model: nn.Module, path: str) -> bool:
    """True if ``path`` exists as an attribute explicitly set to None (an absent optional part)."""
    parent, _, name = path.rpartition(".")
    owner = _get(model, parent) if parent else model
    return owner is not None and name in owner.__dict__ and owner.__dict__[name] is None


def _find_blocks(base: nn.Module) -> nn.ModuleList | None:
    for name in _BLOCK_NAMES:
        candidate = _get(base, name)
        if isinstance(candidate, nn.ModuleList) and len(candidate) > 0:
            return candidate
    return None


def _search(model: nn.Module) -> LensParts:
    """Locate the lens by the usual names, for architectures not in the table."""
    # get_decoder() is a best-effort guess in transformers: some models return themselves or a
    # head named "decoder". Take the first candidate that holds the blocks.
    candidates = [
        model.get_decoder() if hasattr(model, "get_decoder") else None,
        getattr(model, "base_model", None),
        model,
        *model.children(),
    ]
    base, blocks = candidates[-1], None
    for candidate in candidates:
        if isinstance(candidate, nn.Module) and (found := _find_blocks(candidate)) is not None:
            base, blocks = candidate, found
            break
    missing = []
    if blocks is None:
        missing.append(f"decoder blocks (an nn.ModuleList named one of {', '.join(_BLOCK_NAMES)})")
    norm = None
    for name in _NORM_NAMES:
        norm = _get(base, name)
        if norm is not None:
            break
    if norm is None:
        missing.append(f"final norm (a module named one of {', '.join(_NORM_NAMES)})")
    unembed = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if unembed is None:
        missing.append("unembedding (get_output_embeddings() returned nothing)")
    if missing:
        raise ElensError(_not_found_message(model, missing))
    return _assemble(model, blocks, [norm], unembed, logit_transforms_for(model.config), "search")


def _not_found_message(model: nn.Module, missing: list[str]) -> str:
    arch = getattr(model.config, "model_type", type(model).__name__)
    return (
        f"Cannot attach the logit lens to a '{arch}' model ({type(model).__name__}): not found: "
        + "; ".join(missing)
        + ". Name the modules yourself with elens_utils.LensSpec(blocks=..., final=(...), "
        "unembed=...) and pass it as load_model(..., lens_spec=spec)."
    )


def find_lens_parts(model: nn.Module, spec: LensSpec | None = None) -> LensParts:
    """Locate the lens in ``model``: from ``spec`` if given, else the table, else by search.

    The final-logit transform comes from ``spec`` when one is given, else from the config
    through :data:`LOGIT_TRANSFORMS`. Raises :class:`ElensError` when a part is not found or a
    transform's config value is unusable.
    """
    if spec is not None:
        return _from_spec(model, spec, "spec")
    arch = getattr(model.config, "model_type", None)
    if arch in KNOWN_ARCHITECTURES:
        return _from_spec(model, KNOWN_ARCHITECTURES[arch], "table")
    return _search(model)


# Config attributes whose names suggest a final-logit transform, named in the parity error.
_SUSPECT_ATTR = re.compile(r"logit|soft_?cap|multiplier|scal(e|ing)|mup", re.IGNORECASE)
_NOT_SUSPECT = re.compile(r"attn|attention|router|rope|embed|residual|init|depth|query|key|tie_", re.IGNORECASE)


def _suspect_attributes(config) -> list[str]:
    """``name=value`` of numeric config attributes that may scale or cap the final logits."""
    out = []
    items = config.to_dict() if hasattr(config, "to_dict") else vars(config)
    for name, value in sorted(items.items()):
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and _SUSPECT_ATTR.search(name) and not _NOT_SUSPECT.search(name):
            out.append(f"{name}={value!r}")
    return out


@torch.no_grad()
def check_parity(model: nn.Module, parts: LensParts, input_ids: torch.Tensor, atol: float = 1e-3) -> float:
    """Largest absolute lens-minus-model log-probability gap at the last block, on ``input_ids [1, S]``.

    Raises :class:`ElensError` when the lens of the last block is not the model's own
    next-token distribution (the parity rule), e.g. for an architecture that transforms its
    final logits in a way :class:`LensParts` does not know.
    """
    captured: list[torch.Tensor] = []
    hook = parts.blocks[-1].register_forward_hook(
        lambda _m, _i, out: captured.append(out[0] if isinstance(out, (tuple, list)) else out)
    )
    try:
        own = model(input_ids=input_ids).logits.float()
    finally:
        hook.remove()
    arch = getattr(model.config, "model_type", type(model).__name__)
    resid = captured[-1]
    if resid.shape[:-1] != own.shape[:-1]:
        raise ElensError(
            f"The last block of this '{arch}' model outputs {tuple(resid.shape)} for "
            f"{tuple(input_ids.shape)} tokens, not one residual vector per token: the model keeps "
            "several residual streams (hyper-connections, AltUp) or mixes block outputs before its "
            "head, and the logit lens of a single stream does not apply. Name the blocks and final "
            "modules with a LensSpec if another module list carries the residual stream."
        )
    lens = parts.logits(resid)
    if lens.shape[-1] != own.shape[-1]:
        raise ElensError(
            f"This '{arch}' model returns {own.shape[-1]} logits per token but its unembedding has "
            f"{lens.shape[-1]} rows: it slices or pads its vocabulary after the head, which the "
            "lens does not reproduce. Pass an explicit LensSpec(unembed=...) naming a head with one "
            "row per output logit, or open an issue."
        )
    if not bool(torch.isfinite(own).all()):
        raise ElensError(
            f"This '{arch}' model's own output holds NaN or inf on a test prompt (dtype "
            f"{str(parts.unembed.weight.dtype).removeprefix('torch.')}): its weights are damaged, or it "
            "overflows in this dtype. Load it in float32; if that fails too, save or download the "
            "weights again."
        )
    gap = (torch.log_softmax(lens, -1) - torch.log_softmax(own, -1)).abs().amax().item()
    # Low precision models differ by rounding; compare in units of their epsilon.
    tol = max(atol, 64 * torch.finfo(parts.unembed.weight.dtype).eps)
    if not math.isfinite(gap) or gap > tol:
        used = [f"logit_scale={parts.logit_scale:g}"] + ([f"softcap={parts.softcap:g}"] if parts.softcap else [])
        suspects = _suspect_attributes(model.config)
        hint = (
            f" Config attributes that may transform the logits: {', '.join(suspects)}."
            if suspects
            else ""
        )
        raise ElensError(
            f"The lens of the last block does not reproduce the model's own output distribution "
            f"(max log-probability gap {gap:.3g} > {tol:.1g}) for this '{arch}' model "
            f"(parts found by {parts.source}; transform used: {', '.join(used)}). The model probably "
            "transforms its final logits in a way the adapter does not know." + hint + " Name the "
            "transform with LensSpec(blocks=..., final=(...), logit_transforms=((attribute, kind), ...)), "
            f"kinds {', '.join(TRANSFORM_KINDS)}, pass it as load_model(..., lens_spec=spec), or open an issue."
        )
    return gap
