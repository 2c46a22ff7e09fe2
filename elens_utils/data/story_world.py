"""The story world's generator: its templates, its topics, and :class:`StoryWorld`, which writes
stories, task prompts, format prompts and texts, multiple-choice questions and training corpora,
each a pure function of the seed and its index; and the closed vocabulary, derived from the word
lists and the templates (see :mod:`~elens_utils.data.synthetic` for the world and its
guarantees)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Literal

from elens_utils.core.errors import ElensError
from elens_utils.data.seeded_random import PortableRandom, split_of_hash, unit_hash
from elens_utils.data.story_items import (
    Document,
    FormatPrompt,
    FormatText,
    MCQuestion,
    Story,
    TaskPrompt,
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
    TASK_FAMILIES,
    VARIANTS,
    join_words,
    words,
)
from elens_utils.data.story_render import check_style, render

_MAX_SENTENCES = 6

# Topics per kind and split (test, validation, train): 180 / 36 / 100 of the pool of 316,
# stratified so that every kind of topic is in every split.
_TOPIC_SPLIT_SIZES = {
    "object": (114, 23, 63), "animal": (46, 9, 25), "place": (7, 1, 4), "person": (13, 3, 8),
}  # fmt: skip
N_TEST_TOPICS = sum(v[0] for v in _TOPIC_SPLIT_SIZES.values())
N_VALIDATION_TOPICS = sum(v[1] for v in _TOPIC_SPLIT_SIZES.values())

# ------------------------------------------------------------------------------------------
# Templates. Slots: {P} protagonist, {F} friend, {O} object, {C} colour, {a} "a"/"an" before
# {C}, {L} place, {A} animal; formats: {T} topic, {N1} {N2} names, {X} {Y} numbers.
# Every template is listed in _TEMPLATE_GROUPS so that its words enter the vocabulary.
# ------------------------------------------------------------------------------------------

_INTRO = (
    "once upon a time , {P} had {a} {C} {O} .",
    "one day , {P} found {a} {C} {O} .",
    "there was a child called {P} who had {a} {C} {O} .",
)
_GO = (
    "{P} went to the {L} .",
    "{P} took the {O} to the {L} .",
    "{P} ran to the {L} with the {O} .",
)
_MEET = (
    "at the {L} , {P} met {F} .",  # only when the story went to a place
    "{P} met {F} .",
    "{F} came to see {P} .",
)
_FRIEND = (
    "{F} wanted to play with the {O} .",
    "{P} and {F} played with the {C} {O} .",
    "{P} showed the {O} to {F} .",
    "{F} liked the {C} {O} very much .",
)
_ANIMAL = (
    "a little {A} came to the {L} .",  # only when the story went to a place
    "{P} saw a little {A} .",
    "a {A} ran after the {O} .",
)
_FEEL = (
    "{P} was very happy .",
    "{P} felt sad , then happy again .",
    "{P} laughed and laughed .",
)
_END = (
    "in the end , {P} went home .",
    "{P} and {F} were good friends .",  # only with a friend
    "that night , {P} slept with the {O} .",
)
_PARTS = ("go", "meet", "friend", "animal", "feel", "end")
_PART_TEMPLATES = {
    "go": _GO, "meet": _MEET, "friend": _FRIEND, "animal": _ANIMAL, "feel": _FEEL, "end": _END,
}  # fmt: skip

_TASK_INSTRUCTIONS: dict[str, tuple[str, str]] = {
    "continuation": ("how can the story be continued ?", "write what happens next in the story ."),
    "counting": ("how many words are in the story ?", "count the number of words in the story ."),
    "semantic": ("who is the main character of the story ?", "what is the story about ?"),
}

_MC_HEADER = "read the story and answer the question ."
_MC_QUESTIONS: dict[str, tuple[str, ...]] = {
    "who": ("who had the {C} {O} ?", "whose {O} was {C} ?"),
    "friend": ("who did {P} meet ?",),
    "what": ("what did {P} have ?", "what was {C} in the story ?"),
    "colour": ("what colour was the {O} ?", "the {O} was what colour ?"),
    "where": ("where did {P} go ?",),
    "animal": ("which animal was in the story ?", "what animal did the story have ?"),
}
_MC_KINDS = tuple(_MC_QUESTIONS)
_MC_ANSWER_POOL = {
    "who": NAMES, "friend": NAMES, "what": OBJECTS, "colour": COLOURS, "where": PLACES,
    "animal": ANIMALS,
}  # fmt: skip

_FORMAT_PROMPTS = {
    "chat": "simulate a chat log about {T} .",
    "poem": "write a poem about {T} .",
    "science": "write a scientific piece about {T} .",
}

_CHAT_OPEN = ("hi {N2} !", "hello {N2} .", "hey {N2} , look !")
_CHAT_CLOSE = ("bye {N2} !", "see you soon !", "ok , bye !")
_CHAT_LINES = {
    "object": (
        "do you see {T} ?", "i found {T} in the {L} .", "can i play with {T} ?",
        "yes , {T} is fun .", "where is {T} now ?", "{T} is under the bed .",
        "i like {T} a lot .", "let us take {T} to the {L} .", "no , {T} is mine .",
        "we can share {T} .", "wow , thank you !", "ok , let us go !",
    ),
    "animal": (
        "do you see {T} ?", "{T} is in the {L} .", "can we feed {T} ?", "{T} likes to run .",
        "{T} is sleeping now .", "look , {T} is jumping !", "i like {T} a lot .",
        "where did {T} go ?", "{T} went to the {L} .", "ok , let us go !",
    ),
    "place": (
        "let us go to {T} .", "{T} is big and nice .", "what can we do at {T} ?",
        "we can play at {T} .", "i like {T} a lot .", "ok , let us go !",
        "is {T} far ?", "no , {T} is near .", "i saw a bird at {T} .",
    ),
    "person": (
        "do you know {T} ?", "yes , {T} is my friend .", "where is {T} ?",
        "{T} went to the {L} .", "i like {T} a lot .", "let us play with {T} .",
        "{T} is very kind .", "ok , let us go !",
    ),
}  # fmt: skip
_POEM_REFRAINS = ("oh {T} , oh {T} .", "i love {T} so .")
_POEM_LINES = {
    "any": (
        "i sing of {T} ,", "by day and by night ,", "in the sun and the rain ,",
        "you make me glad ,", "my heart is light ,", "come and play with me ,",
        "under the big sky ,", "so near and so far ,",
    ),
    "object": ("so round and so small ,", "you roll and you fall ,", "i keep you in my bag ,"),
    "animal": ("you run and you jump ,", "you sleep in the sun ,", "your eyes are so bright ,"),
    "place": ("your trees are so tall ,", "i walk in you all day ,", "the wind sings in you ,"),
    "person": ("my friend so kind ,", "you laugh and you run ,", "you smile at me ,"),
}  # fmt: skip
_SCIENCE_SECTIONS = ("observation", "hypothesis", "method", "result", "conclusion")
_SCIENCE_LINES = {
    "object": {
        "observation": ("{T} was in the {L} .", "we saw {T} {X} times .", "{T} is small and round ."),
        "hypothesis": ("{T} can roll down a hill .", "{T} will float on water .", "{T} is heavy ."),
        "method": ("we put {T} in the {L} .", "we watched {T} for {X} days .", "we tested {T} {Y} times ."),
        "result": ("{T} rolled {X} steps .", "{X} of {Y} tests were good .", "{T} did not move ."),
        "conclusion": ("{T} is round .", "more study of {T} is needed .", "the hypothesis was right ."),
    },
    "animal": {
        "observation": ("{T} lives near the {L} .", "we saw {T} {X} times .", "{T} sleeps in the day ."),
        "hypothesis": ("{T} eats more at night .", "{T} likes the {L} .", "{T} can run fast ."),
        "method": ("we watched {T} for {X} days .", "we gave {T} food {Y} times .", "we followed {T} to the {L} ."),
        "result": ("{T} ate {X} times .", "{X} of {Y} tests were good .", "{T} ran {X} steps ."),
        "conclusion": ("{T} is fast .", "more study of {T} is needed .", "the hypothesis was wrong ."),
    },
    "place": {
        "observation": ("{T} has {X} trees .", "many children go to {T} .", "{T} is quiet at night ."),
        "hypothesis": ("{T} is warm in the day .", "birds like {T} .", "{T} gets wet in the rain ."),
        "method": ("we went to {T} {X} times .", "we counted the birds at {T} .", "we stayed at {T} for {X} days ."),
        "result": ("we saw {X} birds .", "{X} of {Y} tests were good .", "{T} was warm {X} days ."),
        "conclusion": ("{T} is a good place .", "more study of {T} is needed .", "the hypothesis was right ."),
    },
    "person": {
        "observation": ("{T} goes to the {L} every day .", "{T} plays with {X} friends .", "{T} likes the {L} ."),
        "hypothesis": ("{T} runs faster in the morning .", "{T} is happy at the {L} .", "{T} can count to {Y} ."),
        "method": ("we asked {T} {X} questions .", "we watched {T} for {X} days .", "we met {T} at the {L} ."),
        "result": ("{T} was happy {X} days .", "{X} of {Y} tests were good .", "{T} ran {X} steps ."),
        "conclusion": ("{T} is fast .", "more study of {T} is needed .", "the hypothesis was right ."),
    },
}  # fmt: skip


def _science_templates() -> Iterator[str]:
    for by_section in _SCIENCE_LINES.values():
        for lines in by_section.values():
            yield from lines


_TEMPLATE_GROUPS: tuple[Iterable[str], ...] = (
    _INTRO, _GO, _MEET, _FRIEND, _ANIMAL, _FEEL, _END,
    *(_TASK_INSTRUCTIONS.values()), (_MC_HEADER, "story : question : answer :"),
    *(_MC_QUESTIONS.values()), _FORMAT_PROMPTS.values(), _CHAT_OPEN, _CHAT_CLOSE,
    *(_CHAT_LINES.values()), _POEM_REFRAINS, *(_POEM_LINES.values()),
    tuple(f"{s} :" for s in _SCIENCE_SECTIONS), tuple(_science_templates()),
)  # fmt: skip

_SLOT = re.compile(r"\{[A-Za-z0-9]+\}")

def _template_words(template: str) -> int:
    """Words of a template once filled (a slot is one word), punctuation excluded."""
    return sum(w not in PUNCTUATION for w in _SLOT.sub(" x ", template).split())


def _max_story_words() -> int:
    """The largest word count of a story shown by a task prompt (all but the last sentence)."""
    longest = sorted((max(map(_template_words, t)) for t in _PART_TEMPLATES.values()), reverse=True)
    return max(map(_template_words, _INTRO)) + sum(longest[: _MAX_SENTENCES - 2])


# Numbers are single tokens "0" .. _MAX_NUMBER: word counts (counting task), science numbers.
_MAX_NUMBER = max(_max_story_words(), 20)

def _content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in PUNCTUATION and w != NEWLINE]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _fill(template: str, slots: Mapping[str, str]) -> str:
    try:
        return template.format_map(slots)
    except KeyError as exc:  # a bug of this module, not of the caller
        raise RuntimeError(f"template {template!r} has no value for slot {exc}") from exc


# ------------------------------------------------------------------------------------------
# Topics
# ------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _topic_pool() -> tuple[tuple[str, str], ...]:
    """All (topic, kind) pairs, in a fixed order: 200 objects, 80 animals, 12 places, 24 names."""
    pool = [(f"the {c} {o}", "object") for c in COLOURS for o in OBJECTS]
    pool += [(f"the {c} {a}", "animal") for c in COLOURS for a in ANIMALS]
    pool += [(f"the {p}", "place") for p in PLACES]
    pool += [(n, "person") for n in NAMES]
    return tuple(pool)


def _topic_head(topic: str) -> str:
    return topic.split()[-1]


# ------------------------------------------------------------------------------------------
# The world
# ------------------------------------------------------------------------------------------

Split = Literal["train", "validation", "test"]
Reversal = Literal["sentences", "instruction_first"]

_DEFAULT_MIX = {"story": 0.35, "task": 0.25, "format": 0.2, "mc": 0.2}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ElensError(f"Unknown split {split!r}: use one of {', '.join(SPLITS)}.")


def _check_count(n: int, what: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ElensError(f"{what} must be a non-negative integer, got {n!r}.")


class StoryWorld:
    """The seeded generator of stories, prompts, format texts and questions.

    Every item is a pure function of ``seed`` and its index, so ``StoryWorld(7).stories(10)``
    is byte-identical on every machine, and the first ``k`` items of a longer request are the
    ``k`` items of a shorter one (except the letter placement of :meth:`multiple_choice`,
    which balances letters over the set requested).
    """

    def __init__(self, seed: int = 0) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ElensError(f"The seed must be an integer, got {seed!r}.")
        self.seed = seed
        # candidate indices classified so far, by split (a cache: stories are pure functions)
        self._members: dict[str, list[int]] = {s: [] for s in SPLITS}
        self._scanned = 0
        self._topic_index: dict[str, tuple[str, str]] | None = None  # topic -> (kind, split)

    def __repr__(self) -> str:
        return f"StoryWorld(seed={self.seed})"

    # -- stories ---------------------------------------------------------------------------

    def story_at(self, index: int) -> Story:
        """The candidate story number ``index`` (of whatever split its hash gives it)."""
        _check_count(index, "The story index")
        rng = PortableRandom("elens-story", self.seed, index)
        p, f = rng.sample(NAMES, 2)
        o, c = rng.choice(OBJECTS), rng.choice(COLOURS)
        place, animal = rng.choice(PLACES), rng.choice(ANIMALS)
        n_sentences = rng.uniform_int(3, _MAX_SENTENCES)
        while True:  # an order-preserving subset of the plot parts; a friend action needs a meeting
            parts = sorted(rng.sample(range(len(_PARTS)), n_sentences - 1))
            chosen = [_PARTS[i] for i in parts]
            if "friend" not in chosen or "meet" in chosen:
                break
        has_place, has_friend = "go" in chosen, "meet" in chosen
        slots = {"P": p, "F": f, "O": o, "C": c, "a": _article(c), "L": place, "A": animal}
        sentences = [_fill(rng.choice(_INTRO), slots)]
        for part in chosen:
            options = list(_PART_TEMPLATES[part])
            if not has_place:
                options = [t for t in options if "{L}" not in t]
            if not has_friend:
                options = [t for t in options if "{F}" not in t]
            sentences.append(_fill(rng.choice(options), slots))
        split = split_of_hash(unit_hash("elens-split", self.seed, sentences[0], sentences[1]))
        return Story(
            id=f"s{index}",
            split=split,
            sentences=tuple(sentences),
            text=" ".join(sentences),
            protagonist=p,
            friend=f if has_friend else None,
            obj=o,
            colour=c,
            place=place if has_place else None,
            animal=animal if "animal" in chosen else None,
        )

    def iter_stories(self, split: Split = "train") -> Iterator[Story]:
        """All stories of ``split``, in index order (an endless iterator)."""
        _check_split(split)
        members = self._members[split]
        k = 0
        while True:
            if k < len(members):
                yield self.story_at(members[k])
                k += 1
                continue
            story = self.story_at(self._scanned)
            self._members[story.split].append(self._scanned)
            self._scanned += 1
            if story.split == split:
                k += 1
                yield story

    def stories(self, n: int, split: Split = "train", *, style: str = "zoo") -> list[Story]:
        """The first ``n`` stories of ``split``, in rendering ``style`` (:data:`~elens_utils.data.story_lexicon.STYLES`)."""
        _check_count(n, "The number of stories")
        check_style(style)
        it = self.iter_stories(split)
        return [render(next(it), style) for _ in range(n)]

    # -- task prompts ----------------------------------------------------------------------

    def task_prompt(
        self, story: Story, task: str, phrasing: int, variant: str, reversal: Reversal = "sentences"
    ) -> TaskPrompt:
        """One prompt of the task-type experiment for ``story``.

        The story shown is ``story`` without its last sentence. ``reversal="sentences"``
        reverses the order of the sentences shown; ``"instruction_first"`` puts the instruction
        before the story instead of after it (what the paper's code calls ``_rev``). Scrambling
        shuffles the words and punctuation of the story shown with a generator of its own, so
        it never changes what other prompts see.
        """
        if task not in TASK_FAMILIES:
            raise ElensError(f"Unknown task {task!r}: use one of {', '.join(TASK_FAMILIES)}.")
        if phrasing not in (0, 1):
            raise ElensError(f"The phrasing index must be 0 or 1, got {phrasing!r}.")
        if variant not in VARIANTS:
            raise ElensError(f"Unknown variant {variant!r}: use one of {', '.join(VARIANTS)}.")
        if reversal not in REVERSALS:
            raise ElensError(f"Unknown reversal {reversal!r}: use one of {', '.join(REVERSALS)}.")
        shown = list(story.sentences[:-1])
        reversed_ = variant in ("reversed", "reversed_scrambled")
        scrambled = variant in ("scrambled", "reversed_scrambled")
        if reversed_ and reversal == "sentences":
            shown.reverse()
        tokens = words(" ".join(shown))
        if scrambled:
            PortableRandom("elens-scramble", self.seed, story.id, task, phrasing, variant).shuffle(tokens)
        story_text = join_words(tokens)
        instruction = _TASK_INSTRUCTIONS[task][phrasing]
        if reversed_ and reversal == "instruction_first":
            prompt = f"{instruction}\n{story_text}\n"
        else:
            prompt = f"{story_text}\n{instruction}\n"
        answer: str | None
        if task == "continuation":
            order_kept = not scrambled and not (reversed_ and reversal == "sentences")
            answer = story.sentences[-1] if order_kept else None
        elif task == "counting":
            count = len(_content_words(" ".join(story.sentences[:-1])))
            if count > _MAX_NUMBER:  # cannot happen with the templates above
                raise RuntimeError(f"story {story.id} has {count} words, more than {_MAX_NUMBER}")
            answer = str(count)
        else:
            answer = story.protagonist if phrasing == 0 else story.obj
        return TaskPrompt(
            story_id=story.id,
            task=task,
            phrasing=phrasing,
            variant=variant,
            reversal=reversal,
            instruction=instruction,
            story=story_text,
            prompt=prompt,
            answer=answer,
            text=None if answer is None else prompt + answer,
        )

    def prompts_for_story(self, story: Story, reversal: Reversal = "sentences") -> list[TaskPrompt]:
        """The 3 x 2 x 4 = 24 prompts of one story (task, then phrasing, then variant)."""
        return [
            self.task_prompt(story, task, phrasing, variant, reversal)
            for task in TASK_FAMILIES
            for phrasing in (0, 1)
            for variant in VARIANTS
        ]

    def task_prompts(
        self,
        n_stories: int = 100,
        split: Split = "test",
        reversal: Reversal = "sentences",
        *,
        style: str = "zoo",
    ) -> list[TaskPrompt]:
        """The task-type experiment: ``n_stories`` x 24 prompts (2400 for the paper's 100).

        ``style="natural"`` renders them as English (:func:`render`); answers are unchanged.
        """
        _check_count(n_stories, "The number of stories")
        check_style(style)
        return [
            render(p, style)
            for story in self.stories(n_stories, split)
            for p in self.prompts_for_story(story, reversal)
        ]

    # -- output formats --------------------------------------------------------------------

    def topics(self, split: Split = "test") -> list[tuple[str, str]]:
        """The (topic, kind) pairs of ``split``: 180 test, 36 validation, 100 train topics.

        Within each kind (object, animal, place, person) topics are ranked by a seeded hash and
        cut into the three splits, so every kind is in every split; pool order is kept.
        """
        _check_split(split)
        pool = _topic_pool()
        chosen: set[str] = set()
        position = {"test": 0, "validation": 1, "train": 2}[split]
        for kind, sizes in _TOPIC_SPLIT_SIZES.items():
            ranked = sorted(
                (t for t, k in pool if k == kind),
                key=lambda t: unit_hash("elens-topic", self.seed, t),
            )
            lo = sum(sizes[:position])
            chosen.update(ranked[lo : lo + sizes[position]])
        return [(t, k) for t, k in pool if t in chosen]

    def format_prompts(
        self, split: Split = "test", formats: Sequence[str] = FORMATS, *, style: str = "zoo"
    ) -> list[FormatPrompt]:
        """One prompt per format and topic of ``split`` (3 x 180 = 540 for the test split).

        ``style="natural"`` renders the prompts as English; ``topic`` stays the pool's key.
        """
        self._check_formats(formats)
        check_style(style)
        return [
            render(FormatPrompt(fmt, topic, kind, split, _fill(_FORMAT_PROMPTS[fmt], {"T": topic})), style)
            for fmt in formats
            for topic, kind in self.topics(split)
        ]

    def topic_info(self, topic: str) -> tuple[str, str]:
        """The (kind, split) of a topic of the pool (see :meth:`topics`)."""
        if self._topic_index is None:
            self._topic_index = {
                t: (k, s) for s in SPLITS for t, k in self.topics(s)  # type: ignore[arg-type]
            }
        if topic not in self._topic_index:
            raise ElensError(
                f"Unknown topic {topic!r}: take one from StoryWorld.topics(split), "
                "e.g. 'the red ball', 'the garden' or 'tom'."
            )
        return self._topic_index[topic]

    def format_text(self, fmt: str, topic: str, index: int = 0) -> FormatText:
        """Training text number ``index`` in format ``fmt`` about ``topic`` (a pool topic)."""
        self._check_formats([fmt])
        _check_count(index, "The text index")
        kind, split = self.topic_info(topic)
        rng = PortableRandom("elens-format", self.seed, fmt, topic, index)
        head = _topic_head(topic)
        names = [n for n in NAMES if n != head]
        places = [p for p in PLACES if p != head]
        n1, n2 = rng.sample(names, 2)
        slots = {"T": topic, "N1": n1, "N2": n2, "L": rng.choice(places)}
        if fmt == "chat":
            pool = _CHAT_LINES[kind]
            lines = [f"{n1} : {_fill(rng.choice(_CHAT_OPEN), slots)}"]
            for i, template in enumerate(rng.sample(pool, rng.uniform_int(3, 6))):
                speaker = n2 if i % 2 == 0 else n1
                lines.append(f"{speaker} : {_fill(template, slots)}")
            closer = n1 if len(lines) % 2 == 0 else n2  # speakers alternate from n1
            close_slots = {**slots, "N2": n2 if closer == n1 else n1}
            lines.append(f"{closer} : {_fill(rng.choice(_CHAT_CLOSE), close_slots)}")
            body = NEWLINE.join(lines)
        elif fmt == "poem":
            refrain = _fill(rng.choice(_POEM_REFRAINS), slots)
            pool = _POEM_LINES["any"] + _POEM_LINES[kind]
            stanzas = []
            for _ in range(rng.uniform_int(2, 3)):
                stanza = [_fill(t, slots) for t in rng.sample(pool, 3)]
                stanzas.append(NEWLINE.join([*stanza, refrain]))
            body = (NEWLINE + NEWLINE).join(stanzas)
        else:
            lines = []
            for section in _SCIENCE_SECTIONS:
                x = rng.uniform_int(2, 9)
                line_slots = {**slots, "X": str(x), "Y": str(rng.uniform_int(10, 20))}
                template = rng.choice(_SCIENCE_LINES[kind][section])
                lines.append(f"{section} : {_fill(template, line_slots)}")
            body = NEWLINE.join(lines)
        prompt = _fill(_FORMAT_PROMPTS[fmt], {"T": topic})
        return FormatText(fmt, topic, kind, split, prompt, body, prompt + NEWLINE + body)

    def format_texts(
        self, n: int, split: Split = "train", formats: Sequence[str] = FORMATS
    ) -> list[FormatText]:
        """``n`` training texts, cycling through the formats and the topics of ``split``."""
        _check_count(n, "The number of format texts")
        self._check_formats(formats)
        topics = self.topics(split)
        out = []
        for i in range(n):
            fmt = formats[i % len(formats)]
            topic, _ = topics[(i // len(formats)) % len(topics)]
            out.append(self.format_text(fmt, topic, i))
        return out

    @staticmethod
    def _check_formats(formats: Sequence[str]) -> None:
        bad = [f for f in formats if f not in FORMATS]
        if bad or not formats:
            raise ElensError(
                f"Unknown or no formats {bad or formats!r}: use some of {', '.join(FORMATS)}."
            )

    # -- multiple choice -------------------------------------------------------------------

    def question_for(
        self, story: Story, letter_index: int, in_story_distractors: bool = False, salt: str = ""
    ) -> MCQuestion:
        """A question about ``story`` whose answer sits under ``LETTERS[letter_index]``.

        Distractors are three other words of the answer's kind. By default they are absent from
        the story (the answer is the only option the story mentions); with
        ``in_story_distractors=True`` a name question also offers the other character of the
        story when there is one.
        """
        rng = PortableRandom("elens-mc", self.seed, story.id, salt)
        kinds = ["who", "what", "colour"]
        if story.friend is not None:
            kinds.append("friend")
        if story.place is not None:
            kinds.append("where")
        if story.animal is not None:
            kinds.append("animal")
        kind = rng.choice(sorted(kinds, key=_MC_KINDS.index))
        answer = {
            "who": story.protagonist,
            "friend": story.friend,
            "what": story.obj,
            "colour": story.colour,
            "where": story.place,
            "animal": story.animal,
        }[kind]
        assert answer is not None
        slots = {"P": story.protagonist, "O": story.obj, "C": story.colour}
        question = _fill(rng.choice(_MC_QUESTIONS[kind]), slots)
        in_story = set(words(story.text))
        pool = [w for w in _MC_ANSWER_POOL[kind] if w != answer and w not in in_story]
        distractors = rng.sample(pool, 3)
        if in_story_distractors and kind in ("who", "friend") and story.friend is not None:
            other = story.friend if kind == "who" else story.protagonist
            distractors = [other, *distractors[:2]]
            rng.shuffle(distractors)
        options = list(distractors)
        options.insert(letter_index, answer)
        letter = LETTERS[letter_index]
        lines = [
            _MC_HEADER,
            f"story : {story.text}",
            f"question : {question}",
            *(f"{LETTERS[i]} : {opt}" for i, opt in enumerate(options)),
            "answer :",
        ]
        prompt = NEWLINE.join(lines)
        return MCQuestion(
            id=f"mc-{story.id}{salt}",
            story_id=story.id,
            split=story.split,
            kind=kind,
            question=question,
            options=tuple(options),  # type: ignore[arg-type]
            answer=answer,
            answer_index=letter_index,
            answer_letter=letter,
            prompt=prompt,
            text=f"{prompt} {letter}",
        )

    def multiple_choice(
        self, n: int, split: Split = "test", in_story_distractors: bool = False, *, style: str = "zoo"
    ) -> list[MCQuestion]:
        """``n`` questions, one per story of ``split``, answer letters balanced over the set.

        Letters are ``A B C D`` cycled to length ``n`` and then shuffled, so each letter is the
        answer ``n // 4`` or ``n // 4 + 1`` times (exactly ``n / 4`` when 4 divides ``n``).
        ``style="natural"`` renders the questions as English; letters and ids are unchanged.
        """
        _check_count(n, "The number of questions")
        check_style(style)
        letters = [i % len(LETTERS) for i in range(n)]
        PortableRandom("elens-mc-letters", self.seed, split, n).shuffle(letters)
        return [
            render(self.question_for(story, letter, in_story_distractors), style)
            for story, letter in zip(self.stories(n, split), letters)
        ]

    # -- training corpus -------------------------------------------------------------------

    def training_corpus(
        self,
        n_documents: int | None = None,
        n_tokens: int | None = None,
        split: Split = "train",
        mix: Mapping[str, float] | None = None,
    ) -> list[Document]:
        """A mixed corpus from ``split``: stories, task prompts with answers, format texts, MC.

        Give ``n_documents`` or ``n_tokens`` (the corpus stops at the first document that
        reaches it; a document counts its words plus 2 for ``<bos>``/``<eos>``). ``mix`` weighs
        the kinds ``story``, ``task``, ``format``, ``mc`` (default 0.35/0.25/0.2/0.2). Task
        prompts come in all 24 forms that have an answer, with both reversal conventions; MC
        answer letters cycle A-D. With ``split="train"`` nothing of the held-out splits enters.
        """
        _check_split(split)
        if (n_documents is None) == (n_tokens is None):
            raise ElensError(
                "Give exactly one of n_documents and n_tokens for the training corpus."
            )
        limit = n_documents if n_documents is not None else n_tokens
        _check_count(limit, "n_documents" if n_documents is not None else "n_tokens")
        mix = dict(_DEFAULT_MIX if mix is None else mix)
        bad = sorted(set(mix) - set(_DEFAULT_MIX))
        if bad or not mix or any(not (w >= 0) for w in mix.values()) or sum(mix.values()) <= 0:
            raise ElensError(
                f"Bad corpus mix {mix!r}: give non-negative weights for some of "
                f"{', '.join(_DEFAULT_MIX)}, not all zero."
            )
        kinds = list(mix)
        weights = [float(mix[k]) for k in kinds]
        streams = {
            "story": self._story_docs(split),
            "task": self._task_docs(split),
            "format": self._format_docs(split),
            "mc": self._mc_docs(split),
        }
        rng = PortableRandom("elens-corpus", self.seed, split)
        docs: list[Document] = []
        total = 0
        while (len(docs) if n_documents is not None else total) < limit:
            doc = next(streams[kinds[rng.weighted(weights)]])
            docs.append(doc)
            total += len(words(doc.text)) + 2
        return docs

    def _story_docs(self, split: Split) -> Iterator[Document]:
        for story in self.iter_stories(split):
            yield Document("story", story.id, story.text)

    def _task_docs(self, split: Split) -> Iterator[Document]:
        for story in self.iter_stories(split):
            rng = PortableRandom("elens-corpus-task", self.seed, story.id)
            while True:
                prompt = self.task_prompt(
                    story,
                    rng.choice(TASK_FAMILIES),
                    rng.below(2),
                    rng.choice(VARIANTS),
                    rng.choice(REVERSALS),
                )
                if prompt.text is not None:
                    break
            source = f"{story.id}/{prompt.task}/{prompt.phrasing}/{prompt.variant}"
            yield Document("task", source, prompt.text)

    def _format_docs(self, split: Split) -> Iterator[Document]:
        topics = self.topics(split)
        rng = PortableRandom("elens-corpus-format", self.seed, split)
        index = 0
        while True:
            fmt = FORMATS[index % len(FORMATS)]
            topic, _ = rng.choice(topics)
            text = self.format_text(fmt, topic, index)
            yield Document("format", f"{fmt}/{topic}", text.text)
            index += 1

    def _mc_docs(self, split: Split) -> Iterator[Document]:
        for j, story in enumerate(self.iter_stories(split)):
            q = self.question_for(story, j % len(LETTERS), in_story_distractors=j % 2 == 1)
            yield Document("mc", q.id, q.text)

    # -- vocabulary ------------------------------------------------------------------------

    def vocabulary(self) -> list[str]:
        """The closed vocabulary (the same for every seed): special tokens, then sorted words."""
        return vocabulary()


@lru_cache(maxsize=None)
def closed_vocabulary() -> tuple[str, ...]:
    """The closed vocabulary, cached: the special tokens, then every word of the word lists and
    templates, sorted (:func:`vocabulary` gives it as a list)."""
    found: set[str] = set()
    for group in _TEMPLATE_GROUPS:
        for template in group:
            found.update(words(_SLOT.sub(" ", template)))
    found.update(NAMES, OBJECTS, COLOURS, PLACES, ANIMALS, LETTERS, PUNCTUATION, ("a", "an"))
    found.update(str(i) for i in range(_MAX_NUMBER + 1))
    found.add(NEWLINE)
    found -= set(SPECIAL_TOKENS)
    return (*SPECIAL_TOKENS, *sorted(found))


def vocabulary() -> list[str]:
    """The closed vocabulary: ``<pad> <bos> <eos> <unk>`` (ids 0-3), then the words, sorted."""
    return list(closed_vocabulary())
