"""Cloze scoring (elens_utils.analysis.cloze) against a float64 brute force, under skipping, and in mc_accuracy.

The reference shares nothing with the code under test but the model: a deep float64 copy, one
unpadded, uncached forward pass over ``prompt + " " + option`` per pair, and the sum of the
log-softmax at the option's positions. Skipping is checked against a copy whose block is
replaced by a pass-through module (no hooks).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import make_profiles
from torch import nn

from elens_utils import ElensError
from elens_utils.analysis.cloze import answer_cloze, option_logprobs
from elens_utils.analysis.interventions import mc_accuracy, skip_blocks, skip_experiment
from elens_utils.models.tiny import ARCHS, tiny_prompts

PROMPTS = tiny_prompts()[1:5]  # 3 to 10 words; the gemma2 model's sliding window is 8 tokens
OPTIONS = [
    ["cat", "the dog ran", "bird", "old man saw a"],
    ["red bird", "the", "sun was happy", "fish"],
    ["water", "moon", "the house", "a big dog ran to"],
    ["tree", "river , and", "man", "the cat sat"],
]


class PassThrough(nn.Module):
    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


def reference(lm64, model, prompts, options) -> np.ndarray:
    """``[N, K]`` float64 summed log-probs, one full forward pass per (prompt, option)."""
    out = np.zeros((len(prompts), len(options[0])))
    with torch.no_grad():
        for i, p in enumerate(prompts):
            n = len(lm64.encode([p])[0])
            for j, o in enumerate(options[i]):
                ids = lm64.encode([p + " " + o])[0]
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
                out[i, j] = sum(float(logp[t - 1, ids[t]]) for t in range(n, len(ids)))
    return out


def bypassed(lm64, block: int) -> nn.Module:
    model = copy.deepcopy(lm64.model)
    blocks = model.get_submodule({"gpt2": "transformer.h", "gpt_neox": "gpt_neox.layers", "opt": "model.decoder.layers"}.get(lm64.arch, "model.layers"))
    blocks[block - 1] = PassThrough()
    return model


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("share_prompt", [True, False], ids=["shared", "full"])
def test_matches_float64_brute_force(arch, share_prompt, lens_model):
    lm, lm64 = lens_model(arch), lens_model(arch, "float64")
    want = reference(lm64, lm64.model, PROMPTS, OPTIONS)
    for batch_size in (1, 3):
        got = option_logprobs(lm, PROMPTS, OPTIONS, batch_size=batch_size, share_prompt=share_prompt)
        np.testing.assert_allclose(got.logprob, want, rtol=0, atol=1e-4)
    n_tokens = [[len(lm.encode([p + " " + o])[0]) - len(lm.encode([p])[0]) for o in opts] for p, opts in zip(PROMPTS, OPTIONS)]
    np.testing.assert_array_equal(got.n_tokens, n_tokens)
    np.testing.assert_array_equal(got.n_chars, [[len(o) for o in opts] for opts in OPTIONS])


@pytest.mark.parametrize("arch", ["llama", "gemma2"])
def test_option_passes_split_under_the_logit_budget(arch, lens_model, monkeypatch):
    from elens_utils.analysis import cloze

    lm, lm64 = lens_model(arch), lens_model(arch, "float64")
    want = reference(lm64, lm64.model, PROMPTS, OPTIONS)
    monkeypatch.setattr(cloze, "_LOGIT_BUDGET", 1)  # one option row per pass
    for share_prompt in (True, False):
        got = option_logprobs(lm, PROMPTS, OPTIONS, batch_size=4, share_prompt=share_prompt)
        np.testing.assert_allclose(got.logprob, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "gemma2", "gpt2", "qwen3"])
def test_composes_with_skip_blocks(arch, lens_model):
    # The model under test is float32: Gemma-2's eager attention takes its softmax in float32,
    # where a float64 model's mask value becomes -inf and a padded row turns NaN.
    lm, lm64 = lens_model(arch), lens_model(arch, "float64")
    block = 2
    want = reference(lm64, bypassed(lm64, block), PROMPTS, OPTIONS)
    plain = reference(lm64, lm64.model, PROMPTS, OPTIONS)
    for share_prompt in (True, False):
        with skip_blocks(lm, [block]):
            got = option_logprobs(lm, PROMPTS, OPTIONS, batch_size=2, share_prompt=share_prompt)
        np.testing.assert_allclose(got.logprob, want, rtol=0, atol=1e-4)
    assert np.abs(plain - want).max() > 1e-2  # the skip changes the scores
    np.testing.assert_allclose(option_logprobs(lm, PROMPTS, OPTIONS).logprob, plain, rtol=0, atol=1e-4)  # hooks gone


def test_answer_cloze_normalizations_and_ties(lens_model):
    lm = lens_model("llama")
    res = option_logprobs(lm, PROMPTS, OPTIONS)
    for normalize, scores in (
        ("sum", res.logprob),
        ("token", res.logprob / res.n_tokens),
        ("char", res.logprob / res.n_chars),
    ):
        table = answer_cloze(lm, PROMPTS, OPTIONS, normalize=normalize)
        assert table["predicted"].tolist() == ["ABCD"[j] for j in scores.argmax(axis=1)]
        np.testing.assert_allclose(table[[f"score_{c}" for c in "ABCD"]].to_numpy(), scores)
        np.testing.assert_allclose(table[[f"logprob_{c}" for c in "ABCD"]].to_numpy(), res.logprob)
        np.testing.assert_allclose(table["letter_mass"], np.exp(res.logprob).sum(axis=1))
    # the same option twice: equal scores, the earlier letter wins
    same = answer_cloze(lm, PROMPTS[:1], [["dog", "cat", "cat", "bird"]])
    assert same["logprob_B"].iloc[0] == same["logprob_C"].iloc[0]
    assert same["predicted"].iloc[0] != "C"


def test_deterministic_and_order_free(lens_model):
    lm = lens_model("qwen3")
    a = option_logprobs(lm, PROMPTS, OPTIONS, batch_size=4).logprob
    b = option_logprobs(lm, PROMPTS, OPTIONS, batch_size=4).logprob
    np.testing.assert_array_equal(a, b)
    rev = option_logprobs(lm, PROMPTS[::-1], OPTIONS[::-1], batch_size=2).logprob[::-1]
    np.testing.assert_allclose(rev, a, rtol=0, atol=1e-5)


def frame(lm) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt": [p + " letters" for p in PROMPTS],
            "cloze_prompt": PROMPTS,
            "options": OPTIONS,
            "answer": ["A", "B", "C", "D"],
            "subject": ["x", "x", "y", "y"],
        }
    )


def test_mc_accuracy_with_cloze_scoring(lens_model):
    lm = lens_model("llama")
    questions = frame(lm)
    table = answer_cloze(lm, PROMPTS, OPTIONS)
    res = mc_accuracy(lm, questions, scoring="cloze")
    assert res.table["predicted"].tolist() == table["predicted"].tolist()
    assert res.accuracy == float((table["predicted"] == questions["answer"]).mean())
    assert res.chance == 0.25 and res.n_questions == 4
    # an explicit prompt column wins over cloze_prompt
    other = mc_accuracy(lm, questions, scoring="cloze", prompt_col="prompt")
    want = answer_cloze(lm, questions["prompt"].tolist(), OPTIONS)
    assert other.table["predicted"].tolist() == want["predicted"].tolist()
    # per token
    tok = mc_accuracy(lm, questions, scoring="cloze", normalize="token")
    assert tok.table["predicted"].tolist() == answer_cloze(lm, PROMPTS, OPTIONS, normalize="token")["predicted"].tolist()


def test_skip_experiment_with_cloze_scoring(lens_model):
    lm = lens_model("llama")
    questions = frame(lm)
    rng = np.random.default_rng(0)
    prof = make_profiles(rng.normal(size=(3, 2, lm.n_layers, 1)), model=lm.name)
    out = skip_experiment(lm, questions, prof, ks=(1,), n_random_seeds=1, scoring="cloze", progress=False)
    base = mc_accuracy(lm, questions, scoring="cloze")
    assert out.loc[out["strategy"] == "baseline", "accuracy"].iloc[0] == base.accuracy
    exp = out[out["strategy"] == "expansion"].iloc[0]
    with skip_blocks(lm, exp["blocks"]):
        want = mc_accuracy(lm, questions, scoring="cloze").accuracy
    assert exp["accuracy"] == want


def test_bad_input_says_what_to_do(lens_model):
    lm = lens_model("llama")
    with pytest.raises(ElensError, match="non-empty list"):
        option_logprobs(lm, [], [])
    with pytest.raises(ElensError, match="one list of options per prompt"):
        option_logprobs(lm, PROMPTS, OPTIONS[:2])
    with pytest.raises(ElensError, match="same number"):
        option_logprobs(lm, PROMPTS[:2], [["cat", "dog"], ["cat", "dog", "bird"]])
    with pytest.raises(ElensError, match="empty or non-string option"):
        option_logprobs(lm, PROMPTS[:1], [["cat", " "]])
    with pytest.raises(ElensError, match="normalize"):
        answer_cloze(lm, PROMPTS, OPTIONS, normalize="mean")
    with pytest.raises(ElensError, match="one letter per option"):
        answer_cloze(lm, PROMPTS, OPTIONS, letters=("A", "B"))
    with pytest.raises(ElensError, match="batch_size"):
        option_logprobs(lm, PROMPTS, OPTIONS, batch_size=0)
    with pytest.raises(ElensError, match="scoring"):
        mc_accuracy(lm, frame(lm), scoring="likelihood")
    with pytest.raises(ElensError, match="options"):
        mc_accuracy(lm, frame(lm).drop(columns="options"), scoring="cloze")


def test_option_merging_with_prompt_is_refused(lens_model):
    lm = lens_model("qwen3")  # byte-level BPE: a trailing space merges with the next word
    with pytest.raises(ElensError, match="trailing whitespace"):
        option_logprobs(lm, ["the cat sat "], [["dog", "cat"]], separator="")


def test_option_passes_run_no_padding(lens_model):
    # One pass per option length: the later-token passes feed exactly the options' tokens
    # after their first, never a pad.
    lm = lens_model("llama")
    fed: list[tuple[int, int]] = []
    hook = lm.model.register_forward_pre_hook(lambda _m, _a, kw: fed.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
    try:
        got = option_logprobs(lm, PROMPTS, OPTIONS, batch_size=4)
    finally:
        hook.remove()
    later = fed[1:]  # fed[0] is the prompt pass
    assert sum(rows * width for rows, width in later) == int((got.n_tokens - 1).sum())
    assert len({width for _, width in later}) == len(later)
