"""The recipe's own documents on the story world's stories: open questions, multiple-choice
questions as the book asks them, letter look-ups and the focus batches' MC documents.

:mod:`~elens_utils.zoo.training` looks these generators up under its own (former) names, so that a
variant bound there reaches the corpus, the look-up prompts and the batches of a run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from elens_utils.core.errors import ElensError
from elens_utils.data.synthetic import LETTERS, NEWLINE, Document, StoryWorld, words

_QA_HEADER = "read the story and answer the question ."


def qa_docs(world: StoryWorld, split: str = "train") -> Iterator[Document]:
    """Open questions: an MC question's story and question, answered by the word itself.

    ``read the story and answer the question . / story : ... / question : ... / answer : cup``,
    the multiple-choice prompt without its options. They teach the model to find the answer in
    the story; the MC letter then only needs a look-up among the options. Built from
    ``world.question_for`` on the stories of ``split`` (train: nothing held out enters).
    """
    for story in world.iter_stories(split):  # type: ignore[arg-type]
        q = world.question_for(story, 0, salt="-open")
        text = NEWLINE.join([_QA_HEADER, f"story : {story.text}", f"question : {q.question}", f"answer : {q.answer}"])
        yield Document("qa", f"qa-{story.id}", text)


def mc_docs(world: StoryWorld, split: str = "train") -> Iterator[Document]:
    """Multiple-choice documents as the book asks them: distractors absent from the story.

    (``training_corpus``'s own MC stream offers the story's other character as a distractor
    in half of its documents; with those, the MC read-out did not appear in the calibration
    budget.) Letters cycle A-D; documents are trained one per row, so the cycle is not visible.
    """
    for j, story in enumerate(world.iter_stories(split)):  # type: ignore[arg-type]
        q = world.question_for(story, j % len(LETTERS))
        yield Document("mc", q.id, q.text)


def kept_options(options: Sequence[str], gold: int, min_options: int, rng: random.Random) -> list[str]:
    """Between ``min_options`` and all of ``options``, drawn with ``rng``: always the ``gold``-th,
    the others at random, in their original order (so letters stay attached to their words)."""
    others = [i for i in range(len(options)) if i != gold]
    keep = sorted([gold, *rng.sample(others, rng.randint(min_options, len(options)) - 1)])
    return [options[i] for i in keep]


def lookup_docs(
    world: StoryWorld, split: str = "train", *, cut: bool = False, salt: str = "-lookup", min_options: int = len(LETTERS)
) -> Iterator[Document]:
    """The MC read-out on its own: a story, the answer word as the question, options, letter.

    ``story : ... / question : map / A : car / B : map / C : hat / D : coin / answer : B``: an
    MC question of :meth:`StoryWorld.question_for` (other salt) whose question is replaced by
    its answer (``salt`` picks the question). They train only the last step of a multiple-choice
    answer, finding the option that matches a word and copying the letter before it.

    With ``cut`` (the training documents) the story stops after a random number of words (at
    least two; a generator seeded by the world's seed, ``split`` and ``salt``), so the options sit at
    positions that vary from document to document. Without it they sit where MC prompts have
    them. GPT-2 learns a read-out at the fixed positions of uncut look-ups within 3 k steps that
    vanishes as soon as the options move; on cut look-ups it learned one that carries over to
    multiple choice, after about 6 k steps (``research/zoo-readout``).

    With ``min_options`` below four a document keeps between ``min_options`` and four of its
    options, drawn at random (the gold one always, letters unchanged and in order). With one
    option, attending to the options alike already finds the letter, so the letter's path to
    ``answer :`` can be learned before the choice among options (four options attended alike
    cancel out).
    """
    if not 1 <= min_options <= len(LETTERS):
        raise ElensError(f"A look-up keeps between 1 and {len(LETTERS)} options, not at least {min_options}.")
    rng = random.Random(f"elens-zoo-lookup-cut/{world.seed}/{split}{salt}")
    for j, story in enumerate(world.iter_stories(split)):  # type: ignore[arg-type]
        q = world.question_for(story, (j + 2) % len(LETTERS), salt=salt)
        options_and_answer = q.text[q.text.index(f"{NEWLINE}{LETTERS[0]} : ") + 1 :]  # as the generator writes them
        story_words = story.text.split(" ")
        if cut:
            story_words = story_words[: rng.randint(2, len(story_words))]
        if min_options < len(LETTERS):
            *options, answer = options_and_answer.split(NEWLINE)
            options_and_answer = NEWLINE.join([*kept_options(options, q.answer_index, min_options, rng), answer])
        text = NEWLINE.join([f"story : {' '.join(story_words)}", f"question : {q.answer}", options_and_answer])
        yield Document("lookup", f"lookup-{story.id}", text)


def focus_docs(
    world: StoryWorld, split: str = "train", salt: str = "-focus", n_questions: int = 1, max_tokens: int = 128
) -> Iterator[Document]:
    """MC documents for the focus batches: other questions (salt) on the training stories.

    With ``n_questions > 1`` a document asks up to that many questions about its story, each
    with its options and answer letter, one after the other (``... answer : B / question :
    ... / answer : D``), within ``max_tokens`` (``<bos>``/``<eos>`` included): the first question is exactly an evaluation prompt,
    the others add answer letters for a fraction of the story's tokens.
    """
    for j, story in enumerate(world.iter_stories(split)):  # type: ignore[arg-type]
        q = world.question_for(story, (j + 1) % len(LETTERS), salt=salt)
        text, asked, n_words = q.text, {q.question}, len(words(q.text))
        for k in range(1, n_questions):
            more = world.question_for(story, (j + 1 + k) % len(LETTERS), salt=f"{salt}{k}")
            block = more.text[more.text.index("question : ") :]
            added = len(words(block)) + 1  # the joining newline is a word
            if more.question in asked or n_words + added + 2 > max_tokens:  # + <bos>, <eos>
                continue
            text, n_words = NEWLINE.join([text, block]), n_words + added
            asked.add(more.question)
        yield Document("mc", q.id, text)
