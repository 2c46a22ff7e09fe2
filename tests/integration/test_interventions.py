"""Block skipping, expansion/pruning ranking, multiple-choice scoring and the skip experiment.

References share nothing with the code under test but the model: skipping is checked against a
deep copy of the model whose block is *replaced* by a pass-through module (no hooks, no cache),
and multiple-choice scores against a plain unpadded float64 forward pass per prompt.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import make_profiles
from torch import nn

from elens_utils import ElensError, Profiles
from elens_utils.analysis.interventions import (
    answer_multiple_choice,
    expansion_blocks,
    mc_accuracy,
    pruning_blocks,
    random_blocks,
    rank_blocks,
    skip_blocks,
    skip_experiment,
)
from elens_utils.lens.capture import BlockCapture
from elens_utils.models.tiny import tiny_prompts

ARCHS = ("gpt2", "llama", "gemma2", "qwen3")
# Single tokens after a space in every tiny tokenizer ("Ġcat" for the Qwen BPE, "cat" word-level).
WORD_LETTERS = ("cat", "dog", "bird", "man")


class PassThrough(nn.Module):
    """Returns its hidden-state argument: the reference for a skipped block."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


def bypassed_copy(lm, block: int) -> nn.Module:
    model = copy.deepcopy(lm.model).double()
    blocks = model.get_submodule({"gpt2": "transformer.h"}.get(lm.arch, "model.layers"))
    blocks[block - 1] = PassThrough()
    return model


def hooks(lm) -> list[list]:
    """The forward hooks on each block (transformers may keep hooks of its own there)."""
    return [list(b._forward_hooks.values()) for b in lm.parts.blocks]


def logits_of(model, ids: list[int]) -> torch.Tensor:
    return model(input_ids=torch.tensor([ids])).logits[0, -1]


# --------------------------------------------------------------------------------------------
# skip_blocks


@pytest.mark.parametrize("arch", ARCHS)
def test_skipped_block_outputs_its_input(arch, lens_model):
    lm = lens_model(arch)
    ids = torch.tensor(lm.encode([tiny_prompts()[3]]))
    with torch.no_grad():
        plain = lm.model(input_ids=ids, output_hidden_states=True)
        embedding = plain.hidden_states[0]
        for block in range(1, lm.n_layers + 1):
            with skip_blocks(lm, [block]) as chosen, BlockCapture(lm.parts.blocks, last_only=False) as cap:
                assert chosen == [block]
                lm.model(input_ids=ids)
                out = cap.take()
            before = embedding if block == 1 else out[block - 2]
            torch.testing.assert_close(out[block - 1], before, rtol=0, atol=0)
            # The blocks after the skipped one did run: their outputs moved on.
            if block < lm.n_layers:
                assert not torch.equal(out[block], out[block - 1])


