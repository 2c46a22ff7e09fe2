"""Command line of elens_utils.

* ``python -m elens_utils profile MODEL --prompt TEXT``: a quick look. Prints a token x layer
  table of lens entropies (nats), with a colour heat-map in a terminal, or with ``--json`` one
  JSON object.
* ``python -m elens_utils sweep MODEL... --prompts FILE --out DIR``: profiles of many prompts,
  ``DIR/<model>.parquet``, on one process or, under ``torchrun``/``accelerate launch``, on many
  (:mod:`elens_utils.sweeps.dist_sweep`).
* ``python -m elens_utils bench [--quick]``: the benchmark of :mod:`elens_utils.bench.suite` (JSON on
  stdout, a table on stderr).
* ``python -m elens_utils book run|build|assets|params|list|times ...``: the book's chapters
  (:mod:`elens_utils.book.chapters`; what ``make chapter`` and ``make book`` call).
* ``python -m elens_utils zoo train|evaluate|card|extend|speed ...``: the embedded model zoo
  (:mod:`elens_utils.zoo.training`; what ``make zoo`` calls).

Installed, the same commands are ``elens profile ...``, ``elens book build`` and so on.

Bad input exits with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence

from elens_utils.core.errors import ElensError, run_command

__all__ = ["main"]


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"alpha must be a number or 'inf'; got {text!r}") from err
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"alpha must be >= 0 (0 = log support, 1 = Shannon, inf = min-entropy); got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def _prog() -> str:
    """``elens`` when run as the installed command, ``python -m elens_utils`` otherwise."""
    return "elens" if os.path.basename(sys.argv[0]) == "elens" else "python -m elens_utils"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_prog(), description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("profile", help="entropy profile of one generation", description=(
        "Generate from a prompt and print the logit-lens entropy (nats) of every decoder block "
        "for every generated token."))
    p.add_argument("model", help="Hugging Face Hub id, local directory written by save_pretrained, .gguf file, or embedded name (zoo/llama-8L, real/gemma3-270m)")
    p.add_argument("--prompt", required=True, help="prompt text ('' gives a BOS-only prompt where the tokenizer adds BOS)")
    p.add_argument("--max-new-tokens", type=positive_int, default=8, metavar="N", help="tokens to generate (default 8)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--greedy", action="store_true", help="take the most probable token (the default)")
    mode.add_argument("--temperature", type=float, metavar="T", help="sample at temperature T")
    p.add_argument("--top-k", type=positive_int, metavar="K", help="sample from the K most probable tokens")
    p.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling mass")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="sampling seed (default 0)")
    p.add_argument("--alpha", type=_alpha, action="append", metavar="A",
                   help="also report the Renyi entropy of order A (repeatable; 'inf' allowed)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                   help="arithmetic of the lens's unembedding product: fp32 (default, ~1e-5 nats from float64), "
                        "bf16 (faster on CPUs with bf16 units; errors up to ~0.06 nats), auto (bf16 where measured faster)")
    p.add_argument("--trust-remote-code", action="store_true", help="run code from the model repository (off by default)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    w = sub.add_parser("sweep", help="profiles of many prompts under several models, on one or many processes",
                       description="Profile every prompt of a file under each model and write OUT/<model>.parquet "
                       "(Profiles.from_parquet reads it). Alone it runs in one process; under torchrun "
                       "--nproc_per_node=K (or accelerate launch) each rank profiles its share of the prompts "
                       "and rank 0 writes the files. A re-run resumes from the profile cache's shards. Small "
                       "models (the zoo's) run on one thread per process, large ones on every thread; "
                       "OMP_NUM_THREADS rules both.")  # fmt: skip
    w.add_argument("models", nargs="+", metavar="MODEL", help="Hub ids, directories, .gguf files or embedded names")
    w.add_argument("--prompts", required=True, metavar="FILE",
                   help=".txt (one prompt per line), .json or .jsonl (strings, token-id lists or {prompt, label} objects)")
    w.add_argument("--out", required=True, metavar="DIR", help="output directory: DIR/<model>.parquet")
    w.add_argument("--max-new-tokens", type=positive_int, default=32, metavar="N", help="tokens per prompt (default 32)")
    w.add_argument("--seed", type=int, default=0, metavar="S", help="sampling seed (default 0)")
    w.add_argument("--temperature", type=float, metavar="T", help="sample at temperature T (default: greedy)")
    w.add_argument("--top-k", type=positive_int, metavar="K", help="sample from the K most probable tokens")
    w.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling mass")
    w.add_argument("--alpha", type=_alpha, action="append", metavar="A", help="Renyi orders besides Shannon (repeatable)")
    w.add_argument("--batch-size", type=positive_int, default=16, metavar="B", help="prompts per forward pass (default 16)")
    w.add_argument("--shard-size", type=positive_int, default=16, metavar="S",
                   help="prompts per cache shard, the unit dealt to the processes (default 16)")
    w.add_argument("--cache", metavar="DIR", help="profile cache directory, seen by every process (default $ELENS_CACHE/profiles)")
    w.add_argument("--device", default="auto", help="auto (default: cuda:LOCAL_RANK per process where CUDA is available), cpu, cuda:N")
    w.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    w.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"), help="the lens product's arithmetic (as for profile)")
    w.add_argument("--trust-remote-code", action="store_true", help="run code from the model repository (off by default)")
    w.add_argument("--no-progress", action="store_true", help="no progress bars")
    from elens_utils.bench.suite import add_arguments

    b = sub.add_parser("bench", help="benchmark: lens stage and end to end, against references and the hardware limit",
                       description="Time our lens against the naive way, chunked torch and the bare unembedding "
                       "matmul, and our pipeline end to end against the paper's reference algorithm and the "
                       "KV-cached limit. JSON on stdout, a table on stderr.")  # fmt: skip
    add_arguments(b)
    # book and zoo hand their arguments to their own parsers (elens book -h shows that one's help)
    for name, what in (("book", "the book: run chapters, build the HTML, fetch local assets (elens book -h)"),
                       ("zoo", "the model zoo: train, evaluate, write the card (elens zoo -h)")):  # fmt: skip
        d = sub.add_parser(name, help=what, add_help=False)
        d.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _profile(args: argparse.Namespace) -> int:
    from transformers.utils import logging as hf_logging

    from elens_utils.core.token_text import token_texts
    from elens_utils.lens.loading import load_model

    hf_logging.set_verbosity_error()  # the quick look prints its table, not loading chatter
    hf_logging.disable_progress_bar()
    sampling = args.temperature is not None
    if not sampling and (args.top_k is not None or args.top_p is not None):
        raise ElensError("--top-k/--top-p only apply when sampling: add --temperature T.")
    alphas = [1.0] + [a for a in (args.alpha or []) if a != 1.0]
    lm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    lm.check_coverage(lm.encode([args.prompt]))  # a prompt of <unk> tokens says nothing
    profiles = lm.profile(
        [args.prompt],
        max_new_tokens=args.max_new_tokens,
        do_sample=sampling,
        temperature=args.temperature if sampling else 1.0,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        alphas=alphas,
        progress=False,
        precision=args.precision,
    )
    row = profiles.meta.iloc[0]
    shannon = profiles.select(1.0)[0]  # [T, L]
    if args.json:
        result = {
            "model": lm.name,
            "n_layers": lm.n_layers,
            "vocab_size": lm.parts.vocab_size,
            "prompt": args.prompt,
            "generated_ids": [int(t) for t in row["generated_ids"]],
            "text": row["text"],
            "units": "nats",
            "precision": args.precision,
            "entropy": [[round(float(x), 6) for x in step] for step in shannon],
        }
        extra = [a for a in alphas if a != 1.0]
        if extra:
            result["renyi"] = {
                _alpha_key(a): [[round(float(x), 6) for x in step] for step in profiles.select(a)[0]] for a in extra
            }
        print(json.dumps(result))
        return 0
    tokens = token_texts(lm.tokenizer, row["generated_ids"])
    print(f"{lm.name}: {lm.n_layers} blocks, vocabulary {lm.parts.vocab_size} "
          f"(max entropy log V = {math.log(lm.parts.vocab_size):.2f} nats)")
    print(f"prompt: {args.prompt!r}\ngenerated: {row['text']!r}\n")
    print(render_table(tokens, shannon, math.log(lm.parts.vocab_size), color=_use_color()))
    for a in alphas[1:]:
        print(f"\nRenyi alpha = {a:g}")
        print(render_table(tokens, profiles.select(a)[0], math.log(lm.parts.vocab_size), color=_use_color()))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from elens_utils.core.threads import SMALL_MODEL_THREADS_ENV
    from elens_utils.sweeps.dist_sweep import dist_context, read_prompt_file

    sampling = args.temperature is not None
    if not sampling and (args.top_k is not None or args.top_p is not None):
        raise ElensError("--top-k/--top-p only apply when sampling: add --temperature T.")
    out = os.fspath(args.out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ElensError(f"--out {out} is a file: give a directory.")
    prompts, labels = read_prompt_file(args.prompts)
    # Small models on one thread, as in the book (elens_utils.core.threads), and as torchrun's
    # workers run anyway: a one-process sweep then equals a torchrun one bit for bit.
    before = os.environ.get(SMALL_MODEL_THREADS_ENV)
    os.environ.setdefault(SMALL_MODEL_THREADS_ENV, "1")
    try:
        written = _run_sweep(args, prompts, labels, sampling, out)
    finally:
        if before is None:
            os.environ.pop(SMALL_MODEL_THREADS_ENV, None)
    rank, world, _ = dist_context()
    if rank == 0:
        for name, path in written.items():
            print(f"{name}: {len(prompts)} prompts -> {path}" + (f" ({world} processes)" if world > 1 else ""))
    return 0


def _run_sweep(args: argparse.Namespace, prompts: list, labels: list | None, sampling: bool, out: str) -> dict:
    from elens_utils.sweeps.dist_sweep import sweep

    return sweep(
        args.models, prompts, labels, out=out, cache=args.cache, shard_size=args.shard_size,
        device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
        max_new_tokens=args.max_new_tokens, do_sample=sampling,
        temperature=args.temperature if sampling else 1.0, top_k=args.top_k, top_p=args.top_p,
        seed=args.seed, alphas=[1.0] + [a for a in (args.alpha or []) if a != 1.0],
        batch_size=args.batch_size, precision=args.precision, progress=False if args.no_progress else None,
    )  # fmt: skip


def _alpha_key(a: float) -> str:
    return "inf" if math.isinf(a) else f"{a:g}"


def _use_color() -> bool:
    return sys.stdout.isatty() and os.environ.get("NO_COLOR") is None and os.environ.get("TERM") != "dumb"


def render_table(tokens: Sequence[str], values, vmax: float, color: bool = False) -> str:
    """A token x layer table of entropies; with ``color``, cells shaded dark (low) to bright (high).

    Args:
        tokens: the T generated tokens (row labels).
        values: ``[T, L]`` entropies in nats.
        vmax: the value of the brightest shade (log V).
    """
    n_layers = len(values[0])
    width = max([len(t) for t in tokens] + [5]) + 2
    lines = ["token".ljust(width) + "".join(f"{'L' + str(i + 1):>6}" for i in range(n_layers))]
    for token, row in zip(tokens, values):
        cells = []
        for v in row:
            cell = f"{v:6.2f}"
            if color:
                shade = 232 + min(23, max(0, int(23 * float(v) / vmax)))  # 24-step grey ramp
                fg = 16 if shade > 244 else 255
                cell = f"\033[48;5;{shade}m\033[38;5;{fg}m{cell}\033[0m"
            cells.append(cell)
        lines.append(repr(token)[1:-1][: width - 1].ljust(width) + "".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("book", "zoo"):  # their own command lines, whole
        if argv[0] == "book":
            from elens_utils.book.chapters import main as book_main

            return book_main(argv[1:], prog=f"{parser.prog} book")
        from elens_utils.zoo.training import main as zoo_main

        return zoo_main(argv[1:], prog=f"{parser.prog} zoo")
    args = parser.parse_args(argv)

    def body() -> int:
        if args.command == "profile":
            return _profile(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "bench":
            from elens_utils.bench.suite import run_from_args

            return run_from_args(args)
        parser.error(f"unknown command {args.command}")
        return 2

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
