"""The paper's classifiers on entropy-profile features: kNN in cross-validation, with ROC-AUC.

Protocol (the one of the paper's public code, done here with scikit-learn):

* **Features.** One row per generation, ``[N, F]``: an aggregation of the entropy profile
  (:meth:`Profiles.features`: the mean over generated tokens for model families and task types,
  8 token windows of Renyi orders 0.5/1/5 for output formats). Models of different depth are
  first put on one layer axis (:func:`profile_features`): linear interpolation on relative depth
  (recommended) or zero-padding (what the paper's code did).
* **Classifier.** k-nearest neighbours, Euclidean distance, uniform votes
  (:class:`sklearn.neighbors.KNeighborsClassifier`), optionally after a per-fold
  :class:`~sklearn.preprocessing.StandardScaler` (``scale=True``; the paper did not scale).
  The paper's code used k = 29 (task types) and 3 / 5 / 7 (output formats); its summary
  says 3 or 11. :func:`k_sweep` shows how much the choice matters.
* **Cross-validation.** ``StratifiedKFold(folds=10, shuffle=True, random_state=42)``. In every
  fold the kNN and a baseline ``DummyClassifier(strategy="stratified", random_state=seed)``
  (random labels drawn with the training class frequencies) are fitted on the training part
  and scored on the held-out part: accuracy, and ROC-AUC from ``predict_proba``.
* **Significance.** A paired t-test across folds (:func:`scipy.stats.ttest_rel`, two-sided) of
  the kNN AUC against the baseline AUC, as in the paper's code; :func:`permutation_test` gives
  the assumption-free alternative (labels permuted, the whole CV re-run each time).

Why ROC-AUC. The kNN's ``predict_proba`` is the fraction of the k neighbours in each class; the
AUC is the probability that a random member of a class gets a higher score for that class than a
random non-member (ties count one half). It needs no decision threshold, does not move with
class imbalance, and its chance level is 0.5 whatever the number of classes, while chance
accuracy is 1/C for balanced classes and the majority share otherwise. For two classes it is the
AUC of the second class of the sorted labels (``classes[1]``, the "positive" one; the AUC of the
other is the same number). For C > 2 classes it is the one-vs-rest macro average:
``roc_auc_score(y, proba, multi_class="ovr", average="macro")``, the mean over classes of
"this class against all the others".

What "AUC above 90%" in the paper means: the kNN's **mean ROC-AUC over the 10 folds** is above
0.90 (one-vs-rest macro for the three task types and the three output formats, and for model
families), against a stratified dummy near 0.5. It is not an accuracy: a kNN can reach an AUC
of 0.9 with a visibly lower accuracy, so report both (:meth:`CVResult.summary` does). A kNN
score takes only k + 1 values, so its ROC curve has few steps; with k = 1 the AUC is the
balanced accuracy of the binary case.

Everything here is numpy / pandas / scikit-learn / scipy; torch is not needed.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from sklearn.base import ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.dummy import DummyClassifier
from sklearn.manifold import TSNE
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, permutation_test_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from elens_utils.core.checks import positive_int
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles

__all__ = [
    "CVResult",
    "knn_cv",
    "permutation_test",
    "k_sweep",
    "holdout_group_auc",
    "embed_2d",
    "profile_features",
    "family_of",
    "DEFAULT_K",
    "DEFAULT_KS",
    "TEST_COLUMNS", "size_rank", "holdout_sweep", "depth_rescaling", "transfer_sweep", "robustness_sweep",
]

#: Default number of neighbours (the paper's summary says "3 or 11"; its code used 29 for tasks).
DEFAULT_K = 11
#: The k values of :func:`k_sweep` by default (those the paper's code and summary used).
DEFAULT_KS = (1, 3, 5, 7, 11, 29)

_DEPTH_MODES = ("raw", "interpolate", "zero_pad")
_EMBED_METHODS = ("tsne", "pca")


# --------------------------------------------------------------------------------------------
# validation


def _check_features(features: ArrayLike) -> np.ndarray:
    """``[N, F]`` float64, finite."""
    try:
        x = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ElensError(
            f"features must be a numeric [N, F] array (one row per sample); could not convert "
            f"it to numbers ({err})."
        ) from err
    if x.ndim != 2:
        hint = " For a single feature use features.reshape(-1, 1)." if x.ndim == 1 else ""
        raise ElensError(
            f"features must be a 2-d [N, F] array (samples x features); got shape "
            f"{tuple(x.shape)}.{hint}"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ElensError(f"features of shape {tuple(x.shape)} hold no samples or no features.")
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        kind = "NaN" if np.isnan(x).any() else "infinite"
        raise ElensError(
            f"features contain {kind} values in {len(rows)} row(s) (rows {shown}): drop those "
            "samples (or fix the profiles they come from) before classifying."
        )
    return x


def _check_labels(labels: ArrayLike, n: int, name: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """``(classes [C], codes [N])``: the sorted distinct labels and each sample's class index."""
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise ElensError(
            f"{name} must be a sequence with one entry per sample; got {type(labels).__name__} "
            f"{labels!r}."
        )
    series = pd.Series(labels.tolist() if isinstance(labels, pd.Series) else list(labels))
    if len(series) != n:
        raise ElensError(
            f"{name} has {len(series)} entries for {n} feature rows: give one label per row, "
            "in the same order."
        )
    missing = series.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ElensError(
            f"{name} is missing (None/NaN) for {len(rows)} sample(s), first at row {rows[0]}: "
            "drop unlabelled samples or choose another label column."
        )
    values = np.empty(len(series), dtype=object)  # object: 1 and "1" stay different (no str cast)
    values[:] = series.tolist()
    if any(isinstance(v, (list, tuple, np.ndarray)) for v in values):
        raise ElensError(f"{name} must be one scalar per sample, not a sequence per sample.")
    try:
        classes, codes = np.unique(values, return_inverse=True)
    except TypeError as err:
        raise ElensError(
            f"{name} mix types that cannot be sorted ({err}): give labels of one type "
            "(all strings or all numbers)."
        ) from err
    return classes, codes.reshape(-1).astype(np.int64)


