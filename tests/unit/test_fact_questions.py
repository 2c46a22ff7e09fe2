"""The project's own question set (elens_utils.data.fact_bank, elens_utils.data.fact_questions) and its frame."""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd
import pytest

from elens_utils import ElensError
from elens_utils.data import prompts as data
from elens_utils.data.fact_bank import LICENCE, SHOTS, SUBJECT_KIND, SUBJECTS, fact_bank
from elens_utils.data.fact_questions import (
    FACT_COLUMNS,
    LETTER_HEADER,
    SHOT_LETTERS,
    accuracy_by_subject,
    fact_questions,
    wilson_interval,
)

LETTERS = "ABCD"


def test_bank_has_twelve_subjects_of_32_well_formed_items():
    bank = fact_bank()
    assert len(bank) == 384 >= 300
    assert Counter(it.subject for it in bank) == {s: 32 for s in SUBJECTS}
    assert len({it.id for it in bank}) == len(bank)
    assert len({(it.context, it.question, it.answer) for it in bank}) == len(bank)
    for it in bank:
        assert it.kind == SUBJECT_KIND[it.subject]
        assert len(it.options) == 4 and len(set(it.options)) == 4, it
        assert all(o == o.strip() and o for o in it.options), it
        assert it.question.endswith("?")
        assert bool(it.context) == (it.kind == "inference")
    assert "MIT" in LICENCE


def test_inference_answers_are_not_copied_from_the_story():
    for it in fact_bank():
        if it.subject in ("feelings", "objects"):
            story = set(re.findall(r"[a-z]+", it.context.lower()))
            answer = set(re.findall(r"[a-z]+", it.answer.lower())) - {"a", "an", "and"}
            assert not answer & story, it


def test_demonstrations_are_not_questions():
    asked = {(it.context, it.question) for it in fact_bank()}
    assert all((s.context, s.question) not in asked for s in SHOTS)
    assert len(SHOT_LETTERS) == len(SHOTS) and set(SHOT_LETTERS) == set(LETTERS)


def test_frame_columns_and_answers():
    f = fact_questions()
    assert list(f.columns) == FACT_COLUMNS
    assert len(f) == 384
    for r in f.itertuples():
        assert len(r.options) == 4 and len(set(r.options)) == 4
        assert r.options[r.answer_index] == r.answer_text
        assert LETTERS[r.answer_index] == r.answer
        assert r.prompt.startswith(LETTER_HEADER) and r.prompt.endswith("\nAnswer:")
        assert r.cloze_prompt.endswith("\nAnswer:") and "\nA. " not in r.cloze_prompt
        for c, o in zip(LETTERS, r.options):
            assert f"\n{c}. {o}\n" in r.prompt
        assert (f"Story: {r.context}\n" in r.prompt) == bool(r.context)
    assert (f["source"] == "facts").all()
    assert f.attrs["source"] == "facts" and f.attrs["licence"] == LICENCE and f.attrs["shots"] == 0
    bank = {it.id: it for it in fact_bank()}
    assert set(f["id"]) == set(bank)
    for r in f.itertuples():
        assert set(r.options) == set(bank[r.id].options) and r.answer_text == bank[r.id].answer


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_letters_balanced_overall_per_subject_and_in_every_prefix(seed):
    f = fact_questions(seed=seed)
    assert Counter(f["answer"]) == {c: 96 for c in LETTERS}
    for _, g in f.groupby("subject"):
        assert Counter(g["answer"]) == {c: 8 for c in LETTERS}
    counts = Counter()
    for a in f["answer"]:
        counts[a] += 1
        assert max(counts[c] for c in LETTERS) - min(counts[c] for c in LETTERS) <= 1
    # rows go round-robin over the subjects
    assert f["subject"].tolist()[:24] == list(SUBJECTS) * 2


