"""What 4-bit quantization does to the zoo's profiles, in one sentence read from the measured file:
the caveat every chapter adds to its real models, which are 4-bit quantized."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from elens_utils.core.errors import ElensError

QUANTIZATION_RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "quantization-zoo.json"
"""What 4-bit quantization does to the zoo's profiles (``benchmarks/quantization_zoo.py``)."""


def quantization_caveat(path: str | Path | None = None, qtype: str = "Q4_1", experiment: str = "family") -> str:
    """One sentence, from the measured file, on how far ``qtype`` moves the zoo's profiles.

    The real models are 4-bit quantized; the zoo's unquantized weights let the project measure
    what that does (``benchmarks/quantization_zoo.py``, which writes the file read here: by
    default :data:`QUANTIZATION_RESULTS`). The sentence quotes the run's mean ``|dH|`` at the
    same tokens (range over models, share of log V) and what quantization does to the run's kNN
    AUC: for the ``"family"`` run (one kNN over all models) the AUC with float and with quantized
    weights; for the ``"task"`` run (one kNN per model) the mean and largest change over the
    models, beside the change a float re-run with another seed makes.

    Raises:
        ElensError: the file is missing or holds no ``experiment`` run of ``qtype``.
    """
    path = Path(path) if path is not None else QUANTIZATION_RESULTS
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ElensError(f"No quantization results at {path}: run `python benchmarks/quantization_zoo.py`.") from err
    run = next((r for r in results.get("runs", []) if r.get("experiment") == experiment and r.get("qtype") == qtype), None)
    if run is None:
        raise ElensError(f"{path} has no {experiment} run of {qtype}: re-run benchmarks/quantization_zoo.py.")
    summary = run["summary"]
    auc = {(row["scope"], row["weights"]): row["auc_mean"] for row in run["knn"]}
    scopes = list(dict.fromkeys(row["scope"] for row in run["knn"]))
    what = {"family": "family", "task": "task-type"}.get(experiment, experiment)
    if len(scopes) == 1:
        moved = f"the {what} kNN AUC from {auc[scopes[0], 'float']:.3f} to {auc[scopes[0], 'quantized']:.3f}"
    else:
        quantized = [abs(auc[s, "quantized"] - auc[s, "float"]) for s in scopes]
        reseeded = [abs(auc[s, "float, seed 1"] - auc[s, "float"]) for s in scopes if (s, "float, seed 1") in auc]
        moved = (
            f"the {what} kNN AUC by {np.mean(quantized):.3f} on average over the {len(scopes)} models "
            f"(at most {max(quantized):.3f}" + (f"; a re-run with another seed: {np.mean(reseeded):.3f}" if reseeded else "") + ")"
        )
    lo, hi = summary["token_dh_mean_range"]
    return (
        f"On the zoo's {len(results['models'])} models, {qtype} quantization (the scheme of the SmolLM2 "
        f"file) moves the lens entropy by {summary['token_dh_mean']:.3f} nats on average at the same "
        f"tokens ({lo:.3f}-{hi:.3f} per model, {100 * summary['token_dh_mean_rel']:.1f}% of log V), and "
        f"{moved}; sampling again "
        f"with another seed moves the kNN features {summary['resample_feature_dh_mean'] / summary['feature_dh_mean']:.1f} "
        "times as far as quantization does (benchmarks/quantization-zoo.json)."
    )
