"""Tests of elens_utils.entropy.profiles: every numeric method against a brute-force float64 reference
written here with plain loops, the storage round trips bit for bit, and each user error."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elens_utils.core.errors import ElensError
from elens_utils.entropy import profiles as profiles_module
from elens_utils.entropy.profiles import FORMAT_VERSION, Profiles

ALPHAS = (1.0, math.inf, 0.5, 0.0)


def make_meta(n: int, n_layers: int, model: str = "gpt2", **extra) -> pd.DataFrame:
    data = {
        "model": [model] * n,
        "n_layers": [n_layers] * n,
        "prompt": [f"prompt {i}" for i in range(n)],
        "label": [None if i % 3 == 0 else f"class{i % 2}" for i in range(n)],
        "text": [f"generated text {i} \u00e9\u4e2d" for i in range(n)],
        "generated_ids": [list(range(i, i + (i % 4))) for i in range(n)],
        "seed": [None if i % 2 else 1000 + i for i in range(n)],
        "settings": [json.dumps({"temperature": 0.7, "max_new_tokens": 5})] * n,
    }
    data.update(extra)
    return pd.DataFrame(data)


def make(n=4, t=5, l=6, alphas=ALPHAS, model="gpt2", seed=0, **extra) -> Profiles:
    rng = np.random.default_rng(seed)
    entropy = rng.uniform(0.0, 11.0, size=(n, t, l, len(alphas))).astype(np.float32)
    return Profiles(entropy, alphas, make_meta(n, l, model, **extra))


def bits(a: np.ndarray) -> np.ndarray:
    """The raw float32 bits, so equality is bit-exact (NaN payloads, -0.0 included)."""
    assert a.dtype == np.float32
    return np.ascontiguousarray(a).view(np.uint32)


# ---------------------------------------------------------------------------------------------
# construction and meta


def test_construction_normalizes_meta_and_keeps_extras():
    meta = make_meta(3, 4, temperature=[0.5, 0.7, 1.0], group=["x", "y", "z"])
    meta["seed"] = [1.0, np.nan, 3.0]  # what pandas makes of [1, None, 3]
    meta["settings"] = [{"b": 1, "a": 2}] * 3
    meta.index = [10, 11, 12]
    entropy = np.arange(3 * 2 * 4 * 1, dtype=np.float64).reshape(3, 2, 4, 1)
    p = Profiles(entropy, [1], meta)
    assert p.entropy.dtype == np.float32 and p.entropy.flags.c_contiguous
    assert p.alphas == (1.0,)
    assert (p.n, p.n_tokens, p.n_layers, len(p)) == (3, 2, 4, 3)
    assert list(p.meta.index) == [0, 1, 2]
    assert p.meta["seed"].tolist() == [1, None, 3]
    assert all(type(s) is int for s in p.meta["seed"] if s is not None)
    assert p.meta["settings"][0] == '{"a": 2, "b": 1}'
    assert p.meta["depth_grid"].tolist() == ["raw"] * 3
    assert p.meta["temperature"].tolist() == [0.5, 0.7, 1.0]
    assert p.meta["group"].tolist() == ["x", "y", "z"]
    assert p.meta["n_layers"].dtype == np.int64
    assert meta["seed"].isna().sum() == 1  # the caller's frame is not modified


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda e, a, m: (e[0], a, m), r"shape \[N, T, L, A\]"),
        (lambda e, a, m: (e.astype(complex), a, m), "real numeric array"),
        (lambda e, a, m: (e[:, :0], a, m), "no tokens or no layers"),
        (lambda e, a, m: (e, a[:3], m), "one alpha per entry"),
        (lambda e, a, m: (e, (1.0, 1.0, 2.0, 3.0), m), "duplicate"),
        (lambda e, a, m: (e, (1.0, -1.0, 2.0, 3.0), m), "alpha >= 0"),
        (lambda e, a, m: (e, (1.0, math.nan, 2.0, 3.0), m), "alpha >= 0"),
        (lambda e, a, m: (e, (), m), "at least one alpha"),
        (lambda e, a, m: (e, a, m.iloc[:3]), "one meta row per prompt"),
        (lambda e, a, m: (e, a, m.to_dict()), "must be a pandas DataFrame"),
        (
            lambda e, a, m: (e, a, m.drop(columns=["seed", "label"])),
            r"lacks the required column\(s\) \['label', 'seed'\]",
        ),
        (lambda e, a, m: (e, a, m.assign(entropy=1)), "reserved for storage"),
        (lambda e, a, m: (e, a, m.assign(settings="{not json")), "not valid JSON"),
        (lambda e, a, m: (e, a, m.assign(n_layers=12)), "one entry per decoder block"),
        (lambda e, a, m: (e, a, m.assign(n_layers=0, depth_grid="padded")), "at least one block"),
        (lambda e, a, m: (e, a, m.assign(n_layers=7, depth_grid="padded")), "exceeds L"),
        (lambda e, a, m: (e, a, m.assign(n_layers="six")), r"meta\['n_layers'\] row 0 is 'six'"),
        (lambda e, a, m: (e, a, m.assign(model=None)), r"meta\['model'\] is missing in row 0"),
        (lambda e, a, m: (e, a, m.assign(text=3)), r"meta\['text'\] row 0 is int"),
        (lambda e, a, m: (e, a, m.assign(seed=True)), "is a bool"),
        (lambda e, a, m: (e, a, m.assign(generated_ids="1 2 3")), "list of int"),
        (lambda e, a, m: (e, a, m.assign(depth_grid="stretched")), "use one of"),
        (
            lambda e, a, m: (
                e, a, m.assign(n_layers=[6, 6, 3, 3], depth_grid=["resampled"] * 2 + ["padded"] * 2)
            ),
            "choose one depth alignment",
        ),
    ],
)
def test_construction_errors(change, match):
    p = make()
    entropy, alphas, meta = change(p.entropy, p.alphas, make_meta(4, 6))
    with pytest.raises(ElensError, match=match):
        Profiles(entropy, alphas, meta)


def test_duplicate_meta_columns_rejected():
    meta = make_meta(4, 6)
    meta = pd.concat([meta, meta[["prompt"]]], axis=1)
    with pytest.raises(ElensError, match="duplicate columns"):
        Profiles(make().entropy, ALPHAS, meta)


# ---------------------------------------------------------------------------------------------
# indexing and select


def test_getitem_variants():
    p = make(n=6)
    cases = {
        "int": (2, [2]),
        "negative int": (-1, [5]),
        "numpy int": (np.int64(3), [3]),
        "slice": (slice(1, None, 2), [1, 3, 5]),
        "mask": (np.array([True, False, True, False, False, True]), [0, 2, 5]),
        "series mask": (p.meta["seed"].isna(), [1, 3, 5]),
        "int array": (np.array([4, 0, -1]), [4, 0, 5]),
        "int list": ([1, 1], [1, 1]),
        "empty list": ([], []),
    }
    for name, (key, rows) in cases.items():
        q = p[key]
        assert isinstance(q, Profiles), name
        assert bits(q.entropy).tolist() == bits(p.entropy[rows]).tolist(), name
        assert q.meta["prompt"].tolist() == [f"prompt {r}" for r in rows], name
        assert list(q.meta.index) == list(range(len(rows))), name
    assert [q.meta["prompt"][0] for q in p] == [f"prompt {i}" for i in range(6)]


def test_getitem_errors():
    p = make(n=3)
    with pytest.raises(IndexError):
        p[3]
    with pytest.raises(IndexError):
        p[np.array([0, 7])]
    with pytest.raises(ElensError, match="one True/False per profile"):
        p[np.array([True, False])]
    with pytest.raises(ElensError, match=r"meta columns are in \.meta"):
        p["model"]
    with pytest.raises(ElensError, match="1-d int array"):
        p[np.array([0.5, 1.0])]


def test_select():
    p = make()
    for j, a in enumerate(ALPHAS):
        got = p.select(a)
        assert got.shape == (4, 5, 6) and got.dtype == np.float32
        for i in range(4):
            for t in range(5):
                for l in range(6):
                    assert got[i, t, l] == p.entropy[i, t, l, j]
    assert np.array_equal(p.select(1), p.select(1.0))
    got = p.select(math.inf)
    got[...] = -1  # a copy: the profiles are untouched
    assert (p.entropy >= 0).all()
    with pytest.raises(ElensError, match=r"alpha=2\.0 was not computed.*\[1\.0, inf, 0\.5, 0\.0\]"):
        p.select(2)
    with pytest.raises(ElensError, match="must be a number"):
        p.select("shannon")


def test_select_alphas():
    p = make()
    q = p.select_alphas([math.inf, 1.0])
    assert q.alphas == (math.inf, 1.0)
    assert np.array_equal(q.entropy[..., 0], p.entropy[..., 1])
    assert np.array_equal(q.entropy[..., 1], p.entropy[..., 0])


# ---------------------------------------------------------------------------------------------
# features


def ref_window_bounds(t, w):
    """Near-equal windows, the longer ones first, by repeated hand-out of tokens."""
    sizes = [0] * w
    for k in range(t):
        sizes[k % w] += 1
    bounds, start = [], 0
    for s in sizes:
        bounds.append((start, start + s))
        start += s
    return bounds


def ref_features(p, aggregation, alphas, windows=8):
    """Brute force: plain Python loops, float64 sums."""
    rows = []
    for i in range(p.n):
        row = []
        for a in alphas:
            j = list(p.alphas).index(a)
            big_t, big_l = p.n_tokens, p.n_layers
            h = [[float(p.entropy[i, t, l, j]) for l in range(big_l)] for t in range(big_t)]
            if aggregation == "mean":
                row += [sum(h[t][l] for t in range(big_t)) / big_t for l in range(big_l)]
            elif aggregation == "windows":
                for lo, hi in ref_window_bounds(big_t, windows):
                    row += [sum(h[t][l] for t in range(lo, hi)) / (hi - lo) for l in range(big_l)]
            else:
                for t in range(p.n_tokens):
                    row += h[t]
        rows.append(row)
    return np.array(rows, dtype=np.float64)


def test_window_bounds_match_array_split():
    assert ref_window_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    for t in range(1, 20):
        for w in range(1, t + 1):
            ref = [len(x) for x in np.array_split(np.arange(t), w)]
            assert [b - a for a, b in profiles_module._window_bounds(t, w)] == ref
            assert profiles_module._window_bounds(t, w) == ref_window_bounds(t, w)


@pytest.mark.parametrize("aggregation", ["mean", "windows", "concat"])
@pytest.mark.parametrize("alphas", [None, [1.0], [0.5, math.inf]])  # not in stored order
@pytest.mark.parametrize("t, windows", [(8, 4), (7, 3), (5, 5), (6, 1)])
def test_features_against_brute_force(aggregation, alphas, t, windows):
    p = make(n=3, t=t, l=4)
    got = p.features(aggregation, alphas=alphas, windows=windows)
    wanted = list(p.alphas) if alphas is None else alphas
    ref = ref_features(p, aggregation, wanted, windows)
    width = {"mean": 4, "windows": windows * 4, "concat": t * 4}[aggregation]
    assert got.shape == (3, width * len(wanted)) and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)


def test_features_single_alpha_number_and_default_is_mean():
    p = make()
    assert np.array_equal(p.features(alphas=1.0), p.features("mean", alphas=[1.0]))
    assert p.features().shape == (4, 6 * len(ALPHAS))


def test_features_errors():
    p = make(t=5)
    with pytest.raises(ElensError, match=r"windows=6 does not fit T = 5"):
        p.features("windows", windows=6)
    with pytest.raises(ElensError, match=r"windows=0 does not fit"):
        p.features("windows", windows=0)
    with pytest.raises(ElensError, match="windows must be a positive integer"):
        p.features("windows", windows=2.5)
    with pytest.raises(ElensError, match=r"Unknown aggregation 'median'"):
        p.features("median")
    with pytest.raises(ElensError, match=r"alpha=3\.0 was not computed"):
        p.features(alphas=[1.0, 3.0])


# ---------------------------------------------------------------------------------------------
# concat


def test_concat_rows_and_meta():
    a = make(n=2, model="gpt2", seed=1, source=["x", "y"])
    b = make(n=3, model="gpt2-medium", seed=2)
    c = Profiles.concat([a, b])
    assert c.n == 5
    for i in range(5):
        src, k = (a, i) if i < 2 else (b, i - 2)
        assert bits(c.entropy[i]).tolist() == bits(src.entropy[k]).tolist()
    assert c.meta["model"].tolist() == ["gpt2"] * 2 + ["gpt2-medium"] * 3
    assert c.meta["source"].tolist()[:2] == ["x", "y"] and c.meta["source"][2:].isna().all()
    assert list(c.meta.index) == list(range(5))
    np.testing.assert_allclose(
        c.features("windows", windows=2),
        np.vstack([a.features("windows", windows=2), b.features("windows", windows=2)]),
    )


def test_concat_reorders_alphas():
    a = make(n=2, alphas=(1.0, math.inf))
    b = make(n=2, alphas=(math.inf, 1.0), seed=3)
    c = Profiles.concat([a, b])
    assert c.alphas == (1.0, math.inf)
    assert np.array_equal(c.select(math.inf)[2:], b.select(math.inf))
    assert np.array_equal(c.select(1.0)[2:], b.select(1.0))


def test_concat_errors():
    a = make(l=6)
    with pytest.raises(ElensError, match=r"L = \[6, 12\].*resample_depth\(n\).*pad_depth\(12\)"):
        Profiles.concat([a, make(l=12)])
    with pytest.raises(ElensError, match=r"different numbers of generated tokens T = \[5, 7\]"):
        Profiles.concat([a, make(t=7)])
    with pytest.raises(ElensError, match="different alphas"):
        Profiles.concat([a, make(alphas=(1.0, 2.0, 3.0, 4.0))])
    with pytest.raises(ElensError, match="at least one"):
        Profiles.concat([])
    with pytest.raises(ElensError, match="list of Profiles"):
        Profiles.concat([a, a.entropy])
    with pytest.raises(ElensError, match="choose one depth alignment"):
        Profiles.concat([make(l=4).resample_depth(8), make(l=4).pad_depth(8)])


def test_concat_after_depth_alignment():
    small, big = make(n=2, l=3, model="s"), make(n=2, l=6, model="b", seed=5)
    c = Profiles.concat([small.resample_depth(6), big])  # raw L=6 == resampled onto 6 points
    assert c.n_layers == 6 and c.meta["depth_grid"].tolist() == ["resampled"] * 2 + ["raw"] * 2
    assert c.meta["n_layers"].tolist() == [3, 3, 6, 6]
    c = Profiles.concat([small.pad_depth(6), big.pad_depth(6)])
    assert c.meta["depth_grid"].tolist() == ["padded"] * 2 + ["raw"] * 2


# ---------------------------------------------------------------------------------------------
# depth


def test_raw_profiles_checks_what_per_block_analyses_need():
    a, b = make(model="a"), make(l=4, model="b")
    assert profiles_module.raw_profiles(a, "f()") == [a]
    assert profiles_module.raw_profiles((a, b), "f()") == [a, b]
    with pytest.raises(ElensError, match=r"f\(\) needs the profiles of at least one model"):
        profiles_module.raw_profiles([], "f()")
    with pytest.raises(ElensError, match=r"Expected Profiles .* in f\(\); got ndarray"):
        profiles_module.raw_profiles([a, a.entropy], "f()")
    for aligned in (b.resample_depth(6), b.pad_depth(6)):
        with pytest.raises(ElensError, match=r"f\(\) takes raw profiles"):
            profiles_module.raw_profiles([a, aligned], "f()")


def test_relative_depth():
    assert make(l=4).relative_depth().tolist() == [0.25, 0.5, 0.75, 1.0]
    assert make(l=1).relative_depth().tolist() == [1.0]


def ref_interp(x, xs, ys):
    """Piecewise-linear interpolation by hand, clamped outside [xs[0], xs[-1]]."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    for k in range(len(xs) - 1):
        if xs[k] <= x <= xs[k + 1]:
            w = (x - xs[k]) / (xs[k + 1] - xs[k])
            return ys[k] * (1 - w) + ys[k + 1] * w
    raise AssertionError("unreachable")


