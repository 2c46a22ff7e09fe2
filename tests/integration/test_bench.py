"""The benchmark's contenders compute the same entropies, its reference is the paper's algorithm,
its JSON has the headline keys, and its writer is atomic."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from elens_utils import dense_entropy, lens_entropy
from elens_utils.bench import suite as bench
from elens_utils.entropy.streaming import tile_shape

ALPHAS = (1.0, 0.5, 2.0, math.inf, 0.0)


def _inputs(rows, vocab, d=24, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(rows, d, generator=g)
    w = torch.randn(vocab, d, generator=g) * (scale / math.sqrt(d))
    b = torch.randn(vocab, generator=g)
    return h, w, b


def _dense(h, w, b, softcap, alphas):
    z = h.double() @ w.double().T + b.double()
    if softcap is not None:
        z = torch.tanh(z / softcap) * softcap
    return dense_entropy(z, alphas)


@pytest.mark.parametrize("softcap", [None, 5.0])
def test_every_lens_contender_computes_the_same_entropies(softcap):
    h, w, b = _inputs(37, 3001, scale=20.0 if softcap else 3.0)
    want = _dense(h, w, b, softcap, ALPHAS).numpy()
    got = {
        "ours": bench.ours_entropy(h, w, b, softcap, ALPHAS),
        "naive": bench.naive_entropy(h, w, b, softcap, ALPHAS),
        # several vocabulary chunks (with a ragged last one) and row blocks
        "chunked": bench.chunked_entropy(h, w, b, softcap, ALPHAS, chunk=700, row_block=16),
    }
    for name, value in got.items():
        assert value.shape == (37, len(ALPHAS)), name
        np.testing.assert_allclose(value.numpy(), want, atol=1e-4, rtol=0, err_msg=name)


def test_triton_backend_agrees_under_the_interpreter():
    pytest.importorskip("triton")
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("no CUDA and TRITON_INTERPRET is not set")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    h, w, b = _inputs(20, 700, d=32)
    want = _dense(h, w, b, None, ALPHAS[:4]).numpy()
    got = bench.ours_entropy(h.to(dev), w.to(dev), b.to(dev), None, ALPHAS[:4], backend="triton")
    np.testing.assert_allclose(got.cpu().numpy(), want, atol=1e-4, rtol=0)


def test_matmul_limit_walks_exactly_our_tiles(monkeypatch):
    import elens_utils.entropy.streaming as ent

    monkeypatch.setattr(ent, "_TILE_ELEMENTS", 3000)
    h, w, _ = _inputs(10, 2500)
    row_block, chunk = tile_shape(10, 2500)
    assert (row_block, chunk) == (2, 1024)
    assert bench.matmul_tiled(h, w) == math.ceil(10 / row_block) * math.ceil(2500 / chunk)


@pytest.mark.parametrize("transpose_max_rows", [0, 10**9], ids=["rows-x-vocab", "vocab-x-rows"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_optimised_torch_path_matches_dense_reference_across_tiles(monkeypatch, transpose_max_rows, dtype):
    """The in-place tile loop of the CPU path (running merge, reused buffers, special-cased
    powers, both tile orientations) against float64, with tiles small enough for many row
    blocks and chunks, bias and soft-cap."""
    import elens_utils.entropy.streaming as ent

    monkeypatch.setattr(ent, "_TRANSPOSE_MAX_ROWS", transpose_max_rows)
    h, w, b = _inputs(23, 5000, scale=8.0)
    h, w = h.to(dtype), w.to(dtype)
    alphas = ALPHAS + (3.0,)
    z = (h @ w.T).double() + b.double()  # bf16: the product rounded to bf16, as the path does
    want = dense_entropy(torch.tanh(z / 30.0) * 30.0, alphas).numpy()
    # bf16: either tile orientation may round a logit to the neighbouring bf16 value
    tol = 1e-4 if dtype == torch.float32 else 5e-3
    for tile in (1 << 22, 5000):
        monkeypatch.setattr(ent, "_TILE_ELEMENTS", tile)
        got = lens_entropy(h, w, b, softcap=30.0, alphas=alphas)
        np.testing.assert_allclose(got.numpy(), want, atol=tol, rtol=0)
    assert bench.matmul_tiled(h, w) > 1


@pytest.fixture(scope="module")
def small_lm():
    # A wide initializer gives peaked, layer-dependent distributions (greedy is well defined).
    return bench.build_gpt2_lens_model(
        seed=1, initializer_range=0.3, n_layer=3, n_embd=32, n_head=2, vocab_size=211, n_positions=64
    )


def test_reference_pipeline_gives_our_profiles(small_lm):
    prompts = bench.bench_prompts(4, 5, 211, seed=3)
    prompts[1] = prompts[1][:2]  # ours pads this one on the left
    ref_h, ref_ids = bench.reference_profiles(small_lm, prompts, 7)
    ours_h, ours_ids = bench.ours_profiles(small_lm, prompts, 7)
    assert ref_h.shape == ours_h.shape == (4, 7, 3)
    np.testing.assert_array_equal(ours_ids, ref_ids)
    np.testing.assert_allclose(ours_h, ref_h, atol=1e-4, rtol=0)
    assert np.ptp(ref_h) > 0.5  # profiles vary: the comparison is not between constants
    # The limit's generation loop generates the same tokens (it is the same loop minus the lens).
    np.testing.assert_array_equal(bench.plain_generation(small_lm, prompts, 7), ref_ids)


def test_reference_reruns_the_whole_prefix_without_cache(small_lm):
    """The paper's algorithm: one prompt at a time, every step a full pass over the prefix."""
    seen = []

    def hook(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen.append((tuple(ids.shape), kwargs.get("use_cache"), kwargs.get("cache", kwargs.get("past_key_values"))))

    handle = small_lm.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        bench.reference_profiles(small_lm, [[1, 2, 3], [4, 5]], 4)
    finally:
        handle.remove()
    assert [s for s, _, _ in seen] == [(1, 3), (1, 4), (1, 5), (1, 6), (1, 2), (1, 3), (1, 4), (1, 5)]
    assert all(cache is False and past is None for _, cache, past in seen)


def test_tiny_run_has_every_headline_key(tmp_path):
    result = bench.run_benchmark("tiny", progress=False)
    for key in bench.HEADLINE_KEYS:
        assert key in result, key
        assert isinstance(result[key], float) and math.isfinite(result[key]), (key, result[key])
    assert result["peak_extra_mb"] > 0
    assert result["e2e_max_abs_diff_nats"] < 1e-4
    sections = {r["section"] for r in result["rows"]}
    assert {"lens", "memory", "e2e"} <= sections
    for row in result["rows"]:
        if row["section"] == "lens":
            assert row["time_s"] > 0 and math.isfinite(row["time_s"])
            assert {"rows", "d", "vocab"} <= set(row["shape"])
    lens = {(r["contender"], r["alphas"]) for r in result["rows"] if r["section"] == "lens"}
    assert {("ours", "1"), ("ours", "1,0.5,2,inf"), ("naive", "1"), ("chunked", "1"), ("matmul_tiled", "matmul only")} <= lens
    e2e = {r["contender"] for r in result["rows"] if r["section"] == "e2e"}
    assert {"ours", "reference", "plain_generation", "lens_matmul", "limit", "transformer_lens"} <= e2e
    for key in ("cpu", "logical_cores", "torch", "device"):
        assert result["machine"][key], key
    assert set(result["targets"]) == set(bench.TARGETS)
    # The table names every contender and the file written is the same object, strict JSON.
    table = bench.format_table(result)
    assert "reference" in table and "lens_vs_matmul" in table
    out = tmp_path / "bench.json"
    bench.write_json_atomic(result, out)
    loaded = json.loads(out.read_text())
    assert loaded["lens_vs_matmul"] == pytest.approx(result["lens_vs_matmul"])
    assert len(loaded["rows"]) == len(result["rows"])


def test_memory_probe_sees_torch_allocations():
    """tracemalloc would report ~0 for torch tensors; the probe must see the naive way's logits."""
    rows, vocab = 2048, 4001
    logits_mb = 4 * rows * vocab / 2**20  # 31 MB
    naive = bench.measure_peak_extra("naive", rows, 16, vocab)
    assert naive["method"].startswith("VmHWM") or "ru_maxrss" in naive["method"]
    assert naive["extra_mb"] > 1.5 * logits_mb, naive  # logits and log-probabilities at least
    ours = bench.measure_peak_extra("ours", rows, 16, vocab)
    assert ours["extra_mb"] < naive["extra_mb"] / 2, (ours, naive)


def test_write_json_atomic_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "out.json"
    bench.write_json_atomic({"a": 1.5, "nan": float("nan"), "inf": math.inf, "arr": np.float32(2.0)}, path)
    assert json.loads(path.read_text()) == {"a": 1.5, "nan": None, "inf": "inf", "arr": 2.0}
    before = path.read_text()
    with pytest.raises(TypeError):
        bench.write_json_atomic({"bad": object()}, path)
    assert path.read_text() == before  # the old file survives a failed write
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]  # no temporary left


def test_module_cli_writes_json_and_rejects_bad_sections(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bench.main(["--tiny", "--sections", "lens", "--no-progress", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["config"] == "tiny" and "lens_vs_matmul" in printed
    assert json.loads(out.read_text())["lens_vs_matmul"] == pytest.approx(printed["lens_vs_matmul"])
    assert "lens_vs_matmul" in captured.err  # the table
    assert bench.main(["--tiny", "--sections", "lens,bogus"]) == 2
    assert "Unknown benchmark section" in capsys.readouterr().err


def test_package_cli_runs_the_benchmark(tmp_path, capsys):
    """``python -m elens_utils bench`` is the documented entry point: same options, same JSON."""
    from elens_utils import cli

    out = tmp_path / "r.json"
    assert cli.main(["bench", "--tiny", "--sections", "lens", "--no-progress", "--no-table", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["config"] == "tiny" and math.isfinite(printed["lens_vs_matmul"])
    assert json.loads(out.read_text())["config"] == "tiny"
    assert cli.main(["bench", "--tiny", "--sections", "nope"]) == 2
    assert "Unknown benchmark section" in capsys.readouterr().err
