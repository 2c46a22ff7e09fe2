"""Tiny random-weight causal LMs of real Hugging Face architectures, for tests and smoke runs.

Each model is written with ``save_pretrained`` together with its tokenizer, so a test loads it
exactly like a Hub checkpoint (``load_model("tiny/llama-4L")`` builds one on first use, see
:mod:`elens_utils.models.registry`)::

    from elens_utils.models.tiny import build_tiny_model
    d = build_tiny_model("llama", tmp_path / "llama")
    model = AutoModelForCausalLM.from_pretrained(d)
    tok = AutoTokenizer.from_pretrained(d)

Everything is offline and deterministic (``seed``). All ten architectures build in 2-4 s on a
CPU, most of it transformers' first (lazy) imports; a rebuild takes about 10 ms per model.

What the models look like (see ``_SPECS`` for the exact numbers):

* Hidden sizes 32-64, 2-4 heads, grouped-query attention where the architecture has it (gemma:
  multi-query, one KV head, like gemma-2b), ``max_position_embeddings = 128``, float32 weights.
* Ragged vocabularies, a different size per architecture. The tokenizer's vocabulary equals the
  config's ``vocab_size`` except for **qwen3**, whose ``lm_head`` has more rows (256) than the
  tokenizer has tokens (181), like real Qwen3 whose unembedding is padded: rows past
  ``len(tokenizer)`` are real logits of tokens that no text maps to.
* Tied or untied unembedding as is usual for the family (``tie_word_embeddings`` in config).
* **gemma2** has ``final_logit_softcapping = 10.0`` (real: 30.0) and ``attn_logit_softcapping =
  10.0`` (real: 50.0). With tied, sqrt(d)-scaled embeddings the tiny model's raw logits reach
  about +-14, so a cap of 30 would barely move them: with 10.0 the cap changes the next-token
  entropy by about 1.35 nats on average (1.7 at most over the prompts), and the attention cap
  changes the final logits by up to ~1.6, so tests that forget either cap fail. Its layers alternate sliding-window (window
  8, shorter than the longest prompts) and full attention, as in the real model.
* ``initializer_range`` is raised to 0.3-0.4 (real models: 0.02) so that random weights give
  peaked, varied next-token distributions: the logit-lens entropy differs across layers and
  tokens instead of sitting at ``log V``.
* Dropout probabilities are 0, so even a model left in training mode is deterministic.

Tokenizers are built with the ``tokenizers`` library over a fixed English word list
(:data:`WORDS`) plus the special tokens ``<pad> <bos> <eos> <unk>``, placed where the real
family places its specials (at the start for llama/gemma/opt/neox, at the end for gpt2/qwen,
pad right after the words for llama/mistral/phi3), so no code can assume ``pad == 0``:

* most families: a WordLevel model with a Whitespace pre-tokenizer and a WordPiece decoder, so
  one word is one token and ``decode`` gives readable text ("the cat sat, and ran.");
* qwen2 / qwen3: a byte-level BPE (Qwen's pre-tokenizer regex, ``Ġ`` for spaces) trained
  deterministically on the word list, saved as ``Qwen2Tokenizer`` like the real checkpoints.
  Common words are single tokens, rarer ones split into pieces ("Ġw al k ed"), so token counts
  differ from word counts. (transformers 5 always loads ``model_type: qwen2`` with
  ``Qwen2Tokenizer``, which rebuilds a BPE from the saved vocab and merges, so a word-level
  tokenizer could not be used there.)

Whether a BOS token is prepended follows the real family:

==========================================  =====================================
adds ``<bos>`` automatically                llama, mistral, gemma, gemma2, phi3, opt
does not                                    gpt2, gpt_neox, qwen2, qwen3
==========================================  =====================================

The BOS behaviour lives in the post-processor inside ``tokenizer.json``.
Note that transformers 5 does not round-trip the ``add_bos_token`` flag for tokenizers backed by
``tokenizer.json``: after loading, ``tokenizer.add_bos_token`` reads ``False`` even for the
llama-like ones (as it does for real Hub checkpoints). Code must find out whether BOS is added
by tokenizing, not from that attribute. Real OPT uses ``</s>`` as its BOS; here every family
has a distinct ``<bos>`` token. ``padding_side`` is ``"right"`` by default; pass
``padding_side="left"`` when batching for ``generate``. As with the real GPT-2, a plain forward
pass of a left-padded batch through gpt2 (learned absolute positions) needs explicit
``position_ids`` (``attention_mask.cumsum(-1) - 1``) to match the unpadded rows; ``generate``
computes them itself, and OPT derives them from the attention mask.
"""

