"""Profiles from generation, checked against a float64 brute-force reference, per architecture.

The reference shares nothing with the pipeline under test but the located final modules: it
runs the model in float64, re-runs the whole sequence for every step (no KV cache, no padding,
one prompt at a time), reads block outputs from ``output_hidden_states`` instead of hooks,
takes the last block's distribution from the model's own logits (the parity rule), and
computes entropies from fully materialised softmaxes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from elens_utils.core.errors import ElensError
from elens_utils.entropy.streaming import dense_entropy
from elens_utils.lens.capture import prompt_lens
from elens_utils.models.tiny import ARCHS, tiny_prompts

ALPHAS = (1.0, 0.5, 2.0, math.inf)
TOL = 1e-4  # nats, fp32 pipeline against float64 reference


@torch.no_grad()
def reference_profile(lm64, prompt_ids: list[int], generated: list[int], alphas) -> np.ndarray:
    """``[T, L, A]`` float64 entropies by full forward passes over the growing sequence."""
    model, parts = lm64.model, lm64.parts
    out = []
    seq = list(prompt_ids)
    for token in generated:
        res = model(input_ids=torch.tensor([seq]), output_hidden_states=True)
        per_block = []
        # hidden_states[i] is block i's output for i = 1..L-1; the last entry is already normed.
        for resid in res.hidden_states[1 : parts.n_layers]:
            z = parts.unembed(parts.normalize(resid[0, -1].double())).double()
            z = parts.transform(z)  # soft-cap and logit scale, as the model's forward applies them
            per_block.append(dense_entropy(z, alphas))
        per_block.append(dense_entropy(res.logits[0, -1].double(), alphas))
        out.append(torch.stack(per_block).numpy())
        seq.append(token)
    return np.stack(out)


@pytest.mark.parametrize("arch", ARCHS)
def test_profiles_match_float64_reference(arch, lens_model):
    lm, lm64 = lens_model(arch), lens_model(arch, "float64")
    prompts = tiny_prompts()[:4]
    prof = lm.profile(prompts, max_new_tokens=5, alphas=ALPHAS, batch_size=4, progress=False)
    assert prof.entropy.shape == (4, 5, lm.n_layers, len(ALPHAS))
    for i, ids in enumerate(lm.encode(prompts)):
        generated = prof.meta["generated_ids"][i]
        ref = reference_profile(lm64, ids, generated, ALPHAS)
        np.testing.assert_allclose(prof.entropy[i], ref, atol=TOL, rtol=0)
    assert np.isfinite(prof.entropy).all()
    # Entropies must vary: a constant profile would make the comparison above meaningless.
    assert prof.select(1.0).std() > 0.05


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_tokens_are_reference_argmax(arch, lens_model):
    lm, lm64 = lens_model(arch), lens_model(arch, "float64")
    prompt = tiny_prompts()[2]
    prof = lm.profile([prompt], max_new_tokens=4, progress=False)
    seq = lm.encode([prompt])[0]
    for token in prof.meta["generated_ids"][0]:
        logits = lm64.model(input_ids=torch.tensor([seq])).logits[0, -1]
        assert logits[token] >= logits.max() - 1e-6
        seq.append(token)


@pytest.mark.parametrize("arch", ARCHS)
def test_parity_rule_last_block_is_model_distribution(arch, lens_model):
    """The lens of the last block equals the model's own next-token distribution."""
    lm = lens_model(arch)
    prompt = tiny_prompts()[3]
    ids = lm.encode([prompt])[0]
    pl = prompt_lens(lm, prompt, alphas=(1.0,), k=3)
    with torch.no_grad():
        own = torch.softmax(lm.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    own_entropy = dense_entropy(torch.log(own), (1.0,))[:, 0]
    np.testing.assert_allclose(pl.entropy[:, -1, 0].numpy(), own_entropy.numpy(), atol=1e-5)
    top_p, top_i = own.topk(3, dim=-1)
    np.testing.assert_array_equal(pl.top_ids[:, -1].numpy(), top_i.numpy())
    np.testing.assert_allclose(pl.top_probs[:, -1].numpy(), top_p.numpy(), atol=1e-6)
    # The lens covers every unembedding row (Qwen3 pads lm_head beyond the tokenizer).
    assert own.shape[-1] == lm.parts.vocab_size


@pytest.mark.parametrize("arch", ARCHS)
def test_padding_does_not_change_profiles(arch, lens_model):
    lm = lens_model(arch)
    short = tiny_prompts()[0]
    longer = [p for p in tiny_prompts() if len(p.split()) > 6][:2]
    alone = lm.profile([short], max_new_tokens=4, progress=False)
    batched = lm.profile(longer + [short], max_new_tokens=4, batch_size=3, progress=False)
    assert alone.meta["generated_ids"][0] == batched.meta["generated_ids"][2]
    np.testing.assert_allclose(alone.entropy[0], batched.entropy[2], atol=TOL, rtol=0)


def test_chunk_size_does_not_change_profiles(lens_model):
    lm = lens_model("llama")
    prompts = tiny_prompts()[:2]
    a = lm.profile(prompts, max_new_tokens=3, alphas=ALPHAS, progress=False)
    b = lm.profile(prompts, max_new_tokens=3, alphas=ALPHAS, chunk_size=7, progress=False)
    np.testing.assert_allclose(a.entropy, b.entropy, atol=1e-5, rtol=0)


def test_sampling_is_deterministic_for_a_seed(lens_model):
    lm = lens_model("qwen3")
    prompts = tiny_prompts()[:3] * 2
    kw = dict(max_new_tokens=6, do_sample=True, temperature=1.0, top_k=50, top_p=0.95, progress=False)
    a = lm.profile(prompts, seed=7, **kw)
    b = lm.profile(prompts, seed=7, batch_size=2, **kw)
    c = lm.profile(prompts, seed=8, **kw)
    assert list(a.meta["generated_ids"]) == list(b.meta["generated_ids"])
    np.testing.assert_allclose(a.entropy, b.entropy, atol=TOL, rtol=0)
    assert list(a.meta["generated_ids"]) != list(c.meta["generated_ids"])
    # Repeated prompts draw from their own streams: samples differ between the copies.
    assert a.meta["generated_ids"][0] != a.meta["generated_ids"][3]
    again = lm.profile(prompts, seed=7, **kw)
    np.testing.assert_array_equal(a.entropy, again.entropy)


def test_top_k_one_sampling_equals_greedy(lens_model):
    lm = lens_model("gpt2")
    prompts = tiny_prompts()[:3]
    greedy = lm.profile(prompts, max_new_tokens=5, progress=False)
    sampled = lm.profile(prompts, max_new_tokens=5, do_sample=True, top_k=1, seed=3, progress=False)
    assert list(greedy.meta["generated_ids"]) == list(sampled.meta["generated_ids"])


def test_sampling_follows_the_model_distribution(lens_model):
    """First sampled tokens of many copies of one prompt follow softmax(logits / T)."""
    lm = lens_model("gemma2")
    prompt = tiny_prompts()[1]
    n, temperature = 400, 1.5
    prof = lm.profile([prompt] * n, max_new_tokens=1, do_sample=True, temperature=temperature, seed=0,
                      batch_size=200, progress=False)
    firsts = np.array([g[0] for g in prof.meta["generated_ids"]])
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([lm.encode([prompt])[0]])).logits[0, -1].double()
    p = torch.softmax(logits / temperature, -1).numpy()
    top = np.argsort(p)[::-1][:3]
    for t in top:
        freq = (firsts == t).mean()
        assert abs(freq - p[t]) < 4 * math.sqrt(p[t] * (1 - p[t]) / n) + 1e-3


