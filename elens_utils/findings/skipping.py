"""Chapter 5's findings: whether dH follows the top-p candidate set, and whether skipping the
expansion blocks costs more accuracy than skipping the pruning blocks (whole blocks, their
sublayers and heads, zoo and real models)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from elens_utils.analysis import expansion
from elens_utils.findings.base import Findings, is_random, quantization_line, tally
from elens_utils.viz.tables import fmt_range

__all__ = ["findings"]


def findings(
    *,
    candidates: pd.DataFrame,
    reported_rho: tuple[float, float],
    results: pd.DataFrame,
    summary: pd.DataFrame,
    side_by_side: pd.DataFrame,
    ranks: pd.DataFrame,
    questions: pd.DataFrame,
    n_scored: int,
    n_ranking: int,
    source: str,
    models: Sequence[str],
    top_p: float,
    max_new_tokens: int,
    ks: Sequence[int],
    where: str,
    real_models: Sequence[str] = (),
    real_results: pd.DataFrame | None = None,
    real_candidates: pd.DataFrame | None = None,
    real_n_scored: int = 0,
    real_n_ranking: int = 0,
    real_source: str = "",
    real_scoring: str = "",
    sub_results: pd.DataFrame | None = None,
    sub_summary: pd.DataFrame | None = None,
    sublayer_ks: Sequence[int] = (),
    sublayer_n_questions: int = 0,
) -> Findings:
    """Chapter 5's closing bullets and headline.

    Args:
        candidates: :func:`~elens_utils.analysis.expansion.candidate_check`'s summary, one row
            per model: ``rho`` (Spearman between dH and the change of the top-p set size; NaN
            when the size never changes), ``sign_agreement``, ``mean_jaccard``.
        reported_rho: the (low, high) range of ρ a secondary summary gives for the paper's models.
        results: :func:`~elens_utils.analysis.expansion.skip_sweep`'s rows (``strategy``,
            ``model``, ``accuracy``, ``chance``).
        summary: :func:`~elens_utils.analysis.expansion.skip_summary` of the zoo, one row per
            (``model``, ``k``): ``more_critical``, ``clear`` (the gap exceeds 2 se), ``se``,
            ``se_gap``.
        side_by_side: :func:`~elens_utils.analysis.expansion.skip_comparison` of zoo and real
            models (``group``, ``model``, ``verdict``).
        ranks: :func:`~elens_utils.analysis.expansion.block_ranking` of the zoo's profiles.
        questions: the zoo's questions (``attrs["dataset"]``); ``n_scored`` of them are scored
            and ``n_ranking`` rank the blocks.
        source: where the questions come from (the chapter's parameter).
        models: the chapter's models.
        top_p: the mass of the candidate sets.
        max_new_tokens: greedy tokens per ranking question.
        ks: the numbers of blocks skipped.
        where: where the blocks were ranked, in words ("at the answer position").
        real_models: the real models; ``real_results``, ``real_candidates``,
            ``real_n_scored``, ``real_n_ranking``, ``real_source`` and ``real_scoring`` are the
            same for them (``real_results`` None without them).
        sub_results: the sublayer experiment
            (:func:`~elens_utils.analysis.sublayers.sublayer_sweep`), or None; ``sub_summary``
            its summary, ``sublayer_ks`` and ``sublayer_n_questions`` its settings.
    """
    random_models = is_random(models)
    s = candidates
    valid = s.dropna(subset=["rho"])
    lo, hi = reported_rho
    lines = [
        f'- **Data**: {n_scored} scored and {n_ranking} ranking questions from `source = "{source}"` ({questions.attrs["dataset"]}); models: {", ".join(f"`{m}`" for m in models)}.'
    ]
    if len(valid):
        inside = int(valid["rho"].between(lo, hi).sum())
        lines.append(
            f"- **Candidate sets** (p = {top_p:g}, {max_new_tokens} greedy tokens per ranking question): Spearman ρ between dH "
            f"and the change of the set size runs from {valid['rho'].min():.2f} ({valid.loc[valid['rho'].idxmin(), 'model']}) "
            f"to {valid['rho'].max():.2f} ({valid.loc[valid['rho'].idxmax(), 'model']}); {inside} of {len(valid)} models fall inside "
            f"the range a secondary summary gives for the paper's models ({lo:g}-{hi:g}; not found in the paper itself, so "
            f"unverified), {int((valid['rho'] > hi).sum())} above it, "
            f"{int((valid['rho'] < lo).sum())} below it. The sign of dH matches the direction of the set's change in "
            f"{fmt_range(valid['sign_agreement'], '.0%')} of the steps where the set changes size. "
            f"Adjacent blocks' sets overlap by {fmt_range(s['mean_jaccard'], '.2f')} on average (Jaccard)."
        )
    flat = s[s["rho"].isna()]
    if len(flat):
        lines.append(
            f"- For {', '.join(flat['model'])} the set size never changed between blocks, so ρ is undefined."
        )
    counts = summary["more_critical"].value_counts()
    n_cases = len(summary)
    base = results[results["strategy"] == "baseline"]
    lines.append(
        f"- **Skipping** (k = {', '.join(map(str, sorted(summary['k'].unique())))}; blocks ranked {where}; "
        f"output := input): without skipping, accuracy is {fmt_range(base['accuracy'], '.0%')} "
        f"(chance {base['chance'].iloc[0]:.0%}; the standard error of a gap between two strategies is at most "
        f"{summary['se_gap'].max():.1%}). In {counts.get('expansion', 0)} of "
        f"{n_cases} (model, k) cases skipping the expansion blocks cost more accuracy than skipping the pruning blocks, in "
        f"{counts.get('pruning', 0)} the pruning blocks cost more, and {counts.get('tie', 0)} were ties."
    )
    clear = summary[summary["clear"]]["more_critical"].value_counts()
    n_clear = int(summary["clear"].sum())
    if n_clear == 0:
        lines.append(
            "  None of these gaps exceeds two standard errors: this run cannot tell the two strategies apart "
            "(the paper reports that skipping expansion blocks usually hurts more)."
        )
    else:
        lines.append(
            f"  {n_clear} of the gaps {'exceeds' if n_clear == 1 else 'exceed'} two standard errors: {clear.get('expansion', 0)} with the expansion "
            f"blocks more critical, {clear.get('pruning', 0)} with the pruning blocks more critical."
        )
        split = expansion.skip_family_findings(expansion.skip_comparison(summary))
        if split and clear.get("expansion", 0) and clear.get("pruning", 0):
            lines.append("  The clear gaps go both ways, family by family:")
            lines.append("  " + split)
        if clear.get("expansion", 0) > clear.get("pruning", 0):
            lines.append(
                "  Among those, the run leans the way the paper reports (expansion blocks more critical)."
            )
        elif clear.get("pruning", 0) > clear.get("expansion", 0):
            lines.append(
                "  Among those, the run leans **the opposite way** from the paper (there, expansion blocks are usually more critical)."
            )
    sets = expansion.expansion_sign_findings(ranks, ks)
    if sets:
        lines.append(sets)
    base_acc = base.drop_duplicates("model").set_index("model")
    above = base_acc.index[base_acc["accuracy"] > base_acc["chance"] + 2 * summary["se"].max()]
    at_chance = [m for m in base_acc.index if m not in above]
    if at_chance and len(above):
        verdicts = []
        for m in above:
            v = summary[(summary["model"] == m) & summary["clear"]]["more_critical"].value_counts()
            verdicts.append(
                f"`{m}` ({base_acc.loc[m, 'accuracy']:.0%} unskipped): {v.get('expansion', 0)} clear gaps with the expansion "
                f"blocks more critical, {v.get('pruning', 0)} with the pruning blocks"
            )
        lines.append(
            f"- **Only the models above chance can answer this.** {', '.join(f'`{m}`' for m in at_chance)} "
            f"{'answers' if len(at_chance) == 1 else 'answer'} at chance even without skipping: skipping has nothing to take away "
            "there, and their gaps are noise. Per model above chance: " + "; ".join(verdicts) + "."
        )
    if random_models:
        lines.append(
            "- **These models are random.** `tiny/...` and `untrained/...` models have random weights and have learned nothing "
            "(`untrained/FAMILY-NL` is the zoo's architecture and tokenizer before training). Their accuracy sits near chance "
            "with or without skipping, so a gap between expansion and pruning is noise, and a high ρ only says that, for any "
            "distribution, entropy and the size of the top-p set tend to move together. This run checks the machinery: it "
            "neither supports nor refutes the paper. Run it on the trained zoo (`zoo/...`) or on the paper's models "
            "(`make chapter CH=expansion PARAMS=paper`, GPU and Hub needed)."
        )
    real_rows = side_by_side[side_by_side["group"] == "real"]
    if real_results is not None:
        lines.append(
            f"- **Real models** ({', '.join(f'`{m}`' for m in real_models)}; {real_n_scored} scored and "
            f"{real_n_ranking} ranking questions of `{real_source}`, {real_scoring} scoring; chance 25%):"
        )
        lines += ["  " + line for line in expansion.skip_findings(real_rows)]
        rc = real_candidates.dropna(subset=["rho"]) if real_candidates is not None else real_candidates
        if rc is not None and len(rc):
            lines.append(
                "  - **Candidate sets**: Spearman ρ between dH and the change of the top-p set size "
                + ", ".join(f"{r.model} {r.rho:.2f}" for r in rc.itertuples())
                + f" (the zoo: {fmt_range(valid['rho'], '.2f') if len(valid) else 'undefined'})."
            )
        lines.append(quantization_line())
    if sub_results is not None and sub_summary is not None:
        sub_counts = [
            f"{kind}: expansion blocks cost more in {int((g['more_critical'] == 'expansion').sum())}, pruning blocks in "
            f"{int((g['more_critical'] == 'pruning').sum())} of {len(g)} (model, k) cases, {int(g['clear'].sum())} of "
            "them by more than 2 se"
            for kind, g in sub_summary.groupby("kind", sort=False)
        ]
        lines.append(
            f"- **Beyond whole blocks** ({sub_results['model'].nunique()} models, k = "
            f"{', '.join(map(str, sublayer_ks))}, {sublayer_n_questions} questions each): " + "; ".join(sub_counts)
            + ". The paper has no result here to compare with; it names this as a next check."
        )
    zoo_head = side_by_side[side_by_side["model"].isin(models)]
    return Findings(
        lines,
        "not tested" if random_models else tally(zoo_head["verdict"], order=expansion.SKIP_VERDICTS),
        f"{len(zoo_head)} (model, k) cases of {zoo_head['model'].nunique()} models, a gap counted when it exceeds 2 se"
        + (f"; real models: {tally(real_rows['verdict'], order=expansion.SKIP_VERDICTS)}" if len(real_rows) else ""),
    )
