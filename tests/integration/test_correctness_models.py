"""correctness on untrained models: mc_correctness against mc_accuracy."""

import pytest
from helpers import untrained_models

from elens_utils import ElensError, load_model
from elens_utils.analysis.correctness import (
    accuracy_by_model,
    mc_correctness,
)
from elens_utils.analysis.interventions import mc_accuracy
from elens_utils.data import prompts as data


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return untrained_models(tmp_path_factory.mktemp("untrained"), ("qwen3", 2), ("gemma2", 3))


def test_mc_correctness_matches_mc_accuracy(models):
    questions = data.multiple_choice("synthetic", 12)
    out = mc_correctness(models, questions, batch_size=5)
    assert out["model"].unique().tolist() == models
    for model in models:
        ref = mc_accuracy(load_model(model), questions, answer_col="answer").table
        mine = out[out["model"] == model].reset_index(drop=True)
        assert mine["question"].tolist() == list(range(12))
        assert mine["id"].tolist() == questions["id"].tolist()
        assert mine["predicted"].tolist() == ref["predicted"].tolist()
        assert mine["correct"].tolist() == ref["correct"].tolist()
        assert mine["answer"].tolist() == questions["answer"].tolist()
    acc = accuracy_by_model(out)
    assert acc["model"].tolist() == models
    for row in acc.itertuples():
        flags = out.loc[out["model"] == row.model, "correct"]
        assert (row.accuracy, row.n_correct, row.n, row.chance) == (
            flags.mean(),
            flags.sum(),
            12,
            0.25,
        )
    with pytest.raises(ElensError, match="DataFrame"):
        mc_correctness(models, questions["prompt"].tolist())
    with pytest.raises(ElensError, match="mc_correctness"):
        accuracy_by_model(out.drop(columns="chance"))
