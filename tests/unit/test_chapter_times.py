"""Measured chapter times: collected from executed notebooks, recorded, told before a run."""

import json

from elens_utils.book import chapters
from elens_utils.book.chapter_times import TIMES_FILE, collect_times, estimate_line, executed_seconds, write_times


def _executed(path, chapter, params_set, seconds):
    nb = {"cells": [], "metadata": {"elens": {"chapter": chapter, "params_set": params_set, "seconds": seconds}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def test_collect_record_and_estimate(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    _executed(book / "01.ipynb", "profile", "default", 61.0)
    _executed(book / "04.ipynb", "formats", "default", 725.0)
    _executed(book / "05.ipynb", "expansion", "smoke", 47.0)
    (book / "broken.ipynb").write_text("{not json")
    times = collect_times(book, "default")
    assert times == {"profile": 61.0, "formats": 725.0}
    assert executed_seconds(book / "05.ipynb") == (47.0, "smoke")
    assert executed_seconds(book / "missing.ipynb") == (None, None)
    path = write_times(tmp_path, "default", times, cache="cold", machine="2 cores")
    assert path == tmp_path / TIMES_FILE
    stored = json.loads(path.read_text())["default"]
    assert stored["chapters"] == {"formats": 725.0, "profile": 61.0} and stored["total_s"] == 786.0
    write_times(tmp_path, "smoke", {"expansion": 47.0}, cache="warm")  # another set is kept beside it
    assert set(json.loads(path.read_text())) == {"default", "smoke"}
    line = estimate_line("formats", "default", tmp_path, book / "04.ipynb")
    assert "measured 12.1 min on 2 cores with a cold profile cache" in line and "last run here 12.1 min" in line
    # the last run here counts only when it used the same parameter set
    assert "last run here" not in estimate_line("expansion", "default", tmp_path, book / "05.ipynb")
    assert estimate_line("tasks", "paper", tmp_path, book / "none.ipynb") == (
        "tasks: no time measured for the parameter set 'paper' yet"
    )


def test_times_command(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    _executed(book / "01.ipynb", "profile", "smoke", 12.5)
    assert chapters.main(["times", "--params", "smoke", "--out", str(book)]) == 0
    out = capsys.readouterr().out
    assert "profile" in out and "12.5 s" in out
    assert chapters.main(["times", "--params", "paper", "--out", str(book)]) == 2
    assert "No chapter" in capsys.readouterr().err