def test_resample_hand_computed():
    # Blocks at x = 1/3, 2/3, 1 with H = 1, 4, 10; grid 1/4, 1/2, 3/4, 1.
    entropy = np.array([1.0, 4.0, 10.0], dtype=np.float32).reshape(1, 1, 3, 1)
    p = Profiles(entropy, [1.0], make_meta(1, 3))
    assert p.resample_depth(4).entropy.ravel().tolist() == [1.0, 2.5, 5.5, 10.0]
    assert p.resample_depth(1).entropy.ravel().tolist() == [10.0]
    assert p.resample_depth(2).entropy.ravel().tolist() == [2.5, 10.0]


@pytest.mark.parametrize(
    "l, n_points", [(3, 7), (12, 48), (48, 12), (5, 5), (7, 10), (1, 4), (10, 3)]
)
def test_resample_against_brute_force(l, n_points):
    p = make(n=2, t=3, l=l)
    r = p.resample_depth(n_points)
    assert r.entropy.shape == (2, 3, n_points, len(ALPHAS)) and r.entropy.dtype == np.float32
    xs = [i / l for i in range(1, l + 1)]
    for i in range(2):
        for t in range(3):
            for a in range(len(ALPHAS)):
                ys = [float(p.entropy[i, t, k, a]) for k in range(l)]
                ref = [ref_interp(j / n_points, xs, ys) for j in range(1, n_points + 1)]
                np.testing.assert_allclose(r.entropy[i, t, :, a], ref, rtol=1e-6, atol=1e-6)
                grid = np.arange(1, n_points + 1) / n_points
                by_numpy = np.interp(grid, xs, ys)
                np.testing.assert_allclose(r.entropy[i, t, :, a], by_numpy, rtol=1e-6)
    assert r.meta["depth_grid"].tolist() == ["resampled"] * 2
    assert r.meta["n_layers"].tolist() == [l, l]
    assert np.array_equal(r.relative_depth(), np.arange(1, n_points + 1) / n_points)
    assert p.meta["depth_grid"].tolist() == ["raw"] * 2  # the original is untouched


