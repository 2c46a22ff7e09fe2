"""The lens attaches to any causal LM transformers can build, final-logit transform included.

For every ``model_type`` in transformers' ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`` a tiny
random-weight float32 model is built from its config class (2-3 blocks, hidden size 64, 96
tokens, explicit bos/eos/pad ids, ``AutoModelForCausalLM.from_config``; no tokenizer, nothing
from the Hub), and:

* :func:`find_lens_parts` and :func:`check_parity` (what ``load_model`` runs on every load) pass;
* the lens entropy of the last block (:meth:`LensParts.entropy`, the streaming kernel with the
  transform folded in) equals the float64 entropy of the model's own output logits to 1e-4 nats
  at every position;
* where the tiny config carries a final-logit transform (scale, divide, soft-cap, scaled hidden
  state), dropping it moves that entropy by more than 0.01 nats, so the test would fail if the
  adapter ignored it. The transform values are set in :data:`OVERRIDES` far from 1 (scales 0.5
  to 4, soft-caps 1-3) because their defaults are often the identity (Granite's
  ``logits_scaling = 1``) or too loose to bite on tiny logits (a cap of 30);
* a scale before a soft-cap, with a biased head, folds into both entropy kernels (torch, and
  Triton under its CPU interpreter) exactly.

With transformers 5.25 (200 causal-LM model types), 137 are covered and 63 skipped. Covered,
those with a final-logit transform marked by its kind (m = multiply, d = divide, s = soft-cap,
h = hidden state divided before the unembedding), plus two variants: ``gemma3_text-nocap``
(Gemma-3 with ``final_logit_softcapping = None``, as Gemma-3-270M ships) and ``mpt-logit_scale``
(a config ``logit_scale`` that transformers' MPT ignores, and so must the lens)::

    afmoe apertus apertus1p5_text arcee aria_text axk1 axk2 bailing_hybrid bamba beam(s) biogpt
    bitnet bloom codegen cohere(m) cohere2(m) cohere2_moe(m) cohere_compass_text(m) ctrl cwm dbrx
    deepseek_v2 deepseek_v3 deepseek_v32 diffllama doge dots1 dots3_note_text ergo ernie4_5 ernie4_5_moe
    exaone exaone4 exaone_moe falcon falcon_h1(m) falcon_mamba flex_olmo flint gemma gemma2(s)
    gemma3_text(s) gemma4_text(s) gemma4_unified_text(s) glm glm4 glm4_moe glm4_moe_lite
    glm_moe_dsa gpt-sw3 gpt2 gpt_bigcode gpt_neo gpt_neox gpt_neox_japanese gpt_oss gptj
    granite(d) granite_swa(d) granitemoe(d) granitemoe_swa(d) granitemoehybrid(d)
    granitemoeshared(d) helium hunyuan_v1_dense hunyuan_v1_moe hy_v3 hyperclovax(m)
    inkling_text(h) internlm3 iquestcoder jais2 jamba jetmoe kimi_linear kolibri1 kolibri1_1
    laguna lara_mini lfm2 lfm2_moe lfm3 llama llama4_text longcat_flash mamba mamba2 mellum
    mimo_v2_flash minicpm3(h) minicpm5_moe minimax minimax_m2 minimax_m3_vl_text ministral
    ministral3 mistral mixtral moshi mpt nanochat(s) nemotron nemotron_h olmo olmo2 olmo3
    olmo_hybrid olmoe openai-gpt opt param2moe persimmon phi phi3 phimoe qwen2 qwen2_moe qwen3
    qwen3_5_moe_text qwen3_5_text qwen3_moe qwen3_next recurrent_gemma(s) rwkv sarvam_mla
    sarvam_moe seed_oss smollm3 solar_open stablelm starcoder2 vaultgemma(s) xglm xlstm(s) youtu
    zamba2 zaya

With every transform dropped from :data:`elens_utils.lens.adapters.LOGIT_TRANSFORMS`, exactly the 23
marked ones fail (checked by hand); dropping a transform moves their entropies by 0.1 to 4 nats.

The skipped ones, with their reasons, are :data:`SKIPPED` (``pytest -rs`` lists them). A model
type that a later transformers adds is tried with the generic tiny config; if even its config
cannot be built that way it is skipped with the error as the reason, but once it builds, the
lens must pass. The architectures in :data:`MUST_COVER` may not be skipped at all.

Budget: about 15 s on one core (30 s with cold file caches), most of it transformers' first
imports of ~140 modeling modules.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from transformers import CONFIG_MAPPING, AutoModelForCausalLM
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from elens_utils import ElensError
from elens_utils.entropy.streaming import lens_entropy
from elens_utils.lens.adapters import LensSpec, check_parity, find_lens_parts

VOCAB = 96
BOS, EOS, PAD = 1, 2, 0
MAX_PARAMS = 3_000_000  # a tiny config that is still bigger than this is skipped (checked on "meta")

# Applied to every config class that declares the field (dataclass configs of transformers 5).
SIZES: dict[str, object] = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    intermediate_size=96,
    max_position_embeddings=64,
    # GPT-2 style names
    n_embd=64,
    n_layer=2,
    n_head=4,
    n_positions=64,
    n_ctx=64,
    n_inner=96,
    d_model=64,
    num_layers=2,
    num_heads=4,
    ffn_dim=96,
    rotary_dim=8,
    # mixture of experts and latent attention
    moe_intermediate_size=32,
    shared_expert_intermediate_size=32,
    shared_intermediate_size=32,
    num_experts=4,
    num_local_experts=4,
    n_routed_experts=4,
    num_experts_per_tok=2,
    n_shared_experts=1,
    n_group=1,
    topk_group=1,
    first_k_dense_replace=1,
    kv_lora_rank=16,
    q_lora_rank=16,
    qk_rope_head_dim=8,
    qk_nope_head_dim=8,
    v_head_dim=16,
    index_n_heads=4,
    index_head_dim=16,
    index_topk=8,
    # state-space and linear-attention blocks
    mamba_d_state=16,
    mamba_n_heads=8,
    mamba_d_head=16,
    mamba_chunk_size=16,
    linear_key_head_dim=16,
    linear_value_head_dim=16,
    linear_num_key_heads=2,
    linear_num_value_heads=4,
    # peaked, varied distributions (real models use 0.02, which leaves every entropy near log V)
    initializer_range=0.2,
    init_std=0.2,
)
_ZERO = (
    "dropout",
    "attention_dropout",
    "hidden_dropout",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "activation_dropout",
    "layerdrop",
)

# Per-architecture config values: the final-logit transforms set far from the identity, and
# whatever else a 2-block, 64-wide model of that family needs.
_LINEAR_AND_FULL = dict(layer_types=["linear_attention", "full_attention"])
OVERRIDES: dict[str, dict[str, object]] = {
    # final-logit transforms
    "cohere": dict(logit_scale=0.5),
    "cohere2": dict(logit_scale=0.5),
    "cohere2_moe": dict(logit_scale=0.5),
    "cohere_compass_text": dict(
        logit_scale=0.5,
        rope_parameters={
            kind: {"rope_type": "default", "rope_theta": 10000.0} for kind in ("full_attention", "sliding_attention")
        },
    ),
    "granite": dict(logits_scaling=0.5),
    "granite_swa": dict(logits_scaling=0.5),
    "granitemoe": dict(logits_scaling=0.5),
    "granitemoe_swa": dict(logits_scaling=0.5),
    "granitemoeshared": dict(logits_scaling=0.5),
    "granitemoehybrid": dict(logits_scaling=0.5, layer_types=["mamba", "attention"]),
    "hyperclovax": dict(logits_scaling=0.5),  # multiplies, where Granite divides
    "falcon_h1": dict(lm_head_multiplier=2.0, mamba_d_ssm=128),
    "minicpm3": dict(dim_model_base=16),  # hidden / (64 / 16) before the unembedding
    "inkling_text": dict(logits_mup_width_multiplier=2.0),
    "gemma2": dict(final_logit_softcapping=2.0),
    "gemma3_text": dict(final_logit_softcapping=2.0),
    "gemma4_text": dict(final_logit_softcapping=2.0, vocab_size_per_layer_input=VOCAB, hidden_size_per_layer_input=16),
    "gemma4_unified_text": dict(final_logit_softcapping=2.0),
    "vaultgemma": dict(final_logit_softcapping=2.0),
    "nanochat": dict(final_logit_softcapping=2.0),
    "beam": dict(final_logit_softcapping=2.0),
    "recurrent_gemma": dict(
        logits_soft_cap=3.0, num_hidden_layers=3, lru_width=64, attention_window_size=16
    ),
    "xlstm": dict(output_logit_soft_cap=1.0, num_heads=4, qk_dim_factor=1.0),
    # shapes only
    "gpt_neo": dict(attention_types=[[["global", "local"], 1]], window_size=16),
    "jamba": dict(
        attn_layer_period=2, attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1,
        use_mamba_kernels=False,
    ),
    "bamba": dict(attn_layer_indices=[1]),
    "mamba2": dict(num_heads=8, head_dim=16, n_groups=1, state_size=16, chunk_size=16),
    "qwen3_next": _LINEAR_AND_FULL,
    "qwen3_5_text": _LINEAR_AND_FULL,
    "qwen3_5_moe_text": _LINEAR_AND_FULL,
    "bailing_hybrid": _LINEAR_AND_FULL,
    "kimi_linear": dict(_LINEAR_AND_FULL, linear_head_dim=16, linear_num_heads=4),
    "lfm2_moe": dict(layer_types=["conv", "full_attention"], num_dense_layers=1),
    "zamba2": dict(layers_block_type=["mamba", "hybrid"], n_mamba_heads=8, chunk_size=16, adapter_rank=8),
    "zaya": dict(num_experts_per_tok=1),
    "kolibri1_1": dict(index_num_heads=2),
    "ergo": dict(first_dense_intermediate_size=96),
    "longcat_flash": dict(ffn_hidden_size=96, expert_ffn_hidden_size=32, moe_topk=2, zero_expert_num=2, head_dim=8),
    "dbrx": dict(
        n_layers=2, n_heads=4, max_seq_len=64,
        attn_config={"kv_n_heads": 2, "rope_theta": 10000.0, "clip_qkv": 8.0},
        ffn_config={"ffn_hidden_size": 64, "moe_num_experts": 4, "moe_top_k": 2},
    ),
}

_ENCODER = (
    "an encoder (BERT family) run as a decoder: its LM head applies a dense + activation + norm "
    "transform before the unembedding, which the lens search does not take (name it in "
    "LensSpec.final)"
)
_SEQ2SEQ = "the decoder half of an encoder-decoder model, not a stand-alone causal LM"
_MULTIMODAL = "a multimodal model (vision or audio inputs; its text model is covered where separate)"
SKIPPED: dict[str, str] = {
    **dict.fromkeys(
        [
            "bert", "bert-generation", "big_bird", "camembert", "data2vec-text", "electra", "ernie",
            "megatron-bert", "rembert", "roberta", "roberta-prelayernorm", "roc_bert", "roformer",
            "xlm-roberta", "xlm-roberta-xl", "xmod", "modernbert-decoder",
        ],
        _ENCODER,
    ),
    **dict.fromkeys(
        [
            "bart", "bigbird_pegasus", "blenderbot", "blenderbot-small", "marian", "mbart", "mvp",
            "pegasus", "plbart", "prophetnet", "trocr", "whisper",
        ],
        _SEQ2SEQ,
    ),
    **dict.fromkeys(
        [
            "emu3", "fuyu", "gemma3", "gemma3n", "gemma4", "gemma4_unified", "git", "got_ocr2",
            "llama4", "mllama", "moss_transcribe_diarize", "phi4_multimodal", "qwen3_5",
            "qwen3_5_moe", "dots3_note", "qwen4_exp",
        ],
        _MULTIMODAL,
    ),
    "xlm": "no block modules: attention, FFN and norms are parallel ModuleLists (post-LN XLM)",
    "xlnet": "two-stream permutation LM (query and content streams); no single residual stream",
    "reformer": "reversible two-stream residual (the head reads the concatenation of both halves)",
    "musicgen": "audio codebooks: several LM heads, one per codebook, over a delay pattern",
    "musicgen_melody": "audio codebooks: several LM heads, one per codebook, over a delay pattern",
    "blt": "byte latent transformer: local encoder/decoder around a latent global model",
    "cpmant": "prompt/segment-typed inputs (CPM-Ant) the generic tiny config does not build",
    "hrm_text": "hierarchical recurrent model (H and L modules looped); no single block stack",
    "deepseek_v4": "hyper-connections: hc_mult residual streams mixed by hc_head before the norm",
    "hy_v4": "hyper-connections: hc_mult residual streams mixed by hc_head before the norm",
    "dory": (
        "learned per-token logit scale (a [V] parameter of its head), not a config scalar: exactly 1 "
        "at random init, so a tiny model would pass vacuously; with other values the parity check "
        "rejects it (test_dory_per_token_logit_scale_fails_loudly)"
    ),
    "gemma3n_text": "AltUp: several residual streams per block, merged before the final norm",
    "gemma4_assistant": "a draft model that reads the backbone's hidden states, not token ids alone",
    "gemma4_unified_assistant": "a draft model that reads the backbone's hidden states, not token ids alone",
    "qwen4_exp_text": "hyper-connections: several residual streams mixed by hyper_connection_mixer",
    "inkling2_text": "attention residuals: the head reads a learned mix of all block outputs (final_input)",
    "inkling2_loop_text": "attention residuals: the head reads a learned mix of all block outputs (final_input)",
    "zamba": "shared attention block tied across layers; a 3-block tiny config breaks its weight tying",
}

# Architectures whose final-logit transform this test must exercise (present in every
# transformers 5.x): they may not be skipped, and their transform must move the entropy.
MUST_COVER: dict[str, tuple[str, str]] = {
    "cohere": ("logit_scale", "multiply"),
    "cohere2": ("logit_scale", "multiply"),
    "granite": ("logits_scaling", "divide"),
    "granitemoe": ("logits_scaling", "divide"),
    "falcon_h1": ("lm_head_multiplier", "multiply"),
    "gemma2": ("final_logit_softcapping", "softcap"),
    "gemma3_text": ("final_logit_softcapping", "softcap"),
}

# Extra cases: (test id, model_type, overrides replacing OVERRIDES[model_type]).
VARIANTS: list[tuple[str, str, dict[str, object]]] = [
    ("gemma3_text-nocap", "gemma3_text", dict(final_logit_softcapping=None)),
    # MPT's config has a logit_scale that transformers' forward ignores (LOGIT_TRANSFORMS["mpt"]).
    ("mpt-logit_scale", "mpt", dict(logit_scale=0.5)),
]


def _cases() -> list:
    cases = []
    for model_type in sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES):
        marks = [pytest.mark.skip(reason=SKIPPED[model_type])] if model_type in SKIPPED else []
        cases.append(pytest.param(model_type, OVERRIDES.get(model_type, {}), id=model_type, marks=marks))
    for case_id, model_type, overrides in VARIANTS:
        if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            cases.append(pytest.param(model_type, overrides, id=case_id))
    return cases


def tiny_config(model_type: str, overrides: dict[str, object]):
    """A small config of ``model_type``: :data:`SIZES` for the fields it has, then ``overrides``."""
    cls = CONFIG_MAPPING[model_type]
    fields = set(getattr(cls, "__dataclass_fields__", {}))
    kwargs = {k: v for k, v in SIZES.items() if k in fields}
    kwargs.update({k: 0.0 for k in _ZERO if k in fields})
    if "kv_lora_rank" in fields:  # latent attention: as many key/value heads as query heads
        kwargs["num_key_value_heads"] = kwargs.get("num_attention_heads", 4)
    kwargs.update(overrides)
    kwargs.update(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    return cls(**kwargs)


def build_tiny(model_type: str, overrides: dict[str, object]) -> torch.nn.Module:
    """A float32 random-weight model (seed 0) of ``model_type``, in eval mode.

    Calls ``pytest.skip`` (with the error) when the generic tiny config cannot be built, unless
    the architecture is in :data:`MUST_COVER`.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = tiny_config(model_type, overrides)
            with torch.device("meta"):  # size check before allocating anything
                n_params = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
            if n_params > MAX_PARAMS:
                raise ValueError(f"the tiny config still has {n_params:,} parameters")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    except Exception as err:  # noqa: BLE001 - any failure to construct is a reason to skip
        if model_type in MUST_COVER:
            raise
        pytest.skip(f"no tiny config: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
    return model.eval().requires_grad_(False)


def _entropy64(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of ``softmax(logits)`` over the last axis, in float64."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def _has_transform(parts) -> bool:
    hidden_scaled = any(type(m).__name__ == "_HiddenScale" for m in parts.final)
    return parts.logit_scale != 1.0 or parts.softcap is not None or hidden_scaled


INPUT_IDS = torch.tensor([[BOS, 5, 17, 42, 9, 63, 30, 88]])


@pytest.mark.parametrize(("model_type", "overrides"), _cases())
@torch.no_grad()
def test_lens_of_last_block_is_the_model_distribution(model_type: str, overrides: dict[str, object]) -> None:
    model = build_tiny(model_type, overrides)
    parts = find_lens_parts(model)
    assert parts.vocab_size == model.get_output_embeddings().weight.shape[0]
    check_parity(model, parts, INPUT_IDS[:, :4])

    captured: list[torch.Tensor] = []
    hook = parts.blocks[-1].register_forward_hook(
        lambda _m, _i, out: captured.append(out[0] if isinstance(out, (tuple, list)) else out)
    )
    try:
        own = model(input_ids=INPUT_IDS, use_cache=False).logits[0]  # [S, V]
    finally:
        hook.remove()
    resid = captured[-1][0]  # [S, d]
    lens = parts.entropy(resid, (1.0,), backend="torch")[:, 0].double()
    truth = _entropy64(own)
    assert (lens - truth).abs().max().item() < 1e-4, (model_type, lens, truth)
    # Not every position at log V: a lens test on uniform distributions would prove little.
    assert truth.min().item() < math.log(parts.vocab_size) - 0.05

    if model_type in MUST_COVER and overrides is OVERRIDES[model_type]:
        assert _has_transform(parts), f"{model_type}: no final-logit transform found"
    if _has_transform(parts):
        # The same residuals through the final norm only: no scale, no cap.
        h = resid
        for module in parts.final:
            if type(module).__name__ != "_HiddenScale":
                h = module(h)
        w = parts.unembed.weight
        untransformed = lens_entropy(h.to(w.dtype), w, getattr(parts.unembed, "bias", None))[:, 0].double()
        assert (untransformed - truth).abs().max().item() > 0.01, f"{model_type}: the transform does not bite"


def test_must_cover_architectures_are_tested_with_their_transform() -> None:
    """The scale/divide/soft-cap families are present, not skipped, and resolve to their kind."""
    for model_type, (attr, kind) in MUST_COVER.items():
        assert model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, model_type
        assert model_type not in SKIPPED, model_type
        value = OVERRIDES[model_type][attr]
        parts = find_lens_parts(build_tiny(model_type, OVERRIDES[model_type]))
        if kind == "softcap":
            assert (parts.softcap, parts.logit_scale) == (pytest.approx(value), 1.0), model_type
        else:
            expected = value if kind == "multiply" else 1.0 / value
            assert (parts.logit_scale, parts.softcap) == (pytest.approx(expected), None), model_type


def test_gemma3_text_is_in_the_table_and_optional_cap_is_off() -> None:
    model = build_tiny("gemma3_text", dict(final_logit_softcapping=None))
    parts = find_lens_parts(model)
    assert parts.source == "table" and parts.softcap is None and parts.logit_scale == 1.0


@torch.no_grad()
def test_per_token_logit_scale_fails_loudly() -> None:
    """A transform no table names (here a learned per-token scale) is refused with a way out."""
    model = build_tiny("llama", {})
    head = model.lm_head

    class ScaledHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = head.weight
            self.bias = None
            self.scale = torch.linspace(0.2, 3.0, VOCAB)

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            return head(h) * self.scale

    model.lm_head = ScaledHead()
    parts = find_lens_parts(model)
    with pytest.raises(ElensError, match=r"does not reproduce.*LensSpec\(.*logit_transforms"):
        check_parity(model, parts, INPUT_IDS[:, :4])


@torch.no_grad()
def test_dory_per_token_logit_scale_fails_loudly() -> None:
    """Dory's head scales each token's logit by a learned factor: the lens refuses it."""
    if "dory" not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        pytest.skip("no Dory in this transformers")
    model = build_tiny("dory", {})
    parts = find_lens_parts(model)
    check_parity(model, parts, INPUT_IDS[:, :4])  # the factor is 1 at init
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model.lm_head.logit_scale.mul_(torch.empty(VOCAB).uniform_(0.3, 3.0))
    with pytest.raises(ElensError, match="does not reproduce the model's own output"):
        check_parity(model, parts, INPUT_IDS[:, :4])


@torch.no_grad()
def test_unknown_config_transform_is_named_in_the_error() -> None:
    """Granite's scaling with the table emptied: the parity error names the suspect attribute."""
    from elens_utils.lens import adapters

    model = build_tiny("granite", OVERRIDES["granite"])
    saved = dict(adapters.LOGIT_TRANSFORMS)
    try:
        adapters.LOGIT_TRANSFORMS["granite"] = ()
        parts = find_lens_parts(model)
        assert parts.logit_scale == 1.0
        with pytest.raises(ElensError, match=r"logits_scaling=0\.5"):
            check_parity(model, parts, INPUT_IDS[:, :4])
    finally:
        adapters.LOGIT_TRANSFORMS.clear()
        adapters.LOGIT_TRANSFORMS.update(saved)
    # The same model through an explicit spec naming the transform passes.
    spec = LensSpec("model.layers", ("model.norm",), logit_transforms=(("logits_scaling", "divide"),))
    check_parity(model, find_lens_parts(model, spec), INPUT_IDS[:, :4])


def test_transform_chain_reduces_to_scale_and_cap() -> None:
    """multiply, soft-cap, then multiply: the post-cap factor moves inside (b C tanh(z/C))."""
    from types import SimpleNamespace

    from elens_utils.lens.adapters import _resolve_transforms

    config = SimpleNamespace(model_type="x", a=0.5, cap=3.0, b=2.0, off=None)
    steps = (("a", "multiply"), ("off", "softcap"), ("cap", "softcap"), ("b", "multiply"))
    hidden, scale, cap = _resolve_transforms(config, steps)
    z = torch.linspace(-20, 20, 101, dtype=torch.float64)
    expected = 2.0 * 3.0 * torch.tanh(0.5 * z / 3.0)
    assert hidden == 1.0
    torch.testing.assert_close(cap * torch.tanh(scale * z / cap), expected)
    with pytest.raises(ElensError, match="twice"):
        _resolve_transforms(config, (("cap", "softcap"), ("cap", "softcap")))
    with pytest.raises(ElensError, match="Unknown final-logit transform kind 'tanh'"):
        _resolve_transforms(config, (("cap", "tanh"),))
    with pytest.raises(ElensError, match="finite non-zero number"):
        _resolve_transforms(SimpleNamespace(model_type="mpt", s="inv_sqrt_d_model"), (("s", "multiply"),))


@pytest.mark.parametrize("backend", ["torch", "triton"])
@torch.no_grad()
def test_scale_and_cap_fold_into_both_kernels(backend: str) -> None:
    """A scale before a soft-cap, with a biased head: the kernels' entropy equals the dense one."""
    import dataclasses

    if backend == "triton":
        pytest.importorskip("triton")
    model = build_tiny("gpt2", {})  # its head has no bias: give it one
    parts = find_lens_parts(model)
    head = torch.nn.Linear(64, VOCAB)
    head.weight.copy_(parts.unembed.weight)
    torch.nn.init.normal_(head.bias, std=0.5, generator=torch.Generator().manual_seed(0))
    parts = dataclasses.replace(parts, unembed=head, logit_scale=0.5, softcap=2.0)
    resid = torch.randn(5, 64, generator=torch.Generator().manual_seed(1))
    dense = _entropy64(parts.logits(resid))
    h = parts.normalize(resid).double()  # GPT-2's ln_f
    z = (h @ head.weight.double().T + head.bias.double()) * 0.5
    torch.testing.assert_close(dense, _entropy64(2.0 * torch.tanh(z / 2.0)), atol=1e-5, rtol=0)
    streamed = parts.entropy(resid, (1.0,), backend=backend)[:, 0].double()
    torch.testing.assert_close(streamed, dense, atol=1e-4, rtol=0)
