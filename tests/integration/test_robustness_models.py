"""profile_seeds on tiny models: one profile_models run per seed."""

from __future__ import annotations

import numpy as np
import pytest

from elens_utils import profile_models
from elens_utils.core.errors import ElensError
from elens_utils.sweeps.sweep import profile_seeds


def test_profile_seeds_is_profile_models_per_seed(tmp_path, tiny_model_dirs):
    models = [str(tiny_model_dirs["gpt2"]), str(tiny_model_dirs["llama"])]
    settings = {"max_new_tokens": 3, "do_sample": True, "temperature": 0.7}
    settings |= {"device": "cpu", "dtype": "float32"}
    got = profile_seeds(
        models, ["one day", "the cat"], [0, 5], cache=tmp_path, **settings
    )
    assert list(got) == [0, 5]
    for s, profs in got.items():
        want = profile_models(
            models, ["one day", "the cat"], cache=tmp_path / "other", seed=s, **settings
        )
        for a, b in zip(profs, want):
            np.testing.assert_array_equal(a.entropy, b.entropy)
            assert a.meta["model"].tolist() == b.meta["model"].tolist()
    assert not np.array_equal(got[0][0].entropy, got[5][0].entropy)  # sampled apart
    with pytest.raises(ElensError, match="drop the seed"):
        profile_seeds(models, ["x"], [0], seed=1)
    with pytest.raises(ElensError, match="more than once"):
        profile_seeds(models, ["x"], [1, 1])
    with pytest.raises(ElensError, match="non-empty list"):
        profile_seeds(models, ["x"], [])
