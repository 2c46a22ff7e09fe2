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
:class:`Recipe` (its docstring gives the reasons): AdamW (betas 0.9/0.95, weight decay on
matrices, peak rate 1e-3: a higher rate kept in-context copying from appearing at all), linear
warm-up, constant rate, linear decay over the last 15 %, gradient clipping at 1. Batches of 16
whole documents (``<bos> text <eos>``), one per row, right-padded (padding is out of the loss),
so every document starts at position 0 and attends only to itself, as a prompt does at
evaluation (packing documents into shared rows let later documents attend to earlier ones'
names and letters and slowed learning). The corpus (:func:`training_documents`) mixes the
stories, task prompts and format texts of ``StoryWorld(seed).training_corpus(split="train")``
with MC questions and open questions built on training stories (held-out stories, questions and
topics never enter). Three phases: an entity warm-up, the main phase, and an MC phase whose
focus batches train the answer letter alone; the 8-block models open with a look-up phase that
teaches the MC letter read-out.

Training runs in float32 with ``torch.manual_seed(seed)``: on one thread (the default) two runs
of the same seed on the same machine give bit-identical weights; other CPUs or thread counts
differ by rounding, which is what "within noise" means on the card. The checkpoint is written
once at the end, into a temporary directory beside the target, then renamed into place, with
weights cast to bfloat16 (never float16: Gemma-2's activations overflow it; bf16 weights load
exactly in float32 on CPU, which is what ``load_model`` does there).

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
import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from elens_utils.core.errors import ElensError
from elens_utils.data.synthetic import LETTERS, NEWLINE, Document, StoryWorld, build_tokenizer, words
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

ZOO_SEED = 0
METADATA_FILE = "zoo_model.json"
CARD_JSON = "card.json"
CARD_MD = "CARD.md"
CARD_SCHEMA_VERSION = 2
# Fields of every model's entry in card.json, with their types (validate_card checks them).
CARD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,  # "llama-8L": the directory under the zoo root, and zoo/<name> for load_model
    "family": str,
    "n_layers": int,
    "n_params": int,
    "dtype": str,
    "size_bytes": int,
    "train_tokens": int,
    "train_seconds": (int, float),
    "train_threads": int,
    "loss": (int, float),
    "mc_accuracy": (int, float),
    "mc_n": int,
    "lookup_accuracy": (int, float),  # the letter read-out alone (lookup_questions), mc_n prompts
    "task_accuracy": (int, float),
    "task_accuracy_by_task": dict,
    "task_n": dict,
}


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


# ------------------------------------------------------------------------------------------
# The recipe
# ------------------------------------------------------------------------------------------