def _check_xy(features: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _check_features(features)
    classes, y = _check_labels(labels, x.shape[0])
    if len(classes) < 2:
        raise ElensError(
            f"All {x.shape[0]} samples have the same label {classes[0]!r}: a classifier needs at "
            "least two classes (check the label column)."
        )
    return x, classes, y


def _cv_splits(
    x: np.ndarray, y: np.ndarray, classes: np.ndarray, folds: int, seed: int, ks: Sequence[int]
) -> tuple[StratifiedKFold, list[tuple[np.ndarray, np.ndarray]]]:
    """The stratified folds, after checking that every class and every k fits in them."""
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < folds:
        small = [f"{classes[c]!r} ({counts[c]})" for c in np.flatnonzero(counts < folds)]
        raise ElensError(
            f"{folds}-fold stratified CV needs at least {folds} samples of every class; "
            f"{', '.join(small)} have fewer: lower `folds` (to at most {counts.min()}) or add "
            "samples of those classes."
        )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(cv.split(x, y))
    smallest_train = min(len(train) for train, _ in splits)
    too_big = [k for k in ks if k > smallest_train]
    if too_big:
        raise ElensError(
            f"k = {too_big[0]} neighbours is more than the {smallest_train} samples of the "
            f"smallest training fold ({x.shape[0]} samples, {folds} folds): use k <= "
            f"{smallest_train}, fewer folds, or more samples."
        )
    return cv, splits


def _knn(k: int, scale: bool) -> ClassifierMixin:
    knn = KNeighborsClassifier(n_neighbors=k, metric="euclidean", weights="uniform")
    return make_pipeline(StandardScaler(), knn) if scale else knn


def _auc(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """ROC-AUC of class-probability columns ``0..n_classes-1`` (codes), binary or OvR macro."""
    if n_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    return float(
        roc_auc_score(
            y_true, proba, multi_class="ovr", average="macro", labels=np.arange(n_classes)
        )
    )


# --------------------------------------------------------------------------------------------
# cross-validated kNN


@dataclass(frozen=True, eq=False)
class CVResult:
    """Per-fold scores of a kNN and its stratified dummy baseline (:func:`knn_cv`).

    Attributes:
        classes: the C distinct labels, sorted; for C = 2 the AUC is that of ``classes[1]``.
        k, folds, seed, scale: the settings used.
        n_samples, n_features: N and F of the feature matrix.
        auc, accuracy: ``[folds]`` kNN ROC-AUC (binary, or one-vs-rest macro) and accuracy.
        dummy_auc, dummy_accuracy: ``[folds]`` the same for the stratified dummy.
        t_statistic, p_value: paired two-sided t-test of ``auc`` against ``dummy_auc`` over the
            folds (NaN when the two agree in every fold, so that the difference has no spread).

    Means and standard deviations are properties (``auc_mean``, ``auc_std``, ...); the standard
    deviation is the population one (``ddof = 0``, ``numpy.std``), as the paper's code printed.
    """

    classes: tuple[Hashable, ...]
    k: int
    folds: int
    seed: int
    scale: bool
    n_samples: int
    n_features: int
    auc: np.ndarray
    accuracy: np.ndarray
    dummy_auc: np.ndarray
    dummy_accuracy: np.ndarray
    t_statistic: float
    p_value: float

    @property
    def n_classes(self) -> int:
        """C, the number of classes."""
        return len(self.classes)

    @property
    def auc_mean(self) -> float:
        """Mean kNN ROC-AUC over the folds (the paper's headline number)."""
        return float(np.mean(self.auc))

    @property
    def auc_std(self) -> float:
        return float(np.std(self.auc))

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.accuracy))

    @property
    def accuracy_std(self) -> float:
        return float(np.std(self.accuracy))

    @property
    def dummy_auc_mean(self) -> float:
        return float(np.mean(self.dummy_auc))

    @property
    def dummy_auc_std(self) -> float:
        return float(np.std(self.dummy_auc))

    @property
    def dummy_accuracy_mean(self) -> float:
        return float(np.mean(self.dummy_accuracy))

    @property
    def dummy_accuracy_std(self) -> float:
        return float(np.std(self.dummy_accuracy))

    def to_frame(self, per_fold: bool = False) -> pd.DataFrame:
        """A table: one summary row (default), or one row per fold with ``per_fold=True``.

        Summary columns: ``k, folds, n_samples, n_features, n_classes, scale, auc_mean, auc_std,
        accuracy_mean, accuracy_std, dummy_auc_mean, dummy_auc_std, dummy_accuracy_mean,
        dummy_accuracy_std, t_statistic, p_value``. Rows of several results concatenate with
        :func:`pandas.concat`. Per-fold columns: ``fold, auc, accuracy, dummy_auc,
        dummy_accuracy``.
        """
        if per_fold:
            return pd.DataFrame(
                {
                    "fold": np.arange(self.folds),
                    "auc": self.auc,
                    "accuracy": self.accuracy,
                    "dummy_auc": self.dummy_auc,
                    "dummy_accuracy": self.dummy_accuracy,
                }
            )
        row = {
            "k": self.k,
            "folds": self.folds,
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "scale": self.scale,
        }
        for name in ("auc", "accuracy", "dummy_auc", "dummy_accuracy"):
            row[f"{name}_mean"] = getattr(self, f"{name}_mean")
            row[f"{name}_std"] = getattr(self, f"{name}_std")
        row["t_statistic"] = self.t_statistic
        row["p_value"] = self.p_value
        return pd.DataFrame([row])

    def summary(self) -> str:
        """One line: AUC and accuracy (mean +- std over folds), the baseline, the p-value."""
        return (
            f"kNN k={self.k}, {self.folds}-fold CV, N={self.n_samples}, {self.n_classes} classes: "
            f"AUC {self.auc_mean:.3f} +- {self.auc_std:.3f} (dummy {self.dummy_auc_mean:.3f} +- "
            f"{self.dummy_auc_std:.3f}, paired t-test p = {self.p_value:.2g}); accuracy "
            f"{self.accuracy_mean:.3f} +- {self.accuracy_std:.3f} (dummy "
            f"{self.dummy_accuracy_mean:.3f})"
        )

    def __repr__(self) -> str:
        return f"CVResult({self.summary()})"


