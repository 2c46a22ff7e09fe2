"""Small builders shared by test modules (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from elens_utils.profiles import Profiles


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
