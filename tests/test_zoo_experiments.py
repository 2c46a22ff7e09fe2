"""The document variants of zoo/experiments/readout.py, whose runs the experiments' README reports."""

import importlib.util
from pathlib import Path

import pytest
import torch

from elens_utils import zoo
from elens_utils.synthetic import NEWLINE, StoryWorld

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def readout():
    spec = importlib.util.spec_from_file_location("zoo_readout", ROOT / "zoo" / "experiments" / "readout.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
    assert base.qk_norm_gain == 1.0
    assert sum(base.mix.values()) == pytest.approx(1.0)
