"""bench_report: the performance appendix's frames and charts, from a real (tiny) benchmark run."""

import json

import pytest

from elens_utils import ElensError
from elens_utils.bench import report as bench_report
from elens_utils.bench import suite as bench
from elens_utils.viz.charts import chart_spec


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "tiny.json"
    bench.write_json_atomic(bench.run_benchmark("tiny", progress=False), path)
    return bench_report.load_result(path)


def test_frames_carry_every_timed_row(result):
    lens = bench_report.lens_frame(result)
    timed = [r for r in result["rows"] if r["section"] == "lens" and r.get("time_s") is not None]
    assert len(lens) == len(timed) > 0
    # vs_limit is the time over the fastest bare matmul of the same shape
    for shape, part in lens.groupby("shape"):
        limit = part[part.key.str.startswith("matmul")].time_s.min()
        for _, row in part.iterrows():
            assert row.vs_limit == pytest.approx(row.time_s / limit, rel=1e-9)
    e2e = bench_report.e2e_frame(result)
    assert {"ours", "reference", "limit"} <= set(e2e.key)
    assert sorted(e2e["T"].unique()) == [8, 32, 128]
    ours = e2e[e2e.key == "ours"].set_index("T").time_s
    ref = e2e[e2e.key == "reference"].set_index("T").time_s
    assert result["e2e_speedup_vs_reference_T32"] == pytest.approx(ref[32] / ours[32], rel=1e-9)
    mem = bench_report.memory_frame(result)
    assert len(mem) == len([r for r in result["rows"] if r["section"] == "memory"]) > 0
    assert (mem.extra_mb > 0).all()


def test_headline_frame_and_machine(result):
    head = bench_report.headline_frame(result)
    assert {"lens_vs_matmul", "e2e_vs_limit", "peak_extra_mb"} <= set(head.key)
    row = head.set_index("key").loc["lens_vs_matmul"]
    assert row.value == pytest.approx(result["lens_vs_matmul"]) and row.target == "<= 1.25"
    assert row.met == (result["lens_vs_matmul"] <= 1.25)
    line = bench_report.machine_summary(result)
    assert result["machine"]["cpu"] in line and "`tiny`" in line


def test_charts_are_valid_vega_lite(result):
    for chart in (
        bench_report.lens_chart(bench_report.lens_frame(result)),
        bench_report.e2e_chart(bench_report.e2e_frame(result)),
        bench_report.memory_chart(bench_report.memory_frame(result)),
    ):
        spec = chart_spec(chart)  # validated against the Vega-Lite schema by altair
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
        assert list(spec["datasets"].values())[0], "the chart carries its data"


def test_bad_files_are_clear(tmp_path, result):
    with pytest.raises(ElensError, match="No benchmark result.*elens_utils bench"):
        bench_report.load_result(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ElensError, match="not valid JSON"):
        bench_report.load_result(bad)
    bad.write_text(json.dumps({"a": 1}))
    with pytest.raises(ElensError, match="not a benchmark result"):
        bench_report.load_result(bad)
    empty = {**result, "rows": []}
    with pytest.raises(ElensError, match="no lens rows"):
        bench_report.lens_chart(bench_report.lens_frame(empty))


# --- section real (the bf16 lens path on real models), on a hand-made result ---------------------

_ORDERS = [1.0, 0.5, 2.0, "inf"]
_LENS_SHAPE = {"label": "lens", "rows": 300, "d": 640, "vocab": 262144}
_PROFILE_SHAPE = {"label": "real/gemma3-270m", "N": 8, "T": 8, "L": 18}


def _real_result(with_real: bool = True) -> dict:
    """A benchmark result in the layout of ``bench_real`` (or without its section)."""
    rows = [{"section": "lens", "contender": "ours", "alphas": "1", "time_s": 0.1, "vs_limit": 1.1,
             "shape": {"label": "gpt2", "rows": 64, "d": 32, "vocab": 1000}}]  # fmt: skip
    result = {"config": "quick", "machine": {"cpu": "Test CPU", "device": "cpu"}, "rows": rows, "targets": {}}
    if not with_real:
        return result
    for model, rows_measured, fp32 in (("real/gemma3-270m", 306, 1e-5), ("real/smollm2-135m-instruct", 480, 2e-5)):
        rows.append({"section": "real", "contender": "bf16 error", "model": model,
                     "shape": {"label": model, "rows": rows_measured}, "orders": _ORDERS,
                     "max_err_nats": [0.025, 0.022, 0.017, 0.01], "mean_err_nats": [0.0034, 0.0029, 0.0026, 0.0016],
                     "p99_err_nats": [0.02, 0.015, 0.011, 0.008], "fp32_max_err_nats": fp32})  # fmt: skip
    for key, t in (("lens_bf16", 0.6), ("matmul_bf16", 0.3), ("lens_fp32", 0.9), ("matmul_fp32", 1.0)):
        rows.append({"section": "real", "contender": key, "time_s": t, "gflops": 100 / t, "shape": _LENS_SHAPE})
    for key, t, mb, timed in (("ours_fp32", 4.5, 64.0, None), ("ours_bf16", 3.6, 112.0, None), ("limit", 2.88, None, None),
                              ("reference", 21.6, 616.0, 1), ("naive_hidden_states", 18.0, 79.0, 1)):  # fmt: skip
        row = {"section": "real", "contender": key, "shape": _PROFILE_SHAPE, "time_s": t, "peak_extra_mb": mb}
        if timed:
            row["timed_prompts"] = timed
        rows.append(row)
    result.update(
        lens_bf16_vs_matmul_bf16=2.0, lens_bf16_max_err_nats=0.025, lens_bf16_mean_err_nats=0.003,
        lens_fp32_max_err_nats=2e-5, real_e2e_speedup_vs_fp32=1.25, real_e2e_vs_limit=1.25, cpu_has_bf16=True,
        auto_bf16_speedup_probe=2.5,
        targets={"lens_bf16_max_err_nats": {"value": 0.025, "target": "<= 0.02", "met": False},
                 "real_e2e_vs_limit": {"value": 1.25, "target": "<= 1.3", "met": True}},
    )  # fmt: skip
    return result


