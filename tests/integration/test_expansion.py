"""expansion: the top-p check and the skipping sweep over several models, against plain loops."""

import math

import numpy as np
import pandas as pd
import pytest
from helpers import make_profiles, untrained_models
from scipy.stats import spearmanr

from elens_utils import ElensError, load_model
from elens_utils.analysis.candidates import candidate_set_sizes
from elens_utils.analysis.expansion import (
    block_ranking,
    candidate_check,
    first_tokens,
    loaded_models,
    skip_summary,
    skip_sweep,
)
from elens_utils.analysis.interventions import rank_blocks, skip_experiment
from elens_utils.data import prompts as data


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two untrained zoo models (story-world tokenizer) of different depth, as path names."""
    return untrained_models(tmp_path_factory.mktemp("untrained"), ("gpt2", 3), ("llama", 2))


@pytest.fixture(scope="module")
def questions():
    return data.multiple_choice("synthetic", 20)


@pytest.fixture(scope="module")
def ranking(models, questions):
    prompts = questions["prompt"].tolist()[12:]
    return prompts, [
        load_model(m).profile(prompts, max_new_tokens=3, progress=False) for m in models
    ]


def test_first_tokens():
    h = np.random.default_rng(0).random((3, 4, 5, 1)).astype(np.float32)
    p = make_profiles(h)
    cut = first_tokens(p, 2)
    assert cut.entropy.shape == (3, 2, 5, 1)
    np.testing.assert_array_equal(cut.entropy, h[:, :2])
    pd.testing.assert_frame_equal(cut.meta, p.meta)
    for bad in (0, 5, 1.0, True):
        with pytest.raises(ElensError):
            first_tokens(p, bad)
    with pytest.raises(ElensError, match="Profiles"):
        first_tokens(h, 1)


def test_answer_position_is_generation_step_one(models, ranking):
    """rank_tokens=1 ranks on the step-1 lens: the same as profiles generated with one token."""
    prompts, profs = ranking
    one = load_model(models[0]).profile(prompts, max_new_tokens=1, progress=False)
    np.testing.assert_allclose(
        first_tokens(profs[0], 1).entropy, one.entropy, atol=1e-5
    )


def test_loaded_models(models):
    names = [lm.name for lm in loaded_models(models)]
    assert names == models
    with pytest.raises(ElensError, match="list"):
        next(loaded_models(models[0]))


def test_candidate_check_against_loops(models, ranking):
    prompts, profs = ranking
    check = candidate_check(models, prompts, profs, p=0.6, batch_size=4, progress=False)
    assert check.p == 0.6
    assert check.summary["model"].tolist() == models
    assert check.transitions.groupby("model", sort=False).size().tolist() == [2, 1]
    for model, prof in zip(models, profs):
        sets = candidate_set_sizes(
            load_model(model),
            prompts,
            p=0.6,
            profiles=prof,
            batch_size=1,
            progress=False,
        )
        n, t, n_layers = sets.sizes.shape
        h = prof.select(1.0).astype(np.float64)
        pairs, agree, moved = [], 0, 0
        for i in range(n):
            for s in range(t):
                for layer in range(1, n_layers):
                    dh = h[i, s, layer] - h[i, s, layer - 1]
                    ds = float(sets.sizes[i, s, layer] - sets.sizes[i, s, layer - 1])
                    pairs.append((dh, ds))
                    if ds != 0:
                        moved += 1
                        agree += (dh > 0) == (ds > 0) and dh != 0
        x, y = np.array(pairs).T
        row = check.summary[check.summary["model"] == model].iloc[0]
        assert row["n_layers"] == n_layers and row["n_pairs"] == len(pairs)
        assert row["rho"] == pytest.approx(spearmanr(x, y).statistic, abs=1e-9)
        assert row["sign_agreement"] == pytest.approx(agree / moved)
        assert row["mean_jaccard"] == pytest.approx(sets.jaccard.mean())
        assert row["mean_size"] == pytest.approx(sets.sizes.mean())
        trans = check.transitions[check.transitions["model"] == model]
        for r in trans.itertuples():
            b = r.block
            assert (
                r.transition == f"{b - 1}->{b}"
                and r.depth == b / n_layers
                and r.n == n * t
            )
            assert r.dH == pytest.approx(
                np.mean(
                    [
                        h[i, s, b - 1] - h[i, s, b - 2]
                        for i in range(n)
                        for s in range(t)
                    ]
                )
            )
            assert r.d_size == pytest.approx(
                np.mean(sets.sizes[..., b - 1] - sets.sizes[..., b - 2])
            )
            assert r.size == pytest.approx(sets.sizes[..., b - 1].mean())
            assert r.jaccard == pytest.approx(sets.jaccard[..., b - 2].mean())


def test_candidate_check_wants_profiles_in_model_order(models, ranking):
    prompts, profs = ranking
    with pytest.raises(ElensError, match="in the order of the models"):
        candidate_check(models, prompts, profs[::-1], progress=False)
    with pytest.raises(ElensError, match="one Profiles per model"):
        candidate_check(models, prompts, profs[:1], progress=False)


def test_block_ranking(ranking):
    _, profs = ranking
    table = block_ranking(profs, rank_tokens=2)
    for prof in profs:
        model = prof.meta["model"].iloc[0]
        mine = (
            table[table["model"] == model]
            .drop(columns=["model", "n_layers", "depth"])
            .reset_index(drop=True)
        )
        ref = rank_blocks(first_tokens(prof, 2))
        pd.testing.assert_frame_equal(mine, ref)
        assert (
            table.loc[table["model"] == model, "depth"]
            == ref["block"].to_numpy() / prof.n_layers
        ).all()
        # by hand: the mean over prompts and the first two tokens of H_l - H_(l-1)
        h = prof.select(1.0)[:, :2].astype(np.float64)
        for r in ref.itertuples():
            assert r.mean_dH == pytest.approx(
                (h[:, :, r.block - 1] - h[:, :, r.block - 2]).mean()
            )


def test_skip_sweep_matches_skip_experiment(models, questions, ranking):
    _, profs = ranking
    scored = questions.iloc[:12].reset_index(drop=True)
    res = skip_sweep(
        models,
        scored,
        profs,
        ks=[1, 2],
        n_random_seeds=2,
        rank_tokens=1,
        seed=3,
        batch_size=4,
        progress=False,
    )
    assert res["model"].unique().tolist() == models
    for model, prof in zip(models, profs):
        lm = load_model(model)
        ks = [1, 2] if lm.n_layers == 3 else [1]  # a 2-block model has one ranked block
        ref = skip_experiment(
            lm,
            scored,
            first_tokens(prof, 1),
            ks,
            2,
            seed=3,
            answer_col="answer",
            progress=False,
        )
        mine = res[res["model"] == model].reset_index(drop=True)
        assert (mine["n_layers"] == lm.n_layers).all()
        assert mine["ks_dropped"].iloc[0] == ([] if lm.n_layers == 3 else [2])
        assert mine["blocks_text"].tolist() == [
            ", ".join(map(str, b)) or "none" for b in ref["blocks"]
        ]
        pd.testing.assert_frame_equal(mine[ref.columns].reset_index(drop=True), ref)


def _fake_results() -> pd.DataFrame:
    rows = [
        ("m", "baseline", 0, None, 0.5, []),
        ("m", "expansion", 1, None, 0.25, [3]),
        ("m", "pruning", 1, None, 0.4, [2]),
        ("m", "random", 1, 7, 0.3, [2]),
        ("m", "random", 1, 8, 0.5, [4]),
        ("m", "expansion", 2, None, 0.3, [3, 4]),
        ("m", "pruning", 2, None, 0.3, [2, 4]),
        ("n", "baseline", 0, None, 0.25, []),
        ("n", "expansion", 1, None, 0.5, [2]),
        ("n", "pruning", 1, None, 0.25, [2]),
    ]
    frame = pd.DataFrame(
        rows, columns=["model", "strategy", "k", "seed", "accuracy", "blocks"]
    )
    frame["n_questions"] = 100
    frame["n_correct"] = (frame["accuracy"] * 100).astype(int)
    frame["chance"] = 0.25
    frame["blocks_text"] = [", ".join(map(str, b)) or "none" for b in frame["blocks"]]
    return frame


def test_skip_summary():
    out = skip_summary(_fake_results())
    assert out[["model", "k"]].values.tolist() == [["m", 1], ["m", 2], ["n", 1]]
    first = out.iloc[0]
    assert (first["baseline"], first["expansion"], first["pruning"]) == (0.5, 0.25, 0.4)
    assert (first["random_mean"], first["random_min"], first["random_max"]) == (
        pytest.approx(0.4),
        0.3,
        0.5,
    )
    assert first["se"] == pytest.approx(math.sqrt(0.5 * 0.5 / 100))
    assert first["expansion_blocks"] == "3" and first["pruning_blocks"] == "2"
    assert out["more_critical"].tolist() == ["expansion", "tie", "pruning"]
    # gaps 0.15 (se_gap 0.065), 0, 0.25: beyond two standard errors of the gap for the first and last
    assert first["se_gap"] == pytest.approx(math.sqrt(0.25 * 0.75 / 100 + 0.4 * 0.6 / 100))
    assert out["clear"].tolist() == [True, False, True]
    assert math.isnan(out.iloc[1]["random_mean"])
    with pytest.raises(ElensError, match="lacks"):
        skip_summary(_fake_results().drop(columns="chance"))
    with pytest.raises(ElensError, match="baseline"):
        skip_summary(_fake_results().iloc[1:])


@pytest.mark.parametrize(
    "baseline, expansion, pruning, n, verdict",
    [
        (0.29, 0.10, 0.28, 400, "at chance without skipping"),  # 0.29 <= 0.25 + 2 * 0.0227
        (0.62, 0.30, 0.58, 200, "expansion more critical"),
        (0.62, 0.58, 0.30, 200, "pruning more critical"),
        (0.62, 0.55, 0.60, 200, "no clear difference"),  # gap 0.05 < 2 se_gap = 0.099
        # a baseline at 100% has se 0, yet one question's difference is no evidence
        (1.0, 0.995, 1.0, 200, "no clear difference"),  # gap 0.005 < 2 se_gap = 0.010
    ],
)
def test_skip_verdict_rules(baseline, expansion, pruning, n, verdict):
    from elens_utils.analysis.expansion import skip_verdict

    assert skip_verdict(baseline, 0.25, expansion, pruning, n) == verdict


def test_skip_comparison_and_findings_put_real_models_first():
    import pandas as pd

    from elens_utils.analysis.expansion import skip_comparison, skip_findings

    summary = pd.DataFrame(
        {
            "model": ["zoo/llama-8L", "real/gemma3-270m", "real/gemma3-270m"],
            "k": [1, 1, 2],
            "baseline": [0.9, 0.7, 0.7],
            "expansion": [0.5, 0.69, 0.30],
            "pruning": [0.8, 0.68, 0.65],
            "random_mean": [0.85, 0.7, 0.6],
            "chance": [0.25] * 3,
            "n_questions": [100, 128, 128],
            "se": [0.03, 0.0405, 0.0405],
        }
    )
    table = skip_comparison(summary)
    assert list(table.columns[:3]) == ["group", "model", "verdict"]  # the verdict shows on a narrow page
    assert table["model"].tolist() == ["real/gemma3-270m", "real/gemma3-270m", "zoo/llama-8L"]
    assert table["verdict"].tolist() == ["no clear difference", "expansion more critical", "expansion more critical"]
    lines = skip_findings(table)
    assert lines[0].startswith("- **real/gemma3-270m** (128 questions): k = 1: no skip 70%")
    assert "1 expansion more critical, 1 no clear difference" in lines[2]
    assert table["2 se"].iloc[2] == pytest.approx(2 * math.sqrt(0.5 * 0.5 / 100 + 0.8 * 0.2 / 100))
    with pytest.raises(ElensError, match="lacks"):
        skip_comparison(summary.drop(columns="pruning"))


def test_expansion_sign_findings_says_when_expansion_means_prunes_least():
    import pandas as pd

    from elens_utils.analysis.expansion import expansion_sign_findings

    ranks = pd.DataFrame(
        {
            "model": ["a"] * 3 + ["b"] * 3,
            "block": [2, 3, 4] * 2,
            "mean_dH": [-0.5, -0.2, -0.1, 0.4, -0.3, 0.2],  # a: no block expands; b: two do, one prunes
        }
    )
    line = expansion_sign_findings(ranks, [1, 2, 3])
    assert line.startswith("- **What the sets are**: blocks that expand / prune, per model: `a` 0/3, `b` 2/1.")
    assert "in 4 of 6 (model, k) cases the expansion set holds blocks that do not expand (their mean dH is at most 0)" in line
    assert "in 2 of 6 (model, k) cases the pruning set holds blocks that do not prune (their mean dH is at least 0)" in line
    assert '"expansion" there means the blocks that prune least' in line
    assert expansion_sign_findings(ranks[ranks["model"] == "b"], [1]) is None  # k = 1: both of b's sets are genuine
    with pytest.raises(ElensError, match="block_ranking"):
        expansion_sign_findings(ranks.drop(columns="mean_dH"), [1])


def test_skip_family_findings_splits_the_verdicts():
    import pandas as pd

    from elens_utils.analysis.expansion import skip_family_findings

    table = pd.DataFrame(
        {
            "model": ["zoo/llama-4L", "zoo/llama-8L", "zoo/gemma2-4L", "zoo/gemma2-8L"],
            "verdict": ["expansion more critical", "expansion more critical", "pruning more critical", "no clear difference"],
        }
    )
    assert skip_family_findings(table) == (
        "- **By family** (cases of a model and a k): zoo/llama: 2 expansion more critical; "
        "zoo/gemma2: 1 pruning more critical, 1 no clear difference."
    )
    assert skip_family_findings(table.iloc[:2]) is None
