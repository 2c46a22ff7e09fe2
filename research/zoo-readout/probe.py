"""Which step of a multiple-choice answer a zoo model is missing (README.md here, "Probes").

For each block's output residual of a zoo model on validation MC prompts, it prints:

- ``letter@option``: how well a linear probe reads an option's letter (A-D) from the residual at
  the option's word (``A : map`` -> the residual at ``map``): has the letter been attached to
  its word?
- ``word@answer``: through the model's own logit lens at ``answer :``, how often the answer word
  has the largest logit among the four option words: does the model know the answer there?
- ``letter@answer``: how well a linear probe reads the gold letter from the residual at
  ``answer :``: has the letter been brought to where it must be said?

Probes are scikit-learn logistic regressions fitted on two thirds of the prompts and scored on
the rest (chance 25%). With ``--options`` it also gives the letter read-out on validation look-ups
(cut stories) that keep 1, 2 or 4 of their options (``readout.fewer_options``): can the model
copy the one letter there is, and choose between two? A model that gives one of the letters
present at random scores 100%, 50% and 25%. Example::

    python zoo/experiments/probe.py zoo/gpt2-8L --n 300 --options
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from elens_utils.data.synthetic import LETTERS, StoryWorld
from elens_utils.lens.capture import BlockCapture
from elens_utils.lens.loading import load_model
from elens_utils.zoo import training as zoo

if str(Path(__file__).parent) not in sys.path:  # readout.py beside this script, also when imported by path
    sys.path.insert(0, str(Path(__file__).parent))
from readout import fewer_options  # noqa: E402


def _probe_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    n = len(y) * 2 // 3
    return float(LogisticRegression(max_iter=2000).fit(x[:n], y[:n]).score(x[n:], y[n:]))


@torch.no_grad()
def probe(path: str, n: int = 300) -> list[dict[str, float]]:
    """One row per block: ``block`` (1-based), ``letter@option``, ``word@answer``, ``letter@answer``."""
    lm = load_model(path, device="cpu", dtype="float32")
    tok = lm.tokenizer
    letter_ids = tok.convert_tokens_to_ids(list(LETTERS))
    questions = StoryWorld(zoo.ZOO_SEED).multiple_choice(n, split="validation")
    at_option, at_answer, word_top = [], [], []
    for q in questions:
        ids = lm.encode([q.prompt])[0]
        with BlockCapture(lm.parts.blocks, last_only=False) as cap:
            lm.model(input_ids=torch.tensor([ids]))
            resid = cap.take()[:, 0]  # [L, S, d]
        option_pos = [ids.index(letter) + 2 for letter in letter_ids]  # "A : map": the word
        at_option.append(resid[:, option_pos])  # [L, 4, d]
        at_answer.append(resid[:, -1])  # [L, d]
        option_words = tok.convert_tokens_to_ids(list(q.options))
        logits = lm.parts.logits(resid[:, -1])[:, option_words]  # [L, 4]
        word_top.append((logits.argmax(-1) == q.answer_index).numpy())
    opt = torch.stack(at_option, 1).numpy()  # [L, N, 4, d]
    ans = torch.stack(at_answer, 1).numpy()  # [L, N, d]
    gold = np.array([q.answer_index for q in questions])
    rows = []
    for b in range(opt.shape[0]):
        rows.append(
            {"block": b + 1,
             "letter@option": _probe_accuracy(opt[b].reshape(-1, opt.shape[-1]), np.tile(np.arange(4), len(questions))),
             "word@answer": float(np.mean([w[b] for w in word_top])),
             "letter@answer": _probe_accuracy(ans[b], gold)}
        )  # fmt: skip
    return rows


def readout_by_options(path: str, n: int = 200, counts: tuple[int, ...] = (1, 2, 4)) -> dict[int, float]:
    """Letter read-out on ``n`` validation look-ups (cut stories) keeping ``k`` of their options,
    for each ``k`` of ``counts``."""
    lm = load_model(path, device="cpu", dtype="float32")
    docs = [d.text for _, d in zip(range(n), zoo._lookup_docs(StoryWorld(zoo.ZOO_SEED), "validation", cut=True, salt="-probe"))]
    out = {}
    for k in counts:
        rng = random.Random(f"probe-options/{k}")
        prompts, gold = [], []
        for text in docs:
            while (kept := fewer_options(text, rng)).count("\n") - 2 != k:  # options between question and answer
                pass
            prompt, _, letter = kept.rpartition(" ")
            prompts.append(prompt)
            gold.append(LETTERS.index(letter))
        out[k] = zoo._letter_accuracy(lm.model, lm.tokenizer, prompts, gold)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a zoo model directory, e.g. zoo/gpt2-8L")
    p.add_argument("--n", type=int, default=300, help="validation MC prompts")
    p.add_argument("--options", action="store_true", help="also the read-out with 1, 2 and 4 options")
    a = p.parse_args()
    print("block  letter@option  word@answer  letter@answer")
    for r in probe(a.model, a.n):
        print(f"{r['block']:5d}  {r['letter@option']:13.0%}  {r['word@answer']:11.0%}  {r['letter@answer']:13.0%}")
    if a.options:
        for k, acc in readout_by_options(a.model).items():
            print(f"read-out with {k} option{'s' if k > 1 else ''}: {acc:.1%}")


if __name__ == "__main__":
    main()
