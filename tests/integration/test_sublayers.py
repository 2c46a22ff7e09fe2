"""sublayers: attention / MLP / head ablations against blocks computed by hand, head ranking
against per-prompt lens loops, and the sweep against direct scoring.

The by-hand references call a block's submodules themselves, with each architecture's own
formula written out here (not taken from the module under test): e.g. a pre-norm block without
its attention is ``x + mlp(norm2(x))``. The attention output is rebuilt from the input of its
output projection, captured in an unablated pass, with head slices zeroed by hand.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types

import numpy as np
import pandas as pd
import pytest
from helpers import untrained_models
import torch
from torch import nn

from elens_utils import ElensError, LensSpec, load_model
from elens_utils.analysis.interventions import (
    expansion_blocks,
    mc_accuracy,
    pruning_blocks,
    random_blocks,
    skip_blocks,
)
from elens_utils.analysis.sublayers import (
    SUBLAYER_ARCHITECTURES,
    SublayerSpec,
    ablate,
    ablate_attention,
    ablate_heads,
    ablate_mlp,
    find_sublayers,
    random_heads,
    rank_heads,
    sublayer_layout,
    sublayer_summary,
    sublayer_sweep,
    top_heads,
)
from elens_utils.data import prompts as data
from elens_utils.lens.adapters import find_lens_parts
from elens_utils.lens.capture import BlockCapture, prompt_lens
from elens_utils.models.tiny import ARCHS, tiny_prompts

EXTRA = ("gemma3_text", "phi")  # built from configs below; phi: parallel attention + MLP
ALL = (*ARCHS, *EXTRA)
PROMPT = tiny_prompts()[4]  # 12 words: longer than gemma2/gemma3's sliding window of 8


@pytest.fixture(scope="module")
def extra_dirs(tmp_path_factory, tiny_model_dirs):
    """Tiny gemma3_text (gemma2's tokenizer) and phi (gpt2's tokenizer) models."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Gemma3TextConfig, PhiConfig

    root = tmp_path_factory.mktemp("extra")
    gemma3 = dict(num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
                  layer_types=["sliding_attention", "full_attention", "sliding_attention"])  # fmt: skip
    out = {}
    for arch, tok_from, config_class, own in (("gemma3_text", "gemma2", Gemma3TextConfig, gemma3), ("phi", "gpt2", PhiConfig, {})):
        tok = AutoTokenizer.from_pretrained(tiny_model_dirs[tok_from])
        config = config_class(
            vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
            max_position_embeddings=128, initializer_range=0.3,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **own,
        )  # fmt: skip
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        d = root / arch
        model.save_pretrained(d)
        tok.save_pretrained(d)
        out[arch] = d
    return out


@pytest.fixture(scope="module")
def get_lm(lens_model, extra_dirs):
    cache = {}

    def get(arch: str):
        if arch not in EXTRA:
            return lens_model(arch)
        if arch not in cache:
            # The adapter's search does not know Phi's final norm name (final_layernorm).
            spec = LensSpec("model.layers", ("model.final_layernorm",)) if arch == "phi" else None
            cache[arch] = load_model(extra_dirs[arch], dtype="float32", lens_spec=spec)
        return cache[arch]

    return get


# --------------------------------------------------------------------------------------------
# by-hand blocks


def head_dim_of(lm) -> int:
    cfg = lm.model.config
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def o_proj_of(arch: str, layer: nn.Module) -> nn.Module:
    return {
        "gpt2": lambda: layer.attn.c_proj,
        "gpt_neox": lambda: layer.attention.dense,
        "opt": lambda: layer.self_attn.out_proj,
        "phi": lambda: layer.self_attn.dense,
    }.get(arch, lambda: layer.self_attn.o_proj)()


