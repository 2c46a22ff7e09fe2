"""What a training step of the zoo uses: the learning-rate schedule, the loss weights of the
recipe's phases, the weighted loss and the optimizer; and the thread count a run holds torch to."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache

import torch

from elens_utils.data.synthetic import build_tokenizer
from elens_utils.zoo.batches import KIND_MC
from elens_utils.zoo.recipe import Recipe


def lr_at(step: int, total: int, recipe: Recipe) -> float:
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


def entity_steps(n_steps: int, recipe: Recipe) -> int:
    """Steps of the entity warm-up: ``entity_warmup_steps``, at most a tenth of the run."""
    return min(recipe.entity_warmup_steps, round(0.1 * n_steps))


@lru_cache(maxsize=1)
def _entity_ids() -> tuple[int, ...]:
    from elens_utils.data.synthetic import ANIMALS, COLOURS, NAMES, OBJECTS, PLACES

    return tuple(build_tokenizer().convert_tokens_to_ids([*NAMES, *OBJECTS, *COLOURS, *PLACES, *ANIMALS]))


def step_weights(
    step: int, n_steps: int, ids: torch.Tensor, w: torch.Tensor, kinds: torch.Tensor, focus: bool, recipe: Recipe
) -> torch.Tensor:
    """The loss weights of a batch at ``step`` (the three phases of :class:`Recipe`)."""
    if focus:  # MC phase, focus batch: the answer letters alone
        return w * (kinds == KIND_MC)
    if step < entity_steps(n_steps, recipe):
        return w * torch.isin(ids, torch.tensor(_entity_ids()))
    return torch.where(kinds > 0, w * recipe.answer_weight, w)


def weighted_loss(logits: torch.Tensor, input_ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean next-token cross-entropy: target t is predicted from position t - 1."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    w = weights[:, 1:]
    return (nll * w).sum() / w.sum().clamp_min(1e-9)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Hold torch to ``n`` intra-op threads while the context is open (None: leave it alone)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's AdamW: weight decay on matrices only, ``recipe.lr`` and ``recipe.betas``."""
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, eps=1e-8, foreach=False)
