"""The prepared GPU check (benchmarks/gpu_check.py) runs its steps on toy shapes on the CPU, under
the Triton interpreter, and writes the JSON the performance appendix reads."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_the_result(tmp_path, capsys):
    pytest.importorskip("triton")
    gpu_check = _module()
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--tiny", "--skip", "tests,e2e", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    lens = [r for r in result["rows"] if r["section"] == "gpu"]
    assert {r["contender"] for r in lens} == {"cublas_matmul", "ours_triton", "ours_triton+renyi", "ours_torch"}
    assert all(r["tflop_per_s"] > 0 for r in lens)
    tune = [r for r in result["rows"] if r["section"] == "gpu_tune"]
    assert len(tune) == len(gpu_check.TINY_TUNE_GRID)
    assert all(r["max_diff_nats"] < 1e-3 for r in tune)  # every configuration computes the same entropies
    assert result["tune_best_config"] in gpu_check.TINY_TUNE_GRID
    assert set(result["targets"]) == {"triton_vs_cublas", "triton_speedup_vs_torch"}
    assert result["targets"]["triton_vs_cublas"]["value"] > 0


def test_refuses_full_run_without_cuda(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the full check")
    assert _module().main([]) == 2
    assert "no CUDA device" in capsys.readouterr().err
