"""Natural-English prompts for real models: the story world's second rendering, the per-model
choice of rendering, per-model frames and chat templates."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import pytest

from elens_utils.core.errors import ElensError
from elens_utils.data import prompting
from elens_utils.data import prompts as data
from elens_utils.data.synthetic import (
    LETTERS,
    NAMES,
    PUNCTUATION,
    REVERSALS,
    STYLES,
    Document,
    FormatPrompt,
    FormatText,
    MCQuestion,
    Story,
    StoryWorld,
    TaskPrompt,
    build_tokenizer,
    natural,
    render,
    vocabulary,
    words,
)

REAL = "real/smollm2-135m-instruct"
ZOO = "zoo/llama-8L"
# A small chat template in the usual shape (role markers, a generation prompt, BOS first).
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
NO_SYSTEM_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}"
    "{% endif %}{{ m['content'] }}{% endfor %}"
)


@pytest.fixture(scope="module")
def world() -> StoryWorld:
    return StoryWorld(0)


@pytest.fixture(scope="module")
def zoo_texts(world) -> list[str]:
    """Every kind of text the world writes, in the zoo rendering."""
    texts = [s.text for s in world.stories(100, "test")]
    for reversal in REVERSALS:
        texts += [p.prompt for p in world.task_prompts(10, "test", reversal)]
        texts += [p.text for p in world.task_prompts(5, "validation", reversal) if p.text]
    texts += [p.prompt for p in world.format_prompts("test")]
    texts += [t.text for t in world.format_texts(60)]
    texts += [q.text for q in world.multiple_choice(100, "test")]
    texts += [q.text for q in world.multiple_choice(40, "validation", in_story_distractors=True)]
    texts += [d.text for d in world.training_corpus(n_documents=200)]
    return texts


def natural_tokens(text: str) -> list[str]:
    """Words, punctuation and line breaks of a natural-English text (independent of natural())."""
    return re.findall(r"\n|[.,!?:]|[^\s.,!?:]+", text)


def zoo_frame_keys(df: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in df.columns if c not in ("prompt", "instruction", "story", "question", "options", "answer_text")]
    return df[keep]


# ---- the rendering ----------------------------------------------------------------------------


def test_natural_examples():
    assert natural("once upon a time , tom had a red ball .") == "Once upon a time, Tom had a red ball."
    assert natural("tom met anna . i like the cat !") == "Tom met Anna. I like the cat!"
    mc = "read the story and answer the question .\nstory : ben saw a dog .\nquestion : who saw a dog ?\nA : ben\nB : ball\nanswer :"
    assert natural(mc) == (
        "Read the story and answer the question.\nStory: Ben saw a dog.\nQuestion: Who saw a dog?\n"
        "A: Ben\nB: ball\nAnswer:"
    )
    assert natural("answer : C") == "Answer: C"
    assert natural("oh the red ball , oh the red ball .\n\ni sing of tom ,") == "Oh the red ball, oh the red ball.\n\nI sing of Tom,"
    assert natural("result : 3 of 12 tests were good .") == "Result: 3 of 12 tests were good."
    assert natural("tom : hey ben , look !") == "Tom: Hey Ben, look!"
    # Scrambled text: punctuation at the start of a line joins the next word; capitals after an end.
    assert natural(", . ball tom had a\nhow many words are in the story ?\n") == ",.Ball Tom had a\nHow many words are in the story?\n"
    assert natural("ball", capitalise_first=False) == "ball" and natural("ball") == "Ball"
    assert natural("tom", capitalise_first=False) == "Tom"
    assert natural("") == "" and natural("\n") == "\n"


def test_natural_pinned_story_and_question(world):
    story = world.stories(1, "test")[0]
    assert render(story).text == (
        "One day, Tom found a white boat. Tom ran to the river with the boat. "
        "A little fish came to the river. Tom felt sad, then happy again."
    )
    q = render(world.multiple_choice(4, "test")[0], "natural")
    assert q.prompt == (
        "Read the story and answer the question.\n"
        "Story: One day, Tom found a white boat. Tom ran to the river with the boat. "
        "A little fish came to the river. Tom felt sad, then happy again.\n"
        "Question: What did Tom have?\nA: cup\nB: bell\nC: boat\nD: train\nAnswer:"
    )
    assert q.text == q.prompt + " C" and q.answer_letter == "C" and q.answer == "boat"


def test_round_trip_same_words_same_order(zoo_texts):
    for zoo in zoo_texts:
        nat = natural(zoo)
        assert [w.lower() for w in natural_tokens(nat)] == [w.lower() for w in words(zoo)], zoo
        assert nat.count("\n") == zoo.count("\n")
        for line in nat.split("\n"):
            assert line == line.strip() and "  " not in line
            assert not any(f" {p}" in line for p in PUNCTUATION), line  # punctuation attached
        # One word of the world per whitespace-separated word, punctuation excluded.
        n_words = sum(w not in PUNCTUATION and w != "\n" for w in words(zoo))
        assert len(nat.split()) == n_words


def test_capitals(zoo_texts):
    names = {n.capitalize() for n in NAMES}
    for zoo in zoo_texts:
        nat = natural(zoo)
        toks = natural_tokens(nat)
        for prev, tok in zip(["\n", *toks], toks):
            if tok.lower() in NAMES or tok.lower() == "i":
                assert tok in names | {"I"}, (tok, nat)
            elif prev in ("\n", ".", "!", "?") and tok[0].isalpha():
                assert tok[0].isupper(), (tok, nat)
        for line in nat.split("\n"):
            if re.fullmatch(r"[A-D]: .*", line):  # option text keeps its case
                option = line[3:]
                assert option == (option.capitalize() if option.lower() in NAMES else option.lower())


def test_natural_is_idempotent_and_deterministic(zoo_texts):
    for zoo in zoo_texts[::7]:
        nat = natural(zoo)
        assert natural(nat) == nat == natural(zoo)


def test_names_are_never_common_words():
    """natural() capitalises a name wherever it stands: no name may be an ordinary word too."""
    from elens_utils.data import story_lexicon, story_world

    template_words = {w for group in story_world._TEMPLATE_GROUPS for t in group for w in story_world._SLOT.sub(" ", t).split()}
    other_lists = {*story_lexicon.OBJECTS, *story_lexicon.COLOURS, *story_lexicon.PLACES, *story_lexicon.ANIMALS}
    assert template_words and not set(NAMES) & (template_words | other_lists)
    assert set(NAMES) <= set(vocabulary()) and "i" in template_words  # "i": the pronoun, "I"


def test_render_items_keep_keys(world):
    story = world.stories(3, "test")[2]
    nat = render(story)
    assert isinstance(nat, Story) and nat.text == " ".join(nat.sentences)
    assert (nat.id, nat.split, nat.protagonist, nat.friend, nat.obj, nat.colour, nat.place, nat.animal) == (
        story.id, story.split, story.protagonist, story.friend, story.obj, story.colour, story.place, story.animal,
    )  # fmt: skip
    for reversal in REVERSALS:
        for zp in world.prompts_for_story(story, reversal):
            np_ = render(zp, "natural")
            assert isinstance(np_, TaskPrompt)
            assert (np_.story_id, np_.task, np_.phrasing, np_.variant, np_.reversal, np_.answer) == (
                zp.story_id, zp.task, zp.phrasing, zp.variant, zp.reversal, zp.answer,
            )  # fmt: skip
            if zp.prompt.startswith(zp.instruction):
                assert np_.prompt == f"{np_.instruction}\n{np_.story}\n"
            else:
                assert np_.prompt == f"{np_.story}\n{np_.instruction}\n"
            if zp.task == "counting":  # the count is the count of the natural story's words
                assert len(np_.story.split()) == int(zp.answer)
            assert (np_.text is None) == (zp.text is None)
    fp = world.format_prompts("test")[0]
    assert isinstance(render(fp), FormatPrompt) and render(fp).topic == fp.topic
    ft = world.format_texts(3)[2]
    nft = render(ft)
    assert isinstance(nft, FormatText) and nft.text == f"{nft.prompt}\n{nft.body}" and nft.topic == ft.topic
    for zq in world.multiple_choice(40, "test", in_story_distractors=True):
        nq = render(zq)
        assert isinstance(nq, MCQuestion)
        assert (nq.id, nq.story_id, nq.kind, nq.answer_index, nq.answer_letter) == (
            zq.id, zq.story_id, zq.kind, zq.answer_index, zq.answer_letter,
        )  # fmt: skip
        assert nq.options[nq.answer_index] == nq.answer and nq.answer.lower() == zq.answer
        assert nq.prompt.endswith("\nAnswer:") and nq.text == f"{nq.prompt} {nq.answer_letter}"
        for letter, option in zip(LETTERS, nq.options):
            assert f"\n{letter}: {option}\n" in nq.prompt
        assert f"\nQuestion: {nq.question}\n" in nq.prompt
    doc = world.training_corpus(n_documents=1)[0]
    assert isinstance(render(doc), Document) and render(doc).text == natural(doc.text)


def test_render_zoo_is_identity_and_errors(world):
    story = world.stories(1, "test")[0]
    assert render(story, "zoo") is story
    assert STYLES == ("zoo", "natural")
    with pytest.raises(ElensError, match="'zoo'.*'natural'"):
        render(story, "english")
    with pytest.raises(ElensError, match="natural\\(\\) for a string"):
        render("once upon a time")  # type: ignore[arg-type]
    with pytest.raises(ElensError, match="string"):
        natural(3)  # type: ignore[arg-type]


def test_world_methods_take_a_style(world):
    assert world.stories(5, "test", style="zoo") == world.stories(5, "test")
    assert world.stories(5, "test", style="natural") == [render(s) for s in world.stories(5, "test")]
    for reversal in REVERSALS:
        zoo = world.task_prompts(3, "test", reversal)
        assert world.task_prompts(3, "test", reversal, style="zoo") == zoo
        assert world.task_prompts(3, "test", reversal, style="natural") == [render(p) for p in zoo]
    assert world.format_prompts("test", style="natural") == [render(p) for p in world.format_prompts("test")]
    zoo_mc = world.multiple_choice(12, "test", True)
    assert world.multiple_choice(12, "test", True, style="natural") == [render(q) for q in zoo_mc]
    for call in (
        lambda: world.stories(1, style="auto"),
        lambda: world.task_prompts(1, style="English"),
        lambda: world.format_prompts(style=""),
        lambda: world.multiple_choice(4, style="Natural"),
    ):
        with pytest.raises(ElensError, match="Unknown style"):
            call()


# ---- the choice per model ---------------------------------------------------------------------


def test_prompt_style_by_name(tmp_path):
    for name in ("zoo/llama-8L", "zoo/gpt2-2L", "untrained/qwen3-4L", "tiny/llama-4L", "tiny/gpt2"):
        assert prompting.prompt_style(name) == "zoo"
        assert data.prompt_style(name) == "zoo"
    for name in (REAL, "real/gemma3-270m", "gpt2", "Qwen/Qwen3-0.6B", str(tmp_path / "m.gguf"),
                 "/models/x.GGUF", "google/gemma-2-2b-it", "zoo-like/llama", "zoology"):  # fmt: skip
        assert prompting.prompt_style(name) == "natural", name


def test_prompt_style_of_directories(tmp_path):
    from elens_utils.models.tiny import build_untrained_model
    from elens_utils.zoo.training import METADATA_FILE

    assert METADATA_FILE in prompting.ZOO_MARKERS
    shipped = Path(__file__).resolve().parents[2] / "zoo" / "llama-2L"
    if (shipped / METADATA_FILE).exists():
        assert prompting.prompt_style(str(shipped)) == "zoo"
        assert prompting.prompt_style(shipped) == "zoo"  # a Path, whose .name is not the model's name
    zoo_copy = tmp_path / "my-zoo-model"
    zoo_copy.mkdir()
    (zoo_copy / METADATA_FILE).write_text("{}\n")
    assert prompting.prompt_style(zoo_copy) == "zoo"
    untrained = build_untrained_model("gpt2", tmp_path / "untrained", n_layers=1)
    assert prompting.prompt_style(str(untrained)) == "zoo"
    plain = tmp_path / "converted-gguf"
    plain.mkdir()
    (plain / "config.json").write_text("{}\n")
    assert prompting.prompt_style(plain) == "natural"
    assert prompting.prompt_style(tmp_path / "missing") == "natural"


def test_prompt_style_of_loaded_models_and_bad_input():
    assert prompting.prompt_style(SimpleNamespace(name=ZOO)) == "zoo"
    assert prompting.prompt_style(SimpleNamespace(name=REAL)) == "natural"
    for bad in (None, "", "   ", 3, SimpleNamespace()):
        with pytest.raises(ElensError, match="model name"):
            prompting.prompt_style(bad)


def test_resolve_style():
    assert prompting.PROMPT_STYLES == data.PROMPT_STYLES == ("zoo", "natural", "auto")
    assert prompting.resolve_style("zoo") == "zoo" and prompting.resolve_style("natural", ZOO) == "natural"
    assert prompting.resolve_style("auto", ZOO) == "zoo" and prompting.resolve_style("auto", REAL) == "natural"
    with pytest.raises(ElensError, match="pass model=NAME"):
        prompting.resolve_style("auto")
    with pytest.raises(ElensError, match="Unknown prompt style 'plain'"):
        prompting.resolve_style("plain", ZOO)


# ---- chat templates ---------------------------------------------------------------------------


@pytest.fixture
def chat_tokenizer():
    tok = build_tokenizer()
    tok.chat_template = TEMPLATE
    return tok


def test_chat_prompt(chat_tokenizer):
    out = data.chat_prompt(chat_tokenizer, "Write a poem about the red ball.")
    assert out == "<bos><|user|>Write a poem about the red ball.<|end|>\n<|assistant|>"
    with_system = prompting.chat_prompt(chat_tokenizer, "Hi.", system="Be brief.")
    assert with_system == "<bos><|system|>Be brief.<|end|>\n<|user|>Hi.<|end|>\n<|assistant|>"


def test_chat_prompt_errors(chat_tokenizer):
    plain = build_tokenizer()
    assert plain.chat_template is None
    with pytest.raises(ElensError, match="no chat template.*chat_template=False"):
        prompting.chat_prompt(plain, "Hi.")
    with pytest.raises(ElensError, match="string prompt"):
        prompting.chat_prompt(chat_tokenizer, ["Hi."])  # type: ignore[arg-type]
    with pytest.raises(ElensError, match="transformers tokenizer"):
        prompting.chat_prompt(object(), "Hi.")
    strict = build_tokenizer()
    strict.chat_template = NO_SYSTEM_TEMPLATE
    assert prompting.chat_prompt(strict, "Hi.") == "Hi."
    with pytest.raises(ElensError, match="no system role.*system=None"):
        prompting.chat_prompt(strict, "Hi.", system="Be brief.")


# ---- the data functions -----------------------------------------------------------------------


def test_task_prompts_styles(world):
    zoo = data.task_prompts("synthetic", 10)
    assert zoo.attrs["prompt_style"] == "zoo"
    for explicit in ("zoo", "auto"):
        same = data.task_prompts("synthetic", 10, prompt_style=explicit, model=ZOO)
        pd.testing.assert_frame_equal(same, zoo)
    nat = data.task_prompts("synthetic", 10, prompt_style="natural")
    assert nat.attrs == {**zoo.attrs, "prompt_style": "natural"}
    pd.testing.assert_frame_equal(zoo_frame_keys(nat), zoo_frame_keys(zoo))  # ids, labels, answers
    pd.testing.assert_frame_equal(data.task_prompts("synthetic", 10, prompt_style="auto", model=REAL), nat)
    items = world.task_prompts(10, "test", "instruction_first", style="natural")
    assert list(nat["prompt"]) == [p.prompt for p in items]
    assert list(nat["story"]) == [p.story for p in items] and list(nat["instruction"]) == [p.instruction for p in items]
    assert list(nat["prompt"]) == [natural(p) for p in zoo["prompt"]]
    counting = nat[nat.label == "counting"]
    assert [len(s.split()) for s in counting["story"]] == [int(a) for a in counting["answer"]]
    assert nat["prompt"].str.contains(" [.,?!:]", regex=True).sum() == 0
    rev = data.task_prompts("synthetic", 2, reversal="sentences", prompt_style="natural")
    assert list(rev["prompt"]) == [p.prompt for p in world.task_prompts(2, "test", "sentences", style="natural")]


def test_format_prompts_styles():
    zoo = data.format_prompts("synthetic", n_topics=30)
    nat = data.format_prompts("synthetic", n_topics=30, prompt_style="natural")
    assert zoo.attrs["prompt_style"] == "zoo" and nat.attrs["prompt_style"] == "natural"
    pd.testing.assert_frame_equal(zoo_frame_keys(nat), zoo_frame_keys(zoo))
    assert set(nat["instruction"]) == {"Simulate a chat log about", "Write a poem about", "Write a scientific piece about"}
    for row in nat.itertuples():
        assert row.prompt.startswith(row.instruction + " ") and row.prompt.endswith(".")
        assert row.prompt.lower() == f"{row.instruction} {row.topic}.".lower()
    person = nat[nat.topic_kind == "person"]
    assert all(p.endswith(f" {t.capitalize()}.") for p, t in zip(person["prompt"], person["topic"]))


def test_format_prompts_hub_styles():
    hub = data.format_prompts("hub", n_topics=5)
    assert hub.attrs["prompt_style"] == "natural"
    for style, model in (("natural", None), ("auto", ZOO), ("auto", REAL)):
        pd.testing.assert_frame_equal(data.format_prompts("hub", n_topics=5, prompt_style=style, model=model), hub)
    with pytest.raises(ElensError, match="source='hub'"):
        data.format_prompts("hub", n_topics=5, prompt_style="zoo")


def test_multiple_choice_styles(world):
    zoo = data.multiple_choice("synthetic", 40)
    nat = data.multiple_choice("synthetic", 40, prompt_style="natural")
    assert zoo.attrs["prompt_style"] == "zoo" and nat.attrs["prompt_style"] == "natural"
    pd.testing.assert_frame_equal(zoo_frame_keys(nat), zoo_frame_keys(zoo))  # letters, ids, kinds
    items = world.multiple_choice(40, "test", style="natural")
    assert list(nat["prompt"]) == [q.prompt for q in items]
    assert list(nat["options"]) == [list(q.options) for q in items]
    for row in nat.itertuples():
        assert row.prompt.endswith("\nAnswer:")
        assert row.options[row.answer_index] == row.answer_text and row.answer == LETTERS[row.answer_index]
        assert [f"{letter}: {opt}" for letter, opt in zip(LETTERS, row.options)] == row.prompt.split("\n")[3:7]
    kinds = data.multiple_choice("synthetic", 8, subjects=["where"], prompt_style="auto", model=REAL)
    zoo_kinds = data.multiple_choice("synthetic", 8, subjects=["where"])
    assert list(kinds["prompt"]) == [natural(p) for p in zoo_kinds["prompt"]]
    assert list(kinds["answer"]) == list(zoo_kinds["answer"])
    with pytest.raises(ElensError, match="prompt_style='natural'"):
        data.multiple_choice("synthetic", 4, style="natural")  # style is the MMLU template
    with pytest.raises(ElensError, match="pass model=NAME"):
        data.multiple_choice("synthetic", 4, prompt_style="auto")
    with pytest.raises(ElensError, match="Unknown prompt style"):
        data.task_prompts("synthetic", 1, prompt_style="English")


# ---- per-model frames -------------------------------------------------------------------------


def test_for_model_lines_up_rows():
    frame = data.task_prompts("synthetic", 4)
    by_model = {m: data.for_model(frame, m) for m in (ZOO, "untrained/llama-4L", REAL, "real/gemma3-270m")}
    pd.testing.assert_frame_equal(by_model[ZOO], frame, check_like=False)
    assert by_model[ZOO].attrs["model"] == ZOO and by_model[ZOO].attrs["chat_template"] is False
    expected = data.task_prompts("synthetic", 4, prompt_style="natural")
    pd.testing.assert_frame_equal(by_model[REAL], expected)
    assert by_model[REAL].attrs["prompt_style"] == "natural" and by_model[REAL].attrs["model"] == REAL
    for m, df in by_model.items():
        pd.testing.assert_frame_equal(zoo_frame_keys(df), zoo_frame_keys(frame))
        assert data.prompts_for(frame, m) == df["prompt"].tolist()
    assert frame.attrs["prompt_style"] == "zoo" and frame["prompt"].iloc[0][0].islower()  # untouched
    # A row subset keeps its rows and index; a frame that lost its attrs still works.
    poems = data.format_prompts("synthetic", n_topics=6)
    subset = poems[poems.label == "poem"]
    nat = data.for_model(subset, REAL)
    assert list(nat.index) == list(subset.index) and list(nat["topic"]) == list(subset["topic"])
    bare = subset.copy()
    bare.attrs = {}
    pd.testing.assert_frame_equal(data.for_model(bare, REAL), nat)
    # Already natural: unchanged for a natural model, refused for a zoo model.
    assert data.prompts_for(nat, "real/gemma3-270m") == nat["prompt"].tolist()
    with pytest.raises(ElensError, match="reads the zoo rendering"):
        data.for_model(nat, ZOO)


def test_for_model_hub_and_bad_frames():
    hub = data.format_prompts("hub", n_topics=3)
    for m in (ZOO, REAL):
        assert data.prompts_for(hub, m) == hub["prompt"].tolist()
    with pytest.raises(ElensError, match="DataFrame from data"):
        data.for_model(pd.DataFrame({"text": ["x"]}), REAL)
    with pytest.raises(ElensError, match="no source"):
        data.for_model(pd.DataFrame({"prompt": ["x"]}), REAL)
    with pytest.raises(ElensError, match="model name"):
        data.for_model(hub, None)


def test_for_model_chat_template(chat_tokenizer):
    frame = data.multiple_choice("synthetic", 4)
    lm = SimpleNamespace(name=REAL, tokenizer=chat_tokenizer)
    wrapped = data.for_model(frame, lm, chat_template=True)
    plain = data.prompts_for(frame, REAL)
    assert wrapped["prompt"].tolist() == [f"<bos><|user|>{p}<|end|>\n<|assistant|>" for p in plain]
    assert wrapped.attrs["chat_template"] is True and wrapped.attrs["model"] == REAL
    assert data.prompts_for(frame, REAL, chat_template=True, tokenizer=chat_tokenizer) == wrapped["prompt"].tolist()
    with_system = data.prompts_for(frame, lm, chat_template=True, system="Answer with a letter.")
    assert all(p.startswith("<bos><|system|>Answer with a letter.<|end|>\n<|user|>Read the story") for p in with_system)
    pd.testing.assert_frame_equal(zoo_frame_keys(wrapped), zoo_frame_keys(frame))
    with pytest.raises(ElensError, match="tokenizer=lm.tokenizer"):
        data.for_model(frame, REAL, chat_template=True)
    with pytest.raises(ElensError, match="no chat template"):
        data.for_model(frame, SimpleNamespace(name=ZOO, tokenizer=build_tokenizer()), chat_template=True)
    with pytest.raises(ElensError, match="chat_template=True as well"):
        data.for_model(frame, lm, system="Be brief.")
