"""Skipping decoder blocks, ranking blocks by expansion / pruning, and multiple-choice accuracy.

The v3 intervention experiment of the paper: find the blocks where the lens entropy grows most
(*expansion*, dH > 0) and where it falls most (*pruning*, dH < 0), skip them, and measure what
that does to multiple-choice accuracy, against skipping random blocks.

Block numbering
---------------
Blocks are numbered **1..L**, as in :class:`~elens_utils.entropy.profiles.Profiles`: block ``l`` is entry
``l - 1`` of the profiles' layer axis. ``dH_l = H_l - H_(l-1)`` is attributed to **block l**
(the block whose computation turns ``H_(l-1)`` into ``H_l``), for ``l = 2..L``: it is entry
``l - 2`` of :meth:`Profiles.delta`. Block 1 has no dH (the embedding output is not a layer of
the profiles, so ``H_0`` is not recorded); it is **excluded from the ranking**, and by default
from the random control too (:func:`random_blocks`), so that the three strategies choose from the
same pool 2..L.

Skipping
--------
:func:`skip_blocks` bypasses blocks **in place**: a forward hook replaces a skipped block's output
by its input residual (``output := input``, the usual meaning of "skip"). The ``ModuleList`` is
not touched, so layer indices and the KV cache stay consistent (deleting a block from the list
would shift every later block's cache slot). The skipped block still runs (its result is
discarded): this costs its compute but keeps its cache slot filled, which some cache classes
read for the sequence length.

Multiple-choice scoring
-----------------------
:func:`answer_multiple_choice` is deterministic: the model's own next-token logits at the end of
the prompt are compared on the option letters' tokens, and the prediction is the letter with the
largest logit (ties: the earlier letter). A letter's token is the token the tokenizer produces
for ``prompt + separator + letter`` after the prompt's own tokens (with the default separator
``" "``: ``" A"`` for byte-level BPE and SentencePiece, ``"A"`` for word-level tokenizers); it is
found per prompt, and anything else (the letter is several tokens, it merges with the prompt's
end, two letters share a token, the letter is the unknown token) is an :class:`ElensError`.

Small real models answer at chance that way even when they know the answer (they have not
learned to name an option by its letter). :func:`mc_accuracy` (and so :func:`skip_experiment`)
can score by **cloze** instead (``scoring="cloze"``): the log-likelihood of each option's text
after the prompt, :mod:`elens_utils.analysis.cloze`. Skipping composes with both scorers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from elens_utils.analysis.cloze import answer_cloze, check_letters
from elens_utils.core.errors import ElensError
from elens_utils.entropy.profiles import Profiles
from elens_utils.lens.generation import left_pad
from elens_utils.lens.loading import LensModel

__all__ = [
    "MCAccuracy",
    "SCORINGS",
    "answer_multiple_choice",
    "expansion_blocks",
    "mc_accuracy",
    "pruning_blocks",
    "random_blocks",
    "rank_blocks",
    "skip_blocks",
    "skip_experiment",
]

DEFAULT_LETTERS: tuple[str, ...] = ("A", "B", "C", "D")


# --------------------------------------------------------------------------------------------
# skipping blocks


def check_blocks(blocks: Iterable[int], n_layers: int, what: str = "blocks") -> list[int]:
    """1-based block numbers as a sorted list of distinct ints in ``1..n_layers``."""
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Iterable):
        raise ElensError(f"{what} must be an iterable of block numbers (1..{n_layers}); got {blocks!r}.")
    out = []
    for b in blocks:
        if isinstance(b, (bool, np.bool_)) or not isinstance(b, numbers.Integral):
            raise ElensError(f"{what} must hold integer block numbers (1..{n_layers}); got {b!r}.")
        b = int(b)
        if not 1 <= b <= n_layers:
            hint = " Blocks are numbered from 1 (block l is profile column l - 1)." if b == 0 else ""
            raise ElensError(f"Block {b} does not exist: this model has blocks 1..{n_layers}.{hint}")
        out.append(b)
    if len(set(out)) != len(out):
        raise ElensError(f"{what} {out} name a block twice: list each block once.")
    return sorted(out)


def _bypass_hook(_module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
    """Forward hook: the block's output becomes its input residual."""
    if args:
        hidden = args[0]
    elif "hidden_states" in kwargs:
        hidden = kwargs["hidden_states"]
    else:
        raise RuntimeError(
            "skip_blocks: the block was called without its hidden states (neither as the first "
            f"positional argument nor as hidden_states=); got keyword arguments {sorted(kwargs)}."
        )
    if isinstance(output, tuple):  # transformers 4.x: (residual, *extras)
        return (hidden, *output[1:])
    if isinstance(output, list):  # openai-gpt's blocks return a list
        return [hidden, *output[1:]]
    return hidden


