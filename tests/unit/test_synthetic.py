"""Tests of the synthetic story world: determinism, held-out splits, MC balance, tokenizer."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import Counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from elens_utils.core.errors import ElensError
from elens_utils.data.synthetic import (
    ANIMALS,
    COLOURS,
    FORMATS,
    LETTERS,
    NAMES,
    OBJECTS,
    PLACES,
    PUNCTUATION,
    REVERSALS,
    SPECIAL_TOKENS,
    SPLITS,
    TASK_FAMILIES,
    VARIANTS,
    StoryWorld,
    as_records,
    build_tokenizer,
    join_words,
    vocabulary,
    words,
)

KIND_POOLS = {
    "who": NAMES, "friend": NAMES, "what": OBJECTS, "colour": COLOURS, "where": PLACES,
    "animal": ANIMALS,
}  # fmt: skip


@pytest.fixture(scope="module")
def world() -> StoryWorld:
    return StoryWorld(0)


@pytest.fixture(scope="module")
def corpus(world):
    return world.training_corpus(n_documents=2000)


@pytest.fixture(scope="module")
def corpus_text(corpus) -> str:
    return "\n<doc>\n".join(d.text for d in corpus)


@pytest.fixture(scope="module")
def mc400(world):
    return world.multiple_choice(400, split="test")


@pytest.fixture(scope="module")
def tokenizer(world):
    return build_tokenizer(world)


def _sample(world: StoryWorld) -> str:
    """A fixed sample of every kind of output, as one string."""
    parts = [s.text for s in world.stories(5, "train")]
    parts += [p.prompt + str(p.answer) for p in world.task_prompts(2, "test")]
    parts += [p.prompt for p in world.format_prompts("test")]
    parts += [t.text for t in world.format_texts(6)]
    parts += [q.text for q in world.multiple_choice(8, "validation")]
    parts += [d.text for d in world.training_corpus(n_documents=20)]
    return "\n<doc>\n".join(parts)


# -- determinism ---------------------------------------------------------------------------


def test_same_seed_identical_and_different_seed_different():
    a, b, c = _sample(StoryWorld(3)), _sample(StoryWorld(3)), _sample(StoryWorld(4))
    assert a == b
    assert a != c
    assert StoryWorld(3).stories(20) != StoryWorld(4).stories(20)


def test_output_pinned_across_machines():
    # Byte-identical output anywhere: only Random.random() and SHA hashes are used. If this
    # fails after an intended change of the generator, update the digest (the data changed).
    digest = hashlib.sha256(_sample(StoryWorld(0)).encode()).hexdigest()
    assert digest == PINNED_DIGEST, digest


def test_prefix_stability(world):
    assert world.stories(7, "test") == world.stories(15, "test")[:7]
    assert world.training_corpus(n_documents=50) == world.training_corpus(n_documents=80)[:50]


# -- stories and splits --------------------------------------------------------------------


def test_story_shape(world):
    for story in world.stories(300, "train"):
        assert 3 <= len(story.sentences) <= 6
        assert story.text == " ".join(story.sentences) == join_words(words(story.text))
        toks = set(words(story.text))
        assert {story.protagonist, story.obj, story.colour} <= toks
        for fact in (story.friend, story.place, story.animal):
            assert fact is None or fact in toks
        assert story.split == "train"


def test_splits_disjoint_and_sized(world):
    n = 4000
    candidates = [world.story_at(i) for i in range(n)]
    by_split = Counter(st.split for st in candidates)
    assert by_split["train"] / n == pytest.approx(0.90, abs=0.02)
    assert by_split["test"] / n == pytest.approx(0.05, abs=0.015)
    texts = {s: {st.text for st in world.stories(150, s)} for s in SPLITS}
    ids = {s: {st.id for st in world.stories(150, s)} for s in SPLITS}
    for s1, s2 in itertools.combinations(SPLITS, 2):
        assert not texts[s1] & texts[s2]
        assert not ids[s1] & ids[s2]
    # the key of the split: stories sharing their first two sentences share their split
    keys: dict[tuple[str, str], str] = {}
    for st in candidates:
        assert keys.setdefault(st.sentences[:2], st.split) == st.split


def test_topics_split(world):
    topics = {s: world.topics(s) for s in SPLITS}
    assert [len(topics[s]) for s in ("test", "validation", "train")] == [180, 36, 100]
    names = [t for s in SPLITS for t, _ in topics[s]]
    assert len(names) == len(set(names)) == 316
    prompts = world.format_prompts("test")
    assert len(prompts) == 3 * 180 == len({p.prompt for p in prompts})
    assert Counter(p.format for p in prompts) == {f: 180 for f in FORMATS}
    assert len({p.topic for p in prompts}) == 180
    for s in SPLITS:  # stratified: every kind of topic in every split
        assert {k for _, k in topics[s]} == {"object", "animal", "place", "person"}


def test_heldout_never_in_training_corpus(world, corpus, corpus_text):
    assert Counter(d.kind for d in corpus).keys() == {"story", "task", "format", "mc"}
    heldout = ("validation", "test")
    for split in heldout:
        for story in world.stories(100, split):
            assert story.text not in corpus_text
            assert " ".join(story.sentences[:-1]) not in corpus_text  # the story the prompts show
        for q in world.multiple_choice(100, split):
            assert q.prompt not in corpus_text
        for p in world.task_prompts(10, split):
            assert p.prompt not in corpus_text
        held_topics = {t for t, _ in world.topics(split)}
        for p in world.format_prompts(split):
            assert p.prompt not in corpus_text
        format_topics = {d.source.split("/", 1)[1] for d in corpus if d.kind == "format"}
        assert not format_topics & held_topics
    # every story behind a training document is a training story
    train_ids = {s.id for s in world.stories(2000, "train")}
    story_ids = {d.source.split("/")[0].removeprefix("mc-") for d in corpus if d.kind != "format"}
    assert story_ids <= train_ids


def test_corpus_by_tokens(world):
    docs = world.training_corpus(n_tokens=5000)
    counts = [len(words(d.text)) + 2 for d in docs]
    assert sum(counts) >= 5000 > sum(counts[:-1])


# -- task prompts --------------------------------------------------------------------------


@pytest.mark.parametrize("reversal", REVERSALS)
def test_task_structure(world, reversal):
    stories = world.stories(25, "test")
    before = [s.text for s in stories]
    prompts = world.task_prompts(25, "test", reversal=reversal)
    assert len(prompts) == 25 * 24
    assert [s.text for s in world.stories(25, "test")] == before  # nothing overwritten
    for story, group in zip(stories, (prompts[i : i + 24] for i in range(0, len(prompts), 24))):
        assert {(p.task, p.phrasing, p.variant) for p in group} == set(
            itertools.product(TASK_FAMILIES, (0, 1), VARIANTS)
        )
        assert {p.story_id for p in group} == {story.id}
        shown = " ".join(story.sentences[:-1])
        base_words = Counter(words(shown))
        for p in group:
            assert p.reversal == reversal
            assert Counter(words(p.story)) == base_words  # a permutation of the base story
            assert p.instruction in p.prompt and p.story in p.prompt
            if p.variant == "base":
                assert p.story == shown  # the scrambles never leaked into later prompts
            if p.variant == "reversed" and reversal == "sentences":
                assert p.story == " ".join(reversed(story.sentences[:-1]))
            if p.variant == "reversed" and reversal == "instruction_first":
                assert p.prompt.startswith(p.instruction) and p.story == shown
            if p.variant in ("scrambled", "reversed_scrambled"):
                assert p.story != shown
            if p.task == "continuation":
                keeps_order = p.variant == "base" or (
                    p.variant == "reversed" and reversal == "instruction_first"
                )
                assert p.answer == (story.sentences[-1] if keeps_order else None)
            elif p.task == "counting":
                n = sum(w not in PUNCTUATION for w in words(shown))
                assert p.answer == str(n)
            else:
                assert p.answer == (story.protagonist if p.phrasing == 0 else story.obj)
                assert p.answer in base_words
            assert p.text == (None if p.answer is None else p.prompt + p.answer)
        # the two phrasings of a family differ; the families differ
        assert len({p.instruction for p in group}) == 6


# -- output formats ------------------------------------------------------------------------


def test_format_texts_are_distinct_formats(world):
    texts = world.format_texts(60)
    train_topics = {t for t, _ in world.topics("train")}
    for t in texts:
        assert t.topic in train_topics and t.split == "train"
        assert t.text == t.prompt + "\n" + t.body
        lines = t.body.split("\n")
        if t.format == "chat":
            speakers = [line.split(" : ")[0] for line in lines]
            assert all(s in NAMES for s in speakers)
            assert all(a != b for a, b in zip(speakers, speakers[1:]))  # alternating
            assert len(set(speakers)) == 2
        elif t.format == "poem":
            stanzas = t.body.split("\n\n")
            assert len(stanzas) in (2, 3)
            assert len({s.split("\n")[-1] for s in stanzas}) == 1  # the refrain
            assert all(len(s.split("\n")) == 4 for s in stanzas)
        else:
            sections = [line.split(" : ")[0] for line in lines]
            assert sections == ["observation", "hypothesis", "method", "result", "conclusion"]


# -- multiple choice -----------------------------------------------------------------------


def test_mc_letters_exactly_balanced(mc400):
    assert Counter(q.answer_letter for q in mc400) == {letter: 100 for letter in LETTERS}
    assert len({q.story_id for q in mc400}) == 400
    assert len(Counter(q.kind for q in mc400)) == 6


@pytest.mark.parametrize("hard", [False, True])
def test_mc_answers_and_distractors(world, mc400, hard):
    questions = mc400 if not hard else world.multiple_choice(200, "test", in_story_distractors=True)
    stories = {s.id: s for s in world.stories(len(questions), "test")}
    for q in questions:
        story_words = set(words(stories[q.story_id].text))
        assert q.answer in story_words
        assert q.options[q.answer_index] == q.answer
        assert LETTERS[q.answer_index] == q.answer_letter
        assert len(set(q.options)) == 4
        pool = KIND_POOLS[q.kind]
        assert all(opt in pool for opt in q.options)  # same kind as the answer
        distractors = [o for o in q.options if o != q.answer]
        if not hard:
            assert not set(distractors) & story_words
        assert q.prompt.endswith("\nanswer :")
        assert q.text == f"{q.prompt} {q.answer_letter}"
        assert f"story : {stories[q.story_id].text}" in q.prompt
        assert [line[0] for line in q.prompt.split("\n")[3:7]] == list(LETTERS)
    if hard:
        # some name questions offer the story's other character
        story_words = {q.id: set(words(stories[q.story_id].text)) for q in questions}
        assert any((set(q.options) - {q.answer}) & story_words[q.id] for q in questions)


def test_records_convert(world, mc400):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(as_records(world.task_prompts(2)))
    assert len(df) == 48 and {"task", "phrasing", "variant", "prompt", "answer"} <= set(df.columns)
    assert len(pd.DataFrame(as_records(mc400[:8]))) == 8


# -- tokenizer -----------------------------------------------------------------------------


def test_vocabulary(world):
    vocab = vocabulary()
    assert vocab[:4] == list(SPECIAL_TOKENS)
    assert len(vocab) == len(set(vocab)) == len(world.vocabulary())
    assert 300 <= len(vocab) <= 500
    assert "\n" in vocab and set(LETTERS) <= set(vocab)


def test_tokenizer_no_unk_and_round_trip(world, tokenizer, corpus, mc400):
    texts = [d.text for d in corpus]
    texts += [q.text for q in mc400]
    for r in REVERSALS:
        texts += [p.prompt + (p.answer or "") for p in world.task_prompts(20, reversal=r)]
    texts += [p.prompt for s in SPLITS for p in world.format_prompts(s)]
    texts += [t.text for t in world.format_texts(300, "validation")]
    enc = tokenizer(texts)["input_ids"]
    unk = tokenizer.unk_token_id
    assert sum(ids.count(unk) for ids in enc) == 0
    bos = tokenizer.bos_token_id
    assert all(ids[0] == bos and ids.count(bos) == 1 for ids in enc)
    for text, ids in zip(texts[::7], enc[::7]):
        assert len(ids) == len(words(text)) + 1
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
    # the texts cover (nearly) the whole vocabulary: no dead words in the world
    used = {i for ids in enc for i in ids}
    assert len(used) >= 0.97 * len(vocabulary())


def test_tokenizer_special_tokens_and_save(tokenizer, tmp_path):
    tok = tokenizer
    assert [tok.pad_token, tok.bos_token, tok.eos_token, tok.unk_token] == list(SPECIAL_TOKENS)
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert len(tokenizer) == len(vocabulary())
    text = "tom : hi anna !\nanna : hello .\n\nanswer : B"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids)[:3] == ["<bos>", "tom", ":"]
    assert "\n" in tokenizer.convert_ids_to_tokens(ids)
    assert tokenizer("zebra")["input_ids"] == [1, 3]
    assert tokenizer("")["input_ids"] == [1]  # the BOS-only prompt of the families experiment
    tokenizer.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded(text)["input_ids"] == ids
    assert loaded.decode(ids, skip_special_tokens=True) == text
    assert (loaded.bos_token_id, loaded.eos_token_id, loaded.pad_token_id) == (1, 2, 0)
    with_eos = build_tokenizer(add_eos=True)
    assert with_eos(text)["input_ids"] == [*ids, 2]


# -- errors --------------------------------------------------------------------------------


def test_errors(world):
    with pytest.raises(ElensError, match="split"):
        world.stories(3, split="dev")
    with pytest.raises(ElensError, match="non-negative"):
        world.multiple_choice(-1)
    with pytest.raises(ElensError, match="exactly one"):
        world.training_corpus()
    with pytest.raises(ElensError, match="mix"):
        world.training_corpus(n_documents=3, mix={"poems": 1.0})
    with pytest.raises(ElensError, match="reversal"):
        world.task_prompts(1, reversal="backwards")
    with pytest.raises(ElensError, match="formats"):
        world.format_prompts(formats=["essay"])
    with pytest.raises(ElensError, match="topic"):
        world.format_text("poem", "the moon")
    with pytest.raises(ElensError, match="variant"):
        world.task_prompt(world.stories(1)[0], "counting", 0, "shuffled")
    with pytest.raises(ElensError, match="seed"):
        StoryWorld("0")  # type: ignore[arg-type]


PINNED_DIGEST = "e887446fe0d9eb15b4846dad49972fce2fa7e04813734c20b39c3e25a517f2c7"
