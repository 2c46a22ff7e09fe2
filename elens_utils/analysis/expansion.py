"""Expansion and pruning over several models: the top-p check and layer skipping, per model.

The chapter "Expansion and pruning" runs two experiments of the paper (v3) on a list of models,
one model in memory at a time. The numerics live in :mod:`elens_utils.analysis.candidates` (top-p sets,
Spearman) and :mod:`elens_utils.analysis.interventions` (ranking, skipping, multiple choice); this module
loops over the models and turns the results into tidy tables for the charts.

* :func:`candidate_check`: per model, the Spearman correlation between ``dH_l`` and the change
  in the size of the top-p candidate set from block ``l - 1`` to ``l`` (the paper: p = 0.6), the
  sign agreement of the two changes, and the Jaccard overlap of adjacent blocks' sets, pooled
  over prompts and generated tokens and per block transition.
* :func:`block_ranking`: the mean dH per block that ranks the blocks (from the profiles'
  first ``rank_tokens`` generation steps, :func:`first_tokens`).
* :func:`skip_sweep`: :func:`~elens_utils.analysis.interventions.skip_experiment` per model
  (baseline; the k blocks of largest expansion, of largest pruning, k random blocks over several
  seeds), and :func:`skip_summary`, one row per model and k.

Blocks are numbered 1..L; ``dH_l = H_l - H_(l-1)`` belongs to block ``l = 2..L`` (see
:mod:`elens_utils.analysis.interventions`). "Skip" is the in-place bypass of
:func:`~elens_utils.analysis.interventions.skip_blocks`: the block's output is replaced by its input.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from elens_utils.analysis.candidates import candidate_set_sizes, spearman_delta_vs_size
from elens_utils.analysis.interventions import rank_blocks, skip_experiment
from elens_utils.core.checks import positive_int
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles
from elens_utils.lens.loading import LensModel, load_model
from elens_utils.sweeps.sweep import release_memory

__all__ = [
    "CandidateCheck",
    "expansion_sign_findings",
    "skip_family_findings",
    "block_ranking",
    "candidate_check",
    "first_tokens",
    "gap_se",
    "loaded_models",
    "SKIP_VERDICTS",
    "skip_comparison",
    "skip_findings",
    "skip_summary",
    "skip_sweep",
    "skip_verdict",
]

Prompts = Sequence["str | Sequence[int]"]


def first_tokens(profiles: Profiles, n_tokens: int) -> Profiles:
    """The profiles of the first ``n_tokens`` generation steps only: ``[N, n_tokens, L, A]``.

    Step 1 is the lens at the last prompt position, the prediction of the first generated token
    (for a multiple-choice prompt ending at ``"Answer:"``: the answer letter). The metadata
    (prompts, generated ids, settings) is kept as it is.
    """
    if not isinstance(profiles, Profiles):
        raise ElensError(f"Expected a Profiles object; got {type(profiles).__name__}.")
    n_tokens = positive_int(n_tokens, "n_tokens")
    if n_tokens > profiles.n_tokens:
        raise ElensError(
            f"Asked for the first {n_tokens} tokens of profiles with T = {profiles.n_tokens} "
            "generated tokens: generate at least that many."
        )
    return Profiles(
        profiles.entropy[:, :n_tokens], profiles.alphas, profiles.meta
    )


def loaded_models(
    models: Sequence[str | os.PathLike[str]],
    *,
    device: str = "auto",
    dtype: str = "auto",
    **load_kwargs: Any,
) -> Iterator[LensModel]:
    """Load the models one after the other; each is released before the next is loaded.

    Use as ``for lm in loaded_models(names): ...`` and keep no reference to ``lm`` after its
    iteration, so that the peak memory is that of the largest model. ``load_kwargs`` go to
    :func:`~elens_utils.lens.loading.load_model`.
    """
    if isinstance(models, (str, bytes, os.PathLike)):
        raise ElensError("Pass a list of models, not a single name.")
    for name in models:
        lm = load_model(name, device=device, dtype=dtype, **load_kwargs)
        try:
            yield lm
        finally:
            del lm
            release_memory()


def check_model_profiles(
    models: Sequence[str], profiles: Sequence[Profiles], what: str
) -> list[Profiles]:
    """``profiles`` as a list with one :class:`Profiles` per model, in order, or an :class:`ElensError`."""
    profiles = list(profiles)
    if len(profiles) != len(models):
        raise ElensError(
            f"Got {len(profiles)} {what} for {len(models)} models: pass one Profiles per model, in order."
        )
    for name, prof in zip(models, profiles):
        if not isinstance(prof, Profiles):
            raise ElensError(
                f"{what} must be Profiles objects; got {type(prof).__name__}."
            )
        have = prof.meta["model"].unique().tolist()
        if have != [os.fspath(name)]:
            raise ElensError(
                f"The {what} given for model {name!r} are of {have}: pass the profiles in the order "
                "of the models (profile_models returns them so)."
            )
    return profiles


# --------------------------------------------------------------------------------------------
# the top-p candidate-set check


@dataclass(frozen=True)
class CandidateCheck:
    """Top-p candidate sets against dH, per model (:func:`candidate_check`).

    Attributes:
        p: the mass threshold of the sets.
        summary: one row per model: ``model``, ``n_layers``, ``rho`` (Spearman of dH against
            the change in set size, over every prompt x token x block transition),
            ``pvalue`` (scipy's, treating the pairs as independent, which they are not),
            ``rho_log`` (against the change in log size), ``sign_agreement`` (share of the
            pairs whose set size changes in which dH has the sign of that change),
            ``mean_jaccard`` (mean overlap of adjacent blocks' sets), ``mean_size`` (mean set
            size, tokens) and ``n_pairs``.
        transitions: one row per model and block ``l = 2..L``: ``block``, ``depth`` (l / L),
            ``transition`` (``"1->2"``), the means over prompts and tokens of ``dH`` (nats),
            ``d_size`` (tokens), ``size`` (tokens, block l) and ``jaccard`` (blocks l-1, l),
            and ``n`` (pairs averaged).
    """

    p: float
    summary: pd.DataFrame
    transitions: pd.DataFrame


def candidate_check(
    models: Sequence[str | os.PathLike[str]],
    prompts: Prompts | Callable[[str], Prompts],
    profiles: Sequence[Profiles],
    *,
    p: float = 0.6,
    alpha: float = 1.0,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 8,
    progress: bool | None = None,
) -> CandidateCheck:
    """Top-p candidate-set sizes and overlaps of every block against dH, for each model.

    Args:
        models: the model names, in the order of ``profiles``.
        prompts: the prompts the profiles were generated from (or ``model -> prompts``).
        profiles: raw profiles of each model (e.g. from :func:`~elens_utils.profile_models`);
            their generated tokens are replayed in one teacher-forced pass per batch
            (:func:`~elens_utils.analysis.candidates.candidate_set_sizes`), nothing is generated again.
        p: the mass threshold (the paper: 0.6).
        alpha: the Renyi order whose dH is correlated (1 = Shannon).
        device, dtype, batch_size, progress: for loading and the forward passes.

    Returns:
        A :class:`CandidateCheck`.
    """
    names = [os.fspath(m) for m in models]
    profiles = check_model_profiles(names, profiles, "profiles")
    summaries, transitions = [], []
    for lm, prof in zip(loaded_models(names, device=device, dtype=dtype), profiles):
        these = prompts(lm.name) if callable(prompts) else prompts
        sets = candidate_set_sizes(
            lm, these, p=p, profiles=prof, batch_size=batch_size, progress=progress
        )
        d_h = prof.delta()[..., prof._alpha_index(alpha)].astype(np.float64)  # [N, T, L-1]
        d_s = np.diff(sets.sizes.astype(np.float64), axis=2)
        summaries.append(_candidate_summary(prof, sets.sizes, sets.jaccard, d_h, d_s, alpha))
        transitions.append(_candidate_transitions(prof, sets.sizes, sets.jaccard, d_h, d_s))
    return CandidateCheck(
        p=float(p),
        summary=pd.DataFrame(summaries),
        transitions=pd.concat(transitions, ignore_index=True),
    )


def _candidate_summary(
    prof: Profiles, sizes: np.ndarray, overlap: np.ndarray, d_h: np.ndarray, d_s: np.ndarray, alpha: float
) -> dict[str, Any]:
    """One model's row of :attr:`CandidateCheck.summary` (sizes ``[N, T, L]``; overlap, dH and
    the change of size ``[N, T, L-1]``)."""
    plain = spearman_delta_vs_size(prof, sizes, alpha=alpha).iloc[0]
    logged = spearman_delta_vs_size(prof, sizes, alpha=alpha, log_sizes=True).iloc[0]
    d_h, d_s = d_h.ravel(), d_s.ravel()
    moved = d_s != 0
    agree = (
        float(np.mean(np.sign(d_h[moved]) == np.sign(d_s[moved])))
        if moved.any()
        else math.nan
    )
    return {
        "model": str(prof.meta["model"].iloc[0]),
        "n_layers": prof.n_layers,
        "rho": float(plain["rho"]),
        "pvalue": float(plain["pvalue"]),
        "rho_log": float(logged["rho"]),
        "sign_agreement": agree,
        "mean_jaccard": float(overlap.mean()),
        "mean_size": float(sizes.mean()),
        "n_pairs": int(plain["n_pairs"]),
    }


def _candidate_transitions(
    prof: Profiles, sizes: np.ndarray, overlap: np.ndarray, d_h: np.ndarray, d_s: np.ndarray
) -> pd.DataFrame:
    n_layers = prof.n_layers
    blocks = np.arange(2, n_layers + 1)
    return pd.DataFrame(
        {
            "model": str(prof.meta["model"].iloc[0]),
            "n_layers": n_layers,
            "block": blocks,
            "depth": blocks / n_layers,
            "transition": [f"{b - 1}->{b}" for b in blocks],
            "dH": d_h.mean(axis=(0, 1)),
            "d_size": d_s.mean(axis=(0, 1)),
            "size": sizes[..., 1:].astype(np.float64).mean(axis=(0, 1)),
            "jaccard": overlap.mean(axis=(0, 1)),
            "n": d_h.shape[0] * d_h.shape[1],
        }
    )


# --------------------------------------------------------------------------------------------
# ranking and skipping


def block_ranking(
    profiles: Sequence[Profiles], *, rank_tokens: int = 1, alpha: float = 1.0
) -> pd.DataFrame:
    """:func:`~elens_utils.analysis.interventions.rank_blocks` of each model, from its first ``rank_tokens`` steps.

    Returns:
        The rank tables one under the other, with ``model``, ``n_layers`` and ``depth``
        (block / L) in front: one row per model and block ``2..L``; ``expansion_rank`` 1 is the
        block of largest mean dH, ``pruning_rank`` 1 the block of most negative mean dH.
    """
    frames = []
    for prof in profiles:
        table = rank_blocks(first_tokens(prof, rank_tokens), alpha)
        table.insert(0, "model", str(prof.meta["model"].iloc[0]))
        table.insert(1, "n_layers", prof.n_layers)
        table.insert(3, "depth", table["block"] / prof.n_layers)
        frames.append(table)
    if not frames:
        raise ElensError("block_ranking() needs the profiles of at least one model.")
    return pd.concat(frames, ignore_index=True)


def skip_sweep(
    models: Sequence[str | os.PathLike[str]],
    questions: pd.DataFrame,
    ranking_profiles: Sequence[Profiles],
    *,
    ks: Sequence[int] = (1, 2, 3),
    n_random_seeds: int = 5,
    rank_tokens: int = 1,
    alpha: float = 1.0,
    seed: int = 0,
    answer_col: str = "answer",
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 8,
    progress: bool | None = None,
    **mc_kwargs: Any,
) -> pd.DataFrame:
    """Multiple-choice accuracy of each model with its expansion, pruning or random blocks skipped.

    Per model, :func:`~elens_utils.analysis.interventions.skip_experiment` on ``questions`` with the
    blocks ranked by that model's ``ranking_profiles`` cut to their first ``rank_tokens`` steps
    (:func:`first_tokens`; 1 = the answer position). A model with L blocks can skip at most
    L - 1 of the ranked blocks 2..L: larger k are left out for it (its ``ks_dropped`` column
    says which).

    Args:
        models: the model names, in the order of ``ranking_profiles``.
        questions: multiple-choice questions (:func:`elens_utils.data.prompts.multiple_choice`): a
            ``prompt`` column and the correct letter in ``answer_col``.
        ranking_profiles: raw profiles of each model, of prompts other than ``questions``
            (e.g. other questions of the same set), that rank its blocks.
        ks, n_random_seeds, alpha, seed: see :func:`~elens_utils.analysis.interventions.skip_experiment`.
        rank_tokens: generation steps averaged for the ranking.
        answer_col: the column with the correct letter (``"answer"`` in ``data`` frames).
        device, dtype, batch_size, progress: loading and batching.
        **mc_kwargs: ``prompt_col``, ``letters``, ``separator`` for the scoring.

    Returns:
        The rows of every model's ``skip_experiment`` (strategy, k, seed, accuracy, n_correct,
        n_questions, chance, blocks) with ``model``, ``n_layers`` in front, ``blocks_text`` (the
        skipped blocks as text, for tooltips) and ``ks_dropped``.
    """
    names = [os.fspath(m) for m in models]
    ranking_profiles = check_model_profiles(
        names, ranking_profiles, "ranking profiles"
    )
    if isinstance(ks, (numbers.Integral, np.integer)):
        ks = (int(ks),)
    ks = list(ks)
    frames = []
    for lm, prof in zip(
        loaded_models(names, device=device, dtype=dtype), ranking_profiles
    ):
        usable = [
            k for k in ks if not isinstance(k, numbers.Integral) or k < lm.n_layers
        ]
        dropped = [k for k in ks if k not in usable]
        res = skip_experiment(
            lm,
            questions,
            first_tokens(prof, rank_tokens),
            usable,
            n_random_seeds,
            alpha=alpha,
            seed=seed,
            answer_col=answer_col,
            batch_size=batch_size,
            progress=progress,
            **mc_kwargs,
        )
        res.insert(0, "model", lm.name)
        res.insert(1, "n_layers", lm.n_layers)
        res["blocks_text"] = [", ".join(map(str, b)) or "none" for b in res["blocks"]]
        res["ks_dropped"] = [list(dropped)] * len(res)
        frames.append(res)
    return pd.concat(frames, ignore_index=True)


def skip_summary(results: pd.DataFrame) -> pd.DataFrame:
    """One row per model and k of a :func:`skip_sweep` result.

    Columns: ``model``, ``k``, ``baseline``, ``expansion``, ``pruning`` (accuracies),
    ``random_mean``, ``random_min``, ``random_max`` (over the random draws; NaN without
    any), ``chance``, ``n_questions``, ``se`` (the binomial standard error of the baseline
    accuracy, ``sqrt(b (1 - b) / n)``), ``se_gap`` (the standard error of the gap between the
    expansion and pruning accuracies ``e`` and ``q``, ``sqrt(e (1 - e) / n + q (1 - q) / n)``,
    as for independent samples: it is not zero when the baseline is at 100%),
    ``expansion_blocks``, ``pruning_blocks`` (text) and ``more_critical``:
    ``"expansion"`` when skipping the expansion blocks costs more accuracy than skipping the
    pruning blocks, ``"pruning"`` for the reverse, ``"tie"`` when both give the same accuracy;
    ``clear``: the gap between the two exceeds ``2 se_gap`` (a rough yardstick: both
    accuracies are measured on the same questions, so this is not a formal test).
    """
    need = [
        "model",
        "strategy",
        "k",
        "accuracy",
        "chance",
        "n_questions",
        "blocks_text",
    ]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise ElensError(
            f"skip_summary() takes a skip_sweep() result; the frame lacks {missing}."
        )
    rows = []
    for model, g in results.groupby("model", sort=False):
        base = g[g["strategy"] == "baseline"]
        if len(base) != 1:
            raise ElensError(
                f"Model {model!r} has {len(base)} baseline rows; expected one."
            )
        for k in sorted(g.loc[g["k"] > 0, "k"].unique()):
            at = g[g["k"] == k]
            exp = at[at["strategy"] == "expansion"]
            pru = at[at["strategy"] == "pruning"]
            rnd = at.loc[at["strategy"] == "random", "accuracy"]
            if len(exp) != 1 or len(pru) != 1:
                raise ElensError(
                    f"Model {model!r}, k = {k}: expected one expansion and one pruning row."
                )
            e, q = float(exp["accuracy"].iloc[0]), float(pru["accuracy"].iloc[0])
            b, n_q = float(base["accuracy"].iloc[0]), int(base["n_questions"].iloc[0])
            se = math.sqrt(b * (1 - b) / n_q)
            se_gap = gap_se(e, q, n_q)
            rows.append(
                {
                    "model": model,
                    "k": int(k),
                    "baseline": b,
                    "expansion": e,
                    "pruning": q,
                    "random_mean": float(rnd.mean()) if len(rnd) else math.nan,
                    "random_min": float(rnd.min()) if len(rnd) else math.nan,
                    "random_max": float(rnd.max()) if len(rnd) else math.nan,
                    "chance": float(base["chance"].iloc[0]),
                    "n_questions": n_q,
                    "se": se,
                    "se_gap": se_gap,
                    "expansion_blocks": exp["blocks_text"].iloc[0],
                    "pruning_blocks": pru["blocks_text"].iloc[0],
                    "more_critical": "expansion"
                    if e < q
                    else "pruning"
                    if q < e
                    else "tie",
                    "clear": abs(e - q) > 2 * se_gap,
                }
            )
    return pd.DataFrame(rows)


#: The verdicts of :func:`skip_verdict`, in the order tables list them.
SKIP_VERDICTS: tuple[str, ...] = (
    "expansion more critical",
    "pruning more critical",
    "no clear difference",
    "at chance without skipping",
)


def gap_se(e: float, q: float, n: int) -> float:
    """Standard error of the difference of two accuracies ``e``, ``q`` over ``n`` questions each."""
    return math.sqrt(e * (1 - e) / n + q * (1 - q) / n)


def skip_verdict(baseline: float, chance: float, expansion: float, pruning: float, n_questions: int) -> str:
    """What one (model, k) row of :func:`skip_summary` shows, by fixed rules.

    ``se = sqrt(b (1 - b) / n)`` is the binomial standard error of the unskipped accuracy ``b``.
    A model whose ``b`` does not exceed ``chance`` by more than ``2 se`` has nothing for a skip
    to take away: ``"at chance without skipping"`` (no evidence either way). Otherwise the
    strategy whose skip costs more accuracy is ``"... more critical"`` when the two accuracies
    ``e`` and ``q`` differ by more than ``2 se_gap``, ``se_gap = sqrt(e (1 - e) / n + q (1 - q) / n)``,
    and ``"no clear difference"`` when they do not. (Both accuracies are measured on the same
    questions, so ``2 se_gap`` is a yardstick, not a test.)
    """
    if n_questions < 1:
        raise ElensError(f"skip_verdict(): n_questions must be >= 1; got {n_questions}.")
    se = math.sqrt(baseline * (1 - baseline) / n_questions)
    if baseline <= chance + 2 * se:
        return "at chance without skipping"
    if abs(expansion - pruning) <= 2 * gap_se(expansion, pruning, n_questions):
        return "no clear difference"
    return "expansion more critical" if expansion < pruning else "pruning more critical"


def skip_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    """A :func:`skip_summary` table as the chapter's side-by-side table, real models first.

    Columns: ``group`` (real / zoo / other, :func:`elens_utils.analysis.comparison.model_group`),
    ``model``, ``verdict`` (:func:`skip_verdict`; beside the model, so a table too wide for the
    page still shows it), ``k``, ``no skip``, ``expansion``, ``pruning``, ``random`` (mean of
    the draws), ``2 se`` (twice the gap's standard error, :func:`skip_verdict`) and
    ``questions``.
    """
    from elens_utils.analysis.comparison import model_group, sort_by_group

    need = ["model", "k", "baseline", "expansion", "pruning", "random_mean", "chance", "n_questions"]
    missing = [c for c in need if c not in summary.columns]
    if missing:
        raise ElensError(f"skip_comparison() takes a skip_summary() table; it lacks {missing}.")
    table = pd.DataFrame(
        {
            "group": [model_group(str(m)) for m in summary["model"]],
            "model": summary["model"].astype(str).to_numpy(),
            "verdict": [
                skip_verdict(r.baseline, r.chance, r.expansion, r.pruning, int(r.n_questions))
                for r in summary.itertuples()
            ],
            "k": summary["k"].astype(int).to_numpy(),
            "no skip": summary["baseline"].to_numpy(dtype=float),
            "expansion": summary["expansion"].to_numpy(dtype=float),
            "pruning": summary["pruning"].to_numpy(dtype=float),
            "random": summary["random_mean"].to_numpy(dtype=float),
            "2 se": [2 * gap_se(r.expansion, r.pruning, int(r.n_questions)) for r in summary.itertuples()],
            "questions": summary["n_questions"].astype(int).to_numpy(),
        }
    )
    return sort_by_group(table)


def expansion_sign_findings(ranks: pd.DataFrame, ks: Sequence[int]) -> str | None:
    """One Markdown bullet when the "expansion" (or "pruning") blocks of some k are not all
    blocks that expand (prune), or None when they all are.

    Args:
        ranks: :func:`block_ranking` (``model``, ``block``, ``mean_dH``).
        ks: the numbers of blocks skipped.

    The ``k`` blocks of largest mean dH are the "expansion" set whatever the sign of their dH:
    a model with ``m`` blocks of mean dH > 0 has, for ``k > m``, ``k - m`` blocks in its
    expansion set that do not expand (the blocks that prune least). The same holds for pruning
    with mean dH < 0.
    """
    need = ["model", "block", "mean_dH"]
    if not isinstance(ranks, pd.DataFrame) or any(c not in ranks.columns for c in need):
        raise ElensError(f"expansion_sign_findings() takes a block_ranking() table (columns {need}).")
    ks = sorted(int(k) for k in ks)
    short = {"expansion": [], "pruning": []}
    counts, cases = [], 0
    for model, g in ranks.groupby("model", sort=False):
        n_up, n_down = int((g["mean_dH"] > 0).sum()), int((g["mean_dH"] < 0).sum())
        counts.append(f"`{model}` {n_up}/{n_down}")
        for k in ks:
            if k > len(g):
                continue
            cases += 1
            if k > n_up:
                short["expansion"].append((model, k))
            if k > n_down:
                short["pruning"].append((model, k))
    if not short["expansion"] and not short["pruning"]:
        return None
    parts, meanings = [], []
    for what, sign, other in (
        ("expansion", "expand (their mean dH is at most 0)", "prune least"),
        ("pruning", "prune (their mean dH is at least 0)", "expand least"),
    ):
        if short[what]:
            parts.append(f"in {len(short[what])} of {cases} (model, k) cases the {what} set holds blocks that do not {sign}")
            meanings.append(f'"{what}" there means the blocks that {other}')
    return (
        "- **What the sets are**: blocks that expand / prune, per model: " + ", ".join(counts) + ". A set is the k "
        "blocks of largest (smallest) mean dH whatever its sign, so " + " and ".join(parts) + "; "
        + " and ".join(meanings) + "."
    )


def skip_family_findings(table: pd.DataFrame) -> str | None:
    """One Markdown bullet counting :func:`skip_comparison` verdicts per model family, or None
    with fewer than two families: a verdict pooled over families can hide families that go
    opposite ways."""
    from elens_utils.analysis.classify import family_of

    if not isinstance(table, pd.DataFrame) or any(c not in table.columns for c in ("model", "verdict")):
        raise ElensError("skip_family_findings() takes a skip_comparison() table.")
    fam = table["model"].map(lambda m: family_of(str(m)))
    if fam.nunique() < 2:
        return None
    parts = []
    for name, g in table.groupby(fam, sort=False):
        counts = g["verdict"].value_counts()
        parts.append(f"{name}: " + ", ".join(f"{counts[v]} {v}" for v in SKIP_VERDICTS if v in counts))
    return "- **By family** (cases of a model and a k): " + "; ".join(parts) + "."



def skip_findings(table: pd.DataFrame) -> list[str]:
    """Markdown bullet lines on a :func:`skip_comparison` table: one per model (its verdicts
    over k, with the accuracies behind them) and one that counts the verdicts per group."""
    lines = []
    for model, g in table.groupby("model", sort=False):
        parts = [
            f"k = {r['k']}: no skip {r['no skip']:.0%}, expansion {r['expansion']:.0%}, pruning "
            f"{r['pruning']:.0%}, random {r['random']:.0%} (2 se {r['2 se']:.0%}): {r['verdict']}"
            for _, r in g.iterrows()
        ]
        lines.append(f"- **{model}** ({int(g['questions'].iloc[0])} questions): " + "; ".join(parts) + ".")
    for group, g in table.groupby("group", sort=False):
        counts = g["verdict"].value_counts()
        spelled = ", ".join(f"{counts[v]} {v}" for v in SKIP_VERDICTS if v in counts)
        lines.append(f"- **{str(group).capitalize()} models, all (model, k) cases**: {spelled}.")
    return lines
