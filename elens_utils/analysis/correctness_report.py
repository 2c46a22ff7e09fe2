"""Correctness (chapter 6) in words: each model's accuracy against chance, whether its profile tells
right from wrong answers (the kNN verdicts), a baseline that knows only the question's subject,
and the line beside the paper's earlier claim."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from elens_utils.analysis.model_groups import model_group
from elens_utils.analysis.verdicts import capitalise, knn_verdict
from elens_utils.core.errors import ElensError
from elens_utils.data.fact_questions import wilson_interval

#: How :func:`correctness_findings` names the feature sets of
#: :func:`elens_utils.analysis.correctness.correctness_auc` and the baseline of :func:`subject_baseline_auc`.
CORRECTNESS_FEATURE_WORDS = {
    "mean": "mean over the generated tokens (the paper's features)",
    "answer": "answer position only",
    "subject": "the question's subject alone, no profile",
}

#: What a model's verdicts over its profile feature sets add up to in :func:`correctness_findings`.
CORRECTNESS_OUTCOMES = ("beats the dummy", "at chance", "undecided", "not scored")

_CORRECTNESS_SCORE_COLUMNS = ("auc_mean", "auc_std", "dummy_auc_mean", "dummy_auc_std", "knn_accuracy",
                              "dummy_accuracy", "p_value")  # fmt: skip


def subject_baseline_auc(
    correct: pd.DataFrame,
    questions: pd.DataFrame,
    *,
    column: str = "subject",
    folds: int = 10,
    seed: int = 42,
) -> pd.DataFrame:
    """How well the question's subject alone predicts "answered correctly": a baseline for the kNN.

    When a model's accuracy differs between subjects (capitals against arithmetic), a classifier
    that only recognises the subject already predicts correctness above chance; a profile that
    separates subjects does so too, without saying anything about the answer. This baseline
    scores each test question by the share of right answers among the training questions of
    its subject (the training accuracy over all subjects for a subject absent from training),
    in the folds of :func:`~elens_utils.analysis.classify.knn_cv` with the same ``folds`` and ``seed``
    (``StratifiedKFold`` splits depend on the labels only), and draws the same stratified dummy.

    Args:
        correct: :func:`elens_utils.analysis.correctness.mc_correctness` (``model``, ``question``,
            ``correct``).
        questions: the scored questions, in the order of ``question``, with ``column``.
        column: the grouping column (``"subject"``; ``"kind"``: fact or inference).

    Returns:
        One row per model, in the columns of :func:`~elens_utils.analysis.correctness.correctness_auc`
        (``features`` is ``column``, ``n_layers`` is missing): ``auc_mean``, ``auc_std`` (over
        folds, ddof 0), the dummy's, ``knn_accuracy`` (predicting "right" when the score is at
        least 0.5) and the paired t-test ``p_value``; ``status`` ``"too few"`` (and NaN scores)
        when one class has fewer than ``folds`` questions.
    """
    import warnings

    from scipy import stats
    from sklearn.dummy import DummyClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    need = ["model", "question", "correct"]
    if not isinstance(correct, pd.DataFrame) or any(c not in correct.columns for c in need):
        raise ElensError(f"subject_baseline_auc() takes the frame of mc_correctness() (columns {need}).")
    if not isinstance(questions, pd.DataFrame) or column not in questions.columns:
        raise ElensError(f"subject_baseline_auc(): the questions need a column {column!r}.")
    groups_all = questions[column].astype(str).to_numpy()
    rows = []
    for model, answers in correct.groupby("model", sort=False):
        answers = answers.sort_values("question")
        q = answers["question"].to_numpy()
        if len(q) != len(groups_all) or not np.array_equal(q, np.arange(len(groups_all))):
            raise ElensError(
                f"subject_baseline_auc(): {model!r} has {len(q)} scored questions, the questions frame "
                f"{len(groups_all)}: pass the questions that were scored, in their order."
            )
        y = answers["correct"].to_numpy(dtype=bool)
        n_right = int(y.sum())
        row = {"model": str(model), "n_layers": pd.NA, "features": column, "n": len(y), "n_correct": n_right,
               "accuracy": n_right / len(y), "status": "ok", "note": ""}  # fmt: skip
        row.update(dict.fromkeys(_CORRECTNESS_SCORE_COLUMNS, math.nan))
        if min(n_right, len(y) - n_right) < folds:
            row["status"] = "too few"
            row["note"] = f"{model} answers {n_right} of {len(y)} correctly: too few of one kind for {folds} folds."
            rows.append(row)
            continue
        scores: dict[str, list[float]] = {"auc": [], "dummy_auc": [], "accuracy": [], "dummy_accuracy": []}
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for train, test in cv.split(np.zeros((len(y), 1)), y):
            rate = pd.Series(y[train].astype(float)).groupby(groups_all[train]).mean()
            score = pd.Series(groups_all[test]).map(rate).fillna(float(y[train].mean())).to_numpy()
            scores["auc"].append(float(roc_auc_score(y[test], score)))
            scores["accuracy"].append(float(np.mean((score >= 0.5) == y[test])))
            dummy = DummyClassifier(strategy="stratified", random_state=seed).fit(np.zeros((len(train), 1)), y[train])
            proba = dummy.predict_proba(np.zeros((len(test), 1)))[:, list(dummy.classes_).index(True)]
            scores["dummy_auc"].append(float(roc_auc_score(y[test], proba)))
            scores["dummy_accuracy"].append(float(np.mean(dummy.predict(np.zeros((len(test), 1))) == y[test])))
        arr = {k: np.asarray(v) for k, v in scores.items()}
        with warnings.catch_warnings():  # identical AUCs in every fold: scipy warns and gives NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(stats.ttest_rel(arr["auc"], arr["dummy_auc"]).pvalue)
        row.update(
            auc_mean=float(arr["auc"].mean()), auc_std=float(arr["auc"].std()),
            dummy_auc_mean=float(arr["dummy_auc"].mean()), dummy_auc_std=float(arr["dummy_auc"].std()),
            knn_accuracy=float(arr["accuracy"].mean()), dummy_accuracy=float(arr["dummy_accuracy"].mean()), p_value=p,
        )  # fmt: skip
        rows.append(row)
    if not rows:
        raise ElensError("subject_baseline_auc(): no answers given.")
    return pd.DataFrame(rows)


def _beats_dummy(verdict: str) -> bool:
    return verdict not in ("at chance", "no evidence")


def _profile_verdicts(rows: pd.DataFrame, n_correct: int, n: int, folds: int, level: float) -> list[str] | None:
    """The :func:`knn_verdict` of each profile feature set of one model, or None when the model
    is not scored (fewer than ``folds`` right or wrong answers, or a row that did not score)."""
    if min(n_correct, n - n_correct) < folds or (rows["status"] != "ok").any():
        return None
    return [
        knn_verdict(r["auc_mean"], r["auc_std"], r["dummy_auc_mean"], r["p_value"], level=level)
        for _, r in rows.iterrows()
    ]


def _outcome(verdicts: list[str] | None) -> str:
    """One of :data:`CORRECTNESS_OUTCOMES` from a model's feature-set verdicts."""
    if verdicts is None:
        return "not scored"
    if any(_beats_dummy(v) for v in verdicts):
        return "beats the dummy"
    return "at chance" if all(v == "at chance" for v in verdicts) else "undecided"


