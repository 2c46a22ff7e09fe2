"""The word-level tokenizer of the story world, over its closed vocabulary: what the zoo's models
read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from elens_utils.core.errors import ElensError
from elens_utils.data.story_world import StoryWorld, closed_vocabulary

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

def build_tokenizer(
    world: StoryWorld | None = None, model_max_length: int = 1024, add_eos: bool = False
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the world's closed vocabulary.

    A ``tokenizers`` WordLevel model; the pre-tokenizer drops spaces and tabs and keeps each
    ``\\n`` as a token of its own (a plain Whitespace/WhitespaceSplit pre-tokenizer would drop
    line breaks, which the chat and poem formats need); a post-processor prepends ``<bos>``
    (and appends ``<eos>`` with ``add_eos=True``), so do not add ``<bos>`` yourself; the decoder
    joins words with single spaces and no spaces around ``\\n`` (the canonical text of
    :func:`~elens_utils.data.story_lexicon.join_words`). Wrapped as :class:`transformers.PreTrainedTokenizerFast` with the four
    special tokens set; ``save_pretrained`` / ``AutoTokenizer.from_pretrained`` round-trip it.
    ``world`` is accepted for symmetry: the vocabulary does not depend on the seed.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    if world is not None and not isinstance(world, StoryWorld):
        raise ElensError(f"build_tokenizer takes a StoryWorld or None, got {type(world).__name__}.")
    vocab = {w: i for i, w in enumerate(closed_vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"[^\S\n]+"), behavior="removed"),
            pre_tokenizers.Split(Regex(r"\n"), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Sequence(
        [
            decoders.WordPiece(prefix="##", cleanup=False),  # joins with single spaces
            decoders.Fuse(),
            decoders.Replace(" \n", "\n"),
            decoders.Replace("\n ", "\n"),
        ]
    )
    bos, eos = "<bos>", "<eos>"
    single = f"{bos} $A {eos}" if add_eos else f"{bos} $A"
    pair = f"{bos} $A {eos} {bos} $B {eos}" if add_eos else f"{bos} $A {bos} $B"
    tok.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
