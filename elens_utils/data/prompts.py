"""The chapters' datasets: the paper's data from the Hugging Face Hub, or offline stand-ins.

Three experiments need data: task types, output formats and multiple choice. Each function here returns a
:class:`pandas.DataFrame` with one row per prompt, from one of two sources, chosen explicitly:

* ``source="hub"``: the paper's data. Task prompts from the TinyStories validation split
  (``roneneldan/TinyStories``), multiple choice from MMLU's test split (``cais/mmlu``, config
  ``all``), both through :func:`datasets.load_dataset`; the output-format prompts need no
  download (the topic list, :data:`FORMAT_TOPICS`, is part of this module).
* ``source="synthetic"``: the held-out ``test`` split of the seeded story world
  (:class:`~elens_utils.data.synthetic.StoryWorld`), the same experiments in the world's closed
  vocabulary, for the models of the project's zoo and for machines without the Hub.

A source never switches silently: when the Hub cannot be reached (no network, or
``HF_HUB_OFFLINE=1`` and the dataset not in the local cache), the call raises an
:class:`~elens_utils.core.errors.ElensError` that names the dataset and says to use
``source="synthetic"``. Every frame carries its source twice: a ``source`` column and
``frame.attrs["source"]`` (plus ``attrs["dataset"]``, what it was built from).

Task prompts (:func:`task_prompts`)
-----------------------------------
Per story, 3 task families (``label``: continuation, counting, semantic) x 2 phrasings x 4
variants (base, reversed, scrambled, reversed_scrambled): 24 prompts, 2400 for 100 stories.
Rows are ordered by story, task, phrasing, variant.

* Hub: the paper's instructions (:data:`PAPER_TASK_INSTRUCTIONS`) and layout, story and
  instruction separated by blank lines: ``"{story}\\n\\n{instruction}\\n\\n"``. The stories are the
  first ``n_stories`` non-empty texts of the validation split, in dataset order (as the paper's
  code took them), optionally skipping those longer than ``max_story_chars``.
* ``reversal``: what "reversed" means. ``"instruction_first"`` (default; what the paper's code
  did, its ``_rev`` prompts) puts the instruction before the story; ``"sentences"`` reverses the
  order of the story's sentences and keeps the instruction after it.
* Scrambling shuffles the story's whitespace-separated words with a generator seeded by
  ``(seed, story, task, phrasing, variant)``. The scrambled text is used by that prompt only:
  unlike the paper's code, it never replaces the story that later prompts see.
* ``answer``: the counting answer (the story's number of whitespace-separated words) for the
  Hub; continuation and semantic prompts have none (None). The synthetic world knows all
  answers it can define (see :meth:`StoryWorld.task_prompt`).
* Synthetic: :meth:`StoryWorld.task_prompts` on the test split, wrapped (its instructions and
  layout are its own, in the world's closed vocabulary, so the templates cannot be shared;
  the task / phrasing / variant / reversal structure is the same).

Output formats (:func:`format_prompts`)
---------------------------------------
The three instructions of the paper (``label``: chat, poem, science) x topics, rows ordered by
format then topic. Hub/paper: ``"Simulate a chat log about the ocean"`` (the paper's
instructions, no final period, as in its code) over :data:`FORMAT_TOPICS`, 180 general topics
written for this project (the paper's list is not published with the paper). Synthetic: the
world's 180 test topics, in its own phrasing.

Multiple choice (:func:`multiple_choice`)
-----------------------------------------
Columns ``prompt`` (ending with ``"Answer:"`` for MMLU and ``"answer :"`` for the story world,
so that the next token is the answer letter), ``answer`` (the letter), ``answer_index``,
``answer_text``, ``options`` (list of str), ``subject``, ``question``, ``id``, ``source``.
MMLU prompts follow one fixed template per ``style`` (:data:`MMLU_STYLES`: the paper's
"instruct", "base" and "humble" prompts, spelling corrected; its fourth, "thinking", asks for an explanation first
and so does not end at the letter); the subject is written with spaces (``high school
biology``), and the prompt ends with ``"Answer:"`` without the paper's trailing space, so that a
BPE tokenizer's next token is ``" A"``. ``n`` questions are drawn with
``DataFrame.sample(n, random_state=seed)`` (the paper's code used 42). Synthetic: the world's
reading-comprehension questions; ``subject`` is the question's kind (who, friend, what,
colour, where, animal). ``source="facts"`` (multiple choice only): the project's own 384
questions of common-sense facts and story inferences (:mod:`elens_utils.data.fact_questions`, MIT),
written so that small real models answer above chance and below ceiling; the frame adds
``kind``, ``context`` and ``cloze_prompt`` (the question without its options, for cloze
scoring: ``interventions.mc_accuracy(..., scoring="cloze")``). It is English for every model.

Prompt styles: one set of items, rendered per model
---------------------------------------------------
The story world's text comes in two renderings (:mod:`elens_utils.data.synthetic`): the zoo's
lower-case word-level form, which the zoo models read, and natural English for real models.
``prompt_style`` chooses it for ``source="synthetic"``: ``"zoo"`` (the default when None),
``"natural"``, or ``"auto"`` (:func:`prompt_style` of ``model=``: zoo for ``zoo/``,
``untrained/``, ``tiny/`` names and zoo directories, natural for everything else). The Hub's
data are English already and are the same in every style (``prompt_style="zoo"`` is refused for
them). Only the text a model reads changes (``prompt``, ``instruction``, ``story``,
``question``, ``options``, ``answer_text``); the rows, their order and their keys (``id``,
``story_id``, ``label``, ``phrasing``, ``variant``, ``topic``, ``subject``, ``answer``,
``answer_index``) are the same in both renderings, and the zoo rendering is what these
functions returned before styles existed, byte for byte. ``frame.attrs["prompt_style"]`` says
which rendering a frame holds.

A chapter that profiles several models builds its data once, in the zoo rendering, and asks for
each model's version: :func:`for_model` (the frame, text columns rendered for that model) or
:func:`prompts_for` (just its prompts), which can also wrap each prompt in the model's chat
template (``chat_template=True``; off by default, as in the paper's code, which fed raw
strings). Results of the models then line up row by row with the one frame.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.data.prompting import PROMPT_STYLES, chat_prompt, model_name, prompt_style, resolve_style
from elens_utils.data.synthetic import FORMATS, LETTERS, REVERSALS, TASK_FAMILIES, VARIANTS, StoryWorld, natural

__all__ = [
    "SOURCES",
    "MC_SOURCES",
    "FACTS",
    "TINYSTORIES",
    "MMLU",
    "PAPER_TASK_INSTRUCTIONS",
    "PAPER_FORMAT_INSTRUCTIONS",
    "FORMAT_TOPICS",
    "MMLU_STYLES",
    "SYNTHETIC_MC_DEFAULT",
    "task_prompts",
    "format_prompts",
    "multiple_choice",
    "paper_task_prompt",
    "mmlu_prompt",
    "PROMPT_STYLES",
    "prompt_style",
    "chat_prompt",
    "for_model",
    "prompts_for",
]

SOURCES: tuple[str, ...] = ("hub", "synthetic")
#: Sources of :func:`multiple_choice`: the two above, and the project's own question set.
MC_SOURCES: tuple[str, ...] = (*SOURCES, "facts")
#: What ``source="facts"`` is built from (:mod:`elens_utils.data.fact_questions`).
FACTS = "elens_utils.data.fact_bank"
#: Hub dataset of the task-type experiment (validation split).
TINYSTORIES = "roneneldan/TinyStories"
#: Hub dataset of the multiple-choice experiments (config ``all``, test split).
MMLU = "cais/mmlu"
#: Questions :func:`multiple_choice` returns from the story world when ``n`` is not given.
SYNTHETIC_MC_DEFAULT = 1000

#: The paper's task instructions: family -> (phrasing 0, phrasing 1).
PAPER_TASK_INSTRUCTIONS: dict[str, tuple[str, str]] = {
    "continuation": ("How can the story be continued?", "Which could be a continuation of the story?"),
    "counting": ("How many words are in the story?", "Count the number of words in the story."),
    "semantic": ("What is the main idea of the story?", "Who is the subject of the story?"),
}

#: The paper's output-format instructions; a prompt is ``f"{instruction} {topic}"``.
PAPER_FORMAT_INSTRUCTIONS: dict[str, str] = {
    "chat": "Simulate a chat log about",
    "poem": "Write a poem about",
    "science": "Write a scientific piece about",
}

#: 180 general topics for the output-format prompts, written for this project (15 themes x 12).
FORMAT_TOPICS: tuple[str, ...] = (
    # nature
    "the ocean", "volcanoes", "rainforests", "deserts", "glaciers", "thunderstorms",
    "coral reefs", "mountains", "rivers", "autumn leaves", "waterfalls", "caves",
    # space
    "the moon", "black holes", "the solar system", "comets", "the Milky Way", "Mars",
    "the sun", "space exploration", "astronauts", "satellites", "the night sky", "exoplanets",
    # animals
    "elephants", "honeybees", "octopuses", "wolves", "whales", "owls",
    "butterflies", "penguins", "ants", "horses", "dolphins", "tigers",
    # plants and food
    "sunflowers", "oak trees", "mushrooms", "bread", "coffee", "chocolate",
    "tea", "rice", "apples", "cheese", "spices", "honey",
    # science
    "gravity", "electricity", "magnetism", "DNA", "photosynthesis", "the periodic table",
    "light", "sound waves", "evolution", "atoms", "friction", "the immune system",
    # technology
    "the internet", "smartphones", "artificial intelligence", "robots", "computers",
    "the printing press", "electric cars", "video games", "social media", "3D printing",
    "the telephone", "solar panels",
    # the body and health
    "the human heart", "the brain", "sleep", "dreams", "exercise", "memory",
    "vaccines", "laughter", "breathing", "vision", "nutrition", "stress",
    # society
    "democracy", "money", "cities", "friendship", "families", "education",
    "libraries", "markets", "language", "the law", "elections", "newspapers",
    # the arts
    "music", "painting", "theatre", "dance", "poetry", "photography",
    "cinema", "sculpture", "jazz", "opera", "architecture", "comics",
    # history
    "ancient Egypt", "the Roman Empire", "the Industrial Revolution", "the Middle Ages",
    "the Renaissance", "the Silk Road", "the invention of writing", "the pyramids", "castles",
    "explorers", "the Stone Age", "museums",
    # everyday life
    "cooking", "gardening", "shopping", "a rainy day", "breakfast", "public transport",
    "bicycles", "holidays", "birthdays", "the weekend", "a train journey", "a summer morning",
    # sport and games
    "football", "chess", "swimming", "the Olympic Games", "marathons", "tennis",
    "mountain climbing", "skiing", "basketball", "sailing", "yoga", "card games",
    # feelings and ideas
    "time", "happiness", "fear", "curiosity", "courage", "loneliness",
    "hope", "kindness", "change", "silence", "freedom", "luck",
    # the environment
    "climate change", "recycling", "air pollution", "renewable energy", "deforestation", "wind",
    "snow", "clouds", "rain", "soil", "tides", "wildfires",
    # places and things
    "the post office", "lighthouses", "bridges", "trains", "airplanes", "ships",
    "clocks", "maps", "keys", "umbrellas", "the kitchen", "hospitals",
)  # fmt: skip

#: MMLU prompt styles: the line(s) before the question; ``{subject}`` is filled in.
MMLU_STYLES: dict[str, str] = {
    "instruct": "The following is a multiple choice question about {subject}. "
    "Reply only with the correct option.",
    "base": "Subject: {subject}.",
    "humble": "The following is a multiple choice question about {subject}. "
    "Reply only with the correct option, if you are unsure about the answer, "
    "reply with a completely random option.",
}

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


# --------------------------------------------------------------------------------------------
# helpers


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ElensError(
            f"Unknown source {source!r}: use 'hub' (the paper's data from the Hugging Face Hub) "
            "or 'synthetic' (the offline story world)."
        )


def _check_count(n: Any, what: str, *, minimum: int = 1) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < minimum:
        raise ElensError(f"{what} must be an integer >= {minimum}; got {n!r}.")


def _check_seed(seed: Any) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ElensError(f"The seed must be an integer; got {seed!r}.")


def _check_reversal(reversal: str) -> None:
    if reversal not in REVERSALS:
        raise ElensError(
            f"Unknown reversal {reversal!r}: use 'instruction_first' (the paper's code: the "
            "instruction before the story) or 'sentences' (the story's sentences in reverse order)."
        )


def _finish(rows: list[dict[str, Any]], columns: list[str], source: str, dataset: str) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for c in ("answer", "topic_kind"):  # may hold None: keep None, not NaN
        if c in df.columns:
            df[c] = pd.Series([r[c] for r in rows], dtype=object, index=df.index)
    df["source"] = source
    df.attrs["source"] = source
    df.attrs["dataset"] = dataset
    return df


def _load_hub(name: str, config: str | None, split: str, columns: Sequence[str], cache_dir: str | None):
    """``datasets.load_dataset(name, config, split=split)``, or an ElensError saying what to do."""
    import datasets

    where = f"'{name}'" + (f" (config '{config}')" if config else "") + f", split '{split}'"
    args = (name, config) if config else (name,)
    try:
        ds = datasets.load_dataset(*args, split=split, cache_dir=cache_dir)
    except Exception as err:  # network, offline mode, missing repo: all mean "not available here"
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no", "off")
        why = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline else "the Hub could not be reached"
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ElensError(
            f"Cannot load the dataset {where} from the Hugging Face Hub ({why}: "
            f"{type(err).__name__}{': ' + detail if detail else ''}). Offline, use "
            "source='synthetic' (the seeded story world's stand-in), or load it once where the "
            "Hub is reachable so that it is in the datasets cache."
        ) from err
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ElensError(
            f"The dataset {where} has columns {ds.column_names}, not the expected {list(columns)} "
            f"(missing {missing}): it is not the dataset this code was written for."
        )
    return ds


def _shuffled(items: list[str], *key: object) -> list[str]:
    """A Fisher-Yates shuffle drawing only ``Random.random()`` (stable across Python versions)."""
    rng = random.Random("/".join(str(k) for k in key))
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = min(int(rng.random() * (i + 1)), i)
        out[i], out[j] = out[j], out[i]
    return out


# Text columns a model reads, rendered by natural(); the first group as whole texts, the second
# as fragments (option text keeps its case, as on the prompt's option lines).
_NATURAL_TEXT = ("prompt", "instruction", "story", "question")
_NATURAL_FRAGMENTS = ("answer_text",)


def _style_for(source: str, style: str | None, model: Any) -> str:
    """The rendering a data function returns: the source's own for None, else as asked."""
    if style is None:
        return "zoo" if source == "synthetic" else "natural"
    chosen = resolve_style(style, model)
    if source == "hub" and style == "zoo":
        raise ElensError(
            "prompt_style='zoo' renders the story world (source='synthetic'); the Hub's data are "
            "English text already: leave prompt_style=None for source='hub'."
        )
    if source == "facts" and style == "zoo":
        raise ElensError(
            "prompt_style='zoo' renders the story world (source='synthetic'); the 'facts' "
            "questions are English text for real models: leave prompt_style=None."
        )
    return chosen if source == "synthetic" else "natural"


