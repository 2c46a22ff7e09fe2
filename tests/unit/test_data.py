"""The chapters' datasets: synthetic stand-ins, the Hub paths on in-memory look-alikes, and the
offline error (never a silent switch of source)."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import datasets
import pandas as pd
import pytest

from elens_utils.core.errors import ElensError
from elens_utils.data import prompts as data
from elens_utils.data.synthetic import LETTERS, TASK_FAMILIES, VARIANTS, StoryWorld

STORIES = [
    "Tom had a red ball. He went to the park. He was happy.",
    "",  # TinyStories has blank texts: skipped
    "Lily saw a cat! The cat was small. It ran away? Lily laughed.",
    "Once upon a time, there was a big tree. " * 40,  # a long story (1640 characters)
    "Ben and Mia played in the sand.\n\nThey built a castle. The sea came. It was gone.",
]


class FakeHub:
    """Stands in for datasets.load_dataset: in-memory datasets with the real column names."""

    def __init__(self):
        self.calls = []

    def __call__(self, path, name=None, *, split=None, **kw):
        self.calls.append((path, name, split))
        if path == data.TINYSTORIES:
            return datasets.Dataset.from_dict({"text": STORIES})
        if path == data.MMLU:
            return datasets.Dataset.from_dict(
                {
                    "question": [f"What is {i} + {i}?" for i in range(12)],
                    "subject": ["elementary_mathematics"] * 8 + ["world_religions"] * 4,
                    "choices": [[str(i), str(2 * i), str(3 * i), "none"] for i in range(12)],
                    "answer": [1, 0, 2, 3, 1, 1, 0, 2, 3, 3, 0, 1],
                }
            )
        raise AssertionError(f"unexpected dataset {path}")


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub()
    monkeypatch.setattr(datasets, "load_dataset", fake)
    return fake


def check_source(df: pd.DataFrame, source: str) -> None:
    assert df.attrs["source"] == source
    assert (df["source"] == source).all()


# ---- task prompts ---------------------------------------------------------------------------


def test_synthetic_task_prompts_structure():
    df = data.task_prompts("synthetic", n_stories=100)
    check_source(df, "synthetic")
    assert len(df) == 2400
    assert list(df.columns[:7]) == ["prompt", "label", "phrasing", "variant", "story_id", "answer", "reversal"]
    assert Counter(df["label"]) == {t: 800 for t in TASK_FAMILIES}
    assert df["story_id"].nunique() == 100
    per_story = df.groupby("story_id").apply(lambda g: len(set(zip(g.label, g.phrasing, g.variant))), include_groups=False)
    assert (per_story == 24).all()
    assert set(df["variant"]) == set(VARIANTS) and set(df["phrasing"]) == {0, 1}
    # The held-out test split of the world, as StoryWorld builds it (reversal: the paper's code).
    world = StoryWorld(0)
    assert set(df["story_id"]) == {s.id for s in world.stories(100, "test")}
    assert list(df["prompt"]) == [p.prompt for p in world.task_prompts(100, "test", "instruction_first")]
    rev = df[df.variant == "reversed"].iloc[0]
    assert rev.prompt.startswith(rev.instruction)
    counting = df[df.label == "counting"]
    assert counting["answer"].map(lambda a: isinstance(a, str) and a.isdigit()).all()
    assert df["answer"].map(lambda a: a is None or isinstance(a, str)).all()  # None, not NaN


def test_synthetic_task_prompts_determinism_and_options():
    a = data.task_prompts("synthetic", n_stories=5, seed=3)
    pd.testing.assert_frame_equal(a, data.task_prompts("synthetic", n_stories=5, seed=3))
    assert list(a["prompt"]) != list(data.task_prompts("synthetic", n_stories=5, seed=4)["prompt"])
    s = data.task_prompts("synthetic", n_stories=5, seed=3, reversal="sentences")
    rev = s[s.variant == "reversed"].iloc[0]
    assert rev.prompt.rstrip("\n").endswith(rev.instruction)
    with pytest.raises(ElensError, match="reversal"):
        data.task_prompts("synthetic", 5, reversal="backwards")
    with pytest.raises(ElensError, match="source"):
        data.task_prompts("tinystories", 5)
    with pytest.raises(ElensError, match="n_stories"):
        data.task_prompts("synthetic", 0)


def test_hub_task_prompts_paper_layout(hub):
    df = data.task_prompts("hub", n_stories=3, seed=1)
    assert hub.calls == [(data.TINYSTORIES, None, "validation")]
    check_source(df, "hub")
    assert len(df) == 72 and Counter(df["label"]) == {t: 24 for t in TASK_FAMILIES}
    # The blank text (index 1) is skipped; the stories are the first non-empty ones, in order.
    assert list(dict.fromkeys(df["story_id"])) == [f"tinystories-validation-{i}" for i in (0, 2, 3)]
    first = df[df.story_id == "tinystories-validation-0"]
    story = STORIES[0]
    for (task, phrasing), g in first.groupby(["label", "phrasing"]):
        instruction = data.PAPER_TASK_INSTRUCTIONS[task][phrasing]
        by = dict(zip(g.variant, g.prompt))
        assert by["base"] == f"{story}\n\n{instruction}\n\n"
        assert by["reversed"] == f"{instruction}\n\n{story}\n\n"  # the paper's code: instruction first
        scrambled = by["scrambled"].removesuffix(f"\n\n{instruction}\n\n")
        assert sorted(scrambled.split()) == sorted(story.split()) and scrambled != story
        rev_scrambled = by["reversed_scrambled"].removeprefix(f"{instruction}\n\n").removesuffix("\n\n")
        assert sorted(rev_scrambled.split()) == sorted(story.split())
    # A scrambled story never replaces the original for the prompts that follow (the paper's bug).
    unscrambled = df[df.variant.isin(["base", "reversed"])]
    assert unscrambled.apply(lambda r: r.story in [s.strip() for s in STORIES], axis=1).all()
    assert (df[df.label == "counting"]["answer"] == df[df.label == "counting"]["story"].map(lambda s: str(len(s.split())))).all()
    assert df[df.label != "counting"]["answer"].isna().all()
    # Seeded scrambling: same seed, same prompts; another seed, other scrambles only.
    pd.testing.assert_frame_equal(df, data.task_prompts("hub", n_stories=3, seed=1))
    other = data.task_prompts("hub", n_stories=3, seed=2)
    changed = df.prompt != other.prompt
    assert changed.any() and set(df[changed].variant) <= {"scrambled", "reversed_scrambled"}


def test_hub_task_prompts_sentence_reversal_and_length_limit(hub):
    df = data.task_prompts("hub", n_stories=2, reversal="sentences", max_story_chars=500)
    assert list(dict.fromkeys(df["story_id"])) == ["tinystories-validation-0", "tinystories-validation-2"]
    rev = df[(df.story_id == "tinystories-validation-2") & (df.variant == "reversed")].iloc[0]
    assert rev.story == "Lily laughed. It ran away? The cat was small. Lily saw a cat!"
    assert rev.prompt == f"{rev.story}\n\n{rev.instruction}\n\n"
    with pytest.raises(ElensError, match="only 3 usable stories of at most 500"):
        data.task_prompts("hub", n_stories=4, max_story_chars=500)


# ---- output formats ------------------------------------------------------------------------


def test_paper_format_prompts(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("nothing to download"))
    df = data.format_prompts("hub")
    check_source(df, "hub")
    assert len(data.FORMAT_TOPICS) == 180 == len(set(data.FORMAT_TOPICS))
    assert len(df) == 540 and Counter(df["label"]) == {"chat": 180, "poem": 180, "science": 180}
    assert df.iloc[0].prompt == "Simulate a chat log about the ocean"
    assert (df.prompt == df.instruction + " " + df.topic).all()
    assert set(df.instruction) == set(data.PAPER_FORMAT_INSTRUCTIONS.values())
    small = data.format_prompts("hub", n_topics=10, formats=["poem"])
    assert list(small.topic) == list(data.FORMAT_TOPICS[:10]) and set(small.label) == {"poem"}
    with pytest.raises(ElensError, match="formats"):
        data.format_prompts("hub", formats=["essay"])


def test_synthetic_format_prompts():
    df = data.format_prompts("synthetic", seed=2)
    check_source(df, "synthetic")
    topics = StoryWorld(2).topics("test")
    assert len(df) == 3 * len(topics) == 540
    assert list(df[df.label == "poem"].topic) == [t for t, _ in topics]
    assert set(df.topic_kind) == {"object", "animal", "place", "person"}
    assert (df.apply(lambda r: r.prompt.startswith(r.instruction + " ") and r.topic in r.prompt, axis=1)).all()
    assert len(data.format_prompts("synthetic", n_topics=7)) == 21


# ---- multiple choice -----------------------------------------------------------------------


def test_hub_mmlu_formatting(hub):
    df = data.multiple_choice("hub")
    assert hub.calls == [(data.MMLU, "all", "test")]
    check_source(df, "hub")
    assert len(df) == 12 and list(df.id) == [f"mmlu-test-{i}" for i in range(12)]
    row = df.iloc[2]
    assert row.answer == "C" and row.answer_index == 2 and row.answer_text == "6" and row.options == ["2", "4", "6", "none"]
    assert row.prompt == (
        "The following is a multiple choice question about elementary mathematics. "
        "Reply only with the correct option.\n\nQuestion: What is 2 + 2?\n\n"
        "Choices:\nA. 2\nB. 4\nC. 6\nD. none\n\nAnswer:"
    )
    assert df.prompt.str.endswith("Answer:").all()
    assert list(df.answer) == [LETTERS[i] for i in [1, 0, 2, 3, 1, 1, 0, 2, 3, 3, 0, 1]]
    base = data.multiple_choice("hub", style="base")
    assert base.prompt[0].startswith("Subject: elementary mathematics.\n\nQuestion: What is 0 + 0?")


def test_hub_mmlu_subjects_and_sampling(hub):
    rel = data.multiple_choice("hub", subjects=["world_religions"])
    assert list(rel.id) == [f"mmlu-test-{i}" for i in range(8, 12)]
    s = data.multiple_choice("hub", n=5, seed=42)
    full = datasets.Dataset.from_dict(FakeHub()(data.MMLU, "all", split="test").to_dict()).to_pandas()
    assert list(s.id) == [f"mmlu-test-{i}" for i in full.sample(5, random_state=42).index]
    pd.testing.assert_frame_equal(s, data.multiple_choice("hub", n=5, seed=42))
    assert list(s.id) != list(data.multiple_choice("hub", n=5, seed=1).id)
    with pytest.raises(ElensError, match="Unknown MMLU subject"):
        data.multiple_choice("hub", subjects=["astrology"])
    with pytest.raises(ElensError, match="Only 4"):
        data.multiple_choice("hub", n=5, subjects="world_religions")
    with pytest.raises(ElensError, match="style"):
        data.multiple_choice("hub", style="thinking")


def test_synthetic_multiple_choice():
    df = data.multiple_choice("synthetic", n=40, seed=1)
    check_source(df, "synthetic")
    assert len(df) == 40 and Counter(df.answer) == {letter: 10 for letter in LETTERS}
    assert df.prompt.str.endswith("answer :").all()
    assert df.apply(lambda r: f"\n{r.answer} : {r.answer_text}\n" in r.prompt and r.options[r.answer_index] == r.answer_text, axis=1).all()
    assert set(df.subject) <= {"who", "friend", "what", "colour", "where", "animal"}
    pd.testing.assert_frame_equal(df, data.multiple_choice("synthetic", n=40, seed=1))
    where = data.multiple_choice("synthetic", n=8, subjects=["where"], seed=1)
    assert set(where.subject) == {"where"} and Counter(where.answer) == {letter: 2 for letter in LETTERS}
    assert len(data.multiple_choice("synthetic")) == data.SYNTHETIC_MC_DEFAULT
    with pytest.raises(ElensError, match="question kind"):
        data.multiple_choice("synthetic", n=4, subjects=["abstract_algebra"])


# ---- the Hub unavailable -------------------------------------------------------------------


def test_hub_failure_is_an_error_never_a_fallback(monkeypatch):
    def unreachable(*a, **k):
        raise ConnectionError("Couldn't reach the Hub")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    for call, name in [
        (lambda: data.task_prompts("hub", 2), data.TINYSTORIES),
        (lambda: data.multiple_choice("hub", 2), data.MMLU),
    ]:
        with pytest.raises(ElensError, match="source='synthetic'") as err:
            call()
        assert name in str(err.value) and isinstance(err.value.__cause__, ConnectionError)


def test_wrong_columns_are_reported(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_dict({"story": ["x"]}))
    with pytest.raises(ElensError, match="missing \\['text'\\]"):
        data.task_prompts("hub", 1)


def test_offline_hub_fails_fast_with_the_error(tmp_path):
    """The real load_dataset, offline, with an empty datasets cache: an ElensError, quickly."""
    assert os.environ.get("HF_HUB_OFFLINE") == "1" and datasets.config.HF_HUB_OFFLINE  # set by conftest
    results: dict[str, BaseException | None] = {}

    def run():
        for name, call in [
            (data.TINYSTORIES, lambda: data.task_prompts("hub", 2, cache_dir=str(tmp_path))),
            (data.MMLU, lambda: data.multiple_choice("hub", 4, cache_dir=str(tmp_path))),
        ]:
            try:
                call()
                results[name] = None
            except BaseException as err:  # noqa: BLE001 - reported below
                results[name] = err

    start = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "load_dataset hung offline for 60 s"
    assert time.monotonic() - start < 30
    for name, err in results.items():
        assert isinstance(err, ElensError), f"{name}: {err!r}"
        assert name in str(err) and "HF_HUB_OFFLINE is set" in str(err) and "source='synthetic'" in str(err)
    assert len(results) == 2
