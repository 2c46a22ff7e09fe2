"""The model zoo's card, training curves and story world as frames and charts (the zoo appendix).

:func:`load_card` reads ``zoo/card.json`` (written by ``python -m elens_utils.zoo card``);
:func:`card_frame` and :func:`card_chart` show the held-out scores of every model against depth,
with chance and the project's target marked; :func:`history_frame` and :func:`training_curves`
read the loss history each model's ``zoo_model.json`` records, :func:`validation_frame` and
:func:`validation_curves` the multiple-choice and read-out checks made while training;
:func:`world_examples` gives one example of every kind of document the story world writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from elens_utils.core.errors import ElensError
from elens_utils.viz.tables import fmt_range
from elens_utils.viz.theme import tooltips
from elens_utils.zoo.training import CARD_JSON, METADATA_FILE, validate_card

__all__ = [
    "card_findings",
    "card_chart",
    "card_frame",
    "first_reaching",
    "history_frame",
    "load_card",
    "reading_without_readout",
    "training_curves",
    "validation_curves",
    "validation_frame",
    "world_examples",
]

#: The multiple-choice accuracy the deepest model of every family must reach (the zoo's issue).
MC_TARGET = 0.70
#: Below this a four-way accuracy counts as chance: 25 % plus about four standard errors of 400 questions.
NEAR_CHANCE = 0.35
#: From this semantic-task accuracy a model counts as reading its story.
READS_STORY = 0.70


def load_card(root: str | os.PathLike[str]) -> dict[str, Any]:
    """``root/card.json``, validated.

    Raises:
        ElensError: no card there (train and evaluate the zoo first), or a malformed one.
    """
    path = Path(root) / CARD_JSON
    if not path.is_file():
        raise ElensError(
            f"No zoo card at {path}: train the zoo (`make zoo`) or evaluate it "
            f"(`python -m elens_utils.zoo card --root {root}`)."
        )
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ElensError(f"{path} is not valid JSON ({err}): write it again with `python -m elens_utils.zoo card`.") from err
    validate_card(card)
    return card


def card_frame(card: dict[str, Any]) -> pd.DataFrame:
    """One row per model: ``name``, ``family``, ``n_layers``, ``n_params``, ``size_mb``,
    ``train_tokens_m`` (millions), ``train_minutes``, ``loss`` (nats/token, held out),
    ``mc_accuracy``, ``lookup_accuracy`` (the letter read-out alone), ``task_accuracy``
    (semantic), ``counting``, ``continuation`` (fractions)."""
    rows = []
    for m in card["models"]:
        by_task = m.get("task_accuracy_by_task", {})
        rows.append(
            {
                "name": m["name"],
                "family": m["name"].rsplit("-", 1)[0],
                "n_layers": m["n_layers"],
                "n_params": m["n_params"],
                "size_mb": m["size_bytes"] / 2**20,
                "train_tokens_m": m["train_tokens"] / 1e6,
                "train_minutes": m["train_seconds"] / 60,
                "loss": m["loss"],
                "mc_accuracy": m["mc_accuracy"],
                "lookup_accuracy": m["lookup_accuracy"],
                "task_accuracy": m["task_accuracy"],
                "counting": by_task.get("counting"),
                "continuation": by_task.get("continuation"),
            }
        )
    return pd.DataFrame(rows)


def _model_metas(root: str | os.PathLike[str], names: list[str] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, zoo_model.json)`` of every model directory under ``root`` (``names``: these only),
    sorted by name; the name is the directory's, as on the card and in ``zoo/<name>``."""
    for path in sorted(Path(root).glob(f"*/{METADATA_FILE}")):
        if names is None or path.parent.name in names:
            yield path.parent.name, json.loads(path.read_text())


def _lookup_phase_tokens(meta: dict[str, Any]) -> int:
    """The look-up phase's tokens in a model's recorded recipe (0: none, or a model trained before it existed)."""
    phases = meta.get("recipe", {}).get("lookup_phase_tokens", {})
    return int(phases.get(str(meta["n_layers"]), 0))


def _phase(tokens: int, lookup_tokens: int) -> str:
    # by the recipe's count: the phase may end up to ~0.5% short of it (zoo._training_batches), so
    # the log entry just before the count may already hold the first steps of the mix
    return "look-up" if tokens <= lookup_tokens and lookup_tokens > 0 else "main"


