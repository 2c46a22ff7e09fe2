"""The end-to-end contenders: whole profiles of N prompts x T tokens by our generator, by the
algorithm of the paper's public code, by TransformerLens, and the limit (plain generation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------


#: The end-to-end model: GPT-2 small's shape (random weights, built in memory).
GPT2_SMALL = {"n_layer": 12, "n_embd": 768, "n_head": 12, "vocab_size": 50257, "n_positions": 1024}

def _word_tokenizer(vocab_size: int):
    """A word-level tokenizer with ``vocab_size`` entries ``t0 t1 ...``; the last is the EOS."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    eos = "<|endoftext|>"
    vocab = {f"t{i}": i for i in range(vocab_size - 1)}
    vocab[eos] = vocab_size - 1
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=eos))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=eos, unk_token=eos)
    fast.padding_side = "left"
    return fast


def build_gpt2_lens_model(seed: int = 0, initializer_range: float = 0.02, **overrides):
    """A random-weight GPT-2 (default: GPT-2 small's shape) as a :class:`LensModel`, in memory.

    Wrapped as :func:`~elens_utils.lens.loading.load_model` does (eval mode, gradients off, lens
    parts located from the table, parity checked); the tokenizer is a word-level one over
    ``t0 .. t{V-2}`` plus ``<|endoftext|>``.
    """
    from transformers import AutoModelForCausalLM, GPT2Config
    from transformers.utils import logging as hf_logging

    from elens_utils.lens.adapters import check_parity, find_lens_parts
    from elens_utils.lens.loading import LensModel

    cfg = {**GPT2_SMALL, **overrides}
    vocab = cfg["vocab_size"]
    config = GPT2Config(
        **cfg,
        initializer_range=initializer_range,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=vocab - 1,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )
    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForCausalLM.from_config(config)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.eval().requires_grad_(False)
    parts = find_lens_parts(model)
    check_parity(model, parts, torch.arange(1, 5).remainder(vocab).unsqueeze(0))
    name = f"random-gpt2-{cfg['n_layer']}L-{cfg['n_embd']}d"
    return LensModel(model, _word_tokenizer(vocab), parts, name)


