"""Tiny GGUF files written with the ``gguf`` package's writer, for tests (no download).

:func:`write_gguf` writes a transformers model and its byte-level BPE tokenizer the way llama.cpp's
converter lays them out (tensor names from ``gguf``'s own name map, Llama's query/key rows
permuted into llama.cpp's rotary order, the tokenizer as ``tokenizer.ggml.*`` metadata), with
the 2-D weight matrices in float32 or in a quantized type that ``gguf.quants`` can write.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch

_ARCHS = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}


def _to_llamacpp_rotary(w: np.ndarray, n_head: int) -> np.ndarray:
    """Rows of a query/key projection reordered as llama.cpp stores them (transformers undoes it)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _bpe_vocab(tokenizer) -> tuple[list[str], list[str], list[int]]:
    """Tokens in id order, merges as 'a b' strings, and llama.cpp token types (1 normal, 3 control)."""
    import json

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state["model"]
    assert model["type"] == "BPE", "write_gguf needs a byte-level BPE tokenizer"
    vocab = dict(model["vocab"])
    for added in state.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [None] * (max(vocab.values()) + 1)
    for token, index in vocab.items():
        tokens[index] = token
    assert None not in tokens
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    special = {a["content"] for a in state.get("added_tokens", []) if a.get("special")}
    types = [3 if t in special else 1 for t in tokens]
    return tokens, merges, types


def write_gguf(model, tokenizer, path: Path, qtype: str = "F32") -> Path:
    """Write ``model`` (a llama or qwen2 ``*ForCausalLM``) and its tokenizer as a GGUF file.

    Args:
        qtype: type of the 2-D weight matrices (``"F32"``, ``"Q8_0"``, ``"Q4_1"``...); the
            embedding, norms and biases stay float32 where the quantized type does not fit.
    """
    cfg = model.config
    arch = _ARCHS[cfg.model_type]
    n_blocks = cfg.num_hidden_layers
    names = gguf.get_tensor_name_map(arch, n_blocks)
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(f"tiny-{cfg.model_type}")
    writer.add_block_count(n_blocks)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_rope_dimension_count(head_dim)
    rope = getattr(cfg, "rope_parameters", None) or {}
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))))
    tokens, merges, types = _bpe_vocab(tokenizer)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for key, value in (("bos", tokenizer.bos_token_id), ("eos", tokenizer.eos_token_id), ("pad", tokenizer.pad_token_id)):
        if value is not None:
            getattr(writer, f"add_{key}_token_id")(int(value))
    writer.add_add_bos_token(False)
    quant = gguf.GGMLQuantizationType[qtype]
    block = gguf.GGML_QUANT_SIZES[quant][0]
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp writes the output matrix only when it is not the embedding
        base, _, suffix = hf_name.rpartition(".")
        name = names.get_name(base)
        assert name is not None, hf_name
        data = tensor.detach().to(torch.float32).numpy()
        if cfg.model_type == "llama" and name.endswith(("attn_q", "attn_k")):
            heads = cfg.num_attention_heads if name.endswith("attn_q") else cfg.num_key_value_heads
            data = _to_llamacpp_rotary(data, heads)
        full = f"{name}.{suffix}"
        if data.ndim == 2 and quant != gguf.GGMLQuantizationType.F32 and data.shape[1] % block == 0:
            writer.add_tensor(full, gguf.quants.quantize(data, quant), raw_dtype=quant)
        else:
            writer.add_tensor(full, np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def dequantized(data: np.ndarray, qtype: str) -> np.ndarray:
    """``data`` after a round trip through ``gguf``'s quantizer (what a GGUF file of that type holds)."""
    quant = gguf.GGMLQuantizationType[qtype]
    return gguf.quants.dequantize(gguf.quants.quantize(data, quant), quant)
