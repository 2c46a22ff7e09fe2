"""Real models, the zoo and the paper side by side: the tables that close the chapters.

Each chapter runs its experiment on the zoo (small models trained by the project on its story
world) and on real pretrained models (:mod:`elens_utils.models.real_models`), and states what the paper
reports for the same experiment. The functions here put the measured rows of both groups in one
table with their counts, and add the paper's row in words only: a number is never shown as the
paper's unless the paper gives it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.data.fact_questions import wilson_interval
from elens_utils.entropy.profiles import Profiles

__all__ = [
    "AUC_CEILING",
    "GROUP_ORDER",
    "sort_by_group",
    "KNN_VERDICTS",
    "QUANTIZATION_RESULTS",
    "blank_prompt_comparison",
    "blank_prompt_findings",
    "knn_comparison",
    "knn_findings",
    "knn_verdict",
    "knn_verdict_names",
    "family_comparison",
    "model_group",
    "quantization_caveat",
    "transfer_findings",
    "unembedding_rows",
]

GROUP_ORDER = ("real", "zoo", "other")

QUANTIZATION_RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "quantization-zoo.json"
"""What 4-bit quantization does to the zoo's profiles (``benchmarks/quantization_zoo.py``)."""


def sort_by_group(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its rows in the order of :data:`GROUP_ORDER` by its ``group`` column,
    stable within a group, index reset."""
    order = table["group"].map({g: i for i, g in enumerate(GROUP_ORDER)})
    return table.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def model_group(name: str) -> str:
    """``"real"`` for real pretrained models (``real/...``, ``.gguf`` files, Hub ids and other
    directories), ``"zoo"`` for the project's zoo (``zoo/...``); ``"other"`` for the random
    stand-ins (``tiny/...``, ``untrained/...``)."""
    if name.startswith("zoo/"):
        return "zoo"
    if name.startswith(("tiny/", "untrained/")):
        return "other"
    return "real"


def unembedding_rows(name: str) -> int:
    """Rows V of a model's unembedding, from its config (no weights are loaded): the ``V`` of
    ``log V``, padded rows included (Qwen3)."""
    from transformers import AutoConfig

    from elens_utils.models.registry import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(name))
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(text.vocab_size)


def blank_prompt_comparison(
    profiles: Sequence[Profiles],
    vocab_sizes: Mapping[str, int] | None = None,
    paper: str | None = None,
    alpha: float = 1.0,
) -> pd.DataFrame:
    """One row per model of blank-prompt profiles: their shape along relative depth, with counts.

    Each profile is averaged over its generated tokens, then over the model's samples (the
    paper's "mean" aggregation), giving a mean profile ``H_1..H_L`` in nats.

    Args:
        profiles: one :class:`Profiles` per model (raw, one entry per block).
        vocab_sizes: ``model -> V`` (rows of the unembedding), for ``log V``; None: read from
            each model's config (:func:`unembedding_rows`).
        paper: the paper's setting in words, added as a last row with no numbers.
        alpha: the entropy order (1.0: Shannon).

    Returns:
        Columns ``group`` (real / zoo / other / paper), ``model``, ``L``, ``samples``,
        ``tokens``, ``log V``, ``H block 1``, ``peak H``, ``peak at l/L`` (relative depth of the
        highest mean entropy), ``H block L``, ``peak / log V``, ``expanding steps`` (share of
        the L-1 block-to-block steps with dH > 0); the paper's row holds its setting in
        ``model`` and NaN elsewhere. Rows are ordered real, zoo, other, then paper.
    """
    if not profiles:
        raise ElensError("blank_prompt_comparison() needs at least one Profiles.")
    rows = []
    for p in profiles:
        if (p.meta["depth_grid"] != "raw").any():
            raise ElensError("blank_prompt_comparison() takes raw profiles, not resampled or padded ones.")
        name = str(p.meta["model"].iloc[0])
        if vocab_sizes is None:
            v = unembedding_rows(name)
        elif name in vocab_sizes:
            v = vocab_sizes[name]
        else:
            raise ElensError(f"blank_prompt_comparison(): no vocabulary size given for '{name}'.")
        h = p.select(alpha).mean(axis=(0, 1))  # [L]
        L = h.shape[0]
        peak = int(np.argmax(h))
        log_v = math.log(v)
        rows.append(
            {
                "group": model_group(name),
                "model": name,
                "L": L,
                "samples": int(p.entropy.shape[0]),
                "tokens": int(p.entropy.shape[1]),
                "log V": log_v,
                "H block 1": float(h[0]),
                "peak H": float(h[peak]),
                "peak at l/L": (peak + 1) / L,
                "H block L": float(h[-1]),
                "peak / log V": float(h[peak]) / log_v,
                "expanding steps": float((np.diff(h) > 0).mean()) if L > 1 else float("nan"),
            }
        )
    table = pd.DataFrame(rows)
    table = sort_by_group(table)
    if paper is not None:
        table = pd.concat([table, pd.DataFrame([{"group": "paper", "model": paper}])], ignore_index=True)
    # Counts stay whole numbers beside the paper's blank row (NaN would make them floats).
    return table.astype({"L": "Int64", "samples": "Int64", "tokens": "Int64"})


def quantization_caveat(path: str | Path | None = None, qtype: str = "Q4_1", experiment: str = "family") -> str:
    """One sentence, from the measured file, on how far ``qtype`` moves the zoo's profiles.

    The real models are 4-bit quantized; the zoo's unquantized weights let the project measure
    what that does (``benchmarks/quantization_zoo.py``, which writes the file read here: by
    default :data:`QUANTIZATION_RESULTS`). The sentence quotes the run's mean ``|dH|`` at the
    same tokens (range over models, share of log V) and what quantization does to the run's kNN
    AUC: for the ``"family"`` run (one kNN over all models) the AUC with float and with quantized
    weights; for the ``"task"`` run (one kNN per model) the mean and largest change over the
    models, beside the change a float re-run with another seed makes.

    Raises:
        ElensError: the file is missing or holds no ``experiment`` run of ``qtype``.
    """
    path = Path(path) if path is not None else QUANTIZATION_RESULTS
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ElensError(f"No quantization results at {path}: run `python benchmarks/quantization_zoo.py`.") from err
    run = next((r for r in results.get("runs", []) if r.get("experiment") == experiment and r.get("qtype") == qtype), None)
    if run is None:
        raise ElensError(f"{path} has no {experiment} run of {qtype}: re-run benchmarks/quantization_zoo.py.")
    summary = run["summary"]
    auc = {(row["scope"], row["weights"]): row["auc_mean"] for row in run["knn"]}
    scopes = list(dict.fromkeys(row["scope"] for row in run["knn"]))
    what = {"family": "family", "task": "task-type"}.get(experiment, experiment)
    if len(scopes) == 1:
        moved = f"the {what} kNN AUC from {auc[scopes[0], 'float']:.3f} to {auc[scopes[0], 'quantized']:.3f}"
    else:
        quantized = [abs(auc[s, "quantized"] - auc[s, "float"]) for s in scopes]
        reseeded = [abs(auc[s, "float, seed 1"] - auc[s, "float"]) for s in scopes if (s, "float, seed 1") in auc]
        moved = (
            f"the {what} kNN AUC by {np.mean(quantized):.3f} on average over the {len(scopes)} models "
            f"(at most {max(quantized):.3f}" + (f"; a re-run with another seed: {np.mean(reseeded):.3f}" if reseeded else "") + ")"
        )
    lo, hi = summary["token_dh_mean_range"]
    return (
        f"On the zoo's {len(results['models'])} models, {qtype} quantization (the scheme of the SmolLM2 "
        f"file) moves the lens entropy by {summary['token_dh_mean']:.3f} nats on average at the same "
        f"tokens ({lo:.3f}-{hi:.3f} per model, {100 * summary['token_dh_mean_rel']:.1f}% of log V), and "
        f"{moved}; sampling again "
        f"with another seed moves the kNN features {summary['resample_feature_dh_mean'] / summary['feature_dh_mean']:.1f} "
        "times as far as quantization does (benchmarks/quantization-zoo.json)."
    )


def blank_prompt_findings(table: pd.DataFrame) -> list[str]:
    """Markdown bullet lines on the real models of a :func:`blank_prompt_comparison` table.

    For each real model: where its mean blank-prompt profile peaks along relative depth and how
    high (nats and share of log V), its first and last block; then how the real models' peaks
    compare with the zoo's, as shares of log V. Empty when the table has no real model.
    """
    real = table[table["group"] == "real"]
    zoo = table[table["group"] == "zoo"]
    lines = []
    for _, r in real.iterrows():
        lines.append(
            f"- **{r['model']}** ({int(r['L'])} blocks, {int(r['samples'])} samples x {int(r['tokens'])} tokens): "
            f"{r['H block 1']:.2f} nats at block 1, a peak of {r['peak H']:.2f} nats "
            f"({100 * r['peak / log V']:.0f}% of log V) at relative depth {r['peak at l/L']:.2f}, "
            f"{r['H block L']:.2f} nats at the last block; {100 * r['expanding steps']:.0f}% of its "
            "block-to-block steps expand."
        )
    if len(real) and len(zoo):
        lines.append(
            f"- **Real against zoo**: the real models' profiles peak at "
            f"{_span(100 * real['peak / log V'])}% of log V, the zoo's at {_span(100 * zoo['peak / log V'])}%; "
            f"the peaks sit at relative depth {_span(real['peak at l/L'], 2)} (real) and "
            f"{_span(zoo['peak at l/L'], 2)} (zoo)."
        )
    return lines


def _span(values: pd.Series, digits: int = 0) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:.{digits}f}" if round(lo, digits) == round(hi, digits) else f"{lo:.{digits}f}-{hi:.{digits}f}"


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


# ---------------------------------------------------------------------------------------------
# kNN scores (task type, output format): real models, zoo and the paper's claim

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
    measures nothing more); when at least half are at ceiling, the line says how many. Empty
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
            f"{name}: AUC {_span(g['AUC'], 2)} over {len(g)} model{'s' if len(g) > 1 else ''} "
            f"({_span(g['prompts'])} prompts each), {int((g['AUC'] > level).sum())} of {len(g)} above {level:g}"
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
            text += (
                f", {counts['at ceiling']} of {len(g)} at ceiling, where the run can say no more than that the "
                "threshold is met"
            )
        verdicts.append(text)
    lines.append(
        f"- **Beside the paper**: its headline claim is {claim}{setting}; it gives no per-model number to set "
        f"beside these. " + _capitalise("; ".join(verdicts)) + "."
    )
    return lines


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


__all__ += ["OVERLAP_RATIOS", "overlap_verdict"]


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


__all__ += ["feature_set_findings"]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]



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


# ---------------------------------------------------------------------------------------------
# correctness (chapter 6): real models' accuracy and the kNN of "answered correctly"

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
            text += f" {_capitalise(_feature_words(r['features']))}: {_auc_words(r)}: **{v}**."
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
                    "undecided": "undecided (no evidence either way)",
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
        lines.append(
            "- **Beside the paper**: its earlier version (v1/v2) claimed that the entropy profile tells whether a "
            "model answered a question correctly (MMLU in four prompt styles, 8 greedy tokens, the mean profile, kNN "
            "binary AUC); we found no number for it in the paper, so none is quoted as the paper's, and the "
            f"{level:g} of the verdicts is the paper's headline level for family, task and format, not a correctness "
            f"result. {summary}." + tail
        )
    return lines


def _feature_words(name: object) -> str:
    return CORRECTNESS_FEATURE_WORDS.get(str(name), str(name))


def _auc_words(r: pd.Series) -> str:
    p = "p undefined" if math.isnan(float(r["p_value"])) else f"p = {float(r['p_value']):.2g}"
    return (
        f"AUC {r['auc_mean']:.3f} (sd {r['auc_std']:.3f} over folds) against a dummy at "
        f"{r['dummy_auc_mean']:.3f} ({p})"
    )


__all__ += ["CORRECTNESS_FEATURE_WORDS", "CORRECTNESS_OUTCOMES", "correctness_findings", "correctness_outcomes", "subject_baseline_auc"]
