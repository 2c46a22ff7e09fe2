"""The zoo's training batches: documents encoded with their answer positions, then cut into batches
of whole documents, one per row, right-padded."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from elens_utils.core.errors import ElensError
from elens_utils.data.synthetic import NEWLINE, Document, build_tokenizer, words


@dataclass
class TrainingBatches:
    """Training batches, one document per row, right-padded with ``<pad>`` (weight 0).

    ``batches[i] = (input_ids [b, S_i], weights [b, S_i], kinds [b, S_i])``, and a fourth item
    ``focus`` (bool) once scheduled by the recipe: ``weights[r, t]`` weighs the prediction of
    token ``t`` from tokens ``< t`` (0 at position 0 and on padding), ``kinds`` marks answer
    positions: 1 for an MC letter, 2 for a task answer, 3 for an open answer, 0 otherwise.
    """

    batches: list[tuple]

    @property
    def n_docs(self) -> int:
        """Documents in the batches (one per row)."""
        return sum(len(b[0]) for b in self.batches)

    @property
    def n_real_tokens(self) -> int:
        """Tokens processed (non-pad, past position 0): what the card calls training tokens."""
        return int(sum((b[1] > 0).sum() for b in self.batches))


#: The ``kinds`` codes of :class:`TrainingBatches`: an MC (or look-up) letter, a task answer, an
#: open answer.
KIND_MC, KIND_TASK, KIND_QA = 1, 2, 3


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
            kinds[i] = {"mc": KIND_MC, "lookup": KIND_MC, "task": KIND_TASK, "qa": KIND_QA}[doc.kind]
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
    return TrainingBatches(out)


def take_batches(batches: Sequence[tuple], n_tokens: int) -> list[tuple]:
    """The first ``batches`` until they hold ``n_tokens`` weighted (processed) tokens: the batch that
    reaches the count is kept, the rest dropped."""
    kept, total = [], 0
    for b in batches:
        if total >= n_tokens:
            break
        kept.append(b)
        total += int((b[1] > 0).sum())
    return kept


def docs_for(stream: Iterator[Document], n_tokens: float) -> list[Document]:
    """Documents from ``stream`` until they hold ``n_tokens`` tokens (``<bos>``/``<eos>`` included)."""
    docs, total = [], 0
    while total < n_tokens:
        docs.append(next(stream))
        total += len(words(docs[-1].text)) + 2
    return docs