_DEFAULT_MIX = {"story": 0.15, "task": 0.15, "format": 0.1, "mc": 0.35, "qa": 0.25}
_CORPUS_KINDS = ("story", "task", "format")  # drawn by StoryWorld.training_corpus
_MIX_KINDS = (*_CORPUS_KINDS, "mc", "qa", "lookup")
_QA_HEADER = "read the story and answer the question ."


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a zoo model besides its family and depth.

    The run has up to four phases, in steps:

    1. *entity warm-up* (``entity_warmup_steps``, at most a tenth of the steps): only the tokens of the world's entities
       (names, objects, colours, places, animals) are in the loss, so the model first learns
       to copy them from its context (with the full loss from the start, in-context copying
       took thousands of steps to appear in calibration);
    2. *look-up phase* (8-block models), the first ``lookup_phase_tokens`` of the budget:
       look-up documents alone (:func:`_lookup_docs`, cut stories), the MC letter read-out
       without the question, each keeping between ``lookup_phase_min_options`` and four of
       its options. On look-ups alone GPT-2-8L jumped from chance to 100 % read-out after
       about 6 k steps with four options in one run, but not by 7.5 k in another; with one to
       four after 4-4.5 k steps in two runs on the same documents, and on this phase's own
       documents not within 3.5 M tokens (about 5.5 k steps) but at 8 k steps of a 7 M-token
       phase (``research/zoo-readout``, rows 15, 22, 33, 35, 37 and 38), which the shipped zoo uses
       (row 39). The warm-up's steps are its first.
    3. *main*: next-token loss on the corpus mix (:func:`training_documents`, which may hold
       look-ups), the answers of task, open-question, MC and look-up documents weighed
       ``answer_weight``;
    4. *MC phase*, the last ``mc_phase_frac`` of the tokens after the look-up phase: main
       batches alternate with *focus* batches of MC documents whose loss is the answer letter
       alone, a share ``mc_focus_share`` of the phase's batches. (A weight on the letter inside
       mixed batches was far slower in calibration.) A focus document asks up to
       ``mc_questions_per_doc`` questions about its story (:func:`_focus_docs`), so a focus
       batch holds more letters.

    Weights depend on the position only, never on the token's value, so they do not bias the
    model's distribution at any position. The learning rate warms up over ``warmup_frac`` of
    the steps, stays at ``lr`` and decays linearly to ``min_lr_ratio * lr`` over the last
    ``decay_frac`` (a constant rate helps the late MC phase). ``tokens`` maps a depth to its
    compute budget in processed (non-pad) tokens, look-up phase included; a depth not listed
    gets ``tokens_default``.

    Qwen3's query/key norm gains start at ``qk_norm_gain`` (:func:`_init_qk_norms`): 2, not the
    real architecture's 1, because with unit gains Qwen3-8L needed four extension rounds to
    learn the MC read-out (``research/zoo-readout``, rows 21 and 23).
    """

    seed: int = ZOO_SEED
    # Only the 8-block models must learn the MC read-out, which needed ~80k focus letters after
    # the main phase in calibration, and more (extension rounds) for some families.
    tokens: Mapping[int, int] = field(default_factory=lambda: {2: 3_000_000, 4: 4_000_000, 8: 12_000_000})
    tokens_default: int = 3_000_000
    # GPT-2-8L needs the phase: without it, it stayed at chance on multiple choice through two
    # extension rounds; with it, it scored 100% (research/zoo-readout, rows 34 and 38). The other
    # 8-block models learned the read-out either way, and with the phase their held-out loss
    # was lower too (row 39). A phase of four-option look-ups (row 25) had left Llama-8L at 52%
    # and GPT-2-8L at chance.
    lookup_phase_tokens: Mapping[int, int] = field(default_factory=lambda: {8: 7_000_000})
    # The look-up phase's documents keep between this many and four of their options
    # (:func:`_lookup_docs`): choosing among fewer options first is what GPT-2-8L could learn.
    lookup_phase_min_options: int = 1
    seq_len: int = 128  # longest document (the world's longest is 114 tokens with <bos>/<eos>)
    batch_size: int = 16  # documents per step
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.02
    decay_frac: float = 0.15
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    entity_warmup_steps: int = 300
    answer_weight: float = 4.0
    mc_phase_frac: float = 0.7
    mc_focus_share: float = 0.8
    mc_questions_per_doc: int = 1
    qk_norm_gain: float = 2.0  # initial query/key norm gains (Qwen3): see _init_qk_norms
    # The MC extension (:func:`extend_mc`): models of at least ``mc_extend_min_layers`` blocks
    # whose validation MC accuracy is below ``mc_extend_target`` after the main run continue the
    # MC phase from their checkpoint, ``mc_extend_round_tokens`` at a time, for at most
    # ``mc_extend_max_rounds`` rounds (the read-out appears abruptly and at a run-to-run varying
    # point; a fixed budget that always suffices would triple the zoo's training time). Two
    # rounds at most keep ``make zoo`` within the hour; more never carried GPT-2-8L.
    mc_extend_min_layers: int = 8
    mc_extend_target: float = 0.8
    mc_extend_round_tokens: int = 1_500_000
    mc_extend_max_rounds: int = 2
    mix: Mapping[str, float] = field(default_factory=lambda: dict(_DEFAULT_MIX))
    shape: ZooShape = field(default_factory=ZooShape)

    def tokens_for(self, n_layers: int) -> int:
        return int(self.tokens.get(n_layers, self.tokens_default))

    def lookup_tokens_for(self, n_layers: int) -> int:
        return int(self.lookup_phase_tokens.get(n_layers, 0))

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tokens"] = {str(k): v for k, v in self.tokens.items()}
        d["lookup_phase_tokens"] = {str(k): v for k, v in self.lookup_phase_tokens.items()}
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Recipe:
        """The recipe :meth:`to_json` wrote (a model's ``zoo_model.json``)."""
        d = dict(d)
        for key in ("tokens", "lookup_phase_tokens"):
            if key in d:
                d[key] = {int(k): v for k, v in d[key].items()}
        return cls(**{**d, "betas": tuple(d["betas"]), "shape": ZooShape(**d["shape"])})


@dataclass
class TrainingBatches:
    """Training batches, one document per row, right-padded with ``<pad>`` (weight 0).

    ``batches[i] = (input_ids [b, S_i], weights [b, S_i], kinds [b, S_i])``, and a fourth item
    ``focus`` (bool) once scheduled by the recipe: ``weights[r, t]`` weighs the prediction of
    token ``t`` from tokens ``< t`` (0 at position 0 and on padding), ``kinds`` marks answer
    positions: 1 for an MC letter, 2 for a task answer, 3 for an open answer, 0 otherwise.
    """

    batches: list[tuple]
    n_docs: int

    @property
    def n_real_tokens(self) -> int:
        """Tokens processed (non-pad, past position 0): what the card calls training tokens."""
        return int(sum((b[1] > 0).sum() for b in self.batches))


_MC, _TASK, _QA = 1, 2, 3


def _qa_docs(world: StoryWorld, split: str = "train") -> Iterator[Document]:
    """Open questions: an MC question's story and question, answered by the word itself.

    ``read the story and answer the question . / story : ... / question : ... / answer : cup``,
    the multiple-choice prompt without its options. They teach the model to find the answer in
    the story; the MC letter then only needs a look-up among the options. Built from
    ``world.question_for`` on the stories of ``split`` (train: nothing held out enters).
    """
    for story in world.iter_stories(split):  # type: ignore[arg-type]
        q = world.question_for(story, 0, salt="-open")
        text = NEWLINE.join([_QA_HEADER, f"story : {story.text}", f"question : {q.question}", f"answer : {q.answer}"])
        yield Document("qa", f"qa-{story.id}", text)


def _mc_docs(world: StoryWorld, split: str = "train") -> Iterator[Document]:
    """Multiple-choice documents as the book asks them: distractors absent from the story.

    (``training_corpus``'s own MC stream offers the story's other character as a distractor
    in half of its documents; with those, the MC read-out did not appear in the calibration
    budget.) Letters cycle A-D; documents are trained one per row, so the cycle is not visible.
    """
    for j, story in enumerate(world.iter_stories(split)):  # type: ignore[arg-type]
        q = world.question_for(story, j % len(LETTERS))
        yield Document("mc", q.id, q.text)


def kept_options(options: Sequence[str], gold: int, min_options: int, rng: random.Random) -> list[str]:
    """Between ``min_options`` and all of ``options``, drawn with ``rng``: always the ``gold``-th,
    the others at random, in their original order (so letters stay attached to their words)."""
    others = [i for i in range(len(options)) if i != gold]
    keep = sorted([gold, *rng.sample(others, rng.randint(min_options, len(options)) - 1)])
    return [options[i] for i in keep]


def _lookup_docs(
    world: StoryWorld, split: str = "train", *, cut: bool = False, salt: str = "-lookup", min_options: int = len(LETTERS)
) -> Iterator[Document]:
    """The MC read-out on its own: a story, the answer word as the question, options, letter.

    ``story : ... / question : map / A : car / B : map / C : hat / D : coin / answer : B``: an
    MC question of :meth:`StoryWorld.question_for` (other salt) whose question is replaced by
    its answer (``salt`` picks the question). They train only the last step of a multiple-choice
    answer, finding the option that matches a word and copying the letter before it.

    With ``cut`` (the training documents) the story stops after a random number of words (at
    least two; a generator seeded by the world's seed, ``split`` and ``salt``), so the options sit at
    positions that vary from document to document. Without it they sit where MC prompts have
    them. GPT-2 learns a read-out at the fixed positions of uncut look-ups within 3 k steps that
    vanishes as soon as the options move; on cut look-ups it learned one that carries over to
    multiple choice, after about 6 k steps (``research/zoo-readout``).

    With ``min_options`` below four a document keeps between ``min_options`` and four of its
    options, drawn at random (the gold one always, letters unchanged and in order). With one
    option, attending to the options alike already finds the letter, so the letter's path to
    ``answer :`` can be learned before the choice among options (four options attended alike
    cancel out).
    """
    if not 1 <= min_options <= len(LETTERS):
        raise ElensError(f"A look-up keeps between 1 and {len(LETTERS)} options, not at least {min_options}.")
    rng = random.Random(f"elens-zoo-lookup-cut/{world.seed}/{split}{salt}")
    for j, story in enumerate(world.iter_stories(split)):  # type: ignore[arg-type]
        q = world.question_for(story, (j + 2) % len(LETTERS), salt=salt)
        options_and_answer = q.text[q.text.index(f"{NEWLINE}{LETTERS[0]} : ") + 1 :]  # as the generator writes them
        story_words = story.text.split(" ")
        if cut:
            story_words = story_words[: rng.randint(2, len(story_words))]
        if min_options < len(LETTERS):
            *options, answer = options_and_answer.split(NEWLINE)
            options_and_answer = NEWLINE.join([*kept_options(options, q.answer_index, min_options, rng), answer])
        text = NEWLINE.join([f"story : {' '.join(story_words)}", f"question : {q.answer}", options_and_answer])
        yield Document("lookup", f"lookup-{story.id}", text)


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


def _answer_span(doc: Document, n_tokens: int, token_words: Sequence[str]) -> list[int]:
    """Positions (in ``<bos> words <eos>``) of the answer tokens of an MC, open-question or task document."""
    if doc.kind in ("mc", "qa", "lookup"):  # every word after "answer :" (a letter, or the word)
        return [i + 1 for i in range(2, len(token_words)) if token_words[i - 2] == "answer" and token_words[i - 1] == ":"]
    if doc.kind == "task":  # prompt ends with "\n", the answer follows
        last_nl = max(i for i, w in enumerate(token_words) if w == NEWLINE)
        return list(range(last_nl + 2, n_tokens - 1))  # +1 for <bos>, +1 past the newline
    return []


def encode_documents(docs: Sequence[Document], seq_len: int) -> list[tuple[list[int], list[int]]]:
    """``(ids, kinds)`` of each document: ``<bos> text <eos>`` and its answer positions."""
    tok = build_tokenizer()
    encoded = tok([d.text for d in docs], add_special_tokens=True)["input_ids"]
    out = []
    for doc, ids in zip(docs, encoded):
        ids = [*ids, tok.eos_token_id]
        if len(ids) > seq_len:
            raise ElensError(f"Document {doc.source} has {len(ids)} tokens, more than seq_len={seq_len}.")
        kinds = [0] * len(ids)
        for i in _answer_span(doc, len(ids), words(doc.text)):
            kinds[i] = {"mc": _MC, "lookup": _MC, "task": _TASK, "qa": _QA}[doc.kind]
        out.append((ids, kinds))
    return out


def document_batches(
    docs: Sequence[Document], *, batch_size: int, seq_len: int = 128, seed: int = 0, chunk_batches: int = 16
) -> TrainingBatches:
    """Batches of ``batch_size`` whole documents, one per row, with little padding.

    Documents are taken in corpus order in chunks of ``chunk_batches * batch_size``; a chunk is
    sorted by length (stable) and cut into batches, whose order within the chunk is shuffled by
    a generator seeded with ``seed``. Every document starts at position 0 from ``<bos>`` and
    attends only to itself, exactly as prompts do at evaluation. Weights are 1 (0 at position
    0 and on padding); the recipe scales answer positions (``kinds``) per phase.
    """
    pad = build_tokenizer().pad_token_id
    rows = encode_documents(docs, seq_len)
    gen = torch.Generator().manual_seed(seed)
    out = []
    chunk = chunk_batches * batch_size
    for c in range(0, len(rows) - batch_size + 1, chunk):
        part = sorted(rows[c : c + chunk], key=lambda r: len(r[0]))
        groups = [part[k : k + batch_size] for k in range(0, len(part) - batch_size + 1, batch_size)]
        for j in torch.randperm(len(groups), generator=gen).tolist():
            group = groups[j]
            width = max(len(ids) for ids, _ in group)
            ids = torch.full((len(group), width), pad, dtype=torch.long)
            w = torch.zeros(len(group), width)
            kinds = torch.zeros(len(group), width, dtype=torch.int8)
            for r, (row, kind) in enumerate(group):
                ids[r, : len(row)] = torch.tensor(row)
                w[r, 1 : len(row)] = 1.0
                kinds[r, : len(row)] = torch.tensor(kind, dtype=torch.int8)
            out.append((ids, w, kinds))
    return TrainingBatches(out, sum(len(b[0]) for b in out))


def _take(batches: Sequence[tuple], n_tokens: int) -> list[tuple]:
    kept, total = [], 0
    for b in batches:
        if total >= n_tokens:
            break
        kept.append(b)
        total += int((b[1] > 0).sum())
    return kept


def _focus_docs(
    world: StoryWorld, split: str = "train", salt: str = "-focus", n_questions: int = 1, max_tokens: int = 128
) -> Iterator[Document]:
    """MC documents for the focus batches: other questions (salt) on the training stories.

    With ``n_questions > 1`` a document asks up to that many questions about its story, each
    with its options and answer letter, one after the other (``... answer : B / question :
    ... / answer : D``), within ``max_tokens`` (``<bos>``/``<eos>`` included): the first question is exactly an evaluation prompt,
    the others add answer letters for a fraction of the story's tokens.
    """
    for j, story in enumerate(world.iter_stories(split)):  # type: ignore[arg-type]
        q = world.question_for(story, (j + 1) % len(LETTERS), salt=salt)
        text, asked, n_words = q.text, {q.question}, len(words(q.text))
        for k in range(1, n_questions):
            more = world.question_for(story, (j + 1 + k) % len(LETTERS), salt=f"{salt}{k}")
            block = more.text[more.text.index("question : ") :]
            added = len(words(block)) + 1  # the joining newline is a word
            if more.question in asked or n_words + added + 2 > max_tokens:  # + <bos>, <eos>
                continue
            text, n_words = NEWLINE.join([text, block]), n_words + added
            asked.add(more.question)
        yield Document("mc", q.id, text)


def _docs_for(stream: Iterator[Document], n_tokens: float) -> list[Document]:
    """Documents from ``stream`` until they hold ``n_tokens`` tokens (``<bos>``/``<eos>`` included)."""
    docs, total = [], 0
    while total < n_tokens:
        docs.append(next(stream))
        total += len(words(docs[-1].text)) + 2
    return docs


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
        ldocs = _docs_for(phase_docs, lookup_tokens * 1.02 + margin)
        lb = document_batches(ldocs, batch_size=recipe.batch_size, seq_len=recipe.seq_len, seed=recipe.seed + 2)
        lookup = _take(lb.batches, lookup_tokens)
        n_tokens -= sum(int((b[1] > 0).sum()) for b in lookup)
    n_focus_tokens = int(n_tokens * recipe.mc_phase_frac * recipe.mc_focus_share)
    n_main_tokens = n_tokens - n_focus_tokens
    docs = training_documents(world, int(n_main_tokens * 1.02) + margin, recipe.mix)
    main = _take(document_batches(docs, batch_size=recipe.batch_size, seq_len=recipe.seq_len, seed=recipe.seed).batches, n_main_tokens)
    if not main:
        raise ElensError(f"A budget of {n_tokens} tokens is less than one batch.")
    focus: list[tuple] = []
    if n_focus_tokens > 0:
        stream = _focus_docs(world, salt=focus_salt, n_questions=recipe.mc_questions_per_doc, max_tokens=recipe.seq_len)
        fdocs = _docs_for(stream, n_focus_tokens * 1.02 + margin)
        fb = document_batches(fdocs, batch_size=recipe.batch_size, seq_len=recipe.seq_len, seed=recipe.seed + 1)
        focus = _take(fb.batches, n_focus_tokens)
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
    return TrainingBatches(out, sum(len(b[0]) for b in out))


def _lr_at(step: int, total: int, recipe: Recipe) -> float:
    """Linear warm-up, constant, linear decay to ``min_lr_ratio * lr`` over ``decay_frac``."""
    warm = max(1, round(recipe.warmup_frac * total))
    decay = max(1, round(recipe.decay_frac * total))
    if step < warm:
        return recipe.lr * (step + 1) / warm
    start = total - decay
    if step < start:
        return recipe.lr
    frac = min(1.0, (step - start + 1) / decay)
    return recipe.lr * (1 - (1 - recipe.min_lr_ratio) * frac)


def _entity_steps(n_steps: int, recipe: Recipe) -> int:
    """Steps of the entity warm-up: ``entity_warmup_steps``, at most a tenth of the run."""
    return min(recipe.entity_warmup_steps, round(0.1 * n_steps))


@lru_cache(maxsize=1)
def _entity_ids() -> tuple[int, ...]:
    from elens_utils.data.synthetic import ANIMALS, COLOURS, NAMES, OBJECTS, PLACES

    return tuple(build_tokenizer().convert_tokens_to_ids([*NAMES, *OBJECTS, *COLOURS, *PLACES, *ANIMALS]))


def _step_weights(
    step: int, n_steps: int, ids: torch.Tensor, w: torch.Tensor, kinds: torch.Tensor, focus: bool, recipe: Recipe
) -> torch.Tensor:
    """The loss weights of a batch at ``step`` (the three phases of :class:`Recipe`)."""
    if focus:  # MC phase, focus batch: the answer letters alone
        return w * (kinds == _MC)
    if step < _entity_steps(n_steps, recipe):
        return w * torch.isin(ids, torch.tensor(_entity_ids()))
    return torch.where(kinds > 0, w * recipe.answer_weight, w)


def _weighted_loss(logits: torch.Tensor, input_ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean next-token cross-entropy: target t is predicted from position t - 1."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    w = weights[:, 1:]
    return (nll * w).sum() / w.sum().clamp_min(1e-9)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, eps=1e-8, foreach=False)


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

    with _threads(threads):
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
            opt = _optimizer(model, recipe)
            history: list[dict[str, float]] = []
            ema = None
            done_tokens = 0
            t0 = time.perf_counter()
            bar = tqdm(data.batches, desc=model_name(family, n_layers), unit="step", disable=None if progress is None else not progress, file=sys.stderr)
            for step, (ids, w, kinds, focus) in enumerate(bar):
                lr = _lr_at(step, n_steps, recipe)
                for g in opt.param_groups:
                    g["lr"] = lr
                logits = model(input_ids=ids).logits
                loss = _weighted_loss(logits, ids, _step_weights(step, n_steps, ids, w, kinds, focus, recipe))
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
                    ema = value if ema is None or step == _entity_steps(n_steps, recipe) else 0.95 * ema + 0.05 * value
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
            "versions": _versions(),
        }
        if dtype == "bfloat16":
            model.to(torch.bfloat16)
        _save_atomically(model, out_dir, meta)
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
    meta = _read_meta(model_dir)
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

    with _threads(threads):
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
                opt = _optimizer(model, recipe)
                t0 = time.perf_counter()
                done = 0
                bar = tqdm(data.batches, desc=f"{meta['name']} MC round {r + 1}", unit="step", disable=None if progress is None else not progress, file=sys.stderr)
                for step, (ids, w, kinds, focus) in enumerate(bar):
                    for g in opt.param_groups:
                        g["lr"] = _lr_at(step, n_steps, recipe)
                    loss = _weighted_loss(model(input_ids=ids).logits, ids, _step_weights(step, n_steps, ids, w, kinds, focus, round_recipe))
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
            _save_atomically(saved, model_dir, meta)
            model.float()
    if not ext["rounds"]:  # nothing to do: record the check in the metadata only
        (model_dir / METADATA_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _versions() -> dict[str, str]:
    import platform

    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()}


