"""Small builders shared by test modules (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from elens_utils.entropy.profiles import Profiles


def make_profiles(entropy: np.ndarray, model: str = "m", *, alphas=(1.0,), **meta) -> Profiles:
    """Profiles of ``entropy`` ``[N, T, L, A]`` with a plain meta (prompts ``p0, p1, ...``, no
    labels, no seed); ``meta`` columns replace those or add others (e.g. ``label=[...]``)."""
    n, t, n_layers = entropy.shape[:3]
    columns = {
        "model": model,
        "n_layers": n_layers,
        "prompt": [f"p{i}" for i in range(n)],
        "label": None,
        "text": "",
        "generated_ids": [[0] * t for _ in range(n)],
        "seed": None,
        "settings": "{}",
    }
    columns.update(meta)
    return Profiles(entropy=entropy, alphas=alphas, meta=pd.DataFrame(columns))


def pair_auc(pos, neg) -> float:
    """Binary ROC-AUC by counting every pair: P(score of a positive > score of a negative), ties
    one half (the Mann-Whitney statistic)."""
    diff = np.asarray(pos)[:, None] - np.asarray(neg)[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def brute_knn(x_train, y_train, x_test, k, n_classes, scale=False):
    """Vote fractions ``[n_test, C]`` and predictions of a Euclidean kNN with uniform votes, by
    plain float64 numpy (ties in distance: the earlier training row; in votes: the lower class)."""
    if scale:
        mu, sd = x_train.mean(axis=0), x_train.std(axis=0)
        sd = np.where(sd == 0, 1.0, sd)
        x_train, x_test = (x_train - mu) / sd, (x_test - mu) / sd
    d = np.sqrt(((x_test[:, None, :] - x_train[None, :, :]) ** 2).sum(axis=2))
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(x_test), n_classes))
    for i, row in enumerate(nearest):
        for j in row:
            votes[i, y_train[j]] += 1
    proba = votes / k
    return proba, proba.argmax(axis=1)


def untrained_models(root, *models: tuple[str, int]) -> list[str]:
    """Untrained zoo-architecture models ``(arch, n_layers)`` built under ``root``, as path names."""
    from pathlib import Path

    from elens_utils.models.tiny import build_untrained_model

    return [str(build_untrained_model(arch, Path(root) / f"{arch}-{n}L", n_layers=n)) for arch, n in models]


def write_mini_book(root, cells, params_yml: str) -> None:
    """A one-chapter book under ``root``: ``notebooks/01_mini.ipynb`` (chapter ``mini``) from
    ``cells`` (nbformat cells; the one whose source sets the parameters comes first among the
    code cells and gets the ``parameters`` tag) and ``params/t.yml`` holding ``params_yml``."""
    from pathlib import Path

    import nbformat

    root = Path(root)
    (root / "notebooks").mkdir(parents=True)
    (root / "params").mkdir()
    next(c for c in cells if c.cell_type == "code").metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["elens"] = {"chapter": "mini"}
    nbformat.write(nb, root / "notebooks" / "01_mini.ipynb")
    (root / "params" / "t.yml").write_text(params_yml)
