"""Tests of the model zoo's recipe, evaluation and card (elens_utils.zoo.training).

Micro models (width 32, 2 blocks, a few thousand tokens) stand in for the zoo: the recipe is the
zoo's with a smaller shape, so training, saving, loading, scoring and the card are all exercised
in a few seconds. The check of the shipped models against their card runs when ``zoo/`` holds
weights and is skipped otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from safetensors.torch import load_file

from elens_utils.core.errors import ElensError
from elens_utils.data.synthetic import LETTERS, StoryWorld, build_tokenizer
from elens_utils.lens.loading import load_model
from elens_utils.zoo.training import (
    CARD_FIELDS,
    ZOO_DEPTHS,
    ZOO_FAMILIES,
    Recipe,
    ZooShape,
    _card_entry,
    _focus_docs,
    _init_qk_norms,
    _lookup_docs,
    _training_batches,
    build_model,
    card_from_results,
    document_batches,
    encode_documents,
    evaluate_model,
    lookup_questions,
    main,
    mc_letter_logits,
    model_name,
    train_model,
    train_zoo,
    training_documents,
    validate_card,
    write_card,
    zoo_config,
)

REPO = Path(__file__).resolve().parents[2]
ZOO_ROOT = REPO / "zoo"

MICRO = Recipe(
    shape=ZooShape(hidden=32, heads=2, kv_heads=1, ffn=64, max_positions=128, sliding_window=16, qwen3_vocab=352),
    batch_size=4,
    lr=1e-2,
    warmup_frac=0.1,
    tokens_default=20_000,
    tokens={},
    entity_warmup_steps=4,
    mc_phase_frac=0.2,
    lookup_phase_tokens={2: 4_000},
)
EVAL_SMALL = {"n_questions": 12, "n_task_stories": 2, "n_loss_tokens": 600, "threads": 1}


def _train(family: str, out: Path, **kw) -> dict:
    kw.setdefault("recipe", MICRO)
    kw.setdefault("progress", False)
    return train_model(family, 2, out, **kw)


@pytest.fixture(scope="module")
def micro_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One micro model per family, trained once (bf16 weights, as shipped)."""
    root = tmp_path_factory.mktemp("zoo_micro")
    out = {}
    for family in ZOO_FAMILIES:
        _train(family, root / family, log_every=1)
        out[family] = root / family
    return out


# -- configs -------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ZOO_FAMILIES)
def test_zoo_config_real_architecture_and_shared_shape(family: str) -> None:
    tok = build_tokenizer()
    cfg = zoo_config(family, 4)
    assert cfg.model_type == family
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    assert cfg.tie_word_embeddings
    shape = ZooShape()
    want = (4, shape.hidden, shape.heads, shape.ffn)
    if family == "gpt2":
        assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_inner) == want
    else:
        assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == want
        assert cfg.num_key_value_heads == shape.kv_heads and cfg.head_dim == shape.head_dim
    if family == "qwen3":
        assert cfg.vocab_size > len(tok)  # padded unembedding, like real Qwen3
    else:
        assert cfg.vocab_size == len(tok)
    if family == "gemma2":
        assert cfg.final_logit_softcapping == 30.0 and cfg.attn_logit_softcapping == 50.0
        assert cfg.layer_types == ["sliding_attention", "full_attention"] * 2


def test_zoo_fits_the_size_budget() -> None:
    from transformers import AutoModelForCausalLM

    total = 0
    for family in ZOO_FAMILIES:
        for n in ZOO_DEPTHS:
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(zoo_config(family, n))
            total += 2 * sum(p.numel() for p in model.parameters())  # bf16
    assert total < 40e6


def test_bad_family_and_layers() -> None:
    with pytest.raises(ElensError, match="Unknown zoo family"):
        zoo_config("opt", 2)
    with pytest.raises(ElensError, match="number of layers"):
        zoo_config("llama", 0)


# -- data ----------------------------------------------------------------------------------