from __future__ import annotations

import collections
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ARCHS",
    "BOS_ARCHS",
    "SPECIAL_TOKENS",
    "WORDS",
    "UNTRAINED_INIT_RANGE",
    "build_all",
    "build_tiny_model",
    "build_untrained_model",
    "tiny_prompts",
    "tokenizer_vocab_size",
]

ARCHS: tuple[str, ...] = (
    "gpt2",
    "gpt_neox",
    "opt",
    "llama",
    "mistral",
    "gemma",
    "gemma2",
    "qwen2",
    "qwen3",
    "phi3",
)

# Architectures whose tokenizer prepends <bos> to every sequence.
BOS_ARCHS: frozenset[str] = frozenset({"llama", "mistral", "gemma", "gemma2", "phi3", "opt"})

# Architectures with a byte-level BPE tokenizer (the Qwen format); the others are word-level.
_BPE_ARCHS: frozenset[str] = frozenset({"qwen2", "qwen3"})

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")

# 250 distinct words. The first paragraph holds the words prompts use; every tokenizer contains
# at least the first 93 words (gpt2: 97 tokens minus 4 specials).
WORDS: tuple[str, ...] = tuple(
    """
    the a cat dog sat on mat . , and ran to house big small red blue green old young man woman
    child saw bird tree in under over with was is it he she they we i you ate fish bread water
    river city road walked slept quickly slowly happy sad day night sun moon

    time year people way thing world life hand part place case week company system program
    question work government number point home glass room mother area money story fact month
    lot right study book eye job word business issue side kind head friend father power hour
    game line end member law car name president team minute idea kid body information back
    parent face others level office door health person art war history party result change
    morning reason research girl guy moment air teacher force education foot boy age policy
    process music market sense nation plan college interest death experience effect use class
    control care field development role effort rate heart drug show leader light voice wife
    police mind price report decision son view relationship town bridge arm difference value
    building action model season society tax director position player record paper space ground
    form event official matter center couple site project activity star table need court oil
    situation cost industry figure street image phone data picture practice piece land product
    doctor wall patient worker news test movie north love support technology step baby computer
    type attention film garden source organization hair window evidence population hill bed
    """.split()
)
assert len(set(WORDS)) == len(WORDS), "duplicate word in WORDS"


@dataclass(frozen=True)
class _Spec:
    """How one architecture's tiny model is built."""

    vocab: int  # tokens in the tokenizer (specials included)
    config: dict[str, Any]  # config kwargs (vocab_size defaults to `vocab`)
    head: tuple[str, ...]  # special tokens at the start of the vocabulary, in id order
    tail: tuple[str, ...] = ()  # special tokens after the words, in id order
    model_vocab: int | None = None  # lm_head rows when larger than `vocab` (qwen3 padding)