def test_resample_linear_profile_is_exact():
    l, n_points = 16, 40
    x = np.arange(1, l + 1) / l
    entropy = (2.0 + 8.0 * x).astype(np.float32).reshape(1, 1, l, 1)
    r = Profiles(entropy, [1.0], make_meta(1, l)).resample_depth(n_points)
    grid = np.arange(1, n_points + 1) / n_points
    expected = np.where(grid < 1 / l, 2.0 + 8.0 / l, 2.0 + 8.0 * grid)  # clamped before block 1
    np.testing.assert_allclose(r.entropy.ravel(), expected, rtol=2e-7)


def test_resample_onto_own_depth_is_identity_and_idempotent():
    p = make(l=9)
    r = p.resample_depth(9)
    assert bits(r.entropy).tolist() == bits(p.entropy).tolist()
    assert bits(r.resample_depth(9).entropy).tolist() == bits(p.entropy).tolist()


def test_resample_errors():
    p = make(l=4)
    with pytest.raises(ElensError, match="n_points must be a positive integer; got 0"):
        p.resample_depth(0)
    with pytest.raises(ElensError, match="n_points must be a positive integer"):
        p.resample_depth(2.0)
    with pytest.raises(ElensError, match="resample the profiles before pad_depth"):
        p.pad_depth(8).resample_depth(8)


