"""Charts of the kNN results per model (chapters 3 and 4): scores per model and per variant, profiles
per label and per window."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from elens_utils.analysis.comparison import AUC_CEILING
from elens_utils.core.errors import ElensError
from elens_utils.viz.theme import (
    FACET_COLUMNS,
    FACET_PANEL_WIDTH,
    ceiling_band,
    need_columns,
    tooltips,
)

# ---------------------------------------------------------------------------------------------
# task type and output format (chapters 3 and 4)

_SCORE_TITLES = {"auc": "ROC-AUC", "accuracy": "accuracy"}


def _group_key(frame: pd.DataFrame, color: str | None) -> pd.Series:
    """The colour key of :func:`knn_scores_by_model` as text (``k`` becomes ``"k = 3"``)."""
    if color is None:
        return pd.Series("kNN", index=frame.index)
    if color == "k":
        return "k = " + frame["k"].astype(int).astype(str)
    return frame[color].astype(str)


def knn_scores_by_model(
    summary: pd.DataFrame,
    folds: pd.DataFrame,
    *,
    metric: str = "auc",
    color: str | None = None,
    legend_title: str | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> alt.LayerChart:
    """A kNN score per model (mean over folds, each fold a tick) beside its stratified dummy.

    Args:
        summary: rows of :attr:`elens_utils.analysis.knn_tables.KnnTable.summary` to draw (columns
            ``model``, ``features``, ``subset``, ``k``, ``n``, ``n_classes``, ``auc_mean``,
            ``auc_std``, ``accuracy_mean``, ``accuracy_std``, ``dummy_auc_mean``,
            ``dummy_auc_std``, ``dummy_accuracy_mean``, ``dummy_accuracy_std``, ``p_value``).
        folds: :attr:`~elens_utils.analysis.knn_tables.KnnTable.folds` (columns ``model``,
            ``features``, ``subset``, ``k``, ``fold``, ``auc``, ``accuracy``); only the folds
            of the summary rows are drawn.
        metric: ``"auc"`` (one-vs-rest macro ROC-AUC; a dashed rule at 0.5, no information)
            or ``"accuracy"``.
        color: a summary column that tells several rows of one model apart (``"features"``,
            ``"subset"``, ``"k"``), drawn side by side; None when there is one row per model.
        legend_title: the legend's title (default: ``color``).

    Rows: models, in the order of ``summary``. Grey: the dummy's mean (a bar) and its -/+ sd
    over folds (a band); ticks: the kNN's single folds; point: their mean.
    """
    need = ["model", "features", "subset", "k", "n", "n_classes", "auc_mean", "auc_std", "accuracy_mean", "accuracy_std",
            "dummy_auc_mean", "dummy_auc_std", "dummy_accuracy_mean", "dummy_accuracy_std", "p_value"]  # fmt: skip
    need_columns(summary, need + ([color] if color else []), "knn_scores_by_model")
    need_columns(folds, ["model", "features", "subset", "k", "fold", "auc", "accuracy"], "knn_scores_by_model")
    if metric not in _SCORE_TITLES:
        raise ElensError(f"knn_scores_by_model(): metric must be 'auc' or 'accuracy'; got {metric!r}.")
    if summary.empty:
        raise ElensError("knn_scores_by_model(): the summary has no rows to draw.")
    keys = ["model", "features", "subset", "k"]
    rows = summary.copy()
    rows["group"] = _group_key(rows, color)
    rows["mean"] = rows[f"{metric}_mean"]
    rows["lo"], rows["hi"] = rows["mean"] - rows[f"{metric}_std"], rows["mean"] + rows[f"{metric}_std"]
    rows["dummy"] = rows[f"dummy_{metric}_mean"]
    rows["dlo"] = rows["dummy"] - rows[f"dummy_{metric}_std"]
    rows["dhi"] = rows["dummy"] + rows[f"dummy_{metric}_std"]
    rows["kind"] = "summary"
    ticks = folds.merge(rows[keys + ["group"]], on=keys, how="inner")
    ticks = ticks.assign(value=ticks[metric], kind="fold")[keys + ["group", "fold", "value", "kind"]]
    data = pd.concat([rows, ticks], ignore_index=True)
    models = rows["model"].drop_duplicates().tolist()
    groups = rows["group"].drop_duplicates().tolist()
    name = _SCORE_TITLES[metric]
    y = alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260))
    offset = {"yOffset": alt.YOffset("group:N", sort=groups)} if len(groups) > 1 else {}
    x_scale = alt.Scale(domain=[0, 1])
    colour = alt.Color("group:N", sort=groups, title=legend_title or color or "", legend=alt.Legend(orient="bottom") if len(groups) > 1 else None)
    tooltip = tooltips(
        "model:N", *([("group:N", legend_title or color)] if color else []), "features:N", ("k:Q", "k used"),
        ("mean:Q", f"kNN {name} (mean)", ".3f"), (f"{metric}_std:Q", "sd over folds", ".3f"),
        ("dummy:Q", f"dummy {name}", ".3f"), ("p_value:Q", "paired t-test p (AUC)", ".2g"), ("n:Q", "prompts"),
        ("n_classes:Q", "classes"),
    )
    base = alt.Chart(data).encode(y=y, **offset)
    is_row, is_fold = "datum.kind == 'summary'", "datum.kind == 'fold'"
    layers: list[Any] = [
        base.mark_rule(color="#bbbbbb", strokeWidth=6, clip=True).encode(x=alt.X("dlo:Q", scale=x_scale), x2="dhi:Q", tooltip=tooltip).transform_filter(is_row),
        base.mark_tick(color="#777777", thickness=3, size=12).encode(x=alt.X("dummy:Q", scale=x_scale), tooltip=tooltip).transform_filter(is_row),
        base.mark_tick(thickness=1.5, size=9, opacity=0.55).encode(
            x=alt.X("value:Q", scale=x_scale),
            color=colour,
            tooltip=tooltips(
                "model:N", ("group:N", legend_title or color or "kNN"), "fold:Q", ("value:Q", name, ".3f"),
            ),
        ).transform_filter(is_fold),
        base.mark_point(size=75, filled=True, opacity=1).encode(
            x=alt.X("mean:Q", title=f"{name} (mean over folds; ticks: single folds)", scale=x_scale), color=colour, tooltip=tooltip
        ).transform_filter(is_row),
    ]
    if metric == "auc":
        layers.insert(0, ceiling_band())
        layers.append(alt.Chart(pd.DataFrame({"x": [0.5]})).mark_rule(strokeDash=[5, 4], color="#777").encode(x="x:Q"))
    default_sub = "point: kNN mean over folds; ticks: single folds; grey: stratified dummy (mean, ±1 sd)"
    if metric == "auc":
        default_sub += f"; dashed: 0.5, no information; shaded: at ceiling (≥ {AUC_CEILING:g})"
    return alt.layer(*layers).properties(
        width=480,
        height=alt.Step(16 if len(groups) > 1 else 26),
        title=alt.Title(title or f"kNN {name} per model", subtitle=subtitle or default_sub),
    )


def profiles_by_label(
    frame: pd.DataFrame,
    *,
    centered: bool = False,
    legend_title: str = "label",
    columns: int = FACET_COLUMNS,
    title: str | None = None,
) -> alt.FacetChart:
    """Mean profile of each label against relative depth, one panel per model.

    Args:
        frame: :func:`elens_utils.analysis.knn_tables.label_depth_frame` (columns ``model``,
            ``label``, ``layer``, ``depth``, ``entropy``, ``sd``, ``centered``, ``n``).
        centered: draw each label's difference from the model's mean profile (what sets the
            labels apart; a rule at 0) instead of the mean with a band of -/+ 1 sd.
        legend_title: what the labels are (``"task"``, ``"format"``).
        columns: panels per row.

    Each panel has its own y scale (models differ in their entropy range).
    """
    need_columns(frame, ["model", "label", "layer", "depth", "entropy", "sd", "centered", "n"], "profiles_by_label")
    keys = frame["model"].drop_duplicates().tolist()
    labels = frame["label"].drop_duplicates().tolist()
    data = frame.assign(lo=frame["entropy"] - frame["sd"], hi=frame["entropy"] + frame["sd"])
    colour = alt.Color("label:N", sort=labels, title=legend_title, legend=alt.Legend(orient="bottom"))
    x = alt.X("depth:Q", title="relative depth l / L", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f"))
    value = "centered" if centered else "entropy"
    y_title: str | list[str] = ["minus the model's", "mean (nats)"] if centered else "mean entropy (nats)"
    tooltip = tooltips(
        "model:N", ("label:N", legend_title), ("layer:Q", "block"), ("entropy:Q", "mean entropy (nats)", ".3f"),
        ("centered:Q", "minus the model's mean", "+.3f"), ("sd:Q", "sd of single profiles", ".3f"),
        ("n:Q", "prompts"),
    )
    base = alt.Chart().encode(x=x, color=colour)
    layers: list[Any] = [base.mark_line().encode(y=alt.Y(f"{value}:Q", title=y_title, scale=alt.Scale(zero=centered)))]
    if centered:
        layers.append(alt.Chart().mark_rule(color="#888").encode(y=alt.datum(0)))
    else:
        layers.append(base.mark_area(opacity=0.12).encode(y="lo:Q", y2="hi:Q"))
    layers.append(base.mark_point(size=25, filled=True).encode(y=f"{value}:Q", tooltip=tooltip))
    layered = alt.layer(*layers, data=data).properties(width=FACET_PANEL_WIDTH, height=140)
    subtitle = (
        "each label's mean profile minus the model's mean over all prompts (each panel its own scale)"
        if centered
        else "mean over the prompts of each label, band ±1 sd (each panel its own scale)"
    )
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)), columns=columns
    ).resolve_scale(y="independent").properties(title=alt.Title(title or f"Mean profile per {legend_title}", subtitle=subtitle))


def entropy_by_window(frame: pd.DataFrame, *, legend_title: str = "label", columns: int = FACET_COLUMNS, title: str | None = None) -> alt.FacetChart:
    """Mean entropy of one block in each window of the generation, per label, one panel per model.

    Args:
        frame: :func:`elens_utils.analysis.knn_tables.window_frame` (columns ``model``, ``block``,
            ``n_layers``, ``label``, ``window``, ``tokens``, ``entropy``, ``sd``, ``n``).
        legend_title: what the labels are (``"format"``).
        columns: panels per row.
    """
    need_columns(frame, ["model", "block", "n_layers", "label", "window", "tokens", "entropy", "sd", "n"], "entropy_by_window")
    keys = frame["model"].drop_duplicates().tolist()
    labels = frame["label"].drop_duplicates().tolist()
    data = frame.assign(lo=frame["entropy"] - frame["sd"], hi=frame["entropy"] + frame["sd"])
    n_windows = int(frame["window"].max())
    x = alt.X("window:Q", title="window of the generation", axis=alt.Axis(values=list(range(1, n_windows + 1)), format="d"), scale=alt.Scale(domain=[1, n_windows], nice=False))
    colour = alt.Color("label:N", sort=labels, title=legend_title, legend=alt.Legend(orient="bottom"))
    tooltip = tooltips(
        "model:N", ("label:N", legend_title), "window:Q", ("tokens:N", "generated tokens"),
        ("block:Q", "block"), ("entropy:Q", "mean entropy (nats)", ".3f"), ("sd:Q", "sd over prompts", ".3f"),
        ("n:Q", "prompts"),
    )
    base = alt.Chart().encode(x=x, color=colour)
    layered = alt.layer(
        base.mark_line().encode(y=alt.Y("entropy:Q", title="mean entropy (nats)", scale=alt.Scale(zero=False))),
        base.mark_area(opacity=0.12).encode(y="lo:Q", y2="hi:Q"),
        base.mark_point(size=25, filled=True).encode(y="entropy:Q", tooltip=tooltip),
        data=data,
    ).properties(width=FACET_PANEL_WIDTH, height=140)
    blocks = sorted({(int(b), int(n)) for b, n in zip(frame["block"], frame["n_layers"])})
    which = "the last block" if all(b == n for b, n in blocks) else "block " + ", ".join(str(b) for b, _ in blocks)
    return layered.facet(
        facet=alt.Facet("model:N", sort=keys, title=None, header=alt.Header(labelFontSize=12, labelLimit=220)), columns=columns
    ).resolve_scale(y="independent").properties(
        title=alt.Title(title or f"Entropy along the generation, per {legend_title}", subtitle=f"{which}; mean over the prompts, band ±1 sd (each panel its own scale)")
    )




def knn_scores_heatmap(
    summary: pd.DataFrame,
    *,
    column: str,
    metric: str = "auc",
    legend_title: str | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> alt.LayerChart:
    """A kNN score per model (rows) and per value of ``column`` (columns), as a table of colours.

    For many models x a few settings (variants of the prompts, feature sets), where one dot plot
    row per pair would be too tall. Each cell shows the mean over folds; the tooltip adds the
    spread over folds and the dummy.

    Args:
        summary: rows of :attr:`elens_utils.analysis.knn_tables.KnnTable.summary`, one per (model,
            ``column`` value) (columns ``model``, ``k``, ``n``, ``auc_mean``, ``auc_std``,
            ``accuracy_mean``, ``accuracy_std``, ``dummy_auc_mean``, ``dummy_accuracy_mean``,
            ``p_value`` and ``column``).
        column: the summary column of the x axis (``"subset"``, ``"features"``).
        metric: ``"auc"`` (colours from 0.5, no information, to 1) or ``"accuracy"`` (0 to 1).
        legend_title: the x axis title (default: ``column``).
    """
    need_columns(summary, ["model", "k", "n", "auc_mean", "auc_std", "accuracy_mean", "accuracy_std", "dummy_auc_mean", "dummy_accuracy_mean", "p_value", column], "knn_scores_heatmap")
    if metric not in _SCORE_TITLES:
        raise ElensError(f"knn_scores_heatmap(): metric must be 'auc' or 'accuracy'; got {metric!r}.")
    if summary.duplicated(["model", column]).any():
        raise ElensError(f"knn_scores_heatmap(): several rows per (model, {column}); filter the summary to one k and one of everything else.")
    data = summary.assign(
        key=summary[column].astype(str),
        mean=summary[f"{metric}_mean"],
        sd=summary[f"{metric}_std"],
        dummy=summary[f"dummy_{metric}_mean"],
        text=summary[f"{metric}_mean"].map(lambda v: f"{v:.2f}"),
    )
    models = data["model"].drop_duplicates().tolist()
    keys = data["key"].drop_duplicates().tolist()
    name = _SCORE_TITLES[metric]
    low = 0.5 if metric == "auc" else 0.0
    base = alt.Chart(data).encode(
        x=alt.X("key:N", sort=keys, title=legend_title or column, axis=alt.Axis(labelAngle=0, orient="top", labelLimit=160)),
        y=alt.Y("model:N", sort=models, title=None, axis=alt.Axis(labelLimit=260)),
    )
    tooltip = tooltips(
        "model:N", ("key:N", legend_title or column), ("mean:Q", f"kNN {name} (mean over folds)", ".3f"),
        ("sd:Q", "sd over folds", ".3f"), ("dummy:Q", f"dummy {name}", ".3f"),
        ("p_value:Q", "paired t-test p (AUC)", ".2g"), ("k:Q", "k used"), ("n:Q", "prompts"),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("mean:Q", title=name, scale=alt.Scale(scheme="blues", domain=[low, 1.0], clamp=True), legend=alt.Legend(orient="right", gradientLength=120)),
        tooltip=tooltip,
    )
    text = base.mark_text(fontSize=12).encode(
        text="text:N",
        color=alt.condition(f"datum.mean > {(low + 1.0) / 2:.6g}", alt.value("white"), alt.value("black")),
        tooltip=tooltip,
    )
    return (cells + text).properties(
        width=alt.Step(110),
        height=alt.Step(24),
        title=alt.Title(title or f"kNN {name} per model and {legend_title or column}", subtitle=subtitle or "mean over folds; hover a cell for its spread and the dummy"),
    )
