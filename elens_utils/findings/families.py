"""Chapter 2's findings: the family kNN in cross-validation and on a size held out, by depth
alignment, beside the paper's "above 0.9"."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from elens_utils.analysis.classify import CVResult
from elens_utils.analysis.comparison import knn_verdict
from elens_utils.findings.base import Findings, is_random, is_zoo, quantization_line
from elens_utils.viz.family_charts import DEPTH_MODE_NAMES
from elens_utils.viz.tables import fmt_range

__all__ = ["findings"]


def findings(
    *,
    cv: CVResult,
    rescaling: pd.DataFrame,
    family: Sequence[str],
    meta: pd.DataFrame,
    models: Sequence[str],
    n_samples: int,
    max_new_tokens: int,
    temperature: float,
    k: int,
    folds: int,
    real_models: Sequence[str] = (),
    families_table: pd.DataFrame | None = None,
    family_all: Sequence[str] = (),
    meta_all: pd.DataFrame | None = None,
) -> Findings:
    """Chapter 2's closing bullets and headline.

    Args:
        cv: the family kNN in cross-validation on all sizes
            (:func:`~elens_utils.analysis.classify.knn_cv`).
        rescaling: :func:`~elens_utils.analysis.classify.depth_rescaling`'s table, one row per
            (``depth`` alignment, ``test``): ``factor`` (``"size"`` for a held-out size),
            ``status`` (``"ok"`` when scored), ``auc`` and ``note``; its first row is the
            cross-validation.
        family: the family label of each sample.
        meta: per sample, ``model`` and ``n_layers``.
        models: the chapter's models.
        n_samples: blank-prompt generations per model.
        max_new_tokens: tokens per generation.
        temperature: the sampling temperature.
        k: neighbours of the kNN.
        folds: folds of the stratified cross-validation.
        real_models: the real models; with them, ``families_table`` (from
            :func:`~elens_utils.analysis.comparison.family_comparison`, indexed rows ``"zoo"`` and
            ``"zoo + real"``), ``family_all`` and ``meta_all`` (labels and metadata of zoo and
            real samples together).
    """
    random_models = is_random(models)
    by = {d: g.set_index("test") for d, g in rescaling.groupby("depth", sort=False)}
    cv_name = rescaling["test"].iloc[0]
    fams = list(dict.fromkeys(family))
    lines = [
        (
            f"- **Data**: the blank prompt, {n_samples} samples of {max_new_tokens} tokens per model at T = {temperature}, "
            f"{len(models)} models in {len(fams)} families ({', '.join(f'`{f}`' for f in fams)}); Shannon profiles averaged "
            f"over the tokens; kNN with k = {k}, {folds}-fold stratified CV."
        ),
        f"- **Family identification** (interpolation on relative depth, all sizes): ROC-AUC {cv.auc_mean:.3f} ± "
        f"{cv.auc_std:.3f} over the folds, against {cv.dummy_auc_mean:.3f} for the dummy (paired t-test p = "
        f"{cv.p_value:.2g}); accuracy {cv.accuracy_mean:.1%} (dummy {cv.dummy_accuracy_mean:.1%}). "
        + (
            "That is above the paper's 0.9."
            if cv.auc_mean > 0.9
            else "That is below the paper's 0.9."
        ),
    ]
    for mode, rows in by.items():
        ok = rows[(rows["factor"] == "size") & (rows["status"] == "ok")]
        skipped = rows[(rows["factor"] == "size") & (rows["status"] != "ok")]
        text = "; ".join(
            f"{t.removeprefix('held out: ')} {a:.3f}" for t, a in ok["auc"].items()
        )
        lines.append(
            f"- **{DEPTH_MODE_NAMES.get(mode, mode).capitalize()}**: CV AUC {rows.loc[cv_name, 'auc']:.3f}; a held-out size: {text or 'none scored'}"
            + (
                f" ({len(skipped)} size rank(s) could not be scored: {skipped['note'].iloc[0]})"
                if len(skipped)
                else ""
            )
            + "."
        )
    if set(by) >= {"interpolate", "zero_pad"}:
        a, z = by["interpolate"], by["zero_pad"]
        both = a.index[
            (a["factor"] == "size")
            & (a["status"] == "ok")
            & (z.reindex(a.index)["status"] == "ok")
        ]
        if len(both):
            diff = a.loc[both, "auc"] - z.loc[both, "auc"]
            worst = diff.abs().idxmax()
            lines.append(
                f"- **Interpolation against zero-padding** on a held-out size: interpolation is better on {int((diff > 0).sum())} "
                f"of {len(diff)} sizes, worse on {int((diff < 0).sum())}; the largest gap, {diff.abs().max():.3f}, "
                f"is at {worst.removeprefix('held out: ')}. With all sizes in training, zero-padding scores "
                f"{z.loc[cv_name, 'auc'] - a.loc[cv_name, 'auc']:+.3f} against interpolation."
            )
    interp = by.get("interpolate")
    # interpolation's AUCs on a size held out, scored ones only
    held = interp[(interp["factor"] == "size") & (interp["status"] == "ok")]["auc"] if interp is not None else pd.Series(dtype=float)
    if random_models:
        lines.append(
            "- **These models are random.** `tiny/...` models have random weights and have learned nothing; a "
            "'family' of them shares an architecture (norms, activations, Gemma-2's soft-capping, the tokenizer's "
            "vocabulary size, the initialisation), not training. A high AUC here says that the architecture alone "
            "leaves a mark on the lens entropies, a mark that a trained model may keep or lose. It neither supports "
            "nor refutes the paper: this run checks the machinery. Run the paper's models with "
            "`make chapter CH=families PARAMS=paper` (a GPU and the Hugging Face Hub are needed)."
        )
    else:
        verdict = "agrees with" if cv.auc_mean > 0.9 else "falls short of"
        text = (
            f"- **Beside the paper**: the family AUC in cross-validation ({cv.auc_mean:.3f}) {verdict} the paper's "
            "'above 0.9'."
        )
        if len(held):
            if held.min() > 0.9:
                text += (
                    f" On a held-out size the AUC stays at {fmt_range(held, '.3f')}: the family is "
                    "recognised at sizes the classifier never saw, as depth rescaling predicts."
                )
            else:
                text += (
                    f" On a held-out size it drops to {fmt_range(held, '.3f')} (interpolation): "
                    f"{int((held < 0.9).sum())} of {len(held)} sizes fall below 0.9, so the profiles of one "
                    "family do not rescale with depth well enough for a classifier to recognise a size it never saw. "
                    "The cross-validated AUC can come from recognising the models themselves ({ref}`exercise 2.2 <ex-families-2>` tests this)."
                )
        lines.append(text)
        if is_zoo(models):
            lines.append(
                "- **These are the project's zoo models, not the paper's.** `zoo/...` models are small models "
                f"({min(meta['n_layers'])} to {max(meta['n_layers'])} blocks) trained by this project on its synthetic "
                "story world, all with the same word-level tokenizer and training data; their families differ in "
                "architecture and training length, not in tokenizer and data as the paper's do. The run tests the "
                "method at toy scale; it does not reproduce the paper's numbers. For those: "
                "`make chapter CH=families PARAMS=paper` (a GPU and the Hugging Face Hub are needed)."
            )
    if real_models and families_table is not None and meta_all is not None:
        r = families_table.set_index("models")
        real_fams = list(dict.fromkeys(f for f, m in zip(family_all, meta_all["model"]) if m in real_models))
        lines.append(
            f"- **With the real models** ({', '.join(f'`{f}`' for f in real_fams)}, one size each, "
            f"{n_samples} samples of {max_new_tokens} tokens per model): the family kNN over "
            f"{int(r.loc['zoo + real', 'n models'])} models in {len(r.loc['zoo + real', 'families'].split(', '))} families "
            f"reaches ROC-AUC {r.loc['zoo + real', 'AUC']:.3f} ± {r.loc['zoo + real', 'AUC sd']:.3f} "
            f"(zoo alone: {r.loc['zoo', 'AUC']:.3f}; dummy {r.loc['zoo + real', 'dummy AUC']:.3f}). A real family "
            "here is one model, so this shows that the profile tells these models apart from the zoo's "
            "and from each other; it cannot show that it recognises a family across sizes."
        )
        lines.append(quantization_line())
    # the cross-validated verdict, and whether a size never seen in training stays above the paper's 0.9
    cv_words = knn_verdict(cv.auc_mean, cv.auc_std, cv.dummy_auc_mean, cv.p_value) + " in cross-validation"
    if len(held):
        cv_words += "; " + ("above 0.9" if min(held) > 0.9 else "below 0.9" if max(held) < 0.9 else "partly below 0.9") + " on a held-out size"
    return Findings(
        lines,
        "not tested" if random_models else cv_words,
        f"family kNN AUC {cv.auc_mean:.2f} ± {cv.auc_std:.2f} (dummy {cv.dummy_auc_mean:.2f}) on {len(models)} "
        f"models in {len(fams)} families" + (f"; a held-out size: {fmt_range(held, '.2f')}" if len(held) else "")
        + (" (random models: the machinery only)" if random_models else ""),
    )
