"""Per-model CPU threads: small models on the parameter set's cap, large ones on every core."""

import pytest
import torch

from elens_utils import load_model
from elens_utils.core import threads
from elens_utils.core.errors import ElensError
from elens_utils.core.threads import LARGE_LENS_MACS, SMALL_MODEL_THREADS_ENV, model_threads


def test_small_models_get_the_cap_and_large_ones_every_thread(monkeypatch):
    monkeypatch.setattr(threads, "_ALL_THREADS", 4)
    env = {SMALL_MODEL_THREADS_ENV: "1"}
    assert model_threads(64, 512, env) == 1  # a zoo model
    assert model_threads(576, 49152, env) == 4  # SmolLM2-135M
    assert model_threads(1, LARGE_LENS_MACS, env) == 4  # the threshold counts as large
    assert model_threads(1, LARGE_LENS_MACS - 1, env) == 1
    # a cap above torch's own count is kept for large models too
    assert model_threads(576, 49152, {SMALL_MODEL_THREADS_ENV: "8"}) == 8


def test_the_users_omp_setting_or_no_cap_leaves_torch_alone():
    assert model_threads(576, 49152, {}) is None
    assert model_threads(576, 49152, {SMALL_MODEL_THREADS_ENV: ""}) is None
    assert model_threads(64, 512, {SMALL_MODEL_THREADS_ENV: "1", "OMP_NUM_THREADS": "2"}) is None
    with pytest.raises(ElensError, match="must be an integer >= 1"):  # a typo is said, not ignored
        model_threads(64, 512, {SMALL_MODEL_THREADS_ENV: "many"})


def test_load_model_sets_the_threads_of_the_model_it_loads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv(SMALL_MODEL_THREADS_ENV, "1")
    monkeypatch.setattr(threads, "_ALL_THREADS", 2)
    monkeypatch.setattr(threads, "LARGE_LENS_MACS", 1 << 40)
    try:
        load_model("tiny/llama-2L")
        assert torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "LARGE_LENS_MACS", 1)  # every model is large now
        load_model("tiny/llama-2L")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
