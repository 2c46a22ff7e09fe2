"""What a run's profiles cost: the profile cache's manifests as lens rows, FLOP and seconds.

Every entry of the profile cache (:mod:`elens_utils.sweeps.cache`) records its model, how many prompts
it holds, the generation settings and the seconds its shards took to compute
(``compute_seconds``: generation and lens together). With the model's depth ``L``, width ``d``
and vocabulary ``V`` (read from its config), an entry of ``N`` prompts and ``T`` generated tokens
holds ``N x T x L`` lens rows, each a ``[d] x [d, V]`` product: ``2 d V`` FLOP. Summed per model,
that is the arithmetic the book asked of the lens, which no implementation can skip; divided by
a matrix product's rate (the benchmark's bare GEMM), it is the time the lens alone needs at that
rate, a floor for the run.

``python -m elens_utils.lens.work [--cache DIR] [--gflops R] [--json OUT]`` prints the table (the
default cache is ``$ELENS_CACHE/profiles``, where ``make book`` leaves it).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pandas as pd

from elens_utils.core.atomic import atomic_file
from elens_utils.core.errors import ElensError

__all__ = ["lens_work", "model_shape"]


def model_shape(name: str) -> tuple[int, int, int]:
    """``(L, d, V)`` of a model, from its config (an embedded model is resolved, and built or
    converted on first use, as :func:`~elens_utils.models.registry.resolve_model` does)."""
    from transformers import AutoConfig

    from elens_utils.models.registry import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(name))
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    try:
        return int(text.num_hidden_layers), int(text.hidden_size), int(text.vocab_size)
    except AttributeError as err:
        raise ElensError(f"The config of {name!r} names no num_hidden_layers/hidden_size/vocab_size.") from err


def lens_work(cache: str | os.PathLike[str] | None = None, models: list[str] | None = None) -> pd.DataFrame:
    """One row per model of the complete entries in the profile cache ``cache``.

    Columns: ``model``, ``entries``, ``prompts`` (N summed), ``tokens`` (N x T summed), ``L``,
    ``d``, ``V``, ``lens_rows`` (N x T x L), ``lens_tflop`` (2 d V per row, 1e12 FLOP),
    ``compute_s`` (the entries' recorded seconds), ``tflop_per_s_equiv`` (lens FLOP per second of
    profiling: what the lens path achieved, model forward included). Sorted by ``lens_tflop``,
    largest first. ``models`` keeps only those names.

    Raises:
        ElensError: when the cache directory does not exist.
    """
    from elens_utils.core.paths import cache_dir

    root = Path(cache) if cache is not None else cache_dir() / "profiles"
    if not root.is_dir():
        raise ElensError(f"No profile cache at {root}: run a chapter first, or pass --cache DIR.")
    rows: dict[str, dict] = {}
    for manifest_path in sorted(root.glob("*/manifest.json")):
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            continue  # unreadable: the cache itself ignores (and recomputes) such an entry
        if not manifest.get("complete"):
            continue
        name = manifest["model"]
        if models is not None and name not in models:
            continue
        row = rows.setdefault(name, {"model": name, "entries": 0, "prompts": 0, "tokens": 0, "compute_s": 0.0})
        n = int(manifest["n_prompts"])
        row["entries"] += 1
        row["prompts"] += n
        row["tokens"] += n * int(manifest["settings"]["max_new_tokens"])
        row["compute_s"] += float(manifest.get("compute_seconds", 0.0))
    out = []
    for name, row in rows.items():
        n_layers, d, vocab = model_shape(name)
        lens_rows = row["tokens"] * n_layers
        tflop = 2.0 * d * vocab * lens_rows / 1e12
        out.append({**row, "L": n_layers, "d": d, "V": vocab, "lens_rows": lens_rows, "lens_tflop": tflop,
                    "tflop_per_s_equiv": tflop / row["compute_s"] if row["compute_s"] > 0 else float("nan")})
    columns = ["model", "entries", "prompts", "tokens", "L", "d", "V", "lens_rows", "lens_tflop", "compute_s",
               "tflop_per_s_equiv"]
    frame = pd.DataFrame(out, columns=columns)
    return frame.sort_values("lens_tflop", ascending=False, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elens_utils.lens.work", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", help="profile cache directory (default: $ELENS_CACHE/profiles)")
    parser.add_argument("--gflops", type=float, help="a matrix product's rate (GFLOP/s): prints the lens time at it")
    parser.add_argument("--json", help="write the table and totals to this JSON file")
    args = parser.parse_args(argv)
    try:
        table = lens_work(args.cache)
    except ElensError as err:
        parser.exit(2, f"error: {err}\n")
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    totals = {"lens_tflop": float(table["lens_tflop"].sum()), "compute_s": float(table["compute_s"].sum())}
    print(f"\nlens products: {totals['lens_tflop']:.1f} TFLOP; profiling took {totals['compute_s']:.0f} s")
    if args.gflops:
        totals["gflops"] = args.gflops
        totals["lens_floor_s"] = totals["lens_tflop"] * 1e3 / args.gflops
        print(f"at {args.gflops:g} GFLOP/s the lens products alone take {totals['lens_floor_s']:.0f} s")
    if args.json:
        with atomic_file(args.json) as fh:
            json.dump({"models": table.to_dict(orient="records"), "totals": totals}, fh, indent=1)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