def bench_prompts(n: int, length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """``n`` prompts of ``length`` random token ids (no EOS)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab - 1, (n, length), generator=g).tolist()


@torch.no_grad()
def reference_profiles(lm, prompts: Sequence[Sequence[int]], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy profiles by the algorithm of the paper's public code: ``[N, T, L]`` nats, ``[N, T]`` ids.

    Per prompt: re-run the whole prefix for every token (no KV cache) with the logits of every
    position and every block's output (``output_hidden_states``), keep each block's last
    position, pick ``argmax(softmax(logits))``; then the lens logits of all ``T x L`` states,
    copied to the CPU in fp32, ``softmax``, ``-(p * log(p + 1e-20)).sum``.
    """
    model, parts = lm.model, lm.parts
    n_layers = parts.n_layers
    entropies, tokens = [], []
    for ids in prompts:
        x = torch.tensor([list(ids)], device=lm.device)
        states = []
        for _ in range(steps):
            out = model(input_ids=x, output_hidden_states=True, use_cache=False)
            # hidden_states: embeddings, blocks 1..L-1, then block L already passed through the
            # final norm (transformers), so block L's lens is the model's own logits.
            states.append(torch.stack([hs[0, -1] for hs in out.hidden_states[1:]]))
            nxt = out.logits.softmax(-1).argmax(-1)[:, -1]
            x = torch.cat([x, nxt.unsqueeze(-1)], dim=-1)
        acts = torch.stack(states)  # [T, L, d]
        normed = torch.cat([parts.normalize(acts[:, : n_layers - 1]), acts[:, n_layers - 1 :]], dim=1)
        logits = parts.transform(parts.unembed(normed))
        probs = logits.cpu().float().softmax(-1)
        entropies.append((-(probs * torch.log(probs + 1e-20)).sum(-1)).numpy())
        tokens.append(x[0, len(ids) :].cpu().numpy())
    return np.stack(entropies), np.stack(tokens)


@torch.no_grad()
def plain_generation(lm, prompts: Sequence[Sequence[int]], steps: int, *, capture: bool = False):
    """Our batched KV-cached greedy loop without hooks or lens: the generation part of the limit.

    Returns ``[N, T]`` ids. With ``capture``, it also keeps every block's last-position output
    with the pipeline's hooks and returns ``(ids, residuals [T, L, N, d])`` (for
    :func:`deferred_lens_profiles`).
    """
    from elens_utils.core.hf_compat import cached_forward
    from elens_utils.lens.capture import BlockCapture
    from elens_utils.lens.generation import left_pad

    model, batch = lm.model, len(prompts)
    input_ids, mask, positions = left_pad(prompts, lm.tokenizer.pad_token_id, lm.device)
    tokens = torch.empty((batch, steps), dtype=torch.long)
    resid = []
    cache = None
    with BlockCapture(lm.parts.blocks if capture else []) as cap:
        for step in range(steps):
            out, cache = cached_forward(model, input_ids, mask, positions, cache, logits_to_keep=1)
            if capture:
                resid.append(cap.take())
            nxt = out.logits[:, -1].float().argmax(-1)
            tokens[:, step] = nxt.cpu()
            input_ids = nxt.unsqueeze(-1)
            mask = torch.cat([mask, mask.new_ones((batch, 1))], dim=-1)
            positions = positions[:, -1:] + 1
    if capture:
        return tokens.numpy(), torch.stack(resid)
    return tokens.numpy()


@torch.no_grad()
def deferred_lens_profiles(lm, prompts: Sequence[Sequence[int]], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """A what-if for :mod:`elens_utils.lens.generation`: the same loop, the lens deferred to the end.

    The hooks keep each step's ``[L, N, d]`` block outputs, and one
    :func:`~elens_utils.entropy.streaming.lens_entropy` call reads all ``T * L * N`` rows, so the lens
    matmul runs at large-M efficiency instead of ``L * N`` rows per step. Greedy only (sampling
    needs no lens either: it uses the model's own logits). Returns ``[N, T, L]`` entropies and ids.
    """
    ids, resid = plain_generation(lm, prompts, steps, capture=True)  # [T, L, N, d]
    t, n_layers, n = resid.shape[:3]
    h = lm.parts.entropy(resid.flatten(0, 2), (1.0,))[:, 0]
    return h.view(t, n_layers, n).permute(2, 0, 1).cpu().numpy(), ids


def ours_profiles(lm, prompts: Sequence[Sequence[int]], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Our pipeline: ``[N, T, L]`` Shannon entropies and ``[N, T]`` ids, all prompts in one batch."""
    from elens_utils.lens.generation import generate_profiles

    prof = generate_profiles(lm, [list(p) for p in prompts], max_new_tokens=steps, batch_size=len(prompts), progress=False)
    ids = np.stack([np.asarray(g) for g in prof.meta["generated_ids"]])
    return prof.entropy[..., 0], ids


def transformer_lens_runner(lm):
    """``fn(prompts, steps)`` timing TransformerLens ``run_with_cache`` per step as the public code
    does, or None with the reason when ``transformer_lens`` is not importable or cannot wrap the
    model (untested here: the package is not installed on the benchmark machine)."""
    try:
        import transformer_lens  # noqa: F401
        from transformer_lens import HookedTransformer
        from transformer_lens.loading_from_pretrained import convert_gpt2_weights
    except Exception as err:  # noqa: BLE001 - any import failure means: skip
        return None, f"transformer_lens not importable ({type(err).__name__})"
    try:
        from transformer_lens import HookedTransformerConfig

        c = lm.model.config
        cfg = HookedTransformerConfig(
            n_layers=c.n_layer,
            d_model=c.n_embd,
            n_heads=c.n_head,
            d_head=c.n_embd // c.n_head,
            d_mlp=4 * c.n_embd,
            d_vocab=c.vocab_size,
            n_ctx=c.n_positions,
            act_fn="gelu_new",
            normalization_type="LN",
            device=str(lm.device),
        )
        tl_model = HookedTransformer(cfg)
        tl_model.load_state_dict(convert_gpt2_weights(lm.model, cfg), strict=False)
        tl_model.eval()
    except Exception as err:  # noqa: BLE001
        return None, f"could not build a HookedTransformer ({type(err).__name__}: {err})"

    @torch.no_grad()
    def run(prompts: Sequence[Sequence[int]], steps: int) -> None:
        n_layers = tl_model.cfg.n_layers
        for ids in prompts:
            x = torch.tensor([list(ids)], device=lm.device)
            acts = []
            for _ in range(steps):
                logits, cache = tl_model.run_with_cache(x)
                acts.append(torch.stack([cache[f"blocks.{l}.hook_resid_post"][0, -1] for l in range(n_layers)]))
                x = torch.cat([x, logits.softmax(-1).argmax(-1)[:, -1:]], dim=-1)
            z = tl_model.unembed(tl_model.ln_final(torch.stack(acts))).cpu().float()
            p = z.softmax(-1)
            (-(p * torch.log(p + 1e-20)).sum(-1)).numpy()

    return run, None
