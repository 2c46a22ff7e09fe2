"""The embedded model zoo: small language models of four real architectures, trained here.

Four families with the real Hugging Face architectures -- GPT-2, Llama, Gemma-2, Qwen3 -- each at
three depths (:data:`ZOO_DEPTHS`), trained by one seeded recipe on the story world of
:mod:`elens_utils.data.synthetic`, so that every chapter of the book means something without the Hub.
Every model is a ``save_pretrained`` directory (bf16 safetensors, config, tokenizer) that loads
with ``AutoModelForCausalLM.from_pretrained(path)`` like a Hub checkpoint.

Commands::

    python -m elens_utils.zoo train --family llama --layers 8 --out zoo     # one model: zoo/llama-8L
    python -m elens_utils.zoo train --all --out zoo --jobs 2                # the 12 models
    python -m elens_utils.zoo evaluate zoo/llama-8L                         # metrics as JSON
    python -m elens_utils.zoo card --root zoo                               # zoo/card.json, zoo/CARD.md
    python -m elens_utils.zoo speed --families llama --layers 2 8           # tokens/s of the recipe

The architectures
-----------------
All families share the shape of :class:`~elens_utils.models.zoo_arch.ZooShape` (width 64, 4 heads of 16, FFN
width 256, context 512, tied unembedding, no dropout), so at one depth the families differ in
architecture alone (the depths also differ in training: the recipe gives the 8-block models more
tokens and a look-up phase).
(Width 64, not 128: the training steps, not the parameters, are what the CPU budget buys, and
the in-context skills need thousands of steps; see the recipe.)
What stays family-specific is what makes the family: GPT-2's learned positions, LayerNorm and
plain GELU MLP with multi-head attention; Llama's RoPE, RMSNorm, SwiGLU and grouped-query
attention (2 KV heads); Gemma-2's sqrt(d)-scaled embeddings, (1 + w) RMSNorms around both
sub-blocks, GeGLU, alternating sliding-window (64) / global attention and soft-capping of the
attention (50.0) and final logits (30.0), the real values; Qwen3's q/k norms and an unembedding
padded past the tokenizer (384 rows for 341 tokens, like real Qwen3). Gated MLPs have three FFN
matrices where GPT-2 has two, so at equal FFN width they hold more parameters (see the card).

Every family uses the story world's word-level tokenizer (:func:`~elens_utils.data.synthetic.build_tokenizer`,
341 tokens, ``<pad>=0 <bos>=1 <eos>=2``, prepends ``<bos>``); the config carries these ids.

The recipe
----------
:class:`~elens_utils.zoo.recipe.Recipe`, whose module gives the phases and the reasons. This
module holds the corpus (:func:`training_documents`), the training run (:func:`train_model`,
:func:`extend_mc`), the evaluation and the command line; the rest lives in
:mod:`~elens_utils.zoo.documents`, :mod:`~elens_utils.zoo.batches`,
:mod:`~elens_utils.zoo.training_step`, :mod:`~elens_utils.zoo.scoring`,
:mod:`~elens_utils.zoo.checkpoint`, :mod:`~elens_utils.zoo.card` and
:mod:`~elens_utils.zoo.parallel_training`. Every public name this module had before that split
is still importable from here. Of its private helpers only those still defined here and the
document generators (``_qa_docs``, ``_mc_docs``, ``_lookup_docs``, ``_focus_docs``) kept their
names; the others moved, most of them renamed (``_lr_at`` is now
:func:`~elens_utils.zoo.training_step.lr_at`, ``_versions``
:func:`~elens_utils.core.provenance.model_versions`), and code that used them needs the new names.

Evaluation
----------
:func:`evaluate_model` loads a model through :func:`~elens_utils.lens.loading.load_model` (float32,
parity check included) and measures on held-out items of the same world (``split="test"`` for
the card, ``"validation"`` while tuning):

* ``loss``: mean next-token cross-entropy in nats per token over held-out documents of the
  training mix (each document alone, from ``<bos>`` through ``<eos>``);
* ``mc_accuracy``: multiple-choice reading comprehension, deterministic: the next-token logits
  of the letters ``A``-``D`` after ``answer :`` are compared and the largest wins (ties: the
  earlier letter); chance is 25 %;
* ``task_accuracy``: greedy answers to the task prompts of the task-type experiment, exact
  match: ``semantic`` (who / what the story is about: the headline number), ``counting``
  (number of words) and ``continuation`` (the story's last sentence).

Prompts are batched only with prompts of the same length, so no padding enters any forward pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from elens_utils.core.errors import ElensError, run_command
from elens_utils.data.synthetic import LETTERS, NEWLINE, Document, StoryWorld, build_tokenizer, words  # noqa: F401 (NEWLINE: re-exported)
from elens_utils.models.zoo_arch import (  # the architectures; re-exported from their old home
    ZOO_DEPTHS,
    ZOO_FAMILIES,
    ZooShape,
    build_model,
    check_family,
    check_layers,
    model_name,
    zoo_config,
)
from elens_utils.zoo.batches import (
    TrainingBatches,
    docs_for,
    document_batches,
    encode_documents,
    take_batches,
)
from elens_utils.zoo.card import (
    CARD_FIELDS,
    CARD_JSON,  # noqa: F401 (re-exported)
    CARD_MD,  # noqa: F401 (re-exported)
    CARD_SCHEMA_VERSION,  # noqa: F401 (re-exported)
    card_from_results,
    validate_card,
    write_card,
)
from elens_utils.zoo.checkpoint import METADATA_FILE, read_meta, save_atomically, versions, write_meta

# The document generators, under the names the functions below look them up by: a variant bound
# here (research/zoo-readout does) reaches training_documents, lookup_questions and the batches.
from elens_utils.zoo.documents import focus_docs as _focus_docs
from elens_utils.zoo.documents import kept_options  # noqa: F401 (re-exported)
from elens_utils.zoo.documents import lookup_docs as _lookup_docs
from elens_utils.zoo.documents import mc_docs as _mc_docs
from elens_utils.zoo.documents import qa_docs as _qa_docs
from elens_utils.zoo.parallel_training import train_zoo, zoo_models
from elens_utils.zoo.recipe import ZOO_SEED, Recipe
from elens_utils.zoo.scoring import document_loss, greedy_continuations, mc_letter_logits
from elens_utils.zoo.training_step import (
    entity_steps,
    lr_at,
    make_optimizer,
    step_weights,
    torch_threads,
    weighted_loss,
)

__all__ = [
    "CARD_FIELDS",
    "ZOO_DEPTHS",
    "ZOO_FAMILIES",
    "ZOO_SEED",
    "Recipe",
    "ZooShape",
    "card_from_results",
    "document_batches",
    "encode_documents",
    "evaluate_model",
    "evaluate_zoo",
    "extend_mc",
    "lookup_questions",
    "main",
    "mc_letter_logits",
    "measure_speed",
    "model_name",
    "train_model",
    "train_zoo",
    "validate_card",
    "write_card",
    "zoo_config",
]

_CORPUS_KINDS = ("story", "task", "format")  # drawn by StoryWorld.training_corpus
_MIX_KINDS = (*_CORPUS_KINDS, "mc", "qa", "lookup")


def _init_qk_norms(model: torch.nn.Module, gain: float) -> int:
    """Start the query/key RMSNorm gains (Qwen3's ``q_norm`` / ``k_norm``) at ``gain``; returns
    how many norms it set.

    With unit gains a normalised query and key of ``head_dim`` 16 bound every attention logit
    to [-4, 4], so a head cannot yet attend sharply to one token; the gains must first grow,
    step by step. In the look-up-phase recipe Qwen3-8L stayed at chance on the letter read-out
    with unit gains and reached 100% with gains of 2 (``research/zoo-readout``, rows 21 and 23). A
    gain of 2 bounds the logits at 16, near the learned scale that query-key
    normalisation proposes for sequences of 128 (log2(128^2 - 128) = 14, Henry et al. 2020).
    """
    n = 0
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(("q_norm", "k_norm")) and getattr(module, "weight", None) is not None:
                module.weight.fill_(gain)
                n += 1
    return n


def lookup_questions(world: StoryWorld, n: int, split: str = "test") -> tuple[list[str], list[int]]:
    """``n`` letter look-up prompts of ``split`` (:func:`_lookup_docs` without the letter) and
    the index (0-3) of each answer: the MC read-out alone, a diagnostic of :func:`evaluate_model`.
    """
    docs = _lookup_docs(world, split)
    prompts, gold = [], []
    for _ in range(n):
        prompt, _, letter = next(docs).text.rpartition(" ")
        prompts.append(prompt)
        gold.append(LETTERS.index(letter))
    return prompts, gold


def training_documents(world: StoryWorld, n_tokens: int, mix: Mapping[str, float], split: str = "train") -> list[Document]:
    """The recipe's corpus: ``world.training_corpus`` for stories, task prompts and format
    texts, with the recipe's MC documents (:func:`_mc_docs`) and open questions
    (:func:`_qa_docs`) mixed in.

    ``mix`` weighs the kinds ``story``, ``task``, ``format``, ``mc`` and ``qa`` (per document).
    A generator seeded by the world's seed picks the kind of each document in turn; the corpus
    stops at the first document that reaches ``n_tokens`` (counted as ``training_corpus`` does).
    Every document comes from stories and topics of ``split``.
    """
    kinds = [k for k in _MIX_KINDS if mix.get(k, 0) > 0]
    bad = sorted(set(mix) - set(_MIX_KINDS))
    if bad or not kinds:
        raise ElensError(f"Bad corpus mix {dict(mix)!r}: weigh some of {', '.join(_MIX_KINDS)}.")
    base = {k: float(mix[k]) for k in kinds if k in _CORPUS_KINDS}
    streams: dict[str, Iterator[Document]] = {}
    if base:  # training_corpus draws the kinds in its own mix; more than enough documents
        streams["base"] = iter(world.training_corpus(n_tokens=n_tokens, split=split, mix=base))  # type: ignore[arg-type]
    if "mc" in kinds:
        streams["mc"] = _mc_docs(world, split)
    if "qa" in kinds:
        streams["qa"] = _qa_docs(world, split)
    if "lookup" in kinds:
        streams["lookup"] = _lookup_docs(world, split, cut=True)
    names = [*(["base"] if base else []), *(k for k in ("mc", "qa", "lookup") if k in kinds)]
    weights = [sum(base.values()) if n == "base" else float(mix[n]) for n in names]
    rng = random.Random(f"elens-zoo-corpus/{world.seed}/{split}")
    out: list[Document] = []
    total = 0
    while total < n_tokens:
        x, acc, pick = rng.random() * sum(weights), 0.0, names[-1]
        for n, w in zip(names, weights):
            acc += w
            if x < acc:
                pick = n
                break
        doc = next(streams[pick])
        out.append(doc)
        total += len(words(doc.text)) + 2
    return out


def _training_batches(recipe: Recipe, n_tokens: int, focus_salt: str = "-focus", lookup_tokens: int = 0) -> TrainingBatches:
    """The batches of a budget of ``n_tokens`` processed tokens, in training order.

    Each batch is ``(ids, weights, kinds, focus)``; ``focus`` batches (MC phase) are trained on
    their answer letters alone. The first ``lookup_tokens`` of the budget are look-up documents
    (the look-up phase); the MC phase takes the last ``mc_phase_frac`` of the rest.

    The phase may end a little short of ``lookup_tokens``: its documents are drawn to hold 1.02
    times that count with ``<bos>`` and ``<eos>`` counted, but a document trains on one token
    fewer, so documents of ~40 tokens fill about 99.6 % of it (6.97 M of the 8-block models'
    7 M). The rest of the budget goes to the mix. Drawing more documents would reshuffle the
    phase's batches and change the shipped weights, so it stays.
    """
    if not 0 <= lookup_tokens < n_tokens:
        raise ElensError(f"The look-up phase ({lookup_tokens} tokens) must be shorter than the budget ({n_tokens} tokens).")
    world = StoryWorld(recipe.seed)
    margin = 2 * recipe.batch_size * recipe.seq_len
    lookup: list[tuple] = []
    if lookup_tokens > 0:  # other questions and cuts than the mix's look-ups
        phase_docs = _lookup_docs(world, cut=True, salt="-lookup-phase", min_options=recipe.lookup_phase_min_options)
        ldocs = docs_for(phase_docs, lookup_tokens * 1.02 + margin)
        lb = document_batches(ldocs, batch_size=recipe.batch_size, seq_len=recipe.seq_len, seed=recipe.seed + 2)
        lookup = take_batches(lb.batches, lookup_tokens)
        n_tokens -= sum(int((b[1] > 0).sum()) for b in lookup)
    n_focus_tokens = int(n_tokens * recipe.mc_phase_frac * recipe.mc_focus_share)
    n_main_tokens = n_tokens - n_focus_tokens
    docs = training_documents(world, int(n_main_tokens * 1.02) + margin, recipe.mix)
    main = take_batches(document_batches(docs, batch_size=recipe.batch_size, seq_len=recipe.seq_len, seed=recipe.seed).batches, n_main_tokens)
    if not main:
        raise ElensError(f"A budget of {n_tokens} tokens is less than one batch.")
    focus: list[tuple] = []
    if n_focus_tokens > 0:
        stream = _focus_docs(world, salt=focus_salt, n_questions=recipe.mc_questions_per_doc, max_tokens=recipe.seq_len)
        fdocs = docs_for(stream, n_focus_tokens * 1.02 + margin)
        fb = document_batches(fdocs, batch_size=recipe.batch_size, seq_len=recipe.seq_len, seed=recipe.seed + 1)
        focus = take_batches(fb.batches, n_focus_tokens)
    # The MC phase: the last main batches interleaved evenly with the focus batches.
    n_phase_main = round(len(focus) * (1 - recipe.mc_focus_share) / recipe.mc_focus_share) if focus else 0
    n_phase_main = min(n_phase_main, len(main) - 1)
    head, tail = main[: len(main) - n_phase_main], main[len(main) - n_phase_main :]
    out = [(*b, False) for b in head]
    n_phase = len(tail) + len(focus)
    i_main = i_focus = 0
    for k in range(n_phase):
        # a focus batch whenever the focus batches fall behind their share of the phase so far
        if i_focus < len(focus) and (i_main >= len(tail) or i_focus * n_phase < (k + 1) * len(focus) - 0.5 * n_phase / max(1, len(focus))):
            out.append((*focus[i_focus], True))
            i_focus += 1
        else:
            out.append((*tail[i_main], False))
            i_main += 1
    out = [(*b, False) for b in lookup] + out
    return TrainingBatches(out)


def train_model(
    family: str,
    n_layers: int,
    out_dir: str | os.PathLike,
    *,
    seed: int | None = None,
    tokens: int | None = None,
    recipe: Recipe | None = None,
    threads: int | None = 1,
    dtype: str = "bfloat16",
    progress: bool | None = None,
    log_every: int = 25,
    eval_every: int = 500,
    callback: Any = None,
) -> dict[str, Any]:
    """Train one zoo model and write it to ``out_dir`` (atomically: temp dir, then rename).

    Args:
        family: one of :data:`ZOO_FAMILIES`.
        n_layers: number of decoder blocks.
        out_dir: the model directory to write (replaced if it exists).
        seed: overrides ``recipe.seed`` (world, weights and data order all follow it).
        tokens: overrides the recipe's budget for this depth (predicted, non-pad tokens).
        recipe: the :class:`Recipe` (default: the zoo's).
        threads: torch intra-op threads while training (1: bit-reproducible on one machine);
            None leaves torch's setting alone.
        dtype: the dtype of the saved weights: ``"bfloat16"`` (shipping) or ``"float32"``.
        progress: show a progress bar (None: only on a terminal).
        log_every: steps between entries of the loss history (and calls of ``callback``).
        eval_every: steps between validation checks (a multiple of ``log_every``; 0: none):
            the history entry gains ``val_mc`` and ``val_readout``, the accuracies on 100 MC
            questions and 100 look-up prompts (:func:`lookup_questions`) of the validation
            split, and a line goes to stderr; the read-out appears abruptly, so its step is
            worth keeping.
        callback: ``callback(step, model)``, called every ``log_every`` steps in eval mode
            (monitoring; it must not touch the RNG or the weights).

    Returns:
        The metadata written to ``out_dir/zoo_model.json`` (training tokens, time, losses...).
    """
    check_family(family)
    check_layers(n_layers)
    recipe = recipe or Recipe()
    if seed is not None:
        recipe = dataclasses.replace(recipe, seed=seed)
    if dtype not in ("bfloat16", "float32"):
        raise ElensError(f"Zoo weights are saved as bfloat16 or float32, not {dtype!r} (float16 overflows Gemma-2).")
    if eval_every and eval_every % log_every:
        raise ElensError(f"eval_every ({eval_every}) must be a multiple of log_every ({log_every}), or 0.")
    budget = tokens if tokens is not None else recipe.tokens_for(n_layers)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0:
        raise ElensError(f"The token budget must be a positive integer, got {budget!r}.")
    out_dir = Path(out_dir)
    from tqdm.auto import tqdm
    from transformers import GenerationConfig

    with torch_threads(threads):
        t_data = time.perf_counter()
        # an overridden budget keeps the recipe's share of look-up tokens
        lookup_tokens = round(budget * recipe.lookup_tokens_for(n_layers) / recipe.tokens_for(n_layers))
        data = _training_batches(recipe, budget, lookup_tokens=lookup_tokens)
        t_data = time.perf_counter() - t_data
        config = zoo_config(family, n_layers, recipe.shape)
        n_steps = len(data.batches)
        checks = _validation_checks(StoryWorld(recipe.seed)) if eval_every else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            model = build_model(config, family)
            _init_qk_norms(model, recipe.qk_norm_gain)
            model.train()
            opt = make_optimizer(model, recipe)
            history: list[dict[str, float]] = []
            ema = None
            done_tokens = 0
            t0 = time.perf_counter()
            bar = tqdm(data.batches, desc=model_name(family, n_layers), unit="step", disable=None if progress is None else not progress, file=sys.stderr)
            for step, (ids, w, kinds, focus) in enumerate(bar):
                lr = lr_at(step, n_steps, recipe)
                for g in opt.param_groups:
                    g["lr"] = lr
                logits = model(input_ids=ids).logits
                loss = weighted_loss(logits, ids, step_weights(step, n_steps, ids, w, kinds, focus, recipe))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if recipe.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip, foreach=False)
                opt.step()
                value = loss.item()
                if not math.isfinite(value):
                    raise ElensError(f"Training {model_name(family, n_layers)} diverged at step {step} (loss {value}); lower the learning rate.")
                done_tokens += int((w > 0).sum())
                if not focus:  # the focus batches' letter loss is another quantity
                    ema = value if ema is None or step == entity_steps(n_steps, recipe) else 0.95 * ema + 0.05 * value
                if step % log_every == 0 or step == n_steps - 1:
                    elapsed = time.perf_counter() - t0
                    history.append(
                        {"step": step, "loss": round(ema or value, 4), "batch_loss": round(value, 4), "focus": bool(focus),
                         "lr": lr, "tokens": done_tokens, "seconds": round(elapsed, 1)}
                    )  # fmt: skip
                    bar.set_postfix(loss=f"{ema or value:.3f}", tok_s=f"{done_tokens / max(elapsed, 1e-9):,.0f}")
                    check = checks is not None and (step % eval_every == 0 or step == n_steps - 1)
                    if callback is not None or check:
                        model.eval()
                        with torch.no_grad():
                            if check:
                                history[-1].update(checks(model))
                                bar.write(f"{model_name(family, n_layers)} step {step}: {history[-1]}", file=sys.stderr)
                            if callback is not None:
                                callback(step, model)
                        model.train()
            bar.close()
            train_seconds = time.perf_counter() - t0
        model.eval()
        model.generation_config = GenerationConfig(
            bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
        )
        meta = {
            "name": model_name(family, n_layers),
            "family": family,
            "n_layers": n_layers,
            "world_seed": recipe.seed,
            "n_params": sum(p.numel() for p in model.parameters()),
            "train_tokens": data.n_real_tokens,
            "train_docs": data.n_docs,
            "train_steps": n_steps,
            "train_seconds": round(train_seconds, 1),
            "data_seconds": round(t_data, 1),
            "train_threads": torch.get_num_threads(),
            "tokens_per_second": round(data.n_real_tokens / max(train_seconds, 1e-9), 1),
            "final_train_loss": history[-1]["loss"] if history else None,
            "history": history,
            "dtype": dtype,
            "recipe": recipe.to_json(),
            "versions": versions(),
        }
        if dtype == "bfloat16":
            model.to(torch.bfloat16)
        save_atomically(model, out_dir, meta)
    return meta


def _letter_accuracy(model, tok, prompts: Sequence[str], gold: Sequence[int], batch_size: int = 64) -> float:
    """Share of ``prompts`` whose largest letter logit (:func:`mc_letter_logits`) is ``gold`` (0-3)."""
    pred = mc_letter_logits(model, tok, prompts, batch_size=batch_size).argmax(-1).tolist()
    return sum(p == g for p, g in zip(pred, gold)) / len(gold)


def _mc_questions(world: StoryWorld, n: int, split: str) -> tuple[list[str], list[int]]:
    """``n`` MC prompts of ``split`` and the index (0-3) of each answer."""
    questions = world.multiple_choice(n, split=split)
    return [q.prompt for q in questions], [q.answer_index for q in questions]


def _validation_checks(world: StoryWorld, n: int = 100):
    """``checks(model) -> {"val_mc", "val_readout"}``: accuracies on ``n`` validation MC questions
    and ``n`` validation look-up prompts (the training curve of the read-out)."""
    tok = build_tokenizer()
    mc, lookup = _mc_questions(world, n, "validation"), lookup_questions(world, n, "validation")

    def checks(model) -> dict[str, float]:
        return {"val_mc": round(_letter_accuracy(model, tok, *mc), 4), "val_readout": round(_letter_accuracy(model, tok, *lookup), 4)}

    return checks


def _validation_mc(model, tok, world: StoryWorld, n_questions: int) -> float:
    return _letter_accuracy(model, tok, *_mc_questions(world, n_questions, "validation"))


def extend_mc(
    model_dir: str | os.PathLike,
    *,
    recipe: Recipe | None = None,
    n_questions: int = 200,
    threads: int | None = 1,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Continue the MC phase of a trained zoo model until it reads out the answer letter.

    The multiple-choice read-out (find the option that the story mentions, answer its letter)
    appears abruptly, and at a point that varies between architectures and runs: in calibration
    one 8-block model reached 92 % within the recipe's budget and another of the same size was
    still at chance (always the same letter). So models of at least
    ``recipe.mc_extend_min_layers`` blocks whose MC accuracy on ``n_questions`` questions of the
    *validation* split (never the test split of the card) is below ``recipe.mc_extend_target``
    continue from their checkpoint: rounds of ``recipe.mc_extend_round_tokens`` tokens of the MC
    phase's mix (focus batches on the answer letter and main batches, 80/20, the recipe's
    learning-rate shape, a fresh optimizer), each followed by the validation check, until the
    target or ``recipe.mc_extend_max_rounds`` rounds. Round ``r`` uses MC questions of its own
    (other salts) on the training stories. Deterministic on one thread, like training.

    The checkpoint is rewritten atomically after every round (an interrupted extension keeps
    the rounds done); ``zoo_model.json`` gains ``mc_extension`` (rounds with tokens, seconds and
    validation accuracy), and its ``train_tokens`` / ``train_seconds`` include the extension.

    Returns:
        The updated metadata.
    """
    from transformers import AutoModelForCausalLM

    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    if not meta:
        raise ElensError(f"{model_dir} is not a zoo model (no {METADATA_FILE}): train it with `python -m elens_utils.zoo train`.")
    if recipe is None:
        recipe = Recipe.from_json(meta["recipe"])
    ext = meta.setdefault("mc_extension", {"target": recipe.mc_extend_target, "n_questions": n_questions, "rounds": []})
    if meta["n_layers"] < recipe.mc_extend_min_layers:
        return meta
    tok = build_tokenizer()
    world = StoryWorld(recipe.seed)
    from tqdm.auto import tqdm

    with torch_threads(threads):
        kwargs = {"attn_implementation": "eager"} if meta["family"] == "gemma2" else {}
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **kwargs)
        model.eval()
        with torch.no_grad():
            acc = _validation_mc(model, tok, world, n_questions)
        ext.setdefault("start_accuracy", acc)
        while acc < recipe.mc_extend_target and len(ext["rounds"]) < recipe.mc_extend_max_rounds:
            r = len(ext["rounds"])
            round_recipe = dataclasses.replace(recipe, entity_warmup_steps=0, mc_phase_frac=1.0)
            data = _training_batches(round_recipe, recipe.mc_extend_round_tokens, focus_salt=f"-ext{r}")
            n_steps = len(data.batches)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(recipe.seed + 1000 + r)
                model.train()
                opt = make_optimizer(model, recipe)
                t0 = time.perf_counter()
                done = 0
                bar = tqdm(data.batches, desc=f"{meta['name']} MC round {r + 1}", unit="step", disable=None if progress is None else not progress, file=sys.stderr)
                for step, (ids, w, kinds, focus) in enumerate(bar):
                    for g in opt.param_groups:
                        g["lr"] = lr_at(step, n_steps, recipe)
                    loss = weighted_loss(model(input_ids=ids).logits, ids, step_weights(step, n_steps, ids, w, kinds, focus, round_recipe))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if recipe.grad_clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip, foreach=False)
                    opt.step()
                    if not math.isfinite(loss.item()):
                        raise ElensError(f"The MC extension of {meta['name']} diverged at round {r + 1}, step {step}.")
                    done += int((w > 0).sum())
                bar.close()
                seconds = time.perf_counter() - t0
            model.eval()
            with torch.no_grad():
                acc = _validation_mc(model, tok, world, n_questions)
            ext["rounds"].append({"tokens": done, "steps": n_steps, "seconds": round(seconds, 1), "validation_mc_accuracy": acc})
            meta["train_tokens"] = int(meta["train_tokens"]) + done
            meta["train_seconds"] = round(float(meta["train_seconds"]) + seconds, 1)
            print(f"{meta['name']}: MC extension round {r + 1}: validation MC {acc:.3f}", file=sys.stderr, flush=True)
            saved = model.to(torch.bfloat16) if meta.get("dtype") == "bfloat16" else model
            save_atomically(saved, model_dir, meta)
            model.float()
    if not ext["rounds"]:  # nothing to do: record the check in the metadata only
        write_meta(model_dir, meta)
    return meta


