"""Cloze scoring of multiple-choice questions: the log-likelihood of each option's text.

Letter scoring (:func:`~elens_utils.analysis.interventions.answer_multiple_choice`) asks the model for the
letter of the right option, a skill that small models lack: SmolLM2-135M and Gemma-3-270M answer
at chance that way even when they know the answer. Cloze scoring asks instead how likely the
model finds each option's text as the continuation of the question: for option ``j`` of
question ``i``, with ``c`` the token ids of ``prompt_i + separator + option_j`` after the
prompt's own tokens,

    logprob[i, j] = sum_t log p(c_t | prompt_i, c_<t)      (nats)

and the prediction is the option of the largest score, where the score is ``logprob``
(``normalize="sum"``), ``logprob / n_tokens`` (``"token"``) or ``logprob / n_chars``
(``"char"``, the option text's characters). Ties go to the earlier option.

How it is computed (``share_prompt=True``, the default): questions are sorted by the length of
their longest option, then of their prompt, and batched; their prompts are left-padded with
explicit position ids and run once with the KV cache on; the last prompt logits score every
option's first token; the options of two or more tokens then run their remaining tokens over
the prompts' cache (its rows selected per option), one pass per option length so that no
position is padding, positions continuing each prompt's. Forward hooks (:func:`~elens_utils.analysis.interventions.skip_blocks`, the
sublayer removals of :mod:`elens_utils.analysis.sublayers`) act on both passes, as they do on KV-cached
generation. ``share_prompt=False`` runs one full forward pass per (question, option) pair
instead (four times the prompt compute), keeping only the logits of the last ``option tokens +
1`` positions (``logits_to_keep``). Either way a pass holds at most ``_LOGIT_BUDGET`` logits
(128 MiB) and is split when it would hold more, which matters for Gemma-3's V = 262,144.
Per-token log-probabilities are float32 (``logit - logsumexp``; float64 for a float64 model),
summed in float64. Deterministic; the batch size and ``share_prompt`` change results only by
float rounding.

The continuation's tokens are those the tokenizer produces for the whole string after the
prompt's own tokens. When the option merges with the prompt's last token (the prompt ends with a
space, say), the whole string does not start with the prompt's tokens and an
:class:`~elens_utils.core.errors.ElensError` says so.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from elens_utils.core.errors import ElensError
from elens_utils.core.hf_compat import cached_forward, returned_cache
from elens_utils.lens.generation import left_pad
from elens_utils.lens.loading import LensModel

__all__ = ["NORMALIZATIONS", "ClozeScores", "answer_cloze", "option_logprobs"]

#: How option log-likelihoods are compared: summed, per token, per character.
NORMALIZATIONS: tuple[str, ...] = ("sum", "token", "char")
# Logits held at once by one option pass (float32 entries: 2**25 is 128 MiB); more option rows
# are split over several passes.
_LOGIT_BUDGET = 2**25


@dataclass(frozen=True)
class ClozeScores:
    """Log-likelihoods of every option of every question.

    Attributes:
        logprob: ``[N, K]`` float64, the summed log-probability of each option's tokens (nats).
        n_tokens: ``[N, K]`` int, the option's number of tokens.
        n_chars: ``[N, K]`` int, the option text's number of characters (separator excluded).
        token_ids: ``[N][K]`` tuples, the option's token ids after the prompt.
    """

    logprob: np.ndarray
    n_tokens: np.ndarray
    n_chars: np.ndarray
    token_ids: list[list[tuple[int, ...]]]

    def scores(self, normalize: str = "sum") -> np.ndarray:
        """``[N, K]`` scores compared across options: see :data:`NORMALIZATIONS`."""
        _check_normalize(normalize)
        if normalize == "sum":
            return self.logprob.copy()
        if normalize == "token":
            return self.logprob / self.n_tokens
        return self.logprob / np.maximum(self.n_chars, 1)


def check_letters(letters: Any) -> tuple[str, ...]:
    """``letters`` as a tuple of distinct, non-empty option labels without surrounding spaces (at
    least two), or an :class:`ElensError` that says what is wrong."""
    if isinstance(letters, str) or not isinstance(letters, Sequence):
        raise ElensError(f"letters must be a sequence of option labels, e.g. ('A', 'B', 'C', 'D'); got {letters!r}.")
    out = tuple(letters)
    if len(out) < 2:
        raise ElensError(f"Give at least two option letters; got {out!r}.")
    for c in out:
        if not isinstance(c, str) or not c or c != c.strip():
            raise ElensError(f"Option letter {c!r} must be a non-empty string without surrounding spaces.")
    if len(set(out)) != len(out):
        raise ElensError(f"Option letters {out!r} contain a duplicate.")
    return out


def _check_normalize(normalize: str) -> None:
    if normalize not in NORMALIZATIONS:
        raise ElensError(
            f"Unknown normalize={normalize!r}: use 'sum' (summed log-likelihood), 'token' (per "
            "token) or 'char' (per character of the option)."
        )


def _check_inputs(prompts: Sequence[str], options: Sequence[Sequence[str]]) -> int:
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or len(prompts) == 0:
        raise ElensError("Pass a non-empty list of prompt strings.")
    if isinstance(options, str) or not isinstance(options, Sequence) or len(options) != len(prompts):
        raise ElensError(
            f"Pass one list of options per prompt: got {len(prompts)} prompts and "
            f"{len(options) if isinstance(options, Sequence) and not isinstance(options, str) else type(options).__name__} option lists."
        )
    k = None
    for i, (p, opts) in enumerate(zip(prompts, options)):
        if not isinstance(p, str):
            raise ElensError(f"Prompt {i} is {type(p).__name__}; cloze prompts must be strings.")
        if isinstance(opts, str) or not isinstance(opts, Sequence):
            raise ElensError(f"The options of question {i} must be a list of strings, not {type(opts).__name__}.")
        if k is None:
            k = len(opts)
        if len(opts) != k or k < 2:
            raise ElensError(f"Question {i} has {len(opts)} options; every question needs the same number, at least 2 ({k}).")
        for o in opts:
            if not isinstance(o, str) or not o.strip():
                raise ElensError(f"Question {i} has an empty or non-string option {o!r}: every option needs some text.")
    return int(k)  # type: ignore[arg-type]


def _continuations(
    lm: LensModel, prompts: Sequence[str], options: Sequence[Sequence[str]], separator: str
) -> tuple[list[list[int]], list[list[tuple[int, ...]]]]:
    """The prompts' token ids and each option's continuation ids (module doc)."""
    encoded = lm.encode(list(prompts))
    flat = [p + separator + o for p, opts in zip(prompts, options) for o in opts]
    whole = lm.encode(flat)
    k = len(options[0])
    conts: list[list[tuple[int, ...]]] = []
    for i, ids in enumerate(encoded):
        row = []
        for j in range(k):
            full = whole[i * k + j]
            if full[: len(ids)] != ids or len(full) == len(ids):
                tail = lm.tokenizer.convert_ids_to_tokens(full[max(0, len(ids) - 2) :])
                raise ElensError(
                    f"Option {j} of question {i} ({options[i][j]!r}) does not tokenize as the prompt's "
                    f"tokens plus its own after {prompts[i][-30:]!r} + {separator!r}: the end reads {tail}. "
                    "End the prompt without trailing whitespace (the separator adds the space), or "
                    "pass separator='' if the option follows the prompt directly."
                )
            row.append(tuple(full[len(ids) :]))
        conts.append(row)
    return encoded, conts


def _pad_id(lm: LensModel) -> int:
    tok = lm.tokenizer
    for pad in (tok.pad_token_id, tok.eos_token_id, 0):
        if pad is not None:
            return int(pad)
    return 0  # pragma: no cover


def wide_logits(logits: torch.Tensor) -> torch.Tensor:
    """Logits in float32, or float64 for a float64 model (the tests' reference precision)."""
    return logits if logits.dtype == torch.float64 else logits.float()


def _full_forward(
    lm: LensModel, seqs: list[list[int]], conts: list[tuple[int, ...]], out: list[float]
) -> None:
    """Summed option log-probs of full sequences (prompt + option), one row per pair."""
    lengths = [len(c) for c in conts]
    keep = max(lengths) + 1
    input_ids, mask, positions = left_pad(seqs, _pad_id(lm), lm.device)
    res = lm.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False, logits_to_keep=keep)
    logits = wide_logits(res.logits[:, -keep:])  # [B, keep, V]: positions W-keep .. W-1
    lse = torch.logsumexp(logits, dim=-1)  # [B, keep]
    for b, c in enumerate(lengths):
        # the logits at positions W-c-1 .. W-2 predict the option's c tokens
        pos = torch.arange(keep - c - 1, keep - 1, device=logits.device)
        target = torch.tensor(conts[b], device=logits.device)
        out.append((logits[b, pos, target] - lse[b, pos]).double().sum().item())


