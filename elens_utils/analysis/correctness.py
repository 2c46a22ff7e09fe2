"""Does the entropy profile tell whether a model answers a multiple-choice question correctly?

The experiment of the paper's earlier version (v1/v2, "The Information Signature of Transformer
Computations"): MMLU questions, greedy generation of 8 tokens, the profile averaged over the
tokens, a kNN classifier with binary ROC-AUC in 10-fold cross-validation against a stratified
dummy (:func:`elens_utils.analysis.classify.knn_cv`).

Here the label of a question is whether the model's answer is right, scored deterministically
by the letter logits at the answer position (:func:`~elens_utils.analysis.interventions.mc_accuracy`),
not by parsing the generated text (what the paper's code did). The generation's first step is
exactly that forward pass: its lens at the last block is the distribution whose letter logits
decide the answer. Two feature sets are compared (:data:`FEATURE_SETS`): the paper's mean over
the generated tokens, and the profile at the answer position alone.

A model that answers (nearly) every question right, or wrong, leaves too few samples of one
class for stratified k-fold CV. :func:`correctness_auc` then reports the model with a status and
a plain note instead of raising, so that a chapter over several models still runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from elens_utils.analysis.classify import DEFAULT_K, knn_cv
from elens_utils.analysis.expansion import first_tokens, loaded_models
from elens_utils.analysis.interventions import mc_accuracy
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles

__all__ = [
    "FEATURE_SETS",
    "accuracy_by_model",
    "correctness_auc",
    "mc_correctness",
    "outcome_depth_frame",
]

#: Feature sets of :func:`correctness_auc`: name -> what it is.
FEATURE_SETS: dict[str, str] = {
    "mean": "mean over the generated tokens (the paper)",
    "answer": "answer position only (generation step 1)",
}

# The kNN columns of correctness_auc's rows -> the CVResult property each one holds.
_KNN_COLUMNS: dict[str, str] = {
    "auc_mean": "auc_mean",
    "auc_std": "auc_std",
    "dummy_auc_mean": "dummy_auc_mean",
    "dummy_auc_std": "dummy_auc_std",
    "knn_accuracy": "accuracy_mean",
    "dummy_accuracy": "dummy_accuracy_mean",
    "p_value": "p_value",
}


def mc_correctness(
    models: Sequence[str | os.PathLike[str]],
    questions: pd.DataFrame,
    *,
    answer_col: str = "answer",
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 8,
    **mc_kwargs: Any,
) -> pd.DataFrame:
    """Which questions each model answers correctly (letter logits at the answer position).

    Args:
        models: model names (one in memory at a time).
        questions: multiple-choice questions (:func:`elens_utils.data.prompts.multiple_choice`).
        answer_col: the column with the correct letter (``"answer"`` in ``data`` frames).
        device, dtype, batch_size: loading and batching.
        **mc_kwargs: ``prompt_col``, ``letters``, ``separator`` for
            :func:`~elens_utils.analysis.interventions.mc_accuracy`.

    Returns:
        One row per model and question, questions in their order: ``model``, ``question`` (the
        row number in ``questions``), ``id`` (when ``questions`` has one), ``predicted``,
        ``answer``, ``correct`` (bool), ``letter_mass`` and ``chance``.
    """
    if not isinstance(questions, pd.DataFrame):
        raise ElensError(
            f"questions must be a DataFrame (from data.multiple_choice); got {type(questions).__name__}."
        )
    questions = questions.reset_index(drop=True)
    frames = []
    for lm in loaded_models(list(models), device=device, dtype=dtype):
        res = mc_accuracy(
            lm, questions, answer_col=answer_col, batch_size=batch_size, **mc_kwargs
        )
        table = res.table[["predicted", "answer", "correct", "letter_mass"]].copy()
        table.insert(0, "model", lm.name)
        table.insert(1, "question", np.arange(len(table)))
        if "id" in questions.columns:
            table.insert(2, "id", questions["id"].to_numpy())
        table["chance"] = res.chance
        frames.append(table)
    if not frames:
        raise ElensError("No models given: pass a non-empty list of model names.")
    return pd.concat(frames, ignore_index=True)


def accuracy_by_model(correct: pd.DataFrame) -> pd.DataFrame:
    """One row per model of :func:`mc_correctness`: ``model``, ``accuracy``, ``n_correct``,
    ``n`` (questions) and ``chance``, models in their order."""
    need = ["model", "correct", "chance"]
    if not isinstance(correct, pd.DataFrame) or any(
        c not in correct.columns for c in need
    ):
        raise ElensError(
            f"accuracy_by_model() takes the frame of mc_correctness() (columns {need})."
        )
    return (
        correct.groupby("model", sort=False)
        .agg(
            accuracy=("correct", "mean"),
            n_correct=("correct", "sum"),
            n=("correct", "size"),
            chance=("chance", "first"),
        )
        .reset_index()
        .astype({"n_correct": int, "n": int})
    )


def _labels_for(prof: Profiles, correct: pd.DataFrame) -> np.ndarray:
    """The ``correct`` flags of ``prof``'s model, in question order, checked against the profiles."""
    model = str(prof.meta["model"].iloc[0])
    rows = correct[correct["model"] == model].sort_values("question")
    if len(rows) != prof.n:
        raise ElensError(
            f"Model {model!r} has {prof.n} profiles but {len(rows)} scored questions: profile and "
            "score the same questions, in the same order."
        )
    if not np.array_equal(rows["question"].to_numpy(), np.arange(prof.n)):
        raise ElensError(
            f"The scored questions of model {model!r} are not numbered 0..{prof.n - 1}."
        )
    return rows["correct"].to_numpy(dtype=bool)


