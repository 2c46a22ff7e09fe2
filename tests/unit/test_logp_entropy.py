"""logp_entropy, the textbook formulas shared by dense_entropy and the naive benchmark contender,
against float64 brute force."""

from __future__ import annotations

import math

import pytest
import torch

from elens_utils import dense_entropy
from elens_utils.bench.contenders import naive_entropy
from elens_utils.entropy import logp_entropy

ALPHAS = (1.0, 0.5, 2.0, 3.0, math.inf, 0.0)


def brute_force(logits: list[float], a: float, support_threshold: float | None) -> float:
    """One row's entropy in nats, by Python floats (no shared code with the library)."""
    top = max(logits)
    weights = [math.exp(z - top) for z in logits]
    p = [w / sum(weights) for w in weights]
    if a == 1.0:
        return -sum(x * math.log(x) for x in p if x > 0)
    if a == math.inf:
        return -math.log(max(p))
    if a == 0.0:
        if support_threshold is None:
            return math.log(len(p))
        return math.log(max(1, sum(x > support_threshold for x in p)))
    return math.log(sum(x**a for x in p)) / (1 - a)


def _logits(rows: int = 4, vocab: int = 50) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randn(rows, vocab, generator=g, dtype=torch.float64) * 3


@pytest.mark.parametrize("support_threshold", [None, 1e-3, 0.05])
def test_logp_entropy_matches_brute_force(support_threshold):
    z = _logits()
    got = logp_entropy(torch.log_softmax(z, -1), ALPHAS, support_threshold)
    assert got.shape == (4, len(ALPHAS)) and got.dtype == torch.float64
    for i, row in enumerate(z.tolist()):
        for j, a in enumerate(ALPHAS):
            assert got[i, j].item() == pytest.approx(brute_force(row, a, support_threshold), abs=1e-10)


def test_logp_entropy_keeps_the_dtype_and_leading_shape():
    z = _logits(6, 30).view(2, 3, 30)
    got = logp_entropy(torch.log_softmax(z.float(), -1), ALPHAS)
    assert got.shape == (2, 3, len(ALPHAS)) and got.dtype == torch.float32
    for i, row in enumerate(z.view(6, 30).tolist()):
        for j, a in enumerate(ALPHAS):
            assert got.view(6, -1)[i, j].item() == pytest.approx(brute_force(row, a, None), abs=1e-5)
    assert logp_entropy(torch.log_softmax(z, -1), 2.0).shape == (2, 3, 1)  # one order as a number


def test_the_two_callers_keep_their_own_hartley_entropy():
    # a row with tokens whose probability underflows in float64: dense_entropy counts the
    # support (p > 0), the naive contender gives log V, as lens_entropy does
    z = torch.zeros(1, 10, dtype=torch.float64)
    z[0, 5:] = -1e4
    assert dense_entropy(z, 0.0).item() == pytest.approx(math.log(5), abs=1e-12)
    assert dense_entropy(z, 0.0, support_threshold=0.15).item() == pytest.approx(math.log(5), abs=1e-12)
    assert dense_entropy(z, 0.0, support_threshold=0.25).item() == 0.0  # none above: at least 1
    hidden, weight = torch.ones(1, 1), z[0].float().unsqueeze(-1)
    assert naive_entropy(hidden, weight, alphas=(0.0,)).item() == pytest.approx(math.log(10), abs=1e-6)