def measure_speed(
    family: str, n_layers: int, *, threads: int = 1, steps: int = 6, warmup: int = 2, recipe: Recipe | None = None
) -> float:
    """Training throughput of the recipe in predicted tokens per second (a few timed steps)."""
    recipe = recipe or Recipe()
    with torch_threads(threads):
        data = _training_batches(recipe, (steps + warmup + 1) * recipe.batch_size * 60)
        torch.manual_seed(0)
        model = build_model(zoo_config(family, n_layers, recipe.shape), family)
        model.train()
        opt = make_optimizer(model, recipe)
        t0, n = 0.0, 0
        for step, (ids, w, *_) in enumerate(data.batches[: steps + warmup]):
            if step == warmup:
                t0 = time.perf_counter()
            loss = weighted_loss(model(input_ids=ids).logits, ids, w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step >= warmup:
                n += int((w > 0).sum())
        seconds = time.perf_counter() - t0
    return n / seconds


def evaluate_model(
    path: str | os.PathLike,
    *,
    split: str = "test",
    n_questions: int = 400,
    n_task_stories: int = 40,
    n_loss_tokens: int = 30_000,
    seed: int | None = None,
    batch_size: int = 64,
    threads: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict[str, Any]:
    """Held-out metrics of a zoo model (see the module doc); deterministic.

    Args:
        path: a model directory (or an embedded name ``load_model`` resolves).
        split: ``"test"`` (the card) or ``"validation"`` (tuning).
        n_questions: multiple-choice questions (one per held-out story; letters balanced).
        n_task_stories: held-out stories whose task prompts (up to 24 each) are answered.
        n_loss_tokens: held-out document tokens for the loss.
        seed: the story world (default: the model's training seed from ``zoo_model.json``).

    Returns:
        ``{"loss", "loss_tokens", "mc_accuracy", "mc_n", "mc_letter_counts", "lookup_accuracy"
        (the letter read-out alone on ``n_questions`` prompts of :func:`lookup_questions`), "task_accuracy" (semantic),
        "task_accuracy_by_task", "task_n", "split", "world_seed", "n_params", "n_layers",
        "family", "eval_seconds"}``.
    """
    from elens_utils.lens.loading import load_model

    if split not in ("validation", "test"):
        raise ElensError(f"Evaluate on a held-out split, 'validation' or 'test', not {split!r}.")
    t0 = time.perf_counter()
    with torch_threads(threads):
        lm = load_model(os.fspath(path), device=device, dtype=dtype)
        model, tok = lm.model, lm.tokenizer
        meta = read_meta(Path(lm.name)) if Path(lm.name).is_dir() else {}
        world_seed = seed if seed is not None else int(meta.get("world_seed", ZOO_SEED))
        world = StoryWorld(world_seed)

        loss, loss_count = document_loss(model, tok, world.training_corpus(n_tokens=n_loss_tokens, split=split), batch_size)

        questions = world.multiple_choice(n_questions, split=split)
        letter_logits = mc_letter_logits(model, tok, [q.prompt for q in questions], batch_size=batch_size)
        predicted = letter_logits.argmax(-1).tolist()
        mc_correct = [p == q.answer_index for p, q in zip(predicted, questions)]
        lookup_accuracy = _letter_accuracy(model, tok, *lookup_questions(world, n_questions, split), batch_size=batch_size)

        prompts = [p for p in world.task_prompts(n_task_stories, split=split) if p.answer is not None]
        encoded = [tok(p.prompt)["input_ids"] for p in prompts]
        answers = [tok(p.answer, add_special_tokens=False)["input_ids"] for p in prompts]
        generated = greedy_continuations(model, encoded, [len(a) for a in answers], batch_size)
        by_task: dict[str, list[bool]] = defaultdict(list)
        for p, a, g in zip(prompts, answers, generated):
            by_task[p.task].append(list(a) == g)
    acc = {t: sum(v) / len(v) for t, v in sorted(by_task.items())}
    return {
        "family": lm.arch,
        "n_layers": lm.n_layers,
        "n_params": sum(p.numel() for p in model.parameters()),
        "split": split,
        "world_seed": world_seed,
        "loss": loss,
        "loss_tokens": loss_count,
        "mc_accuracy": sum(mc_correct) / len(mc_correct),
        "mc_n": len(mc_correct),
        "mc_letter_counts": {c: predicted.count(i) for i, c in enumerate(LETTERS)},
        "lookup_accuracy": lookup_accuracy,
        "task_accuracy": acc.get("semantic", float("nan")),
        "task_accuracy_by_task": acc,
        "task_n": {t: len(v) for t, v in sorted(by_task.items())},
        "eval_seconds": round(time.perf_counter() - t0, 1),
    }


def evaluate_zoo(
    root: str | os.PathLike,
    *,
    families: Sequence[str] = ZOO_FAMILIES,
    depths: Sequence[int] = ZOO_DEPTHS,
    split: str = "test",
    threads: int | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Evaluate every zoo model found under ``root``; returns one card entry per model."""
    root = Path(root)
    entries = []
    for family, n in zoo_models(families, depths):
        d = root / model_name(family, n)
        if not (d / "config.json").exists():
            continue
        entries.append(_card_entry(d, evaluate_model(d, split=split, threads=threads, **kwargs)))
        e = entries[-1]
        print(f"{e['name']:>10}: loss {e['loss']:.3f}  MC {100 * e['mc_accuracy']:.1f}%  task {100 * e['task_accuracy']:.1f}%", file=sys.stderr, flush=True)
    if not entries:
        raise ElensError(f"No zoo models under {root}: train them with `python -m elens_utils.zoo train --all --out {root}`.")
    return entries


def _card_entry(d: Path, result: Mapping[str, Any]) -> dict[str, Any]:
    meta = read_meta(d)
    size = sum(f.stat().st_size for f in d.glob("*.safetensors"))
    return {
        "name": d.name,
        "family": result["family"],
        "n_layers": int(result["n_layers"]),
        "n_params": int(result["n_params"]),
        "dtype": str(meta.get("dtype", "unknown")),
        "size_bytes": int(size),
        "train_tokens": int(meta.get("train_tokens", 0)),
        "train_seconds": float(meta.get("train_seconds", 0.0)),
        "train_threads": int(meta.get("train_threads", 0)),
        "loss": round(float(result["loss"]), 4),
        "mc_accuracy": round(float(result["mc_accuracy"]), 4),
        "mc_n": int(result["mc_n"]),
        "lookup_accuracy": round(float(result["lookup_accuracy"]), 4),
        "task_accuracy": round(float(result["task_accuracy"]), 4),
        "task_accuracy_by_task": {k: round(float(v), 4) for k, v in result["task_accuracy_by_task"].items()},
        "task_n": dict(result["task_n"]),
    }


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, prog: str = "python -m elens_utils zoo") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Train and evaluate the embedded model zoo.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one model (--family F --layers N) or the whole zoo (--all)")
    p.add_argument("--family", choices=ZOO_FAMILIES)
    p.add_argument("--layers", type=int)
    p.add_argument("--all", action="store_true")
    p.add_argument("--out", type=Path, default=Path("zoo"))
    p.add_argument("--seed", type=int)
    p.add_argument("--tokens", type=int, help="override the recipe's token budget")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2, help="models trained at once with --all")
    p.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("evaluate", help="held-out metrics of a model directory (or every model under a zoo root)")
    p.add_argument("path", type=Path)
    p.add_argument("--split", choices=("validation", "test"), default="test")
    p.add_argument("--n-questions", type=int, default=400)
    p.add_argument("--threads", type=int, default=1)

    p = sub.add_parser("card", help="evaluate the zoo and write card.json and CARD.md")
    p.add_argument("--root", type=Path, default=Path("zoo"))
    p.add_argument("--split", choices=("validation", "test"), default="test")
    p.add_argument("--n-questions", type=int, default=400)
    p.add_argument("--threads", type=int, default=1)

    p = sub.add_parser("extend", help="continue the MC phase of a trained model until its validation MC target (done by train)")
    p.add_argument("path", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("speed", help="training tokens/s of the recipe (a few steps per model)")
    p.add_argument("--families", nargs="+", default=list(ZOO_FAMILIES))
    p.add_argument("--layers", type=int, nargs="+", default=list(ZOO_DEPTHS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=6)

    args = parser.parse_args(argv)

    def body() -> None:
        if args.command == "train":
            if args.all:
                train_zoo(args.out, jobs=args.jobs, seed=args.seed, tokens=args.tokens)
            elif args.family and args.layers:
                meta = train_model(
                    args.family, args.layers, args.out / model_name(args.family, args.layers),
                    seed=args.seed, tokens=args.tokens, threads=args.threads, dtype=args.dtype,
                    progress=False if args.no_progress else None,
                )  # fmt: skip
                meta = extend_mc(args.out / model_name(args.family, args.layers), threads=args.threads,
                                 progress=False if args.no_progress else None)  # fmt: skip
                summary = {k: meta[k] for k in ("name", "n_params", "train_tokens", "train_seconds", "tokens_per_second", "final_train_loss")}
                print(json.dumps(summary))
            else:
                parser.error("give --family and --layers, or --all")
        elif args.command == "extend":
            meta = extend_mc(args.path, threads=args.threads, progress=False if args.no_progress else None)
            print(json.dumps({"name": meta["name"], **meta.get("mc_extension", {})}))
        elif args.command == "evaluate":
            if (args.path / "config.json").exists():
                print(json.dumps(evaluate_model(args.path, split=args.split, n_questions=args.n_questions, threads=args.threads)))
            else:
                for e in evaluate_zoo(args.path, split=args.split, n_questions=args.n_questions, threads=args.threads):
                    print(json.dumps(e))
        elif args.command == "card":
            entries = evaluate_zoo(args.root, split=args.split, n_questions=args.n_questions, threads=args.threads)
            settings = {"n_questions": args.n_questions, "n_task_stories": 40, "n_loss_tokens": 30_000, "dtype": "float32"}
            recipe = read_meta(args.root / entries[0]["name"]).get("recipe")  # as trained
            card = card_from_results(entries, split=args.split, eval_settings=settings, recipe=recipe)
            for path in write_card(card, args.root):
                print(path)
        elif args.command == "speed":
            for f in args.families:
                for n in args.layers:
                    tps = measure_speed(f, n, threads=args.threads, steps=args.steps)
                    print(json.dumps({"family": f, "n_layers": n, "threads": args.threads, "tokens_per_second": round(tps)}), flush=True)

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
