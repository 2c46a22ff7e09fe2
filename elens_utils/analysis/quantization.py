"""Weight quantization as llama.cpp does it, and how far it moves entropy profiles.

The book's real pretrained models ship as 4-bit GGUF files (SmolLM2-135M-Instruct in Q4_1,
Gemma-3-270M in Q4_K_M) and are dequantized to float32 for the lens; nobody here has their
original weights. The zoo's models are small, but their unquantized weights are ours, so the
zoo measures what 4-bit storage does to a profile: quantize a zoo model the way llama.cpp would,
dequantize it again, and compare its profiles with the original's.

The round trip
--------------
:func:`quantize_dequantize` passes a float array through the ``gguf`` package's numpy quantizer
(``gguf.quants.quantize`` then ``dequantize``): the reference implementation of the llama.cpp
formats, and the code transformers itself uses to dequantize a GGUF file. Requantizing the
dequantized tensors of the shipped SmolLM2 file reproduces the file's bytes exactly (tested).
It writes the legacy block formats ``Q4_0``, ``Q4_1``, ``Q5_0``, ``Q5_1``, ``Q8_0`` (blocks of
32 values along a row) and the float types ``F16``, ``BF16``; it does **not** write the
K-quants (``Q4_K``, ``Q6_K``; the mixtures ``Q4_K_M``...), so Gemma-3's format cannot be
reproduced here. ``Q4_1`` (the SmolLM2 file's type, 5.0 bits per weight: per block of 32 a
float16 scale ``d`` and minimum ``m`` and 32 four-bit codes, ``x' = d * q + m``) is the
4-bit stand-in. Gemma-3's Q4_K_M file stores its 640-wide matrices in ``Q5_0`` (the K-quants
need rows of 256), so ``Q5_0`` measures the nearer case for that model.

Which tensors (:func:`quantize_weights`), mirroring llama.cpp's ``llama-quantize`` and the
SmolLM2 file (:func:`gguf_tensor_types`):

* the weight matrices of ``nn.Linear`` and of GPT-2's ``Conv1D`` (transposed first: a block
  always runs along the input dimension, the axis a matmul sums over) -> ``qtype``;
* the token embedding -> ``qtype``, unless it is also the unembedding;
* the unembedding (``lm_head``; the token embedding when the two are tied, as in SmolLM2 and in
  every zoo model) -> ``output_qtype``, ``Q8_0`` by default. llama.cpp gives it ``Q6_K``, which
  needs rows of 256 values and falls back to ``Q8_0`` otherwise: the SmolLM2 file's tied
  embedding (rows of 576) and Gemma-3's (640) are ``Q8_0``, and so would the zoo's be (64);
* kept in float: every 1-D tensor (norm gains, biases), position embeddings (llama.cpp never
  quantizes them), any other tensor, and any matrix whose rows are not a whole number of
  blocks (32 values).

The measurement
---------------
:func:`quantization_shift` profiles each model and its quantized copy on the same prompts
with the same seeds, and reports the entropy shift ``|H_q - H|`` per block (nats, and relative to
log V) twice: at the same contexts (the quantized model read on the tokens the original
generated, :func:`entropy_on_tokens`: the effect of the weights alone) and between the two
models' own generations averaged over tokens (the profile features a classifier sees). It then
runs the project's kNN (:func:`elens_utils.analysis.classify.knn_cv`) on both sets of features.

Everything is on CPU-friendly numpy; a model on a GPU is copied to the CPU tensor by tensor.
"""

from __future__ import annotations

import copy
import gc
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from elens_utils.core.errors import ElensError
from elens_utils.lens.loading import LensModel

__all__ = [
    "QTYPES",
    "OUTPUT_QTYPES",
    "QuantizationReport",
    "QuantizationShift",
    "bits_per_weight",
    "entropy_on_tokens",
    "gguf_tensor_types",
    "quantization_shift",
    "quantize_dequantize",
    "quantize_weights",
    "quantized_copy",
    "split_qtype_suffix",
]

#: Types :func:`quantize_weights` writes, as ``qtype``: llama.cpp's legacy block formats
#: (32 values per block) and the 16-bit floats (controls). No K-quants.
QTYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16", "BF16")
#: Types allowed for the unembedding (``output_qtype``): :data:`QTYPES`, and ``"F32"`` to keep it.
OUTPUT_QTYPES = (*QTYPES, "F32")

_K_QUANT = re.compile(r"^(I?Q\d_[KSXMN]\w*|Q\d_K(_[SML])?)$", re.IGNORECASE)
_SUFFIX = re.compile(r"^(?P<base>.+)@(?P<qtype>[A-Za-z0-9_]+)$")

# Roles of the tensors, as reported.
ROLE_MATRIX = "matrix"
ROLE_EMBED = "token embedding"
ROLE_UNEMBED = "unembedding"
ROLE_TIED = "token embedding = unembedding (tied)"
ROLE_POSITION = "position embedding"
ROLE_1D = "1-D (norm gain, bias)"
ROLE_OTHER = "other"


# --------------------------------------------------------------------------------------------
# types and the round trip