def correctness_outcomes(
    scores: pd.DataFrame,
    accuracy: pd.DataFrame,
    *,
    models: Sequence[str],
    folds: int = 10,
    baseline: str | None = "subject",
    level: float = 0.9,
) -> dict[str, str]:
    """Each model's outcome (one of :data:`CORRECTNESS_OUTCOMES`), by the rules of
    :func:`correctness_findings`: ``{"zoo/llama-8L": "not scored", ...}``, in ``models``' order.

    Raises:
        ElensError: a model without scores or accuracy.
    """
    out: dict[str, str] = {}
    for model in models:
        acc = accuracy[accuracy["model"] == model]
        rows = scores[(scores["model"] == model) & (scores["features"] != baseline)]
        if acc.empty or rows.empty:
            raise ElensError(f"correctness_outcomes(): {model!r} has no {'accuracy' if acc.empty else 'scores'}.")
        out[model] = _outcome(_profile_verdicts(rows, int(acc["n_correct"].iloc[0]), int(acc["n"].iloc[0]), folds, level))
    return out


def _against_chance(k: int, n: int, chance: float, confidence: float) -> tuple[float, float, str]:
    """The Wilson interval ``(low, high)`` of ``k`` right answers out of ``n`` and where it lies
    against ``chance``: ``"above"``, ``"below"`` or ``"not distinguishable from"``."""
    low, high = wilson_interval(k, n, confidence)
    return low, high, "above" if low > chance else "below" if high < chance else "not distinguishable from"


