"""bench_report: the performance appendix's frames and charts, from a real (tiny) benchmark run."""

import json

import pytest
from elens_utils import ElensError, bench, bench_report
from elens_utils.charts import chart_spec


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