def hand_block(
    arch: str, layer: nn.Module, x: torch.Tensor, a: torch.Tensor | None, with_mlp: bool = True
) -> torch.Tensor:
    """A block's output from its input ``x`` and attention output ``a`` (the output projection's
    result; None: attention removed), the MLP included or not, written out per architecture."""
    removed = a is None  # a post-attention norm is skipped too: the whole write is gone
    a = torch.zeros_like(x) if removed else a
    if arch == "gpt2":
        h = x + a
        return h + (layer.mlp(layer.ln_2(h)) if with_mlp else 0)
    if arch == "gpt_neox":
        if layer.use_parallel_residual:
            return x + a + (layer.mlp(layer.post_attention_layernorm(x)) if with_mlp else 0)
        h = x + a
        return h + (layer.mlp(layer.post_attention_layernorm(h)) if with_mlp else 0)
    if arch == "opt":

        def mlp(v):
            return layer.fc2(layer.activation_fn(layer.fc1(v))) if with_mlp else 0

        if layer.do_layer_norm_before:
            h = x + a
            return h + mlp(layer.final_layer_norm(h))
        h = layer.self_attn_layer_norm(x + a)  # post-LN (OPT-350m)
        return layer.final_layer_norm(h + mlp(h))
    if arch in ("gemma2", "gemma3_text"):
        h = x + (0 if removed else layer.post_attention_layernorm(a))
        return h + (
            layer.post_feedforward_layernorm(layer.mlp(layer.pre_feedforward_layernorm(h))) if with_mlp else 0
        )
    if arch == "phi":
        return x + a + (layer.mlp(layer.input_layernorm(x)) if with_mlp else 0)
    h = x + a  # llama, mistral, gemma, qwen2, qwen3, phi3
    return h + (layer.mlp(layer.post_attention_layernorm(h)) if with_mlp else 0)


