"""How well the entropy profiles of each model separate labels: kNN tables and label profiles.

The task-type and output-format chapters (and the robustness chapter) ask the same question of
every model: given its profiles of prompts of several kinds (task families, output formats),
does a k-nearest-neighbour classifier on the profile alone tell the kinds apart? This module
runs :func:`elens_utils.analysis.classify.knn_cv` (the paper's protocol: Euclidean kNN, stratified
10-fold CV with ``random_state=42``, one-vs-rest macro ROC-AUC, a stratified dummy beside it)
over models x feature sets x k x subsets of the prompts, and returns tidy tables for charts:

* :func:`knn_by_model`: one summary row per (model, feature set, subset, k) and one row per
  fold (for the spread over folds).
* :func:`with_prompt_columns`: the prompt frame's other columns (variant, phrasing, topic kind)
  copied into the profiles' meta, so that tables can be split by them (one frame, or one per
  model for models that read a rendering of their own).
* :func:`capped_k`: the paper's k, lowered when the classes are too small for it.
* :func:`alpha_feature_sets`: each Renyi order alone and all of them together (the
  output-format chapter's comparison of Shannon against Renyi).
* :func:`label_depth_frame`: the mean profile of each label against relative depth, per model,
  and its difference from the model's mean over all labels (what the classifier has to go on).
* :func:`window_frame`: the mean entropy of one block in each window of the generation, per
  label (what the windowed output-format features add to the mean over tokens).

Each model is classified on its own, on its own raw layer axis: no depth alignment is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from elens_utils.analysis.classify import DEFAULT_K, knn_cv
from elens_utils.core.checks import positive_int
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles, raw_profiles

__all__ = [
    "ALL_SUBSET",
    "KnnTable",
    "alpha_feature_sets",
    "capped_k",
    "knn_by_model",
    "label_depth_frame",
    "window_frame",
    "with_prompt_columns",
]

#: The ``subset`` value of the rows computed on all prompts.
ALL_SUBSET = "all"


def capped_k(k: int, labels: Sequence[object], folds: int = 10) -> int:
    """``k``, lowered to the fewest training samples any class can have in a fold (at least 1).

    In stratified ``folds``-fold CV a class of ``n_c`` samples puts at most ``ceil(n_c / folds)``
    of them into a test fold, so every training fold holds at least ``n_c - ceil(n_c / folds)``
    of them. A kNN whose k exceeds that number can never find a neighbourhood made only of the
    smallest class: its vote share for that class is capped below 1, and with few samples
    per class a large k averages over most of the training set. The paper's k = 29 (task
    types) was chosen for 800 prompts per class; this keeps it where the classes are that
    large and lowers it where they are not (10 per class, 10 folds: k = 9).

    Args:
        k: the k asked for (>= 1).
        labels: ``[N]`` class labels.
        folds: the number of CV folds (>= 2).

    Returns:
        ``min(k, min_c (n_c - ceil(n_c / folds)))``, at least 1.
    """
    k = positive_int(k, "k", 1)
    folds = positive_int(folds, "folds", 2)
    counts = pd.Series(list(labels), dtype=object).value_counts()
    if counts.empty:
        raise ElensError("capped_k() needs at least one label.")
    smallest = min(int(n) - math.ceil(int(n) / folds) for n in counts)
    return max(1, min(k, smallest))


def alpha_feature_sets(alphas: Sequence[float]) -> dict[str, tuple[float, ...]]:
    """Feature sets of Renyi orders: each order alone, then all of them together.

    ``alpha_feature_sets([0.5, 1, 5])`` gives ``{"Shannon (α = 1)": (1.0,), "Rényi α = 0.5":
    (0.5,), "Rényi α = 5": (5.0,), "all three": (0.5, 1.0, 5.0)}``: Shannon first, the other
    orders in the order given, and the combination (named "all N", or "both" for two orders)
    in the order given. A single order gives one set.
    """
    from elens_utils.entropy.stats import order_label

    try:
        values = [float(a) for a in alphas]
    except (TypeError, ValueError) as err:
        raise ElensError(
            f"alphas must be a sequence of numbers; got {alphas!r}."
        ) from err
    if not values:
        raise ElensError("alpha_feature_sets() needs at least one Renyi order.")
    if len(set(values)) != len(values):
        raise ElensError(
            f"alphas {values} contain a duplicate: list each Renyi order once."
        )
    ordered = sorted(values, key=lambda a: a != 1.0)  # Shannon first, the rest as given
    sets = {order_label(a): (a,) for a in ordered}
    if len(values) > 1:
        words = {2: "both", 3: "all three", 4: "all four"}
        sets[words.get(len(values), f"all {len(values)}")] = tuple(values)
    return sets


def with_prompt_columns(
    profiles: Profiles | Sequence[Profiles],
    prompts: pd.DataFrame | Callable[[str], pd.DataFrame],
    columns: Sequence[str],
) -> list[Profiles]:
    """Each Profiles with ``columns`` of its prompt frame added to its meta, row by row.

    ``prompts`` is the DataFrame the prompts came from, or a function ``model name ->
    DataFrame`` for models that read prompts of their own: a real model reads the natural-English
    rendering of the story world, a zoo model its own, so their profiles hold different prompt
    texts for the same rows (``lambda m: data.for_model(frame, m)``, the frame
    :func:`~elens_utils.profile_models` was given ``lambda m: data.prompts_for(frame, m)``).

    The profiles of a model must be those of its frame's ``prompt`` column, in that order (as
    :func:`~elens_utils.profile_models` returns them): the prompt texts are compared, so a
    mismatch is an error, never a silent misalignment.

    Raises:
        ElensError: for a missing column, a reserved meta column name, profiles whose prompts are
            not those of their frame, or (with a function) a Profiles holding several models.
    """
    from elens_utils.entropy.profiles import META_COLUMNS

    items = [profiles] if isinstance(profiles, Profiles) else list(profiles)
    columns = [columns] if isinstance(columns, str) else list(columns)
    reserved = [c for c in columns if c in META_COLUMNS or c in ("entropy", "alphas")]
    if reserved:
        raise ElensError(
            f"Column(s) {reserved} are part of every Profiles meta and cannot be replaced."
        )
    per_model = callable(prompts) and not isinstance(prompts, pd.DataFrame)
    if not per_model:
        _check_prompt_frame(prompts, columns, None)
    out = []
    for p in items:
        if not isinstance(p, Profiles):
            raise ElensError(f"Expected Profiles; got {type(p).__name__}.")
        model = str(p.meta["model"].iloc[0]) if p.n else "?"
        frame = prompts
        if per_model:
            if p.meta["model"].nunique() > 1:
                raise ElensError(
                    "With a function model -> prompt frame, pass one Profiles per model (as profile_models "
                    f"returns them); this one holds {p.meta['model'].nunique()} models."
                )
            frame = prompts(model)
            _check_prompt_frame(frame, columns, model)
        texts = frame["prompt"].tolist()
        if p.meta["prompt"].tolist() != texts:
            raise ElensError(
                f"The profiles of {model} are not those of these {len(texts)} prompts in this order "
                f"(they hold {p.n}): profile the frame's prompts (data.prompts_for(frame, model) for a "
                "model with a rendering of its own) and pass the same frame (data.for_model(frame, model))."
            )
        meta = p.meta.copy()
        for c in columns:
            meta[c] = frame[c].to_numpy()
        out.append(Profiles(p.entropy, p.alphas, meta))
    return out


def _check_prompt_frame(frame: object, columns: Sequence[str], model: str | None) -> None:
    """Raise unless ``frame`` is a prompt frame with ``columns`` (for :func:`with_prompt_columns`)."""
    whose = "" if model is None else f" of {model}"
    if not isinstance(frame, pd.DataFrame) or "prompt" not in frame.columns:
        raise ElensError(
            f"The prompt frame{whose} must be the DataFrame the prompts came from (a 'prompt' column, e.g. "
            f"data.task_prompts or data.for_model); got {type(frame).__name__}."
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ElensError(
            f"The prompt frame{whose} has no column(s) {missing}; it has {list(frame.columns)}."
        )


@dataclass(frozen=True)
class KnnTable:
    """The result of :func:`knn_by_model`.

    Attributes:
        summary: one row per (model, features, subset, k): ``model``, ``n_layers``,
            ``features`` (the feature-set name), ``alphas`` (its orders, as text),
            ``aggregation``, ``subset``, ``k_requested``, ``k`` (used, see :func:`capped_k`),
            ``folds``, ``n`` (samples), ``n_features``, ``n_classes``, ``auc_mean``,
            ``auc_std``, ``accuracy_mean``, ``accuracy_std``, ``dummy_auc_mean``,
            ``dummy_auc_std``, ``dummy_accuracy_mean``, ``dummy_accuracy_std``, ``p_value``
            (paired t-test of kNN AUC against dummy AUC over the folds). Means and standard
            deviations (``ddof = 0``) are over the folds.
        folds: one row per fold of each summary row: ``model``, ``features``, ``subset``,
            ``k``, ``fold``, ``auc``, ``accuracy``, ``dummy_auc``, ``dummy_accuracy``.
    """

    summary: pd.DataFrame
    folds: pd.DataFrame


def _models_of(profiles: Profiles | Sequence[Profiles], caller: str) -> list[tuple[str, Profiles]]:
    """``(model, its profiles)`` for every model, in the order first seen."""
    out: dict[str, list[Profiles]] = {}
    # raw: each model is classified on its own layer axis
    for p in raw_profiles(profiles, caller):
        for model in p.meta["model"].drop_duplicates():
            out.setdefault(str(model), []).append(
                p[(p.meta["model"] == model).to_numpy()]
            )
    return [
        (m, ps[0] if len(ps) == 1 else Profiles.concat(ps)) for m, ps in out.items()
    ]


@dataclass(frozen=True)
class _Plan:
    """What :func:`knn_by_model` scores for every model."""

    sets: dict[str, tuple[float, ...]]
    ks: list[int]
    aggregation: str
    windows: int
    label_column: str
    subset_column: str | None
    folds: int
    seed: int
    cap_k: bool
    scale: bool


def knn_by_model(
    profiles: Profiles | Sequence[Profiles],
    *,
    feature_sets: Mapping[str, float | Sequence[float]] | None = None,
    ks: int | Sequence[int] = (DEFAULT_K,),
    aggregation: str = "mean",
    windows: int = 8,
    label_column: str = "label",
    subset_column: str | None = None,
    folds: int = 10,
    seed: int = 42,
    cap_k: bool = True,
    scale: bool = False,
) -> KnnTable:
    """Cross-validated kNN scores of the labels from each model's profiles.

    For every model, every feature set, every k and every subset of the prompts (all of them,
    then each value of ``subset_column``), :func:`~elens_utils.analysis.classify.knn_cv` on the features
    :meth:`Profiles.features` ``(aggregation, alphas, windows)``.

    Args:
        profiles: raw profiles (e.g. from :func:`~elens_utils.profile_models`, one per model;
            a Profiles holding several models is split by ``meta.model``).
        feature_sets: name -> Renyi orders of the features (None: ``{"Shannon (α = 1)":
            (1.0,)}``); every order must have been computed.
        ks: the k asked for, one or several.
        aggregation, windows: as :meth:`Profiles.features` (``"mean"`` over the generated
            tokens for task types; ``"windows"`` with 8 windows for output formats).
        label_column: the meta column with the class labels.
        subset_column: a meta column (e.g. ``"variant"``); each of its values is also scored
            alone, after the rows on all prompts (subset :data:`ALL_SUBSET`).
        folds, seed, scale: as :func:`~elens_utils.analysis.classify.knn_cv` (10 folds, seed 42: the
            paper's code).
        cap_k: lower each k with :func:`capped_k` on the labels of the samples scored (the
            ``k`` column says what was used; ``k_requested`` what was asked).

    Returns:
        A :class:`KnnTable`, rows in the order models x feature sets x subsets x ks.

    Raises:
        ElensError: for a missing meta column or Renyi order, missing labels, fewer than two
            classes, or a class with fewer than ``folds`` samples in some subset (lower
            ``folds`` or add prompts).
    """
    if feature_sets is None:
        feature_sets = {"Shannon (α = 1)": (1.0,)}
    if not isinstance(feature_sets, Mapping) or not feature_sets:
        raise ElensError(
            "feature_sets must be a non-empty mapping: name -> Renyi orders, e.g. {'Shannon': (1.0,)}."
        )
    single = isinstance(ks, (int, np.integer)) and not isinstance(ks, bool)
    ks = [ks] if single else list(ks)
    if not ks:
        raise ElensError("ks is empty: give at least one number of neighbours.")
    plan = _Plan(
        sets={
            str(n): (a,) if isinstance(a, (int, float)) else tuple(a)
            for n, a in feature_sets.items()
        },
        ks=[positive_int(k, "each k", 1) for k in ks],
        aggregation=aggregation,
        windows=windows,
        label_column=label_column,
        subset_column=subset_column,
        folds=positive_int(folds, "folds", 2),
        seed=seed,
        cap_k=cap_k,
        scale=scale,
    )
    rows: list[dict] = []
    fold_frames: list[pd.DataFrame] = []
    # One OpenMP thread: scikit-learn's neighbour search opens a parallel region per call, and on
    # the small folds of a busy machine its threads mostly wait for each other (5x slower on 2 cores).
    with threadpool_limits(1, user_api="openmp"):
        for model, prof in _models_of(profiles, "knn_by_model()"):
            for row, per_fold in _score_model(model, prof, plan):
                rows.append(row)
                fold_frames.append(per_fold)
    order = [
        "model", "n_layers", "features", "alphas", "aggregation", "subset", "k_requested", "k", "folds", "n",
        "n_features", "n_classes", "auc_mean", "auc_std", "accuracy_mean", "accuracy_std", "dummy_auc_mean",
        "dummy_auc_std", "dummy_accuracy_mean", "dummy_accuracy_std", "t_statistic", "p_value",
    ]  # fmt: skip
    summary = pd.DataFrame(rows)[order]
    summary = summary.astype(
        {"k": int, "folds": int, "n": int, "n_features": int, "n_classes": int}
    )
    return KnnTable(summary=summary, folds=pd.concat(fold_frames, ignore_index=True))


def _score_model(
    model: str, prof: Profiles, plan: _Plan
) -> Iterator[tuple[dict, pd.DataFrame]]:
    """``(summary row, per-fold frame)`` of one model, for :func:`knn_by_model`."""
    meta = prof.meta
    for column in (plan.label_column, plan.subset_column):
        if column is not None and column not in meta.columns:
            raise ElensError(
                f"No meta column {column!r} in the profiles of {model}; they have {list(meta.columns)}."
            )
    labels = meta[plan.label_column]
    if labels.isna().any():
        raise ElensError(
            f"{int(labels.isna().sum())} profiles of {model} have no {plan.label_column!r}: pass labels to "
            "profile_models(models, prompts, labels, ...)."
        )
    subsets: list[tuple[str, np.ndarray]] = [(ALL_SUBSET, np.ones(prof.n, dtype=bool))]
    if plan.subset_column is not None:
        values = meta[plan.subset_column]
        subsets += [
            (str(v), (values == v).to_numpy()) for v in values.drop_duplicates()
        ]
    aggregation = (
        plan.aggregation if plan.aggregation != "windows" else f"{plan.windows} windows"
    )
    for name, alphas in plan.sets.items():
        x_all = prof.features(plan.aggregation, alphas, plan.windows)  # [N, F]
        for subset, mask in subsets:
            x, y = x_all[mask], labels[mask].to_numpy(dtype=object)
            for k_asked in plan.ks:
                k = capped_k(k_asked, y, plan.folds) if plan.cap_k else k_asked
                try:
                    res = knn_cv(
                        x, y, k=k, folds=plan.folds, seed=plan.seed, scale=plan.scale
                    )
                except ElensError as err:
                    where = f"{model}, features {name!r}"
                    if subset != ALL_SUBSET:
                        where += f", {plan.subset_column} = {subset!r}"
                    raise ElensError(f"{where}: {err}") from err
                row = {
                    "model": model,
                    "n_layers": int(meta["n_layers"].iloc[0]),
                    "features": name,
                    "alphas": ", ".join(f"{a:g}" for a in alphas),
                    "aggregation": aggregation,
                    "subset": subset,
                    "k_requested": k_asked,
                }
                scores = (
                    res.to_frame()
                    .drop(columns=["scale"])
                    .rename(columns={"n_samples": "n"})
                )
                per_fold = res.to_frame(per_fold=True)
                for col, val in (
                    ("k", res.k),
                    ("subset", subset),
                    ("features", name),
                    ("model", model),
                ):
                    per_fold.insert(0, col, val)
                yield {**row, **scores.iloc[0].to_dict()}, per_fold


def label_depth_frame(
    profiles: Profiles | Sequence[Profiles],
    column: str = "label",
    alpha: float = 1.0,
) -> pd.DataFrame:
    """The mean profile of each label (task, format...) against relative depth, per model.

    Each profile is first averaged over its generated tokens (``[N, L]``), then, per model,
    label and block: the mean, the standard deviation (``ddof = 1``; 0 for one profile) and
    the difference of the mean from the model's mean over all its profiles (``centered``:
    what sets that label apart; it is 0 at every block when the labels do not differ).

    Returns:
        Columns ``model``, ``n_layers``, ``label`` (the value of ``column``), ``layer`` (1..L),
        ``depth`` (layer / L), ``entropy`` (mean, nats), ``sd``, ``centered`` (nats), ``n``
        (profiles of that label). Models and labels in the order first seen.
    """
    frames = []
    for model, prof in _models_of(profiles, "label_depth_frame()"):
        if column not in prof.meta.columns:
            raise ElensError(
                f"No meta column {column!r} in the profiles of {model}; they have {list(prof.meta.columns)}."
            )
        h = prof.select(alpha).astype(np.float64).mean(axis=1)  # [N, L]
        overall = h.mean(axis=0)
        labels = prof.meta[column]
        if labels.isna().any():
            raise ElensError(
                f"Some profiles of {model} have no {column!r}: label every prompt."
            )
        layer = np.arange(1, prof.n_layers + 1)
        for label in labels.drop_duplicates():
            part = h[(labels == label).to_numpy()]
            mean = part.mean(axis=0)
            frames.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "n_layers": prof.n_layers,
                        "label": label,
                        "layer": layer,
                        "depth": layer / prof.n_layers,
                        "entropy": mean,
                        "sd": part.std(axis=0, ddof=1)
                        if len(part) > 1
                        else np.zeros(prof.n_layers),
                        "centered": mean - overall,
                        "n": len(part),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def window_frame(
    profiles: Profiles | Sequence[Profiles],
    column: str = "label",
    alpha: float = 1.0,
    windows: int = 8,
    block: int = -1,
) -> pd.DataFrame:
    """The mean entropy of one block in each window of the generation, per model and label.

    The generated tokens are cut into ``windows`` contiguous windows as in
    :meth:`Profiles.features` ``("windows")`` (the output-format features); each profile's
    entropy at ``block`` is averaged within each window, then over the profiles of a label.

    Args:
        column: the meta column of the labels.
        alpha: the Renyi order.
        windows: the number of windows (1 <= windows <= T).
        block: the block, 1-based (``1..L``), or negative from the end (``-1``: the last block,
            whose lens is the model's own next-token distribution).

    Returns:
        Columns ``model``, ``n_layers``, ``block`` (1-based), ``label``, ``window`` (1..w),
        ``tokens`` (the generation steps it covers, ``"1-8"``), ``entropy`` (mean, nats),
        ``sd`` (of the profiles' window means, ``ddof = 1``) and ``n``.
    """
    windows = positive_int(windows, "windows", 1)
    if (
        isinstance(block, bool)
        or not isinstance(block, (int, np.integer))
        or block == 0
    ):
        raise ElensError(
            f"block must be a block number 1..L or negative from the end (-1: the last); got {block!r}."
        )
    frames = []
    for model, prof in _models_of(profiles, "window_frame()"):
        if column not in prof.meta.columns:
            raise ElensError(
                f"No meta column {column!r} in the profiles of {model}; they have {list(prof.meta.columns)}."
            )
        n_layers = prof.n_layers
        if not -n_layers <= block <= n_layers:
            raise ElensError(
                f"block {block} does not exist in {model}, which has {n_layers} blocks."
            )
        b = block - 1 if block > 0 else n_layers + block  # 0-based
        x = prof.features("windows", alpha, windows).reshape(prof.n, windows, n_layers)[
            :, :, b
        ]  # [N, w]
        spans = np.array_split(np.arange(1, prof.n_tokens + 1), windows)
        tokens = [f"{s[0]}" if len(s) == 1 else f"{s[0]}-{s[-1]}" for s in spans]
        labels = prof.meta[column]
        for label in labels.drop_duplicates():
            part = x[(labels == label).to_numpy()]
            frames.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "n_layers": n_layers,
                        "block": b + 1,
                        "label": label,
                        "window": np.arange(1, windows + 1),
                        "tokens": tokens,
                        "entropy": part.mean(axis=0),
                        "sd": part.std(axis=0, ddof=1)
                        if len(part) > 1
                        else np.zeros(windows),
                        "n": len(part),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
