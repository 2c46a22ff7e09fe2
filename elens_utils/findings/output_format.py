"""Chapter 4's findings: the output-format kNN per model and k, Shannon against Rényi, and
the real models beside the zoo and the paper."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from elens_utils.analysis.comparison import (
    feature_set_findings,
    knn_findings,
    knn_verdict_names,
    knn_verdicts,
)
from elens_utils.findings.base import Findings, is_random, is_zoo, quantization_line, tally
from elens_utils.viz.tables import fmt_range

__all__ = ["findings"]


def findings(
    *,
    paper_rows: pd.DataFrame,
    by_alpha: pd.DataFrame,
    comparison: pd.DataFrame,
    prompts: pd.DataFrame,
    source: str,
    models: Sequence[str],
    max_new_tokens: int,
    windows: int,
    alphas: Sequence[float],
    ks: Sequence[int],
    k_alpha: int,
    folds: int,
    real_models: Sequence[str] = (),
) -> Findings:
    """Chapter 4's closing bullets and headline.

    Args:
        paper_rows: :func:`~elens_utils.analysis.knn_tables.knn_by_model`'s summary on the
            paper's features (every order together), one row per (``model``, ``k``):
            ``auc_mean``, ``auc_std``, ``dummy_auc_mean``, ``accuracy_mean``, ``p_value``,
            ``n_layers``. Rows of models not in ``models`` are the real models'.
        by_alpha: the summary at the k nearest ``k_alpha``, one row per (``model``,
            ``features``), for the Shannon-against-Rényi comparison.
        comparison: :func:`~elens_utils.analysis.comparison.knn_comparison` of zoo and real
            models at that k.
        prompts: the zoo's prompts (``topic``; ``attrs["dataset"]`` names the data).
        source: where the prompts come from (the chapter's parameter).
        models: the chapter's models.
        max_new_tokens: greedy tokens per prompt.
        windows: the windows each generation is cut into.
        alphas: the Rényi orders of the features.
        ks: the neighbours of the kNN tried.
        k_alpha: the k of the Shannon-against-Rényi comparison (the nearest of ``ks`` is used).
        folds: folds of the stratified cross-validation.
        real_models: the real models, if any.
    """
    random_models = is_random(models)
    zoo_models = is_zoo(models)
    real_rows = paper_rows[~paper_rows["model"].isin(models)]
    paper_rows = paper_rows[paper_rows["model"].isin(models)]  # the chapter's models; real models below
    by_alpha_all, by_alpha = by_alpha, by_alpha[by_alpha["model"].isin(models)]
    best = paper_rows.loc[paper_rows["auc_mean"].idxmax()]
    worst = paper_rows.loc[paper_rows["auc_mean"].idxmin()]
    beat = paper_rows[(paper_rows["auc_mean"] - paper_rows["dummy_auc_mean"] > paper_rows["auc_std"]) & (paper_rows["p_value"] < 0.05)]
    above_90 = paper_rows.groupby("model", sort=False)["auc_mean"].max().gt(0.9)
    by_depth = paper_rows.groupby("n_layers")["auc_mean"].mean()
    lines = [
        f"- **Data**: {len(prompts)} prompts ({prompts['topic'].nunique()} topics x 3 formats) from `source = \"{source}\"` "
        f"({prompts.attrs['dataset']}); models: {', '.join(f'`{m}`' for m in models)}; {max_new_tokens} greedy tokens "
        f"(the paper: 256), {windows} windows; Rényi orders {', '.join(f'{a:g}' for a in alphas)}; kNN with "
        f"k = {', '.join(map(str, ks))}, {folds}-fold stratified CV.",
        f"- **AUC, all orders together** (the paper's features): from {worst['auc_mean']:.2f} (`{worst['model']}`, k = {worst['k']}) "
        f"to {best['auc_mean']:.2f} (`{best['model']}`, k = {best['k']}), against a dummy at "
        f"{fmt_range(paper_rows['dummy_auc_mean'], '.2f')}. "
        f"{beat['model'].nunique()} of {len(models)} models beat the dummy by more than one fold standard deviation with "
        f"p < 0.05 at some k; {int(above_90.sum())} of {len(models)} reach the paper's 0.9 at some k.",
        f"- **Accuracy**: {fmt_range(paper_rows['accuracy_mean'], '.0%')} over models and k "
        f"(guessing: 33%).",
        "- **By depth** (mean AUC, all orders, over the models with that many blocks and the ks): "
        + ", ".join(f"{n} blocks {a:.2f}" for n, a in by_depth.items())
        + ".",
        feature_set_findings(by_alpha),
    ]
    if random_models:
        lines.append(
            "- **These models are random.** `tiny/...` and `untrained/...` models have random weights and have learned "
            "nothing (`untrained/FAMILY-NL` is the zoo's architecture and tokenizer before training): they write no chat "
            "log, poem or scientific piece. Greedy decoding makes each generation a fixed function of the prompt, and the "
            "three instructions are different token sequences, so a random model's profile can still tell the prompts "
            "apart: a high AUC here shows that the profile carries the prompt's *wording*, not that a format was "
            "written. This run checks the machinery; it neither supports nor refutes the paper. Run it on the trained zoo "
            "(`zoo/...`) or on the paper's models (`make chapter CH=formats PARAMS=paper`, GPU and Hub needed)."
        )
    else:
        if zoo_models:
            lines.append(
                "- **These are the project's zoo models**: small models (2 to 8 blocks, under a million parameters) trained "
                "on the story world, not the paper's models. Their training mix holds chat logs, poems and scientific "
                "pieces about other topics (the held-out topics here never appear in a training text of any format), in "
                f"the world's fixed templates, and {max_new_tokens} tokens instead of the paper's 256. What they show is "
                "whether a trained model's profile tells the formats apart, and how much each Rényi order adds; not "
                "whether the paper's numbers hold for its models."
            )
    # real models and zoo beside the paper's threshold, with the verdicts (at ceiling, above 0.9, ...)
    lines += knn_findings(comparison, what="output format")
    if real_models:
        real_by_alpha = by_alpha_all[~by_alpha_all["model"].isin(models)]
        for name, g in real_by_alpha.groupby("model", sort=False):
            lines.append(feature_set_findings(g, label=f"{name}, Shannon against Rényi"))
        lines.append(quantization_line())
    # the headline: per model at the k of the Shannon-against-Rényi comparison, with every order
    k_head = min(ks, key=lambda kk: abs(kk - k_alpha))
    zoo_rows, real_at_k = paper_rows[paper_rows["k"] == k_head], real_rows[real_rows["k"] == k_head]
    return Findings(
        lines,
        "not tested" if random_models else tally(knn_verdicts(zoo_rows), order=knn_verdict_names()),
        f"output-format kNN AUC {fmt_range(zoo_rows['auc_mean'], '.3f')} over {len(zoo_rows)} models (k = {k_head})"
        + (f"; real models: {tally(knn_verdicts(real_at_k), order=knn_verdict_names())} (AUC {fmt_range(real_at_k['auc_mean'], '.3f')})" if len(real_at_k) else ""),
    )