def run_block(lm, block: int, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward pass: block ``block``'s input, the input of its output projection, its output."""
    layer = lm.parts.blocks[block - 1]
    got = {}

    def pre(_m, args, kwargs):
        got["x"] = (args[0] if args else kwargs["hidden_states"]).clone()

    def post(_m, _a, out):
        got["out"] = (out[0] if isinstance(out, tuple) else out).clone()

    def z(_m, args):
        got.setdefault("z", args[0].clone())

    handles = [
        layer.register_forward_pre_hook(pre, with_kwargs=True),
        layer.register_forward_hook(post),
        o_proj_of(lm.arch, layer).register_forward_pre_hook(z, prepend=True),
    ]
    try:
        with torch.no_grad():
            lm.model(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return got["x"], got["z"], got["out"]


def zero_heads(z: torch.Tensor, heads, hd: int) -> torch.Tensor:
    z = z.clone()
    for h in heads:
        z[..., h * hd : (h + 1) * hd] = 0
    return z


def all_hooks(lm) -> list:
    return [
        (name, list(m._forward_hooks), list(m._forward_pre_hooks)) for name, m in lm.model.named_modules()
    ]


def check_ablations(lm, block: int = 2) -> None:
    arch = lm.arch
    layer = lm.parts.blocks[block - 1]
    ids = torch.tensor(lm.encode([PROMPT]))
    x, z, plain = run_block(lm, block, ids)
    o_proj, hd = o_proj_of(arch, layer), head_dim_of(lm)
    n_heads = lm.model.config.num_attention_heads
    with torch.no_grad():
        a = o_proj(z)
        # The reference formula itself reproduces the unablated block.
        torch.testing.assert_close(hand_block(arch, layer, x, a), plain, rtol=1e-5, atol=1e-5)
        cases = [
            (lambda: ablate_attention(lm, [block]), hand_block(arch, layer, x, None)),
            (lambda: ablate_mlp(lm, [block]), hand_block(arch, layer, x, a, with_mlp=False)),
            (
                lambda: ablate(lm, attention=[block], mlp=[block]),
                hand_block(arch, layer, x, None, with_mlp=False),
            ),
            (
                lambda: ablate_heads(lm, {block: [1]}),
                hand_block(arch, layer, x, o_proj(zero_heads(z, [1], hd))),
            ),
            (
                lambda: ablate_heads(lm, {block: [0, n_heads - 1]}),
                hand_block(arch, layer, x, o_proj(zero_heads(z, [0, n_heads - 1], hd))),
            ),
            # Every head removed: the projection's bias (if any) is all that is left.
            (
                lambda: ablate_heads(lm, {block: range(n_heads)}),
                hand_block(arch, layer, x, o_proj(torch.zeros_like(z))),
            ),
        ]
    for make, want in cases:
        with make():
            x2, _, got = run_block(lm, block, ids)
        torch.testing.assert_close(x2, x, rtol=0, atol=0)  # earlier blocks untouched
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        assert (got - plain).abs().max() > 1e-3  # the ablation does something


@pytest.mark.parametrize("arch", ALL)
def test_ablations_match_block_by_hand(arch, get_lm):
    lm = get_lm(arch)
    before = all_hooks(lm)
    check_ablations(lm)
    assert all_hooks(lm) == before


@pytest.mark.parametrize(
    "arch, flag", [("gpt_neox", "use_parallel_residual"), ("opt", "do_layer_norm_before")]
)
def test_ablations_other_residual_layouts(arch, flag, get_lm):
    """Sequential GPT-NeoX (use_parallel_residual=False) and post-LN OPT (OPT-350m)."""
    lm = get_lm(arch)
    model = copy.deepcopy(lm.model)
    for layer in find_lens_parts(model).blocks:
        assert getattr(layer, flag) is True
        setattr(layer, flag, False)
    other = dataclasses.replace(lm, model=model, parts=find_lens_parts(model))
    check_ablations(other)
    if arch == "gpt_neox":
        assert not find_sublayers(other, 2).parallel and find_sublayers(lm, 2).parallel


def test_sandwich_post_norms_map_zero_to_zero(get_lm):
    """Gemma-2/3 add ``post_norm(attn)``: the RMSNorm (no bias) maps 0 to 0, so zeroing the
    attention output or the norm's output is the same; a norm with a bias would not be."""
    for arch in ("gemma2", "gemma3_text"):
        lm = get_lm(arch)
        layer = lm.parts.blocks[1]
        for norm in (layer.post_attention_layernorm, layer.post_feedforward_layernorm):
            assert torch.equal(
                norm(torch.zeros(2, 3, lm.model.config.hidden_size)),
                torch.zeros(2, 3, lm.model.config.hidden_size),
            )
        ids = torch.tensor(lm.encode([PROMPT]))
        handle = layer.self_attn.register_forward_hook(
            lambda _m, _a, out: (torch.zeros_like(out[0]), *out[1:])
        )
        try:
            _, _, zeroed_inside = run_block(lm, 2, ids)
        finally:
            handle.remove()
        with ablate_attention(lm, [2]):
            _, _, ours = run_block(lm, 2, ids)
        torch.testing.assert_close(ours, zeroed_inside, rtol=0, atol=0)
    # A post-norm with a bias maps 0 to its bias: the ablation still removes the whole write.
    lm = get_lm("gemma2")
    model = copy.deepcopy(lm.model)
    d = model.config.hidden_size
    for layer in model.model.layers:
        ln = nn.LayerNorm(d)
        nn.init.normal_(ln.bias, std=1.0)
        layer.post_attention_layernorm = ln
    other = dataclasses.replace(lm, model=model, parts=find_lens_parts(model))
    check_ablations(other)


# --------------------------------------------------------------------------------------------
# locating the parts


def renamed(lm, model_type: str = "mystery"):
    """``lm`` claiming an architecture that is not in the table (so its parts are searched)."""
    cfg = lm.model.config
    fake = types.SimpleNamespace(
        model_type=model_type,
        num_attention_heads=cfg.num_attention_heads,
        hidden_size=cfg.hidden_size,
        head_dim=getattr(cfg, "head_dim", None),
    )
    return dataclasses.replace(lm, model=types.SimpleNamespace(config=fake))


@pytest.mark.parametrize("arch", ALL)
def test_search_finds_the_table_layout(arch, get_lm):
    lm = get_lm(arch)
    table = sublayer_layout(lm)
    assert (table["source"] == "table").all() and table["block"].tolist() == [1, 2, 3]
    searched = sublayer_layout(renamed(lm))
    assert (searched["source"] == "search").all()
    cols = ["attention", "mlp", "o_proj", "attention_write", "mlp_write", "n_heads", "head_dim", "parallel"]
    pd.testing.assert_frame_equal(searched[cols], table[cols])
    assert table["parallel"].iloc[0] == (arch in ("gpt_neox", "phi"))
    assert (table["n_heads"] == lm.model.config.num_attention_heads).all()
    assert (table["head_dim"] == head_dim_of(lm)).all()
    s = find_sublayers(lm, 3)
    assert s.block == 3 and s.attention is lm.parts.blocks[2].get_submodule(s.paths["attention"])


def test_layout_errors(get_lm):
    lm = get_lm("llama")

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.mixer = nn.Linear(4, 4)

    odd = dataclasses.replace(lm, parts=dataclasses.replace(lm.parts, blocks=[Odd(), Odd(), Odd()]))
    with pytest.raises(
        ElensError, match=r"attention \(expected at 'self_attn'\).*mixer \(Linear\).*SublayerSpec"
    ):
        find_sublayers(odd, 1)
    with pytest.raises(ElensError, match="'mystery' model.*mixer"):
        find_sublayers(renamed(odd), 2)
    with pytest.raises(ElensError, match="64.*128 inputs|128 inputs.*64"):
        find_sublayers(lm, 1, SublayerSpec("self_attn", "mlp", "mlp.down_proj"))
    with pytest.raises(ElensError, match="Block 4 does not exist"):
        find_sublayers(lm, 4)
    # A spec names the parts of an unknown layout.
    spec = SublayerSpec("self_attn", "mlp", "self_attn.o_proj")
    assert find_sublayers(renamed(lm), 2, spec).source == "spec"
    assert set(SUBLAYER_ARCHITECTURES) >= set(ALL)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda lm: ablate_attention(lm, [0]), "blocks 1..3.*numbered from 1"),
        (lambda lm: ablate_mlp(lm, [4]), "Block 4 does not exist"),
        (lambda lm: ablate_attention(lm, [2, 2]), "twice"),
        (lambda lm: ablate_mlp(lm, 2), "iterable of block numbers"),
        (
            lambda lm: ablate_heads(lm, {2: [4]}),
            "Head 4 does not exist in block 2.*heads 0..3.*numbered from 0",
        ),
        (lambda lm: ablate_heads(lm, {2: [-1]}), "Head -1 does not exist"),
        (lambda lm: ablate_heads(lm, {2: [1, 1]}), "name a head twice"),
        (lambda lm: ablate_heads(lm, {2: [1.0]}), "integers"),
        (lambda lm: ablate_heads(lm, {2: 1}), "iterable of head numbers"),
        (lambda lm: ablate_heads(lm, {0: [1]}), "Block 0 does not exist"),
        (lambda lm: ablate_heads(lm, [(2, 1)]), "mapping"),
        # checked before any hook goes in: the valid attention block is not left hooked
        (lambda lm: ablate(lm, attention=[2], heads={3: [9]}), "Head 9"),
    ],
)
def test_bad_numbers(call, match, get_lm):
    lm = get_lm("llama")
    before = all_hooks(lm)
    with pytest.raises(ElensError, match=match):
        with call(lm):
            pass
    assert all_hooks(lm) == before