def knn_cv(
    features: ArrayLike,
    labels: ArrayLike,
    *,
    k: int = DEFAULT_K,
    folds: int = 10,
    seed: int = 42,
    scale: bool = False,
) -> CVResult:
    """kNN ROC-AUC and accuracy in stratified k-fold CV, against a stratified dummy.

    Args:
        features: ``[N, F]`` feature matrix (finite numbers).
        labels: ``[N]`` class labels (strings or numbers, at least two distinct values).
        k: number of neighbours (Euclidean, uniform votes).
        folds: number of folds of ``StratifiedKFold(folds, shuffle=True, random_state=seed)``.
        seed: seed of the fold shuffling and of the dummy baseline (the same in every fold, as
            the paper's code did).
        scale: standardise the features (``StandardScaler`` fitted on each training fold).

    Returns:
        A :class:`CVResult` with ``[folds]`` arrays of AUC and accuracy for the kNN and the
        dummy, and the paired t-test p-value of kNN AUC vs dummy AUC.

    Raises:
        ElensError: for a malformed or non-finite feature matrix, labels of the wrong length or
            with missing values, a single class, a class with fewer than ``folds`` samples, or
            ``k`` larger than a training fold.
    """
    x, classes, y = _check_xy(features, labels)
    k = positive_int(k, "k")
    folds = positive_int(folds, "folds", minimum=2)
    seed = positive_int(seed, "seed", minimum=0)
    _, splits = _cv_splits(x, y, classes, folds, seed, [k])
    n_classes = len(classes)
    scores = {name: [] for name in ("auc", "accuracy", "dummy_auc", "dummy_accuracy")}
    for train, test in splits:
        for prefix, model in (
            ("", _knn(k, scale)),
            ("dummy_", DummyClassifier(strategy="stratified", random_state=seed)),
        ):
            model.fit(x[train], y[train])
            proba = model.predict_proba(x[test])
            scores[f"{prefix}auc"].append(_auc(y[test], proba, n_classes))
            scores[f"{prefix}accuracy"].append(accuracy_score(y[test], model.predict(x[test])))
    arrays = {name: np.asarray(v, dtype=np.float64) for name, v in scores.items()}
    with warnings.catch_warnings():  # identical AUCs in every fold: scipy warns and gives NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_rel(arrays["auc"], arrays["dummy_auc"])
    return CVResult(
        classes=tuple(c.item() if hasattr(c, "item") else c for c in classes),
        k=k,
        folds=folds,
        seed=seed,
        scale=bool(scale),
        n_samples=x.shape[0],
        n_features=x.shape[1],
        t_statistic=float(test.statistic),
        p_value=float(test.pvalue),
        **arrays,
    )


def permutation_test(
    features: ArrayLike,
    labels: ArrayLike,
    *,
    k: int = DEFAULT_K,
    folds: int = 10,
    seed: int = 42,
    n_permutations: int = 200,
    scale: bool = False,
) -> tuple[float, float, np.ndarray]:
    """Label-permutation test of the cross-validated kNN ROC-AUC.

    :func:`sklearn.model_selection.permutation_test_score` with the folds of :func:`knn_cv`
    and ROC-AUC scoring (``"roc_auc"`` for two classes, ``"roc_auc_ovr"``, macro, for more):
    the labels are shuffled ``n_permutations`` times (seeded by ``seed``) and the whole CV is
    re-run on each shuffle. ``score`` equals ``knn_cv(...).auc_mean`` for the same arguments.
    The p-value is ``(1 + #{null >= score}) / (1 + n_permutations)``, so it is never below
    ``1 / (n_permutations + 1)`` (about 0.005 with the default 200). Cost: ``n_permutations``
    times a full CV (on 2400 samples, 10 folds, k = 29: about 0.5-1 s per permutation on one
    CPU core).

    Returns:
        ``(score, p_value, null_scores)``: the mean AUC over folds on the true labels, the
        permutation p-value and the ``[n_permutations]`` mean AUCs on shuffled labels.

    Raises:
        ElensError: as :func:`knn_cv`, and for ``n_permutations < 1``.
    """
    x, classes, y = _check_xy(features, labels)
    k = positive_int(k, "k")
    folds = positive_int(folds, "folds", minimum=2)
    seed = positive_int(seed, "seed", minimum=0)
    n_permutations = positive_int(n_permutations, "n_permutations")
    cv, _ = _cv_splits(x, y, classes, folds, seed, [k])
    score, null, pvalue = permutation_test_score(
        _knn(k, scale),
        x,
        y,
        cv=cv,
        n_permutations=n_permutations,
        random_state=seed,
        scoring="roc_auc" if len(classes) == 2 else "roc_auc_ovr",
    )
    return float(score), float(pvalue), np.asarray(null, dtype=np.float64)


def k_sweep(
    features: ArrayLike,
    labels: ArrayLike,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    folds: int = 10,
    seed: int = 42,
    scale: bool = False,
) -> pd.DataFrame:
    """:func:`knn_cv` for each k in ``ks``, on the same folds: one summary row per k.

    Returns:
        A DataFrame with the columns of :meth:`CVResult.to_frame` (``k``, ``auc_mean``,
        ``auc_std``, ``accuracy_mean``, ``dummy_auc_mean``, ``p_value``, ...), one row per k in
        the order given.

    Raises:
        ElensError: as :func:`knn_cv` (every k is checked before any is run), or for an
            empty ``ks``.
    """
    if isinstance(ks, (numbers.Integral, str)) or not len(ks):
        raise ElensError(f"ks must be a non-empty sequence of neighbour counts; got {ks!r}.")
    ks = [positive_int(k, "each k in ks") for k in ks]
    x, classes, y = _check_xy(features, labels)
    folds = positive_int(folds, "folds", minimum=2)
    seed = positive_int(seed, "seed", minimum=0)
    _cv_splits(x, y, classes, folds, seed, ks)
    rows = [knn_cv(x, labels, k=k, folds=folds, seed=seed, scale=scale).to_frame() for k in ks]
    return pd.concat(rows, ignore_index=True)