def _check_qtype(qtype: Any, *, allowed: Sequence[str] = QTYPES, what: str = "qtype") -> str:
    """The canonical (upper-case) name of ``qtype``, or an ElensError saying what is allowed."""
    if not isinstance(qtype, str) or not qtype.strip():
        raise ElensError(f"{what} must be a type name such as 'Q4_1'; got {qtype!r}.")
    name = qtype.strip().upper()
    if name in allowed:
        return name
    if _K_QUANT.match(name) and name not in OUTPUT_QTYPES:
        raise ElensError(
            f"{what} {qtype!r} is a K-quant or i-quant mixture, which the gguf package's numpy "
            f"quantizer cannot write: use one of {', '.join(allowed)} (Q4_1 is the 4-bit stand-in)."
        )
    raise ElensError(f"Unknown {what} {qtype!r}: use one of {', '.join(allowed)}.")


def _ggml_type(qtype: str):
    from gguf import GGMLQuantizationType

    return GGMLQuantizationType[qtype]


def _block_size(qtype: str) -> int:
    from gguf import GGML_QUANT_SIZES

    return GGML_QUANT_SIZES[_ggml_type(qtype)][0] if qtype != "F32" else 1


def bits_per_weight(qtype: str) -> float:
    """Storage bits per weight of a type: ``Q4_1`` 5.0, ``Q8_0`` 8.5, ``F16`` 16, ``F32`` 32.

    Raises:
        ElensError: for a type not in :data:`OUTPUT_QTYPES`.
    """
    from gguf import GGML_QUANT_SIZES

    name = _check_qtype(qtype, allowed=OUTPUT_QTYPES)
    block, size = GGML_QUANT_SIZES[_ggml_type(name)]
    return 8.0 * size / block


def quantize_dequantize(values: np.ndarray | torch.Tensor, qtype: str = "Q4_1") -> np.ndarray:
    """``dequantize(quantize(values))`` in a GGUF type: float32, the shape of ``values``.

    Blocks of the type's size (32 for ``Q4_*``, ``Q5_*``, ``Q8_0``) run along the **last** axis,
    which must hold a whole number of blocks. The input is first cast to float32 (llama.cpp
    quantizes from float32 too). ``Q4_1`` per block of 32 values ``x``: ``m = min x``,
    ``d = (max x - m) / 15``, ``q = floor((x - m) / d + 1/2)`` clipped to ``0..15`` (``q = 0``
    when ``d = 0``), stored as float16 ``d``, float16 ``m`` and the codes; the result is
    ``x' = d16 * q + m16``. The codes use the unrounded ``d`` and ``m``, the result the stored
    float16 ones, as in llama.cpp. Like llama.cpp, the codes are computed in float32, as
    ``(x - m) * (1 / d)``: where that value is a tie (``k + 1/2`` in exact arithmetic, frequent
    for weights on the coarse bfloat16 grid) the float32 rounding decides, and a float64
    evaluation of the same formula may pick the next code (34 values in 100,000 on the zoo).

    Args:
        values: a float array or tensor ``[..., n]``, ``n`` a multiple of the block size.
        qtype: one of :data:`QTYPES` (no K-quants: the gguf package cannot write them).

    Returns:
        float32 numpy array, same shape.

    Raises:
        ElensError: for an unknown qtype, non-float or non-finite values, or a last axis that is
            not a whole number of blocks.
    """
    from gguf import quants

    name = _check_qtype(qtype)
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    x = np.asarray(values)
    if not np.issubdtype(x.dtype, np.floating):
        raise ElensError(f"Only float arrays can be quantized; got dtype {x.dtype}.")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 0 or x.size == 0:
        raise ElensError(f"Nothing to quantize: an array of shape {x.shape}.")
    block = _block_size(name)
    if x.shape[-1] % block:
        raise ElensError(
            f"Rows of {x.shape[-1]} values are not a whole number of {name} blocks ({block} values): "
            "quantize arrays whose last axis is a multiple of the block size."
        )
    if not np.isfinite(x).all():
        raise ElensError("The values hold NaN or inf: only finite weights can be quantized.")
    out = quants.dequantize(quants.quantize(x, _ggml_type(name)), _ggml_type(name))
    return np.asarray(out, dtype=np.float32).reshape(x.shape)


def split_qtype_suffix(name: str) -> tuple[str, str | None]:
    """``"zoo/llama-8L@Q4_1"`` -> ``("zoo/llama-8L", "Q4_1")``; a name without suffix -> ``(name, None)``.

    The suffix is whatever follows the last ``@``, if it names one of :data:`QTYPES` (any case);
    a ``@`` followed by anything else is left in the name (it may be part of a path).

    Raises:
        ElensError: for a suffix that looks like a GGUF type but is not one this module writes
            (``@Q4_K_M``).
    """
    if not isinstance(name, str):
        raise ElensError(f"A model name must be a string; got {name!r}.")
    match = _SUFFIX.match(name)
    if not match:
        return name, None
    suffix = match["qtype"].upper()
    if suffix in QTYPES:
        return match["base"], suffix
    if _K_QUANT.match(suffix) or re.match(r"^(Q\d_\d|F(16|32)|BF16)$", suffix):
        _check_qtype(suffix)  # raises with the list of types
    return name, None


