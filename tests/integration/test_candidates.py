"""Top-p candidate sets: brute-force numpy references (ties included), Jaccard, Spearman.

The per-model reference shares nothing with the code under test but the model and the located
final modules: float64 weights, one unpadded full forward pass per prompt over prompt +
generated tokens, block outputs from ``output_hidden_states``, the last block from the model's
own logits, and the top-p sets by a Python loop over a numpy sort.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_profiles
from scipy.stats import spearmanr

from elens_utils import ElensError, Profiles
from elens_utils.analysis import candidates
from elens_utils.analysis.candidates import (
    CandidateSets,
    candidate_set_sizes,
    jaccard,
    spearman_delta_vs_size,
    top_p_sets,
)
from elens_utils.models.tiny import tiny_prompts

ARCHS = ("gpt2", "llama", "gemma2", "qwen3")


def brute_top_p(probs: np.ndarray, p: float) -> tuple[int, set[int]]:
    """Smallest k whose k largest probabilities sum to >= p; ties by lower token id."""
    order = sorted(range(len(probs)), key=lambda j: (-probs[j], j))
    total, members = 0.0, set()
    for j in order:
        total += probs[j]
        members.add(j)
        if total >= p:
            break
    return len(members), members


# --------------------------------------------------------------------------------------------
# top-p sets and Jaccard


def test_top_p_hand_cases():
    probs = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.1, 0.5, 0.1, 0.3], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    sizes, members = top_p_sets(probs, 0.5)
    assert sizes.tolist() == [2, 1, 1]
    assert members.tolist() == [[True, True, False, False], [False, True, False, False], [False, False, True, False]]
    sizes, members = top_p_sets(probs, 0.6)
    assert sizes.tolist() == [3, 2, 1]
    assert members[0].tolist() == [True, True, True, False]  # ties: lower ids first
    assert members[1].tolist() == [False, True, False, True]
    sizes, _ = top_p_sets(probs, 1.0)
    assert sizes.tolist() == [4, 4, 1]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("top", [None, 2, 4], ids=["full-sort", "top2", "top4"])
def test_top_p_against_numpy_sort_with_ties(seed, top, monkeypatch):
    # top: sets are first looked for among each row's `top` largest probabilities, the rest
    # sorted in full; with V = 9 both ways are taken (the default, 1024, sorts every row).
    if top is not None:
        monkeypatch.setattr(candidates, "_TOP_CANDIDATES", top)
    rng = np.random.default_rng(seed)
    # Dyadic probabilities (integer weights over 64): sums are exact, ties are frequent.
    rows, vocab = 40, 9
    weights = np.zeros((rows, vocab), dtype=np.int64)
    for r in range(rows):
        cuts = np.sort(rng.integers(0, 65, vocab - 1))
        weights[r] = np.diff(np.concatenate([[0], cuts, [64]]))
        weights[r] = weights[r][rng.permutation(vocab)]
        if r % 3 == 0:  # many exact ties
            weights[r] = rng.permutation(np.array([8] * 6 + [16] + [0] * 2))
    probs = weights / 64.0
    for p in (0.125, 0.3, 0.5, 0.6, 0.75, 0.99, 1.0):
        sizes, members = top_p_sets(torch.tensor(probs), p)
        for r in range(rows):
            k, want = brute_top_p(probs[r], p)
            assert sizes[r].item() == k, (r, p, probs[r])
            assert set(np.flatnonzero(members[r].numpy())) == want, (r, p)
    assert len({tuple(w) for w in weights}) > 20


def test_jaccard():
    a = torch.tensor([[True, True, False, False], [True, False, False, False], [True, True, True, False]])
    b = torch.tensor([[True, True, False, False], [False, True, False, False], [False, True, True, True]])
    assert jaccard(a, a).tolist() == [1.0, 1.0, 1.0]
    assert jaccard(a, b).tolist() == [1.0, 0.0, 0.5]
    empty = torch.zeros((1, 3), dtype=torch.bool)
    assert jaccard(empty, empty).tolist() == [1.0]
    with pytest.raises(ElensError, match="bool masks"):
        jaccard(a, b.float())
    with pytest.raises(ElensError, match="bool masks"):
        jaccard(a, b[:, :2])


@pytest.mark.parametrize("p", [0, -0.1, 1.5, True, "0.6", float("nan")])
def test_top_p_bad_p(p):
    with pytest.raises(ElensError, match=r"p must be a number in \(0, 1\]"):
        top_p_sets(torch.full((1, 4), 0.25, dtype=torch.float64), p)


def test_top_p_bad_shape():
    with pytest.raises(ElensError, match=r"\[rows, V\]"):
        top_p_sets(torch.full((4,), 0.25), 0.5)


# --------------------------------------------------------------------------------------------
# on models


@torch.no_grad()
def reference_probs(lm64, prompt_ids: list[int], generated: list[int]) -> np.ndarray:
    """``[T, L, V]`` float64 lens distributions by one unpadded full pass."""
    parts = lm64.parts
    steps = len(generated)
    seq = list(prompt_ids) + list(generated[:-1])
    res = lm64.model(input_ids=torch.tensor([seq]), output_hidden_states=True)
    out = []
    for resid in res.hidden_states[1 : parts.n_layers]:  # the last entry is already normed
        z = parts.unembed(parts.normalize(resid[0, -steps:].double())).double()
        z = parts.transform(z)
        out.append(torch.softmax(z, -1))
    out.append(torch.softmax(res.logits[0, -steps:].double(), -1))
    return torch.stack(out, dim=1).numpy()


@pytest.mark.parametrize("arch", ARCHS)
def test_candidate_sets_match_reference(arch, lens_model):
    lm, lm64 = lens_model(arch), lens_model(arch, "float64")
    prompts = tiny_prompts()[1:5]
    p = 0.6
    cs = candidate_set_sizes(lm, prompts, p=p, max_new_tokens=4, batch_size=3, progress=False)
    n, t, big_l = len(prompts), 4, lm.n_layers
    assert isinstance(cs, CandidateSets) and cs.p == p
    assert cs.sizes.shape == (n, t, big_l) and cs.sizes.dtype == np.int64
    assert cs.jaccard.shape == (n, t, big_l - 1) and cs.entropy.shape == (n, t, big_l)
    # The dense distributions are the profiles' ones: same tokens, same entropies.
    np.testing.assert_allclose(cs.entropy, cs.profiles.select(1.0), atol=1e-4, rtol=0)
    checked = 0
    for i, ids in enumerate(lm.encode(prompts)):
        probs = reference_probs(lm64, ids, cs.profiles.meta["generated_ids"][i])
        for k in range(t):
            prev = None
            for layer in range(big_l):
                q = probs[k, layer]
                size, members = brute_top_p(q, p)
                csum = np.cumsum(np.sort(q)[::-1])
                ambiguous = np.abs(csum - p).min() < 1e-5  # fp32 vs fp64 could flip the boundary
                ent = -(q[q > 0] * np.log(q[q > 0])).sum()
                assert cs.entropy[i, k, layer] == pytest.approx(ent, abs=1e-4)
                if not ambiguous:
                    assert cs.sizes[i, k, layer] == size, (i, k, layer)
                    checked += 1
                    if prev is not None:
                        want = len(prev & members) / len(prev | members)
                        assert cs.jaccard[i, k, layer - 1] == pytest.approx(want, abs=1e-12)
                prev = members if not ambiguous else None
    assert checked >= 0.9 * n * t * big_l
    assert len(np.unique(cs.sizes)) > 2  # sizes vary, or the check above is weak
    assert (cs.jaccard < 1).any() and (cs.jaccard > 0).any()


def test_candidate_sets_batch_and_chunk_invariance_and_reuse(lens_model):
    lm = lens_model("llama")
    prompts = tiny_prompts()
    a = candidate_set_sizes(lm, prompts, max_new_tokens=3, batch_size=6, progress=False)
    b = candidate_set_sizes(lm, prompts, max_new_tokens=3, batch_size=1, row_chunk=2, progress=False)
    np.testing.assert_array_equal(a.sizes, b.sizes)
    np.testing.assert_allclose(a.jaccard, b.jaccard, atol=1e-12)
    np.testing.assert_allclose(a.entropy, b.entropy, atol=1e-5)
    c = candidate_set_sizes(lm, prompts, profiles=a.profiles, batch_size=4, progress=False)
    assert c.profiles is a.profiles
    np.testing.assert_array_equal(c.sizes, a.sizes)
    # A larger p never gives a smaller set.
    d = candidate_set_sizes(lm, prompts, p=0.9, profiles=a.profiles, progress=False)
    assert (d.sizes >= a.sizes).all() and (d.sizes > a.sizes).any()
    # Sampling settings reach generate_profiles.
    e = candidate_set_sizes(lm, prompts[:1], max_new_tokens=2, do_sample=True, seed=3, progress=False)
    assert e.profiles.meta["seed"].notna().all()
    frame = a.to_frame()
    assert len(frame) == a.sizes.size
    row = frame[(frame.prompt_index == 2) & (frame.token == 3) & (frame.block == 2)].iloc[0]
    assert row["size"] == a.sizes[2, 2, 1] and row["jaccard_prev"] == a.jaccard[2, 2, 0]
    assert row["d_size"] == a.sizes[2, 2, 1] - a.sizes[2, 2, 0]
    assert frame[frame.block == 1]["dH"].isna().all()


def test_candidate_sets_errors(lens_model):
    lm = lens_model("gpt2")
    prompts = tiny_prompts()[:2]
    prof = lm.profile(prompts, max_new_tokens=2, progress=False)
    with pytest.raises(ElensError, match=r"p must be a number in \(0, 1\]"):
        candidate_set_sizes(lm, prompts, p=0.0)
    with pytest.raises(ElensError, match="batch_size"):
        candidate_set_sizes(lm, prompts, batch_size=0)
    with pytest.raises(ElensError, match="row_chunk"):
        candidate_set_sizes(lm, prompts, row_chunk=0)
    with pytest.raises(ElensError, match="drop them"):
        candidate_set_sizes(lm, prompts, profiles=prof, do_sample=True)
    with pytest.raises(ElensError, match="Got 2 profiles for 1 prompts"):
        candidate_set_sizes(lm, prompts[:1], profiles=prof)
    with pytest.raises(ElensError, match="not raw profiles"):
        candidate_set_sizes(lm, prompts, profiles=prof.resample_depth(5))
    with pytest.raises(ElensError, match="Profiles object"):
        candidate_set_sizes(lm, prompts, profiles=prof.entropy)
    with pytest.raises(ElensError, match="max_new_tokens"):
        candidate_set_sizes(lm, prompts, max_new_tokens=0)


# --------------------------------------------------------------------------------------------
# Spearman


def test_spearman_monotone_gives_one():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 200, (3, 4, 6))
    # H linear in the size (dyadic, so exact in float32): dH = d_size / 256, ties included.
    h = sizes.astype(np.float64) / 256 + 1.0
    res = spearman_delta_vs_size(make_profiles(h[..., None].astype(np.float32)), sizes)
    assert res["model"].tolist() == ["m", "pooled"]
    assert res["rho"].tolist() == [1.0, 1.0]
    assert (res["n_pairs"] == 3 * 4 * 5).all()
    anti = spearman_delta_vs_size(make_profiles((3 - h)[..., None].astype(np.float32)), sizes)
    assert anti["rho"].tolist() == [-1.0, -1.0]
    # H = log(size): monotone in the change of log size (log_sizes=True), not of size.
    wide = rng.integers(1, 10**6, (3, 4, 6))
    h_log = np.log(wide.astype(np.float64))[..., None].astype(np.float32)
    logged = spearman_delta_vs_size(make_profiles(h_log), wide, log_sizes=True)
    assert logged["rho"][0] == pytest.approx(1.0, abs=1e-12)
    assert spearman_delta_vs_size(make_profiles(h_log), wide)["rho"][0] < 0.99


def test_spearman_against_scipy_pooled_and_per_model():
    rng = np.random.default_rng(1)
    h1, s1 = rng.normal(size=(2, 3, 4)), rng.integers(1, 50, (2, 3, 4))
    h2, s2 = rng.normal(size=(3, 3, 6)), rng.integers(1, 50, (3, 3, 6))
    p1 = make_profiles(h1[..., None].astype(np.float32), "small")
    p2 = make_profiles(h2[..., None].astype(np.float32), "deep")
    res = spearman_delta_vs_size([p1, p2], [s1, s2]).set_index("model")
    x1, y1 = np.diff(p1.entropy[..., 0].astype(np.float64), axis=2).ravel(), np.diff(s1, axis=2).ravel()
    x2, y2 = np.diff(p2.entropy[..., 0].astype(np.float64), axis=2).ravel(), np.diff(s2, axis=2).ravel()
    assert res.loc["small", "rho"] == pytest.approx(spearmanr(x1, y1).statistic, abs=1e-12)
    assert res.loc["deep", "rho"] == pytest.approx(spearmanr(x2, y2).statistic, abs=1e-12)
    pooled = spearmanr(np.concatenate([x1, x2]), np.concatenate([y1, y2]))
    assert res.loc["pooled", "rho"] == pytest.approx(pooled.statistic, abs=1e-12)
    assert res.loc["pooled", "pvalue"] == pytest.approx(pooled.pvalue, rel=1e-9)
    assert res.loc["pooled", "n_pairs"] == x1.size + x2.size
    # Two models in one Profiles (same depth) are split by meta["model"].
    both = Profiles.concat([p1, make_profiles(h1[..., None].astype(np.float32) * 2, "other")])
    res2 = spearman_delta_vs_size(both, np.concatenate([s1, s1])).set_index("model")
    assert list(res2.index) == ["small", "other", "pooled"]
    assert res2.loc["other", "rho"] == pytest.approx(res.loc["small", "rho"], abs=1e-12)


def test_spearman_on_model_candidate_sets(lens_model):
    lm = lens_model("qwen3")
    cs = candidate_set_sizes(lm, tiny_prompts(), max_new_tokens=4, progress=False)
    res = spearman_delta_vs_size(cs.profiles, cs)
    assert res["n_pairs"].tolist() == [6 * 4 * (lm.n_layers - 1)] * 2
    assert -1 <= res["rho"][0] <= 1 and res["rho"][0] == res["rho"][1]


def test_spearman_constant_is_nan_and_errors():
    h = np.zeros((1, 2, 3, 1), dtype=np.float32)
    res = spearman_delta_vs_size(make_profiles(h), np.ones((1, 2, 3), dtype=int))
    assert res["rho"].isna().all()
    prof = make_profiles(np.random.default_rng(0).normal(size=(1, 2, 3, 1)).astype(np.float32))
    with pytest.raises(ElensError, match=r"\[N, T, L\]"):
        spearman_delta_vs_size(prof, np.ones((1, 2, 4), dtype=int))
    with pytest.raises(ElensError, match=">= 1"):
        spearman_delta_vs_size(prof, np.zeros((1, 2, 3), dtype=int))
    with pytest.raises(ElensError, match="one size array per Profiles"):
        spearman_delta_vs_size([prof, prof], [np.ones((1, 2, 3))])
    with pytest.raises(ElensError, match="raw profiles"):
        spearman_delta_vs_size(prof.resample_depth(3), np.ones((1, 2, 3)))
    with pytest.raises(ElensError, match="one block"):
        spearman_delta_vs_size(make_profiles(h[:, :, :1]), np.ones((1, 2, 1)))
    with pytest.raises(ElensError, match="alpha=2.0 was not computed"):
        spearman_delta_vs_size(prof, np.ones((1, 2, 3)), alpha=2.0)
    with pytest.raises(ElensError, match="Expected Profiles"):
        spearman_delta_vs_size([prof.entropy], [np.ones((1, 2, 3))])
