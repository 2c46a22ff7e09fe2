"""Generation with a KV cache that records the lens entropy of every block at every step.

Step k (k = 1..T) runs one forward pass (the whole prompt at k = 1, then the single new token
against the cache), keeps each block's output at the last position, and chooses token k from
the model's own logits; the kept outputs of several steps go through the lens together. So ``entropy[n, k-1, l]`` is the entropy of block
l + 1's prediction of generated token k of prompt n.

Prompts are batched with left padding and explicit position ids, so padding changes no value:
a prompt alone and the same prompt beside longer ones give the same profile (up to float
rounding). Sampling draws each prompt's tokens from its own random stream, seeded by
``(seed, prompt index)``, so a prompt's sample does not depend on the batch size either.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from elens_utils.core.errors import ElensError
from elens_utils.core.hf_compat import cached_forward
from elens_utils.entropy.profiles import Profiles
from elens_utils.entropy.streaming import entropy_outside_range, normalize_alphas
from elens_utils.lens.capture import BlockCapture
from elens_utils.lens.loading import LensModel, register_profiler

__all__ = ["GenerationSettings", "generate_profiles", "left_pad", "row_seed"]

# The lens reads the block outputs of several steps in one call, up to this many rows (steps x
# blocks x prompts): the unembedding matmul then runs at large-M efficiency, where one step has
# only L x B rows (about 1.5x slower per row on 2 CPU cores at 192 rows). The sampler needs only
# the model's own logits, so deferring the lens changes no token; the buffer is bounded (4096 x d
# values: 12 MB at d = 768 in float32).
_LENS_ROWS = 4096



@dataclass(frozen=True)
class GenerationSettings:
    """How tokens are chosen.

    Attributes:
        max_new_tokens: T, tokens generated per prompt (always exactly T: EOS does not stop it;
            the profile metadata records where the first EOS fell).
        do_sample: sample (True) or take the most probable token (False, greedy).
        temperature: softmax temperature for sampling (> 0).
        top_k: keep only the k most probable tokens when sampling (None: all).
        top_p: keep the smallest set of tokens with probability mass >= top_p (None: all).
        seed: base seed; prompt n samples from a stream seeded by ``row_seed(seed, n)``.
    """

    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ElensError(f"max_new_tokens must be an integer >= 1; got {self.max_new_tokens!r}.")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0 and math.isfinite(self.temperature)):
            raise ElensError(f"temperature must be a finite number > 0; got {self.temperature!r}. Use greedy for T -> 0.")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ElensError(f"top_k must be an integer >= 1 or None; got {self.top_k!r}.")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ElensError(f"top_p must lie in (0, 1] or be None; got {self.top_p!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ElensError(f"seed must be an integer >= 0; got {self.seed!r}.")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def row_seed(seed: int, index: int) -> int:
    """Seed of prompt ``index``'s sampling stream: independent streams from one base seed."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"):
    """Left-padded ``input_ids``, ``attention_mask`` and ``position_ids`` (all ``[B, S]``).

    Real tokens at the right, positions counted from each row's first real token, so a padded
    row computes the same values as the row alone (used by generation, multiple-choice scoring
    and the candidate-set check).
    """
    batch, width = len(rows), max(len(r) for r in rows)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for b, ids in enumerate(rows):
        input_ids[b, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
        mask[b, width - len(ids) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    return input_ids.to(device), mask.to(device), positions.to(device)


def _warpers(settings: GenerationSettings):
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    out = []
    if settings.temperature != 1.0:
        out.append(TemperatureLogitsWarper(settings.temperature))
    if settings.top_k is not None:
        out.append(TopKLogitsWarper(settings.top_k))
    if settings.top_p is not None and settings.top_p < 1.0:
        out.append(TopPLogitsWarper(settings.top_p))
    return out


def _choose(logits: torch.Tensor, settings: GenerationSettings, warpers, streams: list[torch.Generator]) -> torch.Tensor:
    """Next tokens ``[B]`` from last-position logits ``[B, V]`` (float32)."""
    if not settings.do_sample:
        return logits.argmax(-1)
    for warp in warpers:
        logits = warp(None, logits)
    probs = torch.softmax(logits.double(), dim=-1).cpu()
    cdf = probs.cumsum(-1)
    u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in streams])
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).squeeze(-1)
    # Never land on a token the warpers removed (zero probability), even at a cdf plateau.
    idx = idx.clamp_max(probs.shape[-1] - 1)
    zero = probs.gather(-1, idx.unsqueeze(-1)).squeeze(-1) == 0
    if zero.any():
        idx[zero] = probs[zero].argmax(-1)
    return idx.to(logits.device)


