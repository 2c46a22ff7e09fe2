"""untrained/FAMILY-NL: the zoo's architectures and tokenizer with random weights."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from elens_utils import ElensError, load_model
from elens_utils.analysis.interventions import mc_accuracy
from elens_utils.data import prompts as data
from elens_utils.data.synthetic import LETTERS, build_tokenizer
from elens_utils.models.registry import resolve_model
from elens_utils.models.tiny import UNTRAINED_INIT_RANGE, build_untrained_model
from elens_utils.zoo.training import ZOO_FAMILIES, zoo_config


@pytest.mark.parametrize("family", ZOO_FAMILIES)
def test_untrained_model_reads_the_story_world(family, tmp_path):
    state = torch.random.get_rng_state()
    d = build_untrained_model(family, tmp_path / family, n_layers=2)
    assert torch.equal(
        torch.random.get_rng_state(), state
    )  # the caller's RNG is untouched
    lm = load_model(d)  # checks the parity rule of the lens
    assert lm.n_layers == 2
    tok = build_tokenizer()
    assert lm.tokenizer.get_vocab() == tok.get_vocab()
    assert lm.context_length == zoo_config(family, 2).max_position_embeddings
    assert lm.model.config.initializer_range == UNTRAINED_INIT_RANGE
    note = json.loads((d / "untrained_model.json").read_text())
    assert note == {
        "family": family,
        "n_layers": 2,
        "seed": 0,
        "initializer_range": UNTRAINED_INIT_RANGE,
        "trained": False,
    }
    # The reason these models exist: the story world's questions and letters tokenize.
    questions = data.multiple_choice("synthetic", 8)
    res = mc_accuracy(lm, questions, answer_col="answer")
    assert res.n_questions == 8
    ids = res.table["letter_ids"].iloc[0]
    assert lm.tokenizer.convert_ids_to_tokens(list(ids)) == list(LETTERS)
    # Varied lens entropies, not all log V (the zoo's own 0.02 init) nor all 0 (gemma2 at 0.3+).
    prof = lm.profile(
        questions["prompt"].tolist()[:4], max_new_tokens=2, progress=False
    )
    h = prof.select(1.0)
    assert h.std() > 0.05 and 0.2 < h.mean() < math.log(lm.parts.vocab_size) - 0.1


def test_untrained_weights_depend_on_seed_only(tmp_path):
    a = load_file(
        build_untrained_model("llama", tmp_path / "a", n_layers=1) / "model.safetensors"
    )
    b = load_file(
        build_untrained_model("llama", tmp_path / "b", n_layers=1) / "model.safetensors"
    )
    c = load_file(
        build_untrained_model("llama", tmp_path / "c", n_layers=1, seed=1)
        / "model.safetensors"
    )
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_untrained_names(tmp_path, monkeypatch):
    monkeypatch.setenv("ELENS_CACHE", str(tmp_path))
    path = resolve_model("untrained/qwen3-2L")
    assert path == str(tmp_path / "untrained" / "qwen3-2L")
    assert (tmp_path / "untrained" / "qwen3-2L" / "config.json").exists()
    assert resolve_model("untrained/qwen3-2L") == path  # built once, then reused
    assert [p.name for p in (tmp_path / "untrained").iterdir()] == [
        "qwen3-2L"
    ]  # no leftovers
    lm = load_model("untrained/qwen3-2L")
    assert lm.name == "untrained/qwen3-2L" and lm.n_layers == 2
    with pytest.raises(
        ElensError,
        match="Unknown untrained model 'untrained/gemma-2L'.*gpt2, llama, gemma2, qwen3",
    ):
        resolve_model("untrained/gemma-2L")
    with pytest.raises(ElensError, match="1..64"):
        resolve_model("untrained/llama-0L")
    assert (
        resolve_model("untrained/llama") == "untrained/llama"
    )  # not the pattern: passed through
