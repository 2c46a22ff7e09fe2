"""The real models' card: what the two registry models are and how they do, in ``real/``.

``python -m elens_utils.real_card`` loads each real model (:mod:`elens_utils.models.real_models`) and
writes ``real/card.json`` and ``real/CARD.md`` (atomically), like the zoo's card
(``zoo/CARD.md``). Per model:

* where it comes from: the registry package, the licence of the weights, the GGUF file's
  SHA-256 and its quantization (the tensor types counted in the converted directory's manifest,
  ``elens_gguf.json``, field ``gguf.tensor_types``);
* its shape: blocks, vocabulary (rows of the unembedding), width, parameters;
* **held-out loss**: mean next-token cross-entropy in nats per token over the first
  ``n_stories`` stories of the story world's ``test`` split (seed 0), rendered as natural
  English (:func:`elens_utils.data.synthetic.render`). Each story is one sequence, scored from its
  second token on (the first token, or the BOS token, is given); no EOS is appended;
* **multiple choice**: accuracy on the project's question set
  (:func:`elens_utils.data.fact_questions.fact_questions`) under cloze scoring (the log-likelihood of
  each option's text after the question, :mod:`elens_utils.analysis.cloze`), with its 95 % Wilson
  interval and per subject; chance is 25 %. ``--letters`` also measures letter scoring (the
  next-token logits of A-D), which is at chance for both models and slow on a CPU;
* **times**: loading (a cached conversion; its checksums are verified on every load), the
  profile of a few prompts, and the whole evaluation, in seconds, with the machine, the thread
  count and the load average when the run started (other work on the machine slows every
  figure).

:func:`evaluate_model` works for any model :func:`~elens_utils.load_model` takes (the tests
run it on a tiny random model); the source fields are then empty.

``python -m elens_utils.real_card --compare`` measures instead what chose the card's scoring:
letter against cloze scoring, with 0 and 3 demonstrations, each model on all 384 questions
(:func:`compare_scorings`), into ``real/scoring.json`` and ``real/SCORING.md``. It takes far
longer than the card (letter prompts list the options, and 3 demonstrations quadruple them).

Both commands run on one torch thread by default (``--threads``): on the project's shared
2-core machine a second thread made the scoring slower, not faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from elens_utils.core.atomic import atomic_file
from elens_utils.core.checks import card_problems
from elens_utils.core.errors import ElensError, run_command
from elens_utils.core.provenance import model_versions
from elens_utils.data.fact_questions import LICENCE, accuracy_by_subject, fact_questions, wilson_interval
from elens_utils.models.real_models import REAL_MODELS

__all__ = [
    "CARD_JSON",
    "CARD_MD",
    "MODEL_FIELDS",
    "build_card",
    "card_markdown",
    "compare_scorings",
    "scoring_markdown",
    "evaluate_model",
    "main",
    "validate_card",
    "write_card",
]

CARD_JSON = "card.json"
CARD_MD = "CARD.md"
SCORING_JSON = "scoring.json"
SCORING_MD = "SCORING.md"
CARD_SCHEMA_VERSION = 1
DEFAULT_ROOT = "real"
#: Fields of every model's entry in card.json, with their types (:func:`validate_card`).
MODEL_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "title": str,
    "package": (str, type(None)),
    "licence": (str, type(None)),
    "gguf_sha256": (str, type(None)),
    "quantization": (str, type(None)),
    "gguf_tensor_types": (dict, type(None)),
    "n_layers": int,
    "vocab_size": int,
    "hidden_size": int,
    "n_params": int,
    "loss": float,
    "loss_tokens": int,
    "mc_accuracy": float,
    "mc_n": int,
    "mc_correct": int,
    "mc_low": float,
    "mc_high": float,
    "mc_by_subject": dict,
    "letters_accuracy": (float, type(None)),
    "load_seconds": float,
    "profile_seconds": float,
    "mc_seconds": float,
    "eval_seconds": float,
}


def _manifest(lm: Any, name: str) -> dict[str, Any] | None:
    """The converted directory's ``elens_gguf.json``, when ``lm`` came from a GGUF file."""
    from elens_utils.models.gguf_convert import MANIFEST

    for where in (getattr(lm.model, "name_or_path", None), getattr(lm.model.config, "_name_or_path", None), name):
        if where and (Path(where) / MANIFEST).is_file():
            return json.loads((Path(where) / MANIFEST).read_text())
    return None


