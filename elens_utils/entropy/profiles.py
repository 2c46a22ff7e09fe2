"""Entropy profiles of a set of generations: the array, its metadata, features and storage.

A model generates T tokens from a prompt. At each generation step k the logit lens of each of
the model's L decoder blocks gives a next-token distribution, whose entropy (nats) is recorded for
one or several Renyi orders ``alpha``. One prompt therefore gives an array ``[T, L, A]`` and a set
of N prompts an array ``[N, T, L, A]``; :class:`Profiles` holds that array (float32, nats), the
orders ``alphas`` (length A, ``math.inf`` and 0 allowed) and a :class:`pandas.DataFrame` ``meta``
with one row per prompt.

Required ``meta`` columns (extra columns are allowed and carried along everywhere):

==================  =========================================================================
column              content
==================  =========================================================================
``model``           model name or path (str)
``n_layers``        the model's own number of decoder blocks (int); not changed by resampling
``prompt``          the prompt text (str)
``label``           class label for classifiers (str or None)
``text``            the generated text (str)
``generated_ids``   the generated token ids (list of int)
``seed``            sampling seed (int or None for greedy decoding)
``settings``        the generation settings as a JSON string (a dict is accepted and dumped)
``depth_grid``      what the layer axis means (added as ``"raw"`` when absent), see below
==================  =========================================================================

The layer axis, ``depth_grid``:

* ``"raw"``: entry ``i - 1`` is block ``i = 1..L`` of the model, at relative depth ``i / L``
  (then ``meta.n_layers == L``). The embedding output is not a layer.
* ``"resampled"``: entry ``j - 1`` is the profile linearly interpolated at relative depth
  ``j / L`` (see :meth:`Profiles.resample_depth`). A raw profile is also a resampled one onto
  its own grid, so raw and resampled rows of the same L may be mixed.
* ``"padded"``: the first ``n_layers`` entries are the raw blocks, the rest are zeros
  (:meth:`Profiles.pad_depth`, what the paper's code did). Padded and resampled rows never mix.

Storage: :meth:`Profiles.to_parquet` / :meth:`Profiles.from_parquet` (one row per prompt, the
entropy as a ``FixedSizeList<float32>`` of ``T * L * A`` values in ``[T, L, A]`` C order, shape and
orders in the schema metadata, written atomically) and :meth:`Profiles.to_dataset` /
:meth:`Profiles.from_dataset` for :mod:`datasets`. Both round-trip the entropies bit-exactly.
Everything here is numpy / pandas / pyarrow; torch is not needed.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from elens_utils.core.atomic import atomic_file
from elens_utils.core.errors import ElensError
from elens_utils.entropy.stats import normalize_alphas

if TYPE_CHECKING:  # imported lazily at run time: `datasets` is slow to import
    import datasets

__all__ = ["Profiles", "META_COLUMNS", "FORMAT_VERSION", "raw_profiles"]

#: The ``meta`` columns every :class:`Profiles` has (``depth_grid`` is added when missing).
META_COLUMNS = (
    "model",
    "n_layers",
    "prompt",
    "label",
    "text",
    "generated_ids",
    "seed",
    "settings",
    "depth_grid",
)
#: Version of the on-disk layout written by :meth:`Profiles.to_parquet` / :meth:`to_dataset`.
FORMAT_VERSION = 1

_METADATA_KEY = b"elens_profiles"
_RESERVED = ("entropy", "alphas")  # storage column names, not allowed in meta
_DEPTH_GRIDS = ("raw", "resampled", "padded")
_AGGREGATIONS = ("mean", "windows", "concat")
_META_ARROW_TYPES = {
    "model": pa.string(),
    "n_layers": pa.int64(),
    "prompt": pa.string(),
    "label": pa.string(),
    "text": pa.string(),
    "generated_ids": pa.list_(pa.int64()),
    "seed": pa.int64(),
    "settings": pa.string(),
    "depth_grid": pa.string(),
}


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_alphas(alphas: Any) -> tuple[float, ...]:
    """Renyi orders as a tuple of distinct floats, each ``>= 0`` or ``inf``."""
    out = normalize_alphas(alphas)
    if len(set(out)) != len(out):
        raise ElensError(f"alphas {out} contain a duplicate: list each Renyi order once.")
    return out


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _as_int(v: Any, column: str, row: int, *, allow_none: bool) -> int | None:
    if _is_missing(v):
        if allow_none:
            return None
        raise ElensError(f"meta[{column!r}] is missing in row {row}: give an integer.")
    if isinstance(v, (bool, np.bool_)):
        raise ElensError(f"meta[{column!r}] row {row} is a bool ({v}); give an integer.")
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real) and float(v).is_integer():  # 3.0 from a column with NaN
        return int(v)
    raise ElensError(f"meta[{column!r}] row {row} is {v!r}; give an integer.")


def _as_str(v: Any, column: str, row: int, *, allow_none: bool) -> str | None:
    if _is_missing(v):
        if allow_none:
            return None
        raise ElensError(f"meta[{column!r}] is missing in row {row}: give a string.")
    if not isinstance(v, str):
        raise ElensError(f"meta[{column!r}] row {row} is {type(v).__name__} {v!r}; give a string.")
    return v


def _as_settings(v: Any, row: int) -> str:
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    s = _as_str(v, "settings", row, allow_none=False)
    try:
        json.loads(s)
    except json.JSONDecodeError as err:
        raise ElensError(
            f"meta['settings'] row {row} is not valid JSON ({err}): store the generation "
            "settings with json.dumps(settings) or pass them as a dict."
        ) from err
    return s


def _as_ids(v: Any, row: int) -> list[int]:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
        raise ElensError(
            f"meta['generated_ids'] row {row} is {v!r}: "
            "give the generated token ids as a list of int."
        )
    return [_as_int(t, "generated_ids", row, allow_none=False) for t in v]


def _normalize_meta(meta: Any, n: int, n_layers_axis: int) -> pd.DataFrame:
    """A validated copy of ``meta`` with the required columns in canonical Python types."""
    if not isinstance(meta, pd.DataFrame):
        raise ElensError(
            f"meta must be a pandas DataFrame with one row per prompt; got {type(meta).__name__}."
        )
    if len(meta) != n:
        raise ElensError(
            f"meta has {len(meta)} rows but the entropy array has N = {n} profiles: "
            "give one meta row per prompt, in the same order."
        )
    if not all(isinstance(c, str) for c in meta.columns):
        raise ElensError(f"meta column names must be strings; got {list(meta.columns)!r}.")
    if meta.columns.duplicated().any():
        dup = sorted(set(meta.columns[meta.columns.duplicated()]))
        raise ElensError(f"meta has duplicate columns {dup}: give each column once.")
    clash = [c for c in _RESERVED if c in meta.columns]
    if clash:
        raise ElensError(
            f"meta may not have a column named {clash[0]!r} (reserved for storage): rename it."
        )
    missing = [c for c in META_COLUMNS if c != "depth_grid" and c not in meta.columns]
    if missing:
        raise ElensError(
            f"meta lacks the required column(s) {missing}; every Profiles meta needs "
            f"{list(META_COLUMNS[:-1])} (use label=None / seed=None where they do not apply)."
        )
    out = meta.reset_index(drop=True).copy()
    if "depth_grid" not in out.columns:
        out["depth_grid"] = "raw"

    def column(name: str, fn: Any) -> pd.Series:
        return pd.Series([fn(v, i) for i, v in enumerate(out[name].tolist())], dtype=object)

    for name in ("model", "prompt", "text", "depth_grid"):
        out[name] = column(name, lambda v, i, name=name: _as_str(v, name, i, allow_none=False))
    out["label"] = column("label", lambda v, i: _as_str(v, "label", i, allow_none=True))
    out["seed"] = column("seed", lambda v, i: _as_int(v, "seed", i, allow_none=True))
    out["settings"] = column("settings", _as_settings)
    out["generated_ids"] = column("generated_ids", _as_ids)
    n_layers = [_as_int(v, "n_layers", i, allow_none=False) for i, v in enumerate(out["n_layers"])]
    out["n_layers"] = pd.Series(n_layers, dtype=np.int64)

    for i, (nl, grid) in enumerate(zip(n_layers, out["depth_grid"])):
        if nl < 1:
            raise ElensError(f"meta['n_layers'] row {i} is {nl}: a model has at least one block.")
        if grid not in _DEPTH_GRIDS:
            raise ElensError(
                f"meta['depth_grid'] row {i} is {grid!r}: use one of {list(_DEPTH_GRIDS)}."
            )
        if grid == "raw" and nl != n_layers_axis:
            raise ElensError(
                f"Row {i} ({out['model'][i]}) says n_layers = {nl} but the layer axis has "
                f"L = {n_layers_axis} entries with depth_grid 'raw': a raw profile has one entry "
                "per decoder block (no embedding layer). Fix n_layers, or mark resampled/padded "
                "rows."
            )
        if grid == "padded" and nl > n_layers_axis:
            raise ElensError(
                f"Row {i} is marked 'padded' but its n_layers = {nl} exceeds L = {n_layers_axis}."
            )
    grids = set(out["depth_grid"])
    if {"padded", "resampled"} <= grids:
        raise ElensError(
            "Rows on a resampled grid and zero-padded rows cannot share one Profiles: "
            "choose one depth alignment (resample_depth or pad_depth) for all of them."
        )
    return out


def _check_entropy(entropy: Any) -> np.ndarray:
    arr = np.asarray(entropy)
    if arr.dtype.kind not in "fiu":
        raise ElensError(f"entropy must be a real numeric array; got dtype {arr.dtype}.")
    if arr.ndim != 4:
        raise ElensError(
            f"entropy must have shape [N, T, L, A] (prompts, tokens, layers, alphas); got "
            f"{arr.ndim} dimension(s) {tuple(arr.shape)}. One prompt's [T, L, A] array needs "
            "a leading axis: entropy[None]."
        )
    _, t, l, _ = arr.shape
    if t < 1 or l < 1:
        raise ElensError(f"entropy shape {tuple(arr.shape)} has no tokens or no layers.")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _window_bounds(n_tokens: int, windows: int) -> list[tuple[int, int]]:
    """Bounds of ``windows`` contiguous near-equal windows, as :func:`numpy.array_split`."""
    size, extra = divmod(n_tokens, windows)
    bounds, start = [], 0
    for k in range(windows):
        stop = start + size + (1 if k < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _alphas_to_json(alphas: Sequence[float]) -> list[str]:
    """Orders as strings (``repr``) so that ``inf`` survives strict JSON, exactly."""
    return [repr(float(a)) for a in alphas]


def _alphas_from_json(items: Sequence[str]) -> tuple[float, ...]:
    return _check_alphas([float(s) for s in items])


# --------------------------------------------------------------------------------------------
# the container


@dataclass(frozen=True, eq=False)
class Profiles:
    """Entropy profiles ``[N, T, L, A]`` of N generations, with their orders and metadata.

    Args:
        entropy: ``[N, T, L, A]`` entropies in nats (prompts, generation steps, layers, orders);
            cast to contiguous float32.
        alphas: the A Renyi orders of the last axis, distinct, each ``>= 0`` or ``math.inf``.
        meta: N rows, one per prompt, with the columns listed in the module docstring.
            A validated copy is kept (index reset; required columns as Python objects:
            str, int, None, list of int); extra columns are kept as they are.

    Raises:
        ElensError: for a wrong shape, a row count or alpha count that does not match, a
            missing or malformed meta column.
    """

    entropy: np.ndarray
    alphas: tuple[float, ...]
    meta: pd.DataFrame

    def __post_init__(self) -> None:
        entropy = _check_entropy(self.entropy)
        alphas = _check_alphas(self.alphas)
        if len(alphas) != entropy.shape[3]:
            raise ElensError(
                f"{len(alphas)} alphas {alphas} given for an entropy array with A = "
                f"{entropy.shape[3]} orders on its last axis: give one alpha per entry of that "
                "axis."
            )
        meta = _normalize_meta(self.meta, entropy.shape[0], entropy.shape[2])
        object.__setattr__(self, "entropy", entropy)
        object.__setattr__(self, "alphas", alphas)
        object.__setattr__(self, "meta", meta)

    # ---- sizes and indexing -----------------------------------------------------------------

    @property
    def n(self) -> int:
        """N, the number of profiles (prompts)."""
        return int(self.entropy.shape[0])

    @property
    def n_tokens(self) -> int:
        """T, the number of generation steps."""
        return int(self.entropy.shape[1])

    @property
    def n_layers(self) -> int:
        """L, the length of the layer axis.

        For raw profiles this is the models' block count; after :meth:`resample_depth` or
        :meth:`pad_depth` it is the grid size, and each model's own depth is ``meta.n_layers``.
        """
        return int(self.entropy.shape[2])

    def __len__(self) -> int:
        return self.n

    def _replace(
        self, entropy: np.ndarray, meta: pd.DataFrame, alphas: Sequence[float] | None = None
    ) -> Profiles:
        return Profiles(entropy, self.alphas if alphas is None else tuple(alphas), meta)

    def __getitem__(self, key: Any) -> Profiles:
        """Rows by an int (a Profiles of one row), a slice, a boolean mask or an int array.

        A boolean :class:`pandas.Series` works too: ``profiles[profiles.meta.model == "gpt2"]``.
        """
        if isinstance(key, (str, bytes)):
            raise ElensError(
                f"Profiles[{key!r}]: index rows by int, slice, boolean mask or int array; "
                "meta columns are in .meta and orders are picked with .select(alpha)."
            )
        if isinstance(key, (numbers.Integral,)) and not isinstance(key, (bool, np.bool_)):
            k = int(key)
            if not -self.n <= k < self.n:
                raise IndexError(f"profile index {k} out of range for {self.n} profiles")
            rows: Any = [k % self.n]
        elif isinstance(key, slice):
            rows = np.arange(self.n)[key]
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                if idx.shape != (self.n,):
                    raise ElensError(
                        f"Boolean mask of shape {idx.shape} for {self.n} profiles: give one "
                        "True/False per profile."
                    )
                rows = np.flatnonzero(idx)
            elif idx.dtype.kind in "iu" and idx.ndim == 1:
                if idx.size and (idx.max() >= self.n or idx.min() < -self.n):
                    raise IndexError(f"profile indices out of range for {self.n} profiles")
                rows = idx
            elif idx.ndim == 1 and idx.size == 0:
                rows = np.zeros(0, dtype=np.int64)
            else:
                raise ElensError(
                    f"Cannot index Profiles with {type(key).__name__} of dtype {idx.dtype}: "
                    "use an int, a slice, a boolean mask or a 1-d int array."
                )
        rows = np.asarray(rows, dtype=np.int64)
        return self._replace(self.entropy[rows], self.meta.iloc[rows].reset_index(drop=True))

    def _alpha_index(self, alpha: float) -> int:
        try:
            a = float(alpha)
        except (TypeError, ValueError) as err:
            raise ElensError(f"alpha must be a number; got {alpha!r}.") from err
        if a not in self.alphas:
            raise ElensError(
                f"alpha={a} was not computed for these profiles; available: "
                f"{list(self.alphas)}. Recompute the profiles with that order included."
            )
        return self.alphas.index(a)

    def select(self, alpha: float) -> np.ndarray:
        """The ``[N, T, L]`` float32 entropies (nats) of one Renyi order (a copy)."""
        return self.entropy[..., self._alpha_index(alpha)].copy()

    def select_alphas(self, alphas: float | Sequence[float]) -> Profiles:
        """A Profiles restricted to (and ordered as) the given orders."""
        wanted = _check_alphas(alphas)
        idx = [self._alpha_index(a) for a in wanted]
        return self._replace(self.entropy[..., idx], self.meta, wanted)

    # ---- combining --------------------------------------------------------------------------

    @classmethod
    def concat(cls, profiles: Sequence[Profiles]) -> Profiles:
        """Stack the rows of several Profiles (for instance several models) in order.

        All must have the same T and the same set of alphas (an order differing only in
        sequence is rearranged to the first one's). Profiles of different depth L must first
        be brought to a common layer axis with :meth:`resample_depth` or :meth:`pad_depth`.
        Meta columns present in only some inputs are filled with NaN elsewhere.
        """
        profiles = list(profiles)
        if not profiles:
            raise ElensError("Profiles.concat needs at least one Profiles.")
        if not all(isinstance(p, Profiles) for p in profiles):
            bad = next(type(p).__name__ for p in profiles if not isinstance(p, Profiles))
            raise ElensError(f"Profiles.concat takes a list of Profiles; got a {bad}.")
        first = profiles[0]
        tokens = sorted({p.n_tokens for p in profiles})
        if len(tokens) > 1:
            raise ElensError(
                f"Cannot concat profiles with different numbers of generated tokens T = {tokens}: "
                "generate the same number of tokens, or cut them all to the shortest T first."
            )
        depths = sorted({p.n_layers for p in profiles})
        if len(depths) > 1:
            raise ElensError(
                f"Cannot concat profiles with different layer counts L = {depths}: bring them to "
                "a common layer axis first, with resample_depth(n) (linear interpolation on "
                f"relative depth, recommended) or pad_depth({depths[-1]}) (zero-padding, as the "
                "paper's code)."
            )
        aligned = []
        for p in profiles:
            if p.alphas != first.alphas:
                if set(p.alphas) != set(first.alphas):
                    raise ElensError(
                        f"Cannot concat profiles with different alphas {list(first.alphas)} and "
                        f"{list(p.alphas)}: restrict them to common orders with select_alphas(...)."
                    )
                p = p.select_alphas(first.alphas)
            aligned.append(p)
        entropy = np.concatenate([p.entropy for p in aligned], axis=0)
        meta = pd.concat([p.meta for p in aligned], ignore_index=True)
        return cls(entropy, first.alphas, meta)

    # ---- features ---------------------------------------------------------------------------

    def features(
        self,
        aggregation: str = "mean",
        alphas: float | Sequence[float] | None = None,
        windows: int = 8,
    ) -> np.ndarray:
        """Feature matrix ``[N, F]`` (float64, nats) for classifiers.

        Per order ``alpha`` (``[N, T, L]``) the block is:

        * ``"mean"``: the mean over the T tokens, ``[N, L]``.
        * ``"windows"``: the T tokens cut into ``windows`` contiguous windows, each averaged,
          concatenated window after window, ``[N, windows * L]`` (column ``w * L + l`` is window
          ``w``, layer ``l``). When T is not a multiple of ``windows`` the windows are those of
          :func:`numpy.array_split`: the first ``T % windows`` hold one token more.
        * ``"concat"``: every token, ``[N, T * L]`` (column ``t * L + l``).

        The blocks of several orders are concatenated along F in the order of ``alphas``
        (``None``: all orders, in :attr:`alphas` order). Averages are taken in float64.
        """
        if aggregation not in _AGGREGATIONS:
            raise ElensError(
                f"Unknown aggregation {aggregation!r}: use one of {list(_AGGREGATIONS)}."
            )
        wanted = self.alphas if alphas is None else _check_alphas(alphas)
        idx = [self._alpha_index(a) for a in wanted]
        n, t, l = self.n, self.n_tokens, self.n_layers
        if aggregation == "windows":
            if isinstance(windows, (bool, np.bool_)) or not isinstance(windows, numbers.Integral):
                raise ElensError(f"windows must be a positive integer; got {windows!r}.")
            if not 1 <= windows <= t:
                raise ElensError(
                    f"windows={windows} does not fit T = {t} generated tokens: use 1 <= windows "
                    f"<= {t} (each window must hold at least one token)."
                )
        blocks = []
        for j in idx:
            h = self.entropy[..., j].astype(np.float64)  # [N, T, L]
            if aggregation == "mean":
                blocks.append(h.mean(axis=1))
            elif aggregation == "windows":
                parts = [h[:, a:b].mean(axis=1) for a, b in _window_bounds(t, int(windows))]
                blocks.append(np.concatenate(parts, axis=1))
            else:
                blocks.append(h.reshape(n, t * l))
        return np.concatenate(blocks, axis=1)

    # ---- depth ------------------------------------------------------------------------------

    def relative_depth(self) -> np.ndarray:
        """``[L]`` float64 relative depths ``i / L`` of the layer-axis entries, ``i = 1..L``.

        Exact for raw and resampled profiles; for zero-padded rows only the first
        ``n_layers`` entries are blocks (and at depth ``i / n_layers``, not ``i / L``).
        """
        return np.arange(1, self.n_layers + 1, dtype=np.float64) / self.n_layers

    def resample_depth(self, n_points: int) -> Profiles:
        """Profiles on the common relative-depth grid ``j / n_points``, ``j = 1..n_points``.

        Each profile, known at ``x_i = i / L`` (block ``i = 1..L``), is linearly interpolated
        as :func:`numpy.interp` does: between ``0`` and ``1 / L`` (before the first block) the
        value is clamped to the first block's. Interpolation weights are computed exactly with
        integer arithmetic, in float64, then cast to float32: resampling onto ``n_points = L``
        is the identity and a profile linear in depth lands exactly on the grid (to float32
        rounding). The rows are marked ``depth_grid = "resampled"``; ``meta.n_layers`` keeps
        each model's own depth.

        Raises:
            ElensError: for ``n_points < 1`` or for zero-padded rows (resample the unpadded ones).
        """
        if isinstance(n_points, (bool, np.bool_)) or not isinstance(n_points, numbers.Integral):
            raise ElensError(f"n_points must be a positive integer; got {n_points!r}.")
        n_points = int(n_points)
        if n_points < 1:
            raise ElensError(f"n_points must be a positive integer; got {n_points}.")
        if (self.meta["depth_grid"] == "padded").any():
            raise ElensError(
                "resample_depth() on zero-padded profiles would interpolate the padding: "
                "resample the profiles before pad_depth(), not after."
            )
        big_l = self.n_layers
        j = np.arange(1, n_points + 1, dtype=np.int64)
        # Grid point j/n sits at block position p = j * L / n (1-based), between blocks lo and
        # lo + 1 with weight frac on lo + 1; divmod keeps lo and frac exact.
        lo, rem = np.divmod(j * big_l, n_points)
        frac = rem.astype(np.float64) / n_points
        before = lo < 1  # left of block 1: clamp (np.interp)
        lo = np.where(before, 1, lo)
        frac = np.where(before, 0.0, frac)
        at_end = lo >= big_l  # only j = n_points, exactly at block L
        lo = np.where(at_end, big_l, lo)
        frac = np.where(at_end, 0.0, frac)
        hi = np.minimum(lo + 1, big_l)
        h = self.entropy.astype(np.float64)
        w = frac[None, None, :, None]
        out = h[:, :, lo - 1, :] * (1.0 - w) + h[:, :, hi - 1, :] * w
        meta = self.meta.copy()
        meta["depth_grid"] = "resampled"
        return self._replace(out.astype(np.float32), meta)

    def pad_depth(self, n_layers: int) -> Profiles:
        """Profiles with the layer axis zero-padded at the end to ``n_layers`` entries.

        This is what the paper's code did to compare models of different depth (a zero reads
        as "no entropy", so prefer :meth:`resample_depth`). Padded rows are marked
        ``depth_grid = "padded"`` (rows already of length ``n_layers`` are left unmarked).

        Raises:
            ElensError: if ``n_layers < L`` or the profiles are resampled.
        """
        if isinstance(n_layers, (bool, np.bool_)) or not isinstance(n_layers, numbers.Integral):
            raise ElensError(f"n_layers must be a positive integer; got {n_layers!r}.")
        n_layers = int(n_layers)
        if n_layers < self.n_layers:
            raise ElensError(
                f"pad_depth({n_layers}) cannot shorten profiles of L = {self.n_layers} layers: "
                f"pad to at least {self.n_layers}, or use resample_depth({n_layers})."
            )
        if (self.meta["depth_grid"] == "resampled").any():
            raise ElensError(
                "pad_depth() on resampled profiles mixes two depth alignments: pad the raw "
                "profiles, or resample all of them to the same grid instead."
            )
        extra = n_layers - self.n_layers
        if extra == 0:
            return self._replace(self.entropy.copy(), self.meta.copy())
        zeros = np.zeros((self.n, self.n_tokens, extra, len(self.alphas)), dtype=np.float32)
        meta = self.meta.copy()
        meta["depth_grid"] = "padded"
        return self._replace(np.concatenate([self.entropy, zeros], axis=2), meta)

    def delta(self) -> np.ndarray:
        """Entropy change between consecutive blocks, ``[N, T, L - 1, A]`` float32 (nats).

        ``out[..., i - 1, :] = H_(i+1) - H_i`` for the layer-axis entries ``i = 1..L-1``, i.e.
        entry ``k`` is ``H`` of entry ``k + 1`` minus ``H`` of entry ``k``. Positive values are
        *expansion* (the candidate set grows), negative values *pruning*. There is no entry for
        the first block (the embedding output is not stored). On resampled profiles the
        differences are between consecutive grid points.

        Raises:
            ElensError: on zero-padded profiles (the step into the padding is not pruning).
        """
        if (self.meta["depth_grid"] == "padded").any():
            raise ElensError(
                "delta() of zero-padded profiles would count the padding as pruning: compute "
                "delta() before pad_depth(), or use resample_depth()."
            )
        return np.diff(self.entropy, axis=2)

    # ---- parquet ----------------------------------------------------------------------------

    def _meta_table(self) -> pa.Table:
        """The meta as an Arrow table with fixed types for the required columns."""
        fields = []
        for c in self.meta.columns:
            if c in _META_ARROW_TYPES:
                fields.append(pa.field(c, _META_ARROW_TYPES[c]))
                continue
            try:
                schema = pa.Schema.from_pandas(self.meta[[c]], preserve_index=False)
                pa.Table.from_pandas(self.meta[[c]], schema=schema, preserve_index=False)
            except (pa.ArrowException, TypeError, ValueError) as err:
                raise ElensError(
                    f"The extra meta column {c!r} cannot be stored ({err}): give it one simple "
                    "type (numbers, strings, lists of them) or drop it before saving."
                ) from err
            fields.append(schema.field(c))
        return pa.Table.from_pandas(self.meta, schema=pa.schema(fields), preserve_index=False)

    def _header(self) -> dict[str, Any]:
        return {
            "format": "elens_profiles",
            "format_version": FORMAT_VERSION,
            "n_tokens": self.n_tokens,
            "n_layers": self.n_layers,
            "n_alphas": len(self.alphas),
            "alphas": _alphas_to_json(self.alphas),
            "entropy_layout": "[T, L, A] C order, float32, nats",
        }

    def to_arrow(self) -> pa.Table:
        """One Arrow row per prompt: the meta columns and ``entropy`` (``FixedSizeList<float32>``).

        The entropy of a row is its ``[T, L, A]`` array flattened in C order; T, L, A, the
        alphas (as strings, so ``inf`` is exact) and the format version are in the schema
        metadata under the key ``elens_profiles``.
        """
        table = self._meta_table()
        size = self.n_tokens * self.n_layers * len(self.alphas)
        flat = pa.array(self.entropy.reshape(-1), type=pa.float32())
        column = pa.FixedSizeListArray.from_arrays(flat, size)
        field = pa.field("entropy", pa.list_(pa.float32(), size), nullable=False)
        table = table.append_column(field, column)
        metadata = dict(table.schema.metadata or {})
        metadata[_METADATA_KEY] = json.dumps(self._header()).encode()
        return table.replace_schema_metadata(metadata)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Profiles:
        """Inverse of :meth:`to_arrow`."""
        metadata = table.schema.metadata or {}
        if _METADATA_KEY not in metadata:
            raise ElensError(
                "This table has no 'elens_profiles' schema metadata: it was not written by "
                "Profiles.to_parquet / to_arrow."
            )
        header = json.loads(metadata[_METADATA_KEY])
        version = header.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ElensError(
                f"Profiles file format version {version!r} is newer than this elens_utils reads "
                f"(up to {FORMAT_VERSION}): upgrade elens_utils."
            )
        t, l, alphas = header["n_tokens"], header["n_layers"], _alphas_from_json(header["alphas"])
        if "entropy" not in table.column_names:
            raise ElensError("This profiles table has no 'entropy' column: the file is damaged.")
        size = t * l * len(alphas)
        col = table.column("entropy")
        if col.type != pa.list_(pa.float32(), size) or col.null_count:
            raise ElensError(
                f"The 'entropy' column has type {col.type} with {col.null_count} nulls; expected "
                f"fixed_size_list<float>[{size}] without nulls (T={t}, L={l}, A={len(alphas)})."
            )
        n = table.num_rows
        if n:
            flat = pa.concat_arrays([chunk.flatten() for chunk in col.chunks])
            values = flat.to_numpy(zero_copy_only=False)
        else:
            values = np.zeros(0, dtype=np.float32)
        entropy = np.asarray(values, dtype=np.float32).reshape(n, t, l, len(alphas))
        meta = table.drop_columns(["entropy"]).to_pandas()
        return cls(entropy, alphas, meta)

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write to a Parquet file, atomically (see :meth:`to_arrow` for the layout).

        The file is written to a temporary file in the same directory, flushed to disk and
        then moved over ``path`` with :func:`os.replace`: an interrupted run leaves either the
        old file or the new one, never a half-written file. Returns the path written.
        """
        path = Path(path)
        if not path.parent.is_dir():
            raise ElensError(
                f"Cannot write {path}: directory {path.parent} does not exist; create it first."
            )
        if path.is_dir():
            raise ElensError(
                f"Cannot write {path}: it is a directory; give a file name (*.parquet)."
            )
        table = self.to_arrow()
        with atomic_file(path, "wb") as fh:
            pq.write_table(table, fh)
        return path

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> Profiles:
        """Read a file written by :meth:`to_parquet`."""
        path = Path(path)
        if not path.is_file():
            raise ElensError(f"No profiles file at {path}: check the path (written by to_parquet).")
        try:
            table = pq.read_table(path)
        except pa.ArrowException as err:
            raise ElensError(f"{path} is not a readable Parquet file ({err}).") from err
        return cls.from_arrow(table)

    # ---- datasets ---------------------------------------------------------------------------

    def to_dataset(self) -> datasets.Dataset:
        """A :class:`datasets.Dataset`, one row per prompt.

        Columns: the meta columns, ``alphas`` (the orders, ``List(float64)``, repeated on every
        row so that they survive ``filter``, ``select``, ``concatenate_datasets`` and the Hub)
        and ``entropy`` as ``Array3D(shape=(T, L, A), dtype="float32")``. The header of
        :meth:`to_arrow` is also put, as JSON, in ``ds.info.description`` (used when the
        dataset has no rows).
        """
        import datasets

        meta_table = self._meta_table().replace_schema_metadata(None)
        features = datasets.Features.from_arrow_schema(meta_table.schema)
        features["alphas"] = datasets.List(datasets.Value("float64"))
        features["entropy"] = datasets.Array3D(
            shape=(self.n_tokens, self.n_layers, len(self.alphas)), dtype="float32"
        )
        data = meta_table.to_pydict()
        data["alphas"] = [list(self.alphas) for _ in range(self.n)]
        data["entropy"] = self.entropy
        info = datasets.DatasetInfo(description=json.dumps(self._header()), features=features)
        return datasets.Dataset.from_dict(data, features=features, info=info)

    @classmethod
    def from_dataset(cls, ds: datasets.Dataset) -> Profiles:
        """Inverse of :meth:`to_dataset` (also after ``filter`` / ``select`` / a Hub round trip)."""
        import datasets

        if not isinstance(ds, datasets.Dataset):
            raise ElensError(
                f"from_dataset takes a datasets.Dataset; got {type(ds).__name__} "
                "(for a DatasetDict pick a split: ds['train'])."
            )
        feature = ds.features.get("entropy")
        if not isinstance(feature, datasets.Array3D) or "alphas" not in ds.column_names:
            raise ElensError(
                "This dataset has no Array3D 'entropy' column and 'alphas' column: it was not "
                "made by Profiles.to_dataset."
            )
        t, l, a = feature.shape
        if len(ds):
            table = ds.with_format("arrow", columns=["alphas"])[:]
            rows = table.column("alphas").to_pylist()
            alphas = _check_alphas(rows[0])
            if any(tuple(r) != alphas for r in rows):
                raise ElensError(
                    "The rows of this dataset carry different alphas: select rows with one set of "
                    "orders (each Profiles has a single alphas tuple)."
                )
        else:
            try:
                alphas = _alphas_from_json(json.loads(ds.info.description or "")["alphas"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ElensError(
                    "This empty dataset lost the orders in its description: cannot rebuild alphas."
                ) from err
        entropy = ds.with_format("numpy", columns=["entropy"])[:]["entropy"]
        entropy = np.asarray(entropy, dtype=np.float32).reshape(len(ds), t, l, a)
        meta = ds.remove_columns(["entropy", "alphas"]).to_pandas()
        return cls(entropy, alphas, meta)

    # ---- display ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        counts = self.meta["model"].value_counts(sort=False)
        models = ", ".join(f"{m} x{c}" for m, c in list(counts.items())[:6])
        if len(counts) > 6:
            models += f", ... ({len(counts)} models)"
        grids = "/".join(g for g in _DEPTH_GRIDS if (self.meta["depth_grid"] == g).any()) or "-"
        alphas = ", ".join(repr(a) for a in self.alphas)
        return (
            f"Profiles(N={self.n}, T={self.n_tokens}, L={self.n_layers}, alphas=({alphas}), "
            f"depth={grids}, models=[{models}])"
        )


def raw_profiles(profiles: Profiles | Sequence[Profiles], caller: str) -> list[Profiles]:
    """``profiles`` as a list, checked for what a per-block analysis needs.

    Args:
        profiles: one :class:`Profiles` or several (e.g. one per model).
        caller: what needs them, named in the error messages (e.g. ``"depth_frame()"``).

    Returns:
        The :class:`Profiles`, in the order given.

    Raises:
        ElensError: when there are none, when an item is not a :class:`Profiles`, or when one is
            resampled or padded (its layer axis is then no longer one entry per block).
    """
    items = [profiles] if isinstance(profiles, Profiles) else list(profiles)
    if not items:
        raise ElensError(f"{caller} needs the profiles of at least one model; got none.")
    for p in items:
        if not isinstance(p, Profiles):
            raise ElensError(f"Expected Profiles (one per model, from profile_models) in {caller}; got {type(p).__name__}.")
        if (p.meta["depth_grid"] != "raw").any():
            raise ElensError(
                f"{caller} takes raw profiles (one entry per decoder block), not resampled or padded ones: "
                "pass them as profile_models() returns them, before resample_depth() or pad_depth()."
            )
    return items