# --------------------------------------------------------------------------------------------
# which tensors


@dataclass(frozen=True)
class _Tensor:
    names: tuple[str, ...]  # every name of the parameter (tied weights have two)
    param: nn.Parameter
    role: str
    qtype: str  # "F32": kept
    transpose: bool  # Conv1D: [in, out] stored, blocks along `in`
    reason: str


def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers always has it
        return None
    return Conv1D


def _plan(model: nn.Module, qtype: str, output_qtype: str) -> list[_Tensor]:
    """Every parameter of ``model`` (once, with all its names), its role and the type it gets."""
    conv1d = _conv1d_type()
    inp = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    in_w = getattr(inp, "weight", None)
    out_w = getattr(out, "weight", None)
    owner: dict[int, tuple[nn.Module, str]] = {}
    for mname, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            owner.setdefault(id(p), (module, pname))
    names: dict[int, list[str]] = {}
    params: dict[int, nn.Parameter] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
        params[id(p)] = p
    plan = []
    for key, p in params.items():
        module, pname = owner[key]
        transpose = False
        if p.ndim < 2:
            role, target, reason = ROLE_1D, "F32", "1-D tensors stay in float (GGUF files keep norms and biases F32)"
        elif out_w is not None and p is out_w:
            role = ROLE_TIED if p is in_w else ROLE_UNEMBED
            target, reason = output_qtype, f"the unembedding takes output_qtype ({output_qtype})"
        elif in_w is not None and p is in_w:
            role, target, reason = ROLE_EMBED, qtype, "the token embedding takes the file's type"
        elif isinstance(module, nn.Embedding):
            role, target, reason = ROLE_POSITION, "F32", "llama.cpp never quantizes position embeddings"
        elif p.ndim == 2 and pname == "weight" and isinstance(module, nn.Linear):
            role, target, reason = ROLE_MATRIX, qtype, "a Linear weight: blocks along its input features"
        elif p.ndim == 2 and pname == "weight" and conv1d is not None and isinstance(module, conv1d):
            role, target, transpose = ROLE_MATRIX, qtype, True
            reason = "a Conv1D weight [in, out], transposed: blocks along its input features"
        else:
            role, target, reason = ROLE_OTHER, "F32", f"not a Linear, Conv1D or Embedding weight ({type(module).__name__}.{pname})"
        if target != "F32":
            row = p.shape[0] if transpose else p.shape[-1]
            if p.ndim != 2:
                target, reason = "F32", f"a {p.ndim}-D tensor: only matrices are quantized here"
            elif row % _block_size(target):
                reason = f"rows of {row} values are not a whole number of {target} blocks ({_block_size(target)}): kept"
                target = "F32"
        plan.append(_Tensor(tuple(names[key]), p, role, target, transpose, reason))
    return plan


@dataclass(frozen=True)
class QuantizationReport:
    """What :func:`quantize_weights` did to a model.

    Attributes:
        qtype: the type of the weight matrices.
        output_qtype: the type of the unembedding.
        tensors: one row per parameter (tied ones once): ``name`` (all its names, ``" = "``
            joined), ``role``, ``shape``, ``type`` (``"F32"``: kept as it was), ``reason``,
            ``n_values``, ``rms`` (of the original values), ``rms_error`` and ``max_error``
            (of the round trip, same units as the weights; 0 for kept tensors).
    """

    qtype: str
    output_qtype: str
    tensors: pd.DataFrame

    @property
    def n_quantized(self) -> int:
        """Number of parameters written back in a quantized type."""
        return int((self.tensors["type"] != "F32").sum())

    @property
    def quantized_fraction(self) -> float:
        """Share of all parameter values that went through the round trip."""
        n = self.tensors["n_values"]
        return float(n[self.tensors["type"] != "F32"].sum() / n.sum())

    @property
    def bits_per_weight(self) -> float:
        """Mean storage bits per parameter value (float tensors counted as float32)."""
        bits = self.tensors["type"].map(bits_per_weight) * self.tensors["n_values"]
        return float(bits.sum() / self.tensors["n_values"].sum())

    def by_role(self) -> pd.DataFrame:
        """``role``, ``type``, ``tensors``, ``values``: how many of each kind got which type."""
        return (
            self.tensors.groupby(["role", "type"], sort=False)
            .agg(tensors=("name", "size"), values=("n_values", "sum"))
            .reset_index()
        )

    def summary(self) -> str:
        """One line: the types, the tensors touched, the bits per weight."""
        return (
            f"{self.qtype} (unembedding {self.output_qtype}): {self.n_quantized} of {len(self.tensors)} tensors, "
            f"{self.quantized_fraction:.1%} of the values, {self.bits_per_weight:.2f} bits per weight on average"
        )


