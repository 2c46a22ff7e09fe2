"""profile_models: one model at a time through the cache; blank_prompt; zoo/ names."""

import numpy as np
import pytest

from elens_utils import ElensError, blank_prompt, load_model, profile_models
from elens_utils.analysis.classify import family_of
from elens_utils.models.registry import resolve_model


def test_profiles_of_several_models_equal_one_model_at_a_time(tmp_path, tiny_model_dirs):
    models = [str(tiny_model_dirs["gpt2"]), str(tiny_model_dirs["llama"])]
    settings = dict(max_new_tokens=3, do_sample=True, temperature=0.7, seed=3, device="cpu", dtype="float32")
    got = profile_models(models, ["one day", "the cat"], cache=tmp_path, **settings)
    assert [p.meta.model.iloc[0] for p in got] == models
    for name, p in zip(models, got):
        lm = load_model(name, device="cpu", dtype="float32")
        want = lm.profile(["one day", "the cat"], max_new_tokens=3, do_sample=True, temperature=0.7, seed=3)
        np.testing.assert_allclose(p.entropy, want.entropy, rtol=0, atol=1e-5)
    # second call: served from the cache without loading (the model directories may vanish)
    again = profile_models(models, ["one day", "the cat"], cache=tmp_path, **settings)
    for a, b in zip(got, again):
        np.testing.assert_array_equal(a.entropy, b.entropy)


def test_prompts_per_model_and_the_blank_prompt(tmp_path, tiny_model_dirs):
    gpt2, llama = str(tiny_model_dirs["gpt2"]), str(tiny_model_dirs["llama"])
    g_tok, l_tok = load_model(gpt2).tokenizer, load_model(llama).tokenizer
    assert g_tok.bos_token_id is not None and l_tok.bos_token_id is not None
    assert blank_prompt(gpt2) == [g_tok.bos_token_id]
    assert blank_prompt(llama) == [l_tok.bos_token_id]
    got = profile_models([gpt2, llama], lambda m: [blank_prompt(m)] * 2, cache=tmp_path, max_new_tokens=2)
    assert [p.entropy.shape[:2] for p in got] == [(2, 2), (2, 2)]
    want = load_model(llama).profile([[l_tok.bos_token_id]] * 2, max_new_tokens=2)
    np.testing.assert_allclose(got[1].entropy, want.entropy, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "models, match",
    [("gpt2", "list of models"), ([], "No models"), (["a", "a"], "more than once")],
)
def test_bad_model_lists(tmp_path, models, match):
    with pytest.raises(ElensError, match=match):
        profile_models(models, ["x"], cache=tmp_path)


def test_zoo_names(tmp_path, monkeypatch, tiny_model_dirs):
    import shutil

    monkeypatch.setenv("ELENS_ZOO", str(tmp_path))
    with pytest.raises(ElensError, match=r"No zoo model 'zoo/llama-8L'.*has: none.*make zoo"):
        resolve_model("zoo/llama-8L")
    shutil.copytree(tiny_model_dirs["llama"], tmp_path / "llama-8L")
    assert resolve_model("zoo/llama-8L") == str(tmp_path / "llama-8L")
    with pytest.raises(ElensError, match="has: llama-8L"):
        resolve_model("zoo/gpt2-2L")
    assert load_model("zoo/llama-8L").n_layers == load_model(tiny_model_dirs["llama"]).n_layers
    assert family_of("zoo/llama-8L") == family_of("zoo/llama-2L") == "zoo/llama"
    assert family_of("zoo/gpt2-4L") != family_of("gpt2")
    assert family_of("untrained/qwen3-2L") == family_of("untrained/qwen3-8L") == "untrained/qwen3"
