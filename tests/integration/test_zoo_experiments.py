"""The document variants of research/zoo-readout/readout.py, whose runs the experiments' README reports."""

import importlib.util
from pathlib import Path

import pytest
import torch

from elens_utils.data.synthetic import NEWLINE, StoryWorld
from elens_utils.zoo import training as zoo

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str):
    """Import ``research/zoo-readout/<name>.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(f"zoo_{name}", ROOT / "research" / "zoo-readout" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def readout():
    return _script("readout")


@pytest.fixture(scope="module")
def probe():
    return _script("probe")


def test_question_first_moves_the_story_before_the_answer(readout):
    q = StoryWorld(0).multiple_choice(1, split="validation")[0]
    lines = q.prompt.split(NEWLINE)
    moved = readout.question_first(q.prompt).split(NEWLINE)
    assert sorted(moved) == sorted(lines)
    assert moved[-2].startswith("story : ") and moved[-1] == "answer :"
    assert [line for line in moved if not line.startswith("story")] == [line for line in lines if not line.startswith("story")]


@pytest.mark.parametrize("kind", ["story", "short", "cut", "mixed"])
def test_lookup_variants_keep_question_options_and_letter(readout, kind):
    world = StoryWorld(0)
    base = [d.text for _, d in zip(range(6), zoo._lookup_docs(world, "train"))]
    variant = readout._lookup_variant(kind)
    got = [d.text for _, d in zip(range(6), variant(world, "train", cut=True))]  # as training_documents asks
    for j, (b, g) in enumerate(zip(base, got)):
        b_lines, g_lines = b.split(NEWLINE), g.split(NEWLINE)
        assert g_lines[-6:] == b_lines[-6:]  # question, four options, answer letter
        if kind == "short" or (kind == "mixed" and j % 2 == 1):
            assert len(g_lines) == 6
        elif kind == "story":
            assert g == b  # the runs' story look-ups are uncut
        else:
            assert b_lines[0].startswith(g_lines[0]) and g_lines[0].startswith("story :")
    if kind == "cut":
        cut_lengths = {len(d.text) for _, d in zip(range(20), variant(world, "train"))}
        assert len(cut_lengths) > 10  # the options move from document to document


def test_position_tables_are_unit_sinusoids(readout):
    for init in ("sinusoid", "long-sinusoid"):
        pe = readout._position_table(512, 64, init).double()
        assert pe.shape == (512, 64)
        assert pe.std().item() == pytest.approx(1.0, rel=1e-6)
        pair = pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2  # sin^2 + cos^2 is constant in every pair
        assert torch.allclose(pair, pair[0].expand_as(pair), atol=1e-5)
    slow = readout._position_table(512, 64, "long-sinusoid")[:128, -2].double()  # wavelength 1024
    assert (slow.diff() > 0).all()  # a ramp over the zoo's positions


def test_runs_start_from_the_recipe_before_the_look_up_phase(readout):
    base = readout.BASE
    assert base.lookup_tokens_for(8) == 0 and "lookup" not in base.mix and base.mc_questions_per_doc == 1
    assert base.qk_norm_gain == 1.0 and base.lookup_phase_min_options == 4 and base.mc_extend_max_rounds == 5
    assert sum(base.mix.values()) == pytest.approx(1.0)


def test_options_without_colons_touch_the_option_lines_only(readout):
    q = StoryWorld(0).multiple_choice(1, split="validation")[0]
    lines, moved = q.prompt.split(NEWLINE), readout.without_colons(q.prompt).split(NEWLINE)
    assert moved[:-5] == lines[:-5] and moved[-1] == lines[-1] == "answer :"
    assert moved[-5:-1] == [f"{letter} {word}" for letter, word in zip("ABCD", q.options)]


def test_fewer_options_keep_the_gold_letter_and_the_order(readout):
    import random

    rng = random.Random(0)
    counts = set()
    for _, d in zip(range(40), zoo._lookup_docs(StoryWorld(0), "train", cut=True)):
        lines = d.text.split(NEWLINE)
        got = readout.fewer_options(d.text, rng).split(NEWLINE)
        options = got[2:-1]
        counts.add(len(options))
        assert got[:2] == lines[:2] and got[-1] == lines[-1]  # story, question, answer
        assert all(o in lines[2:6] for o in options) and options == sorted(options)  # letters in order
        letter = got[-1].split(" ")[-1]
        gold = next(o for o in options if o.startswith(f"{letter} : "))
        assert gold.split(" : ")[1] == got[1].split(" : ")[1]  # the option holding the question word
    assert counts == {1, 2, 3, 4}


def test_focus_with_lookups_alternates_mc_and_fewer_option_lookups(readout):
    world = StoryWorld(0)
    mixed = readout.focus_with_lookups(zoo._focus_docs)(world, "train", salt="-focus", n_questions=1, max_tokens=128)
    docs = [d for _, d in zip(range(8), mixed)]
    base = [d.text for _, d in zip(range(4), zoo._focus_docs(world, "train", salt="-focus"))]
    assert [d.text for d in docs[0::2]] == base
    assert all(d.kind == "mc" and d.text.startswith("story : ") and "\nanswer : " in d.text for d in docs[1::2])


def test_fewer_options_apply_to_training_look_ups_only(readout):
    world = StoryWorld(0)
    wrapped = readout.training_with_fewer_options(zoo._lookup_docs)
    train = [d.text for _, d in zip(range(20), wrapped(world, "train", cut=True))]
    assert {t.count("\n") - 2 for t in train} == {1, 2, 3, 4}  # options between question and answer
    val = [d.text for _, d in zip(range(5), wrapped(world, "validation"))]
    assert val == [d.text for _, d in zip(range(5), zoo._lookup_docs(world, "validation"))]


def test_probes_find_the_read_out_of_a_model_that_answers(probe):
    """Llama-8L answers multiple choice (card: 100%): by its last block the gold letter is readable
    at `answer :`, and it reads out letters among four options."""
    rows = probe.probe(str(ROOT / "zoo" / "llama-8L"), n=150)
    assert [r["block"] for r in rows] == list(range(1, 9))
    assert all(0 <= r[k] <= 1 for r in rows for k in ("letter@option", "word@answer", "letter@answer"))
    assert rows[-1]["letter@answer"] > 0.6 and rows[0]["letter@answer"] < 0.45
    by_options = probe.readout_by_options(str(ROOT / "zoo" / "llama-8L"), n=60, counts=(4,))
    assert set(by_options) == {4} and by_options[4] > 0.6
