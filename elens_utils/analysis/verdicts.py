"""The fixed rules that put the chapters' numbers into words.

What one model's cross-validated kNN AUC says (:func:`knn_verdict`), whether models' mean
profiles overlap along relative depth (:func:`overlap_verdict`), and two helpers of the sentences
built on them (:func:`span`, :func:`capitalise`).
"""

from __future__ import annotations

import math

import pandas as pd

from elens_utils.core.errors import ElensError

#: An AUC at or above this is "at ceiling" (:func:`knn_verdict`; the charts shade it).
AUC_CEILING = 0.99

#: The verdicts of :func:`knn_verdict` (LEVEL: the paper's AUC, 0.9), from the best to none.
KNN_VERDICTS = ("at ceiling", "above LEVEL", "above chance but below LEVEL", "at chance", "no evidence")


def knn_verdict_names(level: float = 0.9) -> tuple[str, ...]:
    """:data:`KNN_VERDICTS` as :func:`knn_verdict` writes them at ``level``: ``("at ceiling",
    "above 0.9", "above chance but below 0.9", "at chance", "no evidence")``."""
    return tuple(v.replace("LEVEL", f"{level:g}") for v in KNN_VERDICTS)


def knn_verdict(
    auc_mean: float,
    auc_std: float,
    dummy_auc_mean: float,
    p_value: float,
    *,
    level: float = 0.9,
    ceiling: float = AUC_CEILING,
    alpha: float = 0.05,
    chance_sd: float = 0.1,
) -> str:
    """What one model's cross-validated kNN AUC says, in words (one of :data:`KNN_VERDICTS`).

    The AUC *beats the dummy* when it exceeds the stratified dummy's by more than one standard
    deviation over the folds and the paired t-test gives ``p < alpha`` (a NaN p-value, which
    the t-test gives when the fold differences do not vary, counts when the gap is positive).
    Then the verdict is ``"at ceiling"`` (AUC >= ``ceiling``), ``"above LEVEL"`` (AUC >
    ``level``, the paper's 0.9) or ``"above chance but below LEVEL"``. An AUC that does not beat
    the dummy is ``"at chance"`` when the t-test finds no difference, the AUC lies within one
    fold standard deviation of 0.5 and that deviation is at most ``chance_sd`` (folds that
    spread wider cannot place the AUC near 0.5), and ``"no evidence"`` otherwise (away from 0.5
    but not significant, significant but within the spread over folds, or too spread to say).
    """
    values = [float(v) for v in (auc_mean, auc_std, dummy_auc_mean)]
    if any(math.isnan(v) for v in values):
        raise ElensError(f"knn_verdict(): AUC, its sd and the dummy's AUC must be numbers; got {values}.")
    auc, sd, dummy = values
    gap = auc - dummy
    p = float(p_value)
    significant = p < alpha if not math.isnan(p) else gap > 0
    if gap > sd and significant:
        if auc >= ceiling:
            return "at ceiling"
        return f"above {level:g}" if auc > level else f"above chance but below {level:g}"
    return "at chance" if not significant and abs(auc - 0.5) <= sd <= chance_sd else "no evidence"


def knn_verdicts(rows: pd.DataFrame, *, level: float = 0.9) -> list[str]:
    """:func:`knn_verdict` of each row of a kNN summary (columns ``auc_mean``, ``auc_std``,
    ``dummy_auc_mean``, ``p_value``), in the rows' order."""
    need = ["auc_mean", "auc_std", "dummy_auc_mean", "p_value"]
    if not isinstance(rows, pd.DataFrame) or any(c not in rows.columns for c in need):
        raise ElensError(f"knn_verdicts() takes rows of a knn_tables summary (columns {need}).")
    return [knn_verdict(r.auc_mean, r.auc_std, r.dummy_auc_mean, r.p_value, level=level) for r in rows[need].itertuples()]


#: Gap-to-spread ratios of :func:`overlap_verdict`: below the first the profiles overlap,
#: above the second they do not.
OVERLAP_RATIOS: tuple[float, float] = (0.25, 0.5)


def overlap_verdict(gap: float, spread: float) -> str:
    """Whether models' mean profiles overlap against relative depth, by a fixed rule.

    ``gap``: the mean absolute difference between two models' mean profiles on a common depth
    grid; ``spread``: how much one profile varies along depth (both nats,
    :func:`elens_utils.viz.charts.depth_summary`). ``"overlap"`` when ``gap < 0.25 spread`` (the
    models differ far less than a profile varies), ``"do not overlap"`` when ``gap > 0.5
    spread``, ``"partly overlap"`` in between, and ``"one model: nothing to compare"`` for a
    NaN gap.
    """
    gap, spread = float(gap), float(spread)
    if math.isnan(gap):
        return "one model: nothing to compare"
    if math.isnan(spread) or spread <= 0:
        raise ElensError(f"overlap_verdict(): the spread along depth must be a positive number; got {spread}.")
    low, high = OVERLAP_RATIOS
    ratio = gap / spread
    return "overlap" if ratio < low else "do not overlap" if ratio > high else "partly overlap"


def span(values: pd.Series, digits: int = 0) -> str:
    """The range of ``values`` in words: ``"0.91-0.97"``, or one number when both ends round alike
    at ``digits`` decimals (``"0.93"``)."""
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:.{digits}f}" if round(lo, digits) == round(hi, digits) else f"{lo:.{digits}f}-{hi:.{digits}f}"


def capitalise(text: str) -> str:
    """``text`` with its first character upper case (the start of a sentence)."""
    return text[:1].upper() + text[1:]
