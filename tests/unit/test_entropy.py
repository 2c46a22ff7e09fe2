"""The streaming entropy reduction (CPU path) against float64 brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from elens_utils import ElensError, dense_entropy, lens_entropy
from elens_utils.entropy.streaming import logit_stats, merge_stats, power_alphas

ALPHAS = (0.0, 0.5, 1.0, 2.0, 5.0, math.inf)


def brute_force(p: np.ndarray, a: float) -> float:
    """Textbook entropies of one probability vector, in nats (no shared code with the library)."""
    if a == 1.0:
        return float(-sum(x * math.log(x) for x in p if x > 0))
    if a == math.inf:
        return float(-math.log(max(p)))
    if a == 0.0:
        return math.log(int((p > 0).sum()))
    return math.log(sum(x**a for x in p)) / (1 - a)


def make(rows: int, vocab: int, d: int = 24, scale: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(rows, d, generator=g)
    w = torch.randn(vocab, d, generator=g) * scale / math.sqrt(d)
    b = torch.randn(vocab, generator=g)
    return h, w, b


def reference(h, w, b, softcap=None, alphas=ALPHAS):
    z = h.double() @ w.double().T + (0 if b is None else b.double())
    if softcap is not None:
        z = torch.tanh(z / softcap) * softcap
    return dense_entropy(z, alphas)


def test_dense_entropy_matches_textbook_formulas():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 40, generator=g, dtype=torch.float64) * 3
    got = dense_entropy(logits, ALPHAS).numpy()
    for i, row in enumerate(torch.softmax(logits, -1).numpy()):
        for j, a in enumerate(ALPHAS):
            assert got[i, j] == pytest.approx(brute_force(row, a), abs=1e-10)


def test_known_distributions():
    uniform = torch.zeros(1, 1000)
    np.testing.assert_allclose(dense_entropy(uniform, ALPHAS).numpy(), math.log(1000), atol=1e-12)
    np.testing.assert_allclose(
        lens_entropy(torch.ones(1, 1), torch.zeros(1000, 1), alphas=ALPHAS).numpy(), math.log(1000), atol=1e-5
    )
    peaked = torch.full((1, 50), -1e4)
    peaked[0, 7] = 0
    np.testing.assert_allclose(dense_entropy(peaked, (0.5, 1.0, 2.0, math.inf)).numpy(), 0.0, atol=1e-12)


@pytest.mark.parametrize("vocab", [1, 97, 1000, 50257])
@pytest.mark.parametrize("chunk_size", [None, 64, 4097])
def test_streaming_matches_brute_force(vocab, chunk_size):
    h, w, b = make(9, vocab)
    got = lens_entropy(h, w, b, alphas=ALPHAS, chunk_size=chunk_size)
    np.testing.assert_allclose(got.numpy(), reference(h, w, b).numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("scale", [0.1, 10.0, 300.0])
def test_extreme_logit_scales_stay_finite_and_exact(scale):
    # alpha = 0 is left out: float64 softmax underflows at these scales, so brute force
    # would count fewer than V tokens, while the definition is log V.
    alphas = ALPHAS[1:]
    h, w, b = make(6, 3000, scale=scale)
    got = lens_entropy(h, w, None, alphas=alphas, chunk_size=500)
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(got.numpy(), reference(h, w, None, alphas=alphas).numpy(), atol=1e-4, rtol=1e-5)


def test_softcap_is_applied():
    h, w, b = make(7, 2000, scale=40.0)
    capped = lens_entropy(h, w, b, softcap=5.0, alphas=ALPHAS)
    np.testing.assert_allclose(capped.numpy(), reference(h, w, b, softcap=5.0).numpy(), atol=1e-4)
    uncapped = lens_entropy(h, w, b, alphas=ALPHAS)
    assert (capped - uncapped)[:, 2].abs().max() > 0.1  # the cap matters at this scale


def test_row_blocks_do_not_change_results(monkeypatch):
    import elens_utils.entropy.streaming as ent

    h, w, b = make(50, 700)
    full = lens_entropy(h, w, b, alphas=ALPHAS)
    monkeypatch.setattr(ent, "_TILE_ELEMENTS", 1500)  # forces row blocks of 2 and chunks of 1024
    np.testing.assert_allclose(lens_entropy(h, w, b, alphas=ALPHAS).numpy(), full.numpy(), atol=1e-5)


def test_low_precision_inputs_accumulate_in_float32():
    h, w, b = make(8, 5000)
    hb, wb = h.bfloat16(), w.bfloat16()
    got = lens_entropy(hb, wb, None, alphas=ALPHAS)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), reference(hb, wb, None).numpy(), atol=2e-2)


def test_merge_is_exact_for_any_split():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4, 300, generator=g) * 4
    powers = power_alphas(ALPHAS)
    whole = logit_stats(z, powers)
    parts = [logit_stats(z[:, a:b], powers) for a, b in [(0, 1), (1, 120), (120, 300)]]
    # Pad the slices to one stacked tensor: merge order and sizes must not matter.
    merged = merge_stats(torch.stack(parts[::-1]), powers)
    np.testing.assert_allclose(merged.numpy(), whole.numpy(), rtol=1e-5, atol=1e-5)


def test_support_threshold_counts_tokens():
    h, w, b = make(5, 800, scale=8.0)
    got = lens_entropy(h, w, b, alphas=(0.0,), support_threshold=1e-3)
    want = reference(h, w, b, alphas=(0.0,))  # threshold 0: log V
    assert np.allclose(want.numpy(), math.log(800))
    z = h.double() @ w.double().T + b.double()
    exact = dense_entropy(z, (0.0,), support_threshold=1e-3)
    np.testing.assert_allclose(got.numpy(), exact.numpy(), atol=1e-6)
    assert (got < math.log(800) - 0.5).all()


def test_empty_rows_and_validation():
    assert lens_entropy(torch.zeros(0, 4), torch.zeros(9, 4)).shape == (0, 1)
    with pytest.raises(ElensError, match="support_threshold must lie in"):
        lens_entropy(torch.zeros(1, 4), torch.zeros(9, 4), alphas=(0.0,), support_threshold=2.0)
    with pytest.raises(ElensError, match="bias has shape"):
        lens_entropy(torch.zeros(1, 4), torch.zeros(9, 4), torch.zeros(8))


def test_repeated_alphas_and_order_are_respected():
    h, w, b = make(3, 300)
    got = lens_entropy(h, w, b, alphas=(2.0, 1.0, 2.0, math.inf))
    np.testing.assert_allclose(got[:, 0].numpy(), got[:, 2].numpy())
    # Renyi entropy is non-increasing in alpha.
    assert (got[:, 1] >= got[:, 0] - 1e-6).all() and (got[:, 0] >= got[:, 3] - 1e-6).all()
