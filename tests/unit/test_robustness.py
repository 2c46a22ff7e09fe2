"""Tests of the families / robustness tables of elens_utils.analysis.classify (size ranks, held-out
sweeps, depth rescaling, transfer across prompt groups, one-factor-at-a-time sweeps) against
the brute-force kNN and pair-counting AUC of tests/helpers.py (plain numpy)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers import brute_knn, make_profiles, pair_auc
from sklearn.model_selection import StratifiedKFold

from elens_utils.analysis.classify import (
    TEST_COLUMNS,
    depth_rescaling,
    holdout_group_auc,
    holdout_sweep,
    k_sweep,
    knn_cv,
    profile_features,
    robustness_sweep,
    size_rank,
    transfer_sweep,
)
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles

# ---------------------------------------------------------------------------------------------
# brute-force references (float64, plain numpy)


def brute_holdout_auc(x, labels, groups, held):
    """AUC of a kNN trained off ``held`` and tested on it: binary, or OvR over the present classes."""
    _, y = np.unique(labels, return_inverse=True)
    test = np.asarray(groups) == held
    train_classes = np.unique(y[~test])
    y_train = np.searchsorted(train_classes, y[~test])
    y_test = np.searchsorted(train_classes, y[test])
    proba = brute_knn(x[~test], y_train, x[test], K, len(train_classes))[0]
    if len(train_classes) == 2:
        return pair_auc(proba[y_test == 1, 1], proba[y_test == 0, 1])
    present = np.unique(y_test)
    return float(
        np.mean(
            [pair_auc(proba[y_test == c, c], proba[y_test != c, c]) for c in present]
        )
    )


K = 3


def blobs(n_per_class=24, n_classes=3, sep=1.5, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [
            rng.normal(0, 1, (n_per_class, 4)) + sep * np.eye(4)[c]
            for c in range(n_classes)
        ]
    )
    y = np.repeat([f"c{c}" for c in range(n_classes)], n_per_class).astype(object)
    return x, y


def linear_profiles(
    model, n_layers, slope, *, n=12, t=4, noise=0.1, seed=0, alphas=(1.0,)
):
    """Profiles linear in relative depth (H = 1 + slope * l / L), plus noise; one row per sample."""
    rng = np.random.default_rng(seed)
    depth = np.arange(1, n_layers + 1) / n_layers
    base = (
        1.0
        + slope * depth[None, None, :, None]
        + 0.05 * np.arange(len(alphas))[None, None, None, :]
    )
    h = np.broadcast_to(
        base, (n, t, n_layers, len(alphas))
    ).copy() + noise * rng.normal(size=(n, t, n_layers, len(alphas)))
    return make_profiles(h, model, alphas=alphas, seed=0, settings=json.dumps({"temperature": 0.7}))


@pytest.fixture(scope="module")
def family_profiles():
    """Two families (rising and falling profiles) at three depths each, 12 samples per model."""
    parts = []
    for fam, slope in (("gpt2", 2.0), ("Qwen/Qwen3", -1.5)):
        for size, n_layers in enumerate((3, 5, 9)):
            name = f"{fam}-{size}" if fam == "gpt2" else f"{fam}-{size}B"
            parts.append(
                linear_profiles(
                    name,
                    n_layers,
                    slope,
                    seed=size + (10 if fam == "gpt2" else 20),
                    alphas=(1.0, 0.5, math.inf),
                )
            )
    return parts


# ---------------------------------------------------------------------------------------------
# size_rank


def test_size_rank_ranks_depth_within_each_family_ties_by_first_appearance():
    meta = pd.DataFrame(
        {
            "model": [
                "gpt2-xl",
                "gpt2",
                "Qwen/Qwen3-8B",
                "Qwen/Qwen3-4B",
                "Qwen/Qwen3-1.7B",
                "gpt2",
                "gpt2-medium",
            ],
            "n_layers": [48, 12, 36, 36, 28, 12, 24],
        }
    )
    assert size_rank(meta).tolist() == [
        3,
        1,
        2,
        3,
        1,
        1,
        2,
    ]  # Qwen3-8B first seen, so before -4B
    # an explicit family column wins over the names
    meta["fam"] = ["a", "a", "a", "b", "b", "a", "b"]
    assert size_rank(meta, label_column="fam").tolist() == [3, 1, 2, 3, 2, 1, 1]
    with pytest.raises(ElensError, match="n_layers"):
        size_rank(meta.drop(columns="n_layers"))


# ---------------------------------------------------------------------------------------------
# holdout_sweep


def test_holdout_sweep_matches_brute_force_and_skips_what_it_cannot_score():
    x, y = blobs(seed=3)
    groups = np.tile(["s", "m", "l"], len(y) // 3).astype(object)
    groups[(y == "c2") & (groups == "l")] = (
        "only-c2"  # a group holding c2 alone: no AUC
    )
    table = holdout_sweep(x, y, groups, k=K, factor="size")
    assert list(table.columns) == list(TEST_COLUMNS)
    assert table["held_out"].tolist() == ["l", "m", "only-c2", "s"]  # sorted
    for row in table.itertuples():
        if row.held_out == "only-c2":
            assert (
                row.status == "skipped"
                and math.isnan(row.auc)
                and "only the class" in row.note
            )
            continue
        assert row.status == "ok" and row.test == f"held out: size = {row.held_out}"
        assert row.auc == pytest.approx(
            brute_holdout_auc(x, y, groups, row.held_out), abs=1e-12
        )
        assert row.auc == holdout_group_auc(x, y, groups, row.held_out, k=K)
        assert (
            row.n_test == int((groups == row.held_out).sum())
            and row.n_train == len(y) - row.n_test
        )
    assert table.loc[table["held_out"] == "l", "detail"].item() == "c0, c1"
    with pytest.raises(ElensError, match="entries for"):
        holdout_sweep(x, y, groups[:-1])


# ---------------------------------------------------------------------------------------------
# depth_rescaling


def test_depth_rescaling_rows_are_knn_cv_and_brute_force_holdouts(family_profiles):
    table = depth_rescaling(family_profiles, k=K, folds=4)
    assert list(table.columns) == ["depth", *TEST_COLUMNS]
    assert table["depth"].tolist() == ["interpolate"] * 4 + ["zero_pad"] * 4
    assert table["test"].tolist()[:4] == [
        "4-fold CV",
        "held out: size 1 (shallowest)",
        "held out: size 2",
        "held out: size 3 (deepest)",
    ]
    for depth, rows in table.groupby("depth", sort=False):
        x, y, meta = profile_features(
            family_profiles,
            alphas=1.0,
            depth=depth,
            label_column="family",
            return_meta=True,
        )
        cv = knn_cv(x, y, k=K, folds=4)
        first = rows.iloc[0]
        assert (
            first["auc"] == cv.auc_mean
            and first["auc_std"] == cv.auc_std
            and first["dummy_auc"] == cv.dummy_auc_mean
        )
        ranks = size_rank(meta)
        for row in rows.iloc[1:].itertuples():
            assert row.auc == pytest.approx(
                brute_holdout_auc(x, y, ranks, row.held_out), abs=1e-12
            )
        assert (
            rows.iloc[1]["detail"] == "gpt2-0, Qwen/Qwen3-0B"
        )  # the held-out models, by name
    # the profiles are linear in relative depth: interpolation recognises every held-out size
    interp = table[(table["depth"] == "interpolate") & (table["factor"] == "size")]
    assert (interp["auc"] == 1.0).all()
    with pytest.raises(ElensError, match="depth modes"):
        depth_rescaling(family_profiles, depths="interpolate")
    with pytest.raises(ElensError, match="Unknown depth mode"):
        depth_rescaling(family_profiles, depths=["nearest"])


# ---------------------------------------------------------------------------------------------
# transfer_sweep


def test_transfer_sweep_per_model(family_profiles):
    # one model's profiles with two labels that depend on the slope, and a phrasing group
    a = linear_profiles("m", 4, 1.0, n=16, seed=1)
    b = linear_profiles("m", 4, -1.0, n=16, seed=2)
    both = Profiles.concat([a, b])
    meta = both.meta.assign(label=["up"] * 16 + ["down"] * 16)
    p = Profiles(both.entropy, both.alphas, meta)
    phrasing = [0, 1] * 16
    table = transfer_sweep([p, p], {"phrasing": phrasing}, k=K, folds=4)
    assert list(table.columns) == ["model", *TEST_COLUMNS]
    assert table["factor"].tolist() == ["cv", "phrasing", "phrasing"] * 2
    x, y = p.features(alphas=1.0), p.meta["label"].to_numpy(dtype=object)
    assert table["auc"].iloc[0] == knn_cv(x, y, k=K, folds=4).auc_mean
    for row in table.iloc[1:3].itertuples():
        assert row.auc == pytest.approx(
            brute_holdout_auc(x, y, phrasing, row.held_out), abs=1e-12
        )
    with pytest.raises(ElensError, match="one group per prompt"):
        transfer_sweep(p, {"phrasing": phrasing[:-1]}, k=K, folds=4)
    with pytest.raises(ElensError, match="dict"):
        transfer_sweep(p, phrasing, k=K, folds=4)


# ---------------------------------------------------------------------------------------------
# robustness_sweep


def test_robustness_sweep_rows_are_the_single_runs(family_profiles):
    table = robustness_sweep(
        family_profiles, k=K, folds=4, windows=2,
        cv_seeds=[0, 42], ks=[1, 3, 5], aggregations=["mean", "windows", "concat"],
        orders=[1.0, 0.5, None], depths=["interpolate", "zero_pad"], scales=[False, True],
        replicates={0: family_profiles, 1: family_profiles[::-1]},
    )  # fmt: skip
    assert table["factor"].tolist() == (
        ["baseline"]
        + ["CV seed"] * 2
        + ["k"] * 3
        + ["aggregation"] * 3
        + ["entropy order"] * 3
        + ["depth alignment"] * 2
        + ["scaling"] * 2
        + ["generation seed"] * 2
    )
    assert table.loc[table["factor"] == "entropy order", "setting"].tolist() == [
        "Shannon",
        "α = 0.5",
        "α ∈ {1, 0.5, ∞}",
    ]
    assert table.loc[table["factor"] == "aggregation", "setting"].tolist() == [
        "mean",
        "2 windows",
        "concat",
    ]
    base = table.iloc[0]
    x, y = profile_features(family_profiles, alphas=1.0, label_column="family")
    ref = knn_cv(x, y, k=K, folds=4)
    assert base["auc_mean"] == ref.auc_mean and base["fold_auc"] == ref.auc.tolist()
    assert base["auc_min"] == ref.auc.min() and base["auc_max"] == ref.auc.max()
    # every row with the baseline's settings has the baseline's numbers
    flagged = table[table["baseline"]]
    assert (
        len(flagged) == 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1
    )  # baseline, seed 42, k 3, mean, Shannon, interpolate, raw, replicate 0
    assert (flagged["auc_mean"] == ref.auc_mean).all()
    # the k rows are k_sweep's
    ks = k_sweep(x, y, [1, 3, 5], folds=4)
    got = table[table["factor"] == "k"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[ks.columns], ks)
    # a changed setting is the single run with that setting
    seed0 = knn_cv(x, y, k=K, folds=4, seed=0)
    assert (
        table.loc[
            (table["factor"] == "CV seed") & (table["setting"] == "0"), "auc_mean"
        ].item()
        == seed0.auc_mean
    )
    xa, _ = profile_features(family_profiles, alphas=None, label_column="family")
    assert xa.shape[1] == 3 * 9
    all_orders = table.loc[table["setting"] == "α ∈ {1, 0.5, ∞}", "auc_mean"].item()
    assert all_orders == knn_cv(xa, y, k=K, folds=4).auc_mean
    xw, _ = profile_features(family_profiles, "windows", 1.0, 2, label_column="family")
    assert (
        table.loc[table["setting"] == "2 windows", "n_features"].item()
        == xw.shape[1]
        == 18
    )
    xz, _ = profile_features(
        family_profiles, alphas=1.0, depth="zero_pad", label_column="family"
    )
    assert (
        table.loc[table["setting"] == "zero-padding", "auc_mean"].item()
        == knn_cv(xz, y, k=K, folds=4).auc_mean
    )
    # a replicate of other profiles is scored on them; its samples come in another order here
    rev = table[
        (table["factor"] == "generation seed") & (table["setting"] == "1")
    ].iloc[0]
    xr, yr = profile_features(family_profiles[::-1], alphas=1.0, label_column="family")
    assert (
        not rev["baseline"] and rev["auc_mean"] == knn_cv(xr, yr, k=K, folds=4).auc_mean
    )


def test_robustness_sweep_errors(family_profiles):
    with pytest.raises(ElensError, match="list of values"):
        robustness_sweep(family_profiles, k=K, folds=4, ks=5)
    with pytest.raises(ElensError, match="windows=8 does not fit"):
        robustness_sweep(family_profiles, k=K, folds=4, aggregations=["windows"])
    with pytest.raises(ElensError, match="alpha=2.0 was not computed"):
        robustness_sweep(family_profiles, k=K, folds=4, orders=[2.0])
    with pytest.raises(ElensError, match="neighbours is more than"):
        robustness_sweep(family_profiles, k=K, folds=4, ks=[500])


def test_stratified_folds_are_the_papers():
    # the CV rows above rely on knn_cv's folds being StratifiedKFold(shuffle, seed 42)
    x, y = blobs(seed=4)
    res = knn_cv(x, y, k=K, folds=4)
    splits = StratifiedKFold(4, shuffle=True, random_state=42).split(x, y)
    for auc, (train, test) in zip(res.auc, splits):
        _, codes = np.unique(y, return_inverse=True)
        proba = brute_knn(x[train], codes[train], x[test], K, 3)[0]
        ref = np.mean(
            [
                pair_auc(proba[codes[test] == c, c], proba[codes[test] != c, c])
                for c in range(3)
            ]
        )
        assert auc == pytest.approx(ref, abs=1e-12)