def test_metadata_of_profiles(lens_model):
    lm = lens_model("phi3")
    prompts = tiny_prompts()[:2]
    prof = lm.profile(prompts, max_new_tokens=3, labels=["a", "b"], progress=False)
    meta = prof.meta
    assert list(meta["prompt"]) == prompts
    assert list(meta["label"]) == ["a", "b"]
    assert (meta["n_layers"] == lm.n_layers).all()
    for text, ids in zip(meta["text"], meta["generated_ids"]):
        assert text == lm.tokenizer.decode(ids, skip_special_tokens=True)
    assert '"max_new_tokens": 3' in meta["settings"][0]


def test_bos_only_prompt_and_double_bos(lens_model):
    lm = lens_model("llama")
    bos = lm.tokenizer.bos_token_id
    assert lm.encode([""]) == [[bos]]
    assert lm.encode([lm.tokenizer.bos_token + "the cat"]) == lm.encode(["the cat"])
    prof = lm.profile([[bos]], max_new_tokens=2, progress=False)
    assert prof.entropy.shape[:2] == (1, 2)


def test_triton_backend_matches_torch_in_generation(lens_model):
    pytest.importorskip("triton")
    lm = lens_model("gpt2")
    prompts = tiny_prompts()[:2]
    a = lm.profile(prompts, max_new_tokens=2, alphas=(1.0, 2.0), progress=False)
    b = lm.profile(prompts, max_new_tokens=2, alphas=(1.0, 2.0), backend="triton", progress=False)
    np.testing.assert_allclose(a.entropy, b.entropy, atol=TOL, rtol=0)