# --------------------------------------------------------------------------------------------
# restoring, composing, caching


def last_logits(lm, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(input_ids=torch.tensor([ids])).logits[0, -1]


def test_restored_on_exit_and_on_exception(get_lm):
    lm = get_lm("gemma2")
    ids = lm.encode([PROMPT])[0]
    before, plain = all_hooks(lm), last_logits(lm, ids)
    for make in (
        lambda: ablate_attention(lm, [1, 3]),
        lambda: ablate_mlp(lm, [2]),
        lambda: ablate_heads(lm, {2: [0], 3: [1, 2]}),
    ):
        with make():
            assert not torch.equal(last_logits(lm, ids), plain)
        assert torch.equal(last_logits(lm, ids), plain) and all_hooks(lm) == before
        with pytest.raises(KeyError, match="boom"):
            with make():
                raise KeyError("boom")
        assert torch.equal(last_logits(lm, ids), plain) and all_hooks(lm) == before
    with ablate(lm) as nothing:
        assert nothing.attention == [] and nothing.heads == {}
        assert torch.equal(last_logits(lm, ids), plain)


def test_compose_with_skip_blocks(get_lm):
    lm = get_lm("llama")
    ids = torch.tensor(lm.encode([PROMPT]))
    layer3 = lm.parts.blocks[2]
    with torch.no_grad():
        with (
            skip_blocks(lm, [2]),
            ablate_attention(lm, [3]),
            BlockCapture(lm.parts.blocks, last_only=False) as cap,
        ):
            lm.model(input_ids=ids)
            out = cap.take()[:, 0]
        torch.testing.assert_close(out[1], out[0], rtol=0, atol=0)  # block 2 skipped
        torch.testing.assert_close(
            out[2], hand_block("llama", layer3, out[1][None], None)[0], rtol=1e-5, atol=1e-5
        )
        # Inside a skipped block an ablation changes nothing; the order of the contexts neither.
        seq = ids[0].tolist()
        with skip_blocks(lm, [2]):
            skipped = last_logits(lm, seq)
        with ablate(lm, attention=[2], mlp=[2], heads={2: [0]}), skip_blocks(lm, [2]):
            assert torch.equal(last_logits(lm, seq), skipped)
        with skip_blocks(lm, [2]), ablate_mlp(lm, [3]):
            a = last_logits(lm, seq)
        with ablate_mlp(lm, [3]), skip_blocks(lm, [2]):
            assert torch.equal(last_logits(lm, seq), a)
        # Nested single ablations equal one combined ablation.
        with ablate_attention(lm, [1]), ablate_heads(lm, {3: [2]}), ablate_mlp(lm, [2]):
            nested = last_logits(lm, seq)
        with ablate(lm, attention=[1], mlp=[2], heads={3: [2]}):
            assert torch.equal(last_logits(lm, seq), nested)


@pytest.mark.parametrize("arch", ALL)
def test_cached_generation_equals_full_forward_under_ablation(arch, get_lm):
    lm = get_lm(arch)
    prompt, steps = tiny_prompts()[3], 4
    n = len(lm.encode([prompt])[0])
    with ablate(lm, attention=[2], mlp=[3], heads={1: [0], 3: [1]}):
        prof = lm.profile([prompt], max_new_tokens=steps, progress=False)
        generated = prof.meta["generated_ids"][0]
        seq = lm.encode([prompt])[0]
        expected = []
        with torch.no_grad():
            for _ in range(steps):  # greedy, one full no-cache pass per token
                logits = lm.model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1]
                expected.append(int(logits.argmax()))
                seq = seq + [expected[-1]]
        full = prompt_lens(lm, lm.encode([prompt])[0] + generated[:-1])
    assert generated == expected
    np.testing.assert_allclose(
        prof.entropy[0, :, :, 0], full.entropy[n - 1 :, :, 0].numpy(), atol=1e-4, rtol=0
    )
    plain = lm.profile([prompt], max_new_tokens=steps, progress=False)
    assert np.abs(plain.entropy - prof.entropy).max() > 1e-3