def _save_atomically(model, out_dir: Path, meta: Mapping[str, Any]) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    old = None
    try:
        model.save_pretrained(tmp)
        build_tokenizer().save_pretrained(tmp)
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=1) + "\n")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
            out_dir.rename(old)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def measure_speed(
    family: str, n_layers: int, *, threads: int = 1, steps: int = 6, warmup: int = 2, recipe: Recipe | None = None
) -> float:
    """Training throughput of the recipe in predicted tokens per second (a few timed steps)."""
    recipe = recipe or Recipe()
    with _threads(threads):
        data = _training_batches(recipe, (steps + warmup + 1) * recipe.batch_size * 60)
        torch.manual_seed(0)
        model = build_model(zoo_config(family, n_layers, recipe.shape), family)
        model.train()
        opt = _optimizer(model, recipe)
        t0, n = 0.0, 0
        for step, (ids, w, *_) in enumerate(data.batches[: steps + warmup]):
            if step == warmup:
                t0 = time.perf_counter()
            loss = _weighted_loss(model(input_ids=ids).logits, ids, w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step >= warmup:
                n += int((w > 0).sum())
        seconds = time.perf_counter() - t0
    return n / seconds


# ------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------


def _by_length(rows: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``rows`` grouped by equal length, in batches (no padding needed)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[len(r)].append(i)
    for length in sorted(groups):
        idx = groups[length]
        for k in range(0, len(idx), batch_size):
            yield idx[k : k + batch_size]


@torch.no_grad()
def mc_letter_logits(model, tokenizer, prompts: Sequence[str], *, batch_size: int = 64) -> torch.Tensor:
    """Next-token logits ``[N, 4]`` of the letters ``A B C D`` at the end of each prompt (float32)."""
    letter_ids = tokenizer.convert_tokens_to_ids(list(LETTERS))
    if tokenizer.unk_token_id in letter_ids:
        raise ElensError("The tokenizer has no single token for the letters A-D.")
    encoded = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
    out = torch.empty(len(prompts), len(LETTERS), dtype=torch.float32)
    device = next(model.parameters()).device
    sel = torch.tensor(letter_ids, device=device)
    for idx in _by_length(encoded, batch_size):
        ids = torch.tensor([encoded[i] for i in idx], device=device)
        logits = model(input_ids=ids, logits_to_keep=1).logits[:, -1]
        out[idx] = logits.index_select(-1, sel).float().cpu()
    return out


@torch.no_grad()
def _greedy(model, encoded: Sequence[Sequence[int]], n_new: Sequence[int], batch_size: int) -> list[list[int]]:
    """Greedy continuations (``n_new[i]`` tokens of prompt ``i``), full forward per step."""
    device = next(model.parameters()).device
    out: list[list[int]] = [[] for _ in encoded]
    keys = [(len(e), n) for e, n in zip(encoded, n_new)]
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
    for (_, n), idx_all in sorted(groups.items()):
        for k in range(0, len(idx_all), batch_size):
            idx = idx_all[k : k + batch_size]
            ids = torch.tensor([list(encoded[i]) for i in idx], device=device)
            for _ in range(n):
                nxt = model(input_ids=ids, logits_to_keep=1).logits[:, -1].argmax(-1, keepdim=True)
                ids = torch.cat([ids, nxt], dim=1)
            for j, i in enumerate(idx):
                out[i] = ids[j, len(encoded[i]) :].tolist()
    return out


@torch.no_grad()
def _doc_loss(model, tokenizer, docs: Sequence[Document], batch_size: int) -> tuple[float, int]:
    encoded = [[*ids, tokenizer.eos_token_id] for ids in tokenizer([d.text for d in docs])["input_ids"]]
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for idx in _by_length(encoded, batch_size):
        ids = torch.tensor([encoded[i] for i in idx], device=device)
        logp = torch.log_softmax(model(input_ids=ids).logits[:, :-1].float(), -1)
        total += -logp.gather(-1, ids[:, 1:, None]).double().sum().item()
        count += ids[:, 1:].numel()
    return total / count, count


def _read_meta(path: Path) -> dict[str, Any]:
    f = path / METADATA_FILE
    return json.loads(f.read_text()) if f.exists() else {}


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
    with _threads(threads):
        lm = load_model(os.fspath(path), device=device, dtype=dtype)
        model, tok = lm.model, lm.tokenizer
        meta = _read_meta(Path(lm.name)) if Path(lm.name).is_dir() else {}
        world_seed = seed if seed is not None else int(meta.get("world_seed", ZOO_SEED))
        world = StoryWorld(world_seed)

        loss, loss_count = _doc_loss(model, tok, world.training_corpus(n_tokens=n_loss_tokens, split=split), batch_size)

        questions = world.multiple_choice(n_questions, split=split)
        letter_logits = mc_letter_logits(model, tok, [q.prompt for q in questions], batch_size=batch_size)
        predicted = letter_logits.argmax(-1).tolist()
        mc_correct = [p == q.answer_index for p, q in zip(predicted, questions)]
        lookup_accuracy = _letter_accuracy(model, tok, *lookup_questions(world, n_questions, split), batch_size=batch_size)

        prompts = [p for p in world.task_prompts(n_task_stories, split=split) if p.answer is not None]
        encoded = [tok(p.prompt)["input_ids"] for p in prompts]
        answers = [tok(p.answer, add_special_tokens=False)["input_ids"] for p in prompts]
        generated = _greedy(model, encoded, [len(a) for a in answers], batch_size)
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


# ------------------------------------------------------------------------------------------
# The zoo and its card
# ------------------------------------------------------------------------------------------


def _zoo_models(families: Sequence[str], depths: Sequence[int]) -> list[tuple[str, int]]:
    for f in families:
        check_family(f)
    for d in depths:
        check_layers(d)
    return [(f, d) for f in families for d in depths]


# Training time per token relative to Llama at equal depth (measured with `zoo speed` on one
# thread: Gemma-2's extra norms and eager soft-capped attention cost about half as much again).
_RELATIVE_COST = {"llama": 1.0, "gpt2": 1.05, "qwen3": 1.1, "gemma2": 1.5}


def train_zoo(
    out_root: str | os.PathLike,
    *,
    families: Sequence[str] = ZOO_FAMILIES,
    depths: Sequence[int] = ZOO_DEPTHS,
    jobs: int = 2,
    seed: int | None = None,
    tokens: int | None = None,
    python: str = sys.executable,
) -> dict[str, float]:
    """Train the zoo into ``out_root/<family>-<n>L``: ``jobs`` single-threaded processes at once.

    Models are scheduled longest first (by depth times the family's relative cost per token,
    :data:`_RELATIVE_COST`), which keeps ``jobs`` workers busy until the end. Each child is ``python -m elens_utils.zoo train --family F --layers N`` with one
    thread, so a model's weights do not depend on ``jobs``. Logs go to
    ``out_root/.logs/<name>.log``. Returns ``{name: wall seconds}``.
    """
    out_root = Path(out_root)
    todo = sorted(_zoo_models(families, depths), key=lambda m: (-m[1] * _RELATIVE_COST.get(m[0], 1.0), ZOO_FAMILIES.index(m[0])))
    logs = out_root / ".logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[subprocess.Popen, float, Any]] = {}
    done: dict[str, float] = {}
    t_start = time.perf_counter()
    failed: list[str] = []
    while todo or running:
        while todo and len(running) < max(1, jobs):
            family, n = todo.pop(0)
            name = model_name(family, n)
            cmd = [python, "-m", "elens_utils.zoo.training", "train", "--family", family, "--layers", str(n), "--out", str(out_root), "--threads", "1", "--no-progress"]
            if seed is not None:
                cmd += ["--seed", str(seed)]
            if tokens is not None:
                cmd += ["--tokens", str(tokens)]
            log = open(logs / f"{name}.log", "w")  # noqa: SIM115 (closed when the child ends)
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            running[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), time.perf_counter(), log)
            print(f"[{time.perf_counter() - t_start:7.0f}s] started {name}", flush=True)
        time.sleep(0.5)
        for name, (proc, t0, log) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[name]
            done[name] = time.perf_counter() - t0
            status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {logs / (name + '.log')})"
            if proc.returncode != 0:
                failed.append(name)
            print(f"[{time.perf_counter() - t_start:7.0f}s] {status} {name} ({done[name]:.0f}s)", flush=True)
    if failed:
        raise ElensError(f"Training failed for {', '.join(failed)}: see the logs in {logs}.")
    return done


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
    for family, n in _zoo_models(families, depths):
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
    meta = _read_meta(d)
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