def test_pad_depth_against_brute_force():
    p = make(n=2, t=3, l=4)
    q = p.pad_depth(7)
    assert q.entropy.shape == (2, 3, 7, len(ALPHAS)) and q.entropy.dtype == np.float32
    for i in range(2):
        for t in range(3):
            for l in range(7):
                for a in range(len(ALPHAS)):
                    want = p.entropy[i, t, l, a] if l < 4 else 0.0
                    assert q.entropy[i, t, l, a] == want
    assert q.meta["depth_grid"].tolist() == ["padded"] * 2 and q.meta["n_layers"].tolist() == [4, 4]
    same = p.pad_depth(4)
    assert bits(same.entropy).tolist() == bits(p.entropy).tolist()
    assert same.meta["depth_grid"].tolist() == ["raw"] * 2
    assert q.pad_depth(9).meta["depth_grid"].tolist() == ["padded"] * 2


def test_pad_depth_errors():
    p = make(l=4)
    with pytest.raises(ElensError, match=r"pad_depth\(3\) cannot shorten profiles of L = 4"):
        p.pad_depth(3)
    with pytest.raises(ElensError, match="mixes two depth alignments"):
        p.resample_depth(6).pad_depth(8)


def test_delta_against_brute_force():
    p = make(n=2, t=3, l=5)
    d = p.delta()
    assert d.shape == (2, 3, 4, len(ALPHAS)) and d.dtype == np.float32
    for i in range(2):
        for t in range(3):
            for k in range(4):
                for a in range(len(ALPHAS)):
                    step = p.entropy[i, t, k + 1, a] - p.entropy[i, t, k, a]
                    assert d[i, t, k, a] == np.float32(step)
    # Sign convention: a rising profile is expansion (> 0).
    rising = Profiles(np.arange(3, dtype=np.float32).reshape(1, 1, 3, 1), [1.0], make_meta(1, 3))
    assert rising.delta().ravel().tolist() == [1.0, 1.0]
    with pytest.raises(ElensError, match="count the padding as pruning"):
        p.pad_depth(8).delta()


