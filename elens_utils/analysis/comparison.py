"""Real models, the zoo and the paper side by side: the tables that close the chapters.

Each chapter runs its experiment on the zoo (small models trained by the project on its story
world) and on real pretrained models (:mod:`elens_utils.models.real_models`), and states what the paper
reports for the same experiment. The functions here put the measured rows of both groups in one
table with their counts, and add the paper's row in words only: a number is never shown as the
paper's unless the paper gives it.

The tables and their words live in :mod:`~elens_utils.analysis.model_groups` (real, zoo, other),
:mod:`~elens_utils.analysis.verdicts` (numbers into words by fixed rules),
:mod:`~elens_utils.analysis.blank_prompt_report` (chapter 1),
:mod:`~elens_utils.analysis.knn_report` (families, task types, output formats, transfer),
:mod:`~elens_utils.analysis.correctness_report` (chapter 6) and
:mod:`~elens_utils.analysis.zoo_quantization` (what quantization does to the zoo); this module
gathers them under one name.
"""

from __future__ import annotations

# knn_verdicts and guessing_models are public names outside __all__
# ruff: noqa: F401
from elens_utils.analysis.blank_prompt_report import (
    blank_prompt_comparison,
    blank_prompt_findings,
    unembedding_rows,
)
from elens_utils.analysis.correctness_report import (
    CORRECTNESS_FEATURE_WORDS,
    CORRECTNESS_OUTCOMES,
    correctness_findings,
    correctness_outcomes,
    guessing_models,
    subject_baseline_auc,
)
from elens_utils.analysis.knn_report import (
    family_comparison,
    feature_set_findings,
    knn_comparison,
    knn_findings,
    transfer_findings,
)
from elens_utils.analysis.model_groups import GROUP_ORDER, model_group, sort_by_group
from elens_utils.analysis.verdicts import (
    AUC_CEILING,
    KNN_VERDICTS,
    OVERLAP_RATIOS,
    knn_verdict,
    knn_verdict_names,
    knn_verdicts,
    overlap_verdict,
)
from elens_utils.analysis.zoo_quantization import (
    QUANTIZATION_RESULTS,
    quantization_caveat,
)

__all__ = [
    "AUC_CEILING",
    "GROUP_ORDER",
    "sort_by_group",
    "KNN_VERDICTS",
    "QUANTIZATION_RESULTS",
    "blank_prompt_comparison",
    "blank_prompt_findings",
    "knn_comparison",
    "knn_findings",
    "knn_verdict",
    "knn_verdict_names",
    "family_comparison",
    "model_group",
    "quantization_caveat",
    "transfer_findings",
    "unembedding_rows",
    "OVERLAP_RATIOS",
    "overlap_verdict",
    "feature_set_findings",
    "CORRECTNESS_FEATURE_WORDS",
    "CORRECTNESS_OUTCOMES",
    "correctness_findings",
    "correctness_outcomes",
    "subject_baseline_auc",
]
