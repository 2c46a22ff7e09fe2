"""Chapter 3's findings: the task-type kNN per model, by depth and story variant, what
separates the tasks, and the real models beside the zoo and the paper."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from elens_utils.analysis import knn_tables
from elens_utils.analysis.comparison import (
    knn_findings,
    knn_verdict_names,
    knn_verdicts,
)
from elens_utils.findings.base import Findings, any_quantized, is_random, is_zoo, quantization_line, tally
from elens_utils.viz.tables import fmt_range

__all__ = ["findings"]


def findings(
    *,
    summary: pd.DataFrame,
    by_task: pd.DataFrame,
    prompts: pd.DataFrame,
    source: str,
    models: Sequence[str],
    max_new_tokens: int,
    temperature: float,
    k: int,
    folds: int,
    real_models: Sequence[str] = (),
    real_items: pd.DataFrame | None = None,
    real_max_new_tokens: int | None = None,
    comparison: pd.DataFrame | None = None,
) -> Findings:
    """Chapter 3's closing bullets and headline.

    Args:
        summary: :func:`~elens_utils.analysis.knn_tables.knn_by_model`'s summary, one row per
            (``model``, ``subset``, ``k``): ``auc_mean``, ``auc_std``, ``dummy_auc_mean``,
            ``accuracy_mean``, ``p_value``, ``n_layers``; ``subset`` is
            :data:`~elens_utils.analysis.knn_tables.ALL_SUBSET` for every prompt, else a story
            variant. Rows of models not in ``models`` are the real models'.
        by_task: :func:`~elens_utils.analysis.knn_tables.label_depth_frame`: per (``model``,
            task, relative depth) the ``centered`` mean profile and its ``sd`` (nats).
        prompts: the zoo's prompts (``story_id``; ``attrs["dataset"]`` names the data).
        source: where the prompts come from (the chapter's parameter).
        models: the chapter's models.
        max_new_tokens: tokens sampled per prompt.
        temperature: the sampling temperature.
        k: neighbours of the kNN.
        folds: folds of the stratified cross-validation.
        real_models: the real models, if any.
        real_items: the rows the real models read.
        real_max_new_tokens: tokens sampled per real-model prompt.
        comparison: :func:`~elens_utils.analysis.comparison.knn_comparison` of zoo and real
            models (used with real models).
    """
    random_models = is_random(models)
    zoo_models = is_zoo(models)
    overall = summary[summary["subset"] == knn_tables.ALL_SUBSET]
    main = overall[overall["model"].isin(models)]  # the chapter's models (the zoo by default); real models below
    tag = "" if not real_models else "zoo" if zoo_models else "random models" if random_models else "`models`"
    who = f" ({tag})" if tag else ""  # which models a line is about, once real models are in the run
    best = main.loc[main["auc_mean"].idxmax()]
    worst = main.loc[main["auc_mean"].idxmin()]
    beat = main[(main["auc_mean"] - main["dummy_auc_mean"] > main["auc_std"]) & (main["p_value"] < 0.05)]
    above_90 = main[main["auc_mean"] > 0.9]
    variants = summary[(summary["subset"] != knn_tables.ALL_SUBSET) & summary["model"].isin(models)]
    per_variant = variants.groupby("subset", sort=False)["auc_mean"].mean()
    ks_used = sorted(set(summary.loc[summary["model"].isin(models), "k"]))
    main_by_task = by_task[by_task["model"].isin(models)]
    gap = main_by_task.groupby("model", sort=False)["centered"].apply(lambda c: c.abs().max())
    spread = main_by_task.groupby("model", sort=False)["sd"].mean()
    by_depth = main.groupby("n_layers")["auc_mean"].mean()
    lines = [
        f"- **Data**: {len(prompts)} prompts ({prompts['story_id'].nunique()} stories x 24) from `source = \"{source}\"` "
        f"({prompts.attrs['dataset']}); models: {', '.join(f'`{m}`' for m in models)}; {max_new_tokens} tokens sampled "
        f"at T = {temperature}; Shannon profile averaged over the tokens; kNN with k = {k}"
        + (f" (used: {', '.join(map(str, ks_used))})" if ks_used != [k] else "")
        + f", {folds}-fold stratified CV.",
        f"- **AUC on all prompts**{who}: from {worst['auc_mean']:.2f} (`{worst['model']}`) to {best['auc_mean']:.2f} "
        f"(`{best['model']}`), against a dummy at {fmt_range(main['dummy_auc_mean'], '.2f')}. "
        f"{len(beat)} of {len(main)} models beat the dummy by more than one fold standard deviation with p < 0.05"
        f"{': ' + ', '.join(f'`{m}`' for m in beat['model']) if 0 < len(beat) < len(main) else ''}. "
        f"{len(above_90)} of {len(main)} reach the paper's 0.9.",
        f"- **Accuracy**{who}: {fmt_range(main['accuracy_mean'], '.0%')} "
        f"(chance for three balanced classes: 33%).",
        f"- **By depth** ({tag + ': ' if tag else ''}mean AUC over the models with that many blocks): "
        + ", ".join(f"{n} blocks {a:.2f}" for n, a in by_depth.items())
        + ".",
        f"- **Within each variant** ({tag + ': ' if tag else ''}mean AUC over the models): "
        + ", ".join(f"{v} {a:.2f}" for v, a in per_variant.items())
        + ".",
        f"- **What separates the tasks**{who}: the largest gap between a task's mean profile and the model's mean is "
        f"{fmt_range(gap, '.3f')} nats across the models, while single profiles spread by "
        f"{fmt_range(spread, '.3f')} nats (mean sd).",
    ]
    if random_models:
        lines.append(
            "- **These models are random.** `tiny/...` and `untrained/...` models have random weights and have learned "
            "nothing (`untrained/FAMILY-NL` is the zoo's architecture and tokenizer before training). Sampling at T = 1 "
            "from a random model mostly draws noise tokens, and the profile of those tokens says little about the prompt, "
            "so an AUC near 0.5 is the expected result. An AUC well above it would show that the profile carries the "
            "prompt's *wording* (the three instructions are different token sequences), not that the model understood a "
            "task. Either way this run checks the machinery; it neither supports nor refutes the paper. Run it on the "
            "trained zoo (`zoo/...`) or on the paper's models (`make chapter CH=tasks PARAMS=paper`, GPU and Hub needed)."
        )
    else:
        if zoo_models:
            lines.append(
                "- **These are the project's zoo models**: small models (2 to 8 blocks, under a million parameters) trained "
                "on the story world, not the paper's models. Their training mix holds task prompts of the same three "
                "families with their answers (both phrasings, both reversal conventions, other stories), so they have seen "
                "these instructions and learned to answer some of them (zoo/CARD.md has their task scores). What they show "
                "is whether a trained "
                "model's profile separates tasks at all, and how that changes with depth; not whether the paper's numbers "
                "hold for its models."
            )
        if not real_models:
            verdict = "agrees with" if len(above_90) == len(main) else "falls short of" if not len(above_90) else "partly agrees with"
            lines.append(
                f"- **Beside the paper**: the paper reports AUCs above 0.9 for task type; this run {verdict} that "
                f"({len(above_90)} of {len(main)} models above 0.9)."
            )
    if real_models:
        real_variants = summary[(summary["subset"] != knn_tables.ALL_SUBSET) & ~summary["model"].isin(models)]
        lines.append(
            f"- **Real models** ({', '.join(f'`{m}`' for m in real_models)}): {len(real_items)} prompts each "
            f"({real_items['story_id'].nunique()} stories x 24, the first of the zoo's), the same rows in natural English, "
            f"{real_max_new_tokens} tokens sampled at T = {temperature}, the same classifier. Within each variant: "
            + "; ".join(
                f"`{m}` " + ", ".join(f"{r['subset']} {r['auc_mean']:.2f}" for _, r in rows.iterrows())
                for m, rows in real_variants.groupby("model", sort=False)
            )
            + "."
        )
        lines += knn_findings(comparison)
        if any_quantized(real_models):
            lines.append(quantization_line("the `real/` models", experiment="task"))
    real_rows = overall[~overall["model"].isin(models)]
    return Findings(
        lines,
        "not tested" if random_models else tally(knn_verdicts(main), order=knn_verdict_names()),
        f"task-type kNN AUC {fmt_range(main['auc_mean'], '.3f')} over {len(main)} {(tag.strip('`') + ' models') if tag else 'models'}"
        + (f"; real models: {tally(knn_verdicts(real_rows), order=knn_verdict_names())} (AUC {fmt_range(real_rows['auc_mean'], '.3f')})" if len(real_rows) else ""),
    )