# ---------------------------------------------------------------------------------------------
# storage


def special_profiles() -> Profiles:
    """Awkward values: inf alpha and entropy, NaN, -0.0, subnormal; extra meta columns."""
    temperature = [0.1, 0.2, np.nan, 0.4, 0.5]
    p = make(n=5, t=3, l=4, alphas=(0.0, 1.0, 0.5, math.inf), temperature=temperature)
    e = p.entropy.copy()
    e[0, 0, 0, 0] = np.inf
    e[1, 1, 1, 1] = np.nan
    e[2, 2, 2, 2] = -0.0
    e[3, 0, 3, 3] = np.float32(1e-45)
    meta = p.meta.copy()
    meta["group"] = ["a", "b", "c", "d", "e"]
    meta["tags"] = [[1, 2], [], [3], [4, 5, 6], [7]]
    return Profiles(e, p.alphas, meta)


def assert_same(a: Profiles, b: Profiles) -> None:
    assert a.alphas == b.alphas
    assert a.entropy.shape == b.entropy.shape
    assert bits(a.entropy).tolist() == bits(b.entropy).tolist()
    assert list(a.meta.columns) == list(b.meta.columns)
    for c in a.meta.columns:
        left, right = a.meta[c].tolist(), b.meta[c].tolist()
        left = [list(v) if isinstance(v, np.ndarray) else v for v in left]
        right = [list(v) if isinstance(v, np.ndarray) else v for v in right]
        assert len(left) == len(right), c
        for u, v in zip(left, right):
            if isinstance(u, float) and math.isnan(u):
                assert isinstance(v, float) and math.isnan(v), c
            else:
                assert u == v and type(u) is type(v), (c, u, v)


