"""A 2-d embedding of feature rows, for scatter plots: t-SNE (the paper's family plot) or PCA."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler

from elens_utils.analysis.knn_protocol import check_features
from elens_utils.core.checks import positive_int
from elens_utils.core.errors import ElensError

_EMBED_METHODS = ("tsne", "pca")


def embed_2d(
    features: ArrayLike,
    method: Literal["tsne", "pca"] = "tsne",
    *,
    perplexity: float = 20.0,
    seed: int = 0,
    standardize: bool = False,
) -> np.ndarray:
    """A 2-d embedding ``[N, 2]`` (float64) of the feature rows, for scatter plots.

    ``"tsne"``: :class:`sklearn.manifold.TSNE` with PCA initialisation and the "auto" learning
    rate, as in the paper's family plot (perplexity 20). t-SNE needs ``perplexity < N``: a
    larger one is clipped to ``N - 1`` (for small N, where every point is then a neighbour of
    every other). ``"pca"``: the first two principal components. ``standardize`` scales every
    feature to zero mean and unit variance first (useful when Renyi orders of different range
    are mixed). Deterministic for a given ``seed``.

    Raises:
        ElensError: for an unknown method, non-finite features, fewer than 2 samples, a
            non-positive perplexity, or (PCA) fewer than 2 features.
    """
    if method not in _EMBED_METHODS:
        raise ElensError(f"Unknown embedding method {method!r}: use one of {list(_EMBED_METHODS)}.")
    x = check_features(features)
    n = x.shape[0]
    seed = positive_int(seed, "seed", minimum=0)
    if n < 2:
        raise ElensError(f"A 2-d embedding needs at least 2 samples; got {n}.")
    if standardize:
        x = StandardScaler().fit_transform(x)
    if method == "pca":
        if x.shape[1] < 2:
            raise ElensError(
                f"PCA to 2 dimensions needs at least 2 features; got {x.shape[1]} (plot the "
                "feature itself instead)."
            )
        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float64)
    try:
        perplexity = float(perplexity)
    except (TypeError, ValueError) as err:
        raise ElensError(f"perplexity must be a positive number; got {perplexity!r}.") from err
    if not perplexity > 0 or math.isinf(perplexity):
        raise ElensError(f"perplexity must be a positive number; got {perplexity}.")
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, n - 1.0),
        init="pca",
        learning_rate="auto",
        random_state=seed,
    )
    # One OpenMP thread: once torch has run in the process, its own libgomp threads spin-wait
    # beside scikit-learn's, and a 48-point t-SNE took a minute on 2 cores instead of 0.2 s.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return tsne.fit_transform(x).astype(np.float64)