def test_batches_hold_whole_documents_from_position_zero() -> None:
    world = StoryWorld(0)
    docs = world.training_corpus(n_documents=64)
    data = document_batches(docs, batch_size=8, seq_len=128, seed=0, chunk_batches=4)
    tok = build_tokenizer()
    assert data.n_docs == 64 and len(data.batches) == 8
    texts = []
    for ids, w, kinds in data.batches:
        assert ids.shape == w.shape == kinds.shape and ids.shape[0] == 8 and ids.shape[1] <= 128
        assert torch.all(ids[:, 0] == tok.bos_token_id)  # every document starts a row
        assert torch.all(w[:, 0] == 0) and torch.all(w[ids == tok.pad_token_id] == 0)
        assert torch.all((ids == tok.eos_token_id).sum(1) == 1)
        for row in ids.tolist():
            texts.append(tok.decode([t for t in row if t != tok.pad_token_id], skip_special_tokens=True))
    assert sorted(texts) == sorted(d.text for d in docs)
    # answer positions: exactly the MC letter of each MC document
    letters = set(tok.convert_tokens_to_ids(list(LETTERS)))
    marked = [int(t) for ids, _, kinds in data.batches for t in ids[kinds == 1]]
    assert len(marked) == sum(d.kind == "mc" for d in docs) and set(marked) <= letters
    again = document_batches(docs, batch_size=8, seq_len=128, seed=0, chunk_batches=4)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(data.batches, again.batches))


def test_training_documents_mix_and_held_out() -> None:
    world = StoryWorld(0)
    docs = training_documents(world, 30_000, Recipe().mix)
    kinds = {d.kind for d in docs}
    assert kinds == {"story", "task", "format", "mc", "qa"}
    assert training_documents(StoryWorld(0), 30_000, Recipe().mix) == docs
    qa = next(d for d in docs if d.kind == "qa")
    assert qa.text.startswith("read the story") and "\nanswer : " in qa.text and "\nA : " not in qa.text
    vocab = set(build_tokenizer().get_vocab())
    assert all(w in vocab for d in docs for w in d.text.split())
    text = "\n".join(d.text for d in docs)
    for split in ("validation", "test"):
        for story in world.stories(40, split):
            assert story.text not in text
    with pytest.raises(ElensError, match="Bad corpus mix"):
        training_documents(world, 100, {"poetry": 1.0})