@contextlib.contextmanager
def skip_blocks(lm: LensModel, blocks: Iterable[int]) -> Iterator[list[int]]:
    """Bypass decoder blocks in place while the context is open.

    Args:
        lm: a model from :func:`elens_utils.load_model`.
        blocks: **1-based** block numbers (block ``l`` is column ``l - 1`` of a profile's layer
            axis); an empty iterable skips nothing.

    Yields:
        The sorted list of skipped blocks.

    Inside the context every forward pass (plain, batched, KV-cached generation such as
    ``lm.profile(...)``) sees each skipped block's output replaced by its input residual. The
    block still runs, so its KV-cache slot is filled as usual; only its contribution to the
    residual stream is dropped. The hooks are registered in front of any other forward hook
    (``prepend=True``), so a :class:`~elens_utils.lens.capture.BlockCapture` opened inside or outside
    the context reads the bypassed output. On exit, normal or by an exception, the hooks are
    removed and the model is exactly as before.

    Raises:
        ElensError: for a block number outside ``1..L``, a repeated block or a non-integer.
    """
    chosen = check_blocks(blocks, lm.n_layers)
    handles = []
    try:
        for b in chosen:
            handles.append(
                lm.parts.blocks[b - 1].register_forward_hook(_bypass_hook, with_kwargs=True, prepend=True)
            )
        yield chosen
    finally:
        for h in handles:
            h.remove()


# --------------------------------------------------------------------------------------------
# ranking blocks by expansion / pruning


def _single_model_raw(profiles: Profiles) -> None:
    if not isinstance(profiles, Profiles):
        raise ElensError(f"Expected a Profiles object; got {type(profiles).__name__}.")
    models = profiles.meta["model"].unique()
    if len(models) != 1:
        raise ElensError(
            f"These profiles hold {len(models)} models ({', '.join(map(str, models[:4]))}): blocks "
            "are ranked per model. Select one model's rows first, e.g. profiles[profiles.meta.model == name]."
        )
    if (profiles.meta["depth_grid"] != "raw").any():
        raise ElensError(
            "Blocks can only be ranked on raw profiles (one entry per decoder block), not on "
            "resampled or padded ones: rank before resample_depth()/pad_depth()."
        )
    if profiles.n_layers < 2:
        raise ElensError("A model with one block has no dH between blocks: nothing to rank.")


def rank_blocks(profiles: Profiles, alpha: float = 1.0) -> pd.DataFrame:
    """Mean dH per block over prompts and tokens, and the expansion / pruning ranks.

    ``dH_l = H_l - H_(l-1)`` belongs to block ``l`` (``l = 2..L``); block 1 has no dH and is
    left out (see the module docstring).

    Args:
        profiles: raw profiles of **one** model (``depth_grid == "raw"``).
        alpha: the Renyi order to use (1 = Shannon); it must have been computed.

    Returns:
        One row per block ``2..L``, in block order, with columns ``block``, ``transition``
        (``"1->2"``), ``mean_dH`` (nats, mean over prompts and tokens), ``std_dH``,
        ``frac_positive`` (share of prompt-token pairs with dH > 0), ``expansion_rank`` (1 =
        largest mean dH) and ``pruning_rank`` (1 = most negative mean dH). Ties are broken by
        block number (the lower block ranks first).
    """
    _single_model_raw(profiles)
    # Profiles.delta(), in float64: entry l - 2 is dH of block l.
    d = np.diff(profiles.select(alpha).astype(np.float64), axis=2)  # [N, T, L-1]
    flat = d.reshape(-1, d.shape[-1])
    mean = flat.mean(axis=0)
    blocks = np.arange(2, profiles.n_layers + 1)
    table = pd.DataFrame(
        {
            "block": blocks,
            "transition": [f"{b - 1}->{b}" for b in blocks],
            "mean_dH": mean,
            "std_dH": flat.std(axis=0),
            "frac_positive": (flat > 0).mean(axis=0),
        }
    )
    exp_order = np.lexsort((blocks, -mean))  # largest mean first, then lower block
    pru_order = np.lexsort((blocks, mean))
    table["expansion_rank"] = 0
    table["pruning_rank"] = 0
    table.loc[exp_order, "expansion_rank"] = np.arange(1, len(blocks) + 1)
    table.loc[pru_order, "pruning_rank"] = np.arange(1, len(blocks) + 1)
    return table


