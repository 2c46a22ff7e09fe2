"""The build of the CPU kernel starts with a GGUF model only (tiny models loaded)."""


import pytest

from elens_utils.entropy import cpu as entropy_cpu


def test_load_model_starts_the_build_only_for_gguf_models(monkeypatch, tiny_model_dirs, tmp_path):
    from elens_utils import ElensError, load_model

    started = []
    monkeypatch.setattr(entropy_cpu, "build_in_background", lambda: started.append(True))
    load_model(tiny_model_dirs["llama"])
    assert started == []
    with pytest.raises(ElensError):
        load_model(tmp_path / "absent.gguf")
    assert started == [True]