def test_capture_opened_before_skip_sees_bypassed_output(lens_model):
    lm = lens_model("llama")
    ids = torch.tensor(lm.encode([tiny_prompts()[3]]))
    with torch.no_grad(), BlockCapture(lm.parts.blocks, last_only=False) as cap:
        with skip_blocks(lm, [2]):
            lm.model(input_ids=ids)
        out = cap.take()
    torch.testing.assert_close(out[1], out[0], rtol=0, atol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_skip_matches_model_with_block_replaced(arch, lens_model):
    lm64 = lens_model(arch, "float64")
    ids = lm64.encode([tiny_prompts()[4]])[0]
    block = 2
    ref = bypassed_copy(lm64, block)
    with torch.no_grad():
        want = logits_of(ref, ids)
        with skip_blocks(lm64, [block]):
            got = logits_of(lm64.model, ids)
        plain = logits_of(lm64.model, ids)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    assert (plain - want).abs().max() > 1e-2  # skipping a block changes the output

    # KV-cached greedy generation under the skip = greedy argmax of full passes of the copy.
    lm_prompt = tiny_prompts()[2]
    with skip_blocks(lm64, [block]):
        prof = lm64.profile([lm_prompt], max_new_tokens=5, progress=False)
    seq = lm64.encode([lm_prompt])[0]
    expected = []
    with torch.no_grad():
        for _ in range(5):
            expected.append(int(logits_of(ref, seq).argmax()))
            seq = seq + [expected[-1]]
    assert prof.meta["generated_ids"][0] == expected


@pytest.mark.parametrize("arch", ARCHS)
def test_skip_nothing_is_identity_and_model_is_restored(arch, lens_model):
    lm = lens_model(arch)
    prompts = tiny_prompts()[:3]
    ids = lm.encode([prompts[2]])[0]
    with torch.no_grad():
        before = logits_of(lm.model, ids)
        own_hooks = hooks(lm)
        with skip_blocks(lm, []) as chosen:
            assert chosen == []
            assert torch.equal(logits_of(lm.model, ids), before)
    base = lm.profile(prompts, max_new_tokens=4, progress=False)
    with skip_blocks(lm, [lm.n_layers - 1, 1]) as chosen:
        assert chosen == [1, lm.n_layers - 1]
        skipped = lm.profile(prompts, max_new_tokens=4, progress=False)
    assert skipped.entropy.shape == base.entropy.shape
    assert np.abs(skipped.entropy - base.entropy).max() > 1e-2
    after = lm.profile(prompts, max_new_tokens=4, progress=False)
    np.testing.assert_array_equal(after.entropy, base.entropy)
    with torch.no_grad():
        assert torch.equal(logits_of(lm.model, ids), before)
    assert hooks(lm) == own_hooks


def test_skip_restores_after_exception(lens_model):
    lm = lens_model("llama")
    ids = lm.encode([tiny_prompts()[2]])[0]
    with torch.no_grad():
        before = logits_of(lm.model, ids)
        own_hooks = hooks(lm)
        with pytest.raises(KeyError, match="boom"):
            with skip_blocks(lm, [2]):
                assert not torch.equal(logits_of(lm.model, ids), before)
                raise KeyError("boom")
        assert torch.equal(logits_of(lm.model, ids), before)
    assert hooks(lm) == own_hooks


@pytest.mark.parametrize(
    "blocks, match",
    [
        ([0], "blocks 1..3.*numbered from 1"),
        ([4], "Block 4 does not exist"),
        ([-1], "Block -1 does not exist"),
        ([2, 2], "twice"),
        ([True], "integer block numbers"),
        ([1.0], "integer block numbers"),
        ("12", "iterable of block numbers"),
        (3, "iterable of block numbers"),
    ],
)
def test_skip_bad_blocks(blocks, match, lens_model):
    lm = lens_model("gpt2")
    own_hooks = hooks(lm)
    with pytest.raises(ElensError, match=match):
        with skip_blocks(lm, blocks):
            pass
    assert hooks(lm) == own_hooks


def test_skip_accepts_numpy_ints(lens_model):
    lm = lens_model("gpt2")
    with skip_blocks(lm, np.array([3, 2])) as chosen:
        assert chosen == [2, 3]


# --------------------------------------------------------------------------------------------
# ranking


def test_rank_blocks_against_loops():
    rng = np.random.default_rng(0)
    n, t, big_l = 3, 5, 6
    # Per-transition drifts (blocks 2..6): expansion at 4 then 2, pruning at 5 then 6.
    drift = np.array([0.5, -0.1, 1.0, -2.0, -0.7])
    h = np.zeros((n, t, big_l))
    h[:, :, 0] = rng.uniform(1, 3, (n, t))
    for i in range(1, big_l):
        h[:, :, i] = h[:, :, i - 1] + drift[i - 1] + rng.normal(0, 0.05, (n, t))
    prof = make_profiles(h[..., None].astype(np.float32))
    table = rank_blocks(prof)
    assert table["block"].tolist() == [2, 3, 4, 5, 6]
    assert table["transition"].tolist() == ["1->2", "2->3", "3->4", "4->5", "5->6"]
    e = prof.entropy[..., 0].astype(np.float64)
    for row in table.itertuples():
        d = [e[a, b, row.block - 1] - e[a, b, row.block - 2] for a in range(n) for b in range(t)]
        assert row.mean_dH == pytest.approx(np.mean(d), abs=1e-9)
        assert row.std_dH == pytest.approx(np.std(d), abs=1e-9)
        assert row.frac_positive == pytest.approx(np.mean(np.array(d) > 0))
    assert table.sort_values("expansion_rank")["block"].tolist() == [4, 2, 3, 6, 5]
    assert table.sort_values("pruning_rank")["block"].tolist() == [5, 6, 3, 2, 4]
    assert expansion_blocks(prof, 2) == [4, 2]
    assert pruning_blocks(prof, 3) == [5, 6, 3]
    assert expansion_blocks(prof, 0) == []


def test_rank_ties_go_to_lower_block():
    h = np.zeros((1, 2, 4, 1), dtype=np.float32)
    h[..., 1, 0], h[..., 2, 0], h[..., 3, 0] = 1.0, 2.0, 2.0  # dH = 1, 1, 0
    prof = make_profiles(h)
    assert expansion_blocks(prof, 2) == [2, 3]
    assert pruning_blocks(prof, 3) == [4, 2, 3]


def test_rank_errors():
    h = np.zeros((2, 2, 3, 1), dtype=np.float32)
    prof = make_profiles(h)
    with pytest.raises(ElensError, match="only 2 are available"):
        expansion_blocks(prof, 3)
    with pytest.raises(ElensError, match="non-negative integer"):
        pruning_blocks(prof, -1)
    with pytest.raises(ElensError, match="alpha=2.0 was not computed"):
        rank_blocks(prof, alpha=2.0)
    two = Profiles.concat([prof, make_profiles(h, model="other")])
    with pytest.raises(ElensError, match="2 models"):
        rank_blocks(two)
    with pytest.raises(ElensError, match="raw profiles"):
        rank_blocks(prof.resample_depth(3))
    with pytest.raises(ElensError, match="one block"):
        rank_blocks(make_profiles(np.zeros((1, 2, 1, 1), dtype=np.float32)))
    with pytest.raises(ElensError, match="Profiles object"):
        rank_blocks(h)


def test_random_blocks():
    draws = {tuple(random_blocks(12, 3, seed)) for seed in range(20)}
    assert len(draws) > 10
    for d in draws:
        assert len(set(d)) == 3 and list(d) == sorted(d) and all(2 <= b <= 12 for b in d)
    assert random_blocks(12, 3, 7) == random_blocks(12, 3, 7)
    assert random_blocks(6, 3, 0, exclude=[2, 3]) == [4, 5, 6]
    assert random_blocks(3, 3, 0, include_first=True) == [1, 2, 3]
    assert 1 in set().union(*(random_blocks(4, 1, s, include_first=True) for s in range(30)))
    assert random_blocks(5, 0, 0) == []
    with pytest.raises(ElensError, match="Cannot choose 3"):
        random_blocks(4, 3, 0, exclude=[2])
    with pytest.raises(ElensError, match="Block 9 does not exist"):
        random_blocks(4, 1, 0, exclude=[9])
    with pytest.raises(ElensError, match="n_layers"):
        random_blocks(0, 1, 0)
    with pytest.raises(ElensError, match="seed"):
        random_blocks(4, 1, 0.5)


# --------------------------------------------------------------------------------------------
# multiple choice


def reference_letter_logits(lm64, prompts, letters) -> np.ndarray:
    """Full-vocabulary float64 log-probs of each letter, one unpadded forward pass per prompt."""
    tok = lm64.tokenizer
    # The letter token as the tokenizer writes it after a space: "Ġcat" (BPE) or "cat".
    out = []
    with torch.no_grad():
        for p in prompts:
            ids = lm64.encode([p])[0]
            letter_ids = []
            for c in letters:
                full = tok(p + " " + c, add_special_tokens=False)["input_ids"]
                letter_ids.append(full[-1])
            lp = torch.log_softmax(logits_of(lm64.model, ids).double(), -1)
            out.append(lp[letter_ids].numpy())
    return np.array(out)


@pytest.mark.parametrize("arch", ARCHS)
def test_mc_scores_match_unpadded_float64(arch, lens_model):
    lm, lm64 = lens_model(arch), lens_model(arch, "float64")
    prompts = tiny_prompts()
    ref = reference_letter_logits(lm64, prompts, WORD_LETTERS)
    table = answer_multiple_choice(lm, prompts, WORD_LETTERS, batch_size=4)
    assert table["predicted"].tolist() == [WORD_LETTERS[j] for j in ref.argmax(1)]
    got = table[[f"logprob_{c}" for c in WORD_LETTERS]].to_numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(table["letter_mass"], np.exp(ref).sum(1), atol=1e-5, rtol=0)
    # The predictions are not all the same letter (else the argmax check is weak).
    assert table["predicted"].nunique() > 1 or arch == "gemma2"
    one = answer_multiple_choice(lm, prompts, WORD_LETTERS, batch_size=1)
    np.testing.assert_allclose(one[got_cols(WORD_LETTERS)].to_numpy(), got, atol=1e-5, rtol=0)


def got_cols(letters):
    return [f"logprob_{c}" for c in letters]


def test_mc_letter_token_with_and_without_space(lens_model):
    qwen = lens_model("qwen3")
    ids = qwen.tokenizer.convert_tokens_to_ids
    # After "sat" and a space the BPE writes the letter with its space: "Ġthe", "Ġa".
    table = answer_multiple_choice(qwen, ["the cat sat", "the dog"], ("the", "a"))
    assert table["letter_ids"].tolist() == [tuple(ids(["\u0120the", "\u0120a"]))] * 2
    # Directly after punctuation (separator ""), the same letters are the no-space tokens.
    table = answer_multiple_choice(qwen, ["the cat sat ."], ("the", "a"), separator="")
    assert table["letter_ids"][0] == tuple(ids(["the", "a"]))
    assert ids("the") != ids("\u0120the")
    # Without a separator "cat" glues onto "sat": "Ġsatcat" -> "Ġsat", "c", "at".
    answer_multiple_choice(qwen, ["the cat sat"], ("cat", "dog"))
    with pytest.raises(ElensError, match="does not tokenize as the prompt's tokens plus one token"):
        answer_multiple_choice(qwen, ["the cat sat"], ("cat", "dog"), separator="")
    # A trailing space merges with the letter ("Ġ" + "the" -> "Ġthe"): refused, not mis-scored.
    with pytest.raises(ElensError, match="trailing whitespace"):
        answer_multiple_choice(qwen, ["the cat sat "], ("the", "a"), separator="")
    llama = lens_model("llama")
    table = answer_multiple_choice(llama, ["the cat sat"], ("cat", "dog"))
    assert table["letter_ids"][0] == tuple(llama.tokenizer.convert_tokens_to_ids(["cat", "dog"]))


def test_mc_errors(lens_model):
    llama, qwen = lens_model("llama"), lens_model("qwen3")
    with pytest.raises(ElensError, match="unknown token"):
        answer_multiple_choice(llama, ["the cat sat"])  # "A" is not a word of the tiny vocabulary
    with pytest.raises(ElensError, match="'fish' .* plus one token"):
        answer_multiple_choice(qwen, ["the cat sat"], ("cat", "fish"))
    with pytest.raises(ElensError, match="duplicate"):
        answer_multiple_choice(llama, ["the"], ("cat", "cat"))
    with pytest.raises(ElensError, match="at least two"):
        answer_multiple_choice(llama, ["the"], ("cat",))
    with pytest.raises(ElensError, match="surrounding spaces"):
        answer_multiple_choice(llama, ["the"], (" cat", "dog"))
    with pytest.raises(ElensError, match="sequence of option labels"):
        answer_multiple_choice(llama, ["the"], "AB")
    with pytest.raises(ElensError, match="non-empty list"):
        answer_multiple_choice(llama, [], WORD_LETTERS)
    with pytest.raises(ElensError, match="non-empty list"):
        answer_multiple_choice(llama, "the cat", WORD_LETTERS)
    with pytest.raises(ElensError, match="must be strings"):
        answer_multiple_choice(llama, [[1, 2]], WORD_LETTERS)
    with pytest.raises(ElensError, match="batch_size"):
        answer_multiple_choice(llama, ["the"], WORD_LETTERS, batch_size=0)
    gpt2 = lens_model("gpt2")
    with pytest.raises(ElensError, match="empty"):
        answer_multiple_choice(gpt2, [""], WORD_LETTERS)


def test_mc_accuracy(lens_model):
    lm = lens_model("llama")
    prompts = tiny_prompts()
    pred = answer_multiple_choice(lm, prompts, WORD_LETTERS)["predicted"].tolist()
    right = pd.DataFrame({"prompt": prompts, "answer_letter": pred})
    res = mc_accuracy(lm, right, letters=WORD_LETTERS)
    assert res.accuracy == 1.0 and res.chance == 0.25 and res.n_questions == len(prompts)
    assert res.table["correct"].all() and res.table["answer"].tolist() == pred
    shifted = [WORD_LETTERS[(WORD_LETTERS.index(c) + 1) % 4] for c in pred]
    half = pred[:3] + shifted[3:]
    as_index = pd.DataFrame({"q": prompts, "gold": [WORD_LETTERS.index(c) for c in half]})
    res = mc_accuracy(lm, as_index, prompt_col="q", answer_col="gold", letters=WORD_LETTERS)
    assert res.accuracy == 0.5
    assert res.table["correct"].tolist() == [True] * 3 + [False] * 3
    records = [{"prompt": p, "answer_letter": a} for p, a in zip(prompts, shifted)]
    assert mc_accuracy(lm, records, letters=WORD_LETTERS).accuracy == 0.0
    with pytest.raises(ElensError, match="not one of the letters"):
        mc_accuracy(lm, right.assign(answer_letter="E"), letters=WORD_LETTERS)
    with pytest.raises(ElensError, match="outside 0..3"):
        mc_accuracy(lm, right.assign(answer_letter=4), letters=WORD_LETTERS)
    with pytest.raises(ElensError, match="no column 'answer'"):
        mc_accuracy(lm, right.drop(columns="answer_letter"), letters=WORD_LETTERS)
    # The frames of elens_utils.data.prompts name the column "answer"; it wins over "answer_letter".
    as_data = pd.DataFrame({"prompt": prompts, "answer": half})
    assert mc_accuracy(lm, as_data, letters=WORD_LETTERS).accuracy == 0.5
    assert mc_accuracy(lm, as_data.assign(answer_letter=pred), letters=WORD_LETTERS).accuracy == 0.5
    with pytest.raises(ElensError, match="No questions"):
        mc_accuracy(lm, right.iloc[:0], letters=WORD_LETTERS)
    with pytest.raises(ElensError, match="DataFrame"):
        mc_accuracy(lm, "questions.csv", letters=WORD_LETTERS)


# --------------------------------------------------------------------------------------------
# the experiment


def test_skip_experiment(lens_model):
    lm = lens_model("llama")
    own_hooks = hooks(lm)
    prompts = tiny_prompts()
    prof = lm.profile(prompts[:3], max_new_tokens=3, progress=False)
    questions = pd.DataFrame({"prompt": prompts, "answer_letter": ["cat", "dog", "bird", "man", "cat", "dog"]})
    res = skip_experiment(lm, questions, prof, ks=(1, 2), n_random_seeds=2, letters=WORD_LETTERS, progress=False)
    assert len(res) == 1 + 2 * (2 + 2)
    assert res["strategy"].tolist() == ["baseline"] + ["expansion", "pruning", "random", "random"] * 2
    assert res["seed"].iloc[3] != res["seed"].iloc[4]
    base = res.iloc[0]
    assert base["k"] == 0 and base["blocks"] == [] and pd.isna(base["seed"])
    assert base["accuracy"] == mc_accuracy(lm, questions, letters=WORD_LETTERS).accuracy
    assert (res["chance"] == 0.25).all() and (res["n_questions"] == 6).all()
    assert res["accuracy"].nunique() > 1  # skipping changes answers (else the check is weak)
    checked = {}
    for row in res.itertuples():
        assert len(row.blocks) == row.k
        if row.strategy in ("expansion", "pruning"):
            pick = expansion_blocks if row.strategy == "expansion" else pruning_blocks
            assert row.blocks == pick(prof, row.k)
        else:
            assert all(2 <= b <= lm.n_layers for b in row.blocks)
        key = tuple(row.blocks)
        if key not in checked:
            with skip_blocks(lm, row.blocks):
                checked[key] = mc_accuracy(lm, questions, letters=WORD_LETTERS)
        assert row.accuracy == checked[key].accuracy
        assert row.n_correct == checked[key].table["correct"].sum()
    assert hooks(lm) == own_hooks
    with pytest.raises(ElensError, match="check_model=False"):
        skip_experiment(lm, questions, make_profiles(np.zeros((1, 2, 3, 1), np.float32)), ks=(1,))
    with pytest.raises(ElensError, match="has 3"):
        skip_experiment(lm, questions, make_profiles(np.zeros((1, 2, 4, 1), np.float32)), ks=(1,))
    with pytest.raises(ElensError, match="only 2 are available"):
        skip_experiment(lm, questions, prof, ks=(3,))
    with pytest.raises(ElensError, match=">= 1"):
        skip_experiment(lm, questions, prof, ks=(0,))