# One row per architecture: the tokenizer's size and where its specials stand, then the config.
_SPECS: dict[str, _Spec] = {
    # GPT-2: learned positions, LayerNorm, tied wte/lm_head, no automatic BOS, specials at the end.
    "gpt2": _Spec(
        vocab=97, head=(), tail=("<eos>", "<bos>", "<pad>", "<unk>"),
        config=dict(n_embd=48, n_head=4, n_positions=128, initializer_range=0.3, tie_word_embeddings=True,
                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
    ),
    # Pythia-style: parallel residual, partial rotary, untied embed_out, no automatic BOS.
    "gpt_neox": _Spec(
        vocab=131, head=("<eos>", "<pad>", "<bos>", "<unk>"),
        config=dict(hidden_size=64, num_attention_heads=4, intermediate_size=128, max_position_embeddings=128,
                    initializer_range=0.3, attention_dropout=0.0, hidden_dropout=0.0, tie_word_embeddings=False),
    ),
    # OPT: learned positions with offset 2, pre-LN, tied lm_head; tokenizer adds BOS.
    "opt": _Spec(
        vocab=113, head=("<bos>", "<pad>", "<eos>", "<unk>"),
        config=dict(hidden_size=32, word_embed_proj_dim=32, num_attention_heads=2, ffn_dim=64, max_position_embeddings=128,
                    init_std=0.4, dropout=0.0, attention_dropout=0.0, layerdrop=0.0, do_layer_norm_before=True,
                    tie_word_embeddings=True),
    ),
    "llama": _Spec(
        vocab=151, head=("<unk>", "<bos>", "<eos>"), tail=("<pad>",),
        config=dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                    max_position_embeddings=128, initializer_range=0.3, tie_word_embeddings=False),
    ),
    "mistral": _Spec(
        vocab=173, head=("<unk>", "<bos>", "<eos>"), tail=("<pad>",),
        config=dict(hidden_size=48, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                    max_position_embeddings=128, sliding_window=None, initializer_range=0.3, tie_word_embeddings=False),
    ),
    # gemma-2b-like: multi-query attention, sqrt(d)-scaled embeddings, (1 + w) RMSNorm, tied.
    "gemma": _Spec(
        vocab=199, head=("<pad>", "<eos>", "<bos>", "<unk>"),
        config=dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                    max_position_embeddings=128, initializer_range=0.3, tie_word_embeddings=True),
    ),
    # num_heads * head_dim (64) != hidden_size (48), as in gemma-2-9b; soft-capping (see module doc).
    "gemma2": _Spec(
        vocab=211, head=("<pad>", "<eos>", "<bos>", "<unk>"),
        config=dict(hidden_size=48, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                    query_pre_attn_scalar=16, max_position_embeddings=128, sliding_window=8,
                    final_logit_softcapping=10.0, attn_logit_softcapping=10.0, initializer_range=0.3,
                    tie_word_embeddings=True),
    ),
    # Qwen2: q/k/v biases, untied (like the 7B), no automatic BOS, specials at the end.
    "qwen2": _Spec(
        vocab=239, head=(), tail=("<eos>", "<bos>", "<pad>", "<unk>"),
        config=dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                    max_position_embeddings=128, initializer_range=0.3, tie_word_embeddings=False),
    ),
    # Qwen3: q/k norms, tied (like Qwen3-0.6B), lm_head padded past the tokenizer's vocabulary.
    "qwen3": _Spec(
        vocab=181, model_vocab=256, head=(), tail=("<eos>", "<bos>", "<pad>", "<unk>"),
        config=dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                    max_position_embeddings=128, initializer_range=0.3, tie_word_embeddings=True),
    ),
    # Phi-3: fused qkv_proj / gate_up_proj, untied, pad right after the words (id 32000 in real).
    "phi3": _Spec(
        vocab=127, head=("<unk>", "<bos>", "<eos>"), tail=("<pad>",),
        config=dict(hidden_size=48, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2,
                    max_position_embeddings=128, original_max_position_embeddings=128, sliding_window=None,
                    initializer_range=0.3, resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0,
                    tie_word_embeddings=False),
    ),
}  # fmt: skip

# Every tokenizer's special tokens, length and padding side (word-level and Qwen BPE alike).
_TOKENIZER_SETTINGS: dict[str, Any] = dict(
    unk_token="<unk>", bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", model_max_length=128, padding_side="right"
)

_LAYER_KEY = {"gpt2": "n_layer"}  # everything else uses num_hidden_layers

_PROMPTS: tuple[str, ...] = (
    "the",
    "the cat sat",
    "a big dog ran to the house",
    "the old man saw a red bird in the tree",
    "she walked slowly to the river , and the sun was happy",
    "they ate fish and bread with water under the moon .",
)


def tiny_prompts() -> list[str]:
    """Prompts of 1 to 12 words, all in every tiny tokenizer's vocabulary (no ``<unk>``)."""
    return list(_PROMPTS)


def tokenizer_vocab_size(arch: str) -> int:
    """Number of tokens in ``arch``'s tokenizer (differs from ``config.vocab_size`` for qwen3)."""
    return _spec(arch).vocab


def _spec(arch: str) -> _Spec:
    try:
        return _SPECS[arch]
    except KeyError:
        raise ValueError(f"Unknown tiny architecture {arch!r}; choose one of {ARCHS}.") from None


def _vocab(spec: _Spec) -> dict[str, int]:
    """Word-level vocabulary: head specials, the first words of :data:`WORDS`, tail specials."""
    n_words = spec.vocab - len(spec.head) - len(spec.tail)
    if n_words > len(WORDS):
        raise ValueError(f"Word list too short: need {n_words} words, have {len(WORDS)}.")
    return _layout(spec, WORDS[:n_words])


def _layout(spec: _Spec, tokens: Sequence[str]) -> dict[str, int]:
    assert sorted(spec.head + spec.tail) == sorted(SPECIAL_TOKENS), spec
    ordered = [*spec.head, *tokens, *spec.tail]
    assert len(ordered) == len(set(ordered)) == spec.vocab, (len(ordered), spec.vocab)
    return {t: i for i, t in enumerate(ordered)}


