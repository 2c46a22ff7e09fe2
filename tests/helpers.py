"""Small builders shared by test modules (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from elens_utils.entropy.profiles import Profiles


def make_profiles(entropy: np.ndarray, model: str = "m") -> Profiles:
    n = entropy.shape[0]
    meta = pd.DataFrame(
        {
            "model": model,
            "n_layers": entropy.shape[2],
            "prompt": [f"p{i}" for i in range(n)],
            "label": None,
            "text": "",
            "generated_ids": [[0] * entropy.shape[1] for _ in range(n)],
            "seed": None,
            "settings": "{}",
        }
    )
    return Profiles(entropy=entropy, alphas=(1.0,), meta=meta)


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