def test_shards_with_index_offset_equal_one_run(lens_model):
    lm = lens_model("llama")
    prompts = tiny_prompts()[:5]
    kw = dict(max_new_tokens=4, do_sample=True, seed=11, progress=False)
    whole = lm.profile(prompts, **kw)
    first = lm.profile(prompts[:2], **kw)
    rest = lm.profile(prompts[2:], index_offset=2, **kw)
    assert list(whole.meta["generated_ids"]) == list(first.meta["generated_ids"]) + list(rest.meta["generated_ids"])
    np.testing.assert_allclose(whole.entropy, np.concatenate([first.entropy, rest.entropy]), atol=TOL, rtol=0)
    assert list(whole.meta["seed"]) == list(first.meta["seed"]) + list(rest.meta["seed"])


@pytest.mark.parametrize("lens_rows", [1, 7, 10**6], ids=["every-step", "ragged", "once"])
def test_deferred_lens_reads_equal_one_read_per_step(lens_model, monkeypatch, lens_rows):
    """The lens reads pending steps in groups of up to ``_LENS_ROWS`` rows; the grouping
    changes no value and no token (``L * B = 6`` rows per step here: 7 makes ragged groups)."""
    import elens_utils.lens.generation as gen

    lm = lens_model("llama")
    prompts = ["one day the", "a cat"]
    kw = dict(max_new_tokens=9, do_sample=True, temperature=0.9, seed=5, alphas=(1.0, 2.0), progress=False)
    monkeypatch.setattr(gen, "_LENS_ROWS", 1)
    want = lm.profile(prompts, **kw)
    monkeypatch.setattr(gen, "_LENS_ROWS", lens_rows)
    got = lm.profile(prompts, **kw)
    np.testing.assert_allclose(got.entropy, want.entropy, rtol=0, atol=1e-5)
    assert got.meta.generated_ids.tolist() == want.meta.generated_ids.tolist()


def test_unembedding_gets_a_contiguous_input(lens_model):
    # logits_to_keep=1 slices the last position out of [B, S, d]; on the CPU the loader's
    # pre-hook hands the unembedding a contiguous copy (a strided input takes a slow batched
    # matmul), with the same logits.
    lm = lens_model("llama")
    seen = []
    hook = lm.parts.unembed.register_forward_pre_hook(lambda _m, args: seen.append(args[0].is_contiguous()))
    try:
        ids = torch.tensor([[1, 2, 3, 4], [4, 3, 2, 1]])
        with torch.no_grad():
            last = lm.model(input_ids=ids, logits_to_keep=1).logits[:, -1]
            full = lm.model(input_ids=ids).logits[:, -1]
    finally:
        hook.remove()
    assert seen == [True, True]
    torch.testing.assert_close(last, full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shift", ["negative", "above_log_v"])
def test_entropies_outside_zero_log_v_are_never_used(lens_model, monkeypatch, shift):
    """A lens computation that returns an entropy outside [0, log V] stops with a message."""
    lm = lens_model("llama")
    real = lm.parts.entropy
    log_v = np.log(lm.parts.vocab_size)

    def broken(resid, alphas, **kw):
        h = real(resid, alphas, **kw)
        h[0, 0] = -0.5 if shift == "negative" else log_v + 0.5
        return h

    monkeypatch.setattr(lm.parts, "entropy", broken)
    with pytest.raises(ElensError, match=r"outside \[0, log V = .*result is not used"):
        lm.profile(["one day the"], max_new_tokens=2, progress=False)
    monkeypatch.undo()
    assert lm.profile(["one day the"], max_new_tokens=2, progress=False).entropy.max() <= log_v
