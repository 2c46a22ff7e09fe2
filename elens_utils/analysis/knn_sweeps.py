"""The kNN beyond one cross-validation: groups held out, and one setting varied at a time.

The tables of the chapters "families" and "robustness": does a classifier trained on some model
sizes recognise a held-out size (:func:`depth_rescaling`), on one phrasing of the instructions
the other (:func:`transfer_sweep`), and how far the AUC moves when one setting of the protocol
changes (:func:`robustness_sweep`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import accuracy_score

from elens_utils.analysis.features import DEPTH_MODES, profile_features
from elens_utils.analysis.knn_protocol import (
    DEFAULT_K,
    check_labels,
    check_xy,
    holdout_group_auc,
    knn_classifier,
    knn_cv,
)
from elens_utils.analysis.model_families import family_of
from elens_utils.core.checks import positive_int
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles

#: Columns of the tables of :func:`holdout_sweep`, :func:`depth_rescaling` and
#: :func:`transfer_sweep` (the last two add their own leading columns).
TEST_COLUMNS = (
    "test", "factor", "held_out", "auc", "auc_std", "dummy_auc", "accuracy", "n_train", "n_test",
    "detail", "status", "note",
)  # fmt: skip


def size_rank(meta: pd.DataFrame, *, label_column: str = "family") -> np.ndarray:
    """``[N]`` int: the size rank of each row's model within its family (1 = the shallowest).

    The groups of the depth-rescaling test: hold out rank ``r`` of every family, train on the
    others. Models are ranked by their own depth ``meta.n_layers`` (kept by resampling and
    padding); models of equal depth in one family (Qwen3-4B and -8B: 36 blocks each) by their
    first row. The family is ``meta[label_column]`` when that column exists, else
    :func:`family_of` of ``meta.model``.

    Raises:
        ElensError: if ``meta`` lacks the ``model`` or ``n_layers`` column.
    """
    missing = [c for c in ("model", "n_layers") if c not in meta.columns]
    if missing:
        raise ElensError(f"size_rank needs the meta columns 'model' and 'n_layers'; {missing} missing.")
    family = meta[label_column] if label_column in meta.columns else meta["model"].map(family_of)
    models = pd.DataFrame(
        {"family": family.to_numpy(), "model": meta["model"].to_numpy(), "n_layers": meta["n_layers"].to_numpy()}
    )
    first = models.drop_duplicates("model").reset_index(drop=True)  # in order of first appearance
    first["order"] = np.arange(len(first))
    first = first.sort_values(["family", "n_layers", "order"], kind="stable")
    first["rank"] = first.groupby("family", sort=False).cumcount() + 1
    return models["model"].map(dict(zip(first["model"], first["rank"]))).to_numpy(dtype=np.int64)


def holdout_sweep(
    features: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    *,
    k: int = DEFAULT_K,
    scale: bool = False,
    factor: str = "group",
) -> pd.DataFrame:
    """:func:`holdout_group_auc` with each group held out in turn: one row per group, sorted.

    A group that cannot be scored (it holds a single class, a class no other group has, or
    leaves fewer than ``k`` training rows) gets ``status = "skipped"``, ``auc = NaN`` and the
    reason in ``note``, instead of an error: with the paper's models, the fourth size exists
    only for GPT-2.

    Returns:
        A DataFrame with the columns :data:`TEST_COLUMNS`: ``test`` (``"held out: {factor} =
        {group}"``), ``factor``, ``held_out`` (the group), ``auc``, ``auc_std`` (NaN: one split),
        ``dummy_auc`` (0.5: a label-blind score has an expected AUC of one half), ``accuracy``
        (of the kNN's votes on the held-out rows), ``n_train``, ``n_test``, ``detail`` (the
        classes of the held-out rows), ``status`` and ``note``.

    Raises:
        ElensError: for malformed features, labels or groups (as :func:`holdout_group_auc`).
    """
    x, classes, y = check_xy(features, labels)
    k = positive_int(k, "k")
    group_values, group_codes = check_labels(groups, x.shape[0], name="groups")
    rows = []
    for code, group in enumerate(group_values):
        group = group.item() if hasattr(group, "item") else group
        test = group_codes == code
        present = [str(c) for c in classes[np.unique(y[test])]]
        row = {
            "test": f"held out: {factor} = {group}", "factor": factor, "held_out": group,
            "auc": math.nan, "auc_std": math.nan, "dummy_auc": 0.5, "accuracy": math.nan,
            "n_train": int((~test).sum()), "n_test": int(test.sum()),
            "detail": ", ".join(present), "status": "ok", "note": "",
        }  # fmt: skip
        try:
            row["auc"] = holdout_group_auc(x, labels, group_codes, code, k=k, scale=scale)
        except ElensError as err:
            row.update(status="skipped", note=str(err))
        else:
            model = knn_classifier(k, scale).fit(x[~test], y[~test])
            row["accuracy"] = float(accuracy_score(y[test], model.predict(x[test])))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TEST_COLUMNS))


def _cv_row(x: np.ndarray, labels: np.ndarray, *, k: int, folds: int, seed: int, scale: bool, detail: str) -> dict[str, Any]:
    res = knn_cv(x, labels, k=k, folds=folds, seed=seed, scale=scale)
    return {
        "test": f"{folds}-fold CV", "factor": "cv", "held_out": None, "auc": res.auc_mean,
        "auc_std": res.auc_std, "dummy_auc": res.dummy_auc_mean, "accuracy": res.accuracy_mean,
        "n_train": res.n_samples - res.n_samples // folds, "n_test": res.n_samples // folds,
        "detail": detail, "status": "ok", "note": f"paired t-test against the dummy: p = {res.p_value:.2g}",
    }  # fmt: skip


def depth_rescaling(
    profiles: Profiles | Sequence[Profiles],
    *,
    depths: Sequence[str] = ("interpolate", "zero_pad"),
    label_column: str = "family",
    aggregation: str = "mean",
    alphas: float | Sequence[float] | None = 1.0,
    windows: int = 8,
    grid: int | None = None,
    k: int = DEFAULT_K,
    folds: int = 10,
    seed: int = 42,
    scale: bool = False,
) -> pd.DataFrame:
    """Family identification across depths, for each way of sharing the layer axis.

    For every ``depth`` mode of :func:`profile_features` (interpolation on relative depth,
    zero-padding as the paper's code did), on the same features otherwise:

    * ``"10-fold CV"``: :func:`knn_cv` on every model (all sizes in training and test);
    * ``"held out: size r"``: the depth-rescaling test, :func:`holdout_sweep` with the groups
      :func:`size_rank`: train on every other size of each family, test on the r-th smallest
      model of each family. If profiles of one family at several sizes overlap on relative
      depth, a held-out size is recognised.

    Returns:
        One row per (depth, test): ``depth`` and the columns :data:`TEST_COLUMNS`; for the
        held-out rows ``held_out`` is the rank r and ``detail`` lists the held-out models; for
        the CV row ``auc`` / ``auc_std`` are the mean and sd over the folds, ``dummy_auc`` the
        dummy's mean, and ``n_train`` / ``n_test`` the sizes of one fold (up to one row more
        in some folds).

    Raises:
        ElensError: as :func:`profile_features` and :func:`knn_cv` (a family with fewer than
            ``folds`` samples, ``k`` too large), or for an empty or unknown ``depths``.
    """
    if isinstance(depths, str) or not len(depths):
        raise ElensError(f"depths must be a non-empty list of depth modes {list(DEPTH_MODES)}; got {depths!r}.")
    frames = []
    for depth in depths:
        x, y, meta = profile_features(
            profiles, aggregation, alphas, windows, depth=depth, grid=grid, label_column=label_column, return_meta=True
        )
        ranks = size_rank(meta, label_column=label_column)
        cv = _cv_row(x, y, k=k, folds=folds, seed=seed, scale=scale, detail=f"{len(set(meta['model']))} models, all sizes")
        held = holdout_sweep(x, y, ranks, k=k, scale=scale, factor="size")
        for i, r in enumerate(held["held_out"]):
            names = list(dict.fromkeys(meta["model"][ranks == r]))
            extreme = " (shallowest)" if r == 1 else (" (deepest)" if r == ranks.max() else "")
            held.loc[i, "test"] = f"held out: size {r}{extreme}"
            held.loc[i, "detail"] = ", ".join(names)
        frames.append(pd.concat([pd.DataFrame([cv]), held], ignore_index=True).assign(depth=depth))
    out = pd.concat(frames, ignore_index=True)
    return out[["depth", *TEST_COLUMNS]]


def transfer_sweep(
    profiles: Profiles | Sequence[Profiles],
    groups: dict[str, ArrayLike],
    *,
    label_column: str = "label",
    aggregation: str = "mean",
    alphas: float | Sequence[float] | None = 1.0,
    windows: int = 8,
    k: int = DEFAULT_K,
    folds: int = 10,
    seed: int = 42,
    scale: bool = False,
) -> pd.DataFrame:
    """Per model: the kNN in CV, then trained on all but one prompt group and tested on it.

    The phrasing test of the task-type result: with ``groups={"phrasing": ..., "variant":
    ...}`` (columns of :func:`elens_utils.data.prompts.task_prompts`), does a classifier trained on
    one phrasing of the instructions recognise the task in the other? Each Profiles is
    classified on its own (one model), on ``profile_features(p, aggregation, alphas,
    windows, depth="raw")``.

    Args:
        profiles: one Profiles per model, each with the same N prompts in the same order.
        groups: name -> ``[N]`` group of each prompt (aligned with every Profiles' rows).

    Returns:
        One row per (model, test): ``model`` and the columns :data:`TEST_COLUMNS` (``factor``
        is ``"cv"`` or the group name).

    Raises:
        ElensError: for a group array whose length differs from a Profiles' N, and as
            :func:`knn_cv` / :func:`holdout_sweep`.
    """
    items = [profiles] if isinstance(profiles, Profiles) else list(profiles)
    if not isinstance(groups, dict):
        raise ElensError(f"groups must be a dict name -> [N] group labels; got {type(groups).__name__}.")
    frames = []
    for p in items:
        x, y = profile_features(p, aggregation, alphas, windows, depth="raw", label_column=label_column)
        model = ", ".join(dict.fromkeys(p.meta["model"]))
        rows = [pd.DataFrame([_cv_row(x, y, k=k, folds=folds, seed=seed, scale=scale, detail="all prompts")])]
        for name, values in groups.items():
            if len(values) != p.n:
                raise ElensError(
                    f"groups[{name!r}] has {len(values)} entries for the {p.n} profiles of {model}: give "
                    "one group per prompt, in the order of the prompts."
                )
            rows.append(holdout_sweep(x, y, list(values), k=k, scale=scale, factor=name))
        frames.append(pd.concat(rows, ignore_index=True).assign(model=model))
    out = pd.concat(frames, ignore_index=True)
    return out[["model", *TEST_COLUMNS]]


def _order_name(alphas: float | Sequence[float]) -> str:
    def one(a: float) -> str:
        a = float(a)
        return "Shannon" if a == 1.0 else ("α = ∞" if math.isinf(a) else f"α = {a:g}")

    if isinstance(alphas, numbers.Real):
        return one(alphas)
    items = list(alphas)
    if len(items) == 1:
        return one(items[0])
    return "α ∈ {" + ", ".join("∞" if math.isinf(float(a)) else f"{float(a):g}" for a in items) + "}"


def robustness_sweep(
    profiles: Profiles | Sequence[Profiles],
    *,
    label_column: str = "family",
    aggregation: str = "mean",
    alphas: float | Sequence[float] | None = 1.0,
    windows: int = 8,
    depth: Literal["raw", "interpolate", "zero_pad"] = "interpolate",
    k: int = DEFAULT_K,
    folds: int = 10,
    seed: int = 42,
    scale: bool = False,
    cv_seeds: Sequence[int] = (),
    ks: Sequence[int] = (),
    aggregations: Sequence[str] = (),
    orders: Sequence[float | Sequence[float] | None] = (),
    depths: Sequence[str] = (),
    scales: Sequence[bool] = (),
    replicates: dict[Any, Profiles | Sequence[Profiles]] | None = None,
    replicate_factor: str = "generation seed",
) -> pd.DataFrame:
    """How the cross-validated kNN AUC moves when one setting changes at a time.

    The baseline is :func:`knn_cv` on ``profile_features(profiles, aggregation, alphas,
    windows, depth=depth)`` with ``k``, ``folds``, ``seed`` and ``scale``. Each factor varies
    one of them over the given values, all others at the baseline:

    * ``cv_seeds``: the seed of the fold shuffling and of the dummy (``seed``);
    * ``ks``: neighbours (the rows equal :func:`~elens_utils.analysis.knn_protocol.k_sweep`'s);
    * ``aggregations``: ``"mean"``, ``"windows"`` (``windows`` windows), ``"concat"``;
    * ``orders``: a Renyi order, a list of orders (their features concatenated), or None
      for all the orders the profiles hold;
    * ``depths``: ``"interpolate"``, ``"zero_pad"`` (``"raw"`` for a single depth);
    * ``scales``: standardise the features (per training fold) or not;
    * ``replicates``: other profile sets of the same models (another sampling seed, another
      prompt), key -> Profiles or list of them, each scored with the baseline settings;
      the factor is named ``replicate_factor``.

    Returns:
        One row per (factor, value), factors in the order above: ``factor``, ``setting`` (a
        readable value), ``baseline`` (True where the setting is the baseline's; for
        replicates, where the profiles hold the baseline's entropies), the columns of
        :meth:`~elens_utils.analysis.knn_protocol.CVResult.to_frame`, ``auc_min`` / ``auc_max`` over the folds and ``fold_auc``
        (the list of per-fold AUCs).

    Raises:
        ElensError: as :func:`profile_features` and :func:`knn_cv`, checked for every value.
    """
    base = {"aggregation": aggregation, "alphas": alphas, "windows": windows, "depth": depth,
            "k": k, "folds": folds, "seed": seed, "scale": scale}  # fmt: skip
    cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def features(prof: Any, s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        key = (id(prof), s["aggregation"], repr(s["alphas"]), s["windows"], s["depth"])
        if key not in cache:
            cache[key] = profile_features(
                prof, s["aggregation"], s["alphas"], s["windows"], depth=s["depth"], label_column=label_column
            )
        return cache[key]

    def row(factor: str, setting: str, is_base: bool, prof: Any = profiles, **change: Any) -> pd.DataFrame:
        s = {**base, **change}
        x, y = features(prof, s)
        res = knn_cv(x, y, k=s["k"], folds=s["folds"], seed=s["seed"], scale=s["scale"])
        out = res.to_frame()
        out.insert(0, "baseline", bool(is_base))
        out.insert(0, "setting", setting)
        out.insert(0, "factor", factor)
        out["auc_min"], out["auc_max"] = float(res.auc.min()), float(res.auc.max())
        out["fold_auc"] = [res.auc.tolist()]
        return out

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return [float(v) for v in a] == [float(v) for v in b]
        if a is None or b is None:
            return a is b
        return float(a) == float(b) if isinstance(a, numbers.Real) and isinstance(b, numbers.Real) else a == b

    def values(given: Any, name: str) -> list:
        if isinstance(given, (str, bytes, numbers.Number)):
            raise ElensError(f"{name} must be a list of values; got {given!r}.")
        return list(given)

    rows = [row("baseline", "baseline", True)]
    for s in values(cv_seeds, "cv_seeds"):
        rows.append(row("CV seed", str(s), s == seed, seed=s))
    for kk in values(ks, "ks"):
        rows.append(row("k", str(kk), kk == k, k=kk))
    for agg in values(aggregations, "aggregations"):
        name = f"{windows} windows" if agg == "windows" else agg
        rows.append(row("aggregation", name, agg == aggregation, aggregation=agg))
    first = profiles if isinstance(profiles, Profiles) else next(iter(profiles))
    for order in values(orders, "orders"):
        name = _order_name(first.alphas if order is None else order)
        rows.append(row("entropy order", name, same(order, alphas), alphas=order))
    for d in values(depths, "depths"):
        name = {"interpolate": "interpolation", "zero_pad": "zero-padding"}.get(d, d)
        rows.append(row("depth alignment", name, d == depth, depth=d))
    for sc in values(scales, "scales"):
        rows.append(row("scaling", "standardised" if sc else "raw entropies", bool(sc) == bool(scale), scale=bool(sc)))
    base_items = [profiles] if isinstance(profiles, Profiles) else list(profiles)
    for key, prof in (replicates or {}).items():
        items = [prof] if isinstance(prof, Profiles) else list(prof)
        is_base = len(items) == len(base_items) and all(
            a.entropy.shape == b.entropy.shape and np.array_equal(a.entropy, b.entropy) for a, b in zip(items, base_items)
        )
        rows.append(row(replicate_factor, str(key), is_base, prof=prof))
    return pd.concat(rows, ignore_index=True)