def _features(prof: Profiles, name: str, alpha: float) -> np.ndarray:
    if name == "mean":
        return prof.features("mean", alphas=alpha)
    if name == "answer":
        return first_tokens(prof, 1).features("mean", alphas=alpha)
    raise ElensError(f"Unknown feature set {name!r}: use some of {list(FEATURE_SETS)}.")


def correctness_auc(
    profiles: Sequence[Profiles],
    correct: pd.DataFrame,
    *,
    features: Sequence[str] = ("mean", "answer"),
    alpha: float = 1.0,
    k: int = DEFAULT_K,
    folds: int = 10,
    seed: int = 42,
) -> pd.DataFrame:
    """kNN binary ROC-AUC of "answered correctly" from each model's profiles, with the dummy.

    Args:
        profiles: raw profiles of each model (one model each) of the questions, in question
            order (e.g. from :func:`~elens_utils.profile_models`, greedy).
        correct: :func:`mc_correctness` of the same models and questions.
        features: feature sets, see :data:`FEATURE_SETS`.
        alpha: the Renyi order of the features (1 = Shannon).
        k, folds, seed: see :func:`~elens_utils.analysis.classify.knn_cv` (the paper: 10 folds, seed 42).

    Returns:
        One row per model and feature set: ``model``, ``n_layers``, ``features``, ``n``,
        ``n_correct``, ``accuracy`` (share correct), ``status`` (``"ok"``, or
        ``"too few"`` when one class has fewer than ``folds`` questions, which stratified CV
        cannot split), ``note`` (a sentence saying why, empty when ok), and for ok rows the
        cross-validated ``auc_mean``, ``auc_std``, ``dummy_auc_mean``, ``dummy_auc_std``,
        ``knn_accuracy``, ``dummy_accuracy``, ``p_value`` (NaN otherwise). Other errors (NaN
        features, k larger than a training fold) raise :class:`ElensError`.
    """
    if isinstance(features, str):
        features = [features]
    unknown = [f for f in features if f not in FEATURE_SETS]
    if unknown or not features:
        raise ElensError(
            f"Unknown or no feature sets {unknown or list(features)}: use some of {list(FEATURE_SETS)}."
        )
    need = ["model", "question", "correct"]
    if not isinstance(correct, pd.DataFrame) or any(
        c not in correct.columns for c in need
    ):
        raise ElensError(
            f"correct must be the frame of mc_correctness() (columns {need})."
        )
    rows = []
    for prof in profiles:
        if not isinstance(prof, Profiles):
            raise ElensError(f"Expected Profiles; got {type(prof).__name__}.")
        models = prof.meta["model"].unique()
        if len(models) != 1:
            raise ElensError(f"Each Profiles must hold one model; got {list(models)}.")
        y = _labels_for(prof, correct)
        n_right = int(y.sum())
        minority = min(n_right, len(y) - n_right)
        for name in features:
            row: dict[str, Any] = {
                "model": str(models[0]),
                "n_layers": prof.n_layers,
                "features": name,
                "n": len(y),
                "n_correct": n_right,
                "accuracy": n_right / len(y),
                "status": "ok",
                "note": "",
            }
            row.update(dict.fromkeys(_KNN_COLUMNS, math.nan))
            if minority < folds:
                which = "right" if n_right < len(y) - n_right else "wrong"
                row["status"] = "too few"
                if minority == 0:  # every answer right (or wrong): nothing to classify, however many questions
                    row["note"] = (
                        f"{row['model']} answers {n_right} of {len(y)} questions correctly: with no "
                        f"{which} answer there is nothing to tell apart. No AUC."
                    )
                else:
                    row["note"] = (
                        f"{row['model']} answers {n_right} of {len(y)} questions correctly, so only "
                        f"{minority} are {which}: {folds}-fold stratified cross-validation needs at "
                        f"least {folds} of each class. No AUC: score more questions, or lower the folds."
                    )
            else:
                res = knn_cv(
                    _features(prof, name, alpha), y, k=k, folds=folds, seed=seed
                )
                row.update({col: getattr(res, attr) for col, attr in _KNN_COLUMNS.items()})
            rows.append(row)
    if not rows:
        raise ElensError("correctness_auc() needs the profiles of at least one model.")
    return pd.DataFrame(rows)


def outcome_depth_frame(
    profiles: Sequence[Profiles],
    correct: pd.DataFrame,
    *,
    features: str = "answer",
    alpha: float = 1.0,
) -> pd.DataFrame:
    """Mean profile of the correctly and of the wrongly answered questions, per model.

    Columns: ``model``, ``n_layers``, ``outcome`` (``"correct"`` / ``"wrong"``), ``layer``,
    ``depth`` (layer / L), ``entropy`` (mean over the questions of the feature set's
    per-question profile, nats), ``sd`` and ``n`` (questions). An outcome with no question
    has no rows.
    """
    frames = []
    for prof in profiles:
        y = _labels_for(prof, correct)
        x = _features(prof, features, alpha)  # [N, L]
        layer = np.arange(1, prof.n_layers + 1)
        for outcome, mask in (("correct", y), ("wrong", ~y)):
            if not mask.any():
                continue
            h = x[mask]
            frames.append(
                pd.DataFrame(
                    {
                        "model": str(prof.meta["model"].iloc[0]),
                        "n_layers": prof.n_layers,
                        "outcome": outcome,
                        "layer": layer,
                        "depth": layer / prof.n_layers,
                        "entropy": h.mean(axis=0),
                        "sd": h.std(axis=0, ddof=1)
                        if len(h) > 1
                        else np.zeros(prof.n_layers),
                        "n": int(mask.sum()),
                    }
                )
            )
    if not frames:
        raise ElensError(
            "outcome_depth_frame() needs the profiles of at least one model."
        )
    return pd.concat(frames, ignore_index=True)