def holdout_group_auc(
    features: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    test_group: Hashable,
    *,
    k: int = DEFAULT_K,
    scale: bool = False,
) -> float:
    """ROC-AUC of a kNN trained on every group but ``test_group`` and tested on that group.

    The depth-rescaling test: with labels = model family and groups = model size (say small /
    medium / large of each family), train on two sizes of every family and ask whether the
    held-out size is recognised. For two classes the AUC is that of ``classes[1]`` (sorted);
    for more, the one-vs-rest macro AUC. If the test group holds only some of the training
    classes (at least two), the one-vs-rest AUC is averaged over the classes it holds.

    Args:
        features: ``[N, F]``; labels: ``[N]``; groups: ``[N]`` group of each row.
        test_group: the group held out for testing (must occur in ``groups``).
        k: number of neighbours; scale: standardise (fitted on the training rows).

    Raises:
        ElensError: for an unknown ``test_group``, no training rows, a test class that is
            absent from training, fewer than two classes among the test rows,
            ``k`` above the number of training rows, or the input errors of :func:`knn_cv`.
    """
    x, classes, y = _check_xy(features, labels)
    k = positive_int(k, "k")
    group_values, group_codes = _check_labels(groups, x.shape[0], name="groups")
    matches = [i for i, g in enumerate(group_values) if g == test_group]
    if not matches:
        raise ElensError(
            f"test_group {test_group!r} does not occur in groups; the groups are "
            f"{[g.item() if hasattr(g, 'item') else g for g in group_values]}."
        )
    is_test = group_codes == matches[0]
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if not len(train):
        raise ElensError(
            f"Every row is in test_group {test_group!r}: nothing is left to train on; give "
            "rows of other groups."
        )
    train_classes, test_classes = np.unique(y[train]), np.unique(y[test])
    absent = [classes[c] for c in test_classes if c not in train_classes]
    if absent:
        raise ElensError(
            f"Class(es) {[str(c) for c in absent]} occur in test_group {test_group!r} but in no "
            "other group, so the classifier never sees them in training: every class needs "
            "training rows outside the held-out group."
        )
    # (at least two training classes now: labels hold two, and none is only in the test rows)
    if len(test_classes) < 2:
        raise ElensError(
            f"test_group {test_group!r} holds only the class {classes[test_classes[0]]!r}: an "
            "AUC needs at least two classes among the test rows."
        )
    if k > len(train):
        raise ElensError(
            f"k = {k} neighbours is more than the {len(train)} training rows: use k <= "
            f"{len(train)}."
        )
    model = _knn(k, scale).fit(x[train], y[train])
    proba = model.predict_proba(x[test])  # columns: train_classes, in order
    y_test = np.searchsorted(train_classes, y[test])  # codes among the training classes
    if len(test_classes) == len(train_classes):
        return _auc(y_test, proba, len(train_classes))
    present = np.unique(y_test)  # one-vs-rest over the classes the test rows hold
    return float(np.mean([roc_auc_score(y_test == c, proba[:, c]) for c in present]))


# --------------------------------------------------------------------------------------------
# 2-d embedding


def embed_2d(
    features: ArrayLike,
    method: Literal["tsne", "pca"] = "tsne",
    *,
    perplexity: float = 20.0,
    seed: int = 0,
    standardize: bool = False,
) -> np.ndarray:
    """A 2-d embedding ``[N, 2]`` (float64) of the feature rows, for scatter plots.

    ``"tsne"``: :class:`sklearn.manifold.TSNE` with PCA initialisation and the "auto" learning
    rate, as in the paper's family plot (perplexity 20). t-SNE needs ``perplexity < N``: a
    larger one is clipped to ``N - 1`` (for small N, where every point is then a neighbour of
    every other). ``"pca"``: the first two principal components. ``standardize`` scales every
    feature to zero mean and unit variance first (useful when Renyi orders of different range
    are mixed). Deterministic for a given ``seed``.

    Raises:
        ElensError: for an unknown method, non-finite features, fewer than 2 samples, a
            non-positive perplexity, or (PCA) fewer than 2 features.
    """
    if method not in _EMBED_METHODS:
        raise ElensError(f"Unknown embedding method {method!r}: use one of {list(_EMBED_METHODS)}.")
    x = _check_features(features)
    n = x.shape[0]
    seed = positive_int(seed, "seed", minimum=0)
    if n < 2:
        raise ElensError(f"A 2-d embedding needs at least 2 samples; got {n}.")
    if standardize:
        x = StandardScaler().fit_transform(x)
    if method == "pca":
        if x.shape[1] < 2:
            raise ElensError(
                f"PCA to 2 dimensions needs at least 2 features; got {x.shape[1]} (plot the "
                "feature itself instead)."
            )
        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float64)
    try:
        perplexity = float(perplexity)
    except (TypeError, ValueError) as err:
        raise ElensError(f"perplexity must be a positive number; got {perplexity!r}.") from err
    if not perplexity > 0 or math.isinf(perplexity):
        raise ElensError(f"perplexity must be a positive number; got {perplexity}.")
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, n - 1.0),
        init="pca",
        learning_rate="auto",
        random_state=seed,
    )
    # One OpenMP thread: once torch has run in the process, its own libgomp threads spin-wait
    # beside scikit-learn's, and a 48-point t-SNE took a minute on 2 cores instead of 0.2 s.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return tsne.fit_transform(x).astype(np.float64)


# --------------------------------------------------------------------------------------------
# from profiles to (X, y)

