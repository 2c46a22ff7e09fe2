"""The real models' card (elens_utils.zoo.real_card): evaluation, schema, writing, and the shipped card."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from elens_utils import ElensError, load_model
from elens_utils.data.fact_questions import fact_questions
from elens_utils.data.synthetic import StoryWorld
from elens_utils.models.real_models import REAL_MODELS
from elens_utils.zoo.real_card import (
    CARD_JSON,
    CARD_MD,
    MODEL_FIELDS,
    SCORING_JSON,
    SCORING_MD,
    build_card,
    card_markdown,
    compare_scorings,
    evaluate_model,
    main,
    scoring_markdown,
    story_loss,
    validate_card,
    write_card,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "real" / CARD_JSON
TINY = "tiny/llama-4L"
SETTINGS = {"n_questions": 8, "seed": 0, "shots": 0, "normalize": "sum", "n_stories": 4, "profile_prompts": 2, "profile_tokens": 2}


@pytest.fixture(scope="module")
def tiny_entry() -> dict:
    return evaluate_model(TINY, n_questions=8, n_stories=4, profile_prompts=2, profile_tokens=2, letters=False)


def test_entry_of_a_tiny_model(tiny_entry):
    e = tiny_entry
    assert set(e) == set(MODEL_FIELDS)
    assert e["name"] == TINY and e["package"] is None and e["gguf_tensor_types"] is None
    lm = load_model(TINY)
    assert e["n_layers"] == lm.n_layers == 4 and e["vocab_size"] == lm.parts.vocab_size
    assert e["mc_n"] == 8 and 0 <= e["mc_correct"] <= 8
    assert e["mc_low"] <= e["mc_accuracy"] <= e["mc_high"]
    assert sum(s["n"] for s in e["mc_by_subject"].values()) == 8
    assert e["loss"] > 0 and e["loss_tokens"] > 0 and e["letters_accuracy"] is None
    assert min(e["load_seconds"], e["profile_seconds"], e["mc_seconds"]) >= 0


def test_story_loss_matches_per_story_float64(lens_model):
    lm = lens_model("llama", "float64")
    texts = [s.text for s in StoryWorld(0).stories(3, "test", style="natural")]
    got, n = story_loss(lm, texts, batch_size=2)
    total, count = 0.0, 0
    with torch.no_grad():
        for ids in lm.encode(texts):
            logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
            total -= sum(float(logp[t - 1, ids[t]]) for t in range(1, len(ids)))
            count += len(ids) - 1
    assert n == count
    assert got == pytest.approx(total / count, abs=1e-9)


def test_card_is_written_atomically_and_reads_back(tiny_entry, tmp_path):
    card = build_card([tiny_entry], SETTINGS)
    json_path, md_path = write_card(card, tmp_path / "real")
    assert json_path.name == CARD_JSON and md_path.name == CARD_MD
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(card))
    md = md_path.read_text()
    assert md == card_markdown(card) and f"`{TINY}`" in md and "95 %" in md
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == [CARD_MD, CARD_JSON]  # no temporary left
    assert card["machine"]["logical_cores"] >= 1 and card["question_set"]["chance"] == 0.25


def test_bad_card_is_refused(tiny_entry, tmp_path):
    card = build_card([tiny_entry], SETTINGS)
    bad = copy.deepcopy(card)
    del bad["models"][0]["loss"]
    bad["models"][0]["mc_accuracy"] = 1.5
    with pytest.raises(ElensError, match="lacks 'loss'.*outside"):
        validate_card(bad)
    with pytest.raises(ElensError):
        write_card(bad, tmp_path)
    assert not (tmp_path / CARD_JSON).exists()


def test_command_line(tmp_path, capsys):
    rc = main(["--models", TINY, "--out", str(tmp_path), "--n-questions", "4", "--n-stories", "2", "--threads", "1"])
    assert rc == 0
    card = json.loads((tmp_path / CARD_JSON).read_text())
    assert [m["name"] for m in card["models"]] == [TINY] and card["models"][0]["mc_n"] == 4
    assert main(["--models", "real/unknown-model", "--out", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


def test_compare_scorings_on_a_tiny_model(monkeypatch, tmp_path):
    from elens_utils.analysis import interventions

    plain = interventions.answer_multiple_choice
    # The tiny word-level vocabulary has no letters: score the letter prompts on four words.
    monkeypatch.setattr(
        interventions, "answer_multiple_choice",
        lambda lm, prompts, **kw: plain(lm, prompts, ("cat", "dog", "bird", "man"), **kw).replace(
            {"predicted": {"cat": "A", "dog": "B", "bird": "C", "man": "D"}}
        ),
    )  # fmt: skip
    rows = compare_scorings(TINY, shots=(0, 1), n_questions=8)
    assert [(r["scoring"], r["shots"], r["normalize"]) for r in rows] == [
        ("letters", 0, None), ("cloze", 0, "sum"), ("cloze", 0, "token"), ("cloze", 0, "char"),
        ("letters", 1, None), ("cloze", 1, "sum"), ("cloze", 1, "token"), ("cloze", 1, "char"),
    ]  # fmt: skip
    for r in rows:
        assert r["n"] == 8 and r["low"] <= r["accuracy"] <= r["high"]
        assert sum(s["n"] for s in r["by_subject"].values()) == 8
    assert sum(rows[0]["predicted"].values()) == 8
    lm = load_model(TINY)
    q = fact_questions(8)
    want = interventions.mc_accuracy(lm, q, scoring="cloze").accuracy
    assert rows[1]["accuracy"] == pytest.approx(want)
    md = scoring_markdown({"machine": {"cpu": "x", "logical_cores": 2, "threads": 1}, "rows": rows})
    assert md.count(f"`{TINY}`") >= 8 and "Wilson" in md


def test_shipped_card_follows_the_schema():
    if not SHIPPED.is_file():
        pytest.skip("real/card.json not generated yet (python -m elens_utils.zoo.real_card)")
    card = json.loads(SHIPPED.read_text())
    validate_card(card)
    assert [m["name"] for m in card["models"]] == list(REAL_MODELS)
    assert (ROOT / "real" / CARD_MD).read_text() == card_markdown(card)
    for m in card["models"]:
        assert m["mc_n"] == 384 and 0.25 < m["mc_low"] and m["mc_high"] < 0.95  # above chance, below ceiling
        assert m["gguf_tensor_types"] and m["package"] == REAL_MODELS[m["name"]].package


def test_shipped_scoring_comparison():
    path = ROOT / "real" / SCORING_JSON
    if not path.is_file():
        pytest.skip("real/scoring.json not generated yet (python -m elens_utils.zoo.real_card --compare)")
    doc = json.loads(path.read_text())
    assert (ROOT / "real" / SCORING_MD).read_text() == scoring_markdown(doc)
    for r in doc["rows"]:
        assert r["n"] == 384 and r["low"] <= r["accuracy"] <= r["high"]


@pytest.mark.slow
def test_shipped_accuracy_is_reproduced_for_smollm2():
    """Re-score the shipped card's questions with SmolLM2 (about a minute on an idle 2-core CPU)."""
    name = "real/smollm2-135m-instruct"
    if importlib.util.find_spec(REAL_MODELS[name].module) is None or not SHIPPED.is_file():
        pytest.skip("the real model's package or the shipped card is missing")
    card = json.loads(SHIPPED.read_text())
    entry = next(m for m in card["models"] if m["name"] == name)
    q = card["question_set"]
    from elens_utils.analysis.interventions import mc_accuracy

    lm = load_model(name)
    questions = fact_questions(q["n_questions"], seed=q["seed"], shots=q["shots"])
    res = mc_accuracy(lm, questions, scoring="cloze", normalize=q["normalize"])
    # Exact on the machine that wrote the card; other CPUs may round a near-tie the other way.
    assert abs(int(res.table["correct"].sum()) - entry["mc_correct"]) <= 2
    assert not math.isnan(res.accuracy)
