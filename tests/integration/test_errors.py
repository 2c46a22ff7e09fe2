"""Every bad input gets one clear ElensError naming the problem and the fix."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from elens_utils import ElensError, LensSpec, lens_entropy, load_model
from elens_utils.lens.adapters import find_lens_parts
from elens_utils.models.tiny import build_tiny_model


@pytest.fixture(scope="module")
def gpt2(tiny_model_dirs):
    return load_model(tiny_model_dirs["gpt2"])


def test_unknown_model_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ElensError, match="not a local directory.*HF_HUB_OFFLINE is set.*local-dir"):
        load_model("no-such-org/no-such-model-xyz")


def test_directory_without_weights(tiny_model_dirs, tmp_path):
    d = tmp_path / "no_weights"
    shutil.copytree(tiny_model_dirs["llama"], d)
    for f in d.glob("*.safetensors"):
        f.unlink()
    with pytest.raises(ElensError, match="has a config but no weights"):
        load_model(d)


def test_directory_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ElensError, match="no config.json"):
        load_model(tmp_path / "empty")


def test_not_a_causal_lm(tmp_path):
    from transformers import T5Config

    T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, vocab_size=50).save_pretrained(tmp_path / "t5")
    with pytest.raises(ElensError, match="not a causal language model"):
        load_model(tmp_path / "t5")


def test_architecture_the_lens_cannot_attach_to(tiny_model_dirs):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dirs["llama"])
    model.model.norm = None  # no final norm where the search looks for one
    model.config.model_type = "mystery"
    with pytest.raises(ElensError, match=r"'mystery'.*not found: final norm.*LensSpec"):
        find_lens_parts(model)


def test_explicit_spec_with_a_wrong_path_lists_it(tiny_model_dirs):
    with pytest.raises(ElensError, match=r"decoder blocks at 'model\.blocks'"):
        load_model(tiny_model_dirs["llama"], lens_spec=LensSpec("model.blocks", ("model.norm",)))


def test_unknown_final_logit_transform_is_caught_at_load(tiny_model_dirs):
    """A spec that forgets Gemma-2's soft-cap breaks the parity rule, and loading says so."""
    spec = LensSpec("model.layers", ("model.norm",))  # no softcap_attr
    with pytest.raises(ElensError, match="does not reproduce the model's own output"):
        load_model(tiny_model_dirs["gemma2"], lens_spec=spec)
    assert load_model(tiny_model_dirs["gemma2"], lens_spec=spec, check=False).parts.softcap is None


def test_search_fallback_handles_an_unlisted_architecture(tmp_path):
    build_tiny_model("llama", tmp_path / "m")
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    model.config.model_type = "llama-like-but-unlisted"
    parts = find_lens_parts(model)
    assert parts.source == "search" and parts.n_layers == 3


def test_empty_prompt_without_bos(gpt2):
    with pytest.raises(ElensError, match="Prompt 1 is empty.*bos_token_id"):
        gpt2.profile(["the cat", ""], max_new_tokens=2, progress=False)


def test_no_prompts_and_single_string(gpt2):
    with pytest.raises(ElensError, match="No prompts"):
        gpt2.profile([], progress=False)
    with pytest.raises(ElensError, match="list of prompts, not a single string"):
        gpt2.profile("the cat", progress=False)


def test_prompt_longer_than_context(gpt2):
    ctx = gpt2.context_length
    long_prompt = " ".join(["the"] * (ctx - 2))
    with pytest.raises(ElensError, match=rf"Prompt 0 has {ctx - 2} tokens.*at most {ctx}.*Shorten"):
        gpt2.profile([long_prompt], max_new_tokens=5, progress=False)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_max_new_tokens_below_one(gpt2, bad):
    with pytest.raises(ElensError, match="max_new_tokens must be an integer >= 1"):
        gpt2.profile(["the cat"], max_new_tokens=bad, progress=False)


@pytest.mark.parametrize("alphas", [(-0.5,), (1.0, -2.0), (float("nan"),), ()])
def test_bad_alpha(gpt2, alphas):
    with pytest.raises(ElensError, match="alpha|order"):
        gpt2.profile(["the cat"], max_new_tokens=1, alphas=alphas, progress=False)