def _train_byte_level_bpe(n_tokens: int) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """A deterministic byte-level BPE over :data:`WORDS` with ``n_tokens`` symbols (no specials).

    Pre-tokens are the words with a leading space (``Ġword``, as the byte-level pre-tokenizer
    writes them) and without (sentence start), with Zipf-like frequencies by position in the list,
    so the common words become single tokens and the rare ones stay split into pieces, like
    real BPE vocabularies. Ties are broken by the pair's spelling, so the result never changes.
    Training is greedy, so a smaller vocabulary is a prefix of a larger one: train once, slice.
    """
    alphabet, tokens, merges, sizes = _bpe_training(_BPE_MAX_TOKENS)
    if not len(alphabet) <= n_tokens <= len(tokens):
        raise ValueError(f"The tiny BPE has {len(alphabet)} to {len(tokens)} tokens, not {n_tokens}.")
    # Sizes grow by 0 (a merge into an existing token) or 1 per merge: keep every merge whose
    # product lies within the first n_tokens tokens.
    n_merges = max(k for k, size in enumerate(sizes) if size == n_tokens)
    return tokens[:n_tokens], merges[:n_merges]


_BPE_MAX_TOKENS = 250


@functools.lru_cache(maxsize=None)
def _bpe_training(max_tokens: int):
    """Run the greedy BPE once. Returns ``alphabet, tokens, merges, sizes``, where ``tokens``
    starts with the alphabet and ``sizes[k]`` is the vocabulary size after ``k`` merges."""
    freqs: collections.Counter[str] = collections.Counter()
    for i, w in enumerate(WORDS):
        f = 4096 // (i + 8)
        freqs["\u0120" + w] += f  # "Ġ": the byte-level symbol for a space
        freqs[w] += max(1, f // 8)
    symbols = tuple(sorted({c for w in freqs for c in w}))
    vocab = dict.fromkeys(symbols)
    segs = {w: list(w) for w in freqs}
    merges: list[tuple[str, str]] = []
    sizes = [len(vocab)]
    while len(vocab) < max_tokens:
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        for w, f in freqs.items():
            s = segs[w]
            for pair in zip(s, s[1:]):
                counts[pair] += f
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        a, b = best
        merged = a + b
        merges.append(best)
        vocab[merged] = None
        sizes.append(len(vocab))
        for w, s in segs.items():
            if len(s) < 2 or a not in s:
                continue
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            segs[w] = out
    return symbols, tuple(vocab), tuple(merges), tuple(sizes)


def _build_qwen_tokenizer(spec: _Spec):
    """Byte-level BPE in the format ``Qwen2Tokenizer`` rebuilds (real Qwen2/Qwen3 format).

    transformers 5 loads any ``model_type: qwen2`` checkpoint with ``Qwen2Tokenizer``, which
    re-creates a byte-level BPE from the saved vocabulary and merges whatever tokenizer.json
    says, so a WordLevel tokenizer would be mangled: the Qwen family gets a real BPE instead.
    """
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    tokens, merges = _train_byte_level_bpe(spec.vocab - len(SPECIAL_TOKENS))
    vocab = _layout(spec, tokens)
    tok = Qwen2Tokenizer(vocab=dict(vocab), merges=list(merges), **_TOKENIZER_SETTINGS)
    return tok, vocab


def _build_tokenizer(arch: str, spec: _Spec):
    if arch in _BPE_ARCHS:
        return _build_qwen_tokenizer(spec)

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = _vocab(spec)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    # WordPiece decoding joins words with spaces and, with cleanup, glues punctuation back on.
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    if arch in BOS_ARCHS:
        backend.post_processor = processors.TemplateProcessing(
            single="<bos> $A:0",
            pair="<bos> $A:0 <bos>:1 $B:1",
            special_tokens=[("<bos>", vocab["<bos>"])],
        )
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, **_TOKENIZER_SETTINGS)
    return tok, vocab


def _build_config(arch: str, spec: _Spec, vocab: dict[str, int], n_layers: int):
    from transformers import CONFIG_MAPPING

    kw = dict(spec.config)
    kw[_LAYER_KEY.get(arch, "num_hidden_layers")] = n_layers
    kw["vocab_size"] = spec.model_vocab or spec.vocab
    kw.update(
        bos_token_id=vocab["<bos>"],
        eos_token_id=vocab["<eos>"],
        pad_token_id=vocab["<pad>"],
    )
    if arch == "gemma2":  # alternate local/global attention for the requested depth
        kw["layer_types"] = [
            "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)
        ]
    if arch in ("qwen2", "qwen3"):
        kw["layer_types"] = ["full_attention"] * n_layers
    return CONFIG_MAPPING[arch](**kw)