def test_parquet_round_trip(tmp_path):
    p = special_profiles()
    path = p.to_parquet(tmp_path / "profiles.parquet")
    q = Profiles.from_parquet(path)
    assert_same(p, q)
    for c in profiles_module.META_COLUMNS:  # required columns come back with the same dtypes
        assert q.meta[c].dtype == p.meta[c].dtype
    assert q.alphas[3] == math.inf and q.alphas[0] == 0.0
    # The layout on disk: one row per prompt, entropy as FixedSizeList<float32>[T*L*A].
    table = pq.read_table(path)
    assert table.num_rows == 5
    assert table.schema.field("entropy").type == pa.list_(pa.float32(), 3 * 4 * 4)
    header = json.loads(table.schema.metadata[b"elens_profiles"])
    assert header["format_version"] == FORMAT_VERSION
    assert (header["n_tokens"], header["n_layers"]) == (3, 4)
    assert header["alphas"] == ["0.0", "1.0", "0.5", "inf"]
    row2 = np.array(table.column("entropy")[2].as_py(), dtype=np.float32)
    assert bits(row2).tolist() == bits(p.entropy[2].ravel()).tolist()


def test_parquet_round_trip_subsets_and_resampled(tmp_path):
    p = special_profiles()
    for q in (p[[3, 1]], p[[False] * 5], p.resample_depth(7), p.pad_depth(6)):
        r = Profiles.from_parquet(q.to_parquet(tmp_path / "x.parquet"))  # overwrites
        assert_same(q, r)
    # A multi-chunk table reads back too.
    table = pa.concat_tables([p[:2].to_arrow(), p[2:].to_arrow()])
    assert table.column("entropy").num_chunks == 2
    assert_same(p, Profiles.from_arrow(table))
    assert_same(p[1:4], Profiles.from_arrow(table.slice(1, 3)))  # offsets into the chunks


