"""A small seeded story world: the offline corpus and evaluation sets of the book.

Without Hub access the book trains its own zoo of small language models and needs offline
stand-ins for the paper's data (TinyStories task prompts, output-format prompts, MMLU). This
package generates all of it from one seeded, closed world; this module gathers its pieces.

The world
---------
* **Characters** (24 names), **objects** (20), **colours** (10), **places** (12), **animals** (8).
* **Stories** of 3-6 sentences, always in the same plot order: an intro (``once upon a time ,
  tom had a red ball .``), then an order-preserving subset of *go* (to a place), *meet* (a
  friend), *friend action*, *animal*, *feeling*, *ending*. Every word is lower case; words and
  punctuation are tokens separated by single spaces; line breaks are ``\\n`` tokens written
  without the spaces around them (:func:`join_words`, :func:`words`).
* **Task prompts** of the task-type experiment: 3 families (continuation, counting, semantic) x
  2 phrasings x 4 variants (base, reversed, scrambled, reversed + scrambled) per story. The story
  shown is the story without its last sentence, which is the continuation's expected answer. The
  counting answer is the number of words (punctuation excluded) of the story shown, the semantic
  answers are the protagonist (``who ...``) and the object (``what ...``) of the story.
* **Output formats**: "simulate a chat log / write a poem / write a scientific piece about TOPIC"
  over a pool of 316 topics (``the red ball``, ``the brown dog``, ``the garden``, ``tom``), with
  training texts in each format (``name :`` dialogue lines; 4-line stanzas with a refrain;
  ``observation : ... result : ...`` sections).
* **Multiple choice** reading comprehension: story + question + options ``A``-``D`` + ``answer :``
  so that the next token is the letter. The answer is a word of the story; distractors are of
  the same kind (names, objects, colours, places, animals) and, by default, absent from the story.

Guarantees (checked by ``tests/unit/test_synthetic.py``)
--------------------------------------------------------
* **Determinism.** Every random choice comes from :class:`random.Random` seeded with a string
  (SHA-512 based seeding) and uses only ``Random.random()``, the one method whose sequence Python
  promises not to change; splits use SHA-256. The same seed gives byte-identical output on any
  machine and Python version; different seeds give different worlds.
* **Held-out splits.** A story's split is a function of the hash of its first two sentences
  (train 90 %, validation 5 %, test 5 %). Every story starts with an intro sentence that can only
  open a story, so a story of one split can never be a substring of a story of another split:
  the held-out stories, and the task prompts and questions built on them, never appear in a
  training corpus. Format topics are split by hash too, stratified by kind (180 test, 36
  validation, 100 train); a training corpus only holds format texts about training topics,
  so no held-out format prompt appears in it. (Topic *phrases* such as ``the red ball`` do
  appear in training stories: the world is closed.)
* **Closed vocabulary.** The vocabulary is derived from the word lists and templates, not from
  a sample, so every generated text tokenises without ``<unk>`` (:func:`build_tokenizer`).
* **Balanced letters.** :meth:`StoryWorld.multiple_choice` puts the answer under each letter
  ``n / 4`` times (exactly, when ``n`` is a multiple of 4).

Unlike the paper's code, scrambling never overwrites the story used by later prompts.

The pieces live in :mod:`~elens_utils.data.story_lexicon` (word lists and names),
:mod:`~elens_utils.data.seeded_random` (portable randomness),
:mod:`~elens_utils.data.story_items` (the items), :mod:`~elens_utils.data.story_render` (the two
renderings), :mod:`~elens_utils.data.story_world` (templates, topics and
:class:`StoryWorld`) and :mod:`~elens_utils.data.story_tokenizer` (:func:`build_tokenizer`); this
module gathers them under one name. Any other name of :mod:`~elens_utils.data.story_world` (its
templates, ``N_TEST_TOPICS``, ``Split``, say) is looked up there.

Two renderings
--------------
Everything above is the **zoo rendering** (``style="zoo"``, the default everywhere): the form the
project's zoo models were trained on. Real pretrained models read English: :func:`natural` and
:func:`render` give the same items in natural English (:mod:`~elens_utils.data.story_render`
says how), and the list methods of :class:`StoryWorld` take ``style="natural"``.
"""

from __future__ import annotations

# NEWLINE, PUNCTUATION: public names outside __all__
# ruff: noqa: F401
from elens_utils.core.compat import forward_names
from elens_utils.data import story_world as _world
from elens_utils.data.story_items import (
    Document,
    FormatPrompt,
    FormatText,
    MCQuestion,
    Story,
    TaskPrompt,
    as_records,
)
from elens_utils.data.story_lexicon import (
    ANIMALS,
    COLOURS,
    FORMATS,
    LETTERS,
    NAMES,
    NEWLINE,
    OBJECTS,
    PLACES,
    PUNCTUATION,
    REVERSALS,
    SPECIAL_TOKENS,
    SPLITS,
    STYLES,
    TASK_FAMILIES,
    VARIANTS,
    join_words,
    words,
)
from elens_utils.data.story_render import natural, render
from elens_utils.data.story_tokenizer import build_tokenizer
from elens_utils.data.story_world import StoryWorld, vocabulary

__all__ = [
    "NAMES",
    "OBJECTS",
    "COLOURS",
    "PLACES",
    "ANIMALS",
    "SPLITS",
    "TASK_FAMILIES",
    "VARIANTS",
    "REVERSALS",
    "FORMATS",
    "LETTERS",
    "SPECIAL_TOKENS",
    "Story",
    "TaskPrompt",
    "FormatPrompt",
    "FormatText",
    "MCQuestion",
    "Document",
    "StoryWorld",
    "build_tokenizer",
    "vocabulary",
    "words",
    "join_words",
    "as_records",
    "STYLES",
    "natural",
    "render",
]

__getattr__ = forward_names(__name__, _world)  # any other name of story_world (_TEMPLATE_GROUPS, ...)