@torch.no_grad()
def _generate_batch(
    lm: LensModel,
    rows: list[list[int]],
    seeds: list[int],
    settings: GenerationSettings,
    alphas: tuple[float, ...],
    lens_kwargs: dict,
) -> tuple[np.ndarray, np.ndarray]:
    """Entropies ``[B, T, L, A]`` and generated ids ``[B, T]`` for one batch of prompts."""
    model, parts, dev = lm.model, lm.parts, lm.device
    batch, steps = len(rows), settings.max_new_tokens
    input_ids, mask, positions = left_pad(rows, lm.tokenizer.pad_token_id, dev)
    streams = [torch.Generator().manual_seed(s) for s in seeds]
    warpers = _warpers(settings)
    entropy = torch.empty((batch, steps, parts.n_layers, len(alphas)), dtype=torch.float32)
    tokens = torch.empty((batch, steps), dtype=torch.long)
    # Only the last position's logits are needed; models from remote code may not take the flag.
    extra = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    cache = None
    pending: list[tuple[int, torch.Tensor]] = []  # (step, block outputs [L, B, d]) not yet read
    log_v = math.log(parts.vocab_size)

    def read_lens() -> None:
        """The lens of every pending step in one call: ``len(pending) * L * B`` rows."""
        resid = torch.stack([r for _, r in pending])  # [k, L, B, d]
        h = parts.entropy(resid.flatten(0, 2), alphas, **lens_kwargs).view(len(pending), parts.n_layers, batch, -1)
        if not torch.isfinite(h).all():
            k, layer = (int(i) for i in torch.nonzero(~torch.isfinite(h))[0, :2])
            raise ElensError(
                f"Non-finite logits at generation step {pending[k][0] + 1}, block {layer + 1} (dtype "
                f"{str(lm.dtype).removeprefix('torch.')}): the model's activations overflowed "
                "or its weights hold NaN/inf. Load it in float32 (or bfloat16), or check the weights."
            )
        # An entropy lies in [0, log V] for every Renyi order: a value outside is a broken lens
        # computation, never a result (float rounding stays far inside the tolerance).
        outside = entropy_outside_range(h, parts.vocab_size)
        if bool(outside.any()):
            k, layer = (int(i) for i in torch.nonzero(outside)[0, :2])
            value = float(h[outside][0])
            raise ElensError(
                f"Lens entropy {value:.6g} nats at generation step {pending[k][0] + 1}, block {layer + 1}, "
                f"outside [0, log V = {log_v:.4f}]: the lens computation is broken, and the result is not "
                "used. Run again with precision='fp32' (or backend='torch'); if it persists, report it "
                "with the model, device and dtype."
            )
        first = pending[0][0]
        entropy[:, first : first + len(pending)] = h.permute(2, 0, 1, 3).cpu()
        pending.clear()

    with BlockCapture(parts.blocks) as capture:
        for step in range(steps):
            out, cache = cached_forward(model, input_ids, mask, positions, cache, **extra)
            pending.append((step, capture.take()))  # [L, B, d]
            logits = out.logits[:, -1].float()
            # Non-finite logits: read the lens now, which names the first block that overflowed.
            if len(pending) * parts.n_layers * batch >= _LENS_ROWS or not torch.isfinite(logits).all():
                read_lens()
            nxt = _choose(logits, settings, warpers, streams)
            tokens[:, step] = nxt.cpu()
            input_ids = nxt.unsqueeze(-1)
            mask = torch.cat([mask, mask.new_ones((batch, 1))], dim=-1)
            positions = positions[:, -1:] + 1
    if pending:
        read_lens()
    return entropy.numpy(), tokens.numpy()