def _shared_forward(
    lm: LensModel, prompts: list[list[int]], conts: list[list[tuple[int, ...]]], out: list[list[float]]
) -> None:
    """Summed option log-probs with one prompt pass per question and the KV cache shared.

    The prompts ``[B, P]`` run once (left-padded); their last logits score every option's first
    token. Options of two or more tokens then run their other tokens over the prompt cache, its
    rows selected (and repeated) per option: one pass ``[R_c, c - 1]`` per option length c (R_c
    such options; no padding), positions continuing their prompt's.
    """
    model, dev = lm.model, lm.device
    input_ids, mask, positions = left_pad(prompts, _pad_id(lm), dev)
    longer = [(b, j) for b, row in enumerate(conts) for j, c in enumerate(row) if len(c) > 1]
    res = model(
        input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=bool(longer), logits_to_keep=1
    )
    first = torch.log_softmax(wide_logits(res.logits[:, -1]), dim=-1)  # [B, V]
    sums = [[first[b, c[0]].double().item() for c in row] for b, row in enumerate(conts)]
    if longer:
        prompt_cache = returned_cache(res)
        # One pass per option length, so no position is padding: a question's options differ in
        # length, and padding them to the longest (with its [rows, width, V] logits) cost Gemma-3
        # more than the prompts themselves. Each pass holds at most _LOGIT_BUDGET logits.
        by_length: dict[int, list[tuple[int, int]]] = {}
        for b, j in longer:
            by_length.setdefault(len(conts[b][j]), []).append((b, j))
        passes = []
        for length, pairs in sorted(by_length.items()):
            step = max(1, _LOGIT_BUDGET // ((length - 1) * lm.parts.vocab_size))
            passes += [pairs[start : start + step] for start in range(0, len(pairs), step)]
        for chunk in passes:
            # batch_select_indices replaces the cache's tensors: a later pass needs the original
            cache = prompt_cache if len(passes) == 1 else copy.deepcopy(prompt_cache)
            owner = torch.tensor([b for b, _ in chunk], device=dev)
            cache.batch_select_indices(owner)  # one cache row per option scored below
            # tokens 0 .. c-2 predict tokens 1 .. c-1
            ids = torch.tensor([conts[b][j][:-1] for b, j in chunk], dtype=torch.long, device=dev)
            width = ids.shape[1]
            full_mask = torch.cat([mask[owner], mask.new_ones((len(chunk), width))], dim=-1)
            res, _ = cached_forward(model, ids, full_mask, positions[owner, -1:] + 1 + torch.arange(width, device=dev), cache)
            logits = wide_logits(res.logits)  # [rows, width, V]; position t predicts token t + 1
            logp = logits.gather(-1, ids.new_tensor([conts[b][j][1:] for b, j in chunk]).unsqueeze(-1)).squeeze(-1)
            logp = logp - torch.logsumexp(logits, dim=-1)  # [rows, width]
            for r, (b, j) in enumerate(chunk):
                sums[b][j] += logp[r].double().sum().item()
    out.extend(sums)


@torch.no_grad()
def option_logprobs(
    lm: LensModel,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    *,
    separator: str = " ",
    batch_size: int = 16,
    share_prompt: bool = True,
    progress: bool | None = False,
) -> ClozeScores:
    """The summed log-likelihood of each option's text after its prompt (module doc).

    Args:
        lm: a model from :func:`elens_utils.load_model` (inside
            :func:`~elens_utils.analysis.interventions.skip_blocks` the bypassed model is scored).
        prompts: N prompts, each ending where the answer text comes (``"... Answer:"``).
        options: N lists of K option texts (K the same for every question).
        separator: put between the prompt and each option (``" "``: ``"Answer: Paris"``).
        batch_size: questions per prompt pass. The pass over the options' later tokens holds
            at most 2**25 logits (128 MiB in float32) and is split when more are needed.
        share_prompt: run each prompt once and share its KV cache among its options (fast); False
            runs one full forward pass per (question, option) pair (slower, for models whose
            cache cannot be repeated along the batch). Both give the same values up to float
            rounding.
        progress: show a progress bar (None: only in a terminal or notebook).

    Returns:
        A :class:`ClozeScores`.

    Raises:
        ElensError: for empty or mismatched inputs, an option that merges with its prompt, a
            sequence longer than the model's context, or non-finite log-probabilities.
    """
    k = _check_inputs(prompts, options)
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ElensError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    encoded, conts = _continuations(lm, prompts, options, separator)
    ctx = lm.context_length
    if ctx is not None:
        for i, ids in enumerate(encoded):
            longest = len(ids) + max(len(c) for c in conts[i])
            if longest > ctx:
                raise ElensError(f"Question {i} with its longest option has {longest} tokens; the model takes at most {ctx}.")
    n = len(encoded)
    logprob = np.zeros((n, k), dtype=np.float64)
    # Questions whose options are about as long go together: the option pass pads to the
    # longest option of its batch, and most options are one or two tokens.
    order = sorted(range(n), key=lambda i: (max(len(c) for c in conts[i]), len(encoded[i]), i))
    with tqdm(total=n, desc="cloze", unit="question", disable=None if progress is None else not progress) as bar:
        for start in range(0, n, int(batch_size)):
            idx = order[start : start + int(batch_size)]
            if share_prompt:
                sums: list[list[float]] = []
                _shared_forward(lm, [encoded[i] for i in idx], [conts[i] for i in idx], sums)
                logprob[idx] = np.array(sums)
            else:
                flat: list[float] = []
                pairs = [(i, j) for i in idx for j in range(k)]
                keep = max(len(conts[i][j]) for i, j in pairs) + 1
                step = max(1, _LOGIT_BUDGET // (keep * lm.parts.vocab_size))
                for first in range(0, len(pairs), step):
                    part = pairs[first : first + step]
                    _full_forward(lm, [encoded[i] + list(conts[i][j]) for i, j in part], [conts[i][j] for i, j in part], flat)
                logprob[idx] = np.array(flat).reshape(len(idx), k)
            bar.update(len(idx))
    if not np.isfinite(logprob).all():
        raise ElensError("Non-finite option log-probabilities: the model overflowed; load it in float32 or bfloat16.")
    n_tokens = np.array([[len(c) for c in row] for row in conts], dtype=np.int64)
    n_chars = np.array([[len(o) for o in opts] for opts in options], dtype=np.int64)
    return ClozeScores(logprob=logprob, n_tokens=n_tokens, n_chars=n_chars, token_ids=conts)


def answer_cloze(
    lm: LensModel,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    letters: Sequence[str] = ("A", "B", "C", "D"),
    *,
    normalize: str = "sum",
    separator: str = " ",
    batch_size: int = 16,
    share_prompt: bool = True,
    progress: bool | None = False,
) -> pd.DataFrame:
    """Answer multiple-choice questions by the log-likelihood of each option's text.

    Args:
        lm, prompts, options, separator, batch_size, share_prompt, progress: see
            :func:`option_logprobs`.
        letters: the label of each option position (K letters).
        normalize: ``"sum"`` (summed log-likelihood), ``"token"`` (per token) or ``"char"``
            (per character of the option text): which score picks the answer.

    Returns:
        One row per question, in order: ``predicted`` (the letter of the best score; ties go to
        the earlier option), ``logprob_<letter>`` (summed log-likelihood of that option, nats),
        ``ntokens_<letter>``, ``score_<letter>`` (the score compared), ``letter_mass`` (the
        probability of the K option texts together, ``sum_j exp(logprob_j)``: how much of the
        model's continuation probability lies on the options; named as the letter scorer's
        column so that the two tables line up) and ``option_ids`` (the token ids scored).
    """
    letters = check_letters(letters)
    _check_normalize(normalize)
    k = _check_inputs(prompts, options)
    if k != len(letters):
        raise ElensError(f"The questions have {k} options but {len(letters)} letters {letters}: give one letter per option.")
    res = option_logprobs(
        lm, prompts, options, separator=separator, batch_size=batch_size, share_prompt=share_prompt, progress=progress
    )
    scores = res.scores(normalize)
    table = pd.DataFrame({"predicted": [letters[j] for j in scores.argmax(axis=1)]})
    for j, c in enumerate(letters):
        table[f"logprob_{c}"] = res.logprob[:, j]
    for j, c in enumerate(letters):
        table[f"ntokens_{c}"] = res.n_tokens[:, j]
    for j, c in enumerate(letters):
        table[f"score_{c}"] = scores[:, j]
    table["letter_mass"] = np.exp(res.logprob).sum(axis=1)
    table["option_ids"] = res.token_ids
    return table