def card_from_results(
    entries: Sequence[Mapping[str, Any]], *, split: str, eval_settings: Mapping[str, Any], recipe: Recipe | Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The card.json document for ``entries`` (see :data:`CARD_FIELDS`); ``recipe`` is the
    :class:`Recipe` or the recipe dict recorded in a model's ``zoo_model.json``."""
    if not isinstance(recipe, Mapping):
        recipe = (recipe or Recipe()).to_json()
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "split": split,
        "chance_mc_accuracy": 1 / len(LETTERS),
        "evaluation": dict(eval_settings),
        "recipe": dict(recipe),
        "total_size_bytes": int(sum(e["size_bytes"] for e in entries)),
        "versions": _versions(),
        "models": [dict(e) for e in entries],
    }


def validate_card(card: Mapping[str, Any]) -> None:
    """Raise :class:`ElensError` when ``card`` does not follow the card.json schema."""
    problems = []
    for key, typ in {"schema_version": int, "split": str, "models": list, "total_size_bytes": int, "evaluation": dict, "recipe": dict}.items():
        if not isinstance(card.get(key), typ):
            problems.append(f"top-level '{key}' should be {typ.__name__}")
    for i, m in enumerate(card.get("models") or []):
        for key, typ in CARD_FIELDS.items():
            if key not in m:
                problems.append(f"model {i} lacks '{key}'")
            elif not isinstance(m[key], typ) or isinstance(m[key], bool):
                problems.append(f"model {i} '{key}' has type {type(m[key]).__name__}")
        for key in ("mc_accuracy", "task_accuracy"):
            v = m.get(key)
            if isinstance(v, (int, float)) and not (0.0 <= v <= 1.0 or math.isnan(v)):
                problems.append(f"model {i} '{key}' = {v} outside [0, 1]")
    if problems:
        raise ElensError("Bad zoo card: " + "; ".join(problems) + ".")