@torch.no_grad()
def quantize_weights(model: nn.Module, qtype: str = "Q4_1", *, output_qtype: str = "Q8_0") -> QuantizationReport:
    """Round-trip ``model``'s weights through a GGUF type, in place (see the module doc for which).

    Each chosen tensor is copied to the CPU as float32, passed through
    :func:`quantize_dequantize` along its input dimension, and written back in its own dtype
    and device. The model must hold float32 (or float64) weights, so that the dequantized
    values are stored exactly, as the book's GGUF models are (dequantized to float32).

    Args:
        model: a ``transformers`` causal LM (or any module with ``get_input_embeddings`` /
            ``get_output_embeddings``).
        qtype: the type of the weight matrices and of an untied token embedding, one of
            :data:`QTYPES`. ``Q4_1`` is the 4-bit type that can be written here (the
            K-quants of ``Q4_K_M`` cannot).
        output_qtype: the unembedding's type (the tied token embedding's too), one of
            :data:`OUTPUT_QTYPES`; ``"F32"`` leaves it unquantized.

    Returns:
        A :class:`QuantizationReport`.

    Raises:
        ElensError: for an unknown or K-quant type, or float16 / bfloat16 weights (load the
            model in float32 first).
    """
    qtype = _check_qtype(qtype)
    output_qtype = _check_qtype(output_qtype, allowed=OUTPUT_QTYPES, what="output_qtype")
    plan = _plan(model, qtype, output_qtype)
    low = sorted({str(t.param.dtype).removeprefix("torch.") for t in plan if t.qtype != "F32" and t.param.dtype not in (torch.float32, torch.float64)})
    if low:
        raise ElensError(
            f"The model holds {', '.join(low)} weights: the dequantized values would be rounded "
            "again. Load it in float32 (load_model(name, dtype='float32')) before quantizing."
        )
    rows = []
    for t in plan:
        p = t.param
        row = {
            "name": " = ".join(t.names), "role": t.role, "shape": tuple(p.shape), "type": t.qtype,
            "reason": t.reason, "n_values": int(p.numel()), "rms": math.nan, "rms_error": 0.0, "max_error": 0.0,
        }  # fmt: skip
        original = p.detach().to("cpu", torch.float64)
        row["rms"] = float(original.pow(2).mean().sqrt()) if p.numel() else 0.0
        if t.qtype != "F32":
            values = p.detach().to("cpu", torch.float32)
            if t.transpose:
                values = values.T
            restored = torch.from_numpy(quantize_dequantize(values.contiguous().numpy(), t.qtype))
            if t.transpose:
                restored = restored.T
            p.copy_(restored.to(p.device, p.dtype))
            err = restored.double() - original
            row["rms_error"] = float(err.pow(2).mean().sqrt())
            row["max_error"] = float(err.abs().max())
        rows.append(row)
    return QuantizationReport(qtype, output_qtype, pd.DataFrame(rows))


def quantized_copy(
    lm: LensModel,
    qtype: str = "Q4_1",
    *,
    output_qtype: str = "Q8_0",
    name: str | None = None,
    check: bool = True,
) -> tuple[LensModel, QuantizationReport]:
    """A quantized copy of a loaded model; ``lm`` itself is left unchanged.

    The model and its lens parts are deep-copied together (the tokenizer is shared), the
    copy's weights go through :func:`quantize_weights`, and the parity rule is checked on the
    copy as :func:`~elens_utils.load_model` does (the lens reads the quantized unembedding,
    so the last block's lens is still the model's own output).

    Args:
        lm: a model from :func:`~elens_utils.load_model`, in float32 or float64.
        qtype, output_qtype: as :func:`quantize_weights`.
        name: the copy's name (recorded in its profiles' ``meta.model``). Default
            ``f"{lm.name}@{qtype}"``, plus ``",output=TYPE"`` when ``output_qtype`` is not ``Q8_0``.
        check: verify the parity rule on the copy.

    Returns:
        ``(copy, report)``.

    Raises:
        ElensError: as :func:`quantize_weights`, or when the copy breaks the parity rule.
    """
    from elens_utils.lens.adapters import check_parity

    if not isinstance(lm, LensModel):
        raise ElensError(f"quantized_copy takes a LensModel from load_model; got {type(lm).__name__}.")
    qtype = _check_qtype(qtype)
    output_qtype = _check_qtype(output_qtype, allowed=OUTPUT_QTYPES, what="output_qtype")
    bad = {str(p.dtype) for p in lm.model.parameters() if p.is_floating_point()} - {"torch.float32", "torch.float64"}
    if bad:
        raise ElensError(
            f"'{lm.name}' holds {', '.join(sorted(s.removeprefix('torch.') for s in bad))} weights: load it in "
            "float32 (load_model(name, dtype='float32')) before quantizing."
        )
    twin = copy.deepcopy(lm, memo={id(lm.tokenizer): lm.tokenizer})
    report = quantize_weights(twin.model, qtype, output_qtype=output_qtype)
    if name is None:
        name = f"{lm.name}@{qtype}" + ("" if output_qtype == "Q8_0" else f",output={output_qtype}")
    twin.name = name
    if check:
        probe = torch.arange(1, 9, device=twin.device).remainder(twin.parts.vocab_size).unsqueeze(0)
        check_parity(twin.model, twin.parts, probe)
    return twin, report


# --------------------------------------------------------------------------------------------
# GGUF files


