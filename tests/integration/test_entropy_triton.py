"""The fused Triton kernel against the float64 dense reference and the torch path.

Without a GPU the kernel runs on CPU tensors under Triton's interpreter, with a GPU the same tests
run on CUDA tensors. Triton chooses between compiling and interpreting when a function is decorated,
its own library included at ``import triton``, so ``TRITON_INTERPRET`` must be set before triton is
first imported. ``conftest.py`` does so for the whole session; setting it again below covers running
this file on its own, where nothing imports triton before this module does.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

try:
    import triton  # noqa: F401
except ImportError:
    if os.environ.get("ELENS_REQUIRE_TRITON") == "1":
        pytest.fail(
            "ELENS_REQUIRE_TRITON=1 but triton cannot be imported: install it "
            "(pip install -e '.[test]') or unset ELENS_REQUIRE_TRITON to skip these tests.",
            pytrace=False,
        )
    pytest.skip("triton is not installed", allow_module_level=True)

from elens_utils.core.errors import ElensError  # noqa: E402
from elens_utils.entropy.streaming import (  # noqa: E402
    _torch_stats,
    dense_entropy,
    finalize_stats,
    lens_entropy,
    power_alphas,
)
from elens_utils.entropy.triton_kernel import _launch, triton_logit_stats  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ALL_ALPHAS = (0.0, 0.5, 1.0, 2.0, 5.0, math.inf)
TOL = 1e-4  # nats


def _inputs(
    rows: int,
    vocab: int,
    d: int,
    *,
    logit_std: float,
    bias: bool,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Random hidden ``[rows, d]``, weight ``[vocab, d]`` and bias; logits have std ``logit_std``."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(rows, d, generator=g)
    w = torch.randn(vocab, d, generator=g) * (logit_std / math.sqrt(d))
    b = torch.randn(vocab, generator=g) if bias else None
    move = lambda t: None if t is None else t.to(device=DEVICE, dtype=dtype)  # noqa: E731
    return move(h), move(w), move(b)


def _reference_logits(
    h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, softcap: float | None
) -> torch.Tensor:
    """float64 logits of the given (possibly bf16-rounded) inputs, on the CPU."""
    z = h.double().cpu() @ w.double().cpu().T
    if b is not None:
        z = z + b.double().cpu()
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    return z


def _max_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    assert got.dtype == torch.float32
    assert torch.isfinite(got).all()
    return (got.double().cpu() - ref).abs().max().item()


# rows, vocab, d, softcap, bias, alphas, dtype
CASES = [
    pytest.param(1, 50257, 24, None, False, ALL_ALPHAS, torch.float32, id="M1-V50257"),
    pytest.param(37, 50257, 40, 30.0, True, ALL_ALPHAS, torch.float32, id="V50257-softcap-bias"),
    pytest.param(70, 1000, 100, 30.0, True, ALL_ALPHAS, torch.float32, id="ragged-M-d-V-softcap"),
    pytest.param(5, 50, 16, None, True, ALL_ALPHAS, torch.float32, id="tiny-V"),
    pytest.param(130, 300, 64, None, False, (1.0,), torch.float32, id="no-powers"),
    pytest.param(3, 777, 33, 30.0, False, (1.0, 2.0, math.inf), torch.float32, id="one-power"),
    pytest.param(20, 2000, 48, 30.0, True, ALL_ALPHAS, torch.bfloat16, id="bf16-softcap-bias"),
    pytest.param(9, 1500, 80, None, True, (0.5, 1.0, 3.0), torch.bfloat16, id="bf16"),
    pytest.param(9, 1500, 80, 30.0, False, (0.5, 1.0, 3.0), torch.float16, id="fp16-softcap"),
]


@pytest.mark.parametrize("rows, vocab, d, softcap, bias, alphas, dtype", CASES)
def test_matches_dense_reference(rows, vocab, d, softcap, bias, alphas, dtype):
    # With a cap, logits of std 40 are flattened substantially; without, std 3 is LM-like.
    logit_std = 40.0 if softcap is not None else 3.0
    h, w, b = _inputs(rows, vocab, d, logit_std=logit_std, bias=bias, dtype=dtype)
    got = lens_entropy(h, w, b, softcap=softcap, alphas=alphas, backend="triton")
    assert got.shape == (rows, len(alphas))
    # Half-precision products are exact in the kernel's float32 accumulator, so against the
    # reference on the rounded inputs the error is float32 summation error, as for float32 inputs.
    ref = dense_entropy(_reference_logits(h, w, b, softcap), alphas)
    assert _max_err(got, ref) < TOL
    if softcap is not None:
        uncapped = dense_entropy(_reference_logits(h, w, b, None), alphas)
        cap_effect = (uncapped - ref).abs().max().item()
        assert cap_effect > 100 * TOL, "logits too small for the cap to matter"


@pytest.mark.parametrize(
    "softcap, bias, alphas",
    [(None, False, (1.0,)), (30.0, True, ALL_ALPHAS)],
)
def test_raw_stats_match_torch_path(softcap, bias, alphas):
    h, w, b = _inputs(67, 3001, 72, logit_std=40.0 if softcap else 3.0, bias=bias, seed=1)
    powers = power_alphas(alphas)
    got = triton_logit_stats(h, w, b, softcap=softcap, powers=powers)
    want = _torch_stats(h, w, b, softcap, powers, chunk_size=512)
    assert got.shape == want.shape == (67, 3 + len(powers))
    assert got.dtype == torch.float32
    # The maximum logit is the same float up to summation order; s, t and the power sums are
    # relative to it, so they agree to float32 accuracy.
    torch.testing.assert_close(got[:, 0], want[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[:, 1:], want[:, 1:], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        finalize_stats(got, alphas, w.shape[0]),
        finalize_stats(want, alphas, w.shape[0]),
        rtol=0,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "rows, block_m, block_v, block_k, n_splits",
    [
        (1, 16, 16, 16, 1),
        (17, 16, 16, 16, 4),  # 21 vocab tiles over 4 splits of 6, 6, 6, 3 tiles
        (17, 16, 16, 16, 5),  # 5 splits of 5, 5, 5, 5, 1 tiles
        (33, 32, 32, 16, 1000),  # more splits asked for than there are tiles: one tile each
        (5, 16, 64, 32, None),
    ],
)
def test_tile_and_split_configurations(rows, block_m, block_v, block_k, n_splits):
    alphas = (0.5, 1.0, 2.0, math.inf)
    h, w, b = _inputs(rows, 333, 41, logit_std=40.0, bias=True, seed=2)
    stats = _launch(
        h, w, b, 30.0, power_alphas(alphas),
        block_m=block_m, block_v=block_v, block_k=block_k, n_splits=n_splits,
    )
    got = finalize_stats(stats, alphas, w.shape[0])
    ref = dense_entropy(_reference_logits(h, w, b, 30.0), alphas)
    assert _max_err(got, ref) < TOL


def test_strided_inputs():
    alphas = (1.0, 2.0)
    h, w, b = _inputs(12, 700, 40, logit_std=3.0, bias=True, seed=3)
    h_t = h.T.contiguous().T  # column-major: copied to row-major by the wrapper
    # Row stride 2d, NaN beyond column d: a read past d would show.
    w_wide = torch.cat([w, torch.full_like(w, float("nan"))], dim=1)[:, : w.shape[1]]
    b_strided = torch.stack([b, torch.full_like(b, float("nan"))], dim=1)[:, 0]
    assert not h_t.is_contiguous() and not w_wide.is_contiguous() and not b_strided.is_contiguous()
    got = lens_entropy(h_t, w_wide, b_strided, alphas=alphas, backend="triton")
    ref = dense_entropy(_reference_logits(h, w, b, None), alphas)
    assert _max_err(got, ref) < TOL


def test_cpu_tensors_without_interpreter_are_refused(monkeypatch):
    h, w, _ = _inputs(2, 40, 16, logit_std=3.0, bias=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ElensError, match=r"use backend='torch' or set TRITON_INTERPRET=1"):
        triton_logit_stats(h.cpu(), w.cpu(), None, softcap=None, powers=())


def test_mismatched_dtypes_are_refused():
    h, w, _ = _inputs(2, 40, 16, logit_std=3.0, bias=False)
    with pytest.raises(ElensError, match="dtype"):
        triton_logit_stats(h, w.to(torch.bfloat16), None, softcap=None, powers=())