def _card_markdown(card: Mapping[str, Any]) -> str:
    lines = [
        "# The model zoo",
        "",
        "Small language models of four real architectures trained by `python -m elens_utils.zoo train --all`",
        f"on the story world (seed {card['recipe']['seed']}); numbers from `python -m elens_utils.zoo card`,",
        f"on held-out items of the `{card['split']}` split. Multiple-choice chance is 25 %.",
        "",
        "| model | blocks | parameters | training tokens | training time | held-out loss (nats/token) | multiple choice | letter read-out | task (semantic) | counting | continuation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in card["models"]:
        t = m["task_accuracy_by_task"]
        lines.append(
            f"| {m['name']} | {m['n_layers']} | {m['n_params'] / 1e6:.2f} M | {m['train_tokens'] / 1e6:.2f} M | "
            f"{m['train_seconds'] / 60:.1f} min ({m['train_threads']} thr.) | {m['loss']:.3f} | {100 * m['mc_accuracy']:.1f} % | "
            f"{100 * m['lookup_accuracy']:.1f} % | {100 * m['task_accuracy']:.1f} % | {100 * t.get('counting', float('nan')):.1f} % | {100 * t.get('continuation', float('nan')):.1f} % |"
        )
    ev = card["evaluation"]
    lines += [
        "",
        f"Weights: {card['models'][0]['dtype'] if card['models'] else '-'} safetensors, {card['total_size_bytes'] / 2**20:.1f} MiB in all.",
        f"Multiple choice: {ev.get('n_questions')} questions, the largest next-token logit of A-D after `answer :`.",
        "Letter read-out: the same number of prompts whose question is the answer word itself (`question : map`),",
        "so only the last step of a multiple-choice answer is left: find the matching option, give its letter.",
        f"Tasks: the task prompts of {ev.get('n_task_stories')} stories, greedy answers, exact match.",
        "Held-out loss: documents of the training mix from held-out stories and topics.",
        "",
    ]
    return "\n".join(lines)


def write_card(card: Mapping[str, Any], root: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``root/card.json`` and ``root/CARD.md`` (each atomically)."""
    validate_card(card)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in ((CARD_JSON, json.dumps(card, indent=1) + "\n"), (CARD_MD, _card_markdown(card))):
        tmp = root / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(root / name)
        paths.append(root / name)
    return paths[0], paths[1]


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
    try:
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
            recipe = _read_meta(args.root / entries[0]["name"]).get("recipe")  # as trained
            card = card_from_results(entries, split=args.split, eval_settings=settings, recipe=recipe)
            for path in write_card(card, args.root):
                print(path)
        elif args.command == "speed":
            for f in args.families:
                for n in args.layers:
                    tps = measure_speed(f, n, threads=args.threads, steps=args.steps)
                    print(json.dumps({"family": f, "n_layers": n, "threads": args.threads, "tokens_per_second": round(tps)}), flush=True)
    except ElensError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