#: (pattern on the lowercased last path component of a model name, family); first match wins.
_FAMILY_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), f)
    for p, f in (
        (r"^gpt2(-|$)", "gpt2"),  # gpt2, gpt2-medium/-large/-xl (openai-community/...)
        (r"^(meta-)?llama-?3([.-]|$)", "llama3"),  # Llama-3.2-1B(-Instruct), Meta-Llama-3-8B
        (r"^(meta-)?llama-?2([.-]|$)", "llama2"),
        (r"^gemma-?2-", "gemma2"),  # gemma-2-2b-it, gemma-2-9b (not gemma-2b: Gemma 1)
        (r"^gemma-?3-", "gemma3"),  # gemma-3-270m, real/gemma3-270m, gemma-3-270m-q4_k_m.gguf
        (r"^gemma-\d", "gemma"),  # gemma-2b, gemma-7b
        (r"^qwen3([.-]|$)", "qwen3"),  # Qwen3-1.7B, Qwen3-4B, Qwen3-8B
        (r"^qwen2\.5([.-]|$)", "qwen2.5"),
        (r"^qwen2([.-]|$)", "qwen2"),
        (r"^pythia([.-]|$)", "pythia"),  # EleutherAI/pythia-70m ... pythia-12b(-deduped)
        (r"^opt-", "opt"),
        (r"^mistral-", "mistral"),
        (r"^phi-?3([.-]|$)", "phi3"),
        (r"^smollm2([.-]|$)", "smollm2"),  # SmolLM2-135M-Instruct, real/smollm2-135m-instruct
    )
)
_TINY_NAME = re.compile(r"^tiny/(?P<arch>[a-z0-9_]+?)(?:-\d+L)?$")
_ZOO_NAME = re.compile(r"^(?P<kind>zoo|untrained)/(?P<family>[a-z0-9]+)-\d+L$")


def family_of(model_name: str) -> str:
    """The model family of a Hub id, local path or embedded name (for ``label_column="family"``).

    Recognised (case-insensitive, on the last path component, so ``openai-community/gpt2-xl``
    and ``/models/gpt2-xl`` agree): ``gpt2*`` -> ``"gpt2"``; ``Llama-3*`` / ``Meta-Llama-3*`` ->
    ``"llama3"`` (``Llama-2*`` -> ``"llama2"``); ``gemma-2-*`` -> ``"gemma2"`` (``gemma-3-*`` ->
    ``"gemma3"``, Gemma 1's ``gemma-2b`` / ``gemma-7b`` -> ``"gemma"``); ``Qwen3*`` -> ``"qwen3"``
    (``Qwen2.5*``, ``Qwen2*`` -> ``"qwen2.5"``, ``"qwen2"``); ``pythia*`` -> ``"pythia"``; also
    ``opt-*``, ``Mistral-*``, ``Phi-3*``, ``SmolLM2*`` -> ``"smollm2"`` (the registry's real
    models ``real/smollm2-135m-instruct`` and ``real/gemma3-270m``, and their ``.gguf`` files,
    included). The project's tiny models ``tiny/ARCH-NL`` ->
    ``"tiny/ARCH"`` (all depths of one architecture form a family), the zoo's ``zoo/FAMILY-NL`` ->
    ``"zoo/FAMILY"``, and its untrained stand-ins ``untrained/FAMILY-NL`` -> ``"untrained/FAMILY"``.

    Fallback: any other name gives its own lowercased last path component (``"/ckpt/my-model/"``
    -> ``"my-model"``), i.e. every unrecognised model is a family of its own; put a ``family``
    column in the profiles' meta to group such models yourself.
    """
    if not isinstance(model_name, str) or not model_name.strip():
        raise ElensError(f"A model name must be a non-empty string; got {model_name!r}.")
    name = model_name.strip()
    tiny = _TINY_NAME.match(name)
    if tiny:
        return f"tiny/{tiny['arch']}"
    zoo = _ZOO_NAME.match(name)
    if zoo:
        return f"{zoo['kind']}/{zoo['family']}"
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    for pattern, family in _FAMILY_PATTERNS:
        if pattern.search(base):
            return family
    return base


def _align_depth(
    items: list[Profiles], depth: str, grid: int | None
) -> list[Profiles]:
    """Every Profiles brought to one layer axis, as ``depth`` says."""
    axes = sorted({p.n_layers for p in items})
    if grid is not None:
        grid = positive_int(grid, "grid")
    if depth == "raw":
        if len(axes) > 1:
            raise ElensError(
                f"depth='raw' needs one layer axis, but these profiles have L = {axes}: use "
                "depth='interpolate' (linear interpolation on relative depth, recommended) or "
                "depth='zero_pad' (zero-padding, as the paper's code)."
            )
        if grid is not None and grid != axes[0]:
            raise ElensError(
                f"grid={grid} does not apply to depth='raw' (the layer axis stays L = {axes[0]}): "
                "drop grid, or use depth='interpolate' / 'zero_pad'."
            )
        return items
    if depth == "interpolate":
        n_points = axes[-1] if grid is None else grid
        return [p.resample_depth(n_points) for p in items]
    n_layers = axes[-1] if grid is None else grid
    if n_layers < axes[-1]:
        raise ElensError(
            f"depth='zero_pad' with grid={n_layers} would cut profiles of L = {axes[-1]} layers: "
            f"pad to grid >= {axes[-1]} (or leave grid=None), or use depth='interpolate'."
        )
    return [p.pad_depth(n_layers) for p in items]


