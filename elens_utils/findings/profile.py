"""Chapter 1's findings: the worked example's profile and whether one family's blank-prompt
profiles overlap against relative depth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from elens_utils.analysis.comparison import (
    OVERLAP_RATIOS,
    blank_prompt_findings,
    overlap_verdict,
)
from elens_utils.findings.base import Findings, is_random, quantization_line

__all__ = ["findings"]


def findings(
    *,
    curve: pd.DataFrame,
    example_model: str,
    log_v: float,
    models: Sequence[str],
    n_samples: int,
    max_new_tokens: int,
    overlap: Mapping[str, float],
    comparison: pd.DataFrame | None = None,
) -> Findings:
    """Chapter 1's closing bullets and headline.

    Args:
        curve: the worked example's lens, one row per (block, order): ``layer`` (1-based),
            ``alpha`` (1.0 is Shannon), ``entropy`` (nats) and ``phase`` (``"expansion"`` or
            ``"pruning"``, the step into that block).
        example_model: the worked example's model; ``log_v`` its ``log V`` (nats).
        models: the models of the blank-prompt sweep.
        n_samples: blank-prompt generations per model.
        max_new_tokens: tokens per generation.
        overlap: ``gap`` (mean distance between two models' mean profiles on a common grid of
            relative depths, nats) and ``spread`` (a profile's mean range along depth, nats).
        comparison: the real models' blank-prompt comparison
            (:func:`~elens_utils.analysis.comparison.blank_prompt_comparison`), or None
            without real models.
    """
    first = curve[curve["alpha"] == 1.0].sort_values("layer")
    n_exp, n_prune = int((first["phase"] == "expansion").sum()), int((first["phase"] == "pruning").sum())
    random_models = is_random([*models, example_model])
    lines = [
        f"- **Worked example** ({example_model}, last position of the prompt): "
        f"{n_exp} of the {len(first) - 1} block-to-block steps expand and {n_prune} prune. "
        f"The Shannon entropy goes from {first['entropy'].iloc[0]:.2f} nats at block 1 to "
        f"{first['entropy'].iloc[-1]:.2f} at block {len(first)}, with $\\log V$ = {log_v:.2f}.",
        f"- **Blank-prompt profiles** ({len(models)} models, {n_samples} samples of {max_new_tokens} "
        f"tokens each): on a common grid of relative depths, two models' mean profiles differ by "
        f"{overlap['gap']:.2f} nats on average. A single profile spans {overlap['spread']:.2f} nats "
        "along depth on average. Profiles that overlap, in the paper's sense, differ by much less "
        "than they vary.",
    ]
    if random_models:
        lines.append(
            "- **These models are random.** `tiny/...` models have random weights and have learned "
            "nothing. Their profiles show what random initialisation and depth do to the lens. They "
            "do not show a decision strategy, and a 'family' of them shares an architecture, not "
            "training. So this run neither supports nor refutes the paper's claims: it checks the "
            "machinery. To test the claims on trained models, run "
            "`make chapter CH=profile PARAMS=paper` (a GPU and the Hugging Face Hub are needed)."
        )
    else:
        verdict = overlap_verdict(overlap["gap"], overlap["spread"])
        low, high = OVERLAP_RATIOS
        lines.append(
            "- **The paper's claim** is that the profiles of one family overlap against relative depth. Here the "
            f"models' mean profiles **{verdict}**: the gap between them is {overlap['gap'] / overlap['spread']:.0%} of "
            f"a profile's spread along depth (the rule: below {low:.0%} they overlap, above {high:.0%} they do not)."
            if verdict != "one model: nothing to compare"
            else "- **The paper's claim** is that the profiles of one family overlap against relative depth; with "
            "one model there is nothing to compare."
        )
    if comparison is not None:
        lines += blank_prompt_findings(comparison)
        lines.append(
            "- **Beside the paper**: the paper draws blank-prompt profiles of its 12 models as charts "
            "and gives no numbers to set beside these. Its overlap claim needs one family at several "
            "sizes: the zoo tests it above; the two real models are one size each of two families, "
            "so they show real profiles' shapes and do not test the overlap."
        )
        lines.append(quantization_line())
    if random_models:
        head = ("not tested", f"random models ({', '.join(models)}) check the machinery, not the claim")
    elif len(models) < 2:
        head = ("nothing to compare", f"one model ({models[0]})")
    else:
        head = (
            f"profiles {verdict}",
            f"{len(models)} models of one family ({', '.join(models)}): their mean blank-prompt profiles differ by "
            f"{overlap['gap'] / overlap['spread']:.0%} of a profile's spread along relative depth",
        )
    return Findings(lines, *head)
