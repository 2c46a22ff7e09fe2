"""Charts of expansion and pruning, block skipping, sublayers and correctness (chapters 5 and 6)."""

from __future__ import annotations

import json
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.viz.theme import (
    EXPANSION_COLOUR,
    FACET_COLUMNS,
    FACET_PANEL_WIDTH,
    PRUNING_COLOUR,
    ceiling_band,
    json_safe,
    mean_band_layers,
    need_columns,
    tooltips,
)

# ---------------------------------------------------------------------------------------------
# expansion and pruning; correctness (chapters 5 and 6)

STRATEGY_COLOURS = {"expansion": EXPANSION_COLOUR, "pruning": PRUNING_COLOUR, "random": "#888888"}


def spearman_by_model(
    summary: pd.DataFrame, *, reported: tuple[float, float] | None = None, title: str | None = None
) -> alt.LayerChart:
    """Spearman correlation of dH with the change of the top-p set size, one bar per model.

    Args:
        summary: :attr:`elens_utils.analysis.expansion.CandidateCheck.summary` (columns ``model``,
            ``rho``, ``rho_log``, ``sign_agreement``, ``mean_jaccard``, ``n_pairs``). A model
            whose rho is NaN (set sizes that never change) gets no bar.
        reported: a range ``(lo, hi)`` to shade, e.g. one quoted for the paper's models (its
            tooltip says that the range is a secondary summary's, unverified).
    """
    need_columns(summary, ["model", "rho", "rho_log", "sign_agreement", "mean_jaccard", "n_pairs"], "spearman_by_model")
    models = summary["model"].tolist()
    y = alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260))
    x = alt.X("rho:Q", title="Spearman ρ (dH vs change in set size)", scale=alt.Scale(domain=[-1, 1]))
    layers: list[Any] = []
    if reported is not None:
        lo, hi = (float(v) for v in reported)
        band = pd.DataFrame({"lo": [lo], "hi": [hi], "what": [f"a secondary summary's range {lo:g}–{hi:g} (not found in the paper; unverified)"]})
        layers.append(
            alt.Chart(band)
            .mark_rect(color="#d9d9d9", opacity=0.6)
            .encode(x="lo:Q", x2="hi:Q", tooltip=alt.Tooltip("what:N", title="shaded"))
        )
    tooltip = tooltips(
        "model:N", ("rho:Q", "ρ (size)", ".3f"), ("rho_log:Q", "ρ (log size)", ".3f"),
        ("sign_agreement:Q", "same sign", ".1%"), ("mean_jaccard:Q", "mean overlap (Jaccard)", ".2f"),
        ("n_pairs:Q", "pairs", ","),
    )
    layers.append(alt.Chart(summary).mark_bar(color=EXPANSION_COLOUR, height=alt.RelativeBandSize(0.6)).encode(x=x, y=y, tooltip=tooltip))
    layers.append(alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#888").encode(x="x:Q"))
    subtitle = "bar: this run, pooled over prompts, tokens and block transitions"
    if reported is not None:
        subtitle += "; grey band: a range a secondary summary attributes to the paper (not checked against it)"
    return alt.layer(*layers).properties(
        width=480, height=alt.Step(28), title=alt.Title(title or "Does dH follow the candidate set?", subtitle=subtitle)
    )


def overlap_by_depth(transitions: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Jaccard overlap of adjacent blocks' top-p sets against relative depth, one line per model.

    Args:
        transitions: :attr:`elens_utils.analysis.expansion.CandidateCheck.transitions` (columns
            ``model``, ``block``, ``depth``, ``transition``, ``jaccard``, ``size``, ``d_size``,
            ``dH``, ``n_layers``).
    """
    need_columns(transitions, ["model", "block", "depth", "transition", "jaccard", "size", "d_size", "dH", "n_layers"], "overlap_by_depth")
    keys = transitions["model"].drop_duplicates().tolist()
    sel = alt.selection_point(fields=["model"], bind="legend")
    base = alt.Chart(transitions).encode(
        x=alt.X("depth:Q", title="relative depth l / L of block l", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f")),
        y=alt.Y("jaccard:Q", title="overlap of blocks l−1 and l (Jaccard)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", sort=keys, title="model", legend=alt.Legend(orient="bottom", columns=2, labelLimit=320)),
        opacity=alt.condition(sel, alt.value(1.0), alt.value(0.12)),
    )
    tooltip = tooltips(
        "model:N", ("transition:N", "blocks"), ("jaccard:Q", "mean Jaccard", ".3f"),
        ("size:Q", "mean set size (block l)", ".1f"), ("d_size:Q", "mean change in size", "+.2f"),
        ("dH:Q", "mean dH (nats)", "+.3f"),
    )
    return alt.layer(base.mark_line().add_params(sel), base.mark_point(size=40).encode(tooltip=tooltip)).properties(
        width=520,
        height=260,
        title=alt.Title(title or "How much adjacent blocks' candidate sets share", subtitle="1: the same set; 0: no token in common. Click a legend entry to pick a model"),
    )


def block_dh_bars(ranking: pd.DataFrame, *, columns: int = 3, title: str | None = None) -> alt.FacetChart:
    """Mean dH per block, one panel per model: the numbers that rank the blocks for skipping.

    Args:
        ranking: :func:`elens_utils.analysis.expansion.block_ranking` (columns ``model``, ``block``,
            ``transition``, ``mean_dH``, ``std_dH``, ``frac_positive``, ``expansion_rank``,
            ``pruning_rank``).
        columns: panels per row.
    """
    need_columns(ranking, ["model", "block", "transition", "mean_dH", "std_dH", "frac_positive", "expansion_rank", "pruning_rank"], "block_dh_bars")
    data = ranking.copy()
    data["sign"] = np.where(data["mean_dH"] > 0, "expansion", "pruning")
    keys = data["model"].drop_duplicates().tolist()
    chart = alt.Chart(data).mark_bar().encode(
        x=alt.X("block:O", title="block", axis=alt.Axis(labelAngle=0, labelOverlap="parity")),  # 30 blocks: every other label
        y=alt.Y("mean_dH:Q", title="mean dH (nats)"),
        color=alt.Color("sign:N", title="mean dH", scale=alt.Scale(domain=["expansion", "pruning"], range=[EXPANSION_COLOUR, PRUNING_COLOUR]), legend=alt.Legend(orient="bottom")),
        tooltip=tooltips(
            "model:N", ("transition:N", "blocks"), ("mean_dH:Q", "mean dH (nats)", "+.3f"),
            ("std_dH:Q", "sd (nats)", ".3f"), ("frac_positive:Q", "share dH > 0", ".0%"),
            ("expansion_rank:Q", "expansion rank"), ("pruning_rank:Q", "pruning rank"),
        ),
    ).properties(width=150, height=120)
    return chart.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)),
        columns=columns,
    ).resolve_scale(x="independent", y="independent").properties(
        title=alt.Title(title or "Which blocks expand and which prune", subtitle=["mean dH per block, each panel on its own scale;", "expansion rank 1: the tallest orange bar; pruning rank 1: the deepest blue one"])
    )


def skip_accuracy(results: pd.DataFrame, *, columns: int = 3, title: str | None = None) -> alt.FacetChart:
    """Multiple-choice accuracy against the number of skipped blocks, one panel per model.

    Args:
        results: :func:`elens_utils.analysis.expansion.skip_sweep` (columns ``model``, ``strategy``,
            ``k``, ``seed``, ``accuracy``, ``n_correct``, ``n_questions``, ``chance``,
            ``blocks_text``).
        columns: panels per row.

    Lines: skipping the k blocks of largest expansion (orange), of largest pruning (blue), and
    the mean of the random draws (grey, each draw a small grey dot); all start at the model's
    accuracy without skipping (k = 0). Dashed: the chance level.
    """
    need_columns(results, ["model", "strategy", "k", "seed", "accuracy", "n_correct", "n_questions", "chance", "blocks_text"], "skip_accuracy")
    keys = results["model"].drop_duplicates().tolist()
    base_rows = results[results["strategy"] == "baseline"]
    lines = []
    for strategy in ("expansion", "pruning", "random"):
        start = base_rows.assign(strategy=strategy)
        rows = results[results["strategy"] == strategy]
        if strategy == "random":
            rows = (
                rows.groupby(["model", "k"], sort=False)
                .agg(accuracy=("accuracy", "mean"), n_questions=("n_questions", "first"), chance=("chance", "first"), draws=("accuracy", "size"))
                .reset_index()
                .assign(strategy="random", blocks_text="mean of the random draws")
            )
            rows["n_correct"] = np.nan
        lines.append(pd.concat([start, rows], ignore_index=True))
    line_data = pd.concat(lines, ignore_index=True)[["model", "strategy", "k", "accuracy", "n_correct", "n_questions", "chance", "blocks_text"]]
    line_data["kind"] = "line"
    draws = results[results["strategy"] == "random"][["model", "strategy", "k", "accuracy", "n_correct", "n_questions", "chance", "blocks_text"]].assign(kind="draw")
    chance = base_rows[["model", "chance"]].assign(kind="chance", strategy="chance", k=np.nan, accuracy=base_rows["chance"])
    data = pd.concat([line_data, draws, chance], ignore_index=True)
    # Strategies often skip the same blocks (always at k = L - 1): shift them apart a little.
    data["k_shown"] = data["k"] + data["strategy"].map({"expansion": -0.05, "pruning": 0.05}).fillna(0.0)
    colour = alt.Color(
        "strategy:N",
        title="blocks skipped",
        scale=alt.Scale(domain=list(STRATEGY_COLOURS), range=list(STRATEGY_COLOURS.values())),
        legend=alt.Legend(orient="bottom"),
    )
    k_max = max(1, int(results["k"].max()))
    x = alt.X("k_shown:Q", title="blocks skipped k", axis=alt.Axis(values=list(range(k_max + 1)), format="d"), scale=alt.Scale(domain=[-0.15, k_max + 0.15], nice=False))
    y = alt.Y("accuracy:Q", title="accuracy", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1]))
    tooltip = tooltips(
        "model:N", ("strategy:N", "blocks"), "k:Q", ("blocks_text:N", "skipped"),
        alt.Tooltip("accuracy:Q", format=".1%"), ("n_questions:Q", "questions"),
    )
    base = alt.Chart().encode(x=x, y=y)
    layered = alt.layer(
        alt.Chart().mark_rule(strokeDash=[5, 4], color="#777").encode(y="chance:Q", tooltip=alt.Tooltip("chance:Q", title="chance", format=".0%")).transform_filter("datum.kind == 'chance'"),
        base.mark_circle(size=22, color="#888", opacity=0.6).encode(tooltip=tooltip).transform_filter("datum.kind == 'draw'"),
        base.mark_line(point=alt.OverlayMarkDef(size=45, filled=True)).encode(color=colour, tooltip=tooltip).transform_filter("datum.kind == 'line'"),
        data=data,
    ).properties(width=170, height=150)
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)), columns=columns
    ).properties(
        title=alt.Title(title or "Accuracy after skipping blocks", subtitle="k = 0: no block skipped; dashed: chance; grey dots: single random draws")
    )


def sublayer_accuracy(results: pd.DataFrame, *, title: str | None = None, columns: int = 2) -> alt.FacetChart:
    """Multiple-choice accuracy with a part of some blocks removed, one panel per model.

    Args:
        results: :func:`elens_utils.analysis.sublayers.sublayer_sweep` (columns ``model``, ``kind``,
            ``strategy``, ``heads_from``, ``k``, ``seed``, ``accuracy``, ``n_correct``,
            ``n_questions``, ``chance``, ``blocks_text``, ``heads_text``), with one baseline
            row (``strategy == "baseline"``) per model.
        title: chart title.
        columns: panels per row (2 fit the book's text column).

    Rows of a panel: the kind of intervention (attention, MLP, heads, the whole block) and
    ``k``, the number of blocks it is applied to; the x axis is the accuracy. In each row,
    filled points: the part removed in the k blocks of largest expansion (orange, top) and of
    largest pruning (blue, bottom); grey (middle): the random controls, each draw a small dot,
    their mean a tick. For heads the filled points are the ranked heads, the hollow rings the
    random heads of the same blocks (each draw a small ring, their mean a large one). Solid
    vertical line: the accuracy with nothing removed; dashed: the chance level.
    """
    need = ["model", "kind", "strategy", "heads_from", "k", "seed", "accuracy", "n_correct", "n_questions", "chance", "blocks_text", "heads_text"]  # fmt: skip
    need_columns(results, need, "sublayer_accuracy")
    keys = results["model"].drop_duplicates().tolist()
    base_rows = results[results["strategy"] == "baseline"]
    if base_rows["model"].nunique() != len(keys) or len(base_rows) != len(keys):
        raise ElensError("sublayer_accuracy(): each model needs exactly one baseline row (strategy 'baseline'), as sublayer_sweep() writes.")
    rows = results[results["strategy"] != "baseline"].copy()
    if rows.empty:
        raise ElensError("sublayer_accuracy(): the results hold no intervention (only baselines): give sublayer_sweep() some ks and kinds.")
    names = {"attention": "attention", "mlp": "MLP", "heads": "heads", "block": "whole block"}
    kinds = rows["kind"].drop_duplicates().tolist()
    rows["row"] = [f"{names.get(kd, kd)}, k = {int(k)}" for kd, k in zip(rows["kind"], rows["k"])]
    ordered = rows.assign(kind_pos=rows["kind"].map(kinds.index)).sort_values(["kind_pos", "k"], kind="stable")
    order = ordered["row"].drop_duplicates().tolist()
    first_rows = ordered.drop_duplicates("kind")["row"].tolist()  # the kind is named on these only
    cols = ["model", "kind", "strategy", "heads_from", "k", "seed", "accuracy", "n_correct", "n_questions", "chance", "blocks_text", "heads_text", "row"]  # fmt: skip
    rows = rows[cols]
    alt_heads = rows["heads_from"].eq("random") & rows["strategy"].isin(["expansion", "pruning"])
    is_draw = rows["strategy"] == "random"
    chosen = rows[~alt_heads & ~is_draw].assign(mark="chosen")
    parts = {"attention": "the attention", "mlp": "the MLP", "heads": "the ranked heads", "block": "the whole blocks"}
    chosen["what"] = chosen["kind"].map(lambda kd: parts.get(kd, kd)) + " of the " + chosen["strategy"] + " blocks"
    draws = rows[is_draw].assign(mark="draw", what="one random draw")
    alt_draws = rows[alt_heads].assign(mark="alt_draw")
    alt_draws["what"] = "random heads of the " + alt_draws["strategy"] + " blocks, one draw"
    group = ["model", "kind", "k", "row", "strategy"]

    def means(frame: pd.DataFrame, mark: str) -> pd.DataFrame:
        out = (
            frame.groupby(group, sort=False)
            .agg(accuracy=("accuracy", "mean"), n_questions=("n_questions", "first"), chance=("chance", "first"), draws=("accuracy", "size"), blocks_text=("blocks_text", "first"))
            .reset_index()
        )
        n = out["draws"].astype(str) + " draws"
        if mark == "mean":
            out["blocks_text"], out["what"] = "random (one set per draw)", "mean of " + n
            out["heads_text"] = np.where(out["kind"] == "heads", "random", "")
        else:
            out["heads_text"], out["what"] = "random", "random heads of the " + out["strategy"] + " blocks, mean of " + n
        return out.assign(mark=mark)

    data = pd.concat(
        [
            chosen,
            draws,
            alt_draws,
            means(draws, "mean"),
            means(alt_draws, "alt_mean"),
            base_rows[["model", "kind", "strategy", "k", "accuracy", "n_correct", "n_questions", "chance", "blocks_text", "heads_text"]].assign(mark="baseline", what="nothing removed"),
            base_rows[["model", "chance", "n_questions"]].assign(mark="chance", accuracy=base_rows["chance"], what="chance (guessing)"),
            pd.DataFrame([(m, r) for m in keys for r in first_rows[1:]], columns=["model", "row"]).assign(mark="separator"),
        ],
        ignore_index=True,
    )
    data["seed"] = pd.to_numeric(data["seed"], errors="coerce").astype(float)
    data = json_safe(data)
    lanes = ["expansion", "random", "pruning"]
    colour = alt.Color(
        "strategy:N",
        title="part removed in",
        scale=alt.Scale(domain=list(STRATEGY_COLOURS), range=list(STRATEGY_COLOURS.values())),
        legend=alt.Legend(orient="bottom", symbolOpacity=1, labelExpr="datum.label == 'random' ? 'random blocks' : datum.label + ' blocks'"),
    )
    x = alt.X("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1], nice=False), axis=alt.Axis(format=".0%", values=[0, 0.25, 0.5, 0.75, 1]))
    # "attention, k = 1", then "k = 2", "k = 4": the kind is named on its first row only.
    label = f"indexof({json.dumps(first_rows)}, datum.value) >= 0 ? datum.value : 'k = ' + split(datum.value, ', k = ')[1]"
    y = alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=140, ticks=False, domain=False, labelExpr=label))
    y_off = alt.YOffset("strategy:N", sort=lanes, scale=alt.Scale(domain=lanes, paddingOuter=0.6))
    accuracy_tip = alt.Tooltip("accuracy:Q", format=".1%")
    tooltip = tooltips(
        "model:N", "kind:N", ("strategy:N", "blocks"), "k:Q", ("blocks_text:N", "blocks removed"),
        ("heads_text:N", "heads"), ("what:N", "shows"), accuracy_tip, ("n_questions:Q", "questions"),
    )
    rule_tip = tooltips("model:N", ("what:N", "accuracy of"), accuracy_tip, ("n_questions:Q", "questions"))
    base = alt.Chart().encode(x=x, y=y, yOffset=y_off)
    width = max(150, (460 - 20 * (columns - 1)) // max(1, columns))  # two panels and the row labels fit 600 px

    def only(mark: str) -> str:
        return f"datum.mark == '{mark}'"

    layered = alt.layer(
        alt.Chart().mark_rule(color="#d0d0d0", strokeWidth=1).encode(y=alt.Y("row:N", sort=order, bandPosition=0)).transform_filter(only("separator")),
        alt.Chart().mark_rule(strokeDash=[5, 4], color="#777").encode(x=alt.X("accuracy:Q"), tooltip=rule_tip).transform_filter(only("chance")),
        alt.Chart().mark_rule(color="#333", strokeWidth=1.5).encode(x=alt.X("accuracy:Q"), tooltip=rule_tip).transform_filter(only("baseline")),
        base.mark_circle(size=22, opacity=0.6).encode(color=colour, tooltip=tooltip).transform_filter(only("draw")),
        base.mark_tick(thickness=2.5, size=11).encode(color=colour, tooltip=tooltip).transform_filter(only("mean")),
        base.mark_point(filled=False, size=26, strokeWidth=1, opacity=0.8).encode(color=colour, tooltip=tooltip).transform_filter(only("alt_draw")),
        base.mark_point(filled=False, size=150, strokeWidth=1.5, opacity=1).encode(color=colour, tooltip=tooltip).transform_filter(only("alt_mean")),
        base.mark_point(filled=True, size=70, opacity=1).encode(color=colour, tooltip=tooltip).transform_filter(only("chosen")),
        data=data,
    ).properties(width=width, height=36 * len(order))
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=width)), columns=columns
    ).properties(
        title=alt.Title(
            title or "Accuracy with a part of the blocks removed",
            subtitle=[
                "the part removed in the k blocks of largest expansion (orange), of largest pruning (blue)",
                "or in k random blocks (grey dots: single draws, tick: their mean); heads: filled points the",
                "ranked heads, rings random heads of the same blocks; line: nothing removed; dashed: chance",
            ],
        )
    )


def correctness_auc_chart(table: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """kNN ROC-AUC of "answered correctly" per model and feature set, beside the dummy baseline.

    Args:
        table: :func:`elens_utils.analysis.correctness.correctness_auc` (columns ``model``,
            ``features``, ``status``, ``note``, ``auc_mean``, ``auc_std``, ``dummy_auc_mean``,
            ``dummy_auc_std``, ``n``, ``n_correct``, ``knn_accuracy``, ``p_value``). Rows that
            could not be scored (``status != "ok"``) show their status as text.
    """
    need_columns(table, ["model", "features", "status", "note", "auc_mean", "auc_std", "dummy_auc_mean", "dummy_auc_std", "n", "n_correct", "knn_accuracy", "p_value"], "correctness_auc_chart")
    data = table.copy()
    data["lo"] = data["auc_mean"] - data["auc_std"]
    data["hi"] = data["auc_mean"] + data["auc_std"]
    data["dlo"] = data["dummy_auc_mean"] - data["dummy_auc_std"]
    data["dhi"] = data["dummy_auc_mean"] + data["dummy_auc_std"]
    data["label"] = np.where(data["status"] == "ok", "", "not scored: " + data["status"])
    data["x_text"] = 0.02
    models = data["model"].drop_duplicates().tolist()
    feats = data["features"].drop_duplicates().tolist()
    y = alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260))
    y_off = alt.YOffset("features:N", sort=feats)
    x = alt.X("auc_mean:Q", title="ROC-AUC (mean over folds, ± sd)", scale=alt.Scale(domain=[0, 1]))
    colour = alt.Color("features:N", sort=feats, title="features", legend=alt.Legend(orient="bottom"))
    tooltip = tooltips(
        "model:N", "features:N", ("auc_mean:Q", "kNN AUC", ".3f"), ("auc_std:Q", "sd over folds", ".3f"),
        ("dummy_auc_mean:Q", "dummy AUC", ".3f"), ("knn_accuracy:Q", "kNN accuracy", ".1%"),
        ("p_value:Q", "paired t-test p", ".2g"), ("n_correct:Q", "answered correctly"), ("n:Q", "questions"),
    )
    ok = "datum.status == 'ok'"
    base = alt.Chart(data).encode(y=y, yOffset=y_off)
    layers = [
        ceiling_band(),
        base.mark_rule(color="#bbbbbb", strokeWidth=6, clip=True).encode(x=alt.X("dlo:Q", scale=alt.Scale(domain=[0, 1])), x2="dhi:Q", tooltip=tooltip).transform_filter(ok),
        base.mark_rule(strokeWidth=2, clip=True).encode(x=alt.X("lo:Q"), x2="hi:Q", color=colour).transform_filter(ok),
        base.mark_point(size=70, filled=True).encode(x=x, color=colour, tooltip=tooltip).transform_filter(ok),
        base.mark_text(align="left", fontSize=11, color="#a33").encode(x="x_text:Q", text="label:N", tooltip=alt.Tooltip("note:N", title="why")).transform_filter("datum.status != 'ok'"),
        alt.Chart(pd.DataFrame({"x": [0.5]})).mark_rule(strokeDash=[5, 4], color="#777").encode(x="x:Q"),
    ]
    return alt.layer(*layers).properties(
        width=480,
        height=alt.Step(18),
        title=alt.Title(title or "Does the profile tell right from wrong answers?", subtitle="points: kNN (±1 sd over folds); grey bars: the stratified dummy (±1 sd); dashed: 0.5, no information; shaded: at ceiling"),
    )


def mc_accuracy_bars(table: pd.DataFrame, *, chance: float | None = None, title: str | None = None) -> alt.LayerChart:
    """Multiple-choice accuracy per model (one bar each), with the chance level.

    Args:
        table: one row per model (or several, deduplicated on ``model``) with ``accuracy``,
            ``n_correct`` and ``n`` (e.g. :func:`elens_utils.analysis.correctness.correctness_auc`).
        chance: the accuracy of guessing, drawn as a dashed rule (e.g. 0.25).
    """
    need_columns(table, ["model", "accuracy", "n_correct", "n"], "mc_accuracy_bars")
    data = table.drop_duplicates("model")[["model", "accuracy", "n_correct", "n"]]
    models = data["model"].tolist()
    layers: list[Any] = [
        alt.Chart(data).mark_bar(color="#5b8db8", height=alt.RelativeBandSize(0.6)).encode(
            x=alt.X("accuracy:Q", title="accuracy (letter logits)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%", values=[0, 0.25, 0.5, 0.75, 1])),
            y=alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260)),
            tooltip=tooltips(
                "model:N", alt.Tooltip("accuracy:Q", format=".1%"), ("n_correct:Q", "correct"),
                ("n:Q", "questions"),
            ),
        )
    ]
    if chance is not None:
        rule = pd.DataFrame({"x": [float(chance)], "what": [f"chance {float(chance):.0%}"]})
        layers.append(alt.Chart(rule).mark_rule(strokeDash=[5, 4], color="#777").encode(x="x:Q", tooltip=alt.Tooltip("what:N", title="guessing")))
    return alt.layer(*layers).properties(
        width=480, height=alt.Step(26), title=alt.Title(title or "How often each model answers correctly", subtitle="dashed: chance" if chance is not None else "")
    )


def profiles_by_outcome(frame: pd.DataFrame, *, columns: int = FACET_COLUMNS, title: str | None = None) -> alt.FacetChart:
    """Mean profile of the right and of the wrong answers against relative depth, per model.

    Args:
        frame: :func:`elens_utils.analysis.correctness.outcome_depth_frame` (columns ``model``,
            ``outcome``, ``layer``, ``depth``, ``entropy``, ``sd``, ``n``).
        columns: panels per row.
    """
    need_columns(frame, ["model", "outcome", "layer", "depth", "entropy", "sd", "n"], "profiles_by_outcome")
    keys = frame["model"].drop_duplicates().tolist()
    data = frame.assign(lo=frame["entropy"] - frame["sd"], hi=frame["entropy"] + frame["sd"])
    colour = alt.Color("outcome:N", title="answer", scale=alt.Scale(domain=["correct", "wrong"], range=["#1b9e77", "#7570b3"]), legend=alt.Legend(orient="bottom"))
    x = alt.X("depth:Q", title="relative depth l / L", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f"))
    base = alt.Chart().encode(x=x, color=colour)
    tooltip = tooltips(
        "model:N", ("outcome:N", "answer"), ("layer:Q", "block"), ("entropy:Q", "mean entropy (nats)", ".3f"),
        ("sd:Q", "sd (nats)", ".3f"), ("n:Q", "questions"),
    )
    layered = mean_band_layers(base, data, tooltip, "entropy (nats)").properties(width=FACET_PANEL_WIDTH, height=140)
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)), columns=columns
    ).properties(
        title=alt.Title(title or "Profiles of right and wrong answers", subtitle="mean over the questions, band ±1 sd; where only one colour shows, the other lies under it")
    )
