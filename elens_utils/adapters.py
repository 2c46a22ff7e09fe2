"""Where the logit lens attaches in a decoder-only ``transformers`` model.

The lens needs four things from a causal LM: the list of its L decoder blocks (whose outputs are
the residual stream read at each depth), the modules between the last block and the unembedding
(the final norm, and for some OPT sizes a projection), the unembedding itself (``lm_head``, with
bias if it has one) and the model's transform of its final logits (Gemma-2's soft-capping).

:func:`find_lens_parts` finds them for the architectures in :data:`KNOWN_ARCHITECTURES` from a
table of module paths, and for any other model by looking for the usual names; a
:class:`LensSpec` names them explicitly for a model neither way handles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .entropy import lens_entropy
from .errors import ElensError

__all__ = ["KNOWN_ARCHITECTURES", "LensSpec", "LensParts", "find_lens_parts"]


@dataclass(frozen=True)
class LensSpec:
    """Module paths (dotted, relative to the ``*ForCausalLM`` model) that locate the lens.

    Attributes:
        blocks: the ``nn.ModuleList`` of decoder blocks, e.g. ``"model.layers"``.
        final: modules applied in order to a block output before the unembedding,
            e.g. ``("model.norm",)``; may be empty.
        unembed: the output embedding (a module with ``weight [V, d]`` and optional ``bias``);
            None means the model's own ``get_output_embeddings()``.
        softcap_attr: config attribute holding a final-logit soft-cap, if any.
    """

    blocks: str
    final: tuple[str, ...]
    unembed: str | None = None
    softcap_attr: str | None = None


KNOWN_ARCHITECTURES: dict[str, LensSpec] = {
    "gpt2": LensSpec("transformer.h", ("transformer.ln_f",)),
    "gpt_neox": LensSpec("gpt_neox.layers", ("gpt_neox.final_layer_norm",)),
    "opt": LensSpec("model.decoder.layers", ("model.decoder.final_layer_norm", "model.decoder.project_out")),
    "llama": LensSpec("model.layers", ("model.norm",)),
    "mistral": LensSpec("model.layers", ("model.norm",)),
    "gemma": LensSpec("model.layers", ("model.norm",)),
    "gemma2": LensSpec("model.layers", ("model.norm",), softcap_attr="final_logit_softcapping"),
    "qwen2": LensSpec("model.layers", ("model.norm",)),
    "qwen3": LensSpec("model.layers", ("model.norm",)),
    "phi3": LensSpec("model.layers", ("model.norm",)),
}
"""Architectures (``config.model_type``) whose lens is located from a table and tested."""

_BLOCK_NAMES = ("layers", "h", "blocks", "decoder.layers")
_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_norm", "decoder.final_layer_norm")


def _get(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


@dataclass
class LensParts:
    """The located parts of one model's lens.

    Attributes:
        blocks: the L decoder blocks, in order.
        final: modules applied in order to a block output ``[..., d]`` before unembedding.
        unembed: module with ``weight [V, d]`` (and ``bias [V]`` or None).
        softcap: final-logit soft-cap ``c`` (logits become ``c * tanh(z / c)``), or None.
        source: how the parts were found ("table", "search" or "spec"), for messages.
    """

    blocks: Sequence[nn.Module]
    final: Sequence[nn.Module]
    unembed: nn.Module
    softcap: float | None
    source: str

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def vocab_size(self) -> int:
        """Rows of the unembedding, which may exceed the tokenizer's vocabulary (Qwen3)."""
        return self.unembed.weight.shape[0]

    def normalize(self, resid: torch.Tensor) -> torch.Tensor:
        """Apply the final norm (and projection) to residual vectors ``[..., d]``."""
        for module in self.final:
            resid = module(resid)
        return resid

    def logits(self, resid: torch.Tensor) -> torch.Tensor:
        """Dense lens logits ``[..., V]`` (float32) of residual vectors ``[..., d]``.

        Materialises the vocabulary axis: for worked examples and checks, not bulk work
        (use :meth:`entropy`).
        """
        z = self.unembed(self.normalize(resid)).float()
        if self.softcap is not None:
            z = torch.tanh(z / self.softcap) * self.softcap
        return z

    def entropy(
        self,
        resid: torch.Tensor,
        alphas: float | Sequence[float] = (1.0,),
        **kwargs,
    ) -> torch.Tensor:
        """Lens entropies (nats) of residual vectors ``[rows, d]`` -> ``[rows, len(alphas)]``.

        Keyword arguments go to :func:`elens_utils.entropy.lens_entropy` (``chunk_size``,
        ``backend``, ``support_threshold``).
        """
        weight = self.unembed.weight
        bias = getattr(self.unembed, "bias", None)
        h = self.normalize(resid).to(weight.dtype)
        return lens_entropy(h, weight, bias, softcap=self.softcap, alphas=alphas, **kwargs)


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
    softcap = getattr(model.config, spec.softcap_attr, None) if spec.softcap_attr else None
    return LensParts(list(blocks), final, unembed, float(softcap) if softcap else None, source)


