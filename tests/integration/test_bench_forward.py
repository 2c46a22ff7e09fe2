"""The model_bf16 benchmark section: the comparison of fp32- and bf16-model profiles."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_profiles

from elens_utils.bench.forward import bench_model_bf16, forward_dtype_effect
from elens_utils.bench.suite import SECTIONS, format_table
from elens_utils.models.tiny import tiny_prompts


def with_tokens(prof, tokens):
    prof.meta["generated_ids"] = [list(t) for t in tokens]
    return prof


def test_forward_dtype_effect_by_hand():
    a = np.zeros((2, 3, 4, 1), dtype=np.float32)
    b = a.copy()
    b[0, 0, 1, 0] = 0.5  # first token, prompt 0, block 2
    b[1, 2, 3, 0] = -2.0  # a later token: not in the step-1 figures
    fp32 = with_tokens(make_profiles(a), [[1, 2, 3], [4, 5, 6]])
    bf16 = with_tokens(make_profiles(b), [[1, 2, 3], [4, 9, 6]])  # prompt 1 differs at step 2
    got = forward_dtype_effect(fp32, bf16)
    assert got["identical_streams"] == 0.5
    assert got["first_divergence_median"] == np.median([3, 1])
    assert got["step1_max_abs_dh_nats"] == 0.5
    assert got["step1_mean_abs_dh_nats"] == pytest.approx(0.5 / 8)
    # mean over prompts and tokens per block: block 2 moves 0.5 / 6, block 4 moves 2 / 6
    assert got["mean_profile_max_abs_diff_nats"] == pytest.approx(2 / 6)


def test_forward_dtype_effect_refuses_other_shapes():
    a = make_profiles(np.zeros((2, 3, 4, 1), dtype=np.float32))
    b = make_profiles(np.zeros((2, 3, 5, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="different shapes"):
        forward_dtype_effect(a, b)


def test_bench_model_bf16_on_a_tiny_model(tiny_model_dirs):
    name = str(tiny_model_dirs["llama"])
    rows, head = bench_model_bf16([name], steps=4, prompts=tiny_prompts()[:3])
    (row,) = rows
    assert row["section"] == "model_bf16" and row["prompts"] == 3 and row["steps"] == 4
    assert row["speedup"] == pytest.approx(row["seconds_fp32"] / row["seconds_bf16"])
    # bf16 arithmetic moves the first token's entropies, but not by nats on a tiny model
    assert 0 < row["step1_max_abs_dh_nats"] < 0.5
    assert 0 <= row["identical_streams"] <= 1
    assert 0 <= row["lens_step1_max_abs_dh_nats"] < 0.1  # the bf16 lens alone, for scale
    assert head == {"model_bf16_speedup_min": row["speedup"], "model_bf16_step1_max_dh_nats": row["step1_max_abs_dh_nats"]}
    assert "model in bf16" in format_table({"rows": rows, "targets": {}})
    assert "model_bf16" in SECTIONS


def test_missing_real_model_is_a_row_not_an_error(monkeypatch):
    from elens_utils.bench import real as bench_real

    monkeypatch.setattr(bench_real, "installed", lambda _name: False)
    rows, head = bench_model_bf16(["real/gemma3-270m"])
    assert rows == [{"section": "model_bf16", "model": "real/gemma3-270m", "skipped": "not installed (make setup)"}]
    assert head == {}
