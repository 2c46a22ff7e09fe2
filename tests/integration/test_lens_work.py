"""lens_work: the profile cache's manifests as lens rows, FLOP and seconds."""

import json

import pytest

from elens_utils.core.errors import ElensError
from elens_utils.lens import work as lw
from elens_utils.sweeps.cache import ProfileCache


def test_rows_flop_and_seconds_of_a_cache(tiny_model_dirs, tmp_path, capsys):
    name = str(tiny_model_dirs["llama"])
    n_layers, d, vocab = lw.model_shape(name)
    cache = ProfileCache(tmp_path)
    cache.profiles(name, ["the cat sat", "a dog", "the"], max_new_tokens=4, progress=False)
    cache.profiles(name, ["the old man"], max_new_tokens=2, progress=False)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")  # skipped, as the cache does
    table = lw.lens_work(tmp_path)
    assert table["model"].tolist() == [name]
    row = table.iloc[0]
    assert (row.entries, row.prompts, row.tokens) == (2, 4, 3 * 4 + 1 * 2)
    assert (row.L, row.d, row.V) == (n_layers, d, vocab)
    assert row.lens_rows == 14 * n_layers
    assert row.lens_tflop == pytest.approx(2 * d * vocab * 14 * n_layers / 1e12)
    assert row.compute_s > 0 and row.tflop_per_s_equiv == pytest.approx(row.lens_tflop / row.compute_s)
    assert lw.lens_work(tmp_path, models=["other"]).empty

    out = tmp_path / "work.json"
    assert lw.main(["--cache", str(tmp_path), "--gflops", "100", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["totals"]["lens_floor_s"] == pytest.approx(row.lens_tflop * 1e3 / 100)
    assert "lens products alone take" in capsys.readouterr().out


def test_a_missing_cache_says_what_to_do(tmp_path):
    with pytest.raises(ElensError, match="run a chapter first"):
        lw.lens_work(tmp_path / "none")
    with pytest.raises(SystemExit):
        lw.main(["--cache", str(tmp_path / "none")])
