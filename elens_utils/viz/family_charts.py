"""Charts of model families and robustness (chapters 2 and 7): profiles per family, t-SNE and PCA,
the held-out tests, the settings sweep and the permutation test."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.viz.theme import (
    EXPANSION_COLOUR,
    ceiling_band,
    json_safe,
    mean_band_layers,
    need_columns,
    tooltips,
)

# ---------------------------------------------------------------------------------------------
# families and robustness (chapters 2 and 7)

#: How the depth modes of :func:`elens_utils.analysis.classify.profile_features` are named on the page.
DEPTH_MODE_NAMES = {
    "interpolate": "interpolation on relative depth",
    "zero_pad": "zero-padding (the paper's code)",
    "raw": "raw layer axis",
}


def profiles_by_family(frame: pd.DataFrame, *, columns: int = 2, title: str | None = None) -> alt.FacetChart:
    """Mean blank-prompt profiles against relative depth, one panel per family, one line per model.

    Args:
        frame: :func:`depth_frame` of the models (columns ``model``, ``n_layers``, ``layer``,
            ``depth``, ``entropy``, ``sd``, ``lo``, ``hi``, ``n``); a ``family`` column is added
            with :func:`elens_utils.analysis.classify.family_of` when missing.
        columns: panels per row.

    Lines are coloured by the model's depth L (darker: deeper), the band is ±1 sd across the
    model's samples. If the family's profiles overlap, its lines lie on one another.
    """
    from elens_utils.analysis.classify import family_of

    need_columns(frame, ["model", "n_layers", "layer", "depth", "entropy", "sd", "lo", "hi", "n"], "profiles_by_family")
    data = frame if "family" in frame.columns else frame.assign(family=frame["model"].map(family_of))
    families = data["family"].drop_duplicates().tolist()
    depths = sorted(int(v) for v in data["n_layers"].unique())
    colour = alt.Color(
        "n_layers:O",
        title="blocks L",
        scale=alt.Scale(domain=depths, scheme={"name": "viridis", "extent": [0.75, 0.05]}),
        legend=alt.Legend(orient="bottom", direction="horizontal", symbolType="stroke", symbolStrokeWidth=3),
    )
    x = alt.X("depth:Q", title="relative depth l / L", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f"))
    base = alt.Chart().encode(x=x, color=colour, detail="model:N")
    tooltip = tooltips(
        "model:N", ("layer:Q", "block"), ("n_layers:Q", "blocks L"), ("depth:Q", "l / L", ".2f"),
        ("entropy:Q", "mean entropy (nats)", ".3f"), ("sd:Q", "sd (nats)", ".3f"), ("n:Q", "samples"),
    )
    layered = mean_band_layers(base, data, tooltip, "mean entropy (nats)").properties(width=250, height=170)
    return layered.facet(
        facet=alt.Facet("family:N", sort=families, title=None, header=alt.Header(labelFontSize=13, labelLimit=260)),
        columns=columns,
    ).properties(
        title=alt.Title(title or "Blank-prompt profiles per family", subtitle="one line per model (mean over samples and tokens), band ±1 sd across samples")
    )


def embedding_frame(meta: pd.DataFrame, labels: Sequence[Any], embeddings: Mapping[str, Any]) -> pd.DataFrame:
    """Tidy rows of 2-d embeddings for :func:`embedding_scatter`: one row per (method, sample).

    Args:
        meta: ``[N]`` rows describing the samples (``model``, ``n_layers``; e.g. the ``meta``
            of :func:`elens_utils.analysis.classify.profile_features` with ``return_meta=True``).
        labels: ``[N]`` class of each sample (the colour), e.g. the family.
        embeddings: method name -> ``[N, 2]`` coordinates (from
            :func:`elens_utils.analysis.classify.embed_2d`), in the order the panels should appear.

    Columns: ``method``, ``x``, ``y``, ``label``, ``model``, ``n_layers``, ``sample``.
    """
    need_columns(meta, ["model", "n_layers"], "embedding_frame")
    n = len(meta)
    if len(labels) != n:
        raise ElensError(f"embedding_frame: {len(labels)} labels for {n} meta rows; give one label per sample.")
    frames = []
    for method, xy in embeddings.items():
        xy = np.asarray(xy, dtype=np.float64)
        if xy.shape != (n, 2):
            raise ElensError(f"embedding_frame: the {method!r} embedding has shape {xy.shape}; expected ({n}, 2), one row per sample.")
        frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "x": xy[:, 0],
                    "y": xy[:, 1],
                    "label": [str(v) for v in labels],
                    "model": meta["model"].to_numpy(),
                    "n_layers": meta["n_layers"].to_numpy(),
                    "sample": np.arange(n),
                }
            )
        )
    if not frames:
        raise ElensError("embedding_frame: give at least one embedding (method name -> [N, 2] array).")
    return pd.concat(frames, ignore_index=True)


def embedding_scatter(frame: pd.DataFrame, *, legend_title: str = "family", title: str | None = None) -> alt.FacetChart:
    """2-d embeddings of the samples side by side (one panel per method), coloured by class.

    Args:
        frame: :func:`embedding_frame` (columns ``method``, ``x``, ``y``, ``label``,
            ``model``, ``n_layers``, ``sample``).
        legend_title: what the colour is (``"family"``).

    The shape tells the model's depth L. Axes carry no unit (t-SNE distances mean little beyond
    neighbourhoods), so each panel has its own scales. Click a legend entry to pick a class.
    """
    need_columns(frame, ["method", "x", "y", "label", "model", "n_layers", "sample"], "embedding_scatter")
    methods = frame["method"].drop_duplicates().tolist()
    keys = frame["label"].drop_duplicates().tolist()
    sel = alt.selection_point(fields=["label"], bind="legend")
    chart = (
        alt.Chart(frame)
        .mark_point(filled=True, size=28)
        .encode(
            x=alt.X("x:Q", title=None, axis=alt.Axis(labels=False, ticks=False)),
            y=alt.Y("y:Q", title=None, axis=alt.Axis(labels=False, ticks=False)),
            color=alt.Color("label:N", sort=keys, title=legend_title, legend=alt.Legend(orient="bottom", columns=4, labelLimit=220)),
            shape=alt.Shape("n_layers:O", title="blocks L", legend=alt.Legend(orient="bottom")),
            opacity=alt.condition(sel, alt.value(0.75), alt.value(0.06)),
            tooltip=tooltips(
                ("label:N", legend_title), "model:N", ("n_layers:Q", "blocks L"), ("sample:Q", "sample #"),
            ),
        )
        .add_params(sel)
        .properties(width=300, height=280)
    )
    return chart.facet(
        column=alt.Column("method:N", sort=methods, title=None, header=alt.Header(labelFontSize=13)),
    ).resolve_scale(x="independent", y="independent").properties(
        title=alt.Title(title or "The profiles in two dimensions", subtitle="one point per sample; click a legend entry to pick a class")
    )


def auc_tests_chart(table: pd.DataFrame, *, color: str = "depth", title: str | None = None) -> alt.LayerChart:
    """kNN ROC-AUC of several tests (cross-validation, held-out groups), side by side per ``color``.

    Args:
        table: :func:`elens_utils.analysis.classify.depth_rescaling` (``color="depth"``) or
            :func:`elens_utils.analysis.classify.transfer_sweep` (``color="model"``): columns ``test``,
            ``auc``, ``auc_std``, ``dummy_auc``, ``accuracy``, ``n_train``, ``n_test``,
            ``detail``, ``status``, ``note`` and ``color``.
        color: the column that tells the compared variants apart (depth modes are shown with
            their names in :data:`DEPTH_MODE_NAMES`).

    Points: the AUC (for cross-validation, the mean over folds with a ±1 sd bar); dashed: 0.5,
    no information. Rows that could not be scored say so in red.
    """
    need_columns(table, ["test", "auc", "auc_std", "dummy_auc", "accuracy", "n_train", "n_test", "detail", "status", "note", color], "auc_tests_chart")
    data = table.copy()
    data["variant"] = data[color].map(lambda v: DEPTH_MODE_NAMES.get(v, v) if color == "depth" else v).astype(str)
    data["lo"] = data["auc"] - data["auc_std"].fillna(0.0)
    data["hi"] = data["auc"] + data["auc_std"].fillna(0.0)
    data["label"] = np.where(data["status"] == "ok", "", "not scored: " + data["status"].astype(str))
    data["x_text"] = 0.02
    data = json_safe(data)
    tests = data["test"].drop_duplicates().tolist()
    variants = data["variant"].drop_duplicates().tolist()
    y = alt.Y("test:N", sort=tests, title=None, axis=alt.Axis(labelLimit=280))
    y_off = alt.YOffset("variant:N", sort=variants)
    colour = alt.Color("variant:N", sort=variants, title=None, legend=alt.Legend(orient="bottom", columns=1, labelLimit=400))
    tooltip = tooltips(
        ("variant:N", color), "test:N", ("auc:Q", "kNN AUC", ".3f"), ("auc_std:Q", "sd over folds", ".3f"),
        ("accuracy:Q", "kNN accuracy", ".1%"), ("dummy_auc:Q", "baseline AUC", ".3f"),
        ("n_train:Q", "training rows"), ("n_test:Q", "test rows"), ("detail:N", "tested on"),
        ("note:N", "note"),
    )
    ok = "datum.status == 'ok'"
    base = alt.Chart(data).encode(y=y, yOffset=y_off)
    x = alt.X("auc:Q", title="ROC-AUC", scale=alt.Scale(domain=[0, 1]))
    layers = [
        ceiling_band(),
        alt.Chart(pd.DataFrame({"x": [0.5]})).mark_rule(strokeDash=[5, 4], color="#777").encode(x="x:Q"),
        base.mark_rule(strokeWidth=2).encode(x=alt.X("lo:Q", scale=alt.Scale(domain=[0, 1])), x2="hi:Q", color=colour).transform_filter(ok),
        base.mark_point(size=80, filled=True).encode(x=x, color=colour, tooltip=tooltip).transform_filter(ok),
        base.mark_text(align="left", fontSize=11, color="#a33").encode(x="x_text:Q", text="label:N", tooltip=tooltip).transform_filter("datum.status != 'ok'"),
    ]
    return alt.layer(*layers).properties(
        width=440,
        height=alt.Step(20),
        title=alt.Title(title or "kNN ROC-AUC by test", subtitle="cross-validation: mean ± 1 sd over folds; held out: one train/test split; dashed: 0.5, no information; shaded: at ceiling"),
    )


def auc_by_setting(table: pd.DataFrame, *, title: str | None = None) -> alt.FacetChart:
    """Cross-validated kNN AUC per setting, one panel per factor varied, with every fold shown.

    Args:
        table: :func:`elens_utils.analysis.classify.robustness_sweep` (columns ``factor``, ``setting``,
            ``baseline``, ``auc_mean``, ``auc_std``, ``auc_min``, ``auc_max``, ``fold_auc``,
            ``dummy_auc_mean``, ``accuracy_mean``, ``k``, ``p_value``). Its ``"baseline"`` row
            is drawn as the dashed rule in every panel.

    Small ticks: the AUC of each fold; large points: the mean over folds (dark: the baseline
    setting). The axis spans the folds' AUCs (the dummy's mean AUC is in the tooltips: the
    chance level is the permutation test's business, see :func:`permutation_chart`).
    """
    need_columns(table, ["factor", "setting", "baseline", "auc_mean", "auc_std", "auc_min", "auc_max", "fold_auc", "dummy_auc_mean", "accuracy_mean", "k", "p_value"], "auc_by_setting")
    base_row = table[table["factor"] == "baseline"]
    data = table[table["factor"] != "baseline"].copy()
    if data.empty:
        raise ElensError("auc_by_setting: the table varies no setting (only the baseline row): give robustness_sweep some values to vary.")
    data["which"] = np.where(data["baseline"], "the baseline setting", "changed setting")
    data["row"] = np.arange(len(data))
    folds = data[["row", "factor", "setting", "fold_auc"]].explode("fold_auc").rename(columns={"fold_auc": "fold"})
    folds["fold"] = folds["fold"].astype(float)
    summary = data.drop(columns=["fold_auc"])
    long = pd.concat([summary.assign(kind="mean"), folds.assign(kind="fold")], ignore_index=True)
    factors = data["factor"].drop_duplicates().tolist()
    lo = max(0.0, math.floor(float(data["auc_min"].min()) * 20 - 1) / 20)  # a margin of 0.05 or more
    scale = alt.Scale(domain=[lo, 1.0], nice=False)
    y = alt.Y("setting:N", sort=None, title=None, axis=alt.Axis(labelLimit=260))
    tooltip = tooltips(
        "factor:N", "setting:N", ("auc_mean:Q", "mean AUC", ".3f"), ("auc_std:Q", "sd over folds", ".3f"),
        ("auc_min:Q", "worst fold", ".3f"), ("auc_max:Q", "best fold", ".3f"),
        ("accuracy_mean:Q", "accuracy", ".1%"), ("dummy_auc_mean:Q", "dummy AUC", ".3f"),
        ("p_value:Q", "paired t-test p", ".2g"),
    )
    colour = alt.Color(
        "which:N", title=None, scale=alt.Scale(domain=["the baseline setting", "changed setting"], range=["#1b6ca8", "#e08214"]), legend=alt.Legend(orient="bottom")
    )
    layers = [
        alt.Chart().mark_tick(color="#555", opacity=0.5, thickness=1, size=10).encode(x=alt.X("fold:Q", scale=scale), y=y, tooltip=alt.Tooltip("fold:Q", title="AUC of one fold", format=".3f")).transform_filter("datum.kind == 'fold'"),
        alt.Chart().mark_point(filled=True, size=70).encode(x=alt.X("auc_mean:Q", scale=scale, title="ROC-AUC (mean over folds; ticks: single folds)"), y=y, color=colour, tooltip=tooltip).transform_filter("datum.kind == 'mean'"),
    ]
    if len(base_row):
        long["base_auc"] = float(base_row["auc_mean"].iloc[0])
        layers.append(alt.Chart().mark_rule(strokeDash=[4, 3], color="#1b6ca8", opacity=0.6).encode(x=alt.X("base_auc:Q", scale=scale)).transform_filter("datum.kind == 'mean'"))
    layered = alt.layer(*layers, data=json_safe(long)).properties(width=420, height=alt.Step(20))
    return layered.facet(
        row=alt.Row("factor:N", sort=factors, title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=13, labelLimit=200)),
    ).resolve_scale(y="independent").properties(
        title=alt.Title(title or "How the AUC moves with each setting", subtitle="one setting changed at a time; points: mean over folds, ticks: single folds; dashed: the baseline's mean")
    )


def permutation_chart(null: Sequence[float], score: float, p_value: float, *, title: str | None = None) -> alt.LayerChart:
    """The permutation test: histogram of the AUCs on shuffled labels, the true AUC as a rule.

    Args:
        null: the ``[n_permutations]`` mean AUCs on shuffled labels
            (:func:`elens_utils.analysis.classify.permutation_test`).
        score: the mean AUC on the true labels; p_value: the permutation p-value.
    """
    values = np.asarray(null, dtype=np.float64)
    if values.ndim != 1 or not len(values) or not np.isfinite(values).all():
        raise ElensError("permutation_chart: null must be a non-empty 1-d array of finite AUCs (from permutation_test).")
    data = pd.DataFrame({"auc": values})
    lo = min(0.4, float(values.min()) - 0.02)
    scale = alt.Scale(domain=[max(0.0, lo), 1.0], nice=False)
    marks = pd.DataFrame({"x": [float(score)], "what": [f"true labels: AUC {score:.3f}, p = {p_value:.2g}"]})
    hist = alt.Chart(data).mark_bar(color="#9e9e9e", opacity=0.8).encode(
        x=alt.X("auc:Q", bin=alt.Bin(maxbins=40, extent=[max(0.0, lo), 1.0]), title="mean ROC-AUC over folds", scale=scale),
        y=alt.Y("count():Q", title="permutations"),
        tooltip=tooltips(("count():Q", "permutations")),
    )
    rule = alt.Chart(marks).mark_rule(color=EXPANSION_COLOUR, strokeWidth=2.5).encode(x=alt.X("x:Q", scale=scale), tooltip=alt.Tooltip("what:N", title="observed"))
    text = alt.Chart(marks).mark_text(align="right", dx=-6, dy=-120, color=EXPANSION_COLOUR, fontSize=12).encode(x=alt.X("x:Q", scale=scale), text="what:N")
    return alt.layer(hist, rule, text).properties(
        width=480,
        height=240,
        title=alt.Title(title or "Permutation test", subtitle=f"grey: the AUC with the labels shuffled, {len(values)} times; orange: with the true labels"),
    )