def history_frame(root: str | os.PathLike[str], names: list[str] | None = None) -> pd.DataFrame:
    """The training history of the zoo's models (``names``: these directories only): ``name``, ``family``, ``n_layers``, ``step``,
    ``tokens_m`` (millions processed), ``loss`` (running mean of the batch loss, nats/token),
    ``phase`` (``"look-up"`` within the recipe's look-up phase, else ``"main"``; the MC phase's
    letter-only batches are not in the curve).

    Raises:
        ElensError: no model directory with a ``zoo_model.json`` under ``root``.
    """
    rows = []
    for name, meta in _model_metas(root, names):
        lookup = _lookup_phase_tokens(meta)
        for h in meta.get("history", []):
            if h.get("focus"):
                continue
            rows.append(
                {"name": name, "family": meta["family"], "n_layers": meta["n_layers"], "step": h["step"],
                 "tokens_m": h["tokens"] / 1e6, "loss": h["loss"], "phase": _phase(h["tokens"], lookup)}
            )  # fmt: skip
    if not rows:
        raise ElensError(f"No training history under {root}: expected <model>/{METADATA_FILE} files (train the zoo first).")
    return pd.DataFrame(rows)


def training_curves(frame: pd.DataFrame, title: str | None = None) -> alt.FacetChart:
    """Training loss against tokens processed, one panel per family, one line per depth; the
    look-up phase (its documents are look-ups alone, so its loss is not the mix's) dotted."""
    if frame.empty:
        raise ElensError("No training history to draw.")
    depths = sorted(frame["n_layers"].unique().tolist())
    line = (
        alt.Chart()
        .mark_line()
        .encode(
            x=alt.X("tokens_m:Q", title="training tokens (millions)"),
            y=alt.Y("loss:Q", title="training loss (nats/token)", scale=alt.Scale(type="log")),
            color=alt.Color("n_layers:O", title="blocks", scale=alt.Scale(domain=depths, scheme="viridis")),
            strokeDash=alt.StrokeDash(
                "phase:N", title="phase", scale=alt.Scale(domain=["look-up", "main"], range=[[2, 2], [1, 0]])
            ),
            tooltip=tooltips(
                ("name:N", "model"), "phase:N", "step:Q", ("tokens_m:Q", "tokens (M)", ".2f"),
                alt.Tooltip("loss:Q", format=".3f"),
            ),
        )
    )
    return (
        alt.layer(line, data=frame)
        .properties(width=250, height=170)
        .facet(facet=alt.Facet("family:N", title=None), columns=2)
        .properties(title=alt.Title(title or "Training curves of the zoo", subtitle="running mean of the batch loss, log scale"))
    )


def validation_frame(root: str | os.PathLike[str], names: list[str] | None = None) -> pd.DataFrame:
    """The validation checks made while training: ``val_mc`` and ``val_readout`` of the history
    (100 items each, every 500 steps) and the multiple-choice check after each MC extension round
    (200 questions). Columns ``name``, ``family``, ``n_layers``, ``step``, ``tokens_m`` (millions
    of tokens processed), ``metric`` (``"multiple choice"`` or ``"letter read-out"``),
    ``accuracy`` (fraction), ``extension`` (the check follows an extension round), ``phase``
    (``"look-up"`` or ``"main"``, as in :func:`history_frame`) and ``lookup_phase_m`` (the
    model's look-up phase, millions of tokens; 0 without one). Models trained without the
    checks have no rows.

    Raises:
        ElensError: no check in any model's history under ``root``.
    """
    rows = []
    for name, meta in _model_metas(root, names):
        lookup = _lookup_phase_tokens(meta)
        base = {"name": name, "family": meta["family"], "n_layers": meta["n_layers"], "lookup_phase_m": lookup / 1e6}
        checks = []
        step = tokens = 0
        for h in meta.get("history", []):
            step, tokens = h["step"], h["tokens"]
            for key, metric in (("val_mc", "multiple choice"), ("val_readout", "letter read-out")):
                if key in h:
                    checks.append(
                        {**base, "step": step, "tokens_m": tokens / 1e6, "metric": metric, "accuracy": h[key], "extension": False,
                         "phase": _phase(tokens, lookup)}
                    )  # fmt: skip
        if not checks:
            continue  # no checks in the main run: its extension rounds alone make no curve
        for r in meta.get("mc_extension", {}).get("rounds", []):
            step, tokens = step + r["steps"], tokens + r["tokens"]
            checks.append(
                {**base, "step": step, "tokens_m": tokens / 1e6, "metric": "multiple choice", "accuracy": r["validation_mc_accuracy"],
                 "extension": True, "phase": "main"}  # fmt: skip
            )
        rows += checks
    if not rows:
        raise ElensError(f"No validation checks in the training histories under {root}: retrain the zoo (`make zoo`).")
    return pd.DataFrame(rows)