def test_lookup_documents_are_the_mc_read_out_alone() -> None:
    world = StoryWorld(0)
    docs = training_documents(world, 5_000, {"lookup": 1.0})
    assert {d.kind for d in docs} == {"lookup"}
    whole = dict(zip(range(len(docs)), _lookup_docs(world, "train")))
    letters, cut_lengths = [], []
    for j, d in enumerate(docs):
        lines = d.text.split("\n")
        assert len(lines) == 7 and lines[0].startswith("story : ") and lines[-1].startswith("answer : ")
        word, letter = lines[1].removeprefix("question : "), lines[-1].split()[-1]
        # training look-ups cut the story: a prefix of at least two words of the uncut one,
        # which holds the answer word, with the same question, options and letter
        full = whole[j].text.split("\n")
        assert full[1:] == lines[1:] and word in full[0].split()
        assert full[0].startswith(lines[0]) and len(lines[0].split()) >= 4
        cut_lengths.append(len(lines[0].split()))
        options = [line.split(" : ") for line in lines[2:6]]
        assert [o[0] for o in options] == ["A", "B", "C", "D"]
        assert [o[1] for o in options].count(word) == 1 and dict(options)[letter] == word
        letters.append(letter)
        ids, kinds = encode_documents([d], 128)[0]
        assert [i for i, k in enumerate(kinds) if k] == [len(ids) - 2]  # the letter, before <eos>
    assert {letters.count(x) for x in "ABCD"} <= {len(letters) // 4, len(letters) // 4 + 1}
    assert len(set(cut_lengths)) > 20 and min(cut_lengths) < 10  # the options move from document to document
    assert any(len(d.text.split("\n")[0]) < len(w.text.split("\n")[0]) for d, w in zip(docs, whole.values()))
    phase = [d.text for _, d in zip(range(len(docs)), _lookup_docs(world, "train", cut=True, salt="-lookup-phase"))]
    assert not set(phase) & {d.text for d in docs}  # the look-up phase asks other questions


def test_lookup_documents_may_keep_fewer_options() -> None:
    world = StoryWorld(0)
    four = [d.text for _, d in zip(range(60), _lookup_docs(world, "train", cut=True, salt="-s"))]
    fewer = [d.text for _, d in zip(range(60), _lookup_docs(world, "train", cut=True, salt="-s", min_options=1))]
    counts = []
    for a, b in zip(four, fewer):
        full, kept = a.split("\n"), b.split("\n")
        short, long = sorted((kept[0], full[0]), key=len)
        assert long.startswith(short)  # cuts of one story (the option draws shift the cuts)
        assert kept[1] == full[1] and kept[-1] == full[-1]  # question word and letter unchanged
        options = kept[2:-1]
        counts.append(len(options))
        assert options == [o for o in full[2:6] if o in options]  # a subset, in order
        assert f"{kept[-1].split()[-1]} : {kept[1].removeprefix('question : ')}" in options  # the gold one
    assert set(counts) == {1, 2, 3, 4}
    two_up = [d.text.count(" : ") - 3 for _, d in zip(range(40), _lookup_docs(world, "train", cut=True, min_options=2))]
    assert min(two_up) == 2 and max(two_up) == 4  # options: the lines "X : word" besides story, question, answer
    with pytest.raises(ElensError, match="between 1 and 4 options"):
        next(_lookup_docs(world, min_options=0))


def test_lookup_phase_may_keep_fewer_options() -> None:
    tok = build_tokenizer()
    rec = dataclasses.replace(MICRO, lookup_phase_min_options=1)
    data = _training_batches(rec, 20_000, lookup_tokens=6_000)
    texts = [tok.decode(row, skip_special_tokens=True) for b in data.batches[:10] for row in b[0]]
    assert {t.count("\n") - 2 for t in texts} == {1, 2, 3, 4}  # options between question and answer
    four = dataclasses.replace(MICRO, lookup_phase_min_options=4)
    assert {t.count("\n") - 2 for b in _training_batches(four, 20_000, lookup_tokens=6_000).batches[:10]
            for t in (tok.decode(r, skip_special_tokens=True) for r in b[0])} == {4}  # fmt: skip


def test_lookup_questions_are_held_out_prompts() -> None:
    prompts, gold = lookup_questions(StoryWorld(0), 40, "test")
    assert len(prompts) == len(gold) == 40 and set(gold) == {0, 1, 2, 3}
    for p, g in zip(prompts, gold):
        lines = p.split("\n")
        assert lines[-1] == "answer :" and lines[2 + g] == f"{LETTERS[g]} : {lines[1].removeprefix('question : ')}"
    train = "\n".join(d.text for d in training_documents(StoryWorld(0), 20_000, {"lookup": 1.0}))
    assert not any(p.split("\n")[0] in train for p in prompts)


def test_focus_documents_may_ask_several_questions() -> None:
    world = StoryWorld(0)
    one, three = _focus_docs(world, n_questions=1), _focus_docs(world, n_questions=3)
    n_letters = 0
    for _ in range(50):
        a, b = next(one), next(three)
        assert b.text.startswith(a.text)  # the first question is exactly the one-question document
        ids, kinds = encode_documents([b], 128)[0]
        letters = [i for i, k in enumerate(kinds) if k]
        assert len(letters) == b.text.count("answer :") and all(k in (0, 1) for k in kinds)
        assert all(build_tokenizer().convert_ids_to_tokens(ids[i]) in LETTERS for i in letters)
        questions = [line for line in b.text.split("\n") if line.startswith("question : ")]
        assert len(set(questions)) == len(questions)
        n_letters += len(letters)
    assert n_letters > 75  # most documents hold more than one question


def test_training_batches_budget() -> None:
    data = _training_batches(MICRO, 20_000)
    assert data.n_real_tokens >= 20_000
    assert data.n_real_tokens - 20_000 < MICRO.batch_size * MICRO.seq_len


def test_lookup_phase_comes_first_within_the_budget() -> None:
    tok = build_tokenizer()
    data = _training_batches(MICRO, 20_000, lookup_tokens=6_000)
    assert 0 <= data.n_real_tokens - 20_000 < 2 * MICRO.batch_size * MICRO.seq_len

    def n_tokens(batches) -> int:
        return sum(int((b[1] > 0).sum()) for b in batches)

    # the phase: whole batches of look-ups (story, answer word as the question, options, letter)
    texts = [tok.decode(row, skip_special_tokens=True) for b in data.batches[:20] for row in b[0]]
    assert all(t.startswith("story :") and t.count("answer :") == 1 and t.split("\n")[-1] in {f"answer : {x}" for x in "ABCD"} for t in texts)
    k = next(i for i, b in enumerate(data.batches) if not all(tok.decode(r, skip_special_tokens=True).startswith("story :") for r in b[0]))
    assert 6_000 <= n_tokens(data.batches[:k]) < 6_000 + MICRO.batch_size * MICRO.seq_len
    assert not any(b[3] for b in data.batches[:k]) and any(b[3] for b in data.batches[k:])
    # the MC phase is the last mc_phase_frac of what the look-up phase leaves
    first_focus = next(i for i, b in enumerate(data.batches) if b[3])
    assert n_tokens(data.batches[first_focus:]) == pytest.approx(MICRO.mc_phase_frac * (data.n_real_tokens - n_tokens(data.batches[:k])), rel=0.15)
    for bad in (-1, 20_000):
        with pytest.raises(ElensError, match="look-up phase"):
            _training_batches(MICRO, 20_000, lookup_tokens=bad)


def test_qk_norm_gains_start_at_the_recipe_value() -> None:
    qwen = build_model(zoo_config("qwen3", 2, MICRO.shape), "qwen3")
    assert _init_qk_norms(qwen, 2.0) == 4  # q_norm and k_norm of two blocks
    gains = [m.weight for n, m in qwen.named_modules() if n.endswith(("q_norm", "k_norm"))]
    assert all(torch.equal(g, torch.full_like(g, 2.0)) for g in gains)
    assert _init_qk_norms(build_model(zoo_config("llama", 2, MICRO.shape), "llama"), 2.0) == 0  # no such norms


def test_shipped_card_was_trained_by_the_default_recipe() -> None:
    """`make zoo` retrains the shipped zoo: the card's recipe is the code's default one."""
    card = json.loads((ZOO_ROOT / "card.json").read_text())
    assert Recipe.from_json(card["recipe"]) == Recipe()


def test_recipe_round_trips_through_json() -> None:
    recipe = dataclasses.replace(Recipe(), lookup_phase_tokens={8: 123, 4: 7}, tokens={2: 5}, lookup_phase_min_options=2)
    again = Recipe.from_json(json.loads(json.dumps(recipe.to_json())))
    assert again == recipe and again.lookup_tokens_for(4) == 7 and again.lookup_tokens_for(2) == 0


# -- training ------------------------------------------------------------------------------


def test_training_is_deterministic_and_learns(tmp_path: Path) -> None:
    a = _train("llama", tmp_path / "a", dtype="float32", log_every=1)
    b = _train("llama", tmp_path / "b", dtype="float32", log_every=1)
    wa, wb = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    losses = [h["batch_loss"] for h in a["history"] if not h["focus"]]
    assert any(h["focus"] for h in a["history"])  # the MC phase ran
    assert sum(losses[-5:]) / 5 < losses[0] - 1.5  # from ~log V = 5.8 nats
    _train("llama", tmp_path / "c", dtype="float32", seed=1)
    wc = load_file(tmp_path / "c" / "model.safetensors")
    assert not torch.equal(wa["model.embed_tokens.weight"], wc["model.embed_tokens.weight"])
    meta = json.loads((tmp_path / "a" / "zoo_model.json").read_text())
    assert meta["train_tokens"] >= MICRO.tokens_default and meta["train_threads"] == 1
    assert meta["recipe"]["seed"] == 0 and meta["n_params"] > 0
    checked = [h for h in a["history"] if "val_mc" in h]  # steps 0 and the last (eval_every 500)
    assert [h["step"] for h in checked] == [0, a["history"][-1]["step"]]
    assert all(0 <= h["val_mc"] <= 1 and 0 <= h["val_readout"] <= 1 for h in checked)


def test_checkpoint_replaces_atomically(tmp_path: Path) -> None:
    out = tmp_path / "m"
    _train("gpt2", out, tokens=1_000)
    _train("gpt2", out, tokens=1_000, seed=3)
    assert json.loads((out / "zoo_model.json").read_text())["world_seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp or old directories left


@pytest.mark.parametrize("family", ZOO_FAMILIES)
def test_micro_model_loads_like_a_hub_model_with_lens_parity(family: str, micro_models: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = micro_models[family]
    raw = AutoModelForCausalLM.from_pretrained(path)
    assert raw.config.model_type == family
    assert next(raw.parameters()).dtype == torch.bfloat16  # shipped dtype
    tok = AutoTokenizer.from_pretrained(path)
    text = StoryWorld(0).stories(1, "test")[0].text
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    lm = load_model(path, dtype="float32")  # parity checked inside load_model
    assert lm.dtype == torch.float32 and lm.n_layers == 2
    # bf16 upcast to fp32 is exact: the weights are the shipped ones
    sd = load_file(path / "model.safetensors")
    name, w = next((k, v) for k, v in sd.items() if v.dim() == 2)
    assert torch.equal(dict(lm.model.named_parameters())[name].to(torch.bfloat16), w)


def test_gemma2_is_never_fp16(micro_models: dict[str, Path]) -> None:
    with pytest.raises(ElensError, match="float16"):
        load_model(micro_models["gemma2"], dtype="float16")
    with pytest.raises(ElensError, match="bfloat16 or float32"):
        train_model("gemma2", 2, "/nonexistent", recipe=MICRO, dtype="float16")


# -- evaluation ----------------------------------------------------------------------------


def test_mc_scoring_matches_float64_brute_force(micro_models: dict[str, Path]) -> None:
    lm = load_model(micro_models["qwen3"], dtype="float32")
    questions = StoryWorld(0).multiple_choice(16, split="test")
    prompts = [q.prompt for q in questions]
    fast = mc_letter_logits(lm.model, lm.tokenizer, prompts, batch_size=5)
    ref_model = lm.model.to(torch.float64)
    letter_ids = lm.tokenizer.convert_tokens_to_ids(list(LETTERS))
    with torch.no_grad():
        ref = torch.stack(
            [ref_model(input_ids=torch.tensor([lm.tokenizer(p)["input_ids"]])).logits[0, -1, letter_ids] for p in prompts]
        )
    lm.model.to(torch.float32)
    assert torch.allclose(fast.double(), ref, atol=1e-4)
    gap = ref.topk(2, -1).values
    clear = (gap[:, 0] - gap[:, 1]) > 1e-3  # argmax is only defined away from ties
    assert torch.equal(fast.argmax(-1)[clear], ref.argmax(-1)[clear])


def test_evaluate_model_fields(micro_models: dict[str, Path]) -> None:
    r = evaluate_model(micro_models["llama"], split="validation", **EVAL_SMALL)
    assert r["family"] == "llama" and r["n_layers"] == 2 and r["split"] == "validation"
    assert 0 < r["loss"] < math.log(len(build_tokenizer())) + 1 and r["loss_tokens"] >= 500
    assert r["mc_n"] == 12 and 0 <= r["mc_accuracy"] <= 1
    assert sum(r["mc_letter_counts"].values()) == 12
    lm = load_model(micro_models["llama"], dtype="float32")
    prompts, gold = lookup_questions(StoryWorld(0), 12, "validation")
    logits = mc_letter_logits(lm.model, lm.tokenizer, prompts, batch_size=1)
    assert r["lookup_accuracy"] == sum(int(i) == g for i, g in zip(logits.argmax(-1), gold)) / 12
    assert set(r["task_accuracy_by_task"]) == {"continuation", "counting", "semantic"}
    assert all(0 <= v <= 1 for v in r["task_accuracy_by_task"].values())
    assert r["task_accuracy"] == r["task_accuracy_by_task"]["semantic"]
    assert r["task_n"]["semantic"] == 2 * 2 * 4  # 2 stories x 2 phrasings x 4 variants
    again = evaluate_model(micro_models["llama"], split="validation", **EVAL_SMALL)
    assert {k: v for k, v in again.items() if k != "eval_seconds"} == {k: v for k, v in r.items() if k != "eval_seconds"}
    with pytest.raises(ElensError, match="held-out split"):
        evaluate_model(micro_models["llama"], split="train")


# -- the card ------------------------------------------------------------------------------


def test_card_schema_and_files(micro_models: dict[str, Path], tmp_path: Path) -> None:
    entries = [
        _card_entry(micro_models[f], evaluate_model(micro_models[f], split="test", **EVAL_SMALL)) for f in ("gpt2", "gemma2")
    ]
    card = card_from_results(entries, split="test", eval_settings=EVAL_SMALL, recipe=MICRO)
    validate_card(card)
    assert set(entries[0]) == set(CARD_FIELDS)
    assert entries[0]["dtype"] == "bfloat16" and entries[0]["size_bytes"] > 0 and entries[0]["train_tokens"] > 0
    json_path, md_path = write_card(card, tmp_path)
    loaded = json.loads(json_path.read_text())
    validate_card(loaded)
    assert loaded["models"][1]["family"] == "gemma2"
    assert "| gemma2 |" in md_path.read_text()
    broken = json.loads(json_path.read_text())
    del broken["models"][0]["mc_accuracy"]
    broken["models"][1]["n_params"] = "many"
    with pytest.raises(ElensError, match="lacks 'mc_accuracy'.*'n_params'"):
        validate_card(broken)


def test_cli_train_and_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--family", "qwen3", "--layers", "1", "--out", str(tmp_path), "--tokens", "1500", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["name"] == model_name("qwen3", 1) and summary["train_tokens"] >= 1500
    assert (tmp_path / "qwen3-1L" / "config.json").exists()
    assert main(["evaluate", str(tmp_path / "qwen3-1L"), "--split", "validation", "--n-questions", "4", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["mc_n"] == 4
    assert main(["evaluate", str(tmp_path / "nothing-here")]) == 2
    assert "error:" in capsys.readouterr().err


def test_train_zoo_runs_single_threaded_jobs(tmp_path: Path) -> None:
    times = train_zoo(tmp_path, families=("gpt2", "gemma2"), depths=(1,), jobs=2, tokens=1_000)
    assert set(times) == {"gpt2-1L", "gemma2-1L"}
    for name in times:
        meta = json.loads((tmp_path / name / "zoo_model.json").read_text())
        assert meta["train_threads"] == 1 and meta["dtype"] == "bfloat16"
    assert (tmp_path / ".logs" / "gpt2-1L.log").exists()


# -- the shipped zoo -----------------------------------------------------------------------


def _shipped() -> list[dict]:
    card = ZOO_ROOT / "card.json"
    if not card.exists():
        return []
    models = json.loads(card.read_text())["models"]
    return [m for m in models if (ZOO_ROOT / m["name"] / "model.safetensors").exists()]


@pytest.mark.slow
@pytest.mark.skipif(not _shipped(), reason="zoo/ has no card.json with trained weights yet")
@pytest.mark.parametrize("entry", _shipped(), ids=lambda m: m["name"])
def test_shipped_model_matches_its_card(entry: dict) -> None:
    card = json.loads((ZOO_ROOT / "card.json").read_text())
    validate_card(card)
    ev = card["evaluation"]
    r = evaluate_model(
        ZOO_ROOT / entry["name"],
        split=card["split"],
        n_questions=ev["n_questions"],
        n_task_stories=ev.get("n_task_stories", 40),
        n_loss_tokens=ev.get("n_loss_tokens", 30_000),
        threads=1,
    )
    assert abs(r["mc_accuracy"] - entry["mc_accuracy"]) <= 0.05, (r["mc_accuracy"], entry["mc_accuracy"])
    assert r["n_params"] == entry["n_params"]


# -- the zoo appendix's frames and charts ----------------------------------------------------


def test_zoo_report_frames_and_charts(micro_models: dict[str, Path], tmp_path: Path) -> None:
    from elens_utils.viz.charts import chart_spec
    from elens_utils.zoo import report as zoo_report

    with pytest.raises(ElensError, match="No zoo card.*make zoo"):
        zoo_report.load_card(tmp_path)
    entries = [_card_entry(micro_models[f], evaluate_model(micro_models[f], split="test", **EVAL_SMALL)) for f in ("gpt2", "llama")]
    write_card(card_from_results(entries, split="test", eval_settings=EVAL_SMALL, recipe=MICRO), tmp_path)
    card = zoo_report.load_card(tmp_path)
    frame = zoo_report.card_frame(card)
    assert frame["name"].tolist() == ["gpt2", "llama"]  # the micro models' directories
    assert frame["mc_accuracy"].tolist() == [e["mc_accuracy"] for e in entries]
    assert frame["train_tokens_m"].tolist() == [e["train_tokens"] / 1e6 for e in entries]
    chart_spec(zoo_report.card_chart(frame))  # valid Vega-Lite
    history = zoo_report.history_frame(micro_models["gpt2"].parent, ["gpt2"])
    meta = json.loads((micro_models["gpt2"] / "zoo_model.json").read_text())
    main_steps = [h for h in meta["history"] if not h.get("focus")]
    assert history["step"].tolist() == [h["step"] for h in main_steps] and len(history) > 1
    assert history["loss"].tolist() == [h["loss"] for h in main_steps]
    chart_spec(zoo_report.training_curves(history))
    with pytest.raises(ElensError, match="No training history"):
        zoo_report.history_frame(tmp_path / "empty")
    checks = zoo_report.validation_frame(micro_models["gpt2"].parent, ["gpt2"])
    val = [h for h in meta["history"] if "val_mc" in h]
    assert len(val) == 2  # step 0 and the last
    for key, metric in (("val_mc", "multiple choice"), ("val_readout", "letter read-out")):
        assert checks[checks["metric"] == metric]["accuracy"].tolist() == [h[key] for h in val]
    assert not checks["extension"].any()
    chart_spec(zoo_report.validation_curves(checks))
    with pytest.raises(ElensError, match="No validation checks"):
        zoo_report.validation_frame(tmp_path / "empty")


def test_validation_frame_appends_the_extension_rounds_and_marks_the_look_up_phase(tmp_path: Path) -> None:
    from elens_utils.viz.charts import chart_spec
    from elens_utils.zoo import report as zoo_report

    history = [
        {"step": 0, "tokens": 0, "loss": 5.0, "val_mc": 0.25, "val_readout": 0.2},
        {"step": 250, "tokens": 150_000, "loss": 2.0},
        {"step": 499, "tokens": 300_000, "loss": 1.0, "val_mc": 0.5, "val_readout": 0.75},
    ]
    rounds = [{"tokens": 100_000, "steps": 200, "validation_mc_accuracy": 0.6}, {"tokens": 100_000, "steps": 200, "validation_mc_accuracy": 0.9}]
    for name, meta in {
        "m-8L": {"history": history, "mc_extension": {"rounds": rounds}, "recipe": {"lookup_phase_tokens": {"8": 150_000, "4": 10**9}}},
        "old-8L": {"history": [{"step": 0, "tokens": 0, "loss": 5.0}], "mc_extension": {"rounds": rounds}},  # no checks: no rows
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "zoo_model.json").write_text(json.dumps({"family": "gpt2", "n_layers": 8, **meta}))
    frame = zoo_report.validation_frame(tmp_path)
    assert set(frame["name"]) == {"m-8L"}
    mc = frame[frame["metric"] == "multiple choice"]
    assert mc["step"].tolist() == [0, 499, 699, 899] and mc["accuracy"].tolist() == [0.25, 0.5, 0.6, 0.9]
    assert mc["tokens_m"].tolist() == pytest.approx([0.0, 0.3, 0.4, 0.5]) and mc["extension"].tolist() == [False, False, True, True]
    assert frame[frame["metric"] == "letter read-out"]["accuracy"].tolist() == [0.2, 0.75]
    # the look-up phase is the first 150 k tokens of the 8-block model's budget (the 4-block entry is another depth's)
    assert mc["phase"].tolist() == ["look-up", "main", "main", "main"] and (frame["lookup_phase_m"] == 0.15).all()
    history_rows = zoo_report.history_frame(tmp_path, ["m-8L"])
    assert history_rows["phase"].tolist() == ["look-up", "look-up", "main"]
    spec = chart_spec(zoo_report.validation_curves(frame))
    assert any(layer.get("mark", {}).get("type") == "rect" for layer in spec["spec"]["layer"])
    chart_spec(zoo_report.training_curves(history_rows))
    first = zoo_report.first_reaching(frame.sample(frac=1, random_state=0), 0.5).set_index("metric")
    assert first.loc["multiple choice", "step"] == 499 and first.loc["letter read-out", "tokens_m"] == pytest.approx(0.3)
    never = zoo_report.first_reaching(frame, 0.95)
    assert never["tokens_m"].isna().all() and never["step"].isna().all()


def test_reading_without_readout_picks_story_readers_at_chance() -> None:
    import pandas as pd

    from elens_utils.zoo import report as zoo_report

    frame = pd.DataFrame(
        {"name": ["reads", "answers", "lost", "letters-only"], "task_accuracy": [0.8, 0.9, 0.3, 0.8],
         "mc_accuracy": [0.24, 0.95, 0.25, 0.26], "lookup_accuracy": [0.26, 0.9, 0.25, 0.6]}
    )  # fmt: skip
    assert zoo_report.reading_without_readout(frame)["name"].tolist() == ["reads"]
    assert zoo_report.reading_without_readout(frame, reads_story=0.2)["name"].tolist() == ["reads", "lost"]


def test_world_examples_come_from_the_held_out_split() -> None:
    from elens_utils.zoo import report as zoo_report

    ex = zoo_report.world_examples(0)
    assert {"story", "task: semantic", "format: poem", "multiple choice"} <= set(ex)
    story = StoryWorld(0).stories(1, split="test")[0]
    assert ex["story"] == story.text and story.split == "test"
    assert ex["multiple choice"].endswith(("A", "B", "C", "D"))


def test_mc_extension_rounds_are_recorded_and_deterministic(micro_models: dict[str, Path], tmp_path: Path) -> None:
    import dataclasses
    import shutil

    from elens_utils.zoo.training import extend_mc

    rec = dataclasses.replace(MICRO, mc_extend_min_layers=2, mc_extend_target=1.01, mc_extend_round_tokens=3_000, mc_extend_max_rounds=2)
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(micro_models["llama"], a)
    shutil.copytree(micro_models["llama"], b)
    before = json.loads((a / "zoo_model.json").read_text())
    meta = extend_mc(a, recipe=rec, n_questions=8, progress=False)
    rounds = meta["mc_extension"]["rounds"]
    assert len(rounds) == 2 and all(r["tokens"] >= 3_000 and 0 <= r["validation_mc_accuracy"] <= 1 for r in rounds)
    assert meta["train_tokens"] == before["train_tokens"] + sum(r["tokens"] for r in rounds)
    assert json.loads((a / "zoo_model.json").read_text())["mc_extension"] == meta["mc_extension"]
    extend_mc(b, recipe=rec, n_questions=8, progress=False)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # one thread: bit-identical
    orig = load_file(micro_models["llama"] / "model.safetensors")
    assert any(not torch.equal(wa[k], orig[k]) for k in wa)  # the rounds trained the weights
    assert extend_mc(a, recipe=rec, n_questions=8, progress=False)["mc_extension"]["rounds"] == rounds  # max rounds reached
    shallow = dataclasses.replace(rec, mc_extend_min_layers=3)  # the micro models have 2 blocks
    c = tmp_path / "c"
    shutil.copytree(micro_models["gpt2"], c)
    assert extend_mc(c, recipe=shallow, n_questions=8, progress=False)["mc_extension"]["rounds"] == []
    wc, w0 = load_file(c / "model.safetensors"), load_file(micro_models["gpt2"] / "model.safetensors")
    assert wc.keys() == w0.keys() and all(torch.equal(wc[k], w0[k]) for k in wc)  # too shallow: untouched
