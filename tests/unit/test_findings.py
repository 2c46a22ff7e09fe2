"""The chapters' closing findings (elens_utils.findings and the appendices' findings), on
hand-made results whose verdicts are known: every branch a chapter's headline can take."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from elens_utils.analysis import knn_tables
from elens_utils.analysis.classify import CVResult
from elens_utils.bench.report import bench_findings
from elens_utils.findings import (
    Findings,
    base,
    correctness,
    families,
    output_format,
    profile,
    robustness,
    skipping,
    task_type,
)
from elens_utils.zoo.report import card_findings

ZOO = ["zoo/gpt2-2L", "zoo/gpt2-4L", "zoo/llama-2L", "zoo/llama-4L"]
RANDOM = ["tiny/gpt2-2L", "tiny/llama-2L"]


def _frame(dataset: str, **columns) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame.attrs["dataset"] = dataset
    return frame


def _cv(aucs, dummy=0.5, p=1e-4) -> CVResult:
    aucs = np.asarray(aucs, dtype=float)
    n = len(aucs)
    return CVResult(
        classes=("a", "b"), k=3, folds=n, seed=42, scale=False, n_samples=10 * n, n_features=4, auc=aucs,
        accuracy=np.full(n, 0.8), dummy_auc=np.full(n, dummy), dummy_accuracy=np.full(n, 0.3), t_statistic=5.0, p_value=p,
    )


# --- the count of verdicts -------------------------------------------------------------------

def test_tally_puts_a_note_right_after_the_count_it_qualifies():
    verdicts = ["b", "a", "b", "c"]
    assert base.tally(verdicts, order=["a", "b"]) == "1 a, 2 b, 1 c"
    assert base.tally(verdicts, order=["a", "b"], notes={"b": "1 of them lucky"}) == "1 a, 2 b (1 of them lucky), 1 c"
    assert base.tally(verdicts, notes={"z": "absent"}) == "2 b, 1 a, 1 c"  # a note without its verdict is dropped
    assert base.tally([], notes={"a": "x"}) == "none"


def test_random_models_are_those_of_tiny_and_untrained_only():
    assert base.is_random(["tiny/gpt2-2L", "untrained/llama-4L"])
    assert not base.is_random(["tiny/gpt2-2L", "zoo/llama-4L"])
    assert base.is_zoo(ZOO) and not base.is_zoo([*ZOO, "real/a"])
    assert Findings(["- a", "- b"]).markdown() == "- a\n- b"


# --- chapter 1 ---------------------------------------------------------------------------------

def _curve(entropies):
    steps = np.diff(entropies, prepend=np.nan)
    return pd.DataFrame({
        "layer": np.arange(1, len(entropies) + 1), "alpha": 1.0, "entropy": entropies,
        "phase": ["" if math.isnan(d) else "expansion" if d > 0 else "pruning" for d in steps],
    })


@pytest.mark.parametrize(
    ("gap", "verdict"), [(0.1, "profiles overlap"), (0.4, "profiles partly overlap"), (0.9, "profiles do not overlap")]
)
def test_chapter_1_says_whether_profiles_overlap_by_the_ratio_rule(gap, verdict):
    found = profile.findings(
        curve=_curve([5.0, 6.0, 4.0, 3.0]), example_model=ZOO[0], log_v=7.0, models=ZOO, n_samples=4,
        max_new_tokens=2, overlap={"gap": gap, "spread": 1.0},
    )
    assert found.verdict == verdict
    assert f"differ by {gap:.0%} of a profile's spread" in found.detail
    assert "1 of the 3 block-to-block steps expand and 2 prune" in found.lines[0]
    assert not any("Quantization" in line for line in found.lines)  # no real models


def test_chapter_1_on_random_models_or_one_model_tests_nothing():
    kw = dict(curve=_curve([5.0, 4.0]), log_v=7.0, n_samples=4, max_new_tokens=2, overlap={"gap": 0.1, "spread": 1.0})
    found = profile.findings(example_model=RANDOM[0], models=RANDOM, **kw)
    assert found.verdict == "not tested" and any("These models are random" in line for line in found.lines)
    one = profile.findings(example_model=ZOO[0], models=ZOO[:1], **{**kw, "overlap": {"gap": math.nan, "spread": 1.0}})
    assert one.verdict == "nothing to compare" and "with one model there is nothing to compare" in one.markdown()


# --- chapter 2 ---------------------------------------------------------------------------------

def _rescaling(cv_auc, held):
    rows = [{"depth": "interpolate", "test": "all sizes (CV)", "factor": "cv", "status": "ok", "auc": cv_auc, "note": ""}]
    rows += [{"depth": "interpolate", "test": f"held out: {name}", "factor": "size", "status": "ok", "auc": a, "note": ""}
             for name, a in held.items()]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("held", "words"),
    [({"2L": 0.95, "4L": 0.97}, "above 0.9"), ({"2L": 0.6, "4L": 0.95}, "partly below 0.9"), ({"2L": 0.6, "4L": 0.7}, "below 0.9")],
)
def test_chapter_2_verdict_adds_the_held_out_sizes_against_0_9(held, words):
    meta = pd.DataFrame({"model": ZOO, "n_layers": [2, 4, 2, 4]})
    found = families.findings(
        cv=_cv([1.0, 1.0, 1.0]), rescaling=_rescaling(1.0, held), family=["gpt2", "gpt2", "llama", "llama"], meta=meta,
        models=ZOO, n_samples=4, max_new_tokens=2, temperature=0.7, k=3, folds=3,
    )
    assert found.verdict == f"at ceiling in cross-validation; {words} on a held-out size"
    assert "That is above the paper's 0.9." in found.lines[1]
    assert any("These are the project's zoo models" in line for line in found.lines)


def test_chapter_2_on_random_models_is_not_tested():
    found = families.findings(
        cv=_cv([0.95, 0.97, 0.96]), rescaling=_rescaling(0.96, {"2L": 0.9}), family=["gpt2", "llama"],
        meta=pd.DataFrame({"model": RANDOM, "n_layers": [2, 2]}), models=RANDOM, n_samples=4, max_new_tokens=2,
        temperature=0.7, k=3, folds=3,
    )
    assert found.verdict == "not tested" and found.detail.endswith("(random models: the machinery only)")


# --- chapters 3 and 4: kNN per model ------------------------------------------------------------

def _knn_rows(aucs: dict[str, float], **extra) -> pd.DataFrame:
    return pd.DataFrame([
        {"model": m, "n_layers": 2 + 2 * (i % 2), "k": 3, "auc_mean": a, "auc_std": 0.01, "dummy_auc_mean": 0.5,
         "accuracy_mean": 0.7, "p_value": 1e-5, **extra}
        for i, (m, a) in enumerate(aucs.items())
    ])


def test_chapter_3_counts_each_models_knn_verdict():
    overall = _knn_rows({ZOO[0]: 1.0, ZOO[1]: 0.95, ZOO[2]: 0.7, ZOO[3]: 0.5}, subset=knn_tables.ALL_SUBSET)
    overall.loc[3, "p_value"] = 0.8
    variant = _knn_rows({m: 0.6 for m in ZOO}, subset="base")
    by_task = pd.DataFrame({"model": ZOO * 2, "centered": [0.1, -0.2, 0.3, 0.05] * 2, "sd": 0.5})
    prompts = _frame("the story world", story_id=[0, 0, 1, 1])
    found = task_type.findings(
        summary=pd.concat([overall, variant], ignore_index=True), by_task=by_task, prompts=prompts, source="synthetic",
        models=ZOO, max_new_tokens=2, temperature=1.0, k=3, folds=3,
    )
    assert found.verdict == "1 at ceiling, 1 above 0.9, 1 above chance but below 0.9, 1 at chance"
    assert "over 4 models" in found.detail and "real models" not in found.detail
    assert "2 of 4 reach the paper's 0.9" in found.lines[1]
    assert "kNN with k = 3, 3-fold" in found.lines[0]  # "(used: ...)" only when another k was used
    assert "3 of 4 models beat the dummy" in found.lines[1] and f"`{ZOO[0]}`" in found.lines[1]  # some: named
    assert "this run partly agrees with that (2 of 4 models above 0.9)" in found.markdown()


def test_chapter_4_headline_is_read_at_the_k_nearest_k_alpha():
    rows = pd.concat([_knn_rows({m: 0.95 for m in ZOO}).assign(k=3), _knn_rows({m: 0.6 for m in ZOO}).assign(k=7)], ignore_index=True)
    rows["features"] = "all"
    by_alpha = pd.concat([rows[rows["k"] == 3].assign(features=f) for f in ("1", "all")], ignore_index=True)
    comparison = pd.DataFrame(columns=["group", "model"])
    found = output_format.findings(
        paper_rows=rows, by_alpha=by_alpha, comparison=comparison, prompts=_frame("formats", topic=["a", "a", "a"]),
        source="synthetic", models=ZOO, max_new_tokens=8, windows=2, alphas=[1.0], ks=[3, 7], k_alpha=6, folds=3,
    )
    assert found.verdict == "4 above chance but below 0.9" and "(k = 7)" in found.detail
    found_3 = output_format.findings(
        paper_rows=rows, by_alpha=by_alpha, comparison=comparison, prompts=_frame("formats", topic=["a", "a", "a"]),
        source="synthetic", models=ZOO, max_new_tokens=8, windows=2, alphas=[1.0], ks=[3, 7], k_alpha=4, folds=3,
    )
    assert found_3.verdict == "4 above 0.9"
    assert "4 of 4 reach the paper's 0.9 at some k" in found_3.lines[1]


# --- chapter 5 ---------------------------------------------------------------------------------

def _skip_results(acc: dict[str, tuple[float, float, float]], n=400) -> pd.DataFrame:
    rows = []
    for m, (b, e, p) in acc.items():
        rows.append({"model": m, "strategy": "baseline", "k": 0, "accuracy": b, "chance": 0.25, "n_questions": n, "blocks_text": ""})
        rows.append({"model": m, "strategy": "expansion", "k": 1, "accuracy": e, "chance": 0.25, "n_questions": n, "blocks_text": "2"})
        rows.append({"model": m, "strategy": "pruning", "k": 1, "accuracy": p, "chance": 0.25, "n_questions": n, "blocks_text": "1"})
    return pd.DataFrame(rows)


def test_chapter_5_counts_clear_gaps_and_names_the_models_at_chance():
    from elens_utils.analysis import expansion

    results = _skip_results({ZOO[0]: (0.9, 0.3, 0.85), ZOO[2]: (0.9, 0.8, 0.3), ZOO[1]: (0.26, 0.25, 0.26)})
    summary = expansion.skip_summary(results)
    ranks = pd.DataFrame({"model": [ZOO[0]] * 2, "block": [1, 2], "mean_dH": [0.5, -0.5]})
    candidates = pd.DataFrame({"model": ZOO[:2], "rho": [0.8, math.nan], "sign_agreement": [0.9, 0.9], "mean_jaccard": [0.5, 0.5]})
    found = skipping.findings(
        candidates=candidates, reported_rho=(0.74, 0.88), results=results, summary=summary,
        side_by_side=expansion.skip_comparison(summary), ranks=ranks, questions=_frame("the story world"), n_scored=400,
        n_ranking=64, source="synthetic", models=[ZOO[0], ZOO[2], ZOO[1]], top_p=0.6, max_new_tokens=2, ks=[1],
        where="at the answer position",
    )
    text = found.markdown()
    assert "1 of 1 models fall inside" in text and f"For {ZOO[1]} the set size never changed" in text
    assert "2 of the gaps exceed two standard errors: 1 with the expansion blocks more critical, 1 with the pruning" in text
    assert f"`{ZOO[1]}` answers at chance even without skipping" in text
    verdicts = expansion.skip_comparison(summary).set_index("model")["verdict"]
    assert found.verdict == base.tally(verdicts, order=expansion.SKIP_VERDICTS)
    assert found.detail.startswith("3 (model, k) cases of 3 models")


# --- chapter 6 ---------------------------------------------------------------------------------

def test_chapter_6_says_how_many_models_above_the_dummy_answer_at_chance():
    accuracy = pd.DataFrame({"model": ["a", "b", "c"], "accuracy": [0.26, 0.8, 0.3], "n_correct": [104, 320, 120],
                             "n": 400, "chance": 0.25})
    outcomes = {"a": "beats the dummy", "b": "beats the dummy", "c": "at chance"}
    assert correctness.outcome_tally(outcomes, accuracy) == "2 above the dummy (1 of them answering at chance), 1 at chance"
    assert correctness.outcome_tally({"b": "beats the dummy", "c": "undecided"}, accuracy) == "1 above the dummy, 1 undecided"


def test_chapter_6_findings_count_the_outcomes_of_the_scored_models():
    models = ZOO[:2]
    scores = pd.DataFrame([
        {"model": m, "n_layers": 2, "features": f, "n": 400, "n_correct": 300, "status": "ok", "note": "",
         "auc_mean": a, "auc_std": 0.02, "dummy_auc_mean": 0.5, "p_value": p}
        for m, a, p in ((models[0], 0.8, 1e-6), (models[1], 0.5, 0.9)) for f in ("mean", "answer")
    ])
    per_model = pd.DataFrame({"model": models, "accuracy": 0.75, "n_correct": 300, "n": 400, "chance": 0.25})
    found = correctness.findings(
        scores=scores, per_model=per_model, questions=_frame("the story world", q=range(400)), source="synthetic",
        models=models, max_new_tokens=2, k=3, folds=3,
    )
    assert found.verdict == "1 above the dummy, 1 at chance"
    assert found.detail == "2 models, accuracy 75%"


# --- chapter 7 ---------------------------------------------------------------------------------

FACTORS = ["CV seed", "k", "aggregation", "entropy order", "depth alignment", "scaling", "generation seed"]


def _sweep(low: dict[str, float]) -> pd.DataFrame:
    rows = [{"factor": "baseline", "setting": "baseline", "auc_mean": 0.97, "baseline": True}]
    for f in FACTORS:
        rows.append({"factor": f, "setting": f"{f} = base", "auc_mean": 0.97, "baseline": True})
        rows.append({"factor": f, "setting": f"{f} = other", "auc_mean": low.get(f, 0.95), "baseline": False})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("low", "verdict"),
    [({}, "stays above 0.9"), ({"k": 0.8}, "falls below 0.9 under k"), ({"scaling": 0.5, "k": 0.8}, "falls below 0.9 under k, scaling")],
)
def test_chapter_7_verdict_names_the_choices_that_cross_0_9(low, verdict):
    transfer = pd.DataFrame([
        {"model": ZOO[0], "factor": "cv", "status": "ok", "auc": 0.9},
        {"model": ZOO[0], "factor": "phrasing", "status": "ok", "auc": 0.7},
        {"model": ZOO[0], "factor": "variant", "status": "ok", "auc": 0.85},
    ])
    found = robustness.findings(
        baseline=_cv([0.96, 0.98]), sweep=_sweep(low), p_perm=0.005, null=np.array([0.4, 0.6]),
        transfer=transfer, prompts=_frame("the story world", p=[1, 2]), source="synthetic", models=ZOO,
        task_models=ZOO[:1], n_profiles=8, max_new_tokens=2, temperature=0.7,
    )
    assert found.verdict == verdict
    assert found.detail.startswith("family AUC 0.97; 7 settings changed one at a time")  # the baseline's repeats do not count
    assert "lowers the task AUC by 0.200 on average" in found.markdown()
    assert robustness.setting_span(_sweep(low), "k") == (
        f"{min(low.get('k', 0.95), 0.97):.3f} (k = {'other' if low.get('k', 0.95) < 0.97 else 'base'}) to 0.970 (k = base)"
    )


# --- the appendices ------------------------------------------------------------------------------

def test_zoo_card_findings_name_the_families_below_the_target():
    models = pd.DataFrame({
        "name": ["a-2L", "a-4L", "b-4L"], "family": ["a", "a", "b"], "n_layers": [2, 4, 4],
        "mc_accuracy": [0.5, 0.9, 0.6], "lookup_accuracy": [0.5, 0.9, 0.26], "task_accuracy": [0.5, 0.9, 0.9],
        "train_minutes": [1.0, 2.0, 3.0],
    })
    card = {"total_size_bytes": 2**20, "models": [{"mc_n": 400}]}
    lines = card_findings(card, models)
    assert lines[0].startswith("- **3 models**, 1.0 MiB of weights in all, trained for 6 minutes")
    assert lines[2].endswith("missed by b-4L.")
    assert len(lines) == 3  # b-4L reads its story (task 90%) but its MC is 60%, above chance: no read-out line


def test_bench_findings_without_a_gpu_say_so_and_list_the_targets():
    res = {"targets": {"x": {"met": True, "value": 1.5, "target": "<= 2"}, "y": {"met": None, "value": None, "target": ">= 3"}},
           "rows": [], "machine": {"device": "cpu"}}
    lines = bench_findings(res)
    assert lines[-1].startswith("- **GPU**: not measured: no GPU was available for this run (device `cpu`)")
    assert any(line.startswith("- **Targets**: met: `x` = ") and "none missed; not measured in this run: `y`" in line for line in lines)


@pytest.mark.parametrize("zoo", [ZOO[:1], RANDOM[:1]])
def test_chapter_6_sets_out_the_papers_claim_once(zoo):
    def scored(model, auc):
        return [{"model": model, "n_layers": 2, "features": f, "n": 400, "n_correct": 300, "status": "ok", "note": "",
                 "auc_mean": auc, "auc_std": 0.02, "dummy_auc_mean": 0.5, "p_value": 1e-6} for f in ("mean", "answer")]

    def accuracy(model):
        return pd.DataFrame({"model": [model], "accuracy": [0.75], "n_correct": [300], "n": [400], "chance": [0.25]})

    real = "real/a"
    found = correctness.findings(
        scores=pd.DataFrame(scored(zoo[0], 0.8)), per_model=accuracy(zoo[0]), questions=_frame("the story world", q=range(400)),
        source="synthetic", models=zoo, max_new_tokens=2, k=3, folds=3, real_models=[real],
        real_scores=pd.DataFrame(scored(real, 0.8)), real_per_model=accuracy(real),
        real_questions=_frame("facts", q=range(400)), real_source="facts", real_scoring="cloze", real_max_new_tokens=2,
    )
    text = found.markdown()
    assert text.count("its earlier version (v1/v2) claimed") == 1
    assert ("(its claim as set out above)" in text) == (zoo == ZOO[:1])  # random models write no line above

