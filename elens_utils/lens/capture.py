"""Reading the residual stream of every decoder block through the logit lens.

:class:`BlockCapture` hooks the L decoder blocks and keeps each block's output residual at the
last position of the sequence (the position whose next token is being predicted), so a
forward pass yields ``[L, batch, d]`` and never the ``[L, batch, seq, d]`` of
``output_hidden_states``. :func:`prompt_lens` reads every position of one prompt, for worked
examples (top tokens per layer) and checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from elens_utils.core.errors import ElensError
from elens_utils.lens.loading import LensModel

__all__ = ["BlockCapture", "PromptLens", "prompt_lens"]


class BlockCapture:
    """Context manager capturing block output residuals during forward passes.

    Args:
        blocks: the L decoder blocks.
        last_only: keep only the last sequence position (``[batch, d]`` per block) instead of
            every position (``[batch, seq, d]``).

    After a forward pass, :meth:`take` returns the captured ``[L, batch, d]`` (or
    ``[L, batch, seq, d]``) and clears the buffer for the next pass.
    """

    def __init__(self, blocks: Sequence[nn.Module], last_only: bool = True):
        self.blocks = list(blocks)
        self.last_only = last_only
        self._outputs: list[torch.Tensor] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, _module: nn.Module, _inputs, output) -> None:
        # transformers 5.x blocks return a tensor, 4.x a tuple whose first item is the residual.
        resid = output[0] if isinstance(output, (tuple, list)) else output  # openai-gpt: a list
        self._outputs.append(resid[:, -1].clone() if self.last_only else resid.clone())

    def __enter__(self) -> BlockCapture:
        self._handles = [b.register_forward_hook(self._hook) for b in self.blocks]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._outputs = []

    def take(self) -> torch.Tensor:
        """The residuals of the last forward pass, stacked over blocks (block 1 first)."""
        if len(self._outputs) != len(self.blocks):
            raise RuntimeError(
                f"captured {len(self._outputs)} block outputs for {len(self.blocks)} blocks: "
                "was exactly one forward pass run since the last take()?"
            )
        out = torch.stack(self._outputs)
        self._outputs = []
        return out


@dataclass
class PromptLens:
    """The lens over every position of one prompt.

    Attributes:
        tokens: the prompt's tokens as strings, ``[S]``.
        entropy: ``[S, L, A]`` float32 entropies (nats); position s predicts token s + 1.
        alphas: the Renyi orders of the last axis.
        top_ids: ``[S, L, k]`` most probable next-token ids of each block's lens.
        top_probs: ``[S, L, k]`` their probabilities.
    """

    tokens: list[str]
    entropy: torch.Tensor
    alphas: tuple[float, ...]
    top_ids: torch.Tensor
    top_probs: torch.Tensor


@torch.no_grad()
def prompt_lens(lm: LensModel, prompt: str | Sequence[int], alphas: Sequence[float] = (1.0,), k: int = 5) -> PromptLens:
    """Lens entropies and top-k predictions of every block at every position of one prompt.

    Materialises ``[S, V]`` logits one block at a time: fine for a worked example, not for bulk
    profiles (use :func:`elens_utils.lens.generation.generate_profiles`).
    """
    from elens_utils.entropy.streaming import entropy_outside_range, normalize_alphas

    alphas = normalize_alphas(alphas)
    ids = lm.encode([prompt])[0]
    x = torch.tensor([ids], device=lm.device)
    with BlockCapture(lm.parts.blocks, last_only=False) as cap:
        lm.model(input_ids=x)
        resid = cap.take()[:, 0]  # [L, S, d]
    entropies, top_ids, top_probs = [], [], []
    for block_resid in resid:
        entropies.append(lm.parts.entropy(block_resid, alphas))
        probs = torch.softmax(lm.parts.logits(block_resid), dim=-1)
        p, i = probs.topk(k, dim=-1)
        top_ids.append(i)
        top_probs.append(p)
    tokens = lm.tokenizer.convert_ids_to_tokens(ids)
    entropy = torch.stack(entropies, dim=1)  # [S, L, A]
    outside = entropy_outside_range(entropy, lm.parts.vocab_size)
    if bool(outside.any()):
        pos, layer = (int(i) for i in torch.nonzero(outside)[0, :2])
        raise ElensError(
            f"Lens entropy {float(entropy[outside][0]):.6g} nats at position {pos + 1}, block {layer + 1}: outside "
            f"[0, log V] or not finite, so the heat-map is not drawn. Load the model in float32; if it persists, "
            "report it with the model, device and dtype."
        )
    return PromptLens(
        tokens=list(tokens),
        entropy=entropy.cpu(),
        alphas=alphas,
        top_ids=torch.stack(top_ids, dim=1).cpu(),
        top_probs=torch.stack(top_probs, dim=1).cpu(),
    )
