"""What a chapter page says it ran on: the re-run command, the software, the machine, the time."""

from __future__ import annotations

import os
import re
import shlex

import nbformat
import pytest
from helpers import write_mini_book

from elens_utils.book import chapters
from elens_utils.core.provenance import (
    duration_text,
    format_value,
    machine_text,
    markdown_escape,
    page_substitutions,
    rerun_command,
    run_footer,
    software_versions,
)


def test_rerun_command_reproduces_the_overrides():
    assert rerun_command("tasks", "default") == "make chapter CH=tasks PARAMS=default"
    overrides = {"prompt": "The capital of France is", "models": "zoo/llama-8L,zoo/qwen3-8L", "q": "it's"}
    cmd = rerun_command("profile", "default", overrides)
    argv = shlex.split(cmd)
    assert argv[:7] == ["python", "-m", "elens_utils", "book", "run", "profile", "--params"]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert chapters.parse_overrides(sets) == overrides  # what the shell hands the runner is what ran


def test_footer_names_time_machine_and_versions():
    line = run_footer(100.0, now=100.0 + 42.4)
    assert line.startswith("*The cells of this page ran in 42 s on ") and line.endswith(".*")
    assert f"{os.cpu_count()} CPU core" in line and machine_text() in line
    for name, version in software_versions().items():
        assert f"{name} {version}" in line
    assert "ran in 2.5 min" in run_footer(0.0, now=150.0)
    assert re.search(r"on \d{4}-\d\d-\d\d\.\*$", line)


def test_values_and_durations_read_as_a_reader_expects():
    assert format_value([1.0, float("inf")]) == "1.0, ∞" and format_value([]) == "(none)"
    assert format_value({"a": [1, 2], "b": None}) == "a: 1, 2, b: (not set)" and format_value(-float("inf")) == "−∞"
    assert [duration_text(s) for s in (0.4, 46.2, 89.4, 90, 577, 5399, 5400, 7200)] == [
        "0 s", "46 s", "89 s", "1.5 min", "9.6 min", "90.0 min", "1.5 h", "2.0 h"
    ]
    assert duration_text(-3) == "0 s"


def test_page_substitutions_give_every_parameter_and_the_run_time():
    subs = page_substitutions({"k_alpha": 5, "alphas": [0.5, 1.0, float("inf")], "models": ["zoo/a", "zoo/b"]}, 577.0, "default")
    assert subs["k_alpha"] == "5" and subs["alphas"] == "0.5, 1.0, ∞" and subs["models"] == "zoo/a, zoo/b"
    assert subs["run_time"].startswith("9.6 min for this page in this build, the kernel's start included (parameter set default, ")
    assert markdown_escape(machine_text()) in subs["run_time"]
    # MyST reads the values as Markdown: what would turn into math or emphasis is escaped
    odd = page_substitutions({"prompt": "2+2 = $4 *now* `x`_y"}, 1.0, "my_set")
    assert odd["prompt"] == "2+2 = \\$4 \\*now\\* \\`x\\`\\_y" and "parameter set my\\_set" in odd["run_time"]
    assert markdown_escape("plain text, 0.5-1.0") == "plain text, 0.5-1.0"


@pytest.mark.slow
def test_a_chapter_page_shows_its_overrides_and_footer(tmp_path):
    cells = [nbformat.v4.new_code_cell("prompt = 'x'\nseed = 0"), nbformat.v4.new_code_cell("print(prompt, seed)")]
    write_mini_book(tmp_path, cells, "description: test\ndefaults: {}\nchapters: {}\n")
    run = dict(root=tmp_path, out_dir=tmp_path / "book", progress=False, log=lambda *_: None)
    path = chapters.run_chapter("mini", "t", {"prompt": "The capital of France is"}, **run)
    out = nbformat.read(path, as_version=4)
    text = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/html", "")) + str(o.get("data", {}).get("text/markdown", ""))
        for c in out.cells if c.cell_type == "code" for o in c.outputs
    )  # fmt: skip
    assert "The capital of France is 0" in text
    assert "parameter set: t with prompt=The capital of France is" in text
    assert "--set &#x27;prompt=The capital of France is&#x27;" in text or "--set 'prompt=The capital of France is'" in text
    footer = out.cells[-1]
    assert "elens-run-footer" in footer.metadata["tags"] and "remove-input" in footer.metadata["tags"]
    assert "The cells of this page ran in" in footer.outputs[0]["data"]["text/markdown"]
    # the prose's {{ prompt }} and {{ run_time }} come from the notebook's MyST substitutions
    subs = out.metadata["myst"]["substitutions"]
    assert subs["prompt"] == "The capital of France is" and subs["seed"] == "0"
    assert re.match(r"\d+ s for this page in this build, the kernel's start included \(parameter set t, ", subs["run_time"])
    # the same parameters with and without an override are two pages (their notes differ)
    chapters.run_chapter("mini", "t", None, **run)
    logs = []
    chapters.run_chapter("mini", "t", {"prompt": "x"}, **{**run, "log": logs.append})
    assert any("executing" in line for line in logs) and not any("up to date" in line for line in logs)


def test_make_set_values_may_hold_spaces():
    split = chapters.split_set_line
    assert split("prompt=The capital of France is seed=1") == ["prompt=The capital of France is", "seed=1"]
    assert split("seed=1 n_samples=8") == ["seed=1", "n_samples=8"]
    assert split("models=a,b  real_prompt=One day, Tom x=y=z") == ["models=a,b", "real_prompt=One day, Tom", "x=y=z"]
    assert split("") == [] and split("  ") == []
    with pytest.raises(chapters.ElensError, match="not KEY=VALUE"):
        chapters.parse_overrides(split("no key here"))