def check_k(k: Any, available: int, what: str) -> int:
    """``k`` as an ``int`` in ``0..available`` (how many ``what`` to choose), or an :class:`ElensError`."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 0:
        raise ElensError(f"k must be a non-negative integer; got {k!r}.")
    if k > available:
        raise ElensError(f"Cannot choose {k} {what}: only {available} are available.")
    return int(k)


def expansion_blocks(profiles: Profiles, k: int, alpha: float = 1.0) -> list[int]:
    """The ``k`` blocks (of 2..L) with the largest mean dH, largest first.

    If fewer than ``k`` blocks expand on average (mean dH > 0), the list continues with the
    blocks that prune least; :func:`rank_blocks` shows the signs.
    """
    table = rank_blocks(profiles, alpha)
    k = check_k(k, len(table), "expansion blocks")
    return [int(b) for b in table.sort_values("expansion_rank")["block"][:k]]


def pruning_blocks(profiles: Profiles, k: int, alpha: float = 1.0) -> list[int]:
    """The ``k`` blocks (of 2..L) with the most negative mean dH, most negative first.

    If fewer than ``k`` blocks prune on average (mean dH < 0), the list continues with the
    blocks that expand least.
    """
    table = rank_blocks(profiles, alpha)
    k = check_k(k, len(table), "pruning blocks")
    return [int(b) for b in table.sort_values("pruning_rank")["block"][:k]]


def random_blocks(
    n_layers: int,
    k: int,
    seed: int,
    exclude: Iterable[int] = (),
    include_first: bool = False,
) -> list[int]:
    """``k`` distinct blocks drawn uniformly at random, sorted.

    Args:
        n_layers: L, the model's number of blocks.
        k: how many blocks.
        seed: seeds :func:`numpy.random.default_rng`; the same arguments give the same blocks.
        exclude: blocks never drawn (e.g. the expansion and pruning blocks).
        include_first: also allow block 1. Off by default: the ranking only covers 2..L
            (block 1 has no dH), so the random control draws from the same pool.
    """
    if isinstance(n_layers, (bool, np.bool_)) or not isinstance(n_layers, numbers.Integral) or n_layers < 1:
        raise ElensError(f"n_layers must be a positive integer; got {n_layers!r}.")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise ElensError(f"seed must be an integer; got {seed!r}.")
    excluded = set(check_blocks(exclude, int(n_layers), "exclude"))
    pool = [b for b in range(1 if include_first else 2, int(n_layers) + 1) if b not in excluded]
    k = check_k(k, len(pool), f"random blocks from the pool {pool}")
    rng = np.random.default_rng(int(seed))
    return sorted(int(b) for b in rng.choice(pool, size=k, replace=False)) if k else []


# --------------------------------------------------------------------------------------------
# batching


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as an ``int >= 1``, or an :class:`ElensError`."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ElensError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    return int(batch_size)


# --------------------------------------------------------------------------------------------
# multiple choice


def _letter_ids(lm: LensModel, prompt: str, prompt_ids: list[int], letters: tuple[str, ...], separator: str, index: int) -> list[int]:
    """The token id of each letter as the tokenizer writes it after ``prompt`` (see module doc)."""
    tok = lm.tokenizer
    ids = []
    for c in letters:
        full = lm.encode([prompt + separator + c])[0]
        extra = full[len(prompt_ids) :]
        if full[: len(prompt_ids)] != prompt_ids or len(extra) != 1:
            shown = tok.convert_ids_to_tokens(full[max(0, len(prompt_ids) - 2) :])
            raise ElensError(
                f"Option {c!r} after prompt {index} ({prompt[-30:]!r} + {separator!r} + {c!r}) does not "
                f"tokenize as the prompt's tokens plus one token: the end reads {shown}. The letter "
                "must be a single token that does not merge with the prompt's last token; end the "
                "prompt without trailing whitespace (separator ' ') or pass separator='' if the "
                "letter follows the prompt directly."
            )
        ids.append(extra[0])
    unk = tok.unk_token_id
    for c, i in zip(letters, ids):
        if unk is not None and i == unk:
            raise ElensError(
                f"Option {c!r} is the unknown token {tok.unk_token!r} for this tokenizer: it is not in "
                "the vocabulary. Use option labels the tokenizer knows (pass letters=...)."
            )
    if len(set(ids)) != len(ids):
        raise ElensError(
            f"Options {letters} map to the token ids {ids} after prompt {index}: two letters share a "
            "token, so they cannot be told apart."
        )
    return ids


@torch.no_grad()
def answer_multiple_choice(
    lm: LensModel,
    prompts: Sequence[str],
    letters: Sequence[str] = DEFAULT_LETTERS,
    *,
    separator: str = " ",
    batch_size: int = 8,
    progress: bool | None = False,
) -> pd.DataFrame:
    """Score multiple-choice prompts by the model's next-token logits of the option letters.

    Args:
        lm: a model from :func:`elens_utils.load_model` (inside :func:`skip_blocks` the
            bypassed model is scored).
        prompts: N prompts, each ending where the answer letter comes (``"... Answer:"``).
        letters: the option labels, each a single token after the prompt.
        separator: what separates the prompt from the letter when the letter's token is looked
            up (``" "``: the letter token is the one of ``prompt + " " + letter``, e.g. ``" A"``).
            The prompt itself is scored as given.
        batch_size: prompts per forward pass (left-padded with explicit positions; results do
            not depend on it beyond float rounding).
        progress: show a progress bar (None: only in a terminal or notebook).

    Returns:
        One row per prompt, in order: ``predicted`` (the letter with the largest logit; ties go
        to the earlier letter), ``logprob_<letter>`` for each letter (log-probability under the
        model's full next-token distribution, float32 arithmetic), ``letter_mass`` (total
        probability of the letters) and ``letter_ids`` (the token ids used).
    """
    letters = check_letters(letters)
    batch_size = check_batch_size(batch_size)
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or len(prompts) == 0:
        raise ElensError("Pass a non-empty list of prompt strings.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ElensError(f"Prompt {i} is {type(p).__name__}; multiple-choice prompts must be strings.")
    encoded = lm.encode(list(prompts), fit_context=True)
    letter_ids = [_letter_ids(lm, p, ids, letters, separator, i) for i, (p, ids) in enumerate(zip(prompts, encoded))]
    n = len(encoded)
    logprobs = np.empty((n, len(letters)), dtype=np.float32)
    order = sorted(range(n), key=lambda i: -len(encoded[i]))
    with tqdm(total=n, desc="multiple choice", unit="prompt", disable=None if progress is None else not progress) as bar:
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            input_ids, mask, positions = left_pad([encoded[i] for i in idx], lm.tokenizer.pad_token_id, lm.device)
            out = lm.model(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False, logits_to_keep=1
            )
            lp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
            sel = torch.tensor([letter_ids[i] for i in idx], device=lp.device)
            logprobs[idx] = lp.gather(-1, sel).cpu().numpy()
            bar.update(len(idx))
    if not np.isfinite(logprobs).all():
        raise ElensError("Non-finite letter log-probabilities: the model overflowed; load it in float32 or bfloat16.")
    table = pd.DataFrame({"predicted": [letters[j] for j in logprobs.argmax(axis=1)]})
    for j, c in enumerate(letters):
        table[f"logprob_{c}"] = logprobs[:, j]
    table["letter_mass"] = np.exp(logprobs.astype(np.float64)).sum(axis=1)
    table["letter_ids"] = [tuple(int(t) for t in ids) for ids in letter_ids]
    return table


@dataclasses.dataclass(frozen=True)
class MCAccuracy:
    """Accuracy of a model on a multiple-choice set.

    Attributes:
        accuracy: share of questions answered correctly.
        chance: ``1 / len(letters)``, the accuracy of guessing.
        n_questions: number of questions.
        table: one row per question: the columns of :func:`answer_multiple_choice` plus
            ``answer`` (the correct letter) and ``correct`` (bool).
    """

    accuracy: float
    chance: float
    n_questions: int
    table: pd.DataFrame


def _questions_frame(questions: Any) -> pd.DataFrame:
    if isinstance(questions, pd.DataFrame):
        return questions.reset_index(drop=True)
    if isinstance(questions, Sequence) and not isinstance(questions, str):
        rows = [dataclasses.asdict(q) if dataclasses.is_dataclass(q) else q for q in questions]
        if all(isinstance(r, Mapping) for r in rows):
            return pd.DataFrame(rows)
    raise ElensError(
        "questions must be a DataFrame (or a list of dicts / MCQuestion) with a prompt column and an "
        f"answer column; got {type(questions).__name__}."
    )


def _answers(frame: pd.DataFrame, answer_col: str, letters: tuple[str, ...]) -> list[str]:
    out = []
    for i, a in enumerate(frame[answer_col].tolist()):
        if isinstance(a, (numbers.Integral, np.integer)) and not isinstance(a, (bool, np.bool_)):
            if not 0 <= int(a) < len(letters):
                raise ElensError(f"Answer index {a} of question {i} is outside 0..{len(letters) - 1}.")
            out.append(letters[int(a)])
        elif isinstance(a, str) and a.strip() in letters:
            out.append(a.strip())
        else:
            raise ElensError(
                f"Answer {a!r} of question {i} is not one of the letters {letters} (or an index into them)."
            )
    return out


_ANSWER_COLUMNS = ("answer", "answer_letter")  # data frames, then synthetic.MCQuestion


#: How :func:`mc_accuracy` answers: by the letters' next-token logits, or by the options' text.
SCORINGS: tuple[str, ...] = ("letters", "cloze")


def mc_accuracy(
    lm: LensModel,
    questions: Any,
    *,
    prompt_col: str | None = None,
    answer_col: str | None = None,
    letters: Sequence[str] = DEFAULT_LETTERS,
    separator: str = " ",
    batch_size: int = 8,
    progress: bool | None = False,
    scoring: str = "letters",
    normalize: str = "sum",
    options_col: str = "options",
) -> MCAccuracy:
    """Accuracy of :func:`answer_multiple_choice` (or of cloze scoring) on a question set.

    Args:
        questions: a DataFrame (or a list of dicts, or of
            :class:`~elens_utils.data.synthetic.MCQuestion`) with a prompt column and an answer
            column holding the correct letter (or its index into ``letters``).
        prompt_col: the column of the prompts. None: ``"prompt"``; for ``scoring="cloze"``,
            ``"cloze_prompt"`` when the frame has one (:func:`elens_utils.data.fact_questions.fact_questions`),
            else ``"prompt"``.
        answer_col: the column of the correct letters; None takes ``"answer"`` (the frames of
            :mod:`elens_utils.data.prompts`) or else ``"answer_letter"`` (``synthetic.MCQuestion``).
        letters, separator, batch_size, progress: see :func:`answer_multiple_choice`.
        scoring: ``"letters"`` (the default: the next-token logits of the letters,
            :func:`answer_multiple_choice`) or ``"cloze"`` (the log-likelihood of each option's
            text after the prompt, :func:`elens_utils.analysis.cloze.answer_cloze`; ``separator`` goes
            between prompt and option there).
        normalize: cloze only: ``"sum"``, ``"token"`` or ``"char"`` (see
            :func:`~elens_utils.analysis.cloze.answer_cloze`).
        options_col: cloze only: the column with each question's option texts, in letter order.

    Returns:
        An :class:`MCAccuracy` whose table has the columns of the scorer used (for cloze,
        ``logprob_<letter>`` is the option text's summed log-likelihood and ``letter_mass`` the
        options' total probability).
    """
    letters = check_letters(letters)
    if scoring not in SCORINGS:
        raise ElensError(
            f"Unknown scoring {scoring!r}: use 'letters' (next-token logits of the option letters) "
            "or 'cloze' (log-likelihood of each option's text after the prompt)."
        )
    frame = _questions_frame(questions)
    if prompt_col is None:
        prompt_col = "cloze_prompt" if scoring == "cloze" and "cloze_prompt" in frame.columns else "prompt"
    if answer_col is None:
        answer_col = next((c for c in _ANSWER_COLUMNS if c in frame.columns), _ANSWER_COLUMNS[0])
    needed = (prompt_col, answer_col, options_col) if scoring == "cloze" else (prompt_col, answer_col)
    for col in needed:
        if col not in frame.columns:
            hint = " Cloze scoring needs each question's option texts." if col == options_col else ""
            raise ElensError(f"The questions have no column {col!r}; columns: {list(frame.columns)}.{hint}")
    if len(frame) == 0:
        raise ElensError("No questions given.")
    answers = _answers(frame, answer_col, letters)
    if scoring == "cloze":

        table = answer_cloze(
            lm,
            frame[prompt_col].tolist(),
            [list(o) for o in frame[options_col]],
            letters,
            normalize=normalize,
            separator=separator,
            batch_size=batch_size,
            progress=progress,
        )
    else:
        table = answer_multiple_choice(
            lm, frame[prompt_col].tolist(), letters, separator=separator, batch_size=batch_size, progress=progress
        )
    table.insert(1, "answer", answers)
    table.insert(2, "correct", table["predicted"] == table["answer"])
    return MCAccuracy(
        accuracy=float(table["correct"].mean()),
        chance=1.0 / len(letters),
        n_questions=len(table),
        table=table,
    )


# --------------------------------------------------------------------------------------------
# the experiment


def skip_experiment(
    lm: LensModel,
    questions: Any,
    profiles: Profiles,
    ks: Sequence[int] = (1, 2, 3),
    n_random_seeds: int = 3,
    *,
    alpha: float = 1.0,
    seed: int = 0,
    random_excludes_ranked: bool = False,
    check_model: bool = True,
    progress: bool | None = None,
    **mc_kwargs,
) -> pd.DataFrame:
    """Multiple-choice accuracy when skipping the expansion, pruning or random blocks.

    Args:
        lm: the model.
        questions: the question set (see :func:`mc_accuracy`).
        profiles: entropy profiles of ``lm`` (one model, raw), which rank the blocks.
        ks: numbers of blocks to skip (each ``1..L-1``).
        n_random_seeds: random draws per ``k``; draw ``s`` of ``k`` uses seed
            ``seed * 1_000_003 + 1000 * k + s`` (recorded in the ``seed`` column).
        alpha: the Renyi order that ranks the blocks (1 = Shannon).
        random_excludes_ranked: random draws avoid the expansion and pruning blocks of the same
            ``k`` (off: they draw from all of 2..L).
        check_model: refuse profiles whose ``model`` name differs from ``lm.name``.
        progress: progress bar over the conditions (None: only in a terminal or notebook).
        **mc_kwargs: ``prompt_col``, ``answer_col``, ``letters``, ``separator``, ``batch_size``,
            ``scoring`` (``"letters"`` or ``"cloze"``), ``normalize``, ``options_col`` for
            :func:`mc_accuracy`.

    Returns:
        One row per condition: ``strategy`` (baseline / expansion / pruning / random), ``k``
        (0 for the baseline), ``seed`` (None except random), ``accuracy``, ``n_correct``,
        ``n_questions``, ``chance`` and ``blocks`` (the skipped blocks, 1-based, as a list).
    """
    _single_model_raw(profiles)
    if profiles.n_layers != lm.n_layers:
        raise ElensError(
            f"The profiles have {profiles.n_layers} blocks but the model has {lm.n_layers}: "
            "rank the blocks with profiles of this model."
        )
    name = str(profiles.meta["model"].iloc[0])
    if check_model and name != lm.name:
        raise ElensError(
            f"The profiles are of model {name!r} but the model is {lm.name!r}. If they are the "
            "same model under two names (a Hub id and its local copy), pass check_model=False."
        )
    if isinstance(ks, (numbers.Integral, np.integer)):
        ks = (ks,)
    ks = [check_k(k, lm.n_layers - 1, "blocks to skip") for k in ks]
    if any(k == 0 for k in ks):
        raise ElensError("ks must be >= 1 (the baseline without skipping is always included).")
    if isinstance(n_random_seeds, (bool, np.bool_)) or not isinstance(n_random_seeds, numbers.Integral) or n_random_seeds < 0:
        raise ElensError(f"n_random_seeds must be a non-negative integer; got {n_random_seeds!r}.")
    conditions: list[tuple[str, int, int | None, list[int]]] = [("baseline", 0, None, [])]
    for k in ks:
        exp, pru = expansion_blocks(profiles, k, alpha), pruning_blocks(profiles, k, alpha)
        conditions += [("expansion", k, None, exp), ("pruning", k, None, pru)]
        exclude = sorted(set(exp) | set(pru)) if random_excludes_ranked else []
        for s in range(int(n_random_seeds)):
            draw_seed = int(seed) * 1_000_003 + 1000 * k + s
            conditions.append(("random", k, draw_seed, random_blocks(lm.n_layers, k, draw_seed, exclude=exclude)))
    rows = []
    for strategy, k, draw_seed, blocks in tqdm(
        conditions, desc=f"skip experiment {lm.name}", unit="condition", disable=None if progress is None else not progress
    ):
        with skip_blocks(lm, blocks):
            res = mc_accuracy(lm, questions, progress=False, **mc_kwargs)
        rows.append(
            {
                "strategy": strategy,
                "k": k,
                "seed": draw_seed,
                "accuracy": res.accuracy,
                "n_correct": int(res.table["correct"].sum()),
                "n_questions": res.n_questions,
                "chance": res.chance,
                "blocks": list(blocks),
            }
        )
    out = pd.DataFrame(rows)
    out["seed"] = out["seed"].astype("Int64")
    return out
