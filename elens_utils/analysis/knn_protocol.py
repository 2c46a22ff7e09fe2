"""The paper's kNN protocol: stratified folds, the kNN and its dummy baseline, ROC-AUC, the
paired t-test and the permutation test (the features come from :mod:`~elens_utils.analysis.features`).

Protocol (the one of the paper's public code, done here with scikit-learn):

* **Features.** One row per generation, ``[N, F]``: an aggregation of the entropy profile
  (:meth:`~elens_utils.entropy.profiles.Profiles.features`: the mean over generated tokens for model families and task types,
  8 token windows of Renyi orders 0.5/1/5 for output formats). Models of different depth are
  first put on one layer axis (:func:`~elens_utils.analysis.features.profile_features`): linear interpolation on relative depth
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

import numbers
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, permutation_test_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from elens_utils.core.checks import positive_int
from elens_utils.core.errors import ElensError

#: Default number of neighbours (the paper's summary says "3 or 11"; its code used 29 for tasks).
DEFAULT_K = 11
#: The k values of :func:`k_sweep` by default (those the paper's code and summary used).
DEFAULT_KS = (1, 3, 5, 7, 11, 29)


# --------------------------------------------------------------------------------------------
# validation


def check_features(features: ArrayLike) -> np.ndarray:
    """The feature matrix as ``[N, F]`` float64, checked: two dimensions, at least one sample and
    one feature, every value finite (an :class:`~elens_utils.core.errors.ElensError` says what is
    wrong and where)."""
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


def check_labels(labels: ArrayLike, n: int, name: str = "labels") -> tuple[np.ndarray, np.ndarray]:
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


def check_xy(features: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X [N, F], classes [C], codes [N])``: :func:`check_features` and :func:`check_labels`, and
    at least two classes (what every classifier here needs)."""
    x = check_features(features)
    classes, y = check_labels(labels, x.shape[0])
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


def knn_classifier(k: int, scale: bool) -> ClassifierMixin:
    """The protocol's unfitted kNN: ``k`` neighbours, Euclidean, uniform votes, after a
    :class:`~sklearn.preprocessing.StandardScaler` when ``scale``."""
    knn = KNeighborsClassifier(n_neighbors=k, metric="euclidean", weights="uniform")
    return make_pipeline(StandardScaler(), knn) if scale else knn


def roc_auc(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
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


def _fold_stats(field: str, what: str, note: str = "") -> tuple[property, property]:
    """Two read-only float properties over the folds of the ``[folds]`` array ``field``: its mean
    and its population standard deviation (``ddof = 0``); ``what`` names it in their docs, and
    ``note`` is added to the mean's."""

    def mean(self: CVResult) -> float:
        return float(np.mean(getattr(self, field)))

    def std(self: CVResult) -> float:
        return float(np.std(getattr(self, field)))

    mean.__doc__ = f"Mean of {what} over the folds{note}."
    std.__doc__ = f"Standard deviation (ddof = 0) of {what} over the folds."
    return property(mean), property(std)


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

    auc_mean, auc_std = _fold_stats("auc", "the kNN ROC-AUC", " (the paper's headline number)")
    accuracy_mean, accuracy_std = _fold_stats("accuracy", "the kNN accuracy")
    dummy_auc_mean, dummy_auc_std = _fold_stats("dummy_auc", "the stratified dummy's ROC-AUC")
    dummy_accuracy_mean, dummy_accuracy_std = _fold_stats("dummy_accuracy", "the stratified dummy's accuracy")

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
    x, classes, y = check_xy(features, labels)
    k = positive_int(k, "k")
    folds = positive_int(folds, "folds", minimum=2)
    seed = positive_int(seed, "seed", minimum=0)
    _, splits = _cv_splits(x, y, classes, folds, seed, [k])
    n_classes = len(classes)
    scores = {name: [] for name in ("auc", "accuracy", "dummy_auc", "dummy_accuracy")}
    for train, test in splits:
        for prefix, model in (
            ("", knn_classifier(k, scale)),
            ("dummy_", DummyClassifier(strategy="stratified", random_state=seed)),
        ):
            model.fit(x[train], y[train])
            proba = model.predict_proba(x[test])
            scores[f"{prefix}auc"].append(roc_auc(y[test], proba, n_classes))
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
    x, classes, y = check_xy(features, labels)
    k = positive_int(k, "k")
    folds = positive_int(folds, "folds", minimum=2)
    seed = positive_int(seed, "seed", minimum=0)
    n_permutations = positive_int(n_permutations, "n_permutations")
    cv, _ = _cv_splits(x, y, classes, folds, seed, [k])
    score, null, pvalue = permutation_test_score(
        knn_classifier(k, scale),
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
    x, classes, y = check_xy(features, labels)
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
    x, classes, y = check_xy(features, labels)
    k = positive_int(k, "k")
    group_values, group_codes = check_labels(groups, x.shape[0], name="groups")
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
    model = knn_classifier(k, scale).fit(x[train], y[train])
    proba = model.predict_proba(x[test])  # columns: train_classes, in order
    y_test = np.searchsorted(train_classes, y[test])  # codes among the training classes
    if len(test_classes) == len(train_classes):
        return roc_auc(y_test, proba, len(train_classes))
    present = np.unique(y_test)  # one-vs-rest over the classes the test rows hold
    return float(np.mean([roc_auc_score(y_test == c, proba[:, c]) for c in present]))