def profile_features(
    profiles: Profiles | Sequence[Profiles],
    aggregation: str = "mean",
    alphas: float | Sequence[float] | None = None,
    windows: int = 8,
    *,
    depth: Literal["raw", "interpolate", "zero_pad"] = "interpolate",
    grid: int | None = None,
    label_column: str = "label",
    return_meta: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Features ``X [N, F]`` and labels ``y [N]`` of one or several :class:`Profiles`.

    Several Profiles (for instance one per model, of different depth) are brought to one layer
    axis, concatenated in the order given, and aggregated with
    :meth:`Profiles.features` ``(aggregation, alphas, windows)``.

    Args:
        profiles: a Profiles, or a sequence of them (same number of tokens T and alphas).
        aggregation, alphas, windows: as :meth:`Profiles.features`.
        depth: how models of different depth share the layer axis:

            * ``"interpolate"`` (default): :meth:`Profiles.resample_depth` onto ``grid`` points
              of relative depth ``j / grid`` (default: the longest layer axis). A single model's
              raw profiles on their own depth are unchanged.
            * ``"zero_pad"``: :meth:`Profiles.pad_depth` to ``grid`` entries (default: the
              longest layer axis), zeros after each model's last block (the paper's code).
            * ``"raw"``: the layer axis as it is; every input must have the same length L.
        grid: the common layer-axis length for ``"interpolate"`` / ``"zero_pad"``.
        label_column: the meta column giving ``y``: ``"label"``, ``"model"``, any other meta
            column, or ``"family"`` (the meta column if present, else :func:`family_of` of the
            ``model`` column).
        return_meta: also return the concatenated ``meta`` (row ``i`` describes ``X[i]``), for
            instance for the ``groups`` of :func:`holdout_group_auc`.

    Returns:
        ``(X, y)`` or ``(X, y, meta)``: ``X`` float64 ``[N, F]``, ``y`` an object array ``[N]``.

    Raises:
        ElensError: for an unknown depth mode, profiles that cannot share a layer axis in that
            mode (e.g. zero-padded ones interpolated), an unknown label column, or missing
            labels.
    """
    items = [profiles] if isinstance(profiles, Profiles) else list(profiles)
    if not items:
        raise ElensError("profile_features needs at least one Profiles.")
    if not all(isinstance(p, Profiles) for p in items):
        bad = next(type(p).__name__ for p in items if not isinstance(p, Profiles))
        raise ElensError(f"profile_features takes a Profiles or a list of them; got a {bad}.")
    if depth not in _DEPTH_MODES:
        raise ElensError(f"Unknown depth mode {depth!r}: use one of {list(_DEPTH_MODES)}.")
    aligned = _align_depth(items, depth, grid)
    merged = aligned[0] if len(aligned) == 1 else Profiles.concat(aligned)
    meta = merged.meta
    if not isinstance(label_column, str):
        raise ElensError(f"label_column must be a column name (str); got {label_column!r}.")
    if label_column in meta.columns:
        y = meta[label_column]
    elif label_column == "family":
        y = meta["model"].map(family_of)
    else:
        raise ElensError(
            f"No meta column {label_column!r}: use 'label', 'model', 'family' or one of "
            f"{list(meta.columns)}."
        )
    missing = y.isna().to_numpy()
    if missing.any():
        raise ElensError(
            f"meta[{label_column!r}] is missing in {int(missing.sum())} of {len(y)} rows (first "
            f"row {int(np.flatnonzero(missing)[0])}): label every profile, drop the unlabelled "
            "ones, or choose label_column='model' / 'family'."
        )
    x = merged.features(aggregation, alphas, windows)
    y_arr = np.asarray(y.tolist(), dtype=object)
    if return_meta:
        return x, y_arr, meta.copy()
    return x, y_arr


# --------------------------------------------------------------------------------------------
# depth rescaling, transfer and robustness tables (chapters "families" and "robustness")

#: Columns of the tables of :func:`holdout_sweep`, :func:`depth_rescaling` and
#: :func:`transfer_sweep` (the last two add their own leading columns).
TEST_COLUMNS = (
    "test", "factor", "held_out", "auc", "auc_std", "dummy_auc", "accuracy", "n_train", "n_test",
    "detail", "status", "note",
)  # fmt: skip


def size_rank(meta: pd.DataFrame, *, label_column: str = "family") -> np.ndarray:
    """``[N]`` int: the size rank of each row's model within its family (1 = the shallowest).

    The groups of the depth-rescaling test: hold out rank ``r`` of every family, train on the
    others. Models are ranked by their own depth ``meta.n_layers`` (kept by resampling and
    padding); models of equal depth in one family (Qwen3-4B and -8B: 36 blocks each) by their
    first row. The family is ``meta[label_column]`` when that column exists, else
    :func:`family_of` of ``meta.model``.

    Raises:
        ElensError: if ``meta`` lacks the ``model`` or ``n_layers`` column.
    """
    missing = [c for c in ("model", "n_layers") if c not in meta.columns]
    if missing:
        raise ElensError(f"size_rank needs the meta columns 'model' and 'n_layers'; {missing} missing.")
    family = meta[label_column] if label_column in meta.columns else meta["model"].map(family_of)
    models = pd.DataFrame(
        {"family": family.to_numpy(), "model": meta["model"].to_numpy(), "n_layers": meta["n_layers"].to_numpy()}
    )
    first = models.drop_duplicates("model").reset_index(drop=True)  # in order of first appearance
    first["order"] = np.arange(len(first))
    first = first.sort_values(["family", "n_layers", "order"], kind="stable")
    first["rank"] = first.groupby("family", sort=False).cumcount() + 1
    return models["model"].map(dict(zip(first["model"], first["rank"]))).to_numpy(dtype=np.int64)


def holdout_sweep(
    features: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    *,
    k: int = DEFAULT_K,
    scale: bool = False,
    factor: str = "group",
) -> pd.DataFrame:
    """:func:`holdout_group_auc` with each group held out in turn: one row per group, sorted.

    A group that cannot be scored (it holds a single class, a class no other group has, or
    leaves fewer than ``k`` training rows) gets ``status = "skipped"``, ``auc = NaN`` and the
    reason in ``note``, instead of an error: with the paper's models, the fourth size exists
    only for GPT-2.

    Returns:
        A DataFrame with the columns :data:`TEST_COLUMNS`: ``test`` (``"held out: {factor} =
        {group}"``), ``factor``, ``held_out`` (the group), ``auc``, ``auc_std`` (NaN: one split),
        ``dummy_auc`` (0.5: a label-blind score has an expected AUC of one half), ``accuracy``
        (of the kNN's votes on the held-out rows), ``n_train``, ``n_test``, ``detail`` (the
        classes of the held-out rows), ``status`` and ``note``.

    Raises:
        ElensError: for malformed features, labels or groups (as :func:`holdout_group_auc`).
    """
    x, classes, y = _check_xy(features, labels)
    k = positive_int(k, "k")
    group_values, group_codes = _check_labels(groups, x.shape[0], name="groups")
    rows = []
    for code, group in enumerate(group_values):
        group = group.item() if hasattr(group, "item") else group
        test = group_codes == code
        present = [str(c) for c in classes[np.unique(y[test])]]
        row = {
            "test": f"held out: {factor} = {group}", "factor": factor, "held_out": group,
            "auc": math.nan, "auc_std": math.nan, "dummy_auc": 0.5, "accuracy": math.nan,
            "n_train": int((~test).sum()), "n_test": int(test.sum()),
            "detail": ", ".join(present), "status": "ok", "note": "",
        }  # fmt: skip
        try:
            row["auc"] = holdout_group_auc(x, labels, group_codes, code, k=k, scale=scale)
        except ElensError as err:
            row.update(status="skipped", note=str(err))
        else:
            model = _knn(k, scale).fit(x[~test], y[~test])
            row["accuracy"] = float(accuracy_score(y[test], model.predict(x[test])))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TEST_COLUMNS))


def _cv_row(x: np.ndarray, labels: np.ndarray, *, k: int, folds: int, seed: int, scale: bool, detail: str) -> dict[str, Any]:
    res = knn_cv(x, labels, k=k, folds=folds, seed=seed, scale=scale)
    return {
        "test": f"{folds}-fold CV", "factor": "cv", "held_out": None, "auc": res.auc_mean,
        "auc_std": res.auc_std, "dummy_auc": res.dummy_auc_mean, "accuracy": res.accuracy_mean,
        "n_train": res.n_samples - res.n_samples // folds, "n_test": res.n_samples // folds,
        "detail": detail, "status": "ok", "note": f"paired t-test against the dummy: p = {res.p_value:.2g}",
    }  # fmt: skip


def depth_rescaling(
    profiles: Profiles | Sequence[Profiles],
    *,
    depths: Sequence[str] = ("interpolate", "zero_pad"),
    label_column: str = "family",
    aggregation: str = "mean",
    alphas: float | Sequence[float] | None = 1.0,
    windows: int = 8,
    grid: int | None = None,
    k: int = DEFAULT_K,
    folds: int = 10,
    seed: int = 42,
    scale: bool = False,
) -> pd.DataFrame:
    """Family identification across depths, for each way of sharing the layer axis.

    For every ``depth`` mode of :func:`profile_features` (interpolation on relative depth,
    zero-padding as the paper's code did), on the same features otherwise:

    * ``"10-fold CV"``: :func:`knn_cv` on every model (all sizes in training and test);
    * ``"held out: size r"``: the depth-rescaling test, :func:`holdout_sweep` with the groups
      :func:`size_rank`: train on every other size of each family, test on the r-th smallest
      model of each family. If profiles of one family at several sizes overlap on relative
      depth, a held-out size is recognised.

    Returns:
        One row per (depth, test): ``depth`` and the columns :data:`TEST_COLUMNS`; for the
        held-out rows ``held_out`` is the rank r and ``detail`` lists the held-out models; for
        the CV row ``auc`` / ``auc_std`` are the mean and sd over the folds, ``dummy_auc`` the
        dummy's mean, and ``n_train`` / ``n_test`` the sizes of one fold (up to one row more
        in some folds).

    Raises:
        ElensError: as :func:`profile_features` and :func:`knn_cv` (a family with fewer than
            ``folds`` samples, ``k`` too large), or for an empty or unknown ``depths``.
    """
    if isinstance(depths, str) or not len(depths):
        raise ElensError(f"depths must be a non-empty list of depth modes {list(_DEPTH_MODES)}; got {depths!r}.")
    frames = []
    for depth in depths:
        x, y, meta = profile_features(
            profiles, aggregation, alphas, windows, depth=depth, grid=grid, label_column=label_column, return_meta=True
        )
        ranks = size_rank(meta, label_column=label_column)
        cv = _cv_row(x, y, k=k, folds=folds, seed=seed, scale=scale, detail=f"{len(set(meta['model']))} models, all sizes")
        held = holdout_sweep(x, y, ranks, k=k, scale=scale, factor="size")
        for i, r in enumerate(held["held_out"]):
            names = list(dict.fromkeys(meta["model"][ranks == r]))
            extreme = " (shallowest)" if r == 1 else (" (deepest)" if r == ranks.max() else "")
            held.loc[i, "test"] = f"held out: size {r}{extreme}"
            held.loc[i, "detail"] = ", ".join(names)
        frames.append(pd.concat([pd.DataFrame([cv]), held], ignore_index=True).assign(depth=depth))
    out = pd.concat(frames, ignore_index=True)
    return out[["depth", *TEST_COLUMNS]]


def transfer_sweep(
    profiles: Profiles | Sequence[Profiles],
    groups: dict[str, ArrayLike],
    *,
    label_column: str = "label",
    aggregation: str = "mean",
    alphas: float | Sequence[float] | None = 1.0,
    windows: int = 8,
    k: int = DEFAULT_K,
    folds: int = 10,
    seed: int = 42,
    scale: bool = False,
) -> pd.DataFrame:
    """Per model: the kNN in CV, then trained on all but one prompt group and tested on it.

    The phrasing test of the task-type result: with ``groups={"phrasing": ..., "variant":
    ...}`` (columns of :func:`elens_utils.data.prompts.task_prompts`), does a classifier trained on
    one phrasing of the instructions recognise the task in the other? Each Profiles is
    classified on its own (one model), on ``profile_features(p, aggregation, alphas,
    windows, depth="raw")``.

    Args:
        profiles: one Profiles per model, each with the same N prompts in the same order.
        groups: name -> ``[N]`` group of each prompt (aligned with every Profiles' rows).

    Returns:
        One row per (model, test): ``model`` and the columns :data:`TEST_COLUMNS` (``factor``
        is ``"cv"`` or the group name).

    Raises:
        ElensError: for a group array whose length differs from a Profiles' N, and as
            :func:`knn_cv` / :func:`holdout_sweep`.
    """
    items = [profiles] if isinstance(profiles, Profiles) else list(profiles)
    if not isinstance(groups, dict):
        raise ElensError(f"groups must be a dict name -> [N] group labels; got {type(groups).__name__}.")
    frames = []
    for p in items:
        x, y = profile_features(p, aggregation, alphas, windows, depth="raw", label_column=label_column)
        model = ", ".join(dict.fromkeys(p.meta["model"]))
        rows = [pd.DataFrame([_cv_row(x, y, k=k, folds=folds, seed=seed, scale=scale, detail="all prompts")])]
        for name, values in groups.items():
            if len(values) != p.n:
                raise ElensError(
                    f"groups[{name!r}] has {len(values)} entries for the {p.n} profiles of {model}: give "
                    "one group per prompt, in the order of the prompts."
                )
            rows.append(holdout_sweep(x, y, list(values), k=k, scale=scale, factor=name))
        frames.append(pd.concat(rows, ignore_index=True).assign(model=model))
    out = pd.concat(frames, ignore_index=True)
    return out[["model", *TEST_COLUMNS]]


def _order_name(alphas: float | Sequence[float]) -> str:
    def one(a: float) -> str:
        a = float(a)
        return "Shannon" if a == 1.0 else ("α = ∞" if math.isinf(a) else f"α = {a:g}")

    if isinstance(alphas, numbers.Real):
        return one(alphas)
    items = list(alphas)
    if len(items) == 1:
        return one(items[0])
    return "α ∈ {" + ", ".join("∞" if math.isinf(float(a)) else f"{float(a):g}" for a in items) + "}"


def robustness_sweep(
    profiles: Profiles | Sequence[Profiles],
    *,
    label_column: str = "family",
    aggregation: str = "mean",
    alphas: float | Sequence[float] | None = 1.0,
    windows: int = 8,
    depth: Literal["raw", "interpolate", "zero_pad"] = "interpolate",
    k: int = DEFAULT_K,
    folds: int = 10,
    seed: int = 42,
    scale: bool = False,
    cv_seeds: Sequence[int] = (),
    ks: Sequence[int] = (),
    aggregations: Sequence[str] = (),
    orders: Sequence[float | Sequence[float] | None] = (),
    depths: Sequence[str] = (),
    scales: Sequence[bool] = (),
    replicates: dict[Any, Profiles | Sequence[Profiles]] | None = None,
    replicate_factor: str = "generation seed",
) -> pd.DataFrame:
    """How the cross-validated kNN AUC moves when one setting changes at a time.

    The baseline is :func:`knn_cv` on ``profile_features(profiles, aggregation, alphas,
    windows, depth=depth)`` with ``k``, ``folds``, ``seed`` and ``scale``. Each factor varies
    one of them over the given values, all others at the baseline:

    * ``cv_seeds``: the seed of the fold shuffling and of the dummy (``seed``);
    * ``ks``: neighbours (the rows equal :func:`k_sweep`'s);
    * ``aggregations``: ``"mean"``, ``"windows"`` (``windows`` windows), ``"concat"``;
    * ``orders``: a Renyi order, a list of orders (their features concatenated), or None
      for all the orders the profiles hold;
    * ``depths``: ``"interpolate"``, ``"zero_pad"`` (``"raw"`` for a single depth);
    * ``scales``: standardise the features (per training fold) or not;
    * ``replicates``: other profile sets of the same models (another sampling seed, another
      prompt), key -> Profiles or list of them, each scored with the baseline settings;
      the factor is named ``replicate_factor``.

    Returns:
        One row per (factor, value), factors in the order above: ``factor``, ``setting`` (a
        readable value), ``baseline`` (True where the setting is the baseline's; for
        replicates, where the profiles hold the baseline's entropies), the columns of
        :meth:`CVResult.to_frame`, ``auc_min`` / ``auc_max`` over the folds and ``fold_auc``
        (the list of per-fold AUCs).

    Raises:
        ElensError: as :func:`profile_features` and :func:`knn_cv`, checked for every value.
    """
    base = {"aggregation": aggregation, "alphas": alphas, "windows": windows, "depth": depth,
            "k": k, "folds": folds, "seed": seed, "scale": scale}  # fmt: skip
    cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def features(prof: Any, s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        key = (id(prof), s["aggregation"], repr(s["alphas"]), s["windows"], s["depth"])
        if key not in cache:
            cache[key] = profile_features(
                prof, s["aggregation"], s["alphas"], s["windows"], depth=s["depth"], label_column=label_column
            )
        return cache[key]

    def row(factor: str, setting: str, is_base: bool, prof: Any = profiles, **change: Any) -> pd.DataFrame:
        s = {**base, **change}
        x, y = features(prof, s)
        res = knn_cv(x, y, k=s["k"], folds=s["folds"], seed=s["seed"], scale=s["scale"])
        out = res.to_frame()
        out.insert(0, "baseline", bool(is_base))
        out.insert(0, "setting", setting)
        out.insert(0, "factor", factor)
        out["auc_min"], out["auc_max"] = float(res.auc.min()), float(res.auc.max())
        out["fold_auc"] = [res.auc.tolist()]
        return out

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return [float(v) for v in a] == [float(v) for v in b]
        if a is None or b is None:
            return a is b
        return float(a) == float(b) if isinstance(a, numbers.Real) and isinstance(b, numbers.Real) else a == b

    def values(given: Any, name: str) -> list:
        if isinstance(given, (str, bytes, numbers.Number)):
            raise ElensError(f"{name} must be a list of values; got {given!r}.")
        return list(given)

    rows = [row("baseline", "baseline", True)]
    for s in values(cv_seeds, "cv_seeds"):
        rows.append(row("CV seed", str(s), s == seed, seed=s))
    for kk in values(ks, "ks"):
        rows.append(row("k", str(kk), kk == k, k=kk))
    for agg in values(aggregations, "aggregations"):
        name = f"windows ({windows})" if agg == "windows" else agg
        rows.append(row("aggregation", name, agg == aggregation, aggregation=agg))
    first = profiles if isinstance(profiles, Profiles) else next(iter(profiles))
    for order in values(orders, "orders"):
        name = _order_name(first.alphas if order is None else order)
        rows.append(row("entropy order", name, same(order, alphas), alphas=order))
    for d in values(depths, "depths"):
        name = {"interpolate": "interpolation", "zero_pad": "zero-padding"}.get(d, d)
        rows.append(row("depth alignment", name, d == depth, depth=d))
    for sc in values(scales, "scales"):
        rows.append(row("scaling", "standardised" if sc else "raw entropies", bool(sc) == bool(scale), scale=bool(sc)))
    base_items = [profiles] if isinstance(profiles, Profiles) else list(profiles)
    for key, prof in (replicates or {}).items():
        items = [prof] if isinstance(prof, Profiles) else list(prof)
        is_base = len(items) == len(base_items) and all(
            a.entropy.shape == b.entropy.shape and np.array_equal(a.entropy, b.entropy) for a, b in zip(items, base_items)
        )
        rows.append(row(replicate_factor, str(key), is_base, prof=prof))
    return pd.concat(rows, ignore_index=True)