def validation_curves(frame: pd.DataFrame, chance: float = 0.25) -> alt.FacetChart:
    """Validation accuracy against training tokens, one panel per metric, one line per model;
    chance dashed, the checks after MC extension rounds drawn as squares, the longest look-up
    phase of the models shaded."""
    if frame.empty:
        raise ElensError("No validation checks to draw.")
    base = alt.Chart().encode(
        x=alt.X("tokens_m:Q", title="training tokens (millions)"),
        y=alt.Y("accuracy:Q", title="validation accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("name:N", title="model"),
        tooltip=tooltips(
            ("name:N", "model"), "step:Q", ("tokens_m:Q", "tokens (M)", ".2f"),
            alt.Tooltip("accuracy:Q", format=".0%"), ("extension:N", "after an extension round"),
        ),
    )
    line = base.mark_line(point=alt.OverlayMarkDef(size=12))
    rounds = base.transform_filter(alt.datum.extension).mark_square(size=60)
    chance_rule = alt.Chart().mark_rule(color="#555", strokeDash=[5, 4]).encode(y=alt.datum(chance))
    phase = (
        alt.Chart()
        .transform_aggregate(end="max(lookup_phase_m)")
        .transform_filter(alt.datum.end > 0)
        .transform_calculate(start="0", label="'look-up phase'")
        .mark_rect(color="#eee")
        .encode(x="start:Q", x2="end:Q")
    )
    phase_label = phase.mark_text(align="left", baseline="top", dx=4, dy=4, color="#666").encode(
        x="start:Q", y=alt.value(0), text="label:N"
    )
    return (
        alt.layer(phase, phase_label, line, rounds, chance_rule, data=frame)
        .properties(width=300, height=200)
        .facet(facet=alt.Facet("metric:N", title=None, sort=["multiple choice", "letter read-out"]), columns=2)
        .properties(
            title=alt.Title(
                "Validation accuracy while training",
                subtitle=f"held-out questions every 500 steps; squares: after an MC extension round; dashed: chance ({chance:.0%}); "
                "shaded: the look-up phase",
            )
        )
    )


def first_reaching(frame: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """The first check at which each model's accuracy reached ``threshold``, per metric, from a
    :func:`validation_frame`: ``name``, ``metric``, ``step`` and ``tokens_m`` (missing where it
    never did)."""
    rows = []
    for (name, metric), g in frame.sort_values("step").groupby(["name", "metric"], sort=True):
        hit = g[g["accuracy"] >= threshold]
        first = hit.iloc[0] if len(hit) else None
        rows.append(
            {"name": name, "metric": metric,
             "step": None if first is None else int(first["step"]),
             "tokens_m": float("nan") if first is None else float(first["tokens_m"])}
        )  # fmt: skip
    return pd.DataFrame(rows)


def reading_without_readout(frame: pd.DataFrame, near_chance: float = NEAR_CHANCE, reads_story: float = READS_STORY) -> pd.DataFrame:
    """The models of a :func:`card_frame` that read their stories (semantic task accuracy at least
    ``reads_story``) but answer multiple choice and the letter read-out at chance (both below
    ``near_chance``): their failure is the last step of a multiple-choice answer, not reading."""
    keep = (frame["task_accuracy"] >= reads_story) & (frame["mc_accuracy"] < near_chance) & (frame["lookup_accuracy"] < near_chance)
    return frame[keep]


def card_chart(frame: pd.DataFrame, chance: float = 0.25, target: float = MC_TARGET) -> alt.LayerChart:
    """Held-out multiple-choice accuracy against depth, one line per family; chance (dashed)
    and the target for the deepest models (dotted) marked. Hover for every score."""
    if frame.empty:
        raise ElensError("The zoo card lists no models.")
    rules = pd.DataFrame({"y": [chance, target], "what": [f"chance ({chance:.0%})", f"target, deepest ({target:.0%})"]})
    tooltip = tooltips(
        ("name:N", "model"), ("mc_accuracy:Q", "multiple choice", ".1%"),
        ("task_accuracy:Q", "task (semantic)", ".1%"), alt.Tooltip("counting:Q", format=".1%"),
        alt.Tooltip("continuation:Q", format=".1%"), ("loss:Q", "held-out loss", ".3f"),
        ("n_params:Q", "parameters", ","),
    )
    base = alt.Chart(frame).encode(
        x=alt.X("n_layers:O", title="blocks", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("mc_accuracy:Q", title="held-out multiple-choice accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("family:N", title="family"),
    )
    rule = alt.Chart(rules).mark_rule(color="#555").encode(
        y="y:Q", strokeDash=alt.StrokeDash("what:N", title=None, scale=alt.Scale(range=[[5, 4], [1, 3]]))
    )
    return alt.layer(base.mark_line(), base.mark_point(size=60).encode(tooltip=tooltip), rule).properties(
        width=420, height=280, title="Multiple-choice accuracy of the zoo against depth"
    )


def world_examples(seed: int = 0) -> dict[str, str]:
    """One example of every kind of text the story world writes, from its test split (held out
    from training): a story, a task prompt of each task with its answer, a text of each output
    format, and a multiple-choice question."""
    from elens_utils.data.synthetic import FORMATS, TASK_FAMILIES, StoryWorld

    world = StoryWorld(seed)
    story = world.stories(1, split="test")[0]
    out = {"story": story.text}
    for task in TASK_FAMILIES:
        p = world.task_prompt(story, task, 0, "base")
        out[f"task: {task}"] = p.prompt + (p.answer or "")
    topic = world.topics("test")[0][0]
    for fmt in FORMATS:
        out[f"format: {fmt}"] = world.format_text(fmt, topic).text
    out["multiple choice"] = world.multiple_choice(1, split="test")[0].text
    return out


def card_findings(card: dict[str, Any], models: pd.DataFrame) -> list[str]:
    """Appendix A's closing bullets: the zoo's size and training time, its multiple-choice
    accuracy against the project's target (:data:`MC_TARGET` for the deepest model of each
    family), and the models that read their story without the read-out
    (:func:`reading_without_readout`).

    Args:
        card: the zoo's card (:func:`load_card`).
        models: :func:`card_frame` of it, one row per model (``name``, ``family``, ``n_layers``,
            ``mc_accuracy`` (fraction), ``train_minutes``, ...).
    """
    deepest = models.loc[models.groupby("family")["n_layers"].idxmax()]
    short = deepest[deepest["mc_accuracy"] < MC_TARGET]
    lines = [
        f"- **{len(models)} models**, {card['total_size_bytes'] / 2**20:.1f} MiB of weights in all, trained for "
        f"{models['train_minutes'].sum():.0f} minutes of single-threaded CPU time together.",
        f"- **Multiple choice** (held out, {card['models'][0]['mc_n']} questions each): from "
        f"{models['mc_accuracy'].min():.0%} to {models['mc_accuracy'].max():.0%}; the deepest model of each family: "
        + ", ".join(f"{r.name} {r.mc_accuracy:.0%}" for r in deepest.itertuples()) + ".",
        f"- **Against the project's target** (the deepest model of every family at {MC_TARGET:.0%} or more): "
        + ("met by every family." if short.empty else "missed by " + ", ".join(short["name"]) + "."),
    ]
    no_readout = reading_without_readout(models)
    if not no_readout.empty:
        lines.append(
            "- **Reading without the read-out**: " + ", ".join(f"{r.name} (semantic task {r.task_accuracy:.0%})" for r in no_readout.itertuples())
            + " say who or what their story is about, but their multiple choice and letter read-out are at chance "
            f"({fmt_range([*no_readout['mc_accuracy'], *no_readout['lookup_accuracy']], '.0%')}), which points at the last step rather than at reading the story."
        )
    return lines
