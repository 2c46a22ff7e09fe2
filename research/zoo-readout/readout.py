"""One-off training runs toward the multiple-choice read-out of GPT-2-8L (see README.md here).

Each run trains one zoo model with a variant of the shipped recipe (nothing here changes the
recipe or the shipped weights) and prints, every ``--every`` steps, its multiple-choice accuracy
on 100 validation questions and its letter read-out on 100 validation look-up prompts, both in
the format the run trains on. Runs are single-threaded and seeded: the same command on the same
machine gives the same numbers. Examples (the rows of README.md give each run's command)::

    python zoo/experiments/readout.py --family gpt2 --tokens 10e6 --lookup-share 0.25 --questions-per-doc 3
    python zoo/experiments/readout.py --family gpt2 --tokens 1.5e6 --pure --lookups short --every 250

The variants reach into the zoo's private document generators on purpose: they are experiments
on the recipe, kept to make the README's numbers reproducible, not part of the library. They all
start from :data:`BASE`, the recipe before session 7. Rows 20-25 (the recipe's look-up phase)
were run with ``python -m elens_utils.zoo train`` instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import re
import time
from collections.abc import Callable, Iterator

import torch

from elens_utils.data.synthetic import LETTERS, NEWLINE, Document, StoryWorld
from elens_utils.zoo import training as zoo

#: The recipe every run of README.md starts from: the recipe's defaults before session 7 (no
#: look-up phase, no look-ups in the mix, one question per focus document, unit query/key norm
#: gains, up to five extension rounds; the tests check it). The shipped recipe differs in
#: Qwen3's gains (2), the rounds (2) and the 8-block models' look-up phase (row 39).
BASE = dataclasses.replace(
    zoo.Recipe(), qk_norm_gain=1.0, mc_extend_max_rounds=5, lookup_phase_tokens={}, lookup_phase_min_options=4
)
_LIBRARY_LOOKUPS = zoo._lookup_docs  # before main() swaps in a variant


def question_first(text: str) -> str:
    """Move the ``story : ...`` line to just before the first ``answer :`` line."""
    lines = text.split(NEWLINE)
    s = next(i for i, line in enumerate(lines) if line.startswith("story :"))
    a = next(i for i, line in enumerate(lines) if line.startswith("answer :"))
    return NEWLINE.join(lines[:s] + lines[s + 1 : a] + [lines[s]] + lines[a:])


def without_colons(text: str) -> str:
    """Option lines ``A : map`` become ``A map``: the letter sits right before its word."""
    return re.sub(r"(^|\n)([ABCD]) : ", r"\1\2 ", text)


def fewer_options(text: str, rng: random.Random) -> str:
    """Keep the gold option and 0-3 others (1-4 options, letters unchanged, in order) of a
    look-up document (``story / question / A-D / answer``). With one option a head that
    attends to the option lines alike already finds the gold letter, so the letter's
    value path can be learned before the matching (four options attended alike cancel out)."""
    lines = text.split(NEWLINE)
    options, answer = lines[-5:-1], lines[-1]
    kept = zoo.kept_options(options, LETTERS.index(answer.split(" ")[-1]), 1, rng)
    return NEWLINE.join([*lines[:-5], *kept, answer])


def focus_with_lookups(focus: Callable[..., Iterator[Document]]) -> Callable[..., Iterator[Document]]:
    """Focus documents that alternate the zoo's MC focus documents with cut look-ups of 1-4
    options (:func:`fewer_options`; their own questions and cuts), all trained on the letter."""

    def wrapped(world: StoryWorld, split: str = "train", **kwargs) -> Iterator[Document]:
        rng = random.Random(f"focus-lookups/{split}")
        lookups = _LIBRARY_LOOKUPS(world, split, cut=True, salt="-focus-lookup")
        for mc, lookup in zip(focus(world, split, **kwargs), lookups):
            yield mc
            yield Document("mc", lookup.source, fewer_options(lookup.text, rng))

    return wrapped


def training_with_fewer_options(lookups: Callable[..., Iterator[Document]]) -> Callable[..., Iterator[Document]]:
    """The ``train`` split's look-ups keep 1-4 of their options (:func:`fewer_options`); the
    validation read-out keeps all four."""

    def wrapped(world: StoryWorld, split: str = "train", **kwargs) -> Iterator[Document]:
        rng = random.Random(f"fewer-options/{split}")
        for d in lookups(world, split, **kwargs):
            yield Document(d.kind, d.source, fewer_options(d.text, rng)) if split == "train" else d

    return wrapped


def _mapped(gen: Callable[..., Iterator[Document]], fn: Callable[[str], str]) -> Callable[..., Iterator[Document]]:
    def wrapped(*args, **kwargs) -> Iterator[Document]:
        for d in gen(*args, **kwargs):
            yield Document(d.kind, d.source, fn(d.text))

    return wrapped


def _lookup_variant(kind: str) -> Callable[..., Iterator[Document]]:
    """Look-up documents: ``story`` (the zoo's, uncut), ``short`` (no story: the options sit at
    fixed positions), ``mixed`` (story and short alternating in training; story in validation),
    ``cut`` (the story line cut after a random number of words: the options sit at varying
    positions; the zoo's training look-ups now cut the story in the same way with a generator
    of their own). The variant serves both training documents and read-out prompts, whatever
    the caller asks (``cut``, ``salt``)."""
    story_docs = zoo._lookup_docs

    def variant(world: StoryWorld, split: str = "train", **_ignored) -> Iterator[Document]:
        rng = random.Random(split)
        for j, d in enumerate(story_docs(world, split)):
            lines = d.text.split(NEWLINE)
            if kind == "short" or (kind == "mixed" and split == "train" and j % 2 == 1):
                lines = lines[1:]
            elif kind == "cut":
                ws = lines[0].split(" ")
                lines = [" ".join(ws[: rng.randint(2, len(ws))]), *lines[1:]]
            yield Document("lookup", d.source, NEWLINE.join(lines))

    return variant


def _position_table(n: int, d: int, init: str) -> torch.Tensor:
    """Sinusoids ``[n, d]`` with unit std: ``sinusoid`` (the Transformer's, wavelengths 2*pi..
    2*pi*10^4) or ``long-sinusoid`` (wavelengths 4..1024 positions, so the slow pairs are near
    linear ramps over the 128 positions the zoo uses)."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    if init == "sinusoid":
        ang = pos * torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float64) / d)
    else:
        ang = 2 * math.pi * pos / torch.exp(torch.linspace(math.log(4), math.log(1024), d // 2, dtype=torch.float64))
    pe = torch.zeros(n, d, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(ang), torch.cos(ang)
    return (pe / pe.std()).float()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="gpt2", choices=zoo.ZOO_FAMILIES)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--tokens", type=float, default=10e6, help="training tokens (non-pad)")
    p.add_argument("--lookup-share", type=float, default=0.0, help="share of look-up documents in the mix")
    p.add_argument("--lookups", default="story", choices=("story", "short", "mixed", "cut"))
    p.add_argument("--pure", action="store_true", help="look-up documents only, no MC phase, no entity warm-up")
    p.add_argument("--questions-per-doc", type=int, default=1, help="Recipe.mc_questions_per_doc")
    p.add_argument("--question-first", action="store_true", help="question and options before the story")
    p.add_argument("--position-init", default="learned", choices=("learned", "sinusoid", "long-sinusoid"))
    p.add_argument("--position-std", type=float, default=0.02, help="std of a sinusoidal position table")
    p.add_argument("--init-from", help="start from this checkpoint instead of a fresh model")
    p.add_argument("--options-without-colons", action="store_true", help="option lines 'A map' instead of 'A : map'")
    p.add_argument("--focus-lookups", action="store_true", help="focus batches alternate MC and look-ups of 1-4 options")
    p.add_argument("--fewer-options", action="store_true", help="training look-ups keep 1-4 of their options")
    p.add_argument("--mc-phase-frac", type=float, default=BASE.mc_phase_frac, help="Recipe.mc_phase_frac (1 = an extension round)")
    p.add_argument("--heads", type=int, default=BASE.shape.heads, help="attention heads (width stays 64)")
    p.add_argument("--answer-weight", type=float, default=BASE.answer_weight, help="Recipe.answer_weight")
    p.add_argument("--init-seed", type=int, help="seed of a fresh model's weights (the data stay the recipe's)")
    p.add_argument("--lr", type=float, default=BASE.lr)
    p.add_argument("--every", type=int, default=500, help="steps between evaluations")
    p.add_argument("--out", default="/tmp/zoo-readout", help="where the run's checkpoint goes")
    a = p.parse_args()
    if a.position_init != "learned" and (a.family != "gpt2" or a.init_from):
        p.error("--position-init applies to a fresh GPT-2's learned position table only")

    zoo._lookup_docs = _lookup_variant(a.lookups)
    if a.fewer_options:
        zoo._lookup_docs = training_with_fewer_options(zoo._lookup_docs)
    if a.focus_lookups:
        zoo._focus_docs = focus_with_lookups(zoo._focus_docs)
    fmt = question_first if a.question_first else without_colons if a.options_without_colons else (lambda text: text)
    if a.question_first or a.options_without_colons:
        for name in ("_mc_docs", "_lookup_docs", "_qa_docs", "_focus_docs"):
            setattr(zoo, name, _mapped(getattr(zoo, name), fmt))
    build = zoo.build_model
    if a.init_from:
        from transformers import AutoModelForCausalLM

        zoo.build_model = lambda config, family: AutoModelForCausalLM.from_pretrained(a.init_from, dtype=torch.float32)
    elif a.position_init != "learned":

        def with_positions(config, family):
            model = build(config, family)
            wpe = model.transformer.wpe.weight
            with torch.no_grad():
                wpe.copy_(_position_table(*wpe.shape, a.position_init) * a.position_std)
            return model

        zoo.build_model = with_positions

    base = dataclasses.replace(
        BASE, answer_weight=a.answer_weight, shape=dataclasses.replace(BASE.shape, heads=a.heads), mc_phase_frac=a.mc_phase_frac
    )
    if a.init_seed is not None:
        seeded_build = zoo.build_model

        def with_seed(config, family):
            torch.manual_seed(a.init_seed)
            return seeded_build(config, family)

        zoo.build_model = with_seed
    if a.pure:
        recipe = dataclasses.replace(base, mix={"lookup": 1.0}, mc_phase_frac=0.0, entity_warmup_steps=0, lr=a.lr)
    else:
        mix = {k: v * (1 - a.lookup_share) for k, v in BASE.mix.items()}
        if a.lookup_share > 0:
            mix["lookup"] = a.lookup_share
        recipe = dataclasses.replace(base, mix=mix, mc_questions_per_doc=a.questions_per_doc, lr=a.lr)
    if a.init_from:
        recipe = dataclasses.replace(recipe, entity_warmup_steps=0)

    world, tok = StoryWorld(zoo.ZOO_SEED), zoo.build_tokenizer()
    lookup_prompts, lookup_gold = zoo.lookup_questions(world, 100, "validation")
    mc_prompts, mc_gold = zoo._mc_questions(world, 100, "validation")
    mc_prompts = [fmt(p) for p in mc_prompts]
    t0 = time.time()

    def report(step: int, model) -> None:
        if step % a.every == 0 and (step > 0 or a.init_from):
            mc, ro = zoo._letter_accuracy(model, tok, mc_prompts, mc_gold), zoo._letter_accuracy(model, tok, lookup_prompts, lookup_gold)
            print(f"step {step} MC {mc:.2f} read-out {ro:.2f} ({(time.time() - t0) / 60:.1f} min)", flush=True)

    meta = zoo.train_model(
        a.family, a.layers, a.out, recipe=recipe, tokens=int(a.tokens), threads=1, progress=False,
        log_every=25 if a.every % 25 == 0 else a.every, eval_every=0, callback=report,
    )
    print(f"done: {meta['train_steps']} steps, {meta['train_tokens'] / 1e6:.2f} M tokens, {meta['train_seconds'] / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