def test_parquet_errors(tmp_path):
    with pytest.raises(ElensError, match="No profiles file at"):
        Profiles.from_parquet(tmp_path / "missing.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "other.parquet")
    with pytest.raises(ElensError, match="not written by Profiles.to_parquet"):
        Profiles.from_parquet(tmp_path / "other.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ElensError, match="not a readable Parquet file"):
        Profiles.from_parquet(tmp_path / "junk.parquet")
    with pytest.raises(ElensError, match="does not exist; create it first"):
        make().to_parquet(tmp_path / "nodir" / "p.parquet")
    with pytest.raises(ElensError, match="it is a directory"):
        make().to_parquet(tmp_path)
    with pytest.raises(ElensError, match="extra meta column 'mixed' cannot be stored"):
        make(mixed=[1, "a", 2.5, None]).to_parquet(tmp_path / "p.parquet")
    assert not (tmp_path / "p.parquet").exists()
    table = make().to_arrow()
    header = json.loads(table.schema.metadata[b"elens_profiles"])
    header["format_version"] = FORMAT_VERSION + 1
    newer = table.replace_schema_metadata({b"elens_profiles": json.dumps(header).encode()})
    with pytest.raises(ElensError, match="upgrade elens_utils"):
        Profiles.from_arrow(newer)


def test_parquet_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "profiles.parquet"
    real_write = pq.write_table

    def crash_midway(table, where, **kwargs):
        real_write(table.slice(0, 1), where, **kwargs)  # some bytes reach the temporary file
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(profiles_module.pq, "write_table", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        make().to_parquet(target)
    assert not target.exists()
    assert os.listdir(tmp_path) == []  # no temporary file left behind

    monkeypatch.setattr(profiles_module.pq, "write_table", real_write)
    old = make(seed=11)
    old.to_parquet(target)
    monkeypatch.setattr(profiles_module.pq, "write_table", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        make(seed=12, n=7).to_parquet(target)
    assert os.listdir(tmp_path) == ["profiles.parquet"]
    assert_same(old, Profiles.from_parquet(target))  # the old file is intact


def test_dataset_round_trip():
    datasets = pytest.importorskip("datasets")
    p = special_profiles()
    ds = p.to_dataset()
    assert isinstance(ds, datasets.Dataset) and len(ds) == 5
    assert ds.features["entropy"] == datasets.Array3D(shape=(3, 4, 4), dtype="float32")
    assert ds[0]["alphas"] == [0.0, 1.0, 0.5, math.inf]
    assert json.loads(ds.info.description)["alphas"] == ["0.0", "1.0", "0.5", "inf"]
    assert_same(p, Profiles.from_dataset(ds))
    # After dataset operations (an indices mapping) and with no rows left.
    kept = ds.filter(lambda row: row["label"] is not None)
    assert_same(p[p.meta["label"].notna()], Profiles.from_dataset(kept))
    assert_same(p[[4, 0]], Profiles.from_dataset(ds.select([4, 0])))
    assert_same(p[[]], Profiles.from_dataset(ds.select([])))


def test_dataset_errors():
    datasets = pytest.importorskip("datasets")
    with pytest.raises(ElensError, match="pick a split"):
        Profiles.from_dataset(datasets.DatasetDict({"train": make().to_dataset()}))
    with pytest.raises(ElensError, match="not made by Profiles.to_dataset"):
        Profiles.from_dataset(datasets.Dataset.from_dict({"x": [1]}))
    one, two = make(alphas=(1.0, 2.0, 3.0, 4.0)), make(alphas=(1.0, 2.0, 3.0, 5.0))
    mixed = datasets.concatenate_datasets([one.to_dataset(), two.to_dataset()])
    with pytest.raises(ElensError, match="carry different alphas"):
        Profiles.from_dataset(mixed)


def test_repr():
    p = Profiles.concat([make(n=2, model="gpt2"), make(n=3, model="gpt2-xl")])
    p = p.select_alphas([1.0, math.inf])
    text = repr(p)
    assert text.startswith("Profiles(N=5, T=5, L=6, alphas=(1.0, inf)")
    assert "gpt2 x2" in text and "gpt2-xl x3" in text and "depth=raw" in text
