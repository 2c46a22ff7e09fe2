"""From profiles to ``(X, y)``: the feature rows and labels the classifiers take.

Models of different depth are first put on one layer axis (linear interpolation on relative
depth, or zero-padding as the paper's code did), then each generation's profile is aggregated
into one row (:meth:`~elens_utils.entropy.profiles.Profiles.features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from elens_utils.analysis.model_families import family_of
from elens_utils.core.checks import positive_int
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles

#: The ways models of different depth share one layer axis (``depth`` of :func:`profile_features`).
DEPTH_MODES = ("raw", "interpolate", "zero_pad")


def _align_depth(
    items: list[Profiles], depth: str, grid: int | None
) -> list[Profiles]:
    """Every Profiles brought to one layer axis, as ``depth`` says."""
    axes = sorted({p.n_layers for p in items})
    if grid is not None:
        grid = positive_int(grid, "grid")
    if depth == "raw":
        if len(axes) > 1:
            raise ElensError(
                f"depth='raw' needs one layer axis, but these profiles have L = {axes}: use "
                "depth='interpolate' (linear interpolation on relative depth, recommended) or "
                "depth='zero_pad' (zero-padding, as the paper's code)."
            )
        if grid is not None and grid != axes[0]:
            raise ElensError(
                f"grid={grid} does not apply to depth='raw' (the layer axis stays L = {axes[0]}): "
                "drop grid, or use depth='interpolate' / 'zero_pad'."
            )
        return items
    if depth == "interpolate":
        n_points = axes[-1] if grid is None else grid
        return [p.resample_depth(n_points) for p in items]
    n_layers = axes[-1] if grid is None else grid
    if n_layers < axes[-1]:
        raise ElensError(
            f"depth='zero_pad' with grid={n_layers} would cut profiles of L = {axes[-1]} layers: "
            f"pad to grid >= {axes[-1]} (or leave grid=None), or use depth='interpolate'."
        )
    return [p.pad_depth(n_layers) for p in items]


def profile_features(
    profiles: Profiles | Sequence[Profiles],
    aggregation: str = "mean",
    alphas: float | Sequence[float] | None = None,
    windows: int = 8,
    *,
    depth: Literal["raw", "interpolate", "zero_pad"] = "interpolate",
    grid: int | None = None,
    label_column: str = "label",
    return_meta: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Features ``X [N, F]`` and labels ``y [N]`` of one or several :class:`Profiles`.

    Several Profiles (for instance one per model, of different depth) are brought to one layer
    axis, concatenated in the order given, and aggregated with
    :meth:`Profiles.features` ``(aggregation, alphas, windows)``.

    Args:
        profiles: a Profiles, or a sequence of them (same number of tokens T and alphas).
        aggregation, alphas, windows: as :meth:`Profiles.features`.
        depth: how models of different depth share the layer axis:

            * ``"interpolate"`` (default): :meth:`Profiles.resample_depth` onto ``grid`` points
              of relative depth ``j / grid`` (default: the longest layer axis). A single model's
              raw profiles on their own depth are unchanged.
            * ``"zero_pad"``: :meth:`Profiles.pad_depth` to ``grid`` entries (default: the
              longest layer axis), zeros after each model's last block (the paper's code).
            * ``"raw"``: the layer axis as it is; every input must have the same length L.
        grid: the common layer-axis length for ``"interpolate"`` / ``"zero_pad"``.
        label_column: the meta column giving ``y``: ``"label"``, ``"model"``, any other meta
            column, or ``"family"`` (the meta column if present, else :func:`family_of` of the
            ``model`` column).
        return_meta: also return the concatenated ``meta`` (row ``i`` describes ``X[i]``), for
            instance for the ``groups`` of :func:`~elens_utils.analysis.knn_protocol.holdout_group_auc`.

    Returns:
        ``(X, y)`` or ``(X, y, meta)``: ``X`` float64 ``[N, F]``, ``y`` an object array ``[N]``.

    Raises:
        ElensError: for an unknown depth mode, profiles that cannot share a layer axis in that
            mode (e.g. zero-padded ones interpolated), an unknown label column, or missing
            labels.
    """
    items = [profiles] if isinstance(profiles, Profiles) else list(profiles)
    if not items:
        raise ElensError("profile_features needs at least one Profiles.")
    if not all(isinstance(p, Profiles) for p in items):
        bad = next(type(p).__name__ for p in items if not isinstance(p, Profiles))
        raise ElensError(f"profile_features takes a Profiles or a list of them; got a {bad}.")
    if depth not in DEPTH_MODES:
        raise ElensError(f"Unknown depth mode {depth!r}: use one of {list(DEPTH_MODES)}.")
    aligned = _align_depth(items, depth, grid)
    merged = aligned[0] if len(aligned) == 1 else Profiles.concat(aligned)
    meta = merged.meta
    if not isinstance(label_column, str):
        raise ElensError(f"label_column must be a column name (str); got {label_column!r}.")
    if label_column in meta.columns:
        y = meta[label_column]
    elif label_column == "family":
        y = meta["model"].map(family_of)
    else:
        raise ElensError(
            f"No meta column {label_column!r}: use 'label', 'model', 'family' or one of "
            f"{list(meta.columns)}."
        )
    missing = y.isna().to_numpy()
    if missing.any():
        raise ElensError(
            f"meta[{label_column!r}] is missing in {int(missing.sum())} of {len(y)} rows (first "
            f"row {int(np.flatnonzero(missing)[0])}): label every profile, drop the unlabelled "
            "ones, or choose label_column='model' / 'family'."
        )
    x = merged.features(aggregation, alphas, windows)
    y_arr = np.asarray(y.tolist(), dtype=object)
    if return_meta:
        return x, y_arr, meta.copy()
    return x, y_arr