def test_real_frames_are_tidy_and_their_ratios_right():
    res = _real_result()
    assert bench_report.real_section_note(res) is None
    err, lens, prof = bench_report.real_frames(res)
    # 2 models x 4 orders x (max, mean, p99), plus each model's fp32 largest error
    assert len(err) == 2 * 4 * 3 + 2
    assert set(err.model) == {"Gemma-3-270M", "SmolLM2-135M-Instruct"}
    gemma = err[(err.model == "Gemma-3-270M") & (err.precision == "bf16")]
    assert gemma[gemma.stat == "max"].err_nats.tolist() == [0.025, 0.022, 0.017, 0.01]
    assert gemma[gemma.stat == "max"].order.tolist() == ["Shannon (α = 1)", "Rényi α = 0.5", "Rényi α = 2", "Rényi α = ∞"]
    fp32 = err[err.precision == "fp32"]
    assert fp32.err_nats.tolist() == [1e-5, 2e-5] and (fp32.order == "all orders").all() and (fp32.stat == "max").all()
    assert (err.rows[err.model == "Gemma-3-270M"] == 306).all()
    # the lens stage: each time over the bare product in the same precision
    lens = lens.set_index("key")
    assert lens.loc["lens_bf16", "vs_matmul"] == pytest.approx(2.0)
    assert lens.loc["lens_fp32", "vs_matmul"] == pytest.approx(0.9)
    assert lens.loc["lens_bf16", "vs_lens_fp32"] == pytest.approx(0.6 / 0.9)
    assert lens.loc["matmul_bf16", "precision"] == "bf16" and lens.loc["lens_bf16", "vocab"] == 262144
    # whole profiles: ratios to ours in bf16 and to the limit, tokens per second, the scaled rows
    prof = prof.set_index("key")
    assert list(prof.index) == ["ours_fp32", "ours_bf16", "limit", "reference", "naive_hidden_states"]
    assert prof.loc["ours_fp32", "vs_ours_bf16"] == pytest.approx(1.25)
    assert prof.loc["ours_bf16", "vs_limit"] == pytest.approx(1.25)
    assert prof.loc["reference", "vs_ours_bf16"] == pytest.approx(6.0)
    assert prof.loc["ours_bf16", "tokens_per_s"] == pytest.approx(64 / 3.6)
    assert prof.scaled.tolist() == [False, False, False, True, True]
    assert prof.loc["reference", "timed_prompts"] == 1 and prof.loc["ours_bf16", "timed_prompts"] == 8
    assert prof.peak_extra_mb.isna().tolist() == [False, False, True, False, False]
    assert (prof.model == "Gemma-3-270M").all() and (prof.L == 18).all()


def test_headline_frame_describes_the_real_keys():
    head = bench_report.headline_frame(_real_result()).set_index("key")
    for key in ("lens_bf16_vs_matmul_bf16", "lens_bf16_max_err_nats", "lens_fp32_max_err_nats",
                "real_e2e_speedup_vs_fp32", "real_e2e_vs_limit", "cpu_has_bf16", "auto_bf16_speedup_probe"):  # fmt: skip
        assert key in head.index and head.loc[key, "meaning"], key
    assert head.loc["lens_bf16_max_err_nats", "target"] == "<= 0.02" and head.loc["lens_bf16_max_err_nats", "met"] is False
    assert head.loc["real_e2e_vs_limit", "met"] is True
    assert head.loc["real_e2e_speedup_vs_fp32", "target"] == "" and head.loc["real_e2e_speedup_vs_fp32", "met"] is None
    # every key the benchmark writes for the section has a description
    assert "real_e2e_speedup_vs_reference" in bench_report._HEADLINE_TEXT
    assert {"real_tokens_per_s_bf16", "real_tokens_per_s_fp32", "matmul_bf16_speedup"} <= set(bench_report._HEADLINE_TEXT)
    assert [bench_report.format_value(v) for v in (1.0941, 16.91, 0.025395, 1.4316e-05, 2048.4, True, False, None, 3)] == [
        "1.09", "16.9", "0.0254", "1.43e-05", "2,048", "yes", "no", "n/a", "3"]  # fmt: skip
    # beside its target, a value is never shown as the bound it misses
    assert bench_report.format_value(1.3005758, "<= 1.3") == "1.301"
    assert bench_report.format_value(1.3, "<= 1.3") == "1.3" and bench_report.format_value(1.2532, "<= 1.3") == "1.25"


