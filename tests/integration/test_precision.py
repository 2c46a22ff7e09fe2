"""The bf16 lens path (precision="bf16"): its algebra exactly, its error against float64 bounded,
capability detection and the weight cache."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from elens_utils.core.errors import ElensError
from elens_utils.entropy import precision as precision_mod
from elens_utils.entropy import streaming as entropy_mod
from elens_utils.entropy.streaming import dense_entropy, lens_entropy

ALPHAS = (1.0, 0.5, 2.0, 3.0, math.inf)


def _problem(rows: int, vocab: int, d: int = 48, scale: float = 6.0, seed: int = 0):
    """Hidden states and an unembedding whose logits span tens of nats, as real models' do."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(rows, d, generator=gen) * torch.linspace(0.2, scale, rows).unsqueeze(1)
    w = torch.randn(vocab, d, generator=gen) / math.sqrt(d)
    b = torch.randn(vocab, generator=gen) * 0.5
    return h, w, b


def _ref(h, w, b=None, softcap=None, alphas=ALPHAS):
    z = h.double() @ w.double().T
    if b is not None:
        z = z + b.double()
    if softcap is not None:
        z = torch.tanh(z / softcap) * softcap
    return dense_entropy(z, alphas)


@pytest.mark.parametrize("softcap", [None, 15.0])
@pytest.mark.parametrize("transposed_rows", [40, 700])  # both tile layouts
def test_correcting_every_token_gives_the_fp32_result(softcap, transposed_rows, monkeypatch):
    """With every token recomputed exactly, the bf16 path must give the fp32 entropies: this checks
    the algebra of swapping logits inside the running statistics (a wrong sign or centre fails)."""
    h, w, b = _problem(transposed_rows, 3000)
    monkeypatch.setattr(entropy_mod, "BF16_EXACT_TOP", 10**6)
    monkeypatch.setattr(entropy_mod, "_TOP_GROUPS", 10**6)  # every column is a candidate
    got = lens_entropy(h, w, b, softcap=softcap, alphas=ALPHAS, precision="bf16", chunk_size=512)
    np.testing.assert_allclose(got.double(), _ref(h, w, b, softcap), atol=2e-4, rtol=0)


def test_bf16_error_is_bounded_and_the_exact_top_tokens_cut_it(monkeypatch):
    h, w, b = _problem(600, 20000, scale=10.0)
    ref = _ref(h, w, b)
    got = lens_entropy(h, w, b, alphas=ALPHAS, precision="bf16")
    err = (got.double() - ref).abs()
    assert err.max() < 0.06 and err.mean() < 0.01, (err.max(), err.mean())
    # plain bf16 (bf16 operands and products, no correction) is several times worse on average
    plain_err = (
        lens_entropy(h.bfloat16(), w.bfloat16(), b.bfloat16(), alphas=ALPHAS).double() - ref
    ).abs()
    assert plain_err.mean() > 3 * err.mean(), (plain_err.mean(), err.mean())
    # and fp32 stays at the float64 reference's tolerance
    fp32_err = (lens_entropy(h, w, b, alphas=ALPHAS, precision="fp32").double() - ref).abs()
    assert fp32_err.max() < 1e-4


def test_fewer_exact_tokens_give_a_larger_error(monkeypatch):
    """The correction is what bounds the error: with one exact token per row it grows."""
    h, w, b = _problem(400, 12000, scale=10.0, seed=1)
    ref = _ref(h, w, b)
    full = (lens_entropy(h, w, b, alphas=ALPHAS, precision="bf16").double() - ref).abs().mean()
    monkeypatch.setattr(entropy_mod, "BF16_EXACT_TOP", 1)
    one = (lens_entropy(h, w, b, alphas=ALPHAS, precision="bf16").double() - ref).abs().mean()
    assert one > 1.5 * full, (one, full)