@torch.no_grad()
def story_loss(lm: Any, texts: Sequence[str], *, batch_size: int = 4) -> tuple[float, int]:
    """Mean next-token cross-entropy of ``texts`` (nats per token) and the tokens scored.

    Each text is one sequence (``lm.encode``: the tokenizer's special tokens, BOS for models that
    add one); every token after the first is scored given the ones before it. Batches are
    left-padded with explicit positions; log-probabilities are float32 (float64 for a float64
    model), sums float64.
    """
    from elens_utils.analysis.cloze import wide_logits
    from elens_utils.lens.generation import left_pad

    encoded = lm.encode(list(texts))
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    total, count = 0.0, 0
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        rows = [encoded[i] for i in order[start : start + batch_size]]
        ids, mask, pos = left_pad(rows, pad, lm.device)
        logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
        logp = torch.log_softmax(wide_logits(logits[:, :-1]), dim=-1)
        nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]  # [B, S-1]
        keep = mask[:, :-1].bool() & mask[:, 1:].bool()  # the target and its context are real tokens
        total += float(nll[keep].double().sum())
        count += int(keep.sum())
    if count == 0:
        raise ElensError("The loss texts have no token after their first: give longer texts.")
    return total / count, count


def evaluate_model(
    name: str,
    *,
    n_questions: int | None = None,
    shots: int = 0,
    normalize: str = "sum",
    letters: bool = False,
    n_stories: int = 100,
    profile_prompts: int = 8,
    profile_tokens: int = 16,
    seed: int = 0,
    batch_size: int = 8,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict[str, Any]:
    """One model's card entry (see the module doc and :data:`MODEL_FIELDS`).

    Args:
        name: a model name for :func:`~elens_utils.load_model` (``real/...`` for the card).
        n_questions: questions of :func:`~elens_utils.data.fact_questions.fact_questions` (None:
            all 384); the first ``n`` keep the answer letters balanced.
        shots: demonstrations before each question.
        normalize: the cloze score (``"sum"``, ``"token"``, ``"char"``).
        letters: also measure letter scoring (``letters_accuracy``; None when off).
        n_stories: held-out stories for the loss.
        profile_prompts, profile_tokens: the timed profile: the first ``profile_prompts``
            cloze prompts, ``profile_tokens`` greedy tokens each, Shannon entropy.
        seed: the question set's seed (its order and answer places); the story world is seed 0.
        batch_size: questions per forward pass.
        device, dtype: for loading (the card: CPU, float32).
    """
    from elens_utils.analysis.interventions import mc_accuracy
    from elens_utils.data.synthetic import StoryWorld
    from elens_utils.lens.loading import load_model

    t_all = time.perf_counter()
    t0 = time.perf_counter()
    lm = load_model(name, device=device, dtype=dtype)
    load_seconds = time.perf_counter() - t0
    source = REAL_MODELS.get(name)
    manifest = _manifest(lm, name)
    gguf = (manifest or {}).get("gguf", {})

    texts = [s.text for s in StoryWorld(0).stories(n_stories, "test", style="natural")]
    big_vocab = lm.parts.vocab_size > 100_000
    loss, loss_tokens = story_loss(lm, texts, batch_size=2 if big_vocab else 8)

    questions = fact_questions(n_questions, seed=seed, shots=shots)
    t0 = time.perf_counter()
    mc = mc_accuracy(lm, questions, scoring="cloze", normalize=normalize, batch_size=batch_size)
    mc_seconds = time.perf_counter() - t0
    correct = mc.table["correct"].to_numpy()
    k, n = int(correct.sum()), len(correct)
    low, high = wilson_interval(k, n)
    by_subject = accuracy_by_subject(correct, questions["subject"])
    letters_accuracy = None
    if letters:
        letters_accuracy = float(mc_accuracy(lm, questions, scoring="letters", batch_size=batch_size).accuracy)

    t0 = time.perf_counter()
    lm.profile(questions["cloze_prompt"].tolist()[:profile_prompts], max_new_tokens=profile_tokens, progress=False)
    profile_seconds = time.perf_counter() - t0

    return {
        "name": name,
        "title": source.title if source else Path(name).name,
        "package": source.package if source else None,
        "licence": source.licence if source else None,
        "gguf_sha256": source.sha256 if source else (manifest or {}).get("source_sha256"),
        "quantization": source.quantization if source else None,
        "gguf_tensor_types": dict(gguf["tensor_types"]) if "tensor_types" in gguf else None,
        "n_layers": int(lm.n_layers),
        "vocab_size": int(lm.parts.vocab_size),
        "hidden_size": int(getattr(lm.model.config, "hidden_size", 0) or getattr(lm.model.config, "n_embd", 0)),
        "n_params": int(sum(p.numel() for p in lm.model.parameters())),
        "loss": round(float(loss), 4),
        "loss_tokens": int(loss_tokens),
        "mc_accuracy": round(k / n, 4),
        "mc_n": n,
        "mc_correct": k,
        "mc_low": round(low, 4),
        "mc_high": round(high, 4),
        "mc_by_subject": {
            r.subject: {"n": int(r.n), "correct": int(r.n_correct), "accuracy": round(float(r.accuracy), 4),
                        "low": round(float(r.low), 4), "high": round(float(r.high), 4)}  # fmt: skip
            for r in by_subject.itertuples()
            if r.subject != "all"
        },
        "letters_accuracy": None if letters_accuracy is None else round(letters_accuracy, 4),
        "load_seconds": round(load_seconds, 1),
        "profile_seconds": round(profile_seconds, 1),
        "mc_seconds": round(mc_seconds, 1),
        "eval_seconds": round(time.perf_counter() - t_all, 1),
    }


def compare_scorings(
    name: str,
    *,
    shots: Sequence[int] = (0, 3),
    normalizations: Sequence[str] = ("sum", "token", "char"),
    n_questions: int | None = None,
    seed: int = 0,
    batch_size: int = 16,
    device: str = "cpu",
    dtype: str = "float32",
) -> list[dict[str, Any]]:
    """Accuracy of one model on the question set under letter and cloze scoring, per shot count.

    For each ``shots``: letter scoring (the next-token logits of A-D) and cloze scoring (one
    pass, every normalisation of :data:`elens_utils.analysis.cloze.NORMALIZATIONS` asked for).

    Returns:
        One dict per (scoring, shots, normalize): ``model``, ``scoring``, ``shots``,
        ``normalize`` (None for letters), ``n``, ``correct``, ``accuracy``, ``low``, ``high``
        (95 % Wilson), ``seconds`` (the scoring pass; shared by a cloze pass's normalisations),
        ``by_subject`` (subject -> accuracy, low, high, n) and, for letters, ``predicted``
        (how often each letter was chosen).
    """
    from elens_utils.analysis.cloze import option_logprobs
    from elens_utils.analysis.interventions import answer_multiple_choice
    from elens_utils.lens.loading import load_model

    lm = load_model(name, device=device, dtype=dtype)
    rows: list[dict[str, Any]] = []

    def row(scoring: str, k: int, norm: str | None, correct: Any, subjects: Any, seconds: float, **extra: Any) -> dict[str, Any]:
        table = accuracy_by_subject(correct, subjects)
        total = table.iloc[-1]
        return {
            "model": name, "scoring": scoring, "shots": k, "normalize": norm, "n": int(total["n"]),
            "correct": int(total["n_correct"]), "accuracy": round(float(total["accuracy"]), 4),
            "low": round(float(total["low"]), 4), "high": round(float(total["high"]), 4), "seconds": round(seconds, 1),
            "by_subject": {
                r.subject: {"n": int(r.n), "accuracy": round(float(r.accuracy), 4), "low": round(float(r.low), 4), "high": round(float(r.high), 4)}
                for r in table.itertuples() if r.subject != "all"
            },
            **extra,
        }  # fmt: skip

    for k in shots:
        q = fact_questions(n_questions, seed=seed, shots=k)
        t0 = time.perf_counter()
        letters = answer_multiple_choice(lm, q["prompt"].tolist(), batch_size=batch_size)
        seconds = time.perf_counter() - t0
        counts = letters["predicted"].value_counts()
        rows.append(
            row("letters", k, None, letters["predicted"].to_numpy() == q["answer"].to_numpy(), q["subject"], seconds,
                predicted={c: int(counts.get(c, 0)) for c in "ABCD"})  # fmt: skip
        )
        t0 = time.perf_counter()
        res = option_logprobs(lm, q["cloze_prompt"].tolist(), q["options"].tolist(), batch_size=batch_size)
        seconds = time.perf_counter() - t0
        for norm in normalizations:
            rows.append(row("cloze", k, norm, res.scores(norm).argmax(axis=1) == q["answer_index"].to_numpy(), q["subject"], seconds))
        print(f"{name}, {k} shots: letters {rows[-1 - len(normalizations)]['accuracy']:.3f}, cloze "
              + ", ".join(f"{r['normalize']} {r['accuracy']:.3f}" for r in rows[-len(normalizations):]), file=sys.stderr, flush=True)  # fmt: skip
    return rows


def scoring_markdown(doc: Mapping[str, Any]) -> str:
    """SCORING.md for the document :func:`main` writes with ``--compare``."""
    mach = doc["machine"]
    lines = [
        "# Letter scoring against cloze scoring, on the real models",
        "",
        "Written by `python -m elens_utils.real_card --compare`. The project's own 384 questions (`data.multiple_choice(\"facts\")`),",
        "chance 25 %, 95 % Wilson intervals. Letter scoring: the largest next-token logit of ` A`-` D` after the prompt that",
        "lists the options. Cloze scoring: the largest log-likelihood of an option's text after the question (`Answer: <option>`),",
        "summed, per token or per character. Shots: answered demonstrations before each question.",
        "",
        "| model | scoring | shots | accuracy | 95 % interval | n | time |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in doc["rows"]:
        how = r["scoring"] + (f" ({r['normalize']})" if r["normalize"] else "")
        lines.append(
            f"| `{r['model']}` | {how} | {r['shots']} | {100 * r['accuracy']:.1f} % ({r['correct']}) | "
            f"{100 * r['low']:.1f} - {100 * r['high']:.1f} % | {r['n']} | {r['seconds']:.0f} s |"
        )
    letters = [r for r in doc["rows"] if r["scoring"] == "letters"]
    if letters:
        lines += ["", "Letters chosen under letter scoring (the correct letters are balanced, 96 each):", ""]
        lines += [f"- `{r['model']}`, {r['shots']} shots: " + ", ".join(f"{c} {n}" for c, n in r["predicted"].items()) for r in letters]
    chosen = [r for r in doc["rows"] if r["scoring"] == "cloze" and r["normalize"] == "sum" and r["shots"] == 0]
    if chosen:
        subjects = list(chosen[0]["by_subject"])
        lines += ["", "Cloze (sum), 0 shots, per subject (32 questions each):", ""]
        lines += ["| subject | " + " | ".join(f"`{r['model']}`" for r in chosen) + " |", "|---|" + "---:|" * len(chosen)]
        for s in subjects:
            cells = [f"{100 * r['by_subject'][s]['accuracy']:.0f} % ({100 * r['by_subject'][s]['low']:.0f}-{100 * r['by_subject'][s]['high']:.0f})" for r in chosen]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    load = mach.get("load_average_at_start")
    lines += [
        "",
        f"Times: {mach.get('cpu')}, {mach.get('logical_cores')} logical cores, {mach.get('threads')} torch thread(s), float32"
        + (f"; load average {load[0]:.2f} when the run started (other work shared the machine)." if load else "."),
        "",
    ]
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux/macOS
        load = None
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_start": load,
    }


def build_card(entries: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], machine: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card.json document for ``entries`` (from :func:`evaluate_model`)."""
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "generated_by": "python -m elens_utils.real_card",
        "question_set": {
            "source": "facts (elens_utils.data.fact_questions)",
            "licence": LICENCE,
            "scoring": "cloze",
            "chance": 0.25,
            **{k: settings[k] for k in ("n_questions", "seed", "shots", "normalize") if k in settings},
        },
        "loss_data": {"world": "StoryWorld(0)", "split": "test", "rendering": "natural", "n_stories": settings.get("n_stories")},
        "profile": {"prompts": settings.get("profile_prompts"), "tokens": settings.get("profile_tokens"), "decoding": "greedy"},
        "machine": dict(machine if machine is not None else _machine()),
        "versions": model_versions(),
        "models": [dict(e) for e in entries],
    }


def _interval_problems(m: Mapping[str, Any], where: str) -> list[str]:
    """A model entry's interval that does not hold its accuracy, in words."""
    if all(isinstance(m.get(k), float) for k in ("mc_low", "mc_accuracy", "mc_high")):
        if not m["mc_low"] <= m["mc_accuracy"] <= m["mc_high"]:
            return [f"{where}: the interval does not hold the accuracy"]
    return []


def validate_card(card: Mapping[str, Any]) -> None:
    """Raise :class:`ElensError` when ``card`` does not follow the card.json schema."""
    top = {"schema_version": int, "question_set": dict, "loss_data": dict, "machine": dict, "models": list}
    problems = card_problems(card, top, MODEL_FIELDS, ("mc_accuracy", "mc_low", "mc_high"), model_check=_interval_problems)
    if problems:
        raise ElensError("Bad real-model card: " + "; ".join(problems) + ".")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def card_markdown(card: Mapping[str, Any]) -> str:
    """CARD.md for ``card``."""
    q, mach = card["question_set"], card["machine"]
    lines = [
        "# The real models",
        "",
        "Two real pretrained LMs that install from the package registry as GGUF files (`real-models.txt`) and load",
        "offline as `load_model(\"real/...\")`. Numbers from `python -m elens_utils.real_card`; the lens reads the",
        "4-bit quantized weights (dequantized to float32), not the original checkpoints.",
        "",
        "| model | source package | licence | quantization (GGUF tensor types) | blocks | V | width | parameters |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for m in card["models"]:
        types = ", ".join(f"{k} {v}" for k, v in sorted((m["gguf_tensor_types"] or {}).items())) or "-"
        lines.append(
            f"| `{m['name']}` ({m['title']}) | {m['package'] or '-'} | {m['licence'] or '-'} | {m['quantization'] or '-'} ({types}) | "
            f"{m['n_layers']} | {m['vocab_size']:,} | {m['hidden_size']} | {m['n_params'] / 1e6:.1f} M |"
        )
    lines += [
        "",
        "| model | held-out loss (nats/token) | multiple choice (cloze) | 95 % interval | letter scoring (`--letters`) | load | profile | evaluation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in card["models"]:
        lines.append(
            f"| `{m['name']}` | {m['loss']:.3f} ({m['loss_tokens']:,} tokens) | {_pct(m['mc_accuracy'])} ({m['mc_correct']}/{m['mc_n']}) | "
            f"{_pct(m['mc_low'])} - {_pct(m['mc_high'])} | {_pct(m['letters_accuracy']) if m['letters_accuracy'] is not None else 'not run'} | "
            f"{m['load_seconds']:.1f} s | {m['profile_seconds']:.1f} s | {m['eval_seconds']:.0f} s |"
        )
    subjects = list(dict.fromkeys(s for m in card["models"] for s in m["mc_by_subject"]))
    if subjects:
        lines += ["", "Multiple choice per subject (cloze; each subject's questions, 95 % Wilson interval):", ""]
        lines += ["| subject | " + " | ".join(f"`{m['name']}`" for m in card["models"]) + " |"]
        lines += ["|---|" + "---:|" * len(card["models"])]
        for s in subjects:
            cells = []
            for m in card["models"]:
                r = m["mc_by_subject"].get(s)
                cells.append("-" if r is None else f"{100 * r['accuracy']:.0f} % ({100 * r['low']:.0f}-{100 * r['high']:.0f}), n = {r['n']}")
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    load = mach.get("load_average_at_start")
    lines += [
        "",
        f"Multiple choice: the project's own questions (`data.multiple_choice(\"facts\")`, {q.get('n_questions') or 384} questions, "
        f"seed {q.get('seed', 0)}, {q.get('shots', 0)} demonstrations). {q['licence']}",
        f"Cloze scoring: the log-likelihood (normalize = `{q.get('normalize', 'sum')}`) of each option's text after `Answer:`; the largest",
        "wins. Chance is 25 %. Letter scoring (the next-token logits of A-D after the prompt that lists the options) is at",
        "chance for both models, with or without demonstrations: see `SCORING.md` (`--compare`); `--letters` adds it here.",
        f"Held-out loss: the first {card['loss_data'].get('n_stories')} stories of the story world's test split (seed 0), natural English,",
        "each one sequence, every token scored after the first (after the BOS token for a tokenizer that adds one: Gemma-3), no EOS.",
        f"Times: {mach.get('cpu')}, {mach.get('logical_cores')} logical cores, {mach.get('threads')} torch thread(s)"
        + (f", GPU {mach['gpu']}" if mach.get("gpu") else ", no GPU")
        + (f"; load average {load[0]:.2f} when the run started (other work on the machine slows every time shown)." if load else "."),
        f"Load: `load_model` of the cached conversion, checksums verified. Profile: {card['profile'].get('prompts')} prompts,",
        f"{card['profile'].get('tokens')} greedy tokens, Shannon entropy. Evaluation: everything above for the model, loading included.",
        "",
    ]
    return "\n".join(lines)


def write_card(card: Mapping[str, Any], root: str | os.PathLike[str] = DEFAULT_ROOT) -> tuple[Path, Path]:
    """Write ``root/card.json`` and ``root/CARD.md``, each atomically."""
    validate_card(card)
    root = Path(root)
    with atomic_file(root / CARD_JSON) as fh:
        fh.write(json.dumps(card, indent=1) + "\n")
    with atomic_file(root / CARD_MD) as fh:
        fh.write(card_markdown(card))
    return root / CARD_JSON, root / CARD_MD


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elens_utils.real_card", description="Evaluate the real models and write real/card.json and real/CARD.md."
    )
    parser.add_argument("--out", type=Path, default=Path(DEFAULT_ROOT))
    parser.add_argument("--models", nargs="+", default=list(REAL_MODELS))
    parser.add_argument("--n-questions", type=int, default=None, help="questions of the set (default: all 384)")
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--normalize", choices=("sum", "token", "char"), default="sum")
    parser.add_argument("--letters", action="store_true", help="also measure letter scoring (slow on a CPU)")
    parser.add_argument("--n-stories", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a second thread gains little on a shared 2-core machine)")
    parser.add_argument(
        "--compare", action="store_true",
        help="instead of the card: letter against cloze scoring, 0 and 3 shots, into scoring.json and SCORING.md",
    )  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    def compare() -> None:
        machine = _machine()
        rows = [r for name in args.models for r in compare_scorings(name, n_questions=args.n_questions)]
        doc = {"generated_by": "python -m elens_utils.real_card --compare", "machine": machine, "versions": model_versions(), "rows": rows}
        with atomic_file(args.out / SCORING_JSON) as fh:
            fh.write(json.dumps(doc, indent=1) + "\n")
        with atomic_file(args.out / SCORING_MD) as fh:
            fh.write(scoring_markdown(doc))
        print(args.out / SCORING_JSON)
        print(args.out / SCORING_MD)

    def card() -> None:
        settings = {
            "n_questions": args.n_questions, "seed": 0, "shots": args.shots, "normalize": args.normalize,
            "n_stories": args.n_stories, "profile_prompts": 8, "profile_tokens": 16,
        }  # fmt: skip
        machine = _machine()
        entries = []
        for name in args.models:
            e = evaluate_model(
                name, n_questions=args.n_questions, shots=args.shots, normalize=args.normalize, letters=args.letters,
                n_stories=args.n_stories,
            )  # fmt: skip
            entries.append(e)
            print(
                f"{name}: loss {e['loss']:.3f}  MC {100 * e['mc_accuracy']:.1f}% "
                f"[{100 * e['mc_low']:.1f}, {100 * e['mc_high']:.1f}]  {e['eval_seconds']:.0f} s",
                file=sys.stderr, flush=True,
            )  # fmt: skip
        for path in write_card(build_card(entries, settings, machine), args.out):
            print(path)

    return run_command(compare if args.compare else card)


if __name__ == "__main__":
    sys.exit(main())