# --------------------------------------------------------------------------------------------
# ranking heads


def brute_head_effects(lm, prompts, block) -> np.ndarray:
    """``[H]`` mean over prompts of (dH_block with the head ablated - dH_block), from the lens
    over every position of each prompt alone (prompt_lens), last position."""

    def d_h(p):
        e = prompt_lens(lm, p).entropy[-1, :, 0].double()
        return float(e[block - 1] - e[block - 2])

    base = [d_h(p) for p in prompts]
    out = []
    for h in range(lm.model.config.num_attention_heads):
        with ablate_heads(lm, {block: [h]}):
            out.append(np.mean([d_h(p) - b for p, b in zip(prompts, base, strict=True)]))
    return np.array(out)


@pytest.mark.parametrize("arch", ["gpt2", "gemma2", "qwen3"])
def test_rank_heads_against_brute_force(arch, get_lm):
    lm = get_lm(arch)
    prompts = tiny_prompts()
    before = all_hooks(lm)
    for block in (2, 3):
        table = rank_heads(lm, prompts, block, batch_size=4)
        assert all_hooks(lm) == before  # the passes stopped early by an exception left nothing behind
        ref = brute_head_effects(lm, prompts, block)
        assert table["head"].tolist() == list(range(len(ref))) and (table["block"] == block).all()
        np.testing.assert_allclose(table["effect"], ref, atol=2e-5, rtol=0)
        np.testing.assert_allclose(table["dH_ablated"] - table["dH_baseline"], table["effect"], atol=1e-9)
        assert np.abs(ref).max() > 1e-3
        assert table.sort_values("drop_rank")["head"].tolist() == list(np.argsort(ref, kind="stable"))
        assert table.sort_values("rise_rank")["head"].tolist() == list(np.argsort(-ref, kind="stable"))
        assert table.sort_values("abs_rank")["head"].tolist() == list(np.argsort(-np.abs(ref), kind="stable"))
        assert (table["n_prompts"] == len(prompts)).all()
    # deterministic, and independent of the batching beyond rounding
    again = rank_heads(lm, prompts, 3, batch_size=4)
    pd.testing.assert_frame_equal(again, table)
    one = rank_heads(lm, prompts, 3, batch_size=1)
    np.testing.assert_allclose(one["effect"], table["effect"], atol=2e-5)


