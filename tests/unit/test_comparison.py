"""The side-by-side tables of real models, zoo and paper, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import make_profiles

from elens_utils import ElensError
from elens_utils.analysis.comparison import blank_prompt_comparison, model_group


def test_model_groups():
    assert model_group("zoo/llama-8L") == "zoo"
    assert model_group("real/gemma3-270m") == "real"
    assert model_group("/models/x.gguf") == "real"
    assert model_group("gpt2") == "real"
    assert model_group("tiny/gpt2-4L") == model_group("untrained/llama-4L") == "other"


def test_blank_prompt_comparison_by_hand():
    rng = np.random.default_rng(0)
    zoo = rng.uniform(0, 3, size=(4, 5, 3, 1))  # 4 samples, 5 tokens, 3 blocks
    real = rng.uniform(0, 9, size=(2, 6, 4, 1))
    table = blank_prompt_comparison(
        [make_profiles(zoo, "zoo/llama-2L"), make_profiles(real, "real/gemma3-270m")],
        {"zoo/llama-2L": 100, "real/gemma3-270m": 262144},
        paper="12 models, BOS prompt, 64 x 32 tokens",
    )
    assert list(table["group"]) == ["real", "zoo", "paper"]  # real first, paper last
    row = table.iloc[0]
    h = real[..., 0].mean(axis=(0, 1))
    assert row["L"] == 4 and row["samples"] == 2 and row["tokens"] == 6
    assert row["H block 1"] == pytest.approx(h[0]) and row["H block L"] == pytest.approx(h[-1])
    assert row["peak H"] == pytest.approx(h.max())
    assert row["peak at l/L"] == pytest.approx((np.argmax(h) + 1) / 4)
    assert row["log V"] == pytest.approx(math.log(262144))
    assert row["peak / log V"] == pytest.approx(h.max() / math.log(262144))
    assert row["expanding steps"] == pytest.approx(np.mean(np.diff(h) > 0))
    assert np.isnan(table.iloc[2]["peak H"])  # the paper's row carries words, not numbers
    assert str(table["L"].dtype) == "Int64" and table["L"].iloc[2] is pd.NA  # whole numbers, a blank


def test_blank_prompt_comparison_bad_input():
    with pytest.raises(ElensError, match="at least one"):
        blank_prompt_comparison([], {})
    with pytest.raises(ElensError, match="no vocabulary size"):
        blank_prompt_comparison([make_profiles(np.ones((1, 1, 2, 1)), "zoo/x-2L")], {})


def test_quantization_caveat_quotes_the_measured_file(tmp_path):
    import json

    from elens_utils.analysis.comparison import (
        QUANTIZATION_RESULTS,
        quantization_caveat,
    )

    text = quantization_caveat()
    run = next(r for r in json.loads(QUANTIZATION_RESULTS.read_text())["runs"] if r["experiment"] == "family" and r["qtype"] == "Q4_1")
    assert f"{run['summary']['token_dh_mean']:.3f} nats" in text
    auc = {row["weights"]: row["auc_mean"] for row in run["knn"]}
    assert f"from {auc['float']:.3f} to {auc['quantized']:.3f}" in text
    # the task run has one kNN per model: the sentence gives the mean and largest change over them
    task = next(r for r in json.loads(QUANTIZATION_RESULTS.read_text())["runs"] if r["experiment"] == "task" and r["qtype"] == "Q4_1")
    by = {(row["scope"], row["weights"]): row["auc_mean"] for row in task["knn"]}
    scopes = sorted({row["scope"] for row in task["knn"]})
    changes = [abs(by[s, "quantized"] - by[s, "float"]) for s in scopes]
    text = quantization_caveat(experiment="task")
    assert f"task-type kNN AUC by {np.mean(changes):.3f} on average over the {len(scopes)} models (at most {max(changes):.3f}; " in text
    assert f"{task['summary']['token_dh_mean']:.3f} nats" in text and "family" not in text
    with pytest.raises(ElensError, match="quantization_zoo.py"):
        quantization_caveat(tmp_path / "none.json")
    with pytest.raises(ElensError, match="no family run of Q2_K"):
        quantization_caveat(qtype="Q2_K")


def test_blank_prompt_findings():
    from elens_utils.analysis.comparison import blank_prompt_findings

    rng = np.random.default_rng(1)
    table = blank_prompt_comparison(
        [make_profiles(rng.uniform(0, 3, (2, 3, 4, 1)), "zoo/llama-4L"), make_profiles(rng.uniform(0, 9, (2, 3, 6, 1)), "real/x")],
        {"zoo/llama-4L": 341, "real/x": 1000},
    )
    lines = blank_prompt_findings(table)
    assert len(lines) == 2 and lines[0].startswith("- **real/x** (6 blocks, 2 samples x 3 tokens)")
    real = table.iloc[0]
    assert f"a peak of {real['peak H']:.2f} nats" in lines[0]
    assert "Real against zoo" in lines[1]
    assert blank_prompt_findings(table[table["group"] == "zoo"]) == []


def test_family_comparison_rows_are_the_cv_results():
    from elens_utils.analysis.classify import knn_cv
    from elens_utils.analysis.comparison import family_comparison, knn_verdict

    rng = np.random.default_rng(0)
    fam = np.repeat(["a", "b", "c"], 20)
    models = np.repeat(["a-1", "b-1", "c-1"], 20)
    x = rng.normal(size=(60, 4)) + (fam == "a")[:, None] * 3.0
    cv = knn_cv(x, fam, k=5, folds=5)
    table = family_comparison({"all": (cv, fam, models)}, paper="AUC above 0.9 (headline)")
    row = table.iloc[0]
    assert row["families"] == "a, b, c" and row["n models"] == 3 and row["samples"] == 60
    assert row["AUC"] == pytest.approx(cv.auc_mean) and row["dummy AUC"] == pytest.approx(cv.dummy_auc_mean)
    assert row["verdict"] == knn_verdict(cv.auc_mean, cv.auc_std, cv.dummy_auc_mean, cv.p_value)
    assert list(table.columns[:3]) == ["models", "verdict", "AUC"]  # the verdict shows on a narrow page
    assert table.iloc[1]["models"] == "paper" and np.isnan(table.iloc[1]["AUC"])
    assert table.iloc[1]["verdict"] == "claims AUC above 0.9"


def _knn_summary(rows):
    """A knn_tables-like summary: one row per (model, auc, sd, dummy, p), on all prompts."""
    import pandas as pd

    return pd.DataFrame(
        [
            {"model": m, "n_layers": L, "subset": "all", "k": 29, "folds": 10, "n": n, "n_classes": 3, "auc_mean": a,
             "auc_std": sd, "dummy_auc_mean": d, "accuracy_mean": acc, "p_value": p}
            for m, L, n, a, sd, d, acc, p in rows
        ]  # fmt: skip
    )


def test_knn_verdicts():
    from elens_utils.analysis.comparison import knn_verdict

    assert knn_verdict(0.995, 0.004, 0.50, 1e-12) == "at ceiling"
    assert knn_verdict(0.93, 0.02, 0.50, 1e-9) == "above 0.9"
    assert knn_verdict(0.90, 0.02, 0.50, 1e-9) == "above chance but below 0.9"  # 0.9 itself is not above
    assert knn_verdict(0.62, 0.03, 0.50, 1e-4) == "above chance but below 0.9"
    assert knn_verdict(0.52, 0.04, 0.50, 0.3) == "at chance"
    assert knn_verdict(0.62, 0.03, 0.50, 0.2) == "no evidence"  # away from 0.5, not significant
    assert knn_verdict(0.56, 0.08, 0.49, 1e-3) == "no evidence"  # significant, but within one fold sd
    assert knn_verdict(1.0, 0.0, 0.5, float("nan")) == "at ceiling"  # the t-test of constant differences
    assert knn_verdict(0.5, 0.0, 0.5, float("nan")) == "at chance"
    assert knn_verdict(0.85, 0.02, 0.5, 1e-6, level=0.8) == "above 0.8"
    with pytest.raises(ElensError, match="must be numbers"):
        knn_verdict(float("nan"), 0.1, 0.5, 0.1)


def test_knn_comparison_and_findings_by_hand():
    import pandas as pd

    from elens_utils.analysis.comparison import knn_comparison, knn_findings

    summary = _knn_summary(
        [
            ("zoo/llama-2L", 2, 2400, 0.97, 0.01, 0.50, 0.80, 1e-12),
            ("zoo/llama-8L", 8, 2400, 0.999, 0.001, 0.51, 0.98, 1e-14),
            ("real/smollm2-135m-instruct", 30, 600, 0.81, 0.04, 0.49, 0.62, 1e-8),
            ("real/gemma3-270m", 18, 600, 0.53, 0.05, 0.50, 0.36, 0.4),
        ]
    )
    extra = summary.assign(subset="base", auc_mean=0.1)  # per-variant rows are ignored
    real = make_profiles(np.ones((3, 8, 30, 1)), "real/smollm2-135m-instruct")
    table = knn_comparison(pd_concat([summary, extra]), [real], paper="TinyStories, 2400 prompts")
    assert list(table["group"]) == ["real", "real", "zoo", "zoo", "paper"]
    assert list(table.columns[:4]) == ["group", "model", "verdict", "AUC"]  # the verdict shows on a narrow page
    assert list(table["model"][:4]) == ["real/smollm2-135m-instruct", "real/gemma3-270m", "zoo/llama-2L", "zoo/llama-8L"]
    assert list(table["verdict"]) == [
        "above chance but below 0.9", "at chance", "above 0.9", "at ceiling", "claims AUC above 0.9",
    ]  # fmt: skip
    assert table.loc[0, "tokens"] == 8 and pd.isna(table.loc[1, "tokens"])  # no profiles given for gemma
    assert all(str(table[c].dtype) == "Int64" for c in ("L", "prompts", "tokens", "k", "folds", "classes"))
    assert pd.isna(table.loc[4, "L"])
    assert table.loc[0, "prompts"] == 600 and table.loc[2, "L"] == 2 and table.loc[0, "AUC"] == pytest.approx(0.81)
    assert np.isnan(table.loc[4, "AUC"]) and table.loc[4, "model"] == "TinyStories, 2400 prompts"

    lines = knn_findings(table)
    assert len(lines) == 4
    assert lines[0].startswith("- **real/smollm2-135m-instruct** (30 blocks, 600 prompts, 8 tokens each, k = 29, 10 folds)")
    assert "AUC 0.810 (sd 0.040 over folds) against a dummy at 0.490 (p = 1e-08)" in lines[0]
    assert "accuracy 62% (a guess among 3 balanced classes: 33%)" in lines[0] and "**above chance but below 0.9**" in lines[0]
    assert "(18 blocks, 600 prompts, k = 29" in lines[1] and "**at chance**" in lines[1]
    assert lines[2] == (
        "- **Real models against the zoo** (task type): real: AUC 0.53-0.81 over 2 models (600 prompts each), "
        "0 of 2 above 0.9; zoo: AUC 0.97-1.00 over 2 models (2400 prompts each), 2 of 2 above 0.9."
    )
    assert lines[3] == (
        "- **Beside the paper**: its headline claim is a kNN AUC above 0.9 for task type (TinyStories, 2400 prompts); "
        "it gives no per-model number to set beside these. The real models fall short of it (0 of 2 above 0.9; "
        "verdicts: 1 above chance but below 0.9, 1 at chance); the zoo models meet it (2 of 2 above 0.9; "
        "verdicts: 1 at ceiling, 1 above 0.9); where a model is at ceiling, the run can say no more than that the "
        "threshold is met."
    )
    # zoo alone: no real lines, no real-against-zoo line; a mixed group "partly agrees"
    zoo_only = knn_comparison(summary.iloc[:2].assign(auc_mean=[0.8, 0.95]))
    (line,) = knn_findings(zoo_only)
    assert line.endswith("The zoo models partly agree with it (1 of 2 above 0.9; verdicts: 1 above 0.9, 1 above chance but below 0.9).")
    assert knn_findings(knn_comparison(summary.assign(model="tiny/gpt2-2L").iloc[:1])) == []
    one = knn_findings(knn_comparison(summary.iloc[[2]]))  # one real model, no zoo
    assert len(one) == 2 and one[1].endswith("The real model falls short of it (0 of 1 above 0.9; verdicts: 1 above chance but below 0.9).")
    one_zoo = knn_findings(knn_comparison(summary.iloc[[1]]))
    assert one_zoo[0].endswith(
        "The zoo model is at ceiling on it (1 of 1 above 0.9; verdicts: 1 at ceiling): the classes separate (nearly) "
        "perfectly, so the run meets the threshold but cannot say how much the profile tells about task type, nor "
        "rank feature sets."
    )


def test_knn_verdicts_reads_each_row():
    import pandas as pd

    from elens_utils.analysis.comparison import knn_verdict, knn_verdicts

    rows = pd.DataFrame({"model": ["a", "b", "c"], "auc_mean": [1.0, 0.5, 0.95], "auc_std": [0.0, 0.02, 0.01],
                         "dummy_auc_mean": [0.5, 0.5, 0.5], "p_value": [1e-9, 0.8, 1e-6]})  # fmt: skip
    assert knn_verdicts(rows) == ["at ceiling", "at chance", "above 0.9"]
    assert knn_verdicts(rows, level=0.96)[2] == "above chance but below 0.96" == knn_verdict(0.95, 0.01, 0.5, 1e-6, level=0.96)
    assert knn_verdicts(rows.iloc[:0]) == []
    with pytest.raises(ElensError, match="columns"):
        knn_verdicts(rows.drop(columns="p_value"))


def test_knn_comparison_bad_input():
    from elens_utils.analysis.comparison import knn_comparison

    summary = _knn_summary([("zoo/a-2L", 2, 100, 0.7, 0.05, 0.5, 0.5, 0.01)])
    with pytest.raises(ElensError, match="several rows per model"):
        knn_comparison(pd_concat([summary, summary]))
    with pytest.raises(ElensError, match="no rows on all prompts"):
        knn_comparison(summary.assign(subset="base"))
    with pytest.raises(ElensError, match="takes a knn_tables summary"):
        knn_comparison(summary.drop(columns="p_value"))


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_transfer_findings_by_hand():
    import pandas as pd

    from elens_utils.analysis.comparison import transfer_findings

    rows = [
        ("m", "cv", 0.9, "ok"), ("m", "phrasing", 0.8, "ok"), ("m", "phrasing", 0.6, "ok"),
        ("m", "variant", 0.7, "ok"), ("m", "variant", 0.5, "skipped"),
    ]  # fmt: skip
    t = pd.DataFrame(rows, columns=["model", "factor", "auc", "status"]).assign(dummy_auc=0.5, auc_std=0.05)
    (line,) = transfer_findings(t, label="Real models")
    assert "`m` 0.900 / 0.700 / 0.700" in line  # the skipped variant is left out
    assert "lowers the AUC by 0.200" in line
    t.loc[t["factor"] == "phrasing", "auc"] = 0.9
    assert "does not hang on the wording" in transfer_findings(t)[0]
    t.loc[t["factor"] == "cv", "auc"] = 0.53  # within one fold sd of the dummy: nothing to transfer
    line = transfer_findings(t)[0]
    assert "no evidence either way" in line and "lowers" not in line and "hang" not in line


def _correctness_frames():
    """Hand-made correctness_auc scores and accuracy_by_model rows (two feature sets per model)."""
    import pandas as pd

    nan = float("nan")
    # model, L, n, n_correct, status, (mean: auc, sd, dummy, p), (answer: auc, sd, dummy, p)
    models = [
        ("real/a", 30, 100, 62, "ok", (0.70, 0.05, 0.50, 1e-4), (0.52, 0.06, 0.50, 0.4)),  # beats the dummy
        ("real/b", 18, 60, 55, "too few", (nan,) * 4, (nan,) * 4),  # 5 wrong answers
        ("real/c", 18, 40, 12, "ok", (0.48, 0.07, 0.50, 0.6), (0.53, 0.05, 0.51, 0.3)),  # at chance twice
        ("real/d", 30, 100, 5, "too few", (nan,) * 4, (nan,) * 4),  # 5 right answers
        ("real/e", 30, 100, 40, "ok", (0.62, 0.03, 0.50, 0.2), (0.51, 0.04, 0.50, 0.7)),  # no evidence + chance
        ("zoo/llama-8L", 8, 100, 50, "ok", (0.95, 0.02, 0.50, 1e-9), (0.96, 0.02, 0.50, 1e-9)),
    ]
    scores, accuracy = [], []
    for m, L, n, k, status, *feats in models:
        for name, (auc, sd, dummy, p) in zip(("mean", "answer"), feats):
            scores.append({"model": m, "n_layers": L, "features": name, "n": n, "n_correct": k, "accuracy": k / n,
                           "status": status, "note": "", "auc_mean": auc, "auc_std": sd, "dummy_auc_mean": dummy,
                           "p_value": p})  # fmt: skip
        accuracy.append({"model": m, "accuracy": k / n, "n_correct": k, "n": n, "chance": 0.25})
    # baseline rows (subject_baseline_auc): real/a's subject tells as much as its profile, real/c's less
    for m, n, k, auc in (("real/a", 100, 62, 0.72), ("real/c", 40, 12, 0.40)):
        scores.append({"model": m, "n_layers": pd.NA, "features": "subject", "n": n, "n_correct": k, "accuracy": k / n,
                       "status": "ok", "note": "", "auc_mean": auc, "auc_std": 0.05, "dummy_auc_mean": 0.5,
                       "p_value": 0.01})  # fmt: skip
    return pd.DataFrame(scores), pd.DataFrame(accuracy)


def test_correctness_findings_by_hand():
    from elens_utils.analysis.comparison import correctness_findings
    from elens_utils.data.fact_questions import wilson_interval

    scores, accuracy = _correctness_frames()
    lines = correctness_findings(scores, accuracy)
    assert len(lines) == 6  # five real models (the zoo's is left out by default), then the paper
    a, b, c, d, e, paper = lines
    assert a.startswith("- **real/a** (30 blocks, 100 questions, cloze scoring): accuracy 62% (62/100; 95% interval 52-71%), above chance (25%).")
    assert wilson_interval(62, 100)[0] > 0.5  # the interval quoted above
    assert "Mean over the generated tokens (the paper's features): AUC 0.700 (sd 0.050 over folds) against a dummy at 0.500 (p = 0.0001): **above chance but below 0.9**." in a
    assert "Answer position only: AUC 0.520 (sd 0.060 over folds) against a dummy at 0.500 (p = 0.4): **at chance**." in a
    assert "Not scored" not in a
    assert a.endswith(
        "Baseline, the question's subject alone, no profile: AUC 0.720 (sd 0.050 over folds) against a dummy at 0.500 "
        "(p = 0.01); the profile's best (mean, 0.700) tells about as much as the subject alone."
    )
    assert c.endswith("the profile's best (answer, 0.530) tells more than the subject alone.")
    assert b.startswith("- **real/b** (18 blocks, 60 questions, cloze scoring): accuracy 92% (55/60;")
    assert "above chance (25%). **Not scored**: only 5 wrong answers, and 10-fold stratified cross-validation needs at least 10 right and 10 wrong." in b
    assert "AUC" not in b
    assert "accuracy 30% (12/40; 95% interval 18-45%), not distinguishable from chance (25%)." in c
    assert c.count("**at chance**") == 2
    assert "accuracy 5% (5/100; 95% interval 2-11%), below chance (25%). **Not scored**: only 5 right answers" in d
    assert "**no evidence**" in e and "**at chance**" in e
    assert paper.startswith("- **Beside the paper**: its earlier version (v1/v2) claimed")
    assert "we found no number for it in the paper" in paper
    assert paper.endswith(
        "Of the 5 models here, 1 beats the dummy with at least one feature set (`real/a`); 1 is at chance with every "
        "feature set (`real/c`); 1 is undecided, with no evidence either way (`real/e`); 2 were not scored (`real/b`, `real/d`). "
        "`real/a` beats the dummy but tells no more than the subject alone: what the profile tells may be which kind of question it "
        "is, not whether the answer is right."
    )
    # without the baseline rows' name, no baseline sentence and no caveat
    plain = correctness_findings(scores[scores["features"] != "subject"], accuracy)
    assert "Baseline" not in plain[0] and plain[-1].endswith("(`real/b`, `real/d`).")


def test_correctness_findings_flags_a_model_at_chance_that_beats_the_dummy():
    from elens_utils.analysis.comparison import correctness_findings

    scores, accuracy = _correctness_frames()
    row = (scores["model"] == "real/c") & (scores["features"] == "mean")
    scores.loc[row, ["auc_mean", "auc_std", "dummy_auc_mean", "p_value"]] = [0.75, 0.05, 0.50, 1e-4]
    line, paper = correctness_findings(scores, accuracy, models=["real/c"])
    assert "not distinguishable from chance" in line and "**above chance but below 0.9**" in line
    assert "so its right answers are mostly guesses: this AUC says which guesses land, not that the model knows" in line
    assert "`real/c` answers at chance: an AUC above the dummy there tells lucky guesses from unlucky ones" in paper
    untouched = correctness_findings(*_correctness_frames(), models=["real/a"])  # above chance: no caveat
    assert "guesses" not in " ".join(untouched)


def test_correctness_findings_options_and_errors():
    from elens_utils.analysis.comparison import correctness_findings

    scores, accuracy = _correctness_frames()
    lines = correctness_findings(scores, accuracy, models=["zoo/llama-8L", "real/c"], scoring="letter logits", folds=5)
    assert lines[0].startswith("- **zoo/llama-8L** (8 blocks, 100 questions, letter logits scoring): accuracy 50% (50/100;")
    assert lines[0].count("**above 0.9**") == 2
    assert lines[2].endswith("Of the 2 models here, 1 beats the dummy with at least one feature set (`zoo/llama-8L`); 1 is at chance with every feature set (`real/c`).")
    assert correctness_findings(scores, accuracy, models=["real/c"], scoring="letter logits", paper=False) == [lines[1]]
    single = correctness_findings(scores, accuracy, models=["real/e"])[-1]
    assert single.endswith("result. Here `real/e` is undecided, with no evidence either way.")
    assert correctness_findings(scores, accuracy, models=["real/b"])[-1].endswith("result. Here `real/b` was not scored.")
    # too few for the folds is "not scored", even when the status says ok
    (line,) = correctness_findings(scores, accuracy, models=["real/c"], folds=20, paper=False)
    assert "**Not scored**: only 12 right answers, and 20-fold" in line
    assert correctness_findings(scores[scores["model"] == "zoo/llama-8L"], accuracy[accuracy["model"] == "zoo/llama-8L"]) == []
    with pytest.raises(ElensError, match="has no scores"):
        correctness_findings(scores[scores["model"] != "real/a"], accuracy)
    with pytest.raises(ElensError, match="has no accuracy"):
        correctness_findings(scores, accuracy, models=["real/zz"])
    wrong = accuracy.copy()
    wrong.loc[wrong["model"] == "real/a", "n_correct"] = 61
    with pytest.raises(ElensError, match="pass the same answers to both"):
        correctness_findings(scores, wrong)
    with pytest.raises(ElensError, match="columns"):
        correctness_findings(scores.drop(columns="p_value"), accuracy)
    with pytest.raises(ElensError, match="columns"):
        correctness_findings(scores, accuracy.drop(columns="chance"))


def _answers(model, correct):
    return pd.DataFrame({"model": model, "question": np.arange(len(correct)), "correct": np.asarray(correct, bool)})


def test_subject_baseline_auc():
    from elens_utils.analysis.classify import knn_cv
    from elens_utils.analysis.comparison import subject_baseline_auc

    rng = np.random.default_rng(0)
    subject = np.repeat(["capitals", "arithmetic", "colours", "feelings"], 30)
    # capitals always right, arithmetic always wrong: the subject alone separates those
    right = np.r_[np.ones(30), np.zeros(30), rng.random(60) < 0.5].astype(bool)
    questions = pd.DataFrame({"subject": subject, "kind": "fact"})
    both = pd.concat([_answers("real/x", right), _answers("real/y", np.roll(right, 60))], ignore_index=True)
    table = subject_baseline_auc(both, questions, folds=5)
    assert list(table["model"]) == ["real/x", "real/y"] and list(table["features"]) == ["subject"] * 2
    row = table.iloc[0]
    assert row["status"] == "ok" and row["n"] == 120 and row["n_correct"] == right.sum()
    assert 0.7 < row["auc_mean"] <= 1.0 and row["p_value"] < 0.05
    # the same folds and dummy as knn_cv: its dummy AUCs are the baseline's
    cv = knn_cv(rng.normal(size=(120, 3)), right, k=5, folds=5)
    assert row["dummy_auc_mean"] == pytest.approx(cv.dummy_auc_mean)
    assert row["dummy_auc_std"] == pytest.approx(cv.dummy_auc_std)
    # one subject for all: every test question gets the same score, AUC exactly 0.5
    flat = subject_baseline_auc(_answers("real/x", right), questions, column="kind", folds=5).iloc[0]
    assert flat["features"] == "kind" and flat["auc_mean"] == 0.5 and flat["auc_std"] == 0.0
    # a subject seen only in a test fold falls back on the training accuracy (no NaN scores)
    once = questions.assign(subject=[*subject[:-1], "calendar"])
    assert np.isfinite(subject_baseline_auc(_answers("real/x", right), once, folds=5)["auc_mean"].iloc[0])
    few = subject_baseline_auc(_answers("real/z", np.r_[np.ones(116), np.zeros(4)]), questions, folds=5).iloc[0]
    assert few["status"] == "too few" and np.isnan(few["auc_mean"])
    with pytest.raises(ElensError, match="pass the questions that were scored"):
        subject_baseline_auc(_answers("real/x", right[:100]), questions)
    with pytest.raises(ElensError, match="column 'topic'"):
        subject_baseline_auc(both, questions, column="topic")


def test_feature_set_findings_ranks_only_what_the_folds_can_tell():
    import pandas as pd

    from elens_utils.analysis.comparison import feature_set_findings

    def frame(rows):
        return pd.DataFrame(rows, columns=["model", "features", "k", "auc_mean", "auc_std"])

    ceiling = frame([(m, f, 5, a, 0.004) for m in ("a", "b") for f, a in (("shannon", 0.999), ("renyi", 0.998))])
    line = feature_set_findings(ceiling)
    assert line.startswith("- **Shannon against Rényi** (k = 5, mean AUC over 2 models): shannon 0.999, renyi 0.998.")
    assert "differ by at most 0.001, no more than the spread over folds (sd 0.004): they are not distinguishable" in line
    assert "Best set" not in line
    apart = frame([("a", "shannon", 5, 0.70, 0.03), ("a", "renyi", 5, 0.80, 0.03),
                   ("b", "shannon", 5, 0.75, 0.03), ("b", "renyi", 5, 0.72, 0.03)])  # fmt: skip
    line = feature_set_findings(apart, label="Orders")
    assert line.startswith("- **Orders** (k = 5, mean AUC over 2 models): shannon 0.725, renyi 0.760.")
    assert line.endswith("The largest gap, 0.035, exceeds the spread over folds (sd 0.030). Best set per model: renyi (1), shannon (1).")
    with pytest.raises(ElensError, match="one row per model and feature set"):
        feature_set_findings(apart.drop(columns="auc_std"))


@pytest.mark.parametrize(
    ("gap", "spread", "verdict"),
    [(0.1, 2.0, "overlap"), (0.6, 2.0, "partly overlap"), (1.2, 2.0, "do not overlap"),
     (0.5, 2.0, "partly overlap"), (1.0, 2.0, "partly overlap"), (float("nan"), 2.0, "one model: nothing to compare")],
)  # fmt: skip
def test_overlap_verdict_rules(gap, spread, verdict):
    from elens_utils.analysis.comparison import overlap_verdict

    assert overlap_verdict(gap, spread) == verdict


def test_overlap_verdict_needs_a_spread():
    from elens_utils.analysis.comparison import overlap_verdict

    with pytest.raises(ElensError, match="spread along depth"):
        overlap_verdict(0.1, 0.0)


def test_correctness_outcomes_follow_the_findings_rules():
    import pandas as pd

    from elens_utils.analysis.comparison import (
        correctness_findings,
        correctness_outcomes,
    )

    def row(model, features, auc, sd, dummy, p, n_correct, n=200, status="ok"):
        return dict(model=model, n_layers=4, features=features, n=n, n_correct=n_correct, status=status,
                    auc_mean=auc, auc_std=sd, dummy_auc_mean=dummy, p_value=p)  # fmt: skip

    scores = pd.DataFrame([
        row("ceil", "mean", 0.995, 0.004, 0.50, 1e-9, 100),   # at ceiling: beats the dummy
        row("chance", "mean", 0.51, 0.05, 0.50, 0.6, 100),    # at chance
        row("mixed", "mean", 0.56, 0.05, 0.50, 0.6, 100),     # away from 0.5 but not significant: undecided
        row("few", "mean", 0.9, 0.1, 0.5, 0.01, 195),         # 5 wrong answers < 10 folds: not scored
    ])  # fmt: skip
    accuracy = pd.DataFrame(
        [dict(model=m, accuracy=k / 200, n_correct=k, n=200, chance=0.25) for m, k in
         [("ceil", 100), ("chance", 100), ("mixed", 100), ("few", 195)]]
    )  # fmt: skip
    models = ["ceil", "chance", "mixed", "few"]
    outcomes = correctness_outcomes(scores, accuracy, models=models, folds=10, baseline=None)
    assert outcomes == {"ceil": "beats the dummy", "chance": "at chance", "mixed": "undecided", "few": "not scored"}
    text = "\n".join(correctness_findings(scores, accuracy, models=models, folds=10, baseline=None))
    assert "Not scored" in text and "**at ceiling**" in text and "**at chance**" in text
    with pytest.raises(ElensError, match="'nope' has no accuracy"):
        correctness_outcomes(scores, accuracy, models=["nope"])


def test_knn_verdict_calls_a_wide_fold_spread_no_evidence_not_chance():
    from elens_utils.analysis.comparison import knn_verdict

    assert knn_verdict(0.52, 0.05, 0.5, 0.6) == "at chance"  # near 0.5, folds agree
    assert knn_verdict(0.669, 0.188, 0.5, 0.28) == "no evidence"  # within 1 sd of 0.5, but the sd is wide
    assert knn_verdict(0.55, 0.12, 0.5, 0.5, chance_sd=0.15) == "at chance"


def test_a_model_with_no_wrong_answer_is_not_scored_without_advice_to_score_more():
    import pandas as pd

    from elens_utils.analysis.comparison import correctness_findings

    scores = pd.DataFrame([dict(model="m", n_layers=8, features="mean", n=400, n_correct=400, status="too few",
                                auc_mean=float("nan"), auc_std=float("nan"), dummy_auc_mean=float("nan"), p_value=float("nan"))])  # fmt: skip
    accuracy = pd.DataFrame([dict(model="m", accuracy=1.0, n_correct=400, n=400, chance=0.25)])
    (line, _) = correctness_findings(scores, accuracy, models=["m"], baseline=None)
    assert "**Not scored**: no wrong answer, so there is nothing to tell apart." in line and "needs at least" not in line


def test_guessing_models_are_those_not_above_chance():
    import pandas as pd

    from elens_utils.analysis.comparison import guessing_models

    acc = pd.DataFrame({"model": ["sure", "guess", "low"], "n_correct": [300, 110, 60], "n": [400, 400, 400],
                        "chance": [0.25, 0.25, 0.25]})  # fmt: skip
    # 300/400: interval far above 25%; 110/400 = 27.5%: its interval reaches below 25%; 60/400: below
    assert guessing_models(acc, ["sure", "guess", "low"]) == ["guess", "low"]
    assert guessing_models(acc, ["sure"]) == [] and guessing_models(acc, []) == []
    with pytest.raises(ElensError, match="no accuracy"):
        guessing_models(acc, ["absent"])


def test_the_papers_claim_is_set_out_once_for_a_second_group():
    from elens_utils.analysis.correctness_report import correctness_findings as findings

    scores = pd.DataFrame([
        {"model": "real/a", "n_layers": 2, "features": f, "n": 100, "n_correct": 60, "status": "ok", "note": "",
         "auc_mean": 0.5, "auc_std": 0.05, "dummy_auc_mean": 0.5, "p_value": 0.9}
        for f in ("mean", "answer")
    ])
    accuracy = pd.DataFrame({"model": ["real/a"], "accuracy": [0.6], "n_correct": [60], "n": [100], "chance": [0.25]})
    full = findings(scores, accuracy, baseline=None)[-1]
    short = findings(scores, accuracy, baseline=None, preamble=False)[-1]
    assert full.startswith("- **Beside the paper**: its earlier version (v1/v2) claimed")
    assert short.startswith("- **Beside the paper** (its claim as set out above): Here `real/a` is at chance")
    assert full.endswith(short.split(": ", 1)[1])  # the same count, without the claim again