def gguf_tensor_types(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The storage type of every tensor role in a GGUF file.

    Block tensors ``blk.N.NAME`` are grouped by ``NAME`` over the blocks; a role stored in
    several types (Q4_K_M mixes them) gets one row per type, with the blocks of each.

    Returns:
        Columns ``role`` (``attn_q.weight``, ``token_embd.weight``...), ``type`` (``Q4_1``,
        ``F32``...), ``shape`` (GGUF order: the row length first), ``tensors`` (count),
        ``blocks`` (the block indices, empty for tensors outside blocks), ``bits_per_weight``.

    Raises:
        ElensError: when the file is missing or is not a GGUF file.
    """
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ElensError(f"No GGUF file at {path!r}.")
    try:
        reader = GGUFReader(path)
    except (ValueError, OSError) as err:
        raise ElensError(f"{path!r} is not a readable GGUF file: {err}") from err
    groups: dict[tuple[str, str, tuple[int, ...]], list[int]] = {}
    order: list[tuple[str, str, tuple[int, ...]]] = []
    for tensor in reader.tensors:
        match = re.match(r"^blk\.(\d+)\.(.+)$", tensor.name)
        role = match[2] if match else tensor.name
        key = (role, tensor.tensor_type.name, tuple(int(n) for n in tensor.shape))
        if key not in groups:
            groups[key] = []
            order.append(key)
        if match:
            groups[key].append(int(match[1]))
    rows = []
    for role, type_name, shape in order:
        blocks = sorted(groups[role, type_name, shape])
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
        rows.append(
            {
                "role": role, "type": type_name, "shape": shape, "tensors": max(1, len(blocks)),
                "blocks": blocks, "bits_per_weight": 8.0 * size / block,
            }  # fmt: skip
        )
    out = pd.DataFrame(rows)
    in_block = out["blocks"].map(len) > 0
    return pd.concat([out[in_block].sort_values(["role", "type"]), out[~in_block]], ignore_index=True)


# --------------------------------------------------------------------------------------------
# the lens on given tokens


@torch.no_grad()
def entropy_on_tokens(
    lm: LensModel,
    prompts: Sequence[str | Sequence[int]],
    generated_ids: np.ndarray | Sequence[Sequence[int]],
    *,
    alphas: float | Sequence[float] = (1.0,),
    batch_size: int = 16,
    **lens_kwargs: Any,
) -> np.ndarray:
    """The lens entropies of ``lm`` at the contexts of given generations (teacher forcing).

    For prompt ``n`` and its tokens ``g_1..g_T`` (from another model, or another run), step
    ``k`` reads every block's output at the position whose next token is ``g_k``: the last
    prompt position for ``k = 1``, ``g_(k-1)`` after that, as
    :func:`~elens_utils.lens.generation.generate_profiles` does while it generates. For the model
    that generated the tokens it gives that model's own profile (up to float rounding); for
    another model (a quantized copy) it isolates the effect of the weights from that of the
    tokens chosen.

    Args:
        lm: the model to read.
        prompts: N prompts (strings or token ids), encoded by ``lm.encode``.
        generated_ids: ``[N, T]`` token ids (``Profiles.meta["generated_ids"]``).
        alphas: Renyi orders.
        batch_size: sequences per forward pass.
        **lens_kwargs: for :func:`elens_utils.entropy.streaming.lens_entropy`.

    Returns:
        float32 ``[N, T, L, A]`` entropies in nats.

    Raises:
        ElensError: for a number of generations that differs from the prompts, ragged or
            empty generations, or ids outside the vocabulary.
    """
    from elens_utils.entropy.streaming import normalize_alphas
    from elens_utils.lens.capture import BlockCapture
    from elens_utils.lens.generation import left_pad

    alphas = normalize_alphas(alphas)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ElensError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    encoded = lm.encode(prompts)
    try:
        gen = np.asarray([list(g) for g in generated_ids], dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise ElensError("generated_ids must be [N, T] token ids, the same T for every prompt.") from err
    if gen.ndim != 2 or gen.shape[0] != len(encoded) or gen.shape[1] == 0:
        raise ElensError(
            f"generated_ids must be [N, T] with N = {len(encoded)} prompts and T >= 1; got shape {gen.shape}."
        )
    if gen.min() < 0 or gen.max() >= lm.parts.vocab_size:
        raise ElensError(f"generated_ids hold ids outside the vocabulary [0, {lm.parts.vocab_size}).")
    n, steps = gen.shape
    out = np.empty((n, steps, lm.n_layers, len(alphas)), dtype=np.float32)
    for start in range(0, n, batch_size):
        rows = [encoded[i] + gen[i, : steps - 1].tolist() for i in range(start, min(n, start + batch_size))]
        input_ids, mask, positions = left_pad(rows, lm.tokenizer.pad_token_id, lm.device)
        with BlockCapture(lm.parts.blocks, last_only=False) as capture:
            lm.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False)
            resid = capture.take()[:, :, -steps:]  # [L, B, T, d]: every row ends at the same column
        batch = resid.shape[1]
        h = lm.parts.entropy(resid.flatten(0, 2), alphas, **lens_kwargs).view(lm.n_layers, batch, steps, -1)
        out[start : start + batch] = h.permute(1, 2, 0, 3).cpu().numpy()
    return out


# --------------------------------------------------------------------------------------------
# the measurement


@dataclass(frozen=True)
class QuantizationShift:
    """The result of :func:`quantization_shift`.

    Attributes:
        models: one row per model: ``model``, ``family``, ``n_layers``, ``vocab_size``,
            ``log_v`` (nats), ``qtype``, ``output_qtype``, ``bits_per_weight``,
            ``quantized_fraction`` (of the parameter values), ``n_prompts``, ``n_tokens``;
            the shift at the same contexts, over prompts, tokens and blocks: ``token_dh_mean``,
            ``token_dh_max`` (``|H_q - H|``, nats), ``token_dh_bias`` (mean H_q - H);
            the shift of the features (each generation's mean over its own tokens, per block):
            ``feature_dh_mean``, ``feature_dh_max`` (nats); each ``*_rel`` column divides by
            ``log_v``; ``identical_generations`` (share of prompts whose T tokens all agree)
            and ``shared_prefix`` (mean share of tokens before the first disagreement); with a
            ``reference_seed``, ``resample_feature_dh_mean`` / ``_max`` (/ ``_mean_rel``): the
            feature shift between the float model's generations under two seeds (the noise floor).
        blocks: one row per (model, block): ``model``, ``layer`` (1..L), ``depth`` (layer / L),
            ``token_dh_mean``, ``token_dh_max``, ``token_dh_bias``, ``feature_dh_mean``,
            ``feature_dh_max`` (nats), ``token_dh_mean_rel`` (and ``resample_feature_dh_mean``).
        knn: one row per (scope, weights): ``scope`` (``"all models"`` for the family kNN, else
            the model), ``label`` (``"family"`` or ``"label"``), ``weights`` (``"float"``,
            ``"quantized"``, ``"float -> quantized"``: fitted on every float profile, scored
            on every quantized one; ``"float, seed S"``: the float models resampled), ``k``, ``folds`` (0 for the transfer), ``n``, ``auc_mean``,
            ``auc_std``, ``accuracy_mean``, ``dummy_auc_mean``, ``p_value``.
        float_profiles: the float models' profiles, one per model (``meta.family`` added).
        quantized_profiles: the quantized models' profiles, likewise.
        reports: model -> :class:`QuantizationReport`.
    """

    models: pd.DataFrame
    blocks: pd.DataFrame
    knn: pd.DataFrame
    float_profiles: list = field(repr=False)
    quantized_profiles: list = field(repr=False)
    reports: dict[str, QuantizationReport] = field(repr=False)


def _shared_prefix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[N]`` share of tokens before the first disagreement of ``a`` and ``b`` (``[N, T]``)."""
    differ = a != b
    first = np.where(differ.any(axis=1), differ.argmax(axis=1), a.shape[1])
    return first / a.shape[1]


def _with_family(prof: Any, family: str) -> Any:
    from elens_utils.entropy.profiles import Profiles

    meta = prof.meta.copy()
    meta["family"] = family
    return Profiles(prof.entropy, prof.alphas, meta)


def _cv_row(x: np.ndarray, y: np.ndarray, *, scope: str, label: str, weights: str, k: int, folds: int, seed: int) -> dict[str, Any]:
    from elens_utils.analysis.classify import knn_cv

    res = knn_cv(x, y, k=k, folds=folds, seed=seed)
    return {
        "scope": scope, "label": label, "weights": weights, "k": res.k, "folds": folds, "n": res.n_samples,
        "auc_mean": res.auc_mean, "auc_std": res.auc_std, "accuracy_mean": res.accuracy_mean,
        "dummy_auc_mean": res.dummy_auc_mean, "p_value": res.p_value,
    }  # fmt: skip


def _knn_rows(
    x_float: np.ndarray, x_quant: np.ndarray, y: np.ndarray, *, scope: str, label: str, k: int, folds: int, seed: int
) -> list[dict[str, Any]]:
    from elens_utils.analysis.classify import holdout_sweep

    rows = [
        _cv_row(x, y, scope=scope, label=label, weights=weights, k=k, folds=folds, seed=seed)
        for weights, x in (("float", x_float), ("quantized", x_quant))
    ]
    groups = np.array(["float"] * len(x_float) + ["quantized"] * len(x_quant), dtype=object)
    table = holdout_sweep(np.vstack([x_float, x_quant]), np.concatenate([y, y]), groups, k=k)
    held = table[table["held_out"] == "quantized"].iloc[0]
    rows.append(
        {
            "scope": scope, "label": label, "weights": "float -> quantized", "k": k, "folds": 0, "n": len(x_quant),
            "auc_mean": held["auc"], "auc_std": math.nan, "accuracy_mean": held["accuracy"],
            "dummy_auc_mean": 0.5, "p_value": math.nan,
        }  # fmt: skip
    )
    return rows


def quantization_shift(
    models: Sequence[str | os.PathLike[str] | LensModel],
    prompts: Sequence[str | Sequence[int]] | Callable[[str], Sequence[str | Sequence[int]]],
    labels: Sequence[str] | None = None,
    *,
    qtype: str = "Q4_1",
    output_qtype: str = "Q8_0",
    knn: str | None = "auto",
    k: int = 11,
    folds: int = 10,
    cv_seed: int = 42,
    alpha: float = 1.0,
    reference_seed: int | None = None,
    device: str = "auto",
    batch_size: int = 32,
    progress: bool | None = False,
    **profile_kwargs: Any,
) -> QuantizationShift:
    """How far quantizing the weights moves each model's entropy profiles, and the kNN results.

    For each model (loaded in float32, one at a time): profile the prompts; make a quantized
    copy (:func:`quantized_copy`) and profile the same prompts with the same settings and seeds;
    read the copy's lens on the original's generated tokens (:func:`entropy_on_tokens`). The
    shift is measured on the Renyi order ``alpha`` (Shannon by default).

    Then the kNN of :func:`elens_utils.analysis.classify.knn_cv` on the features of each side (the mean
    over tokens): ``knn="family"``, one classifier of the model family over all models, on a
    common relative-depth grid (:func:`~elens_utils.analysis.classify.profile_features`, as the
    families chapter); ``knn="label"``, one classifier of the prompt labels per model (task
    type), its k lowered by :func:`~elens_utils.analysis.knn_tables.capped_k`; ``"auto"``: ``"label"``
    when labels are given, else ``"family"`` when the models span at least two families, else
    none; ``None``: no kNN. Each kNN is also fitted on the float features and scored on the
    quantized ones (a classifier trained on unquantized models meeting quantized ones).

    Args:
        models: names (``zoo/llama-8L``, directories, Hub ids) or loaded float32 LensModels.
        prompts: N prompts, or a function ``model name -> prompts`` (the blank prompt).
        labels: N labels of the prompts (task types), for ``knn="label"``.
        qtype: as :func:`quantize_weights`.
        output_qtype: as :func:`quantize_weights`.
        k: the kNN's neighbours.
        folds: the kNN's cross-validation folds.
        cv_seed: the folds' ``random_state`` (42, as the paper's code).
        alpha: the Renyi order measured; it must be among the profiled ``alphas``.
        reference_seed: also profile each float model with this sampling seed, for the noise
            floor: the feature shift and the kNN of a mere resampling (columns
            ``resample_feature_dh_*``, kNN rows ``weights = "float, seed S"``). Sampling only.
        device: where models are loaded.
        batch_size: prompts per batch of the generation.
        progress: progress bars of the generation.
        **profile_kwargs: generation settings for :meth:`LensModel.profile`: ``max_new_tokens``,
            ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``seed``, ``alphas``...

    Returns:
        A :class:`QuantizationShift`.

    Raises:
        ElensError: for an empty or repeated model list, an unknown ``knn`` or ``qtype``, an
            ``alpha`` that is not profiled, and whatever loading, generation or the kNN raise.
    """
    from elens_utils.analysis.classify import family_of, profile_features
    from elens_utils.analysis.knn_tables import capped_k
    from elens_utils.lens.loading import load_model

    if isinstance(models, (str, bytes, os.PathLike, LensModel)) or not len(models):
        raise ElensError("Pass a non-empty list of models: quantization_shift(['zoo/llama-2L', ...], prompts).")
    names = [m.name if isinstance(m, LensModel) else os.fspath(m) for m in models]
    if len(set(names)) != len(names):
        raise ElensError(f"Models listed more than once: {sorted({m for m in names if names.count(m) > 1})}.")
    qtype = _check_qtype(qtype)
    output_qtype = _check_qtype(output_qtype, allowed=OUTPUT_QTYPES, what="output_qtype")
    if knn not in ("auto", "family", "label", None):
        raise ElensError(f"Unknown knn {knn!r}: use 'auto', 'family', 'label' or None.")
    families = [family_of(n) for n in names]
    if knn == "auto":
        knn = "label" if labels is not None else ("family" if len(set(families)) > 1 else None)
    if knn == "label" and labels is None:
        raise ElensError("knn='label' needs the prompts' labels: pass labels=[...], one per prompt.")
    alphas = profile_kwargs.pop("alphas", (1.0,))
    if reference_seed is not None:
        if not profile_kwargs.get("do_sample", False):
            raise ElensError("reference_seed needs sampling (do_sample=True): greedy decoding ignores the seed.")
        if reference_seed == profile_kwargs.get("seed", 0):
            raise ElensError(f"reference_seed={reference_seed} is the generation seed itself: choose another.")
    settings = {"batch_size": batch_size, "progress": progress, "alphas": alphas, **profile_kwargs}

    model_rows, block_rows = [], []
    float_profiles, quant_profiles, reports = [], [], {}
    resampled: list = []
    for given, name, family in zip(models, names, families):
        lm = given if isinstance(given, LensModel) else load_model(name, device=device, dtype="float32")
        these = list(prompts(name) if callable(prompts) else prompts)
        if labels is not None and len(labels) != len(these):
            raise ElensError(f"Got {len(labels)} labels for {len(these)} prompts of {name}: one label per prompt.")
        base = lm.profile(these, labels=labels, **settings)
        if alpha not in base.alphas:
            raise ElensError(f"alpha={alpha} is not among the profiled orders {list(base.alphas)}: add it to alphas.")
        twin, report = quantized_copy(lm, qtype, output_qtype=output_qtype)
        quant = twin.profile(these, labels=labels, **settings)
        gen = np.asarray(base.meta["generated_ids"].tolist(), dtype=np.int64)
        forced = entropy_on_tokens(twin, these, gen, alphas=base.alphas, batch_size=batch_size)
        j = base.alphas.index(alpha)
        h, hq, hf = (a[..., j].astype(np.float64) for a in (base.entropy, quant.entropy, forced))  # [N, T, L]
        token_diff = hf - h
        feature_diff = hq.mean(axis=1) - h.mean(axis=1)  # [N, L]
        log_v = math.log(lm.parts.vocab_size)
        qgen = np.asarray(quant.meta["generated_ids"].tolist(), dtype=np.int64)
        prefix = _shared_prefix(gen, qgen)
        extra: dict[str, float] = {}
        resample_diff = None
        if reference_seed is not None:
            ref = lm.profile(these, labels=labels, **{**settings, "seed": reference_seed})
            resample_diff = ref.entropy[..., j].astype(np.float64).mean(axis=1) - h.mean(axis=1)  # [N, L]
            extra = {
                "resample_feature_dh_mean": float(np.abs(resample_diff).mean()),
                "resample_feature_dh_max": float(np.abs(resample_diff).max()),
            }
            resampled.append(_with_family(ref, family))
        model_rows.append(
            {
                "model": name, "family": family, "n_layers": lm.n_layers, "vocab_size": lm.parts.vocab_size,
                "log_v": log_v, "qtype": qtype, "output_qtype": output_qtype,
                "bits_per_weight": report.bits_per_weight, "quantized_fraction": report.quantized_fraction,
                "n_prompts": base.n, "n_tokens": base.n_tokens,
                "token_dh_mean": float(np.abs(token_diff).mean()), "token_dh_max": float(np.abs(token_diff).max()),
                "token_dh_bias": float(token_diff.mean()),
                "feature_dh_mean": float(np.abs(feature_diff).mean()),
                "feature_dh_max": float(np.abs(feature_diff).max()),
                "identical_generations": float((prefix == 1.0).mean()), "shared_prefix": float(prefix.mean()),
                **extra,
            }  # fmt: skip
        )
        for layer in range(lm.n_layers):
            block_rows.append(
                {
                    "model": name, "layer": layer + 1, "depth": (layer + 1) / lm.n_layers,
                    "token_dh_mean": float(np.abs(token_diff[..., layer]).mean()),
                    "token_dh_max": float(np.abs(token_diff[..., layer]).max()),
                    "token_dh_bias": float(token_diff[..., layer].mean()),
                    "feature_dh_mean": float(np.abs(feature_diff[:, layer]).mean()),
                    "feature_dh_max": float(np.abs(feature_diff[:, layer]).max()),
                    "token_dh_mean_rel": float(np.abs(token_diff[..., layer]).mean() / log_v),
                    **(
                        {"resample_feature_dh_mean": float(np.abs(resample_diff[:, layer]).mean())}
                        if resample_diff is not None
                        else {}
                    ),
                }  # fmt: skip
            )
        float_profiles.append(_with_family(base, family))
        quant_profiles.append(_with_family(quant, family))
        reports[name] = report
        del lm, twin
        gc.collect()

    frame = pd.DataFrame(model_rows)
    for col in ("token_dh_mean", "token_dh_max", "feature_dh_mean", "feature_dh_max", "resample_feature_dh_mean"):
        if col in frame:
            frame[f"{col}_rel"] = frame[col] / frame["log_v"]

    knn_rows: list[dict[str, Any]] = []
    if knn == "family":
        xf, y = profile_features(float_profiles, "mean", alpha, depth="interpolate", label_column="family")
        xq, yq = profile_features(quant_profiles, "mean", alpha, depth="interpolate", label_column="family")
        assert list(y) == list(yq)
        knn_rows += _knn_rows(xf, xq, y, scope="all models", label="family", k=k, folds=folds, seed=cv_seed)
        if resampled:
            xr, _ = profile_features(resampled, "mean", alpha, depth="interpolate", label_column="family")
            knn_rows.append(_cv_row(xr, y, scope="all models", label="family", weights=f"float, seed {reference_seed}", k=k, folds=folds, seed=cv_seed))
    elif knn == "label":
        for name, pf, pq in zip(names, float_profiles, quant_profiles):
            y = pf.meta["label"].to_numpy(dtype=object)
            kk = capped_k(k, y, folds)
            knn_rows += _knn_rows(
                pf.features("mean", alpha), pq.features("mean", alpha), y, scope=name, label="label", k=kk, folds=folds, seed=cv_seed
            )
            if resampled:
                pr = resampled[names.index(name)]
                knn_rows.append(
                    _cv_row(pr.features("mean", alpha), y, scope=name, label="label", weights=f"float, seed {reference_seed}", k=kk, folds=folds, seed=cv_seed)
                )
    knn_frame = pd.DataFrame(
        knn_rows,
        columns=["scope", "label", "weights", "k", "folds", "n", "auc_mean", "auc_std", "accuracy_mean", "dummy_auc_mean", "p_value"],
    )
    return QuantizationShift(frame, pd.DataFrame(block_rows), knn_frame, float_profiles, quant_profiles, reports)