def build_tiny_model(arch: str, directory: Path, *, n_layers: int = 3, seed: int = 0) -> Path:
    """Write a tiny random ``arch`` causal LM (config, safetensors, tokenizer) into ``directory``.

    Args:
        arch: a Hugging Face ``model_type`` from :data:`ARCHS`.
        directory: created if missing; existing files of the same names are overwritten.
        n_layers: number of transformer blocks.
        seed: seeds the random weights; the same seed gives bit-identical weights.

    Returns:
        ``directory``, as a :class:`~pathlib.Path`.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    spec = _spec(arch)
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    tok, vocab = _build_tokenizer(arch, spec)
    config = _build_config(arch, spec, vocab, n_layers)

    gen = torch.random.fork_rng(devices=[])  # do not disturb the caller's RNG stream
    with gen:
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    # A human-readable note of what this is (ignored by transformers).
    (directory / "tiny_model.json").write_text(
        json.dumps(
            {
                "arch": arch,
                "seed": seed,
                "n_layers": n_layers,
                "tokenizer_vocab_size": spec.vocab,
                "model_vocab_size": config.vocab_size,
                "adds_bos": arch in BOS_ARCHS,
            },
            indent=2,
        )
        + "\n"
    )
    return directory


def build_all(root: Path, **kw: Any) -> dict[str, Path]:
    """Build every architecture in :data:`ARCHS` into ``root / arch``; ``kw`` go to
    :func:`build_tiny_model`. Returns ``{arch: directory}``."""
    root = Path(root)
    return {arch: build_tiny_model(arch, root / arch, **kw) for arch in ARCHS}


#: ``initializer_range`` of :func:`build_untrained_model`. The zoo's configs say 0.02, which
#: leaves every lens distribution within ~0.02 nats of log V (dH is rounding noise); at 0.3 and
#: above, Gemma-2's sqrt(d)-scaled tied embedding dominates the residual and every block's lens
#: puts all its mass on the input token (H ~ 0). At 0.2 all four families have lens entropies
#: that vary across blocks and tokens (means of 0.9-4.8 nats, dH spread 0.25-0.46 nats on
#: story-world prompts at 4 blocks).
UNTRAINED_INIT_RANGE = 0.2


def build_untrained_model(
    family: str, directory: Path, *, n_layers: int, seed: int = 0, initializer_range: float = UNTRAINED_INIT_RANGE
) -> Path:
    """Write the zoo's ``family`` model with ``n_layers`` blocks, **untrained**, into ``directory``.

    The architecture and the tokenizer are those of the embedded zoo
    (:func:`elens_utils.models.zoo_arch.zoo_config`, the story world's 341-word tokenizer, 512 positions),
    so the model reads the story world's prompts (multiple-choice letters ``A``-``D``
    included), which the :func:`build_tiny_model` vocabularies do not cover. The weights are
    random (``torch.manual_seed(seed)``, the caller's RNG untouched) with ``initializer_range``
    raised from the zoo's 0.02 so that the lens entropies vary across blocks and tokens, as
    for the tiny models. It stands in for ``zoo/FAMILY-NL`` where the zoo is not available; it
    has learned nothing. ``load_model("untrained/llama-4L")`` builds one on first use.

    Returns:
        ``directory``, as a :class:`~pathlib.Path` (config, float32 safetensors, tokenizer and
        a note ``untrained_model.json``).
    """
    import torch
    from transformers import GenerationConfig

    from elens_utils.data.synthetic import build_tokenizer
    from elens_utils.models.zoo_arch import build_model, zoo_config

    config = zoo_config(family, n_layers)  # checks family and depth
    config.initializer_range = float(initializer_range)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config, family)  # float32; eager attention for Gemma-2's soft-cap
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(directory)
    tok = build_tokenizer()
    tok.model_max_length = int(getattr(config, "max_position_embeddings", None) or config.n_positions)
    tok.save_pretrained(directory)
    note = {"family": family, "n_layers": n_layers, "seed": seed, "initializer_range": float(initializer_range), "trained": False}
    (directory / "untrained_model.json").write_text(json.dumps(note, indent=2) + "\n")
    return directory


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write a tiny random-weight model with save_pretrained.")
    parser.add_argument("arch", choices=ARCHS)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--n-layers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build_tiny_model(args.arch, args.directory, n_layers=args.n_layers, seed=args.seed))
