"""The paper's classifiers on entropy-profile features: kNN in cross-validation, with ROC-AUC.

The pieces live in :mod:`~elens_utils.analysis.knn_protocol` (the protocol: folds, the kNN and
its stratified dummy, ROC-AUC, the paired t-test and the permutation test),
:mod:`~elens_utils.analysis.features` (profiles to ``(X, y)``),
:mod:`~elens_utils.analysis.model_families` (:func:`family_of`),
:mod:`~elens_utils.analysis.embedding` (:func:`embed_2d`) and
:mod:`~elens_utils.analysis.knn_sweeps` (held-out groups, transfer and robustness tables); this
module gathers them, so that a chapter writes ``classify.knn_cv(...)``.
"""

from __future__ import annotations

from elens_utils.analysis.embedding import embed_2d
from elens_utils.analysis.features import profile_features
from elens_utils.analysis.knn_protocol import (
    DEFAULT_K,
    DEFAULT_KS,
    CVResult,
    holdout_group_auc,
    k_sweep,
    knn_cv,
    permutation_test,
)
from elens_utils.analysis.knn_sweeps import (
    TEST_COLUMNS,
    depth_rescaling,
    holdout_sweep,
    robustness_sweep,
    size_rank,
    transfer_sweep,
)
from elens_utils.analysis.model_families import family_of

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