def test_deterministic_and_seed_only_reorders():
    a, b = fact_questions(seed=3), fact_questions(seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = fact_questions(seed=4)
    assert a["id"].tolist() != c["id"].tolist()
    key = lambda f: sorted((i, tuple(sorted(o))) for i, o in zip(f["id"], f["options"]))  # noqa: E731
    assert key(a) == key(c)


def test_n_and_subjects_keep_each_questions_letter():
    full = fact_questions().set_index("id")
    part = fact_questions(40)
    assert len(part) == 40 and part["id"].tolist() == full.index[:40].tolist()
    some = fact_questions(subjects=["capitals", "feelings"])
    assert len(some) == 64 and set(some["subject"]) == {"capitals", "feelings"}
    assert (some.set_index("id")["answer"] == full.loc[some["id"], "answer"]).all()
    one = fact_questions(5, subjects="arithmetic")
    assert len(one) == 5 and (one["subject"] == "arithmetic").all()


def test_shots_prefix_both_prompts():
    f0, f3 = fact_questions(6), fact_questions(6, shots=3)
    assert (f0["id"] == f3["id"]).all() and (f0["answer"] == f3["answer"]).all()
    for r0, r3 in zip(f0.itertuples(), f3.itertuples()):
        assert r3.prompt.endswith(r0.prompt[len(LETTER_HEADER) :])
        assert r3.prompt.count("\nAnswer: ") == 3 and r3.prompt.count("Question: ") == 4
        assert r3.cloze_prompt.endswith("\n\n" + r0.cloze_prompt)
        for shot, letter in zip(SHOTS[:3], SHOT_LETTERS):
            assert f"Question: {shot.question}\n" in r3.prompt
            assert f"Question: {shot.question}\nAnswer: {shot.answer}\n\n" in r3.cloze_prompt
            block = r3.prompt.split(f"Question: {shot.question}\n", 1)[1].split("\n\n", 1)[0]
            assert f"\n{letter}. {shot.answer}\n" in "\n" + block and block.endswith(f"Answer: {letter}")


def test_data_multiple_choice_source_facts():
    f = data.multiple_choice("facts", 20, seed=2, shots=1)
    pd.testing.assert_frame_equal(f, fact_questions(20, seed=2, shots=1))
    assert len(data.multiple_choice("facts")) == 384
    assert data.for_model(f, "real/gemma3-270m")["prompt"].tolist() == f["prompt"].tolist()
    with pytest.raises(ElensError, match="shots= applies to source='facts' only"):
        data.multiple_choice("synthetic", 4, shots=1)
    with pytest.raises(ElensError, match="'facts'"):
        data.multiple_choice("mmlu", 4)
    with pytest.raises(ElensError, match="leave prompt_style=None"):
        data.multiple_choice("facts", 4, prompt_style="zoo")


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ElensError, match="use some of capitals"):
        fact_questions(subjects=["history"])
    with pytest.raises(ElensError, match="Only 32 questions match"):
        fact_questions(40, subjects="colours")
    with pytest.raises(ElensError, match="n must be an integer"):
        fact_questions(0)
    with pytest.raises(ElensError, match="demonstrations"):
        fact_questions(shots=9)
    with pytest.raises(ElensError, match="seed"):
        fact_questions(seed="0")


def test_wilson_interval_and_accuracy_by_subject():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    with pytest.raises(ElensError):
        wilson_interval(3, 2)
    table = accuracy_by_subject([True, False, True, True], ["x", "x", "y", "y"])
    assert table["subject"].tolist() == ["x", "y", "all"]
    assert table["accuracy"].tolist() == [0.5, 1.0, 0.75]
    assert table["n"].tolist() == [2, 2, 4] and table["n_correct"].tolist() == [1, 2, 3]
    assert (table["low"] <= table["accuracy"]).all() and (table["accuracy"] <= table["high"]).all()


def test_the_items_file_is_read_whole_and_a_damaged_one_is_refused():
    from importlib import resources

    from elens_utils.data import fact_bank as bank_module

    text = resources.files("elens_utils.data").joinpath("fact_bank.yml").read_text(encoding="utf-8")
    items = bank_module._parse_items(text)
    assert sum(len(items[s]) for s in ("capitals", "colours", "opposites", "numbers", "nature")) == 5 * 32
    assert items["numbers"][0][1] == "8" and all(isinstance(w, str) for w in items["sound_of"])
    damaged = {
        "not YAML": "capitals: [\n",
        "a table missing": text.replace("\nobjects:", "\nthings:"),
        "a number, not text": text.replace('spider have?", "8"', 'spider have?", 8'),
        "a row too short": text.replace('["France", "Paris", ["Lyon"]]', '["France", "Paris"]'),
        "distractors as a string": text.replace('["France", "Paris", ["Lyon"]]', '["France", "Paris", "Lyon"]'),
        "a list of words as a string": text.replace('sound_of: ["dog", ', 'sound_of: "dog" #'),
        "a key written twice": text.replace('  "vegetable": ', '  "fruit": '),
        "an unquoted key YAML reads as a bool": text.replace('  "vegetable": ', "  no: "),
        "a list of rows as a mapping": text.replace('capitals:\n  - ["France", "Paris", ["Lyon"]]', 'capitals:\n  France: ["Paris", ["Lyon"]]'),
    }
    for what, bad in damaged.items():
        assert bad != text, what
        with pytest.raises(ElensError, match=r"(?s)fact_bank.yml is damaged.*Reinstall"):
            bank_module._parse_items(bad)
