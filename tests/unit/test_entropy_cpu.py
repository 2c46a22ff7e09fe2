"""The fused CPU tile kernel against float64, and the fallback when it cannot be built."""

import functools
import math

import numpy as np
import pytest
import torch

from elens_utils.entropy import cpu as entropy_cpu
from elens_utils.entropy import streaming as entropy_mod
from elens_utils.entropy.streaming import lens_entropy

needs_kernel = pytest.mark.skipif(not entropy_cpu.available(), reason="the fused CPU kernel could not be built here")


def _reference(z: torch.Tensor, powers, floor: float) -> torch.Tensor:
    zd = z.double()
    m = zd.amax(1, keepdim=True)
    zr = zd - m
    zc = zr.clamp_min(floor)
    e = zc.exp()
    cols = [m[:, 0], e.sum(1), (zc * e).sum(1)]
    cols += [(zr * a).clamp_min(floor).exp().sum(1) for a in powers]
    return torch.stack(cols, 1)


@needs_kernel
@pytest.mark.parametrize("cols", [1, 15, 32, 100, 1093, 4096])
@pytest.mark.parametrize("scale", [0.1, 5.0, 80.0])
def test_tile_statistics_match_float64(cols, scale):
    gen = torch.Generator().manual_seed(cols)
    z = torch.randn(13, cols, generator=gen) * scale
    powers = (0.5, 2.0, 5.0, 0.1)
    stats, _ = entropy_cpu.tile_stats(z, powers, -87.0)
    ref = _reference(z, powers, -87.0)
    np.testing.assert_array_equal(stats[:, 0].numpy(), z.amax(1).numpy())  # the max is exact
    np.testing.assert_allclose(stats[:, 1:].double().numpy(), ref[:, 1:].numpy(), rtol=2e-6, atol=1e-30)


@needs_kernel
def test_best_groups_are_the_largest_group_maxima():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(40, 1000, generator=gen)
    _, best = entropy_cpu.tile_stats(z, (), -87.0, 32, 2)
    group_max = z[:, :992].reshape(40, 31, 32).amax(-1)
    want = group_max.topk(2, dim=1).indices * 32
    assert best.shape == (40, 2)
    assert torch.equal(best.sort(1).values, want.sort(1).values)


@needs_kernel
@pytest.mark.parametrize("cols", [40, 1000, 2048])
def test_running_top_k_is_that_of_the_torch_paths_candidates(cols):
    gen = torch.Generator().manual_seed(cols)
    tiles = [torch.randn(9, cols, generator=gen) * 4 for _ in range(3)]
    k = 16
    top = (torch.full((9, k), -math.inf), torch.zeros((9, k), dtype=torch.int64))
    cand_z, cand_i = [], []
    for j, z in enumerate(tiles):
        entropy_cpu.tile_stats(z, (), -87.0, 32, 2, top=top, v0=j * cols)
        cz, ci = entropy_mod._tile_candidates(z, 1, j * cols)
        cand_z.append(cz)
        cand_i.append(ci)
    want_z, want_i = entropy_mod._keep_top(cand_z, cand_i, k)
    assert torch.equal(top[0].sort(1).values, want_z.sort(1).values)
    assert torch.equal(top[1].sort(1).values, want_i.sort(1).values)


@needs_kernel
def test_lens_entropy_is_the_same_with_and_without_the_kernel(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    # logits up to ~25, as real models' (a bf16 ulp grows with the logit's size)
    h, w = torch.randn(70, 48, generator=gen), torch.randn(3001, 48, generator=gen)
    alphas = (1.0, 0.5, 2.0, 5.0, math.inf)
    ref = entropy_mod.dense_entropy((h.double() @ w.double().T), alphas=alphas)
    fused = {p: lens_entropy(h, w, alphas=alphas, precision=p) for p in ("fp32", "bf16")}
    monkeypatch.setattr(entropy_cpu, "available", lambda: False)
    torch_path = {p: lens_entropy(h, w, alphas=alphas, precision=p) for p in ("fp32", "bf16")}
    np.testing.assert_allclose(fused["fp32"].numpy(), torch_path["fp32"].numpy(), atol=2e-5, rtol=0)
    np.testing.assert_allclose(fused["fp32"].double().numpy(), ref.numpy(), atol=2e-5, rtol=0)
    # bf16: the group maxima of a bf16 tile tie often, and each path breaks ties its own way, so
    # the exactly recomputed tokens can differ; both stay within the bf16 path's bound
    for got in (fused["bf16"], torch_path["bf16"]):
        err = (got.double() - ref).abs()
        assert err.max() < 0.06 and err.mean() < 0.01


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(entropy_cpu.DISABLE_ENV, "0")
    assert not entropy_cpu.available()


def test_a_failed_build_warns_once_and_keeps_the_torch_path(monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(**_):
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(cpp_extension, "load_inline", no_compiler)
    entropy_cpu._build.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="could not be built .*Ninja is required.*torch path"):
            assert not entropy_cpu.available()
        h, w = torch.randn(4, 8), torch.randn(50, 8)
        ref = entropy_mod.dense_entropy(h.double() @ w.double().T)
        np.testing.assert_allclose(lens_entropy(h, w).double().numpy(), ref.numpy(), atol=1e-5)
    finally:
        entropy_cpu._build.cache_clear()


def test_background_build_is_awaited_not_repeated(monkeypatch):
    # A lens call during a background build waits for it and uses its result: one build.
    import threading
    import time

    calls = []

    def slow_build():
        calls.append((threading.current_thread().name, threading.current_thread().daemon))
        time.sleep(0.3)
        return "kernel"

    monkeypatch.delenv(entropy_cpu.DISABLE_ENV, raising=False)
    monkeypatch.setattr(entropy_cpu, "_build", functools.lru_cache(maxsize=1)(slow_build))
    entropy_cpu.build_in_background()
    time.sleep(0.05)
    assert entropy_cpu._module() == "kernel"
    # not a daemon: a process ending mid-build waits, so torch's build lock is never left behind
    assert calls == [("elens-kernel-build", False)]
