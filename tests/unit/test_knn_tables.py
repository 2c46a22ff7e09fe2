"""knn_tables: per-model kNN tables, k capping, label profiles and window profiles, checked
against plain-numpy references (brute-force kNN and pairwise ROC-AUC in float64)."""

import numpy as np
import pandas as pd
import pytest
from helpers import brute_knn, make_profiles, pair_auc
from sklearn.model_selection import StratifiedKFold

from elens_utils import ElensError, Profiles
from elens_utils.analysis import classify, knn_tables

LABELS = ("chat", "poem", "science")


def _profiles(model: str, n_per: int, t: int, n_layers: int, alphas=(1.0,), seed: int = 0, shift: float = 0.3) -> Profiles:
    """Profiles of 3 labels x ``n_per`` prompts (label-major), two variants alternating; the
    label shifts the entropy of one block so that the classes are partly separable."""
    rng = np.random.default_rng(seed)
    n = 3 * n_per
    labels = [LABELS[i // n_per] for i in range(n)]
    entropy = rng.normal(2.0, 0.5, size=(n, t, n_layers, len(alphas)))
    for i, lab in enumerate(labels):
        entropy[i, :, LABELS.index(lab) % n_layers, :] += shift
    variants = ["base" if i % 2 == 0 else "scrambled" for i in range(n)]
    prompts = [f"prompt {i}" for i in range(n)]
    return make_profiles(entropy.astype(np.float32), model, alphas=alphas, prompt=prompts, label=labels, variant=variants)


# ---- plain references ------------------------------------------------------------------------


def _reference_cv(x, labels, k, folds=10, seed=42):
    classes, y = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
    aucs, accs = [], []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        proba = brute_knn(x[train], y[train], x[test], k, len(classes))[0]
        yt = y[test]
        aucs.append(np.mean([pair_auc(proba[yt == c, c], proba[yt != c, c]) for c in range(len(classes))]))
        accs.append(float((proba.argmax(axis=1) == yt).mean()))
    return np.array(aucs), np.array(accs)


# ---- capped_k --------------------------------------------------------------------------------


@pytest.mark.parametrize("counts,folds", [((10, 10, 10), 10), ((13, 25, 40), 10), ((7, 9, 30), 3), ((800, 800, 800), 10)])
def test_capped_k_is_the_smallest_training_class_over_the_real_folds(counts, folds):
    y = np.repeat(np.arange(len(counts)), counts)
    x = np.zeros((len(y), 1))
    brute = min(
        int(np.bincount(y[train], minlength=len(counts)).min())
        for train, _ in StratifiedKFold(folds, shuffle=True, random_state=42).split(x, y)
    )
    for k in (1, 5, 29, 10_000):
        assert knn_tables.capped_k(k, y, folds) == max(1, min(k, brute))


def test_capped_k_errors():
    with pytest.raises(ElensError, match="k must be"):
        knn_tables.capped_k(0, ["a", "b"])
    with pytest.raises(ElensError, match="folds must be"):
        knn_tables.capped_k(3, ["a", "b"], folds=1)
    with pytest.raises(ElensError, match="at least one label"):
        knn_tables.capped_k(3, [])


# ---- feature sets ----------------------------------------------------------------------------


def test_alpha_feature_sets():
    sets = knn_tables.alpha_feature_sets([0.5, 1, 5])
    assert list(sets) == ["Shannon (α = 1)", "Rényi α = 0.5", "Rényi α = 5", "all three"]
    assert sets["all three"] == (0.5, 1.0, 5.0) and sets["Rényi α = 5"] == (5.0,)
    assert list(knn_tables.alpha_feature_sets([2.0, 1.0])) == ["Shannon (α = 1)", "Rényi α = 2", "both"]
    assert knn_tables.alpha_feature_sets([1.0]) == {"Shannon (α = 1)": (1.0,)}
    with pytest.raises(ElensError, match="duplicate"):
        knn_tables.alpha_feature_sets([1.0, 1.0])


# ---- knn_by_model ----------------------------------------------------------------------------


def test_knn_by_model_matches_a_brute_force_reference():
    prof = _profiles("m4", n_per=20, t=6, n_layers=4, seed=1)
    table = knn_tables.knn_by_model(prof, ks=7)
    row = table.summary.iloc[0]
    x = prof.entropy[..., 0].astype(np.float64).mean(axis=1)  # mean over tokens, [N, L]
    auc, acc = _reference_cv(x, prof.meta["label"].to_numpy(), k=7)
    folds = table.folds
    np.testing.assert_allclose(folds["auc"], auc, atol=1e-12)
    # the brute-force argmax breaks vote ties by the first class, as scikit-learn does
    np.testing.assert_allclose(folds["accuracy"], acc, atol=1e-12)
    assert row["auc_mean"] == pytest.approx(auc.mean()) and row["auc_std"] == pytest.approx(auc.std())
    assert (row["model"], row["n_layers"], row["k"], row["n"], row["n_features"], row["n_classes"]) == ("m4", 4, 7, 60, 4, 3)
    assert row["subset"] == knn_tables.ALL_SUBSET and row["aggregation"] == "mean"


def test_knn_by_model_windows_sets_ks_and_models():
    a = _profiles("a", n_per=12, t=10, n_layers=3, alphas=(1.0, 0.5, 5.0), seed=2)
    b = _profiles("b", n_per=12, t=10, n_layers=5, alphas=(1.0, 0.5, 5.0), seed=3)
    sets = knn_tables.alpha_feature_sets([0.5, 1.0, 5.0])
    table = knn_tables.knn_by_model([a, b], feature_sets=sets, ks=[3, 5], aggregation="windows", windows=4)
    s = table.summary
    assert len(s) == 2 * 4 * 2 and list(s["model"].unique()) == ["a", "b"]
    assert list(s["features"].unique()) == list(sets)
    assert set(s["aggregation"]) == {"4 windows"}
    n_features = s.set_index(["model", "features", "k"])["n_features"]
    assert n_features[("a", "Rényi α = 0.5", 3)] == 4 * 3 and n_features[("b", "all three", 5)] == 3 * 4 * 5
    assert len(table.folds) == len(s) * 10
    # one row against knn_cv on plain-numpy windowed features: windows of np.array_split, concatenated
    h = b.entropy[..., b.alphas.index(5.0)].astype(np.float64)
    x = np.concatenate([w.mean(axis=1) for w in np.array_split(h, 4, axis=1)], axis=1)
    ref = classify.knn_cv(x, b.meta["label"].to_numpy(), k=5)
    got = table.folds[(table.folds["model"] == "b") & (table.folds["features"] == "Rényi α = 5") & (table.folds["k"] == 5)]
    np.testing.assert_allclose(got["auc"], ref.auc)
    np.testing.assert_allclose(got["dummy_auc"], ref.dummy_auc)


def test_knn_by_model_subsets_and_capping():
    prof = _profiles("m", n_per=20, t=3, n_layers=2, seed=4)
    table = knn_tables.knn_by_model(prof, ks=29, subset_column="variant")
    s = table.summary.set_index("subset")
    assert list(s.index) == ["all", "base", "scrambled"]
    assert s.loc["all", "n"] == 60 and s.loc["base", "n"] == 30
    # 20 per class overall: 20 - 2 = 18 training samples per class; 10 per class per variant: 9
    assert s.loc["all", "k"] == 18 and s.loc["base", "k"] == 9
    assert (s["k_requested"] == 29).all()
    uncapped = knn_tables.knn_by_model(prof, ks=29, cap_k=False)
    assert uncapped.summary["k"].item() == 29
    base = prof[(prof.meta["variant"] == "base").to_numpy()]
    ref = classify.knn_cv(base.features("mean"), base.meta["label"].to_numpy(), k=9)
    np.testing.assert_allclose(table.folds.loc[table.folds["subset"] == "base", "auc"], ref.auc)


def test_knn_by_model_errors():
    prof = _profiles("m", n_per=6, t=2, n_layers=2)
    with pytest.raises(ElensError, match="m, features .*at least 10 samples"):
        knn_tables.knn_by_model(prof, ks=3)
    with pytest.raises(ElensError, match="No meta column 'phrasing'"):
        knn_tables.knn_by_model(prof, subset_column="phrasing", folds=3)
    with pytest.raises(ElensError, match="not computed"):
        knn_tables.knn_by_model(prof, feature_sets={"x": (0.5,)}, folds=3)
    with pytest.raises(ElensError, match="ks is empty"):
        knn_tables.knn_by_model(prof, ks=[], folds=3)
    with pytest.raises(ElensError, match="at least one model|No profiles"):
        knn_tables.knn_by_model([])
    unlabelled = Profiles(prof.entropy, prof.alphas, prof.meta.assign(label=None))
    with pytest.raises(ElensError, match="have no 'label'"):
        knn_tables.knn_by_model(unlabelled, folds=3)


# ---- with_prompt_columns ---------------------------------------------------------------------


def test_with_prompt_columns():
    prof = _profiles("m", n_per=2, t=2, n_layers=2)
    prompts = pd.DataFrame({"prompt": prof.meta["prompt"], "phrasing": [0, 1] * 3, "kind": list("abcdef")})
    (tagged,) = knn_tables.with_prompt_columns([prof], prompts, ["phrasing", "kind"])
    assert tagged.meta["phrasing"].tolist() == [0, 1] * 3 and tagged.meta["kind"].tolist() == list("abcdef")
    np.testing.assert_array_equal(tagged.entropy, prof.entropy)
    with pytest.raises(ElensError, match="not those of these 6 prompts"):
        knn_tables.with_prompt_columns(prof, prompts.iloc[::-1], ["kind"])
    with pytest.raises(ElensError, match="no column"):
        knn_tables.with_prompt_columns(prof, prompts, ["nope"])
    with pytest.raises(ElensError, match="cannot be replaced"):
        knn_tables.with_prompt_columns(prof, prompts.assign(label="x"), ["label"])


def test_with_prompt_columns_per_model_frames():
    """A function model -> frame lines up models that read different renderings of the same rows
    (a zoo model and a real one, via data.for_model), and a single frame gives the same result
    as before, bit for bit."""
    from elens_utils.data import prompts as data

    frame = data.task_prompts("synthetic", 1)  # 24 prompts, the zoo rendering
    zoo_name, real_name = "zoo/llama-2L", "real/smollm2-135m-instruct"
    base = _profiles("x", n_per=8, t=2, n_layers=3, seed=7)
    assert base.n == len(frame)

    def as_model(name):
        meta = base.meta.assign(model=name, prompt=data.prompts_for(frame, name))
        return Profiles(base.entropy, base.alphas, meta)

    zoo, real = as_model(zoo_name), as_model(real_name)
    assert zoo.meta["prompt"].tolist() == frame["prompt"].tolist()
    assert real.meta["prompt"].tolist() != frame["prompt"].tolist()  # natural English
    # one frame for every model: the real model's profiles do not match it
    with pytest.raises(ElensError, match=f"profiles of {real_name} are not those"):
        knn_tables.with_prompt_columns([zoo, real], frame, ["variant"])
    asked = []

    def frame_of(name):
        asked.append(name)
        return data.for_model(frame, name)

    tagged = knn_tables.with_prompt_columns([zoo, real], frame_of, ["variant", "phrasing"])
    assert asked == [zoo_name, real_name]
    for p in tagged:
        assert p.meta["variant"].tolist() == frame["variant"].tolist()
        assert p.meta["phrasing"].tolist() == frame["phrasing"].tolist()
        np.testing.assert_array_equal(p.entropy, base.entropy)
    # the zoo model's result is the single frame's, meta included
    (single,) = knn_tables.with_prompt_columns([zoo], frame, ["variant", "phrasing"])
    pd.testing.assert_frame_equal(tagged[0].meta, single.meta)
    # a row subset of the frame (the real models' first stories) works the same way
    part = frame[frame["variant"] == "base"]
    sub = real[(real.meta["prompt"].isin(data.prompts_for(part, real_name))).to_numpy()]
    (t,) = knn_tables.with_prompt_columns(sub, lambda m: data.for_model(part, m), ["phrasing"])
    assert t.meta["phrasing"].tolist() == part["phrasing"].tolist()
    # errors name the model whose frame is wrong
    with pytest.raises(ElensError, match=f"prompt frame of {real_name} has no column"):
        knn_tables.with_prompt_columns(real, lambda m: data.for_model(frame, m), ["nope"])
    with pytest.raises(ElensError, match="prompt frame of zoo/llama-2L must be the DataFrame"):
        knn_tables.with_prompt_columns(zoo, lambda m: frame["prompt"], ["variant"])
    with pytest.raises(ElensError, match="one Profiles per model"):
        knn_tables.with_prompt_columns(Profiles.concat([zoo, real]), frame_of, ["variant"])


# ---- label and window frames -----------------------------------------------------------------


def test_label_depth_frame_matches_numpy():
    prof = _profiles("m", n_per=5, t=4, n_layers=3, alphas=(1.0, 2.0), seed=5)
    frame = knn_tables.label_depth_frame(prof, alpha=2.0)
    h = prof.entropy[..., 1].astype(np.float64).mean(axis=1)  # [N, L]
    labels = prof.meta["label"].to_numpy()
    assert list(frame["label"].unique()) == list(LABELS)
    for lab in LABELS:
        rows = frame[frame["label"] == lab].sort_values("layer")
        part = h[labels == lab]
        np.testing.assert_allclose(rows["entropy"], part.mean(axis=0))
        np.testing.assert_allclose(rows["sd"], part.std(axis=0, ddof=1))
        np.testing.assert_allclose(rows["centered"], part.mean(axis=0) - h.mean(axis=0))
        np.testing.assert_allclose(rows["depth"], np.arange(1, 4) / 3)
        assert (rows["n"] == 5).all()
    # balanced labels: the centred profiles average to zero at every block
    np.testing.assert_allclose(frame.groupby("layer")["centered"].mean(), 0.0, atol=1e-12)


def test_window_frame_matches_numpy():
    prof = _profiles("m", n_per=4, t=10, n_layers=3, seed=6)
    frame = knn_tables.window_frame(prof, windows=4, block=-1)
    h = prof.entropy[..., 0].astype(np.float64)[:, :, -1]  # [N, T], the last block
    w = np.stack([part.mean(axis=1) for part in np.array_split(h, 4, axis=1)], axis=1)  # [N, 4]
    labels = prof.meta["label"].to_numpy()
    for lab in LABELS:
        rows = frame[frame["label"] == lab].sort_values("window")
        np.testing.assert_allclose(rows["entropy"], w[labels == lab].mean(axis=0))
        np.testing.assert_allclose(rows["sd"], w[labels == lab].std(axis=0, ddof=1))
    assert frame["tokens"].drop_duplicates().tolist() == ["1-3", "4-6", "7-8", "9-10"]
    assert (frame["block"] == 3).all()
    first = knn_tables.window_frame(prof, windows=10, block=1)
    assert (first["block"] == 1).all() and first["tokens"].iloc[0] == "1"
    np.testing.assert_allclose(
        first[first["label"] == "chat"].sort_values("window")["entropy"],
        prof.entropy[labels == "chat", :, 0, 0].astype(np.float64).mean(axis=0),
        rtol=1e-6,
    )
    with pytest.raises(ElensError, match="does not exist"):
        knn_tables.window_frame(prof, block=4)
    with pytest.raises(ElensError, match="block must be"):
        knn_tables.window_frame(prof, block=0)
    with pytest.raises(ElensError, match="windows=11 does not fit"):
        knn_tables.window_frame(prof, windows=11)


def test_frames_reject_resampled_profiles():
    prof = _profiles("m", n_per=2, t=2, n_layers=3).resample_depth(5)
    with pytest.raises(ElensError, match="raw profiles"):
        knn_tables.label_depth_frame(prof)
    with pytest.raises(ElensError, match="raw profiles"):
        knn_tables.knn_by_model(prof)