def test_rank_heads_errors_and_top_heads(get_lm):
    lm = get_lm("llama")
    with pytest.raises(ElensError, match="Block 1 has no dH"):
        rank_heads(lm, ["the cat"], 1)
    with pytest.raises(ElensError, match="Block 4 does not exist"):
        rank_heads(lm, ["the cat"], 4)
    with pytest.raises(ElensError, match="non-empty list"):
        rank_heads(lm, "the cat", 2)
    with pytest.raises(ElensError, match="batch_size"):
        rank_heads(lm, ["the cat"], 2, batch_size=0)
    table = pd.DataFrame({"head": [0, 1, 2, 3], "effect": [0.5, -1.0, 0.2, -0.2]})
    table["drop_rank"] = [4, 1, 3, 2]
    table["rise_rank"] = [1, 4, 2, 3]
    table["abs_rank"] = [2, 1, 3, 4]
    assert top_heads(table, 2, "drop") == [1, 3]
    assert top_heads(table, 2, "rise") == [0, 2]
    assert top_heads(table, 1) == [1]
    assert top_heads(table, 0, "rise") == []
    with pytest.raises(ElensError, match="by must be"):
        top_heads(table, 1, "largest")
    with pytest.raises(ElensError, match="only 4"):
        top_heads(table, 5)


def test_random_heads():
    draws = {tuple(map(tuple, random_heads(8, [3, 5], 2, s).values())) for s in range(20)}
    assert len(draws) > 10
    for s in range(5):
        r = random_heads(8, [5, 3], 2, s)
        assert list(r) == [3, 5]
        assert all(len(set(v)) == 2 and v == sorted(v) and all(0 <= h < 8 for h in v) for v in r.values())
        assert r == random_heads(8, [3, 5], 2, s)  # same seed, same heads
    assert random_heads(4, [2], 4, 0) == {2: [0, 1, 2, 3]}
    assert random_heads(4, [], 1, 0) == {}
    with pytest.raises(ElensError, match="Cannot choose 5"):
        random_heads(4, [2], 5, 0)
    with pytest.raises(ElensError, match="twice"):
        random_heads(4, [2, 2], 1, 0)
    with pytest.raises(ElensError, match=">= 1"):
        random_heads(4, [0], 1, 0)
    with pytest.raises(ElensError, match="seed"):
        random_heads(4, [2], 1, 0.5)
    with pytest.raises(ElensError, match="n_heads"):
        random_heads(0, [2], 1, 0)


# --------------------------------------------------------------------------------------------
# the sweep


@pytest.fixture(scope="module")
def story_model(tmp_path_factory):
    """An untrained llama of the zoo's architecture (4 heads) that reads the story world's
    multiple-choice prompts, as a path name, with ranking profiles and questions."""
    (name,) = untrained_models(tmp_path_factory.mktemp("untrained_sub"), ("llama", 4))
    questions = data.multiple_choice("synthetic", 24)
    lm = load_model(name)
    prof = lm.profile(questions["prompt"].tolist()[16:], max_new_tokens=1, progress=False)
    return name, questions.iloc[:16].reset_index(drop=True), prof


def intervention(lm, kind, blocks, heads):
    """The context a sweep row names, built from the public context managers."""
    if kind == "none":
        return skip_blocks(lm, [])
    if kind == "attention":
        return ablate_attention(lm, blocks)
    if kind == "mlp":
        return ablate_mlp(lm, blocks)
    if kind == "heads":
        return ablate_heads(lm, heads)
    assert kind == "block"
    return skip_blocks(lm, blocks)


