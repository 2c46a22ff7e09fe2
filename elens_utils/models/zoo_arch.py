"""The zoo's architectures: four real Hugging Face families at one shared shape.

GPT-2, Llama, Gemma-2 and Qwen3, each at any depth, share :class:`ZooShape` (width 64, 4 heads
of 16, FFN width 256, context 512, tied unembedding, no dropout) and the story world's
word-level tokenizer. What stays family-specific is what makes the family (positions, norms,
MLP, attention, soft-capping; see :mod:`elens_utils.zoo.training`). Nothing is trained here:
:func:`zoo_config` and :func:`build_model` give the untrained model that the registry's
``untrained/...`` names and the zoo's training start from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from elens_utils.core.errors import ElensError
from elens_utils.data.synthetic import build_tokenizer

__all__ = ["ZOO_DEPTHS", "ZOO_FAMILIES", "ZooShape", "build_model", "check_family", "check_layers", "model_name", "zoo_config"]

ZOO_FAMILIES: tuple[str, ...] = ("gpt2", "llama", "gemma2", "qwen3")
ZOO_DEPTHS: tuple[int, ...] = (2, 4, 8)


@dataclass(frozen=True)
class ZooShape:
    """The shape every family shares (where its architecture allows)."""

    hidden: int = 64
    heads: int = 4
    kv_heads: int = 2  # grouped-query attention for llama / gemma2 / qwen3; gpt2 has MHA
    ffn: int = 256
    max_positions: int = 512
    sliding_window: int = 64  # gemma2's local layers (every other layer, from the first)
    qwen3_vocab: int = 384  # qwen3's unembedding rows (padded past the 341 tokens)
    attn_softcap: float = 50.0  # gemma2, as the real model
    final_softcap: float = 30.0  # gemma2, as the real model

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def check_family(family: str) -> None:
    """Raise :class:`ElensError` unless ``family`` is one of :data:`ZOO_FAMILIES`."""
    if family not in ZOO_FAMILIES:
        raise ElensError(f"Unknown zoo family {family!r}: use one of {', '.join(ZOO_FAMILIES)}.")


def check_layers(n_layers: Any) -> None:
    """Raise :class:`ElensError` unless ``n_layers`` is an integer in 1..64."""
    if not isinstance(n_layers, int) or isinstance(n_layers, bool) or not 1 <= n_layers <= 64:
        raise ElensError(f"The number of layers must be an integer in 1..64, got {n_layers!r}.")


def model_name(family: str, n_layers: int) -> str:
    """``"llama-8L"``: the model's directory name under the zoo root."""
    return f"{family}-{n_layers}L"


def zoo_config(family: str, n_layers: int, shape: ZooShape | None = None):
    """The ``transformers`` config of the zoo's ``family`` model with ``n_layers`` blocks."""
    from transformers import CONFIG_MAPPING

    check_family(family)
    check_layers(n_layers)
    s = shape or ZooShape()
    tok = build_tokenizer()
    ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    n_tokens = len(tok)
    if family == "gpt2":
        kw = {
            "vocab_size": n_tokens,
            "n_layer": n_layers,
            "n_embd": s.hidden,
            "n_head": s.heads,
            "n_inner": s.ffn,
            "n_positions": s.max_positions,
            "activation_function": "gelu_new",
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
            "tie_word_embeddings": True,
        }
    else:
        kw = {
            "vocab_size": n_tokens,
            "num_hidden_layers": n_layers,
            "hidden_size": s.hidden,
            "intermediate_size": s.ffn,
            "num_attention_heads": s.heads,
            "num_key_value_heads": s.kv_heads,
            "head_dim": s.head_dim,
            "max_position_embeddings": s.max_positions,
            "attention_dropout": 0.0,
            "tie_word_embeddings": True,
        }
        if family == "gemma2":
            kw.update(
                query_pre_attn_scalar=s.head_dim,
                sliding_window=s.sliding_window,
                layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)],
                attn_logit_softcapping=s.attn_softcap,
                final_logit_softcapping=s.final_softcap,
            )
        elif family == "qwen3":
            kw.update(vocab_size=max(s.qwen3_vocab, n_tokens), layer_types=["full_attention"] * n_layers)
        elif family == "llama":
            kw.update(mlp_bias=False, attention_bias=False)
    config = CONFIG_MAPPING[family](**kw, **ids)
    if family == "gemma2":
        config._attn_implementation = "eager"  # soft-capped attention: eager only
    return config


def build_model(config, family: str):
    """A randomly initialised float32 model of ``config`` (eager attention for Gemma-2's soft-cap)."""
    from transformers import AutoModelForCausalLM

    kwargs = {"attn_implementation": "eager"} if family == "gemma2" else {}
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32, **kwargs)
