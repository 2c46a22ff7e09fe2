"""The side-by-side tables of real models, zoo and paper, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import make_profiles

from elens_utils import ElensError
from elens_utils.comparison import blank_prompt_comparison, model_group


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


def test_vocab_sizes_from_config(tiny_model_dirs):
    from elens_utils import load_model
    from elens_utils.comparison import unembedding_rows

    for arch in ("qwen3", "gpt2"):  # qwen3's unembedding has more rows than its tokenizer
        assert unembedding_rows(str(tiny_model_dirs[arch])) == load_model(tiny_model_dirs[arch]).parts.vocab_size
    name = str(tiny_model_dirs["qwen3"])
    table = blank_prompt_comparison([make_profiles(np.ones((1, 2, 3, 1)), name)])
    assert table["log V"].iloc[0] == pytest.approx(math.log(unembedding_rows(name)))


def test_blank_prompt_comparison_bad_input():
    with pytest.raises(ElensError, match="at least one"):
        blank_prompt_comparison([], {})
    with pytest.raises(ElensError, match="no vocabulary size"):
        blank_prompt_comparison([make_profiles(np.ones((1, 1, 2, 1)), "zoo/x-2L")], {})


def test_quantization_caveat_quotes_the_measured_file(tmp_path):
    import json

    from elens_utils.comparison import QUANTIZATION_RESULTS, quantization_caveat

    text = quantization_caveat()
    run = next(r for r in json.loads(QUANTIZATION_RESULTS.read_text())["runs"] if r["experiment"] == "family" and r["qtype"] == "Q4_1")
    assert f"{run['summary']['token_dh_mean']:.3f} nats" in text
    auc = {row["weights"]: row["auc_mean"] for row in run["knn"]}
    assert f"from {auc['float']:.3f} to {auc['quantized']:.3f}" in text
    with pytest.raises(ElensError, match="quantization_zoo.py"):
        quantization_caveat(tmp_path / "none.json")
    with pytest.raises(ElensError, match="no family run of Q2_K"):
        quantization_caveat(qtype="Q2_K")


def test_blank_prompt_findings():
    from elens_utils.comparison import blank_prompt_findings

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
    from elens_utils.classify import knn_cv
    from elens_utils.comparison import family_comparison

    rng = np.random.default_rng(0)
    fam = np.repeat(["a", "b", "c"], 20)
    models = np.repeat(["a-1", "b-1", "c-1"], 20)
    x = rng.normal(size=(60, 4)) + (fam == "a")[:, None] * 3.0
    cv = knn_cv(x, fam, k=5, folds=5)
    table = family_comparison({"all": (cv, fam, models)}, paper="AUC above 0.9 (headline)")
    row = table.iloc[0]
    assert row["families"] == "a, b, c" and row["n models"] == 3 and row["samples"] == 60
    assert row["AUC"] == pytest.approx(cv.auc_mean) and row["dummy AUC"] == pytest.approx(cv.dummy_auc_mean)
    assert row["above 0.9"] == (cv.auc_mean > 0.9)
    assert table.iloc[1]["models"] == "paper" and np.isnan(table.iloc[1]["AUC"])


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
    from elens_utils.comparison import knn_verdict

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

    from elens_utils.comparison import knn_comparison, knn_findings

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
        "verdicts: 1 above chance but below 0.9, 1 at chance); the zoo models agree with it (2 of 2 above 0.9; "
        "verdicts: 1 at ceiling, 1 above 0.9)."
    )
    # zoo alone: no real lines, no real-against-zoo line; a mixed group "partly agrees"
    zoo_only = knn_comparison(summary.iloc[:2].assign(auc_mean=[0.8, 0.95]))
    (line,) = knn_findings(zoo_only)
    assert line.endswith("The zoo models partly agree with it (1 of 2 above 0.9; verdicts: 1 above 0.9, 1 above chance but below 0.9).")
    assert knn_findings(knn_comparison(summary.assign(model="tiny/gpt2-2L").iloc[:1])) == []
    one = knn_findings(knn_comparison(summary.iloc[[2]]))  # one real model, no zoo
    assert len(one) == 2 and one[1].endswith("The real model falls short of it (0 of 1 above 0.9; verdicts: 1 above chance but below 0.9).")
    one_zoo = knn_findings(knn_comparison(summary.iloc[[1]]))
    assert one_zoo[0].endswith("The zoo model agrees with it (1 of 1 above 0.9; verdicts: 1 at ceiling).")


def test_knn_comparison_bad_input():
    from elens_utils.comparison import knn_comparison

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

    from elens_utils.comparison import transfer_findings

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