def test_sublayer_sweep_against_direct_scoring(story_model):
    name, questions, prof = story_model
    kwargs = dict(
        ks=[1, 2, 4],
        kinds=("attention", "mlp", "heads", "block"),
        heads_per_block=2,
        n_random_seeds=2,
        seed=5,
        batch_size=8,
        progress=False,
    )
    res = sublayer_sweep([name], questions, [prof], **kwargs)
    lm = load_model(name)
    n_heads = lm.model.config.num_attention_heads
    assert (res["ks_dropped"].map(tuple) == (4,)).all()  # 4 blocks: at most 3 ranked
    assert (res["n_heads"] == n_heads).all() and (res["n_layers"] == 4).all()
    assert res.iloc[0][["kind", "strategy", "k"]].tolist() == ["none", "baseline", 0]
    per_k = {"attention": 2 + 2, "mlp": 2 + 2, "block": 2 + 2, "heads": 2 * (1 + 2) + 2}
    assert len(res) == 1 + 2 * sum(per_k.values())
    prompts = prof.meta["prompt"].tolist()
    cache = {}
    for row in res.itertuples():
        if row.strategy in ("expansion", "pruning"):
            pick = expansion_blocks if row.strategy == "expansion" else pruning_blocks
            assert row.blocks == pick(prof, row.k)
        elif row.strategy == "random":
            assert row.blocks == random_blocks(4, row.k, row.seed)
            assert row.seed in {5 * 1_000_003 + 1000 * row.k + s for s in range(2)}
        if row.kind == "heads":
            assert sorted(row.heads) == row.blocks
            if row.heads_from == "ranked":
                role = "drop" if row.strategy == "expansion" else "rise"
                assert row.heads == {b: top_heads(rank_heads(lm, prompts, b), 2, role) for b in row.blocks}
            else:
                assert row.heads == random_heads(n_heads, row.blocks, 2, row.seed)
        else:
            assert row.heads is None and row.heads_from is None
        key = (row.kind, row.blocks_text, row.heads_text)
        if key not in cache:
            with intervention(lm, row.kind, row.blocks, row.heads):
                cache[key] = mc_accuracy(lm, questions)
        assert row.accuracy == cache[key].accuracy and row.n_correct == cache[key].table["correct"].sum()
        assert row.n_questions == 16 and row.chance == 0.25
    assert res["accuracy"].nunique() > 1
    # The random controls (and everything else) are the same for the same seed.
    pd.testing.assert_frame_equal(sublayer_sweep([name], questions, [prof], **kwargs), res)
    other = sublayer_sweep([name], questions, [prof], **{**kwargs, "seed": 6, "kinds": ("heads",)})
    rnd = other[other["heads_from"] == "random"]
    assert rnd["heads_text"].tolist() != res.loc[res["heads_from"] == "random", "heads_text"].tolist()

    summary = sublayer_summary(res)
    assert summary[["kind", "k"]].values.tolist() == [
        [k, n] for n in (1, 2) for k in ("attention", "mlp", "heads", "block")
    ]
    base = res.iloc[0]["accuracy"]
    for s in summary.itertuples():
        at = res[(res["kind"] == s.kind) & (res["k"] == s.k)]
        chosen = at[at["heads_from"].isna() | (at["heads_from"] == "ranked")]
        e = chosen.loc[chosen["strategy"] == "expansion", "accuracy"].item()
        p = chosen.loc[chosen["strategy"] == "pruning", "accuracy"].item()
        assert (s.baseline, s.expansion, s.pruning) == (base, e, p)
        rnd = at.loc[at["strategy"] == "random", "accuracy"]
        assert (
            s.random_mean == pytest.approx(rnd.mean())
            and s.random_min == rnd.min()
            and s.random_max == rnd.max()
        )
        if s.kind == "heads":
            alt = at[(at["heads_from"] == "random") & (at["strategy"] == "expansion")]
            assert s.expansion_random_heads == pytest.approx(alt["accuracy"].mean())
            assert s.expansion_heads == chosen.loc[chosen["strategy"] == "expansion", "heads_text"].item()
        else:
            assert math.isnan(s.expansion_random_heads) and s.expansion_heads == ""
        assert s.se == pytest.approx(math.sqrt(base * (1 - base) / 16))
        assert s.more_critical == ("expansion" if e < p else "pruning" if p < e else "tie")
        assert s.se_gap == pytest.approx(math.sqrt(e * (1 - e) / 16 + p * (1 - p) / 16))
        assert s.clear == (abs(e - p) > 2 * s.se_gap)


def test_sweep_and_summary_errors(story_model):
    name, questions, prof = story_model
    with pytest.raises(ElensError, match="kinds"):
        sublayer_sweep([name], questions, [prof], kinds=("attn",))
    with pytest.raises(ElensError, match="head_rank"):
        sublayer_sweep([name], questions, [prof], head_rank="best")
    with pytest.raises(ElensError, match="heads_per_block"):
        sublayer_sweep([name], questions, [prof], heads_per_block=0)
    with pytest.raises(ElensError, match="ks"):
        sublayer_sweep([name], questions, [prof], ks=[0])
    with pytest.raises(ElensError, match="1 models|ranking profiles"):
        sublayer_sweep([name], questions, [prof, prof])
    with pytest.raises(ElensError, match="lacks"):
        sublayer_summary(pd.DataFrame({"model": ["m"]}))
