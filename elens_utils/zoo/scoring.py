"""Scoring a zoo model's outputs: the letter logits of multiple choice, greedy answers and the loss
on held-out documents. Prompts are batched only with prompts of the same length, so no padding
enters any forward pass."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch

from elens_utils.core.errors import ElensError
from elens_utils.data.synthetic import LETTERS, Document


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
def greedy_continuations(model, encoded: Sequence[Sequence[int]], n_new: Sequence[int], batch_size: int) -> list[list[int]]:
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
def document_loss(model, tokenizer, docs: Sequence[Document], batch_size: int) -> tuple[float, int]:
    """``(mean next-token cross-entropy in nats per token, tokens counted)`` over ``docs``, each
    scored alone from ``<bos>`` through ``<eos>``."""
    encoded = [[*ids, tokenizer.eos_token_id] for ids in tokenizer([d.text for d in docs])["input_ids"]]
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for idx in _by_length(encoded, batch_size):
        ids = torch.tensor([encoded[i] for i in idx], device=device)
        logp = torch.log_softmax(model(input_ids=ids).logits[:, :-1].float(), -1)
        total += -logp.gather(-1, ids[:, 1:, None]).double().sum().item()
        count += ids[:, 1:].numel()
    return total / count, count