def test_bad_sampling_settings(gpt2):
    with pytest.raises(ElensError, match="temperature must be"):
        gpt2.profile(["the cat"], do_sample=True, temperature=0.0, progress=False)
    with pytest.raises(ElensError, match="top_p must lie"):
        gpt2.profile(["the cat"], do_sample=True, top_p=1.5, progress=False)
    with pytest.raises(ElensError, match="top_k must be"):
        gpt2.profile(["the cat"], do_sample=True, top_k=0, progress=False)


def test_labels_of_wrong_length(gpt2):
    with pytest.raises(ElensError, match="2 labels for 1 prompts"):
        gpt2.profile(["the cat"], labels=["a", "b"], progress=False)


def test_token_ids_outside_vocabulary(gpt2):
    with pytest.raises(ElensError, match="outside the vocabulary"):
        gpt2.profile([[1, 10**6]], progress=False)


def test_non_finite_logits(tiny_model_dirs):
    lm = load_model(tiny_model_dirs["qwen2"])
    with torch.no_grad():
        lm.model.model.layers[1].mlp.down_proj.weight[0, 0] = math.nan
    with pytest.raises(ElensError, match=r"Non-finite logits at generation step 1, block 2.*float32"):
        lm.profile(["the cat"], max_new_tokens=2, progress=False)


def test_non_finite_logits_name_the_step_when_the_lens_reads_several_steps(tiny_model_dirs, monkeypatch):
    """A NaN that appears at step 3 is reported at step 3, whichever group of steps the lens reads."""
    import elens_utils.lens.generation as gen

    lm = load_model(tiny_model_dirs["llama"])
    n_layers = lm.n_layers
    hook_calls = []

    def poison(_module, _args, output):  # block 2's output turns NaN from the third forward pass
        hook_calls.append(1)
        if len(hook_calls) >= 3:
            return torch.full_like(output[0] if isinstance(output, tuple) else output, math.nan)
        return output

    handle = lm.parts.blocks[n_layers - 1].register_forward_hook(poison)
    monkeypatch.setattr(gen, "_LENS_ROWS", 10**6)  # one read at the end
    try:
        with pytest.raises(ElensError, match=rf"Non-finite logits at generation step 3, block {n_layers}\b"):
            lm.profile(["the cat"], max_new_tokens=5, progress=False)
    finally:
        handle.remove()


def test_bad_device_and_dtype(tiny_model_dirs):
    with pytest.raises(ElensError, match="Unknown dtype"):
        load_model(tiny_model_dirs["gpt2"], dtype="float8")
    with pytest.raises(ElensError, match="float16 is not supported for 'gemma2'"):
        load_model(tiny_model_dirs["gemma2"], dtype="float16")
    if not torch.cuda.is_available():
        with pytest.raises(ElensError, match="no CUDA GPU is visible"):
            load_model(tiny_model_dirs["gpt2"], device="cuda")


def test_lens_entropy_shape_errors():
    with pytest.raises(ElensError, match="Width mismatch"):
        lens_entropy(torch.zeros(2, 3), torch.zeros(5, 4))
    with pytest.raises(ElensError, match="Unknown backend"):
        lens_entropy(torch.zeros(2, 4), torch.zeros(5, 4), backend="cuda")


def test_embedded_tiny_names_resolve_and_load(tmp_path, monkeypatch):
    monkeypatch.setenv("ELENS_CACHE", str(tmp_path))
    lm = load_model("tiny/qwen3-2L")
    assert lm.n_layers == 2 and lm.name == "tiny/qwen3-2L"
    assert (tmp_path / "tiny" / "qwen3-2L" / "config.json").exists()
    assert not [p for p in (tmp_path / "tiny").iterdir() if p.name.startswith(".")]  # no temp dirs left
    with pytest.raises(ElensError, match="Unknown tiny model 'tiny/bert'.*gpt2"):
        load_model("tiny/bert")
