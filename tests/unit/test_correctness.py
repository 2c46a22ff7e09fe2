"""correctness: labels from the letter logits, kNN AUC per model, the too-few-of-a-class case."""

import numpy as np
import pandas as pd
import pytest
from helpers import make_profiles

from elens_utils import ElensError
from elens_utils.analysis.classify import knn_cv
from elens_utils.analysis.correctness import (
    FEATURE_SETS,
    correctness_auc,
    outcome_depth_frame,
)


def _answers(model: str, correct: list[bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": model,
            "question": np.arange(len(correct)),
            "correct": correct,
            "chance": 0.25,
        }
    )


def test_correctness_auc_against_knn_cv():
    rng = np.random.default_rng(0)
    n, t, n_layers = 60, 3, 4
    y = np.arange(n) % 3 == 0  # 20 right, 40 wrong
    h = rng.normal(2.0, 0.3, (n, t, n_layers, 1)).astype(np.float32)
    h[y, 0, -1, 0] -= (
        1.5  # right answers: a confident last block at the answer position
    )
    prof = make_profiles(h, model="m")
    table = correctness_auc([prof], _answers("m", y.tolist()), k=5, folds=10)
    assert table["features"].tolist() == list(FEATURE_SETS) == ["mean", "answer"]
    assert (table["status"] == "ok").all() and (table["note"] == "").all()
    assert (
        (table["n"] == n).all()
        and (table["n_correct"] == 20).all()
        and (table["n_layers"] == n_layers).all()
    )
    feats = {
        "mean": h[..., 0]
        .astype(np.float64)
        .mean(axis=1),  # mean over the generated tokens
        "answer": h[:, 0, :, 0].astype(np.float64),  # generation step 1 only
    }
    for row in table.itertuples():
        ref = knn_cv(feats[row.features], y, k=5, folds=10, seed=42)
        assert row.auc_mean == pytest.approx(ref.auc_mean)
        assert row.auc_std == pytest.approx(ref.auc_std)
        assert row.dummy_auc_mean == pytest.approx(ref.dummy_auc_mean)
        assert row.knn_accuracy == pytest.approx(ref.accuracy_mean)
        assert row.p_value == pytest.approx(ref.p_value, nan_ok=True)
    answer_row = table[table["features"] == "answer"].iloc[0]
    assert (
        answer_row["auc_mean"] > 0.9
    )  # the planted signal is found at the answer position


@pytest.mark.parametrize(
    ("correct", "rarer"),
    [
        ([True] * 55 + [False] * 5, "only 5 are wrong"),
        ([False] * 57 + [True] * 3, "only 3 are right"),
        ([True] * 60, "with no wrong answer there is nothing to tell apart"),
    ],
)
def test_too_few_of_a_class_is_a_status_not_a_crash(correct, rarer):
    h = np.random.default_rng(1).random((60, 2, 3, 1)).astype(np.float32)
    ok = make_profiles(
        np.random.default_rng(2).random((60, 2, 3, 1)).astype(np.float32), model="fine"
    )
    answers = pd.concat(
        [_answers("few", correct), _answers("fine", [i % 2 == 0 for i in range(60)])]
    )
    table = correctness_auc([make_profiles(h, model="few"), ok], answers, k=3)
    few = table[table["model"] == "few"]
    assert len(few) == 2 and (few["status"] == "too few").all()
    assert few["auc_mean"].isna().all() and few["p_value"].isna().all()
    note = few["note"].iloc[0]
    assert rarer in note
    if "nothing to tell apart" in rarer:  # no advice to score more: no count of questions helps
        assert "score more" not in note
    else:
        assert "10-fold" in note and "at least 10" in note
    assert (
        table.loc[table["model"] == "fine", "status"] == "ok"
    ).all()  # the other model is still scored
    assert table.loc[table["model"] == "fine", "auc_mean"].notna().all()


def test_correctness_auc_errors():
    prof = make_profiles(np.zeros((20, 2, 3, 1), np.float32), model="m")
    answers = _answers("m", [i % 2 == 0 for i in range(20)])
    with pytest.raises(ElensError, match="20 profiles but 19"):
        correctness_auc([prof], answers.iloc[:19])
    with pytest.raises(ElensError, match="Unknown or no feature sets"):
        correctness_auc([prof], answers, features=("windows",))
    with pytest.raises(ElensError, match="mc_correctness"):
        correctness_auc([prof], answers.drop(columns="correct"))
    with pytest.raises(
        ElensError, match="k = 30"
    ):  # other problems still raise, with their own message
        correctness_auc([prof], answers, k=30, folds=2)


def test_outcome_depth_frame():
    rng = np.random.default_rng(3)
    h = rng.random((10, 3, 4, 1)).astype(np.float32)
    y = np.array([True, False] * 5)
    frame = outcome_depth_frame(
        [make_profiles(h, model="m")], _answers("m", y.tolist()), features="answer"
    )
    assert frame["outcome"].unique().tolist() == ["correct", "wrong"]
    for outcome, mask in (("correct", y), ("wrong", ~y)):
        part = frame[frame["outcome"] == outcome]
        np.testing.assert_allclose(
            part["entropy"], h[mask, 0, :, 0].astype(np.float64).mean(axis=0)
        )
        np.testing.assert_allclose(
            part["sd"], h[mask, 0, :, 0].astype(np.float64).std(axis=0, ddof=1)
        )
        assert part["layer"].tolist() == [1, 2, 3, 4] and (part["n"] == 5).all()
        np.testing.assert_allclose(part["depth"], [0.25, 0.5, 0.75, 1.0])
    all_right = outcome_depth_frame(
        [make_profiles(h, model="m")], _answers("m", [True] * 10), features="mean"
    )
    assert all_right["outcome"].unique().tolist() == ["correct"]
    np.testing.assert_allclose(
        all_right["entropy"], h[..., 0].astype(np.float64).mean(axis=1).mean(axis=0)
    )
