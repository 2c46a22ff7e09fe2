"""Chapter 7's findings: how the family AUC moves when one choice of the protocol changes at a
time, the permutation test, and the task AUC on a held-out phrasing or story variant."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from elens_utils.analysis.classify import CVResult
from elens_utils.analysis.comparison import transfer_findings
from elens_utils.findings.base import Findings, is_random, is_zoo, quantization_line

__all__ = ["findings", "setting_span"]


def setting_span(sweep: pd.DataFrame, factor: str) -> str:
    """The lowest and highest mean AUC of one factor's settings, with the settings:
    ``"0.912 (1) to 0.987 (11)"`` for k, ``"0.738 (2 windows) to 0.800 (concat)"`` for the aggregation.

    Args:
        sweep: :func:`~elens_utils.analysis.classify.robustness_sweep`'s rows (``factor``,
            ``setting``, ``auc_mean``).
        factor: one of its factors (``"k"``, ``"CV seed"``, ...).
    """
    rows = sweep[sweep["factor"] == factor]
    lo, hi = rows.loc[rows["auc_mean"].idxmin()], rows.loc[rows["auc_mean"].idxmax()]
    return f"{lo['auc_mean']:.3f} ({lo['setting']}) to {hi['auc_mean']:.3f} ({hi['setting']})"


def findings(
    *,
    baseline: CVResult,
    sweep: pd.DataFrame,
    p_perm: float,
    null: np.ndarray,
    transfer: pd.DataFrame,
    prompts: pd.DataFrame,
    source: str,
    models: Sequence[str],
    task_models: Sequence[str],
    n_profiles: int,
    max_new_tokens: int,
    temperature: float,
    real_transfer: pd.DataFrame | None = None,
) -> Findings:
    """Chapter 7's closing bullets and headline.

    Args:
        baseline: the family kNN with the chapter's baseline settings
            (:func:`~elens_utils.analysis.classify.knn_cv`; ``auc`` holds the folds' AUCs).
        sweep: :func:`~elens_utils.analysis.classify.robustness_sweep`'s rows (``factor``,
            ``setting``, ``auc_mean``, ``baseline``: whether the row repeats the baseline's own
            value; the factor ``"baseline"`` is the baseline itself).
        p_perm: the permutation test's p-value.
        null: the AUCs with shuffled labels, one per shuffle.
        transfer: :func:`~elens_utils.analysis.classify.transfer_sweep` of the task models
            (``model``, ``factor`` in cv / phrasing / variant, ``status``, ``auc``).
        prompts: the task prompts (``attrs["dataset"]``).
        source: where the task prompts come from (the chapter's parameter).
        models: the models of the family result.
        task_models: the models of the task-type result.
        n_profiles: the family result's blank-prompt samples, all models together.
        max_new_tokens: tokens per blank-prompt generation.
        temperature: their sampling temperature.
        real_transfer: the same transfer table for the real models, or None.
    """
    random_models = is_random([*models, *task_models])
    # the settings that differ from the baseline (each panel repeats the baseline's own value too)
    changed = sweep[(sweep["factor"] != "baseline") & ~sweep["baseline"].astype(bool)]
    below = changed[changed["auc_mean"] < 0.9]

    lines = [
        (
            f"- **Data**: the families chapter's blank-prompt profiles of {len(models)} models ({n_profiles} samples, "
            f'{max_new_tokens} tokens at T = {temperature}); task prompts from `source = "{source}"` '
            f"({prompts.attrs['dataset']}, {len(prompts)} per model) for {', '.join(f'`{m}`' for m in task_models)}."
        ),
        (
            f"- **Baseline family AUC**: {baseline.auc_mean:.3f}; over the folds it spreads by {baseline.auc_std:.3f} "
            f"(sd), from {baseline.auc.min():.3f} to {baseline.auc.max():.3f}."
        ),
        f"- **One setting at a time**: CV seed {setting_span(sweep, 'CV seed')}; k {setting_span(sweep, 'k')}; "
        f"aggregation {setting_span(sweep, 'aggregation')}; entropy order {setting_span(sweep, 'entropy order')}; "
        f"depth alignment {setting_span(sweep, 'depth alignment')}; scaling {setting_span(sweep, 'scaling')}; "
        f"generation seed {setting_span(sweep, 'generation seed')}. "
        + (
            f"{len(below)} of the {len(changed)} changed settings {'falls' if len(below) == 1 else 'fall'} below the paper's 0.9."
            if len(below)
            else f"Every one of the {len(changed)} changed settings stays above the paper's 0.9."
        ),
        (
            f"- **Significance**: permutation p = {p_perm:.2g} ({len(null)} shuffles, the smallest possible "
            f"{1 / (len(null) + 1):.2g}); the shuffled AUCs lie between {null.min():.3f} and {null.max():.3f}. "
            f"The paired t-test the paper uses gives, on this run, p = {baseline.p_value:.2g}."
        ),
    ]
    cv_rows = transfer[transfer["factor"] == "cv"].set_index("model")["auc"]
    phr = (
        transfer[(transfer["factor"] == "phrasing") & (transfer["status"] == "ok")]
        .groupby("model", sort=False)["auc"]
        .mean()
    )
    var = (
        transfer[(transfer["factor"] == "variant") & (transfer["status"] == "ok")]
        .groupby("model", sort=False)["auc"]
        .mean()
    )
    lines.append(
        "- **Task type**: AUC on all prompts (CV) / trained on one phrasing and tested on the other (mean of the two "
        "directions) / a held-out story variant (mean of the four): "
        + "; ".join(
            f"`{m}` {cv_rows[m]:.3f} / {phr.get(m, float('nan')):.3f} / {var.get(m, float('nan')):.3f}"
            for m in cv_rows.index
        )
        + "."
    )
    if len(phr):
        drop = (cv_rows[phr.index] - phr).mean()
        lines[-1] += (
            f" Holding out the phrasing lowers the task AUC by {drop:.3f} on average: part of what the kNN recognises "
            "in cross-validation is the instruction's wording, not only the task."
            if drop > 0.02
            else f" Holding out the phrasing changes the task AUC by {-drop:+.3f} on average: the profile's task "
            "signal does not hang on the wording here."
        )
    if random_models:
        lines.append(
            "- **These models are random.** `tiny/...` and `untrained/...` models have random weights and have learned "
            "nothing, so the family AUCs measure how much the *architecture* marks the lens entropies, and the task AUCs "
            "how much the prompt's wording does. The spreads above are those of this run's models and sample sizes; "
            "they say how stable the machinery's numbers are, not how stable the paper's are. This run neither "
            "supports nor refutes the paper. Run it on the trained zoo or on the paper's models "
            "(`make chapter CH=robustness PARAMS=paper`, GPU and Hub needed)."
        )
    else:
        lines.append(
            "- **Beside the paper**: "
            + (
                "every setting varied here (the CV shuffle, k, the aggregation, the entropy order, the depth alignment, the scaling, the "
                "generation seed) keeps the family AUC above the paper's 0.9: the "
                "headline does not hang on those choices. This chapter does not vary which sizes of a family the classifier "
                "has seen: chapter 2 holds one size out, and its result (in its closing lines) belongs beside this one "
                "before calling the headline robust."
                if not len(below)
                else f"the family AUC crosses below the paper's 0.9 under {', '.join(sorted(set(below['factor'])))}: "
                + (
                    "the headline depends on that choice."
                    if below["factor"].nunique() == 1
                    else "the headline depends on those choices."
                )
            )
        )
        if is_zoo([*models, *task_models]):
            lines.append(
                "- **These are the project's zoo models, not the paper's**: small models trained by this project on its "
                "synthetic story world, one tokenizer for all. The spreads above are those of a toy-scale test of the "
                "method, not of the paper's numbers (`make chapter CH=robustness PARAMS=paper`, GPU and Hub needed)."
            )
    if real_transfer is not None:
        lines += transfer_findings(real_transfer, label="Real models")
        lines.append(quantization_line())
    return Findings(
        lines,
        "not tested" if random_models
        else "stays above 0.9" if not len(below)
        else f"falls below 0.9 under {', '.join(sorted(set(below['factor'])))}",
        f"family AUC {baseline.auc_mean:.2f}; {len(changed)} settings changed one at a time give "
        f"{changed['auc_mean'].min():.2f}-{changed['auc_mean'].max():.2f}; permutation p = {p_perm:.2g}",
    )