def _render_natural(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a zoo-rendered synthetic frame with its text columns in natural English."""
    out = df.copy()
    for c in _NATURAL_TEXT:
        if c in out.columns:
            out[c] = [natural(t) for t in out[c]]
    for c in _NATURAL_FRAGMENTS:
        if c in out.columns:
            out[c] = [natural(t, capitalise_first=False) for t in out[c]]
    if "options" in out.columns:
        out["options"] = [[natural(o, capitalise_first=False) for o in opts] for opts in out["options"]]
    out.attrs = {**df.attrs, "prompt_style": "natural"}
    return out


def _styled(df: pd.DataFrame, style: str) -> pd.DataFrame:
    df.attrs["prompt_style"] = "zoo" if df.attrs["source"] == "synthetic" else "natural"
    return _render_natural(df) if style == "natural" and df.attrs["prompt_style"] == "zoo" else df


# --------------------------------------------------------------------------------------------
# task prompts

_TASK_COLUMNS = [
    "prompt", "label", "phrasing", "variant", "story_id", "answer", "reversal", "instruction", "story",
]  # fmt: skip


def paper_task_prompt(
    story: str, story_key: str, task: str, phrasing: int, variant: str, reversal: str, seed: int
) -> tuple[str, str]:
    """(prompt, story as shown) of one task prompt in the paper's layout; see the module doc."""
    instruction = PAPER_TASK_INSTRUCTIONS[task][phrasing]
    reversed_ = variant in ("reversed", "reversed_scrambled")
    scrambled = variant in ("scrambled", "reversed_scrambled")
    shown = story
    if reversed_ and reversal == "sentences":
        shown = " ".join(reversed(_SENTENCE_END.split(story)))
    if scrambled:
        shown = " ".join(_shuffled(shown.split(), "elens-data-scramble", seed, story_key, task, phrasing, variant))
    if reversed_ and reversal == "instruction_first":
        return f"{instruction}\n\n{shown}\n\n", shown
    return f"{shown}\n\n{instruction}\n\n", shown


def task_prompts(
    source: str = "hub",
    n_stories: int = 100,
    *,
    seed: int = 0,
    reversal: str = "instruction_first",
    max_story_chars: int | None = None,
    cache_dir: str | None = None,
    prompt_style: str | None = None,
    model: Any = None,
) -> pd.DataFrame:
    """Prompts of the task-type experiment: ``n_stories`` x 24 (2400 for the paper's 100).

    Args:
        source: ``"hub"`` (TinyStories validation) or ``"synthetic"`` (the story world's test
            split).
        n_stories: number of stories.
        seed: hub: seeds the word scrambling; synthetic: the world's seed
            (:class:`StoryWorld`), which also decides its scrambling.
        reversal: ``"instruction_first"`` (the paper's code) or ``"sentences"``.
        max_story_chars: hub only: skip stories longer than this many characters (the next
            ones are taken instead, so every story keeps its 24 prompts). The paper's code
            skipped single prompts over 1500 characters. None: keep all.
        cache_dir: hub only: the ``datasets`` cache directory (default: its own).
        prompt_style: synthetic: ``"zoo"`` (None: the default), ``"natural"`` or ``"auto"``
            (chosen from ``model``); hub: None, ``"natural"`` or ``"auto"`` (English
            either way). See the module doc.
        model: the model ``prompt_style="auto"`` chooses for (a name or a loaded model).

    Returns:
        A DataFrame with columns prompt, label (task family), phrasing (0/1), variant,
        story_id, answer (str or None), reversal, instruction, story (as shown), source.
        ``answer`` is the zoo rendering's in both styles (a count, a name, an object, the
        story's last sentence).

    Raises:
        ElensError: for bad arguments, or when the Hub dataset cannot be loaded.
    """
    _check_source(source)
    _check_count(n_stories, "n_stories")
    _check_seed(seed)
    _check_reversal(reversal)
    if max_story_chars is not None:
        _check_count(max_story_chars, "max_story_chars")
    style = _style_for(source, prompt_style, model)
    rows = []
    if source == "synthetic":
        if max_story_chars is not None:
            raise ElensError("max_story_chars applies to source='hub' only (story-world stories are short).")
        for p in StoryWorld(seed).task_prompts(n_stories, "test", reversal):  # type: ignore[arg-type]
            rows.append(
                {
                    "prompt": p.prompt, "label": p.task, "phrasing": p.phrasing, "variant": p.variant,
                    "story_id": p.story_id, "answer": p.answer, "reversal": p.reversal,
                    "instruction": p.instruction, "story": p.story,
                }  # fmt: skip
            )
        return _styled(_finish(rows, _TASK_COLUMNS, source, f"StoryWorld({seed}) test split"), style)

    ds = _load_hub(TINYSTORIES, None, "validation", ["text"], cache_dir)
    stories: list[tuple[int, str]] = []
    for i, text in enumerate(ds["text"]):
        text = (text or "").strip()
        if not text or (max_story_chars is not None and len(text) > max_story_chars):
            continue
        stories.append((i, text))
        if len(stories) == n_stories:
            break
    if len(stories) < n_stories:
        raise ElensError(
            f"The {TINYSTORIES} validation split has only {len(stories)} usable stories"
            + (f" of at most {max_story_chars} characters" if max_story_chars is not None else "")
            + f"; asked for n_stories={n_stories}."
        )
    for i, story in stories:
        story_id = f"tinystories-validation-{i}"
        n_words = str(len(story.split()))
        for task in TASK_FAMILIES:
            for phrasing in (0, 1):
                for variant in VARIANTS:
                    prompt, shown = paper_task_prompt(story, story_id, task, phrasing, variant, reversal, seed)
                    rows.append(
                        {
                            "prompt": prompt, "label": task, "phrasing": phrasing, "variant": variant,
                            "story_id": story_id, "answer": n_words if task == "counting" else None,
                            "reversal": reversal, "instruction": PAPER_TASK_INSTRUCTIONS[task][phrasing],
                            "story": shown,
                        }  # fmt: skip
                    )
    return _styled(_finish(rows, _TASK_COLUMNS, source, f"{TINYSTORIES} validation"), style)


# --------------------------------------------------------------------------------------------
# output formats


def format_prompts(
    source: str = "hub",
    *,
    n_topics: int | None = None,
    seed: int = 0,
    formats: Sequence[str] = FORMATS,
    prompt_style: str | None = None,
    model: Any = None,
) -> pd.DataFrame:
    """Prompts of the output-format experiment: ``len(formats)`` x topics, format-major.

    Args:
        source: ``"hub"`` (the paper's English instructions over :data:`FORMAT_TOPICS`; nothing
            is downloaded) or ``"synthetic"`` (the story world's test topics).
        n_topics: use the first ``n_topics`` topics (default: all 180).
        seed: synthetic only: the world's seed (it decides which topics are held out).
        formats: some of ``chat``, ``poem``, ``science``.
        prompt_style: synthetic: ``"zoo"`` (None: the default), ``"natural"`` or ``"auto"``
            (chosen from ``model``); hub: None, ``"natural"`` or ``"auto"`` (English
            either way). See the module doc.
        model: the model ``prompt_style="auto"`` chooses for (a name or a loaded model).

    Returns:
        A DataFrame with one row per prompt and the columns prompt, label (format), topic,
        topic_kind (for synthetic, one of object, animal, place, person; None for hub), instruction, source. ``topic`` is the zoo
        rendering's in both styles (the world's key for the topic).
    """
    _check_source(source)
    _check_seed(seed)
    formats = list(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ElensError(f"Unknown or no formats {bad or formats!r}: use some of {', '.join(FORMATS)}.")
    if n_topics is not None:
        _check_count(n_topics, "n_topics")
    style = _style_for(source, prompt_style, model)
    columns = ["prompt", "label", "topic", "topic_kind", "instruction"]
    rows = []
    if source == "synthetic":
        world = StoryWorld(seed)
        topics = world.topics("test")
        if n_topics is not None and n_topics > len(topics):
            raise ElensError(f"The story world has {len(topics)} test topics; asked for n_topics={n_topics}.")
        keep = {t for t, _ in topics[:n_topics]}
        for p in world.format_prompts("test", formats):
            if p.topic in keep:
                instruction = p.prompt[: p.prompt.rfind(p.topic)].rstrip()
                rows.append({"prompt": p.prompt, "label": p.format, "topic": p.topic,
                             "topic_kind": p.topic_kind, "instruction": instruction})  # fmt: skip
        return _styled(_finish(rows, columns, source, f"StoryWorld({seed}) test topics"), style)
    if n_topics is not None and n_topics > len(FORMAT_TOPICS):
        raise ElensError(f"There are {len(FORMAT_TOPICS)} topics; asked for n_topics={n_topics}.")
    for fmt in formats:
        for topic in FORMAT_TOPICS[:n_topics]:
            instruction = PAPER_FORMAT_INSTRUCTIONS[fmt]
            rows.append({"prompt": f"{instruction} {topic}", "label": fmt, "topic": topic,
                         "topic_kind": None, "instruction": instruction})  # fmt: skip
    return _styled(_finish(rows, columns, source, "elens_utils.data.prompts.FORMAT_TOPICS"), style)


# --------------------------------------------------------------------------------------------
# multiple choice

_MC_COLUMNS = [
    "prompt", "answer", "answer_index", "answer_text", "options", "subject", "question", "id",
]  # fmt: skip
_SYNTHETIC_KINDS = ("who", "friend", "what", "colour", "where", "animal")


def mmlu_prompt(question: str, choices: Sequence[str], subject: str, style: str = "instruct") -> str:
    """One MMLU question in the fixed template of ``style``, ending with ``"Answer:"``."""
    head = MMLU_STYLES[style].format(subject=subject.replace("_", " "))
    letters = "".join(f"{chr(65 + i)}. {c}\n" for i, c in enumerate(choices))
    return f"{head}\n\nQuestion: {question.strip()}\n\nChoices:\n{letters}\nAnswer:"


def multiple_choice(
    source: str = "hub",
    n: int | None = None,
    *,
    subjects: Sequence[str] | None = None,
    seed: int = 0,
    style: str = "instruct",
    cache_dir: str | None = None,
    prompt_style: str | None = None,
    model: Any = None,
    shots: int = 0,
) -> pd.DataFrame:
    """Multiple-choice questions whose prompt's next token is the answer letter.

    Args:
        source: ``"hub"`` (MMLU test, config ``all``), ``"synthetic"`` (the story world's
            reading-comprehension questions on its test split) or ``"facts"`` (the project's
            own 384 questions of facts and story inferences,
            :func:`elens_utils.data.fact_questions.fact_questions`: English, written for real
            models of 100-300 M parameters; they add the columns ``kind``, ``context`` and
            ``cloze_prompt``, for ``mc_accuracy(..., scoring="cloze")``).
        n: number of questions. Hub: sampled with ``DataFrame.sample(n, random_state=seed)``
            among the selected subjects (None: all of them, in dataset order). Synthetic:
            default :data:`SYNTHETIC_MC_DEFAULT`; answer letters are balanced over the set.
            Facts: the first ``n`` of the ordered set (None: all); letters balanced in every
            prefix.
        subjects: hub: MMLU subjects (``"abstract_algebra"``...); synthetic: question kinds
            (who, friend, what, colour, where, animal); facts: subjects of
            :data:`elens_utils.data.fact_bank.SUBJECTS`. None: all.
        seed: hub: the sampling seed; synthetic: the world's seed; facts: the order of the
            items and the places of their answers (not the items).
        style: hub only: one of :data:`MMLU_STYLES`.
        cache_dir: hub only: the ``datasets`` cache directory.
        prompt_style: synthetic: ``"zoo"`` (None: the default), ``"natural"`` or ``"auto"``
            (chosen from ``model``); hub: None, ``"natural"`` or ``"auto"`` (English
            either way). See the module doc. Not to be confused with ``style``, the MMLU
            template. A natural story-world prompt ends with ``"Answer:"``, as MMLU's do.
        model: the model ``prompt_style="auto"`` chooses for (a name or a loaded model).
        shots: facts only: answered demonstrations before each question (0..8).

    Returns:
        A DataFrame with columns prompt, answer (letter), answer_index, answer_text, options
        (list of str), subject, question, id, source. The letters and indices are the same in
        both styles; ``options`` and ``answer_text`` are rendered as the prompt shows them.
    """
    if source not in MC_SOURCES:
        raise ElensError(
            f"Unknown source {source!r}: use 'hub' (MMLU from the Hugging Face Hub), 'synthetic' "
            "(the offline story world) or 'facts' (the project's own questions for real models)."
        )
    _check_seed(seed)
    if shots != 0 and source != "facts":
        raise ElensError(f"shots= applies to source='facts' only; got shots={shots!r} for source={source!r}.")
    if n is not None:
        _check_count(n, "n")
    if subjects is not None:
        if isinstance(subjects, str):
            subjects = [subjects]
        subjects = list(subjects)
        if not subjects:
            raise ElensError("subjects is empty: give some subjects, or None for all.")
    if style not in MMLU_STYLES:
        hint = f" (for the story world's rendering, use prompt_style={style!r})" if style in PROMPT_STYLES else ""
        raise ElensError(f"Unknown MMLU prompt style {style!r}: use one of {', '.join(MMLU_STYLES)}{hint}.")
    rendering = _style_for(source, prompt_style, model)
    if source == "synthetic":
        return _styled(_synthetic_mc(SYNTHETIC_MC_DEFAULT if n is None else n, subjects, seed), rendering)
    if source == "facts":
        from elens_utils.data.fact_questions import fact_questions

        return fact_questions(n, seed=seed, subjects=subjects, shots=shots)

    ds = _load_hub(MMLU, "all", "test", ["question", "subject", "choices", "answer"], cache_dir)
    df = ds.select_columns(["question", "subject", "choices", "answer"]).to_pandas()
    df["row"] = range(len(df))
    if subjects is not None:
        known = set(df["subject"])
        unknown = [s for s in subjects if s not in known]
        if unknown:
            raise ElensError(
                f"Unknown MMLU subject(s) {unknown}: use names such as {', '.join(sorted(known)[:4])} "
                f"({len(known)} in all)."
            )
        df = df[df["subject"].isin(subjects)]
    if n is not None:
        if n > len(df):
            raise ElensError(f"Only {len(df)} MMLU test questions match; asked for n={n}.")
        df = df.sample(n, random_state=seed)
    rows = []
    for r in df.itertuples(index=False):
        choices = [str(c) for c in r.choices]
        answer = int(r.answer)
        if not 2 <= len(choices) <= 26 or not 0 <= answer < len(choices):
            raise ElensError(
                f"MMLU test row {r.row} has {len(choices)} choices and answer {answer}: "
                "not a well-formed multiple-choice question."
            )
        rows.append(
            {
                "prompt": mmlu_prompt(r.question, choices, r.subject, style),
                "answer": chr(65 + answer), "answer_index": answer, "answer_text": choices[answer],
                "options": choices, "subject": r.subject, "question": r.question,
                "id": f"mmlu-test-{r.row}",
            }  # fmt: skip
        )
    out = _finish(rows, _MC_COLUMNS, source, f"{MMLU} all test")
    out.attrs["style"] = style
    return _styled(out, rendering)


def _synthetic_mc(n: int, subjects: list[str] | None, seed: int) -> pd.DataFrame:
    world = StoryWorld(seed)
    if subjects is None:
        questions = world.multiple_choice(n, "test")
    else:
        unknown = [s for s in subjects if s not in _SYNTHETIC_KINDS]
        if unknown:
            raise ElensError(
                f"Unknown question kind(s) {unknown} for source='synthetic': use some of "
                f"{', '.join(_SYNTHETIC_KINDS)}."
            )
        # A story's question kind does not depend on the letter its answer is put under.
        chosen = []
        for story in world.iter_stories("test"):
            if world.question_for(story, 0).kind in subjects:
                chosen.append(story)
                if len(chosen) == n:
                    break
        letters = _shuffled([str(i % len(LETTERS)) for i in range(n)], "elens-data-mc", seed, *sorted(subjects), n)
        questions = [world.question_for(s, int(k)) for s, k in zip(chosen, letters)]
    rows = [
        {
            "prompt": q.prompt, "answer": q.answer_letter, "answer_index": q.answer_index,
            "answer_text": q.answer, "options": list(q.options), "subject": q.kind,
            "question": q.question, "id": q.id,
        }  # fmt: skip
        for q in questions
    ]
    return _finish(rows, _MC_COLUMNS, "synthetic", f"StoryWorld({seed}) test split")


# --------------------------------------------------------------------------------------------
# per-model prompts


def for_model(
    frame: pd.DataFrame,
    model: Any,
    *,
    chat_template: bool = False,
    tokenizer: Any = None,
    system: str | None = None,
) -> pd.DataFrame:
    """``frame`` as ``model`` reads it: a copy with its text columns in the model's rendering.

    ``frame`` comes from :func:`task_prompts`, :func:`format_prompts` or
    :func:`multiple_choice` (or is a row subset of one). A story-world frame in the zoo
    rendering is rendered as natural English for a model whose :func:`prompt_style` is
    ``"natural"`` and kept for a zoo model; a Hub frame is English for every model. The rows,
    their index and every key column stay as they are, so results of several models line up
    row by row. ``attrs`` gains ``prompt_style``, ``model`` and ``chat_template``.

    Args:
        frame: a data frame of this module.
        model: a model name (``"zoo/llama-8L"``, ``"real/gemma3-270m"``, a Hub id, a directory,
            a ``.gguf`` path) or a loaded model (its ``.name`` decides, its ``.tokenizer`` serves
            ``chat_template``).
        chat_template: wrap each prompt in the tokenizer's chat template (:func:`chat_prompt`)
            for an instruct model. Off by default: the paper's code fed raw strings.
        tokenizer: the tokenizer whose template to use (default: ``model.tokenizer``).
        system: a system turn for the chat template (only with ``chat_template=True``).

    Raises:
        ElensError: for a frame that is not one of this module's, a natural-English story-world
            frame asked for a zoo model, or a chat template that is missing.
    """
    if not isinstance(frame, pd.DataFrame) or "prompt" not in frame.columns:
        raise ElensError(
            "for_model takes a DataFrame from data.task_prompts, data.format_prompts or "
            "data.multiple_choice (one with a 'prompt' column)."
        )
    name = model_name(model)
    wanted = prompt_style(model)
    source = frame.attrs.get("source")
    if source is None and "source" in frame.columns and frame["source"].nunique() == 1:
        source = frame["source"].iloc[0]
    if source not in MC_SOURCES:
        raise ElensError(
            "for_model cannot tell where this frame's prompts come from (no source): pass a frame "
            "from data.task_prompts, data.format_prompts or data.multiple_choice, or a row subset of one."
        )
    current = frame.attrs.get("prompt_style") or ("zoo" if source == "synthetic" else "natural")
    if source == "synthetic" and wanted == "natural" and current == "zoo":
        out = _render_natural(frame)
    elif source == "synthetic" and wanted == "zoo" and current == "natural":
        raise ElensError(
            f"This story-world frame is in natural English, but '{name}' reads the zoo rendering: "
            "build the frame with prompt_style=None or 'zoo' (the default) and let for_model "
            "render it for each model."
        )
    else:
        out = frame.copy()
        out.attrs = dict(frame.attrs)
    if system is not None and not chat_template:
        raise ElensError("system= is a turn of the chat template: pass chat_template=True as well.")
    if chat_template:
        tok = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
        if tok is None:
            raise ElensError(
                f"chat_template=True needs the tokenizer of '{name}': pass tokenizer=lm.tokenizer, "
                "or pass the loaded model itself as model."
            )
        out["prompt"] = [chat_prompt(tok, p, system=system) for p in out["prompt"]]
    out.attrs.update(
        source=source,
        prompt_style=current if source != "synthetic" else wanted,
        model=name,
        chat_template=bool(chat_template),
    )
    return out


def prompts_for(frame: pd.DataFrame, model: Any, **rendering: Any) -> list[str]:
    """The prompts of ``frame`` as ``model`` reads them, in row order.

    Args:
        frame: a prompt frame with a ``prompt`` column.
        model: the model's name (or a loaded model), as for :func:`for_model`.
        **rendering: ``chat_template``, ``tokenizer`` and ``system``, as for :func:`for_model`.

    Returns:
        ``for_model(frame, model, **rendering)["prompt"]`` as a list of strings.
    """
    return for_model(frame, model, **rendering)["prompt"].tolist()
