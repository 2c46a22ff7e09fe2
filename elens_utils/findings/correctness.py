"""Chapter 6's findings: whether a model's entropy profile tells its right answers from its
wrong ones, per model, beside the dummy and (for real models) the question's subject alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from elens_utils.analysis.comparison import (
    CORRECTNESS_OUTCOMES,
    correctness_findings,
    correctness_outcomes,
    guessing_models,
)
from elens_utils.findings.base import Findings, any_quantized, is_random, is_zoo, quantization_line, tally
from elens_utils.viz.tables import fmt_range

__all__ = ["HEADLINE_WORDS", "findings", "outcome_tally"]

#: "2 beat the dummy" reads better as "2 above the dummy" in a count.
HEADLINE_WORDS = {"beats the dummy": "above the dummy"}


def outcome_tally(outcomes: Mapping[str, str], accuracy: pd.DataFrame) -> str:
    """The models' outcomes counted in words (:data:`HEADLINE_WORDS`), in the order of
    :data:`~elens_utils.analysis.comparison.CORRECTNESS_OUTCOMES`, with how many of the models
    above the dummy answer at chance (:func:`~elens_utils.analysis.comparison.guessing_models`)
    said right after that count.

    Args:
        outcomes: model -> outcome (:func:`~elens_utils.analysis.comparison.correctness_outcomes`).
        accuracy: one row per model (``model``, ``accuracy``, ``n``, ``chance``).
    """
    above = [m for m, o in outcomes.items() if o == "beats the dummy"]
    lucky = guessing_models(accuracy, above)
    said = HEADLINE_WORDS["beats the dummy"]
    return tally(
        (HEADLINE_WORDS.get(o, o) for o in outcomes.values()),
        order=[HEADLINE_WORDS.get(o, o) for o in CORRECTNESS_OUTCOMES],
        notes={said: f"{len(lucky)} of them answering at chance"} if lucky else None,
    )


def findings(
    *,
    scores: pd.DataFrame,
    per_model: pd.DataFrame,
    questions: pd.DataFrame,
    source: str,
    models: Sequence[str],
    max_new_tokens: int,
    k: int,
    folds: int,
    real_models: Sequence[str] = (),
    real_scores: pd.DataFrame | None = None,
    real_per_model: pd.DataFrame | None = None,
    real_questions: pd.DataFrame | None = None,
    real_source: str = "",
    real_scoring: str = "",
    real_max_new_tokens: int = 0,
) -> Findings:
    """Chapter 6's closing bullets and headline.

    Args:
        scores: :func:`~elens_utils.analysis.correctness.correctness_auc`'s rows (``model``,
            ``features``, ``status``, ``auc_mean``, ...; ``status`` other than ``"ok"`` with a
            ``note`` when a model has too few right or wrong answers).
        per_model: :func:`~elens_utils.analysis.correctness.accuracy_by_model` (``model``,
            ``accuracy``, ``n``, ``chance``).
        questions: the zoo's questions (``attrs["dataset"]``).
        source: where the questions come from (the chapter's parameter).
        models: the chapter's models.
        max_new_tokens: greedy tokens per question.
        k: neighbours of the kNN.
        folds: folds of the stratified cross-validation.
        real_models: the real models; ``real_scores``, ``real_per_model``,
            ``real_questions``, ``real_source``, ``real_scoring`` and ``real_max_new_tokens``
            are the same for them (``real_scores`` also holds the subject-only baseline's rows).
    """
    random_models = is_random(models)
    chance = float(per_model["chance"].iloc[0])
    skipped = scores[scores["status"] != "ok"].drop_duplicates("model")
    # which models a line is about, once real models are in the run
    who = "" if not real_models else " (zoo)" if is_zoo(models) else " (random models)" if random_models else " (`models`)"
    lines = [
        f'- **Data**{who}: {len(questions)} questions from `source = "{source}"` ({questions.attrs["dataset"]}); models: '
        f"{', '.join(f'`{m}`' for m in models)}; labels from the letter logits at the answer position; "
        f"{max_new_tokens} greedy tokens per question; kNN with k = {k}, {folds}-fold stratified CV.",
        f"- **Accuracy**{who}: {fmt_range(per_model['accuracy'], '.0%')} across the models "
        f"(chance {chance:.0%}).",
    ]
    if not random_models:
        # one line per model and a count of the outcomes, by tested rules (comparison.correctness_findings)
        lines += correctness_findings(scores, per_model, models=models, folds=folds, scoring="letter-logit", baseline=None)
    if len(skipped) and random_models:
        lines.append(
            f"- **Not scored**: {', '.join(skipped['model'])} (too few right or too few wrong answers for {folds} folds)."
        )
    if random_models:
        lines.append(
            "- **These models are random.** `tiny/...` and `untrained/...` models have random weights and have learned nothing "
            "(`untrained/FAMILY-NL` is the zoo's architecture and tokenizer before training). Their accuracy is near chance, "
            "so which questions they get right is luck. An AUC near 0.5 is the expected result; one far from it on a few "
            "hundred questions is noise, or says that a random model's letter choice and its entropies share a cause (the "
            "prompt's last tokens), not that it knows when it is right. This run checks the machinery: it neither supports "
            "nor refutes the paper. Run it on the trained zoo (`zoo/...`) or on the paper's models "
            "(`make chapter CH=correctness PARAMS=paper`, GPU and Hub needed)."
        )
    if real_models:
        how = (
            " (the option whose text the model finds most likely after the question, summed log-likelihood)"
            if real_scoring == "cloze" else " (the letter logits at the answer position)"
        )
        lines.append(
            f"- **Real models** ({', '.join(f'`{m}`' for m in real_models)}): {len(real_questions)} questions from "
            f'`real_source = "{real_source}"`: {real_questions.attrs["dataset"]}; scored by {real_scoring}{how}; '
            f"profiles of the prompts that were scored, {real_max_new_tokens} greedy tokens each; the same kNN "
            f"(k = {k}, {folds}-fold stratified CV) and, as a baseline without profiles, the question's subject alone."
        )
        # the paper's claim is set out with the chapter's models, unless they are random (no lines
        # above): then with the real models
        lines += correctness_findings(
            real_scores, real_per_model, models=real_models, folds=folds, scoring=real_scoring, preamble=random_models
        )
        if any_quantized(real_models):
            lines.append(quantization_line("the `real/` models"))
    outcomes = correctness_outcomes(scores, per_model, models=models, folds=folds, baseline=None)
    return Findings(
        lines,
        "not tested" if random_models else outcome_tally(outcomes, per_model),
        f"{len(outcomes)} models, accuracy {fmt_range(per_model['accuracy'], '.0%')}"
        + (
            f"; real models: {outcome_tally(correctness_outcomes(real_scores, real_per_model, models=real_models, folds=folds), real_per_model)}"
            if real_models else ""
        ),
    )