def generate_profiles(
    lm: LensModel,
    prompts: Sequence[str | Sequence[int]],
    *,
    max_new_tokens: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    alphas: float | Sequence[float] = (1.0,),
    labels: Sequence[str | None] | None = None,
    batch_size: int = 16,
    progress: bool | None = None,
    index_offset: int = 0,
    **lens_kwargs,
) -> Profiles:
    """Generate T tokens for each prompt and record the lens entropy of every block per token.

    Args:
        lm: a model from :func:`elens_utils.load_model`.
        prompts: N strings or token-id lists (``[bos_id]`` is the BOS-only prompt).
        max_new_tokens, do_sample, temperature, top_k, top_p, seed: see
            :class:`GenerationSettings`.
        alphas: Renyi orders computed in the same pass (1 = Shannon, ``math.inf`` allowed).
        labels: optional N labels stored with the profiles (task, format...).
        batch_size: prompts per forward pass (prompts are sorted by length to limit padding).
        progress: show a progress bar (None: only in a terminal or notebook).
        index_offset: global index of ``prompts[0]`` for the sampling streams: prompt i samples
            from ``row_seed(seed, index_offset + i)``, so a list computed in shards (with each
            shard's start as offset) equals the list computed at once.
        **lens_kwargs: ``chunk_size``, ``backend``, ``support_threshold``, ``precision`` for
            :func:`elens_utils.entropy.streaming.lens_entropy`.

    Returns:
        :class:`~elens_utils.entropy.profiles.Profiles` with entropy ``[N, T, L, A]`` (nats).
    """
    settings = GenerationSettings(max_new_tokens, do_sample, temperature, top_k, top_p, seed)
    alphas = normalize_alphas(alphas)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ElensError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    if len(prompts) == 0:
        raise ElensError("No prompts given: pass a non-empty list of prompts.")
    if labels is not None and len(labels) != len(prompts):
        raise ElensError(f"Got {len(labels)} labels for {len(prompts)} prompts: pass one label per prompt.")
    encoded = lm.encode(prompts)
    ctx = lm.context_length
    if ctx is not None:
        for i, ids in enumerate(encoded):
            if len(ids) + settings.max_new_tokens > ctx:
                raise ElensError(
                    f"Prompt {i} has {len(ids)} tokens; with max_new_tokens={settings.max_new_tokens} it "
                    f"needs {len(ids) + settings.max_new_tokens} positions, but the model takes at most "
                    f"{ctx}. Shorten the prompt or lower max_new_tokens."
                )
    n, steps = len(encoded), settings.max_new_tokens
    entropy = np.empty((n, steps, lm.n_layers, len(alphas)), dtype=np.float32)
    generated = np.empty((n, steps), dtype=np.int64)
    order = sorted(range(n), key=lambda i: -len(encoded[i]))
    with tqdm(total=n, desc=f"profiles {lm.name}", unit="prompt", disable=None if progress is None else not progress) as bar:
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            seeds = [row_seed(seed, index_offset + i) for i in idx]
            h, ids = _generate_batch(lm, [encoded[i] for i in idx], seeds, settings, alphas, lens_kwargs)
            entropy[idx], generated[idx] = h, ids
            bar.update(len(idx))
    eos = lm.tokenizer.eos_token_id
    meta = pd.DataFrame(
        {
            "model": lm.name,
            "n_layers": lm.n_layers,
            "prompt": [p if isinstance(p, str) else lm.tokenizer.decode(list(p)) for p in prompts],
            "label": list(labels) if labels is not None else [None] * n,
            "text": [lm.tokenizer.decode(g, skip_special_tokens=True) for g in generated],
            "generated_ids": [g.tolist() for g in generated],
            "seed": [row_seed(seed, index_offset + i) if do_sample else None for i in range(n)],
            "settings": settings.to_json(),
            "eos_index": [int(np.argmax(g == eos)) if eos is not None and (g == eos).any() else -1 for g in generated],
            "dtype": str(lm.dtype).removeprefix("torch."),
        }
    )
    return Profiles(entropy=entropy, alphas=alphas, meta=meta)


register_profiler(generate_profiles)  # what LensModel.profile calls