def _is_none_attr(model: nn.Module, path: str) -> bool:
    """True if ``path`` exists as an attribute explicitly set to None (an absent optional part)."""
    parent, _, name = path.rpartition(".")
    owner = _get(model, parent) if parent else model
    return owner is not None and name in owner.__dict__ and owner.__dict__[name] is None


def _search(model: nn.Module) -> LensParts:
    """Locate the lens by the usual names, for architectures not in the table."""
    base = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "base_model", model)
    missing = []
    blocks = None
    for name in _BLOCK_NAMES:
        candidate = _get(base, name)
        if isinstance(candidate, nn.ModuleList) and len(candidate) > 0:
            blocks = candidate
            break
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
    softcap = getattr(model.config, "final_logit_softcapping", None)
    return LensParts(list(blocks), [norm], unembed, float(softcap) if softcap else None, "search")


def _not_found_message(model: nn.Module, missing: list[str]) -> str:
    arch = getattr(model.config, "model_type", type(model).__name__)
    return (
        f"Cannot attach the logit lens to a '{arch}' model ({type(model).__name__}): not found: "
        + "; ".join(missing)
        + ". Name the modules yourself with elens_utils.LensSpec(blocks=..., final=(...), "
        "unembed=...) and pass it as load_model(..., lens_spec=spec)."
    )


def find_lens_parts(model: nn.Module, spec: LensSpec | None = None) -> LensParts:
    """Locate the lens in ``model``: from ``spec`` if given, else the table, else by search."""
    if spec is not None:
        return _from_spec(model, spec, "spec")
    arch = getattr(model.config, "model_type", None)
    if arch in KNOWN_ARCHITECTURES:
        return _from_spec(model, KNOWN_ARCHITECTURES[arch], "table")
    return _search(model)


@torch.no_grad()
def check_parity(model: nn.Module, parts: LensParts, input_ids: torch.Tensor, atol: float = 1e-3) -> float:
    """Largest absolute lens-minus-model log-probability gap at the last block, on ``input_ids [1, S]``.

    Raises :class:`ElensError` when the lens of the last block is not the model's own
    next-token distribution (the parity rule), e.g. for an architecture that transforms its
    final logits in a way :class:`LensParts` does not know.
    """
    captured: list[torch.Tensor] = []
    hook = parts.blocks[-1].register_forward_hook(
        lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out)
    )
    try:
        own = model(input_ids=input_ids).logits.float()
    finally:
        hook.remove()
    lens = parts.logits(captured[0])
    gap = (torch.log_softmax(lens, -1) - torch.log_softmax(own, -1)).abs().amax().item()
    # Low precision models differ by rounding; compare in units of their epsilon.
    tol = max(atol, 64 * torch.finfo(parts.unembed.weight.dtype).eps)
    if not math.isfinite(gap) or gap > tol:
        raise ElensError(
            f"The lens of the last block does not reproduce the model's own output distribution "
            f"(max log-probability gap {gap:.3g} > {tol:.1g}) for this '{model.config.model_type}' "
            f"model (parts found by {parts.source}). The model probably transforms its final "
            "logits in a way the adapter does not know: pass an explicit LensSpec, or open an issue."
        )
    return gap