def test_precision_values_and_auto(monkeypatch):
    h, w, _ = _problem(8, 300)
    with pytest.raises(ElensError, match="Unknown precision 'half'"):
        lens_entropy(h, w, precision="half")
    with pytest.raises(ElensError, match="Unknown precision"):
        precision_mod.resolve_precision("fp16")
    assert precision_mod.resolve_precision("fp32") == "fp32"
    assert precision_mod.resolve_precision("bf16") == "bf16"
    monkeypatch.setattr(precision_mod, "cpu_has_bf16", lambda: False)
    assert precision_mod.resolve_precision("auto") == "fp32"
    monkeypatch.setattr(precision_mod, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(precision_mod, "auto_speedup", lambda: 1.1)
    assert precision_mod.resolve_precision("auto") == "fp32"  # flags alone do not decide
    monkeypatch.setattr(precision_mod, "auto_speedup", lambda: 2.5)
    assert precision_mod.resolve_precision("auto") == "bf16"
    assert precision_mod.resolve_precision("auto", "cuda") == "fp32"
    # a small lens (the zoo's: d 64 x V ~500) stays in fp32; a real model's goes to bf16
    assert precision_mod.resolve_precision("auto", "cpu", 64 * 512) == "fp32"
    assert precision_mod.resolve_precision("auto", "cpu", 576 * 49152) == "bf16"
    assert precision_mod.resolve_precision("bf16", "cpu", 64 * 512) == "bf16"  # asked for, given
    # lens_entropy applies the rule: auto on a small problem gives fp32's numbers exactly
    np.testing.assert_array_equal(lens_entropy(h, w, precision="auto"), lens_entropy(h, w))
    assert not np.array_equal(lens_entropy(h, w, precision="bf16"), lens_entropy(h, w))


def test_autos_measurement_is_kept_per_machine(tmp_path, monkeypatch):
    """Measured once, then read back: the choice does not flip with the machine's load."""
    monkeypatch.setenv("ELENS_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(precision_mod, "bf16_speedup", lambda: calls.append(1) or 2.25)
    precision_mod.auto_speedup.cache_clear()
    try:
        assert precision_mod.auto_speedup() == 2.25
        precision_mod.auto_speedup.cache_clear()  # a new process
        monkeypatch.setattr(precision_mod, "bf16_speedup", lambda: calls.append(1) or 1.1)  # a loaded machine
        assert precision_mod.auto_speedup() == 2.25 and len(calls) == 1
        record = json.loads((tmp_path / "precision-auto.json").read_text())
        assert [v["bf16_speedup"] for v in record.values()] == [2.25]
        (tmp_path / "precision-auto.json").write_text("{broken")  # unreadable: measured again
        precision_mod.auto_speedup.cache_clear()
        assert precision_mod.auto_speedup() == 1.1 and len(calls) == 2
    finally:
        precision_mod.auto_speedup.cache_clear()


def test_bf16_speedup_is_a_measured_ratio():
    ratio = precision_mod.bf16_speedup.__wrapped__(rows=32, d=64, vocab=512, repeats=2)
    assert math.isfinite(ratio) and ratio > 0


def test_bf16_weight_copy_is_reused_and_invalidated_by_an_edit():
    import gc

    w = torch.randn(100, 16)
    first = precision_mod.bf16_weight(w)
    assert first.dtype == torch.bfloat16 and precision_mod.bf16_weight(w) is first
    with torch.no_grad():
        w.mul_(2.0)
    second = precision_mod.bf16_weight(w)
    assert second is not first
    torch.testing.assert_close(second, w.bfloat16())
    key = id(w)
    del w, first, second
    gc.collect()
    assert key not in precision_mod._BF16_COPIES


def test_generation_and_cache_take_the_precision(lens_model, tmp_path):
    """precision reaches the lens from generate_profiles and is part of the cache key."""
    from elens_utils.sweeps.cache import ProfileCache

    lm = lens_model("llama")
    prompts = ["the cat sat", "a dog"]
    fp32 = lm.profile(prompts, max_new_tokens=3, progress=False)
    bf16 = lm.profile(prompts, max_new_tokens=3, progress=False, precision="bf16")
    # the tokens come from the model's own logits, which the lens's precision does not touch
    assert [list(x) for x in fp32.meta["generated_ids"]] == [list(x) for x in bf16.meta["generated_ids"]]
    diff = np.abs(fp32.entropy - bf16.entropy)
    assert 0 < diff.max() < 0.06
    cache = ProfileCache(tmp_path)
    name = str(lm.name)
    a = cache.profiles(name, prompts, max_new_tokens=3, progress=False)
    b = cache.profiles(name, prompts, max_new_tokens=3, progress=False, precision="bf16")
    assert len(list(tmp_path.rglob("manifest.json"))) == 2
    np.testing.assert_allclose(a.entropy, fp32.entropy, atol=1e-6)
    np.testing.assert_allclose(b.entropy, bf16.entropy, atol=1e-6)


def test_the_cache_keys_auto_by_what_it_means_on_the_machine(lens_model, tmp_path, monkeypatch):
    from elens_utils.sweeps.cache import ProfileCache

    name = str(lens_model("llama").name)
    cache = ProfileCache(tmp_path)
    monkeypatch.setattr(precision_mod, "cpu_has_bf16", lambda: False)
    cache.profiles(name, ["the cat sat"], max_new_tokens=2, progress=False, precision="auto")
    cache.profiles(name, ["the cat sat"], max_new_tokens=2, progress=False, precision="auto")  # a hit
    manifests = [json.loads(p.read_text()) for p in tmp_path.rglob("manifest.json")]
    assert [m["lens_kwargs"] for m in manifests] == [{"precision": "auto:fp32"}]
    monkeypatch.setattr(precision_mod, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(precision_mod, "auto_speedup", lambda: 2.5)
    cache.profiles(name, ["the cat sat"], max_new_tokens=2, progress=False, precision="auto")
    manifests = [json.loads(p.read_text()) for p in tmp_path.rglob("manifest.json")]
    assert sorted(m["lens_kwargs"]["precision"] for m in manifests) == ["auto:bf16", "auto:fp32"]



@pytest.mark.slow
def test_bf16_error_on_real_models_block_outputs(monkeypatch):
    """The bound the book states, on real models' block outputs at every position (measured
    max 0.057 nats, mean 0.003-0.004, over 1608 rows of both models: benchmarks)."""
    import importlib.util

    from elens_utils import load_model
    from elens_utils.bench.real import REAL_ERROR_MODELS, _float64_entropy, real_block_outputs
    from elens_utils.models.real_models import REAL_MODELS

    monkeypatch.delenv("ELENS_CACHE", raising=False)  # real models convert once per machine
    ran = 0
    for name in REAL_ERROR_MODELS:
        if importlib.util.find_spec(REAL_MODELS[name].module) is None:
            continue
        lm = load_model(name)
        h = real_block_outputs(lm, ["One day, Tom found a white boat. Tom ran to the river with the"])
        weight = lm.parts.unembed.weight
        ref = _float64_entropy(h, weight, lm.parts.softcap)
        bf = lens_entropy(h, weight, softcap=lm.parts.softcap, alphas=(1.0, 0.5, 2.0, math.inf), precision="bf16")
        err = (bf.double() - ref).abs()
        assert err.max() < 0.08 and err.mean() < 0.01, (name, float(err.max()), float(err.mean()))
        ran += 1
    if not ran:
        pytest.skip("the real models are not installed (make setup installs them)")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_wide_logit_spreads_and_small_orders_stay_exact(precision):
    """Logits spread over hundreds of nats (Gemma-3's early blocks) go through the clamped
    exponentials: terms below exp(-87) may be floored, but never a term that matters, even for a
    small Renyi order that lifts the tail (a = 0.1)."""
    h, w, b = _problem(64, 5000, scale=60.0)
    alphas = (1.0, 0.1, 0.5, 5.0, math.inf)
    ref = _ref(h, w, b, alphas=alphas)
    spread = (h.double() @ w.double().T).max(1).values - (h.double() @ w.double().T).min(1).values
    assert spread.max() > 300  # the case the floor is for
    got = lens_entropy(h, w, b, alphas=alphas, precision=precision).double()
    tol = 1e-4 if precision == "fp32" else 0.08
    np.testing.assert_allclose(got, ref, atol=tol, rtol=0)
