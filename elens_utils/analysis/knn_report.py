"""kNN scores of real models, the zoo and the paper's claim side by side: the tables that close the
chapters on model families, task types and output formats, and the bullets that say what they
show (with the verdicts of :mod:`~elens_utils.analysis.verdicts`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from elens_utils.analysis.model_groups import model_group, sort_by_group
from elens_utils.analysis.verdicts import (
    capitalise,
    knn_verdict,
    knn_verdict_names,
    knn_verdicts,
    span,
)
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles


def family_comparison(
    runs: Mapping[str, tuple[object, Sequence[object], Sequence[object]]],
    paper: str | None = None,
    level: float = 0.9,
) -> pd.DataFrame:
    """One row per family-classification run (zoo alone, zoo with the real models...), with counts.

    Args:
        runs: name -> ``(cv, families, models)``: a :class:`~elens_utils.analysis.classify.CVResult`,
            the family label of every sample and the model of every sample.
        paper: the paper's setting and claim in words, added as a last row (``models`` is
            ``"paper"``, the text in ``families``) with no numbers.
        level: the AUC of the paper's headline claim (0.9).

    Returns:
        Columns ``models`` (the run's name), ``verdict`` (:func:`knn_verdict` at ``level``; beside
        the name, so a table too wide for the page still shows it), ``AUC``, ``AUC sd``, ``dummy
        AUC``, ``p``, ``families`` (first seen, comma-separated), ``n models``, ``samples``,
        ``k`` and ``folds``.
    """
    if not runs:
        raise ElensError("family_comparison() needs at least one run: name -> (cv, families, models).")
    rows = []
    for name, (cv, families, models) in runs.items():
        fams = [str(f) for f in families]
        if len(fams) != cv.n_samples or len(list(models)) != cv.n_samples:
            raise ElensError(
                f"family_comparison(): run {name!r} has {cv.n_samples} samples but {len(fams)} families "
                f"and {len(list(models))} models."
            )
        rows.append(
            {
                "models": name,
                "verdict": knn_verdict(cv.auc_mean, cv.auc_std, cv.dummy_auc_mean, cv.p_value, level=level),
                "AUC": cv.auc_mean,
                "AUC sd": cv.auc_std,
                "dummy AUC": cv.dummy_auc_mean,
                "p": float(cv.p_value),
                "families": ", ".join(dict.fromkeys(fams)),
                "n models": int(pd.Series(list(models)).nunique()),
                "samples": int(cv.n_samples),
                "k": int(cv.k),
                "folds": int(cv.folds),
            }
        )
    table = pd.DataFrame(rows)
    if paper is not None:
        table = pd.concat([table, pd.DataFrame([{"models": "paper", "verdict": f"claims AUC above {level:g}", "families": paper}])], ignore_index=True)
    return table


def knn_comparison(
    summary: pd.DataFrame,
    profiles: Sequence[Profiles] | None = None,
    *,
    paper: str | None = None,
    level: float = 0.9,
) -> pd.DataFrame:
    """One row per model of a kNN table on all prompts, with counts and a verdict.

    Args:
        summary: :attr:`elens_utils.analysis.knn_tables.KnnTable.summary`, or rows of it; only the rows
            of subset ``"all"`` are used, and they must hold one row per model (filter to one
            feature set and one k first).
        profiles: the models' profiles, for the generated tokens per prompt (``tokens``; NaN
            for a model without them).
        paper: the paper's setting in words, added as a last row whose ``verdict`` states its
            claim (an AUC above ``level``) and whose numbers are NaN: the paper's claim is a
            threshold, and no per-model number is shown as the paper's.
        level: the AUC the paper's claim names (0.9).

    Returns:
        Columns ``group`` (real / zoo / other / paper), ``model``, ``verdict``
        (:func:`knn_verdict`; beside the model, so a table too wide for the page still shows
        it), ``AUC`` (mean over folds), ``AUC sd``, ``dummy AUC``, ``p`` (paired t-test against
        the dummy), ``accuracy``, then ``L``, ``prompts``, ``tokens``, ``k`` (used), ``folds``
        and ``classes`` (these six as nullable integers). Rows: real, zoo, other (each in the
        summary's order), then paper.
    """
    from elens_utils.analysis.knn_tables import ALL_SUBSET

    need = ["model", "n_layers", "subset", "k", "folds", "n", "n_classes", "auc_mean", "auc_std",
            "dummy_auc_mean", "accuracy_mean", "p_value"]  # fmt: skip
    if not isinstance(summary, pd.DataFrame) or any(c not in summary.columns for c in need):
        raise ElensError(f"knn_comparison() takes a knn_tables summary (columns {need}).")
    rows = summary[summary["subset"] == ALL_SUBSET]
    if rows.empty:
        raise ElensError("knn_comparison(): the summary has no rows on all prompts (subset 'all').")
    if rows["model"].duplicated().any():
        raise ElensError(
            "knn_comparison(): several rows per model on all prompts; filter the summary to one feature set and one k."
        )
    tokens = {str(p.meta["model"].iloc[0]): int(p.n_tokens) for p in (profiles or []) if p.n}
    table = pd.DataFrame(
        {
            "group": [model_group(str(m)) for m in rows["model"]],
            "model": rows["model"].astype(str).to_numpy(),
            "verdict": knn_verdicts(rows, level=level),
            "AUC": rows["auc_mean"].to_numpy(dtype=float),
            "AUC sd": rows["auc_std"].to_numpy(dtype=float),
            "dummy AUC": rows["dummy_auc_mean"].to_numpy(dtype=float),
            "p": rows["p_value"].to_numpy(dtype=float),
            "accuracy": rows["accuracy_mean"].to_numpy(dtype=float),
            "L": rows["n_layers"].astype(int).to_numpy(),
            "prompts": rows["n"].astype(int).to_numpy(),
            "tokens": [tokens.get(str(m), np.nan) for m in rows["model"]],
            "k": rows["k"].astype(int).to_numpy(),
            "folds": rows["folds"].astype(int).to_numpy(),
            "classes": rows["n_classes"].astype(int).to_numpy(),
        }
    )
    table = sort_by_group(table)
    if paper is not None:
        claim = {"group": "paper", "model": paper, "verdict": f"claims AUC above {level:g}"}
        table = pd.concat([table, pd.DataFrame([claim])], ignore_index=True)
    counts = ["L", "prompts", "tokens", "k", "folds", "classes"]
    return table.astype({c: "Int64" for c in counts})  # whole numbers, missing in the paper's row


def knn_findings(table: pd.DataFrame, *, level: float = 0.9, what: str = "task type") -> list[str]:
    """Markdown bullet lines on a :func:`knn_comparison` table: real models, zoo, paper.

    One line per real model (AUC, its spread over folds, the dummy, the t-test, accuracy and
    the counts behind them, with its verdict); one line setting the real models beside the zoo
    (AUC ranges, counts, how many reach ``level``); one line beside the paper's claim, which is
    a threshold (``level``) and no per-model number: a group *agrees with* it when every model
    is above ``level``, *partly agrees* when some are, *falls short* when none is, and *is at
    ceiling* when every verdict is "at ceiling" (the threshold is met, but a perfect separation
    measures nothing more); when at least half are at ceiling, the line adds that there the run
    can say no more than that the threshold is met (the verdicts' counts say how many). Empty
    when the table has neither real nor zoo rows.
    """
    real = table[table["group"] == "real"]
    zoo = table[table["group"] == "zoo"]
    paper = table[table["group"] == "paper"]
    lines = []
    for _, r in real.iterrows():
        tokens = "" if pd.isna(r["tokens"]) else f", {int(r['tokens'])} tokens each"
        lines.append(
            f"- **{r['model']}** ({int(r['L'])} blocks, {int(r['prompts'])} prompts{tokens}, k = {int(r['k'])}, "
            f"{int(r['folds'])} folds): AUC {r['AUC']:.3f} (sd {r['AUC sd']:.3f} over folds) against a dummy at "
            f"{r['dummy AUC']:.3f} (p = {r['p']:.2g}); accuracy {100 * r['accuracy']:.0f}% (a guess among "
            f"{int(r['classes'])} balanced classes: {100 / int(r['classes']):.0f}%). Verdict: **{r['verdict']}**."
        )
    groups = [(name, g) for name, g in (("real", real), ("zoo", zoo)) if len(g)]
    if not groups:
        return lines
    if len(groups) == 2:
        parts = [
            f"{name}: AUC {span(g['AUC'], 2)} over {len(g)} model{'s' if len(g) > 1 else ''} "
            f"({span(g['prompts'])} prompts each), {int((g['AUC'] > level).sum())} of {len(g)} above {level:g}"
            for name, g in groups
        ]
        lines.append(f"- **Real models against the zoo** ({what}): " + "; ".join(parts) + ".")
    claim = f"a kNN AUC above {level:g} for {what}"
    setting = f" ({paper['model'].iloc[0]})" if len(paper) and isinstance(paper["model"].iloc[0], str) else ""
    verdicts = []
    for name, g in groups:
        above = int((g["AUC"] > level).sum())
        word = "agree with" if above == len(g) else "fall short of" if above == 0 else "partly agree with"
        if above == len(g) and 2 * int((g["verdict"] == "at ceiling").sum()) >= len(g):
            word = "meet"  # mostly at ceiling: the threshold is met, agreement would say more
        if len(g) == 1:  # one model: "the real model falls short of it"
            word = word.replace("agree ", "agrees ").replace("fall ", "falls ").replace("meet", "meets")
        counts = pd.Series(g["verdict"]).value_counts()
        spelled = ", ".join(f"{counts[v]} {v}" for v in knn_verdict_names(level) if v in counts)
        models = "models" if len(g) > 1 else "model"
        if counts.get("at ceiling", 0) == len(g):
            # every AUC at ceiling: agreement with a threshold, but no measure of the profile
            word = "is at ceiling on" if len(g) == 1 else "are at ceiling on"
            verdicts.append(
                f"the {name} {models} {word} it ({above} of {len(g)} above {level:g}; verdicts: {spelled}): the "
                "classes separate (nearly) perfectly, so the run meets the threshold but cannot say how much "
                f"the profile tells about {what}, nor rank feature sets"
            )
            continue
        text = f"the {name} {models} {word} it ({above} of {len(g)} above {level:g}; verdicts: {spelled})"
        if 2 * counts.get("at ceiling", 0) >= len(g):  # mostly at ceiling: say what that leaves
            text += "; where a model is at ceiling, the run can say no more than that the threshold is met"
        verdicts.append(text)
    lines.append(
        f"- **Beside the paper**: its headline claim is {claim}{setting}; it gives no per-model number to set "
        f"beside these. " + capitalise("; ".join(verdicts)) + "."
    )
    return lines


def feature_set_findings(by_set: pd.DataFrame, *, label: str = "Shannon against Rényi") -> str:
    """One Markdown bullet comparing feature sets (e.g. Shannon and Rényi orders) by kNN AUC.

    Args:
        by_set: one row per model and feature set at one k: ``model``, ``features``, ``k``,
            ``auc_mean``, ``auc_std`` (sd over folds).
        label: the bullet's bold lead.

    The mean AUC of each set over the models, and the best set per model. The sets are called
    *not distinguishable* when the largest gap between two sets' mean AUCs is no larger than
    the mean spread over folds: then no set is ranked above another.
    """
    need = ["model", "features", "k", "auc_mean", "auc_std"]
    if not isinstance(by_set, pd.DataFrame) or any(c not in by_set.columns for c in need) or by_set.empty:
        raise ElensError(f"feature_set_findings() takes one row per model and feature set (columns {need}).")
    means = by_set.groupby("features", sort=False)["auc_mean"].mean()
    spread = float(by_set["auc_std"].mean())
    gap = float(means.max() - means.min())
    head = (
        f"- **{label}** (k = {int(by_set['k'].iloc[0])}, mean AUC over {by_set['model'].nunique()} "
        "model" + ("s" if by_set["model"].nunique() > 1 else "") + "): "
        + ", ".join(f"{name} {auc:.3f}" for name, auc in means.items())
        + "."
    )
    if len(means) < 2:
        return head
    if gap <= spread:
        return head + (
            f" The sets differ by at most {gap:.3f}, no more than the spread over folds (sd {spread:.3f}): "
            "they are not distinguishable here, and none is ranked above another."
        )
    wins = by_set.loc[by_set.groupby("model", sort=False)["auc_mean"].idxmax(), "features"].value_counts()
    return head + (
        f" The largest gap, {gap:.3f}, exceeds the spread over folds (sd {spread:.3f}). Best set per model: "
        + ", ".join(f"{name} ({count})" for name, count in wins.items())
        + "."
    )


def transfer_findings(transfer: pd.DataFrame, label: str = "Task type", drop_level: float = 0.02) -> list[str]:
    """One Markdown bullet on a :func:`~elens_utils.analysis.classify.transfer_sweep` result, per model:
    the AUC on all prompts (CV), trained on one phrasing and tested on the other (mean of both
    directions), and on a held-out story variant (mean of the four); then how much holding out
    the phrasing lowers the AUC on average (more than ``drop_level``: part of the signal is the
    wording).
    """
    cv_rows = transfer[transfer["factor"] == "cv"].set_index("model")["auc"]
    ok = transfer[transfer["status"] == "ok"]
    phr = ok[ok["factor"] == "phrasing"].groupby("model", sort=False)["auc"].mean()
    var = ok[ok["factor"] == "variant"].groupby("model", sort=False)["auc"].mean()
    line = (
        f"- **{label}**: AUC on all prompts (CV) / trained on one phrasing and tested on the other / "
        "a held-out story variant: "
        + "; ".join(
            f"`{m}` {cv_rows[m]:.3f} / {phr.get(m, float('nan')):.3f} / {var.get(m, float('nan')):.3f}"
            for m in cv_rows.index
        )
        + "."
    )
    cv_all = transfer[transfer["factor"] == "cv"].set_index("model")
    flat = [m for m in cv_all.index if cv_all.loc[m, "auc"] - cv_all.loc[m, "dummy_auc"] <= cv_all.loc[m, "auc_std"]]
    if flat:
        line += (
            f" {', '.join(f'`{m}`' for m in flat)}: the AUC on all prompts is within one fold sd of the "
            "dummy's, so there is no task signal whose transfer could be tested (no evidence either way)."
        )
    phr = phr.drop([m for m in flat if m in phr.index])
    if len(phr):
        drop = float((cv_rows[phr.index] - phr).mean())
        line += (
            f" Holding out the phrasing lowers the AUC by {drop:.3f} on average: part of what the kNN "
            "recognises is the instruction's wording, not only the task."
            if drop > drop_level
            else f" Holding out the phrasing changes the AUC by {-drop:+.3f} on average: the task signal "
            "does not hang on the wording here."
        )
    return [line]