def test_real_charts_are_valid_vega_lite_and_fit_the_column():
    err, _lens, prof = bench_report.real_frames(_real_result())
    for chart in (bench_report.real_profile_chart(prof), bench_report.real_error_chart(err),
                  bench_report.real_error_chart(err, target=None)):  # fmt: skip
        spec = chart_spec(chart)
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
        assert list(spec["datasets"].values())[0], "the chart carries its data"
    spec = chart_spec(bench_report.real_profile_chart(prof))
    assert spec["width"] <= 420 and "Gemma-3-270M: 8 prompts × 8 tokens, 18 blocks" in spec["title"]["text"]
    assert "reference and naive timed on 1 of 8 prompts and scaled" in spec["title"]["subtitle"]
    spec = chart_spec(bench_report.real_error_chart(err))
    assert spec["spec"]["width"] <= 420 and "0.02 nats" in spec["title"]["subtitle"]


def test_without_a_real_section_the_page_says_so():
    res = _real_result(with_real=False)
    err, lens, prof = bench_report.real_frames(res)
    assert err.empty and lens.empty and prof.empty
    assert "no real-model section" in bench_report.real_section_note(res)
    assert not set(bench_report.headline_frame(res).key) & {"lens_bf16_max_err_nats", "real_e2e_vs_limit"}
    with pytest.raises(ElensError, match="no real-model profile rows"):
        bench_report.real_profile_chart(prof)
    with pytest.raises(ElensError, match="no real-model error rows"):
        bench_report.real_error_chart(err)
    # a section skipped for want of the models says why; rows of another layout are named as such
    skipped = {**res, "rows": [*res["rows"], {"section": "real", "skipped": "real/gemma3-270m is not installed"}]}
    assert bench_report.real_section_note(skipped) == "This run's real-model section was skipped: real/gemma3-270m is not installed."
    old = {**res, "rows": [*res["rows"], {"section": "real", "what": "bf16 lens error", "model": "real/gemma3-270m", "rows": 9}]}
    assert "older layout" in bench_report.real_section_note(old)


def _bf16_rows(step1_max):
    return {
        "rows": [
            {"section": "model_bf16", "model": "real/gemma3-270m", "prompts": 32, "steps": 32, "seconds_fp32": 30.0,
             "seconds_bf16": 25.0, "speedup": 1.2, "identical_streams": 0.75, "step1_max_abs_dh_nats": step1_max,
             "step1_mean_abs_dh_nats": 0.04, "mean_profile_max_abs_diff_nats": 0.1, "lens_step1_max_abs_dh_nats": 0.025},
            {"section": "model_bf16", "model": "real/smollm2-135m-instruct", "prompts": 32, "steps": 32,
             "seconds_fp32": 12.0, "seconds_bf16": 8.0, "speedup": 1.5, "identical_streams": 0.5,
             "step1_max_abs_dh_nats": 0.01, "step1_mean_abs_dh_nats": 0.002, "mean_profile_max_abs_diff_nats": 0.05,
             "lens_step1_max_abs_dh_nats": 0.02},
            {"section": "real", "contender": "bf16 error"},
        ]
    }  # fmt: skip


def test_model_bf16_frame_and_verdict():
    from elens_utils.bench.report import model_bf16_frame, model_bf16_verdict

    frame = model_bf16_frame(_bf16_rows(0.5))
    assert frame["model"].tolist() == ["real/gemma3-270m", "real/smollm2-135m-instruct"]
    text = model_bf16_verdict(_bf16_rows(0.5))
    assert "1.20-1.50x faster" in text and "up to 0.50 nats" in text and "25%-50% of the prompts" in text
    assert "20 times what the bf16 lens alone moves" in text and "keeps the models in float32" in text
    text = model_bf16_verdict(_bf16_rows(0.02))
    assert "within what the bf16 lens alone moves" in text and "keeps" not in text
    no_lens = _bf16_rows(0.5)
    for r in no_lens["rows"]:
        r.pop("lens_step1_max_abs_dh_nats", None)
    assert "did not measure" in model_bf16_verdict(no_lens)
    assert "has no `model_bf16` rows" in model_bf16_verdict({"rows": []})
    assert model_bf16_frame({"rows": []}).empty