def guessing_models(accuracy: pd.DataFrame, models: Sequence[str], confidence: float = 0.95) -> list[str]:
    """The ``models`` whose accuracy is not above chance: the low end of its Wilson interval
    (``confidence``) is at or below ``chance``. For such a model, an AUC above the dummy's says
    which guesses land, not that the model knows when it is right (:func:`correctness_findings`).

    Args:
        accuracy: :func:`elens_utils.analysis.correctness.accuracy_by_model` (``model``,
            ``n_correct``, ``n``, ``chance``).
        models: the models to look at, in this order.
    """
    out = []
    for model in models:
        a = accuracy[accuracy["model"] == model]
        if a.empty:
            raise ElensError(f"guessing_models(): {model!r} has no accuracy.")
        *_, where = _against_chance(int(a["n_correct"].iloc[0]), int(a["n"].iloc[0]), float(a["chance"].iloc[0]), confidence)
        if where != "above":
            out.append(model)
    return out


def correctness_findings(
    scores: pd.DataFrame,
    accuracy: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    folds: int = 10,
    scoring: str = "cloze",
    baseline: str | None = "subject",
    level: float = 0.9,
    confidence: float = 0.95,
    paper: bool = True,
    preamble: bool = True,
) -> list[str]:
    """Markdown bullet lines on whether the profile tells right from wrong answers, per model.

    Args:
        scores: :func:`elens_utils.analysis.correctness.correctness_auc` (one row per model and feature
            set), optionally with the rows of :func:`subject_baseline_auc`.
        accuracy: :func:`elens_utils.analysis.correctness.accuracy_by_model` of the same answers
            (``model``, ``accuracy``, ``n_correct``, ``n``, ``chance``).
        models: the models to write about, in this order; None: the real ones of ``accuracy``
            (:func:`model_group`).
        folds: the folds of the cross-validation (for the "not scored" sentence).
        scoring: how the answers were scored, in words (``"cloze"``, ``"letter logits"``).
        baseline: the ``features`` value of the baseline rows (:func:`subject_baseline_auc`);
            they are reported beside the profile's feature sets, not counted as one of them.
        level, confidence: the AUC level of :func:`knn_verdict`; the confidence of the
            accuracy's Wilson interval.
        paper: add a closing line beside the claim of the paper's earlier version.
        preamble: open that line with the claim itself; False for a second group of models
            when the claim was set out for the first.

    One line per model: its accuracy with its count (``239/384``), the Wilson interval and where
    that interval lies against the chance level (*above chance*: its low end above chance;
    *below chance*: its high end below; else *not distinguishable from chance*). Then, when
    the model has at least ``folds`` right and ``folds`` wrong answers, each profile feature
    set's AUC, its sd over folds, the dummy's AUC, the paired t-test p and the
    :func:`knn_verdict` (``"at ceiling"``, ``"above LEVEL"``, ``"above chance but below
    LEVEL"``, ``"at chance"``, ``"no evidence"``); otherwise **not scored**, with the counts.
    With a baseline row, its AUC and where the profile's best AUC lies against it: *more than*
    the baseline when it exceeds the baseline's AUC by more than the profile's fold sd, *less
    than* when it falls short by more than that, else *about as much as*.

    Each model's verdicts add up to one of :data:`CORRECTNESS_OUTCOMES`: it *beats the dummy*
    when one profile feature set's verdict is one of the first three, is *at chance* when every
    feature set's is ``"at chance"``, and is *undecided* otherwise. The paper's line counts
    those outcomes (and which models that beat the dummy do no better than the baseline); the
    paper's earlier version gives no number we could find for this experiment, so none is quoted.

    Raises:
        ElensError: missing columns, a model without scores or accuracy, or scores and accuracy
            that count different answers.
    """
    need_s = ["model", "n_layers", "features", "n", "n_correct", "status", "auc_mean", "auc_std",
              "dummy_auc_mean", "p_value"]  # fmt: skip
    need_a = ["model", "accuracy", "n_correct", "n", "chance"]
    if not isinstance(scores, pd.DataFrame) or any(c not in scores.columns for c in need_s):
        raise ElensError(f"correctness_findings() takes the scores of correctness_auc() (columns {need_s}).")
    if not isinstance(accuracy, pd.DataFrame) or any(c not in accuracy.columns for c in need_a):
        raise ElensError(f"correctness_findings() takes the accuracy of accuracy_by_model() (columns {need_a}).")
    if models is None:
        models = [m for m in accuracy["model"].drop_duplicates() if model_group(str(m)) == "real"]
    lines: list[str] = []
    outcomes: dict[str, str] = {}
    no_better: list[str] = []  # beat the dummy, but not the baseline
    guessed: list[str] = []  # beat the dummy with an accuracy not above chance
    for model in models:
        acc = accuracy[accuracy["model"] == model]
        these = scores[scores["model"] == model]
        rows = these[these["features"] != baseline]
        base = these[these["features"] == baseline]
        if acc.empty or rows.empty:
            raise ElensError(f"correctness_findings(): {model!r} has no {'accuracy' if acc.empty else 'scores'}.")
        a = acc.iloc[0]
        k, n, chance = int(a["n_correct"]), int(a["n"]), float(a["chance"])
        if (these["n_correct"] != k).any() or (these["n"] != n).any():
            raise ElensError(
                f"correctness_findings(): the scores of {model!r} count {int(these['n_correct'].iloc[0])}/"
                f"{int(these['n'].iloc[0])} right answers, its accuracy {k}/{n}: pass the same answers to both."
            )
        low, high, where = _against_chance(k, n, chance, confidence)
        text = (
            f"- **{model}** ({int(rows['n_layers'].iloc[0])} blocks, {n} questions, {scoring} scoring): accuracy "
            f"{100 * k / n:.0f}% ({k}/{n}; {100 * confidence:.0f}% interval {100 * low:.0f}-{100 * high:.0f}%), "
            f"{where} chance ({100 * chance:.0f}%)."
        )
        minority = min(k, n - k)
        verdicts = _profile_verdicts(rows, k, n, folds, level)
        outcomes[model] = _outcome(verdicts)
        if verdicts is None:
            which = "right" if k < n - k else "wrong"
            text += (
                f" **Not scored**: no {which} answer, so there is nothing to tell apart."
                if minority == 0
                else f" **Not scored**: only {minority} {which} answer{'s' if minority != 1 else ''}, and {folds}-fold "
                f"stratified cross-validation needs at least {folds} right and {folds} wrong."
            )
            lines.append(text)
            continue
        for (_, r), v in zip(rows.iterrows(), verdicts):
            text += f" {capitalise(_feature_words(r['features']))}: {_auc_words(r)}: **{v}**."
        if outcomes[model] == "beats the dummy":
            if where != "above":
                guessed.append(model)
                text += (
                    " Its accuracy is not above chance, so its right answers are mostly guesses: this AUC says "
                    "which guesses land, not that the model knows when it is right."
                )
        if len(base) and base["status"].iloc[0] == "ok":
            b = base.iloc[0]
            best = rows.loc[rows["auc_mean"].idxmax()]
            gap = float(best["auc_mean"] - b["auc_mean"])
            relation = (
                "more than" if gap > best["auc_std"] else "less than" if gap < -best["auc_std"] else "about as much as"
            )
            text += (
                f" Baseline, {_feature_words(baseline)}: {_auc_words(b)}; the profile's best "
                f"({best['features']}, {best['auc_mean']:.3f}) tells {relation} the {baseline} alone."
            )
            if outcomes[model] == "beats the dummy" and relation != "more than":
                no_better.append(model)
        lines.append(text)
    if paper and outcomes:
        counts = pd.Series(list(outcomes.values())).value_counts()
        parts = []
        for o in CORRECTNESS_OUTCOMES:
            if o in counts:
                names = ", ".join(f"`{m}`" for m, v in outcomes.items() if v == o)
                one, many = {
                    "beats the dummy": ("beats", "beat"),
                    "at chance": ("is", "are"),
                    "undecided": ("is", "are"),
                    "not scored": ("was", "were"),
                }[o]
                phrase = {
                    "beats the dummy": "the dummy with at least one feature set",
                    "at chance": "at chance with every feature set",
                    "undecided": "undecided, with no evidence either way",
                    "not scored": "not scored",
                }[o]
                parts.append(f"{counts[o]} {one if counts[o] == 1 else many} {phrase} ({names})")
        if len(outcomes) == 1:  # "Here `m` is undecided ...", not "Of 1 model here, 1 is ..."
            (only,) = outcomes
            summary = f"Here `{only}` " + parts[0].split(" ", 1)[1].rsplit(" (", 1)[0]
        else:
            summary = f"Of the {len(outcomes)} models here, " + "; ".join(parts)
        tail = ""
        if guessed:
            tail += (
                f" {', '.join(f'`{m}`' for m in guessed)} answer{'s' if len(guessed) == 1 else ''} at chance: "
                "an AUC above the dummy there tells lucky guesses from unlucky ones, and is no evidence for the claim."
            )
        if no_better:
            tail += (
                f" {', '.join(f'`{m}`' for m in no_better)} beat{'s' if len(no_better) == 1 else ''} the dummy but "
                f"tell{'s' if len(no_better) == 1 else ''} no more than the {baseline} alone: what the profile tells "
                "may be which kind of question it is, not whether the answer is right."
            )
        head = (
            "- **Beside the paper**: its earlier version (v1/v2) claimed that the entropy profile tells whether a "
            "model answered a question correctly (MMLU in four prompt styles, 8 greedy tokens, the mean profile, kNN "
            "binary AUC); we found no number for it in the paper, so none is quoted as the paper's, and the "
            f"{level:g} of the verdicts is the paper's headline level for family, task and format, not a correctness "
            "result. "
            if preamble
            else "- **Beside the paper** (its claim as set out above): "
        )
        lines.append(f"{head}{summary}." + tail)
    return lines


def _feature_words(name: object) -> str:
    return CORRECTNESS_FEATURE_WORDS.get(str(name), str(name))


def _auc_words(r: pd.Series) -> str:
    p = "p undefined" if math.isnan(float(r["p_value"])) else f"p = {float(r['p_value']):.2g}"
    return (
        f"AUC {r['auc_mean']:.3f} (sd {r['auc_std']:.3f} over folds) against a dummy at "
        f"{r['dummy_auc_mean']:.3f} ({p})"
    )
